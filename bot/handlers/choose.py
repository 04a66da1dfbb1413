"""Choosing which faces stay covered, in the chat: "Choose faces" under a result turns it into a preview (every face
found still covered, outlined and numbered as `photo-anon detect` numbers them) with a button per face; "Done" paints
the original again as chosen, in the same message.

Choosing costs no detection: the faces of the first look are remembered with the original (bot.originals), and a
render is a job like any photo's (admission, the photo lane, the budget) that paints those boxes. Only the sender of
the photo can choose, and only while the result is remembered. The Mini App editor (bot.miniapp) puts its choice in
the chat through the same `repaint`.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace

from aiogram import F, Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.types import (
    CallbackQuery,
    InlineKeyboardMarkup,
    InputMediaDocument,
    InputMediaPhoto,
    Message,
)

from anonymizer.errors import AnonymizerError
from anonymizer.options import MediaKind, Result
from bot import metrics
from bot.admission import BusyError, UnavailableError
from bot.context import RequestContext
from bot.handlers.buttons import (
    ChooseFaces,
    FaceChoice,
    Pick,
    album_keyboard,
    chooser_keyboard,
    editor_link,
    result_keyboard,
)
from bot.handlers.common import download, format_note, refusal, result_upload, sent_as_file
from bot.jobs import DeadlineExceededError, Job
from bot.originals import RENDERS_PER_RESULT, Original
from bot.pricing import JobSize

logger = logging.getLogger(__name__)


async def render(request: RequestContext, original: Original, *, preview: bool) -> Result:
    """The original painted again on its remembered faces: the preview covers and numbers them all; the final
    shows those the user chose to show. Raises what admission or the pipeline refuse it with."""
    settings = request.settings
    deadline = request.received_at + settings.deadline_seconds
    size = JobSize(MediaKind.IMAGE, original.pixels, original.file_size, rerender=True)
    options = replace(
        settings.options(await request.filter_name()),
        keep=frozenset() if preview else original.shown,
        add=original.regions,
        outline=preview,
    )
    async with request.jobs.admission(request.user_id, [request.jobs.estimate_seconds(size)], deadline):
        data = await download(request.bot, original.file_id, settings, deadline)
        (outcome,) = await request.jobs.run([Job(data, options, faces=original.faces)], deadline)
    if isinstance(outcome, BaseException):
        raise outcome
    return outcome


def result_media(original: Original, result: Result, caption: str) -> InputMediaPhoto | InputMediaDocument:
    """The picture in the form its result had: a photo, or a file with its name."""
    file = result_upload(original.file_name, result)
    if sent_as_file(original.as_document, result):
        return InputMediaDocument(media=file, caption=caption)
    return InputMediaPhoto(media=file, caption=caption)


def final_caption(original: Original, result: Result, request: RequestContext) -> str:
    texts, count = request.texts, len(original.faces)
    if original.shown:
        shown = ", ".join(map(str, sorted(original.shown)))
        text = texts.chosen_covered.format(covered=count - len(original.shown), count=count, shown=shown)
    else:
        text = (texts.strict_covered if original.strict else texts.faces_covered).format(count=count)
    marked = [texts.regions_covered.format(count=len(original.regions))] if original.regions else []
    return "\n".join([text, *marked, *format_note(result, texts)])


class RendersSpentError(Exception):
    """The result was painted again RENDERS_PER_RESULT times: one result may not keep the workers busy for its hour."""


# What a render can be refused with, each told to the user in words (bot.handlers.common.refusal).
REFUSALS = (BusyError, UnavailableError, DeadlineExceededError, AnonymizerError, RendersSpentError)


def refused(error: BaseException, request: RequestContext) -> str:
    """What the user is told about a render that was refused, counted as the request's outcome."""
    if isinstance(error, RendersSpentError):
        text, outcome = request.texts.choose_too_often, "busy"
    else:
        text, outcome = refusal(error, request.settings, request.texts)
    metrics.REQUESTS.labels(outcome).inc()
    return text


async def repaint(
    request: RequestContext,
    original: Original,
    chat_id: int,
    result_id: int,
    *,
    preview: bool,
    chooser: InlineKeyboardMarkup | None = None,
) -> None:
    """Render `original` and put the picture in place of its result message, in the form the result had: the
    preview with the `chooser` keyboard, or the final with the result's own buttons (none on an album's picture,
    which cannot carry any). The one way a choice reaches the chat, from the chat's chooser and from the Mini App.

    Raises one of REFUSALS when the render is refused, and TelegramBadRequest when the message is gone. Each call
    counts against the result's renders."""
    texts, started = request.texts, time.monotonic()
    if original.renders >= RENDERS_PER_RESULT:
        raise RendersSpentError
    await request.originals.update(chat_id, result_id, replace(original, renders=original.renders + 1))
    result = await render(request, original, preview=preview)
    caption = texts.choose_prompt if preview else final_caption(original, result, request)
    if original.album:
        markup = None
    elif preview:
        markup = chooser
    else:
        markup = result_keyboard(texts, original, editor_link(request.settings, chat_id, result_id, original))
    await request.bot.edit_message_media(
        media=result_media(original, result, caption), chat_id=chat_id, message_id=result_id, reply_markup=markup
    )
    metrics.REQUESTS.labels("result").inc()
    metrics.REPLY_SECONDS.observe(time.monotonic() - started)


def chosen(original: Original, press: FaceChoice) -> frozenset[int]:
    """The faces shown once this press is applied (a number that is no face's changes nothing)."""
    every = frozenset(range(1, len(original.faces) + 1))
    if press.pick == Pick.TOGGLE:
        return original.shown ^ ({press.number} & every)
    if press.pick == Pick.SHOW_ALL:
        return every
    return frozenset() if press.pick == Pick.COVER_ALL else original.shown


class Chooser:
    """One press on a chooser's button: which result it is about, whose, and how to answer it."""

    def __init__(self, query: CallbackQuery, result: int, request: RequestContext) -> None:
        assert isinstance(query.message, Message)
        self.query, self.request, self.panel = query, request, query.message
        # The message the buttons are under, or (an album's picture, which cannot carry buttons) the one named.
        self.result_id = result or self.panel.message_id
        self.in_album = bool(result)

    async def original(self) -> Original | None:
        """The remembered original if the presser may choose on it; else the press is answered with why not."""
        texts = self.request.texts
        original = await self.request.originals.recall(self.panel.chat.id, self.result_id)
        if original is None:
            await self.query.answer(texts.choose_expired, show_alert=True)
        elif original.user_id != self.request.user_id:
            await self.query.answer(texts.choose_not_yours, show_alert=True)
        else:
            return original
        return None

    async def show_choices(self, original: Original, page: int = 0) -> None:
        """The buttons' new state, at once."""
        keyboard = chooser_keyboard(self.request.texts, self.result_id if self.in_album else 0, original, page)
        await self.request.originals.update(self.panel.chat.id, self.result_id, original)
        try:
            await self.panel.edit_reply_markup(reply_markup=keyboard)
        except TelegramBadRequest as error:
            if "not modified" not in error.message:
                await self.query.answer(self.request.texts.choose_gone, show_alert=True)
                return
        await self.query.answer()

    async def paint(self, original: Original, *, preview: bool) -> None:
        """Render and put the picture in place of the result: the preview with the face buttons, or the final with
        the result's own buttons; an album's own message shows the face buttons, then the album's list again."""
        request, texts, chat_id = self.request, self.request.texts, self.panel.chat.id
        keyboard = chooser_keyboard(texts, self.result_id if self.in_album else 0, original, 0) if preview else None
        try:
            await repaint(request, original, chat_id, self.result_id, preview=preview, chooser=keyboard)
            if self.in_album:
                if preview:
                    await self.panel.edit_text(texts.choose_prompt, reply_markup=keyboard)
                else:
                    album = album_keyboard(texts, request.settings, chat_id, original)
                    await self.panel.edit_text(texts.choose_in_album, reply_markup=album)
        except REFUSALS as error:
            await self.query.answer(refused(error, request), show_alert=True)
            return
        except TelegramBadRequest as error:
            logger.info("chat %s: chooser not shown: %s", chat_id, error.message)
            await self.query.answer(texts.choose_gone, show_alert=True)
            return
        await self.query.answer()


def create_router() -> Router:
    router = Router(name="choose")

    @router.callback_query(ChooseFaces.filter())
    async def open_chooser(query: CallbackQuery, callback_data: ChooseFaces, request: RequestContext) -> None:
        chooser = Chooser(query, callback_data.result, request)
        if (original := await chooser.original()) is not None:
            await chooser.paint(original, preview=True)

    @router.callback_query(FaceChoice.filter(F.pick == Pick.DONE))
    async def done(query: CallbackQuery, callback_data: FaceChoice, request: RequestContext) -> None:
        chooser = Chooser(query, callback_data.result, request)
        if (original := await chooser.original()) is not None:
            await chooser.paint(original, preview=False)

    @router.callback_query(FaceChoice.filter())
    async def change(query: CallbackQuery, callback_data: FaceChoice, request: RequestContext) -> None:
        chooser = Chooser(query, callback_data.result, request)
        if (original := await chooser.original()) is not None:
            await chooser.show_choices(replace(original, shown=chosen(original, callback_data)), callback_data.page)

    return router

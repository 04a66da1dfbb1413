"""Photos, image files and albums: checked from metadata, admitted, downloaded into memory, anonymized, answered.

Every request gets exactly one answer in the chat and as a reply to the message it came from: the result, "busy",
or what went wrong. A picture with no face is answered with a text only (the user already has the picture, and
"unchanged" is then literally true); inside an album such pictures are sent back re-encoded, so the album keeps
its order, and the caption names them. Under a single result (or the "no face" answer) a button offers a second,
more thorough look (bot.handlers.strict); which original a result came from is remembered for that, briefly.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import replace

from aiogram import F, Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.types import InlineKeyboardMarkup, InputMediaDocument, InputMediaPhoto, MediaUnion, Message
from aiogram.utils.chat_action import ChatActionSender
from redis.exceptions import RedisError

from anonymizer.errors import AnonymizerError
from anonymizer.options import Result
from bot import metrics
from bot.admission import ESTIMATE_HEADROOM, BusyError, Ticket, UnavailableError
from bot.context import RequestContext
from bot.handlers.buttons import album_keyboard, editor_link, result_keyboard
from bot.handlers.common import (
    TooSlowError,
    download,
    error_text,
    format_note,
    picture_refusal,
    real_size,
    refusal,
    result_upload,
    sent_as_file,
)
from bot.inputs import Picture, clip_of, picture_of
from bot.jobs import DeadlineExceededError, Job
from bot.middlewares import AlbumMiddleware
from bot.originals import Original
from bot.settings import BotSettings

logger = logging.getLogger(__name__)


async def anonymize_pictures(
    pictures: list[Picture], request: RequestContext, ticket: Ticket, deadline: float, strict: bool
) -> list[Result | BaseException]:
    """Download and anonymize the pictures (`strict`: with the most thorough detection); one Result or error per
    picture, in order. A file's real size is read from its header once downloaded: the request is priced again
    (BusyError if it no longer fits), and a picture that could not be done in time even alone is refused."""
    settings, jobs = request.settings, request.jobs
    downloads: list[bytes | BaseException] = list(
        await asyncio.gather(
            *(download(request.bot, picture.file_id, settings, deadline) for picture in pictures),
            return_exceptions=True,
        )
    )
    options = settings.options(await request.filter_name(), strict)
    sizes = [picture.job_size(strict) for picture in pictures]
    for index, (picture, data) in enumerate(zip(pictures, downloads, strict=True)):
        if isinstance(data, bytes) and picture.pixels is None:
            try:
                sizes[index] = await real_size(data, sizes[index], options)
            except AnonymizerError as refused:
                downloads[index] = refused
    estimates = [jobs.estimate_seconds(size) for size in sizes]
    time_left = deadline - settings.limits().reply_reserve - time.monotonic()
    for index, estimate in enumerate(estimates):
        if isinstance(downloads[index], bytes) and estimate * ESTIMATE_HEADROOM > time_left:
            downloads[index] = TooSlowError()
    todo = [(data, estimate) for data, estimate in zip(downloads, estimates, strict=True) if isinstance(data, bytes)]
    if todo and any(picture.pixels is None for picture in pictures):
        await jobs.reprice(ticket, [estimate for _, estimate in todo])
    run = [Job(data, options, strict=strict, priced=estimate) for data, estimate in todo]
    results = iter(await jobs.run(run, deadline) if run else [])
    outcomes = [next(results) if isinstance(data, bytes) else data for data in downloads]
    for picture, outcome in zip(pictures, outcomes, strict=True):
        if isinstance(outcome, BaseException) and not isinstance(
            outcome, AnonymizerError | DeadlineExceededError | TooSlowError
        ):
            logger.warning("chat %s: picture failed: %s", picture.message.chat.id, type(outcome).__name__)
    return outcomes


async def reply_picture(
    anchor: Message, picture: Picture, result: Result, caption: str, keyboard: InlineKeyboardMarkup | None
) -> Message:
    """One result in reply to `anchor`, as a photo or as a file (sent_as_file)."""
    upload = result_upload(picture.file_name, result)
    if sent_as_file(picture.as_document, result):
        return await anchor.reply_document(upload, caption=caption, reply_markup=keyboard)
    return await anchor.reply_photo(upload, caption=caption, reply_markup=keyboard)


def original_of(request: RequestContext, picture: Picture, result: Result | None, strict: bool) -> Original:
    """What is remembered of a result: its original, and the faces found on it for the user's choice."""
    faces = tuple(result.detections) if result is not None else ()
    return Original(
        request.user_id,
        picture.file_id,
        picture.as_document,
        picture.file_size,
        picture.pixels,
        picture.file_name,
        strict,
        faces,
        second_looks=int(strict),
    )


async def remember(request: RequestContext, sent: Message, original: Original) -> None:
    """Which original a result came from, for "Look harder", /strict, "Choose faces" and the editor on the result. A
    store that is down only costs the user those buttons: the answer itself has gone out.

    The editor's button names the result's message, known only once it is sent, so it is added to the result's
    buttons then (an album's pictures carry none: their editor buttons are in the album's own message)."""
    try:
        await request.originals.remember(sent.chat.id, sent.message_id, original)
    except (RedisError, OSError) as error:
        logger.warning("chat %s: result not remembered for a second look (%s)", sent.chat.id, type(error).__name__)
        return
    link = editor_link(request.settings, sent.chat.id, sent.message_id, original)
    if link is None or not original.faces or original.album:
        return
    try:
        await sent.edit_reply_markup(reply_markup=result_keyboard(request.texts, original, link))
    except TelegramBadRequest as error:  # the user deleted it meanwhile: nothing to edit
        logger.info("chat %s: editor not offered: %s", sent.chat.id, error.message)


async def reply_one(picture: Picture, outcome: Result | BaseException, request: RequestContext, strict: bool) -> None:
    """One picture's answer, with its buttons: a second look after a first, a choice of faces when some were
    found."""
    message, texts = picture.message, request.texts
    if isinstance(outcome, BaseException):
        await message.reply(error_text(outcome, request.settings, texts))
        return
    original = original_of(request, picture, outcome, strict)
    keyboard = result_keyboard(texts, original)
    if not outcome.detections:
        sent = await message.reply(texts.strict_no_face if strict else texts.no_face, reply_markup=keyboard)
    else:
        covered = texts.strict_covered if strict else texts.faces_covered
        caption = "\n".join([covered.format(count=len(outcome.detections)), *format_note(outcome, texts)])
        sent = await reply_picture(message, picture, outcome, caption, keyboard)
    await remember(request, sent, original)


async def reply_album(
    anchor: Message,
    pictures: list[tuple[int, Picture]],
    outcomes: list[Result | BaseException],
    refused: list[tuple[int, str]],
    request: RequestContext,
) -> None:
    """One album back in the original order, its caption naming unchanged and failed pictures. An album carries
    no button, so its caption says how to ask for a second look, and each picture's original is remembered."""
    texts = request.texts
    done = [
        (position, picture, outcome)
        for (position, picture), outcome in zip(pictures, outcomes, strict=True)
        if isinstance(outcome, Result)
    ]
    failed = refused + [
        (position, error_text(outcome, request.settings, texts))
        for (position, _), outcome in zip(pictures, outcomes, strict=True)
        if isinstance(outcome, BaseException)
    ]
    notes = [
        texts.album_partly_failed.format(positions=_positions([p for p, _ in failed]), reason=reason)
        for reason in dict.fromkeys(reason for _, reason in failed)
    ]
    faces = sum(len(outcome.detections) for _, _, outcome in done)
    if not faces:
        await anchor.reply("\n".join(([texts.album_no_face] if done else []) + notes))
        return
    unchanged = [position for position, _, outcome in done if not outcome.detections]
    caption = "\n".join(
        [
            texts.faces_covered.format(count=faces),
            *([texts.album_unchanged.format(positions=_positions(unchanged))] if unchanged else []),
            *notes,
            *dict.fromkeys(note for _, _, outcome in done for note in format_note(outcome, texts)),
            texts.album_strict_hint,
        ]
    )
    if len(done) == 1:
        _, picture, outcome = done[0]
        original = original_of(request, picture, outcome, strict=False)
        keyboard = result_keyboard(texts, original)
        sent = await reply_picture(anchor, picture, outcome, caption, keyboard)
        await remember(request, sent, original)
        return
    as_documents = any(sent_as_file(picture.as_document, outcome) for _, picture, outcome in done)
    media: list[MediaUnion] = [
        (InputMediaDocument if as_documents else InputMediaPhoto)(
            media=result_upload(picture.file_name, outcome), caption=caption if index == 0 else None
        )
        for index, (_, picture, outcome) in enumerate(done)
    ]
    sent_album = await anchor.reply_media_group(media=media)
    with_faces = tuple(
        (index, sent.message_id)
        for index, (sent, (_, _, outcome)) in enumerate(zip(sent_album, done, strict=False), 1)
        if outcome.detections
    )
    remembered = [
        replace(original_of(request, picture, outcome, False), album=with_faces) for _, picture, outcome in done
    ]
    for sent, original in zip(sent_album, remembered, strict=False):
        await remember(request, sent, original)
    if with_faces:
        keyboard = album_keyboard(texts, request.settings, anchor.chat.id, remembered[0])
        await sent_album[0].reply(texts.choose_in_album, reply_markup=keyboard)


def _positions(positions: list[int]) -> str:
    return ", ".join(str(position) for position in sorted(positions))


async def handle_request(messages: list[Message], request: RequestContext) -> None:
    """Answer one request (a photo, a file, or an album of them) exactly once."""
    texts, settings = request.texts, request.settings
    accepted: list[tuple[int, Picture]] = []
    refused: list[tuple[int, str]] = []
    for position, message in enumerate(messages, start=1):
        picture = picture_of(message)
        if picture is None:
            refused.append((position, texts.video_in_album if clip_of(message) else texts.unsupported))
        elif (reason := picture_refusal(picture, settings, texts)) is not None:
            refused.append((position, reason))
        else:
            accepted.append((position, picture))
    if not accepted:
        reasons = dict.fromkeys(reason for _, reason in refused)
        await messages[0].reply(refused[0][1] if len(messages) == 1 else "\n".join(reasons))
        return
    await serve_pictures(messages[0], accepted, refused, request, album=len(messages) > 1)


async def serve_pictures(
    anchor: Message,
    accepted: list[tuple[int, Picture]],
    refused: list[tuple[int, str]],
    request: RequestContext,
    *,
    album: bool = False,
    strict: bool = False,
) -> None:
    """Admit, download, anonymize and answer pictures that passed the metadata checks (a second look: `strict`),
    replying to `anchor`."""
    settings = request.settings
    deadline = request.received_at + settings.deadline_seconds
    action = "upload_document" if all(picture.as_document for _, picture in accepted) else "upload_photo"
    started = time.monotonic()
    try:
        estimates = [request.jobs.estimate_seconds(picture.job_size(strict)) for _, picture in accepted]
        async with (
            request.jobs.admission(request.user_id, estimates, deadline) as ticket,
            ChatActionSender(bot=request.bot, chat_id=anchor.chat.id, action=action),
        ):
            pictures = [picture for _, picture in accepted]
            outcomes = await anonymize_pictures(pictures, request, ticket, deadline, strict)
            if album:
                await reply_album(anchor, accepted, outcomes, refused, request)
            else:
                await reply_one(accepted[0][1], outcomes[0], request, strict)
    except (BusyError, UnavailableError, DeadlineExceededError) as error:
        if isinstance(error, DeadlineExceededError):
            waited = time.monotonic() - request.received_at
            logger.warning("chat %s: deadline passed after %.1f s", anchor.chat.id, waited)
        text, outcome = refusal(error, settings, request.texts)
        await anchor.reply(text)
    else:
        outcome = "result" if any(isinstance(item, Result) for item in outcomes) else "error"
        logger.info(
            "chat %s: %d picture(s)%s answered in %.2f s",
            anchor.chat.id,
            len(accepted),
            " (second look)" if strict else "",
            time.monotonic() - started,
        )
    metrics.REQUESTS.labels(outcome).inc()
    metrics.REPLY_SECONDS.observe(time.monotonic() - request.received_at)


def is_picture(message: Message) -> bool:
    return picture_of(message) is not None


def create_router(settings: BotSettings) -> Router:
    router = Router(name="images")
    router.message.outer_middleware(AlbumMiddleware(settings.album_window_seconds))

    @router.message(F.media_group_id)
    async def album(message: Message, album: list[Message], request: RequestContext) -> None:
        await handle_request(album, request)

    @router.message(is_picture)
    async def single(message: Message, request: RequestContext) -> None:
        await handle_request([message], request)

    return router

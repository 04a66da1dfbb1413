"""The buttons under results: a second look, choosing faces, the Mini App editor, and the chooser's own keyboard.

A button names the result it acts on by its message id (`result`); 0 means the message the button is under. An
album's pictures cannot carry buttons, so their chooser lives in a message of its own that names each picture. The
editor's button opens a page whose address names the result by its chat and message (bot.miniapp checks both).
"""

from __future__ import annotations

from enum import StrEnum
from urllib.parse import urlencode

from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup, WebAppInfo
from aiogram.utils.keyboard import InlineKeyboardBuilder

from bot.originals import Original
from bot.settings import BotSettings
from bot.texts import Texts

# A crowd's faces come a page at a time: Telegram shows at most 100 buttons, and a phone a few rows of them.
FACES_PER_PAGE = 20
FACES_PER_ROW = 5
# An album's editor buttons carry a word besides the number, so fewer fit in a row.
EDITORS_PER_ROW = 3
COVERED, SHOWN = "✓", "○"


class SecondLook(CallbackData, prefix="look"):
    """The "Look harder" button under a result; which original it means is remembered by the result's message."""


class ChooseFaces(CallbackData, prefix="choose"):
    result: int = 0


class Pick(StrEnum):
    """What a button of the chooser does."""

    TOGGLE = "t"
    PAGE = "p"
    COVER_ALL = "c"
    SHOW_ALL = "s"
    DONE = "d"


class FaceChoice(CallbackData, prefix="face"):
    """A press in the chooser of a result: what it does, to which face (TOGGLE), on which page it was made or which
    page it turns to (PAGE)."""

    result: int
    pick: Pick
    number: int = 0
    page: int = 0


def rows_of(count: int, per_row: int) -> list[int]:
    """Row sizes for `count` buttons, `per_row` a row: a short last row is not filled up with the next buttons."""
    return [per_row] * (count // per_row) + ([count % per_row] if count % per_row else [])


def editor_link(settings: BotSettings, chat_id: int, result_id: int, original: Original) -> str | None:
    """The Mini App's address for one result, when the operator serves it (WEBAPP_URL) and the result is in its
    sender's private chat with the bot: Telegram accepts `web_app` buttons only there, and refuses the whole message
    that carries one anywhere else (a group), so a group's results have no such button."""
    if settings.webapp_url is None or chat_id != original.user_id:
        return None
    return f"{settings.webapp_url}?{urlencode({'chat': chat_id, 'message': result_id})}"


def result_keyboard(texts: Texts, original: Original, editor: str | None = None) -> InlineKeyboardMarkup | None:
    """Under a result: a second look after a first one, a choice of faces wherever faces were found, and beside it
    the editor at `editor` (bot.miniapp), once the result's message is known."""
    rows = []
    if not original.strict:
        rows.append([InlineKeyboardButton(text=texts.look_harder, callback_data=SecondLook().pack())])
    if original.faces:
        row = [InlineKeyboardButton(text=texts.choose_faces, callback_data=ChooseFaces().pack())]
        if editor is not None:
            row.append(InlineKeyboardButton(text=texts.edit, web_app=WebAppInfo(url=editor)))
        rows.append(row)
    return InlineKeyboardMarkup(inline_keyboard=rows) if rows else None


def album_keyboard(texts: Texts, settings: BotSettings, chat_id: int, original: Original) -> InlineKeyboardMarkup:
    """The album's own message, for any of its pictures' `original`: one button per picture with faces (its place
    in the album, and the message it is), then one editor button per such picture where the editor is offered."""
    builder = InlineKeyboardBuilder()
    for position, message_id in original.album:
        builder.button(text=str(position), callback_data=ChooseFaces(result=message_id))
    editors = 0
    for position, message_id in original.album:
        if (link := editor_link(settings, chat_id, message_id, original)) is not None:
            builder.button(text=f"{texts.edit} {position}", web_app=WebAppInfo(url=link))
            editors += 1
    builder.adjust(*rows_of(len(original.album), FACES_PER_ROW), *rows_of(editors, EDITORS_PER_ROW))
    return builder.as_markup()


def chooser_keyboard(texts: Texts, result: int, original: Original, page: int) -> InlineKeyboardMarkup:
    """One button per face of this page, showing whether it is covered (✓) or shown (○); pages for a crowd."""
    builder = InlineKeyboardBuilder()
    first = page * FACES_PER_PAGE + 1
    last = min(len(original.faces), first + FACES_PER_PAGE - 1)
    for number in range(first, last + 1):
        state = SHOWN if number in original.shown else COVERED
        builder.button(
            text=f"{number} {state}",
            callback_data=FaceChoice(result=result, pick=Pick.TOGGLE, number=number, page=page),
        )
    sizes = rows_of(last - first + 1, FACES_PER_ROW)
    if page > 0:
        builder.button(text="‹", callback_data=FaceChoice(result=result, pick=Pick.PAGE, page=page - 1))
    if last < len(original.faces):
        builder.button(text="›", callback_data=FaceChoice(result=result, pick=Pick.PAGE, page=page + 1))
    sizes.append((page > 0) + (last < len(original.faces)))
    builder.button(text=texts.cover_all, callback_data=FaceChoice(result=result, pick=Pick.COVER_ALL, page=page))
    builder.button(text=texts.show_all, callback_data=FaceChoice(result=result, pick=Pick.SHOW_ALL, page=page))
    builder.button(text=texts.choose_done, callback_data=FaceChoice(result=result, pick=Pick.DONE))
    builder.adjust(*[size for size in sizes if size], 2, 1)
    return builder.as_markup()

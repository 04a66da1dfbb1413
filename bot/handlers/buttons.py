"""The buttons under results: a second look, choosing faces, and the chooser's own keyboard.

A button names the result it acts on by its message id (`result`); 0 means the message the button is under. An
album's pictures cannot carry buttons, so their chooser lives in a message of its own that names each picture.
"""

from __future__ import annotations

from collections.abc import Sequence

from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup
from aiogram.utils.keyboard import InlineKeyboardBuilder

from bot.originals import Original
from bot.texts import Texts

# A crowd's faces come a page at a time: Telegram shows at most 100 buttons, and a phone a few rows of them.
FACES_PER_PAGE = 20
FACES_PER_ROW = 5
COVERED, SHOWN = "✓", "○"


class SecondLook(CallbackData, prefix="look"):
    """The "Look harder" button under a result; which original it means is remembered by the result's message."""


class ChooseFaces(CallbackData, prefix="choose"):
    result: int = 0


class FaceToggle(CallbackData, prefix="face"):
    result: int
    number: int
    page: int


class FacePage(CallbackData, prefix="fpage"):
    result: int
    page: int


class FacesAll(CallbackData, prefix="fall"):
    result: int
    show: bool
    page: int


class FacesDone(CallbackData, prefix="fdone"):
    result: int


def result_keyboard(texts: Texts, original: Original) -> InlineKeyboardMarkup | None:
    """Under a result: a second look after a first one, a choice of faces wherever faces were found."""
    rows = []
    if not original.strict:
        rows.append([InlineKeyboardButton(text=texts.look_harder, callback_data=SecondLook().pack())])
    if original.faces:
        rows.append([InlineKeyboardButton(text=texts.choose_faces, callback_data=ChooseFaces().pack())])
    return InlineKeyboardMarkup(inline_keyboard=rows) if rows else None


def album_keyboard(pictures: Sequence[tuple[int, int]]) -> InlineKeyboardMarkup:
    """One button per picture with faces: its place in the album, and the message it is."""
    builder = InlineKeyboardBuilder()
    for position, message_id in pictures:
        builder.button(text=str(position), callback_data=ChooseFaces(result=message_id))
    builder.adjust(FACES_PER_ROW)
    return builder.as_markup()


def chooser_keyboard(texts: Texts, result: int, original: Original, page: int) -> InlineKeyboardMarkup:
    """One button per face of this page, showing whether it is covered (✓) or shown (○); pages for a crowd."""
    builder = InlineKeyboardBuilder()
    first = page * FACES_PER_PAGE + 1
    last = min(len(original.faces), first + FACES_PER_PAGE - 1)
    for number in range(first, last + 1):
        state = SHOWN if number in original.shown else COVERED
        builder.button(text=f"{number} {state}", callback_data=FaceToggle(result=result, number=number, page=page))
    on_page = last - first + 1
    sizes = [FACES_PER_ROW] * (on_page // FACES_PER_ROW) + [on_page % FACES_PER_ROW]
    if page > 0:
        builder.button(text="‹", callback_data=FacePage(result=result, page=page - 1))
    if last < len(original.faces):
        builder.button(text="›", callback_data=FacePage(result=result, page=page + 1))
    sizes.append((page > 0) + (last < len(original.faces)))
    builder.button(text=texts.cover_all, callback_data=FacesAll(result=result, show=False, page=page))
    builder.button(text=texts.show_all, callback_data=FacesAll(result=result, show=True, page=page))
    builder.button(text=texts.choose_done, callback_data=FacesDone(result=result))
    builder.adjust(*[size for size in sizes if size], 2, 1)
    return builder.as_markup()

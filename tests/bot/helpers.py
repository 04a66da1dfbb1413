"""Helpers for the bot's tests: settings pointing at the fake server, the running bot, the replies decoded. What the
benchmarks share with the tests (the fake server, its token, the image encoders) lives in `testing`."""

from __future__ import annotations

import io
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import cv2
import numpy as np
from PIL import Image

from anonymizer import reading_order
from bot.settings import BotSettings
from bot.texts import ENGLISH
from detectors import Detection
from testing.bots import RunningBot
from testing.fake_telegram import TOKEN, Call, FakeTelegramServer, FakeUser
from testing.images import Box, astronaut_bgr, composite

TEST_WORKERS = 2


StartBot = Callable[..., Awaitable[RunningBot]]


def bot_settings(server: FakeTelegramServer, **overrides: Any) -> BotSettings:
    """Settings as the environment would give them, pointing at the fake server; no `.env` is read."""
    return bot_settings_for(TOKEN, telegram_api_url=server.base_url, **overrides)


def bot_settings_for(token: str, **overrides: Any) -> BotSettings:
    values: dict[str, Any] = {"bot_token": token, "workers": TEST_WORKERS, "album_window_seconds": 0.3, **overrides}
    return BotSettings(_env_file=None, **values)


def decode(data: bytes) -> np.ndarray:
    """Bytes the bot sent back, as BGR pixels."""
    pixels = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert pixels is not None, "the bot sent something that is not an image"
    return pixels


def pil_image(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


# Small pictures, one per user, for the tests that check nobody gets another user's result.
SIZE = (320, 240)


def user_photos(count: int) -> list[tuple[np.ndarray, list[Box]]]:
    """A different small picture per user: its face elsewhere, its background another shade."""
    width, height = SIZE
    return [
        composite(SIZE, [(10 + (index * 37) % (width - 110), 10 + (index * 23) % (height - 110), 90)], 30 + 4 * index)
        for index in range(count)
    ]


def kept_well_away(boxes: list[Box], shape: tuple[int, ...]) -> np.ndarray:
    keep = np.ones(shape[:2], bool)
    for box in boxes:
        mx, my = int(box.w * 0.6), int(box.h * 0.6)
        keep[max(0, box.y - my) : box.y + box.h + my, max(0, box.x - mx) : box.x + box.w + mx] = False
    return keep


def is_own_picture(result: np.ndarray, image: np.ndarray, boxes: list[Box]) -> bool:
    """Away from its faces a result is its photo unchanged, and every user's photo differs there."""
    keep = kept_well_away(boxes, image.shape)
    return float(np.abs(result.astype(np.int16) - image.astype(np.int16)).mean(axis=2)[keep].mean()) < 4


# -- choosing faces: what only painting changes over a face box (mean per pixel), and what a JPEG round trip stays
# under; the buttons pressed as a user presses them.
PAINTED, UNCHANGED = 25, 6


def numbered(boxes: list[Box]) -> list[Box]:
    """The true boxes in the chooser's numbering."""
    order = reading_order([Detection(b.x, b.y, b.w, b.h, 1.0, "truth") for b in boxes])
    return [Box(d.x, d.y, d.w, d.h) for d in order]


def change(before: np.ndarray, after: np.ndarray, box: Box) -> float:
    crop = (slice(box.y, box.y + box.h), slice(box.x, box.x + box.w))
    return float(np.abs(before[crop].astype(np.int16) - after[crop].astype(np.int16)).mean())


def away_from(boxes: list[Box], shape: tuple[int, ...]) -> np.ndarray:
    """Pixels well outside every face, which no choice may touch."""
    keep = np.ones(shape[:2], bool)
    for box in boxes:
        mx, my = box.w, box.h
        keep[max(0, box.y - my) : box.y + box.h + my, max(0, box.x - mx) : box.x + box.w + mx] = False
    return keep


def buttons(markup: dict[str, Any] | None) -> dict[str, str]:
    """A keyboard's buttons that call back: text to callback data."""
    rows = (markup or {}).get("inline_keyboard", [])
    return {button["text"]: button["callback_data"] for row in rows for button in row if "callback_data" in button}


def markup_of(call: Call) -> dict[str, Any] | None:
    markup = call.params.get("reply_markup")
    return markup if isinstance(markup, dict) else None


async def press(telegram: FakeTelegramServer, user: FakeUser, message: dict[str, Any], text: str, answer: str) -> Call:
    """Press the button labelled `text` under `message` (its keyboard as the bot last set it) and wait for the bot's
    call `answer` that follows."""
    before = len(telegram.calls)
    query_id = telegram.press_labelled(user, message, text)

    def follows(call: Call) -> bool:
        if telegram.calls.index(call) < before or call.method != answer:
            return False
        if answer == "answerCallbackQuery":
            return bool(call.params.get("callback_query_id") == query_id)
        return call.chat_id == message["chat"]["id"]

    (call,) = await telegram.wait_for(follows, timeout=30)
    return call


async def choose_and_show(
    telegram: FakeTelegramServer, user: FakeUser, result: dict[str, Any], number: int
) -> tuple[Call, Call, Call]:
    """Open the chooser under a result, show face `number`, press Done: the preview, the toggled keyboard and the
    final."""
    preview = await press(telegram, user, result, ENGLISH.choose_faces, "editMessageMedia")
    toggled = await press(telegram, user, result, f"{number} ✓", "editMessageReplyMarkup")
    final = await press(telegram, user, result, ENGLISH.choose_done, "editMessageMedia")
    return preview, toggled, final


# -- the Mini App editor: a portrait photo with three faces in a row and, below them, a mission patch with names on it,
# which no detector takes for a face: what a user covers by hand.
def patch_photo() -> tuple[np.ndarray, list[Box], Box]:
    """The photo, its faces' true boxes, and the patch's box."""
    image, boxes = composite((720, 960), [(30, 120, 110), (270, 105, 110), (510, 90, 110)], background=110)
    patch = cv2.resize(astronaut_bgr()[335:435, 115:225], None, fx=1.8, fy=1.8, interpolation=cv2.INTER_CUBIC)
    x, y = 260, 560
    image[y : y + patch.shape[0], x : x + patch.shape[1]] = patch
    return image, boxes, Box(x, y, patch.shape[1], patch.shape[0])


def web_app_urls(markup: dict[str, Any] | None) -> dict[str, str]:
    """A keyboard's Mini App buttons: text to the page's address."""
    rows = (markup or {}).get("inline_keyboard", [])
    return {button["text"]: button["web_app"]["url"] for row in rows for button in row if "web_app" in button}


def assert_chosen(
    image: np.ndarray,
    boxes: list[Box],
    picture: np.ndarray,
    shown: int,
    covered_too: Sequence[Box] = (),
    untouched: Sequence[Box] = (),
) -> None:
    """In the final `picture` of `image`: face `shown` (in the chooser's numbering) as it was, the other faces and
    the `covered_too` areas painted, the `untouched` areas and the rest of the photo unchanged."""
    for number, face in enumerate(numbered(boxes), 1):
        if number == shown:
            assert change(image, picture, face) < UNCHANGED, f"face {number} was not shown"
        else:
            assert change(image, picture, face) > PAINTED, f"face {number} was not covered"
    for area in covered_too:
        assert change(image, picture, area) > PAINTED, "an area drawn was not covered"
    for area in untouched:
        assert change(image, picture, area) < UNCHANGED, "an area deleted was painted"
    rest = away_from([*boxes, *covered_too, *untouched], image.shape)
    assert np.abs(picture[rest].astype(np.int16) - image[rest].astype(np.int16)).mean() < 3


def about(call: Call, method: str, message: dict[str, Any]) -> bool:
    """Whether `call` is `method` on `message`."""
    same = call.chat_id == message["chat"]["id"] and int(call.params.get("message_id", 0)) == message["message_id"]
    return call.method == method and same


async def editor_offered(telegram: FakeTelegramServer, result: dict[str, Any]) -> str:
    """The address the Edit button opens, once the bot added it under `result`."""
    (offered,) = await telegram.wait_for(lambda call: about(call, "editMessageReplyMarkup", result))
    return web_app_urls(markup_of(offered))[ENGLISH.edit]


async def final_picture(telegram: FakeTelegramServer, result: dict[str, Any]) -> Call:
    """The picture the bot put in place of `result`."""
    (final,) = await telegram.wait_for(lambda call: about(call, "editMessageMedia", result), timeout=30)
    return final

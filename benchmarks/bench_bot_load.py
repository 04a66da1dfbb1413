"""Ten users send the bot a photo at the same moment: time from each update to its reply.

    pytest benchmarks/bench_bot_load.py -q -s            # prints p50 / p95 / max and the answer counts

The real bot (dispatcher, HTTP session, worker processes: WORKERS, default one per CPU) is driven through the
fake Bot API server from the tests, over HTTP on 127.0.0.1. Each user sends a different 4000 x 3000 JPEG (astronaut
faces pasted on a textured canvas, 2-3 MB like a phone photo) as a file, which is how Telegram delivers a
full-resolution photo. The clock runs from the moment the update is handed to the fake server to the moment the
bot's reply reaches it. Fails if any user waits more than the 15 s budget, or does not get their own photo back
(no answer, "busy", an error, or another user's picture): ten users at once is the load the bot is sized for. Run twice:
with the photos upright, and stored sideways (turned a quarter, no EXIF tag), which the detector must first see are
turned (its turned looks), then search turned back.

The same ten photos sent as photos, as Telegram hands them to a bot (longest side 1280 px, JPEG 80), are the common
case: their answers are held to TELEGRAM_P95_S at the 95th percentile (in the full form; the short form, CI's, only
to the budget, as a loaded machine may be slower).
"""

from __future__ import annotations

import asyncio
import os
import time

import cv2
import numpy as np
import pytest

from benchmarks import variants
from benchmarks.measure import percentile, spread
from bot.pool import ProcessPool
from bot.settings import BotSettings
from bot.texts import ENGLISH
from testing.bots import run_embedded_bot
from testing.fake_telegram import TOKEN, FakeTelegramServer, FakeUser
from testing.images import composite, jpeg

USERS = 10
SIZE = (4000, 3000)
BUDGET_S = 15.0
# Ten users' Telegram photos at once: the 95th percentile of their answers (the issue's target on 2 cores).
TELEGRAM_P95_S = 2.0
FULL = os.environ.get("OVERLOAD", "full") != "short"
# Bursts of ten Telegram photos, one after another: fifty answers give the full form's 95th percentile a meaning.
TELEGRAM_ROUNDS = 5 if FULL else 1
# The canvas value that marks background pixels, to be replaced by texture.
PLAIN = 1


@pytest.fixture(scope="module")
def photos() -> list[bytes]:
    return phone_photos()


def phone_photos() -> list[bytes]:
    """Ten different 12 MP JPEGs of a phone camera's size (2-3 MB: a textured background, not a flat one),
    each with two faces in its own places."""
    width, height = SIZE
    rng = np.random.default_rng(12)
    coarse = cv2.GaussianBlur(rng.integers(0, 256, (height // 10, width // 10, 3), dtype=np.uint8), (0, 0), 1.5)
    texture = cv2.resize(coarse, SIZE, interpolation=cv2.INTER_CUBIC).astype(np.float32)
    grain = rng.normal(0, 6, (height, width, 3)).astype(np.float32)
    photos = []
    for index in range(USERS):
        faces = [(200 + 300 * index, 400, 300), (width // 2 + 100 * index, height // 2, 450)]
        image, _ = composite(SIZE, faces, background=PLAIN)
        background = (image == PLAIN).all(axis=2)
        shifted = np.roll(texture, 97 * index, axis=1)[background]
        image[background] = np.clip(0.5 * shifted + 35 + 5 * index + grain[background], 0, 255).astype(np.uint8)
        photos.append(jpeg(image, quality=90))
    return photos


def thumbnail(data: bytes) -> np.ndarray:
    """A small grey copy, enough to tell the ten photos apart (their textures and faces' places differ)."""
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_REDUCED_GRAYSCALE_8)
    return cv2.resize(image, (160, 120), interpolation=cv2.INTER_AREA).astype(np.float32)


def whose(result: bytes, sent: list[bytes]) -> int:
    """The index of the sent photo the result was made from: the one it differs least from."""
    small = thumbnail(result)
    return int(np.argmin([np.abs(small - thumbnail(data)).mean() for data in sent]))


async def ten_users_at_once(pool: ProcessPool, photos: list[bytes], as_photos: bool = False) -> dict[str, list[float]]:
    """Seconds from update to reply per user, split by kind of answer; a result made from another user's photo is
    "mixed up". ``as_photos`` sends them as Telegram photos, not as files."""
    async with FakeTelegramServer(TOKEN) as telegram:
        settings = BotSettings(_env_file=None, bot_token=TOKEN, telegram_api_url=telegram.base_url, workers=pool.size)
        running = run_embedded_bot(settings, pool)
        try:
            await telegram.wait_for(lambda call: call.method == "deleteWebhook", timeout=30)
            sent = []
            for index, data in enumerate(photos):
                user = FakeUser(5000 + index, f"User{index}", "en")
                started = time.monotonic()
                if as_photos:
                    sent.append((started, telegram.send_photo(user, data)))
                else:
                    sent.append(
                        (started, telegram.send_document(user, data, file_name=f"{index}.jpg", mime_type="image/jpeg"))
                    )
            replies = await asyncio.gather(
                *(telegram.reply_to(message, timeout=BUDGET_S * 3) for _, message in sent), return_exceptions=True
            )
        finally:
            await running.stop()
    seconds: dict[str, list[float]] = {"result": [], "mixed_up": [], "busy": [], "late": [], "error": [], "lost": []}
    busy_prefix = ENGLISH.busy.split("{")[0]
    for index, ((started, _), reply) in enumerate(zip(sent, replies, strict=True)):
        if isinstance(reply, BaseException):
            seconds["lost"].append(float("inf"))
        elif reply.method in ("sendDocument", "sendPhoto"):
            own = whose(reply.file("document" if reply.method == "sendDocument" else "photo").data, photos) == index
            seconds["result" if own else "mixed_up"].append(reply.at - started)
        elif reply.text.startswith(busy_prefix):
            seconds["busy"].append(reply.at - started)
        elif reply.text == ENGLISH.timeout:
            seconds["late"].append(reply.at - started)
        else:
            seconds["error"].append(reply.at - started)
    return seconds


def stored_sideways(data: bytes) -> bytes:
    """The same photo turned a quarter with no EXIF orientation tag, as a camera without a tilt sensor stores it."""
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    return jpeg(cv2.rotate(image, cv2.ROTATE_90_CLOCKWISE), quality=90)


def telegram_photos(photos: list[bytes]) -> list[bytes]:
    """The phone photos as the Bot API hands them to a bot when they are sent as photos."""
    none = np.empty((0, 4))
    decoded = (cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) for data in photos)
    return [next(variants.telegram("photo", image, none, none)).data for image in decoded]


def checked(outcome: dict[str, list[float]], sent: int, pool: ProcessPool, benchmark, title: str) -> list[float]:
    """The figures of ``outcome`` printed and attached to the benchmark; asserted: each of the ``sent`` photos came
    back to its own user within the budget. The seconds of every answer."""
    answered = [value for kind in ("result", "mixed_up", "busy", "late", "error") for value in outcome[kind]]
    figures: dict[str, float | int | None] = {
        "workers": pool.size,
        "results": len(outcome["result"]),
        "mixed_up": len(outcome["mixed_up"]),
        "busy": len(outcome["busy"]),
        "late": len(outcome["late"]),
        "errors": len(outcome["error"]),
        "lost": len(outcome["lost"]),
    }
    for name, values in (("answer", answered), ("result", outcome["result"]), ("busy", outcome["busy"])):
        figures.update(spread(name, values))
    benchmark.extra_info.update(figures)
    print(f"\n{title}: {figures}")
    assert not outcome["lost"], "a user got no answer"
    assert not outcome["mixed_up"], "a user got another user's picture back"
    assert len(outcome["result"]) == sent, f"{sent - len(outcome['result'])} photo(s) got no result: {figures}"
    assert max(answered) <= BUDGET_S, f"the slowest answer took {max(answered):.1f} s"
    return answered


@pytest.mark.parametrize("stored", ["upright", "sideways"])
def test_ten_users_with_12mp_photos(benchmark, pool: ProcessPool, photos: list[bytes], stored: str) -> None:
    sent = [stored_sideways(data) for data in photos] if stored == "sideways" else photos
    outcome = benchmark.pedantic(lambda: asyncio.run(ten_users_at_once(pool, sent)), rounds=1, iterations=1)
    checked(outcome, USERS, pool, benchmark, f"10 users x 12 MP, {stored}")


def test_ten_users_with_telegram_photos(benchmark, pool: ProcessPool, photos: list[bytes]) -> None:
    sent = telegram_photos(photos)
    outcomes = benchmark.pedantic(
        lambda: [asyncio.run(ten_users_at_once(pool, sent, as_photos=True)) for _ in range(TELEGRAM_ROUNDS)],
        rounds=1,
        iterations=1,
    )
    merged = {kind: [value for outcome in outcomes for value in outcome[kind]] for kind in outcomes[0]}
    title = f"{TELEGRAM_ROUNDS} x 10 users x Telegram photos (1280 px)"
    answered = checked(merged, USERS * TELEGRAM_ROUNDS, pool, benchmark, title)
    if FULL:
        p95 = percentile(answered, 0.95)
        assert p95 <= TELEGRAM_P95_S, f"ten users' Telegram photos: p95 {p95:.2f} s, target {TELEGRAM_P95_S} s"

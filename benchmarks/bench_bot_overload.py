"""Overload: 50 users each sending bursts of 12 MP photos to the bot at once. Counts every answer by kind, the time
from each update to its answer, and the bot's peak memory.

    pytest benchmarks/bench_bot_overload.py -q -s                      # full: 50 users x 2 bursts x 3 photos, 12 MP
    OVERLOAD=short pytest benchmarks/bench_bot_overload.py -q -s       # short: 10 users x 1 burst x 2 photos, 3 MP

The real bot (dispatcher, HTTP session, WORKERS worker processes, default one per CPU) is driven through the fake
Bot API server from the tests over HTTP on 127.0.0.1. Half the users send their photos as photos (the bot knows the
pixel count before downloading), half as files (it knows only the byte size), which are the two ways admission
control estimates the work. A burst is BURST photos from every user at the same moment; bursts follow each other
every BURST_INTERVAL_S seconds whether or not the previous one was answered.

Each answer is a result, "busy" (refused at once by admission control), "late" (the apology sent when the 15 s
deadline passed: admission misjudged the machine's speed), or an error; "lost" is an update with no answer at all.
Fails if any update is lost or answered twice, answered late or with an error (admission must refuse at once what it
cannot finish in time), if any answer takes longer than the 15 s budget, if memory grows past the bound below, or if
the bot does not answer a photo normally after the storm.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from typing import Any

import cv2
import numpy as np
import psutil
import pytest

from benchmarks.bench_bot_load import phone_photos
from benchmarks.measure import spread
from bot.pool import ProcessPool
from bot.settings import BotSettings
from bot.texts import ENGLISH
from testing.bots import run_embedded_bot
from testing.fake_telegram import TOKEN, Call, FakeTelegramServer, FakeUser
from testing.fake_telegram.server import thumbnail_of
from testing.images import jpeg

FULL = os.environ.get("OVERLOAD", "full") != "short"
USERS = 50 if FULL else 10
BURSTS = 2 if FULL else 1
BURST = 3 if FULL else 2
SIZE = (4000, 3000) if FULL else (2000, 1500)
BURST_INTERVAL_S = 8.0
BUDGET_S = 15.0
MB = 1024 * 1024
BUSY_PREFIX = ENGLISH.busy.split("{")[0]


def memory_bound(settings: BotSettings, photo_bytes: int, pixels: int) -> int:
    """How much the bot's processes may grow, beyond the results the fake server (same process) keeps.

    The bot holds at most `queue_limit` admitted images at once, each as downloaded bytes, the copy pickled to a
    worker and its encoded result (3 copies of ~photo_bytes). Each worker works on one image at a time; measured
    with the default detectors (union of two CNNs): a 3 MP job raises a worker's RSS by ~110 MB and a 12 MP job by
    ~135 MB, so 128 MB of working buffers plus 24 bytes per pixel (twice the ~11 measured, for the allocator keeping
    freed blocks). 100 MB more covers aiohttp's buffers and every user's update objects. A bot that queued work
    instead of refusing it, or kept images after answering, would go past this.
    """
    per_worker = 128 * MB + 24 * pixels
    return settings.queue_limit * 3 * photo_bytes + settings.workers * per_worker + 100 * MB


class MemoryPeak:
    """The RSS of this process plus the pool's workers, sampled every 50 ms on a thread."""

    def __init__(self, pool: ProcessPool) -> None:
        self.pool = pool
        self.baseline = self.total()
        self.peak = self.baseline
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def total(self) -> int:
        size = 0
        for pid in [os.getpid(), *self.pool.worker_pids()]:
            try:
                size += psutil.Process(pid).memory_info().rss
            except psutil.NoSuchProcess:
                continue
        return size

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.total())
            self._stop.wait(0.05)

    def __enter__(self) -> MemoryPeak:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()


@pytest.fixture(scope="module")
def photos() -> list[tuple[bytes, bytes]]:
    """Ten different phone-like JPEGs of SIZE with their Telegram thumbnails."""
    originals = phone_photos()
    if not FULL:
        originals = [
            jpeg(cv2.resize(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR), SIZE), quality=90)
            for data in originals
        ]
    return [(data, thumbnail_of(data)) for data in originals]


def kind_of(reply: Call) -> str:
    if reply.method in ("sendPhoto", "sendDocument"):
        return "result"
    if reply.text.startswith(BUSY_PREFIX):
        return "busy"
    return "late" if reply.text == ENGLISH.timeout else "error"


def send(telegram: FakeTelegramServer, user: FakeUser, index: int, photo: tuple[bytes, bytes]) -> dict[str, Any]:
    data, thumbnail = photo
    if index % 2:
        return telegram.send_document(user, data, file_name=f"{index}.jpg", mime_type="image/jpeg")
    return telegram.send_photo(user, data, size=SIZE, thumbnail=thumbnail)


async def storm(pool: ProcessPool, photos: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    """Run the bursts; the answers by kind with their seconds, the memory figures, and the answer after the storm."""
    async with FakeTelegramServer(TOKEN) as telegram:
        settings = BotSettings(_env_file=None, bot_token=TOKEN, telegram_api_url=telegram.base_url, workers=pool.size)
        running = run_embedded_bot(settings, pool)
        users = [FakeUser(9000 + index, f"User{index}", "en") for index in range(USERS)]
        sent: list[tuple[float, dict[str, Any]]] = []
        try:
            await telegram.wait_for(lambda call: call.method == "deleteWebhook", timeout=30)
            with MemoryPeak(pool) as memory:
                waiting = []
                for burst in range(BURSTS):
                    if burst:
                        await asyncio.sleep(BURST_INTERVAL_S)
                    for _ in range(BURST):
                        for index, user in enumerate(users):
                            sent.append((time.monotonic(), send(telegram, user, index, photos[index % len(photos)])))
                    waiting += [
                        asyncio.ensure_future(telegram.reply_to(message, timeout=BUDGET_S * 3))
                        for _, message in sent[len(waiting) :]
                    ]
                replies = await asyncio.gather(*waiting, return_exceptions=True)
            await asyncio.sleep(1.0)
            answers_per_chat = [len(telegram.answers_in(user.id)) for user in users]
            held = sum(len(upload.data) for call in telegram.calls for upload in call.files.values())
            after = await telegram.reply_to(send(telegram, users[0], 0, photos[0]), timeout=BUDGET_S * 2)
        finally:
            await running.stop()
    seconds: dict[str, list[float]] = {"result": [], "busy": [], "late": [], "error": [], "lost": []}
    for (started, _), reply in zip(sent, replies, strict=True):
        if isinstance(reply, BaseException):
            seconds["lost"].append(float("inf"))
        else:
            seconds[kind_of(reply)].append(reply.at - started)
    return {
        "seconds": seconds,
        "answers_per_chat": answers_per_chat,
        "baseline": memory.baseline,
        "peak": memory.peak,
        "held_uploads": held,
        "after": kind_of(after),
        "bound": memory_bound(settings, max(len(data) for data, _ in photos), SIZE[0] * SIZE[1]),
    }


def test_fifty_users_bursting_12mp_photos(benchmark, pool: ProcessPool, photos: list[tuple[bytes, bytes]]) -> None:
    outcome = benchmark.pedantic(lambda: asyncio.run(storm(pool, photos)), rounds=1, iterations=1)

    seconds = outcome["seconds"]
    answered = [value for kind in ("result", "busy", "late", "error") for value in seconds[kind]]
    growth = outcome["peak"] - outcome["baseline"] - outcome["held_uploads"]
    figures: dict[str, Any] = {
        "form": "full" if FULL else "short",
        "workers": pool.size,
        "updates": USERS * BURSTS * BURST,
        **{kind: len(values) for kind, values in seconds.items()},
        "baseline_mb": round(outcome["baseline"] / MB),
        "peak_mb": round(outcome["peak"] / MB),
        "results_held_by_fake_server_mb": round(outcome["held_uploads"] / MB),
        "growth_mb": round(growth / MB),
        "bound_mb": round(outcome["bound"] / MB),
        "after_storm": outcome["after"],
    }
    for kind, values in (("answer", answered), ("result", seconds["result"]), ("busy", seconds["busy"])):
        figures.update(spread(kind, values))
    benchmark.extra_info.update(figures)
    print(f"\n{USERS} users x {BURSTS} bursts x {BURST} photos of {SIZE[0]}x{SIZE[1]}: {figures}")
    assert not seconds["lost"], "an update got no answer"
    assert outcome["answers_per_chat"] == [BURSTS * BURST] * USERS, "an update was answered twice"
    assert not seconds["late"], f"{len(seconds['late'])} late apologies: admission let in more than fits the deadline"
    assert not seconds["error"], f"{len(seconds['error'])} update(s) answered with an error"
    assert max(answered) <= BUDGET_S, f"the slowest answer took {max(answered):.1f} s"
    assert growth <= outcome["bound"], f"memory grew by {growth / MB:.0f} MB"
    assert outcome["after"] == "result", "the bot did not answer normally after the storm"

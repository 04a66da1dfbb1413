"""Overload in CI's short form: 50 users sending bursts, and one user flooding. Everyone gets an answer within the
15 s budget (a result or an immediate "busy"), memory stays bounded, and the bot answers normally afterwards.

The full form, with 12 MP photos and the figures, is benchmarks/bench_bot_overload.py.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psutil

from bot.pool import ProcessPool
from bot.texts import ENGLISH
from testing.fake_telegram import Call, FakeTelegramServer, FakeUser
from testing.hostile import flat_png
from testing.images import jpeg
from tests.bot.helpers import RunningBot, decode, is_own_picture, user_photos

BUDGET_S = 15.0
USERS = 50
BURST = 3
BUSY_PREFIX = ENGLISH.busy.split("{")[0]
# How much the bot's processes (this one, which also hosts the fake server, and the workers) may grow during the
# burst. Each of the 150 small photos is ~10 KB as input and as result, and at most `queue_limit` (40) images are
# admitted at a time; a worker decodes one 0.08 MP image at a time (a few MB with the detectors' buffers). Even
# with every byte copied ten times that is under 40 MB; 150 MB more is room for allocator slack and aiohttp's
# buffers. A bot that queued work instead of refusing it, or kept images after answering, would cross it.
MEMORY_GROWTH_LIMIT = 150 * 1024 * 1024


@contextmanager
def peak_memory(pool: ProcessPool) -> Iterator[dict[str, int]]:
    """Sample the RSS of this process plus the pool's workers every 50 ms; yields {"baseline", "peak"}."""

    def total() -> int:
        pids = [psutil.Process().pid, *pool.worker_pids()]
        size = 0
        for pid in pids:
            try:
                size += psutil.Process(pid).memory_info().rss
            except psutil.NoSuchProcess:
                continue
        return size

    figures = {"baseline": total(), "peak": 0}
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            figures["peak"] = max(figures["peak"], total())
            stop.wait(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield figures
    finally:
        stop.set()
        sampler.join()


def kind_of(reply: Call) -> str:
    """result, busy, late (the apology when the deadline passed) or error."""
    if reply.method == "sendPhoto":
        return "result"
    if reply.text.startswith(BUSY_PREFIX):
        return "busy"
    return "late" if reply.text == ENGLISH.timeout else "error"


async def send_and_collect(
    telegram: FakeTelegramServer, sends: list[tuple[FakeUser, bytes]]
) -> list[tuple[dict[str, Any], Call, float]]:
    """Send every photo at once; each message with its answer and the seconds from sending to answering."""
    sent_at = time.monotonic()
    messages = [telegram.send_photo(user, data) for user, data in sends]
    replies = await asyncio.gather(*(telegram.reply_to(message, timeout=BUDGET_S + 5) for message in messages))
    return [(message, reply, reply.at - sent_at) for message, reply in zip(messages, replies, strict=True)]


async def test_fifty_users_in_bursts_all_get_an_answer_within_the_budget(
    telegram: FakeTelegramServer, running_bot: RunningBot, worker_pool: ProcessPool
) -> None:
    users = [FakeUser(6000 + index, f"User{index}", "en") for index in range(USERS)]
    pictures = user_photos(USERS)
    photos = [jpeg(image) for image, _ in pictures]
    # In rounds, so each user's photos of a burst reach the bot together (getUpdates hands over 100 at a time).
    sends = [(user, photos[index]) for _ in range(BURST) for index, user in enumerate(users)]
    warm_up = await send_and_collect(telegram, [(users[0], photos[0]), (users[1], photos[1])])
    assert [kind_of(reply) for _, reply, _ in warm_up] == ["result", "result"]

    with peak_memory(worker_pool) as memory:
        outcomes = await send_and_collect(telegram, sends)

    kinds = Counter(kind_of(reply) for _, reply, _ in outcomes)
    # A "late" apology (still within the budget) is admission misjudging this machine's speed: on a box shared
    # with other work, photos admitted together take longer than the speed it learned. The benchmark counts them.
    assert kinds["error"] == 0, kinds
    assert kinds["result"] and kinds["busy"], kinds
    assert max(seconds for _, _, seconds in outcomes) <= BUDGET_S
    for message, reply, _ in outcomes:
        if reply.method == "sendPhoto":
            index = users.index(next(user for user in users if user.id == message["chat"]["id"]))
            image, boxes = pictures[index]
            assert is_own_picture(decode(reply.file("photo").data), image, boxes), "a user got another's picture"
    await asyncio.sleep(0.5)
    expected = [BURST + (index < len(warm_up)) for index in range(USERS)]
    assert [len(telegram.answers_in(user.id)) for user in users] == expected, "an update answered twice"
    assert memory["peak"] - memory["baseline"] <= MEMORY_GROWTH_LIMIT, memory
    assert not running_bot.deployment.jobs.ledger.tickets and worker_pool.outstanding == 0
    (after,) = await send_and_collect(telegram, [(users[0], photos[0])])
    assert kind_of(after[1]) == "result", "the bot does not answer normally after the burst"


async def test_one_user_flooding_cannot_delay_the_others(telegram: FakeTelegramServer, running_bot: RunningBot) -> None:
    flooder = FakeUser(7000, "Flooder", "en")
    others = [FakeUser(7001 + index, f"Other{index}", "en") for index in range(5)]
    pictures = user_photos(1 + len(others))
    photos = [jpeg(image) for image, _ in pictures]

    outcomes = await send_and_collect(
        telegram, [(flooder, photos[0])] * 30 + [(user, photos[1 + i]) for i, user in enumerate(others)]
    )

    flood, rest = outcomes[:30], outcomes[30:]
    flood_kinds = Counter(kind_of(reply) for _, reply, _ in flood)
    assert flood_kinds["result"] + flood_kinds["busy"] == 30 and flood_kinds["result"] >= 1
    assert flood_kinds["busy"] >= 30 - 2 * running_bot.settings.per_user_limit, "the per-user limit did not hold"
    assert [kind_of(reply) for _, reply, _ in rest] == ["result"] * len(others), "the flood crowded others out"
    assert max(seconds for _, _, seconds in rest) <= BUDGET_S
    for (_, reply, _), (image, boxes) in zip(rest, pictures[1:], strict=True):
        assert is_own_picture(decode(reply.file("photo").data), image, boxes)


async def test_huge_pictures_in_small_files_are_priced_by_their_pixels_and_starve_nobody(
    telegram: FakeTelegramServer, running_bot: RunningBot, worker_pool: ProcessPool
) -> None:
    """One user sends three PNGs of 60 megapixels in a few hundred kilobytes each, priced by their bytes they would
    look like small photos and each hold a worker process to its deadline; eight others send photos meanwhile."""
    hostile = FakeUser(7100, "Hostile", "en")
    others = [FakeUser(7101 + index, f"Other{index}", "en") for index in range(8)]
    pictures = user_photos(len(others))
    bomb = flat_png(7745, 7745)

    sent_at = time.monotonic()
    bombs = [telegram.send_document(hostile, bomb, file_name=f"{n}.png", mime_type="image/png") for n in range(3)]
    photos = [telegram.send_photo(user, jpeg(image)) for user, (image, _) in zip(others, pictures, strict=True)]
    bomb_replies = await asyncio.gather(*(telegram.reply_to(message, timeout=BUDGET_S + 5) for message in bombs))
    photo_replies = await asyncio.gather(*(telegram.reply_to(message, timeout=BUDGET_S + 5) for message in photos))

    # Priced at 60 MP (tests/bot/test_pricing.py), a bomb is refused for its size or busy where this machine could
    # not finish it in time, and run, finding no face, where it could: either way promptly, never held to the deadline.
    refused = (ENGLISH.too_slow, ENGLISH.too_many_pixels.format(max_mp=60))
    for reply in bomb_replies:
        assert reply.text in (*refused, ENGLISH.no_face) or reply.text.startswith(BUSY_PREFIX), reply.text
        answered_in = reply.at - sent_at
        assert answered_in < (BUDGET_S if reply.text == ENGLISH.no_face else 5), (
            f"{reply.text!r} after {answered_in:.1f} s"
        )
    assert [reply.method for reply in photo_replies] == ["sendPhoto"] * len(others), "the others were starved"
    for reply, (image, boxes) in zip(photo_replies, pictures, strict=True):
        assert is_own_picture(decode(reply.file("photo").data), image, boxes)
        assert reply.at - sent_at <= BUDGET_S
    assert worker_pool.outstanding == 0

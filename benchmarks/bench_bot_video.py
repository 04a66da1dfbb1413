"""Photo users keep their 15 s budget while videos are being processed: 2 users send 10 s 720p videos to the bot at
once, and 10 other users send a photo each, in waves, for as long as the videos run.

    pytest benchmarks/bench_bot_video.py -q -s                      # full: 2 x 10 s 720p, 10 users x 8 waves
    VIDEO_BENCH=short pytest benchmarks/bench_bot_video.py -q -s    # short: 2 x 3 s 360p, 5 users x 3 waves

The real bot (dispatcher, HTTP session, WORKERS worker processes, default one per CPU, video workers half of them)
is driven through the fake Bot API server from the tests over HTTP on 127.0.0.1. Each photo's answer is a result,
"busy" (refused at once by admission control), "late" (the apology at the deadline), an error, or "lost" (none).
Fails if any photo answer takes longer than the 15 s budget, if any is late, lost or an error, if a wave of photos
gets no result at all, if a video user waits longer than the budget for a first word (the status message) or
does not get their video back with the faces covered.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import pytest

from benchmarks.clips import ClipSpec, frames, make_clip
from benchmarks.measure import spread
from bot.pool import ProcessPool
from bot.settings import BotSettings
from bot.texts import ENGLISH
from testing.bots import run_embedded_bot
from testing.fake_telegram import TOKEN, Call, FakeTelegramServer, FakeUser
from testing.images import composite, jpeg
from testing.media import bgr_frames, changed

FULL = os.environ.get("VIDEO_BENCH", "full") != "short"
CLIP = ClipSpec(1280, 720, 10) if FULL else ClipSpec(640, 360, 3)
VIDEO_USERS = 2
PHOTO_USERS = 10 if FULL else 5
WAVES = 8 if FULL else 3
WAVE_INTERVAL_S = 4.0
PHOTO_SIZE = (1600, 1200)
BUDGET_S = 15.0
BUSY_PREFIX = ENGLISH.busy.split("{")[0]
# Mean change over a face box that only painting makes.
PAINTED = 25


def photo(index: int) -> bytes:
    """A 2 MP photo per user, its face in its own place."""
    image, _ = composite(PHOTO_SIZE, [(100 + 90 * index, 150 + 40 * index, 300)], background=40 + 12 * index)
    return jpeg(image, quality=90)


def kind_of(reply: Call | BaseException) -> str:
    if isinstance(reply, BaseException):
        return "lost"
    if reply.method == "sendPhoto":
        return "result"
    if reply.text.startswith(BUSY_PREFIX):
        return "busy"
    return "late" if reply.text == ENGLISH.timeout else "error"


async def session(pool: ProcessPool, clip: bytes) -> dict[str, Any]:
    """Send the videos, then the waves of photos; every answer with its seconds."""
    async with FakeTelegramServer(TOKEN) as telegram:
        settings = BotSettings(_env_file=None, bot_token=TOKEN, telegram_api_url=telegram.base_url, workers=pool.size)
        running = run_embedded_bot(settings, pool)
        video_users = [FakeUser(7000 + index, f"Video{index}", "en") for index in range(VIDEO_USERS)]
        photo_users = [FakeUser(8000 + index, f"Photo{index}", "en") for index in range(PHOTO_USERS)]
        photos = [photo(index) for index in range(PHOTO_USERS)]
        try:
            await telegram.wait_for(lambda call: call.method == "deleteWebhook", timeout=30)
            started = time.monotonic()
            videos = [
                telegram.send_video(user, clip, width=CLIP.width, height=CLIP.height, duration=round(CLIP.seconds))
                for user in video_users
            ]
            firsts = [asyncio.ensure_future(telegram.reply_to(video, timeout=BUDGET_S * 2)) for video in videos]
            results = [
                asyncio.ensure_future(
                    telegram.wait_for(
                        lambda call, user=user: call.method == "sendVideo" and call.chat_id == user.id, timeout=600
                    )
                )
                for user in video_users
            ]
            sent: list[tuple[int, float, dict[str, Any]]] = []
            waiting = []
            for wave in range(WAVES):
                await asyncio.sleep(max(0.0, started + 1 + wave * WAVE_INTERVAL_S - time.monotonic()))
                for user, data in zip(photo_users, photos, strict=True):
                    message = telegram.send_photo(user, data, size=PHOTO_SIZE)
                    sent.append((wave, time.monotonic(), message))
                    waiting.append(asyncio.ensure_future(telegram.reply_to(message, timeout=BUDGET_S * 3)))
            replies = await asyncio.gather(*waiting, return_exceptions=True)
            first_words = await asyncio.gather(*firsts)
            video_results = [found[0] for found in await asyncio.gather(*results)]
            videos_done = time.monotonic()
            await asyncio.sleep(1.0)
            photo_answers = [len(telegram.answers_in(user.id)) for user in photo_users]
        finally:
            await running.stop()
    return {
        "photos": [
            (wave, kind_of(reply), None if isinstance(reply, BaseException) else reply.at - at)
            for (wave, at, _), reply in zip(sent, replies, strict=True)
        ],
        "photo_answers": photo_answers,
        "first_words": [reply.at - started for reply in first_words],
        "first_word_methods": [reply.method for reply in first_words],
        "video_seconds": [call.at - started for call in video_results],
        "video_data": [call.file("video").data for call in video_results],
        "videos_done": videos_done - started,
    }


@pytest.fixture(scope="module")
def clip() -> bytes:
    return make_clip(CLIP)


def test_photo_users_keep_their_budget_while_videos_are_processed(benchmark, pool: ProcessPool, clip: bytes) -> None:
    outcome = benchmark.pedantic(lambda: asyncio.run(session(pool, clip)), rounds=1, iterations=1)

    photos = outcome["photos"]
    seconds = [value for _, kind, value in photos if value is not None]
    kinds = [kind for _, kind, _ in photos]
    answered = {kind: kinds.count(kind) for kind in ("result", "busy", "late", "error", "lost")}
    figures: dict[str, Any] = {
        "form": "full" if FULL else "short",
        "workers": pool.size,
        "clip": f"{CLIP.width}x{CLIP.height} {CLIP.seconds:g} s",
        "photos": len(photos),
        **answered,
        **spread("photo", seconds),
        "result_max_s": round(max(v for _, kind, v in photos if kind == "result" and v is not None), 2),
        "video_status_s": [round(value, 2) for value in outcome["first_words"]],
        "video_back_s": [round(value, 1) for value in outcome["video_seconds"]],
    }
    benchmark.extra_info.update(figures)
    print(f"\n{VIDEO_USERS} videos and {PHOTO_USERS} photo users x {WAVES} waves: {figures}")
    assert not answered["lost"] and not answered["late"] and not answered["error"], figures
    assert outcome["photo_answers"] == [WAVES] * PHOTO_USERS, "a photo was answered twice"
    assert max(seconds) <= BUDGET_S, f"the slowest photo answer took {max(seconds):.1f} s"
    for wave in range(WAVES):
        assert any(w == wave and kind == "result" for w, kind, _ in photos), f"wave {wave} got no result at all"
    assert outcome["first_word_methods"] == ["sendMessage"] * VIDEO_USERS
    assert max(outcome["first_words"]) <= BUDGET_S, "a video user waited past the budget for a first word"
    truth = list(frames(CLIP))
    for data in outcome["video_data"]:
        painted = bgr_frames(data)
        assert len(painted) == CLIP.frames
        for index in range(0, CLIP.frames, CLIP.fps):
            original, boxes = truth[index]
            for box in boxes:
                assert changed(original, painted[index], box) > PAINTED, f"a face is bare in frame {index}"

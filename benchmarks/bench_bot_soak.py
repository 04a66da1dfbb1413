"""A soak with faults: the distributed bot as a public bot meets it, for minutes.

    pytest benchmarks/bench_bot_soak.py -q -s                   # full form: 10 minutes, three worker machines
    OVERLOAD=short pytest benchmarks/bench_bot_soak.py -q -s    # CI's short form: under a minute, two machines

Real processes: a redis-server, worker machines (`python -m bot.worker`, one process each) and a front (`python -m
bot`), driven over HTTP by the fake Bot API. Twenty users send photos, albums, image files and videos, each about
every few seconds; one more user sends, the whole time, PNGs of 60 megapixels in a few hundred kilobytes each
(priced by their pixels: refused as too slow when the bot is busy, answered when it has the time). A worker machine
is killed every KILL_EVERY_S and started again; Redis is restarted once, halfway. Afterwards:

- every update got exactly one final answer: a picture, or an honest refusal or apology in one text;
- no photo, album or file was answered later than the 15 s budget (a killed machine's job ends in an apology at
  the deadline, never in silence), whatever the hostile user sent. The hostile user's own answers are not held to
  it: sending about a message a second, they queue behind each other at Telegram's pace of one a second per chat;
- the memory of every process stayed under MEMORY_LIMITS.

The figures: the answers by kind and the p50/p95/max seconds of each kind of request.
"""

from __future__ import annotations

import asyncio
import os
import random
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psutil
import pytest

from benchmarks.measure import spread
from bot.texts import ENGLISH
from testing.cluster import Process, RedisServer, front, wait_for_workers, worker
from testing.fake_telegram import TOKEN, Call, FakeTelegramServer, FakeUser
from testing.hostile import flat_png
from testing.images import composite, jpeg, png
from testing.media import Scene, make_clip

FULL = os.environ.get("OVERLOAD", "full") != "short"
DURATION_S = 600 if FULL else 40
MACHINES = 3 if FULL else 2
KILL_EVERY_S = 20
USERS = 20
# What each user sends, drawn at random: photos most, then albums, files and (full form) videos, which may wait
# minutes for their turn in the video lane, longer than the short form runs.
MIX = ["photo", "photo", "album", "file", *(["video"] if FULL else [])]
# Each user sends something about this often (with jitter), so the bot is busy but not drowned: twenty users at once
# is twice what one machine is sized for.
SEND_EVERY_S = 8.0 if FULL else 6.0
BUDGET_S = 15.0
# A photo's answer may reach the fake server this long after its deadline (the reply's own upload).
REPLY_SLACK_S = 1.0
VIDEO_BUDGET_S = 300.0
# Resident memory ceilings: the front holds no model and no more than its admitted pictures; a worker machine is
# one process with the detectors plus its pool's process decoding one picture at a time.
MEMORY_LIMITS = {"front": 500 * 2**20, "worker": 2 * 2**30}
MB = 2**20
# Texts that end a request without a picture: honest refusals and apologies.
REFUSALS = (
    ENGLISH.busy.split("{")[0],
    ENGLISH.video_busy.split("{")[0],
    ENGLISH.unavailable,
    ENGLISH.timeout,
    ENGLISH.video_timeout,
    ENGLISH.failed,
    ENGLISH.too_slow,
    ENGLISH.too_many_pixels.split("{")[0],
)
# A picture answered with the news that it has no face (a hostile user's flat 60 MP picture, priced by its pixels,
# fits an idle moment).
NO_FACE = (ENGLISH.no_face, ENGLISH.album_no_face, ENGLISH.video_no_face)
# Interim texts of a video, edited into its final answer or removed when the video is back.
VIDEO_INTERIM = (ENGLISH.video_status, ENGLISH.video_waiting, ENGLISH.video_progress.split("{")[0])


def pictures() -> dict[str, bytes]:
    """One of each kind a user sends, small enough that twenty users fit two cores."""
    photo, _ = composite((640, 480), [(120, 80, 140), (400, 120, 120)], background=90)
    other, _ = composite((640, 480), [(60, 60, 150)], background=150)
    clip = Scene(size=(320, 240), faces=[[(40 + 4 * i, 30, 90)] for i in range(30)])
    return {"photo": jpeg(photo), "other": jpeg(other), "file": png(photo), "video": make_clip(clip)}


class Soak:
    """The cluster under test, its faults, and every message sent with its kind and time."""

    def __init__(self, telegram: FakeTelegramServer, redis: RedisServer, directory: Path) -> None:
        self.telegram, self.redis, self.directory = telegram, redis, directory
        self.machines: list[Process] = []
        self.sent: list[tuple[str, float, dict[str, Any]]] = []
        self.kills = 0
        self.peaks: Counter[str] = Counter()

    def start_machine(self, index: int) -> Process:
        name = f"worker-{index}-{self.kills}"
        return worker(self.redis.url(), self.directory, name)

    async def send_forever(self, user: FakeUser, kinds: list[str], media: dict[str, bytes], until: float) -> None:
        rng = random.Random(user.id)
        while time.monotonic() < until:
            kind = rng.choice(kinds)
            if kind == "photo":
                message = self.telegram.send_photo(user, media["photo"])
            elif kind == "album":
                message = self.telegram.send_album(user, [media["photo"], media["other"]])[0]
            elif kind == "file":
                message = self.telegram.send_document(user, media["file"], file_name="p.png", mime_type="image/png")
            elif kind == "video":
                message = self.telegram.send_video(user, media["video"], width=320, height=240, duration=1)
            else:
                message = self.telegram.send_document(user, media["bomb"], file_name="b.png", mime_type="image/png")
            self.sent.append((kind, time.monotonic(), message))
            await asyncio.sleep(rng.uniform(0.5, 1.5) * (1.0 if kind == "hostile" else SEND_EVERY_S))

    async def faults(self, until: float) -> None:
        """A machine killed every KILL_EVERY_S and started again; Redis restarted once, halfway."""
        restarted, halfway = False, time.monotonic() + DURATION_S / 2
        while time.monotonic() < until - KILL_EVERY_S / 2:
            await asyncio.sleep(KILL_EVERY_S)
            victim = self.kills % len(self.machines)
            self.machines[victim].kill()
            self.kills += 1
            self.machines[victim] = self.start_machine(victim)
            if not restarted and time.monotonic() >= halfway:
                restarted = True
                await asyncio.to_thread(self.redis.stop)
                await asyncio.sleep(1.0)
                await asyncio.to_thread(self.redis.start)

    @contextmanager
    def memory_watch(self, front_process: Process) -> Iterator[None]:
        stop = threading.Event()

        def sample() -> None:
            while not stop.wait(0.5):
                for role, processes in (("front", [front_process]), ("worker", self.machines)):
                    for process in processes:
                        try:
                            tree = [psutil.Process(process.pid), *psutil.Process(process.pid).children(True)]
                            rss = sum(member.memory_info().rss for member in tree)
                        except psutil.Error:
                            continue
                        self.peaks[role] = max(self.peaks[role], rss)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            yield
        finally:
            stop.set()
            sampler.join()


def final_answers(telegram: FakeTelegramServer, message: dict[str, Any]) -> list[Call]:
    """A message's final answers: pictures and texts in reply, and a video's status edited into its last word."""
    chat_id, message_id = message["chat"]["id"], message["message_id"]
    replies = [
        call
        for call in telegram.calls
        if call.chat_id == chat_id
        and call.reply_to_message_id == message_id
        and call.method in ("sendPhoto", "sendDocument", "sendMediaGroup", "sendVideo", "sendMessage")
        and call.response is not None
        and not (isinstance(call.response, dict) and "error_code" in call.response)
    ]
    finals = [call for call in replies if not call.text.startswith(VIDEO_INTERIM)]
    status_ids = {call.response["message_id"] for call in replies if call.text.startswith(VIDEO_INTERIM)}  # texts
    edits = [
        call
        for call in telegram.calls_of("editMessageText", chat_id)
        if int(call.params["message_id"]) in status_ids and not call.text.startswith(VIDEO_INTERIM)
    ]
    return finals + edits[-1:]


def kind_of_answer(call: Call) -> str:
    """ "picture" (or the answer that it has no face), "refusal", or "other" (which must not happen)."""
    if call.method not in ("sendMessage", "editMessageText") or call.text.startswith(NO_FACE):
        return "picture"
    if call.text.startswith(REFUSALS):
        return "refusal"
    return "other"


async def soak(directory: Path, redis: RedisServer) -> dict[str, Any]:
    redis.client().flushall()
    media = pictures()
    media["bomb"] = flat_png(7745, 7745)
    async with FakeTelegramServer(TOKEN) as telegram:
        run = Soak(telegram, redis, directory)
        run.machines = [run.start_machine(index) for index in range(MACHINES)]
        front_process = front(redis.url(), telegram.base_url, directory)
        users = [FakeUser(20_000 + index, f"User{index}", "en") for index in range(USERS)]
        hostile = FakeUser(29_999, "Hostile", "en")
        try:
            await asyncio.to_thread(wait_for_workers, redis.client(), MACHINES, 300)
            await telegram.wait_for(lambda call: call.method == "deleteWebhook", timeout=120)
            started = time.monotonic()
            until = started + DURATION_S
            with run.memory_watch(front_process):
                await asyncio.gather(
                    run.faults(until),
                    run.send_forever(hostile, ["hostile"], media, until),
                    *(run.send_forever(user, MIX, media, until) for user in users),
                )
                await asyncio.sleep(BUDGET_S + 5)  # the last requests' answers
                videos = [message for kind, _, message in run.sent if kind == "video"]
                give_up = time.monotonic() + VIDEO_BUDGET_S
                while time.monotonic() < give_up and not all(final_answers(telegram, video) for video in videos):
                    await asyncio.sleep(1.0)
        finally:
            await asyncio.to_thread(front_process.stop)
            for machine in run.machines:
                await asyncio.to_thread(machine.stop)
        answers = [(kind, at, final_answers(telegram, message)) for kind, at, message in run.sent]
    return {"answers": answers, "kills": run.kills, "peaks": dict(run.peaks), "started": started}


@pytest.fixture(scope="module")
def soak_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("soak")


def test_a_public_bot_soaked_with_faults_answers_everything_once_and_in_time(
    benchmark, redis_server: RedisServer, soak_dir: Path
) -> None:
    outcome = benchmark.pedantic(lambda: asyncio.run(soak(soak_dir, redis_server)), rounds=1, iterations=1)

    answers = outcome["answers"]
    counts: Counter[str] = Counter()
    seconds: dict[str, list[float]] = {}
    late, twice, silent, others = [], [], [], []
    for kind, sent_at, finals in answers:
        if not finals:
            silent.append(kind)
            continue
        if len(finals) > 1:
            twice.append(kind)
        counts[f"{kind}:{kind_of_answer(finals[0])}"] += 1
        if kind_of_answer(finals[0]) == "other":
            others.append((kind, finals[0].text))
        waited = finals[0].at - sent_at
        seconds.setdefault(kind, []).append(waited)
        if kind in ("photo", "album", "file") and waited > BUDGET_S + REPLY_SLACK_S:
            late.append((kind, round(sent_at - outcome["started"], 1), round(waited, 1), finals[0].text[:40]))
    figures: dict[str, Any] = {
        "form": "full" if FULL else "short",
        "seconds": DURATION_S,
        "worker_machines": MACHINES,
        "machines_killed": outcome["kills"],
        "updates": len(answers),
        **dict(sorted(counts.items())),
        **{key: value for kind, values in seconds.items() for key, value in spread(kind, values).items()},
        **{f"peak_{role}_mb": round(peak / MB) for role, peak in outcome["peaks"].items()},
    }
    benchmark.extra_info.update(figures)
    print(f"\nsoak with faults: {figures}")
    assert not silent, f"{len(silent)} update(s) never answered: {Counter(silent)}"
    assert not twice, f"{len(twice)} update(s) answered twice: {Counter(twice)}"
    assert not others, f"answers that are neither a picture nor a refusal: {others[:5]}"
    assert not late, f"answers past the budget (kind, sent after s, waited s, text): {late[:10]}"
    for role, peak in outcome["peaks"].items():
        assert peak <= MEMORY_LIMITS[role], f"the {role} grew to {peak / MB:.0f} MB"

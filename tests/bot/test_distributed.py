"""Distributed mode with its real parts: a redis-server, worker machines (`python -m bot.worker`) and fronts
(`python -m bot`) as separate processes, talking HTTP to the fake Bot API. Each request gets exactly one answer with
its own user's picture, whatever fails: a worker machine, the front, Redis."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import pytest
from playwright.async_api import expect
from redis import Redis

from bot.cluster import keys
from bot.cluster.connection import REDELIVER_AFTER_MS
from bot.texts import ENGLISH
from testing.cluster import Process, RedisServer, free_port, front, wait_for_workers, worker
from testing.fake_telegram import TOKEN, FakeTelegramServer, FakeUser, Fault
from testing.images import astronaut_bgr, composite, jpeg
from testing.media import Scene, bgr_frames, changed, make_clip
from testing.miniapp import DESKTOP, headless_chromium, open_editor, sign_init_data
from tests.bot.helpers import (
    PAINTED,
    UNCHANGED,
    assert_chosen,
    change,
    choose_and_show,
    decode,
    editor_offered,
    final_picture,
    is_own_picture,
    numbered,
    patch_photo,
    user_photos,
)

USERS = [FakeUser(3000 + index, f"User{index}", "en") for index in range(10)]
APOLOGY_OR_BUSY = (ENGLISH.timeout, ENGLISH.unavailable, ENGLISH.failed)
WORKER_METRICS_PORT = free_port()
WORKER_B_METRICS_PORT = free_port()


@pytest.fixture(scope="module")
def cluster_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cluster")


@pytest.fixture(scope="module")
def workers(redis_server: RedisServer, cluster_dir: Path) -> Iterator[list[Process]]:
    """Two worker machines of one process each, started as two separate commands, each serving /metrics."""
    machines = [
        worker(redis_server.url(), cluster_dir, "worker-a", METRICS_PORT=str(WORKER_METRICS_PORT)),
        worker(redis_server.url(), cluster_dir, "worker-b", METRICS_PORT=str(WORKER_B_METRICS_PORT)),
    ]
    try:
        wait_for_workers(redis_server.client(), 2)
        yield machines
    finally:  # a machine that never announced itself is stopped too, not left running after the tests
        for machine in machines:
            machine.stop()


@pytest.fixture
async def telegram() -> AsyncIterator[FakeTelegramServer]:
    async with FakeTelegramServer(TOKEN) as server:
        yield server


@pytest.fixture
async def cluster_front(
    telegram: FakeTelegramServer, redis_server: RedisServer, workers: list[Process], cluster_dir: Path
) -> AsyncIterator[Process]:
    """A front with the default settings before the module's worker machines, stopped after the test."""
    process = await start_front(telegram, redis_server.url(), cluster_dir)
    yield process
    await asyncio.to_thread(process.stop)


async def start_front(telegram: FakeTelegramServer, url: str, directory: Path, **settings: str) -> Process:
    """A front for this test's fake Telegram, whose update ids start again at 1: Redis forgets the last test's."""
    redis = Redis.from_url(url)
    for key in redis.scan_iter("photo-anon:update:*"):
        redis.delete(key)
    process = front(url, telegram.base_url, directory, **settings)
    await telegram.wait_for(lambda call: call.method == "deleteWebhook", timeout=60)
    return process


async def exactly_one_answer_each(telegram: FakeTelegramServer, messages: list[dict[str, Any]], timeout: float) -> None:
    await asyncio.gather(*(telegram.reply_to(message, timeout=timeout) for message in messages))
    await asyncio.sleep(1.0)  # a second answer would come now
    counts = [len(telegram.answers_to(message)) for message in messages]
    assert counts == [1] * len(messages), f"answers per request: {counts}"


def small_picture(index: int) -> np.ndarray:
    """A 400 x 300 picture for albums, its background telling its place in the album."""
    return composite((400, 300), [(50 + 60 * index, 40, 150)], background=60 + 40 * index)[0]


def medium_photo(index: int) -> tuple[bytes, np.ndarray, list[Any]]:
    """A 2 MP photo: long enough in a worker that a kill lands mid-job."""
    image, boxes = composite((1600, 1200), [(100 + 40 * index, 150, 300)], background=40 + 5 * index)
    return jpeg(image, quality=90), image, boxes


async def test_ten_users_at_once_through_two_worker_machines_get_their_own_pictures(
    telegram: FakeTelegramServer, redis_server: RedisServer, workers: list[Process], cluster_dir: Path
) -> None:
    metrics_port = free_port()
    front_process = await start_front(telegram, redis_server.url(), cluster_dir, METRICS_PORT=str(metrics_port))
    try:
        photos = user_photos(len(USERS))
        messages = [telegram.send_photo(user, jpeg(image)) for user, (image, _) in zip(USERS, photos, strict=True)]

        await exactly_one_answer_each(telegram, messages, timeout=30)

        for message, (image, boxes) in zip(messages, photos, strict=True):
            (reply,) = telegram.answers_to(message)
            assert reply.method == "sendPhoto"
            assert is_own_picture(decode(reply.file("photo").data), image, boxes), "a user got another's picture"
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{metrics_port}/metrics") as response:
                exposition = await response.text()
            async with http.get(f"http://127.0.0.1:{metrics_port}/health") as response:
                assert response.status == 200
            async with http.get(f"http://127.0.0.1:{WORKER_METRICS_PORT}/metrics") as response:
                worker_exposition = await response.text()
            async with http.get(f"http://127.0.0.1:{WORKER_METRICS_PORT}/health") as response:
                assert response.status == 200
        assert 'photo_anon_requests_total{outcome="result"} 10.0' in exposition
        assert "photo_anon_worker_processes 2.0" in exposition
        assert 'photo_anon_jobs_total{outcome="result"}' in worker_exposition
    finally:
        await asyncio.to_thread(front_process.stop)
    redis = redis_server.client()
    assert not list(redis.scan_iter("photo-anon:input:*")), "image bytes were left in Redis"
    assert not any(b"\xff\xd8\xff" in str(entry).encode() for entry in redis.xrange("photo-anon:jobs"))
    for process in (front_process, *workers):
        assert TOKEN.partition(":")[2] not in process.log()


async def test_an_album_comes_back_as_one_album_in_order(telegram: FakeTelegramServer, cluster_front: Process) -> None:
    pictures = [small_picture(index) for index in range(3)]
    album = telegram.send_album(USERS[0], [jpeg(picture) for picture in pictures])

    reply = await telegram.reply_to(album[0], timeout=30)

    assert reply.method == "sendMediaGroup" and len(reply.media) == 3
    backgrounds = [
        int(np.median(decode(reply.file(item["media"].removeprefix("attach://")).data)[-5:, -5:]))
        for item in reply.media
    ]
    assert backgrounds == sorted(backgrounds), "the album came back out of order"


async def jobs_done(port: int) -> float:
    """The jobs a worker machine has finished with a result, from its /metrics."""
    async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}/metrics") as response:
        exposition = await response.text()
    found = re.search(r'^photo_anon_jobs_total\{outcome="result"\} ([0-9.]+)$', exposition, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


async def test_a_video_goes_through_the_queue_with_its_progress_and_runs_once_however_long(
    telegram: FakeTelegramServer, redis_server: RedisServer, workers: list[Process], cluster_dir: Path
) -> None:
    """The video runs longer than the idle time after which a job goes to another worker; a photo sent meanwhile
    makes the other worker look for such jobs. The video still runs once: its worker holds on to it."""
    scene = Scene(size=(480, 360), faces=[[(20 + abs(index % 200 - 100), 30, 150)] for index in range(450)])
    clip = make_clip(scene)
    ports = (WORKER_METRICS_PORT, WORKER_B_METRICS_PORT)
    before = sum([await jobs_done(port) for port in ports])
    front_process = await start_front(telegram, redis_server.url(), cluster_dir)
    try:
        message = telegram.send_video(USERS[0], clip, width=480, height=360, duration=15)
        status = await telegram.reply_to(message, timeout=15)
        started = time.monotonic()
        await telegram.wait_for(lambda call: call.method == "editMessageText", timeout=30)
        await asyncio.sleep(max(0.0, REDELIVER_AFTER_MS / 1000 + 1 - (time.monotonic() - started)))
        photo = telegram.send_photo(USERS[1], jpeg(small_picture(0)))
        assert (await telegram.reply_to(photo, timeout=15)).method == "sendPhoto"
        (video,) = await telegram.wait_for(lambda call: call.method == "sendVideo", timeout=120)
        await asyncio.sleep(1.0)
    finally:
        await asyncio.to_thread(front_process.stop)
    assert status.method == "sendMessage" and status.text == ENGLISH.video_status
    edits = [call.text for call in telegram.calls_of("editMessageText", USERS[0].id)]
    assert any(text.startswith(ENGLISH.video_progress.split("{")[0]) for text in edits), edits
    assert video.reply_to_message_id == message["message_id"]
    assert video.text == ENGLISH.video_covered.format(count=1)
    frames = bgr_frames(video.file("video").data)
    assert len(frames) == 450
    for index in (0, 149, 300, 449):
        original, boxes = scene.frames()[index]
        assert changed(original, frames[index], boxes[0]) > 25, f"the face is bare in frame {index}"
    assert [call.method for call in telegram.answers_to(message)] == ["sendMessage", "sendVideo"]
    assert telegram.calls_of("deleteMessage", USERS[0].id), "the status goes once the video is back"
    assert sum([await jobs_done(port) for port in ports]) - before == 2, "the video ran twice (or not at all)"
    redis = redis_server.client()
    assert not list(redis.scan_iter("photo-anon:input:*")) and not list(redis.scan_iter("photo-anon:progress:*"))


async def test_a_front_killed_mid_burst_and_started_again_answers_everything_once(
    telegram: FakeTelegramServer, redis_server: RedisServer, workers: list[Process], cluster_dir: Path
) -> None:
    first = await start_front(telegram, redis_server.url(), cluster_dir, name="front-1")
    messages = [telegram.send_photo(user, medium_photo(index)[0]) for index, user in enumerate(USERS[:6])]
    album = telegram.send_album(USERS[6], [jpeg(small_picture(index)) for index in range(3)])
    # Killed while the jobs are running, not while a reply is on its way: an answer sent in the moment before its
    # front dies, and not yet marked done, would be sent again (the one window deduplication cannot close).
    await telegram.wait_for(lambda call: call.method == "getFile", timeout=30, count=4)
    first.kill()

    second = front(redis_server.url(), telegram.base_url, cluster_dir, name="front-2")
    try:
        await exactly_one_answer_each(telegram, [*messages, album[0]], timeout=40)
    finally:
        await asyncio.to_thread(second.stop)
    assert max(telegram.deliveries.values()) >= 2, "nothing was delivered again: the test proved nothing"
    (album_reply,) = telegram.answers_to(album[0])
    assert album_reply.method == "sendMediaGroup" and len(album_reply.media) == 3, "the album came back in part"


async def test_redis_restarted_mid_run_everything_reconnects(
    telegram: FakeTelegramServer, redis_server: RedisServer, workers: list[Process], cluster_dir: Path
) -> None:
    front_process = await start_front(telegram, redis_server.url(), cluster_dir)
    try:
        in_flight = [
            telegram.send_photo(user, data)
            for user, (data, _, _) in zip(USERS, [medium_photo(i) for i in range(4)], strict=False)
        ]
        await asyncio.sleep(0.3)
        redis_server.stop()
        await asyncio.sleep(1.0)
        redis_server.start()

        await exactly_one_answer_each(telegram, in_flight, timeout=30)
        await asyncio.to_thread(wait_for_workers, redis_server.client(), 2, 30)
        after = telegram.send_photo(USERS[5], jpeg(astronaut_bgr()))
        reply = await telegram.reply_to(after, timeout=30)
    finally:
        await asyncio.to_thread(front_process.stop)
    assert reply.method == "sendPhoto"
    for message in in_flight:
        (answer,) = telegram.answers_to(message)
        assert answer.method == "sendPhoto" or answer.text in APOLOGY_OR_BUSY


async def test_redis_unreachable_at_the_front_is_told_and_recovered_from(
    telegram: FakeTelegramServer, redis_server: RedisServer, workers: list[Process], cluster_dir: Path
) -> None:
    front_process = await start_front(telegram, redis_server.url(), cluster_dir)
    try:
        redis_server.stop()
        during = telegram.send_photo(USERS[1], jpeg(astronaut_bgr()))
        told = await telegram.reply_to(during, timeout=20)
        redis_server.start()
        await asyncio.to_thread(wait_for_workers, redis_server.client(), 2, 30)
        after = telegram.send_photo(USERS[2], jpeg(astronaut_bgr()))
        reply = await telegram.reply_to(after, timeout=30)
        assert front_process.process is not None and front_process.process.poll() is None, "the front crashed"
    finally:
        await asyncio.to_thread(front_process.stop)
    assert told.text == ENGLISH.unavailable
    assert reply.method == "sendPhoto"


async def test_without_any_worker_users_are_told_at_once(
    telegram: FakeTelegramServer, redis_server: RedisServer, cluster_dir: Path
) -> None:
    lonely = redis_server.url(db=5)  # no worker machine serves this database
    front_process = await start_front(telegram, lonely, cluster_dir, name="front-alone")
    try:
        sent = time.monotonic()
        reply = await telegram.reply_to(telegram.send_photo(USERS[3], jpeg(astronaut_bgr())), timeout=10)
        waited = time.monotonic() - sent
    finally:
        await asyncio.to_thread(front_process.stop)
    assert reply.text == ENGLISH.unavailable
    assert waited < 5, "the user waited for a timeout instead of being told at once"


async def test_telegrams_flood_limit_is_honoured_and_nothing_is_lost(
    telegram: FakeTelegramServer, redis_server: RedisServer, workers: list[Process], cluster_dir: Path
) -> None:
    flood = telegram.inject("sendPhoto", Fault("flood", retry_after=2, times=3))
    front_process = await start_front(telegram, redis_server.url(), cluster_dir)
    try:
        photos = user_photos(4)
        messages = [telegram.send_photo(user, jpeg(image)) for user, (image, _) in zip(USERS, photos, strict=False)]
        await asyncio.gather(*(accepted(telegram, message) for message in messages))
        await asyncio.sleep(1.0)
    finally:
        await asyncio.to_thread(front_process.stop)
    assert flood.hits == 3
    for message in messages:
        attempts = telegram.answers_to(message)
        delivered = [call for call in attempts if not is_refused(call)]
        assert len(delivered) == 1, "a reply was lost or sent twice"
        refused = [call for call in attempts if is_refused(call)]
        if refused:
            assert delivered[0].at - refused[-1].at >= 1.9, "the retry did not wait for retry_after"


def is_refused(call: Any) -> bool:
    """An attempt Telegram did not accept (the fake records an injected fault's call without a response)."""
    return call.response is None or (isinstance(call.response, dict) and "error_code" in call.response)


async def accepted(telegram: FakeTelegramServer, message: dict[str, Any]) -> None:
    chat_id, message_id = message["chat"]["id"], message["message_id"]
    await telegram.wait_for(
        lambda call: (
            call.method == "sendPhoto"
            and call.chat_id == chat_id
            and call.reply_to_message_id == message_id
            and not is_refused(call)
        ),
        timeout=30,
    )


async def test_a_webhook_front_answers_before_telegram_hears_done_and_a_retried_update_is_answered_once(
    telegram: FakeTelegramServer, redis_server: RedisServer, workers: list[Process], cluster_dir: Path
) -> None:
    """Telegram retries a webhook update its front did not confirm (the front died); only an answered one is
    confirmed, and an update delivered twice is answered once."""
    for key in redis_server.client().scan_iter("photo-anon:update:*"):
        redis_server.client().delete(key)
    port, metrics_port = free_port(), free_port()
    front_process = front(
        redis_server.url(),
        telegram.base_url,
        cluster_dir,
        name="front-webhook",
        WEBHOOK_URL="https://bot.example.com/webhook",
        WEBHOOK_SECRET="webhook-secret",
        WEBHOOK_HOST="127.0.0.1",
        WEBHOOK_PORT=str(port),
        METRICS_PORT=str(metrics_port),
    )
    try:
        await telegram.wait_for(lambda call: call.method == "setWebhook", timeout=60)
        message = telegram.send_photo(USERS[4], jpeg(astronaut_bgr()))
        update = {"update_id": telegram.update_id_of(message), "message": message}
        headers = {"X-Telegram-Bot-Api-Secret-Token": "webhook-secret"}
        async with aiohttp.ClientSession() as http:
            first = await http.post(f"http://127.0.0.1:{port}/webhook", json=update, headers=headers)
            answered_when_confirmed = len(telegram.answers_to(message))
            again = await http.post(f"http://127.0.0.1:{port}/webhook", json=update, headers=headers)
            async with http.get(f"http://127.0.0.1:{metrics_port}/health") as health:
                healthy = health.status
            async with http.get(f"http://127.0.0.1:{port}/health") as public:
                on_the_webhook_listener = public.status
        await asyncio.sleep(1.0)
    finally:
        await asyncio.to_thread(front_process.stop)
    assert first.status == 200 and again.status == 200 and healthy == 200
    assert on_the_webhook_listener == 404, "/health is served on the public webhook listener"
    assert answered_when_confirmed == 1, "Telegram heard 'done' before the user had an answer"
    (reply,) = telegram.answers_to(message)
    assert reply.method == "sendPhoto"


async def test_choosing_faces_through_the_cluster_shows_only_the_chosen_face(
    telegram: FakeTelegramServer, redis_server: RedisServer, cluster_front: Process
) -> None:
    """The faces and the choice live in Redis; the render is a job on a worker machine like any photo's."""
    image, boxes = composite((960, 400), [(40, 70, 100), (340, 55, 100), (640, 40, 100)], background=110)

    result = await telegram.reply_to(telegram.send_photo(USERS[7], jpeg(image)), timeout=30)
    _, _, final = await choose_and_show(telegram, USERS[7], result.response, number=2)

    picture = decode(final.edited_media.data)
    faces = numbered(boxes)
    assert change(image, picture, faces[1]) < UNCHANGED
    assert change(image, picture, faces[0]) > PAINTED and change(image, picture, faces[2]) > PAINTED
    kept = keys.original_key(USERS[7].id, result.response["message_id"])
    assert 0 < redis_server.client().pttl(kept) <= 3600 * 1000, "the choice is kept no longer than the result"


async def test_one_fronts_result_is_edited_in_the_editor_another_front_serves(
    telegram: FakeTelegramServer, redis_server: RedisServer, workers: list[Process], cluster_dir: Path
) -> None:
    """Two webhook fronts behind one address: the result comes from the front Telegram posted to, the editor from
    the one the reverse proxy picks. The faces, the choice and the user's calls are counted in Redis."""
    for key in redis_server.client().scan_iter("photo-anon:update:*"):
        redis_server.client().delete(key)
    image, boxes, patch = patch_photo()
    user = USERS[9]
    ports = free_port(), free_port()
    shared = {
        "WEBHOOK_URL": "https://bot.example.com/webhook",
        "WEBHOOK_SECRET": "webhook-secret",
        "WEBHOOK_HOST": "127.0.0.1",
        "WEBAPP_URL": f"http://127.0.0.1:{ports[1]}/editor/",
    }
    fronts = [
        front(
            redis_server.url(),
            telegram.base_url,
            cluster_dir,
            name=f"front-editor-{i}",
            WEBHOOK_PORT=str(port),
            **shared,
        )
        for i, port in enumerate(ports)
    ]
    try:
        async with aiohttp.ClientSession() as http:
            for port in ports:
                await until_answering(http, f"http://127.0.0.1:{port}/webhook")
            message = telegram.send_photo(user, jpeg(image))
            update = {"update_id": telegram.update_id_of(message), "message": message}
            secret = {"X-Telegram-Bot-Api-Secret-Token": "webhook-secret"}
            async with http.post(f"http://127.0.0.1:{ports[0]}/webhook", json=update, headers=secret) as posted:
                assert posted.status == 200
        (result,) = telegram.answers_to(message)
        url = await editor_offered(telegram, result.response)
        async with headless_chromium() as browser:
            editor = await open_editor(browser, url, sign_init_data(TOKEN, user), user, DESKTOP)
            await expect(editor.page.locator(".face")).to_have_count(3)
            await editor.tap_on(numbered(boxes)[1])
            await editor.mark(patch)
            await editor.press("#apply")
            final = await final_picture(telegram, result.response)
            await editor.closed()
    finally:
        for process in fronts:
            await asyncio.to_thread(process.stop)
    assert_chosen(image, boxes, decode(final.edited_media.data), shown=2, covered_too=[patch])
    redis = redis_server.client()
    counted = [int(redis.get(key) or 0) for key in redis.scan_iter(keys.rate_key("editor", user.id, "*"))]
    assert sum(counted) == 3, "calls not counted across fronts"


async def until_answering(http: aiohttp.ClientSession, url: str, timeout: float = 60) -> None:
    """Until a front's listener answers at `url` at all (a webhook's path refuses a GET: it is up)."""
    give_up = time.monotonic() + timeout
    while True:
        try:
            async with http.get(url):
                return
        except aiohttp.ClientConnectionError:
            pass
        assert time.monotonic() < give_up, f"nothing answers at {url}"
        await asyncio.sleep(0.2)


async def test_a_worker_machine_killed_mid_burst_costs_no_answer(
    telegram: FakeTelegramServer, workers: list[Process], cluster_front: Process
) -> None:
    """The module's last test: the machine it kills stays dead."""
    burst = [medium_photo(index) for index in range(8)]
    messages = [telegram.send_photo(user, data) for user, (data, _, _) in zip(USERS, burst, strict=False)]
    await telegram.wait_for(lambda call: call.method == "sendPhoto", timeout=30)

    workers[0].kill()  # the machine dies with the job it runs (its pool processes die with it)

    await exactly_one_answer_each(telegram, messages, timeout=30)
    for message, (_, image, boxes) in zip(messages, burst, strict=True):
        (reply,) = telegram.answers_to(message)
        if reply.method == "sendPhoto":
            assert is_own_picture(decode(reply.file("photo").data), image, boxes)
        else:
            assert reply.text in APOLOGY_OR_BUSY or reply.text.startswith(ENGLISH.busy.split("{")[0])
    assert sum(telegram.answers_to(m)[0].method == "sendPhoto" for m in messages) >= len(messages) - 1

"""Videos, GIFs, video notes and iPhone photos through the bot, and the second look (/strict, "Look harder"): real
aiogram dispatcher and HTTP session, real worker processes, the fake Bot API server, tiny clips made with PyAV."""

from __future__ import annotations

import asyncio
import io
import itertools
import re
from typing import Any

import cv2
import numpy as np
import pytest
from PIL import Image

from anonymizer.options import STRICT_DETECTOR
from bot.handlers import videos
from bot.jobs import Job
from bot.texts import ENGLISH, RUSSIAN
from testing.fake_telegram import Call, FakeTelegramServer, FakeUser
from testing.images import ASTRONAUT_FACE, astronaut_bgr, jpeg
from testing.media import (
    PHONE_TAGS,
    SECRET_VALUES,
    Scene,
    bgr_frames,
    changed,
    every_tag,
    gif_frames,
    make_clip,
    make_gif,
)
from testing.metadata import SECRETS, stored_sideways
from tests.bot.helpers import RunningBot, StartBot, decode

ALICE = FakeUser(4001, "Alice", "en")
BORIS = FakeUser(4002, "Борис", "ru")
CAROL = FakeUser(4003, "Carol", "en")
# Mean change over a face box that only painting makes.
PAINTED = 25
BUSY_PREFIX = ENGLISH.video_busy.split("{")[0]


def every_face_covered(frames: list[np.ndarray], scene: Scene) -> None:
    truth = scene.frames()
    assert len(frames) == len(truth)
    for index, (painted, (original, boxes)) in enumerate(zip(frames, truth, strict=True)):
        for box in boxes:
            assert changed(original, painted, box) > PAINTED, f"a face is bare in frame {index}"


async def only_answers(telegram: FakeTelegramServer, user: FakeUser, settle: float = 0.5) -> list[Call]:
    """Every message the bot sent this user, once it had time to send a second one."""
    await asyncio.sleep(settle)
    return telegram.answers_in(user.id)


def button_data(reply: Call) -> str:
    """The "Look harder" button's data: the first button under a first look."""
    first_row = reply.params["reply_markup"]["inline_keyboard"][0]
    (button,) = first_row
    assert button["text"] in (ENGLISH.look_harder, RUSSIAN.look_harder)
    return str(button["callback_data"])


def spy_on_jobs(service: Any, monkeypatch: pytest.MonkeyPatch) -> list[Job]:
    """The jobs the handlers hand to the service, recorded as they pass."""
    seen: list[Job] = []
    run = service.run

    async def recording(jobs: list[Job], deadline: float, **extra: Any) -> Any:
        seen.extend(jobs)
        return await run(jobs, deadline, **extra)

    monkeypatch.setattr(service, "run", recording)
    return seen


# -- videos, GIFs, video notes ---------------------------------------------------------------------------------


async def test_a_phone_video_comes_back_as_a_video_with_every_frame_covered_and_no_location(
    telegram: FakeTelegramServer, running_bot: RunningBot
) -> None:
    scene = Scene()
    clip = make_clip(scene, rotation=90, tags=PHONE_TAGS)
    message = telegram.send_video(ALICE, clip, width=192, height=144, duration=1)

    reply = await telegram.reply_to(message, timeout=60)

    assert reply.method == "sendVideo"
    assert reply.text == ENGLISH.video_covered.format(count=1)
    assert (int(reply.params["width"]), int(reply.params["height"])) == (192, 144)
    assert reply.params["supports_streaming"] is True
    result = reply.file("video").data
    every_face_covered(bgr_frames(result), scene)
    tags = " ".join(f"{key}={value}" for key, value in every_tag(result).items())
    for secret in SECRET_VALUES:
        assert secret not in tags and secret.encode() not in result
    assert [call.method for call in await only_answers(telegram, ALICE)] == ["sendVideo"], "one answer, no status"


async def test_a_mov_file_comes_back_as_an_mp4_file_and_says_so(
    telegram: FakeTelegramServer, running_bot: RunningBot
) -> None:
    scene = Scene()
    message = telegram.send_document(ALICE, make_clip(scene), file_name="holiday.mov", mime_type="video/quicktime")

    reply = await telegram.reply_to(message, timeout=60)

    assert reply.method == "sendDocument"
    assert reply.file("document").filename == "holiday.mp4"
    assert reply.text == "\n".join([ENGLISH.video_covered.format(count=1), ENGLISH.format_changed.format(format="MP4")])
    every_face_covered(bgr_frames(reply.file("document").data), scene)


async def test_a_gif_sent_as_telegram_sends_it_comes_back_as_an_animation(
    telegram: FakeTelegramServer, running_bot: RunningBot
) -> None:
    """Telegram turns a GIF into a silent MP4 "animation"; it goes back with sendAnimation, so it plays as a GIF."""
    scene = Scene()
    clip = make_clip(scene, container="mp4", audio=None)
    message = telegram.send_animation(ALICE, clip, width=192, height=144, mime_type="video/mp4", file_name="fun.mp4")

    reply = await telegram.reply_to(message, timeout=60)

    assert reply.method == "sendAnimation"
    assert reply.text == ENGLISH.video_covered.format(count=1)
    every_face_covered(bgr_frames(reply.file("animation").data), scene)


async def test_a_gif_file_comes_back_as_a_gif_file(telegram: FakeTelegramServer, running_bot: RunningBot) -> None:
    scene = Scene()
    message = telegram.send_document(BORIS, make_gif(scene), file_name="party.gif", mime_type="image/gif")

    reply = await telegram.reply_to(message, timeout=60)

    assert reply.method == "sendDocument"
    assert reply.file("document").filename == "party.gif"
    assert reply.text == RUSSIAN.video_covered.format(count=1)
    every_face_covered([pixels for pixels, _ in gif_frames(reply.file("document").data)], scene)


async def test_a_video_note_comes_back_as_a_round_video_note(
    telegram: FakeTelegramServer, running_bot: RunningBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A video note has no caption: the text that asks to look before sharing follows it."""
    monkeypatch.setattr(videos, "STATUS_DELAY_S", 60.0)
    scene = Scene(size=(160, 160), faces=[[(20 + 2 * index, 30, 80)] for index in range(16)])
    message = telegram.send_video_note(ALICE, make_clip(scene, container="mp4"), length=160, duration=1)

    note = await telegram.reply_to(message, timeout=60)

    assert note.method == "sendVideoNote"
    assert int(note.params["length"]) == 160 and "caption" not in note.params
    frames = bgr_frames(note.file("video_note").data)
    assert frames[0].shape[:2] == (160, 160)
    every_face_covered(frames, scene)
    answers = await only_answers(telegram, ALICE)
    assert [call.method for call in answers] == ["sendVideoNote", "sendMessage"]
    assert answers[1].text == ENGLISH.video_covered.format(count=1) and answers[1].reply_to_message_id is not None


async def test_a_video_without_a_face_is_not_sent_back(telegram: FakeTelegramServer, running_bot: RunningBot) -> None:
    empty = Scene(faces=[[] for _ in range(16)])
    message = telegram.send_video(ALICE, make_clip(empty), width=192, height=144, duration=1)

    reply = await telegram.reply_to(message, timeout=60)

    assert reply.method == "sendMessage" and reply.text == ENGLISH.video_no_face
    assert len(await only_answers(telegram, ALICE)) == 1


async def test_progress_is_shown_and_edited_while_a_video_is_processed_and_photos_do_not_wait(
    telegram: FakeTelegramServer, running_bot: RunningBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The status comes at once (here after 0.1 s instead of 2 s), is edited with the progress no more often than
    the interval (here 0.4 s instead of 3 s), and goes when the video is back. A photo sent meanwhile by someone
    else comes back first: the video holds one of the two workers, the photo takes the other."""
    monkeypatch.setattr(videos, "STATUS_DELAY_S", 0.1)
    monkeypatch.setattr(videos, "EDIT_INTERVAL_S", 0.4)
    scene = Scene(size=(320, 240), faces=[[(20 + index % 120, 20, 110)] for index in range(240)])
    message = telegram.send_video(ALICE, make_clip(scene, audio=None), width=320, height=240, duration=8)
    status = await telegram.reply_to(message, timeout=20)
    photo = telegram.send_photo(CAROL, jpeg(astronaut_bgr()))

    photo_reply = await telegram.reply_to(photo, timeout=20)
    video = await telegram.wait_for(lambda call: call.method == "sendVideo" and call.chat_id == ALICE.id, timeout=120)

    assert status.method == "sendMessage" and status.text == ENGLISH.video_status
    assert photo_reply.method == "sendPhoto" and photo_reply.at < video[0].at
    edits = [call for call in telegram.calls_of("editMessageText", ALICE.id) if call.at < video[0].at]
    pattern = re.escape(ENGLISH.video_progress).replace(r"\{percent\}", r"(\d+)").replace(r"\{left\}", ".+")
    percents = [int(match.group(1)) for call in edits if (match := re.fullmatch(pattern, call.text))]
    assert percents and percents == sorted(percents) and max(percents) < 100
    assert all(later.at - earlier.at >= 0.35 for earlier, later in itertools.pairwise(edits))
    (deleted,) = await telegram.wait_for(lambda call: call.method == "deleteMessage", timeout=10)
    assert int(deleted.params["message_id"]) == status.response["message_id"]
    every_face_covered(bgr_frames(video[0].file("video").data), scene)
    assert [call.method for call in await only_answers(telegram, ALICE)] == ["sendMessage", "sendVideo"]


@pytest.mark.parametrize(
    ("send", "expected"),
    [
        pytest.param(
            lambda server: server.send_video(ALICE, file_size=25 * 1024 * 1024),
            ENGLISH.too_large.format(max_mb=20),
            id="video-over-20-mb",
        ),
        pytest.param(
            lambda server: server.send_video(ALICE, duration=61),
            ENGLISH.video_too_long.format(max_s=60),
            id="video-over-60-s",
        ),
        pytest.param(
            lambda server: server.send_video(ALICE, width=3840, height=2160),
            ENGLISH.video_too_many_pixels.format(max_mp=2.1),
            id="video-in-4k",
        ),
        pytest.param(
            lambda server: server.send_video_note(ALICE, b"\x00", length=384, duration=75),
            ENGLISH.video_too_long.format(max_s=60),
            id="video-note-over-60-s",
        ),
        pytest.param(
            lambda server: server.send_document(
                ALICE, b"\x00", file_name="long.mkv", mime_type="video/x-matroska", file_size=21 * 1024 * 1024
            ),
            ENGLISH.too_large.format(max_mb=20),
            id="video-file-over-20-mb",
        ),
    ],
)
async def test_a_clip_over_a_limit_is_refused_from_its_metadata_before_downloading(
    telegram: FakeTelegramServer, running_bot: RunningBot, send: Any, expected: str
) -> None:
    message = send(telegram)

    reply = await telegram.reply_to(message)

    assert reply.method == "sendMessage" and reply.text == expected
    assert not telegram.calls_of("getFile") and not telegram.downloads
    assert len(await only_answers(telegram, ALICE, settle=0.3)) == 1


async def test_a_video_file_over_the_length_limit_is_refused_from_its_header(
    telegram: FakeTelegramServer, start_bot: StartBot
) -> None:
    """A file sent as a document says nothing of its length: the worker reads it from the header."""
    await start_bot(max_video_seconds=2)
    long_clip = make_clip(Scene(faces=[[(20, 12, 64)] for _ in range(90)]), audio=None)
    message = telegram.send_document(ALICE, long_clip, file_name="long.mp4", mime_type="video/mp4")

    reply = await telegram.reply_to(message, timeout=60)

    assert reply.method == "sendMessage" and reply.text == ENGLISH.video_too_long.format(max_s=2)


async def test_a_damaged_video_gets_one_clear_reply(telegram: FakeTelegramServer, running_bot: RunningBot) -> None:
    clip = make_clip(Scene())
    message = telegram.send_video(ALICE, clip[: len(clip) // 3], width=192, height=144, duration=1)

    reply = await telegram.reply_to(message, timeout=60)

    assert reply.method == "sendMessage" and reply.text == ENGLISH.video_corrupt
    assert len(await only_answers(telegram, ALICE)) == 1


async def test_a_full_video_lane_says_busy_at_once(telegram: FakeTelegramServer, start_bot: StartBot) -> None:
    await start_bot(video_queue_limit=1)
    clip = make_clip(Scene(), audio=None)
    first = telegram.send_video(ALICE, clip, width=192, height=144, duration=1)
    second = telegram.send_video(BORIS, clip, width=192, height=144, duration=1)

    replies = {reply.chat_id: reply for reply in [await telegram.reply_to(first), await telegram.reply_to(second)]}

    assert replies[ALICE.id].method == "sendVideo"
    assert replies[BORIS.id].method == "sendMessage"
    assert replies[BORIS.id].text.startswith(RUSSIAN.video_busy.split("{")[0])


async def test_an_album_with_a_video_keeps_its_pictures_and_says_why_the_video_is_left_out(
    telegram: FakeTelegramServer, running_bot: RunningBot
) -> None:
    photo = telegram.send_photo(ALICE, jpeg(astronaut_bgr()), media_group_id="mixed")
    telegram.send_video(ALICE, make_clip(Scene()), width=192, height=144, duration=1, media_group_id="mixed")

    reply = await telegram.reply_to(photo, timeout=30)

    assert reply.method == "sendPhoto"
    assert ENGLISH.album_partly_failed.format(positions="2", reason=ENGLISH.video_in_album) in reply.text
    assert len(await only_answers(telegram, ALICE)) == 1


# -- iPhone photos ---------------------------------------------------------------------------------------------


async def test_a_heic_file_comes_back_as_a_jpeg_file_and_says_so(
    telegram: FakeTelegramServer, running_bot: RunningBot
) -> None:
    message = telegram.send_document(ALICE, stored_sideways("HEIF"), file_name="IMG_0001.HEIC", mime_type="image/heic")

    reply = await telegram.reply_to(message, timeout=30)

    assert reply.method == "sendDocument"
    assert reply.file("document").filename == "IMG_0001.jpg"
    note = ENGLISH.format_changed.format(format="JPEG")
    assert reply.text == "\n".join([ENGLISH.faces_covered.format(count=1), note])
    result = Image.open(io.BytesIO(reply.file("document").data))
    assert result.format == "JPEG" and result.size == (512, 512) and not result.getexif()
    for secret in SECRETS:
        assert secret not in reply.file("document").data
    pixels = cv2.cvtColor(np.asarray(result.convert("RGB")), cv2.COLOR_RGB2BGR)
    x, y, w, h = ASTRONAUT_FACE
    assert np.abs(pixels[y : y + h, x : x + w].astype(int) - astronaut_bgr()[y : y + h, x : x + w]).mean() > 30


async def test_an_avif_file_comes_back_as_avif(telegram: FakeTelegramServer, running_bot: RunningBot) -> None:
    message = telegram.send_document(ALICE, stored_sideways("AVIF"), file_name="pic.avif", mime_type="image/avif")

    reply = await telegram.reply_to(message, timeout=30)

    assert reply.method == "sendDocument" and reply.file("document").filename == "pic.avif"
    assert reply.text == ENGLISH.faces_covered.format(count=1)
    assert Image.open(io.BytesIO(reply.file("document").data)).format == "AVIF"


# -- the second look -------------------------------------------------------------------------------------------


async def first_look(
    telegram: FakeTelegramServer, running_bot: RunningBot, monkeypatch: pytest.MonkeyPatch
) -> tuple[list[Job], dict[str, Any], Call]:
    """Alice's photo and its first look, with every job the bot runs from now on recorded."""
    jobs = spy_on_jobs(running_bot.deployment.jobs, monkeypatch)
    photo = telegram.send_photo(ALICE, jpeg(astronaut_bgr()))
    return jobs, photo, await telegram.reply_to(photo)


async def test_strict_as_a_reply_to_the_photo_looks_again_with_the_thorough_detectors(
    telegram: FakeTelegramServer, running_bot: RunningBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    jobs, photo, first = await first_look(telegram, running_bot, monkeypatch)
    command = telegram.send_text(ALICE, "/strict", reply_to=photo)

    second = await telegram.reply_to(command, timeout=30)

    assert first.method == "sendPhoto" and "reply_markup" in first.params
    assert second.method == "sendPhoto"
    assert second.text == ENGLISH.strict_covered.format(count=1)
    offered = [button["text"] for row in second.params["reply_markup"]["inline_keyboard"] for button in row]
    assert offered == [ENGLISH.choose_faces], "the second look is the last one offered; choosing faces stays"
    original = photo["photo"][-1]["file_id"]
    assert [call.params["file_id"] for call in telegram.calls_of("getFile")] == [original, original]
    assert [(job.strict, job.options.detector, job.options.threshold) for job in jobs] == [
        (False, "backup:scrfd,yunet,haar", None),
        (True, STRICT_DETECTOR, None),
    ]
    face = decode(second.file("photo").data)
    x, y, w, h = ASTRONAUT_FACE
    assert np.abs(face[y : y + h, x : x + w].astype(int) - astronaut_bgr()[y : y + h, x : x + w]).mean() > 25


async def test_the_look_harder_button_runs_the_original_again_once(
    telegram: FakeTelegramServer, running_bot: RunningBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    jobs, photo, first = await first_look(telegram, running_bot, monkeypatch)

    query_id = telegram.press_button(ALICE, first.response, button_data(first))
    second = await telegram.wait_for(
        lambda call: call.method == "sendPhoto" and call.reply_to_message_id == first.response["message_id"], timeout=30
    )

    (answered,) = await telegram.wait_for(lambda call: call.method == "answerCallbackQuery")
    assert answered.params["callback_query_id"] == query_id and answered.params["text"] == ENGLISH.strict_started
    (unbuttoned,) = telegram.calls_of("editMessageReplyMarkup", ALICE.id)
    assert int(unbuttoned.params["message_id"]) == first.response["message_id"]
    (second_photo,) = [call for call in telegram.calls_of("sendPhoto", ALICE.id) if call is not first]
    assert second_photo.reply_to_message_id == first.response["message_id"]
    assert second_photo.text == ENGLISH.strict_covered.format(count=1)
    assert second and jobs[1].strict and jobs[1].options.detector == STRICT_DETECTOR
    original = photo["photo"][-1]["file_id"]
    assert [call.params["file_id"] for call in telegram.calls_of("getFile")] == [original, original], (
        "the original is fetched again, never the anonymized result"
    )


async def test_strict_as_a_reply_to_the_result_finds_the_original(
    telegram: FakeTelegramServer, running_bot: RunningBot
) -> None:
    document = telegram.send_document(ALICE, jpeg(astronaut_bgr()), file_name="me.jpg", mime_type="image/jpeg")
    first = await telegram.reply_to(document)
    command = telegram.send_text(ALICE, "/strict", reply_to=first.response)

    second = await telegram.reply_to(command, timeout=30)

    assert second.method == "sendDocument", "a file gets a file back, the second time too"
    assert second.text == ENGLISH.strict_covered.format(count=1)
    original = document["document"]["file_id"]
    assert [call.params["file_id"] for call in telegram.calls_of("getFile")] == [original, original]


async def test_the_button_is_for_the_photos_owner_and_only_for_a_while(
    telegram: FakeTelegramServer, start_bot: StartBot
) -> None:
    running = await start_bot(strict_window_seconds=1.0)
    first = await telegram.reply_to(telegram.send_photo(ALICE, jpeg(astronaut_bgr())))

    telegram.press_button(CAROL, first.response, button_data(first))
    (refused,) = await telegram.wait_for(lambda call: call.method == "answerCallbackQuery", timeout=10)
    await asyncio.sleep(1.2)
    assert len(running.deployment.originals) == 0, "the original's file id is forgotten after the window"
    telegram.press_button(ALICE, first.response, button_data(first))
    expired = (await telegram.wait_for(lambda call: call.method == "answerCallbackQuery", count=2, timeout=10))[1]

    assert refused.params["text"] == ENGLISH.strict_not_yours and refused.params["show_alert"] is True
    assert expired.params["text"] == ENGLISH.strict_expired and expired.params["show_alert"] is True
    assert len(telegram.calls_of("getFile")) == 1 and len(telegram.calls_of("sendPhoto")) == 1


@pytest.mark.parametrize(
    ("replied_to", "expected"),
    [
        pytest.param(None, ENGLISH.strict_how, id="no-reply"),
        pytest.param("video", ENGLISH.strict_photos_only, id="reply-to-a-video"),
        pytest.param("text", ENGLISH.strict_how, id="reply-to-a-text"),
    ],
)
async def test_strict_without_a_photo_says_how_to_use_it(
    telegram: FakeTelegramServer, running_bot: RunningBot, replied_to: str | None, expected: str
) -> None:
    target = {
        None: None,
        "video": telegram.send_video(ALICE, width=192, height=144, file_size=30 * 1024 * 1024),
        "text": telegram.send_text(ALICE, "hello"),
    }[replied_to]
    command = telegram.send_text(ALICE, "/strict", reply_to=target)

    reply = await telegram.reply_to(command)

    assert reply.text == expected
    assert not telegram.calls_of("getFile")

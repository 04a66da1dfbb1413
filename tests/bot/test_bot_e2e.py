"""The bot end to end: real aiogram dispatcher and HTTP session, real worker processes, a fake Bot API server."""

from __future__ import annotations

import asyncio
import io

import cv2
import numpy as np
import pytest
from PIL import Image
from skimage import data

import filters
from bot.handlers.mode import FilterChoice
from bot.texts import ENGLISH, RUSSIAN, Texts
from testing.fake_telegram import DOWNLOAD, Call, FakeTelegramServer, FakeUser, Fault
from testing.images import ASTRONAUT_FACE, Box, astronaut_bgr, composite, jpeg, png
from tests.bot.helpers import RunningBot, StartBot, decode, pil_image

ALICE = FakeUser(1001, "Alice", "en")
BORIS = FakeUser(1002, "Борис", "ru-RU")


def region(image: np.ndarray, box: Box | tuple[int, int, int, int]) -> np.ndarray:
    x, y, w, h = (box.x, box.y, box.w, box.h) if isinstance(box, Box) else box
    return image[y : y + h, x : x + w].astype(np.int16)


def outside(boxes: list[Box], shape: tuple[int, ...], grow: float = 0.6) -> np.ndarray:
    """Pixels well away from every face (the filter's mask, margin and soft edge included)."""
    keep = np.ones(shape[:2], bool)
    for box in boxes:
        mx, my = int(box.w * grow), int(box.h * grow)
        keep[max(0, box.y - my) : box.y + box.h + my, max(0, box.x - mx) : box.x + box.w + mx] = False
    return keep


def spread(pixels: np.ndarray) -> float:
    """How much the pixels vary within each colour channel: high for noise, near zero for a flat fill."""
    return float(pixels.std(axis=(0, 1)).max())


def mean_difference(a: np.ndarray, b: np.ndarray, where: np.ndarray | None = None) -> float:
    difference = np.abs(a.astype(np.int16) - b.astype(np.int16)).mean(axis=2)
    return float(difference[where].mean() if where is not None else difference.mean())


async def answer_in_chat(telegram: FakeTelegramServer, user: FakeUser, method: str = "sendMessage") -> Call:
    (call,) = await telegram.wait_for(lambda c: c.method == method and c.chat_id == user.id, timeout=10)
    return call


async def test_start_and_help_speak_the_users_language(telegram: FakeTelegramServer, running_bot: RunningBot) -> None:
    telegram.send_text(ALICE, "/start")
    start = await answer_in_chat(telegram, ALICE)
    assert start.text == ENGLISH.start

    telegram.send_text(BORIS, "/help")
    help_ru = await answer_in_chat(telegram, BORIS)
    assert "Что я храню" in help_ru.text and "Никаких снимков и видео" in help_ru.text
    for name in RUSSIAN.filter_names.values():
        assert name in help_ru.text
    assert "20 МБ" in help_ru.text and "60 с" in help_ru.text and "60 минут" in help_ru.text
    assert "Посмотрите на каждый результат" in help_ru.text and "/strict" in help_ru.text

    commands = telegram.calls_of("setMyCommands")
    assert {call.params.get("language_code") for call in commands} == {None, "ru"}
    assert {command["command"] for command in commands[0].params["commands"]} == {"start", "help", "mode", "strict"}


def test_no_text_promises_every_face_and_each_asks_to_look_before_sharing() -> None:
    """The default fully anonymizes about nine photos in ten: the bot must not claim to find every face."""
    promises = ((ENGLISH, "every human face", "look"), (RUSSIAN, "все человеческие лица", "Посмотрите"))
    for texts, promise, look in promises:
        everything = " ".join(str(value) for value in vars(texts).values())
        assert promise not in everything
        assert look.lower() in texts.start.lower() and look.lower() in texts.help.lower()
    assert "check it before sharing" in ENGLISH.faces_covered and "Проверьте" in RUSSIAN.faces_covered
    assert "/strict" in ENGLISH.start and "/strict" in RUSSIAN.start


@pytest.mark.parametrize("texts", [ENGLISH, RUSSIAN], ids=["en", "ru"])
def test_every_registered_filter_has_a_button_label_and_a_help_line(texts: Texts) -> None:
    """/mode offers every filter of the registry: a new one needs a name, and a line in /help, in each language."""
    for name in filters.available():
        assert texts.filter_names.get(name), f"{name} has no label"
        assert f"• {texts.filter_names[name]} — " in texts.help, f"{name} is not described in /help"


async def test_photo_comes_back_with_the_face_covered(telegram: FakeTelegramServer, running_bot: RunningBot) -> None:
    original = astronaut_bgr()
    message = telegram.send_photo(ALICE, jpeg(original))

    reply = await telegram.reply_to(message)

    assert reply.method == "sendPhoto"
    assert reply.text == ENGLISH.faces_covered.format(count=1)
    result = decode(reply.file("photo").data)
    assert result.shape == original.shape
    assert mean_difference(region(result, ASTRONAUT_FACE), region(original, ASTRONAUT_FACE)) > 25
    face = Box(*ASTRONAUT_FACE)
    assert mean_difference(result, original, outside([face], original.shape)) < 4
    full_size = message["photo"][-1]["file_id"]
    assert [call.params["file_id"] for call in telegram.calls_of("getFile")] == [full_size]
    assert any(call.params["action"] == "upload_photo" for call in telegram.calls_of("sendChatAction", ALICE.id))


async def test_image_file_loses_exif_and_gps_and_is_turned_upright(
    telegram: FakeTelegramServer, running_bot: RunningBot
) -> None:
    upright, boxes = composite((480, 320), [(150, 40, 120)], background=120)
    stored = Image.fromarray(cv2.cvtColor(upright, cv2.COLOR_BGR2RGB)).transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: turn 90 degrees clockwise to display
    exif[0x010F] = "CameraMaker"
    exif.get_ifd(0x8825).update({1: "N", 2: (55.0, 45.0, 21.0), 3: "E", 4: (37.0, 37.0, 4.0)})
    buffer = io.BytesIO()
    stored.save(buffer, "JPEG", quality=95, exif=exif)
    message = telegram.send_document(ALICE, buffer.getvalue(), file_name="holiday.jpg", mime_type="image/jpeg")

    reply = await telegram.reply_to(message)

    assert reply.method == "sendDocument"
    assert reply.text == ENGLISH.faces_covered.format(count=1)
    uploaded = reply.file("document")
    assert uploaded.filename == "holiday.jpg"
    result = pil_image(uploaded.data)
    assert result.format == "JPEG"
    assert result.size == (480, 320)
    assert {call.params["action"] for call in telegram.calls_of("sendChatAction", ALICE.id)} == {"upload_document"}
    assert not result.getexif()
    assert "exif" not in result.info and "xmp" not in result.info
    pixels = cv2.cvtColor(np.asarray(result.convert("RGB")), cv2.COLOR_RGB2BGR)
    assert mean_difference(pixels, upright, outside(boxes, upright.shape)) < 4
    assert mean_difference(region(pixels, boxes[0]), region(upright, boxes[0])) > 25


async def test_png_file_comes_back_as_png(telegram: FakeTelegramServer, running_bot: RunningBot) -> None:
    message = telegram.send_document(ALICE, png(astronaut_bgr()), file_name="portrait.png", mime_type="image/png")

    reply = await telegram.reply_to(message)

    assert reply.method == "sendDocument"
    assert reply.file("document").filename == "portrait.png"
    assert pil_image(reply.file("document").data).format == "PNG"


async def test_album_comes_back_as_one_album_in_order(telegram: FakeTelegramServer, running_bot: RunningBot) -> None:
    layouts = [[(20, 20, 100)], [(200, 60, 110)], [(120, 120, 90)]]
    pictures = [composite((400, 300), faces, background=60 + 50 * index) for index, faces in enumerate(layouts)]
    messages = telegram.send_album(ALICE, [jpeg(image) for image, _ in pictures])

    reply = await telegram.reply_to(messages[0])

    assert reply.method == "sendMediaGroup"
    assert reply.text == "\n".join([ENGLISH.faces_covered.format(count=3), ENGLISH.album_strict_hint])
    media = reply.media
    assert [item["type"] for item in media] == ["photo"] * 3
    for item, (image, boxes) in zip(media, pictures, strict=True):
        result = decode(item["data"])
        assert mean_difference(result, image, outside(boxes, image.shape)) < 4
        assert mean_difference(region(result, boxes[0]), region(image, boxes[0])) > 25
    await asyncio.sleep(0.5)
    album, chooser = telegram.answers_in(ALICE.id)
    assert album is reply, "the album is the one answer to the user's message"
    assert chooser.text == ENGLISH.choose_in_album and chooser.reply_to_message_id == reply.response[0]["message_id"]


async def test_album_names_the_pictures_without_a_face(telegram: FakeTelegramServer, running_bot: RunningBot) -> None:
    coffee = cv2.cvtColor(data.coffee(), cv2.COLOR_RGB2BGR)
    messages = telegram.send_album(ALICE, [jpeg(astronaut_bgr()), jpeg(coffee)])

    reply = await telegram.reply_to(messages[0])

    assert reply.method == "sendMediaGroup" and len(reply.media) == 2
    unchanged = ENGLISH.album_unchanged.format(positions="2")
    assert reply.text == "\n".join([ENGLISH.faces_covered.format(count=1), unchanged, ENGLISH.album_strict_hint])
    assert mean_difference(decode(reply.media[1]["data"]), coffee) < 4


async def test_photo_without_a_face_is_not_changed(telegram: FakeTelegramServer, running_bot: RunningBot) -> None:
    coffee = cv2.cvtColor(data.coffee(), cv2.COLOR_RGB2BGR)
    message = telegram.send_photo(BORIS, jpeg(coffee))

    reply = await telegram.reply_to(message)

    assert reply.method == "sendMessage"
    assert reply.text == RUSSIAN.no_face


async def test_mode_switches_the_filter_for_this_user(telegram: FakeTelegramServer, running_bot: RunningBot) -> None:
    photo = jpeg(astronaut_bgr())
    x, y, w, h = ASTRONAUT_FACE
    centre = (x + w // 4, y + h // 4, w // 2, h // 2)

    before = await telegram.reply_to(telegram.send_photo(ALICE, photo))
    noisy = decode(before.file("photo").data)

    telegram.send_text(ALICE, "/mode")
    menu = await answer_in_chat(telegram, ALICE)
    buttons = [button for row in menu.params["reply_markup"]["inline_keyboard"] for button in row]
    assert len(buttons) == 4
    solid_button = next(button for button in buttons if button["text"].endswith("solid"))
    query_id = telegram.press_button(ALICE, menu.response, solid_button["callback_data"])
    edited = await answer_in_chat(telegram, ALICE, "editMessageText")
    assert "solid" in edited.text
    await telegram.wait_for(lambda c: c.method == "answerCallbackQuery" and c.params["callback_query_id"] == query_id)

    after = await telegram.reply_to(telegram.send_photo(ALICE, photo))
    solid = decode(after.file("photo").data)

    assert spread(region(noisy, centre)) > 30
    assert spread(region(solid, centre)) < 8
    other = await telegram.reply_to(telegram.send_photo(BORIS, photo))
    assert spread(region(decode(other.file("photo").data), centre)) > 30, "another user's choice leaked"


@pytest.mark.parametrize(
    "send",
    [
        pytest.param(lambda server: server.send_sticker(ALICE), id="sticker"),
        pytest.param(lambda server: server.send_voice(ALICE), id="voice"),
        pytest.param(lambda server: server.send_text(ALICE, "hello there"), id="text"),
        pytest.param(
            lambda server: server.send_document(ALICE, b"%PDF-1.7\n", file_name="a.pdf", mime_type="application/pdf"),
            id="pdf-document",
        ),
    ],
)
async def test_anything_but_a_picture_gets_one_clear_reply(
    telegram: FakeTelegramServer, running_bot: RunningBot, send
) -> None:
    message = send(telegram)

    reply = await telegram.reply_to(message)

    assert reply.method == "sendMessage"
    assert reply.text == ENGLISH.unsupported
    assert not telegram.calls_of("getFile") and not telegram.downloads
    await asyncio.sleep(0.3)
    assert len(telegram.answers_in(ALICE.id)) == 1


async def test_file_over_the_download_limit_is_refused_before_downloading(
    telegram: FakeTelegramServer, running_bot: RunningBot
) -> None:
    message = telegram.send_document(
        ALICE, jpeg(astronaut_bgr()), file_name="huge.jpg", mime_type="image/jpeg", file_size=25 * 1024 * 1024
    )

    reply = await telegram.reply_to(message)

    assert reply.text == ENGLISH.too_large.format(max_mb=20)
    assert not telegram.calls_of("getFile") and not telegram.downloads


async def test_photo_over_the_pixel_limit_is_refused_before_downloading(
    telegram: FakeTelegramServer, start_bot: StartBot
) -> None:
    await start_bot(max_pixels=200_000)
    message = telegram.send_photo(ALICE, jpeg(astronaut_bgr()))

    reply = await telegram.reply_to(message)

    assert reply.text == ENGLISH.too_many_pixels.format(max_mp=0)
    assert not telegram.calls_of("getFile") and not telegram.downloads


async def test_image_file_over_the_pixel_limit_is_refused(telegram: FakeTelegramServer, start_bot: StartBot) -> None:
    await start_bot(max_pixels=1_000_000)
    big, _ = composite((1600, 1000), [(100, 100, 200)])
    message = telegram.send_document(BORIS, png(big), file_name="big.png", mime_type="image/png")

    reply = await telegram.reply_to(message)

    assert reply.method == "sendMessage"
    assert reply.text == RUSSIAN.too_many_pixels.format(max_mp=1)


async def test_corrupt_image_gets_a_clear_reply(telegram: FakeTelegramServer, running_bot: RunningBot) -> None:
    broken = jpeg(astronaut_bgr())[:600]
    message = telegram.send_document(ALICE, broken, file_name="broken.jpg", mime_type="image/jpeg")

    reply = await telegram.reply_to(message)

    assert reply.method == "sendMessage"
    assert reply.text == ENGLISH.corrupt


async def test_only_allowed_users_are_served(telegram: FakeTelegramServer, start_bot: StartBot) -> None:
    await start_bot(allowed_user_ids=frozenset({ALICE.id}))
    telegram.send_text(ALICE, "/start")
    telegram.send_text(BORIS, "/start")
    telegram.send_album(BORIS, [jpeg(astronaut_bgr())] * 2)
    telegram.send_photo(BORIS, jpeg(astronaut_bgr()))
    query_id = telegram.press_button(BORIS, telegram.send_text(BORIS, "/mode"), FilterChoice(name="solid").pack())

    assert (await answer_in_chat(telegram, ALICE)).text == ENGLISH.start
    await telegram.wait_for(lambda c: c.chat_id == BORIS.id and c.method == "sendMessage", count=4)
    (alert,) = await telegram.wait_for(lambda c: c.method == "answerCallbackQuery")
    await asyncio.sleep(0.5)

    assert [call.text for call in telegram.answers_in(BORIS.id)] == [RUSSIAN.not_allowed] * 4, "one per request"
    assert alert.params["callback_query_id"] == query_id and alert.params["text"] == RUSSIAN.not_allowed
    assert not telegram.calls_of("getFile") and not telegram.calls_of("editMessageText")


async def test_a_second_photo_in_flight_gets_busy_not_silence(
    telegram: FakeTelegramServer, start_bot: StartBot
) -> None:
    await start_bot(per_user_limit=1)
    photo = jpeg(astronaut_bgr())
    first, second = telegram.send_photo(ALICE, photo), telegram.send_photo(ALICE, photo)

    replies = [await telegram.reply_to(first), await telegram.reply_to(second)]

    assert sorted(reply.method for reply in replies) == ["sendMessage", "sendPhoto"]
    busy = next(reply for reply in replies if reply.method == "sendMessage")
    assert busy.text.startswith(ENGLISH.busy.split("{")[0])


async def test_download_past_the_deadline_gets_an_apology(telegram: FakeTelegramServer, start_bot: StartBot) -> None:
    await start_bot(deadline_seconds=4)
    telegram.inject(DOWNLOAD, Fault("delay", seconds=5))
    message = telegram.send_photo(ALICE, jpeg(astronaut_bgr()))

    reply = await telegram.reply_to(message)

    assert reply.method == "sendMessage"
    assert reply.text == ENGLISH.timeout


async def test_ten_users_at_once_each_get_their_own_picture(
    telegram: FakeTelegramServer, running_bot: RunningBot
) -> None:
    users = [FakeUser(2000 + index, f"User{index}", "en") for index in range(10)]
    pictures = [
        composite((360, 270), [(20 + 25 * index, 20 + 10 * index, 90)], background=40 + 18 * index)
        for index in range(10)
    ]
    messages = [telegram.send_photo(user, jpeg(image)) for user, (image, _) in zip(users, pictures, strict=True)]

    replies = await asyncio.gather(*(telegram.reply_to(message, timeout=15) for message in messages))

    results = [decode(reply.file("photo").data) for reply in replies]
    for index, (result, (image, boxes)) in enumerate(zip(results, pictures, strict=True)):
        assert replies[index].text == ENGLISH.faces_covered.format(count=1)
        keep = outside(boxes, image.shape)
        own = mean_difference(result, image, keep)
        assert own < 4, f"user {index} got a picture that is not theirs"
        others = [mean_difference(result, other, keep) for j, (other, _) in enumerate(pictures) if j != index]
        assert min(others) > 10
    await asyncio.sleep(0.5)
    assert [len(telegram.answers_in(user.id)) for user in users] == [1] * 10

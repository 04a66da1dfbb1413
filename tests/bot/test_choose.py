"""Choosing which faces stay covered, in the chat, end to end: the real dispatcher, worker processes and the fake Bot
API; each picture checked against the original, pixel by pixel."""

from __future__ import annotations

import asyncio

import numpy as np

from bot.texts import ENGLISH
from testing.fake_telegram import FakeTelegramServer, FakeUser
from testing.images import composite, jpeg, png
from tests.bot.helpers import (
    PAINTED,
    UNCHANGED,
    RunningBot,
    StartBot,
    away_from,
    buttons,
    change,
    choose_and_show,
    decode,
    markup_of,
    numbered,
    press,
)

ALICE = FakeUser(6001, "Alice", "en")
BORIS = FakeUser(6002, "Boris", "en")
# Three heads in one row, rising to the right: numbered 1, 2, 3 from the left, as `photo-anon detect` numbers them.
THREE_FACES, THREE_BOXES = composite((960, 400), [(40, 70, 100), (340, 55, 100), (640, 40, 100)], background=110)


async def test_choosing_shows_the_face_asked_for_and_covers_the_others(
    telegram: FakeTelegramServer, running_bot: RunningBot
) -> None:
    photo = telegram.send_photo(ALICE, jpeg(THREE_FACES))
    result = await telegram.reply_to(photo)
    assert ENGLISH.choose_faces in buttons(result.params["reply_markup"])
    message = result.response

    preview, toggled, final = await choose_and_show(telegram, ALICE, message, number=2)

    assert int(preview.params["message_id"]) == message["message_id"], "the result is edited, not sent anew"
    assert preview.params["media"]["caption"] == ENGLISH.choose_prompt
    faces = numbered(THREE_BOXES)
    shown_preview = decode(preview.edited_media.data)
    assert all(change(THREE_FACES, shown_preview, box) > PAINTED for box in faces), "the preview shows a face"
    assert set(buttons(markup_of(toggled))) >= {"1 ✓", "2 ○", "3 ✓", ENGLISH.choose_done}
    picture = decode(final.edited_media.data)
    assert change(THREE_FACES, picture, faces[1]) < UNCHANGED, "face 2 was not shown"
    assert change(THREE_FACES, picture, faces[0]) > PAINTED and change(THREE_FACES, picture, faces[2]) > PAINTED
    rest = away_from(THREE_BOXES, THREE_FACES.shape)
    assert np.abs(picture[rest].astype(np.int16) - THREE_FACES[rest].astype(np.int16)).mean() < 3
    final_media = final.params["media"]
    assert final_media["type"] == "photo"
    assert final_media["caption"].startswith(ENGLISH.chosen_covered.format(covered=2, count=3, shown="2"))
    assert set(buttons(markup_of(final))) == {ENGLISH.look_harder, ENGLISH.choose_faces}, "the choice can change"
    assert len(telegram.calls_of("getFile")) == 3, "each render fetches the original again"


async def test_an_image_file_comes_back_a_file_of_the_same_format_with_only_the_chosen_faces_shown(
    telegram: FakeTelegramServer, running_bot: RunningBot
) -> None:
    document = telegram.send_document(ALICE, png(THREE_FACES), file_name="team.png", mime_type="image/png")
    result = await telegram.reply_to(document)

    _, _, final = await choose_and_show(telegram, ALICE, result.response, number=3)

    assert final.params["media"]["type"] == "document"
    assert final.edited_media.filename == "team.png"
    picture = decode(final.edited_media.data)
    faces = numbered(THREE_BOXES)
    assert change(THREE_FACES, picture, faces[2]) == 0, "a lossless file shows the chosen face exactly"
    assert change(THREE_FACES, picture, faces[0]) > PAINTED and change(THREE_FACES, picture, faces[1]) > PAINTED
    rest = away_from(THREE_BOXES, THREE_FACES.shape)
    assert np.array_equal(picture[rest], THREE_FACES[rest])


async def test_an_albums_picture_is_chosen_from_a_message_of_its_own(
    telegram: FakeTelegramServer, running_bot: RunningBot
) -> None:
    pictures = [composite((500, 360), [(60 + 150 * i, 60, 110)], background=70 + 40 * i) for i in range(2)]
    album = telegram.send_album(ALICE, [jpeg(image) for image, _ in pictures])
    sent = await telegram.reply_to(album[0])
    panel_call = await telegram.wait_for(lambda call: call.method == "sendMessage" and call.chat_id == ALICE.id)
    panel = panel_call[0].response
    assert panel["text"] == ENGLISH.choose_in_album and set(buttons(panel["reply_markup"])) == {"1", "2"}
    second = sent.response[1]

    await press(telegram, ALICE, panel, "2", "editMessageText")  # the picture's preview first, then its buttons
    toggled = await press(telegram, ALICE, panel, "1 ✓", "editMessageReplyMarkup")
    final = await press(telegram, ALICE, panel, ENGLISH.choose_done, "editMessageMedia")

    assert "1 ○" in buttons(markup_of(toggled))
    assert int(final.params["message_id"]) == second["message_id"]
    image, (face,) = pictures[1]
    picture = decode(final.edited_media.data)
    assert change(image, picture, face) < UNCHANGED
    await asyncio.sleep(0.3)
    assert telegram.messages[(ALICE.id, panel["message_id"])]["text"] == ENGLISH.choose_in_album, "the list is back"
    first_picture = decode(telegram.files[sent.response[0]["photo"][-1]["file_id"]].data)
    assert change(pictures[0][0], first_picture, pictures[0][1][0]) > PAINTED, "the other picture was changed"


async def test_a_second_looks_result_can_be_chosen_on_too(
    telegram: FakeTelegramServer, running_bot: RunningBot
) -> None:
    photo = telegram.send_photo(ALICE, jpeg(THREE_FACES))
    first = await telegram.reply_to(photo)
    again = await press(telegram, ALICE, first.response, ENGLISH.look_harder, "sendPhoto")
    assert set(buttons(again.params["reply_markup"])) == {ENGLISH.choose_faces}

    _, _, final = await choose_and_show(telegram, ALICE, again.response, number=1)

    picture = decode(final.edited_media.data)
    faces = numbered(THREE_BOXES)
    assert change(THREE_FACES, picture, faces[0]) < UNCHANGED and change(THREE_FACES, picture, faces[1]) > PAINTED
    assert set(buttons(markup_of(final))) == {ENGLISH.choose_faces}


async def test_two_users_choosing_at_once_get_their_own_pictures(
    telegram: FakeTelegramServer, running_bot: RunningBot
) -> None:
    other, other_boxes = composite((960, 400), [(40, 40, 100), (500, 60, 100)], background=40)
    results = [
        await telegram.reply_to(telegram.send_photo(user, jpeg(image)))
        for user, image in ((ALICE, THREE_FACES), (BORIS, other))
    ]

    finals = await asyncio.gather(
        choose_and_show(telegram, ALICE, results[0].response, number=2),
        choose_and_show(telegram, BORIS, results[1].response, number=1),
    )

    alices, boris = (decode(final.edited_media.data) for _, _, final in finals)
    assert finals[0][2].chat_id == ALICE.id and finals[1][2].chat_id == BORIS.id
    assert change(THREE_FACES, alices, numbered(THREE_BOXES)[1]) < UNCHANGED
    assert change(other, boris, numbered(other_boxes)[0]) < UNCHANGED
    assert change(other, boris, numbered(other_boxes)[1]) > PAINTED


async def test_only_the_sender_can_choose_and_an_old_or_deleted_result_says_why(
    telegram: FakeTelegramServer, start_bot: StartBot
) -> None:
    await start_bot(strict_window_seconds=2)
    result = (await telegram.reply_to(telegram.send_photo(ALICE, jpeg(THREE_FACES)))).response
    deleted = (await telegram.reply_to(telegram.send_photo(ALICE, jpeg(THREE_FACES)))).response

    stranger = await press(telegram, BORIS, result, ENGLISH.choose_faces, "answerCallbackQuery")
    removed = telegram.messages.pop((ALICE.id, deleted["message_id"]))  # the user deleted it
    gone = await press(telegram, ALICE, removed, ENGLISH.choose_faces, "answerCallbackQuery")
    await asyncio.sleep(2.2)
    expired = await press(telegram, ALICE, result, ENGLISH.choose_faces, "answerCallbackQuery")

    assert stranger.params["text"] == ENGLISH.choose_not_yours and stranger.params["show_alert"]
    assert gone.params["text"] == ENGLISH.choose_gone
    assert expired.params["text"] == ENGLISH.choose_expired
    (tried,) = telegram.calls_of("editMessageMedia")
    assert "error_code" in tried.response, "a picture was shown where it may not be"

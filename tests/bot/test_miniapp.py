"""The Mini App editor in a real browser: Debian's Chromium driven by Playwright opens the page the `Edit` button
names, served by the embedded bot (its real dispatcher, worker processes and web server) over the fake Bot API. Only
Telegram's client side is played by the test (testing.miniapp): the init data it signs and the script it serves.
Every final picture is checked against the original, pixel by pixel."""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import numpy as np
import pytest
import pytest_asyncio
from playwright.async_api import Browser, expect

from bot.miniapp.server import EDITOR_CALLS_PER_MINUTE, MAX_REGIONS
from bot.pool import ProcessPool
from bot.texts import ENGLISH, texts_for
from testing.bots import RunningBot, run_embedded_bot
from testing.cluster import free_port
from testing.fake_telegram import TOKEN, FakeTelegramServer, FakeUser
from testing.images import Box, composite, jpeg
from testing.miniapp import DESKTOP, PHONE, EditorPage, headless_chromium, open_editor, sign_init_data
from tests.bot.helpers import (
    UNCHANGED,
    assert_chosen,
    bot_settings,
    buttons,
    change,
    decode,
    editor_offered,
    final_picture,
    markup_of,
    numbered,
    patch_photo,
    web_app_urls,
)

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.browser]

PHOTO, BOXES, PATCH = patch_photo()
FACES = numbered(BOXES)
# Where `make screenshot` wants the phone's view of the editor (docs/miniapp-editor.png).
SCREENSHOT = os.environ.get("MINIAPP_SCREENSHOT")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def telegram() -> AsyncIterator[FakeTelegramServer]:
    async with FakeTelegramServer(TOKEN) as server:
        yield server


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def editor_bot(telegram: FakeTelegramServer, worker_pool: ProcessPool) -> AsyncIterator[RunningBot]:
    """The embedded bot with the editor on a port of its own, as an operator's reverse proxy would reach it."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/editor/"
    started = run_embedded_bot(bot_settings(telegram, webapp_url=url, webapp_port=port), worker_pool)
    await telegram.wait_for(lambda call: call.method == "deleteWebhook", timeout=10)
    yield started
    await started.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with headless_chromium() as chromium:
        yield chromium


async def result_with_editor(telegram: FakeTelegramServer, user: FakeUser, image: np.ndarray) -> tuple[Any, str]:
    """Send a photo; the bot's result, and the address its Edit button opens."""
    result = (await telegram.reply_to(telegram.send_photo(user, jpeg(image)))).response
    return result, await editor_offered(telegram, result)


async def photo_in_editor(
    telegram: FakeTelegramServer, browser: Browser, user: FakeUser, device: dict[str, Any]
) -> tuple[dict[str, Any], EditorPage]:
    """`user` sends the photo and opens the editor from its result, which shows the three faces."""
    result, url = await result_with_editor(telegram, user, PHOTO)
    editor = await open_editor(browser, url, sign_init_data(TOKEN, user), user, device)
    await expect(editor.page.locator(".face")).to_have_count(3)
    return result, editor


def policy_violations(editor: EditorPage) -> list[str]:
    return [line for line in editor.console if "Content Security Policy" in line]


async def test_on_a_phone_a_tap_shows_a_face_and_a_finger_covers_what_was_missed(
    telegram: FakeTelegramServer, editor_bot: RunningBot, browser: Browser
) -> None:
    result, editor = await photo_in_editor(telegram, browser, FakeUser(7001, "Alice", "en"), PHONE)
    page = editor.page
    await expect(page.locator("#status")).to_have_text(ENGLISH.editor["status"].format(covered=3, count=3, regions=0))
    whole = (await editor.picture_box())["width"]

    # Two fingers spread apart zoom in on face 2, which a tap then shows.
    x, y = await editor.at(FACES[1].x + FACES[1].w / 2, FACES[1].y + FACES[1].h / 2)
    await editor.touch(
        [(x - 30 - 8 * step, y) for step in range(7)],
        [(x + 30 + 8 * step, y) for step in range(7)],
    )
    assert (await editor.picture_box())["width"] > 1.5 * whole, "the pinch did not zoom"
    await editor.tap_on(FACES[1])
    await expect(page.locator('.face[data-number="2"]')).to_have_class(re.compile(r"\bshown\b"))
    await editor.press("#fit")

    # A finger drawn across the patch marks it.
    await editor.mark(PATCH)
    await expect(page.locator(".region")).to_have_count(1)
    await expect(page.locator("#status")).to_have_text(ENGLISH.editor["status"].format(covered=2, count=3, regions=1))
    if SCREENSHOT:
        await page.screenshot(path=SCREENSHOT)

    await editor.press("#apply")
    final = await final_picture(telegram, result)
    await editor.closed()

    assert_chosen(PHOTO, BOXES, decode(final.edited_media.data), shown=2, covered_too=[PATCH])
    assert final.params["media"]["type"] == "photo"
    caption = final.params["media"]["caption"]
    assert ENGLISH.chosen_covered.format(covered=2, count=3, shown="2") in caption
    assert ENGLISH.regions_covered.format(count=1) in caption
    assert ENGLISH.edit in web_app_urls(markup_of(final)), "the editor is offered again under the final"
    assert not policy_violations(editor)
    await editor.context.close()


async def test_with_a_mouse_areas_are_moved_resized_deleted_and_undone(
    telegram: FakeTelegramServer, editor_bot: RunningBot, browser: Browser
) -> None:
    result, editor = await photo_in_editor(telegram, browser, FakeUser(7002, "Boris", "en"), DESKTOP)
    page = editor.page

    # A rectangle drawn too small and beside the patch, then moved onto it and stretched from its corner.
    await page.locator("#box").click()
    await editor.drag(await editor.at(PATCH.x - 150, PATCH.y - 180), await editor.at(PATCH.x - 40, PATCH.y - 80))
    await editor.drag(await editor.at(PATCH.x - 100, PATCH.y - 130), await editor.at(PATCH.x + 50, PATCH.y + 50))
    corner = await editor.at(PATCH.x + 110, PATCH.y + 100)
    await editor.drag(corner, await editor.at(PATCH.x + PATCH.w, PATCH.y + PATCH.h))
    # A stray rectangle elsewhere; the patch's rectangle selected, then the stray one, which is deleted.
    stray = Box(40, 350, 120, 100)
    await editor.mark(stray, margin=0)
    await expect(page.locator(".region")).to_have_count(2)
    await editor.tap_on(PATCH)
    await editor.tap_on(stray)
    await expect(page.locator(".region.selected")).to_have_count(1)
    await page.locator("#delete").click()
    await expect(page.locator(".region")).to_have_count(1)
    # Face 3 shown by mistake and undone, face 2 shown; the zoom buttons change nothing of it.
    await editor.tap_on(FACES[2])
    await page.locator("#undo").click()
    await editor.tap_on(FACES[1])
    await page.locator("#zoom-in").click()
    await page.locator("#zoom-out").click()
    await expect(page.locator('.face[data-number="3"]')).to_have_class(re.compile(r"\bcovered\b"))

    await page.locator("#apply").click()
    final = await final_picture(telegram, result)
    await editor.closed()

    assert_chosen(PHOTO, BOXES, decode(final.edited_media.data), shown=2, covered_too=[PATCH], untouched=[stray])
    assert not policy_violations(editor)
    await editor.context.close()


@pytest.mark.parametrize(("device", "owner_id"), [(PHONE, 7011), (DESKTOP, 7012)], ids=["phone", "desktop"])
async def test_forged_expired_or_anothers_init_data_gets_nothing_of_the_picture(
    telegram: FakeTelegramServer, editor_bot: RunningBot, browser: Browser, device: dict[str, Any], owner_id: int
) -> None:
    # The other user's Telegram is in Russian: the page's words and the bot's follow it.
    owner, other = FakeUser(owner_id, "Owner", "en"), FakeUser(owner_id + 10, "Другой", "ru")
    _, url = await result_with_editor(telegram, owner, PHOTO)
    downloads = len(telegram.downloads)
    attempts = {
        "forged": (sign_init_data("123456789:AAnotTheBotsTokenButLooksLikeOne_012345", owner), owner, 401),
        "expired": (sign_init_data(TOKEN, owner, auth_date=time.time() - 2 * 3600), owner, 401),
        "another user": (sign_init_data(TOKEN, other), other, 403),
    }
    for name, (init_data, user, status) in attempts.items():
        editor = await open_editor(browser, url, init_data, user, device)
        texts = texts_for(user.language_code)
        shown = texts.choose_not_yours if status == 403 else texts.editor_unauthorized
        await expect(editor.page.locator("#message")).to_have_text(shown)
        await expect(editor.page.locator("#apply")).to_have_text(texts.editor["apply"])
        api = url.split("?")[0] + "api/"
        assert editor.statuses[api + "result"] == status and editor.statuses[api + "original"] == status, name
        assert await editor.page.locator("#photo").get_attribute("src") is None, name
        await editor.context.close()
    assert len(telegram.downloads) == downloads, "the original was fetched for someone who may not see it"


async def test_more_than_a_hundred_areas_are_refused_by_the_page_and_by_the_bot(
    telegram: FakeTelegramServer, editor_bot: RunningBot, browser: Browser
) -> None:
    result, editor = await photo_in_editor(telegram, browser, FakeUser(7030, "Vera", "en"), DESKTOP)
    page = editor.page

    def areas(count: int) -> list[dict[str, Any]]:
        return [{"x": 10 * (i % 60), "y": 400 + 5 * (i // 60), "w": 20, "h": 20, "shape": "box"} for i in range(count)]

    post = """async (regions) => {
        const answer = await fetch("api/apply" + location.search, {
            method: "POST", body: JSON.stringify({shown: [], regions}),
            headers: {"Content-Type": "application/json", Authorization: "tma " + Telegram.WebApp.initData}});
        return [answer.status, await answer.json()];
    }"""
    refused = await page.evaluate(post, areas(MAX_REGIONS + 1))
    accepted = await page.evaluate(post, areas(MAX_REGIONS))

    assert refused == [422, {"error": ENGLISH.editor_too_many_regions.format(max=MAX_REGIONS)}]
    assert accepted[0] == 200
    await final_picture(telegram, result)
    await page.reload()
    await expect(page.locator(".region")).to_have_count(MAX_REGIONS)
    await editor.mark(Box(300, 700, 100, 100))
    await expect(page.locator("#message")).to_have_text(ENGLISH.editor["too_many"].format(max=MAX_REGIONS))
    await expect(page.locator(".region")).to_have_count(MAX_REGIONS)
    await editor.context.close()


async def test_a_user_calling_too_often_is_held_back(telegram: FakeTelegramServer, editor_bot: RunningBot) -> None:
    user = FakeUser(7040, "Gleb", "en")
    _, url = await result_with_editor(telegram, user, PHOTO)
    page, query = url.split("?")
    headers = {"Authorization": f"tma {sign_init_data(TOKEN, user)}"}
    async with aiohttp.ClientSession() as http:
        statuses = []
        for _ in range(EDITOR_CALLS_PER_MINUTE):
            async with http.get(f"{page}api/result?{query}", headers=headers) as response:
                statuses.append(response.status)
        async with http.get(f"{page}api/original?{query}", headers=headers) as response:
            held, wait, answer = response.status, int(response.headers["Retry-After"]), await response.json()

    assert statuses == [200] * EDITOR_CALLS_PER_MINUTE
    assert held == 429 and 0 < wait <= 60
    assert answer == {"error": ENGLISH.editor_too_fast}


async def test_the_page_and_the_original_carry_their_policies(
    telegram: FakeTelegramServer, editor_bot: RunningBot
) -> None:
    user = FakeUser(7050, "Dana", "en")
    result, url = await result_with_editor(telegram, user, PHOTO)
    page, query = url.split("?")
    async with aiohttp.ClientSession() as http:
        async with http.get(page) as response:
            policy = response.headers["Content-Security-Policy"]
        headers = {"Authorization": f"tma {sign_init_data(TOKEN, user)}"}
        async with http.get(f"{page}api/original?{query}", headers=headers) as response:
            original = await response.read()
            cache = response.headers["Cache-Control"]

    assert "script-src 'self' https://telegram.org;" in policy and "default-src 'none'" in policy
    assert cache == "no-store"
    sent = telegram.messages[(user.id, result["reply_to_message"]["message_id"])]
    assert original == telegram.files[sent["photo"][-1]["file_id"]].data, "not the photo as the user sent it"


async def test_an_albums_pictures_open_in_the_editor_from_the_albums_message(
    telegram: FakeTelegramServer, editor_bot: RunningBot
) -> None:
    user = FakeUser(7060, "Ilya", "en")
    pictures = [composite((500, 360), [(60 + 150 * i, 60, 110)], background=70 + 40 * i) for i in range(2)]
    album = telegram.send_album(user, [jpeg(image) for image, _ in pictures])
    sent = (await telegram.reply_to(album[0])).response
    (panel,) = await telegram.wait_for(lambda call: call.method == "sendMessage" and call.chat_id == user.id)

    urls = web_app_urls(panel.params["reply_markup"])
    assert set(urls) == {f"{ENGLISH.edit} 1", f"{ENGLISH.edit} 2"}
    page, query = urls[f"{ENGLISH.edit} 2"].split("?")
    headers = {"Authorization": f"tma {sign_init_data(TOKEN, user)}"}
    choice = {"shown": [1], "regions": []}
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{page}api/apply?{query}", json=choice, headers=headers) as answer,
    ):
        assert answer.status == 200
    final = await final_picture(telegram, sent[1])

    image, (face,) = pictures[1]
    assert change(image, decode(final.edited_media.data), face) < UNCHANGED
    assert "reply_markup" not in final.params, "an album's picture carries no buttons"


async def test_in_a_group_the_result_has_no_editor_button(telegram: FakeTelegramServer, editor_bot: RunningBot) -> None:
    user, group = FakeUser(7070, "Zoya", "en"), -100700
    result = await telegram.reply_to(telegram.send_photo(user, jpeg(PHOTO), group=group))
    await asyncio.sleep(0.5)  # an editor button would be added now

    assert result.method == "sendPhoto" and ENGLISH.choose_faces in buttons(result.params["reply_markup"])
    assert not telegram.calls_of("editMessageReplyMarkup", chat_id=group)
    assert not web_app_urls(telegram.messages[(group, result.response["message_id"])].get("reply_markup"))

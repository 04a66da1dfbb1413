"""Telegram's client side of the Mini App, the only stand-in in the editor's browser tests: init data signed as Telegram
signs it (with the fake Bot API's token), a small `telegram-web-app.js` served in place of Telegram's by routing that
one URL, and the headless Chromium of Debian's package driven by Playwright, with a user's fingers or mouse."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import shutil
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import pytest
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

from testing.fake_telegram import FakeUser
from testing.images import Box

TELEGRAM_SCRIPT = "https://telegram.org/js/telegram-web-app.js"
# Flags that let Debian's Chromium run headless in a container with no network beyond this machine.
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Telegram's light theme, as its clients hand it to a Mini App.
THEME = {
    "bg_color": "#ffffff",
    "text_color": "#000000",
    "hint_color": "#999999",
    "link_color": "#2481cc",
    "button_color": "#2481cc",
    "button_text_color": "#ffffff",
    "secondary_bg_color": "#efeff3",
    "destructive_text_color": "#e53935",
}
# A finger's moves come a frame apart, and it rests this many frames before it lifts.
FRAME_S = 1 / 60
FINGER_REST_FRAMES = 4
PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2, "is_mobile": True, "has_touch": True}
DESKTOP = {"viewport": {"width": 1280, "height": 800}}


def sign_init_data(token: str, user: FakeUser, auth_date: float | None = None) -> str:
    """Init data as Telegram hands it to the page: the user, when the page was opened, and the hash of both keyed
    by a secret derived from the bot's token (https://core.telegram.org/bots/webapps)."""
    fields = {
        "query_id": f"AAH{user.id}",
        "user": json.dumps(user.as_json(), separators=(",", ":")),
        "auth_date": str(int(time.time() if auth_date is None else auth_date)),
    }
    check = "\n".join(f"{key}={value}" for key, value in sorted(fields.items()))
    secret = hmac.new(b"WebAppData", token.encode(), hashlib.sha256).digest()
    return urlencode({**fields, "hash": hmac.new(secret, check.encode(), hashlib.sha256).hexdigest()})


def telegram_script(init_data: str, user: FakeUser) -> str:
    """What the page gets for `telegram-web-app.js`: `Telegram.WebApp` with the init data and the theme, and a
    `close()` that leaves a mark the test can wait for."""
    web_app = {
        "initData": init_data,
        "initDataUnsafe": {"user": user.as_json()},
        "version": "8.0",
        "platform": "tdesktop",
        "colorScheme": "light",
        "themeParams": THEME,
    }
    return f"""
(() => {{
  const noop = () => {{}};
  const webApp = Object.assign({json.dumps(web_app)}, {{
    ready: noop, expand: noop, disableVerticalSwipes: noop,
    enableClosingConfirmation: noop, disableClosingConfirmation: noop,
    HapticFeedback: {{ selectionChanged: noop }},
    close: () => {{ window.telegramClosed = true; }},
  }});
  for (const [key, value] of Object.entries(webApp.themeParams)) {{
    document.documentElement.style.setProperty("--tg-theme-" + key.replaceAll("_", "-"), value);
  }}
  window.Telegram = {{ WebApp: webApp }};
}})();
"""


def chromium() -> str:
    executable = shutil.which("chromium")
    if executable is None:
        pytest.fail("chromium is missing: apt-get install chromium (.ci/run installs it)")
    return executable


@asynccontextmanager
async def headless_chromium() -> AsyncIterator[Browser]:
    """Debian's Chromium, headless, with a fresh profile of its own."""
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=chromium(), headless=True, args=CHROMIUM_FLAGS)
        try:
            yield browser
        finally:
            await browser.close()


@dataclass
class EditorPage:
    """The editor open in a browser as Telegram would open it for `user`, and what it showed and asked."""

    page: Page
    context: BrowserContext
    touchscreen: bool
    statuses: dict[str, int]
    console: list[str]

    async def picture_box(self) -> dict[str, float]:
        box = await self.page.locator("#photo").bounding_box()
        assert box is not None, "the picture is not shown"
        return box

    async def at(self, x: float, y: float) -> tuple[float, float]:
        """The page point over the picture's pixel (x, y), as the picture is shown now (zoomed or not)."""
        box = await self.picture_box()
        natural = await self.page.locator("#photo").evaluate("photo => photo.naturalWidth")
        scale = box["width"] / natural
        return box["x"] + x * scale, box["y"] + y * scale

    async def tap_on(self, area: Box) -> None:
        """A tap in the middle of an area of the picture (a face)."""
        await self.tap(await self.at(area.x + area.w / 2, area.y + area.h / 2))

    async def mark(self, area: Box, margin: int = 8) -> None:
        """A drag across an area of the picture, from a little above its left to a little below its right."""
        start = await self.at(area.x - margin, area.y - margin)
        await self.drag(start, await self.at(area.x + area.w + margin, area.y + area.h + margin))

    async def press(self, selector: str) -> None:
        """A button pressed with a finger on a phone, with the mouse on a desktop."""
        button = self.page.locator(selector)
        await (button.tap() if self.touchscreen else button.click())

    async def touch(self, *paths: list[tuple[float, float]]) -> None:
        """Fingers on the screen: each path is one finger's points, from where it lands to where it lifts; the
        fingers move together, a step a frame, and rest a moment before they lift (lifted in full motion, they
        would fling, and the browser would take the next tap for the one that stops the fling)."""
        cdp = await self.context.new_cdp_session(self.page)
        steps = max(len(path) for path in paths)

        def points(step: int) -> list[dict[str, float]]:
            return [
                {"x": path[min(step, len(path) - 1)][0], "y": path[min(step, len(path) - 1)][1], "id": finger}
                for finger, path in enumerate(paths)
            ]

        await cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": points(0)})
        for step in [*range(1, steps), *[steps - 1] * FINGER_REST_FRAMES]:
            await asyncio.sleep(FRAME_S)
            await cdp.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": points(step)})
        await cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
        await cdp.detach()

    async def drag(self, start: tuple[float, float], end: tuple[float, float], steps: int = 6) -> None:
        """A finger on a phone, the mouse on a desktop."""
        if self.touchscreen:
            path = [
                (start[0] + (end[0] - start[0]) * i / steps, start[1] + (end[1] - start[1]) * i / steps)
                for i in range(steps + 1)
            ]
            await self.touch(path)
        else:
            await self.page.mouse.move(*start)
            await self.page.mouse.down()
            await self.page.mouse.move(*end, steps=steps)
            await self.page.mouse.up()

    async def tap(self, point: tuple[float, float]) -> None:
        if self.touchscreen:
            await self.page.touchscreen.tap(*point)
        else:
            await self.page.mouse.click(*point)

    async def closed(self, timeout: float = 30) -> None:
        """Until the page asked Telegram to close it."""
        await self.page.wait_for_function("() => window.telegramClosed === true", timeout=timeout * 1000)

    async def message(self) -> str:
        return (await self.page.locator("#message").text_content()) or ""


async def open_editor(browser: Browser, url: str, init_data: str, user: FakeUser, device: dict[str, Any]) -> EditorPage:
    """Open the page at `url` (an Edit button's) as Telegram opens it, on a phone or a desktop (PHONE, DESKTOP)."""
    context = await browser.new_context(**device)
    page = await context.new_page()
    script = telegram_script(init_data, user)
    await page.route(TELEGRAM_SCRIPT, lambda route: route.fulfill(body=script, content_type="text/javascript"))
    statuses: dict[str, int] = {}
    console: list[str] = []
    page.on("response", lambda response: statuses.__setitem__(response.url.split("?")[0], response.status))
    page.on("console", lambda message: console.append(message.text))
    await page.goto(url)
    return EditorPage(page, context, bool(device.get("has_touch")), statuses, console)

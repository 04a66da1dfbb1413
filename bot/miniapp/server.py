"""The Mini App editor's HTTP side, on the front's web server (bot.app) under the path of WEBAPP_URL:

    GET  <path>                          the page (its texts in both languages inside), editor.js and editor.css
    GET  <path>api/result?chat=&message=    the faces found (in the chooser's numbering), the choices and regions
    GET  <path>api/original?chat=&message=  the original, fetched from Telegram into memory and never stored
    POST <path>api/apply?chat=&message=     {"shown": [2], "regions": [{"x", "y", "w", "h", "shape"}]}: the result
                                            message is painted again as chosen, as the chat's chooser paints it

The page is reachable from the internet, so every API call proves who makes it: its `Authorization: tma <init
data>` header carries what Telegram signed with a key derived from the bot token when it opened the page (checked by
aiogram's `safe_parse_webapp_init_data`, as Telegram documents it), no older than a result is remembered. The caller
must be the photo's sender. A forged or expired signature is 401, another user's photo 403, an unknown or expired
result 410, and none of them shows anything of the picture. Calls are counted per user (EDITOR_CALLS_PER_MINUTE);
every answer is `no-store`; the page may load scripts only from itself and Telegram (its content security policy).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, NoReturn, TypeGuard
from urllib.parse import parse_qsl

from aiogram import Bot, Dispatcher
from aiogram.exceptions import TelegramAPIError, TelegramBadRequest
from aiogram.utils.web_app import WebAppUser, safe_parse_webapp_init_data
from aiohttp import web
from redis.exceptions import RedisError

from anonymizer.errors import AnonymizerError
from bot.admission import BusyError, UnavailableError
from bot.context import RequestContext
from bot.deployment import Deployment
from bot.handlers.choose import REFUSALS, RendersSpentError, refused, repaint
from bot.handlers.common import DownloadError, download
from bot.jobs import DeadlineExceededError
from bot.originals import Original
from bot.settings import BotSettings
from bot.texts import ENGLISH, RUSSIAN, Texts, texts_for
from filters import Region
from filters.regions import SHAPES

logger = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
# Regions one picture may carry, and the coordinates a region may have: the worker checks that each lies inside the
# picture (anonymizer.choices); this only keeps nonsense from reaching it. A region smaller than MIN_REGION_SIDE
# on a side cannot hide a face, and is a slip of the finger.
MAX_REGIONS = 100
MIN_REGION_SIDE = 4
MAX_COORDINATE = 65_535
# An apply call's body: 100 regions take a few kilobytes.
MAX_BODY_BYTES = 64 * 1024
# Calls per user a minute: opening the editor takes two and applying one, so a person editing photo after photo stays
# well within it, and a script hammering the API (each call costs a download from Telegram or a render) does not.
EDITOR_CALLS_PER_MINUTE = 30
# Init data signed this far ahead of this machine's clock (a phone's clock running fast) is still taken.
CLOCK_SKEW_S = 60

PAGE_POLICY = (
    "default-src 'none'; script-src 'self' https://telegram.org; style-src 'self'; img-src blob:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors https://web.telegram.org"
)
SECURITY_HEADERS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}
API_HEADERS = {
    **SECURITY_HEADERS,
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
}
FILES = {"editor.js": "text/javascript", "editor.css": "text/css"}


class Refused(Exception):
    """An API call answered with `status` and the text the page shows the user."""

    def __init__(self, status: int, text: str, retry_after: float | None = None) -> None:
        super().__init__(text)
        self.status = status
        self.text = text
        self.retry_after = retry_after


@dataclass(frozen=True)
class Caller:
    """Who makes an API call, in which language, about which result: the original behind it is theirs."""

    user_id: int
    texts: Texts
    chat_id: int
    result_id: int
    original: Original


def page_html() -> bytes:
    """The page, with its texts in both languages and its limits inside, as data its script reads."""
    config = {"texts": {"en": ENGLISH.editor, "ru": RUSSIAN.editor}, "maxRegions": MAX_REGIONS}
    data = json.dumps(config, ensure_ascii=False).replace("<", "\\u003c")
    return (STATIC / "index.html").read_text("utf-8").replace("{{CONFIG}}", data).encode()


class Editor:
    """The page's files and API for one bot and deployment."""

    def __init__(self, bot: Bot, dispatcher: Dispatcher, settings: BotSettings, deployment: Deployment) -> None:
        self.bot, self.dispatcher, self.settings, self.deployment = bot, dispatcher, settings, deployment
        self.files = {"": (page_html(), "text/html")}
        self.files.update({name: ((STATIC / name).read_bytes(), kind) for name, kind in FILES.items()})

    def add_routes(self, app: web.Application) -> None:
        path = self.settings.webapp_path
        assert path is not None
        for name in self.files:
            app.router.add_get(f"{path}{name}", self.static)
        app.router.add_get(f"{path}api/result", self.result)
        app.router.add_get(f"{path}api/original", self.original)
        app.router.add_post(f"{path}api/apply", self.apply)

    async def static(self, request: web.Request) -> web.Response:
        body, kind = self.files[request.path.rpartition("/")[2]]
        headers = {**SECURITY_HEADERS, "Cache-Control": "no-cache", "Content-Security-Policy": PAGE_POLICY}
        return web.Response(body=body, content_type=kind, charset="utf-8", headers=headers)

    async def result(self, request: web.Request) -> web.Response:
        """What the page draws over the picture: each face's box in the picture's pixels, the numbers shown, the
        regions drawn before."""
        try:
            caller = await self.caller(request)
        except Refused as refusal:
            return answer_refusal(refusal)
        original = caller.original
        document = {
            "faces": [[face.x, face.y, face.w, face.h] for face in original.faces],
            "shown": sorted(original.shown),
            "regions": [region_document(region) for region in original.regions],
        }
        return web.json_response(document, headers=API_HEADERS)

    async def original(self, request: web.Request) -> web.Response:
        """The photo as its sender sent it, from Telegram into this answer; nothing of it stays here."""
        try:
            caller = await self.caller(request)
            deadline = time.monotonic() + self.settings.deadline_seconds
            try:
                data = await download(self.bot, caller.original.file_id, self.settings, deadline)
            except (DownloadError, AnonymizerError, DeadlineExceededError, TelegramAPIError) as error:
                reason = type(error).__name__
                logger.warning("chat %s: original not fetched for the editor (%s)", caller.chat_id, reason)
                raise Refused(502, caller.texts.failed) from None
        except Refused as refusal:
            return answer_refusal(refusal)
        return web.Response(body=data, content_type="application/octet-stream", headers=API_HEADERS)

    async def apply(self, request: web.Request) -> web.Response:
        """Paint the original again with the caller's choice, in place of the result; remember the choice."""
        try:
            caller = await self.caller(request)
            texts = caller.texts
            if request.content_length is None or request.content_length > MAX_BODY_BYTES:
                raise Refused(413, texts.editor_bad_choice)
            try:
                body = await request.json()
            except ValueError:
                raise Refused(400, texts.editor_bad_choice) from None
            chosen = replace(caller.original, **choice(body, len(caller.original.faces), texts))
            await self.paint(caller, chosen)
        except Refused as refusal:
            return answer_refusal(refusal)
        try:  # counted as the render it cost (bot.handlers.choose.repaint)
            remembered = replace(chosen, renders=chosen.renders + 1)
            await self.deployment.originals.update(caller.chat_id, caller.result_id, remembered)
        except (RedisError, OSError) as error:  # the picture is in place; only the next editor starts afresh
            logger.warning("chat %s: the editor's choice not remembered (%s)", caller.chat_id, type(error).__name__)
        return web.json_response({"ok": True}, headers=API_HEADERS)

    async def paint(self, caller: Caller, chosen: Original) -> None:
        """The chooser's own render and edit of the result message (bot.handlers.choose.repaint)."""
        state = self.dispatcher.fsm.get_context(self.bot, chat_id=caller.user_id, user_id=caller.user_id)
        request = RequestContext(
            self.bot,
            self.deployment.jobs,
            self.settings,
            caller.texts,
            state,
            self.deployment.originals,
            time.monotonic(),
            caller.user_id,
        )
        try:
            await repaint(request, chosen, caller.chat_id, caller.result_id, preview=False)
        except REFUSALS as error:
            retry_after = error.retry_after if isinstance(error, BusyError) else None
            raise Refused(refusal_status(error), refused(error, request), retry_after) from None
        except TelegramBadRequest as error:
            logger.info("chat %s: the editor's picture not shown: %s", caller.chat_id, error.message)
            raise Refused(410, caller.texts.choose_gone) from None

    async def caller(self, request: web.Request) -> Caller:
        """The caller, proven by the init data Telegram signed, within their limit, and the result they ask about,
        which must be theirs; else Refused (401, 429, 400, 410 or 403, in that order)."""
        header = request.headers.get("Authorization", "")
        init_data = header.removeprefix("tma ") if header.startswith("tma ") else ""
        user = self.authenticate(init_data)
        texts = texts_for(user.language_code)
        if (wait := await self.limit(user.id, texts)) > 0:
            raise Refused(429, texts.editor_too_fast, retry_after=wait)
        try:
            chat_id, result_id = int(request.query["chat"]), int(request.query["message"])
        except (KeyError, ValueError):
            raise Refused(400, texts.editor["outside"]) from None
        try:
            original = await self.deployment.originals.recall(chat_id, result_id)
        except (RedisError, OSError):
            raise Refused(503, texts.unavailable) from None
        if original is None or not original.faces:
            raise Refused(410, texts.choose_expired)
        if original.user_id != user.id:
            raise Refused(403, texts.choose_not_yours)
        return Caller(user.id, texts, chat_id, result_id, original)

    def authenticate(self, init_data: str) -> WebAppUser:
        """The user Telegram vouches for; Refused(401) for init data it did not sign, without a user, or older than a
        result is remembered (the text in the language the unproven data claims: it only chooses the words)."""
        try:
            parsed = safe_parse_webapp_init_data(self.settings.bot_token.get_secret_value(), init_data)
        except ValueError:
            self.unauthorized(init_data)
        age = time.time() - parsed.auth_date.timestamp()
        if parsed.user is None or not -CLOCK_SKEW_S <= age <= self.settings.strict_window_seconds:
            self.unauthorized(init_data)
        return parsed.user

    @staticmethod
    def unauthorized(init_data: str) -> NoReturn:
        try:
            language = json.loads(dict(parse_qsl(init_data)).get("user", "{}")).get("language_code")
        except (ValueError, AttributeError):
            language = None
        raise Refused(401, texts_for(language if isinstance(language, str) else None).editor_unauthorized)

    async def limit(self, user_id: int, texts: Texts) -> float:
        """0 while the user is within EDITOR_CALLS_PER_MINUTE, else the seconds until the next minute."""
        now = time.time()
        calls = await self.deployment.rates.count("editor", user_id, int(now // 60))
        return 0.0 if calls <= EDITOR_CALLS_PER_MINUTE else 60 - now % 60


def choice(body: Any, faces: int, texts: Texts) -> dict[str, Any]:
    """The numbers shown and the regions drawn, checked: Refused(422) for too many regions or anything malformed."""
    if not isinstance(body, dict):
        raise Refused(422, texts.editor_bad_choice)
    shown, regions = body.get("shown", []), body.get("regions", [])
    if not isinstance(shown, list) or not isinstance(regions, list):
        raise Refused(422, texts.editor_bad_choice)
    if len(regions) > MAX_REGIONS:
        raise Refused(422, texts.editor_too_many_regions.format(max=MAX_REGIONS))
    if not all(is_integer(number) and 1 <= number <= faces for number in shown):
        raise Refused(422, texts.editor_bad_choice)
    checked = [region_of(region) for region in regions]
    if None in checked:
        raise Refused(422, texts.editor_bad_choice)
    return {"shown": frozenset(shown), "regions": tuple(region for region in checked if region is not None)}


def region_of(document: Any) -> Region | None:
    """A region as the page sends it, or None when it is not one a user could have drawn."""
    if not isinstance(document, dict) or document.get("shape") not in SHAPES:
        return None
    numbers = [value for value in (document.get(key) for key in ("x", "y", "w", "h")) if is_integer(value)]
    if len(numbers) != 4:
        return None
    x, y, w, h = numbers
    if x < 0 or y < 0 or w < MIN_REGION_SIDE or h < MIN_REGION_SIDE or x + w > MAX_COORDINATE or y + h > MAX_COORDINATE:
        return None
    return Region(x, y, w, h, document["shape"])


def is_integer(value: Any) -> TypeGuard[int]:
    """An integer, and not JSON's true or false (which Python counts as integers)."""
    return isinstance(value, int) and not isinstance(value, bool)


def region_document(region: Region) -> dict[str, Any]:
    return {"x": region.x, "y": region.y, "w": region.w, "h": region.h, "shape": region.shape or "ellipse"}


def refusal_status(error: BaseException) -> int:
    """A refused render: the bot busy or unreachable (503), the result painted too often (429), out of time (504),
    or the picture refusing it (422)."""
    if isinstance(error, BusyError | UnavailableError):
        return 503
    if isinstance(error, RendersSpentError):
        return 429
    if isinstance(error, DeadlineExceededError):
        return 504
    return 422


def answer_refusal(refusal: Refused) -> web.Response:
    headers = dict(API_HEADERS)
    if refusal.retry_after is not None:
        headers["Retry-After"] = str(max(1, round(refusal.retry_after)))
    return web.json_response({"error": refusal.text}, status=refusal.status, headers=headers)

"""A fake Telegram Bot API server speaking the real HTTP protocol, for end-to-end tests of the bot.

The bot under test talks to it exactly as to api.telegram.org (aiogram's own session, pointed here with
`TelegramAPIServer.from_base`): `POST /bot<token>/<method>` with multipart or urlencoded or JSON parameters, and
`GET /file/bot<token>/<path>` for downloads. Tests play the users: they inject updates (`send_photo`, `send_album`,
`press_button`, ...), which the bot receives through long polling, and await the bot's calls, all of which are
recorded with their decoded parameters and uploaded files. Faults (429, 5xx, delays, connection resets, truncated
downloads) can be injected per method. Everything is held in memory; uploads are never spooled to disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import itertools
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import web
from PIL import Image

# The token the bot under test and the fake server share: shaped like @BotFather's, never a real bot's.
TOKEN = "123456789:AAFakeTokenForTheFakeTelegramServer_0123"

# What the bot sends that counts as an answer to a user.
REPLY_METHODS = frozenset(
    {"sendMessage", "sendPhoto", "sendDocument", "sendMediaGroup", "sendVideo", "sendAnimation", "sendVideoNote"}
)
# The public Bot API takes uploads up to this size.
UPLOAD_LIMIT = 50 * 1024 * 1024
# The public Bot API refuses to hand out files above this size.
DOWNLOAD_LIMIT = 20 * 1024 * 1024
# The method name a fault is registered under to hit file downloads.
DOWNLOAD = "download"

FaultKind = Literal["error", "flood", "delay", "hang", "reset", "cut", "truncate"]


@dataclass
class UploadedFile:
    """A file part of a multipart request."""

    filename: str | None
    content_type: str | None
    data: bytes


@dataclass
class Call:
    """One request the bot made, decoded."""

    method: str
    params: dict[str, Any]
    files: dict[str, UploadedFile]
    at: float
    response: Any = None

    @property
    def chat_id(self) -> int | None:
        value = self.params.get("chat_id")
        return int(value) if value is not None else None

    @property
    def reply_to_message_id(self) -> int | None:
        parameters = self.params.get("reply_parameters")
        if isinstance(parameters, dict) and "message_id" in parameters:
            return int(parameters["message_id"])
        value = self.params.get("reply_to_message_id")
        return int(value) if value is not None else None

    @property
    def text(self) -> str:
        """The text or caption (of the first item, for an album)."""
        if self.method == "sendMediaGroup":
            return str(self.media[0].get("caption") or "")
        return str(self.params.get("text") or self.params.get("caption") or "")

    @property
    def media(self) -> list[dict[str, Any]]:
        """For sendMediaGroup: the items, each with the uploaded bytes under "data"."""
        items = []
        for item in self.params.get("media") or []:
            reference = str(item.get("media", ""))
            name = reference.removeprefix("attach://")
            uploaded = self.files.get(name)
            items.append({**item, "data": uploaded.data if uploaded else None})
        return items

    @property
    def edited_media(self) -> UploadedFile:
        """For editMessageMedia: the file put in place of the message's photo or document."""
        reference = str(self.params["media"]["media"])
        return self.files[reference.removeprefix("attach://")]

    def file(self, field_name: str) -> UploadedFile:
        """The file uploaded for a parameter (`photo`, `document`, `video`, `animation`, `video_note`), sent inline
        or as `attach://<part>`."""
        reference = self.params.get(field_name)
        if isinstance(reference, str) and reference.startswith("attach://"):
            return self.files[reference.removeprefix("attach://")]
        return self.files[field_name]


@dataclass
class Fault:
    """A failure to inject into the answers to one method (or to downloads).

    kind: "error" answers `status` with a Bot API error body; "flood" answers 429 with `retry_after`; "delay" waits
    `seconds` and then answers normally; "hang" waits `seconds` and then drops the connection without acting on
    the request (a request that timed out); "reset" drops the connection before answering; "cut" (uploads) reads
    part of the request body, then drops the connection, before any parameter is decoded, so `when` cannot look at
    the call; "truncate" (downloads) sends the headers and half of the body, then drops the connection. `times` is
    how many requests it hits (None: all), `when` picks the requests it applies to.
    """

    kind: FaultKind
    status: int = 500
    description: str = "Internal Server Error"
    retry_after: int = 1
    seconds: float = 0.0
    times: int | None = 1
    when: Callable[[Call], bool] | None = None
    hits: int = 0

    def applies(self, call: Call) -> bool:
        return (self.times is None or self.hits < self.times) and (self.when is None or self.when(call))


@dataclass(frozen=True)
class FakeUser:
    """A Telegram user in a private chat with the bot (the chat id is the user id)."""

    id: int
    first_name: str = "Test"
    language_code: str | None = "en"

    def as_json(self) -> dict[str, Any]:
        user: dict[str, Any] = {"id": self.id, "is_bot": False, "first_name": self.first_name}
        if self.language_code:
            user["language_code"] = self.language_code
        return user


@dataclass
class StoredFile:
    file_id: str
    file_unique_id: str
    file_path: str
    data: bytes
    file_size: int

    def as_json(self) -> dict[str, Any]:
        return {"file_id": self.file_id, "file_unique_id": self.file_unique_id, "file_size": self.file_size}


@dataclass
class _Updates:
    pending: list[dict[str, Any]] = field(default_factory=list)
    next_id: int = 1
    confirmed_below: int = 0
    deliveries: dict[int, int] = field(default_factory=dict)


# Methods whose effect the tests read from the recorded calls alone: Telegram answers them with `true`.
ACKNOWLEDGED = frozenset({"sendChatAction", "setMyCommands", "deleteWebhook", "setWebhook", "answerCallbackQuery"})


async def _acknowledge(call: Call) -> Any:
    return True


class FakeTelegramServer:
    """The fake Bot API: start it, point a bot at `base_url`, inject updates, await the bot's calls."""

    def __init__(
        self, token: str, *, bot_id: int | None = None, username: str = "fake_anon_bot", port: int = 0
    ) -> None:
        """`port` 0 takes a free one; a fixed one lets a test start the server after the bot (Telegram down)."""
        self.token = token
        self.bot_user = {
            "id": bot_id or int(token.partition(":")[0]),
            "is_bot": True,
            "first_name": "Photo Anonymizer",
            "username": username,
        }
        self.calls: list[Call] = []
        self.downloads: list[str] = []
        self.faults: dict[str, list[Fault]] = {}
        self.files: dict[str, StoredFile] = {}
        self._files_by_path: dict[str, StoredFile] = {}
        self.messages: dict[tuple[int, int], dict[str, Any]] = {}
        self._update_of_message: dict[tuple[int, int], int] = {}
        self._message_ids: dict[int, itertools.count[int]] = {}
        self._media_groups = itertools.count(1)
        self._updates = _Updates()
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self._closing = False
        self.port = port

    # -- lifecycle -------------------------------------------------------------------------------------------

    async def start(self) -> FakeTelegramServer:
        app = web.Application(client_max_size=200 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._api)
        app.router.add_get("/file/bot{token}/{path:.+}", self._download)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def close(self) -> None:
        """Stop serving; long polls still waiting are answered at once, so nothing hangs on them."""
        self._closing = True
        await self._notify()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeTelegramServer:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- faults ----------------------------------------------------------------------------------------------

    def inject(self, method: str, fault: Fault) -> Fault:
        """Make `method` (a Bot API method name, or DOWNLOAD for file downloads) fail as `fault` says."""
        self.faults.setdefault(method, []).append(fault)
        return fault

    def clear_faults(self) -> None:
        self.faults.clear()

    def _fault_for(self, method: str, call: Call, kinds: tuple[FaultKind, ...] | None = None) -> Fault | None:
        for fault in self.faults.get(method, []):
            if (kinds is None or fault.kind in kinds) and fault.applies(call):
                fault.hits += 1
                return fault
        return None

    # -- files -----------------------------------------------------------------------------------------------

    def add_file(
        self, data: bytes, *, kind: str = "documents", suffix: str = "", file_size: int | None = None
    ) -> StoredFile:
        """Put bytes in the file store as Telegram would after a user's upload; `file_size` may claim another size."""
        unique = secrets.token_hex(6)
        stored = StoredFile(
            file_id=f"{kind[:3].upper()}-{secrets.token_urlsafe(16)}",
            file_unique_id=unique,
            file_path=f"{kind}/file_{unique}{suffix}",
            data=data,
            file_size=len(data) if file_size is None else file_size,
        )
        self.files[stored.file_id] = stored
        self._files_by_path[stored.file_path] = stored
        return stored

    # -- updates from users ----------------------------------------------------------------------------------

    def push_update(self, update: dict[str, Any]) -> int:
        """Queue an update (without update_id) for getUpdates; returns its update_id."""
        update_id = self._updates.next_id
        self._updates.next_id += 1
        self._updates.pending.append({"update_id": update_id, **update})
        asyncio.get_running_loop().create_task(self._notify())
        return update_id

    def user_message(self, user: FakeUser, *, group: int | None = None, **content: Any) -> dict[str, Any]:
        """Send a message from `user` in their private chat, or in the `group` chat (a negative id); returns the
        message as the bot will see it. Fields given as None (no caption, not in an album) are left out, as Telegram
        leaves them out."""
        chat = {"id": user.id, "type": "private", "first_name": user.first_name}
        if group is not None:
            chat = {"id": group, "type": "group", "title": "Group"}
        message = {
            "message_id": self._next_message_id(chat["id"]),
            "date": int(time.time()),
            "chat": chat,
            "from": user.as_json(),
            **{name: value for name, value in content.items() if value is not None},
        }
        self.messages[(chat["id"], message["message_id"])] = message
        self._update_of_message[(chat["id"], message["message_id"])] = self.push_update({"message": message})
        return message

    def update_id_of(self, message: dict[str, Any]) -> int:
        """The update_id of the update that carried a user's message."""
        return self._update_of_message[(message["chat"]["id"], message["message_id"])]

    def send_text(self, user: FakeUser, text: str, *, reply_to: dict[str, Any] | None = None) -> dict[str, Any]:
        """A text (a command when it starts with "/"), optionally as a reply to a message of the chat."""
        content: dict[str, Any] = {"text": text}
        if text.startswith("/"):
            content["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
        if reply_to is not None:
            content["reply_to_message"] = reply_to
        return self.user_message(user, **content)

    def send_photo(
        self,
        user: FakeUser,
        data: bytes,
        *,
        caption: str | None = None,
        media_group_id: str | None = None,
        size: tuple[int, int] | None = None,
        file_size: int | None = None,
        thumbnail: bytes | None = None,
        group: int | None = None,
    ) -> dict[str, Any]:
        """A photo as Telegram delivers it: a small thumbnail and the full size (last), both downloadable; in the
        user's private chat, or in a `group` chat.

        Benchmarks sending many big photos pass `size` and `thumbnail`, which are otherwise made from the photo.
        """
        width, height = size or Image.open(io.BytesIO(data)).size
        small = self.add_file(thumbnail or thumbnail_of(data), kind="photos", suffix=".jpg")
        full = self.add_file(data, kind="photos", suffix=".jpg", file_size=file_size)
        scale = 90 / max(width, height)
        sizes = [
            {**small.as_json(), "width": max(1, round(width * scale)), "height": max(1, round(height * scale))},
            {**full.as_json(), "width": width, "height": height},
        ]
        return self.user_message(user, group=group, photo=sizes, caption=caption, media_group_id=media_group_id)

    def send_document(
        self,
        user: FakeUser,
        data: bytes,
        *,
        file_name: str,
        mime_type: str | None,
        caption: str | None = None,
        media_group_id: str | None = None,
        file_size: int | None = None,
    ) -> dict[str, Any]:
        stored = self.add_file(data, kind="documents", suffix="", file_size=file_size)
        document: dict[str, Any] = {**stored.as_json(), "file_name": file_name}
        if mime_type is not None:
            document["mime_type"] = mime_type
        return self.user_message(user, document=document, caption=caption, media_group_id=media_group_id)

    def send_album(self, user: FakeUser, photos: list[bytes]) -> list[dict[str, Any]]:
        """An album of photos: one message per photo sharing a media_group_id, delivered back to back."""
        group = f"album-{next(self._media_groups)}"
        return [self.send_photo(user, data, media_group_id=group) for data in photos]

    def send_sticker(self, user: FakeUser) -> dict[str, Any]:
        stored = self.add_file(b"RIFF\x00\x00\x00\x00WEBPVP8 ", kind="stickers", suffix=".webp")
        sticker = {**stored.as_json(), "type": "regular", "width": 512, "height": 512, "is_animated": False}
        return self.user_message(user, sticker={**sticker, "is_video": False, "emoji": "🙂"})

    def send_video(
        self,
        user: FakeUser,
        data: bytes = b"\x00\x00\x00\x18ftypmp42",
        *,
        width: int = 640,
        height: int = 480,
        duration: int = 3,
        file_size: int | None = None,
        mime_type: str = "video/mp4",
        file_name: str | None = None,
        media_group_id: str | None = None,
    ) -> dict[str, Any]:
        """A video as Telegram delivers one sent as a video (the metadata is what the client claimed)."""
        stored = self.add_file(data, kind="videos", suffix=".mp4", file_size=file_size)
        video = {**stored.as_json(), "width": width, "height": height, "duration": duration, "mime_type": mime_type}
        if file_name is not None:
            video["file_name"] = file_name
        return self.user_message(user, video=video, media_group_id=media_group_id)

    def send_video_note(
        self, user: FakeUser, data: bytes, *, length: int, duration: int, file_size: int | None = None
    ) -> dict[str, Any]:
        """A round video message: square, no file name, no MIME type."""
        stored = self.add_file(data, kind="video_notes", suffix=".mp4", file_size=file_size)
        return self.user_message(user, video_note={**stored.as_json(), "length": length, "duration": duration})

    def send_animation(
        self,
        user: FakeUser,
        data: bytes = b"GIF89a",
        *,
        width: int = 64,
        height: int = 64,
        duration: int = 1,
        mime_type: str = "image/gif",
        file_name: str = "funny.gif",
    ) -> dict[str, Any]:
        """A GIF: Telegram delivers it as an animation (usually converted to MP4, `mime_type` video/mp4) and, for old
        clients, also as a document."""
        stored = self.add_file(data, kind="animations", suffix=".mp4" if "mp4" in mime_type else ".gif")
        animation = {**stored.as_json(), "width": width, "height": height, "duration": duration}
        animation.update(file_name=file_name, mime_type=mime_type)
        document = {**stored.as_json(), "file_name": file_name, "mime_type": mime_type}
        return self.user_message(user, animation=animation, document=document)

    def send_voice(self, user: FakeUser) -> dict[str, Any]:
        stored = self.add_file(b"OggS", kind="voice", suffix=".oga")
        return self.user_message(user, voice={**stored.as_json(), "duration": 2, "mime_type": "audio/ogg"})

    def press_button(self, user: FakeUser, message: dict[str, Any], data: str) -> str:
        """Press an inline button with callback `data` under a message the bot sent; returns the query id."""
        query_id = secrets.token_hex(8)
        self.push_update(
            {
                "callback_query": {
                    "id": query_id,
                    "from": user.as_json(),
                    "message": message,
                    "chat_instance": str(user.id),
                    "data": data,
                }
            }
        )
        return query_id

    def press_labelled(self, user: FakeUser, message: dict[str, Any], text: str) -> str:
        """Press the button labelled `text` under a message, in its keyboard as the bot last set it (the message as
        given when it is gone, as a user still sees a deleted message until the chat refreshes)."""
        shown = self.messages.get((message["chat"]["id"], message["message_id"]), message)
        rows = (shown.get("reply_markup") or {}).get("inline_keyboard", [])
        (data,) = [button["callback_data"] for row in rows for button in row if button["text"] == text]
        return self.press_button(user, shown, data)

    @property
    def confirmed_below(self) -> int:
        """Updates with an id below this were confirmed by the bot (getUpdates offset)."""
        return self._updates.confirmed_below

    @property
    def deliveries(self) -> dict[int, int]:
        """How many times each update id was handed to the bot."""
        return dict(self._updates.deliveries)

    # -- awaiting the bot ------------------------------------------------------------------------------------

    async def wait_for(self, predicate: Callable[[Call], bool], *, timeout: float = 30.0, count: int = 1) -> list[Call]:
        """The first `count` recorded calls matching `predicate`, waiting for them up to `timeout` seconds."""

        def matching() -> list[Call]:
            return [call for call in self.calls if predicate(call)]

        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: len(matching()) >= count), timeout)
        return matching()[:count]

    async def reply_to(self, message: dict[str, Any], *, timeout: float = 30.0) -> Call:
        """The bot's answer (text, photo, file or album) to a user's message, replying to it in the same chat."""
        calls = await self.wait_for(lambda call: _answers(call, message), timeout=timeout)
        return calls[0]

    def answers_to(self, message: dict[str, Any]) -> list[Call]:
        """Every answer the bot sent so far to a user's message (replying to it in the same chat), in order."""
        return [call for call in self.calls if _answers(call, message)]

    def calls_of(self, method: str, chat_id: int | None = None) -> list[Call]:
        return [call for call in self.calls if call.method == method and (chat_id is None or call.chat_id == chat_id)]

    def answers_in(self, chat_id: int) -> list[Call]:
        """Every message the bot sent to a chat."""
        return [call for call in self.calls if call.method in REPLY_METHODS and call.chat_id == chat_id]

    async def _idle(self, seconds: float) -> None:
        """Wait like a server that does not answer, but no longer than until the server closes."""
        with contextlib.suppress(TimeoutError):
            async with self._changed:
                await asyncio.wait_for(self._changed.wait_for(lambda: self._closing), seconds)

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    # -- HTTP ------------------------------------------------------------------------------------------------

    async def _api(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["token"] != self.token:
            return _error(401, "Unauthorized")
        method = request.match_info["method"]
        cut = self._fault_for(method, Call(method, {}, {}, time.monotonic()), kinds=("cut",))
        if cut is not None:
            return await _cut_upload(request)
        params, files = await _decode(request)
        call = Call(method, params, files, time.monotonic())
        fault = self._fault_for(method, call, kinds=("error", "flood", "delay", "hang", "reset"))
        if fault is not None and fault.kind != "delay":
            self.calls.append(call)
            await self._notify()
            if fault.kind == "hang":
                await self._idle(fault.seconds)
            return await _fault_response(request, fault)
        if fault is not None:
            await asyncio.sleep(fault.seconds)
        handler = _acknowledge if method in ACKNOWLEDGED else getattr(self, f"_method_{method}", None)
        if handler is None:
            return _error(404, "Not Found: method not found")
        try:
            _check_buttons(call)
            result = await handler(call)
        except _ApiError as error:
            call.response = {"error_code": error.status, "description": error.description}
            self.calls.append(call)
            await self._notify()
            return _error(error.status, error.description)
        call.response = result
        if method != "getUpdates" or result:
            self.calls.append(call)
            await self._notify()
        return web.json_response({"ok": True, "result": result})

    async def _download(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["token"] != self.token:
            return _error(401, "Unauthorized")
        path = request.match_info["path"]
        call = Call(DOWNLOAD, {"path": path}, {}, time.monotonic())
        stored = self._files_by_path.get(path)
        fault = self._fault_for(DOWNLOAD, call)
        if fault is not None and fault.kind == "delay":
            await asyncio.sleep(fault.seconds)
        elif fault is not None and fault.kind == "hang":
            await self._idle(fault.seconds)
            return await _fault_response(request, fault)
        elif fault is not None and fault.kind == "truncate" and stored is not None:
            self.downloads.append(path)
            response = web.StreamResponse(headers={"Content-Length": str(len(stored.data))})
            await response.prepare(request)
            await response.write(stored.data[: len(stored.data) // 2])
            assert request.transport is not None
            request.transport.abort()
            return response
        elif fault is not None:
            return await _fault_response(request, fault)
        if stored is None:
            return web.Response(status=404, text="Not Found")
        self.downloads.append(path)
        return web.Response(body=stored.data, content_type="application/octet-stream")

    # -- methods ---------------------------------------------------------------------------------------------

    async def _method_getMe(self, call: Call) -> Any:
        return self.bot_user

    async def _method_getUpdates(self, call: Call) -> Any:
        state = self._updates
        offset = int(call.params.get("offset") or 0)
        limit = int(call.params.get("limit") or 100)
        timeout = float(call.params.get("timeout") or 0)
        allowed = call.params.get("allowed_updates") or None
        if offset > state.confirmed_below:
            state.confirmed_below = offset
            state.pending = [update for update in state.pending if update["update_id"] >= offset]

        def available() -> list[dict[str, Any]]:
            return [update for update in state.pending if allowed is None or any(kind in update for kind in allowed)][
                :limit
            ]

        batch = available()
        if not batch and timeout > 0:
            async with self._changed:
                try:
                    await asyncio.wait_for(self._changed.wait_for(lambda: self._closing or bool(available())), timeout)
                except TimeoutError:
                    return []
            batch = available()
        for update in batch:
            state.deliveries[update["update_id"]] = state.deliveries.get(update["update_id"], 0) + 1
        return batch

    async def _method_getFile(self, call: Call) -> Any:
        stored = self.files.get(str(call.params.get("file_id")))
        if stored is None:
            raise _ApiError(400, "Bad Request: invalid file_id")
        if stored.file_size > DOWNLOAD_LIMIT:
            raise _ApiError(400, "Bad Request: file is too big")
        return {**stored.as_json(), "file_path": stored.file_path}

    async def _method_sendMessage(self, call: Call) -> Any:
        content: dict[str, Any] = {"text": call.params.get("text", "")}
        if isinstance(call.params.get("reply_markup"), dict):
            content["reply_markup"] = call.params["reply_markup"]
        return self._bot_message(call, **content)

    async def _method_sendPhoto(self, call: Call) -> Any:
        photo = self._store_upload(call.params.get("photo"), call.files, kind="photos")
        width, height = _image_size(photo.data)
        return self._bot_message(
            call, photo=[{**photo.as_json(), "width": width, "height": height}], **_caption(call.params)
        )

    async def _method_sendDocument(self, call: Call) -> Any:
        uploaded = self._upload(call.params.get("document"), call.files)
        stored = self._store_upload(call.params.get("document"), call.files, kind="documents")
        document = {**stored.as_json(), "file_name": uploaded.filename or "file"}
        if uploaded.content_type:
            document["mime_type"] = uploaded.content_type
        return self._bot_message(call, document=document, **_caption(call.params))

    async def _method_sendVideo(self, call: Call) -> Any:
        stored = self._store_media(call, "video", "videos")
        video = {**stored.as_json(), **_dimensions(call.params), "mime_type": "video/mp4"}
        return self._bot_message(call, video=video, **_caption(call.params))

    async def _method_sendAnimation(self, call: Call) -> Any:
        stored = self._store_media(call, "animation", "animations")
        animation = {**stored.as_json(), **_dimensions(call.params)}
        return self._bot_message(call, animation=animation, document=stored.as_json(), **_caption(call.params))

    async def _method_sendVideoNote(self, call: Call) -> Any:
        stored = self._store_media(call, "video_note", "video_notes")
        note = {**stored.as_json(), "length": int(call.params.get("length") or 0)}
        note["duration"] = int(call.params.get("duration") or 0)
        return self._bot_message(call, video_note=note)

    async def _method_deleteMessage(self, call: Call) -> Any:
        key = (int(call.params["chat_id"]), int(call.params["message_id"]))
        if self.messages.pop(key, None) is None:
            raise _ApiError(400, "Bad Request: message to delete not found")
        return True

    async def _method_editMessageReplyMarkup(self, call: Call) -> Any:
        message = self._message_to_edit(call)
        markup = call.params.get("reply_markup")
        if message.get("reply_markup") == markup:
            raise _ApiError(400, "Bad Request: message is not modified")
        if isinstance(markup, dict):
            message["reply_markup"] = markup
        else:
            message.pop("reply_markup", None)
        return message

    async def _method_sendMediaGroup(self, call: Call) -> Any:
        media = call.params.get("media")
        if not isinstance(media, list) or not 2 <= len(media) <= 10:
            raise _ApiError(400, "Bad Request: wrong number of media items: 2-10 expected")
        kinds = {item.get("type") for item in media}
        if len(kinds) != 1 or not kinds <= {"photo", "document"}:
            raise _ApiError(400, "Bad Request: an album holds photos or documents, not a mix")
        group = f"bot-album-{next(self._media_groups)}"
        messages = []
        for item in media:
            stored = self._store_upload(item.get("media"), call.files, kind=f"{item['type']}s")
            if item["type"] == "photo":
                width, height = _image_size(stored.data)
                content: dict[str, Any] = {"photo": [{**stored.as_json(), "width": width, "height": height}]}
            else:
                content = {
                    "document": {**stored.as_json(), "file_name": self._upload(item["media"], call.files).filename}
                }
            messages.append(self._bot_message(call, media_group_id=group, **content, **_caption(item)))
        return messages

    async def _method_editMessageMedia(self, call: Call) -> Any:
        """A photo or file replaced in place, as Telegram does: an album's picture keeps its type, the caption is the
        new media's, and a keyboard not given again is removed."""
        message = self._message_to_edit(call)
        media = call.params.get("media")
        kind = media.get("type") if isinstance(media, dict) else None
        if kind not in ("photo", "document"):
            raise _ApiError(400, "Bad Request: can't parse InputMedia: unsupported type")
        was = "photo" if "photo" in message else "document" if "document" in message else None
        if was is None:
            raise _ApiError(400, "Bad Request: there is no media in the message to edit")
        if "media_group_id" in message and kind != was:
            raise _ApiError(400, "Bad Request: can't change the media type of a message in an album")
        stored = self._store_upload(media.get("media"), call.files, kind=f"{kind}s")
        message.pop(was)
        if kind == "photo":
            width, height = _image_size(stored.data)
            message["photo"] = [{**stored.as_json(), "width": width, "height": height}]
        else:
            message["document"] = {**stored.as_json(), "file_name": self._upload(media["media"], call.files).filename}
        message.pop("caption", None)
        message.update(_caption(media))
        markup = call.params.get("reply_markup")
        if isinstance(markup, dict):
            message["reply_markup"] = markup
        else:
            message.pop("reply_markup", None)
        message["edit_date"] = int(time.time())
        return message

    async def _method_editMessageText(self, call: Call) -> Any:
        message = self._message_to_edit(call)
        if "text" not in message:
            raise _ApiError(400, "Bad Request: there is no text in the message to edit")
        markup = call.params.get("reply_markup")
        if message.get("text") == call.params.get("text") and message.get("reply_markup") == markup:
            raise _ApiError(400, "Bad Request: message is not modified")
        message["text"] = call.params.get("text")
        if isinstance(markup, dict):
            message["reply_markup"] = markup
        message["edit_date"] = int(time.time())
        return message

    # -- helpers ---------------------------------------------------------------------------------------------

    def _message_to_edit(self, call: Call) -> dict[str, Any]:
        message = self.messages.get((int(call.params["chat_id"]), int(call.params["message_id"])))
        if message is None:
            raise _ApiError(400, "Bad Request: message to edit not found")
        return message

    def _store_media(self, call: Call, field_name: str, kind: str) -> StoredFile:
        """An uploaded video, animation or video note, refused past the upload limit as Telegram does."""
        reference = call.params.get(field_name)
        uploaded = not (isinstance(reference, str) and reference in self.files)
        if uploaded and len(self._upload(reference, call.files).data) > UPLOAD_LIMIT:
            raise _ApiError(413, "Request Entity Too Large")
        return self._store_upload(reference, call.files, kind=kind)

    def _next_message_id(self, chat_id: int) -> int:
        return next(self._message_ids.setdefault(chat_id, itertools.count(1)))

    def _bot_message(self, call: Call, **content: Any) -> dict[str, Any]:
        chat_id = call.chat_id
        if chat_id is None:
            raise _ApiError(400, "Bad Request: chat_id is empty")
        message: dict[str, Any] = {
            "message_id": self._next_message_id(chat_id),
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": "private" if chat_id > 0 else "group"},
            "from": self.bot_user,
            **content,
        }
        if isinstance(call.params.get("reply_markup"), dict) and call.method != "sendMediaGroup":
            message["reply_markup"] = call.params["reply_markup"]
        replied = self.messages.get((chat_id, call.reply_to_message_id or 0))
        if replied is not None:
            message["reply_to_message"] = replied
        self.messages[(chat_id, message["message_id"])] = message
        return message

    def _upload(self, reference: Any, files: dict[str, UploadedFile]) -> UploadedFile:
        name = str(reference or "").removeprefix("attach://")
        if name not in files:
            raise _ApiError(400, "Bad Request: there is no file in the request")
        return files[name]

    def _store_upload(self, reference: Any, files: dict[str, UploadedFile], kind: str) -> StoredFile:
        if isinstance(reference, str) and reference in self.files:
            return self.files[reference]
        return self.add_file(self._upload(reference, files).data, kind=kind)


def _answers(call: Call, message: dict[str, Any]) -> bool:
    """Whether the call is the bot's answer to that message: a text, picture, file or album replying to it."""
    return (
        call.method in REPLY_METHODS
        and call.chat_id == message["chat"]["id"]
        and call.reply_to_message_id == message["message_id"]
    )


class _ApiError(Exception):
    def __init__(self, status: int, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.description = description


async def _decode(request: web.Request) -> tuple[dict[str, Any], dict[str, UploadedFile]]:
    """Parameters from the query string and the body (multipart, urlencoded or JSON); file parts kept in memory."""
    params: dict[str, Any] = {key: _value(value) for key, value in request.query.items()}
    files: dict[str, UploadedFile] = {}
    if request.content_type == "multipart/form-data":
        reader = await request.multipart()
        async for part in reader:
            if part is None or part.name is None:
                continue
            data = bytes(await part.read(decode=False))  # type: ignore[union-attr]
            if part.filename:  # type: ignore[union-attr]
                content_type = part.headers.get("Content-Type")
                files[part.name] = UploadedFile(part.filename, content_type, data)  # type: ignore[union-attr]
            else:
                params[part.name] = _value(data.decode())
    elif request.content_type == "application/json" and request.can_read_body:
        params.update(await request.json())
    elif request.can_read_body:
        params.update({key: _value(str(value)) for key, value in (await request.post()).items()})
    return params, files


def _value(text: str) -> Any:
    """aiogram sends objects and lists as JSON strings and scalars as plain text."""
    if text[:1] in "[{":
        try:
            return json.loads(text)
        except ValueError:
            return text
    return {"true": True, "false": False}.get(text, text)


def _check_buttons(call: Call) -> None:
    """Telegram refuses a message whose keyboard has a Mini App (`web_app`) button anywhere but in a private chat."""
    markup = call.params.get("reply_markup")
    rows = markup.get("inline_keyboard", []) if isinstance(markup, dict) else []
    if any("web_app" in button for row in rows for button in row) and (call.chat_id or 0) < 0:
        raise _ApiError(400, "Bad Request: BUTTON_TYPE_INVALID")


def _dimensions(params: dict[str, Any]) -> dict[str, Any]:
    """The width, height and duration a bot passed with a video or animation."""
    return {name: int(params[name]) for name in ("width", "height", "duration") if params.get(name) is not None}


def _caption(params: dict[str, Any]) -> dict[str, Any]:
    return {"caption": params["caption"]} if params.get("caption") else {}


def _error(status: int, description: str, **parameters: Any) -> web.Response:
    body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
    if parameters:
        body["parameters"] = parameters
    return web.json_response(body, status=status)


async def _fault_response(request: web.Request, fault: Fault) -> web.StreamResponse:
    if fault.kind == "flood":
        return _error(429, f"Too Many Requests: retry after {fault.retry_after}", retry_after=fault.retry_after)
    if fault.kind in ("reset", "hang", "truncate", "cut"):
        if request.transport is not None:  # None when the client has already given up and gone
            request.transport.abort()
        return web.Response(status=500)
    return _error(fault.status, fault.description)


async def _cut_upload(request: web.Request) -> web.StreamResponse:
    """Take part of the request body, then drop the connection: an upload broken off half-way."""
    announced = request.content_length or 0
    with contextlib.suppress(asyncio.IncompleteReadError):
        await request.content.readexactly(max(1, announced // 2))
    if request.transport is not None:
        request.transport.abort()
    return web.Response(status=500)


def _image_size(data: bytes) -> tuple[int, int]:
    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.size
    except Exception:
        return 0, 0


def thumbnail_of(data: bytes) -> bytes:
    """A 90-pixel JPEG preview, like the smallest PhotoSize Telegram makes."""
    with Image.open(io.BytesIO(data)) as image:
        image = image.convert("RGB")
        image.thumbnail((90, 90))
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=70)
        return buffer.getvalue()

"""Privacy end to end: the token leaks nowhere, user images never touch the disk (nor the Mini App editor's original
and render), results carry no metadata."""

from __future__ import annotations

import io
import logging
import os
import struct
import tempfile
import time
import traceback
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiogram.types import Message
from PIL import Image, PngImagePlugin

from anonymizer.options import Options
from bot import __main__ as bot_process
from bot.__main__ import BadTokenError
from bot.app import create_bot
from bot.cluster import machine
from bot.handlers.common import DownloadError, download
from bot.inputs import picture_of
from bot.jobs import WorkerStartError
from bot.pool import ProcessPool
from bot.settings import EXIT_CONFIGURATION, BotSettings, PipelineSettings
from bot.texts import ENGLISH
from testing.bots import run_embedded_bot
from testing.cluster import free_port
from testing.fake_telegram import DOWNLOAD, REPLY_METHODS, TOKEN, Call, FakeTelegramServer, FakeUser, Fault
from testing.images import astronaut_bgr, composite, jpeg, png
from testing.miniapp import sign_init_data
from tests.bot.audit import disk_writes, forbid_disk_writes
from tests.bot.helpers import TEST_WORKERS, RunningBot, StartBot, bot_settings, editor_offered

ALICE = FakeUser(1001, "Alice", "en")
BORIS = FakeUser(1002, "Борис", "ru")
SECRET = TOKEN.partition(":")[2]
# A token of its own, which the session's redaction (tests/bot/conftest.py) does not know: only the process's start
# can hide it.
OWN_TOKEN = "987654321:BBAnotherTokenOnlyTheProcessStartRedacts_42"

# Distinctive strings planted in each kind of metadata, so any of them surviving is found in the output bytes.
CAMERA = "LeakyCameraMaker"
COMMENT = "LeakyCommentText"
XMP_CREATOR = "LeakyXmpCreator"
IPTC_BYLINE = "LeakyIptcByline"
PLANTED = [CAMERA, COMMENT, XMP_CREATOR, IPTC_BYLINE]
XMP = (
    '<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?><x:xmpmeta xmlns:x="adobe:ns:meta/">'
    '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description '
    f'xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:creator>{XMP_CREATOR}</dc:creator></rdf:Description>'
    '</rdf:RDF></x:xmpmeta><?xpacket end="w"?>'
).encode()


def exif_with_gps() -> Image.Exif:
    exif = Image.Exif()
    exif[0x010F] = CAMERA
    exif.get_ifd(0x8825).update({1: "N", 2: (55.0, 45.0, 21.0), 3: "E", 4: (37.0, 37.0, 4.0)})
    return exif


def jpeg_segment(marker: int, payload: bytes) -> bytes:
    return bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload


def jpeg_with_everything() -> bytes:
    """A JPEG carrying EXIF with GPS, XMP, IPTC (Photoshop APP13) and a comment."""
    buffer = io.BytesIO()
    Image.fromarray(astronaut_bgr()[:, :, ::-1]).save(buffer, "JPEG", quality=92, exif=exif_with_gps())
    data = buffer.getvalue()
    byline = IPTC_BYLINE.encode()
    iptc = b"\x1c\x02\x50" + struct.pack(">H", len(byline)) + byline
    resource = b"8BIM" + struct.pack(">H", 0x0404) + b"\x00\x00" + struct.pack(">I", len(iptc)) + iptc
    extra = (
        jpeg_segment(0xE1, b"http://ns.adobe.com/xap/1.0/\x00" + XMP)
        + jpeg_segment(0xED, b"Photoshop 3.0\x00" + resource)
        + jpeg_segment(0xFE, COMMENT.encode())
    )
    return data[:2] + extra + data[2:]


def png_with_everything() -> bytes:
    """A PNG carrying an eXIf chunk with GPS, XMP in iTXt, tEXt comments and a compressed zTXt."""
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", COMMENT)
    info.add_itxt("XML:com.adobe.xmp", XMP.decode())
    info.add_text("Author", IPTC_BYLINE)
    info.add_text("Description", COMMENT, zip=True)
    buffer = io.BytesIO()
    Image.fromarray(astronaut_bgr()[:, :, ::-1]).save(buffer, "PNG", pnginfo=info, exif=exif_with_gps())
    return buffer.getvalue()


def webp_with_everything() -> bytes:
    """A WebP carrying EXIF with GPS and XMP chunks."""
    buffer = io.BytesIO()
    Image.fromarray(astronaut_bgr()[:, :, ::-1]).save(
        buffer, "WEBP", quality=92, exif=exif_with_gps().tobytes(), xmp=XMP
    )
    return buffer.getvalue()


def jpeg_markers(data: bytes) -> set[int]:
    """The markers of the segments before the image data."""
    markers, position = set(), 2
    while position + 4 <= len(data) and data[position] == 0xFF:
        marker = data[position + 1]
        markers.add(marker)
        if marker == 0xDA:  # start of scan: the entropy-coded image follows
            break
        position += 2 + struct.unpack(">H", data[position + 2 : position + 4])[0]
    return markers


def chunk_kinds(data: bytes, png: bool) -> set[bytes]:
    """The kinds of a PNG's chunks (length, kind, data, CRC) or of a WebP's (kind, length, data padded to even)."""
    kinds, position = set(), 8 if png else 12
    while position + 8 <= len(data):
        if png:
            length, kind = struct.unpack(">I4s", data[position : position + 8])
            position += 12 + length
        else:
            kind, length = struct.unpack("<4sI", data[position : position + 8])
            position += 8 + length + (length & 1)
        kinds.add(kind)
    return kinds


def metadata_left(data: bytes, image_format: str) -> set[str]:
    """What metadata the file still carries: segment or chunk names, and any planted string found in it."""
    left = {text for text in PLANTED if text.encode() in data}
    if image_format == "JPEG":
        names = {0xE1: "APP1 (EXIF/XMP)", 0xED: "APP13 (IPTC)", 0xFE: "COM", 0xE2: "APP2 (ICC/FlashPix)"}
        left |= {names[marker] for marker in jpeg_markers(data) if marker in names}
    elif image_format == "PNG":
        textual = {b"tEXt", b"zTXt", b"iTXt", b"eXIf", b"tIME", b"iCCP"}
        left |= {kind.decode() for kind in chunk_kinds(data, png=True) & textual}
    else:
        left |= {kind.decode() for kind in chunk_kinds(data, png=False) & {b"EXIF", b"XMP ", b"ICCP"}}
    return left


def downloading(telegram: FakeTelegramServer, message: dict[str, Any]) -> Callable[[Call], bool]:
    """Picks the downloads of the full-size file of a photo message."""
    path = telegram.files[message["photo"][-1]["file_id"]].file_path
    return lambda call: call.params.get("path") == path


@pytest.mark.parametrize(
    ("make", "file_name", "mime_type", "image_format"),
    [
        pytest.param(jpeg_with_everything, "gps.jpg", "image/jpeg", "JPEG", id="jpeg-exif-gps-xmp-iptc-comment"),
        pytest.param(png_with_everything, "gps.png", "image/png", "PNG", id="png-exif-xmp-text"),
        pytest.param(webp_with_everything, "gps.webp", "image/webp", "WEBP", id="webp-exif-xmp"),
    ],
)
async def test_a_file_comes_back_without_any_of_its_metadata(
    telegram: FakeTelegramServer, running_bot: RunningBot, make, file_name: str, mime_type: str, image_format: str
) -> None:
    original = make()
    planted = {CAMERA, XMP_CREATOR} if image_format == "WEBP" else set(PLANTED)
    assert metadata_left(original, image_format) >= planted, "the input lacks the metadata this test is about"
    message = telegram.send_document(ALICE, original, file_name=file_name, mime_type=mime_type)

    reply = await telegram.reply_to(message)

    assert reply.method == "sendDocument", reply.text
    result = reply.file("document").data
    with Image.open(io.BytesIO(result)) as image:
        assert image.format == image_format
        assert not image.getexif()
    assert metadata_left(result, image_format) == set()


async def test_the_token_leaks_nowhere_while_telegram_fails(
    telegram: FakeTelegramServer, start_bot: StartBot, caplog: pytest.LogCaptureFixture
) -> None:
    """Every failure the bot logs (aiogram's and aiohttp's loggers included, at DEBUG, with tracebacks), says to
    the user, or keeps in an object: none may carry the token or its secret half."""
    caplog.set_level(logging.DEBUG)
    running = await start_bot()
    failed = telegram.send_photo(ALICE, jpeg(astronaut_bgr()))
    retried = telegram.send_photo(ALICE, jpeg(astronaut_bgr()))
    telegram.send_text(BORIS, "/start")
    telegram.inject("getUpdates", Fault("error", status=500))
    telegram.inject("getFile", Fault("error", status=502, description="Bad Gateway"))
    telegram.inject(DOWNLOAD, Fault("error", status=500, times=None, when=downloading(telegram, failed)))
    telegram.inject(DOWNLOAD, Fault("truncate", when=downloading(telegram, retried)))
    telegram.inject("sendPhoto", Fault("reset"))
    echoing = f"Bad Gateway: upstream failed on /bot{TOKEN}/sendMessage"  # as a proxy in front of a Bot API server may
    telegram.inject("sendMessage", Fault("error", 502, echoing, times=None, when=lambda call: call.chat_id == BORIS.id))

    replies = [await telegram.reply_to(failed), await telegram.reply_to(retried)]
    await telegram.wait_for(lambda call: call.chat_id == BORIS.id and call.method == "sendMessage", count=4)
    await running.stop()

    assert [reply.method for reply in replies] == ["sendMessage", "sendPhoto"]
    assert replies[0].text == ENGLISH.failed
    assert "Traceback" in caplog.text, "the test should have logged at least one traceback"
    assert "download failed (ClientResponseError)" in caplog.text, "the failed download is logged by its type"
    logged = caplog.text + "".join(
        record.getMessage() + (record.exc_text or "") + repr(record.args) for record in caplog.records
    )
    sent = "".join(repr(call.params) for call in telegram.calls if call.method in REPLY_METHODS)
    reprs = repr(running.settings) + str(running.settings) + repr(running.bot) + repr(running.bot.session)
    for place, text in (("logs", logged), ("messages to users", sent), ("reprs", reprs)):
        assert SECRET not in text, f"the token leaked into {place}"


def test_the_bot_process_redacts_its_token_from_every_log_as_it_starts(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """`python -m bot` installs the redaction before anything can log: a library's line naming the file URL, and a
    traceback whose message holds it (as aiohttp's errors do), come out without the token."""
    url = f"http://127.0.0.1/file/bot{OWN_TOKEN}/photos/file_1.jpg"

    async def leaky_start(settings: BotSettings) -> str:
        logging.getLogger("aiohttp.client").error("download failed: %s", url)
        try:
            raise RuntimeError(f"404, message='Not Found', url='{url}'")
        except RuntimeError:
            logging.getLogger("aiogram.event").exception("request failed")
        raise BadTokenError

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("BOT_TOKEN", OWN_TOKEN)
    monkeypatch.setattr(bot_process, "reach_telegram", leaky_start)
    with caplog.at_level(logging.INFO):
        assert bot_process.main([]) == EXIT_CONFIGURATION

    assert "download failed" in caplog.text and "request failed" in caplog.text and "Traceback" in caplog.text
    assert OWN_TOKEN.partition(":")[2] not in caplog.text


def test_a_worker_machine_redacts_the_redis_password_from_every_log_as_it_starts(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """`python -m bot.worker` installs the redaction of the Redis URL, which carries Redis's password."""
    redis_url = "redis://:WorkerOnlyRedisPassword@127.0.0.1:1/0"

    def leaky_start(settings: PipelineSettings) -> ProcessPool:
        logging.getLogger("redis").error("cannot connect to %s", redis_url)
        raise WorkerStartError("no models")

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setattr(machine, "start_pool", leaky_start)
    with caplog.at_level(logging.INFO):
        assert machine.main([]) == EXIT_CONFIGURATION

    assert "cannot connect to" in caplog.text
    assert "WorkerOnlyRedisPassword" not in caplog.text


async def test_a_failed_download_raises_an_error_without_the_token(telegram: FakeTelegramServer) -> None:
    """aiohttp's errors name the download URL, which holds the token: the bot must not pass them on."""
    telegram.inject(DOWNLOAD, Fault("error", status=500, times=None))
    stored = telegram.add_file(jpeg(astronaut_bgr()), suffix=".jpg")
    message = Message.model_validate(
        {
            "message_id": 1,
            "date": 0,
            "chat": {"id": ALICE.id, "type": "private"},
            "document": {**stored.as_json(), "file_name": "a.jpg", "mime_type": "image/jpeg"},
        }
    )
    picture = picture_of(message)
    assert picture is not None
    settings = bot_settings(telegram)
    bot = create_bot(settings)

    try:
        with pytest.raises(DownloadError) as caught:
            await download(bot, picture.file_id, settings, deadline=time.monotonic() + 10)
    finally:
        await bot.session.close()

    described = repr(caught.value) + str(caught.value) + "".join(traceback.format_exception(caught.value))
    assert "ClientResponseError" in described
    assert SECRET not in described


@pytest.fixture
async def auditing_bot(
    telegram: FakeTelegramServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[RunningBot, Path, Path]]:
    """The bot with its own workers, which refuse to write files, its Mini App editor, and fresh temporary and working
    directories."""
    temporary, working = tmp_path / "tmp", tmp_path / "cwd"
    temporary.mkdir()
    working.mkdir()
    monkeypatch.setenv("TMPDIR", str(temporary))
    monkeypatch.setattr(tempfile, "tempdir", str(temporary))
    monkeypatch.chdir(working)
    pool = ProcessPool(TEST_WORKERS, Options(), initializer=forbid_disk_writes).start()
    port = free_port()
    running = run_embedded_bot(bot_settings(telegram, webapp_url=f"http://127.0.0.1:{port}/", webapp_port=port), pool)
    try:
        await telegram.wait_for(lambda call: call.method == "deleteWebhook", timeout=10)
        yield running, temporary, working
    finally:
        await running.stop()
        pool.close(wait=True)


async def test_no_user_image_touches_the_disk(
    telegram: FakeTelegramServer, auditing_bot: tuple[RunningBot, Path, Path]
) -> None:
    _, temporary, working = auditing_bot
    pictures = [
        composite((400, 300), [(60 + 80 * index, 50, 110)], background=70 + 40 * index)[0] for index in range(3)
    ]

    with disk_writes() as written:
        photo = telegram.send_photo(ALICE, jpeg(astronaut_bgr()))
        document = telegram.send_document(BORIS, png(astronaut_bgr()), file_name="me.png", mime_type="image/png")
        album = telegram.send_album(ALICE, [jpeg(image) for image in pictures])
        replies = [await telegram.reply_to(message) for message in (photo, document, album[0])]
        page, query = (await editor_offered(telegram, replies[0].response)).split("?")
        headers = {"Authorization": f"tma {sign_init_data(TOKEN, ALICE)}"}
        area = {"x": 10, "y": 10, "w": 60, "h": 60, "shape": "box"}
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{page}api/original?{query}", headers=headers) as original:
                shown_in_editor = original.status
            async with http.post(f"{page}api/apply?{query}", json={"regions": [area]}, headers=headers) as applied:
                applied_in_editor = applied.status

    assert [reply.method for reply in replies] == ["sendPhoto", "sendDocument", "sendMediaGroup"], (
        "a job failed: a worker may have tried to write a file"
    )
    assert shown_in_editor == applied_in_editor == 200
    assert written == [], "the bot's process wrote files"
    assert os.listdir(temporary) == [] and os.listdir(working) == []
    assert replies[0].text == ENGLISH.faces_covered.format(count=1)

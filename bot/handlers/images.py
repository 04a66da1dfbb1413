"""Photos, image files and albums: checked from metadata, admitted, downloaded into memory, anonymized, answered.

Every request gets exactly one answer in the chat and as a reply to the message it came from: the result, "busy",
or what went wrong. A picture with no face is answered with a text only (the user already has the picture, and
"unchanged" is then literally true); inside an album such pictures are sent back re-encoded, so the album keeps
its order, and the caption names them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

import aiohttp
from aiogram import Bot, F, Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.fsm.context import FSMContext
from aiogram.types import BufferedInputFile, InputMediaDocument, InputMediaPhoto, Message
from aiogram.utils.chat_action import ChatActionSender

from anonymizer.errors import (
    AnonymizerError,
    CorruptImageError,
    EmptyInputError,
    InputTooLargeError,
    TooManyPixelsError,
    UnsupportedFormatError,
)
from anonymizer.options import Result
from bot import metrics
from bot.admission import BusyError, JobSize, UnavailableError
from bot.handlers.mode import current_filter
from bot.jobs import DeadlineExceededError, Job, JobService
from bot.middlewares import AlbumMiddleware
from bot.settings import BotSettings
from bot.texts import Texts

logger = logging.getLogger(__name__)

# The formats the pipeline reads (HEIC is not among them: OpenCV cannot decode it); anything else is refused before
# it is downloaded.
IMAGE_MIME_TYPES = frozenset({"image/jpeg", "image/pjpeg", "image/png", "image/webp", "image/bmp", "image/x-ms-bmp"})
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".jpe", ".png", ".webp", ".bmp"})
SUFFIXES_OF_FORMAT = {"jpeg": (".jpg", ".jpeg", ".jpe"), "png": (".png",), "webp": (".webp",), "bmp": (".bmp",)}
# Telegram accepts photos up to 10 MB; a bigger result goes back as a file.
PHOTO_UPLOAD_LIMIT = 10 * 1024 * 1024
MEGABYTE = 1024 * 1024
# A download that fails half-way (5xx, connection reset) is tried again this many times in all, while the budget
# allows, waiting this long times the attempt number in between.
DOWNLOAD_ATTEMPTS = 3
DOWNLOAD_RETRY_DELAY = 0.5


@dataclass(frozen=True)
class Picture:
    """One picture of a request, as its message's metadata describes it (nothing downloaded yet)."""

    message: Message
    file_id: str
    file_size: int | None
    pixels: int | None
    as_document: bool
    file_name: str | None


def is_image_document(mime_type: str | None, file_name: str | None) -> bool:
    """A file we try to read: an image MIME type or an image file name (the pipeline checks the bytes)."""
    return (mime_type or "").lower() in IMAGE_MIME_TYPES or PurePath(file_name or "").suffix.lower() in IMAGE_SUFFIXES


def picture_of(message: Message) -> Picture | None:
    """The picture a message carries: the largest size of a photo, or an image file; None for anything else."""
    if message.photo:
        largest = max(message.photo, key=lambda size: size.width * size.height)
        return Picture(message, largest.file_id, largest.file_size, largest.width * largest.height, False, None)
    document = message.document
    if document is not None and message.animation is None and is_image_document(document.mime_type, document.file_name):
        return Picture(message, document.file_id, document.file_size, None, True, document.file_name)
    return None


def refusal_from_metadata(picture: Picture, settings: BotSettings, texts: Texts) -> str | None:
    """Refuse what the metadata already shows to be too big, before anything is downloaded."""
    if picture.file_size is not None and picture.file_size > settings.max_file_bytes:
        return texts.too_large.format(max_mb=settings.max_file_bytes // MEGABYTE)
    if picture.pixels is not None and picture.pixels > settings.max_pixels:
        return texts.too_many_pixels.format(max_mp=settings.max_pixels // 1_000_000)
    return None


def error_text(error: BaseException, settings: BotSettings, texts: Texts) -> str:
    """What the user is told about one failed picture."""
    if isinstance(error, InputTooLargeError):
        return texts.too_large.format(max_mb=settings.max_file_bytes // MEGABYTE)
    if isinstance(error, TooManyPixelsError):
        return texts.too_many_pixels.format(max_mp=settings.max_pixels // 1_000_000)
    if isinstance(error, UnsupportedFormatError):
        return texts.unsupported
    if isinstance(error, EmptyInputError | CorruptImageError):
        return texts.corrupt
    if isinstance(error, DeadlineExceededError):
        return texts.timeout
    if isinstance(error, TelegramBadRequest) and "too big" in error.message:
        return texts.too_large.format(max_mb=settings.max_file_bytes // MEGABYTE)
    if isinstance(error, AnonymizerError) and str(error):
        return str(error)
    return texts.failed


def output_name(picture: Picture, image_format: str) -> str:
    """The reply file's name: the user's file name when the format is unchanged, else its stem and a new suffix."""
    suffixes = SUFFIXES_OF_FORMAT.get(image_format.lower(), (f".{image_format.lower()}",))
    original = PurePath(picture.file_name or "photo.jpg").name
    if PurePath(original).suffix.lower() in suffixes:
        return original
    return (PurePath(original).stem or "image") + suffixes[0]


class DownloadError(Exception):
    """Telegram did not hand over the file, even after retries.

    Raised instead of aiohttp's own errors, whose messages carry the download URL and so the bot token.
    """


async def download(bot: Bot, picture: Picture, settings: BotSettings, deadline: float) -> bytes:
    """The picture's bytes, in memory only; refused if Telegram reports it over the size limit.

    A download that fails (a 5xx, a connection dropped mid-file, or one that stalls for DOWNLOAD_STALL_SECONDS) is
    tried again while the budget allows; past the deadline, DeadlineExceededError.
    """
    file = await bot.get_file(picture.file_id)
    if file.file_size is not None and file.file_size > settings.max_file_bytes:
        raise InputTooLargeError("file too large")
    if file.file_path is None:
        raise CorruptImageError("Telegram did not give a path to download the file")
    url = bot.session.api.file_url(bot.token, file.file_path)
    attempt = 1
    while True:
        try:
            return await _fetch(bot, url, settings.download_stall_seconds, deadline)
        except (aiohttp.ClientError, TimeoutError) as error:
            delay = DOWNLOAD_RETRY_DELAY * attempt
            if attempt >= DOWNLOAD_ATTEMPTS or time.monotonic() + delay >= deadline:
                raise DownloadError(f"the file could not be downloaded ({type(error).__name__})") from None
            attempt += 1
            logger.warning("download failed (%s); try %d of %d", type(error).__name__, attempt, DOWNLOAD_ATTEMPTS)
            await asyncio.sleep(delay)


async def _fetch(bot: Bot, url: str, stall_seconds: float, deadline: float) -> bytes:
    """One download attempt into memory; TimeoutError when no data arrives for `stall_seconds`.

    The stall limit applies between chunks, not to the whole file, so a slow but steady download is not cut off.
    """
    chunks: list[bytes] = []
    remaining = deadline - time.monotonic()
    stream = bot.session.stream_content(url=url, timeout=max(1, math.ceil(remaining)), raise_for_status=True)
    async with contextlib.aclosing(stream):
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                async with asyncio.timeout(min(stall_seconds, remaining)):
                    chunks.append(await anext(stream))
            except StopAsyncIteration:
                return b"".join(chunks)
            except TimeoutError:
                if remaining <= stall_seconds:
                    raise DeadlineExceededError from None
                raise
    raise DeadlineExceededError


async def anonymize_pictures(
    bot: Bot, pictures: list[Picture], service: JobService, settings: BotSettings, filter_name: str, deadline: float
) -> list[Result | BaseException]:
    """Download and anonymize the pictures; one Result or error per picture, in order."""
    downloads = await asyncio.gather(
        *(download(bot, picture, settings, deadline) for picture in pictures), return_exceptions=True
    )
    options = settings.options(filter_name)
    jobs = [Job(data, options) for data in downloads if isinstance(data, bytes)]
    results = iter(await service.run(jobs, deadline) if jobs else [])
    outcomes = [next(results) if isinstance(data, bytes) else data for data in downloads]
    for picture, outcome in zip(pictures, outcomes, strict=True):
        if isinstance(outcome, BaseException) and not isinstance(outcome, AnonymizerError | DeadlineExceededError):
            logger.warning("chat %s: picture failed: %s", picture.message.chat.id, type(outcome).__name__)
    return outcomes


def result_file(picture: Picture, result: Result) -> BufferedInputFile:
    return BufferedInputFile(result.data, filename=output_name(picture, result.format))


def sent_as_document(picture: Picture, result: Result) -> bool:
    return picture.as_document or len(result.data) > PHOTO_UPLOAD_LIMIT


async def reply_one(picture: Picture, outcome: Result | BaseException, settings: BotSettings, texts: Texts) -> None:
    message = picture.message
    if isinstance(outcome, BaseException):
        await message.reply(error_text(outcome, settings, texts))
    elif not outcome.detections:
        await message.reply(texts.no_face)
    else:
        caption = texts.faces_covered.format(count=len(outcome.detections))
        if sent_as_document(picture, outcome):
            await message.reply_document(result_file(picture, outcome), caption=caption)
        else:
            await message.reply_photo(result_file(picture, outcome), caption=caption)


async def reply_album(
    anchor: Message,
    pictures: list[tuple[int, Picture]],
    outcomes: list[Result | BaseException],
    refused: list[tuple[int, str]],
    settings: BotSettings,
    texts: Texts,
) -> None:
    """One album back in the original order, its caption naming unchanged and failed pictures."""
    done = [
        (position, picture, outcome)
        for (position, picture), outcome in zip(pictures, outcomes, strict=True)
        if isinstance(outcome, Result)
    ]
    failed = refused + [
        (position, error_text(outcome, settings, texts))
        for (position, _), outcome in zip(pictures, outcomes, strict=True)
        if isinstance(outcome, BaseException)
    ]
    notes = [
        texts.album_partly_failed.format(positions=_positions([p for p, _ in failed]), reason=reason)
        for reason in dict.fromkeys(reason for _, reason in failed)
    ]
    faces = sum(len(outcome.detections) for _, _, outcome in done)
    if not faces:
        await anchor.reply("\n".join(([texts.album_no_face] if done else []) + notes))
        return
    unchanged = [position for position, _, outcome in done if not outcome.detections]
    caption = "\n".join(
        [
            texts.faces_covered.format(count=faces),
            *([texts.album_unchanged.format(positions=_positions(unchanged))] if unchanged else []),
            *notes,
        ]
    )
    if len(done) == 1:
        _, picture, outcome = done[0]
        if sent_as_document(picture, outcome):
            await anchor.reply_document(result_file(picture, outcome), caption=caption)
        else:
            await anchor.reply_photo(result_file(picture, outcome), caption=caption)
        return
    as_documents = any(sent_as_document(picture, outcome) for _, picture, outcome in done)
    media: list[InputMediaPhoto | InputMediaDocument] = [
        (InputMediaDocument if as_documents else InputMediaPhoto)(
            media=result_file(picture, outcome), caption=caption if index == 0 else None
        )
        for index, (_, picture, outcome) in enumerate(done)
    ]
    await anchor.reply_media_group(media=media)


def _positions(positions: list[int]) -> str:
    return ", ".join(str(position) for position in sorted(positions))


async def handle_request(messages: list[Message], *, texts: Texts, **context: Any) -> None:
    """Answer one request; an unexpected failure is logged (ids only) and still answered."""
    try:
        await _answer(messages, texts=texts, **context)
    except Exception:
        logger.exception("chat %s: request failed", messages[0].chat.id)
        with contextlib.suppress(Exception):
            await messages[0].reply(texts.failed)


async def _answer(
    messages: list[Message],
    *,
    bot: Bot,
    service: JobService,
    settings: BotSettings,
    texts: Texts,
    state: FSMContext,
    received_at: float,
) -> None:
    """Answer one request (a photo, a file, or an album of them) exactly once."""
    anchor = messages[0]
    deadline = received_at + settings.deadline_seconds
    accepted: list[tuple[int, Picture]] = []
    refused: list[tuple[int, str]] = []
    for position, message in enumerate(messages, start=1):
        picture = picture_of(message)
        reason = texts.unsupported if picture is None else refusal_from_metadata(picture, settings, texts)
        if reason is None and picture is not None:
            accepted.append((position, picture))
        else:
            refused.append((position, reason or texts.unsupported))
    if not accepted:
        await anchor.reply(refused[0][1] if len(messages) == 1 else "\n".join(dict.fromkeys(r for _, r in refused)))
        return
    user_id = anchor.from_user.id if anchor.from_user else anchor.chat.id
    filter_name = await current_filter(state, settings)
    action = "upload_document" if all(picture.as_document for _, picture in accepted) else "upload_photo"
    started = time.monotonic()
    try:
        estimates = [
            service.estimate_seconds(JobSize("image", picture.pixels, picture.file_size)) for _, picture in accepted
        ]
        async with (
            service.admission(user_id, estimates, deadline),
            ChatActionSender(bot=bot, chat_id=anchor.chat.id, action=action),
        ):
            outcomes = await anonymize_pictures(
                bot, [picture for _, picture in accepted], service, settings, filter_name, deadline
            )
            if len(messages) == 1:
                await reply_one(accepted[0][1], outcomes[0], settings, texts)
            else:
                await reply_album(anchor, accepted, outcomes, refused, settings, texts)
    except BusyError as busy:
        await anchor.reply(texts.busy.format(seconds=busy.retry_after))
        outcome = "busy"
    except UnavailableError:
        await anchor.reply(texts.unavailable)
        outcome = "unavailable"
    except DeadlineExceededError:
        logger.warning("chat %s: deadline passed after %.1f s", anchor.chat.id, time.monotonic() - received_at)
        await anchor.reply(texts.timeout)
        outcome = "apology"
    else:
        outcome = "result" if any(isinstance(item, Result) for item in outcomes) else "error"
        logger.info(
            "chat %s: %d picture(s) answered in %.2f s", anchor.chat.id, len(accepted), time.monotonic() - started
        )
    metrics.REQUESTS.labels(outcome).inc()
    metrics.REPLY_SECONDS.observe(time.monotonic() - received_at)


def create_router(settings: BotSettings) -> Router:
    router = Router(name="images")
    router.message.outer_middleware(AlbumMiddleware(settings.album_window_seconds))

    @router.message(F.media_group_id)
    async def album(
        message: Message,
        album: list[Message],
        bot: Bot,
        service: JobService,
        settings: BotSettings,
        texts: Texts,
        state: FSMContext,
        received_at: float,
    ) -> None:
        await handle_request(
            album, bot=bot, service=service, settings=settings, texts=texts, state=state, received_at=received_at
        )

    @router.message(F.photo | F.document)
    async def single(
        message: Message,
        bot: Bot,
        service: JobService,
        settings: BotSettings,
        texts: Texts,
        state: FSMContext,
        received_at: float,
    ) -> None:
        await handle_request(
            [message], bot=bot, service=service, settings=settings, texts=texts, state=state, received_at=received_at
        )

    return router

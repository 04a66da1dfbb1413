"""What every kind of request shares: downloading a user's file into memory, and what the user is told (and the
metrics count) when a request or one of its pictures ends without a result."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from dataclasses import replace

import aiohttp
from aiogram import Bot
from aiogram.exceptions import TelegramBadRequest
from aiogram.types import BufferedInputFile

import anonymizer
from anonymizer import errors
from anonymizer.options import Options, Result
from bot.admission import BusyError, UnavailableError
from bot.inputs import Clip, Picture, output_name
from bot.jobs import DeadlineExceededError
from bot.pricing import JobSize
from bot.settings import BotSettings
from bot.texts import Texts, duration_text

logger = logging.getLogger(__name__)

MEGABYTE = 1024 * 1024
# Telegram accepts photos up to 10 MB; a bigger result goes back as a file.
PHOTO_UPLOAD_LIMIT = 10 * MEGABYTE
# A download that fails half-way (5xx, connection reset) is tried again this many times in all, while the budget
# allows, waiting this long times the attempt number in between.
DOWNLOAD_ATTEMPTS = 3
DOWNLOAD_RETRY_DELAY = 0.5


class TooSlowError(Exception):
    """A picture that would outlast its budget even on an idle bot (its header's size, priced): refused at once
    rather than stopped at the deadline, which would hold a worker process for nothing."""


class DownloadError(Exception):
    """Telegram did not hand over the file, even after retries.

    Raised instead of aiohttp's own errors, whose messages carry the download URL and so the bot token.
    """


async def download(bot: Bot, file_id: str, settings: BotSettings, deadline: float) -> bytes:
    """The file's bytes, in memory only; refused if Telegram reports it over the size limit.

    A download that fails (a 5xx, a connection dropped mid-file, or one that stalls for DOWNLOAD_STALL_SECONDS) is
    tried again while the budget allows; past the deadline, DeadlineExceededError.
    """
    file = await bot.get_file(file_id)
    if file.file_size is not None and file.file_size > settings.max_file_bytes:
        raise errors.InputTooLargeError("file too large")
    if file.file_path is None:
        raise errors.CorruptImageError("Telegram did not give a path to download the file")
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


def error_text(error: BaseException, settings: BotSettings, texts: Texts, video: bool = False) -> str:
    """What the user is told about one failed picture, or (`video`) one failed video, GIF or video note."""
    if isinstance(error, errors.InputTooLargeError):
        return texts.too_large.format(max_mb=settings.max_file_bytes // MEGABYTE)
    if isinstance(error, errors.MediaTooLongError):
        return texts.video_too_long.format(max_s=round(settings.max_video_seconds))
    if isinstance(error, errors.TooManyPixelsError):
        if video:
            return texts.video_too_many_pixels.format(max_mp=round(settings.max_video_pixels / 1e6, 1))
        return texts.too_many_pixels.format(max_mp=settings.max_pixels // 1_000_000)
    if isinstance(error, errors.UnsupportedFormatError):
        return texts.unsupported
    if isinstance(error, TooSlowError):
        return texts.too_slow
    unreadable = isinstance(error, errors.EmptyInputError | errors.CorruptImageError)
    if isinstance(error, errors.CorruptMediaError) or (video and unreadable):
        return texts.video_corrupt
    if unreadable:
        return texts.corrupt
    if isinstance(error, DeadlineExceededError):
        return texts.video_timeout if video else texts.timeout
    if isinstance(error, TelegramBadRequest) and "too big" in error.message:
        return texts.too_large.format(max_mb=settings.max_file_bytes // MEGABYTE)
    if isinstance(error, errors.AnonymizerError) and str(error):
        return str(error)
    return texts.failed


def refusal(error: BaseException, settings: BotSettings, texts: Texts, video: bool = False) -> tuple[str, str]:
    """The user's text and the metric label (bot.metrics.REQUESTS) for a request that ends in `error`."""
    if isinstance(error, BusyError):
        if video:
            return texts.video_busy.format(wait=duration_text(error.retry_after, texts)), "busy"
        return texts.busy.format(seconds=error.retry_after), "busy"
    if isinstance(error, UnavailableError):
        return texts.unavailable, "unavailable"
    if isinstance(error, DeadlineExceededError):
        return error_text(error, settings, texts, video), "apology"
    return error_text(error, settings, texts, video), "error"


def format_note(result: Result, texts: Texts) -> list[str]:
    """ "Sent back as JPEG" when the result's format is not the one that came in (a HEIC file)."""
    if result.input_format and result.format != result.input_format:
        return [texts.format_changed.format(format=result.format)]
    return []


async def real_size(data: bytes, size: JobSize, options: Options) -> JobSize:
    """What a file sent as a document really is, from its header (an image's pixels, a video's frame and length),
    never from its byte size: a small file can hold a huge picture. AnonymizerError for one over the limits."""
    info = await asyncio.to_thread(anonymizer.probe, data, options)
    return replace(size, pixels=info.width * info.height, duration=info.duration or size.duration)


def result_upload(file_name: str | None, result: Result) -> BufferedInputFile:
    """A result's bytes under the name its original had, with the extension of the format it came back in."""
    return BufferedInputFile(result.data, filename=output_name(file_name, result.format))


def sent_as_file(as_document: bool, result: Result) -> bool:
    """A result goes back as a file when it came as one, or when Telegram would not take it as a photo."""
    return as_document or len(result.data) > PHOTO_UPLOAD_LIMIT


def picture_refusal(picture: Picture, settings: BotSettings, texts: Texts) -> str | None:
    """Refuse what the metadata already shows to be too big, before anything is downloaded."""
    if picture.file_size is not None and picture.file_size > settings.max_file_bytes:
        return error_text(errors.InputTooLargeError(), settings, texts)
    if picture.pixels is not None and picture.pixels > settings.max_pixels:
        return error_text(errors.TooManyPixelsError(), settings, texts)
    return None


def clip_refusal(clip: Clip, settings: BotSettings, texts: Texts) -> str | None:
    """Refuse a clip whose metadata shows it too big, too long or too large a picture, before downloading it."""
    if clip.file_size is not None and clip.file_size > settings.max_file_bytes:
        return error_text(errors.InputTooLargeError(), settings, texts, video=True)
    if clip.duration is not None and clip.duration > settings.max_video_seconds:
        return error_text(errors.MediaTooLongError(), settings, texts, video=True)
    if clip.pixels is not None and clip.pixels > settings.max_video_pixels:
        return error_text(errors.TooManyPixelsError(), settings, texts, video=True)
    return None

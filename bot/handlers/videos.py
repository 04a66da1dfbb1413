"""Videos, GIFs and video notes: checked from metadata, admitted in the video lane, downloaded into memory,
anonymized frame by frame, answered with the progress shown meanwhile.

A video takes far longer than a photo's budget, so the user hears from the bot within seconds anyway: a status
message, a reply to the video, which is edited with the progress (at most every EDIT_INTERVAL_S, as Telegram
limits edits) and removed once the video is back. A failure is told in that same message. The result goes back as
it came: a video with sendVideo, a GIF (an MP4 animation, or a GIF file) with sendAnimation, a video note as a video
note, and any file sent as a document as a document. A video note cannot carry a caption: its status message keeps
the result's text instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass

from aiogram import Bot, Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.types import BufferedInputFile, Message

from anonymizer.options import MediaKind, Result
from bot import metrics
from bot.admission import Lane
from bot.context import RequestContext
from bot.handlers.common import clip_refusal, download, error_text, real_size, refusal
from bot.handlers.images import format_note
from bot.inputs import Clip, SentAs, clip_of, output_name
from bot.jobs import Job
from bot.settings import BOT_API_UPLOAD_LIMIT
from bot.texts import Texts, duration_text

logger = logging.getLogger(__name__)

# The status message appears this long after the video arrived, unless the answer is already there (a short GIF
# needs none): well inside the photo budget, so no one waits in silence.
STATUS_DELAY_S = 2.0
# Telegram limits how often a bot may edit messages; progress a few seconds old is fresh enough.
EDIT_INTERVAL_S = 3.0


@dataclass
class StatusMessage:
    """The reply that tells the user how far their video is, edited as it goes."""

    clip: Clip
    texts: Texts
    message: Message | None = None
    text: str = ""
    queued: bool = False
    done: int = 0
    total: int = 0
    started: float | None = None

    def progress(self, done: int, total: int) -> None:
        """Called in the event loop: (0, 0) when the video got a worker, then the frames written so far."""
        if self.started is None:
            self.started = time.monotonic()
        self.queued = False
        self.done, self.total = done, total

    def current_text(self) -> str:
        if self.done and self.total and self.started is not None:
            elapsed = time.monotonic() - self.started
            left = elapsed * (self.total - self.done) / self.done
            percent = min(99, 100 * self.done // self.total)
            return self.texts.video_progress.format(percent=percent, left=duration_text(left, self.texts))
        return self.texts.video_waiting if self.queued else self.texts.video_status

    async def keep_up(self) -> None:
        """Send the status after STATUS_DELAY_S, then edit it whenever its text changed, until cancelled."""
        await asyncio.sleep(STATUS_DELAY_S)
        self.text = self.texts.video_status
        self.message = await self.clip.message.reply(self.text)
        while True:
            await asyncio.sleep(EDIT_INTERVAL_S)
            text = self.current_text()
            if text != self.text:
                await self._edit(text)

    async def _edit(self, text: str) -> bool:
        assert self.message is not None
        try:
            await self.message.edit_text(text)
        except TelegramBadRequest as error:  # deleted by the user meanwhile, or the same text
            logger.debug("status not edited: %s", error.message)
            return "not modified" in error.message
        self.text = text
        return True

    async def finish(self, updater: asyncio.Task[None] | None, final_text: str | None) -> bool:
        """Stop the updates; then show `final_text` in the status or, without one, remove the status. True if the
        status now shows `final_text`."""
        if updater is not None:
            updater.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await updater
        if self.message is None:
            return False
        if final_text is not None:
            return await self._edit(final_text)
        with contextlib.suppress(TelegramBadRequest):
            await self.message.delete()
        self.message = None
        return False


async def send_result(bot: Bot, clip: Clip, result: Result, caption: str | None) -> None:
    """The anonymized clip back the way it came."""
    message = clip.message
    default_name = "animation.gif" if clip.sent_as == SentAs.ANIMATION else "video.mp4"
    file = BufferedInputFile(result.data, filename=output_name(clip.file_name, result.format, default_name))
    duration = round(result.duration) or None
    if clip.as_document or result.kind == MediaKind.IMAGE:
        await bot.send_chat_action(message.chat.id, "upload_document")
        await message.reply_document(file, caption=caption)
    elif clip.sent_as == SentAs.VIDEO_NOTE and result.width == result.height:
        await bot.send_chat_action(message.chat.id, "upload_video_note")
        await message.reply_video_note(file, length=result.width, duration=duration)
    elif clip.sent_as == SentAs.ANIMATION:
        await bot.send_chat_action(message.chat.id, "upload_video")
        await message.reply_animation(
            file, width=result.width, height=result.height, duration=duration, caption=caption
        )
    else:
        await bot.send_chat_action(message.chat.id, "upload_video")
        await message.reply_video(
            file,
            width=result.width,
            height=result.height,
            duration=duration,
            supports_streaming=True,
            caption=caption,
        )


def result_text(clip: Clip, result: Result, texts: Texts) -> str:
    return "\n".join([texts.video_covered.format(count=result.tracks), *format_note_of_clip(clip, result, texts)])


def format_note_of_clip(clip: Clip, result: Result, texts: Texts) -> list[str]:
    """A file that comes back in another format says so (a MOV or WebM file comes back as MP4); a video or GIF
    sent as such does not (Telegram itself shows them, whatever the container)."""
    if not clip.as_document:
        return []
    if result.kind == MediaKind.IMAGE:
        return format_note(result, texts)
    suffix = output_name(clip.file_name, result.format).rpartition(".")[2]
    same = (clip.file_name or "").lower().endswith("." + suffix)
    return [] if same else [texts.format_changed.format(format=result.format)]


async def handle_clip(message: Message, request: RequestContext) -> None:
    """Answer one video, GIF or video note exactly once: the clip, or one text saying why not."""
    clip = clip_of(message)
    assert clip is not None
    settings, texts = request.settings, request.texts
    reason = clip_refusal(clip, settings, texts)
    if reason is not None:
        await message.reply(reason)
        metrics.REQUESTS.labels("error").inc()
        return
    deadline = request.received_at + settings.video_deadline_seconds
    estimate = request.jobs.estimate_seconds(clip.job_size())
    status = StatusMessage(clip, texts)
    updater: asyncio.Task[None] | None = None
    final: str | None = None  # what the user must still be told, when no clip goes back
    outcome = "error"
    try:
        async with request.jobs.admission(request.user_id, [estimate], deadline, Lane.VIDEOS) as ticket:
            updater = asyncio.create_task(status.keep_up())
            data = await download(request.bot, clip.file_id, settings, deadline)
            options = settings.options(await request.filter_name())
            if clip.as_document:  # priced by its bytes until now: its header says what it is
                estimate = request.jobs.estimate_seconds(await real_size(data, clip.job_size(), options))
                ticket = await request.jobs.reprice(ticket, [estimate])
            job = Job(data, options, kind=clip.kind, priced=estimate)
            del data
            status.queued = True
            (result,) = await request.jobs.run([job], deadline, ticket=ticket, progress=status.progress)
            del job
            if isinstance(result, BaseException):
                final = error_text(result, settings, texts, video=True)
            elif not result.tracks and result.kind != MediaKind.IMAGE:
                final, outcome = texts.video_no_face, "result"
            elif len(result.data) > BOT_API_UPLOAD_LIMIT:
                final = texts.result_too_large
            else:
                text = result_text(clip, result, texts)
                note = clip.sent_as == SentAs.VIDEO_NOTE
                shown = await status.finish(updater, text if note else None)
                updater = None
                await send_result(request.bot, clip, result, None if note else text)
                if note and not shown:
                    await message.reply(text)
                outcome = "result"
    except Exception as error:  # busy, a download that failed, a refused upload: said in one text, logged by ids
        logger.warning("chat %s: video failed: %s", message.chat.id, type(error).__name__)
        final, outcome = refusal(error, settings, texts, video=True)
    if final is not None and not await status.finish(updater, final):
        await message.reply(final)
    waited = time.monotonic() - request.received_at
    logger.info("chat %s: %s answered in %.1f s", message.chat.id, clip.sent_as, waited)
    metrics.REQUESTS.labels(outcome).inc()
    metrics.VIDEO_SECONDS.observe(waited)


def is_clip(message: Message) -> bool:
    return message.media_group_id is None and clip_of(message) is not None


def create_router() -> Router:
    router = Router(name="videos")

    @router.message(is_clip)
    async def clip(message: Message, request: RequestContext) -> None:
        await handle_clip(message, request)

    return router

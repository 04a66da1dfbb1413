"""What a message carries, from its metadata alone (nothing downloaded yet): a picture (a photo or an image file) or
a clip (a video, a GIF, a video note, or a video or GIF file), and what the metadata already shows to be too big.

The kind decides how the result goes back: a photo as a photo, a file as a file, a video with sendVideo, a GIF
(which Telegram delivers as an MP4 animation) with sendAnimation, a video note as a video note.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePath

from aiogram.types import Message

from anonymizer.formats import IMAGE_MIME_TYPES, IMAGE_SUFFIXES, MIME_TYPES, SUFFIXES, VIDEO_MIME_TYPES, VIDEO_SUFFIXES
from bot.handlers.common import MEGABYTE
from bot.settings import BotSettings
from bot.texts import Texts

# How a clip came, and so how it goes back.
VIDEO, ANIMATION, VIDEO_NOTE = "video", "animation", "video_note"


@dataclass(frozen=True)
class Picture:
    """One picture of a request, as its message's metadata describes it; `message` is the one the answer replies
    to."""

    message: Message
    file_id: str
    file_size: int | None
    pixels: int | None
    as_document: bool
    file_name: str | None


@dataclass(frozen=True)
class Clip:
    """A video, GIF or video note, as its message's metadata describes it: `sent_as` is VIDEO, ANIMATION or
    VIDEO_NOTE; a file sent as a document has only its size and name (its length and frame size are checked by
    the worker from the file's header)."""

    message: Message
    file_id: str
    sent_as: str
    file_size: int | None
    width: int | None = None
    height: int | None = None
    duration: float | None = None
    as_document: bool = False
    file_name: str | None = None

    @property
    def pixels(self) -> int | None:
        """One frame's pixels, when the metadata gives them."""
        return self.width * self.height if self.width and self.height else None


def _suffix(file_name: str | None) -> str:
    return PurePath(file_name or "").suffix.lower()


def is_image_document(mime_type: str | None, file_name: str | None) -> bool:
    """A file we try to read as a picture: an image MIME type or an image file name (the pipeline checks the
    bytes)."""
    return (mime_type or "").lower() in IMAGE_MIME_TYPES or _suffix(file_name) in IMAGE_SUFFIXES


def picture_of(message: Message) -> Picture | None:
    """The picture a message carries: the largest size of a photo, or an image file; None for anything else."""
    if message.photo:
        largest = max(message.photo, key=lambda size: size.width * size.height)
        return Picture(message, largest.file_id, largest.file_size, largest.width * largest.height, False, None)
    document = message.document
    if document is not None and message.animation is None and is_image_document(document.mime_type, document.file_name):
        return Picture(message, document.file_id, document.file_size, None, True, document.file_name)
    return None


def clip_of(message: Message) -> Clip | None:
    """The video, GIF or video note a message carries, or a video or GIF file; None for anything else."""
    if (note := message.video_note) is not None:
        return Clip(message, note.file_id, VIDEO_NOTE, note.file_size, note.length, note.length, note.duration)
    if (animation := message.animation) is not None:
        return Clip(
            message,
            animation.file_id,
            ANIMATION,
            animation.file_size,
            animation.width,
            animation.height,
            animation.duration,
            file_name=animation.file_name,
        )
    if (video := message.video) is not None:
        return Clip(
            message,
            video.file_id,
            VIDEO,
            video.file_size,
            video.width,
            video.height,
            video.duration,
            file_name=video.file_name,
        )
    document = message.document
    if document is None:
        return None
    mime_type, suffix = (document.mime_type or "").lower(), _suffix(document.file_name)
    if mime_type in MIME_TYPES["GIF"] or suffix in SUFFIXES["GIF"]:
        sent_as = ANIMATION
    elif mime_type in VIDEO_MIME_TYPES or suffix in VIDEO_SUFFIXES:
        sent_as = VIDEO
    else:
        return None
    return Clip(message, document.file_id, sent_as, document.file_size, as_document=True, file_name=document.file_name)


def picture_refusal(picture: Picture, settings: BotSettings, texts: Texts) -> str | None:
    """Refuse what the metadata already shows to be too big, before anything is downloaded."""
    if picture.file_size is not None and picture.file_size > settings.max_file_bytes:
        return texts.too_large.format(max_mb=settings.max_file_bytes // MEGABYTE)
    if picture.pixels is not None and picture.pixels > settings.max_pixels:
        return texts.too_many_pixels.format(max_mp=settings.max_pixels // 1_000_000)
    return None


def clip_refusal(clip: Clip, settings: BotSettings, texts: Texts) -> str | None:
    """Refuse a clip whose metadata shows it too big, too long or too large a picture, before downloading it."""
    if clip.file_size is not None and clip.file_size > settings.max_file_bytes:
        return texts.too_large.format(max_mb=settings.max_file_bytes // MEGABYTE)
    if clip.duration is not None and clip.duration > settings.max_video_seconds:
        return texts.video_too_long.format(max_s=round(settings.max_video_seconds))
    if clip.pixels is not None and clip.pixels > settings.max_video_pixels:
        return texts.video_too_many_pixels.format(max_mp=round(settings.max_video_pixels / 1e6, 1))
    return None


def output_name(file_name: str | None, result_format: str, default: str = "photo.jpg") -> str:
    """The reply file's name: the user's file name when the format is unchanged, else its stem and a new suffix."""
    suffixes = SUFFIXES.get(result_format.upper(), (f".{result_format.lower()}",))
    original = PurePath(file_name or default).name
    if PurePath(original).suffix.lower() in suffixes:
        return original
    return (PurePath(original).stem or "image") + suffixes[0]

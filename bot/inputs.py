"""What a message carries, from its metadata alone (nothing downloaded yet): a picture (a photo or an image file) or
a clip (a video, a GIF, a video note, or a video or GIF file).

The kind decides how the result goes back: a photo as a photo, a file as a file, a video with sendVideo, a GIF
(which Telegram delivers as an MP4 animation) with sendAnimation, a video note as a video note.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import PurePath

from aiogram.types import Message

from anonymizer.formats import IMAGE_MIME_TYPES, IMAGE_SUFFIXES, MIME_TYPES, SUFFIXES, VIDEO_MIME_TYPES, VIDEO_SUFFIXES
from anonymizer.options import MediaKind
from bot.pricing import JobSize


class SentAs(StrEnum):
    """How a clip came, and so how it goes back."""

    VIDEO = "video"
    ANIMATION = "animation"
    VIDEO_NOTE = "video_note"


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

    def job_size(self, strict: bool = False) -> JobSize:
        return JobSize(MediaKind.IMAGE, self.pixels, self.file_size, strict=strict)


@dataclass(frozen=True)
class Clip:
    """A video, GIF or video note, as its message's metadata describes it; a file sent as a document has only its
    size and name (its length and frame size are checked by the worker from the file's header)."""

    message: Message
    file_id: str
    sent_as: SentAs
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

    @property
    def kind(self) -> MediaKind:
        """A GIF is priced as an animation, everything else as a video (the pipeline tells them apart by their
        bytes)."""
        return MediaKind.ANIMATION if self.sent_as == SentAs.ANIMATION else MediaKind.VIDEO

    def job_size(self) -> JobSize:
        return JobSize(self.kind, self.pixels, self.file_size, self.duration)


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
        return Clip(message, note.file_id, SentAs.VIDEO_NOTE, note.file_size, note.length, note.length, note.duration)
    for sent_as, clip in ((SentAs.ANIMATION, message.animation), (SentAs.VIDEO, message.video)):
        if clip is not None:
            size = (clip.file_size, clip.width, clip.height, clip.duration)
            return Clip(message, clip.file_id, sent_as, *size, file_name=clip.file_name)
    document = message.document
    if document is None:
        return None
    mime_type, suffix = (document.mime_type or "").lower(), _suffix(document.file_name)
    if mime_type in MIME_TYPES["GIF"] or suffix in SUFFIXES["GIF"]:
        sent_as = SentAs.ANIMATION
    elif mime_type in VIDEO_MIME_TYPES or suffix in VIDEO_SUFFIXES:
        sent_as = SentAs.VIDEO
    else:
        return None
    return Clip(message, document.file_id, sent_as, document.file_size, as_document=True, file_name=document.file_name)


def output_name(file_name: str | None, result_format: str, default: str = "photo.jpg") -> str:
    """The reply file's name: the user's file name when the format is unchanged, else its stem and a new suffix."""
    suffixes = SUFFIXES.get(result_format.upper(), (f".{result_format.lower()}",))
    original = PurePath(file_name or default).name
    if PurePath(original).suffix.lower() in suffixes:
        return original
    return (PurePath(original).stem or "image") + suffixes[0]

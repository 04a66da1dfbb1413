"""Every way an input can be refused, each with a message fit to show a user."""


class AnonymizerError(Exception):
    """Base of all input errors: the message is safe to show to the user as it is."""


class EmptyInputError(AnonymizerError):
    """The input has no bytes."""


class InputTooLargeError(AnonymizerError):
    """The input has more bytes than allowed."""


class TooManyPixelsError(AnonymizerError):
    """The image header announces more pixels than allowed (a decompression bomb is refused here)."""


class UnsupportedFormatError(AnonymizerError):
    """The bytes are not an image in a format we read (JPEG, PNG, WebP, ...)."""


class CorruptImageError(AnonymizerError):
    """The bytes look like a supported image but cannot be decoded."""


class MediaTooLongError(AnonymizerError):
    """A video or animation runs longer, or has more frames, than allowed (checked from its header first)."""


class CorruptMediaError(AnonymizerError):
    """The bytes look like a supported video or animation but cannot be decoded to the end."""


class ChoiceError(AnonymizerError):
    """The user's choice does not fit the picture: a face number it does not have, a region outside it, or a
    choice made for a GIF or video (only photos take one)."""


# The refusals of the limits every kind of input shares, worded once: ``what`` names the input ("file", "GIF",
# "video", "sound"). A count the input only showed while being read is given as None ("more than the limit").


def too_large(what: str, size: int, limit: int) -> InputTooLargeError:
    return InputTooLargeError(f"The {what} is {_megabytes(size)}; the limit is {_megabytes(limit)}.")


def too_many_pixels(what: str, width: int, height: int, limit: int) -> TooManyPixelsError:
    pixels = _megapixels(width * height)
    return TooManyPixelsError(f"The {what} is {width} x {height} pixels ({pixels}); the limit is {_megapixels(limit)}.")


def too_many_frames(what: str, frames: int | None, limit: int) -> MediaTooLongError:
    count = f"more than {limit}" if frames is None else str(frames)
    return MediaTooLongError(f"The {what} has {count} frames; the limit is {limit}.")


def too_long(what: str, seconds: float | None, limit: float) -> MediaTooLongError:
    length = f"more than {_seconds(limit)}" if seconds is None else _seconds(seconds)
    return MediaTooLongError(f"The {what} lasts {length}; the limit is {_seconds(limit)}.")


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MB"


def _megapixels(pixels: int) -> str:
    return f"{pixels / 1e6:.3g} MP"


def _seconds(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds >= 10 else f"{seconds:.2g} s"

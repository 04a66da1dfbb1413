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

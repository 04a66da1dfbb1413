"""The photo-anonymization pipeline: image bytes in, the same image with every face covered out.

Every caller (command line, bot, benchmarks) goes through ``anonymize`` (still photos) or ``anonymize_media``
(photos, GIFs and videos); nothing else decodes images. Faces come back in ``reading_order``, numbered from 1;
``Options.keep`` and ``Options.add`` carry a user's choice, and ``anonymize(..., faces=...)`` paints it on the
faces of an earlier run without detecting again.
"""

from anonymizer import errors
from anonymizer.choices import reading_order
from anonymizer.codec import DecodedImage, decode_image, encode_image
from anonymizer.media import MediaInfo, anonymize_media, kind_of, probe
from anonymizer.options import MediaKind, Options, Result
from anonymizer.pipeline import anonymize, detect, face_filter, warm_up

__all__ = [
    "DecodedImage",
    "MediaInfo",
    "MediaKind",
    "Options",
    "Result",
    "anonymize",
    "anonymize_media",
    "decode_image",
    "detect",
    "encode_image",
    "errors",
    "face_filter",
    "kind_of",
    "probe",
    "reading_order",
    "warm_up",
]

"""The file formats the project reads and writes: their names, file suffixes and MIME types, defined once.

Format names are Pillow's (``"JPEG"``, ``"WEBP"``, ``"HEIF"``...), as ``Result.format`` reports them. Whoever picks
files by name (the command line walking folders, the bot looking at a document's name and type) asks here, so the
list of what the pipeline reads cannot drift between them.
"""

from __future__ import annotations

# Still images the codec decodes (anonymizer.codec); the first suffix of each is what its outputs are named with.
STILL_FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "HEIF", "AVIF")
SUPPORTED_TEXT = "supported: JPEG, PNG, WebP, BMP, HEIC, AVIF"
SUFFIXES: dict[str, tuple[str, ...]] = {
    "JPEG": (".jpg", ".jpeg", ".jpe"),
    "PNG": (".png",),
    "WEBP": (".webp",),
    "BMP": (".bmp",),
    "HEIF": (".heic", ".heif", ".hif"),
    "AVIF": (".avif",),
    "GIF": (".gif",),
    "MP4": (".mp4", ".m4v"),
    "QUICKTIME": (".mov", ".qt"),
    "MATROSKA": (".mkv", ".webm"),
}
MIME_TYPES: dict[str, tuple[str, ...]] = {
    "JPEG": ("image/jpeg", "image/pjpeg"),
    "PNG": ("image/png",),
    "WEBP": ("image/webp",),
    "BMP": ("image/bmp", "image/x-ms-bmp"),
    "HEIF": ("image/heic", "image/heif", "image/heic-sequence", "image/heif-sequence"),
    "AVIF": ("image/avif",),
    "GIF": ("image/gif",),
    "MP4": ("video/mp4", "video/x-m4v"),
    "QUICKTIME": ("video/quicktime",),
    "MATROSKA": ("video/x-matroska", "video/webm"),
}

IMAGE_SUFFIXES = frozenset(suffix for name in STILL_FORMATS for suffix in SUFFIXES[name])
IMAGE_MIME_TYPES = frozenset(mime for name in STILL_FORMATS for mime in MIME_TYPES[name])
# Video containers PyAV demuxes; GIFs and these are what anonymizer.media streams frame by frame.
VIDEO_FORMATS = ("MP4", "QUICKTIME", "MATROSKA")
VIDEO_SUFFIXES = frozenset(suffix for name in VIDEO_FORMATS for suffix in SUFFIXES[name])
VIDEO_MIME_TYPES = frozenset(mime for name in VIDEO_FORMATS for mime in MIME_TYPES[name])
MEDIA_SUFFIXES = frozenset((*SUFFIXES["GIF"], *VIDEO_SUFFIXES))
# Every video comes back as MP4, whatever container it came in.
VIDEO_OUTPUT_SUFFIX = SUFFIXES["MP4"][0]

GIF_SIGNATURES = (b"GIF87a", b"GIF89a")
# Brands of HEIF and AVIF pictures (stills and picture sequences), in the ftyp box they share with MP4 videos: a
# file with one of them is a photo (anonymizer.codec), never a video.
HEIF_BRANDS = (b"heic", b"heix", b"heim", b"heis", b"hevc", b"mif1", b"msf1", b"avif", b"avis")


def is_gif(data: bytes) -> bool:
    return data[:6] in GIF_SIGNATURES


def is_heif(data: bytes) -> bool:
    """Whether the bytes start like a HEIF or AVIF picture (an ftyp box with a picture brand)."""
    return data[4:8] == b"ftyp" and data[8:12] in HEIF_BRANDS


def suffix_of(image_format: str) -> str:
    """The file suffix an output in ``image_format`` is named with (``"JPEG"`` -> ``".jpg"``)."""
    return SUFFIXES[image_format.upper()][0]

"""The one options type every entry point (command line, bot, benchmarks) maps its settings onto."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum

from detectors.base import Detection
from filters import DEFAULT_MARGIN, DEFAULT_MASK, DEFAULT_MIN_MARGIN, Region

# DEFAULT_MASK, DEFAULT_MARGIN and DEFAULT_MIN_MARGIN are the filters' own (filters/masks.py says why), so that
# ``filters.create`` and these options paint alike.

# Chosen by the detector comparison (`python -m benchmarks.compare_detectors`; the figures are in
# data/reports/README.md, the reasoning in data/README.md): SCRFD-2.5G fully anonymizes more of the labelled photos,
# upright and as people send them, than YuNet, the SSD of the first design ("ssd,haar", still available by name) or
# deface, at less over-painting than either.
# YuNet, then Haar, run only when the models before them are missing ("backup"), so the tool keeps working without
# downloaded weights; run whenever the first finds nothing (a fallback), Haar painted false faces on photos
# without any and added none on the labelled ones.
DEFAULT_DETECTOR = "backup:scrfd,yunet,haar"
DEFAULT_FILTER = "noise"
MAX_INPUT_BYTES = 50 * 1024 * 1024
MAX_INPUT_PIXELS = 60_000_000
# Videos and animations: a phone's 4K frame, ten minutes and 60 fps for ten minutes; a whole video is far larger
# than a photo but is read from memory and streamed frame by frame, so its byte limit is its own.
MAX_VIDEO_BYTES = 1024 * 1024 * 1024
MAX_FRAME_PIXELS = 3840 * 2160
MAX_DURATION_S = 600.0
MAX_FRAMES = 36_000
# A GIF is written out whole by Pillow, one palette byte per pixel of every frame (plus its comparisons between
# frames), so its frames' pixels are capped together, not just one by one.
MAX_ANIMATION_PIXELS = 100_000_000
# Faces are searched as often as on every DETECT_EVERY-th frame of a 30 fps video (a tenth of a second, reckoned
# from the frames' own times) and followed in between (anonymizer/tracking.py): the detector is most of the time
# spent on a video, and a face moves little in a tenth of a second.
DETECT_EVERY = 3
# Frames held back until the searches after them are done (a third of a second of video): at most this many, and
# this many bytes of decoded pixels, whatever the file says about its frame rate. A 4K frame is 25 MB, so 30 fps
# 4K fits whole; past either bound, searches come closer together instead (anonymizer.tracking.FrameCoverer).
MAX_HELD_FRAMES = 120
MAX_HELD_BYTES = 384 * 1024 * 1024
# No camera records more frames a second: frames closer together are taken as this far apart when faces are
# searched and followed (their own timestamps are kept in the output).
MAX_FRAME_RATE = 240
# ...on the frame shrunk to this longest side (0: full size). A 640 px frame is one pass of the detector, against
# a windowed pass plus a fitted one at 720p and more: several times faster, for faces under about 20 px of a
# 720p frame (python -m benchmarks.video_slips measures what each choice covers).
DETECT_SIDE = 640
# A second, more careful look for a photo where the user saw a face left uncovered (/strict in the bot): SCRFD with
# every pass and YuNet beside it, at lower thresholds (the registry's "strict" preset). More paint is the accepted
# price; `python -m benchmarks.compare_detectors --detectors strict backup:scrfd,yunet,haar` measures both.
STRICT_DETECTOR = "strict"


class MediaKind(StrEnum):
    """What an input is, told by its bytes: each kind has its own decoder, and a caller prices each differently."""

    IMAGE = "image"
    ANIMATION = "animation"
    VIDEO = "video"


@dataclass(frozen=True, slots=True)
class Options:
    """How to anonymize one image; defaults defined here once."""

    detector: str = DEFAULT_DETECTOR
    filter: str = DEFAULT_FILTER
    mask: str = DEFAULT_MASK
    margin: float = DEFAULT_MARGIN
    min_margin: float = DEFAULT_MIN_MARGIN
    threshold: float | None = None
    max_bytes: int = MAX_INPUT_BYTES
    max_pixels: int = MAX_INPUT_PIXELS
    max_video_bytes: int = MAX_VIDEO_BYTES
    max_frame_pixels: int = MAX_FRAME_PIXELS
    max_duration: float = MAX_DURATION_S
    max_frames: int = MAX_FRAMES
    max_animation_pixels: int = MAX_ANIMATION_PIXELS
    detect_every: int = DETECT_EVERY
    detect_side: int = DETECT_SIDE
    max_held_frames: int = MAX_HELD_FRAMES
    max_held_bytes: int = MAX_HELD_BYTES
    # A video's bitrate is capped so that its file stays under this many bytes (noise costs bits, so an output
    # can be larger than its input; the bot passes Telegram's upload limit); None: no cap.
    max_output_bytes: int | None = None
    # The user's last word on a photo (anonymizer/choices.py): faces to leave uncovered, by their 1-based number in
    # reading order (as ``detect`` and ``Result.detections`` list them), and regions to cover besides the faces,
    # with the same filter and margin. Photos only: GIFs and videos refuse them.
    keep: frozenset[int] = frozenset()
    add: tuple[Region, ...] = ()
    # A preview to choose by: every face outlined and numbered on top of the painted photo (the bot's chooser).
    outline: bool = False

    def __post_init__(self) -> None:
        # Callers hand over whatever collection they hold (the bot a set of toggled numbers, a list of drawn
        # regions): stored immutable, so options stay hashable and cannot change under a running job.
        object.__setattr__(self, "keep", frozenset(self.keep))
        object.__setattr__(self, "add", tuple(self.add))

    def strict(self) -> Options:
        """The same options with the most thorough detection there is."""
        return replace(self, detector=STRICT_DETECTOR, threshold=None)


@dataclass(frozen=True, slots=True)
class Result:
    """The anonymized image, animation or video and what was done to it.

    ``format`` is what ``data`` is; ``input_format`` what came in, so a caller can say when they differ (a HEIC
    photo comes back as JPEG). ``detections`` are every face of a photo, found or given, in reading order (face n
    is ``detections[n - 1]``); ``kept`` the numbers of those left uncovered (``Options.keep``); every other face and
    every ``Options.add`` region is painted. For a video or animation ``detections`` is empty, ``tracks`` counts the
    faces followed across its ``frames`` and ``duration`` is in seconds.
    """

    data: bytes
    format: str
    width: int
    height: int
    detections: list[Detection] = field(default_factory=list)
    kept: frozenset[int] = frozenset()
    timings: dict[str, float] = field(default_factory=dict)
    input_format: str = ""
    kind: MediaKind = MediaKind.IMAGE
    frames: int = 1
    tracks: int = 0
    duration: float = 0.0

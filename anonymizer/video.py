"""Videos (MP4, MOV, WebM, MKV) in, MP4 out: every face covered in every frame, sound kept, metadata gone.

PyAV (FFmpeg in its wheels) demuxes and decodes; frames are turned upright as the phone's display matrix says,
painted by ``tracking.FrameCoverer`` (faces searched on keyframes, followed in between, a bounded lookahead) and
encoded one at a time, so memory does not grow with the video's length.

The output is H.264 (libx264, in the wheels) in MP4 with the fast-start index first: what Telegram and every
phone play inline. Each frame keeps its own timestamp (variable frame rate stays variable), so the frame rate and
duration are the input's. The sound is copied packet for packet when it is AAC or MP3 (what phones record);
another codec (WebM's Opus or Vorbis) is re-encoded to AAC, which every MP4 player plays. Nothing of the input's
metadata is written: no container or stream tags (GPS location, creation time, make and model, handler names),
no display matrix (the pixels are upright instead), no chapters, subtitles, data or attachment streams.

Strangers' files are opened with one named demuxer chosen from the file's signature (never FFmpeg's probing over
all its formats), and refused before any frame is decoded when the header announces too many pixels, frames or
seconds; the same limits are enforced while decoding, since a header can lie.
"""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction

import av
import numpy as np

from anonymizer.errors import (
    CorruptMediaError,
    EmptyInputError,
    InputTooLargeError,
    MediaTooLongError,
    TooManyPixelsError,
    UnsupportedFormatError,
)
from anonymizer.options import MediaKind, Options, Result
from anonymizer.pipeline import DEFAULT_OPTIONS, face_filter, find_faces
from anonymizer.tracking import FrameCoverer, Painter, Tracker, keyframe_interval, shrunk_search
from detectors import Detection
from filters import Box

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]

# QuickTime atoms a MOV/MP4 file starts with; FFmpeg's "mov" demuxer reads MP4, MOV, 3GP and M4V.
_MOV_FIRST_ATOMS = (b"ftyp", b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot")
_MATROSKA_MAGIC = b"\x1a\x45\xdf\xa3"  # EBML: Matroska and WebM
# Brands of still HEIF/AVIF pictures, which share the ftyp box with MP4 but are photos.
_PICTURE_BRANDS = (b"heic", b"heix", b"mif1", b"avif", b"avis", b"msf1", b"hevc", b"heim", b"heis")
COPIED_AUDIO = frozenset({"aac", "mp3"})
AUDIO_BITRATE = 128_000
VIDEO_CRF = "20"
# libx264's "veryfast" keeps encoding a small share of the time spent on a video (the detector is most of it),
# at a file about a third larger than "medium" for the same quality.
VIDEO_PRESET = "veryfast"
# A size-capped output aims this far under its cap: the container's index and the encoder's rate control
# (a buffer of one second at the capped rate) take the rest.
SIZE_CAP_SHARE = 0.95
# Below this a capped video would be blocks, not a picture; a file that still comes out too large is the caller's
# to refuse.
MIN_CAPPED_BITRATE = 150_000
# Sound copied from a stream that does not say its bitrate is budgeted at this much.
UNKNOWN_AUDIO_BITRATE = 320_000
# Audio packets muxed before the first video frame is decoded are held until the output's streams exist;
# a file with this many and no picture is not a video.
MAX_EARLY_AUDIO_PACKETS = 2048


@dataclass(frozen=True, slots=True)
class VideoInfo:
    """What the container's header says, read without decoding a frame: enough to price the work."""

    format: str
    width: int
    height: int
    frames: int
    duration: float
    frame_rate: float
    has_audio: bool

    @property
    def pixels(self) -> int:
        """Pixels of all frames together: what decoding, detecting and encoding scale with."""
        return self.width * self.height * self.frames


def container_format(data: bytes) -> str | None:
    """The FFmpeg demuxer for these bytes ("mov" or "matroska"), or None when they are no video we read."""
    if data[:4] == _MATROSKA_MAGIC:
        return "matroska"
    if data[4:8] in _MOV_FIRST_ATOMS and not (data[4:8] == b"ftyp" and data[8:12] in _PICTURE_BRANDS):
        return "mov"
    return None


def probe_video(data: bytes, options: Options = DEFAULT_OPTIONS) -> VideoInfo:
    """The video's size, frames and duration from its header, after checking them against ``options``' limits."""
    with _open(data, options) as container:
        return _check(container, options)


def anonymize_video(data: bytes, options: Options = DEFAULT_OPTIONS, progress: Progress | None = None) -> Result:
    """The video with every face covered in every frame, as MP4, with its sound and no metadata.

    ``progress(done, total)`` is called after each frame written (``total`` is the header's frame count, raised
    to ``done`` if the header undercounted). Raises ``AnonymizerError`` subclasses for refused input.
    """
    timings = {"detect": 0.0, "filter": 0.0}

    search = shrunk_search(lambda frame: find_faces(frame, options), options.detect_side)

    def timed_find(frame: np.ndarray) -> list[Detection]:
        mark = time.perf_counter()
        found = search(frame)
        timings["detect"] += time.perf_counter() - mark
        return found

    def coverer_for(rate: float) -> FrameCoverer:
        painter = _TimedFilter(face_filter(options), timings)
        return FrameCoverer(timed_find, painter, keyframe_interval(options.detect_every, rate), Tracker.for_rate(rate))

    return _transcode(data, options, coverer_for, progress, timings)


def reencode_video(data: bytes, options: Options = DEFAULT_OPTIONS) -> Result:
    """Decode, turn upright and encode, finding and painting nothing: the floor of ``anonymize_video``'s time."""
    return _transcode(data, options, None, None, {})


class _TimedFilter:
    """A filter whose ``apply`` time is added to the video's timings."""

    def __init__(self, painter: Painter, timings: dict[str, float]) -> None:
        self.painter, self.timings = painter, timings

    def apply(self, image: np.ndarray, regions: Sequence[Box]) -> np.ndarray:
        mark = time.perf_counter()
        painted = self.painter.apply(image, regions)
        self.timings["filter"] += time.perf_counter() - mark
        return painted


def _open(data: bytes, options: Options) -> av.container.InputContainer:
    if not data:
        raise EmptyInputError("The file is empty.")
    if len(data) > options.max_video_bytes:
        limit = options.max_video_bytes / 2**20
        raise InputTooLargeError(f"The video is {len(data) / 2**20:.1f} MB; the limit is {limit:.0f} MB.")
    demuxer = container_format(data)
    if demuxer is None:
        raise UnsupportedFormatError("This file is not a video we read (supported: MP4, MOV, WebM, MKV).")
    try:
        return av.open(io.BytesIO(data), "r", format=demuxer, metadata_errors="ignore")
    except (av.FFmpegError, ValueError, OSError):
        raise CorruptMediaError("The video is damaged or truncated and cannot be read.") from None


def _check(container: av.container.InputContainer, options: Options) -> VideoInfo:
    if not container.streams.video:
        raise UnsupportedFormatError("The file has no video picture.")
    stream = container.streams.video[0]
    width, height = stream.codec_context.width, stream.codec_context.height
    if width <= 0 or height <= 0:
        raise CorruptMediaError("The video is damaged: its header gives no picture size.")
    if width * height > options.max_frame_pixels:
        raise TooManyPixelsError(
            f"The video is {width} x {height} pixels; the limit is {options.max_frame_pixels / 1e6:.1f} MP a frame."
        )
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate or Fraction(30)
    duration = _duration(container, stream)
    frames = stream.frames or round(duration * float(rate))
    if duration > options.max_duration:
        raise MediaTooLongError(f"The video lasts {duration:.0f} s; the limit is {options.max_duration:.0f} s.")
    if frames > options.max_frames:
        raise MediaTooLongError(f"The video has {frames} frames; the limit is {options.max_frames}.")
    return VideoInfo(
        format=container.format.name.split(",")[0].upper(),
        width=width,
        height=height,
        frames=frames,
        duration=duration,
        frame_rate=float(rate),
        has_audio=bool(container.streams.audio),
    )


def _duration(container: av.container.InputContainer, stream: av.video.stream.VideoStream) -> float:
    """Seconds from the stream's own duration, else the container's, else 0 (unknown)."""
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration:
        return container.duration / av.time_base
    return 0.0


def _upright(frame: av.VideoFrame) -> np.ndarray:
    """The frame as BGR, turned as its display matrix says a player shows it."""
    pixels: np.ndarray = frame.to_ndarray(format="bgr24")
    quarter_turns = round((frame.rotation or 0) / 90) % 4
    if quarter_turns:
        pixels = np.ascontiguousarray(np.rot90(pixels, quarter_turns))
    return pixels


def _even(pixels: np.ndarray) -> np.ndarray:
    """H.264 in 4:2:0 needs even sides: an odd side gets its last row or column repeated once."""
    pad_y, pad_x = pixels.shape[0] % 2, pixels.shape[1] % 2
    if pad_y or pad_x:
        pixels = np.pad(pixels, ((0, pad_y), (0, pad_x), (0, 0)), mode="edge")
    return pixels


class _BufferReader:
    """A read-only view of a growing in-memory file with a position of its own."""

    def __init__(self, buffer: io.BytesIO) -> None:
        self.buffer, self.position = buffer, 0

    def read(self, size: int = -1) -> bytes:
        with self.buffer.getbuffer() as view:
            end = len(view) if size < 0 else self.position + size
            chunk = bytes(view[self.position : end])
        self.position += len(chunk)
        return chunk

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.position, io.SEEK_END: len(self.buffer.getbuffer())}[whence]
        self.position = base + offset
        return self.position

    def tell(self) -> int:
        return self.position

    def close(self) -> None:
        """Nothing to release: the buffer belongs to the writer."""


class _Writer:
    """The MP4 being written: streams are created on the first video frame, when the upright size is known."""

    def __init__(
        self,
        stream: av.video.stream.VideoStream,
        audio: av.audio.stream.AudioStream | None,
        max_bitrate: int | None = None,
    ) -> None:
        self.buffer = io.BytesIO()
        self.max_bitrate = max_bitrate
        self.output = av.open(
            self.buffer, "w", format="mp4", options={"movflags": "+faststart"}, io_open=self._reopen_for_reading
        )
        self.input_video, self.input_audio = stream, audio
        self.video: av.video.stream.VideoStream | None = None
        self.audio: av.audio.stream.AudioStream | None = None
        self.copy_audio = audio is not None and audio.codec_context.name in COPIED_AUDIO
        self.early_audio: list[av.Packet] = []
        self.width = self.height = self.frames = 0
        # Frames keep the input stream's timestamps; the muxer may pick another time base for its own stream.
        # (FFmpeg gives every demuxed stream a time base; MPEG's 90 kHz clock stands in for a missing one.)
        self.time_base = stream.time_base or Fraction(1, 90_000)
        self.last_pts: int | None = None
        self.end_time = 0.0

    def _reopen_for_reading(self, url: str, flags: int, options: dict) -> _BufferReader:
        """The muxer reads its own output back to move the index to the front (fast start)."""
        return _BufferReader(self.buffer)

    def start(self, first: np.ndarray) -> av.video.stream.VideoStream:
        self.height, self.width = first.shape[:2]
        rate = self.input_video.average_rate or self.input_video.guessed_rate or Fraction(30)
        video = self.output.add_stream("libx264", rate=rate)
        video.width, video.height, video.pix_fmt = self.width, self.height, "yuv420p"
        video.time_base = self.time_base
        video.codec_context.time_base = self.time_base
        video.options = {"crf": VIDEO_CRF, "preset": VIDEO_PRESET}
        if self.max_bitrate is not None:
            # Constrained quality: crf as usual, but never above the rate the size cap allows.
            video.options |= {"maxrate": str(self.max_bitrate), "bufsize": str(self.max_bitrate)}
        self.video = video
        if self.input_audio is not None:
            if self.copy_audio:
                self.audio = self.output.add_stream_from_template(self.input_audio)
            else:
                source = self.input_audio.codec_context
                self.audio = self.output.add_stream("aac", rate=source.sample_rate, layout=source.layout)
                self.audio.bit_rate = AUDIO_BITRATE
        for packet in self.early_audio:
            self.audio_packet(packet)
        self.early_audio.clear()
        return video

    def audio_packet(self, packet: av.Packet) -> None:
        if self.video is None:
            if len(self.early_audio) >= MAX_EARLY_AUDIO_PACKETS:
                raise CorruptMediaError("The video is damaged: it has sound but no picture.")
            self.early_audio.append(packet)
            return
        if self.audio is None:
            return
        if self.copy_audio:
            if packet.dts is None and packet.pts is None:
                return
            packet.stream = self.audio
            self.output.mux(packet)
            return
        for frame in packet.decode():
            if not isinstance(frame, av.AudioFrame):
                continue
            frame.pts = None
            for encoded in self.audio.encode(frame):
                self.output.mux(encoded)

    def frame(self, pixels: np.ndarray, pts: int | None, duration: int | None) -> None:
        video = self.video or self.start(pixels)
        frame = av.VideoFrame.from_ndarray(pixels, format="bgr24")
        if self.last_pts is not None and (pts is None or pts <= self.last_pts):
            pts = self.last_pts + (duration or 1)  # missing or out of order: the encoder needs them increasing
        elif pts is None:
            pts = 0
        frame.pts, frame.time_base = pts, self.time_base
        if duration:
            frame.duration = duration
        self.last_pts = pts
        self.end_time = max(self.end_time, float((pts + (duration or 0)) * self.time_base))
        self.frames += 1
        for packet in video.encode(frame):
            self.output.mux(packet)

    def close(self) -> bytes:
        if self.video is not None:
            for packet in self.video.encode():
                self.output.mux(packet)
        if self.audio is not None and not self.copy_audio:
            for packet in self.audio.encode():
                self.output.mux(packet)
        self.output.close()
        return self.buffer.getvalue()


def _transcode(
    data: bytes,
    options: Options,
    coverer_for: Callable[[float], FrameCoverer] | None,
    progress: Progress | None,
    timings: dict[str, float],
) -> Result:
    start = time.perf_counter()
    with _open(data, options) as container:
        info = _check(container, options)
        coverer = coverer_for(info.frame_rate) if coverer_for is not None else None
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        audio = container.streams.audio[0] if container.streams.audio else None
        writer = _Writer(stream, audio, _bitrate_cap(options.max_output_bytes, info.duration, audio))
        decoded = 0

        def write(pixels: np.ndarray, timing: tuple[int | None, int | None]) -> None:
            writer.frame(pixels, *timing)
            if progress is not None:
                progress(writer.frames, max(info.frames, writer.frames))

        try:
            streams = [stream] if audio is None else [stream, audio]
            for packet in container.demux(*streams):
                if packet.stream is not stream:
                    writer.audio_packet(packet)
                    continue
                for frame in packet.decode():
                    if not isinstance(frame, av.VideoFrame):
                        continue
                    decoded += 1
                    _check_running(decoded, frame, options)
                    pixels = _even(_upright(frame))
                    timing = (frame.pts, frame.duration or None)
                    if coverer is None:
                        write(pixels, timing)
                        continue
                    for painted, painted_timing in coverer.push(pixels, timing):
                        write(painted, painted_timing)
            if coverer is not None:
                for painted, painted_timing in coverer.finish():
                    write(painted, painted_timing)
            if decoded == 0:
                raise CorruptMediaError("The video is damaged or truncated: no frame could be decoded.")
            output = writer.close()
        except av.FFmpegError as error:
            log.debug("FFmpeg refused the video: %s", error)
            raise CorruptMediaError("The video is damaged or truncated and cannot be decoded.") from None
    timings["total"] = time.perf_counter() - start
    log.debug("video %dx%d: %d frames, %s", writer.width, writer.height, writer.frames, timings)
    return Result(
        data=output,
        format="MP4",
        width=writer.width,
        height=writer.height,
        timings=timings,
        input_format=info.format,
        kind=MediaKind.VIDEO,
        frames=writer.frames,
        tracks=coverer.tracks if coverer is not None else 0,
        duration=writer.end_time,
    )


def _bitrate_cap(max_bytes: int | None, duration: float, audio: av.audio.stream.AudioStream | None) -> int | None:
    """The video bitrate that keeps a file of ``duration`` seconds under ``max_bytes`` with its sound; None when
    there is no cap or the header gives no duration to spread it over.

    x264's rate control holds the rate to at most its buffer (one second) over the cap, so the budget is spread
    over the duration plus that second.
    """
    if max_bytes is None or duration <= 0:
        return None
    sound = 0
    if audio is not None:
        copied = audio.codec_context.name in COPIED_AUDIO
        sound = (audio.codec_context.bit_rate or UNKNOWN_AUDIO_BITRATE) if copied else AUDIO_BITRATE
    bits = max_bytes * 8 * SIZE_CAP_SHARE - sound * duration
    return max(MIN_CAPPED_BITRATE, int(bits / (duration + 1)))


def _check_running(decoded: int, frame: av.VideoFrame, options: Options) -> None:
    """The limits again as frames arrive: the header may have understated them."""
    if decoded > options.max_frames:
        raise MediaTooLongError(f"The video has more than {options.max_frames} frames; that is the limit.")
    if frame.time is not None and frame.time > options.max_duration:
        raise MediaTooLongError(f"The video lasts more than {options.max_duration:.0f} s; that is the limit.")
    if frame.width * frame.height > options.max_frame_pixels:
        raise TooManyPixelsError(f"The video's frames exceed {options.max_frame_pixels / 1e6:.1f} MP.")

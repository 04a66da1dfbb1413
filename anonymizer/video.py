"""Videos (MP4, MOV, WebM, MKV) in, MP4 out: every face covered in every frame, sound kept, metadata gone.

PyAV (FFmpeg in its wheels) demuxes and decodes; frames are turned upright as the phone's display matrix says,
painted by ``tracking.FrameCoverer`` (faces searched on keyframes, followed in between, a bounded lookahead) and
encoded one at a time, so memory does not grow with the video's length.

The output is H.264 (libx264, in the wheels) in MP4 with the fast-start index first: what Telegram and every
phone play inline. Each frame keeps its own timestamp (variable frame rate stays variable), so the frame rate and
duration are the input's. The sound is copied packet for packet when it is AAC or MP3 (what phones record);
another codec (WebM's Opus or Vorbis) is re-encoded to AAC, which every MP4 player plays; either way it ends where
the picture ends. Nothing of the input's metadata is written: no container or stream tags (GPS location, creation
time, make and model, handler names), no display matrix (the pixels are upright instead), no chapters, subtitles,
data or attachment streams; nor anything naming the software that wrote the output or its settings (FFmpeg's
"encoder" tags, x264's settings message in the picture's first packet).

Strangers' files are opened with one named demuxer chosen from the file's signature (never FFmpeg's probing over
all its formats), only the decoders of ``VIDEO_DECODERS`` and ``AUDIO_DECODERS`` may run on them, and they are
refused before any frame is decoded when the header announces too many pixels, frames or seconds, of picture or of
sound; the same limits are enforced while decoding, since a header can lie. Faces are searched and followed in
the frames' own times (``_Timeline``), never in the rate a header claims, and the frames held back for that are
bounded in count and bytes (``Options.max_held_frames``, ``Options.max_held_bytes``).
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import io
import logging
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction

import av
import numpy as np
from av.bitstream import BitStreamFilterContext
from av.codec.context import Flags

from anonymizer.errors import (
    CorruptMediaError,
    EmptyInputError,
    UnsupportedFormatError,
    too_large,
    too_long,
    too_many_frames,
    too_many_pixels,
)
from anonymizer.formats import is_heif
from anonymizer.options import MAX_FRAME_RATE, MediaKind, Options, Result
from anonymizer.pipeline import DEFAULT_OPTIONS, face_filter, find_faces
from anonymizer.tracking import REFERENCE_RATE, FrameCoverer, Painter, search_interval, shrunk_search
from detectors import Detection
from filters import Box

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]

# QuickTime atoms a MOV/MP4 file starts with; FFmpeg's "mov" demuxer reads MP4, MOV, 3GP and M4V.
_MOV_FIRST_ATOMS = (b"ftyp", b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot")
_MATROSKA_MAGIC = b"\x1a\x45\xdf\xa3"  # EBML: Matroska and WebM
# The only decoders a stranger's file may reach (FFmpeg's names, as a stream's codec context gives them), with the
# names users know them by: what phones, cameras and the web write. Every other codec FFmpeg has (hundreds, most of
# them rarely exercised) is refused by name before a packet is decoded, and left out of FFmpeg's own probing.
VIDEO_DECODERS = {"h264": "H.264", "hevc": "HEVC", "vp8": "VP8", "vp9": "VP9", "libdav1d": "AV1", "mpeg4": "MPEG-4"}
AUDIO_DECODERS = {
    "aac": "AAC",
    "mp3float": "MP3",
    "mp3": "MP3",
    "opus": "Opus",
    "vorbis": "Vorbis",
    **{
        f"pcm_{sample}": "PCM"
        for sample in ("u8", "s16le", "s16be", "s24le", "s24be", "s32le", "s32be", "f32le", "f32be")
    },
}
_DECODER_WHITELIST = ",".join((*VIDEO_DECODERS, *AUDIO_DECODERS))
COPIED_AUDIO = frozenset({"aac", "mp3float", "mp3"})
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
# Sound packets wait until the picture has reached their time (the output's streams exist from the first frame on,
# and sound past the picture's end is cut). Interleaved files keep them a second or so apart: a file with this many
# waiting and no picture yet is not a video, and with a picture, the sound runs on past the picture's end.
MAX_WAITING_AUDIO_PACKETS = 2048
# FFmpeg's readers size some allocations from counts a file gives before the bytes behind them are read: the count
# in a QuickTime "keys" box of 31 bytes can ask for 512 MB (the fuzzing corpus found it). No single allocation for a
# file within our limits needs more than a few frames (a 4K frame is 25 MB as BGR), so while a stranger's file is
# open, FFmpeg's own cap on one allocation (av_max_alloc, 2 GB by default) is lowered to this. PyAV does not expose
# it: it is set in the libavutil the process has loaded (found in /proc/self/maps: the servers run Linux).
MAX_FFMPEG_ALLOCATION = 128 * 1024 * 1024
_FFMPEG_DEFAULT_MAX_ALLOCATION = 2**31 - 1
# x264 writes its version and every setting into the first packet as a "user data" message (an H.264 SEI unit);
# this filter drops SEI units, which the output needs none of.
_DROP_ENCODER_MESSAGES = "filter_units=remove_types=6"


@functools.cache
def _av_max_alloc() -> Callable[[int], None] | None:
    """FFmpeg's av_max_alloc in the libavutil PyAV loaded, or None (with a warning) where it cannot be found."""
    try:
        with open("/proc/self/maps") as maps:
            path = next((line.split(maxsplit=5)[-1].strip() for line in maps if "libavutil" in line), None)
    except OSError:
        path = None
    if path is None:
        log.warning("FFmpeg's allocations cannot be capped: its libavutil is not in /proc/self/maps")
        return None
    function = ctypes.CDLL(path).av_max_alloc
    function.argtypes = [ctypes.c_size_t]
    return function


@contextlib.contextmanager
def _allocations_capped() -> Iterator[None]:
    """FFmpeg's single allocations held to MAX_FFMPEG_ALLOCATION meanwhile (see there)."""
    set_max_alloc = _av_max_alloc()
    if set_max_alloc is not None:
        set_max_alloc(MAX_FFMPEG_ALLOCATION)
    try:
        yield
    finally:
        if set_max_alloc is not None:
            set_max_alloc(_FFMPEG_DEFAULT_MAX_ALLOCATION)


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
    if data[4:8] in _MOV_FIRST_ATOMS and not is_heif(data):
        return "mov"
    return None


def probe_video(data: bytes, options: Options = DEFAULT_OPTIONS) -> VideoInfo:
    """The video's size, frames and duration from its header, after checking them against ``options``' limits."""
    with _opened(data, options) as container:
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

    def coverer() -> FrameCoverer:
        painter = _TimedFilter(face_filter(options), timings)
        interval = search_interval(options.detect_every)
        return FrameCoverer(
            timed_find,
            painter,
            interval,
            max_held_frames=options.max_held_frames,
            max_held_bytes=options.max_held_bytes,
        )

    return _transcode(data, options, coverer, progress, timings)


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


@contextlib.contextmanager
def _opened(data: bytes, options: Options) -> Iterator[av.container.InputContainer]:
    """The container of a stranger's file, open (and FFmpeg's allocations capped) for the ``with`` block."""
    with _allocations_capped(), _open(data, options) as container:
        yield container


def _open(data: bytes, options: Options) -> av.container.InputContainer:
    if not data:
        raise EmptyInputError("The file is empty.")
    if len(data) > options.max_video_bytes:
        raise too_large("video", len(data), options.max_video_bytes)
    demuxer = container_format(data)
    if demuxer is None:
        raise UnsupportedFormatError("This file is not a video we read (supported: MP4, MOV, WebM, MKV).")
    try:
        return av.open(
            io.BytesIO(data),
            "r",
            format=demuxer,
            container_options={"codec_whitelist": _DECODER_WHITELIST},
            metadata_errors="ignore",
        )
    except (av.FFmpegError, ValueError, OSError):
        raise CorruptMediaError("The video is damaged or truncated and cannot be read.") from None


def _check(container: av.container.InputContainer, options: Options) -> VideoInfo:
    if not container.streams.video:
        raise UnsupportedFormatError("The file has no video picture.")
    stream = container.streams.video[0]
    _check_decoder(stream, VIDEO_DECODERS, "picture")
    width, height = stream.codec_context.width, stream.codec_context.height
    if width <= 0 or height <= 0:
        raise CorruptMediaError("The video is damaged: its header gives no picture size.")
    if width * height > options.max_frame_pixels:
        raise too_many_pixels("video", width, height, options.max_frame_pixels)
    rate = _nominal_rate(stream)
    duration = _duration(container, stream)
    frames = stream.frames or round(duration * float(rate))
    if duration > options.max_duration:
        raise too_long("video", duration, options.max_duration)
    if frames > options.max_frames:
        raise too_many_frames("video", frames, options.max_frames)
    if container.streams.audio:
        sound = container.streams.audio[0]
        _check_decoder(sound, AUDIO_DECODERS, "sound")
        sound_duration = _duration(container, sound)
        if sound_duration > options.max_duration:
            raise too_long("sound", sound_duration, options.max_duration)
    return VideoInfo(
        format=container.format.name.split(",")[0].upper(),
        width=width,
        height=height,
        frames=frames,
        duration=duration,
        frame_rate=float(rate),
        has_audio=bool(container.streams.audio),
    )


def _check_decoder(stream: av.stream.Stream, allowed: dict[str, str], what: str) -> None:
    """Refuse a stream whose decoder is not on the allow-list (or that has none), naming its codec when the name is
    plain."""
    name = stream.codec_context.name if stream.codec_context is not None else ""
    if name not in allowed:
        codec = f"in {name.upper()}, a format" if name.isalnum() else "in a format"  # "": no decoder at all
        supported = ", ".join(dict.fromkeys(allowed.values()))
        raise UnsupportedFormatError(f"The video's {what} is {codec} we do not read (we read {supported}).")


def _nominal_rate(stream: av.video.stream.VideoStream) -> Fraction:
    """The frame rate the header gives, within what cameras record (a header's rate is only used to estimate)."""
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate or Fraction(int(REFERENCE_RATE))
    return min(max(rate, Fraction(1)), Fraction(MAX_FRAME_RATE))


def _duration(container: av.container.InputContainer, stream: av.stream.Stream) -> float:
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
    """The MP4 being written: streams are created on the first video frame, when the upright size is known; sound
    is written as the picture reaches its time, and what is left past the picture's end is cut."""

    def __init__(
        self,
        stream: av.video.stream.VideoStream,
        audio: av.audio.stream.AudioStream | None,
        max_duration: float,
        max_bitrate: int | None = None,
    ) -> None:
        self.buffer = io.BytesIO()
        self.max_duration, self.max_bitrate = max_duration, max_bitrate
        self.output = av.open(
            self.buffer,
            "w",
            format="mp4",
            container_options={"movflags": "+faststart", "fflags": "+bitexact"},  # bitexact: no "encoder" tag
            io_open=self._reopen_for_reading,
        )
        self.input_video, self.input_audio = stream, audio
        self.video: av.video.stream.VideoStream | None = None
        self.audio: av.audio.stream.AudioStream | None = None
        self.drop_messages: BitStreamFilterContext | None = None
        self.copy_audio = audio is not None and audio.codec_context.name in COPIED_AUDIO
        self.waiting_audio: deque[tuple[float, av.Packet]] = deque()
        self.sound_start: float | None = None  # when the first sound re-encoded starts, and how long it has lasted
        self.sound_seconds = 0.0
        self.width = self.height = self.frames = 0
        # Frames keep the input stream's timestamps; the muxer may pick another time base for its own stream.
        # (FFmpeg gives every demuxed stream a time base; MPEG's 90 kHz clock stands in for a missing one.)
        self.time_base = stream.time_base or Fraction(1, 90_000)
        self.last_pts: int | None = None
        self.last_step: int | None = None
        self.end_time = 0.0

    def _reopen_for_reading(self, url: str, flags: int, options: dict) -> _BufferReader:
        """The muxer reads its own output back to move the index to the front (fast start)."""
        return _BufferReader(self.buffer)

    def start(self, first: np.ndarray) -> av.video.stream.VideoStream:
        self.height, self.width = first.shape[:2]
        video = self.output.add_stream("libx264", rate=_nominal_rate(self.input_video))
        video.width, video.height, video.pix_fmt = self.width, self.height, "yuv420p"
        video.time_base = self.time_base
        video.codec_context.time_base = self.time_base
        video.options = {"crf": VIDEO_CRF, "preset": VIDEO_PRESET}
        if self.max_bitrate is not None:
            # Constrained quality: crf as usual, but never above the rate the size cap allows.
            video.options |= {"maxrate": str(self.max_bitrate), "bufsize": str(self.max_bitrate)}
        self.video = video
        self.drop_messages = BitStreamFilterContext(_DROP_ENCODER_MESSAGES, video)
        if self.input_audio is not None:
            if self.copy_audio:
                self.audio = self.output.add_stream_from_template(self.input_audio)
            else:
                source = self.input_audio.codec_context
                self.audio = self.output.add_stream("aac", rate=source.sample_rate, layout=source.layout)
                self.audio.bit_rate = AUDIO_BITRATE
                self.audio.codec_context.flags |= Flags.bitexact  # no "Lavc" version in the first packet
        return video

    def audio_packet(self, packet: av.Packet) -> None:
        """Hold a sound packet until the picture reaches its time; refuse sound that runs past the length limit."""
        seconds = _packet_time(packet)
        if seconds is None:
            return  # nothing to place it by (the demuxer's end-of-stream marker has no time either)
        if seconds > self.max_duration:
            raise too_long("sound", None, self.max_duration)
        if len(self.waiting_audio) >= MAX_WAITING_AUDIO_PACKETS:
            if self.video is None:
                raise CorruptMediaError("The video is damaged: it has sound but no picture.")
            return
        self.waiting_audio.append((seconds, packet))
        self._write_audio()

    def _write_audio(self) -> None:
        """Write the waiting sound the picture has reached (none before the output's streams exist)."""
        while self.video is not None and self.waiting_audio and self.waiting_audio[0][0] < self.end_time:
            seconds, packet = self.waiting_audio.popleft()
            if self.copy_audio:
                self._copy_audio(packet, seconds)
            else:
                self._encode_audio(packet, seconds)

    def _copy_audio(self, packet: av.Packet, seconds: float) -> None:
        assert self.audio is not None and packet.time_base is not None
        if packet.duration:  # a packet claiming to last past the picture would stretch the sound with it
            packet.duration = min(packet.duration, max(1, int((self.end_time - seconds) / packet.time_base)))
        packet.stream = self.audio
        self.output.mux(packet)

    def _encode_audio(self, packet: av.Packet, seconds: float) -> None:
        assert self.audio is not None
        if self.sound_start is None:
            self.sound_start = seconds
        for frame in packet.decode():
            if not isinstance(frame, av.AudioFrame) or self.sound_start + self.sound_seconds >= self.end_time:
                continue  # more sound decoded than its timestamps said (they can lie): cut at the picture's end
            self.sound_seconds += frame.samples / (frame.sample_rate or 1)
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
        if self.last_pts is not None:
            self.last_step = pts - self.last_pts
        self.last_pts = pts
        # A frame lasts its own duration, else as long as the one before it: the sound's end is cut there.
        self.end_time = max(self.end_time, float((pts + (duration or self.last_step or 0)) * self.time_base))
        self.frames += 1
        for packet in video.encode(frame):
            self._mux_video(packet)
        self._write_audio()

    def _mux_video(self, packet: av.Packet | None) -> None:
        assert self.video is not None and self.drop_messages is not None
        for filtered in self.drop_messages.filter(packet):
            filtered.stream = self.video
            self.output.mux(filtered)

    def close(self) -> bytes:
        if self.video is not None:
            for packet in self.video.encode():
                self._mux_video(packet)
            self._mux_video(None)
        self._write_audio()
        self.waiting_audio.clear()
        if self.audio is not None and not self.copy_audio:
            for packet in self.audio.encode():
                self.output.mux(packet)
        self.output.close()
        return self.buffer.getvalue()


def _packet_time(packet: av.Packet) -> float | None:
    """When a packet starts, in seconds, from its presentation or else its decoding timestamp."""
    ticks = packet.pts if packet.pts is not None else packet.dts
    if ticks is None or packet.time_base is None:
        return None
    return float(ticks * packet.time_base)


class _Timeline:
    """Each frame's time for searching and following faces: its own timestamp, made to move on by at least
    1/MAX_FRAME_RATE from the frame before (a clip claiming a million frames a second is searched as often per frame
    as one at that rate). A frame without a timestamp comes one step after the one before, as the last step did;
    the header's frame rate is never used."""

    def __init__(self) -> None:
        self.last: float | None = None
        self.step = 1 / REFERENCE_RATE

    def time_of(self, frame: av.VideoFrame) -> float:
        own = frame.time
        if self.last is None:
            seconds = own if own is not None else 0.0
        else:
            seconds = max(self.last + self.step if own is None else own, self.last + 1 / MAX_FRAME_RATE)
            self.step = seconds - self.last
        self.last = seconds
        return seconds


def _transcode(
    data: bytes,
    options: Options,
    coverer_for: Callable[[], FrameCoverer] | None,
    progress: Progress | None,
    timings: dict[str, float],
) -> Result:
    start = time.perf_counter()
    with _opened(data, options) as container:
        info = _check(container, options)
        coverer = coverer_for() if coverer_for is not None else None
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        audio = container.streams.audio[0] if container.streams.audio else None
        cap = _bitrate_cap(options.max_output_bytes, info.duration, audio)
        writer = _Writer(stream, audio, options.max_duration, cap)
        timeline = _Timeline()
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
                    for painted, painted_timing in coverer.push(pixels, timeline.time_of(frame), timing):
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
        raise too_many_frames("video", None, options.max_frames)
    if frame.time is not None and frame.time > options.max_duration:
        raise too_long("video", None, options.max_duration)
    if frame.width * frame.height > options.max_frame_pixels:
        raise too_many_pixels("video", frame.width, frame.height, options.max_frame_pixels)

"""Videos end to end (MP4 bytes in, MP4 bytes out) against the 15 s target, and the peak memory of a long 1080p clip.

Full run:   python -m pytest benchmarks/bench_video.py -s
Short (CI): VIDEO_BENCH=short python -m pytest benchmarks/bench_video.py -q   (2 s clips, smaller memory run)

Clips are synthetic phone clips (benchmarks/clips.py): two faces moving across a panning textured background, H.264
with AAC sound. Each timing is one run (a video is long enough to average itself), next to decode + encode alone
(``reencode_video``), the floor of any tool that reads and writes the same video; ``extra_info`` has the ratio.
Every anonymized clip is checked frame by frame: a face that is bare in any frame fails the benchmark, as does
the 10 s 720p clip taking more than 15 s (full run), anonymizing taking over 3 times as long as decoding and
encoding alone (5 in the short run, a smoke check on 2 s clips), or memory growing with the clip's length.
"""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

from anonymizer import Options, Result, anonymize_media, warm_up
from anonymizer.video import reencode_video
from benchmarks.clips import ClipSpec, frames, make_clip
from benchmarks.measure import fresh_process_peak, linux_only
from testing.media import iter_bgr_frames

SHORT = os.environ.get("VIDEO_BENCH", "full") == "short"
TARGET_S = 15.0  # for 10 s of 720p at 30 fps, the target on this project's 2-core machine
TARGET_CLIP = ClipSpec(1280, 720, 10)
CLIPS = {
    "720p_10s": ClipSpec(1280, 720, 2 if SHORT else 10),
    "720p_60s": ClipSpec(1280, 720, 60),
    "1080p_10s": ClipSpec(1920, 1080, 10),
}
RUN = ["720p_10s"] if SHORT else list(CLIPS)
# A face counts as covered in a frame when this share of its box differs from the same frame decoded and
# re-encoded without painting by more than PAINT_LEVELS in some channel (noise moves most pixels by far more;
# re-encoding alone moves few by that much).
# Whatever the machine's speed: anonymizing may take this many times as long as decoding and encoding alone
# (the short clips pay the detector's first passes over fewer frames, and CI machines vary).
MAX_RATIO = 5.0 if SHORT else 3.0
COVERED_SHARE = 0.6
PAINT_LEVELS = 20
# Memory: one clip and one six times longer, each anonymized in a fresh process. Streaming means the longer one
# needs only its larger input and output bytes more, not its frames (60 s of 1080p is 11 GB decoded).
MEMORY_CLIPS = (
    (ClipSpec(854, 480, 2), ClipSpec(854, 480, 12)) if SHORT else (ClipSpec(1920, 1080, 10), ClipSpec(1920, 1080, 60))
)
MEMORY_SLACK_MB = 150
PEAK_LIMIT_MB = 1200
# A 60 s 1080p clip is minutes of work in the full run.
MEMORY_TIMEOUT_S = 1800


@pytest.fixture(scope="module")
def clip_bytes() -> dict[str, bytes]:
    return {name: make_clip(CLIPS[name]) for name in RUN}


def bare_frames(result: Result, floor: Result, spec: ClipSpec) -> list[tuple[int, int]]:
    """(frame, face) pairs where the face is not covered in the anonymized output."""
    bare = []
    truth = frames(spec)
    for index, (painted, plain, (_, boxes)) in enumerate(
        zip(iter_bgr_frames(result.data), iter_bgr_frames(floor.data), truth, strict=True)
    ):
        moved = np.abs(painted.astype(np.int16) - plain.astype(np.int16)).max(axis=2) > PAINT_LEVELS
        for face, box in enumerate(boxes):
            if moved[box.y : box.y + box.h, box.x : box.x + box.w].mean() < COVERED_SHARE:
                bare.append((index, face))
    return bare


@pytest.mark.parametrize("name", RUN)
def test_video_end_to_end(benchmark, clip_bytes: dict[str, bytes], name: str) -> None:
    spec, data = CLIPS[name], clip_bytes[name]
    options = Options()
    warm_up(options)
    start = time.perf_counter()
    floor = reencode_video(data, options)
    floor_s = time.perf_counter() - start
    result = benchmark.pedantic(anonymize_media, args=(data, options), rounds=1, iterations=1)
    total_s = result.timings["total"]
    bare = bare_frames(result, floor, spec)
    benchmark.extra_info.update(
        seconds=round(total_s, 2),
        decode_encode_s=round(floor_s, 2),
        ratio_to_decode_encode=round(total_s / floor_s, 2),
        detect_s=round(result.timings["detect"], 2),
        filter_s=round(result.timings["filter"], 2),
        frames=result.frames,
        tracks=result.tracks,
        bare_face_frames=len(bare),
        input_mb=round(len(data) / 2**20, 1),
        output_mb=round(len(result.data) / 2**20, 1),
    )
    print(f"\n{name}: {total_s:.1f} s (decode+encode {floor_s:.1f} s, x{total_s / floor_s:.1f}), {len(bare)} bare")
    assert (result.width, result.height, result.frames) == (spec.width, spec.height, spec.frames)
    assert not bare, f"faces bare in (frame, face) {bare[:10]}"
    if spec == TARGET_CLIP:
        assert total_s <= TARGET_S, f"10 s of 720p took {total_s:.1f} s (target {TARGET_S:.0f} s)"
    assert total_s / floor_s <= MAX_RATIO, f"{total_s / floor_s:.1f} times decode + encode alone"


@linux_only
def test_memory_does_not_grow_with_the_video(benchmark) -> None:
    short_spec, long_spec = MEMORY_CLIPS
    short_clip, long_clip = make_clip(short_spec), make_clip(long_spec)
    short = fresh_process_peak(short_clip, MEMORY_TIMEOUT_S)
    long = benchmark.pedantic(fresh_process_peak, args=(long_clip, MEMORY_TIMEOUT_S), rounds=1, iterations=1)
    peak_mb, short_mb = long["peak_kb"] / 1024, short["peak_kb"] / 1024
    bytes_mb = (len(long_clip) + long["output"] - len(short_clip) - short["output"]) / 2**20
    decoded_gb = long_spec.width * long_spec.height * 3 * long_spec.frames / 2**30
    benchmark.extra_info.update(
        clip=f"{long_spec.width}x{long_spec.height} {long_spec.seconds:.0f} s",
        peak_rss_mb=round(peak_mb),
        shorter_clip_peak_rss_mb=round(short_mb),
        after_model_load_rss_mb=round(long["loaded_kb"] / 1024),
        extra_input_output_mb=round(bytes_mb, 1),
        decoded_frames_gb=round(decoded_gb, 1),
        seconds=round(long["seconds"], 1),
    )
    print(f"\npeak {peak_mb:.0f} MB for {long_spec.seconds:.0f} s vs {short_mb:.0f} MB for {short_spec.seconds:.0f} s")
    assert long["frames"] == long_spec.frames
    assert peak_mb - short_mb < bytes_mb + MEMORY_SLACK_MB, "memory grew with the video's length: not streamed"
    assert peak_mb < PEAK_LIMIT_MB

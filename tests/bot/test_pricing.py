"""Prices: videos by their frames and searches, learning this machine's speed; second looks above first ones. (How the
lanes share the worker processes is in the admission scenarios, tests/bot/test_admission.py.)"""

from __future__ import annotations

import pytest

from anonymizer.options import MediaKind, Options, Result
from bot.handlers.common import real_size
from bot.pricing import JobSize, SpeedModel
from testing.hostile import flat_png

CURVE = [(0.26, 0.1), (2.1, 1.0), (12.6, 2.0)]


def test_a_video_is_priced_by_its_frames_and_searches_and_learns_the_machines_speed() -> None:
    speed = SpeedModel(CURVE)
    ten_seconds = speed.estimate_seconds(JobSize(MediaKind.VIDEO, pixels=1280 * 720, duration=10))
    twenty_seconds = speed.estimate_seconds(JobSize(MediaKind.VIDEO, pixels=1280 * 720, duration=20))
    assert twenty_seconds == pytest.approx(2 * ten_seconds, rel=0.01)
    assert speed.estimate_seconds(JobSize(MediaKind.VIDEO, pixels=1920 * 1080, duration=10)) > ten_seconds
    assert speed.estimate_seconds(JobSize(MediaKind.ANIMATION, pixels=1280 * 720, duration=10)) == ten_seconds
    by_size = speed.estimate_seconds(JobSize(MediaKind.VIDEO, size_bytes=2_500_000))
    assert by_size == pytest.approx(ten_seconds), "a file's length is guessed from its size"

    finished = Result(b"", "MP4", 1280, 720, kind=MediaKind.VIDEO, frames=300, duration=10.0)
    for _ in range(20):
        speed.learn(finished, 0, 3 * ten_seconds)
    assert speed.estimate_seconds(JobSize(MediaKind.VIDEO, pixels=1280 * 720, duration=10)) == pytest.approx(
        3 * ten_seconds, rel=0.01
    )
    assert speed.estimate_seconds(JobSize(MediaKind.IMAGE, pixels=2_100_000)) == pytest.approx(1.0), "photos unaffected"


def test_a_second_look_costs_more_than_a_first() -> None:
    speed = SpeedModel(CURVE)
    first = speed.estimate_seconds(JobSize(MediaKind.IMAGE, pixels=2_100_000))
    assert speed.estimate_seconds(JobSize(MediaKind.IMAGE, pixels=2_100_000, strict=True)) > 2 * first


async def test_a_document_is_priced_by_the_pixels_its_header_declares_not_by_its_bytes() -> None:
    """Less than a megabyte of PNG that decodes to 60 megapixels costs what 60 megapixels cost."""
    speed = SpeedModel(CURVE)
    bomb = flat_png(7745, 7745)
    assert len(bomb) < 1_000_000
    by_bytes = JobSize(MediaKind.IMAGE, size_bytes=len(bomb))
    by_header = await real_size(bomb, by_bytes, Options())
    assert by_header.pixels == 7745 * 7745
    assert speed.estimate_seconds(by_header) == pytest.approx(speed.estimate_seconds(JobSize(pixels=7745 * 7745)))
    assert speed.estimate_seconds(by_header) > 5 * speed.estimate_seconds(by_bytes)

"""The two lanes of admission: a video holds a worker process from its start to its end, so photos never queue
behind one; videos are priced by their frames and searches, and learn this machine's speed."""

from __future__ import annotations

import time

import pytest

from anonymizer.options import Result
from bot.admission import PHOTOS, VIDEOS, BusyError, JobSize, LocalAdmission, SpeedModel

CURVE = [(0.26, 0.1), (2.1, 1.0), (12.6, 2.0)]


def ledger(capacity: int = 2, **settings: int) -> LocalAdmission:
    return LocalAdmission(capacity, queue_limit=40, per_user_limit=2, reply_reserve=0.0, **settings)


def test_an_admitted_video_takes_its_process_out_of_the_photo_plan() -> None:
    admission = ledger(capacity=2, video_capacity=1)
    deadline = time.monotonic() + 9.5
    with admission.admit(1, [4.0], deadline):
        # 8 s of photos on two processes fits 9.5 s with the headroom...
        with admission.admit(2, [4.0], deadline):
            pass
        with admission.admit(3, [30.0], time.monotonic() + 300, VIDEOS):
            assert admission.photo_capacity() == 1
            # ...but not on the one process a video leaves.
            with pytest.raises(BusyError), admission.admit(2, [4.0], deadline):
                pass
        with admission.admit(2, [4.0], deadline):
            pass


def test_a_video_starts_only_when_the_admitted_photos_still_fit_on_the_processes_left() -> None:
    admission = ledger(capacity=2, video_capacity=1)
    with admission.admit(1, [8.0], time.monotonic() + 9.0) as photos:
        assert photos.lane == PHOTOS
        with admission.admit(2, [30.0], time.monotonic() + 300, VIDEOS) as video:
            # 8 s of photos fit 9 s on two processes (10 s with the headroom is too much for one).
            assert not admission.may_start(video)
            photos.work = 4.0  # the photos' work is half done
            assert admission.may_start(video) and video.started
            assert admission.may_start(video), "once started, a video keeps its process"


def test_videos_take_their_turns_in_order_on_the_video_slots() -> None:
    admission = ledger(capacity=2, video_capacity=1, video_queue_limit=3)
    far = time.monotonic() + 300
    with admission.admit(1, [30.0], far, VIDEOS) as first, admission.admit(2, [30.0], far, VIDEOS) as second:
        assert not admission.may_start(second), "the first video admitted goes first"
        assert admission.may_start(first)
        assert not admission.may_start(second), "one video slot"
    with admission.admit(2, [30.0], far, VIDEOS) as third:
        assert admission.may_start(third)


def test_the_video_lane_is_refused_when_full_or_too_late_and_photos_when_one_process_holds_a_video() -> None:
    admission = ledger(capacity=1, video_capacity=1, video_queue_limit=2)
    far = time.monotonic() + 100
    with admission.admit(1, [60.0], far, VIDEOS) as running:
        assert admission.may_start(running)
        with pytest.raises(BusyError) as late, admission.admit(2, [60.0], far, VIDEOS):
            pass  # 120 s of video, stretched by the headroom, cannot end within 100 s
        assert late.value.retry_after == 60
        with pytest.raises(BusyError), admission.admit(3, [0.5], time.monotonic() + 15):
            pass  # the only process is the video's
        with admission.admit(2, [10.0], far, VIDEOS), pytest.raises(BusyError), admission.admit(3, [10.0], far, VIDEOS):
            pass  # two videos admitted: the lane is full
    with admission.admit(3, [0.5], time.monotonic() + 15):
        pass


def test_a_video_is_priced_by_its_frames_and_searches_and_learns_the_machines_speed() -> None:
    speed = SpeedModel(CURVE)
    ten_seconds = speed.estimate_seconds(JobSize("video", pixels=1280 * 720, duration=10))
    twenty_seconds = speed.estimate_seconds(JobSize("video", pixels=1280 * 720, duration=20))
    assert twenty_seconds == pytest.approx(2 * ten_seconds, rel=0.01)
    assert speed.estimate_seconds(JobSize("video", pixels=1920 * 1080, duration=10)) > ten_seconds
    assert speed.estimate_seconds(JobSize("animation", pixels=1280 * 720, duration=10)) == ten_seconds
    by_size = speed.estimate_seconds(JobSize("video", size_bytes=2_500_000))
    assert by_size == pytest.approx(ten_seconds), "a file's length is guessed from its size"

    finished = Result(b"", "MP4", 1280, 720, kind="video", frames=300, duration=10.0)
    for _ in range(20):
        speed.learn_media(finished, 3 * ten_seconds)
    assert speed.estimate_seconds(JobSize("video", pixels=1280 * 720, duration=10)) == pytest.approx(
        3 * ten_seconds, rel=0.01
    )
    assert speed.estimate_seconds(JobSize("image", pixels=2_100_000)) == pytest.approx(1.0), "photos unaffected"


def test_a_second_look_costs_more_than_a_first() -> None:
    speed = SpeedModel(CURVE)
    first = speed.estimate_seconds(JobSize("image", pixels=2_100_000))
    assert speed.estimate_seconds(JobSize("image", pixels=2_100_000, strict=True)) > 2 * first

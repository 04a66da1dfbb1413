"""The worker pool: a job past its deadline or a crashed worker costs that job only, never the others."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import pytest

from anonymizer.errors import CorruptImageError
from anonymizer.options import Options, Result
from bot.workers import DeadlineExceededError, ImageService, WorkerCrashedError, WorkerPool
from tests.bot.helpers import jpeg
from tests.images import astronaut_bgr, composite


@pytest.fixture(scope="module")
def big_photo() -> bytes:
    """A 12 MP photo: long enough to work on that a test can stop or kill its worker mid-job."""
    image, _ = composite((4000, 3000), [(400, 300, 300), (2000, 1200, 500)])
    return jpeg(image, quality=90)


def service(pool: WorkerPool) -> ImageService:
    return ImageService(pool, queue_limit=40, per_user_limit=2, reply_reserve=0.0)


async def test_a_job_past_its_deadline_is_stopped_and_its_worker_replaced(
    worker_pool: WorkerPool, big_photo: bytes
) -> None:
    images = service(worker_pool)
    pids_before = set(worker_pool.worker_pids())

    with pytest.raises(DeadlineExceededError):
        await images.anonymize([big_photo], Options(), deadline=time.monotonic() + 0.3)

    small = jpeg(astronaut_bgr())
    (result,) = await images.anonymize([small], Options(), deadline=time.monotonic() + 60)
    assert isinstance(result, Result) and len(result.detections) == 1
    assert set(worker_pool.worker_pids()) != pids_before, "the stopped job's worker kept running"
    for _ in range(100):  # the killed worker's thread accounts for its job as soon as it notices the death
        if worker_pool.outstanding == 0:
            break
        await asyncio.sleep(0.05)
    assert worker_pool.outstanding == 0


async def test_a_crashed_worker_fails_only_its_own_job(worker_pool: WorkerPool, big_photo: bytes) -> None:
    images = service(worker_pool)
    small = jpeg(astronaut_bgr())
    doomed = worker_pool.submit(big_photo, Options())
    while (victim := worker_pool.pid_running(doomed)) is None:
        await asyncio.sleep(0.01)
    others = asyncio.gather(*(images.anonymize([small], Options(), time.monotonic() + 60) for _ in range(3)))
    await asyncio.sleep(0.2)

    os.kill(victim, signal.SIGKILL)

    with pytest.raises(WorkerCrashedError):
        await asyncio.wrap_future(doomed)
    results = [outcome for (outcome,) in await others]
    assert all(isinstance(result, Result) and len(result.detections) == 1 for result in results)
    assert victim not in worker_pool.worker_pids()


async def test_a_refused_image_comes_back_as_the_pipelines_error(worker_pool: WorkerPool) -> None:
    (outcome,) = await service(worker_pool).anonymize([b"\xff\xd8\xff\xe0garbage"], Options(), time.monotonic() + 30)
    assert isinstance(outcome, CorruptImageError)
    assert str(outcome)

"""The process pool and the embedded job service over it: a job past its deadline or a crashed worker costs that job
only, never the others."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import pytest

from anonymizer.errors import CorruptImageError
from anonymizer.options import Options, Result
from bot import pool as process_pool
from bot.embedded import EmbeddedJobs
from bot.jobs import DeadlineExceededError, Job, WorkerCrashedError
from bot.pool import ProcessPool
from bot.pricing import CostCurve
from testing.fake_telegram import TOKEN
from testing.images import astronaut_bgr, composite, jpeg
from tests.bot.helpers import bot_settings_for


@pytest.fixture(scope="module")
def big_photo() -> bytes:
    """A 12 MP photo: long enough to work on that a test can stop or kill its worker mid-job."""
    image, _ = composite((4000, 3000), [(400, 300, 300), (2000, 1200, 500)])
    return jpeg(image, quality=90)


def service(pool: ProcessPool) -> EmbeddedJobs:
    return EmbeddedJobs(pool, bot_settings_for(TOKEN))


async def anonymize(jobs: EmbeddedJobs, photo: bytes, deadline: float) -> Result | Exception:
    """One photo through the service's public door, with the reply reserve left to the deadline given."""
    (outcome,) = await jobs.run([Job(photo, Options())], deadline + jobs.reply_reserve)
    return outcome


async def test_a_job_past_its_deadline_is_stopped_and_its_worker_replaced(
    worker_pool: ProcessPool, big_photo: bytes
) -> None:
    images = service(worker_pool)
    pids_before = set(worker_pool.worker_pids())

    with pytest.raises(DeadlineExceededError):
        await anonymize(images, big_photo, deadline=time.monotonic() + 0.3)

    small = jpeg(astronaut_bgr())
    result = await anonymize(images, small, deadline=time.monotonic() + 60)
    assert isinstance(result, Result) and len(result.detections) == 1
    assert set(worker_pool.worker_pids()) != pids_before, "the stopped job's worker kept running"
    for _ in range(100):  # the killed worker's thread accounts for its job as soon as it notices the death
        if worker_pool.outstanding == 0:
            break
        await asyncio.sleep(0.05)
    assert worker_pool.outstanding == 0


async def test_a_crashed_worker_fails_only_its_own_job(worker_pool: ProcessPool, big_photo: bytes) -> None:
    images = service(worker_pool)
    small = jpeg(astronaut_bgr())
    doomed = worker_pool.submit(Job(big_photo, Options()))
    while (victim := worker_pool.pid_running(doomed)) is None:
        await asyncio.sleep(0.01)
    others = asyncio.gather(*(anonymize(images, small, time.monotonic() + 60) for _ in range(3)))
    await asyncio.sleep(0.2)

    os.kill(victim, signal.SIGKILL)

    with pytest.raises(WorkerCrashedError):
        await asyncio.wrap_future(doomed)
    results = await others
    assert all(isinstance(result, Result) and len(result.detections) == 1 for result in results)
    assert victim not in worker_pool.worker_pids()


async def test_a_refused_image_comes_back_as_the_pipelines_error(worker_pool: ProcessPool) -> None:
    outcome = await anonymize(service(worker_pool), b"\xff\xd8\xff\xe0garbage", time.monotonic() + 30)
    assert isinstance(outcome, CorruptImageError)
    assert str(outcome)


def test_calibration_keeps_each_sizes_best_run_not_its_first(monkeypatch: pytest.MonkeyPatch) -> None:
    # The first run at each size stalls (a cold start): a curve priced from it would turn away users the workers
    # can serve.
    import anonymizer

    seen: set[int] = set()

    def first_run_stalls(data: bytes, options: Options) -> None:
        if len(data) not in seen:
            seen.add(len(data))
            time.sleep(0.5)

    monkeypatch.setattr(anonymizer, "anonymize", first_run_stalls)
    curve = process_pool._calibrate(Options())
    assert [round(mp, 1) for mp, _ in curve] == [0.3, 2.1, 12.6]
    assert max(seconds for _, seconds in curve) < 0.25


def test_the_cost_curve_prices_an_image_by_the_nearest_measured_sizes() -> None:
    # The default detectors cap the resolution they look at, so a 12 MP photo costs far less than six 2 MP ones.
    curve = CostCurve([(0.26, 0.06), (2.1, 0.46), (12.6, 1.24)])
    assert curve.seconds(0.1) == 0.06
    assert curve.seconds(2.1) == 0.46
    assert curve.seconds(7.35) == pytest.approx((0.46 + 1.24) / 2)
    assert curve.seconds(23.1) == pytest.approx(1.24 + 0.78)


async def test_a_job_stops_at_its_deadline_even_if_nobody_abandons_it(
    worker_pool: ProcessPool, big_photo: bytes
) -> None:
    """The deadline travels with the job, so a job whose abandonment was lost (the race of the hand-written pool:
    abandoned between being taken and being recorded as running) still cannot run past it."""
    started = time.monotonic()
    future = worker_pool.submit(Job(big_photo, Options()), deadline=started + 0.3)

    with pytest.raises(DeadlineExceededError):
        await asyncio.wrap_future(future)
    assert time.monotonic() - started < 1.0, "the job ran on past its deadline"


async def test_a_job_whose_deadline_passed_in_the_queue_is_never_started(
    worker_pool: ProcessPool, big_photo: bytes
) -> None:
    blockers = [worker_pool.submit(Job(big_photo, Options())) for _ in range(worker_pool.size)]
    late = worker_pool.submit(Job(jpeg(astronaut_bgr()), Options()), deadline=time.monotonic() + 0.1)

    with pytest.raises(DeadlineExceededError):
        await asyncio.wrap_future(late)
    await asyncio.gather(*(asyncio.wrap_future(blocker) for blocker in blockers))
    assert worker_pool.outstanding == 0


async def test_a_job_stopped_at_its_deadline_teaches_the_price_that_it_costs_more(
    worker_pool: ProcessPool, big_photo: bytes
) -> None:
    """Priced at a tenth of a second, stopped after half a second: the speed model now prices every photo higher,
    so admission stops letting in what cannot finish."""
    before = worker_pool.speed.slowdown
    future = worker_pool.submit(Job(big_photo, Options(), priced=0.1 * before), deadline=time.monotonic() + 0.5)

    with pytest.raises(DeadlineExceededError):
        await asyncio.wrap_future(future)
    assert worker_pool.speed.slowdown > before * 1.5
    worker_pool.speed.slowdown = before

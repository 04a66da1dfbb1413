"""What handlers ask of the machinery that runs jobs, whichever deployment runs it: "run this job, give me its
outcome or a refusal".

Two implementations: `bot.embedded.EmbeddedJobs` (local worker processes) and `bot.cluster.front.ClusterJobs` (a
task queue over Redis to any number of worker machines). Handlers see only `JobService`.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Literal, Protocol

from anonymizer import errors
from anonymizer.errors import AnonymizerError
from anonymizer.options import MediaKind, Options, Result
from bot.admission import Lane, Ledger, Ticket
from bot.pricing import JobSize
from bot.settings import StartupError
from detectors import Detection

# A GIF's or video's frames written so far and in all, reported while it runs.
Progress = Callable[[int, int], None]
# A video waiting for its turn looks again this often (its turn depends on the clock, not only on events).
TURN_POLL_S = 0.2


@dataclass(frozen=True)
class Job:
    """One unit of work: its kind says which pipeline and which estimator, the input bytes stay in memory, the
    options are the pipeline's. `strict` marks a second look; `faces` a photo painted again as its sender chose,
    on the faces its first look found (no detector runs). Both are priced apart and do not teach the speed model.
    `priced` is what admission estimated it at, in seconds: a job stopped at its deadline teaches by how much that
    was short."""

    data: bytes
    options: Options
    kind: MediaKind = MediaKind.IMAGE
    strict: bool = False
    faces: tuple[Detection, ...] | None = None
    priced: float = 0.0

    @property
    def teaches_speed(self) -> bool:
        return not self.strict and self.faces is None


class DeadlineExceededError(Exception):
    """The job did not finish within the request's budget; it was stopped and its result will never be used."""


class WorkerCrashedError(Exception):
    """The worker process died while it ran this job (a crash in native code, or killed)."""


class WorkerFailedError(Exception):
    """The job raised an unexpected error inside the worker; only its type name crosses back, never data."""


class WorkerStartError(StartupError):
    """A worker process could not start or load its models: the command stops with one line."""


class JobService(Protocol):
    """Admission and execution of jobs; the handlers' only door to the workers."""

    def estimate_seconds(self, job: JobSize) -> float:
        """CPU seconds the job is expected to take, from what its message says of it."""

    def admission(
        self, user_id: int, estimates: list[float], deadline: float, lane: Lane = Lane.PHOTOS
    ) -> AbstractAsyncContextManager[Ticket]:
        """Hold a place for one request (a photo, a file or an album; a video in the video lane) or raise
        BusyError / UnavailableError; yields the request's ticket."""

    async def reprice(self, ticket: Ticket, estimates: list[float]) -> Ticket:
        """The request priced again once its files were read (their real size), or BusyError if it no longer fits."""

    async def run(
        self, jobs: list[Job], deadline: float, *, ticket: Ticket | None = None, progress: Progress | None = None
    ) -> list[Result | Exception]:
        """Every job's Result or its error, in order; DeadlineExceededError when the budget (a time.monotonic()
        instant) runs out first. A video's `ticket` (from `admission`) waits for its turn first; `progress` hears of
        its frames in the caller's event loop."""

    async def healthy(self) -> bool:
        """Whether jobs can run now (workers alive, Redis reachable): what /health reports."""

    async def close(self) -> None:
        """Release what the service holds of its own when the bot stops."""


class AdmittingJobs:
    """What both job services share: admission over their ledger (the rules are bot.admission's), and a video's
    wait for its turn before it runs."""

    def __init__(self, ledger: Ledger, reply_reserve: float, front: str = "") -> None:
        self.ledger = ledger
        self.reply_reserve = reply_reserve
        self.front = front

    @asynccontextmanager
    async def admission(
        self, user_id: int, estimates: list[float], deadline: float, lane: Lane = Lane.PHOTOS
    ) -> AsyncIterator[Ticket]:
        now = self.ledger.clock()
        due = now + (deadline - time.monotonic())
        ticket = Ticket(uuid.uuid4().hex, user_id, lane, sum(estimates), len(estimates), due, now, front=self.front)
        await self.ledger.admit(ticket)
        try:
            yield ticket
        finally:
            await self.ledger.release(ticket)

    async def reprice(self, ticket: Ticket, estimates: list[float]) -> Ticket:
        return await self.ledger.reprice(ticket, sum(estimates), len(estimates))

    async def results_due(self, deadline: float, ticket: Ticket | None, progress: Progress | None) -> float:
        """When the results are needed (the deadline less the reply reserve), once a video has its turn (then
        `progress(0, 0)` says so); DeadlineExceededError if the turn does not come in time."""
        stop_at = deadline - self.reply_reserve
        if ticket is None or ticket.lane == Lane.PHOTOS:
            return stop_at
        while not await self.ledger.take_turn(ticket):
            if time.monotonic() >= stop_at:
                raise DeadlineExceededError
            await asyncio.sleep(TURN_POLL_S)
        if progress is not None:
            progress(0, 0)
        return stop_at


@dataclass(frozen=True)
class Outcome:
    """What a job came to, as it crosses a process boundary: never an exception object (its pickled arguments could
    carry data), only its type name and, for a refusal, the message the user may be shown."""

    status: Literal["done", "refused", "failed", "expired"]
    result: Result | None = None
    seconds: float = 0.0
    error: str = ""
    message: str = ""

    @classmethod
    def done(cls, result: Result, seconds: float) -> Outcome:
        return cls("done", result, seconds)

    @classmethod
    def refused(cls, error: AnonymizerError) -> Outcome:
        return cls("refused", error=type(error).__name__, message=str(error))

    @classmethod
    def failed(cls, error: BaseException) -> Outcome:
        return cls("failed", error=type(error).__name__)

    @classmethod
    def expired(cls) -> Outcome:
        return cls("expired")

    def value(self) -> Result | Exception:
        """The Result, or the error to show for it, rebuilt in this process."""
        if self.status == "done" and self.result is not None:
            return self.result
        if self.status == "refused":
            return _rebuilt_refusal(self.error, self.message)
        if self.status == "expired":
            return DeadlineExceededError()
        return WorkerFailedError(self.error or "ResultMissing")


def _rebuilt_refusal(type_name: str, message: str) -> AnonymizerError:
    """The pipeline's refusal rebuilt in this process from its class name and user-facing message."""
    error_type = getattr(errors, type_name, AnonymizerError)
    if not (isinstance(error_type, type) and issubclass(error_type, AnonymizerError)):
        error_type = AnonymizerError
    try:
        return error_type(message)
    except TypeError:
        return AnonymizerError(message)

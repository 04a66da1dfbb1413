"""What handlers ask of the machinery that runs jobs, whichever mode runs it: "run this job, give me its outcome or
a refusal".

Two implementations: `bot.workers.ImageService` (embedded: local worker processes) and
`bot.distributed.QueueService` (a task queue over Redis to any number of worker machines). Handlers see only
`JobService`.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Protocol

from anonymizer import errors
from anonymizer.errors import AnonymizerError
from anonymizer.options import Options, Result
from bot.admission import IMAGE, PHOTOS, JobSize

# A GIF's or video's frames written so far and in all, reported while it runs.
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Job:
    """One unit of work: its kind says which pipeline and which estimator ("image": `anonymize`; "animation" or
    "video": `anonymize_media`), the input bytes stay in memory, the options are the pipeline's; `strict` marks a
    second look, which is priced apart and does not teach the speed model."""

    data: bytes
    options: Options
    kind: str = IMAGE
    strict: bool = False


class DeadlineExceededError(Exception):
    """The job did not finish within the request's budget; it was stopped and its result will never be used."""


class WorkerCrashedError(Exception):
    """The worker process died while it ran this job (a crash in native code, or killed)."""


class WorkerFailedError(Exception):
    """The job raised an unexpected error inside the worker; only its type name crosses back, never data."""


class WorkerStartError(Exception):
    """A worker process could not start or load its models."""


class JobService(Protocol):
    """Admission and execution of jobs; the handlers' only door to the workers."""

    def estimate_seconds(self, job: JobSize) -> float:
        """CPU seconds the job is expected to take, from what its message says of it."""

    def admission(
        self, user_id: int, estimates: list[float], deadline: float, lane: str = PHOTOS
    ) -> AbstractAsyncContextManager[Any]:
        """Hold a place for one request (a photo, a file or an album; a video in the video lane) or raise
        BusyError / UnavailableError; yields the request's ticket."""

    async def run(
        self, jobs: list[Job], deadline: float, *, ticket: Any = None, progress: Progress | None = None
    ) -> list[Result | Exception]:
        """Every job's Result or its error, in order; DeadlineExceededError when the budget (a time.monotonic()
        instant) runs out first. A video's `ticket` (from `admission`) waits for its turn first; `progress` hears of
        its frames in the caller's event loop."""

    async def healthy(self) -> bool:
        """Whether jobs can run now (workers alive, Redis reachable): what /health reports."""

    async def close(self) -> None:
        """Release what the service holds of its own when the bot stops."""


# What a job's outcome looks like while it crosses a process boundary: never an exception object (its pickled
# arguments could carry data), only a tag and what the user may be shown.
Outcome = tuple


def done(result: Result | dict[str, Any], seconds: float) -> Outcome:
    """A finished job: its Result (between local processes) or its summary without the bytes (over Redis)."""
    return ("done", result, seconds)


def refused(error: AnonymizerError) -> Outcome:
    return ("refused", type(error).__name__, str(error))


def failed(error: BaseException) -> Outcome:
    return ("failed", type(error).__name__)


def expired() -> Outcome:
    return ("expired",)


def outcome_value(outcome: Outcome) -> Result | Exception:
    """The Result, or the error to show for it, out of an outcome that crossed a process boundary."""
    tag = outcome[0]
    if tag == "done":
        return outcome[1]
    if tag == "refused":
        return _rebuilt_refusal(outcome[1], outcome[2])
    if tag == "expired":
        return DeadlineExceededError()
    return WorkerFailedError(outcome[1])


def _rebuilt_refusal(type_name: str, message: str) -> AnonymizerError:
    """The pipeline's refusal rebuilt in this process from its class name and user-facing message."""
    error_type = getattr(errors, type_name, AnonymizerError)
    if not (isinstance(error_type, type) and issubclass(error_type, AnonymizerError)):
        error_type = AnonymizerError
    try:
        return error_type(message)
    except TypeError:
        return AnonymizerError(message)

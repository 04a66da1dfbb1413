"""A job's choice and outcome as JSON: the user's choice of faces crosses from a front to a worker machine in the
job's message, the outcome back through taskiq's result backend; bytes travel apart, in keys of their own
(bot.cluster.keys.input_key, output_key)."""

from __future__ import annotations

from dataclasses import asdict, fields, replace
from typing import Any

from anonymizer.options import Detection, MediaKind, Options, Result
from bot.jobs import Job, Outcome
from filters import Region


def choice_document(job: Job) -> dict[str, Any] | None:
    """What a re-render or preview paints beyond the worker's own options (None for a first look)."""
    if job.faces is None and not (job.options.keep or job.options.add or job.options.outline):
        return None
    return {
        "faces": None if job.faces is None else [asdict(face) for face in job.faces],
        "keep": sorted(job.options.keep),
        "add": [asdict(region) for region in job.options.add],
        "outline": job.options.outline,
    }


def with_choice(options: Options, document: dict[str, Any] | None) -> tuple[Options, tuple[Detection, ...] | None]:
    """The worker's options with the user's choice, and the remembered faces if it is a re-render."""
    if document is None:
        return options, None
    faces = document["faces"]
    chosen = replace(
        options,
        keep=frozenset(int(number) for number in document["keep"]),
        add=tuple(Region(**region) for region in document["add"]),
        outline=bool(document["outline"]),
    )
    return chosen, None if faces is None else tuple(Detection(**face) for face in faces)


def outcome_document(outcome: Outcome) -> dict[str, Any]:
    """The outcome without the output's bytes."""
    document = asdict(outcome)
    if outcome.result is not None:
        del document["result"]["data"]
    return document


def outcome_of(document: dict[str, Any], data: bytes | None) -> Outcome:
    """The outcome again, with the output's bytes read from Redis (None if they were not there); a document that is
    not an outcome is a failure, never anything else."""
    try:
        summary = document.get("result")
        result = None
        if summary is not None:
            if data is None:
                return Outcome("failed", error="ResultMissing")
            detections = [Detection(**detection) for detection in summary.pop("detections")]
            known = {field.name for field in fields(Result)} - {"data", "detections", "kind"}
            result = Result(
                data=data,
                detections=detections,
                kind=MediaKind(summary["kind"]),
                **{name: value for name, value in summary.items() if name in known},
            )
        seconds, error, message = float(document["seconds"]), str(document["error"]), str(document["message"])
        outcome = Outcome(document["status"], result, seconds, error, message)
    except (KeyError, TypeError, ValueError):
        return Outcome("failed", error="MalformedResult")
    return outcome if outcome.status in ("done", "refused", "failed", "expired") else Outcome("failed", error="Unknown")

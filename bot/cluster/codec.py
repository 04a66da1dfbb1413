"""A job's outcome as JSON, to cross from a worker machine to its front through taskiq's result backend; the
output's bytes travel apart, in a key of their own (bot.cluster.keys.output_key)."""

from __future__ import annotations

from dataclasses import asdict, fields
from typing import Any

from anonymizer.options import Detection, MediaKind, Result
from bot.jobs import Outcome


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

"""Every Redis key the cluster uses, in one place. Values are JSON or raw bytes: nothing read is unpickled."""

from __future__ import annotations

PREFIX = "photo-anon"
# taskiq's stream of jobs (ids and options only) and the consumer group of the worker machines.
STREAM = f"{PREFIX}:jobs"
GROUP = f"{PREFIX}:workers"
# Worker machines alive: a sorted set of their identities, each scored with the instant its heartbeat runs out, and
# a hash of what each announced (JSON: processes, cost curve, video processes, video slowdown).
WORKERS = f"{PREFIX}:workers:alive"
WORKER_INFO = f"{PREFIX}:workers:info"
# Admission's ledger: a hash of ticket id to ticket (JSON), every front's requests admitted and not yet answered.
ADMITTED = f"{PREFIX}:admitted"


def input_key(job_id: str) -> str:
    """A job's input bytes, until a worker has run it or its budget has passed."""
    return f"{PREFIX}:input:{job_id}"


def output_key(job_id: str) -> str:
    """A finished job's output bytes, until its front has read them."""
    return f"{PREFIX}:output:{job_id}"


def progress_key(job_id: str) -> str:
    """A GIF's or video's frames done and in all ("12 300")."""
    return f"{PREFIX}:progress:{job_id}"


def front_key(front: str) -> str:
    """A front's heartbeat: while it lives, that front's tickets count and its claims on updates hold."""
    return f"{PREFIX}:front:{front}"


def update_key(bot_id: int, update_id: int) -> str:
    """Which front claimed an update, or "done" once it was answered."""
    return f"{PREFIX}:update:{bot_id}:{update_id}"


def original_key(chat_id: int, result_message_id: int) -> str:
    """The original behind a result message (bot.originals.Original as JSON)."""
    return f"{PREFIX}:original:{chat_id}:{result_message_id}"


def pace_key(bot_id: int, chat_id: int | str | None = None) -> str:
    """The next instant the bot (or the bot in one chat) may send a message."""
    return f"{PREFIX}:pace:{bot_id}" if chat_id is None else f"{PREFIX}:pace:{bot_id}:{chat_id}"


def rate_key(scope: str, user_id: int, window: int) -> str:
    """How many updates (texts, commands, button presses) or Mini App calls a user made in one minute."""
    return f"{PREFIX}:rate:{scope}:{user_id}:{window}"

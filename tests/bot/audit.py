"""Audit hooks that notice a file being written, in the test process and in the bot's worker processes.

Python reports every file opened for writing and every file-system change made through `os`, `shutil` and
`tempfile` to audit hooks (PEP 578). Native code writing on its own (OpenCV, libjpeg) bypasses them, so the tests
also watch the temporary directory and the working directory.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

# Flags of an `open` that can change a file.
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
# Audit events that create, move or change files, and the position of the path among their arguments.
CHANGE_EVENTS = {
    "os.mkdir": 0,
    "os.rename": 1,
    "os.link": 1,
    "os.symlink": 1,
    "os.truncate": 0,
    "shutil.copyfile": 1,
    "shutil.copytree": 1,
    "shutil.move": 1,
    "tempfile.mkstemp": 0,
    "tempfile.mkdtemp": 0,
}


def written_path(event: str, args: tuple[Any, ...]) -> str | None:
    """The path an audit event writes to, or None if it writes nothing (or only Python's bytecode cache)."""
    if event == "open":
        path, _, flags = args
        if isinstance(path, int) or not flags & WRITE_FLAGS:
            return None
    elif event in CHANGE_EVENTS:
        path = args[CHANGE_EVENTS[event]]
    else:
        return None
    text = os.fsdecode(path) if isinstance(path, str | bytes | os.PathLike) else str(path)
    return None if "__pycache__" in text else text


class _Recorder:
    """One audit hook for the whole test session (hooks cannot be removed); it records only while active."""

    def __init__(self) -> None:
        self.active = False
        self.paths: list[str] = []
        sys.addaudithook(self)

    def __call__(self, event: str, args: tuple[Any, ...]) -> None:
        if self.active and (path := written_path(event, args)) is not None:
            self.paths.append(path)


_recorder: _Recorder | None = None


@contextmanager
def disk_writes() -> Iterator[list[str]]:
    """The paths written by this process while the block runs."""
    global _recorder
    if _recorder is None:
        _recorder = _Recorder()
    _recorder.paths = []
    _recorder.active = True
    try:
        yield _recorder.paths
    finally:
        _recorder.active = False


def _refuse_writes(event: str, args: tuple[Any, ...]) -> None:
    if (path := written_path(event, args)) is not None:
        raise PermissionError(f"a worker tried to write {path!r} during a test that forbids disk writes")


def forbid_disk_writes() -> None:
    """Worker initializer: every later attempt to write a file fails, so the job fails and the test sees it."""
    sys.addaudithook(_refuse_writes)

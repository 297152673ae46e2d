"""Who holds the database file: a lock file next to it (``<database>.lock``, flock).

Every process that opens the database (``python -m bot run``, ``web``, any CLI command) holds a
*shared* lock for as long as its connection is open. ``python -m bot restore`` needs the
*exclusive* lock, so it refuses while anything has the file open, and a bot starting during a
restore waits for it. The kernel drops the lock when its process ends, also after SIGKILL or a
power cut: there is no stale pid file to clean up.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import time
from pathlib import Path

HOLD_WAIT_SECONDS = 30.0  # a bot starting while a restore runs waits this long for it


class DatabaseInUse(Exception):
    """Another process has the database open (or, for a holder, a restore is replacing it)."""


def lock_path(database: Path) -> Path:
    return database.with_name(database.name + ".lock")


def _open(database: Path) -> int:
    database.parent.mkdir(parents=True, exist_ok=True)
    return os.open(lock_path(database), os.O_RDWR | os.O_CREAT, 0o600)


def _try(fd: int, mode: int) -> bool:
    try:
        fcntl.flock(fd, mode | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


class FileLock:
    """A held lock; ``release`` (or process exit) gives it back."""

    def __init__(self, fd: int) -> None:
        self._fd: int | None = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


async def hold_shared(database: Path, wait: float = HOLD_WAIT_SECONDS) -> FileLock:
    """The lock of a process that uses the database; waits ``wait`` seconds for a running restore."""
    fd = _open(database)
    deadline = time.monotonic() + wait
    try:
        while not _try(fd, fcntl.LOCK_SH):
            if time.monotonic() >= deadline:
                raise DatabaseInUse(f"{database} is being restored; try again when the restore has finished")
            await asyncio.sleep(0.1)
    except BaseException:  # also a cancelled wait
        os.close(fd)
        raise
    return FileLock(fd)


def take_exclusive(database: Path) -> FileLock:
    """The lock of a restore: only when no other process has the database open (never waits)."""
    fd = _open(database)
    if not _try(fd, fcntl.LOCK_EX):
        os.close(fd)
        raise DatabaseInUse(
            f"{database} is in use: stop `python -m bot run` and `python -m bot web` (and any other "
            "command using it) first"
        )
    return FileLock(fd)

"""Exclusive locks on output paths: two runs never write into one ``--out`` at the same time.

The lock is a file beside the target (``PARENT/.NAME.lock``, so a directory that is swapped by rename keeps its
lock) holding the holder's PID. It is taken with ``flock``, which the kernel releases when the holder dies, so the
lock of a killed run (``kill -9``, power loss on a local disk) is simply taken over by the next run: a stale file
left by a dead PID never blocks anyone. The file is removed on release; a run that opened it just before the removal
re-checks that the path still names the file it locked.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from foresight.formats.errors import SetupError


class LockedError(SetupError):
    """Another live process holds the lock on the path."""


def lock_path(target: str | Path) -> Path:
    target = Path(os.path.abspath(target))
    return target.parent / f".{target.name}.lock"


def _holder(fd: int) -> str:
    try:
        text = os.pread(fd, 64, 0).decode("ascii", "replace").strip()
    except OSError:
        text = ""
    return f"PID {text}" if text.isdigit() else "another process"


def _acquire(path: Path, what: str) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            raise LockedError(f"{what} is in use by {holder} (lock {path}); wait for it to finish or stop "
                              "it") from None
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:  # else the holder removed it between our open and flock: lock the new file
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            return fd
        os.close(fd)


@contextlib.contextmanager
def locked(target: str | Path, what: str | None = None) -> Iterator[Path]:
    """Hold an exclusive lock on ``target`` (a file or directory, existing or not) for the block.

    Raises :class:`LockedError` naming the holder's PID when a live process holds it."""
    path = lock_path(target)
    fd = _acquire(path, what or str(target))
    try:
        yield path
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)  # while still holding it, so nobody locks the file we remove
        os.close(fd)

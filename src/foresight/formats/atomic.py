"""Atomic writes: a reader sees the old file or the new one, never half of one."""

from __future__ import annotations

import glob
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from foresight.formats.errors import InputError


@contextmanager
def replacing(path: str | Path, suffix: str = ".tmp") -> Iterator[Path]:
    """A temporary path beside ``path`` to write to; it replaces ``path`` when the block ends without an error
    and is removed when it raises, so a reader only ever sees the old file or the complete new one."""
    path = Path(path)
    tmp = path.with_name(path.name + suffix)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:  # the block, or the rename (e.g. onto a directory), failed: leave no temporary behind
        tmp.unlink(missing_ok=True)
        raise


def write_json_atomic(path: str | Path, obj: Any) -> None:
    """Write JSON via ``.tmp`` + ``os.replace`` so readers never see a half-written file."""
    with replacing(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2, sort_keys=True)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())


def check_output_file(path: str | Path, option: str = "--out") -> Path:
    """``path`` as an output file: a regular file (replaced) or a new path in an existing or creatable directory.

    Anything else is refused before a byte is written: an empty name (it would mean the current directory), a
    directory, a device node, FIFO or socket (replacing ``/dev/null`` with a regular file is never wanted), or a
    symlink to one of those."""
    if not str(path).strip():
        raise InputError(f"{option} is empty: name a file to write")
    path = Path(path)
    if path.exists():
        if not path.is_file():
            kind = "a directory" if path.is_dir() else "not a regular file (a device, FIFO or socket)"
            raise InputError(f"{option} {path} is {kind}: name a regular file or a new path")
    elif path.is_symlink():
        raise InputError(f"{option} {path} is a symlink to a missing file: name a regular file or a new path")
    return path


def check_output_dir(path: str | Path, option: str = "--out") -> Path:
    """``path`` as an output directory: an existing directory or a new path; never empty (the current
    directory) nor an existing file or device."""
    if not str(path).strip():
        raise InputError(f"{option} is empty: name a directory to write")
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise InputError(f"{option} {path} exists and is not a directory: name a directory or a new path")
    return path


_RENAME_EXCHANGE = 2


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths (Linux ``renameat2(RENAME_EXCHANGE)``); False where unsupported."""
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd = -100
    if fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (38, 22, 95):  # ENOSYS, EINVAL (filesystem without it), EOPNOTSUPP
        return False
    raise OSError(err, os.strerror(err), str(b))


@contextmanager
def replacing_dir(path: str | Path) -> Iterator[Path]:
    """A new temporary directory beside ``path`` to build in; when the block ends without an error it replaces
    ``path`` (swapped in one ``renameat2`` where the kernel has it), and it is removed when the block raises.
    A reader, or a run killed at any point, sees the old directory or the complete new one."""
    import shutil
    import tempfile

    path = Path(os.path.abspath(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):  # left by a killed build (callers hold the lock)
        shutil.rmtree(stale, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    umask = os.umask(0)
    os.umask(umask)
    tmp.chmod(0o777 & ~umask)  # mkdtemp's 0700 would hide a manifest or checkpoint from other users
    try:
        yield tmp
        if not path.exists():
            os.rename(tmp, path)
        elif _exchange(tmp, path):
            shutil.rmtree(tmp)  # it now holds the old directory
        else:  # no atomic swap: move the old one aside first (a kill in between leaves it at .NAME.old)
            old = path.with_name(f".{path.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.rename(path, old)
            os.rename(tmp, path)
            shutil.rmtree(old)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@contextmanager
def disk_full_reported(path: str | Path) -> Iterator[None]:
    """Re-raise a library's opaque write failure (torch's zip writer: ``unexpected pos …``) as
    ``OSError(ENOSPC)`` naming ``path`` when its filesystem has no space left, so the CLI says so in one line."""
    import errno
    import shutil

    try:
        yield
    except OSError:
        raise
    except Exception as e:
        try:
            free = shutil.disk_usage(Path(path) if Path(path).is_dir() else Path(path).parent).free
        except OSError:
            raise e from None
        if free < 1 << 20:
            raise OSError(errno.ENOSPC, "No space left on device", str(path)) from e
        raise

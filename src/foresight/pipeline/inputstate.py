"""What an input file is now, for a rerun to compare: its size and a hash of its content.

Size and mtime alone miss an edit that keeps the size and restores the mtime (``touch -d``, ``cp -p``, ``rsync
-t``); every local file is therefore hashed (xxh3-128, at memory speed). The hash is cached in the run's
``_work/`` under the file's (size, mtime_ns, ctime_ns, inode): the kernel sets ctime on every write and on every
mtime change, and it cannot be set back, so an unchanged key means unchanged bytes and a rerun reads nothing.
Files behind an fsspec URL of a local filesystem (``local://``, ``file://``) are hashed the same way; remote ones
(``s3://``, ``gs://``, ``https://``, …) are identified by the size and fsspec's ``ukey`` (ETag, checksum or
mtime, whatever the store reports), not by reading them again.
"""

from __future__ import annotations

import os
from typing import Any

CHUNK = 1 << 22


def _is_url(path: str) -> bool:
    return "://" in path and not path.startswith("file://")


def content_hash(path: str) -> str:
    import xxhash

    h = xxhash.xxh3_128()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return "xxh3_128:" + h.hexdigest()


def _local_state(path: str, cache: dict[str, Any] | None) -> list[Any] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None  # gone, or a symlink to a missing file: the reader counts it as unreadable
    key = [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]
    hit = cache.get(path) if cache is not None else None
    if hit is not None and hit[0] == key:
        digest = hit[1]
    else:
        try:
            digest = content_hash(path)
        except OSError:
            return None
        if cache is not None:
            cache[path] = [key, digest]
    return [st.st_size, digest]


def input_state(path: str, cache: dict[str, Any] | None = None) -> list[Any] | None:
    """[size, content or store identity] of ``path`` now; None when it cannot be read. ``cache`` maps a local
    path to [[size, mtime_ns, ctime_ns, inode], hash] and is updated in place."""
    if path.startswith("file://"):
        path = path.removeprefix("file://")
    if not _is_url(path):
        return _local_state(path, cache)
    import fsspec
    from fsspec.implementations.local import LocalFileSystem

    fs, inner = fsspec.core.url_to_fs(path)
    if isinstance(fs, LocalFileSystem):
        return _local_state(inner, cache)
    try:
        info = fs.info(inner)
        return [info.get("size"), f"ukey:{fs.ukey(inner)}"]
    except (OSError, NotImplementedError):
        return None


def unreadable_inputs(paths: list[str]) -> list[str]:
    """Local inputs that cannot be opened now (dangling symlinks, which discovery keeps): the run counts each as
    ``errored/unreadable_file``; the CLI names them."""
    return [p for p in paths if not _is_url(p) and not os.path.exists(p.removeprefix("file://"))]

"""Content hashes used in indexes and manifests."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import BinaryIO

_CHUNK = 1 << 20


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file, read into one reused buffer (hashlib releases the GIL on it, so threads can
    hash several files at once)."""
    with open(path, "rb", buffering=0) as f:
        return sha256_stream(f)


def sha256_stream(f: BinaryIO) -> str:
    """Hex sha256 of what is left to read in the open binary file ``f``."""
    h = hashlib.sha256()
    buf = bytearray(_CHUNK)
    view = memoryview(buf)
    while n := f.readinto(buf):
        h.update(view[:n])
    return h.hexdigest()


def sha256_path(path: str | Path) -> str:
    """sha256 of a file, or of a directory's (relative name, file sha256) list in sorted order (model dirs)."""
    path = Path(path)
    if path.is_file():
        return sha256_file(path)
    h = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        h.update(f.relative_to(path).as_posix().encode() + b"\0" + bytes.fromhex(sha256_file(f)))
    return h.hexdigest()


def sha256_text(text: str) -> bytes:
    """Raw 32-byte digest of the UTF-8 text (the ``text_sha256`` column)."""
    return hashlib.sha256(text.encode("utf-8")).digest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()

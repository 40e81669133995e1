"""Arrow allocations on the C library's malloc for the span of a large columnar job (issue 13).

pyarrow's default pool (mimalloc in the wheels) hands freed pages back to the OS eagerly, so a job that builds
and drops buffers of tens of MB again and again (the manifest build's read-back of ``doc_id``/``text_sha256``
and its entries table) faults its memory in afresh each time; on glibc's pool the freed blocks stay in the heap.
Measured on the 10 M-row manifest build (benchmarks/bench_mix.py, idle 2-core machine, runs alternated):
``read_back_s`` 1.77–2.11 s → 1.40–1.55 s. (Choosing the system pool for the whole process with
``ARROW_DEFAULT_MEMORY_POOL=system`` gave 5.4–6.1 s in all instead of 6.9–7.3 s, but that is the user's call:
it changes every Arrow allocation of the process.)
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from collections.abc import Iterator
from contextlib import contextmanager

import pyarrow as pa


@contextmanager
def system_pool() -> Iterator[None]:
    """Make the system allocator Arrow's default inside the block, unless the user chose a pool through
    ``ARROW_DEFAULT_MEMORY_POOL``. Each buffer keeps the pool it came from, so switching back is safe."""
    if os.environ.get("ARROW_DEFAULT_MEMORY_POOL"):
        yield
        return
    old = pa.default_memory_pool()
    pa.set_memory_pool(pa.system_memory_pool())
    try:
        yield
    finally:
        pa.set_memory_pool(old)


def _malloc_trim() -> ctypes._CFuncPtr | None:
    libc = ctypes.util.find_library("c")
    fn = getattr(ctypes.CDLL(libc), "malloc_trim", None) if libc else None  # glibc only
    return fn


_TRIM = _malloc_trim()


def release_freed_memory() -> None:
    """Return the C heap's free pages to the OS (glibc's ``malloc_trim``; a no-op elsewhere). On the system
    pool, a job that reads a whole shard file's columns, keeps a few rows and drops the rest, file after file,
    otherwise keeps every freed block: 300 files of 1 M rows grew the read-back to 3.2 GB RSS for 425 MB held."""
    if _TRIM is not None:
        _TRIM(0)

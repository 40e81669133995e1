"""Keep freed memory in the process on CPU training (docs/trainer.md, issue 13).

A CPU training step allocates and frees the same large temporaries every step (the logits, their
log-softmax and its gradient: 16 MB each for 1024 tokens × 4096 vocabulary, 134 MB at 8192 tokens). With
glibc's defaults, blocks above the (dynamic, ≤ 32 MB) mmap threshold are mmapped and unmapped each time,
and smaller ones are returned to the OS whenever the free top of the heap exceeds the trim threshold, so
the next step page-faults them in again: measured at 5–16 k minor faults and 10–25 ms of system time per
1024-token step of the tiny model (about a quarter of the step), 130 k faults per 8192-token step.
Raising both thresholds keeps that working set mapped, so steady-state steps take no page faults.
"""

from __future__ import annotations

import ctypes
import os
import platform

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's <malloc.h>
_INT_MAX = 2**31 - 1  # mallopt takes a C int
MMAP_THRESHOLD = 1 << 30  # blocks up to 1 GiB come from the heap (reused); larger ones are still mmapped
_ENV = ("MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TOP_PAD_", "GLIBC_TUNABLES")
_applied: bool | None = None


def retain_heap() -> bool:
    """Tell glibc malloc to keep freed memory for reuse (process-wide, once); True if it is in effect.

    The heap then stays at its peak size until the process ends, which suits a process that trains. Does
    nothing when the C library is not glibc or when the user tuned malloc through the environment.
    """
    global _applied
    if _applied is None:
        _applied = False
        if platform.libc_ver()[0] == "glibc" and not any(k in os.environ for k in _ENV):
            mallopt = getattr(ctypes.CDLL(None), "mallopt", None)
            if mallopt is not None:
                mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
                # Setting either freezes glibc's dynamic thresholds, so both are set; older glibc caps the
                # mmap threshold at 32 MB (then the 8192-token logits are still mmapped, as by default).
                mmap = mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) or mallopt(_M_MMAP_THRESHOLD, 32 << 20)
                _applied = bool(mmap) and bool(mallopt(_M_TRIM_THRESHOLD, _INT_MAX))
    return _applied

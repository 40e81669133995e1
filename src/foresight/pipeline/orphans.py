"""Worker processes die with the process that started them, even when it is killed with SIGKILL.

datatrove's local executor starts a ``multiprocess.Manager()`` server and a pool; after ``kill -9`` of
``foresight curate`` the Manager server was re-parented to init and lived on, holding memory and the log file.
Linux's ``prctl(PR_SET_PDEATHSIG, SIGKILL)``, set in every process forked by (multi)processing, makes the
kernel kill the child when its parent goes. Elsewhere this is a no-op (the pool still exits on a closed pipe).
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1


class _Hook:
    """Kept alive at module level: ``register_after_fork`` holds its objects weakly."""

    parent_pid = 0


_HOOK = _Hook()


def die_with_parent(expected_parent: int = 0) -> None:
    """In the current (child) process: ask the kernel for SIGKILL when the parent exits."""
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        return
    if expected_parent and os.getppid() != expected_parent:  # the parent died before prctl took effect
        os.kill(os.getpid(), signal.SIGKILL)


def _after_fork(hook: _Hook) -> None:
    die_with_parent(hook.parent_pid)


def install() -> None:
    """Register :func:`die_with_parent` for every child that ``multiprocess``/``multiprocessing`` forks from here."""
    import multiprocessing.util

    import multiprocess.util

    _HOOK.parent_pid = os.getpid()
    for util in (multiprocess.util, multiprocessing.util):
        util.register_after_fork(_HOOK, _after_fork)

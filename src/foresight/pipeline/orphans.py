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


# Run by the watchdog: wait for EOF on stdin (the parent closed it, or died), then SIGKILL every process that
# holds a file under the marker directory open (Ray's daemons keep their logs there; their command lines are
# overwritten by setproctitle, so they cannot be matched by name), a few sweeps apart.
_WATCHDOG = """
import os, shutil, signal, sys, time
marker = sys.argv[1].rstrip("/") + "/"
spare = {os.getpid(), os.getppid()}  # the parent holds Ray's driver logs open until it exits
sys.stdin.buffer.read()

def holds(pid):
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}").startswith(marker):
                return True
        except OSError:
            pass
    return False

for sweep in range(4):
    for d in os.listdir("/proc"):
        if d.isdigit() and int(d) not in spare:
            if holds(d):
                try:
                    os.kill(int(d), signal.SIGKILL)
                except OSError:
                    pass
    time.sleep(0.5)
if len(sys.argv) > 2:
    shutil.rmtree(marker, ignore_errors=True)
"""


class Reaper:
    """A watchdog process that kills every process holding a file under ``marker`` open once this process ends,
    however it ends (``kill -9`` included: its pipe closes). For daemons this process starts but cannot pass
    PR_SET_PDEATHSIG to (Ray's raylet starts its dashboard and runtime-env agents, which outlived ``kill -9`` of
    ``curate --executor ray`` as orphans of PID 1)."""

    def __init__(self, marker: str, remove: bool = False) -> None:
        import subprocess

        self.proc = subprocess.Popen([sys.executable, "-c", _WATCHDOG, marker, *(["rm"] if remove else [])],
                                     stdin=subprocess.PIPE, start_new_session=True, close_fds=True)

    def close(self, timeout: float = 30) -> None:
        """Reap now (after a normal shutdown nothing is left, or a straggler is killed) and wait for it."""
        import subprocess

        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()

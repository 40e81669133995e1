"""SIGINT, SIGTERM and SIGHUP stop every command promptly with a one-line message.

The handler raises :class:`Interrupted` (a ``KeyboardInterrupt``, so code that already handles Ctrl-C still
does) in the main process; the exception unwinds through every ``finally`` and context manager, so temporary
files and directories are removed and locks released before ``user_errors`` prints the message and exits with
128 + the signal number. The handler is installed even where the signal was ignored at start (a command started
in the background by a non-interactive shell inherits SIGINT ignored): a foresight run asked to stop stops.
A second signal during that clean-up is ignored (SIGKILL still works). Forked workers keep the signal's default
effect, and die with their parent anyway (``pipeline.orphans``).
"""

from __future__ import annotations

import os
import signal
from types import FrameType

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Interrupted(KeyboardInterrupt):
    """The process received ``signum``; raised in the main thread by the handler."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


_state = {"pid": 0, "stopping": False}


def _handler(signum: int, frame: FrameType | None) -> None:
    if os.getpid() != _state["pid"]:  # a forked worker: what the signal would have done without us
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
        return
    if _state["stopping"]:
        return  # already unwinding: let the clean-up finish
    _state["stopping"] = True
    raise Interrupted(signum)


def raised_during(e: BaseException) -> Interrupted | None:
    """The :class:`Interrupted` that ``e`` was raised while handling, if any: clean-up code (a worker pool shutting
    down) can fail on the interrupt's own effects and replace it with, say, a ``ConnectionResetError``."""
    seen: set[int] = set()
    cur: BaseException | None = e
    while cur is not None and id(cur) not in seen:
        if isinstance(cur, Interrupted):
            return cur
        seen.add(id(cur))
        cur = cur.__cause__ or cur.__context__
    return None


def install() -> None:
    """Install the handler for :data:`SIGNALS` in this (the main) process."""
    _state.update(pid=os.getpid(), stopping=False)
    for sig in SIGNALS:
        signal.signal(sig, _handler)


# How to finish after an interrupt, by command (the words after ``foresight``).
RERUN = {
    "curate": "rerun the same command: finished tasks are kept",
    "train": "rerun it with --resume to continue from the last checkpoint (as it was, if none was written yet)",
    "sweep": "rerun the same command: finished mixtures are skipped",
}


def message(e: KeyboardInterrupt, command: list[str]) -> tuple[str, int]:
    """The one-line message and exit status for an interrupt (a plain KeyboardInterrupt counts as SIGINT);
    ``command``: the first words of the command line (``sys.argv[1:3]``)."""
    signum = e.signum if isinstance(e, Interrupted) else signal.SIGINT
    name = signal.Signals(signum).name
    hint = next((RERUN[w] for w in command if w in RERUN), "rerun the same command")
    return f"interrupted by {name}; nothing half-written was kept: {hint}", 128 + signum

"""The project's error classes. The CLI prints a :class:`ForesightError` (and a missing or unreadable file) as one
line naming what to fix; any other exception is a bug and keeps its traceback (``foresight --debug`` shows the
traceback of a user error too)."""

from __future__ import annotations


class ForesightError(Exception):
    """Base of the errors a user can fix: bad input, a wrong option, a missing prerequisite."""


class InputError(ForesightError, ValueError):
    """Bad input data, a bad option value or a bad config/spec file (still a ValueError for library callers)."""


class SetupError(ForesightError, RuntimeError):
    """The environment is not as needed: missing package data, no GPU for --device cuda, a failed run."""

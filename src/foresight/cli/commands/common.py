"""Shared CLI plumbing: one-line errors, a console, and a group with a default command."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import click
import typer
from rich.console import Console
from typer.core import TyperGroup

from foresight.formats.errors import ForesightError

console = Console()
err_console = Console(stderr=True)

F = TypeVar("F", bound=Callable[..., Any])

# Errors a user can fix: the project's own (foresight.formats.errors) and files that are missing, in the way or
# unreadable. Anything else (a bare ValueError, KeyError, ...) is a bug and keeps its traceback.
USER_ERRORS: tuple[type[BaseException], ...] = (
    ForesightError, FileNotFoundError, FileExistsError, NotADirectoryError, IsADirectoryError, PermissionError,
)
_debug = False


def is_user_error(e: BaseException) -> bool:
    return isinstance(e, USER_ERRORS)


def set_debug(on: bool) -> None:
    """``foresight --debug`` (an option of the top-level app, set before any command runs): user errors keep
    their traceback too."""
    global _debug
    _debug = on


def fail(message: str, code: int = 1) -> None:
    """Exit non-zero with a one-line error on stderr."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def user_errors(fn: F) -> F:
    """Turn expected user errors into a one-line message and exit status 1."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except typer.Exit:  # raised by fail(); it is a RuntimeError, so let it through unchanged
            raise
        except Exception as e:  # noqa: BLE001 - only user errors are caught; the rest is re-raised as is
            if _debug or not is_user_error(e):
                raise
            fail(str(e).splitlines()[0] if str(e) else type(e).__name__)

    return wrapper  # type: ignore[return-value]


def default_command_group(default: str) -> type[TyperGroup]:
    """A group whose first argument, when it is not a sub-command name, goes to ``default``.

    Lets ``foresight mix SPEC.toml`` and ``foresight mix plan SPEC.toml`` coexist.
    """

    class _Group(TyperGroup):
        def resolve_command(self, ctx: click.Context, args: list[str]):  # type: ignore[override]
            if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
                args.insert(0, default)
            return super().resolve_command(ctx, args)

        def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
            if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
                args.insert(0, default)
            return super().parse_args(ctx, args)

    return _Group

"""Shared CLI plumbing: one-line errors, a console, and a group with a default command."""

from __future__ import annotations

import errno
import functools
import inspect
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
import typer
from rich.console import Console
from rich.text import Text
from typer.core import TyperGroup

from foresight.formats.errors import ForesightError

# No console markup: messages carry user text (paths, pool names, TOML tables such as [train]) that rich would
# otherwise read as tags and drop. Styled parts are Text objects.
console = Console(markup=False)
err_console = Console(stderr=True, markup=False)

F = TypeVar("F", bound=Callable[..., Any])

# Errors a user can fix: the project's own (foresight.formats.errors) and files that are missing, in the way or
# unreadable. Anything else (a bare ValueError, KeyError, ...) is a bug and keeps its traceback.
USER_ERRORS: tuple[type[BaseException], ...] = (
    ForesightError, FileNotFoundError, FileExistsError, NotADirectoryError, IsADirectoryError, PermissionError,
)
_debug = False


def set_option(example: str) -> Any:
    """``--set TABLE.KEY=VALUE`` (repeatable): overrides a setting of the command's TOML file
    (formats.settings; docs/settings.md)."""
    return typer.Option(None, "--set", metavar="TABLE.KEY=VALUE",
                        help=f"Override a setting of the file, e.g. {example} (repeatable; see docs/settings.md).")


def is_user_error(e: BaseException) -> bool:
    return isinstance(e, USER_ERRORS)


def set_debug(on: bool) -> None:
    """``foresight --debug`` (an option of the top-level app, set before any command runs): user errors keep
    their traceback too."""
    global _debug
    _debug = on


DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


def disk_full(e: BaseException) -> str | None:
    """The file being written (or "") when ``e`` or an exception it came from is a full disk or quota, else None.

    Libraries report it in their own ways: ``OSError(ENOSPC)``, pyarrow's ``OSError`` without an errno, torch's
    ``RuntimeError`` from its zip writer; a wrapped error (``curate failed: …``) keeps the cause."""
    seen: set[int] = set()
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, OSError) and (e.errno in DISK_FULL or "No space left on device" in str(e)):
            return str(e.filename or "")
        if "No space left on device" in str(e) or "Disk quota exceeded" in str(e):
            return ""
        e = e.__cause__ or e.__context__  # type: ignore[assignment]
    return None


def out_path(value: str) -> Path:
    """``--out``'s parser: an empty value would silently mean the current directory (``Path("")`` is ``.``)."""
    if not str(value).strip():
        raise ValueError("--out is empty: name the path to write (. for the current directory)")
    return Path(value)


def fail(message: str, code: int = 1) -> None:
    """Exit non-zero with a one-line error on stderr."""
    err_console.print(Text.assemble(("error:", "bold red"), " ", message), highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def user_errors(fn: F) -> F:
    """Turn expected user errors into a one-line message and exit status 1."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except typer.Exit:  # raised by fail(); it is a RuntimeError, so let it through unchanged
            raise
        except KeyboardInterrupt as e:  # SIGINT/SIGTERM/SIGHUP (cli.interrupt): clean-up has run on the way up
            from foresight.cli.interrupt import message

            fail(*message(e, sys.argv[1:3]))
        except Exception as e:  # noqa: BLE001 - only user errors (and a full disk) are caught; the rest is re-raised
            if _debug:
                raise
            if (full := disk_full(e)) is not None:
                fail(f"no space left on the device{f' writing {full}' if full else ''}; free space or choose "
                     "another output path, then rerun: nothing partial was kept")
            if not is_user_error(e):
                raise
            fail(next((line.strip() for line in str(e).splitlines() if line.strip()), type(e).__name__))

    return wrapper  # type: ignore[return-value]


def escape_help(app: typer.Typer) -> None:
    """Escape rich markup in every help text of ``app`` (commands, their docstrings, options, sub-groups), in
    place: typer renders help with rich markup, which would drop literal text such as "[write]" or "[train]"."""
    from rich.markup import escape
    from typer.models import ParameterInfo

    for info in app.registered_commands:
        doc = info.help if info.help is not None else (info.callback.__doc__ if info.callback else None)
        if doc:
            info.help = escape(doc)
        for param in inspect.signature(info.callback).parameters.values() if info.callback else ():
            if isinstance(param.default, ParameterInfo) and param.default.help:
                param.default.help = escape(param.default.help)
    for group in app.registered_groups:
        for holder in (group, group.typer_instance.info if group.typer_instance else None):
            if holder is not None and isinstance(holder.help, str):
                holder.help = escape(holder.help)
        if group.typer_instance is not None:
            escape_help(group.typer_instance)


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

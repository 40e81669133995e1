"""TOML tables → typed, frozen settings: every key checked by name and by the dataclass's type hints.

Used for the settings sections of sweep files (``[train]``, ``[probe]``); errors name the file, the table
and the key, so a typo or a wrong type never silently falls back to a default.
"""

from __future__ import annotations

import types
import typing
from dataclasses import fields
from pathlib import Path
from typing import Any, TypeVar

from foresight.formats.errors import InputError

T = TypeVar("T")


class TableError(InputError):
    """A settings table names an unknown key or gives a value of the wrong type."""


def _convert(hint: Any, value: Any) -> tuple[bool, Any]:
    """(accepted, converted value) of a TOML value for a type hint."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        for arg in args:
            ok, out = _convert(arg, value)
            if ok:
                return True, out
        return False, value
    if hint is Any:
        return True, value
    if hint is type(None):
        return value is None, value
    if hint is bool:
        return isinstance(value, bool), value
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool), value
    if hint is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        return ok, float(value) if ok else value
    if hint in (str, Path):
        return isinstance(value, str), hint(value) if isinstance(value, str) else value
    if origin in (list, tuple) and isinstance(value, (list, tuple)):
        fixed = origin is tuple and not (len(args) == 2 and args[1] is Ellipsis)
        if fixed and len(args) != len(value):
            return False, value
        item_hints = args if fixed else [args[0] if args else Any] * len(value)
        converted = [_convert(h, v) for h, v in zip(item_hints, value, strict=True)]
        if not all(ok for ok, _ in converted):
            return False, value
        return True, origin(v for _, v in converted)
    return False, value


def _type_name(hint: Any) -> str:
    return str(hint).replace("typing.", "").replace("pathlib.", "").replace("<class '", "").replace("'>", "")


def from_table(cls: type[T], table: Any, where: str, *, defaults: dict[str, Any] | None = None) -> T:
    """An instance of the dataclass ``cls`` from a TOML ``table``; ``where`` names it in errors
    (e.g. ``"sweep s.toml [train]"``). ``defaults`` are applied before the table's own values."""
    if not isinstance(table, dict):
        raise TableError(f"{where} must be a table, got {type(table).__name__}")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(table) - known)
    if unknown:
        raise TableError(f"{where}: unknown key(s) {unknown}; allowed: {sorted(known)}")
    values = dict(defaults or {})
    for key, value in table.items():
        ok, converted = _convert(hints[key], value)
        if not ok:
            raise TableError(f"{where}: {key} = {value!r} is not {_type_name(hints[key])}")
        values[key] = converted
    return cls(**values)

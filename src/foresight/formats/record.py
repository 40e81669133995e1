"""One JSON codec for the typed formats (``ShardIndex``, ``ManifestHeader``, ``Accounting``): frozen dataclasses
whose fields are the file's keys. :func:`decode` checks a parsed file against the field types and refuses, in one
line naming the file and the key, a missing key, a value of the wrong type, or a key this version does not know
(the same policy as the format-name check: a file this reader cannot fully interpret is refused, never half-read).
:func:`encode` gives back the dict the writer wrote, so a load → write round trip gives the same bytes."""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")
_OPTIONAL = "optional"


def optional() -> Any:
    """A field for a key that earlier writers left out: ``None`` when absent, and then not written."""
    return dataclasses.field(default=None, metadata={_OPTIONAL: True})


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _kind(v: Any) -> str:
    return "null" if v is None else {dict: "an object", list: "a list", str: "a string", bool: "a boolean",
                                      int: "an integer", float: "a number"}.get(type(v), type(v).__name__)


class _Bad(Exception):
    """A value that does not fit its field; carries the key path for the one-line error."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(key, problem)
        self.key, self.problem = key, problem


def _value(tp: Any, v: Any, key: str) -> Any:
    """``v`` checked against the annotation ``tp`` (nested dataclasses decoded, lists of them made tuples)."""
    if tp is Any:
        return v
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if v is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _value(inner[0], v, key)
    if dataclasses.is_dataclass(tp):
        return _record(tp, v, key)
    if origin is dict:
        if not isinstance(v, dict):
            raise _Bad(key, f"is {_kind(v)}, expected an object")
        return {k: _value(args[1], x, f"{key}.{k}") for k, x in v.items()}
    if origin in (tuple, list):
        if not isinstance(v, list):
            raise _Bad(key, f"is {_kind(v)}, expected a list")
        return tuple(_value(args[0], x, f"{key}[{i}]") for i, x in enumerate(v))
    ok = {int: lambda x: isinstance(x, int) and not isinstance(x, bool),
          float: lambda x: isinstance(x, (int, float)) and not isinstance(x, bool),  # kept as written: same bytes
          str: lambda x: isinstance(x, str), bool: lambda x: isinstance(x, bool)}[tp]
    if not ok(v):
        raise _Bad(key, f"is {_kind(v)}, expected {_kind(tp())}")
    return v


def _record(cls: type[T], raw: Any, key: str) -> T:
    if not isinstance(raw, dict):
        raise _Bad(key or "(top level)", f"is {_kind(raw)}, expected an object")
    prefix = f"{key}." if key else ""
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = [k for k in raw if k not in fields]
    if unknown:
        raise _Bad(prefix + str(unknown[0]), "is not a key this version of foresight knows (a newer writer?)")
    missing = [n for n, f in fields.items() if n not in raw and not f.metadata.get(_OPTIONAL)]
    if missing:
        raise _Bad(prefix + missing[0], "is missing")
    hints = _hints(cls)
    return cls(**{n: _value(hints[n], raw[n], prefix + n) for n in fields if n in raw})


def read_json(path: str | Path, error: type[Exception], fix: str) -> Any:
    """The parsed JSON file at ``path``; ``error`` naming the file and ``fix`` when it is not JSON."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (json.JSONDecodeError, RecursionError, UnicodeDecodeError) as e:  # RecursionError: nested too deeply
        raise error(f"{path} is not valid JSON ({e}); {fix}") from e


def decode(cls: type[T], raw: Any, path: object, error: type[Exception], fix: str) -> T:
    """``raw`` (a parsed JSON file) as ``cls``; ``error`` naming ``path``, the key and ``fix`` when it does not fit."""
    try:
        return _record(cls, raw, "")
    except _Bad as e:
        raise error(f"{path}: key {e.key!r} {e.problem}; {fix}") from None


def encode(obj: Any) -> Any:
    """The JSON value of a record: the dict its writer wrote (absent optional keys stay absent)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: encode(getattr(obj, f.name)) for f in dataclasses.fields(obj)
                if not (f.metadata.get(_OPTIONAL) and getattr(obj, f.name) is None)}
    if isinstance(obj, (tuple, list)):
        return [encode(x) for x in obj]
    if isinstance(obj, dict):
        return {k: encode(v) for k, v in obj.items()}
    return obj

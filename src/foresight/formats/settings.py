"""One settings loader for every TOML file foresight reads (``pipeline.toml``, mixture specs, sweep files) and for
the command line's ``--set TABLE.KEY=VALUE`` overrides (docs/settings.md).

A schema is a dataclass: each field is a key, its type hint says which TOML values it takes (ints are accepted
for floats, lists become tuples, strings become paths), its default is used when the key is absent, and
:func:`setting` adds ranges, allowed values, a custom parser or a note for a missing key. A nested dataclass is
a sub-table; ``dict[str, Dataclass]`` is a table of named sub-tables (``[pools.<name>]``). Unknown keys are
refused with a "did you mean" suggestion.

Every problem is one :class:`SettingsError` whose message names where the value came from (the file, or the
option that overrode it), the table and the key::

    mix.toml: [pools.code] weight: expected a number ≥ 0, got "x"
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import re
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import MISSING, fields, is_dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, TypeVar

import tomllib

from foresight.formats.errors import InputError

T = TypeVar("T")
Where = tuple[str, ...]  # a table's path, e.g. ("pools", "code")
_BARE = re.compile(r"^[A-Za-z0-9_-]+$")


class SettingsError(InputError):
    """A settings file or override that cannot be used: ``FILE: [TABLE] KEY: PROBLEM``."""

    def __init__(self, origin: str, table: Where = (), key: str = "", problem: str = "") -> None:
        self.origin, self.table, self.key, self.problem = origin, tuple(table), key, problem
        table_text = f"[{dotted(self.table)}]" if self.table else ""
        place = " ".join(p for p in (table_text, _part(key) if key else "") if p)
        super().__init__(f"{origin}: {place}: {problem}" if place else f"{origin}: {problem}")


class Invalid(ValueError):
    """Raised by a field's parser or a schema's ``settings_check``: the loader adds the file, table and key."""

    def __init__(self, problem: str, key: str = "") -> None:
        super().__init__(problem)
        self.problem, self.key = problem, key


def setting(default: Any = MISSING, *, default_factory: Any = MISSING, ge: Any = None, gt: Any = None,
            le: Any = None, lt: Any = None, choices: Sequence[Any] | None = None,
            parse: Callable[[Any], Any] | None = None, key_check: Callable[[str], None] | None = None,
            entry_check: Callable[[str, Any], None] | None = None, note: str = "", rest: bool = False) -> Any:
    """A schema field with checks: bounds (applied to each item of a list), ``choices``, ``parse`` (raw TOML
    value → field value, raising :class:`Invalid`; replaces the type-hint conversion), ``key_check`` (names of
    a ``dict[str, ...]`` table), ``entry_check`` (its loaded entries, ``(name, value)``), ``note`` (said when the
    key is missing or wrong), ``rest`` (a ``dict`` field that collects the table's other keys, unchecked here,
    e.g. a datatrove filter's keyword arguments)."""
    meta = {"ge": ge, "gt": gt, "le": le, "lt": lt, "choices": choices, "parse": parse, "key_check": key_check,
            "entry_check": entry_check, "note": note, "rest": rest}
    return dataclasses.field(default=default, default_factory=default_factory, metadata=meta)


def dotted(parts: Sequence[str]) -> str:
    """A key path as TOML writes it: ``pools.code``, ``pools."a b"``."""
    return ".".join(_part(p) for p in parts)


def _part(p: str) -> str:
    return p if _BARE.match(p) else json.dumps(p, ensure_ascii=False)


def show(value: Any, limit: int = 60) -> str:
    """A value as the TOML that wrote it (strings quoted, true/false), shortened."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, str):
        text = json.dumps(value, ensure_ascii=False)
    elif isinstance(value, Mapping):
        text = "a table"
    elif isinstance(value, (list, tuple)):
        text = "[" + ", ".join(show(v, limit) for v in value) + "]"
    else:
        text = str(value)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _decode_problem(e: Exception) -> str:
    """tomllib's "Invalid value (at line 3, column 7)" as "line 3, column 7: not valid TOML (invalid value)"."""
    if isinstance(e, RecursionError):
        return "not valid TOML (nested too deeply)"
    if isinstance(e, UnicodeDecodeError):
        return f"not UTF-8 text (byte {e.start})"
    msg = str(e)
    m = re.search(r"\s*\(at (line \d+, column \d+|end of document)\)$", msg)
    where = f"{m.group(1).replace('end of document', 'end of file')}: " if m else ""
    reason = msg[:m.start()] if m else msg
    return f"{where}not valid TOML ({reason[:1].lower()}{reason[1:]})"


class Settings:
    """A TOML document and where each value came from: its file, or an override such as ``--set``."""

    def __init__(self, data: dict[str, Any], file: str, text: str = "") -> None:
        self.data, self.file, self.text = data, file, text
        self.origins: dict[Where, str] = {}

    @classmethod
    def read(cls, path: str | Path) -> Settings:
        """The TOML file at ``path``; a syntax error is one line naming the file and the line."""
        raw = Path(path).read_bytes()
        try:
            return cls.parse(raw.decode("utf-8"), str(path))
        except UnicodeDecodeError as e:
            raise SettingsError(str(path), problem=_decode_problem(e)) from None

    @classmethod
    def parse(cls, text: str, file: str) -> Settings:
        """TOML ``text``; ``file`` names it in errors."""
        try:
            return cls(tomllib.loads(text), file, text)
        except (tomllib.TOMLDecodeError, RecursionError) as e:  # RecursionError: nested too deeply
            raise SettingsError(file, problem=_decode_problem(e)) from None

    def override(self, values: Mapping[str, Any] | Sequence[str] | None, label: str = "--set") -> Settings:
        """Merge ``values`` (a nested mapping, or ``TABLE.KEY=VALUE`` strings) over the document; errors in them
        name ``label`` instead of the file. Returns self."""
        if isinstance(values, str):
            values = [values]
        if values and not isinstance(values, Mapping):
            values = parse_overrides(values, label)
        self._merge(self.data, values or {}, (), label)
        return self

    def _merge(self, into: dict[str, Any], values: Mapping[str, Any], where: Where, label: str) -> None:
        for key, value in values.items():
            path = (*where, key)
            if isinstance(value, Mapping) and isinstance(into.get(key), dict):
                self._merge(into[key], value, path, label)
            else:
                into[key] = _plain(value)
                self.origins[path] = label

    def origin(self, path: Where) -> str:
        """The file, or the override that gave the value at ``path`` (or a table above it)."""
        for n in range(len(path), 0, -1):
            if path[:n] in self.origins:
                return self.origins[path[:n]]
        return self.file

    def error(self, table: Where | str, key: str, problem: str) -> SettingsError:
        table = _where(table)
        return SettingsError(self.origin((*table, key) if key else table), table, key, problem)

    def table(self, table: Where | str = ()) -> Any:
        """The raw value at ``table`` ({} when absent)."""
        node: Any = self.data
        for part in _where(table):
            node = node.get(part, {}) if isinstance(node, dict) else {}
        return node

    def load(self, cls: type[T], table: Where | str = (), *, raw: Any = None, base: T | None = None) -> T:
        """The schema ``cls`` from the table at ``table`` (or from ``raw``, a changed copy of it), over ``base``
        (an instance whose values stand in for the defaults)."""
        table = _where(table)
        raw = self.table(table) if raw is None else raw
        if not isinstance(raw, Mapping):
            raise self.error(table[:-1], table[-1] if table else "", f"expected a table, got {show(raw)}")
        return _load(cls, raw, self, table, base)


def load_table(cls: type[T], table: Any, file: str, where: Where | str = (), base: T | None = None) -> T:
    """The schema ``cls`` from an already-parsed ``table`` that came from ``file``'s ``where``."""
    return Settings({}, file).load(cls, where, raw=table, base=base)


def parse_overrides(items: Sequence[str], label: str = "--set") -> dict[str, Any]:
    """``["segment.max_tokens=512", "pools.code.weight=0.3"]`` → a nested mapping. Keys are TOML keys (quote a
    part with a dot in it); the value is a TOML value, or else taken as a bare string (``device=cuda``)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        path = _key_path(_toml(f"{key} = 0")) if sep and key.strip() else []
        if not path:
            raise SettingsError(label, problem=f"{show(item)}: expected TABLE.KEY=VALUE, e.g. segment.max_tokens=512")
        doc = _toml(f"v = {value}")  # a TOML value, else (not TOML, or more than one value) a bare string
        parsed = doc["v"] if list(doc) == ["v"] else value.strip()
        node = out
        for part in path[:-1]:
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node = node[part]
        node[path[-1]] = parsed
    return out


def _toml(text: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except (tomllib.TOMLDecodeError, RecursionError):
        return {}


def _key_path(doc: dict[str, Any]) -> list[str]:
    path = []
    while isinstance(doc, dict) and len(doc) == 1:
        (key, doc), = doc.items()
        path.append(key)
    return path


def _plain(value: Any) -> Any:
    """A copy of an override value as plain TOML types (a nested mapping becomes a dict)."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    return list(value) if isinstance(value, tuple) else value


def _where(table: Where | str) -> Where:
    return tuple(table.split(".")) if isinstance(table, str) and table else tuple(table or ())


def _start(f: dataclasses.Field, base: Any) -> Any:
    if base is not None:
        return getattr(base, f.name)
    if f.default is not MISSING:
        return f.default
    if f.default_factory is not MISSING:
        return f.default_factory()
    return MISSING


def _load(cls: type[T], raw: Mapping[str, Any], doc: Settings, where: Where, base: Any) -> T:
    hints = typing.get_type_hints(cls)
    by_name = {f.name: f for f in fields(cls)}  # type: ignore[arg-type]
    rest = next((f.name for f in by_name.values() if f.metadata.get("rest")), None)
    values = {name: _start(f, base) for name, f in by_name.items()}
    extra: dict[str, Any] = {}
    for key, value in raw.items():
        if rest is not None and (key == rest or key not in by_name):
            extra[key] = value
        elif key not in by_name:
            raise doc.error(where, key, unknown(key, by_name))
        else:
            values[key] = _field(hints[key], by_name[key], value, doc, where, key, values[key])
    if rest is not None:
        values[rest] = {**values[rest], **extra}
    for name, value in values.items():
        if value is MISSING:
            note = by_name[name].metadata.get("note")
            raise doc.error(where, name, "missing" + (f" ({note})" if note else ""))
    obj = cls(**values)
    check = getattr(obj, "settings_check", None)
    if check is not None:
        try:
            check()
        except Invalid as e:
            raise doc.error(where, e.key, e.problem) from None
    return obj


def unknown(key: str, known: Mapping[str, Any] | Sequence[str], what: str = "key") -> str:
    """"unknown key; did you mean steps?", or the known names when none is close."""
    close = difflib.get_close_matches(key, list(known), n=1)
    if close:
        return f"unknown {what}; did you mean {_part(close[0])}?"
    return f"unknown {what}; known: {', '.join(sorted(_part(k) for k in known))}"


def _schema(hint: Any) -> tuple[str, Any]:
    """("table", cls) for a dataclass, ("tables", cls) for dict[str, dataclass], else ("value", hint)."""
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if typing.get_origin(hint) in (typing.Union, types.UnionType) and len(args) == 1:
        hint = args[0]
    if is_dataclass(hint):
        return "table", hint
    if typing.get_origin(hint) in (dict, Mapping) and len(typing.get_args(hint)) == 2 \
            and is_dataclass(typing.get_args(hint)[1]):
        return "tables", typing.get_args(hint)[1]
    return "value", hint


def _field(hint: Any, f: dataclasses.Field, value: Any, doc: Settings, where: Where, key: str, current: Any) -> Any:
    kind, inner = _schema(hint)
    meta = f.metadata
    if kind != "value" and not isinstance(value, Mapping):
        raise doc.error(where, key, f"expected a table, got {show(value)}")
    if kind == "table":
        return _load(inner, value, doc, (*where, key), current if isinstance(current, inner) else None)
    if kind == "tables":
        return _tables(inner, meta, value, doc, (*where, key), current if isinstance(current, Mapping) else {})
    try:
        if meta.get("parse"):
            out = meta["parse"](value)
        else:
            ok, out = convert(hint, value)
            if not ok:
                raise Invalid(f"expected {describe(hint)}{_rule(meta)}, got {show(value)}")
        _check_range(out, meta, hint, value)
    except Invalid as e:
        note = meta.get("note")
        raise doc.error(where, key, e.problem + (f" ({note})" if note else "")) from None
    return out


def _tables(cls: Any, meta: Mapping[str, Any], value: Mapping[str, Any], doc: Settings, where: Where,
            current: Mapping[str, Any]) -> dict[str, Any]:
    """``[where.<name>]`` tables; when the default has entries, only those names are known and each merges over
    its default (pipeline filters), else any name is (mixture pools)."""
    out = dict(current)
    for name, sub in value.items():
        if current and name not in current:
            raise doc.error(where, name, unknown(name, current, "table"))
        if meta.get("key_check"):
            try:
                meta["key_check"](name)
            except Invalid as e:
                raise doc.error(where, name, e.problem) from None
        if not isinstance(sub, Mapping):
            raise doc.error(where, name, f"expected a table [{dotted((*where, name))}], got {show(sub)}")
        out[name] = _load(cls, sub, doc, (*where, name), current.get(name))
        if meta.get("entry_check"):
            try:
                meta["entry_check"](name, out[name])
            except Invalid as e:
                raise doc.error((*where, name), e.key, e.problem) from None
    return out


_BOUNDS = (("ge", "≥", lambda v, b: v >= b), ("gt", ">", lambda v, b: v > b), ("le", "≤", lambda v, b: v <= b),
           ("lt", "<", lambda v, b: v < b))


def _rule(meta: Mapping[str, Any]) -> str:
    """The bounds in words: " ≥ 0", " from 0 to 1", " ≥ 0 and < 1" (or "")."""
    active = [(meta[name], sign) for name, sign, _ in _BOUNDS if meta.get(name) is not None]
    if [s for _, s in active] == ["≥", "≤"]:
        return f" from {active[0][0]} to {active[1][0]}"
    return "".join(f" {'and ' if i else ''}{s} {b}" for i, (b, s) in enumerate(active))


def _check_range(out: Any, meta: Mapping[str, Any], hint: Any, raw: Any) -> None:
    items = out if isinstance(out, (list, tuple)) else [out]
    if any(v is not None and meta.get(name) is not None and not ok(v, meta[name])
           for v in items for name, _, ok in _BOUNDS):
        what = describe(hint) if not isinstance(out, (list, tuple)) else "numbers"
        raise Invalid(f"expected {what}{_rule(meta)}, got {show(raw)}")
    choices = meta.get("choices")
    if choices is not None and any(v not in choices for v in items):
        raise Invalid(f"expected one of {', '.join(show(c) for c in choices)}, got {show(raw)}")


def convert(hint: Any, value: Any) -> tuple[bool, Any]:
    """(accepted, converted value) of a TOML value for a type hint."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        for arg in args:
            ok, out = convert(arg, value)
            if ok:
                return True, out
        return False, value
    if hint is Any:
        return True, value
    if hint is type(None):
        return value is None, value
    if origin is typing.Literal:
        return value in args and type(value) in {type(a) for a in args}, value
    if hint is bool:
        return isinstance(value, bool), value
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return number and isinstance(value, int), value
    if hint is float:
        return number, float(value) if number else value
    if hint is Fraction:  # the decimal the user wrote, exactly (0.1 -> 1/10)
        ok = number and value == value and value not in (float("inf"), float("-inf"))
        return ok, Fraction(str(value)) if ok else value
    if hint in (str, Path):
        return isinstance(value, str), hint(value) if isinstance(value, str) else value
    if origin in (dict, Mapping):
        return isinstance(value, Mapping), dict(value) if isinstance(value, Mapping) else value
    if origin in (list, tuple) and isinstance(value, (list, tuple)):
        fixed = origin is tuple and not (len(args) == 2 and args[1] is Ellipsis)
        if fixed and len(args) != len(value):
            return False, value
        item_hints = args if fixed else [args[0] if args else Any] * len(value)
        converted = [convert(h, v) for h, v in zip(item_hints, value, strict=True)]
        if not all(ok for ok, _ in converted):
            return False, value
        return True, origin(v for _, v in converted)
    return False, value


_NAMES = {bool: ("true or false", "booleans"), int: ("an integer", "integers"), float: ("a number", "numbers"),
          Fraction: ("a number", "numbers"), str: ("a string", "strings"), Path: ("a path", "paths"),
          Any: ("a value", "values")}


def describe(hint: Any, plural: bool = False) -> str:
    """What a type hint accepts, in words: "an integer", "a list of 2 numbers", "a string or an integer"."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint in _NAMES:
        return _NAMES[hint][plural]
    if origin in (typing.Union, types.UnionType):
        return " or ".join(describe(a, plural) for a in args if a is not type(None))
    if origin is typing.Literal:
        return "one of " + ", ".join(show(a) for a in args)
    if origin in (list, tuple):
        fixed = origin is tuple and args and not (len(args) == 2 and args[1] is Ellipsis)
        if fixed and len(set(args)) == 1:
            return f"a list of {len(args)} {describe(args[0], True)}"
        return "lists" if plural else f"a list of {describe(args[0], True)}" if args and not fixed else "a list"
    return "tables" if plural else "a table"

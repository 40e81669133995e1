"""Audit shards, manifests and sweep results with SQL on a sandboxed, read-only DuckDB connection.

>>> from audit import connect
>>> with connect("demo/shards", manifests=["demo/manifests/lsbs_mix6"]) as audit:
...     df = audit.query("SELECT source, sum(n_tokens) AS tokens FROM entries WHERE visual GROUP BY source")

Views: ``segments``, ``documents``, ``entries``, ``manifests``, ``pools``, ``results`` (see docs/audit.md).
"""

from __future__ import annotations

import contextlib
import re
import signal
import threading
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from foresight.audit.sandbox import AuditError, SandboxError, check_statement, lock_down
from foresight.audit.views import VIEWS, Manifest, columns_of, create_views, read_manifest, unique_names
from foresight.formats.index import ShardIndex, ShardIndexError, index_sha256
from foresight.formats.splits import DEFAULT_HELDOUT_FRACTION
from foresight.formats.sql import quote_ident

__all__ = ["AuditConnection", "AuditError", "AuditWarning", "SandboxError", "connect", "parse_param", "VIEWS",
           "DEFAULT_TIMEOUT_S"]

DEFAULT_TIMEOUT_S = 60.0  # a query running longer is interrupted (0 = no limit)


class AuditWarning(UserWarning):
    """A shard or manifest no longer matches its recorded hash (refused instead with ``strict=True``)."""


class AuditConnection:
    """A sandboxed DuckDB connection with the audit views; ``query`` admits one read-only statement."""

    def __init__(self, con: duckdb.DuckDBPyConnection, root: Path, index: ShardIndex,
                 manifests: list[Manifest], sweep_dir: Path | None, problems: list[str],
                 heldout_fraction: float = DEFAULT_HELDOUT_FRACTION, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self.con = con  # the raw connection: sandboxed and locked, but without the statement check
        self.root = root
        self.index = index
        self.manifests = manifests
        self.sweep_dir = sweep_dir
        self.problems = problems
        self.heldout_fraction = heldout_fraction  # the probe split the `documents.heldout` column and report use
        self.timeout_s = timeout_s

    def __enter__(self) -> AuditConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.con.close()

    def relation(self, sql: str, params: Mapping[str, Any] | None = None) -> duckdb.DuckDBPyRelation | None:
        """Check and run one statement; DuckDB errors become AuditError with the views/columns to use."""
        try:
            stmt = check_statement(self.con, sql)
        except duckdb.ParserException as e:
            raise AuditError(f"SQL syntax error: {e}") from None
        bound = _bind(stmt.named_parameters, params or {})
        try:
            return self.con.sql(sql, params=bound) if bound else self.con.sql(sql)
        except duckdb.Error as e:
            raise self._translate(e, sql) from None

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> pl.DataFrame:
        """Run one read-only statement with named parameters (``$name``) bound; return a polars DataFrame."""
        with self._limits() as why:
            try:
                rel = self.relation(sql, params)
                if rel is None:
                    return pl.DataFrame()
                plain, wide = _as_text_where_needed(rel)
                return _plain_ints(plain.pl(), wide)
            except duckdb.InterruptException:
                raise AuditError(why[0] if why else "query interrupted") from None
            except duckdb.OutOfMemoryException as e:
                raise AuditError(f"query stopped: {_first_line(e)}; aggregate or filter more, or raise "
                                 "--memory-limit") from None
            except duckdb.Error as e:  # errors raised while the relation runs rather than while it binds
                raise self._translate(e, sql) from None

    @contextlib.contextmanager
    def _limits(self):  # noqa: ANN202
        """Interrupt the running query after ``timeout_s`` and on Ctrl-C; yields the reason once it fired."""
        why: list[str] = []

        def stop(reason: str) -> None:
            if not why:
                why.append(reason)
            self.con.interrupt()

        timer = None
        if self.timeout_s and self.timeout_s > 0:
            timer = threading.Timer(self.timeout_s, stop, [f"query stopped after {self.timeout_s:g} s (the audit "
                                                            "time limit); narrow it, or raise --timeout"])
            timer.daemon = True
            timer.start()
        previous = {}
        if threading.current_thread() is threading.main_thread():
            # a Python handler would run only once DuckDB returns: interrupt the query itself on every stop signal
            previous[signal.SIGINT] = signal.signal(signal.SIGINT, lambda *_: stop("query interrupted (Ctrl-C)"))
            for sig in (signal.SIGTERM, signal.SIGHUP):
                previous[sig] = signal.signal(sig, lambda n, _: stop(f"query stopped by {signal.Signals(n).name}"))
        try:
            yield why
        finally:
            if timer is not None:
                timer.cancel()
            for sig, handler in previous.items():
                if handler is not None:
                    signal.signal(sig, handler)

    def _translate(self, e: duckdb.Error, sql: str) -> AuditError:
        """DuckDB's message, plus what the user needs to fix it (the views, the columns, the allowed dirs)."""
        if isinstance(e, duckdb.PermissionException):
            return SandboxError(f"refused: {_first_line(e)}; the audit reads only {self.allowed_text()}")
        if isinstance(e, duckdb.InvalidInputException) and "configuration has been locked" in str(e):
            return SandboxError(f"refused: {_first_line(e)}")
        if isinstance(e, duckdb.CatalogException):
            return AuditError(f"{e}\nviews: {', '.join(self.views())}")
        if isinstance(e, duckdb.BinderException):
            return AuditError(f"{e}\n{self._columns_hint(sql)}")
        return AuditError(str(e))

    def views(self) -> list[str]:
        names = self.con.execute("SELECT table_name FROM information_schema.tables ORDER BY table_name").fetchall()
        present = {n for (n,) in names}
        return [v for v in VIEWS if v in present]

    def columns(self, view: str) -> list[tuple[str, str]]:
        if view not in self.views():
            raise AuditError(f"unknown view {view!r}; views: {', '.join(self.views())}")
        return columns_of(self.con, view)

    def allowed_text(self) -> str:
        dirs = [str(self.root)] + [str(m.dir) for m in self.manifests]
        dirs += [str(self.sweep_dir)] if self.sweep_dir else []
        return ", ".join(dirs)

    def _columns_hint(self, sql: str) -> str:
        # List the columns of the views the statement names (all views when it names none).
        named = [v for v in self.views() if re.search(rf"\b{v}\b", sql, re.IGNORECASE)] or self.views()
        return "\n".join(f"{v}: {', '.join(c for c, _ in columns_of(self.con, v))}" for v in named)


# DuckDB types that polars cannot hold (UNION, INTERVAL), cannot write to CSV/JSON (VARIANT, MAP) or holds only
# approximately (HUGEINT beyond DECIMAL(38)), at any depth (a STRUCT field, a LIST element): shown as DuckDB's own
# text for the value. Top-level HUGEINT columns (every sum() of integers) become integers again when they fit.
_TEXT_TYPES = frozenset({"variant", "union", "map", "interval", "hugeint", "uhugeint"})
_WIDE_INTS = frozenset({"hugeint", "uhugeint"})


def _plain_type(t: duckdb.DuckDBPyType) -> str | None:
    """The type ``t`` with every part of a :data:`_TEXT_TYPES` type replaced by VARCHAR; None if unchanged."""
    if t.id in _TEXT_TYPES:
        return "VARCHAR"
    if t.id == "struct":
        fields = [(name, _plain_type(child)) for name, child in t.children]
        if all(p is None for _, p in fields):
            return None
        return "STRUCT(" + ", ".join(f"{quote_ident(name)} {p or str(child)}"
                                     for (name, p), (_, child) in zip(fields, t.children, strict=True)) + ")"
    if t.id in ("list", "array"):
        child = dict(t.children)["child"]
        inner = _plain_type(child)
        if inner is None:
            return None
        return f"{inner}[]" if t.id == "list" else f"{inner}[{dict(t.children)['size']}]"
    return None


def _as_text_where_needed(rel: duckdb.DuckDBPyRelation) -> tuple[duckdb.DuckDBPyRelation, list[int]]:
    """The relation with every value of a type in :data:`_TEXT_TYPES`, however deeply nested, cast to VARCHAR
    (columns by position, so duplicate or odd column names are kept as they are), and the positions of the
    top-level HUGEINT columns among them."""
    targets = [_plain_type(t) for t in rel.types]
    wide = [i for i, t in enumerate(rel.types) if t.id in _WIDE_INTS]
    if all(t is None for t in targets):
        return rel, wide
    cols = [f"CAST(#{i} AS {t}) AS {quote_ident(name)}" if t else f"#{i} AS {quote_ident(name)}"
            for i, (name, t) in enumerate(zip(rel.columns, targets, strict=True), 1)]
    return rel.project(", ".join(cols)), wide


def _plain_ints(df: pl.DataFrame, wide: Sequence[int] = ()) -> pl.DataFrame:
    """DuckDB's sum() of integers is a HUGEINT (text here, see :data:`_TEXT_TYPES`; decimal(38,0) from other
    sources); give users plain integers where every value fits an int64, the exact text where one does not."""
    names = {df.columns[i] for i in wide}
    for name, dtype in df.schema.items():
        if isinstance(dtype, pl.Decimal) and dtype.scale == 0 or name in names and dtype == pl.String:
            try:
                df = df.with_columns(pl.col(name).cast(pl.Int64))
            except pl.exceptions.InvalidOperationError:  # beyond int64: keep the exact value
                pass
    return df


def _first_line(e: BaseException) -> str:
    return str(e).strip().splitlines()[0]


def _bind(names: Iterable[str], params: Mapping[str, Any]) -> dict[str, Any]:
    wanted = set(names)
    missing = sorted(wanted - set(params))
    if missing:
        raise AuditError(f"the statement uses {', '.join('$' + m for m in missing)} but no value was given; "
                         f"pass --param {missing[0]}=VALUE (or params={{'{missing[0]}': …}})")
    unused = sorted(set(params) - wanted)
    if unused:
        raise AuditError(f"parameter(s) {', '.join(unused)} given but the statement has no "
                         f"{', '.join('$' + u for u in unused)}")
    return {k: params[k] for k in wanted}


def parse_param(text: str) -> tuple[str, Any]:
    """``name=value`` → (name, value); the value becomes an int, float or bool when it reads as one."""
    if "=" not in text:
        raise AuditError(f"bad --param {text!r}: expected name=value, e.g. --param min_score=0.6")
    name, value = text.split("=", 1)
    name = name.strip().lstrip("$")
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise AuditError(f"bad --param name {name!r}: use letters, digits and _")
    return name, _coerce(value)


def _coerce(value: str) -> Any:
    if re.fullmatch(r"[+-]?\d+", value):
        return int(value)
    if re.fullmatch(r"[+-]?(\d+\.\d*|\.\d+|\d+)([eE][+-]?\d+)?", value):
        return float(value)
    if value.lower() in ("true", "false"):
        return value.lower() == "true"
    return value


def connect(shards_dir: str | Path, manifests: Sequence[str | Path] = (), results: str | Path | None = None, *,
            strict: bool = False, verify: bool = True,
            heldout_fraction: float = DEFAULT_HELDOUT_FRACTION, timeout_s: float = DEFAULT_TIMEOUT_S,
            memory_limit: str | None = None) -> AuditConnection:
    """Open the sandboxed audit connection over a shard directory, manifest directories and a sweep directory.

    Shard files are re-hashed against ``index.json`` (``verify``); a mismatch is an AuditWarning naming the file,
    or an AuditError with ``strict=True``. After the views are created, the connection can read only these
    directories and its configuration is locked. Each query is interrupted after ``timeout_s`` seconds (0: no
    limit) or on Ctrl-C; DuckDB may use ``memory_limit`` (default: a quarter of RAM, at most 8 GB) and as much
    again of spill space.
    """
    root = Path(shards_dir).resolve()
    try:
        index = ShardIndex.load(root)
    except ShardIndexError as e:  # keep its message: it names index.json and `foresight curate`
        raise AuditError(str(e)) from None
    problems = [f"{root / p.path}: {p.problem} (shard changed since index.json was written)"
                for p in (index.verify(root) if verify else [])]
    this_index = index_sha256(root)
    loaded = unique_names([read_manifest(m, this_index, problems) for m in manifests])
    sweep_dir = Path(results).resolve() if results is not None else None
    if problems:
        if strict:
            raise AuditError(f"refused (--strict): {problems[0]}" + (f" (+{len(problems) - 1} more)"
                                                                     if len(problems) > 1 else ""))
        for p in problems:
            warnings.warn(p, AuditWarning, stacklevel=2)
    con = duckdb.connect(":memory:")
    try:
        create_views(con, root, index, loaded, sweep_dir, heldout_fraction)
        lock_down(con, [root, *(m.dir for m in loaded), *([sweep_dir] if sweep_dir else [])], memory_limit)
    except duckdb.Error as e:  # e.g. a shard file that is not Parquet
        con.close()
        raise AuditError(f"cannot open the audit views over {root}: {_first_line(e)}") from None
    except BaseException:
        con.close()
        raise
    return AuditConnection(con, root, index, loaded, sweep_dir, problems, heldout_fraction, timeout_s)


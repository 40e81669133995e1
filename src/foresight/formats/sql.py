"""SQL helpers shared by every DuckDB connection foresight opens (pools, audit, probes): literal and identifier
quoting for the names and paths we put into view definitions (user values are always bound as parameters),
and the one lock-down of a sandboxed connection."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import weakref
from collections.abc import Iterable, Iterator
from pathlib import Path

import duckdb
import pyarrow as pa

from foresight.formats.errors import InputError


def quote_literal(text: str) -> str:
    """A SQL string literal: ``it's`` → ``'it''s'``."""
    return "'" + text.replace("'", "''") + "'"


def duckdb_type(t: pa.DataType) -> str:
    """The DuckDB type a pyarrow column type reads as, so SQL views cast to what the file format declares instead
    of a second, hand-kept list of type strings."""
    if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t):
        return "BLOB"
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return "VARCHAR"
    simple = {pa.int8(): "TINYINT", pa.int16(): "SMALLINT", pa.int32(): "INTEGER", pa.int64(): "BIGINT",
              pa.uint8(): "UTINYINT", pa.uint16(): "USMALLINT", pa.uint32(): "UINTEGER", pa.uint64(): "UBIGINT",
              pa.float32(): "FLOAT", pa.float64(): "DOUBLE", pa.bool_(): "BOOLEAN"}
    if t in simple:
        return simple[t]
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return f"{duckdb_type(t.value_type)}[]"
    raise ValueError(f"no DuckDB type for the pyarrow type {t}")  # a schema change the views must learn about


def quote_ident(name: str) -> str:
    """A SQL identifier, double-quoted with inner quotes doubled."""
    return '"' + name.replace('"', '""') + '"'


def default_memory_limit() -> str:
    """A quarter of physical memory, at most 8 GB (DuckDB's own default is 80 %)."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return "2GB"
    return f"{max(256, min(8 * 1024, total // 4 // 2**20))}MB"


@contextlib.contextmanager
def spilling_connection(memory_limit: str = "512MB") -> Iterator[duckdb.DuckDBPyConnection]:
    """An in-memory DuckDB connection held to ``memory_limit``, spilling to a private temp directory (deleted
    afterwards): for aggregates over files of any size (distinct counts over a manifest's ids)."""
    spill = tempfile.mkdtemp(prefix="foresight-duckdb-")
    con = duckdb.connect(":memory:")
    try:
        con.execute(f"SET temp_directory = {quote_literal(spill)}")
        con.execute("SET memory_limit = $m", {"m": memory_limit})
        yield con
    finally:
        con.close()
        shutil.rmtree(spill, ignore_errors=True)


def lock_down(con: duckdb.DuckDBPyConnection, *, dirs: Iterable[str | Path] = (), paths: Iterable[str | Path] = (),
              memory_limit: str | None = None) -> None:
    """Confine ``con`` to reading files under ``dirs`` and the files ``paths``, with ``memory_limit`` of memory
    (default :func:`default_memory_limit`) and as much spill on disk, then lock its configuration.

    Call after the views are created: they keep working because DuckDB checks a path when it opens the file,
    and every path the views read is allowed. ValueError if DuckDB does not understand ``memory_limit``.
    """
    # DuckDB adds its temp directory to the allowed list: make it a private, empty one, deleted with ``con``.
    spill = tempfile.mkdtemp(prefix="foresight-duckdb-")
    weakref.finalize(con, shutil.rmtree, spill, True)
    con.execute(f"SET temp_directory = {quote_literal(spill)}")
    limit = memory_limit or default_memory_limit()
    try:
        con.execute("SET memory_limit = $m", {"m": limit})
        con.execute("SET max_temp_directory_size = $m", {"m": limit})
    except duckdb.Error as e:
        raise InputError(f"{limit!r} is not a size DuckDB understands ({str(e).splitlines()[0]}); "
                         "use e.g. 2GB or 512MB") from None
    allowed_dirs = sorted({str(Path(d).resolve()).rstrip("/") + "/" for d in dirs})
    if allowed_dirs:
        con.execute("SET allowed_directories = $dirs", {"dirs": allowed_dirs})
    allowed_paths = [str(p) for p in paths]
    if allowed_paths:
        con.execute("SET allowed_paths = $paths", {"paths": allowed_paths})
    con.execute("SET autoinstall_known_extensions = false")
    con.execute("SET autoload_known_extensions = false")
    # Python replacement scans would let SQL read any DataFrame variable of the calling frame.
    con.execute("SET python_enable_replacements = false")
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")

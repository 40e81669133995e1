"""The one ``segments`` view: every shard file of an index, in index order, on a DuckDB connection. Pools
(mixtures), the bits-per-byte probe (trainer) and the audit all read segments through it, each asking for the
extra columns it needs. The connection's sandbox (allowed paths, locked configuration) is its owner's."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import duckdb
import pyarrow.parquet as pq

from foresight.formats.splits import BUCKET_COLUMN, heldout_sql
from foresight.formats.sql import quote_ident, quote_literal

FILE_POS_COL, ROW_POS_COL = "_file", "_row"  # position of the file in the list, row inside it

# The footer key/value pair pyarrow writes: thrift field 1 (binary, 0x18), key length 12, key, field 2 (0x18).
_ARROW_SCHEMA_KV = b"\x18\x0cARROW:schema\x18"


def schema_key(path: str | Path) -> bytes | None:
    """What decides a file's columns, read from its Parquet footer alone: the serialized Arrow schema pyarrow
    stores there (no thrift parsing, so thousands of files take well under a second), or pyarrow's schema when
    the writer stored none. None for a file that cannot be read as Parquet (DuckDB names it later)."""
    try:
        with open(path, "rb", buffering=0) as f:
            size = os.fstat(f.fileno()).st_size
            if size < 12:
                return None
            f.seek(size - 8)
            tail = f.read(8)
            n = int.from_bytes(tail[:4], "little")
            if tail[4:] != b"PAR1" or n > size - 12:
                return None
            f.seek(size - 8 - n)
            footer = f.read(n)
        at = footer.find(_ARROW_SCHEMA_KV)
        if at < 0:
            return pq.read_schema(path).to_string().encode()
        length, shift, i = 0, 0, at + len(_ARROW_SCHEMA_KV)
        while i < len(footer):  # ULEB128 length of the value
            length |= (footer[i] & 0x7F) << shift
            shift += 7
            i += 1
            if not footer[i - 1] & 0x80:
                break
        return footer[i:i + length]
    except (OSError, ValueError):
        return None


def same_schema(paths: Sequence[str | Path]) -> bool:
    """True when every file has one and the same schema: DuckDB can then bind the list from its first file
    instead of opening every footer at each bind (``union_by_name``), which costs seconds at 10 k files."""
    first = schema_key(paths[0]) if paths else None
    return first is not None and all(schema_key(p) == first for p in paths[1:])


def create_segments_view(con: duckdb.DuckDBPyConnection, files: list[Path] | list[str], *, name: str = "segments",
                         root: Path | None = None, positions: bool = False,
                         heldout_fraction: float | None = None) -> None:
    """``CREATE VIEW name`` over ``files`` (all shard columns, union by name where their schemas differ) plus,
    on request:

    - ``root``: ``file`` (the path relative to ``root``) and ``row`` (row number in the file);
    - ``positions``: ``_file`` (index of the file in ``files``) and ``_row``;
    - ``heldout_fraction``: ``heldout``, the probe split of :mod:`formats.splits`.
    """
    paths = [str(f) for f in files]
    extra, options = [], ["hive_partitioning = false", f"union_by_name = {str(not same_schema(paths)).lower()}"]
    if root is not None:
        extra += [f"substr(filename, {len(str(root)) + 2}) AS file", 'file_row_number AS "row"']
        options += ["filename = true", "file_row_number = true"]
    if positions:  # DuckDB's virtual columns: read only when named
        extra += [f"file_index AS {FILE_POS_COL}", f"file_row_number AS {ROW_POS_COL}"]
    # the list lives in a session variable: a view over a 10 k-literal list re-binds every literal each time a
    # query names it (~0.2 s); the variable is bound once (users cannot SET: the sandboxes refuse SET)
    variable = f"{name}_files"
    con.execute(f"SET VARIABLE {quote_ident(variable)} = $files", {"files": paths})
    source = f"read_parquet(getvariable({quote_literal(variable)}), {', '.join(options)})"
    if heldout_fraction is not None:
        # the stored bucket where the shards have it (a union with older shards gives NULL on their rows)
        have = {r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()}
        extra.append(f"{heldout_sql(heldout_fraction, stored=BUCKET_COLUMN if BUCKET_COLUMN in have else None)} "
                     "AS heldout")
    select = "* EXCLUDE (filename, file_row_number)" if root is not None else "*"
    con.execute(f"CREATE VIEW {quote_ident(name)} AS SELECT {select}{''.join(', ' + e for e in extra)} FROM {source}")

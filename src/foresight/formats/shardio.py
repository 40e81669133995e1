"""Segment rows → schema-conformant Arrow tables, and the Parquet options of every shard (docs/architecture.md)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from foresight.formats.arrowpool import release_freed_memory
from foresight.formats.errors import InputError
from foresight.formats.hashing import sha256_text
from foresight.formats.schema import BASE_FIELDS, segment_schema
from foresight.formats.splits import heldout_bucket
from foresight.formats.taxonomy import LABEL_NAMES, derive_flags, score_column

PARQUET_OPTS: dict[str, Any] = {"compression": "zstd", "compression_level": 3, "write_statistics": True}
ROW_BITS = 40  # a row's position as one int64: file << ROW_BITS | row, which sorts in (file, row) order
ROW_MASK = (1 << ROW_BITS) - 1


def rows_to_table(rows: Iterable[dict[str, Any]], with_labels: bool,
                  signal_columns: tuple[str, ...] = ()) -> pa.Table:
    """Build a schema-conformant table from row dicts (fills hashes and n_tokens, derives flags)."""
    schema = segment_schema(with_labels, signal_columns)
    cols: dict[str, list] = {f.name: [] for f in schema}
    for r in rows:
        r = dict(r)
        r.setdefault("text_sha256", sha256_text(r["text"]))
        r.setdefault("n_tokens", len(r["tokens"]))
        r.setdefault("heldout_bucket", heldout_bucket(r["doc_id"]))
        r.setdefault("url", None)
        r.setdefault("path", None)
        if with_labels:
            r.setdefault("labels", [])
            for name in LABEL_NAMES:
                r.setdefault(score_column(name), 1.0 if name in r["labels"] else 0.0)
            for k, v in derive_flags(r["labels"]).items():
                r.setdefault(k, v)
        for name in cols:
            cols[name].append(r.get(name))
    return pa.table(cols, schema=schema)


def unique_inverse(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(x, return_inverse=True)`` by one argsort (much faster than numpy's hash path here)."""
    order = np.argsort(x)  # ties are equal values, so stability is irrelevant
    xs = x[order]
    first = np.ones(len(xs), dtype=bool)
    first[1:] = xs[1:] != xs[:-1]
    inverse = np.empty(len(x), dtype=np.int64)
    inverse[order] = np.cumsum(first) - 1
    return xs[first], inverse


def read_rows(root: Path, relpaths: tuple[str, ...] | list[str], ufile: np.ndarray, urow: np.ndarray,
              columns: list[str]) -> pa.Table:
    """``columns`` of the rows at (``ufile``, ``urow``), which must be distinct and in (file, row) order."""
    parts = []
    for f in ufile[np.r_[True, ufile[1:] != ufile[:-1]]] if len(ufile) else []:
        lo, hi = np.searchsorted(ufile, [f, f + 1])
        path = root / relpaths[int(f)]
        tbl = _fixed_width(pq.read_table(path, columns=columns), path)
        parts.append(tbl.take(pa.array(urow[lo:hi])))
        del tbl
        release_freed_memory()  # the whole file's columns were freed: give those pages back before the next
    # shards written by different versions may differ in nullability or token width: unify them
    table = pa.concat_tables(parts, promote_options="permissive") if parts else pa.table({c: [] for c in columns})
    return table.combine_chunks()


_FIXED = {f.name: f.type for f in BASE_FIELDS if pa.types.is_fixed_size_binary(f.type)}


def _fixed_width(table: pa.Table, path: Path) -> pa.Table:
    """Fixed-width columns (``text_sha256``) that another writer stored as variable binary, cast to the declared
    type per file: later takes then move fixed-size values, several times faster."""
    for i, name in enumerate(table.column_names):
        want = _FIXED.get(name)
        if want is not None and table.schema.field(i).type != want:
            try:
                col = table.column(i).cast(want)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
                raise InputError(f"{path}: column {name} should hold {want} values ({e}); "
                                 "re-create the shards with `foresight curate`") from e
            table = table.set_column(i, table.schema.field(i).with_type(want), col)
    return table

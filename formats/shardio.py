"""Writing segment tables as Hive-partitioned zstd Parquet shards (docs/architecture.md)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from formats.hashing import sha256_text
from formats.schema import segment_schema, shard_relpath
from formats.taxonomy import LABEL_NAMES, derive_flags, score_column

PARQUET_OPTS: dict[str, Any] = {"compression": "zstd", "compression_level": 3, "write_statistics": True}


def write_shard(root: str | Path, source: str, rank: int, table: pa.Table) -> str:
    """Write one shard file (via ``.tmp`` + rename) and return its path relative to ``root``."""
    rel = shard_relpath(source, rank)
    path = Path(root) / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(table, tmp, **PARQUET_OPTS)
    tmp.replace(path)
    return rel


def rows_to_table(rows: Iterable[dict[str, Any]], with_labels: bool,
                  signal_columns: tuple[str, ...] = ()) -> pa.Table:
    """Build a schema-conformant table from row dicts (fills hashes and n_tokens, derives flags)."""
    schema = segment_schema(with_labels, signal_columns)
    cols: dict[str, list] = {f.name: [] for f in schema}
    for r in rows:
        r = dict(r)
        r.setdefault("text_sha256", sha256_text(r["text"]))
        r.setdefault("n_tokens", len(r["tokens"]))
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

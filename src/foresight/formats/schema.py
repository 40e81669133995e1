"""The segment row (docs/architecture.md): one Parquet row per segment, shared by every package."""

from __future__ import annotations

import pyarrow as pa

from foresight.formats.taxonomy import LABEL_NAMES, score_column

SHARD_FORMAT = "foresight-shards/1"
DATA_DIR = "data"
INDEX_FILE = "index.json"
STATS_DIR = "stats"
EXCLUDED_DIR = "excluded"  # curate --exclusions: <step>/<rank>.jsonl.gz, each document with its filter_reason
WORK_DIR = "_work"  # curate's resume state (logs, completion markers, intermediate files) until index.json is written
RESULTS_FILE = "results.parquet"  # a sweep directory's one row per mixture

BASE_FIELDS: list[pa.Field] = [
    pa.field("id", pa.string(), nullable=False),
    pa.field("doc_id", pa.string(), nullable=False),
    pa.field("segment", pa.int32(), nullable=False),
    pa.field("source", pa.string(), nullable=False),
    pa.field("url", pa.string()),
    pa.field("path", pa.string()),
    pa.field("text", pa.string(), nullable=False),
    pa.field("text_sha256", pa.binary(32), nullable=False),
    pa.field("tokens", pa.list_(pa.uint32()), nullable=False),
    pa.field("n_tokens", pa.int32(), nullable=False),
    # formats.splits.heldout_bucket(doc_id): the probe split without hashing every doc_id at each scan
    pa.field("heldout_bucket", pa.uint16(), nullable=False),
]


def label_fields() -> list[pa.Field]:
    """Columns the classify stage adds: labels, one score per label, derived flags (the groups, then one boolean
    per label named as the label: ``labels`` as flat columns, which DuckDB scans far faster than a Parquet list;
    added after the older columns, whose bytes stay as they were). Shards written before the per-label
    columns still audit: ``audit.views`` derives them from ``labels``."""
    fields = [pa.field("labels", pa.list_(pa.string()), nullable=False)]
    fields += [pa.field(score_column(name), pa.float32(), nullable=False) for name in LABEL_NAMES]
    fields += [pa.field("reasoning", pa.bool_(), nullable=False), pa.field("visual", pa.bool_(), nullable=False)]
    fields += [pa.field(name, pa.bool_(), nullable=False) for name in LABEL_NAMES]
    return fields


def segment_schema(with_labels: bool, signal_columns: list[str] | tuple[str, ...] = ()) -> pa.Schema:
    """The shard schema; ``signal_columns`` are float32 quality/language signals from the filters."""
    fields = list(BASE_FIELDS)
    if with_labels:
        fields += label_fields()
    fields += [pa.field(name, pa.float32()) for name in signal_columns]
    return pa.schema(fields)


def shard_relpath(source: str, rank: int) -> str:
    """Hive-partitioned path of a shard relative to the shard root."""
    if not source or "/" in source or source in {".", ".."}:
        raise ValueError(f"invalid source name {source!r} for a partition directory")
    return f"{DATA_DIR}/source={source}/part-{rank:05d}.parquet"

"""``SWEEP_DIR/results.parquet``: one row per mixture (and seed) of a sweep (docs/trainer.md).

``RESULTS_SCHEMA`` types the columns every row has; each probe adds its scores as float64 columns
(``bpb_overall``, ``bpb_visual``, …) between ``final_loss`` and the hashes. The audit's ``results`` view derives
its column types from this schema."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa

RESULTS_SCHEMA = pa.schema([
    ("mixture", pa.string()),
    ("seed", pa.int64()),  # the model seed
    ("swept_share", pa.float64()),
    ("reasoning_share", pa.float64()),  # null on unlabelled shards
    ("visual_share", pa.float64()),
    ("tokens", pa.int64()),  # tokens consumed by training
    ("final_loss", pa.float64()),
    ("manifest_sha256", pa.string()),
    ("checkpoint_sha256", pa.string()),
])


def write_results(rows: list[dict[str, Any]], path: Path) -> Path:
    """The rows as ``results.parquet``: the fixed columns typed by ``RESULTS_SCHEMA`` (a column of nulls too),
    the probe scores as float64, in the rows' own column order."""
    import polars as pl

    fixed = pl.from_arrow(RESULTS_SCHEMA.empty_table()).schema
    names = list(dict.fromkeys(k for r in rows for k in r))
    schema = {n: fixed.get(n, pl.Float64) for n in names}
    pl.from_dicts(rows, schema=schema).write_parquet(path)
    return path

"""The held-out probe split, defined once by hash of ``doc_id`` (docs/trainer.md).

Mixtures exclude it; the trainer's bits-per-byte probe evaluates on it. The same rule is given in
Python and as a DuckDB SQL expression so both sides agree row for row. Shards store each row's bucket
(``heldout_bucket``, written at curate time) so a scan need not hash every ``doc_id``; shards written before
that column fall back to hashing in SQL.
"""

from __future__ import annotations

import hashlib

from foresight.formats.errors import InputError

HELDOUT_BUCKETS = 10_000
BUCKET_COLUMN = "heldout_bucket"  # the shard column holding heldout_bucket(doc_id)
DEFAULT_HELDOUT_FRACTION = 0.02


def _cutoff(fraction: float) -> int:
    if not 0.0 <= fraction < 1.0:
        raise InputError(f"held-out fraction must be in [0, 1), got {fraction}")
    return round(fraction * HELDOUT_BUCKETS)


def heldout_bucket(doc_id: str) -> int:
    """Bucket in [0, 10000): first 8 hex digits of sha256(doc_id) modulo 10000."""
    return int(hashlib.sha256(doc_id.encode("utf-8")).hexdigest()[:8], 16) % HELDOUT_BUCKETS


def is_heldout(doc_id: str, fraction: float = DEFAULT_HELDOUT_FRACTION) -> bool:
    return heldout_bucket(doc_id) < _cutoff(fraction)


def bucket_sql(column: str = "doc_id") -> str:
    """DuckDB expression equal to :func:`heldout_bucket` of ``column``."""
    return f"(CAST(('0x' || substr(sha256({column}), 1, 8)) AS UBIGINT) % {HELDOUT_BUCKETS})"


def heldout_sql(fraction: float = DEFAULT_HELDOUT_FRACTION, column: str = "doc_id", stored: str | None = None) -> str:
    """DuckDB boolean expression equal to :func:`is_heldout` for every row. ``stored`` is an expression giving
    the stored bucket (NULL on rows of shards without it, which are hashed instead: ``coalesce`` evaluates its
    second argument only for those rows)."""
    bucket = bucket_sql(column) if stored is None else f"coalesce({stored}, {bucket_sql(column)})"
    return f"({bucket} < {_cutoff(fraction)})"

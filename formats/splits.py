"""The held-out probe split, defined once by hash of ``doc_id`` (docs/trainer.md).

Mixtures exclude it; the trainer's bits-per-byte probe evaluates on it. The same rule is given in
Python and as a DuckDB SQL expression so both sides agree row for row.
"""

from __future__ import annotations

import hashlib

HELDOUT_BUCKETS = 10_000
DEFAULT_HELDOUT_FRACTION = 0.02


def _cutoff(fraction: float) -> int:
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"held-out fraction must be in [0, 1), got {fraction}")
    return round(fraction * HELDOUT_BUCKETS)


def heldout_bucket(doc_id: str) -> int:
    """Bucket in [0, 10000): first 8 hex digits of sha256(doc_id) modulo 10000."""
    return int(hashlib.sha256(doc_id.encode("utf-8")).hexdigest()[:8], 16) % HELDOUT_BUCKETS


def is_heldout(doc_id: str, fraction: float = DEFAULT_HELDOUT_FRACTION) -> bool:
    return heldout_bucket(doc_id) < _cutoff(fraction)


def heldout_sql(fraction: float = DEFAULT_HELDOUT_FRACTION, column: str = "doc_id") -> str:
    """DuckDB boolean expression equal to :func:`is_heldout` for every row."""
    return (f"(CAST(('0x' || substr(sha256({column}), 1, 8)) AS UBIGINT) % {HELDOUT_BUCKETS}) "
            f"< {_cutoff(fraction)}")

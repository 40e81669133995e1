"""Dedup stages: exact (hash of the normalised text) and MinHash near-duplicates, both datatrove's
multi-stage implementations. Only the final filters are subclassed, to count their drops as
``dropped/exact_duplicate`` and ``dropped/near_duplicate``.

Exact:   signatures (per rank) → find duplicates (1 task, global) → filter (per rank)
MinHash: signatures (per rank) → buckets (one task per bucket) → cluster (1 task) → filter (per rank)
Which copy survives depends only on the documents and the number of tasks, never on worker timing.
"""

from __future__ import annotations

from typing import Any

from datatrove.data import Document
from datatrove.pipeline.dedup.exact_dedup import (
    ExactDedupConfig,
    ExactDedupFilter,
    ExactDedupSignature,
    ExactFindDedups,
)
from datatrove.pipeline.dedup.minhash import (
    MinhashConfig,
    MinhashDedupBuckets,
    MinhashDedupCluster,
    MinhashDedupFilter,
    MinhashDedupSignature,
)
from datatrove.utils.hashing import HashConfig
from datatrove.utils.typeshelper import StatHints

from pipeline.accounting import key


def normalised_text(doc: Document) -> bytes:
    """Content hashed by exact dedup: the UTF-8 text after the normalise stage (xxhash64)."""
    return doc.text.encode("utf-8")


def exact_config() -> ExactDedupConfig:
    return ExactDedupConfig(content_getter=normalised_text, hash_config=HashConfig(precision=64))


def minhash_config(section: dict[str, Any]) -> MinhashConfig:
    return MinhashConfig(n_grams=section["n_grams"], num_buckets=section["num_buckets"],
                         hashes_per_bucket=section["hashes_per_bucket"], seed=section["seed"],
                         hash_config=HashConfig(precision=64))


class _CountDrops:
    """Mixin: mirror datatrove's ``dropped`` stat into our accounting key."""

    drop_reason = "duplicate"

    def stat_update(self, *labels: str, value: int = 1, unit: str | None = None) -> None:
        super().stat_update(*labels, value=value, unit=unit)  # type: ignore[misc]
        if StatHints.dropped in labels:
            super().stat_update(key("dropped", self.drop_reason), value=value)  # type: ignore[misc]


class CountedExactDedupFilter(_CountDrops, ExactDedupFilter):
    drop_reason = "exact_duplicate"


class CountedMinhashDedupFilter(_CountDrops, MinhashDedupFilter):
    drop_reason = "near_duplicate"


def exact_steps(folder: str) -> dict[str, Any]:
    """The exact-dedup steps, working under ``folder``."""
    cfg = exact_config()
    return {
        "signature": ExactDedupSignature(output_folder=f"{folder}/sigs", config=cfg, finder_workers=1),
        "find": ExactFindDedups(data_folder=f"{folder}/sigs", output_folder=f"{folder}/dups", config=cfg),
        "filter": CountedExactDedupFilter(data_folder=f"{folder}/dups", config=cfg),
        # The same filter without accounting, for the MinHash signature stage (its drops are counted once,
        # in the segment stage).
        "filter_uncounted": ExactDedupFilter(data_folder=f"{folder}/dups", config=cfg),
    }


def minhash_steps(folder: str, section: dict[str, Any]) -> dict[str, Any]:
    """The four MinHash steps, working under ``folder``."""
    cfg = minhash_config(section)
    return {
        "signature": MinhashDedupSignature(output_folder=f"{folder}/sigs", config=cfg),
        "buckets": MinhashDedupBuckets(input_folder=f"{folder}/sigs", output_folder=f"{folder}/buckets", config=cfg),
        "cluster": MinhashDedupCluster(input_folder=f"{folder}/buckets", output_folder=f"{folder}/remove",
                                       config=cfg),
        "filter": CountedMinhashDedupFilter(input_folder=f"{folder}/remove"),
    }

"""Dedup stages: exact (hash of the normalised text) and MinHash near-duplicates, both datatrove's
multi-stage implementations. Only the final filters are subclassed, to count their drops as
``dropped/exact_duplicate`` and ``dropped/near_duplicate``.

Exact:   signatures (per rank) → find duplicates (1 task, global) → filter (per rank)
MinHash: signatures (per rank) → buckets (one task per bucket) → cluster (1 task) → filter (per rank)
Which copy survives depends only on the documents and the number of tasks, never on worker timing.
"""

from __future__ import annotations

from typing import Any

import numpy as np
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
from datatrove.pipeline.writers.disk_base import DiskWriter
from datatrove.utils.hashing import HashConfig
from datatrove.utils.text import ngrams, simplify_text

from foresight.pipeline.accounting import EXACT_DUPLICATE, NEAR_DUPLICATE
from foresight.pipeline.config import MinhashDedupConfig
from foresight.pipeline.stages.words import windowed


def normalised_text(doc: Document) -> bytes:
    """Content hashed by exact dedup: the UTF-8 text after the normalise stage (xxhash64)."""
    return doc.text.encode("utf-8")


def exact_config() -> ExactDedupConfig:
    return ExactDedupConfig(content_getter=normalised_text, hash_config=HashConfig(precision=64))


def minhash_config(section: MinhashDedupConfig) -> MinhashConfig:
    return MinhashConfig(n_grams=section.n_grams, num_buckets=section.num_buckets,
                         hashes_per_bucket=section.hashes_per_bucket, seed=section.seed,
                         hash_config=HashConfig(precision=64))


class ExactDuplicates(ExactDedupFilter):
    """datatrove's exact-dedup filter under a name the accounting knows: its ``dropped`` count is the
    ``exact_duplicate`` drops (docs/architecture.md)."""

    name = f"🎯 {EXACT_DUPLICATE}"


class NearDuplicates(MinhashDedupFilter):
    """datatrove's MinHash filter; its ``dropped`` count is the ``near_duplicate`` drops."""

    name = f"🎯 {NEAR_DUPLICATE}"


class BoundedMinhashSignature(MinhashDedupSignature):
    """datatrove's MinHash signature with the same result in bounded memory: its ``get_signature`` builds an
    (n-grams × hashes) matrix, 7 GB for a 50 MB document; here the minimum is taken over row blocks."""

    block_rows = 1 << 14

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.word_tokenizer = windowed(self.language)

    def get_signature(self, shingles: np.ndarray) -> list[list[int]]:
        if len(shingles) <= self.block_rows:
            return super().get_signature(shingles)
        a, b = self.parameters
        prime = np.uint64((1 << 61) - 1)  # datatrove's _mersenne_prime
        low = None
        for start in range(0, len(shingles), self.block_rows):
            phv = (shingles[start:start + self.block_rows] * a + b) % prime
            if self.config.hash_config.precision == 32:
                phv = np.bitwise_and(phv, self.config.hash_config.max)
            block = phv.min(axis=0)
            low = block if low is None else np.minimum(low, block)
        return [x.tolist() for x in np.split(low.astype(self.config.hash_config.np_dtype), self.config.num_buckets)]

    def get_shingles(self, text: str) -> np.ndarray:
        words = self.word_tokenizer.word_tokenize(simplify_text(text, self.config.norm_config))
        hashes = (self._hash_func(" ".join(x)) for x in ngrams(words, self.config.n_grams))
        return np.fromiter(hashes, dtype=np.uint64).reshape((-1, 1))


def exact_steps(folder: str, exclusions: DiskWriter | None = None) -> dict[str, Any]:
    """The exact-dedup steps, working under ``folder``; dropped duplicates go to ``exclusions`` if given."""
    cfg = exact_config()
    return {
        "signature": ExactDedupSignature(output_folder=f"{folder}/sigs", config=cfg, finder_workers=1),
        "find": ExactFindDedups(data_folder=f"{folder}/sigs", output_folder=f"{folder}/dups", config=cfg),
        "filter": ExactDuplicates(data_folder=f"{folder}/dups", config=cfg, exclusion_writer=exclusions),
        # The same filter without accounting, for the MinHash signature stage (its drops are counted once,
        # in the segment stage).
        "filter_uncounted": ExactDedupFilter(data_folder=f"{folder}/dups", config=cfg),
    }


def minhash_steps(folder: str, section: MinhashDedupConfig, exclusions: DiskWriter | None = None) -> dict[str, Any]:
    """The four MinHash steps, working under ``folder``; dropped near-duplicates go to ``exclusions``."""
    cfg = minhash_config(section)
    return {
        "signature": BoundedMinhashSignature(output_folder=f"{folder}/sigs", config=cfg),
        "buckets": MinhashDedupBuckets(input_folder=f"{folder}/sigs", output_folder=f"{folder}/buckets", config=cfg),
        "cluster": MinhashDedupCluster(input_folder=f"{folder}/buckets", output_folder=f"{folder}/remove",
                                       config=cfg),
        "filter": NearDuplicates(input_folder=f"{folder}/remove", exclusion_writer=exclusions),
    }

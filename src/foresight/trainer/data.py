"""The token stream: a manifest's tokens in order, packed into fixed-length sequences (docs/trainer.md).

The stream is written once to a flat uint32 file and memory-mapped, so a batch is a slice (no loader
process, ~0 % of step time) and the data cursor is just the step number. Sequences are consecutive,
disjoint windows of ``seq_len`` tokens; the last one is padded and its padding is masked out of the loss,
so every token of the stream is fed exactly once per epoch.

Batches are assigned by global sequence number g ∈ [0, epochs · n_sequences): step s covers
g ∈ [s·B·W, (s+1)·B·W) and rank r takes the r-th block of B of them, so over all ranks and steps the
union of the tokens is exactly the stream, ``epochs`` times.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from foresight.formats.atomic import replacing
from foresight.formats.errors import InputError

IGNORE_INDEX = -100


def write_token_file(arrays: Iterable[np.ndarray], path: str | Path) -> int:
    """Concatenate token arrays into a flat little-endian uint32 file (atomically); returns the count."""
    n = 0
    with replacing(path) as tmp, open(tmp, "wb") as f:
        for arr in arrays:
            a = np.asarray(arr)
            if a.ndim != 1:
                raise ValueError(f"token arrays must be 1-D, got shape {a.shape}")
            if a.size and (a.min() < 0 if a.dtype.kind == "i" else False):
                raise ValueError("token ids must be non-negative")
            f.write(a.astype("<u4", copy=False).tobytes())
            n += a.size
    return n


def open_token_file(path: str | Path) -> np.ndarray:
    size = Path(path).stat().st_size
    if size == 0:
        return np.zeros(0, dtype="<u4")
    return np.memmap(path, dtype="<u4", mode="r")


@dataclass
class Batch:
    input_ids: torch.Tensor  # (b, seq_len) int64
    labels: torch.Tensor  # (b, seq_len) int64, IGNORE_INDEX on padding
    n_tokens: int  # real (non-padding) tokens fed

    @property
    def n_targets(self) -> int:
        """Positions with a next-token target (the loss denominator)."""
        return int((self.labels[:, 1:] != IGNORE_INDEX).sum())


class PackedStream:
    """Fixed-length windows over a flat token array, with the batch plan for ``world`` ranks."""

    def __init__(self, tokens: np.ndarray, seq_len: int, batch_size: int, pad_id: int, epochs: int = 1,
                 world: int = 1, rank: int = 0) -> None:
        if seq_len < 2 or batch_size < 1 or epochs < 1:
            raise InputError(f"need seq_len >= 2, batch_size >= 1, epochs >= 1 (got {seq_len}, {batch_size}, {epochs})")
        if tokens.size == 0:
            raise InputError("the token stream is empty; the manifest selected no tokens")
        self.tokens, self.seq_len, self.batch_size, self.pad_id = tokens, seq_len, batch_size, pad_id
        self.epochs, self.world, self.rank = epochs, world, rank
        self.n_sequences = -(-tokens.size // seq_len)
        self.total_sequences = self.n_sequences * epochs

    @property
    def steps_per_run(self) -> int:
        """Optimizer steps to feed every sequence of every epoch once."""
        return -(-self.total_sequences // (self.batch_size * self.world))

    def global_indices(self, step: int, rank: int | None = None) -> range:
        rank = self.rank if rank is None else rank
        start = step * self.batch_size * self.world + rank * self.batch_size
        return range(min(start, self.total_sequences), min(start + self.batch_size, self.total_sequences))

    def sequence(self, g: int) -> np.ndarray:
        i = g % self.n_sequences
        return np.asarray(self.tokens[i * self.seq_len:(i + 1) * self.seq_len])

    def row_tokens(self, g: int) -> int:
        """Real tokens in global sequence ``g`` (only the stream's last sequence can be short)."""
        i = g % self.n_sequences
        return min(self.seq_len, self.tokens.size - i * self.seq_len)

    def step_counts(self, step: int) -> tuple[int, int]:
        """(targets, tokens) of the whole step over all ranks, from the plan alone: what summing each rank's
        ``Batch.n_targets`` / ``n_tokens`` gives, without building the batches or communicating."""
        start = step * self.batch_size * self.world
        rows = [self.row_tokens(g) for g in range(min(start, self.total_sequences),
                                                  min(start + self.batch_size * self.world, self.total_sequences))]
        return sum(max(0, n - 1) for n in rows), sum(rows)

    def batch(self, step: int) -> Batch:
        """This rank's batch at ``step``; a rank past the end gets one fully masked row (keeps DDP in step)."""
        idx = self.global_indices(step)
        rows = [self.sequence(g) for g in idx]
        n_real = sum(r.size for r in rows)
        if not rows:
            rows = [np.zeros(0, dtype="<u4")]
        ids = np.full((len(rows), self.seq_len), self.pad_id, dtype=np.int64)
        labels = np.full((len(rows), self.seq_len), IGNORE_INDEX, dtype=np.int64)
        for j, r in enumerate(rows):
            ids[j, :r.size] = r
            labels[j, :r.size] = r
        return Batch(torch.from_numpy(ids), torch.from_numpy(labels), n_real)

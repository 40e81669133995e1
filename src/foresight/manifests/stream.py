"""A manifest's token stream on bounded memory: written to a flat file one shard file at a time.

Entries interleave shard files in manifest order, so streaming them in order would hold every referenced
file's tokens at once (4 bytes per token of the manifest). Instead each entry's place in the output is known
up front (the running sum of its span lengths): the tokens column of one shard file is read a batch of rows
at a time, every entry that references a row of the batch is written at its place (``pwrite``), and the batch
is dropped. Memory is one batch's tokens (at most one shard file's) plus the entries table; the output bytes
are those of writing the spans in manifest order.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.parquet as pq

from foresight.formats.atomic import replacing
from foresight.formats.index import safe_shard_path
from foresight.manifests.read import read_verified
from foresight.manifests.schema import ManifestError

TOKEN_DTYPE = np.dtype("<u4")  # the shards' token ids; the trainer's token file
STREAM_ROWS = 4096  # shard rows whose tokens are held at once (2048-token segments: 32 MB as uint32)


def write_token_stream(manifest_dir: str | Path, out: str | Path, dtype: np.dtype | str = TOKEN_DTYPE,
                       shards_root: str | Path | None = None, *, rehash: bool = True) -> np.ndarray:
    """Write every entry's ``tokens[start:end]`` as ``dtype``, in manifest order, to ``out`` (atomically);
    returns the entries' span lengths. The manifest and the shard files it reads are checked first
    (:func:`manifests.read.read_verified`; ``rehash=False`` for a caller that has just verified them)."""
    _, df, root = read_verified(manifest_dir, shards_root, rehash=rehash)
    return scatter_tokens(root, df, Path(out), np.dtype(dtype))


def scatter_tokens(root: Path, df: pl.DataFrame, out: Path, dtype: np.dtype) -> np.ndarray:
    """The token stream of the verified entries ``df`` (shards under ``root``) to ``out``; their span lengths."""
    start = df["start"].to_numpy().astype(np.int64)
    end = df["end"].to_numpy().astype(np.int64)
    lengths = end - start
    if (lengths < 0).any():
        i = int(np.argmax(lengths < 0))
        raise ManifestError(f"entry {i} ({df['id'][i]}): span end {end[i]} before its start {start[i]}")
    place = np.zeros(len(df) + 1, dtype=np.int64)
    np.cumsum(lengths, out=place[1:])
    rows = df["row"].to_numpy().astype(np.int64)
    codes = df["file"].cast(pl.Categorical).to_physical().to_numpy()
    by_file = np.argsort(codes, kind="stable")  # entries of one file together, in manifest order
    bounds = np.flatnonzero(np.r_[True, codes[by_file][1:] != codes[by_file][:-1], True]) if len(df) else [0]
    with replacing(out) as tmp, open(tmp, "wb") as f:
        f.truncate(int(place[-1]) * dtype.itemsize)
        for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
            group = by_file[lo:hi]
            rel = df["file"][int(group[0])]
            _write_file(f.fileno(), safe_shard_path(root, rel, "entry file"), df, group, rows, start, end,
                        place, dtype)
    return lengths


def _write_file(fd: int, path: Path, df: pl.DataFrame, group: np.ndarray, rows: np.ndarray, start: np.ndarray,
                end: np.ndarray, place: np.ndarray, dtype: np.dtype) -> None:
    """The spans of the entries ``group`` (all in the shard file ``path``) at their places in ``fd``, reading
    the file's tokens :data:`STREAM_ROWS` rows at a time."""
    pf = pq.ParquetFile(path)
    have_rows = pf.metadata.num_rows
    bad = group[(rows[group] < 0) | (rows[group] >= have_rows)]
    if len(bad):
        i = int(bad[0])
        raise ManifestError(f"entry {i} ({df['id'][i]}): row {rows[i]} is not in {path} ({have_rows} rows)")
    group = group[np.argsort(rows[group], kind="stable")]
    at, lo = 0, 0
    for batch in pf.iter_batches(batch_size=STREAM_ROWS, columns=["tokens"]):
        hi = lo + batch.num_rows
        upto = at + int(np.searchsorted(rows[group[at:]], hi))
        if upto > at:
            lists = batch.column(0)
            offsets = lists.offsets.to_numpy().astype(np.int64)
            values = lists.values.to_numpy(zero_copy_only=False)
            for i in group[at:upto].tolist():
                r = rows[i] - lo
                base, n = offsets[r], offsets[r + 1] - offsets[r]
                if end[i] > n:
                    raise ManifestError(f"entry {i} ({df['id'][i]}): span end {end[i]} beyond the segment's {n} "
                                        "tokens")
                if end[i] > start[i]:
                    span = values[base + start[i]: base + end[i]]
                    os.pwrite(fd, span.astype(dtype, copy=False).tobytes(), int(place[i]) * dtype.itemsize)
        at, lo = upto, hi


def iter_token_arrays(manifest_dir: str | Path, shards_root: str | Path | None = None,
                      tmp_dir: str | Path | None = None) -> Iterator[np.ndarray]:
    """Each entry's token span ``tokens[start:end]`` as uint32, in manifest order.

    The stream is first written to a temporary uint32 file in ``tmp_dir`` (4 bytes per token of disk; default
    the system temp directory), then read back entry by entry: memory stays one batch of a shard file's tokens.
    """
    with tempfile.TemporaryDirectory(prefix="foresight-tokens-", dir=tmp_dir) as tmp:
        path = Path(tmp) / "tokens.u32"
        lengths = write_token_stream(manifest_dir, path, TOKEN_DTYPE, shards_root)
        with open(path, "rb") as f:
            for n in lengths.tolist():
                yield np.fromfile(f, dtype=TOKEN_DTYPE, count=n)

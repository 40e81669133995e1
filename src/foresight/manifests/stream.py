"""A manifest's token stream on bounded memory: written to a flat file one shard file at a time.

Entries interleave shard files in manifest order, so streaming them in order would hold every referenced
file's tokens at once (4 bytes per token of the manifest). Instead each entry's place in the output is known
up front (the running sum of its span lengths): the tokens column of one shard file is read a batch of rows
at a time, every entry that references a row of the batch is written at its place (``pwrite``), and the batch
is dropped. The entries are read a batch at a time and each one's place is kept in the part of its shard
file (:mod:`manifests.scan`), so memory is one batch's tokens (at most one shard file's), one file's part and
8 bytes per entry (the span lengths); the output bytes are those of writing the spans in manifest order.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from foresight.formats.atomic import replacing
from foresight.formats.index import safe_shard_path
from foresight.manifests.read import open_verified
from foresight.manifests.scan import EntryScan
from foresight.manifests.schema import ManifestError

TOKEN_DTYPE = np.dtype("<u4")  # the shards' token ids; the trainer's token file
STREAM_ROWS = 4096  # shard rows whose tokens are held at once (2048-token segments: 32 MB as uint32)


def write_token_stream(manifest_dir: str | Path, out: str | Path, dtype: np.dtype | str = TOKEN_DTYPE,
                       shards_root: str | Path | None = None, *, rehash: bool = True) -> np.ndarray:
    """Write every entry's ``tokens[start:end]`` as ``dtype``, in manifest order, to ``out`` (atomically);
    returns the entries' span lengths. The manifest and the shard files it reads are checked first
    (:func:`manifests.read.open_verified`; ``rehash=False`` for a caller that has just verified them)."""
    _, scan, root = open_verified(manifest_dir, shards_root, rehash=rehash)
    with scan:
        return scatter_tokens(root, scan, Path(out), np.dtype(dtype))


def scatter_tokens(root: Path, scan: EntryScan, out: Path, dtype: np.dtype) -> np.ndarray:
    """The token stream of the checked entries ``scan`` (shards under ``root``) to ``out``, one shard file at a
    time; their span lengths."""
    with replacing(out) as tmp, open(tmp, "wb") as f:
        f.truncate(int(scan.lengths.sum()) * dtype.itemsize)
        for rel in scan.files:
            _write_file(f.fileno(), safe_shard_path(root, rel, "entry file"), scan, scan.part(rel), dtype)
    return scan.lengths


def _write_file(fd: int, path: Path, scan: EntryScan, rec: np.ndarray, dtype: np.dtype) -> None:
    """The spans of the entries ``rec`` (all in the shard file ``path``) at their places in ``fd``, reading
    the file's tokens :data:`STREAM_ROWS` rows at a time."""
    pf = pq.ParquetFile(path)
    have_rows = pf.metadata.num_rows
    bad = np.flatnonzero((rec["row"] < 0) | (rec["row"] >= have_rows))
    if len(bad):
        i = int(rec["entry"][bad[0]])
        raise ManifestError(f"entry {i} ({scan.entry_id(i)}): row {rec['row'][bad[0]]} is not in {path} "
                            f"({have_rows} rows)")
    rec = rec[np.argsort(rec["row"], kind="stable")]
    rows = rec["row"]
    at, lo = 0, 0
    for batch in pf.iter_batches(batch_size=STREAM_ROWS, columns=["tokens"]):
        hi = lo + batch.num_rows
        upto = at + int(np.searchsorted(rows[at:], hi))
        if upto > at:
            lists = batch.column(0)
            offsets = lists.offsets.to_numpy().astype(np.int64)
            values = lists.values.to_numpy(zero_copy_only=False)
            for r, start, end, place, i in rec[["row", "start", "end", "place", "entry"]][at:upto].tolist():
                base, n = offsets[r - lo], offsets[r - lo + 1] - offsets[r - lo]
                if end > n:
                    raise ManifestError(f"entry {i} ({scan.entry_id(i)}): span end {end} beyond the segment's {n} "
                                        "tokens")
                if end > start:
                    span = values[base + start: base + end]
                    os.pwrite(fd, span.astype(dtype, copy=False).tobytes(), int(place) * dtype.itemsize)
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

"""Exporting a manifest's exact token stream for other trainers.

- ``nanogpt``: a dataset directory as nanoGPT's ``data/<name>/prepare.py`` writes and its ``train.py`` reads:
  ``train.bin`` (the manifest's exact token stream), ``val.bin`` (the held-out split of :mod:`formats.splits`
  that the manifest's pools would select, whole segments in shard order) and ``meta.pkl`` (``vocab_size``, which
  train.py reads, plus provenance). Token ids are ``uint16`` when the vocabulary has < 65536 ids (what stock
  train.py memory-maps), else ``uint32``; EOS tokens are those stored in the shards (each whole segment ends
  with one; a cut span stops where the cut is).
- ``megatron``: Megatron-LM's indexed dataset, ``PATH.bin`` + ``PATH.idx`` (``MMIDIDX`` version 1), one
  sequence and one document per entry; dtype ``uint16`` below 65500 ids, else ``int32`` (Megatron's
  ``DType.optimal_dtype``).
- ``jsonl``: one JSON object per entry with its text and provenance (pool, id, doc_id, file, row, token
  span, epoch); ``partial`` is true when the span is a cut (the text is then the whole segment's).
"""

from __future__ import annotations

import itertools
import json
import os
import pickle
import struct
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from foresight.formats.atomic import check_output_dir, check_output_file, replacing
from foresight.formats.errors import InputError
from foresight.formats.index import ShardIndex, safe_shard_path
from foresight.formats.lock import locked
from foresight.formats.manifest import ManifestHeader
from foresight.formats.shardio import ROW_BITS
from foresight.formats.splits import DEFAULT_HELDOUT_FRACTION
from foresight.formats.sql import quote_literal, spilling_connection
from foresight.manifests.read import open_verified
from foresight.manifests.scan import EntryScan
from foresight.manifests.schema import ENTRIES_FILE, MANIFEST_FILE
from foresight.manifests.stream import scatter_tokens, write_token_stream
from foresight.mixtures.select import stable_keys

FORMATS = ("nanogpt", "megatron", "jsonl")
MMIDIDX_HEADER = b"MMIDIDX\x00\x00"
SCAN_MEMORY = "1GB"  # DuckDB's memory for the held-out scan: it streams, so this only caps its buffers
MEGATRON_DTYPE_CODES = {np.dtype(np.uint16): 8, np.dtype(np.int32): 4}


def _vocab_size(head: ManifestHeader) -> int:
    vocab = (head.tokenizer or {}).get("vocab_size")
    if not isinstance(vocab, int) or vocab <= 0:
        raise InputError("manifest.json has no tokenizer.vocab_size; rebuild the manifest with this version")
    return vocab


def _write_stream(arrays: Iterable[np.ndarray], out: Path, dtype: np.dtype, chunk: int = 1 << 22) -> list[int]:
    """Write the token arrays to ``out`` with ``dtype`` (atomically); returns their lengths."""
    lengths: list[int] = []
    buf: list[np.ndarray] = []
    pending = 0
    arrays = iter(arrays)
    first = next(arrays, None)  # a lazy stream checks its shards here, before the output file is opened
    with replacing(out) as tmp, open(tmp, "wb") as f:
        for arr in ([] if first is None else itertools.chain([first], arrays)):
            lengths.append(len(arr))
            buf.append(arr)
            pending += len(arr)
            if pending >= chunk:
                f.write(np.concatenate(buf).astype(dtype).tobytes())
                buf, pending = [], 0
        if buf:
            f.write(np.concatenate(buf).astype(dtype).tobytes())
    return lengths


class IdSet:
    """Membership in a fixed set of distinct ids, built once: their 64-bit order keys sorted, then an exact
    comparison where a key matches (``pc.is_in`` would hash the whole set again for every batch)."""

    def __init__(self, ids: pa.Array) -> None:
        keys = stable_keys(ids, 0)
        order = np.argsort(keys, kind="stable")
        self.keys, self.ids = keys[order], ids.take(pa.array(order)).cast(pa.string())

    def contains(self, ids: pa.Array) -> np.ndarray:
        out = np.zeros(len(ids), dtype=bool)
        if len(self.keys) == 0 or len(ids) == 0:
            return out
        ids = ids.cast(pa.string())
        keys = stable_keys(ids, 0)
        lo, hi = np.searchsorted(self.keys, keys, "left"), np.searchsorted(self.keys, keys, "right")
        one = np.flatnonzero(hi - lo == 1)  # the id itself decides (a key match alone could be a collision)
        same = pc.equal(ids.take(pa.array(one)), self.ids.take(pa.array(lo[one])))
        out[one] = same.to_numpy(zero_copy_only=False)
        for i in np.flatnonzero(hi - lo > 1).tolist():  # distinct ids sharing a key: compare each
            out[i] = ids[i].as_py() in self.ids.slice(int(lo[i]), int(hi[i] - lo[i])).to_pylist()
        return out


def heldout_token_arrays(head: ManifestHeader, root: Path, trained: pa.Array,
                         batch_rows: int = 4096) -> Iterator[np.ndarray]:
    """Token arrays of the held-out segments matching any of the manifest's pools (after its ``exclude``
    expressions other than ``heldout`` itself), in shard (file, row) order: the validation split that goes with
    the manifest's training stream. Segment ids in ``trained`` (the manifest's own, for a spec that did not
    exclude the held-out split) are left out, so validation never repeats training text."""
    from foresight.mixtures import sandbox

    spec = head.spec
    # the validation split reads held-out rows of every shard file, not only the manifest's: check them all
    files = ShardIndex.load(root).verified(root).shard_files(root)
    con = sandbox.connect(files, float(spec.get("heldout_fraction", DEFAULT_HELDOUT_FRACTION)),
                          memory_limit=SCAN_MEMORY)
    try:
        pools = [p.where for p in head.pools.values() if p.where]
        exclude = [e for e in spec.get("exclude", []) if e.strip().lower() != "heldout"]
        for i, expr in enumerate([*pools, *exclude]):
            sandbox.check_expression(con, expr, f"{MANIFEST_FILE} pool/exclude {i}")
        where = ["heldout", "n_tokens > 0", "(" + " OR ".join(f"coalesce(({w}), false)" for w in pools) + ")"]
        where += [f"NOT coalesce(({e}), false)" for e in exclude]
        # no ORDER BY: the view keeps (file, row) order (preserve_insertion_order), checked below; a sort would
        # hold every held-out row's tokens
        reader = con.sql(f"SELECT (_file::BIGINT << {ROW_BITS}) | _row::BIGINT AS pos, id, tokens FROM segments "
                         f"WHERE {' AND '.join(where)}").to_arrow_reader(batch_rows)
        seen, last = IdSet(trained), -1
        for batch in reader:
            pos = batch.column(0).to_numpy()
            if len(pos) and (pos[0] <= last or np.any(pos[1:] <= pos[:-1])):
                raise RuntimeError("the held-out scan is not in (file, row) order")  # a DuckDB change: a bug here
            last = int(pos[-1]) if len(pos) else last
            tokens = pc.filter(batch.column(2), pa.array(~seen.contains(batch.column(1))))
            yield pc.list_flatten(tokens).to_numpy(zero_copy_only=False).astype(np.uint32, copy=False)
    finally:
        con.close()


def export_nanogpt(manifest_dir: Path, out: Path, shards_root: Path | None = None) -> dict[str, Any]:
    if out.suffix in (".bin", ".pkl") or out.is_file():
        raise InputError(f"--format nanogpt writes a dataset directory (train.bin, val.bin, meta.pkl); give --out "
                         f"DIR, not the file {out}")
    head, scan, root = open_verified(manifest_dir, shards_root)
    vocab = _vocab_size(head)
    dtype = np.dtype(np.uint16 if vocab < 65536 else np.uint32)
    out.mkdir(parents=True, exist_ok=True)
    with scan:
        lengths = scatter_tokens(root, scan, out / "train.bin", dtype)  # the entries open_verified checked
    trained = _trained_ids(head, manifest_dir)
    val = _write_stream(heldout_token_arrays(head, root, trained), out / "val.bin", dtype)
    tok = head.tokenizer or {}
    meta = {"vocab_size": vocab, "eos_id": tok.get("eos_id"), "dtype": dtype.name,
            "train_tokens": int(lengths.sum()), "val_tokens": int(sum(val)), "entries": len(lengths),
            "manifest": head.name, "entries_sha256": head.entries_sha256,
            "tokenizer_sha256": head.tokenizer_sha256,
            "heldout_fraction": head.spec.get("heldout_fraction", DEFAULT_HELDOUT_FRACTION)}
    with replacing(out / "meta.pkl") as tmp:
        tmp.write_bytes(pickle.dumps(meta, protocol=4))
    return {"format": "nanogpt", "dir": str(out), "dtype": dtype.name, "tokens": meta["train_tokens"],
            "val_tokens": meta["val_tokens"], "entries": len(lengths)}


def _trained_ids(head: ManifestHeader, manifest_dir: Path) -> pa.Array:
    """The manifest's distinct ids, which validation must leave out; none when the spec excluded the held-out
    split (it cannot have trained on it), so the common case holds no id."""
    if any(str(e).strip().lower() == "heldout" for e in head.spec.get("exclude", [])):
        return pa.array([], pa.string())
    with spilling_connection() as con:
        path = quote_literal(str(manifest_dir / ENTRIES_FILE))
        return con.sql(f"SELECT DISTINCT id FROM read_parquet({path})").to_arrow_table().column(0) \
            .combine_chunks().cast(pa.string())


def _megatron_prefix(out: Path) -> Path:
    return out.with_suffix("") if out.suffix in (".bin", ".idx") else out


def write_mmidx(idx_path: Path, lengths: list[int] | np.ndarray, dtype: np.dtype) -> None:
    """Megatron ``_IndexWriter`` layout: header, version, dtype code, counts, lengths, byte pointers, docs."""
    seq = np.asarray(lengths, dtype=np.int32)
    pointers = np.zeros(len(seq), dtype=np.int64)
    if len(seq) > 1:
        pointers[1:] = np.cumsum(seq[:-1].astype(np.int64)) * dtype.itemsize
    docs = np.arange(len(seq) + 1, dtype=np.int64)  # one document per entry
    with replacing(idx_path) as tmp, open(tmp, "wb") as f:
        f.write(MMIDIDX_HEADER)
        f.write(struct.pack("<Q", 1))
        f.write(struct.pack("<B", MEGATRON_DTYPE_CODES[dtype]))
        f.write(struct.pack("<Q", len(seq)))
        f.write(struct.pack("<Q", len(docs)))
        f.write(seq.tobytes(order="C"))
        f.write(pointers.tobytes(order="C"))
        f.write(docs.tobytes(order="C"))


def export_megatron(manifest_dir: Path, out: Path, shards_root: Path | None = None) -> dict[str, Any]:
    head = ManifestHeader.load(manifest_dir)  # write_token_stream verifies it before writing a byte
    dtype = np.dtype(np.uint16 if _vocab_size(head) < 65500 else np.int32)
    prefix = _megatron_prefix(out)
    lengths = write_token_stream(manifest_dir, prefix.with_name(prefix.name + ".bin"), dtype, shards_root)
    write_mmidx(prefix.with_name(prefix.name + ".idx"), lengths, dtype)
    return {"format": "megatron", "dtype": dtype.name, "tokens": int(lengths.sum()), "entries": len(lengths),
            "prefix": str(prefix)}


JSONL_ROWS = 1 << 14  # referenced rows whose texts are turned into lines at once


def export_jsonl(manifest_dir: Path, out: Path, shards_root: Path | None = None) -> dict[str, Any]:
    """One JSON line per entry, in manifest order, one shard file at a time: a first pass measures each line,
    the second writes it at its place (``pwrite``), so no more than one shard file's texts are held."""
    head, scan, root = open_verified(manifest_dir, shards_root)
    with scan:
        sizes = np.zeros(len(scan.lengths), np.int64)
        for rel in scan.files:
            for i, line in _jsonl_lines(head, scan, root, rel):
                sizes[i] = len(line)
        place = np.zeros(len(sizes) + 1, np.int64)
        np.cumsum(sizes, out=place[1:])
        with replacing(out) as tmp, open(tmp, "wb") as f:
            f.truncate(int(place[-1]))
            for rel in scan.files:
                for i, line in _jsonl_lines(head, scan, root, rel):
                    os.pwrite(f.fileno(), line, int(place[i]))
        return {"format": "jsonl", "entries": len(sizes), "tokens": int(scan.lengths.sum())}


def _jsonl_lines(head: ManifestHeader, scan: EntryScan, root: Path, rel: str) -> Iterator[tuple[int, bytes]]:
    """(entry, its line) for the entries naming shard file ``rel``; the id and doc_id are the row's, which the
    verified entries copy."""
    rec = scan.part(rel)
    path = safe_shard_path(root, rel, "entry file")
    table = pq.read_table(path, columns=["id", "doc_id", "text", "n_tokens", "url", "source"])
    for lo in range(0, len(rec), JSONL_ROWS):
        part = rec[lo:lo + JSONL_ROWS]
        rows = table.take(pa.array(part["row"])).to_pydict()
        fields = part[["entry", "row", "start", "end", "epoch", "pool"]].tolist()
        for k, (entry, row, start, end, epoch, pool) in enumerate(fields):
            line = {"order": entry, "pool": scan.pool_names[pool], "id": rows["id"][k], "doc_id": rows["doc_id"][k],
                    "file": rel, "row": row, "start": start, "end": end, "n_tokens": end - start, "epoch": epoch,
                    "text": rows["text"][k], "source": rows["source"][k], "url": rows["url"][k],
                    "manifest": head.name, "text_sha256": part["sha"][k].tobytes().hex(),
                    "partial": end - start < rows["n_tokens"][k]}
            yield entry, (json.dumps(line, ensure_ascii=False, sort_keys=True) + "\n").encode("utf-8")
        del rows


def export(manifest_dir: str | Path, fmt: str, out: str | Path, shards_root: str | Path | None = None
           ) -> dict[str, Any]:
    """Write the manifest's token stream (or texts) in ``fmt``; returns a summary dict."""
    if fmt not in FORMATS:
        raise InputError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    out = Path(out)
    if fmt == "nanogpt":  # a dataset directory (a file given instead is refused by export_nanogpt)
        if not out.is_file():
            check_output_dir(out)
    else:
        check_output_file(out)
    for path in output_files(fmt, out):
        check_output_file(path)
    out.parent.mkdir(parents=True, exist_ok=True)  # nanogpt: out is the dataset directory itself
    fn = {"nanogpt": export_nanogpt, "megatron": export_megatron, "jsonl": export_jsonl}[fmt]
    with locked(out, f"export {out}"):
        return fn(Path(manifest_dir), out, Path(shards_root) if shards_root else None)


def output_files(fmt: str, out: Path) -> list[Path]:
    """The files an export to ``out`` writes."""
    if fmt == "nanogpt":
        return [out / name for name in ("train.bin", "val.bin", "meta.pkl")]
    if fmt == "megatron":
        prefix = _megatron_prefix(out)
        return [prefix.with_name(prefix.name + ".bin"), prefix.with_name(prefix.name + ".idx")]
    return [out]

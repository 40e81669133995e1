"""``manifests.build``: plan a mixture and write its manifest directory atomically and reproducibly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from foresight.formats import __version__
from foresight.formats.arrowpool import system_pool
from foresight.formats.atomic import check_output_dir, replacing_dir
from foresight.formats.hashing import sha256_file
from foresight.formats.lock import locked
from foresight.formats.manifest import ManifestHeader, ShardsRef
from foresight.manifests.schema import ENTRIES_FILE, ENTRIES_SCHEMA, FORMAT, MANIFEST_FILE, PARQUET_OPTS
from foresight.mixtures.planner import Plan, contiguous, entries_of, plan
from foresight.mixtures.spec import MixtureSpec, load_spec

ORDER_KEY = "splitmix64(fnv1a64('<seed>:' || id))"
TRAINING_ORDER = "sort by splitmix64(key ^ splitmix64(sha256('<seed>:order')[:8] as uint64 LE + epoch))"
# the shard columns an entry copies: read back in the plan's one pass (``plan(read_columns=...)``)
ENTRY_SHARD_COLUMNS = ("id", "doc_id", "text_sha256")


def _labels(indices: np.ndarray, names: list[str] | tuple[str, ...]) -> pa.Array:
    """Strings by index without building Python objects per entry (a take in Arrow)."""
    return pa.array(list(names), pa.string()).take(pa.array(indices))


def entry_shard_rows(p: Plan) -> pa.Table:
    """The shard columns every entry copies, once per distinct selected segment (:attr:`Plan.distinct_rows`;
    read back now for any the plan did not read)."""
    return pa.table({name: contiguous(p.distinct_column(name)) for name in ENTRY_SHARD_COLUMNS})


def entries_table(p: Plan, lo: int = 0, hi: int | None = None, rows: pa.Table | None = None) -> pa.Table:
    """Entries ``lo``–``hi`` (default: all) as ``entries.parquet`` rows; ``rows`` is :func:`entry_shard_rows`."""
    sel, cand = p.selection, p.candidates
    hi = len(sel) if hi is None else hi
    rows = entry_shard_rows(p) if rows is None else rows
    at = p.read_back[1][lo:hi]  # each entry's distinct row
    index = sel.index[lo:hi]
    file_idx, row_idx = cand.locate(index)
    start, end = sel.start[lo:hi], sel.end[lo:hi]
    return pa.table({
        "order": pa.array(np.arange(lo, hi, dtype=np.int64)),
        "pool": _labels(sel.pool[lo:hi], [pp.name for pp in p.pools]),
        "id": entries_of(rows.column("id"), at).cast(pa.string()),
        "doc_id": entries_of(rows.column("doc_id"), at).cast(pa.string()),
        "file": _labels(file_idx, p.shards.relpaths),
        "row": pa.array(row_idx, type=pa.int64()),
        "start": pa.array(start, type=pa.int32()),
        "end": pa.array(end, type=pa.int32()),
        "n_tokens": pa.array(end - start, type=pa.int64()),
        "text_sha256": entries_of(rows.column("text_sha256"), at).cast(pa.binary(32)),
        "epoch": pa.array(sel.epoch[lo:hi], type=pa.int32()),
    }, schema=ENTRIES_SCHEMA)


def write_entries(p: Plan, path: Path) -> int:
    """``entries.parquet``, one row group at a time: the whole table (~100 bytes an entry, 3 GB for 30 M entries)
    is never held. Row groups fall where one ``write_table`` would cut them, so the bytes are the same."""
    group = PARQUET_OPTS["row_group_size"]
    rows, n = entry_shard_rows(p), len(p.selection)
    opts = {k: v for k, v in PARQUET_OPTS.items() if k != "row_group_size"}
    with pq.ParquetWriter(path, ENTRIES_SCHEMA, **opts) as writer:
        for lo in range(0, max(n, 1), group):
            writer.write_table(entries_table(p, lo, min(lo + group, n), rows), row_group_size=group)
    return n


def header(p: Plan, entries_sha256: str, n_entries: int) -> ManifestHeader:
    totals = p.shards.index.totals
    return ManifestHeader(
        format=FORMAT,
        name=p.spec.name,
        spec=p.spec.to_dict(),
        spec_sha256=p.spec.sha256,
        spec_text=p.spec.text,
        shards=ShardsRef(str(p.shards.root), p.shards.index_sha256, totals.rows, totals.tokens),
        tokenizer_sha256=p.shards.tokenizer.get("sha256"),
        tokenizer=p.shards.tokenizer,
        seed=p.spec.seed,
        total_tokens=p.total_tokens,
        pools={pp.name: pp.header() for pp in p.pools},
        pool_names=tuple(pp.name for pp in p.pools),  # spec order (json keys are sorted)
        shares=p.shares,
        entries=n_entries,
        entries_sha256=entries_sha256,
        # no library versions here: the selection is defined by fixed arithmetic, so a rebuild after an upgrade
        # gives the same bytes
        selection={"order_key": ORDER_KEY, "training_order": TRAINING_ORDER},
        created_by=f"foresight {__version__}",
        header_sha256="",
    ).sealed()


def check_manifest_target(out_dir: str | Path, overwrite: bool = False) -> Path:
    """``out_dir`` as a manifest directory to write: new, empty, or (with ``overwrite``) an earlier manifest."""
    out = check_output_dir(out_dir)
    if out.exists() and any(out.iterdir()):
        if not (out / MANIFEST_FILE).is_file() and not (out / ENTRIES_FILE).is_file():
            raise FileExistsError(f"{out} exists and is not a manifest directory; choose a new --out")
        if not overwrite:
            raise FileExistsError(f"{out} already holds a manifest; pass --overwrite to replace it (it is "
                                  "swapped in only once the new one is complete)")
    return out


def write_manifest(p: Plan, out_dir: str | Path, overwrite: bool = False) -> Path:
    """Write the manifest directory under an exclusive lock: ``entries.parquet`` then ``manifest.json`` into a
    new directory beside ``out_dir``, which then replaces it in one rename. A run killed at any point leaves the
    old manifest or the new one, never neither. An existing manifest is replaced only with ``overwrite``."""
    out = check_manifest_target(out_dir, overwrite)
    with locked(out, f"manifest {out}"):
        check_manifest_target(out, overwrite)
        with replacing_dir(out) as tmp, system_pool():
            n = write_entries(p, tmp / ENTRIES_FILE)
            header(p, sha256_file(tmp / ENTRIES_FILE), n).write(tmp)
    return out


def build(spec: MixtureSpec | str | Path, shards_dir: str | Path, out_dir: str | Path,
          threads: int | None = None, normalize: bool = False, total_tokens: int | str | None = None,
          seed: int | None = None, overwrite: bool = False, memory_limit: str | None = None) -> Path:
    """Plan ``spec`` (a MixtureSpec, a spec file or a preset name) over ``shards_dir`` and write the manifest."""
    if not isinstance(spec, MixtureSpec):
        spec = load_spec(spec, normalize=normalize, total_tokens=total_tokens, seed=seed)
    return write_manifest(plan(spec, shards_dir, threads=threads, read_columns=ENTRY_SHARD_COLUMNS,
                               memory_limit=memory_limit), out_dir, overwrite)

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
from foresight.formats.shardio import ROW_BITS, ROW_MASK
from foresight.manifests.schema import ENTRIES_FILE, ENTRIES_SCHEMA, FORMAT, MANIFEST_FILE, PARQUET_OPTS
from foresight.mixtures.planner import Plan, plan
from foresight.mixtures.spec import MixtureSpec, load_spec

ORDER_KEY = "splitmix64(fnv1a64('<seed>:' || id))"
TRAINING_ORDER = "sort by splitmix64(key ^ splitmix64(sha256('<seed>:order')[:8] as uint64 LE + epoch))"


def _labels(indices: np.ndarray, names: list[str] | tuple[str, ...]) -> pa.Array:
    """Strings by index without building Python objects per entry (a take in Arrow)."""
    return pa.array(list(names), pa.string()).take(pa.array(indices))


def entries_table(p: Plan, spilled: pa.Table, first: int) -> pa.Table:
    """Spilled entries (in training order, the first being entry ``first``) as ``entries.parquet`` rows."""
    pos = spilled.column("pos").to_numpy()
    end = spilled.column("end").to_numpy()
    return pa.table({
        "order": pa.array(np.arange(first, first + len(pos), dtype=np.int64)),
        "pool": _labels(spilled.column("pool").to_numpy(), [pp.name for pp in p.pools]),
        "id": spilled.column("id"),
        "doc_id": spilled.column("doc_id"),
        "file": _labels((pos >> ROW_BITS).astype(np.int32), p.shards.relpaths),
        "row": pa.array(pos & ROW_MASK, type=pa.int64()),
        "start": pa.array(np.zeros(len(pos), dtype=np.int32)),
        "end": pa.array(end, type=pa.int32()),
        "n_tokens": pa.array(end, type=pa.int64()),
        "text_sha256": spilled.column("text_sha256"),
        "epoch": spilled.column("epoch"),
    }, schema=ENTRIES_SCHEMA)


def write_entries(p: Plan, path: Path) -> int:
    """``entries.parquet`` from the plan's key ranges, a row group at a time: groups are cut every
    ``row_group_size`` entries whatever the ranges' sizes, so the bytes are those of one ``write_table``."""
    group = PARQUET_OPTS["row_group_size"]
    opts = {k: v for k, v in PARQUET_OPTS.items() if k != "row_group_size"}
    n, held = 0, []
    with pq.ParquetWriter(path, ENTRIES_SCHEMA, **opts) as writer:
        for spilled in p.entries():
            held.append(entries_table(p, spilled, n + sum(t.num_rows for t in held)))
            have = sum(t.num_rows for t in held)
            if have >= group:
                rows = pa.concat_tables(held).combine_chunks()
                full = have - have % group
                writer.write_table(rows.slice(0, full), row_group_size=group)
                held, n = [rows.slice(full)], n + full
        rest = pa.concat_tables(held).combine_chunks() if held else ENTRIES_SCHEMA.empty_table()
        if rest.num_rows or n == 0:  # an empty manifest still has its one (empty) row group
            writer.write_table(rest, row_group_size=group)
        n += rest.num_rows
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
    with plan(spec, shards_dir, threads=threads, memory_limit=memory_limit) as p:
        return write_manifest(p, out_dir, overwrite)

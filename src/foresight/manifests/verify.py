"""``manifests.verify``: hashes, totals, shard files, and (deep) every referenced row's text and token span.

Every failure raises :class:`ManifestError` naming the first bad entry (its ``order``, pool and id) or file.
The checks run a part at a time (a batch of entries, one shard file's rows: :mod:`manifests.scan`), so
verifying holds neither the manifest nor the shards; the first bad entry is the lowest-numbered one either way.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from foresight.formats.index import ShardIndex, ShardIndexError, UnsafePathError, safe_shard_path
from foresight.formats.manifest import ManifestHeader, PoolHeader
from foresight.formats.shardio import _fixed_width, unique_inverse
from foresight.formats.sql import quote_literal, spilling_connection
from foresight.manifests.read import entries_path, load_entries
from foresight.manifests.scan import EntryScan, Findings, describe, sha_records
from foresight.manifests.schema import ManifestError
from foresight.mixtures.select import stable_keys

ROW_PROBLEMS = ("order is not its position in entries.parquet", "pool is not one of the header's pools",
                "token span [start, end) is empty or negative", "n_tokens != end - start", "negative epoch",
                "negative row", "text_sha256 is not 32 bytes")
SHARD_PROBLEMS = ("id differs from the shard row it names (file, row)", "span end is beyond the segment's n_tokens",
                  "text_sha256 differs from the shard row's text_sha256")
DEEP_PROBLEMS = ("sha256 of the shard row's text differs from the entry's text_sha256",
                 "the row's token list length differs from its n_tokens",
                 "the row's token ids differ from its text re-tokenized with the manifest's tokenizer")


def row_findings(df: pl.DataFrame, pools: dict[str, PoolHeader], offset: int, found: Findings) -> None:
    """Per-entry checks that need no shard data, on entries ``offset``… (``df``)."""
    n = len(df)
    start, end = df["start"].to_numpy().astype(np.int64), df["end"].to_numpy().astype(np.int64)
    bad = (df["order"].to_numpy() != np.arange(offset, offset + n),
           df["pool"].is_in(list(pools)).not_().to_numpy(),
           (start < 0) | (end <= start),
           df["n_tokens"].to_numpy() != end - start,
           df["epoch"].to_numpy() < 0,
           df["row"].to_numpy() < 0,
           df["text_sha256"].bin.size().to_numpy() != 32)
    for problem, mask in zip(ROW_PROBLEMS, bad, strict=True):
        found.add(problem, np.flatnonzero(mask) + offset)


def check_rows(df: pl.DataFrame, pools: dict[str, PoolHeader]) -> None:
    found = Findings()
    row_findings(df, pools, 0, found)
    found.raise_first(ROW_PROBLEMS, lambda i: describe(df, i, i))


def add_files(files: dict[str, int], df: pl.DataFrame, offset: int) -> None:
    """Each entry file of ``df`` with the first entry naming it, kept in first-appearance order."""
    firsts = df.with_row_index("_i").group_by("file", maintain_order=True).agg(pl.col("_i").min())
    for rel, i in firsts.iter_rows():
        files.setdefault(rel, int(i) + offset)


def check_paths(root: Path, files: dict[str, int], indexed: set[str] | None,
                describe_entry: Callable[[int], str]) -> None:
    """Entry files: relative, no '..', no link escaping the root, and listed in the shard index."""
    for rel, i in sorted(files.items(), key=lambda kv: kv[1]):
        try:
            safe_shard_path(root, rel, "file")
        except UnsafePathError as e:
            raise ManifestError(f"{describe_entry(i)}: {e}") from e
        if indexed is not None and rel not in indexed:
            raise ManifestError(f"{describe_entry(i)}: file {rel!r} is not in the shard index")


def check_totals(path: Path, head: ManifestHeader) -> None:
    """Per-pool sums and counts against the header, and the pools against total_tokens (DuckDB over the file:
    its distinct counts spill to disk rather than hold every id)."""
    with spilling_connection() as con:
        rows = con.execute(f"SELECT pool, sum(n_tokens)::BIGINT, count(*), count(DISTINCT id), "
                           f"count(DISTINCT doc_id), max(epoch) + 1 FROM read_parquet({quote_literal(str(path))}) "
                           "GROUP BY pool").fetchall()
    per = {r[0]: dict(zip(("tokens", "entries", "segments", "documents", "epochs"), r[1:], strict=True))
           for r in rows}
    for name, p in head.pools.items():
        got = per.get(name, {"tokens": 0, "entries": 0, "segments": 0, "documents": 0, "epochs": 0})
        if not p.achieved_tokens == p.target_tokens == got["tokens"]:
            raise ManifestError(f"pool {name!r}: entries sum to {got['tokens']} tokens, header says target "
                                f"{p.target_tokens} / achieved {p.achieved_tokens}")
        for k in ("segments", "documents", "epochs"):
            if got[k] != getattr(p, k):
                raise ManifestError(f"pool {name!r}: {k} is {got[k]} in entries.parquet, {getattr(p, k)} in "
                                    "manifest.json")
    total = sum(p.target_tokens for p in head.pools.values())
    entries_total = sum(int(r["tokens"] or 0) for r in per.values())
    if total != head.total_tokens or entries_total != total:
        raise ManifestError(f"pools sum to {total} tokens, entries to {entries_total}, "
                            f"header total_tokens is {head.total_tokens}")


def check_entries(manifest_dir: str | Path, head: ManifestHeader, df: pl.DataFrame) -> None:
    check_rows(df, head.pools)
    files: dict[str, int] = {}
    add_files(files, df, 0)
    check_paths(Path(head.shards.root), files, None, lambda i: describe(df, i, i))
    check_totals(entries_path(manifest_dir), head)


def scan_checked(manifest_dir: str | Path, head: ManifestHeader) -> EntryScan:
    """The entries scanned a batch at a time and checked as :func:`check_entries` checks a loaded table."""
    scan = EntryScan(manifest_dir, head)
    try:
        check_paths(Path(head.shards.root), scan.files, None, scan.describe)
        check_totals(scan.path, head)
    except BaseException:
        scan.close()
        raise
    return scan


def check_shards(root: Path, scan: EntryScan, deep: bool, tokenizer: Path | None = None) -> None:
    """Entry ids, hashes and spans against the rows they name (and, deep, the texts and token lists; with
    ``tokenizer``, the token ids themselves, by re-tokenizing each referenced row's text), one shard file at a
    time."""
    found, cuts = Findings(), []
    cols = ["id", "n_tokens", "text_sha256"] + (["text", "tokens"] if deep else [])
    for rel in scan.files:
        rec = scan.part(rel)
        path = safe_shard_path(root, rel, "entry file")
        tbl = _fixed_width(pq.read_table(path, columns=cols), path)
        rows = rec["row"]
        outside = rows >= tbl.num_rows
        if outside.any():
            i = int(np.flatnonzero(outside)[0])
            raise ManifestError(f"{scan.describe(int(rec['entry'][i]))}: row {int(rows[i])} is not in {path} "
                                f"({tbl.num_rows} rows)")
        entry = rec["entry"]
        found.add(SHARD_PROBLEMS[0], entry[stable_keys(tbl.column("id"), 0)[rows] != rec["idkey"]])
        seg = tbl.column("n_tokens").to_numpy().astype(np.int64)[rows]
        found.add(SHARD_PROBLEMS[1], entry[rec["end"] > seg])
        found.add(SHARD_PROBLEMS[2], entry[sha_records(tbl.column("text_sha256"))[rows] != rec["sha"]])
        cut = (rec["end"] - rec["start"]) < seg
        cuts += zip(rec["pool"][cut].tolist(), entry[cut].tolist(), strict=True)
        if deep:
            _deep_findings(found, tbl, rec, seg, tokenizer)
        del tbl
    found.raise_first(SHARD_PROBLEMS, scan.describe)
    by_pool: dict[int, list[int]] = {}
    for pool, i in cuts:
        by_pool.setdefault(pool, []).append(i)
    second = [(sorted(v)[1], p) for p, v in by_pool.items() if len(v) > 1]
    if second:
        i, p = min(second)
        raise ManifestError(f"{scan.describe(i)}: a second cut segment in pool {scan.pool_names[p]!r} "
                            f"(at most one per pool)")
    found.raise_first(DEEP_PROBLEMS, scan.describe)


def _deep_findings(found: Findings, tbl: pa.Table, rec: np.ndarray, seg: np.ndarray, tokenizer: Path | None) -> None:
    """The deep checks of one shard file's referenced rows (each distinct row hashed and re-tokenized once)."""
    uniq, inverse = unique_inverse(rec["row"])
    texts = tbl.column("text").take(pa.array(uniq)).to_pylist()
    real = np.frombuffer(b"".join(hashlib.sha256(t.encode("utf-8")).digest() for t in texts),
                         dtype=np.uint8).reshape(-1, 32).copy().view("V32").ravel()
    found.add(DEEP_PROBLEMS[0], rec["entry"][real[inverse] != rec["sha"]])
    tokens = tbl.column("tokens").take(pa.array(uniq))
    lengths = tokens.combine_chunks().value_lengths().to_numpy().astype(np.int64)[inverse]
    found.add(DEEP_PROBLEMS[1], rec["entry"][lengths != seg])
    if tokenizer is not None:
        found.add(DEEP_PROBLEMS[2], rec["entry"][_retokenized_differs(tokenizer, texts, tokens)[inverse]])


def _retokenized_differs(tokenizer: Path, texts: list[str], tokens: pa.ChunkedArray) -> np.ndarray:
    """Per distinct row: True where the stored token ids are not what the pipeline's tokenize stage gives
    for the row's text (same encoding of special-token literals, EOS appended)."""
    from foresight.formats.tokenizer import encode_plain, load_tokenizer, special_literals

    tok, info = load_tokenizer(tokenizer)
    specials = special_literals(tok)
    stored = tokens.to_pylist()
    bad = np.zeros(len(texts), dtype=bool)
    for lo in range(0, len(texts), 2048):
        encoded = encode_plain(tok, texts[lo: lo + 2048], specials)
        for i, ids in enumerate(encoded, lo):
            bad[i] = stored[i] != [*ids, info.eos_id]
    return bad


def diagnose_edit(manifest_dir: str | Path, head: ManifestHeader) -> None:
    """entries.parquet no longer has the recorded hash: find and name the first entry that is wrong."""
    path = entries_path(manifest_dir)
    base = f"{path}: sha256 differs from entries_sha256 in manifest.json (entries edited after the build)"
    try:
        with EntryScan(manifest_dir, head) as scan:
            root = Path(head.shards.root)
            check_paths(root, scan.files, None, scan.describe)
            check_shards(root, scan, deep=False)
            check_totals(path, head)
    except ManifestError as e:
        raise ManifestError(f"{base}; first bad: {e}") from None
    except Exception as e:  # noqa: BLE001 - the hash mismatch is the error; the diagnosis is best effort
        raise ManifestError(f"{base} ({e})") from None
    raise ManifestError(f"{base}; every entry is still consistent with the shards, so rows were reordered or "
                        f"rewritten; rebuild the manifest")


def verified_shards(head: ManifestHeader, files: dict[str, int], describe_entry: Callable[[int], str],
                    shards_root: str | Path | None) -> Path:
    """The shard root after checking, before any row is read: its index.json is the one the manifest was built
    from (so a rewritten file whose index was re-hashed is refused too), every entry file (``files``: each with
    the first entry naming it) is confined to the root and listed in the index, the tokenizer matches, and each
    referenced file's sha256 matches the index."""
    root = head.shard_root(shards_root)
    try:
        index = ShardIndex.load(root)
    except ShardIndexError as e:
        raise ManifestError(str(e)) from None
    check_paths(root, files, {f.path for f in index.files}, describe_entry)
    if head.tokenizer_sha256 != index.tokenizer_sha256:
        raise ManifestError("tokenizer_sha256 differs from the shard index's tokenizer")
    try:
        index.verified(root, set(files))
    except ShardIndexError as e:
        raise ManifestError(f"{e}; the manifest was built from the files as they were") from None
    return root


def verify(manifest_dir: str | Path, deep: bool = False, shards_root: str | Path | None = None,
           tokenizer: str | Path | None = None) -> None:
    """Raise ManifestError unless the manifest, its entries and every referenced shard file check out.

    ``deep`` re-reads every referenced row: its text's sha256, its token count, and its token ids re-tokenized
    with the manifest's tokenizer (``tokenizer``, else found next to the shards; its sha256 must match)."""
    head = ManifestHeader.load(manifest_dir)
    if not head.verify(manifest_dir):
        diagnose_edit(manifest_dir, head)
    with EntryScan(manifest_dir, head) as scan:
        check_totals(scan.path, head)
        root = verified_shards(head, scan.files, scan.describe, shards_root)
        tok_path = None
        if deep:
            from foresight.formats.tokenizer import find_tokenizer

            try:
                tok_path = find_tokenizer(root, Path(tokenizer) if tokenizer else None, head.tokenizer_sha256)
            except (FileNotFoundError, ValueError) as e:
                raise ManifestError(f"--deep checks token ids by re-tokenizing: {e}") from None
        check_shards(root, scan, deep, tok_path)


__all__ = ["check_entries", "check_rows", "check_shards", "check_totals", "diagnose_edit", "load_entries",
           "scan_checked", "verified_shards", "verify"]

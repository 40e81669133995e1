"""``manifests.verify``: hashes, totals, shard files, and (deep) every referenced row's text and token span.

Every failure raises :class:`ManifestError` naming the first bad entry (its ``order``, pool and id) or file.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from foresight.formats.index import ShardIndex, ShardIndexError, UnsafePathError, safe_shard_path
from foresight.formats.manifest import ManifestHeader, PoolHeader
from foresight.manifests.read import entries_path, load_entries, referenced_rows
from foresight.manifests.schema import ManifestError


def _entry(df: pl.DataFrame, i: int) -> str:
    return f"entry {i} (order {df['order'][i]}, pool {df['pool'][i]!r}, id {df['id'][i]!r})"


def _first(df: pl.DataFrame, bad: np.ndarray, problem: str) -> None:
    hits = np.flatnonzero(bad)
    if len(hits):
        i = int(hits[0])
        more = f"; {len(hits) - 1} more entries have the same problem" if len(hits) > 1 else ""
        raise ManifestError(f"{_entry(df, i)}: {problem}{more}")


def sha_matrix(arr: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """32-byte hashes as an (n, 32) uint8 matrix, for vectorised comparison."""
    fixed = arr.cast(pa.binary(32))
    fixed = fixed.combine_chunks() if isinstance(fixed, pa.ChunkedArray) else fixed
    if fixed.null_count:
        raise ManifestError("text_sha256 has nulls")
    data = np.frombuffer(fixed.buffers()[1], dtype=np.uint8)
    return data[fixed.offset * 32:(fixed.offset + len(fixed)) * 32].reshape(-1, 32)


def check_rows(df: pl.DataFrame, pools: dict[str, PoolHeader]) -> None:
    """Per-entry checks that need no shard data, in entry order."""
    n = len(df)
    start, end = df["start"].to_numpy().astype(np.int64), df["end"].to_numpy().astype(np.int64)
    _first(df, df["order"].to_numpy() != np.arange(n), "order is not its position in entries.parquet")
    _first(df, df["pool"].is_in(list(pools)).not_().to_numpy(), "pool is not one of the header's pools")
    _first(df, (start < 0) | (end <= start), "token span [start, end) is empty or negative")
    _first(df, df["n_tokens"].to_numpy() != end - start, "n_tokens != end - start")
    _first(df, df["epoch"].to_numpy() < 0, "negative epoch")
    _first(df, df["row"].to_numpy() < 0, "negative row")
    _first(df, df["text_sha256"].bin.size().to_numpy() != 32, "text_sha256 is not 32 bytes")


def check_totals(df: pl.DataFrame, head: ManifestHeader) -> None:
    """Per-pool sums and counts against the header, and the pools against total_tokens."""
    pools = head.pools
    per = {r["pool"]: r for r in df.group_by("pool").agg(
        pl.col("n_tokens").cast(pl.Int64).sum().alias("tokens"), pl.len().alias("entries"),
        pl.col("id").n_unique().alias("segments"), pl.col("doc_id").n_unique().alias("documents"),
        (pl.col("epoch").max() + 1).alias("epochs")).to_dicts()}
    for name, p in pools.items():
        got = per.get(name, {"tokens": 0, "entries": 0, "segments": 0, "documents": 0, "epochs": 0})
        if not p.achieved_tokens == p.target_tokens == got["tokens"]:
            raise ManifestError(f"pool {name!r}: entries sum to {got['tokens']} tokens, header says target "
                                f"{p.target_tokens} / achieved {p.achieved_tokens}")
        for k in ("segments", "documents", "epochs"):
            if got[k] != getattr(p, k):
                raise ManifestError(f"pool {name!r}: {k} is {got[k]} in entries.parquet, {getattr(p, k)} in "
                                    "manifest.json")
    total = sum(p.target_tokens for p in pools.values())
    if total != head.total_tokens or int(df["n_tokens"].cast(pl.Int64).sum() or 0) != total:
        raise ManifestError(f"pools sum to {total} tokens, entries to {int(df['n_tokens'].cast(pl.Int64).sum() or 0)}, "
                            f"header total_tokens is {head.total_tokens}")


def check_paths(root: Path, df: pl.DataFrame, indexed: set[str] | None) -> None:
    """Entry files: relative, no '..', no link escaping the root, and listed in the shard index."""
    firsts = df.with_row_index("_i").group_by("file").agg(pl.col("_i").min()).sort("_i")
    for rel, i in firsts.iter_rows():
        try:
            safe_shard_path(root, rel, "file")
        except UnsafePathError as e:
            raise ManifestError(f"{_entry(df, i)}: {e}") from e
        if indexed is not None and rel not in indexed:
            raise ManifestError(f"{_entry(df, i)}: file {rel!r} is not in the shard index")


def check_entries(manifest_dir: str | Path, head: ManifestHeader, df: pl.DataFrame) -> None:
    check_rows(df, head.pools)
    check_paths(Path(head.shards.root), df, None)
    check_totals(df, head)


def check_against_shards(root: Path, df: pl.DataFrame, deep: bool, tokenizer: Path | None = None) -> None:
    """Entry ids, hashes and spans against the rows they name (and, deep, the texts and token lists; with
    ``tokenizer``, the token ids themselves, by re-tokenizing each referenced row's text)."""
    cols = ["id", "n_tokens", "text_sha256"] + (["text", "tokens"] if deep else [])
    tbl, take = referenced_rows(root, df, cols)
    ids = tbl.column("id").combine_chunks().take(pa.array(take)).cast(pa.large_string())
    _first(df, pc.not_equal(ids, df["id"].to_arrow().cast(pa.large_string())).to_numpy(zero_copy_only=False),
           "id differs from the shard row it names (file, row)")
    seg_tokens = tbl.column("n_tokens").to_numpy().astype(np.int64)[take]
    _first(df, df["end"].to_numpy() > seg_tokens, "span end is beyond the segment's n_tokens")
    entry_sha = sha_matrix(df["text_sha256"].to_arrow())
    _first(df, (sha_matrix(tbl.column("text_sha256"))[take] != entry_sha).any(axis=1),
           "text_sha256 differs from the shard row's text_sha256")
    cut = (df["end"].to_numpy() - df["start"].to_numpy()) < seg_tokens
    pools = df["pool"].to_numpy()
    for name in np.unique(pools[cut]):
        hits = np.flatnonzero(cut & (pools == name))
        if len(hits) > 1:
            raise ManifestError(f"{_entry(df, int(hits[1]))}: a second cut segment in pool {name!r} "
                                f"(at most one per pool)")
    if deep:
        texts = tbl.column("text").to_pylist()
        real = np.frombuffer(b"".join(hashlib.sha256(t.encode("utf-8")).digest() for t in texts),
                             dtype=np.uint8).reshape(-1, 32)
        _first(df, (real[take] != entry_sha).any(axis=1),
               "sha256 of the shard row's text differs from the entry's text_sha256")
        lengths = tbl.column("tokens").combine_chunks().value_lengths().to_numpy().astype(np.int64)[take]
        _first(df, lengths != seg_tokens, "the row's token list length differs from its n_tokens")
        if tokenizer is not None:
            _first(df, _retokenized_differs(tokenizer, texts, tbl.column("tokens"))[take],
                   "the row's token ids differ from its text re-tokenized with the manifest's tokenizer")


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
        df = load_entries(manifest_dir)
        check_rows(df, head.pools)
        root = Path(head.shards.root)
        check_paths(root, df, None)
        check_against_shards(root, df, deep=False)
        check_totals(df, head)
    except ManifestError as e:
        raise ManifestError(f"{base}; first bad: {e}") from None
    except Exception as e:  # noqa: BLE001 - the hash mismatch is the error; the diagnosis is best effort
        raise ManifestError(f"{base} ({e})") from None
    raise ManifestError(f"{base}; every entry is still consistent with the shards, so rows were reordered or "
                        f"rewritten; rebuild the manifest")


def verified_shards(head: ManifestHeader, df: pl.DataFrame, shards_root: str | Path | None) -> Path:
    """The shard root after checking, before any row is read: its index.json is the one the manifest was built
    from (so a rewritten file whose index was re-hashed is refused too), every entry file is confined to the root
    and listed in the index, the tokenizer matches, and each referenced file's sha256 matches the index."""
    root = head.shard_root(shards_root)
    try:
        index = ShardIndex.load(root)
    except ShardIndexError as e:
        raise ManifestError(str(e)) from None
    check_paths(root, df, {f.path for f in index.files})
    if head.tokenizer_sha256 != index.tokenizer_sha256:
        raise ManifestError("tokenizer_sha256 differs from the shard index's tokenizer")
    try:
        index.verified(root, set(df["file"].unique().to_list()))
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
    df = load_entries(manifest_dir)
    check_rows(df, head.pools)
    check_totals(df, head)
    root = verified_shards(head, df, shards_root)
    tok_path = None
    if deep:
        from foresight.formats.tokenizer import find_tokenizer

        try:
            tok_path = find_tokenizer(root, Path(tokenizer) if tokenizer else None, head.tokenizer_sha256)
        except (FileNotFoundError, ValueError) as e:
            raise ManifestError(f"--deep checks token ids by re-tokenizing: {e}") from None
    check_against_shards(root, df, deep, tok_path)

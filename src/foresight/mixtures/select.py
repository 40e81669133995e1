"""Deterministic, token-exact selection (docs/mixtures.md) on the columns it needs, never on texts.

A DuckDB aggregate first counts each pool's tokens and segments (:func:`pool_totals`); then one scan yields, per
non-excluded segment: its file and row, ``id``, ``n_tokens``, a bitmask of the pools it matches, the
``reasoning`` / ``visual`` flags and any score column a pool orders by (the held-out split from the stored
``heldout_bucket``: no ``doc_id`` is read), trimmed as it streams to the rows the targets can reach
(:func:`trim_candidates`). Everything after is numpy; ``doc_id`` and ``text_sha256`` are
read back for the selected rows only. The seeded order key of a segment is
``splitmix64(fnv1a64("<seed>:<id>"))`` (see :func:`stable_keys`): a function of the id alone, so file layout,
listing order and thread count do not matter, and a fixed published algorithm, so the same inputs give the same
manifest on any machine and library version.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import duckdb
import numpy as np
import pyarrow as pa

from foresight.formats.arrowpool import release_freed_memory
from foresight.formats.shardio import ROW_BITS, ROW_MASK
from foresight.mixtures.sandbox import FILE_COL, ROW_COL, VIEW

FLAG_COLUMNS = ("reasoning", "visual")


BATCH_ROWS = 1 << 20  # rows per Arrow batch streamed from DuckDB


@dataclass
class Candidates:
    """Non-excluded segments matching at least one pool, in (file, row) order (after a trim, only those the
    selection can reach)."""

    pos: np.ndarray  # int64, position in the shard index's file list << ROW_BITS | row inside that file
    n_tokens: np.ndarray  # int32 (sums and cumsums widen to int64)
    ids: pa.ChunkedArray  # segment ids (string)
    key: np.ndarray  # uint64, seeded order key
    mask: np.ndarray  # unsigned, the narrowest holding a bit per pool; bit i = matches pool i
    pool: np.ndarray  # int16, assigned pool: the first pool in precedence order whose predicate holds
    flags: dict[str, np.ndarray] = field(default_factory=dict)  # reasoning/visual when the shards have labels
    scores: dict[str, np.ndarray] = field(default_factory=dict)  # order columns, float64

    def __len__(self) -> int:
        return len(self.n_tokens)

    def locate(self, idx: np.ndarray | int) -> tuple[np.ndarray, np.ndarray]:
        """(file, row) of the candidates at ``idx``: the file's int32 position in the shard index's file list
        and the int64 row inside it."""
        pos = self.pos[idx]
        return (pos >> ROW_BITS).astype(np.int32), pos & ROW_MASK

    @property
    def file(self) -> np.ndarray:
        return self.locate(slice(None))[0]

    @property
    def row(self) -> np.ndarray:
        return self.locate(slice(None))[1]


def mask_type(n_pools: int) -> tuple[str, type]:
    """The narrowest unsigned (DuckDB, numpy) type with a bit per pool: the scan's largest column otherwise."""
    for sql, dtype in (("UTINYINT", np.uint8), ("USMALLINT", np.uint16), ("UINTEGER", np.uint32)):
        if n_pools <= np.iinfo(dtype).bits:
            return sql, dtype
    return "UBIGINT", np.uint64


def candidate_query(pool_exprs: list[str], exclude: list[str], flags: list[str], scores: list[str],
                    precedence: list[int]) -> str:
    """The scan: per candidate its position, tokens, id, the bitmask of the pools it matches and its pool (the
    first match in ``precedence`` order, computed by DuckDB on its threads rather than by numpy passes)."""
    mtype = mask_type(len(pool_exprs))[0]
    bits = " + ".join(f"(CASE WHEN ({e}) THEN {1 << i} ELSE 0 END)::{mtype}" for i, e in enumerate(pool_exprs))
    first = " ".join(f"WHEN ({pool_exprs[i]}) THEN {i}" for i in precedence)
    where = ["n_tokens > 0"] + [f"NOT coalesce(({e}), false)" for e in exclude]
    extra = "".join(f", {c}" for c in flags + scores)
    inner = (f"SELECT {FILE_COL}, {ROW_COL}, n_tokens, id{extra}, ({bits}) AS _mask, "
             f"(CASE {first} ELSE -1 END)::SMALLINT AS _pool FROM {VIEW} WHERE {' AND '.join(where)}")
    return (f"SELECT (({FILE_COL}::BIGINT << {ROW_BITS}) | {ROW_COL}::BIGINT) AS pos, n_tokens::INTEGER AS n, "
            f"id AS i, _mask AS m, _pool AS p{extra} FROM ({inner}) WHERE _mask <> 0")


@dataclass
class PoolTotals:
    """What a pool holds, counted by DuckDB without handing a row to Python: tokens and segments per pool, and
    the segments matching more than one pool (with the first one's position and pool bitmask)."""

    tokens: list[int]
    segments: list[int]
    overlaps: int
    first_overlap: tuple[int, int] | None  # (pos, mask)


def pool_totals(con: duckdb.DuckDBPyConnection, pool_exprs: list[str], exclude: list[str],
                precedence: list[int]) -> PoolTotals:
    """One aggregate over the scan (DuckDB streams it: memory does not grow with the candidates)."""
    scan = candidate_query(pool_exprs, exclude, [], [], precedence)
    multi = "(m & (m - 1)) <> 0"  # clears the lowest set bit: more than one pool
    rows = con.execute(f"SELECT p, count(*), sum(n)::BIGINT, count(*) FILTER (WHERE {multi}), "
                       f"min(pos) FILTER (WHERE {multi}) FROM ({scan}) GROUP BY p").fetchall()
    k = len(pool_exprs)
    tokens, segments = [0] * k, [0] * k
    for p, n, t, _, _ in rows:
        if 0 <= p < k:
            tokens[p], segments[p] = int(t), int(n)
    overlaps = sum(int(r[3]) for r in rows)
    first = None
    if overlaps:
        pos = min(int(r[4]) for r in rows if r[4] is not None)
        mask = con.execute(f"SELECT m FROM ({scan}) WHERE pos = ?", [pos]).fetchall()[0][0]
        first = (pos, int(mask))
    return PoolTotals(tokens, segments, overlaps, first)


# Candidates held before the first trim to the pools' targets (then at twice what the last trim kept): about
# 40 bytes plus the id per row, so ~300 MB, whatever the corpus size
TRIM_ROWS = 1 << 22

Trim = list[tuple[int, "tuple[str, bool] | None"]]  # per pool: target tokens and score order (None: random)


def fetch_candidates(con: duckdb.DuckDBPyConnection, pool_exprs: list[str], exclude: list[str], seed: int,
                     flags: list[str], scores: list[str], precedence: list[int],
                     trim: Trim | None = None) -> Candidates:
    """Run the scan, streamed: DuckDB hands over Arrow batches as it produces them (no materialised result
    to convert afterwards), numeric columns become numpy, ids stay Arrow. On slow first-touch memory (VMs) the
    bytes a step allocates cost as much as its arithmetic, hence the narrow types and the single copies.

    With ``trim`` (each pool's target and order), rows that can no longer be selected are dropped while the
    scan runs (:func:`trim_candidates`): memory follows the selection, not the corpus, and the rows kept are
    exactly those the selection could take, so the manifest is the same as from every candidate."""
    dtypes = {"pos": np.int64, "n": np.int32, "m": mask_type(len(pool_exprs))[1], "p": np.int16,
              **{c: np.bool_ for c in flags}, **{c: np.float64 for c in scores}}
    held: list[Candidates] = []
    n_held, next_trim, cuts = 0, TRIM_ROWS, {}
    reader = con.sql(candidate_query(pool_exprs, exclude, flags, scores, precedence)).to_arrow_reader(BATCH_ROWS)
    for batch in reader:
        part = _from_batch(batch, dtypes, flags, scores, seed)
        if cuts and trim is not None:  # rows ordered after a pool's last reachable row never enter the buffer
            part = _subset(part, _within_cuts(part, cuts, trim))
        held.append(part)
        n_held += len(part)
        if trim is not None and n_held >= next_trim:
            cand = _drain(held, dtypes)
            cand, cuts = _trim(cand, trim)
            held, n_held = [cand], len(cand)
            release_freed_memory()  # the pre-trim buffer and its copies
            next_trim = max(TRIM_ROWS, 2 * n_held)
    cand = _drain(held, dtypes)
    _canonical_order(cand)
    return trim_candidates(cand, trim) if trim is not None else cand


def _drain(held: list[Candidates], dtypes: dict[str, type]) -> Candidates:
    """The held parts as one Candidates, emptying ``held`` so the parts are freed before the next copy (a trim
    copies again: holding parts, their concatenation and the trimmed copy at once was 3x the buffer)."""
    cand = concat_candidates(held, dtypes)
    held.clear()
    return cand


def _from_batch(batch: pa.RecordBatch, dtypes: dict[str, type], flags: list[str], scores: list[str],
                seed: int) -> Candidates:
    col = {c: np.asarray(batch.column(c).to_numpy(zero_copy_only=False), dtype=dtype) for c, dtype in dtypes.items()}
    i = batch.column("i")
    ids = pa.chunked_array([i if i.type == pa.string() else i.cast(pa.string())], type=pa.string())  # large/view
    return Candidates(pos=col["pos"], n_tokens=col["n"], ids=ids, key=stable_keys(ids, seed), mask=col["m"],
                      pool=col["p"], flags={c: col[c] for c in flags}, scores={c: col[c] for c in scores})


def concat_candidates(parts: list[Candidates], dtypes: dict[str, type]) -> Candidates:
    """One Candidates of ``parts``, in their order (an empty one with the scan's types when there are none)."""
    if len(parts) == 1:
        return parts[0]

    def cat(arrays: list[np.ndarray], dtype: type) -> np.ndarray:
        return np.concatenate(arrays) if arrays else np.zeros(0, dtype)

    flags = [c for c in parts[0].flags] if parts else [c for c, t in dtypes.items() if t is np.bool_]
    scores = [c for c in parts[0].scores] if parts else [c for c, t in dtypes.items() if t is np.float64]
    return Candidates(
        pos=cat([c.pos for c in parts], np.int64), n_tokens=cat([c.n_tokens for c in parts], np.int32),
        ids=pa.chunked_array([ch for c in parts for ch in c.ids.chunks], type=pa.string()),
        key=cat([c.key for c in parts], np.uint64), mask=cat([c.mask for c in parts], dtypes["m"]),
        pool=cat([c.pool for c in parts], np.int16), flags={f: cat([c.flags[f] for c in parts], np.bool_)
                                                             for f in flags},
        scores={f: cat([c.scores[f] for c in parts], np.float64) for f in scores})


def trim_candidates(cand: Candidates, trim: Trim) -> Candidates:
    """``cand`` without the rows no selection can reach: in a pool holding more than its target, every row
    after the shortest prefix of its order (:func:`base_order`) with ``target`` tokens. Rows that come later
    may only push a dropped row further back, so dropping it now never changes what is selected."""
    return _trim(cand, trim)[0]


Cut = tuple[float, int]  # a pool's last reachable row: (order score, negated when descending; NaN = inf), key


def _trim(cand: Candidates, trim: Trim) -> tuple[Candidates, dict[int, Cut]]:
    """:func:`trim_candidates`, and each trimmed pool's cut: its last reachable row's place in the pool order.
    A later row ordered after the cut can never be reached either (the prefix up to the cut already holds the
    target), so the scan drops it on arrival (:func:`_within_cuts`) instead of buffering it."""
    _canonical_order(cand)  # ties in the order are broken by (file, row): keep that order
    keep = np.ones(len(cand), dtype=bool)
    cuts: dict[int, Cut] = {}
    for i, (target, order) in enumerate(trim):
        idx = np.flatnonzero(cand.pool == i)
        have = int(cand.n_tokens[idx].sum(dtype=np.int64))
        if have <= target:
            continue
        ordered = base_order(idx, cand, order, target, have)
        k = int(np.searchsorted(np.cumsum(cand.n_tokens[ordered], dtype=np.int64), target, side="left"))
        keep[idx] = False
        keep[ordered[:k + 1]] = True
        last = ordered[min(k, len(ordered) - 1)]
        cuts[i] = (float(_order_score(cand, order, np.array([last]))[0]) if order else 0.0, int(cand.key[last]))
    return (cand if keep.all() else _subset(cand, keep)), cuts


def _order_score(cand: Candidates, order: tuple[str, bool], idx: np.ndarray) -> np.ndarray:
    """The score :func:`base_order` sorts a score-ordered pool by (ascending; missing scores last)."""
    score = cand.scores[order[0]][idx]
    score = -score if order[1] else score
    return np.where(np.isnan(score), np.inf, score)


def _within_cuts(cand: Candidates, cuts: dict[int, Cut], trim: Trim) -> np.ndarray:
    """Rows not ordered after their pool's cut (ties kept: keeping a row too many never changes the result)."""
    keep = np.ones(len(cand), dtype=bool)
    for i, (score, key) in cuts.items():
        idx = np.flatnonzero(cand.pool == i)
        order = trim[i][1]
        if order is None:
            after = cand.key[idx] > np.uint64(key)
        else:
            s = _order_score(cand, order, idx)
            after = (s > score) | ((s == score) & (cand.key[idx] > np.uint64(key)))
        keep[idx[after]] = False
    return keep


def _subset(cand: Candidates, keep: np.ndarray) -> Candidates:
    """The rows of ``cand`` where ``keep`` holds, in order."""
    if keep.all():
        return cand
    at = np.flatnonzero(keep)
    return Candidates(pos=cand.pos[at], n_tokens=cand.n_tokens[at], ids=cand.ids.filter(pa.array(keep)),
                      key=cand.key[at], mask=cand.mask[at], pool=cand.pool[at],
                      flags={k: v[at] for k, v in cand.flags.items()},
                      scores={k: v[at] for k, v in cand.scores.items()})


def _canonical_order(cand: Candidates) -> None:
    """Put rows in (file, row) order; DuckDB preserves scan order, this only guards against a change there."""
    if len(cand.pos) > 1 and not np.all(cand.pos[1:] > cand.pos[:-1]):
        perm = np.argsort(cand.pos, kind="stable")
        for name in ("pos", "n_tokens", "key", "mask", "pool"):
            setattr(cand, name, getattr(cand, name)[perm])
        cand.ids = cand.ids.take(pa.array(perm))
        cand.flags = {k: v[perm] for k, v in cand.flags.items()}
        cand.scores = {k: v[perm] for k, v in cand.scores.items()}


FNV_OFFSET, FNV_PRIME = np.uint64(0xCBF29CE484222325), np.uint64(0x100000001B3)


def _splitmix64(x: np.ndarray | int) -> np.ndarray:
    """splitmix64's finaliser: spreads FNV's weak low bits over the whole word (arithmetic mod 2**64). Works on
    a copy in place: one scratch array instead of two temporaries per step."""
    x = np.array(x, dtype=np.uint64)
    t = np.empty_like(x)
    with np.errstate(over="ignore"):
        for shift, mult in ((30, 0xBF58476D1CE4E5B9), (27, 0x94D049BB133111EB), (31, None)):
            np.right_shift(x, np.uint64(shift), out=t)
            x ^= t
            if mult is not None:
                x *= np.uint64(mult)
    return x


# ids hashed per block so the per-byte temporaries stay in cache; 64 KB arrays also stay under glibc's mmap
# threshold, so they are reused from the heap instead of being mapped (and page-faulted) again per block
KEY_CHUNK = 1 << 13


def stable_keys(ids: pa.Array | pa.ChunkedArray, seed: int) -> np.ndarray:
    """``splitmix64(fnv1a64(f"{seed}:{id}".encode()))`` for every id, vectorised over byte positions."""
    h0 = FNV_OFFSET
    with np.errstate(over="ignore"):
        for b in f"{seed}:".encode():
            h0 = (h0 ^ np.uint64(b)) * FNV_PRIME
    out = np.empty(len(ids), dtype=np.uint64)
    lo = 0
    for chunk in ids.chunks if isinstance(ids, pa.ChunkedArray) else [ids]:
        if not (pa.types.is_string(chunk.type) or pa.types.is_large_string(chunk.type)):
            chunk = chunk.cast(pa.large_string())
        for at in range(0, len(chunk), KEY_CHUNK):
            block = chunk.slice(at, KEY_CHUNK)
            out[lo:lo + len(block)] = _fnv_block(block, h0)
            lo += len(block)
    return out


def _fnv_block(ids: pa.Array, h0: np.uint64) -> np.ndarray:
    n = len(ids)
    _, offs_buf, data_buf = ids.buffers()
    width = np.int64 if pa.types.is_large_string(ids.type) else np.int32
    offsets = np.frombuffer(offs_buf, dtype=width)[ids.offset:ids.offset + n + 1].astype(np.int64)
    data = np.frombuffer(data_buf, dtype=np.uint8) if data_buf is not None else np.zeros(1, np.uint8)
    lengths = np.diff(offsets)
    # longest first, so the ids still being hashed at byte p are always a prefix
    longest = int(lengths.max())
    if lengths.min() == longest:
        order = np.arange(n)
    elif longest < 1 << 16:  # a 16-bit key sorts by radix, in linear time (ids are short)
        order = np.argsort((longest - lengths).astype(np.uint16), kind="stable")
    else:
        order = np.argsort(-lengths)
    starts, lens = offsets[:-1][order], lengths[order]
    active = np.searchsorted(-lens, -np.arange(int(lens[0])), side="left")  # count with length > p
    h = np.full(n, h0, dtype=np.uint64)
    pos = starts.copy()
    with np.errstate(over="ignore"):
        for k in active:  # in place: no temporaries per byte position
            hk = h[:k]
            hk ^= data[pos[:k]]
            hk *= FNV_PRIME
            pos[:k] += 1
    out = np.empty(n, dtype=np.uint64)
    out[order] = _splitmix64(h)
    return out


def derive_seed(*parts: object) -> int:
    """A 64-bit seed from the spec seed and labels (sha256, so it is the same on every platform)."""
    return int.from_bytes(hashlib.sha256(":".join(map(str, parts)).encode()).digest()[:8], "little")


def _by_key(idx: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """``idx`` sorted by key; equal keys (only duplicate ids can collide in practice) keep (file, row) order."""
    return idx[_argsort_keys(keys)]


def base_order(idx: np.ndarray, cand: Candidates, order: tuple[str, bool] | None, target: int,
               available: int) -> np.ndarray:
    """The pool's rows in seeded order (random), or by score with the seeded key breaking ties; ``available`` is
    the pool's token count.

    A random pool asked for fewer tokens than it holds returns only a prefix long enough for ``target``: the
    rows whose key is below a cut-off (keys are uniform, so the cut-off for a share of the rows is that share
    of 2**64), sorted. That is exactly a prefix of the full order, and all :func:`take_pool` reads then.
    """
    if order is None:
        keys = cand.key[idx]
        if 0 < target < available and len(idx) > 1024:
            share = min(1.0, target / available * 1.1 + 1024 / len(idx))
            if share < 1.0:
                part = np.flatnonzero(keys < np.uint64(min(int(share * 2.0**64), 2**64 - 1)))
                if int(cand.n_tokens[idx[part]].sum()) >= target:
                    return _by_key(idx[part], keys[part])
        return _by_key(idx, keys)
    return idx[np.lexsort((cand.key[idx], _order_score(cand, order, idx)))]


@dataclass
class PoolTake:
    index: np.ndarray  # candidate indices, selection order
    start: np.ndarray  # int32
    end: np.ndarray  # int32
    epoch: np.ndarray  # int32


def salted(keys: np.ndarray, salt: int | np.ndarray, which: np.ndarray | None = None) -> np.ndarray:
    """Fresh pseudo-random keys from the segment keys and a salt, by the same fixed arithmetic (no RNG stream
    whose algorithm could change with a library version). With ``which``, key i takes salt ``salt[which[i]]``:
    each distinct salt is mixed once rather than once per key."""
    mixed = _splitmix64(np.asarray(salt, dtype=np.uint64))
    return _splitmix64(keys ^ (mixed if which is None else mixed[which]))


RADIX_MIN = 1 << 16  # below this many keys numpy's comparison sort is as fast


def _argsort_keys(keys: np.ndarray) -> np.ndarray:
    """Stable argsort of uint64 keys, equal to ``np.argsort(keys, kind="stable")``.

    Keys are pseudo-random, so their top 32 bits nearly always tell them apart: two stable radix passes on
    16-bit digits (numpy sorts 16-bit keys by radix, in linear time) order them by those, then the rare runs
    that share them are re-sorted by (key, position). About twice as fast as a comparison sort at 2 M keys.
    """
    if len(keys) < RADIX_MIN:
        return np.argsort(keys, kind="stable")
    o = np.argsort((keys >> np.uint64(32)).astype(np.uint16), kind="stable")
    o = o[np.argsort((keys[o] >> np.uint64(48)).astype(np.uint16), kind="stable")]
    top = keys[o] >> np.uint64(32)
    same = top[1:] == top[:-1]
    if same.any():
        at = np.flatnonzero(np.r_[same, False] | np.r_[False, same])  # every member of a run
        sub = o[at]
        o[at] = sub[np.lexsort((sub, keys[sub]))]  # runs keep their places: they are ordered by top bits
    return o


def take_pool(ordered: np.ndarray, n_tokens: np.ndarray, keys: np.ndarray, target: int, available: int,
              reshuffle: bool, seed: int, name: str) -> PoolTake:
    """Exactly ``target`` tokens: whole passes over the pool, then a prefix of the next pass with at most one
    segment cut to ``[0, end)``. Random pools get a fresh seeded order each pass (keys salted with the pass);
    score-ordered pools repeat their order. ``ordered`` may be only a prefix of the pool when
    ``target < available``."""
    parts: list[tuple[np.ndarray, np.ndarray, int]] = []
    if target > 0 and available > 0:
        passes, rem = divmod(target, available)
        for epoch in range(passes + (1 if rem else 0)):
            order = ordered
            if reshuffle and epoch > 0:
                order = ordered[_argsort_keys(salted(keys[ordered], derive_seed(seed, name, epoch)))]
            ends = n_tokens[order].copy()
            if epoch == passes:  # the remainder pass
                csum = np.cumsum(ends)
                k = int(np.searchsorted(csum, rem, side="left"))
                order, ends = order[:k + 1], ends[:k + 1]
                ends[k] = rem - (int(csum[k - 1]) if k else 0)
            parts.append((order, ends, epoch))
    if not parts:
        empty = np.zeros(0, dtype=np.int32)
        return PoolTake(np.zeros(0, dtype=np.int64), empty, empty, empty)
    index = np.concatenate([p[0] for p in parts]).astype(np.int64)
    end = np.concatenate([p[1] for p in parts]).astype(np.int32)
    epoch = np.concatenate([np.full(len(p[0]), p[2], dtype=np.int32) for p in parts])
    return PoolTake(index, np.zeros(len(index), dtype=np.int32), end, epoch)


@dataclass
class Selection:
    """All entries in manifest (training) order."""

    index: np.ndarray  # int64 candidate indices
    pool: np.ndarray  # int16
    start: np.ndarray  # int32
    end: np.ndarray  # int32
    epoch: np.ndarray  # int32

    def __len__(self) -> int:
        return len(self.index)


def interleave(takes: list[PoolTake], keys: np.ndarray, seed: int) -> Selection:
    """Concatenate the pools' entries and shuffle them into one seeded training order: entries sorted by their
    segment key salted with (seed, epoch), so a repeated segment lands at a new place in each epoch."""
    pool = np.concatenate([np.full(len(t.index), i, dtype=np.int16) for i, t in enumerate(takes)])
    sel = Selection(np.concatenate([t.index for t in takes]), pool, np.concatenate([t.start for t in takes]),
                    np.concatenate([t.end for t in takes]), np.concatenate([t.epoch for t in takes]))
    epochs = np.arange(int(sel.epoch.max()) + 1 if len(sel) else 0, dtype=np.uint64)
    with np.errstate(over="ignore"):
        salts = np.uint64(derive_seed(seed, "order")) + epochs
    perm = _argsort_keys(salted(keys[sel.index], salts, sel.epoch))
    return Selection(sel.index[perm], sel.pool[perm], sel.start[perm], sel.end[perm], sel.epoch[perm])

"""Deterministic, token-exact selection (docs/mixtures.md) on the columns it needs, never on texts.

One DuckDB scan yields, per non-excluded segment: its file and row, ``id``, ``n_tokens``, a bitmask of the pools
it matches, the ``reasoning`` / ``visual`` flags and any score column a pool orders by (the held-out split from the
stored ``heldout_bucket``: no ``doc_id`` is read). Everything after is numpy; ``doc_id`` and ``text_sha256`` are
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

from mixtures.sandbox import FILE_COL, ROW_COL, VIEW

FLAG_COLUMNS = ("reasoning", "visual")


@dataclass
class Candidates:
    """Non-excluded segments matching at least one pool, in (file, row) order."""

    file: np.ndarray  # int32, position in the shard index's file list
    row: np.ndarray  # int64, row inside that file
    n_tokens: np.ndarray  # int64
    ids: pa.Array  # segment ids (large_string)
    key: np.ndarray  # uint64, seeded order key
    mask: np.ndarray  # uint64, bit i = matches pool i
    pool: np.ndarray  # int16, assigned pool: the first pool in precedence order whose predicate holds
    flags: dict[str, np.ndarray] = field(default_factory=dict)  # reasoning/visual when the shards have labels
    scores: dict[str, np.ndarray] = field(default_factory=dict)  # order columns, float64

    def __len__(self) -> int:
        return len(self.n_tokens)




def candidate_query(pool_exprs: list[str], exclude: list[str], flags: list[str], scores: list[str],
                    precedence: list[int]) -> str:
    """The scan: per candidate its position, tokens, id, the bitmask of the pools it matches and its pool (the
    first match in ``precedence`` order, computed by DuckDB on its threads rather than by numpy passes)."""
    bits = " + ".join(f"(CASE WHEN ({e}) THEN {1 << i} ELSE 0 END)::UBIGINT" for i, e in enumerate(pool_exprs))
    first = " ".join(f"WHEN ({pool_exprs[i]}) THEN {i}" for i in precedence)
    where = ["n_tokens > 0"] + [f"NOT coalesce(({e}), false)" for e in exclude]
    extra = "".join(f", {c}" for c in flags + scores)
    inner = (f"SELECT {FILE_COL}, {ROW_COL}, n_tokens, id{extra}, ({bits}) AS _mask, "
             f"(CASE {first} ELSE -1 END)::SMALLINT AS _pool FROM {VIEW} WHERE {' AND '.join(where)}")
    return (f"SELECT {FILE_COL}::INTEGER AS f, {ROW_COL}::BIGINT AS r, n_tokens::BIGINT AS n, id AS i, "
            f"_mask AS m, _pool AS p{extra} FROM ({inner}) WHERE _mask <> 0")


def fetch_candidates(con: duckdb.DuckDBPyConnection, pool_exprs: list[str], exclude: list[str], seed: int,
                     flags: list[str], scores: list[str], precedence: list[int]) -> Candidates:
    tbl = con.sql(candidate_query(pool_exprs, exclude, flags, scores, precedence)).to_arrow_table()
    ids = tbl.column("i").combine_chunks().cast(pa.large_string())

    def col(name: str, dtype: type) -> np.ndarray:
        return np.ascontiguousarray(tbl.column(name).to_numpy(), dtype=dtype)

    cand = Candidates(file=col("f", np.int32), row=col("r", np.int64), n_tokens=col("n", np.int64), ids=ids,
                      key=stable_keys(ids, seed), mask=col("m", np.uint64), pool=col("p", np.int16),
                      flags={c: col(c, np.bool_) for c in flags},
                      scores={c: tbl.column(c).to_numpy().astype(np.float64) for c in scores})
    _canonical_order(cand)
    return cand


def _canonical_order(cand: Candidates) -> None:
    """Put rows in (file, row) order; DuckDB preserves scan order, this only guards against a change there."""
    pos = cand.file.astype(np.int64) << 40 | cand.row
    if len(pos) > 1 and not np.all(pos[1:] > pos[:-1]):
        perm = np.argsort(pos, kind="stable")
        for name in ("file", "row", "n_tokens", "key", "mask", "pool"):
            setattr(cand, name, getattr(cand, name)[perm])
        cand.ids = cand.ids.take(pa.array(perm))
        cand.flags = {k: v[perm] for k, v in cand.flags.items()}
        cand.scores = {k: v[perm] for k, v in cand.scores.items()}


FNV_OFFSET, FNV_PRIME = np.uint64(0xCBF29CE484222325), np.uint64(0x100000001B3)


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: spreads FNV's weak low bits over the whole word (arithmetic mod 2**64)."""
    with np.errstate(over="ignore"):
        x = x ^ (x >> np.uint64(30))
        x = x * np.uint64(0xBF58476D1CE4E5B9)
        x = x ^ (x >> np.uint64(27))
        x = x * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


KEY_CHUNK = 1 << 16  # ids hashed per block: the per-byte temporaries stay in cache (8x faster at 10 M ids)


def stable_keys(ids: pa.Array, seed: int) -> np.ndarray:
    """``splitmix64(fnv1a64(f"{seed}:{id}".encode()))`` for every id, vectorised over byte positions."""
    h0 = FNV_OFFSET
    with np.errstate(over="ignore"):
        for b in f"{seed}:".encode():
            h0 = (h0 ^ np.uint64(b)) * FNV_PRIME
    out = np.empty(len(ids), dtype=np.uint64)
    for lo in range(0, len(ids), KEY_CHUNK):
        out[lo:lo + KEY_CHUNK] = _fnv_block(ids.slice(lo, KEY_CHUNK), h0)
    return out


def _fnv_block(ids: pa.Array, h0: np.uint64) -> np.ndarray:
    n = len(ids)
    _, offs_buf, data_buf = ids.buffers()
    offsets = np.frombuffer(offs_buf, dtype=np.int64)[ids.offset:ids.offset + n + 1]
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


def first_overlap(mask: np.ndarray) -> int | None:
    """Index of the first row in more than one pool, or None."""
    multi = np.flatnonzero(mask & (mask - np.uint64(1)))
    return int(multi[0]) if len(multi) else None


def derive_seed(*parts: object) -> int:
    """A 64-bit seed from the spec seed and labels (sha256, so it is the same on every platform)."""
    return int.from_bytes(hashlib.sha256(":".join(map(str, parts)).encode()).digest()[:8], "little")


def _by_key(idx: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """``idx`` sorted by key; equal keys (only duplicate ids can collide in practice) keep (file, row) order."""
    return idx[_argsort_keys(keys)]  # quicksort unless keys tie: several times faster than a stable sort


def base_order(idx: np.ndarray, cand: Candidates, order: tuple[str, bool] | None, target: int) -> np.ndarray:
    """The pool's rows in seeded order (random), or by score with the seeded key breaking ties.

    A random pool asked for fewer tokens than it holds returns only a prefix long enough for ``target``
    (partial sort), which is all :func:`take_pool` reads in that case.
    """
    if order is None:
        keys = cand.key[idx]
        sizes = cand.n_tokens[idx]
        available = int(sizes.sum())
        if 0 < target < available and len(idx) > 1024:
            m = min(len(idx), int(target / available * len(idx) * 1.1) + 1024)
            if m < len(idx):
                part = np.argpartition(keys, m - 1)[:m]
                prefix = _by_key(idx[part], keys[part])
                if int(cand.n_tokens[prefix].sum()) >= target:
                    return prefix
        return _by_key(idx, keys)
    score = cand.scores[order[0]][idx]
    score = -score if order[1] else score
    score = np.where(np.isnan(score), np.inf, score)  # missing scores go last either way
    return idx[np.lexsort((cand.key[idx], score))]


@dataclass
class PoolTake:
    index: np.ndarray  # candidate indices, selection order
    start: np.ndarray  # int32
    end: np.ndarray  # int32
    epoch: np.ndarray  # int32


def salted(keys: np.ndarray, salt: int | np.ndarray) -> np.ndarray:
    """Fresh pseudo-random keys from the segment keys and a salt, by the same fixed arithmetic (no RNG stream
    whose algorithm could change with a library version)."""
    return _splitmix64(keys ^ _splitmix64(np.asarray(salt, dtype=np.uint64)))


def _argsort_keys(keys: np.ndarray) -> np.ndarray:
    o = np.argsort(keys)
    ks = keys[o]
    return np.argsort(keys, kind="stable") if len(ks) > 1 and np.any(ks[1:] == ks[:-1]) else o


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
    with np.errstate(over="ignore"):
        salt = np.uint64(derive_seed(seed, "order")) + sel.epoch.astype(np.uint64)
    perm = _argsort_keys(salted(keys[sel.index], salt))
    return Selection(sel.index[perm], sel.pool[perm], sel.start[perm], sel.end[perm], sel.epoch[perm])

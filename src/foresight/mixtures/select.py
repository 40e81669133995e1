"""Selection's building blocks (docs/mixtures.md): the candidate scan's SQL, each pool's totals counted by DuckDB,
and the seeded keys. The seeded order key of a segment is ``splitmix64(fnv1a64("<seed>:<id>"))``
(:func:`stable_keys`): a function of the id alone, so file layout, listing order and thread count do not matter,
and a fixed published algorithm, so the same inputs give the same manifest on any machine and library version.
The selection itself streams: :mod:`mixtures.take`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import duckdb
import numpy as np
import pyarrow as pa

from foresight.formats.shardio import ROW_BITS
from foresight.mixtures.sandbox import FILE_COL, ROW_COL, VIEW

FLAG_COLUMNS = ("reasoning", "visual")


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


def salted(keys: np.ndarray, salt: int | np.ndarray, which: np.ndarray | None = None) -> np.ndarray:
    """Fresh pseudo-random keys from the segment keys and a salt, by the same fixed arithmetic (no RNG stream
    whose algorithm could change with a library version). With ``which``, key i takes salt ``salt[which[i]]``:
    each distinct salt is mixed once rather than once per key."""
    mixed = _splitmix64(np.asarray(salt, dtype=np.uint64))
    return _splitmix64(keys ^ (mixed if which is None else mixed[which]))


RADIX_MIN = 1 << 16  # below this many keys numpy's comparison sort is as fast


def argsort_keys(keys: np.ndarray) -> np.ndarray:
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


def order_salts(seed: int, epochs: int) -> np.ndarray:
    """The training order's salt per epoch: ``sha256("<seed>:order")[:8]`` as a little-endian uint64, plus the
    epoch (wrapping): a repeated segment lands at a new place in each pass."""
    with np.errstate(over="ignore"):
        return np.uint64(derive_seed(seed, "order")) + np.arange(epochs, dtype=np.uint64)

"""Token-exact selection in one streaming scan: memory bounded by a shard file and a key range, never by the
corpus or the manifest (docs/mixtures.md, "Selection").

A pool asked for ``target`` of its ``available`` tokens takes ``passes, rem = divmod(target, available)``: every
segment once per whole pass, then the prefix of the remainder pass's order holding ``rem`` tokens, its last
segment cut. That prefix ends at a cut in the order, bracketed before the scan starts:

- a random pool's order is by a uniform 64-bit key, so its cut lies near ``rem / available`` of the key space.
  Rows below a margin under that point are in, rows above a margin over it are out, and the rows between (a
  band of ~0.1 % of the pool) are held, then sorted at the end to place the cut exactly. Should the cut fall
  outside the band, a histogram of the keys the scan saw brackets it exactly and the scan runs again.
- a score pool's cut score comes from DuckDB (tokens per distinct score, summed in order); the rows tied at it
  are the band.

Entries go to a :class:`spill.Spill` as they are made; the shard columns they copy are read back a file group
at a time, in scan order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import duckdb
import numpy as np
import pyarrow as pa

from foresight.formats.arrowpool import release_freed_memory
from foresight.formats.shardio import ROW_BITS, ROW_MASK, read_rows
from foresight.mixtures.select import derive_seed, order_salts, salted, stable_keys
from foresight.mixtures.shards import ShardSet
from foresight.mixtures.spill import SPILL_SCHEMA, Spill

BATCH_ROWS = 1 << 20  # rows per Arrow batch streamed from DuckDB
FLUSH_ROWS = 1 << 20  # rows with entries held before their shard columns are read back (whole files at a time)
HIST_BITS = 16  # a random pool's key histogram: 65,536 bins of token counts
BAND_MARGIN = 5e-4  # a random pool's band, as a share of the key space, besides 8/sqrt(segments)


@dataclass
class Rule:
    """One pool's take, fixed before the scan, and what the scan counts for it."""

    name: str
    passes: int
    rem: int  # tokens of the remainder pass (0: none)
    order: tuple[str, bool] | None  # (score column, descending), or None: random
    salt: int | None  # a random pool's remainder-pass order: the key salted with this (None: the key itself)
    lo: int | float = 0  # random: band [lo, hi] of the order key; score: the cut score (lo == hi)
    hi: int | float = 0
    in_tokens: int = 0  # remainder-pass tokens of the rows below the band
    hist: np.ndarray | None = None
    entries: int = 0
    tokens: int = 0
    cut: bool = False

    @property
    def epochs(self) -> int:
        return self.passes + (1 if self.rem else 0)

    def reset(self) -> None:
        self.in_tokens = self.entries = self.tokens = 0
        self.cut = False
        self.hist = None if self.order or not self.rem else np.zeros(1 << HIST_BITS, dtype=np.float64)


def order_score_sql(column: str, descending: bool) -> str:
    """DuckDB's twin of :func:`order_score`: ascending, missing scores last, -0.0 as 0.0."""
    signed = f"(-({column}::DOUBLE))" if descending else f"({column}::DOUBLE)"
    return f"(CASE WHEN {column} IS NULL OR isnan({column}::DOUBLE) THEN 'inf'::DOUBLE ELSE {signed} + 0.0 END)"


def order_score(values: np.ndarray, descending: bool) -> np.ndarray:
    """A score pool's order value per row: ascending, missing scores (NaN) last."""
    s = -values if descending else values
    return np.where(np.isnan(s), np.inf, s)


def make_rules(con: duckdb.DuckDBPyConnection, names: list[str], orders: list[tuple[str, bool] | None],
               targets: list[int], available: list[int], segments: list[int], scan_sql: str,
               seed: int) -> list[Rule]:
    rules = []
    for i, (name, order) in enumerate(zip(names, orders, strict=True)):
        passes, rem = divmod(targets[i], available[i]) if targets[i] and available[i] else (0, 0)
        rule = Rule(name, passes, rem, order, derive_seed(seed, name, passes) if passes else None)
        if rem and order is None:
            x, margin = rem / available[i], BAND_MARGIN + 8 / math.sqrt(max(segments[i], 1))
            rule.lo = max(0, math.floor((x - margin) * 2.0**64))
            rule.hi = min(2**64 - 1, math.ceil((x + margin) * 2.0**64))
        elif rem:
            rule.lo = rule.hi = _score_cut(con, scan_sql, i, order, rem)
        rule.reset()
        rules.append(rule)
    return rules


def _score_cut(con: duckdb.DuckDBPyConnection, scan_sql: str, pool: int, order: tuple[str, bool], rem: int) -> float:
    """The score of the row where pool ``pool``'s first ``rem`` tokens in score order end."""
    s = order_score_sql(order[0], order[1])
    cut = con.execute(f"SELECT min(_s) FROM (SELECT _s, sum(_t) OVER (ORDER BY _s ROWS UNBOUNDED PRECEDING) AS _c "
                      f"FROM (SELECT {s} AS _s, sum(n)::BIGINT AS _t FROM ({scan_sql}) WHERE p = {pool} GROUP BY 1))"
                      f" WHERE _c >= {int(rem)}").fetchall()[0][0]
    return float(cut)


def expected_entries(rules: list[Rule], available: list[int], segments: list[int]) -> int:
    return sum(r.passes * s + (math.ceil(r.rem / a * s) if r.rem else 0)
               for r, a, s in zip(rules, available, segments, strict=True))


class Rebracket(Exception):
    """A random pool's cut fell outside its band; the rules now hold exact bands: scan again."""


@dataclass
class Rows:
    """Rows of the scan that make an entry or sit in a band, with what their entries need."""

    cols: dict[str, np.ndarray]  # pos, n, key, pool, score, in_rem (below the band), band
    ids: pa.Array
    flags: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.cols["pos"])

    def subset(self, at: np.ndarray | slice) -> Rows:
        ids = self.ids[at] if isinstance(at, slice) else self.ids.take(pa.array(at))
        return Rows({k: v[at] for k, v in self.cols.items()}, ids, {k: v[at] for k, v in self.flags.items()})


def concat_rows(parts: list[Rows]) -> Rows:
    first = parts[0]
    return Rows({k: np.concatenate([p.cols[k] for p in parts]) for k in first.cols},
                pa.concat_arrays([p.ids for p in parts]),
                {k: np.concatenate([p.flags[k] for p in parts]) for k in first.flags})


class Selector:
    """The scan's consumer: classifies rows by the rules, reads back and spills their entries."""

    def __init__(self, rules: list[Rule], shards: ShardSet, spill: Spill, seed: int, flags: list[str]) -> None:
        self.rules, self.shards, self.spill, self.seed, self.flags = rules, shards, spill, seed, flags
        self.salts = order_salts(seed, max((r.epochs for r in rules), default=0))
        self.pending: list[Rows] = []
        self.n_pending = 0
        self.band: dict[int, list[tuple[Rows, pa.Table]]] = {}  # per pool: band rows, their read-back columns
        self.shares = dict.fromkeys(flags, 0)
        self.last_pos = -1

    def feed(self, batch: pa.RecordBatch) -> None:
        pos = np.asarray(batch.column("pos").to_numpy(zero_copy_only=False), dtype=np.int64)
        if len(pos) == 0:
            return
        if pos[0] <= self.last_pos or np.any(pos[1:] <= pos[:-1]):
            raise RuntimeError("the candidate scan is not in (file, row) order")  # a DuckDB change: a bug here
        self.last_pos = int(pos[-1])
        ids = batch.column("i")
        ids = ids if ids.type == pa.string() else ids.cast(pa.string())
        key = stable_keys(ids, self.seed)
        n = np.asarray(batch.column("n").to_numpy(zero_copy_only=False), dtype=np.int32)
        pool = np.asarray(batch.column("p").to_numpy(zero_copy_only=False), dtype=np.int16)
        score = np.zeros(len(pos), dtype=np.float64)
        in_rem, band, keep = (np.zeros(len(pos), dtype=bool) for _ in range(3))
        for i, r in enumerate(self.rules):
            idx = np.flatnonzero(pool == i)
            if len(idx) == 0 or not r.epochs:
                continue
            if r.order:
                raw = np.asarray(batch.column(r.order[0]).to_numpy(zero_copy_only=False), dtype=np.float64)
                score[idx] = order_score(raw[idx], r.order[1])
            keep[idx] = r.passes > 0
            if r.rem:
                below, tied = self._classify(r, idx, key, score, n)
                r.in_tokens += int(n[idx[below]].sum(dtype=np.int64))
                in_rem[idx[below]] = True
                band[idx[tied]] = True
                keep[idx[below | tied]] = True
        at = np.flatnonzero(keep)
        if len(at):
            cols = {"pos": pos, "n": n, "key": key, "pool": pool, "score": score, "in_rem": in_rem, "band": band}
            flags = {f: np.asarray(batch.column(f).to_numpy(zero_copy_only=False), dtype=bool)[at]
                     for f in self.flags}
            self.pending.append(Rows({k: v[at] for k, v in cols.items()}, ids.take(pa.array(at)), flags))
            self.n_pending += len(at)
        if self.n_pending >= FLUSH_ROWS:  # rows of files before the batch's last file are complete
            self.flush((int(pos[-1]) >> ROW_BITS) << ROW_BITS)

    def _classify(self, r: Rule, idx: np.ndarray, key: np.ndarray, score: np.ndarray,
                  n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Rows of ``idx`` below ``r``'s band and in it (remainder pass)."""
        if r.order:
            s = score[idx]
            return s < r.lo, s == r.lo
        v = remainder_key(r, key[idx])
        r.hist += np.bincount((v >> np.uint64(64 - HIST_BITS)).astype(np.int64), weights=n[idx],
                              minlength=1 << HIST_BITS)
        lo, hi = np.uint64(r.lo), np.uint64(r.hi)
        return v < lo, (v >= lo) & (v <= hi)

    def flush(self, before: int | None = None) -> None:
        """Read back and emit the pending rows at positions below ``before`` (all: None)."""
        if not self.pending:
            return
        rows = concat_rows(self.pending)
        cut = len(rows) if before is None else int(np.searchsorted(rows.cols["pos"], before))
        self.pending = [rows.subset(slice(cut, None))] if cut < len(rows) else []
        self.n_pending = len(rows) - cut
        if cut == 0:
            return
        rows = rows.subset(slice(0, cut))
        pos = rows.cols["pos"]
        back = read_rows(self.shards.root, self.shards.relpaths, (pos >> ROW_BITS).astype(np.int32),
                         pos & ROW_MASK, ["doc_id", "text_sha256"])
        release_freed_memory()
        back = back.append_column("dochash", pa.array(stable_keys(back.column("doc_id"), 0)))
        in_band = np.flatnonzero(rows.cols["band"])
        for i in np.unique(rows.cols["pool"][in_band]):
            at = in_band[rows.cols["pool"][in_band] == i]
            self.band.setdefault(int(i), []).append((rows.subset(at), back.take(pa.array(at))))
        for i, r in enumerate(self.rules):
            mine = np.flatnonzero(rows.cols["pool"] == i)
            for e in range(r.passes):
                self._emit(rows, back, mine, i, e, rows.cols["n"][mine])
            if r.rem:
                below = mine[rows.cols["in_rem"][mine]]
                self._emit(rows, back, below, i, r.passes, rows.cols["n"][below])

    def _emit(self, rows: Rows, back: pa.Table, at: np.ndarray, pool: int, epoch: int, end: np.ndarray) -> None:
        if len(at) == 0:
            return
        r = self.rules[pool]
        r.entries += len(at)
        r.tokens += int(end.sum(dtype=np.int64))
        r.cut |= bool(np.any(end < rows.cols["n"][at]))
        for f in self.flags:
            self.shares[f] += int(end[rows.flags[f][at]].sum(dtype=np.int64))
        take = pa.array(at)
        okey = salted(rows.cols["key"][at], self.salts[epoch])
        self.spill.write(pa.table({
            "okey": okey, "pool": np.full(len(at), pool, np.int16), "epoch": np.full(len(at), epoch, np.int32),
            "score": rows.cols["score"][at], "pos": rows.cols["pos"][at], "end": end.astype(np.int32),
            "id": rows.ids.take(take), "doc_id": back.column("doc_id").take(take),
            "text_sha256": back.column("text_sha256").take(take), "dochash": back.column("dochash").take(take),
        }, schema=SPILL_SCHEMA))

    def finish(self) -> None:
        """Emit what is pending, then place each remainder cut inside its band (:class:`Rebracket` if outside)."""
        self.flush()
        wrong = [r for i, r in enumerate(self.rules) if r.rem and not self._cut_in_band(i, r)]
        if wrong:
            for r in wrong:
                if r.order:  # the score cut is exact: a miss is a bug, not bad luck
                    raise RuntimeError(f"pool {r.name!r}: the score cut {r.lo} does not bracket {r.rem} tokens")
                rebracket(r)
            raise Rebracket(", ".join(r.name for r in wrong))
        for i, r in enumerate(self.rules):
            if r.rem:
                self._take_band(i, r)

    def _band_of(self, pool: int) -> tuple[Rows, pa.Table] | None:
        parts = self.band.get(pool)
        if not parts:
            return None
        return concat_rows([p[0] for p in parts]), pa.concat_tables([p[1] for p in parts]).combine_chunks()

    def _band_order(self, r: Rule, rows: Rows) -> np.ndarray:
        c = rows.cols
        if r.order:
            return np.lexsort((c["pos"], c["key"], c["score"]))
        return np.lexsort((c["pos"], remainder_key(r, c["key"])))

    def _cut_in_band(self, pool: int, r: Rule) -> bool:
        band_tokens = sum(int(rows.cols["n"].sum(dtype=np.int64)) for rows, _ in self.band.get(pool, []))
        return r.in_tokens < r.rem <= r.in_tokens + band_tokens

    def _take_band(self, pool: int, r: Rule) -> None:
        rows, back = self._band_of(pool)  # type: ignore[misc]  # present: _cut_in_band held
        order = self._band_order(r, rows)
        csum = r.in_tokens + np.cumsum(rows.cols["n"][order], dtype=np.int64)
        k = int(np.searchsorted(csum, r.rem, side="left"))
        at = order[:k + 1]
        end = rows.cols["n"][at].astype(np.int64)
        end[k] = r.rem - (int(csum[k - 1]) if k else r.in_tokens)
        self._emit(rows, back, at, pool, r.passes, end)  # in any order: the key-range sort places them


def remainder_key(r: Rule, key: np.ndarray) -> np.ndarray:
    """A random pool's order in its remainder pass: the segment key, salted after a whole pass."""
    return key if r.salt is None else salted(key, r.salt)


def rebracket(r: Rule) -> None:
    """Set ``r``'s band to the histogram bin where its remainder tokens run out: exact on the next scan."""
    csum = np.cumsum(r.hist)
    b = int(np.searchsorted(csum, r.rem, side="left"))
    shift = 64 - HIST_BITS
    r.lo, r.hi = b << shift, ((b + 1) << shift) - 1


def run_selection(con: duckdb.DuckDBPyConnection, scan_sql: str, rules: list[Rule], shards: ShardSet,
                  seed: int, flags: list[str], bits: int) -> tuple[Spill, dict[str, int]]:
    """Scan once (twice if a band missed), spilling every entry: the spill and the flag tokens (shares)."""
    for _ in range(2):
        spill = Spill(bits)
        try:
            sel = Selector(rules, shards, spill, seed, flags)
            for batch in con.sql(scan_sql).to_arrow_reader(BATCH_ROWS):
                sel.feed(batch)
            sel.finish()
            return spill, sel.shares
        except Rebracket:
            spill.close()
            for r in rules:
                r.reset()  # the bands rebracket() set stay
        except BaseException:
            spill.close()
            raise
    raise RuntimeError("a rebracketed band missed its cut")  # exact after one rebracket: a bug if reached


__all__ = ["Rule", "expected_entries", "make_rules", "run_selection"]

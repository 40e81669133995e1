"""``mixtures.plan``: compile a spec against a shard directory, solve the targets and select the entries."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from foresight.formats.arrowpool import system_pool
from foresight.formats.errors import InputError
from foresight.formats.manifest import PoolHeader
from foresight.formats.shardio import ROW_BITS, ROW_MASK, read_rows
from foresight.mixtures import sandbox
from foresight.mixtures.select import (
    FLAG_COLUMNS,
    Candidates,
    PoolTotals,
    Selection,
    base_order,
    fetch_candidates,
    interleave,
    pool_totals,
    stable_keys,
    take_pool,
)
from foresight.mixtures.shards import ShardSet, open_shards
from foresight.mixtures.solve import apportion, check_feasible, max_total
from foresight.mixtures.sources import resolve_source, source_predicate
from foresight.mixtures.spec import MixtureSpec, load_spec

NUMERIC_TYPES = ("FLOAT", "DOUBLE", "REAL", "TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT",
                 "USMALLINT", "UINTEGER", "UBIGINT", "DECIMAL")


class OverlapError(InputError):
    """A segment matches two pools and the spec gives no precedence."""


@dataclass
class PoolPlan:
    name: str
    where: str  # the compiled SQL predicate
    weight: float
    max_repetition: float
    order: str
    available_tokens: int
    available_segments: int
    target_tokens: int
    achieved_tokens: int = 0
    entries: int = 0
    segments: int = 0
    documents: int = 0
    epochs: int = 0
    cut: bool = False

    def header(self) -> PoolHeader:
        return PoolHeader(self.where, self.weight, self.target_tokens, self.achieved_tokens, self.segments,
                          self.documents, self.epochs, self.cut, self.entries, self.order, self.max_repetition,
                          self.available_tokens, self.available_segments)


@dataclass
class Plan:
    spec: MixtureSpec
    shards: ShardSet
    total_tokens: int
    pools: list[PoolPlan]
    shares: dict[str, float | None]
    candidates: Candidates  # those the selection could reach (select.trim_candidates), not every candidate
    selection: Selection
    # shard columns read back (``read_columns``) once per distinct selected segment, in (file, row) order: an
    # entry's are at its ``read_back`` position (a repeated segment is read once; no copy in entry order is held)
    distinct_rows: pa.Table
    # the selected candidates, distinct and in (file, row) order, and each entry's position among them
    read_back: tuple[np.ndarray, np.ndarray]
    timings: dict[str, float] = field(default_factory=dict)

    def distinct_column(self, name: str) -> pa.ChunkedArray:
        """Shard column ``name`` of the distinct selected segments (read back now unless the plan already
        read it)."""
        rows = self.distinct_rows
        if name not in rows.column_names:
            rows = _distinct_columns(self.shards, self.candidates, self.read_back[0], [name])
        return rows.column(name)

    def entry_column(self, name: str, lo: int = 0, hi: int | None = None) -> pa.Array:
        """Shard column ``name`` of entries ``lo``–``hi`` (default: all), in selection order."""
        return entries_of(self.distinct_column(name), self.read_back[1][lo:hi])


def compile_pools(con: Any, spec: MixtureSpec, shards: ShardSet) -> list[str]:
    """Each pool's SQL predicate (sources resolved through the alias table), checked in the sandbox."""
    present = shards.sources()
    exprs = []
    for p in spec.pools:
        parts = []
        if p.source is not None:
            parts.append(source_predicate(resolve_source(p.source, present, p.name)))
        if p.where is not None:
            sandbox.check_expression(con, p.where, f"pool {p.name!r}")
            parts.append(f"({p.where})")
        exprs.append(" AND ".join(parts))
    for i, e in enumerate(spec.exclude):
        sandbox.check_expression(con, e, f"exclude[{i}]")
    cols = sandbox.columns(con)
    for p in spec.pools:
        oc = p.order_column()
        if oc and not cols.get(oc[0], "").upper().startswith(NUMERIC_TYPES):
            have = ", ".join(c for c, t in cols.items() if t.upper().startswith(NUMERIC_TYPES) and c[0] != "_")
            raise sandbox.ExpressionError(f"pool {p.name!r}: order column {oc[0]!r} is not a numeric segment "
                                          f"column (numeric columns: {have})")
    return exprs


def _precedence(spec: MixtureSpec) -> list[int]:
    """Pool indices in the order a segment matching several pools is given to them (spec order without
    ``precedence``, where such a segment is refused: :func:`_check_overlap`)."""
    names = [p.name for p in spec.pools]
    return [names.index(n) for n in spec.precedence] if spec.precedence else list(range(len(names)))


def _check_overlap(spec: MixtureSpec, totals: PoolTotals, con: Any, shards: ShardSet) -> None:
    if spec.precedence or totals.first_overlap is None:
        return
    names = [p.name for p in spec.pools]
    pos, bits = totals.first_overlap
    both = [names[i] for i in range(len(names)) if bits >> i & 1]
    file, row = pos >> ROW_BITS, pos & ROW_MASK
    sid = con.execute(f"SELECT id FROM {sandbox.VIEW} WHERE {sandbox.FILE_COL} = ? AND {sandbox.ROW_COL} = ?",
                      [file, row]).fetchall()[0][0]
    raise OverlapError(f"pools {both} overlap: segment {sid!r} ({shards.relpaths[file]} row "
                       f"{row}) matches all of them ({totals.overlaps} segments match more than one pool); "
                       f"make the where clauses disjoint or add precedence = {names} to the spec")


def plan(spec: MixtureSpec | str | Path, shards_dir: str | Path, threads: int | None = None,
         verify: bool = True, read_columns: tuple[str, ...] = ("doc_id",), memory_limit: str | None = None) -> Plan:
    """Plan (and select) a mixture: raises SpecError/ExpressionError/OverlapError/InfeasibleError on bad input.

    ``verify`` re-hashes every shard file against ``index.json`` first (refusing, with the file named, if one
    changed). ``read_columns`` are read back for the selected rows in one pass (``doc_id`` always: the header
    counts documents); a manifest writer asks for what its entries need. ``memory_limit`` bounds DuckDB's scan
    (default :func:`formats.sql.default_memory_limit`); Python holds the rows the selection can reach.
    """
    with system_pool():
        return _plan(spec, shards_dir, threads, verify, ("doc_id", *(c for c in read_columns if c != "doc_id")),
                     memory_limit)


def _plan(spec: MixtureSpec | str | Path, shards_dir: str | Path, threads: int | None, verify: bool,
          read_columns: tuple[str, ...], memory_limit: str | None = None) -> Plan:
    t0 = time.perf_counter()
    spec = spec if isinstance(spec, MixtureSpec) else load_spec(spec)
    shards = open_shards(shards_dir, verify=verify)
    t1 = time.perf_counter()
    scan = _scan(spec, shards, threads, memory_limit)
    t2 = time.perf_counter()
    exprs, cand, total, targets = scan.exprs, scan.cand, scan.total, scan.targets
    by_pool = _split_by_pool(cand.pool, len(spec.pools))
    avail, avail_segs = scan.totals.tokens, scan.totals.segments  # of every candidate, not only those kept
    weights = spec.weights()
    takes = []
    for i, p in enumerate(spec.pools):
        ordered = base_order(by_pool[i], cand, p.order_column(), targets[i], avail[i])
        takes.append(take_pool(ordered, cand.n_tokens, cand.key, targets[i], avail[i],
                               p.order == "random", spec.seed, p.name))
    selection = interleave(takes, cand.key, spec.seed)
    t3 = time.perf_counter()
    read_back = _read_back(cand, selection)
    distinct_rows = _distinct_columns(shards, cand, read_back[0], list(read_columns))
    # a 64-bit hash per entry only to count distinct documents (Arrow's dictionary encoding is ~15x slower)
    doc_keys = stable_keys(distinct_rows.column("doc_id"), 0)[read_back[1]]
    pools = [PoolPlan(p.name, exprs[i], float(weights[i]), float(p.max_repetition), p.order, avail[i],
                      avail_segs[i], targets[i]) for i, p in enumerate(spec.pools)]
    _fill_stats(pools, takes, cand, selection.pool, doc_keys)
    shares = _shares(selection, cand, total)
    return Plan(spec, shards, total, pools, shares, cand, selection, distinct_rows, read_back,
                {"verify_s": t1 - t0, "scan_s": t2 - t1, "select_s": t3 - t2, "read_back_s": time.perf_counter() - t3})


def _read_back(cand: Candidates, sel: Selection) -> tuple[np.ndarray, np.ndarray]:
    """Distinct selected candidates and each entry's position among them. Candidates are in (file, row) order,
    so the used ones in candidate order are distinct and sorted: a mask and a scatter, no sort."""
    used = np.zeros(len(cand), dtype=bool)
    used[sel.index] = True
    uniq = np.flatnonzero(used)
    # only the used slots are written and read; int32 halves the table (fresh pages cost on VMs)
    rank = np.empty(len(cand), dtype=np.int32 if len(uniq) < 2**31 else np.int64)
    rank[uniq] = np.arange(len(uniq), dtype=rank.dtype)
    return uniq, rank[sel.index]


def _distinct_columns(shards: ShardSet, cand: Candidates, uniq: np.ndarray, columns: list[str]) -> pa.Table:
    """Shard ``columns`` of the distinct selected rows ``uniq`` (ascending candidate indices), in that order.
    ``id`` comes from the scan, which already holds every candidate's."""
    from_files = [c for c in columns if c != "id"]
    rows = read_rows(shards.root, shards.relpaths, *cand.locate(uniq), from_files) if from_files else None
    if "id" in columns:
        ids = _take_ascending(cand.ids, uniq)
        rows = pa.table({"id": ids}) if rows is None else rows.append_column("id", ids)
    # one contiguous array per column (read_rows gives a chunk per file): entries are then taken from it a
    # slice at a time, and a take on a chunked array may join its chunks again on every call
    return pa.table({c: contiguous(rows.column(c)) for c in columns})


def contiguous(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    """``column`` as one array, without a copy when it already is one chunk (combine_chunks always copies)."""
    if isinstance(column, pa.Array):
        return column
    return column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()


def entries_of(column: pa.ChunkedArray | pa.Array, positions: np.ndarray) -> pa.Array:
    """``column[positions]``: a distinct-row column in entry order (a slice of entries at a time)."""
    return contiguous(column).take(pa.array(positions))


def _take_ascending(chunked: pa.ChunkedArray, idx: np.ndarray) -> pa.Array:
    """``chunked[idx]`` for ascending ``idx``, chunk by chunk: a take on a chunked array would first join its
    chunks (every candidate's id) into one array."""
    bounds = np.cumsum([0] + [len(c) for c in chunked.chunks])
    cuts = np.searchsorted(idx, bounds)
    parts = [c.take(pa.array(idx[lo:hi] - b)) for c, b, lo, hi in
             zip(chunked.chunks, bounds[:-1], cuts[:-1], cuts[1:], strict=True) if hi > lo]
    return pa.concat_arrays(parts) if parts else pa.array([], chunked.type)


@dataclass
class Scan:
    exprs: list[str]  # each pool's compiled predicate
    totals: PoolTotals
    total: int  # the mixture's tokens
    targets: list[int]  # per pool
    cand: Candidates  # the candidates the selection can reach (fetch_candidates' trim)


def _scan(spec: MixtureSpec, shards: ShardSet, threads: int | None, memory_limit: str | None = None) -> Scan:
    """Two passes over the shards: DuckDB counts what each pool holds (so the targets are known and checked
    before any row reaches Python), then the candidates stream in, trimmed to those the targets can reach."""
    con = sandbox.connect(shards.files, spec.heldout_fraction, threads, memory_limit)
    try:
        exprs, totals = _totals(con, spec, shards)
        names, weights = [p.name for p in spec.pools], spec.weights()
        reps = [p.max_repetition for p in spec.pools]
        total = spec.total_tokens
        if total is None:
            total = max_total(weights, names, totals.tokens, reps, spec.seed)
        targets = apportion(weights, names, total, spec.seed)
        check_feasible(names, targets, totals.tokens, reps, totals.segments)
        cols = sandbox.columns(con)
        flags = [c for c in FLAG_COLUMNS if c in cols]
        scores = sorted({oc[0] for p in spec.pools if (oc := p.order_column())})
        trim = [(t, p.order_column()) for t, p in zip(targets, spec.pools, strict=True)]
        cand = fetch_candidates(con, exprs, list(spec.exclude), spec.seed, flags, scores, _precedence(spec), trim)
    finally:
        con.close()
    return Scan(exprs, totals, total, targets, cand)


def _totals(con: Any, spec: MixtureSpec, shards: ShardSet) -> tuple[list[str], PoolTotals]:
    exprs = compile_pools(con, spec, shards)
    totals = pool_totals(con, exprs, list(spec.exclude), _precedence(spec))
    _check_overlap(spec, totals, con, shards)
    return exprs, totals


def available_tokens(spec: MixtureSpec, shards_dir: str | Path, threads: int | None = None) -> dict[str, int]:
    """Tokens each pool holds on the shards (after ``exclude`` and precedence), without selecting anything."""
    shards = open_shards(shards_dir, verify=True)
    con = sandbox.connect(shards.files, spec.heldout_fraction, threads)
    try:
        _, totals = _totals(con, spec, shards)
    finally:
        con.close()
    return {p.name: a for p, a in zip(spec.pools, totals.tokens, strict=True)}


def _split_by_pool(pool: np.ndarray, k: int) -> list[np.ndarray]:
    """Candidate indices of each pool, ascending (one stable sort instead of k scans)."""
    order = np.argsort(pool, kind="stable")
    bounds = np.searchsorted(pool[order], np.arange(-1, k + 1))
    return [order[bounds[i + 1]:bounds[i + 2]] for i in range(k)]


def n_distinct(x: np.ndarray) -> int:
    """Distinct values by sorting (numpy's hash-based unique is far slower on millions of uint64)."""
    if len(x) == 0:
        return 0
    xs = np.sort(x)
    return 1 + int(np.count_nonzero(xs[1:] != xs[:-1]))


def _fill_stats(pools: list[PoolPlan], takes: list[Any], cand: Candidates, entry_pool: np.ndarray,
                doc_keys: np.ndarray) -> None:
    for i, (pp, t) in enumerate(zip(pools, takes, strict=True)):
        spans = (t.end - t.start).astype(np.int64)
        pp.achieved_tokens = int(spans.sum())
        pp.entries = len(t.index)
        pp.epochs = int(t.epoch.max()) + 1 if len(t.epoch) else 0
        # a pool that repeats went through one whole pass first; otherwise no segment repeats
        pp.segments = pp.available_segments if pp.epochs > 1 else pp.entries
        pp.documents = n_distinct(doc_keys[entry_pool == i])
        pp.cut = bool(np.any(spans < cand.n_tokens[t.index]))


def _shares(sel: Selection, cand: Candidates, total: int) -> dict[str, float | None]:
    spans = (sel.end - sel.start).astype(np.int64)
    out: dict[str, float | None] = {}
    for flag in FLAG_COLUMNS:
        col = cand.flags.get(flag)
        out[flag] = None if col is None or total == 0 else float(spans[col[sel.index]].sum() / total)
    return out

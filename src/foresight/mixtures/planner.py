"""``mixtures.plan``: compile a spec against a shard directory, solve the targets and select the entries."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from foresight.formats.arrowpool import system_pool
from foresight.formats.errors import InputError
from foresight.formats.manifest import PoolHeader
from foresight.formats.shardio import ROW_BITS, ROW_MASK
from foresight.mixtures import sandbox
from foresight.mixtures.select import FLAG_COLUMNS, PoolTotals, candidate_query, pool_totals
from foresight.mixtures.shards import ShardSet, open_shards
from foresight.mixtures.solve import apportion, check_feasible, max_total
from foresight.mixtures.sources import resolve_source, source_predicate
from foresight.mixtures.spec import MixtureSpec, load_spec
from foresight.mixtures.spill import Spill, range_bits
from foresight.mixtures.take import expected_entries, make_rules, run_selection

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
    """A planned mixture: each pool's figures, and its entries spilled to disk in training-order key ranges
    (:meth:`entries` streams them in order). :meth:`close` deletes the spill (a ``with`` block does)."""

    spec: MixtureSpec
    shards: ShardSet
    total_tokens: int
    pools: list[PoolPlan]
    shares: dict[str, float | None]
    spill: Spill
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def n_entries(self) -> int:
        return self.spill.entries

    def entries(self) -> Iterator[pa.Table]:
        """Every entry in training order, a key range at a time (``spill.SPILL_SCHEMA``)."""
        return self.spill.ranges()

    def close(self) -> None:
        self.spill.close()

    def __enter__(self) -> Plan:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


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
         verify: bool = True, memory_limit: str | None = None) -> Plan:
    """Plan (and select) a mixture: raises SpecError/ExpressionError/OverlapError/InfeasibleError on bad input.

    ``verify`` re-hashes every shard file against ``index.json`` first (refusing, with the file named, if one
    changed). ``memory_limit`` bounds DuckDB (default :func:`formats.sql.default_memory_limit`); Python holds a
    shard file's read-back and a key range of entries at most. The entries are spilled under ``TMPDIR`` (about
    130 bytes each) until the plan is closed.
    """
    with system_pool():
        return _plan(spec, shards_dir, threads, verify, memory_limit)


@dataclass
class Targets:
    exprs: list[str]  # each pool's compiled predicate
    totals: PoolTotals
    total: int  # the mixture's tokens
    targets: list[int]  # per pool


def _targets(con: Any, spec: MixtureSpec, shards: ShardSet) -> Targets:
    """DuckDB counts what each pool holds, so the targets are known and checked before any row reaches Python."""
    exprs, totals = _totals(con, spec, shards)
    names, weights = [p.name for p in spec.pools], spec.weights()
    reps = [p.max_repetition for p in spec.pools]
    total = spec.total_tokens
    if total is None:
        total = max_total(weights, names, totals.tokens, reps, spec.seed)
    targets = apportion(weights, names, total, spec.seed)
    check_feasible(names, targets, totals.tokens, reps, totals.segments)
    return Targets(exprs, totals, total, targets)


def _plan(spec: MixtureSpec | str | Path, shards_dir: str | Path, threads: int | None, verify: bool,
          memory_limit: str | None) -> Plan:
    t0 = time.perf_counter()
    spec = spec if isinstance(spec, MixtureSpec) else load_spec(spec)
    shards = open_shards(shards_dir, verify=verify)
    t1 = time.perf_counter()
    con = sandbox.connect(shards.files, spec.heldout_fraction, threads, memory_limit)
    try:
        t = _targets(con, spec, shards)
        t2 = time.perf_counter()
        flags = [c for c in FLAG_COLUMNS if c in sandbox.columns(con)]
        orders = [p.order_column() for p in spec.pools]
        scores = sorted({o[0] for o in orders if o})
        scan_sql = candidate_query(t.exprs, list(spec.exclude), flags, scores, _precedence(spec))
        avail, segs = t.totals.tokens, t.totals.segments  # of every candidate
        rules = make_rules(con, [p.name for p in spec.pools], orders, t.targets, avail, segs, scan_sql, spec.seed)
        bits = range_bits(expected_entries(rules, avail, segs))
        spill, flag_tokens = run_selection(con, scan_sql, rules, shards, spec.seed, flags, bits)
    finally:
        con.close()
    t3 = time.perf_counter()
    weights = spec.weights()
    docs = spill.distinct_documents(len(spec.pools), memory_limit)
    pools = []
    for i, (p, r) in enumerate(zip(spec.pools, rules, strict=True)):
        pp = PoolPlan(p.name, t.exprs[i], float(weights[i]), float(p.max_repetition), p.order, avail[i], segs[i],
                      t.targets[i], r.tokens, r.entries, segs[i] if r.epochs > 1 else r.entries, docs[i],
                      r.epochs, r.cut)
        pools.append(pp)
    shares = {f: (float(flag_tokens[f] / t.total) if f in flag_tokens and t.total else None) for f in FLAG_COLUMNS}
    return Plan(spec, shards, t.total, pools, shares, spill,
                {"verify_s": t1 - t0, "totals_s": t2 - t1, "select_s": t3 - t2,
                 "documents_s": time.perf_counter() - t3})


def _totals(con: Any, spec: MixtureSpec, shards: ShardSet) -> tuple[list[str], PoolTotals]:
    exprs = compile_pools(con, spec, shards)
    totals = pool_totals(con, exprs, list(spec.exclude), _precedence(spec))
    _check_overlap(spec, totals, con, shards)
    return exprs, totals


def mixture_total(spec: MixtureSpec, shards_dir: str | Path, threads: int | None = None) -> int:
    """The mixture's total tokens (``total_tokens = "max"`` resolved), checked feasible, without selecting."""
    shards = open_shards(shards_dir, verify=True)
    con = sandbox.connect(shards.files, spec.heldout_fraction, threads)
    try:
        return _targets(con, spec, shards).total
    finally:
        con.close()


def available_tokens(spec: MixtureSpec, shards_dir: str | Path, threads: int | None = None) -> dict[str, int]:
    """Tokens each pool holds on the shards (after ``exclude`` and precedence), without selecting anything."""
    shards = open_shards(shards_dir, verify=True)
    con = sandbox.connect(shards.files, spec.heldout_fraction, threads)
    try:
        _, totals = _totals(con, spec, shards)
    finally:
        con.close()
    return {p.name: a for p, a in zip(spec.pools, totals.tokens, strict=True)}

"""The report's pass/fail checks, each one SQL statement over the audit views."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from foresight.audit import AuditConnection
from foresight.formats.splits import heldout_sql


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    detail: str


def _sample(rows: list[tuple[Any, ...]], limit: int = 3) -> str:
    return "; ".join(" ".join(str(v) for v in r) for r in rows[:limit]) + (" …" if len(rows) > limit else "")


def check_shard_hashes(audit: AuditConnection) -> Check:
    if audit.problems:
        return Check("shard and manifest hashes", False, f"{len(audit.problems)} mismatch(es): {audit.problems[0]}")
    files = len(audit.index.files)
    return Check("shard and manifest hashes", True, f"{files} shard files match index.json")


def manifest_heldout_fraction(audit: AuditConnection, manifest: Any) -> float:
    """The held-out fraction the manifest's spec excluded (``spec.heldout_fraction``), else the audit's."""
    value = manifest.header.spec.get("heldout_fraction")
    return float(value) if isinstance(value, (int, float)) else audit.heldout_fraction


def check_heldout(audit: AuditConnection) -> Check:
    """No document of the held-out probe split (formats.splits) may be trained on."""
    bad, fractions = [], set()
    for m in audit.manifests:
        fraction = manifest_heldout_fraction(audit, m)
        fractions.add(fraction)
        row = audit.query(f"""SELECT count(*) AS entries, count(DISTINCT doc_id) AS docs, min(doc_id) AS example
                              FROM entries WHERE manifest = $m AND {heldout_sql(fraction)}""", {"m": m.name}).row(0)
        if row[0]:
            bad.append((m.name, f"{row[1]} held-out docs, e.g. {row[2]}"))
    name = f"no held-out document in any manifest (fraction {', '.join(f'{f:g}' for f in sorted(fractions))})"
    if bad:
        return Check(name, False, _sample(bad))
    n = audit.query("SELECT count(*) AS n FROM documents WHERE heldout")["n"][0]
    return Check(name, True, f"{len(audit.manifests)} manifest(s) checked; {n} held-out documents in the shards "
                             f"(at fraction {audit.heldout_fraction:g})")


def check_epoch_duplicates(audit: AuditConnection) -> Check:
    rows = audit.query("""SELECT manifest, epoch, id, count(*) AS n FROM entries GROUP BY ALL HAVING count(*) > 1
                          ORDER BY manifest, epoch, id""").rows()
    name = "no segment twice in one epoch"
    if rows:
        return Check(name, False, f"{len(rows)} repeats: " + _sample([(m, f"epoch {e}", i, f"×{n}")
                                                                     for m, e, i, n in rows]))
    return Check(name, True, f"{len(audit.manifests)} manifest(s) checked")


def check_entries_resolve(audit: AuditConnection) -> Check:
    """Every entry names a segment that exists at its file/row with the same text hash, span within bounds."""
    rows = audit.query("""
        SELECT manifest, "order", id,
               CASE WHEN segment_file IS NULL THEN 'segment not in the shards'
                    WHEN segment_file <> file OR segment_row <> "row" THEN 'file/row differ from the shards'
                    WHEN text_sha256 <> segment_sha256 THEN 'text_sha256 differs from the shards'
                    ELSE 'token span out of bounds' END AS problem
        FROM entries
        WHERE segment_file IS NULL OR segment_file <> file OR segment_row <> "row" OR text_sha256 <> segment_sha256
           OR start < 0 OR "end" > segment_tokens OR start >= "end" OR n_tokens <> "end" - start
        ORDER BY manifest, "order" """).rows()
    name = "entries resolve to their segments"
    if rows:
        return Check(name, False, f"{len(rows)} bad entries: " + _sample([(m, f"#{o}", i, p) for m, o, i, p in rows]))
    return Check(name, True, "every entry's id, file/row, text_sha256 and token span match the shards")


def check_pool_totals(audit: AuditConnection) -> Check:
    rows = audit.query("""
        SELECT p.manifest, p.pool, p.achieved_tokens, coalesce(e.tokens, 0) AS tokens
        FROM pools p LEFT JOIN (SELECT manifest, pool, sum(n_tokens) AS tokens FROM entries GROUP BY ALL) e
             USING (manifest, pool)
        WHERE p.achieved_tokens IS DISTINCT FROM coalesce(e.tokens, 0)
        UNION ALL
        SELECT m.manifest, '(total)', m.total_tokens, coalesce(t.tokens, 0)
        FROM manifests m LEFT JOIN (SELECT manifest, sum(n_tokens) AS tokens FROM entries GROUP BY ALL) t
             USING (manifest)
        WHERE m.total_tokens IS DISTINCT FROM coalesce(t.tokens, 0)""").rows()
    name = "pool and total tokens match the manifest header"
    if rows:
        return Check(name, False, _sample([(m, p, f"header {a} != entries {t}") for m, p, a, t in rows]))
    return Check(name, True, f"{len(audit.manifests)} manifest(s) checked")


def check_accounting(audit: AuditConnection) -> Check:
    acc = audit.index.accounting
    name = "accounting: read = kept + dropped + errored"
    if acc is None:
        return Check(name, True, "no accounting in index.json (nothing to check)")
    rhs = acc.read - acc.balance()
    return Check(name, acc.balance() == 0, f"read {acc.read} vs kept + dropped + errored {rhs}")


def run_checks(audit: AuditConnection) -> list[Check]:
    checks = [check_shard_hashes(audit), check_accounting(audit)]
    if audit.manifests:
        checks += [check_heldout(audit), check_epoch_duplicates(audit), check_entries_resolve(audit),
                   check_pool_totals(audit)]
    return checks

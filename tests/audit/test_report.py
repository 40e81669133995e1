"""The report's numbers: duplicates from the accounting, spec targets, held-out fraction from the spec, checks."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from foresight.audit import connect
from foresight.audit.report import write_report
from foresight.formats.splits import is_heldout
from tests.audit.fixtures import corpus, make_manifest
from tests.helpers import make_shards


def _set_accounting(shards: Path, accounting: dict) -> None:
    path = shards / "index.json"
    index = json.loads(path.read_text())
    index["accounting"] = accounting
    path.write_text(json.dumps(index))


def test_drops_duplicates_and_accounting_invariant(tmp_path: Path) -> None:
    shards = corpus(tmp_path)
    _set_accounting(shards, {"read": 30, "kept": 9, "segments": 9, "tokens": 90, "errored": {"decode": 1},
                             "dropped": {"exact_duplicate": 5, "near_duplicate": 2, "empty": 1,
                                         "gopher_repetition:dup_line_frac": 4, "lang": 7}})
    with connect(shards) as au:
        summary = write_report(au, tmp_path / "rep")
    md = (tmp_path / "rep" / "report.md").read_text()
    # the repetition filter is a quality judgement, not a duplicate
    assert "duplicates removed: 7 (23.33 % of read) — exact_duplicate: 5, near_duplicate: 2" in md
    drops = pl.read_csv(tmp_path / "rep" / "drops.csv")
    assert drops["documents"].sum() == 20 and set(drops["kind"]) == {"dropped", "errored"}
    invariant = next(c for c in summary.checks if c.name.startswith("accounting"))
    assert not invariant.passed and "read 30" in invariant.detail and "29" in invariant.detail


def test_targets_from_spec_or_implied_by_pools(tmp_path: Path) -> None:
    shards = corpus(tmp_path)
    stated = make_manifest(tmp_path / "a", shards, "stated", {"p": {"where": "source = 'code'", "weight": 1.0}},
                           [("p", "code1#0", 0)], spec_extra={"targets": {"reasoning": 75, "visual": 10}})
    implied = make_manifest(tmp_path / "b", shards, "implied",
                            {"web": {"where": "source = 'web-crawl'", "weight": 1.0}},
                            [("web", "web1#0", 0), ("web", "web2#0", 0)])
    with connect(shards, [stated, implied]) as au:
        write_report(au, tmp_path / "rep")
        web_visual = au.query("SELECT sum(n_tokens) FILTER (WHERE visual) / sum(n_tokens) AS v FROM segments "
                              "WHERE source = 'web-crawl'")["v"][0]
    shares = pl.read_csv(tmp_path / "rep" / "manifest_shares.csv").sort("manifest")
    row = shares.row(by_predicate=pl.col("manifest") == "stated", named=True)
    assert (row["target_reasoning_share"], row["target_visual_share"], row["target_from"]) == (0.75, 0.10,
                                                                                              "spec targets")
    assert row["reasoning_share"] == 1.0
    row = shares.row(by_predicate=pl.col("manifest") == "implied", named=True)
    assert row["target_from"] == "pools" and abs(row["target_visual_share"] - web_visual) < 1e-9
    assert row["target_reasoning_share"] == 0.0


def test_heldout_fraction_comes_from_the_manifest_spec(tmp_path: Path) -> None:
    docs = [{"doc_id": f"d{i}", "source": "web", "text": "the red ball", "labels": []} for i in range(40)]
    shards = make_shards(tmp_path, docs)
    # documents outside the default 2 % split but inside a 50 % one
    chosen = [d["doc_id"] for d in docs if not is_heldout(d["doc_id"]) and is_heldout(d["doc_id"], 0.5)][:3]
    assert chosen
    picks = [("all", f"{doc}#0", 0) for doc in chosen]
    loose = make_manifest(tmp_path / "m", shards, "m", {"all": {"where": "true", "weight": 1.0}}, picks,
                          spec_extra={"heldout_fraction": 0.5})
    with connect(shards, [loose]) as au:
        summary = write_report(au, tmp_path / "rep")
    check = next(c for c in summary.checks if c.name.startswith("no held-out"))
    assert not check.passed and "fraction 0.5" in check.name


def test_unlabelled_shards_report(tmp_path: Path) -> None:
    shards = make_shards(tmp_path, [{"text": "def f ( x )", "source": "code"},
                                    {"text": "the red ball", "source": "web"}], with_labels=False)
    with connect(shards) as au:
        summary = write_report(au, tmp_path / "rep")
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "unclassified" in md and "not classified" in md
    assert all(c.passed for c in summary.checks)


def _scanned_columns(plan: list | dict) -> set[str]:
    """Columns projected by every READ_PARQUET operator of a JSON EXPLAIN plan."""
    nodes = plan if isinstance(plan, list) else [plan]
    out: set[str] = set()
    for node in nodes:
        info = node.get("extra_info") or {}
        if node.get("name") == "READ_PARQUET":
            projections = info.get("Projections", [])
            out |= set([projections] if isinstance(projections, str) else projections)
        out |= _scanned_columns(node.get("children", []))
    return out


def test_report_never_reads_text_or_tokens(env: dict[str, Path], tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from foresight.audit import AuditConnection

    seen: list[str] = []
    original = AuditConnection.query

    def recording(self: AuditConnection, sql: str, params: dict | None = None) -> pl.DataFrame:
        seen.append(sql)
        return original(self, sql, params)

    monkeypatch.setattr(AuditConnection, "query", recording)
    with connect(env["shards"], [env["mixA"], env["mixB"]]) as au:
        write_report(au, tmp_path / "rep")
        monkeypatch.setattr(AuditConnection, "query", original)
        sqls = [s for s in seen if "segments" in s or "entries" in s or "documents" in s]
        assert len(sqls) >= 10
        scanned: set[str] = set()
        for sql in sqls:
            plan = au.query(f"EXPLAIN (FORMAT json) {sql}",
                            {"m": "mixA"} if "$m" in sql else {"w": 1} if "$w" in sql else None)
            scanned |= _scanned_columns(json.loads(plan["explain_value"][0]))
    assert {"n_tokens", "source"} <= scanned
    assert not scanned & {"text", "tokens"}

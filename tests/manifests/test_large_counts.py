"""Token counts past 2^31: a synthetic shard set whose segments claim 1.5 G tokens each (their token lists stay
one EOS long, so nothing is materialised), a manifest over three of them (4.5 G tokens), and every total that
verify, the JSONL export and the audit report must get right without wrapping at 32 bits."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from foresight import manifests
from foresight.audit import connect
from foresight.formats.accounting import Accounting
from foresight.formats.index import ShardIndex
from foresight.formats.tokenizer import load_tokenizer
from foresight.pipeline.stages.write import RankShardWriter
from tests.helpers import make_tokenizer

SEG = 1_500_000_000  # fits int32 on its own; three of them do not
TOTAL = 3 * SEG


@pytest.fixture(scope="module")
def huge(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("huge")
    _, info = load_tokenizer(make_tokenizer(tmp))
    root = tmp / "shards"
    w = RankShardWriter(root, 0, with_labels=True)
    for i in range(3):
        w.add({"id": f"d{i}#0", "doc_id": f"d{i}", "segment": 0, "source": "web", "text": f"huge document {i}",
               "labels": ["visual_concept"] if i else [], "tokens": [info.eos_id], "n_tokens": SEG})
    rels = w.close()
    ShardIndex.build(root, rels, tokenizer=info.as_dict(), classifier=None, config={"test": True},
                     accounting=Accounting(read=3, kept=3)).write(root)
    spec = tmp / "huge.toml"
    spec.write_text(f'total_tokens = {TOTAL}\nseed = 0\n[pools.all]\nwhere = "true"\nweight = 1.0\n', "utf-8")
    return root, manifests.build(spec, root, tmp / "m")


def test_shard_index_counts_past_2_31(huge: tuple[Path, Path]) -> None:
    root, _ = huge
    assert json.loads((root / "index.json").read_text())["files"][0]["tokens"] == TOTAL


def test_manifest_entries_and_verify(huge: tuple[Path, Path]) -> None:
    _, mdir = huge
    head, df = manifests.read(mdir)  # read checks the entries' sums against the header
    assert head.total_tokens == TOTAL == head.pools["all"].achieved_tokens
    assert pq.read_schema(mdir / "entries.parquet").field("n_tokens").type == "int64"
    assert df["n_tokens"].sum() == TOTAL
    manifests.verify(mdir)  # not --deep: that would re-tokenize 4.5 G tokens of text


def test_jsonl_export_total(huge: tuple[Path, Path], tmp_path: Path) -> None:
    _, mdir = huge
    summary = manifests.export(mdir, "jsonl", tmp_path / "m.jsonl")
    assert summary["tokens"] == TOTAL
    rows = [json.loads(line) for line in (tmp_path / "m.jsonl").read_text().splitlines()]
    assert sum(r["n_tokens"] for r in rows) == TOTAL and not any(r["partial"] for r in rows)


def test_audit_totals(huge: tuple[Path, Path], tmp_path: Path) -> None:
    root, mdir = huge
    with connect(root, manifests=[mdir]) as audit:
        assert int(audit.query("SELECT sum(n_tokens) AS t FROM entries")["t"][0]) == TOTAL
        assert int(audit.query("SELECT sum(n_tokens) AS t FROM segments")["t"][0]) == TOTAL
        assert int(audit.query("SELECT sum(tokens) AS t FROM documents")["t"][0]) == TOTAL


def test_audit_report_checks_pass(huge: tuple[Path, Path], tmp_path: Path) -> None:
    """The report's pool-total and entry checks compare 64-bit sums with the header's totals."""
    from foresight.audit.report import write_report

    root, mdir = huge
    with connect(root, manifests=[mdir]) as audit:
        summary = write_report(audit, tmp_path / "report")
    by_name = {c.name: c for c in summary.checks}
    assert by_name and all(c.passed for c in by_name.values()), by_name
    assert f"3 segments, {TOTAL:,} tokens" in (tmp_path / "report" / "report.md").read_text()

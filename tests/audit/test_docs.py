"""Every example query in docs/audit.md runs (so the docs cannot rot), and a few answers are checked."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from foresight.audit import AuditConnection, connect, parse_param
from tests.audit.fixtures import corpus, make_manifest, make_results

DOC = Path(__file__).resolve().parents[2] / "docs" / "audit.md"
EXAMPLE = re.compile(r"^### (\d+)\. (.+?)\n+```sql\n(.*?)```", re.MULTILINE | re.DOTALL)


def examples() -> list[tuple[str, str, dict[str, Any]]]:
    out = []
    for number, question, sql in EXAMPLE.findall(DOC.read_text(encoding="utf-8")):
        params: dict[str, Any] = {}
        for line in sql.splitlines():
            if line.startswith("-- params:"):
                params.update(parse_param(p) for p in line.split(":", 1)[1].split())
        out.append((f"{number}. {question}", sql, params))
    return out


def test_the_docs_examples_are_numbered_and_complete() -> None:
    found = examples()
    assert len(found) >= 10  # the README promises ten
    assert [int(title.split(".")[0]) for title, _, _ in found] == list(range(1, len(found) + 1))
    assert all(title.split(".", 1)[1].strip() and sql.strip() for title, sql, _ in found)


@pytest.fixture(scope="module")
def lsbs(tmp_path_factory: pytest.TempPathFactory) -> AuditConnection:
    tmp = tmp_path_factory.mktemp("docs")
    shards = corpus(tmp)
    mix0 = make_manifest(tmp / "m0", shards, "lsbs_mix0", {"web": {"where": "source = 'web-crawl'", "weight": 0.7},
                                                           "code": {"where": "source = 'code'", "weight": 0.3}},
                         [("web", "web1#0", 0), ("web", "web2#0", 0), ("code", "code1#0", 0)])
    mix6 = make_manifest(tmp / "m6", shards, "lsbs_mix6",
                         {"reason": {"where": "reasoning", "weight": 0.6}, "vis": {"where": "visual", "weight": 0.4}},
                         [("reason", "code2#0", 0), ("reason", "math1#0", 0), ("vis", "web1#0", 0),
                          ("vis", "lit1#0", 0), ("vis", "web3#0", 0), ("reason", "code2#0", 1)])
    sweep = make_results(tmp / "sweep", [
        {"mixture": "lsbs_mix0", "reasoning_share": 0.3, "visual_share": 0.3, "tokens": 30, "final_loss": 3.0,
         "bpb_overall": 1.5, "manifest_sha256": "a" * 64, "checkpoint_sha256": "b" * 64},
        {"mixture": "lsbs_mix6", "reasoning_share": 0.55, "visual_share": 0.45, "tokens": 60, "final_loss": 2.9,
         "bpb_overall": 1.3, "manifest_sha256": "c" * 64, "checkpoint_sha256": "d" * 64}])
    audit = connect(shards, [mix0, mix6], sweep)
    yield audit
    audit.close()


@pytest.mark.parametrize("example", examples(), ids=lambda e: e[0].split(".")[0])
def test_documented_query_runs(lsbs: AuditConnection, example: tuple[str, str, dict[str, Any]]) -> None:
    question, sql, params = example
    df = lsbs.query(sql, params)
    assert df.height >= 1, f"{question!r} returned no rows"


def test_documented_answers(lsbs: AuditConnection) -> None:
    by_number = {q.split(".")[0]: (sql, params) for q, sql, params in examples()}
    visual = lsbs.query(*by_number["1"])
    assert dict(zip(visual["source"], visual["visual_tokens"], strict=True)) == {"web-crawl": 16, "literature": 14}
    low_code = lsbs.query(*by_number["2"])
    assert low_code.row(0) == (1, 12)  # code2 has score_code_reasoning 0.55
    pivot = lsbs.query(*by_number["4"])
    assert {"source", "lsbs_mix0", "lsbs_mix6"} <= set(pivot.columns)
    assert lsbs.query(*by_number["5"])["exact"].all()
    repeated = lsbs.query(*by_number["6"])
    assert repeated.select("manifest", "doc_id", "epochs").rows() == [("lsbs_mix6", "code2", 2)]
    assert lsbs.query(*by_number["10"])["mixture"][0] == "lsbs_mix6"

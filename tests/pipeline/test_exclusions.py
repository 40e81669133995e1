"""``--exclusions`` / ``[write] exclusions``: every dropped or unreadable document is written once, with its
reason, under OUT/excluded/<step>/ (datatrove JsonlWriter files), and the counts match the accounting."""

from __future__ import annotations

import gzip
import json
from collections import Counter
from pathlib import Path

from typer.testing import CliRunner

from foresight.cli import app
from tests.helpers import make_tokenizer
from tests.pipeline.util import accounting, prose, write_jsonl

FILTERS_AND_DEDUP = ("[classify]\nenabled = false\n[language]\nenabled = true\nthreshold = 0.5\n"
                     "[dedup.minhash]\nenabled = true\nnum_buckets = 4\n")


def _excluded(root: Path) -> list[dict]:
    rows = []
    for path in sorted((root / "excluded").rglob("*.jsonl.gz")):
        with gzip.open(path, "rt", encoding="utf-8") as f:
            rows += [dict(json.loads(line), step=path.parent.name) for line in f]
    return rows


def test_every_dropped_document_is_written_with_its_reason(tmp_path: Path) -> None:
    recs = [{"id": f"ok{i}", "text": prose(i, 200)} for i in range(4)]
    recs += [{"id": "copy", "text": recs[0]["text"]},
             {"id": "near", "text": recs[1]["text"].replace("Story", "story", 1)},
             {"id": "fr", "text": "Le chat est assis sur le tapis et la maison est très belle ce matin. " * 12},
             {"id": "spam", "text": "\n".join(["buy now buy now"] * 40)},
             {"id": "blank", "text": " \x00 "}, "{broken json"]
    src = write_jsonl(tmp_path / "in" / "web" / "a.jsonl", recs)
    cfg = tmp_path / "p.toml"
    cfg.write_text(FILTERS_AND_DEDUP)
    out = tmp_path / "s"
    res = CliRunner().invoke(app, ["curate", str(src), "--out", str(out), "--config", str(cfg), "--tokenizer",
                                   str(make_tokenizer(tmp_path)), "--exclusions"])
    assert res.exit_code == 0, res.output
    acc = accounting(out)
    rows = _excluded(out)
    reasons = Counter(r["metadata"]["filter_reason"] for r in rows)
    assert reasons == Counter({**acc["dropped"], **acc["errored"]}) and len(rows) == 10 - acc["kept"]
    by_id = {r["id"]: r for r in rows}
    assert by_id["copy"]["step"] == "exact_duplicate" and by_id["copy"]["text"] == recs[0]["text"]
    assert by_id["fr"]["metadata"]["filter_reason"].startswith(("language:", "gopher", "fineweb"))
    assert by_id[f"{src.resolve()}:10"]["metadata"]["filter_reason"] == "bad_json"
    assert "near_duplicate" in reasons and "empty" in reasons


def test_without_the_flag_nothing_is_written(tmp_path: Path) -> None:
    src = write_jsonl(tmp_path / "in" / "a.jsonl", [{"text": prose(1)}, {"text": " "}])
    out = tmp_path / "s"
    res = CliRunner().invoke(app, ["curate", str(src), "--out", str(out), "--tokenizer", str(make_tokenizer(tmp_path)),
                                   "--classifier", "rules"])
    assert res.exit_code == 0 and not (out / "excluded").exists() and accounting(out)["dropped"]


def test_audit_excluded_view_matches_the_accounting(tmp_path: Path) -> None:
    from foresight.audit import connect

    recs = [{"id": "ok", "text": prose(1, 200)}, {"id": "copy", "text": prose(1, 200)}, {"id": "blank", "text": " "},
            "not json"]
    src = write_jsonl(tmp_path / "in" / "web" / "a.jsonl", recs)
    out = tmp_path / "s"
    res = CliRunner().invoke(app, ["curate", str(src), "--out", str(out), "--tokenizer", str(make_tokenizer(tmp_path)),
                                   "--classifier", "rules", "--exclusions"])
    assert res.exit_code == 0, res.output
    acc = accounting(out)
    with connect(out) as con:
        got = dict(con.query("SELECT reason, count(*) AS n FROM excluded GROUP BY 1").iter_rows())
        steps = dict(con.query("SELECT id, step FROM excluded").iter_rows())
    assert got == {**acc["dropped"], **acc["errored"]}
    assert steps["copy"] == "exact_duplicate" and steps["blank"] == "empty"
    assert steps[f"{src.resolve()}:4"] == "unreadable"

"""Accounting: counts gathered from datatrove stats, the invariant checked, violations fail loudly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from foresight.cli import app
from foresight.pipeline import accounting
from foresight.pipeline.stages.finalize import finalize
from tests.pipeline.util import curate, prose, write_jsonl


def _stats_file(logdir: Path, rank: int, steps: dict[str, dict]) -> None:
    (logdir / "stats").mkdir(parents=True, exist_ok=True)
    steps = [{"name": name, "time_stats": {}, "stats": stats} for name, stats in steps.items()]
    steps.append({"name": "other", "time_stats": {}, "stats": {"dropped": 99, "total": 5, "documents": 3}})
    (logdir / "stats" / f"{rank:05d}.json").write_text(json.dumps(steps))


def test_counts_come_from_datatrove_stats_of_named_steps() -> None:
    """The reader's ``documents`` + ``errored_<reason>``, filters' ``dropped_<reason>``, the dedup steps' plain
    ``dropped``, the shard writer's ``documents``/``segments``/``tokens``; the same names on any other step
    (a bare ``dropped``, another step's ``documents``) are never counted."""
    acc = accounting.from_datatrove_stats([
        {"name": accounting.READER_STEP, "stats": {"documents": {"total": 7, "n": 2}, "errored_bad_json": 1,
                                                   "input_files": 2, "dropped": 42}},
        {"name": "🔻 - FILTER: 🧹 empty", "stats": {"total": 7, "forwarded": 6, "dropped": 1, "dropped_empty": 1}},
        {"name": "🔻 - FILTER: gopher", "stats": {"total": 6, "forwarded": 5, "dropped": 1,
                                                 "dropped_gopher_quality:gopher_short_doc": 1}},
        {"name": "📖 intermediate reader", "stats": {"documents": 5}},
        {"name": "🫂 - DEDUP: 🎯 near_duplicate", "stats": {"dropped": 2}},
        {"name": "🫂 - DEDUPS: 💥 exact-deduplication stage 3", "stats": {"dropped": 5}},  # uncounted copy
        {"name": accounting.WRITER_STEP, "stats": {"documents": 3, "segments": 4, "tokens": {"total": 900}}}])
    assert acc.read == 8 and acc.errored == {"bad_json": 1} and acc.kept == 3
    assert acc.dropped == {"empty": 1, "gopher_quality:gopher_short_doc": 1, "near_duplicate": 2}
    assert (acc.segments, acc.tokens) == (4, 900)
    assert acc.balance() == 0


def test_finalize_fails_loudly_when_documents_go_missing(tmp_path: Path) -> None:
    a, b = tmp_path / "logs" / "filter", tmp_path / "logs" / "segment"
    _stats_file(a, 0, {accounting.READER_STEP: {"documents": 10}, "empty": {"dropped_empty": 2}})
    _stats_file(b, 0, {accounting.WRITER_STEP: {"documents": 7}})  # one document unaccounted for
    with pytest.raises(accounting.AccountingError, match="invariant violated for rank 0.*differs by 1"):
        finalize(tmp_path / "out", [str(a), str(b)], 1, tokenizer={}, classifier=None, config={})
    assert not (tmp_path / "out" / "index.json").exists()


def test_finalize_refuses_missing_rank_stats(tmp_path: Path) -> None:
    a = tmp_path / "logs" / "filter"
    _stats_file(a, 0, {accounting.READER_STEP: {"documents": 1}, accounting.WRITER_STEP: {"documents": 1}})
    with pytest.raises(accounting.AccountingError, match="did not complete rank 1"):
        finalize(tmp_path / "out", [str(a)], 2, tokenizer={}, classifier=None, config={})


def test_stats_per_rank_and_merged_match_index(tmp_path: Path) -> None:
    for f in range(2):
        write_jsonl(tmp_path / "in" / f"s{f}" / "a.jsonl", [{"text": prose(f * 10 + i)} for i in range(3)] + ["{"])
    root = curate(tmp_path, [tmp_path / "in"], tasks=2)
    per_rank = [json.loads((root / "stats" / f"{r:05d}.json").read_text()) for r in range(2)]
    merged = json.loads((root / "stats" / "accounting.json").read_text())
    assert [r["read"] for r in per_rank] == [4, 4] and merged["errored"] == {"bad_json": 2}
    assert merged == json.loads((root / "index.json").read_text())["accounting"]


def test_shards_info_reports_a_missing_shard(tmp_path: Path) -> None:
    root = curate(tmp_path, [write_jsonl(tmp_path / "in" / "web" / "a.jsonl", [{"text": prose(1)}])])
    (root / "data/source=web/part-00000.parquet").unlink()
    res = CliRunner().invoke(app, ["shards", "info", str(root)])
    assert res.exit_code == 1 and "missing" in res.output


def test_rerun_does_not_bless_a_modified_shard(tmp_path: Path) -> None:
    src = write_jsonl(tmp_path / "in" / "web" / "a.jsonl", [{"text": prose(i)} for i in range(3)])
    root = curate(tmp_path, [src])
    shard = root / "data/source=web/part-00000.parquet"
    import pyarrow.parquet as pq

    pq.write_table(pq.read_table(shard), shard, compression="snappy")  # valid Parquet, different bytes
    with pytest.raises(accounting.AccountingError, match="changed after it was written"):
        curate(tmp_path, [src])  # same run: resumes, finalize re-checks what the writer produced


def test_completed_tasks_count_datatrove_markers(tmp_path: Path) -> None:
    from foresight.pipeline.curate import completed_tasks, execute, plan_curation
    from tests.helpers import make_tokenizer
    from tests.pipeline.util import MINIMAL, prose, write_jsonl

    src = write_jsonl(tmp_path / "in" / "web" / "a.jsonl", [{"text": prose(i)} for i in range(3)])
    p = plan_curation([str(src)], tmp_path / "out", make_tokenizer(tmp_path), tasks=2, overrides=MINIMAL)
    assert all(done == 0 for _, done, _ in completed_tasks(p.stages))
    execute(p)
    assert [(name, done) for name, done, tasks in completed_tasks(p.stages)] == [(s.name, s.tasks) for s in p.stages]

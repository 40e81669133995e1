"""Finalize stage (one task, after everything else): merge the accounting, check the invariant, and
write ``stats/`` and then ``index.json`` — last and atomically — so a shard directory with an index is
always complete. Running it as a stage lets Slurm/Ray runs finish without the submitting process.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from datatrove.data import DocumentsPipeline
from datatrove.pipeline.base import PipelineStep
from datatrove.utils.logging import logger

from foresight.formats.atomic import write_json_atomic
from foresight.formats.index import build_index, write_index
from foresight.formats.schema import DATA_DIR, STATS_DIR
from foresight.pipeline import accounting


def shard_relpaths(root: Path) -> list[str]:
    """Published shard files (``.tmp`` leftovers of killed tasks are removed, never indexed)."""
    data = root / DATA_DIR
    for tmp in data.glob("source=*/*.tmp"):
        tmp.unlink()
    return sorted(str(p.relative_to(root)) for p in data.glob("source=*/part-*.parquet"))


REBUILD = "rebuild with `foresight curate … --overwrite`"


def check_written(root: Path, tasks: int, files: list[dict[str, Any]]) -> None:
    """Every indexed shard must be exactly what a writer task produced (not foreign, not modified since)."""
    from foresight.pipeline.stages.write import written_record

    written: dict[str, str] = {}
    for rank in range(tasks):
        rec = written_record(root, rank)
        if not rec.is_file():
            raise accounting.AccountingError(f"{rec} missing: the write stage did not finish rank {rank}; rerun curate")
        written.update(json.loads(rec.read_text(encoding="utf-8")))
    for f in files:
        if written.get(f["path"]) != f["sha256"]:
            what = "was not written by this run" if f["path"] not in written else "changed after it was written"
            raise accounting.AccountingError(f"{root / f['path']} {what}; {REBUILD}")
    missing = sorted(set(written) - {f["path"] for f in files})
    if missing:
        raise accounting.AccountingError(f"{root / missing[0]} is missing; {REBUILD}")


def finalize(root: str | Path, logging_dirs: list[str], tasks: int, tokenizer: dict[str, Any],
             classifier: dict[str, Any] | None, config: dict[str, Any]) -> dict[str, Any]:
    """Write stats/ and index.json for a finished run; raises AccountingError if documents went missing."""
    root = Path(root)
    stats = root / STATS_DIR
    stats.mkdir(parents=True, exist_ok=True)
    total = accounting.empty()
    for rank in range(tasks):
        acc = accounting.rank_accounting([Path(d) for d in logging_dirs], rank)
        accounting.check(acc, f"rank {rank}")
        write_json_atomic(stats / f"{rank:05d}.json", acc)
        total = accounting.add(total, acc)
    accounting.check(total, "the run")
    write_json_atomic(stats / "accounting.json", total)
    index = build_index(root, shard_relpaths(root), tokenizer=tokenizer, classifier=classifier, config=config,
                        accounting=total)
    check_written(root, tasks, index["files"])
    if index["totals"]["tokens"] != total[accounting.TOKENS]:
        raise accounting.AccountingError(
            f"shards hold {index['totals']['tokens']} tokens but the writer counted {total[accounting.TOKENS]}: "
            f"stale or foreign files under {root / DATA_DIR}; rerun with --overwrite"
        )
    write_index(root, index)
    logger.info(f"index written: {json.dumps(index['totals'])}")
    return index


class Finalize(PipelineStep):
    name = "🏁 finalize"
    type = "💽 - WRITER"

    def __init__(self, root: str, logging_dirs: list[str], tasks: int, tokenizer: dict[str, Any],
                 classifier: dict[str, Any] | None, config: dict[str, Any]) -> None:
        super().__init__()
        self.root = root
        self.logging_dirs = logging_dirs
        self.tasks = tasks
        self.tokenizer = tokenizer
        self.classifier = classifier
        self.config = config

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        finalize(self.root, self.logging_dirs, self.tasks, self.tokenizer, self.classifier, self.config)
        return
        yield

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

from foresight.formats.accounting import Accounting, AccountingError
from foresight.formats.index import IndexedFile, ShardIndex
from foresight.formats.schema import DATA_DIR, STATS_DIR
from foresight.pipeline.accounting import rank_accounting


def shard_relpaths(root: Path) -> list[str]:
    """Published shard files (``.tmp`` leftovers of killed tasks are removed, never indexed)."""
    data = root / DATA_DIR
    for tmp in data.glob("source=*/*.tmp"):
        tmp.unlink()
    return sorted(str(p.relative_to(root)) for p in data.glob("source=*/part-*.parquet"))


REBUILD = "rebuild with `foresight curate … --overwrite`"


def check_written(root: Path, tasks: int, files: tuple[IndexedFile, ...]) -> None:
    """Every indexed shard must be exactly what a writer task produced (not foreign, not modified since)."""
    from foresight.pipeline.stages.write import written_record

    written: dict[str, str] = {}
    for rank in range(tasks):
        rec = written_record(root, rank)
        if not rec.is_file():
            raise AccountingError(f"{rec} missing: the write stage did not finish rank {rank}; rerun curate")
        written.update(json.loads(rec.read_text(encoding="utf-8")))
    for f in files:
        if written.get(f.path) != f.sha256:
            what = "was not written by this run" if f.path not in written else "changed after it was written"
            raise AccountingError(f"{root / f.path} {what}; {REBUILD}")
    missing = sorted(set(written) - {f.path for f in files})
    if missing:
        raise AccountingError(f"{root / missing[0]} is missing; {REBUILD}")


def finalize(root: str | Path, logging_dirs: list[str], tasks: int, tokenizer: dict[str, Any],
             classifier: dict[str, Any] | None, config: dict[str, Any]) -> ShardIndex:
    """Write stats/ and index.json for a finished run; raises AccountingError if documents went missing."""
    root = Path(root)
    stats = root / STATS_DIR
    stats.mkdir(parents=True, exist_ok=True)
    total = Accounting()
    for rank in range(tasks):
        acc = rank_accounting([Path(d) for d in logging_dirs], rank)
        acc.check(f"rank {rank}")
        acc.write(stats / f"{rank:05d}.json")
        total += acc
    total.check("the run")
    total.write(stats / "accounting.json")
    index = ShardIndex.build(root, shard_relpaths(root), tokenizer=tokenizer, classifier=classifier, config=config,
                             accounting=total)
    check_written(root, tasks, index.files)
    if index.totals.tokens != total.tokens:
        raise AccountingError(
            f"shards hold {index.totals.tokens} tokens but the writer counted {total.tokens}: "
            f"stale or foreign files under {root / DATA_DIR}; rerun with --overwrite"
        )
    index.write(root)
    logger.info(f"index written: {json.dumps(index.to_dict()['totals'])}")
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

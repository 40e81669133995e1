"""Orchestration: inputs + pipeline.toml → the stage list (docs/architecture.md) → datatrove executors → shards.

Stages, each a datatrove job depending on the previous one (dedup stages only when enabled):

1. ``filter``        read → normalise → quality filters → language → intermediate docs (per rank)
2. ``exact-sigs``    exact-dedup signatures (per rank);       ``exact-find``: global duplicates (1 task)
3. ``minhash-sigs``  MinHash signatures (per rank, after the exact filter); ``minhash-buckets``;
                     ``minhash-cluster`` (1 task)
4. ``segment``       exact filter → MinHash filter → segment → tokenize → [classify] → shard writer (per rank)
5. ``finalize``      accounting check, stats/, index.json (1 task)

Everything lives under ``OUT``: shards in ``data/``, accounting in ``stats/``, datatrove logs, completion
markers and intermediate files in ``_work/`` (so a killed run restarted finishes only what is missing).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from foresight.formats import __version__
from foresight.formats.atomic import check_output_dir, write_json_atomic
from foresight.formats.errors import InputError
from foresight.formats.schema import DATA_DIR, EXCLUDED_DIR, INDEX_FILE, STATS_DIR, WORK_DIR
from foresight.pipeline.accounting import EXACT_DUPLICATE, NEAR_DUPLICATE
from foresight.pipeline.config import PipelineConfig, load_config
from foresight.pipeline.executors import (
    SLURM_JOBS_FILE,
    Stage,
    build_executors,
    queued_slurm_jobs,
    record_slurm_jobs,
)
from foresight.pipeline.readers import InputFile, clean_source, discover_inputs

RUN_FILE = "run.json"
HASH_CACHE_FILE = "input_hashes.json"  # (size, mtime, ctime, inode) → content hash of each local input
DEFAULT_MAX_TASKS = 8


class OutputDirError(InputError):
    """``--out`` holds something this run must not resume into or overwrite silently."""


@dataclass
class RunPlan:
    out: Path
    files: list[InputFile]
    ignored: list[str]
    tasks: int
    config: PipelineConfig
    tokenizer: dict[str, Any]
    classifier: dict[str, Any] | None
    source: str | None = None  # --source: the source of records without one
    stages: list[Stage] = field(default_factory=list)

    @property
    def work(self) -> Path:
        return self.out / WORK_DIR

    def index_config(self) -> dict[str, Any]:
        """What goes into index.json ``config``: everything that shapes the data, nothing about how it ran."""
        cfg = {k: v for k, v in self.config.as_dict().items() if k != "executor"}
        return {"pipeline": cfg, "tasks": self.tasks, "inputs": [f.path for f in self.files],
                "default_source": self.source}


def classify_step(cfg: PipelineConfig, classifier: str | None):
    """The classifier stage if ``pipeline.stages.classify`` exists and ``[classify] enabled``; else None.

    Without it the shards simply have no label columns — labels are never invented.
    """
    section = cfg.classify
    if not section.enabled:
        return None
    try:
        from foresight.pipeline.stages.classify import build_classify_step
    except ModuleNotFoundError as e:
        if e.name == "foresight.pipeline.stages.classify":
            return None
        raise
    model = classifier or section.model or None
    return build_classify_step(model, batch_size=section.batch_size, device=section.device)


def plan_curation(inputs: list[str], out: str | Path, tokenizer: str | Path, config: str | Path | None = None,
         tasks: int | None = None, source: str | None = None, text_key: str | None = None,
         classifier: str | None = None, overrides: dict[str, Any] | None = None) -> RunPlan:
    """Discover inputs, load the config and tokenizer, and lay out every stage of the run."""
    from foresight.formats.tokenizer import load_tokenizer

    overrides = dict(overrides or {})
    if text_key:
        overrides.setdefault("read", {})["text_key"] = text_key
    cfg = load_config(config, overrides)
    check_output_dir(out)  # '' would be the current directory
    if source is not None:
        source = clean_source(source)  # it names a partition directory: never a path
    files, ignored = discover_inputs(inputs, exclude=Path(out).resolve())
    n_tasks = tasks if tasks is not None else min(len(files), DEFAULT_MAX_TASKS)
    if n_tasks < 1:
        raise InputError(f"--tasks must be ≥ 1, got {n_tasks}")
    _, tok_info = load_tokenizer(tokenizer)
    cls_step = classify_step(cfg, classifier)
    p = RunPlan(Path(out).resolve(), files, ignored, n_tasks, cfg, tok_info.as_dict(),
                cls_step.classifier_info() if cls_step is not None else None, source)
    p.stages = _stages(p, str(Path(tokenizer).resolve()), cls_step)
    return p


def _stages(p: RunPlan, tokenizer_path: str, cls_step: Any) -> list[Stage]:
    from foresight.pipeline.stages.base import ExclusionWriter
    from foresight.pipeline.stages.dedup import exact_steps, minhash_steps
    from foresight.pipeline.stages.finalize import Finalize
    from foresight.pipeline.stages.intermediate import IntermediateReader, IntermediateWriter
    from foresight.pipeline.stages.language import LanguageFilter
    from foresight.pipeline.stages.normalise import DropEmpty, Normalise
    from foresight.pipeline.stages.quality import quality_filters
    from foresight.pipeline.stages.read import InputReader
    from foresight.pipeline.stages.segment import Segmenter
    from foresight.pipeline.stages.tokenize import Tokenize
    from foresight.pipeline.stages.write import ShardWriter

    cfg, work, T = p.config, p.work, p.tasks
    docs = str(work / "docs")
    keep_excluded = cfg.write.exclusions

    def excluded(step: str) -> ExclusionWriter | None:
        return ExclusionWriter(str(p.out / EXCLUDED_DIR / step), step) if keep_excluded else None

    def stage(name: str, steps: list[Any], tasks: int = T, per_rank: bool = True, always: bool = False) -> Stage:
        return Stage(name, steps, tasks, str(work / "logs" / name), per_rank, always)

    reader = InputReader([f.as_dict() for f in p.files], cfg.read.text_key, cfg.read.max_doc_chars, p.source)
    reader.exclusion_writer = excluded("unreadable")
    read: list[Any] = [reader]
    if cfg.normalise.enabled:
        read += [Normalise(), DropEmpty(exclusion_writer=excluded("empty"))]
    for flt in quality_filters(cfg.filters):
        flt.exclusion_writer = excluded(flt.filter_name)
        read.append(flt)
    lang = cfg.language
    if lang.enabled:
        read.append(LanguageFilter(list(lang.languages), lang.threshold, list(lang.exempt_sources), lang.detect_code))
        read[-1].exclusion_writer = excluded("language")
    stages = [stage("filter", [*read, IntermediateWriter(docs)])]

    final_filters: list[Any] = []
    if cfg.dedup.exact.enabled:
        ex = exact_steps(str(work / "exact"), excluded(EXACT_DUPLICATE))
        stages += [stage("exact-sigs", [IntermediateReader(docs), ex["signature"]]),
                   stage("exact-find", [ex["find"]], tasks=1, per_rank=False)]
        final_filters.append(ex["filter"])
    mh_cfg = cfg.dedup.minhash
    if mh_cfg.enabled:
        mh = minhash_steps(str(work / "minhash"), mh_cfg, excluded(NEAR_DUPLICATE))
        # Signatures are taken after the exact filter, so the MinHash filter sees the same document positions.
        before = [ex["filter_uncounted"]] if cfg.dedup.exact.enabled else []
        stages += [stage("minhash-sigs", [IntermediateReader(docs), *before, mh["signature"]]),
                   stage("minhash-buckets", [mh["buckets"]], tasks=mh_cfg.num_buckets, per_rank=False),
                   stage("minhash-cluster", [mh["cluster"]], tasks=1, per_rank=False)]
        final_filters.append(mh["filter"])

    with_labels = cls_step is not None
    signals = ("lang_score",) if lang.enabled else ()
    tail = [Segmenter(tokenizer_path, cfg.segment.max_tokens, cfg.segment.batch_size),
            Tokenize(tokenizer_path, cfg.tokenize.batch_size)]
    if with_labels:
        tail.append(cls_step)  # classify insertion point: segment documents, before the writer
    tail.append(ShardWriter(str(p.out), with_labels, signals, cfg.write.rows_per_group))
    stages.append(stage("segment", [IntermediateReader(docs), *final_filters, *tail]))

    per_rank_logs = [s.logging_dir for s in stages if s.per_rank]
    stages.append(stage("finalize", [Finalize(str(p.out), per_rank_logs, T, p.tokenizer, p.classifier,
                                              p.index_config())], tasks=1, per_rank=False, always=True))
    return stages


def fingerprint(p: RunPlan, cache: dict[str, Any] | None = None) -> dict[str, Any]:
    """What must match for a rerun to resume into the same output directory: inputs (each file's size and
    content hash, ``pipeline.inputstate``; ``cache`` spares re-reading unchanged files), config, tokenizer,
    classifier."""
    return {"foresight_version": __version__, "config": p.index_config(), "tokenizer": p.tokenizer,
            "classifier": p.classifier, "input_state": {f.path: f.state(cache) for f in p.files}}


def _changed_inputs(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Inputs of the same run whose size or content differ from when it began (empty if the runs differ otherwise)."""
    rest = lambda fp: {k: v for k, v in fp.items() if k != "input_state"}  # noqa: E731
    if rest(old) != rest(new):
        return []
    before, now = old.get("input_state") or {}, new.get("input_state") or {}
    return sorted(path for path in now if path in before and before[path] != now[path])


def prepare_output(p: RunPlan, overwrite: bool = False) -> bool:
    """Create or check ``OUT``. Returns True when resuming an earlier run of the same plan.

    A rerun of the same plan (inputs, config, tokenizer, classifier, tasks) resumes. A directory holding a
    different run is refused unless ``overwrite`` (then its data/, stats/, _work/ and index are removed),
    so the completion markers of one run never skip the work of another.
    """
    run_file, cache_file = p.work / RUN_FILE, p.work / HASH_CACHE_FILE
    try:
        cache = json.loads(cache_file.read_text(encoding="utf-8")) if cache_file.is_file() else {}
    except (OSError, ValueError):
        cache = {}  # a damaged cache only costs re-hashing
    want = json.loads(json.dumps(fingerprint(p, cache), sort_keys=True))
    _refuse_queued_jobs(p)
    if p.out.exists() and any(p.out.iterdir()):
        if not (p.work.is_dir() or (p.out / INDEX_FILE).is_file()):
            raise OutputDirError(f"{p.out} exists and is not a foresight shard directory; choose an empty --out")
        old = json.loads(run_file.read_text(encoding="utf-8")) if run_file.is_file() else None
        if old == want:
            write_json_atomic(cache_file, cache)
            return True
        if not overwrite:
            changed = _changed_inputs(old, want) if old else []
            if changed:
                raise OutputDirError(f"input {changed[0]} changed since {p.out} was written (size or content"
                                     f"{f'; {len(changed) - 1} more' if len(changed) > 1 else ''}); pass "
                                     "--overwrite to rebuild from the current inputs")
            what = (f"finished shards without resume data ({WORK_DIR}/ removed)" if not run_file.is_file()
                    else "a different run (inputs, --source, config, tokenizer, classifier or --tasks differ)")
            raise OutputDirError(f"{p.out} holds {what}; use another --out or pass --overwrite to rebuild")
        for name in (DATA_DIR, STATS_DIR, WORK_DIR, EXCLUDED_DIR):
            shutil.rmtree(p.out / name, ignore_errors=True)
        (p.out / INDEX_FILE).unlink(missing_ok=True)
    p.work.mkdir(parents=True, exist_ok=True)
    write_json_atomic(run_file, want)
    write_json_atomic(cache_file, cache)
    return False


def _refuse_queued_jobs(p: RunPlan) -> None:
    """No run (resumed, overwriting, any executor) while Slurm jobs of an earlier launch into OUT are queued."""
    queued = queued_slurm_jobs(p.work / SLURM_JOBS_FILE)
    if queued:
        jobs = "; ".join(f"{name} (job {job}: {state})" for name, job, state in queued)
        raise OutputDirError(f"Slurm jobs of an earlier launch into {p.out} are still queued: {jobs}. Wait for "
                             f"them to end, or cancel them (scancel {' '.join(j for _, j, _ in queued)}), "
                             "then rerun")


def completed_tasks(stages: list[Stage]) -> list[tuple[str, int, int]]:
    """(stage, tasks completed, tasks) from datatrove's completion markers: a run's progress, even a resumed one."""
    out = []
    for st in stages:
        done_dir = Path(st.logging_dir) / "completions"
        out.append((st.name, len(list(done_dir.iterdir())) if done_dir.is_dir() else 0, st.tasks))
    return out


def connect_ray(workers: int = 1) -> Callable[[], None] | None:
    """Join the Ray cluster at ``RAY_ADDRESS`` (``ray start --head`` prints it), or start a local one with
    ``workers`` CPUs when none is set; a session the caller already opened with ``ray.init`` is kept.
    Returns the function that disconnects (and stops a local cluster) when this call connected, else None.

    A local cluster lives in a private temporary directory watched by an ``orphans.Reaper``: if this process
    is killed (``kill -9``), every Ray process of that cluster is killed too, none is left to PID 1."""
    import os
    import tempfile

    try:
        import ray
    except ModuleNotFoundError:
        raise InputError("--executor ray needs Ray: pip install 'foresight[ray]'") from None
    if ray.is_initialized():
        return None
    address = os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address, log_to_driver=False)
        return ray.shutdown
    from foresight.pipeline.orphans import Reaper

    temp = tempfile.mkdtemp(prefix="foresight-ray-")  # short: Ray's socket paths live under it
    reaper = Reaper(temp, remove=True)
    try:
        ray.init(num_cpus=max(1, workers), include_dashboard=False, log_to_driver=False, _temp_dir=temp)
    except BaseException:
        reaper.close()
        raise

    def disconnect() -> None:
        try:
            ray.shutdown()
        finally:
            reaper.close()

    return disconnect


def run_stages(p: RunPlan, executor: str = "local", workers: int = 1) -> list[tuple[str, str]]:
    """Run (or, for Slurm/Ray, launch) every stage; the last executor runs its dependencies first.
    Returns the (job name, id) of each Slurm job submitted (recorded in ``_work``, for the next run's check)."""
    if executor == "local":
        from foresight.pipeline.orphans import install

        install()  # the Manager server and pool workers die with us, even on kill -9
    disconnect = connect_ray(workers) if executor == "ray" else None
    executors: list = []
    jobs: list[tuple[str, str]] = []
    try:
        executors = build_executors(p.stages, executor, workers, p.config.executor)
        executors[-1].run()
    finally:
        if disconnect is not None:
            disconnect()
        if executor == "slurm" and executors:  # also after a failed sbatch: the jobs submitted before it run
            jobs = record_slurm_jobs(p.work / SLURM_JOBS_FILE, executors)
    return jobs


def execute(p: RunPlan, executor: str = "local", workers: int = 1, overwrite: bool = False) -> bool:
    """Prepare ``OUT`` and run every stage. Returns True when it resumed an earlier run."""
    from foresight.formats.lock import locked

    with locked(p.out, f"--out {p.out}"):
        resumed = prepare_output(p, overwrite)
        run_stages(p, executor, workers)
    return resumed

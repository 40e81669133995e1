"""Whole-pipeline curation: ``foresight curate`` (the CLI path, default config and classifier) vs a datatrove-only
pipeline on the same corpus, with the same tasks and workers, side by side in one run.

The reference does less than ours (no language ID, exact dedup, segmentation or classification, and its quality
filters exempt no source):
  filter:          JsonlReader → GopherRepetitionFilter → GopherQualityFilter → FineWebQualityFilter → JsonlWriter
  minhash-sigs:    JsonlReader → MinhashDedupSignature          minhash-buckets (one task per bucket)
  minhash-cluster: 1 task                                       tokenize: JsonlReader → MinhashDedupFilter →
                                                                          DocumentTokenizer
with our MinHash settings (5-grams, 14 buckets × 8 hashes, 64-bit) and our tokenizer. Both run as child
processes; per-stage wall seconds come from datatrove's completion markers (when each stage's last task
finished) and the task-seconds from its ``stats.json`` (the steps' own timers summed over tasks).

Prints per-stage seconds of both and ``curate_vs_datatrove: ratio=…`` (> 1 means ours is faster).
Usage: python benchmarks/bench_curate.py [--corpus demo/corpus] [--tokenizer demo/tokenizer.json]
       [--workers 2] [--tasks N] [--rounds 1] [--dir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REF_STAGES = ("filter", "minhash-sigs", "minhash-buckets", "minhash-cluster", "tokenize")


def child_env() -> dict[str, str]:
    """Run children from this checkout (not whatever ``foresight`` is installed), offline, quiet tokenizers."""
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), TOKENIZERS_PARALLELISM="false", HF_HUB_OFFLINE="1")
    return env


def ours_command(corpus: Path, out: Path, tokenizer: Path, workers: int, tasks: int | None) -> list[str]:
    cmd = [sys.executable, "-m", "foresight", "curate", str(corpus), "--out", str(out), "--tokenizer",
           str(tokenizer), "--workers", str(workers)]
    return cmd + (["--tasks", str(tasks)] if tasks else [])


def reference_command(corpus: Path, out: Path, tokenizer: Path, workers: int, tasks: int) -> list[str]:
    return [sys.executable, str(Path(__file__).resolve()), "--run-reference", str(out), "--corpus", str(corpus),
            "--tokenizer", str(tokenizer), "--workers", str(workers), "--tasks", str(tasks)]


def default_tasks(corpus: Path) -> int:
    """What ``curate`` picks: min(input files, 8)."""
    return min(len([p for p in corpus.rglob("*.jsonl*") if p.is_file()]), 8)


def reference_pipeline(corpus: Path, out: Path, tokenizer: Path, workers: int, tasks: int) -> None:
    """The datatrove-only pipeline (module docstring), run with datatrove's LocalPipelineExecutor."""
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.dedup.minhash import (
        MinhashConfig,
        MinhashDedupBuckets,
        MinhashDedupCluster,
        MinhashDedupFilter,
        MinhashDedupSignature,
    )
    from datatrove.pipeline.filters import FineWebQualityFilter, GopherQualityFilter, GopherRepetitionFilter
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.tokens import DocumentTokenizer
    from datatrove.pipeline.writers import JsonlWriter
    from datatrove.utils.hashing import HashConfig

    from foresight.formats.tokenizer import load_tokenizer

    mh = MinhashConfig(n_grams=5, num_buckets=14, hashes_per_bucket=8, seed=1, hash_config=HashConfig(precision=64))
    work, docs = out / "_work", out / "_work" / "docs"
    tok, info = load_tokenizer(tokenizer)
    eos = tok.id_to_token(info.eos_id)
    pipelines = {
        "filter": ([JsonlReader(str(corpus), glob_pattern="**/*.jsonl"), GopherRepetitionFilter(),
                    GopherQualityFilter(), FineWebQualityFilter(), JsonlWriter(str(docs))], tasks),
        "minhash-sigs": ([JsonlReader(str(docs)), MinhashDedupSignature(str(work / "sigs"), config=mh)], tasks),
        "minhash-buckets": ([MinhashDedupBuckets(str(work / "sigs"), str(work / "buckets"), config=mh)],
                            mh.num_buckets),
        "minhash-cluster": ([MinhashDedupCluster(str(work / "buckets"), str(work / "remove"), config=mh)], 1),
        "tokenize": ([JsonlReader(str(docs)), MinhashDedupFilter(str(work / "remove")),
                      DocumentTokenizer(str(out / "tokens"), tokenizer_name_or_path=str(tokenizer),
                                        eos_token=eos)], tasks),
    }
    prev = None
    for name, (steps, n) in pipelines.items():
        prev = LocalPipelineExecutor(steps, tasks=n, workers=max(1, min(workers, n)), depends=prev,
                                     logging_dir=str(work / "logs" / name))
    prev.run()


def stage_figures(logs: Path, names: list[str], started: float) -> list[tuple[str, float, float]]:
    """(stage, wall seconds, task seconds) per stage: wall from the latest completion marker of each stage
    (stages run one after another), task seconds = datatrove's step timers summed over tasks."""
    out, prev_end = [], started
    for name in names:
        marks = list((logs / name / "completions").iterdir()) if (logs / name / "completions").is_dir() else []
        end = max((m.stat().st_mtime for m in marks), default=prev_end)
        stats = logs / name / "stats.json"
        task_s = 0.0
        if stats.is_file():
            task_s = sum(s["time_stats"]["total"] for s in json.loads(stats.read_text())
                         if isinstance(s.get("time_stats"), dict))
        out.append((name, end - prev_end, task_s))
        prev_end = end
    return out


def timed_run(cmd: list[str], log: Path) -> float:
    t0 = time.time()
    with open(log, "w") as fh:
        subprocess.run(cmd, check=True, env=child_env(), stdout=fh, stderr=subprocess.STDOUT, cwd=ROOT)
    return time.time() - t0


def ours_stage_names(logs: Path) -> list[str]:
    order = ["filter", "exact-sigs", "exact-find", "minhash-sigs", "minhash-buckets", "minhash-cluster", "segment",
             "finalize"]
    return [n for n in order if (logs / n).is_dir()]


def print_stages(label: str, figures: list[tuple[str, float, float]]) -> None:
    print(f"{label}: " + ", ".join(f"{n} {w:.1f}s ({t:.1f} task-s)" for n, w, t in figures))


def one_round(args: argparse.Namespace, work: Path, r: int) -> tuple[float, float]:
    tasks = args.tasks or default_tasks(args.corpus)
    ours_out, ref_out = work / f"ours{r}", work / f"ref{r}"
    for d in (ours_out, ref_out):
        shutil.rmtree(d, ignore_errors=True)
    # alternate which side runs first, so a load change during the round does not always favour one side
    runs = [("ours", ours_out), ("reference", ref_out)]
    walls: dict[str, float] = {}
    for label, out in (runs if r % 2 == 0 else runs[::-1]):
        cmd = (ours_command(args.corpus, out, args.tokenizer, args.workers, args.tasks) if label == "ours"
               else reference_command(args.corpus, out, args.tokenizer, args.workers, tasks))
        start = time.time()
        walls[label] = timed_run(cmd, work / f"{label}{r}.log")
        logs = out / "_work" / "logs"
        names = ours_stage_names(logs) if label == "ours" else list(REF_STAGES)
        print_stages(f"  round {r} {label} ({walls[label]:.1f}s)", stage_figures(logs, names, start))
    return walls["ours"], walls["reference"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", type=Path, default=ROOT / "demo" / "corpus")
    ap.add_argument("--tokenizer", type=Path, default=ROOT / "demo" / "tokenizer.json")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--tasks", type=int, default=None, help="default: what curate picks, min(files, 8)")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--dir", type=Path, default=None, help="keep outputs here (default: a temporary dir)")
    ap.add_argument("--run-reference", type=Path, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    args.corpus, args.tokenizer = args.corpus.resolve(), args.tokenizer.resolve()
    if args.run_reference is not None:
        reference_pipeline(args.corpus, args.run_reference, args.tokenizer, args.workers, args.tasks)
        return
    work = args.dir or Path(tempfile.mkdtemp(prefix="bench_curate_"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        results = [one_round(args, work, r) for r in range(args.rounds)]
    finally:
        if args.dir is None:
            shutil.rmtree(work, ignore_errors=True)
    ours, ref = min(o for o, _ in results), min(f for _, f in results)
    print(f"curate_vs_datatrove: ratio={ref / ours:.2f} (ours {ours:.1f}s / reference {ref:.1f}s, best of "
          f"{args.rounds}; {args.workers} workers, {args.tasks or default_tasks(args.corpus)} tasks; the reference "
          "does no language ID, exact dedup, segmentation or classification)")


if __name__ == "__main__":
    main()

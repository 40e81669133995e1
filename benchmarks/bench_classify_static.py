"""The CPU default classifier (static embeddings + heads) as the classify stage runs it, beside the fastText stage
and bare model2vec (``StaticModel.encode`` on the same vectors, no heads, no metadata).

Texts: segments of a shard directory (``--shards``, what curate classifies) or the packaged labelled set. Each path
runs in ``--workers`` processes on its share of the documents (as ``curate --workers`` does); the model loads
before the timing. Prints segments/s on the workers (wall), segments per CPU-second, and the ratios; ratio > 1 means
ours is faster.

Example: python benchmarks/bench_classify_static.py --shards demo/shards --docs 40000 --workers 2
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

_STATE: dict = {}


def _load(kind: str) -> None:
    """Worker initialiser: build the path's model once, outside the timing."""
    if kind in ("static", "fasttext"):
        from foresight.pipeline.stages.classify import build_classify_step

        step = build_classify_step("default" if kind == "static" else "fasttext")
        _ = step.classifier
        _STATE["run"] = step
    else:
        from model2vec import StaticModel

        from foresight.classifiers.base import PACKAGED

        _STATE["run"] = StaticModel.from_pretrained(str(PACKAGED["static"]))


def _work(args: tuple[str, list[str]]) -> tuple[float, float]:
    from datatrove.data import Document

    kind, texts = args
    runner = _STATE["run"]
    docs = [Document(text=t, id=str(i)) for i, t in enumerate(texts)]
    t0, c0 = time.perf_counter(), time.process_time()
    if kind == "model2vec":
        for b in range(0, len(texts), 1024):
            runner.encode(texts[b: b + 1024], batch_size=1024)
    else:
        for _ in runner.run(iter(docs)):
            pass
    return time.perf_counter() - t0, time.process_time() - c0


def run_path(kind: str, texts: list[str], workers: int) -> tuple[float, float]:
    """(segments/s over the workers by wall time, segments per CPU-second)."""
    parts = [texts[w::workers] for w in range(workers)]
    with mp.get_context("fork").Pool(workers, initializer=_load, initargs=(kind,)) as pool:
        pool.map(_work, [(kind, p[:50]) for p in parts])  # warm-up: every worker has loaded its model
        t0 = time.perf_counter()
        res = pool.map(_work, [(kind, p) for p in parts])
        wall = time.perf_counter() - t0
    return len(texts) / wall, len(texts) / sum(c for _, c in res)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shards", type=Path, help="classify this shard directory's segments (default: the labelled set)")
    ap.add_argument("--docs", type=int, default=40000, help="segments per path (cycled if fewer exist)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3, help="best of N interleaved runs per path")
    args = ap.parse_args()

    if args.shards:
        from foresight.pipeline.stages.classify import read_segments

        base = read_segments(args.shards)["text"]
    else:
        from foresight.classifiers.base import MODELS_DIR
        from foresight.classifiers.labelsio import read_labels

        base = read_labels(MODELS_DIR.parent / "data" / "labelled.parquet")[1]
    texts = [base[i % len(base)] for i in range(args.docs)]
    chars = sum(map(len, texts)) / len(texts)
    best = {k: (0.0, 0.0) for k in ("static", "fasttext", "model2vec")}
    for _ in range(args.repeats):
        for kind in best:
            wall, cpu = run_path(kind, texts, args.workers)
            best[kind] = (max(best[kind][0], wall), max(best[kind][1], cpu))
    print(f"docs={args.docs} mean_chars={chars:.0f} workers={args.workers}")
    s, f, m = best["static"], best["fasttext"], best["model2vec"]
    print(f"classify_static_segments_per_s: {s[0]:.0f} on {args.workers} workers ({s[1]:.0f} per CPU-second); "
          f"target ≥ 2000 on 2 cores")
    for name, ref in (("fasttext", f), ("bare_model2vec", m)):
        print(f"classify_static_vs_{name}: ratio={s[0] / ref[0]:.2f} (ours {s[0]:.0f} segs/s / reference "
              f"{ref[0]:.0f} segs/s); per CPU-second {s[1] / ref[1]:.2f} ({s[1]:.0f} / {ref[1]:.0f})")


if __name__ == "__main__":
    main()

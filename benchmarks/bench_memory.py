"""Peak memory of ``foresight curate`` on 1× and N× (default 4×) the demo corpus: it should stay flat, as the
pipeline streams documents (docs/pipeline.md, "Resume, determinism, scale").

The N× corpus is the corpus plus N−1 perturbed copies of every file. A plain copy would be removed by exact
dedup right after the filter stage, so the later stages would see 1× the data. Each copy instead gets a
copy-specific English word (``indeed``, ``truly``, …) inserted before every fourth space-separated token and a
``@copy<k>`` suffix on its ids: every 5-gram then holds a marker word, so copies survive exact and MinHash dedup
and the quality/language filters treat them like the original (a text without spaces stays a duplicate).

Each run is a child process with the same ``--tasks`` and ``--workers``. Memory is sampled every 0.1 s from
/proc over the whole process tree (curate, datatrove's Manager and pool workers): the peak of the summed RSS and
the peak of the largest single process. Prints both peaks per scale and
``curate_peak_rss_{N}x_vs_1x: ratio=…`` (≈ 1 means flat; > 1 means memory grows with the corpus).
Usage: python benchmarks/bench_memory.py [--corpus demo/corpus] [--tokenizer demo/tokenizer.json] [--scale 4]
       [--workers 2] [--tasks 8] [--dir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_curate import ROOT, child_env, ours_command  # noqa: E402

MARKERS = ("indeed", "truly", "also", "really", "quite", "still", "often")


def perturb(text: str, marker: str) -> str:
    """``marker`` before every fourth space-separated token (deterministic; line structure kept)."""
    parts = text.split(" ")
    return " ".join(f"{marker} {p}" if i and i % 4 == 0 else p for i, p in enumerate(parts))


def scaled_corpus(corpus: Path, out: Path, scale: int) -> Path:
    """``corpus`` (hard-linked or copied as is) plus ``scale - 1`` perturbed copies of each JSONL file, in the
    same source directories."""
    if scale - 1 > len(MARKERS):
        raise ValueError(f"--scale at most {len(MARKERS) + 1}")
    for src in sorted(corpus.rglob("*.jsonl")):
        rel = src.relative_to(corpus)
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, out / rel)
        for k in range(1, scale):
            with open(src, encoding="utf-8") as fin, \
                    open(out / rel.with_name(f"{rel.stem}-copy{k}.jsonl"), "w", encoding="utf-8") as fout:
                for line in fin:
                    obj = json.loads(line)
                    obj["text"] = perturb(obj["text"], MARKERS[k - 1])
                    if "id" in obj:
                        obj["id"] = f"{obj['id']}@copy{k}"
                    fout.write(json.dumps(obj, ensure_ascii=False) + "\n")
    return out


def tree_rss(root_pid: int) -> tuple[int, int]:
    """(summed RSS, largest RSS) in bytes of ``root_pid`` and all its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid, ppid = int(d), int(fields[1])
        children.setdefault(ppid, []).append(pid)
        rss[pid] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
    total, largest, stack = 0, 0, [root_pid]
    while stack:
        pid = stack.pop()
        total, largest = total + rss.get(pid, 0), max(largest, rss.get(pid, 0))
        stack.extend(children.get(pid, []))
    return total, largest


def measured_run(cmd: list[str], log: Path) -> tuple[float, int, int]:
    """(wall seconds, peak summed RSS of the process tree, peak RSS of its largest process), bytes."""
    peak, single = 0, 0
    with open(log, "w") as fh:
        t0 = time.time()
        proc = subprocess.Popen(cmd, env=child_env(), stdout=fh, stderr=subprocess.STDOUT, cwd=ROOT)
        done = threading.Event()

        def sample() -> None:
            nonlocal peak, single
            while not done.wait(0.1):
                total, largest = tree_rss(proc.pid)
                peak, single = max(peak, total), max(single, largest)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        rc = proc.wait()
        done.set()
        sampler.join()
    if rc:
        raise RuntimeError(f"{' '.join(cmd)} failed ({rc}); see {log}")
    return time.time() - t0, peak, single


def documents(out: Path) -> tuple[int, int, int]:
    """(documents read, documents kept, tokens) from the run's index.json accounting."""
    index = json.loads((out / "index.json").read_text())
    acct = index["accounting"]
    return int(acct["read"]), int(acct["kept"]), int(index["totals"]["tokens"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", type=Path, default=ROOT / "demo" / "corpus")
    ap.add_argument("--tokenizer", type=Path, default=ROOT / "demo" / "tokenizer.json")
    ap.add_argument("--scale", type=int, default=4)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--tasks", type=int, default=8, help="the same for every scale (curate's default is "
                                                          "min(files, 8), which would differ)")
    ap.add_argument("--dir", type=Path, default=None, help="keep corpora and outputs here")
    args = ap.parse_args()
    work = args.dir or Path(tempfile.mkdtemp(prefix="bench_memory_"))
    work.mkdir(parents=True, exist_ok=True)
    peaks = {}
    try:
        for scale in (1, args.scale):
            corpus = args.corpus.resolve() if scale == 1 else scaled_corpus(args.corpus, work / f"corpus{scale}x",
                                                                             scale)
            out = work / f"shards{scale}x"
            shutil.rmtree(out, ignore_errors=True)
            cmd = ours_command(corpus, out, args.tokenizer.resolve(), args.workers, args.tasks)
            wall, peak, single = measured_run(cmd, work / f"curate{scale}x.log")
            read, kept, tokens = documents(out)
            peaks[scale] = peak
            print(f"{scale}x: {read:,} documents read, {kept:,} kept, {tokens:,} tokens in {wall:.0f}s; peak RSS "
                  f"{peak / 2**20:,.0f} MiB summed over the process tree, largest single process "
                  f"{single / 2**20:,.0f} MiB")
    finally:
        if args.dir is None:
            shutil.rmtree(work, ignore_errors=True)
    print(f"curate_peak_rss_{args.scale}x_vs_1x: ratio={peaks[args.scale] / peaks[1]:.2f} "
          f"({peaks[args.scale] / 2**20:,.0f} MiB / {peaks[1] / 2**20:,.0f} MiB; {args.workers} workers, "
          f"{args.tasks} tasks; ≈ 1 means flat)")


if __name__ == "__main__":
    main()

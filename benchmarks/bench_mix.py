"""Manifest selection over a synthetic 10 M-row shard set: ours (DuckDB scan + numpy) vs a per-row Python loop.

The script generates the shard set itself with DuckDB (six sources, Hive layout, real ``text_sha256`` of each
row's short text, token lists of 1–63 ids, the ``heldout_bucket`` curate stores, ``reasoning``/``visual`` flags)
plus its ``index.json``, then:
- ours: ``mixtures.plan`` + ``manifests.build.write_manifest`` for an LSBS-mix6-like spec (six source pools,
  held-out split excluded, 25 % of the corpus tokens), with DuckDB limited to ``--threads`` (default 2);
- reference: a straightforward per-row Python loop (read rows as dicts, held-out test and pool predicates per
  row, md5 order key per row, sort, greedy take with one cut, shuffle, write entries) on a SUBSAMPLE of
  ``--ref-rows`` rows, its time extrapolated linearly to the full row count (this flatters the reference:
  its sort is n log n).

Prints ``mix_select_<rows>_vs_python_loop: ratio=… (ours …s, the median of --repeats builds / reference …s)``
(``<rows>`` is --rows: 10m, 250k, …); ratio > 1 means ours is faster.
Usage: python benchmarks/bench_mix.py [--rows 10000000] [--threads 2] [--repeats 3] [--fraction 0.25]
       [--files-per-source 4] [--memory-limit 1GB] [--dir DIR (kept and reused)]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from foresight.formats.index import ShardIndex
from foresight.formats.splits import bucket_sql, is_heldout
from foresight.manifests.build import write_manifest
from foresight.mixtures import load_spec, plan

SOURCES = ("code", "math", "academia", "literature", "encyclopedia", "web-crawl")
MIX6 = {"web-crawl": 0.40, "encyclopedia": 0.08, "academia": 0.05, "literature": 0.02, "math": 0.10, "code": 0.35}
FILES_PER_SOURCE = 4
COLUMNS = ["id", "doc_id", "source", "n_tokens", "text_sha256"]


SYNTHETIC_TOKENIZER = {"name": "synthetic", "sha256": "0" * 64, "vocab_size": 16384, "eos_id": 0, "pad_id": 1}


def generate(root: Path, rows: int, threads: int, *, files_per_source: int = FILES_PER_SOURCE,
             tokens: tuple[int, int] = (1, 63), fill: str = "0",
             tokenizer: dict[str, Any] | None = None) -> None:
    """Write ``rows`` segments as 6 sources x ``files_per_source`` files of zstd Parquet, then index.json (hashes
    every file). Each row holds ``tokens[0]``–``tokens[1]`` token ids, all equal to the SQL ``fill`` (over the
    row number ``i``): repeated ids compress to almost nothing, so billions of tokens fit on a small disk."""
    con = duckdb.connect()
    con.execute(f"SET threads = {threads}")
    per = rows // (len(SOURCES) * files_per_source)
    lo_n, span = tokens[0], tokens[1] - tokens[0] + 1
    rels, k = [], 0
    for src in SOURCES:
        (root / "data" / f"source={src}").mkdir(parents=True, exist_ok=True)
        for rank in range(files_per_source):
            lo, k = k * per, k + 1
            rel = f"data/source={src}/part-{rank:05d}.parquet"
            con.execute(f"""COPY (
                SELECT doc_id || '#0' AS id, doc_id, 0::INTEGER AS segment, '{src}' AS source,
                       NULL::VARCHAR AS url, NULL::VARCHAR AS path, 'segment ' || i AS text,
                       unhex(sha256('segment ' || i)) AS text_sha256,
                       list_resize([]::UINTEGER[], n, ({fill})::UINTEGER) AS tokens, n AS n_tokens,
                       {bucket_sql('doc_id')}::USMALLINT AS heldout_bucket,
                       h % 3 = 0 AS reasoning, h % 4 = 1 AS visual
                FROM (SELECT i, 'd' || i AS doc_id, ({lo_n} + hash(i) % {span})::INTEGER AS n, hash(i * 7) AS h
                      FROM range({lo}, {lo + per}) t(i))
            ) TO '{root / rel}' (FORMAT parquet, COMPRESSION zstd)""")
            rels.append(rel)
    ShardIndex.build(root, rels, tokenizer=tokenizer or SYNTHETIC_TOKENIZER, classifier=None,
                     config={"bench": "mix"}).write(root)


def spec_text(total: int) -> str:
    pools = "".join(f'\n[pools.{s}]\nsource = "{s}"\nweight = {w}\n' for s, w in MIX6.items())
    return f'name = "bench_mix6"\ntotal_tokens = {total}\nseed = 0\nexclude = ["heldout"]\n{pools}'


def run_ours(root: Path, spec_path: Path, out: Path, threads: int, memory_limit: str | None = None) -> dict[str, Any]:
    """Wall and CPU seconds (all threads) of plan + write; CPU shows the cost when the machine is shared."""
    t0, c0 = time.perf_counter(), time.process_time()
    with plan(load_spec(spec_path), root, threads=threads, memory_limit=memory_limit) as p:  # as `foresight mix`
        t1 = time.perf_counter()
        write_manifest(p, out, overwrite=True)  # each repeat replaces the last one's manifest
    t2 = time.perf_counter()
    return {"wall": t2 - t0, "cpu": time.process_time() - c0, "parts": {**p.timings, "write_s": t2 - t1},
            "entries": p.n_entries, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def run_ours_fresh(root: Path, spec_path: Path, out: Path, threads: int,
                   memory_limit: str | None = None) -> dict[str, Any]:
    """:func:`run_ours` in a new process, as `foresight mix build` runs: no heap or caches from an earlier build."""
    args = [sys.executable, __file__, "--child", str(root), str(spec_path), str(out), str(threads),
            *([memory_limit] if memory_limit else [])]
    done = subprocess.run(args, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"the build failed (exit {done.returncode}):\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_reference(root: Path, n_rows: int, fraction: float, out: Path) -> tuple[float, int]:
    """Per-row Python loop over the first rows of every file (n_rows in all)."""
    files = [f.path for f in ShardIndex.load(root).files]
    t0 = time.perf_counter()
    buckets: dict[str, list[tuple]] = {s: [] for s in MIX6}
    total_tokens = 0
    for rel in files:
        batch = next(pq.ParquetFile(root / rel).iter_batches(batch_size=n_rows // len(files), columns=COLUMNS))
        for r, row in enumerate(batch.to_pylist()):
            if is_heldout(row["doc_id"]):
                continue
            for name in MIX6:  # pool predicates: source = <name>
                if row["source"] == name:
                    key = int.from_bytes(hashlib.md5(f"0:{row['id']}".encode()).digest()[:8], "little")
                    buckets[name].append((key, rel, r, row["n_tokens"], row["id"], row["doc_id"],
                                          row["text_sha256"]))
                    total_tokens += row["n_tokens"]
                    break
    target_total = int(total_tokens * fraction)
    entries = []
    for name, weight in MIX6.items():
        need = int(weight * target_total)
        for _key, rel, r, n, sid, doc, sha in sorted(buckets[name]):
            if need <= 0:
                break
            take = min(n, need)
            entries.append({"pool": name, "id": sid, "doc_id": doc, "file": rel, "row": r, "start": 0,
                            "end": take, "n_tokens": take, "text_sha256": sha, "epoch": 0})
            need -= take
    random.Random(0).shuffle(entries)
    for i, e in enumerate(entries):
        e["order"] = i
    pq.write_table(pa.Table.from_pylist(entries), out)
    return time.perf_counter() - t0, len(entries)


def _size_name(rows: int) -> str:
    """10000000 -> 10m, 9999984 -> 10m, 250000 -> 250k, 1500000000 -> 1.5b: the printed name follows the rows."""
    for unit, div in (("b", 10**9), ("m", 10**6), ("k", 10**3)):
        if rows >= div:
            return f"{rows / div:.3g}{unit}"
    return str(rows)


def main() -> None:
    if sys.argv[1:2] == ["--child"]:
        root, spec_path, out, threads = sys.argv[2:6]
        limit = sys.argv[6] if len(sys.argv) > 6 else None
        print(json.dumps(run_ours(Path(root), Path(spec_path), Path(out), int(threads), limit)))
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--ref-rows", type=int, default=240_000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3, help="builds timed, each in a new process; prints the median")
    ap.add_argument("--fraction", type=float, default=0.25, help="mixture size as a fraction of corpus tokens")
    ap.add_argument("--dir", type=Path, default=None, help="keep the generated shards here and reuse them")
    ap.add_argument("--memory-limit", default=None, help="DuckDB's memory for the build, as `mix --memory-limit`")
    ap.add_argument("--files-per-source", type=int, default=FILES_PER_SOURCE,
                    help="shard files per source (6 sources); raise it with --rows so files stay a realistic size")
    args = ap.parse_args()
    work = args.dir or Path(tempfile.mkdtemp(prefix="bench_mix_"))
    layout = "" if args.files_per_source == FILES_PER_SOURCE else f"_{args.files_per_source}f"
    root = work / f"shards_{args.rows}{layout}_v2"  # v2: with heldout_bucket (an older cached set is not reused)
    try:
        if not (root / "index.json").is_file():
            t = time.perf_counter()
            generate(root, args.rows, args.threads, files_per_source=args.files_per_source)
            print(f"generated {args.rows:,} rows in {time.perf_counter() - t:.1f}s at {root}")
        totals = ShardIndex.load(root).totals
        rows, tokens = totals.rows, totals.tokens
        spec_path = work / "bench_mix6.toml"
        spec_path.write_text(spec_text(int(tokens * args.fraction * (1 - 0.03))))  # ~2 % held out
        walls = []
        for _ in range(args.repeats):  # each build in a fresh process: the spread is the machine's
            r = run_ours_fresh(root, spec_path, work / "manifest", args.threads, args.memory_limit)
            walls.append(r["wall"])
            print(f"ours: {rows:,} rows / {tokens:,} tokens -> {r['entries']:,} entries in {r['wall']:.2f}s wall, "
                  f"{r['cpu']:.2f}s CPU ({', '.join(f'{k} {v:.2f}' for k, v in r['parts'].items())}) "
                  f"with {args.threads} DuckDB threads, memory limit {args.memory_limit or 'default'}, "
                  f"peak RSS {r['peak_rss_mb']:.0f} MB")
        ours = statistics.median(walls)
        ref_sub, ref_entries = run_reference(root, args.ref_rows, args.fraction, work / "ref_entries.parquet")
        ref = ref_sub * rows / args.ref_rows
        print(f"reference: per-row Python loop on a {args.ref_rows:,}-row subsample took {ref_sub:.2f}s "
              f"({ref_entries:,} entries); extrapolated linearly to {rows:,} rows: {ref:.1f}s")
        print(f"mix_select_{_size_name(rows)}_vs_python_loop: ratio={ref / ours:.1f} (ours {ours:.2f}s, median of "
              f"{len(walls)} runs ({min(walls):.2f}-{max(walls):.2f}s) / reference {ref:.1f}s extrapolated); "
              f"goal 10M rows ≤ 6 s idle / ≤ 10 s shared: {ours:.2f}s at {rows:,} rows")
    finally:
        if args.dir is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

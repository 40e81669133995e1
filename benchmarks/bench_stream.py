"""Export and train one step on a manifest of billions of tokens: time and peak RSS of each, in a fresh process.

Generates synthetic shards with bench_mix's generator (6 sources x ``--files-per-source`` files, each row
``--row-tokens`` repeated token ids, so 2 B tokens take a few hundred MB of disk) and a tokenizer that the
trainer accepts, builds a manifest of ~99 % of the tokens (``foresight mix``'s plan + write), then runs
``manifests.export(..., "nanogpt")`` (uint16 ``train.bin``, plus the small held-out ``val.bin``) and
``train_manifest`` for one optimizer step (the tiny model on CPU; writing the uint32 ``tokens.u32`` stream is
most of it), each in its own process. The spans of the first and last entries are checked against the
shards. Prints one line per step: ``stream_export: …s, peak RSS … MB`` and ``stream_train_1_step: …`` with
the token count and the largest shard file's tokens (memory holds at most one file's, 4096 rows at a time).

Disk: nanoGPT's train.bin takes 2 bytes per token, ``tokens.u32`` 4 (both deleted at the end unless --dir).
Usage: PYTHONPATH=src python benchmarks/bench_stream.py [--tokens 2000000000] [--dir DIR]
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_mix import SOURCES, generate  # noqa: E402

from foresight import manifests  # noqa: E402
from foresight.formats.index import ShardIndex  # noqa: E402
from foresight.formats.tokenizer import load_tokenizer, train_tokenizer  # noqa: E402
from foresight.manifests.build import write_manifest  # noqa: E402
from foresight.mixtures import load_spec, plan  # noqa: E402

VOCAB = 300


def make_tokenizer(path: Path) -> dict[str, Any]:
    """A small BPE tokenizer (the trainer reads vocab size, EOS and pad from it); its index entry."""
    if not path.is_file():
        words = "the red ball sits on the table . we prove that x + y = 2 . def f ( x ) : return x".split()
        train_tokenizer([" ".join(words)] * 20, vocab_size=VOCAB, min_frequency=1).save(str(path))
    _, info = load_tokenizer(path)
    return info.as_dict()


def build(work: Path, tokens: int, row_tokens: int, files_per_source: int) -> Path:
    root = work / f"shards_{tokens}_{row_tokens}_{files_per_source}"
    if not (root / "index.json").is_file():
        t0 = time.perf_counter()
        tok = make_tokenizer(work / "tokenizer.json")
        rows = -(-tokens // row_tokens)
        # ids 2..VOCAB-1 (0 and 1 are the specials); varying per row so a misplaced span shows
        generate(root, rows, 2, files_per_source=files_per_source, tokens=(row_tokens, row_tokens),
                 fill=f"2 + i % {VOCAB - 2}", tokenizer=tok)
        totals = ShardIndex.load(root).totals
        print(f"generated {totals.rows:,} rows / {totals.tokens:,} tokens in {totals.files} files "
              f"in {time.perf_counter() - t0:.1f}s at {root}")
    shutil.copy(work / "tokenizer.json", root / "tokenizer.json")  # where train finds it
    mdir = work / "manifest"
    if not (mdir / "manifest.json").is_file():
        total = ShardIndex.load(root).totals.tokens
        pools = "".join(f'\n[pools.{s}]\nsource = "{s}"\nweight = {1 / len(SOURCES)}\n' for s in SOURCES)
        spec = work / "stream.toml"
        spec.write_text(f'name = "bench_stream"\ntotal_tokens = {int(total * 0.99)}\nseed = 0\n{pools}')
        t0 = time.perf_counter()
        with plan(load_spec(spec), root, threads=2) as p:
            write_manifest(p, mdir)
        print(f"manifest built in {time.perf_counter() - t0:.1f}s")
    return mdir


def step(kind: str, mdir: Path, out: Path) -> dict[str, Any]:
    """One measured step, run as a child process."""
    t0 = time.perf_counter()
    if kind == "export":
        meta = manifests.export(mdir, "nanogpt", out)
        n = meta["tokens"]
    else:
        from foresight.trainer.run import train_manifest
        from foresight.trainer.train import TrainConfig

        cfg = TrainConfig(seq_len=128, batch_tokens=1024, max_steps=1, device="cpu", checkpoint_every=0,
                          progress=False)
        info = train_manifest(mdir, out, cfg=cfg)
        n = info["tokens_expected"]
    return {"s": time.perf_counter() - t0, "tokens": n,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def check_ends(mdir: Path, path: Path, dtype: str) -> None:
    """The first and last entries' spans in the written stream equal their shard rows' tokens."""
    head, df = manifests.read(mdir)
    data = np.memmap(path, dtype=dtype, mode="r")
    lengths = (df["end"] - df["start"]).to_numpy()
    places = np.r_[0, np.cumsum(lengths)]
    root = Path(head.shards.root)
    for i in (0, len(df) - 1):
        row = pq.read_table(root / df["file"][i], columns=["tokens"]).column("tokens")[df["row"][i]].as_py()
        want = np.asarray(row[df["start"][i]:df["end"][i]])
        if not np.array_equal(np.asarray(data[places[i]:places[i + 1]]), want):
            raise SystemExit(f"entry {i}: the stream differs from its shard row")


def main() -> None:
    if sys.argv[1:2] == ["--child"]:
        print(json.dumps(step(sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4]))))
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tokens", type=int, default=2_000_000_000, help="corpus tokens (default 2 B)")
    ap.add_argument("--row-tokens", type=int, default=2048, help="tokens per segment")
    ap.add_argument("--files-per-source", type=int, default=8, help="shard files per source (6 sources)")
    ap.add_argument("--dir", type=Path, default=None, help="keep the shards and manifest here and reuse them")
    args = ap.parse_args()
    work = args.dir or Path(tempfile.mkdtemp(prefix="bench_stream_"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        mdir = build(work, args.tokens, args.row_tokens, args.files_per_source)
        index = ShardIndex.load(manifests.ManifestHeader.load(mdir).shards.root)
        biggest = max(f.tokens for f in index.files)
        for kind, out in (("export", work / "nanogpt"), ("train_1_step", work / "run")):
            got = json.loads(subprocess.run([sys.executable, __file__, "--child", kind.split("_")[0], str(mdir),
                                             str(out)], check=True, capture_output=True, text=True
                                            ).stdout.strip().splitlines()[-1])
            written = out / ("train.bin" if kind == "export" else "tokens.u32")
            check_ends(mdir, written, "<u2" if kind == "export" else "<u4")
            print(f"stream_{kind}: {got['s']:.1f}s, peak RSS {got['peak_rss_mb']:.0f} MB  [{got['tokens']:,} "
                  f"manifest tokens, {written.stat().st_size / 2**30:.2f} GiB written; largest shard file "
                  f"{biggest:,} tokens = {biggest * 4 / 2**20:.0f} MB as uint32]")
            shutil.rmtree(out) if out.is_dir() else out.unlink()
    finally:
        if args.dir is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

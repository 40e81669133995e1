"""Training throughput: foresight's loop (``trainer.train.train_tokens``) vs a minimal nanoGPT-style loop.

Both train the same Llama model (same preset, same initial weights) on the same packed batches (the same
token file, the same sequences in the same order) with AdamW, a cosine schedule and gradient clipping; the
reference is the bare loop nanoGPT's train.py writes (slice a batch, forward with labels, backward, clip,
step). Steps after the first (warm-up) are timed on both sides; the two loops alternate for ``--rounds``
rounds and the best throughput of each counts (robust to load from other processes). Each run is a fresh
process, so neither loop inherits the other's heap or the process-wide malloc settings that ours applies on
CPU (trainer/malloc.py). Also prints the fraction of our step time spent getting the batch (the data
loader). Ratio > 1 means ours is faster.

Example: python benchmarks/bench_train.py --model tiny --steps 30
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from foresight.trainer.data import PackedStream, open_token_file, write_token_file  # noqa: E402
from foresight.trainer.model import build_config, build_model, count_params  # noqa: E402
from foresight.trainer.train import TrainConfig, lr_lambda, resolve_device, train_tokens  # noqa: E402


def reference_loop(token_file: Path, config, cfg: TrainConfig, steps: int) -> tuple[float, float, int]:
    """nanoGPT-style: returns (wall seconds, process CPU seconds, tokens) for steps 2..n."""
    device = resolve_device(cfg.device)
    model = build_model(config, cfg.seed).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay)
    tokens = open_token_file(token_file)
    batch = max(1, cfg.batch_tokens // cfg.seq_len)
    n_seq = tokens.size // cfg.seq_len  # full sequences only, like nanoGPT's get_batch
    sched = lr_lambda(max(1, steps // 20), steps, cfg.min_lr_ratio)
    elapsed, cpu, counted = 0.0, 0.0, 0
    for step in range(steps):
        t0, c0 = time.perf_counter(), time.process_time()
        rows = [(step * batch + j) % n_seq for j in range(batch)]
        x = torch.from_numpy(np.stack([tokens[r * cfg.seq_len:(r + 1) * cfg.seq_len] for r in rows]).astype(np.int64))
        x = x.to(device)
        for g in opt.param_groups:
            g["lr"] = cfg.lr * sched(step)
        with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=device.type == "cuda"):
            loss = model(input_ids=x, labels=x).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        if step > 0:
            elapsed += time.perf_counter() - t0
            cpu += time.process_time() - c0
            counted += x.numel()
    return elapsed, cpu, counted


def run_isolated(which: str, token_file: Path, run_dir: Path, config, cfg: TrainConfig, steps: int,
                 threads: int) -> dict[str, float]:
    """One timed run of ``which`` ("ours" or "reference") in this (fresh) process: tokens per wall and CPU second,
    and for ours the data-loading fraction of the step time."""
    torch.set_num_threads(threads)
    from transformers.utils import logging as hf_logging
    hf_logging.disable_progress_bar()
    if which == "reference":
        ref_s, ref_c, ref_tok = reference_loop(token_file, config, cfg, steps)
        return {"wall": ref_tok / ref_s, "cpu": ref_tok / ref_c}
    timed = train_tokens(token_file, run_dir, config, cfg).log[1:]
    ours_s, ours_c = sum(x["step_time_s"] for x in timed), sum(x["cpu_time_s"] for x in timed)
    tok = cfg.batch_tokens * len(timed)
    return {"wall": tok / ours_s, "cpu": tok / ours_c, "data_frac": sum(x["data_time_s"] for x in timed) / ours_s}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="tiny")
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--seq-len", type=int, default=256)  # the demo sweep's shape (trainer/sweeps)
    ap.add_argument("--batch-tokens", type=int, default=8192)
    ap.add_argument("--vocab", type=int, default=4096)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--peak-tflops", type=float, default=989.0,
                    help="device peak dense bf16 TFLOP/s for the FLOP share on CUDA (H100/H200 ≈ 989)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from transformers.utils import logging as hf_logging
    hf_logging.disable_progress_bar()

    rng = np.random.default_rng(0)
    n_tokens = args.steps * args.batch_tokens  # exactly `steps` full batches
    with tempfile.TemporaryDirectory() as tmp:
        token_file = Path(tmp) / "tokens.u32"
        write_token_file([rng.integers(0, args.vocab - 2, size=n_tokens, dtype=np.uint32)], token_file)
        config = build_config(args.model, vocab_size=args.vocab, seq_len=args.seq_len, eos_id=args.vocab - 2,
                              pad_id=args.vocab - 1)
        cfg = TrainConfig(seq_len=args.seq_len, batch_tokens=args.batch_tokens, device=args.device, progress=False,
                          checkpoint_every=0)
        stream = PackedStream(open_token_file(token_file), cfg.seq_len, args.batch_tokens // cfg.seq_len, 0)
        assert stream.steps_per_run == args.steps

        best = {"ours_wall": 0.0, "ours_cpu": 0.0, "ref_wall": 0.0, "ref_cpu": 0.0}
        data_frac = 1.0
        # one fresh process per run (spawned, one task each): malloc's state and settings are per process
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"), max_tasks_per_child=1) as pool:
            for r in range(args.rounds):
                for which, key in (("reference", "ref"), ("ours", "ours")):
                    got = pool.submit(run_isolated, which, token_file, Path(tmp) / f"run{r}", config, cfg,
                                      args.steps, args.threads).result()
                    best[f"{key}_cpu"] = max(best[f"{key}_cpu"], got["cpu"])
                    if got["wall"] > best[f"{key}_wall"]:
                        best[f"{key}_wall"] = got["wall"]
                        data_frac = got.get("data_frac", data_frac)  # ours only

    assert all(math.isfinite(v) and v > 0 for v in best.values())
    # On a shared CPU, wall time follows other processes' load; CPU seconds per token is the steadier figure.
    dev = resolve_device(args.device)
    where = f"model={args.model}, {args.steps} steps × {args.batch_tokens} tokens, device={dev}"
    if dev.type == "cpu":
        print(f"train_tokens_per_cpu_s: ratio={best['ours_cpu'] / best['ref_cpu']:.3f} (ours "
              f"{best['ours_cpu']:,.0f} tok/cpu-s / reference {best['ref_cpu']:,.0f} tok/cpu-s; {where})")
    print(f"train_tokens_per_s: ratio={best['ours_wall'] / best['ref_wall']:.3f} (ours {best['ours_wall']:,.0f} "
          f"tok/s / reference {best['ref_wall']:,.0f} tok/s; {where})")
    if dev.type == "cuda":
        # 6·N FLOPs per token (forward + backward of the weight matmuls; attention scores not counted)
        n_params = count_params(build_model(config))
        achieved = 6 * n_params * best["ours_wall"] / 1e12
        print(f"train_vs_bf16_flop_bound: ratio={achieved / args.peak_tflops:.3f} (ours {achieved:.1f} TFLOP/s = "
              f"6 × {n_params / 1e6:.1f} M params × {best['ours_wall']:,.0f} tok/s / reference "
              f"{args.peak_tflops:.0f} TFLOP/s peak on {torch.cuda.get_device_name()})")
    print(f"train_data_loading_fraction: {100 * data_frac:.3f} % of our step time (goal ≤ 1 %)")


if __name__ == "__main__":
    main()

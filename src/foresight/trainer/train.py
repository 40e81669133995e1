"""The training loop over a packed token stream (docs/trainer.md): AdamW, cosine with warm-up, grad clipping,
bf16 autocast on CUDA, optional torch.compile, DDP under torchrun, atomic resumable checkpoints.

:func:`train_tokens` trains on a flat token file; :mod:`trainer.run` wraps it for manifests.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from transformers import LlamaConfig, LlamaForCausalLM

from foresight.formats.device import resolve_device
from foresight.formats.errors import ForesightError, InputError
from foresight.trainer.checkpoint import (
    find_checkpoint,
    fingerprint_diff,
    load_state,
    read_log,
    save_checkpoint,
    set_rng_state,
    write_log,
)
from foresight.trainer.data import PackedStream, open_token_file
from foresight.trainer.malloc import retain_heap


class TrainingDiverged(ForesightError, RuntimeError):
    """The loss became NaN/inf; the last good checkpoint was kept."""


@dataclass(frozen=True)
class TrainConfig:
    seq_len: int = 256
    batch_tokens: int = 8192  # global tokens per optimizer step (sequences × seq_len × ranks)
    lr: float = 1e-3
    min_lr_ratio: float = 0.1
    warmup_steps: int | None = None  # None: 5 % of the steps, at most 1024 (LSBS' warm-up)
    weight_decay: float = 0.1
    betas: tuple[float, float] = (0.9, 0.95)
    grad_clip: float = 1.0
    epochs: int = 1
    max_steps: int | None = None  # stop early (smoke runs); tokens consumed is then recorded as partial
    stop_after: int | None = None  # pause after this many steps of this invocation (checkpoint; --resume goes on)
    seed: int = 0
    device: str = "auto"
    compile: bool = False
    checkpoint_every: int = 200
    progress: bool = True
    log_every: int = 10  # steps between host syncs: losses and grad norms are read (and checked) in batches
    micro_batch_tokens: int | None = None  # gradient accumulation: forward/backward this many tokens at a time

    def fingerprint(self) -> dict[str, Any]:
        """What must match for a resume to continue the same run."""
        d = asdict(self)
        for k in ("device", "progress", "checkpoint_every", "compile", "stop_after", "log_every", "micro_batch_tokens"):
            d.pop(k)
        d["betas"] = list(self.betas)
        return d


@dataclass
class TrainResult:
    steps: int
    tokens_consumed: int
    final_loss: float
    wall_time_s: float
    log: list[dict[str, Any]] = field(default_factory=list)
    status: str = "complete"


def set_threads(n: int | None) -> None:
    """Set torch's intra-op CPU threads (None keeps torch's default)."""
    if n is not None:
        if n < 1:
            raise InputError(f"--threads must be >= 1, got {n}")
        torch.set_num_threads(n)


def dist_info() -> tuple[int, int, int]:
    """(world, rank, local_rank) from torchrun's environment; (1, 0, 0) otherwise."""
    return int(os.environ.get("WORLD_SIZE", 1)), int(os.environ.get("RANK", 0)), int(os.environ.get("LOCAL_RANK", 0))


def lr_lambda(warmup: int, total: int, min_ratio: float):
    def f(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))
    return f


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    # No weight decay on norms and biases (1-D tensors), as in nanoGPT / Llama recipes.
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.ndim >= 2]
    no_decay = [p for p in params if p.ndim < 2]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    # The fused kernel (CPU and CUDA in torch ≥ 2.4) does the whole update in one pass per group.
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=cfg.betas, eps=1e-8, fused=True)


def loss_sum(model: torch.nn.Module, input_ids: torch.Tensor, labels: torch.Tensor, autocast: bool) -> torch.Tensor:
    """Summed next-token cross-entropy over unmasked targets (divided by the global count by the caller).

    Uses the model's own fused loss path (labels shifted inside, float32 upcast, ``reduction="sum"`` via
    ``num_items_in_batch=1``), which avoids materialising a shifted copy of the logits.
    """
    with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=autocast):
        return model(input_ids=input_ids, labels=labels, num_items_in_batch=1).loss


def accumulate(model: torch.nn.Module, ids: torch.Tensor, labels: torch.Tensor, micro_rows: int, scale: float,
               autocast: bool, ddp: bool) -> torch.Tensor:
    """Forward and backward the batch ``micro_rows`` sequences at a time, gradients summed; returns the summed
    loss (detached). ``scale`` turns the sum into the token-weighted mean over the global batch (× world, as
    DDP averages gradients over ranks); DDP all-reduces once, on the last micro-batch."""
    chunks = list(zip(ids.split(micro_rows), labels.split(micro_rows), strict=True))
    total: torch.Tensor | None = None
    for i, (x, y) in enumerate(chunks):
        sync = not ddp or i == len(chunks) - 1
        with contextlib.nullcontext() if sync else model.no_sync():
            lsum = loss_sum(model, x, y, autocast)
            # a Python float: the gradient reaching lsum is float32(scale), as it was with a float64 tensor
            (lsum * scale).backward()
        loss = lsum.detach().float()
        total = loss if total is None else total + loss
    assert total is not None  # split() yields at least one chunk
    return total


class _Progress:
    """A rich progress bar with loss, tokens/s and ETA; silent when disabled or not rank 0."""

    def __init__(self, enabled: bool, total: int, start: int) -> None:
        self.bar = None
        if enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
            self.bar = Progress(TextColumn("train"), BarColumn(), MofNCompleteColumn(),
                                TextColumn("{task.fields[info]}"), TimeRemainingColumn(), transient=False)
            self.task = self.bar.add_task("train", total=total, completed=start, info="")
            self.bar.start()

    def update(self, step: int, loss: float, tps: float) -> None:
        if self.bar is not None:
            self.bar.update(self.task, completed=step, info=f"loss {loss:.4f}  {tps:,.0f} tok/s")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


@dataclass
class _Step:
    """One optimizer step's values, kept on the device until the next flush."""

    step: int
    loss: torch.Tensor
    gnorm: torch.Tensor
    tokens: int  # global, known on the host from the batch plan
    lr: float
    t0: float
    t1: float  # host time at the end of the step (on CUDA, kernels may still be running)
    cpu_s: float
    data_s: float


def _all_reduce(t: torch.Tensor, world: int) -> torch.Tensor:
    if world > 1:
        torch.distributed.all_reduce(t)
    return t


def train_tokens(token_file: Path, run_dir: Path, model_config: LlamaConfig, cfg: TrainConfig,
                 run_fingerprint: dict[str, Any] | None = None, resume: bool = False,
                 tokenizer_json: Path | None = None) -> TrainResult:
    """Train on the flat token file; checkpoints go to ``run_dir/checkpoint`` (with ``tokenizer_json``'s files,
    when given, so each checkpoint loads on its own). Returns the final state.

    Rank 0 writes checkpoints. ``run_fingerprint`` (e.g. the manifest hash) is stored in each checkpoint
    and a resume with a different one, a different model config or training config is refused.
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    world, rank, local_rank = dist_info()
    device = resolve_device(cfg.device)
    if world > 1 and device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    autocast = device.type == "cuda"
    if device.type == "cpu":
        retain_heap()  # the step's large temporaries live in host memory: keep their pages (trainer/malloc.py)
    tokens = open_token_file(token_file)
    batch_size = max(1, cfg.batch_tokens // (cfg.seq_len * world))
    micro_rows = batch_size if not cfg.micro_batch_tokens else max(1, cfg.micro_batch_tokens // cfg.seq_len)
    stream = PackedStream(tokens, cfg.seq_len, batch_size, int(model_config.pad_token_id), cfg.epochs, world, rank)
    total_steps = stream.steps_per_run if cfg.max_steps is None else min(cfg.max_steps, stream.steps_per_run)
    warmup = cfg.warmup_steps if cfg.warmup_steps is not None else max(1, min(1024, total_steps // 20))
    fingerprint = {**(run_fingerprint or {}), **cfg.fingerprint(), "world_size": world,
                   "model": model_config.to_json_string(use_diff=False)}

    step, tokens_done, log = 0, 0, []
    ckpt = find_checkpoint(run_dir) if resume else None
    if resume and ckpt is None:
        raise FileNotFoundError(f"--resume: no checkpoint in {run_dir}; start without --resume")
    if ckpt is not None:
        state = load_state(ckpt)
        diff = fingerprint_diff(state["fingerprint"], fingerprint)
        if diff:
            raise InputError(f"cannot resume {run_dir}: it is a different run ({'; '.join(diff)[:400]})")
        model = LlamaForCausalLM.from_pretrained(ckpt, dtype=torch.float32)
        step, tokens_done = state["step"], state["tokens_consumed"]
        log = state["log"] if "log" in state else read_log(run_dir, step)  # older checkpoints carried the log
    else:
        from foresight.trainer.model import build_model
        model = build_model(model_config, cfg.seed)
    model.to(device)
    opt = make_optimizer(model, cfg)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(warmup, total_steps, cfg.min_lr_ratio))
    if ckpt is not None:
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        set_rng_state(state["rng"])
    else:
        torch.manual_seed(cfg.seed + rank)
    if rank == 0:
        write_log(run_dir, log, append=False)  # a fresh run starts it; a resume drops steps after the checkpoint
    raw_model = model
    if world > 1:
        ids = [device.index] if device.type == "cuda" else None
        model = torch.nn.parallel.DistributedDataParallel(model, device_ids=ids)
    if cfg.compile:
        model = torch.compile(model)

    def checkpoint(at_step: int) -> None:
        if rank == 0:
            save_checkpoint(run_dir, raw_model, {"optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                                                 "step": at_step, "tokens_consumed": tokens_done,
                                                 "fingerprint": fingerprint}, tokenizer_json)
        if world > 1:
            torch.distributed.barrier()

    bar = _Progress(cfg.progress and rank == 0, total_steps, step)
    end_step = total_steps if cfg.stop_after is None else min(total_steps, step + cfg.stop_after)
    t_start = time.perf_counter()
    pending: list[_Step] = []

    def flush() -> None:
        """Read the pending steps' device values in one sync, check them, and log them."""
        nonlocal tokens_done
        if not pending:
            return
        values = torch.stack([torch.stack([p.loss, p.gnorm.double()]) for p in pending]).tolist()
        pending[-1].t1 = time.perf_counter()  # the last step also waits for the device to catch up
        for p, (loss, gnorm) in zip(pending, values, strict=True):
            if not math.isfinite(loss):
                raise TrainingDiverged(f"loss became {loss} at step {p.step - 1}")
            n_tok = p.tokens
            tokens_done += n_tok
            dt = p.t1 - p.t0
            log.append({"step": p.step, "tokens": tokens_done, "loss": loss, "lr": p.lr, "grad_norm": gnorm,
                        "step_time_s": dt, "cpu_time_s": p.cpu_s, "data_time_s": p.data_s,
                        "tokens_per_s": n_tok / dt})
        if rank == 0:
            write_log(run_dir, log[-len(pending):])
        bar.update(pending[-1].step, log[-1]["loss"], log[-1]["tokens_per_s"])
        pending.clear()

    model.train()
    try:
        while step < end_step:
            t0, c0 = time.perf_counter(), time.process_time()
            batch = stream.batch(step)
            ids, labels = batch.input_ids.to(device, non_blocking=True), batch.labels.to(device, non_blocking=True)
            # the global counts follow from the batch plan on every rank: no device tensor, no all-reduce
            # and no host-to-device copy per step (a blocking one on CUDA). Exact in float64, as before.
            n_targets_int, n_tokens = stream.step_counts(step)
            t_data = time.perf_counter() - t0
            n_targets = float(max(1, n_targets_int))
            # zeroed in place, not freed: re-allocating every gradient each step made glibc return and re-fault
            # their pages (twice the reference loop's page faults, ~7 ms of system time per 1024-token step on
            # the tiny model). Every Llama parameter gets a gradient each step, so the optimizer sees the same
            # values as with None (a parameter that never got one would now be decayed: none exists here).
            opt.zero_grad(set_to_none=False)
            lsum = accumulate(model, ids, labels, micro_rows, world / n_targets, autocast, world > 1)
            global_loss = _all_reduce(lsum.double(), world) / n_targets
            gnorm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            lr = sched.get_last_lr()[0]
            opt.step()
            sched.step()
            step += 1
            pending.append(_Step(step, global_loss, gnorm, n_tokens, lr, t0, time.perf_counter(),
                                 time.process_time() - c0, t_data))
            checkpoint_now = cfg.checkpoint_every and step % cfg.checkpoint_every == 0 and step < end_step
            if len(pending) >= cfg.log_every or checkpoint_now or step >= end_step:
                flush()  # always before a checkpoint: a diverged step is never saved
            if checkpoint_now:
                checkpoint(step)
    except TrainingDiverged as e:
        bar.close()
        kept = find_checkpoint(run_dir)
        where = f"the last good checkpoint {kept} (step {load_state(kept)['step']}) was kept" if kept else \
            "no checkpoint had been written yet"
        raise TrainingDiverged(f"{e}: training stopped; {where}. Lower --lr and retry "
                               "(--resume continues from it)") from e
    bar.close()
    checkpoint(step)
    final = log[-1]["loss"] if log else float("nan")
    status = "complete" if step >= total_steps else "paused"
    return TrainResult(step, tokens_done, final, time.perf_counter() - t_start, log, status)

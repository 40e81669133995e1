"""A training run: verify a manifest (or take token arrays), train, and write a self-contained run directory.

RUN_DIR after a run: ``config.json`` + ``model.safetensors`` (``save_pretrained``; loads with
``AutoModelForCausalLM.from_pretrained``), tokenizer files, ``train_log.parquet``, ``run.json``, the resumable
``checkpoint/`` (a model directory of its own: weights, config and tokenizer files) and ``tokens.u32`` (the
packed stream, rebuilt on every start).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from foresight.formats.atomic import disk_full_reported, write_json_atomic
from foresight.formats.errors import InputError
from foresight.formats.hashing import sha256_file
from foresight.trainer.checkpoint import save_tokenizer, weights_sha256
from foresight.trainer.data import write_token_file
from foresight.trainer.model import build_config, count_params
from foresight.trainer.train import TrainConfig, TrainingDiverged, dist_info, train_tokens

RUN_FORMAT = "foresight-run/1"
TOKEN_FILE = "tokens.u32"


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).resolve().parent)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def _init_distributed() -> None:
    import torch
    from transformers.utils import logging as hf_logging
    hf_logging.disable_progress_bar()  # our own bar is the one a user should watch
    world, _, _ = dist_info()
    if world > 1 and not torch.distributed.is_initialized():
        torch.distributed.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo")


def _check_run_dir(out: Path, resume: bool, overwrite: bool) -> None:
    """Never retrain silently over a finished (or paused) run."""
    import shutil

    from foresight.trainer.checkpoint import CHECKPOINT_DIR

    held = [out / n for n in (CHECKPOINT_DIR, ".checkpoint.old", "run.json") if (out / n).exists()]
    if resume or not held:
        return
    if not overwrite:
        raise FileExistsError(f"{out} already holds a training run ({held[0].name}); pass --resume to continue it, "
                              "--overwrite to train again from scratch, or choose another --out")
    for path in held:
        shutil.rmtree(path) if path.is_dir() else path.unlink()


TokenWriter = Callable[[Path], int]  # writes the uint32 token file at the path; returns its token count


def train_arrays(arrays: Iterable[np.ndarray] | TokenWriter, out: Path, *, tokenizer_json: Path,
                 model: str | Path = "tiny", cfg: TrainConfig | None = None, resume: bool = False,
                 manifest: dict[str, Any] | None = None,
                 expected_tokens: int | None = None, overwrite: bool = False) -> dict[str, Any]:
    """Train on token arrays (in order; or a :data:`TokenWriter` that writes their file) and write the run
    directory; returns run.json's content.

    A directory that already holds a run (a checkpoint or run.json) is refused unless ``resume`` (continue it)
    or ``overwrite`` (start again: its checkpoints and run.json are removed first)."""
    import polars as pl
    import torch

    from foresight.formats.tokenizer import load_tokenizer
    cfg = cfg or TrainConfig()
    out = Path(out)
    _check_run_dir(out, resume, overwrite)
    out.mkdir(parents=True, exist_ok=True)
    _init_distributed()
    world, rank, _ = dist_info()
    _, tinfo = load_tokenizer(tokenizer_json)
    token_file = out / TOKEN_FILE
    if rank == 0:
        n = arrays(token_file) if callable(arrays) else write_token_file(arrays, token_file)
        if expected_tokens is not None and n != expected_tokens:
            raise InputError(f"the manifest promises {expected_tokens} tokens but its entries yield {n}; rebuild it")
    if world > 1:
        torch.distributed.barrier()
    n_stream = token_file.stat().st_size // 4
    config = build_config(model, vocab_size=tinfo.vocab_size, seq_len=cfg.seq_len, eos_id=tinfo.eos_id,
                          pad_id=tinfo.pad_id)
    fp = {"manifest_sha256": (manifest or {}).get("sha256"), "tokenizer_sha256": tinfo.sha256,
          "stream_tokens": n_stream}
    run_json = out / "run.json"
    try:
        result = train_tokens(token_file, out, config, cfg, fp, resume=resume, tokenizer_json=tokenizer_json)
    except TrainingDiverged:
        if rank == 0:
            write_json_atomic(run_json, {"format": RUN_FORMAT, "status": "diverged", "manifest": manifest})
        raise
    info: dict[str, Any] = {}
    if rank == 0:
        from transformers import LlamaForCausalLM

        from foresight.trainer.checkpoint import CHECKPOINT_DIR
        final = LlamaForCausalLM.from_pretrained(out / CHECKPOINT_DIR, dtype=torch.float32)
        with disk_full_reported(out):  # run.json, written last, is what marks the run finished
            final.save_pretrained(out, safe_serialization=True)
            save_tokenizer(tokenizer_json, out)
            log = pl.DataFrame(result.log, schema_overrides={"step": pl.Int64, "tokens": pl.Int64})
            log.write_parquet(out / "train_log.parquet")
        from foresight.formats import __version__
        expected = n_stream * cfg.epochs
        info = {
            "format": RUN_FORMAT, "status": result.status, "manifest": manifest,
            "tokens_consumed": result.tokens_consumed, "tokens_expected": expected,
            "complete": result.tokens_consumed == expected, "steps": result.steps, "final_loss": result.final_loss,
            "params": count_params(final), "model_config": config.to_dict(), "train_config": cfg.fingerprint(),
            "tokenizer": tinfo.as_dict(), "world_size": world, "device": cfg.device,
            "wall_time_s": result.wall_time_s, "git_commit": _git_commit(), "foresight_version": __version__,
            "checkpoint_sha256": weights_sha256(out),
        }
        write_json_atomic(run_json, info)
    if world > 1:
        torch.distributed.barrier()
    return info if rank == 0 else json.loads(run_json.read_text())


def train_manifest(manifest_dir: Path, out: Path, *, model: str | Path = "tiny", cfg: TrainConfig | None = None,
                   tokenizer: Path | None = None, shards_root: Path | None = None,
                   resume: bool = False, overwrite: bool = False) -> dict[str, Any]:
    """Verify ``manifest_dir`` (refusing on any mismatch), then train on exactly its tokens."""
    from foresight import manifests
    manifest_dir = Path(manifest_dir)
    from foresight.formats.manifest import ManifestHeader

    manifests.verify(manifest_dir, shards_root=shards_root)  # the shards it will read, not the recorded root
    header = ManifestHeader.load(manifest_dir)  # verified just above (its hash, and the entries')
    root = Path(shards_root or header.shards.root)
    from foresight.formats.tokenizer import find_tokenizer

    tok = find_tokenizer(root, tokenizer, header.tokenizer_sha256)
    meta = {"path": str(manifest_dir.resolve()), "name": header.name,
            "sha256": sha256_file(manifest_dir / "manifest.json"), "total_tokens": header.total_tokens,
            "shares": header.shares, "entries_sha256": header.entries_sha256}

    def write(token_file: Path) -> int:  # one shard file's tokens in memory at a time (manifests.stream)
        return int(manifests.write_token_stream(manifest_dir, token_file, shards_root=shards_root,
                                                rehash=False).sum())  # verified just above

    return train_arrays(write, out, tokenizer_json=tok, model=model, cfg=cfg, resume=resume, manifest=meta,
                        expected_tokens=header.total_tokens, overwrite=overwrite)

"""Resumable checkpoints written atomically: model, optimiser, scheduler, RNG states and the data cursor."""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from foresight.formats.atomic import disk_full_reported, replacing_dir

CHECKPOINT_DIR = "checkpoint"
STATE_FILE = "trainer_state.pt"


def rng_state() -> dict[str, Any]:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_tokenizer(tokenizer_json: Path, out: Path) -> None:
    """Save as a HF fast tokenizer so AutoTokenizer.from_pretrained(out) works."""
    from transformers import PreTrainedTokenizerFast

    from foresight.formats.tokenizer import EOS, PAD
    tok = PreTrainedTokenizerFast(tokenizer_file=str(tokenizer_json), eos_token=EOS, bos_token=EOS,
                                  pad_token=PAD, unk_token=None)
    tok.save_pretrained(out)


def save_checkpoint(run_dir: Path, model: torch.nn.Module, state: dict[str, Any],
                    tokenizer_json: Path | None = None) -> Path:
    """Write ``run_dir/checkpoint`` via a temporary directory and renames, so a crash never leaves half of one.

    ``state`` holds optimizer/scheduler state dicts, the step (data cursor), the log so far and the run
    fingerprint; RNG states are added here. With ``tokenizer_json`` the tokenizer files go in too, so the
    checkpoint directory alone loads with AutoTokenizer / AutoModelForCausalLM (lm-eval ``pretrained=DIR``).
    """
    final = run_dir / CHECKPOINT_DIR
    shutil.rmtree(run_dir / ".checkpoint.tmp", ignore_errors=True)  # left by versions before replacing_dir
    # swapped in whole (where renameat2 is missing, the old one waits in .checkpoint.old: see find_checkpoint)
    with disk_full_reported(run_dir), replacing_dir(final) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        if tokenizer_json is not None:
            save_tokenizer(tokenizer_json, tmp)
        torch.save({**state, "rng": rng_state()}, tmp / STATE_FILE)
        _fsync_dir(tmp)
    return final


def _fsync_dir(path: Path) -> None:
    for p in path.iterdir():
        with open(p, "rb") as f:
            os.fsync(f.fileno())


def find_checkpoint(run_dir: Path) -> Path | None:
    """The complete checkpoint, recovering the previous one if a crash hit between the two renames."""
    final, old = run_dir / CHECKPOINT_DIR, run_dir / ".checkpoint.old"
    if (final / STATE_FILE).is_file():
        return final
    if (old / STATE_FILE).is_file():
        os.replace(old, final)
        return final
    return None


def load_state(ckpt: Path) -> dict[str, Any]:
    # weights_only=False: the state holds numpy RNG tuples and plain dicts we wrote ourselves.
    return torch.load(ckpt / STATE_FILE, map_location="cpu", weights_only=False)


def fingerprint_diff(saved: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """Human-readable differences between two run fingerprints (flat dicts of JSON values)."""
    keys = sorted(set(saved) | set(current))
    return [f"{k}: checkpoint has {saved.get(k)!r}, now {current.get(k)!r}"
            for k in keys if saved.get(k) != current.get(k)]


def weights_sha256(model_dir: Path) -> str:
    """sha256 over the model weight files of a save_pretrained directory, in name order."""
    h = hashlib.sha256()
    files = sorted(model_dir.glob("*.safetensors")) or sorted(model_dir.glob("*.bin"))
    if not files:
        raise FileNotFoundError(f"no model weights (*.safetensors) in {model_dir}")
    for p in files:
        with open(p, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


LOG_FILE = "train_log.jsonl"  # one line per step, appended as training goes (checkpoints do not carry it)


def read_log(run_dir: Path, upto_step: int) -> list[dict[str, Any]]:
    """The logged steps ≤ ``upto_step`` (a resumed run drops the steps it is about to redo)."""
    path = run_dir / LOG_FILE
    if not path.is_file():
        return []
    with open(path, encoding="utf-8") as f:
        return [e for e in map(json.loads, f) if e["step"] <= upto_step]


def write_log(run_dir: Path, entries: list[dict[str, Any]], append: bool = True) -> None:
    with open(run_dir / LOG_FILE, "a" if append else "w", encoding="utf-8") as f:
        f.writelines(json.dumps(e) + "\n" for e in entries)

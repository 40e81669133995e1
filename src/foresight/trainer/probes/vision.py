"""LLM–vision alignment (LSBS §2.2, PRH): mutual k-NN (k = 20) between the language model's caption features
and a local vision encoder's image features, maximised over layer pairs after PRH feature preparation.

Inputs: a local HF vision model directory (``AutoModel`` + ``AutoImageProcessor``, ``local_files_only``; no
download ever) and a Parquet file of pairs with a ``caption`` column and an image column: ``image`` (path
or bytes), ``image_path`` or ``image_bytes``. Relative paths are resolved against the Parquet's folder.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch

from foresight.formats.errors import InputError
from foresight.trainer.probes.alignment import best_over_layers, mutual_knn, prepare_features
from foresight.trainer.probes.features import LoadedModel, ProbeError, layer_features

IMAGE_COLUMNS = ("image", "image_path", "image_bytes")


def load_pairs(path: str | Path) -> tuple[list[Any], list[str]]:
    """(PIL images, captions) from a pairs Parquet file; errors name the row and the fix."""
    import polars as pl
    from PIL import Image
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"pairs file {path} not found; give a Parquet with 'caption' and 'image' columns")
    df = pl.read_parquet(path)
    col = next((c for c in IMAGE_COLUMNS if c in df.columns), None)
    if "caption" not in df.columns or col is None:
        raise InputError(f"{path}: needs a 'caption' column and one of {', '.join(IMAGE_COLUMNS)}; has {df.columns}")
    images, captions = [], []
    for i, (img, cap) in enumerate(zip(df[col].to_list(), df["caption"].to_list(), strict=True)):
        try:
            if isinstance(img, (bytes, bytearray)):
                im = Image.open(io.BytesIO(img))
            else:
                p = Path(img)
                im = Image.open(p if p.is_absolute() else path.parent / p)
            images.append(im.convert("RGB"))
        except (OSError, TypeError) as e:
            raise InputError(f"{path} row {i}: cannot read the image ({e}); give a readable path or image bytes") from e
        if not isinstance(cap, str) or not cap:
            raise InputError(f"{path} row {i}: empty caption")
        captions.append(cap)
    return images, captions


def load_vision_model(path: str | Path, device: torch.device) -> tuple[torch.nn.Module, Any]:
    from transformers import AutoImageProcessor, AutoModel
    path = Path(path)
    if not (path / "config.json").is_file():
        raise ProbeError(f"--vision-model {path} is not a local model directory (no config.json)")
    try:
        model = AutoModel.from_pretrained(path, local_files_only=True, dtype=torch.float32).to(device).eval()
        proc = AutoImageProcessor.from_pretrained(path, local_files_only=True)
    except (OSError, ValueError) as e:
        raise ProbeError(f"cannot load {path} as a vision encoder with an image processor: "
                         f"{str(e).splitlines()[0]}") from e
    return model, proc


@torch.no_grad()
def image_features(model: torch.nn.Module, proc: Any, images: list[Any], device: torch.device,
                   batch_size: int = 32) -> torch.Tensor:
    """(n, layers+1, d): every layer's token states mean-pooled over positions (the PRH 'avg' pooling)."""
    out = []
    for i in range(0, len(images), batch_size):
        pix = proc(images=images[i:i + batch_size], return_tensors="pt")["pixel_values"].to(device)
        res = model(pixel_values=pix, output_hidden_states=True)
        if getattr(res, "hidden_states", None) is None:
            raise ProbeError(f"vision model {type(model).__name__} returns no hidden states")
        out.append(torch.stack([h.float().mean(dim=1) for h in res.hidden_states], dim=1).cpu())
    return torch.cat(out)


def vision_probe(lm: LoadedModel, vision_model: str | Path, pairs: str | Path, k: int = 20) -> dict[str, Any]:
    images, captions = load_pairs(pairs)
    n = len(captions)
    if n < 3:
        raise InputError(f"{pairs}: need at least 3 image–caption pairs, got {n}")
    k_eff = min(k, n - 1)
    model, proc = load_vision_model(vision_model, lm.device)
    text = prepare_features(layer_features(lm, captions))
    vis = prepare_features(image_features(model, proc, images, lm.device))
    score, (i, j) = best_over_layers(text, vis, mutual_knn, k=k_eff)
    return {"vision_mutual_knn": score, "vision_knn_chance": k_eff / (n - 1), "vision_k": k_eff,
            "vision_lm_layer": i, "vision_layer": j, "vision_pairs": n}

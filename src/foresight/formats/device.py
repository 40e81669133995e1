"""The one device resolver (classifiers and trainer): torch is imported on first use, so ``formats`` stays light."""

from __future__ import annotations

from typing import TYPE_CHECKING

from foresight.formats.errors import InputError, SetupError

if TYPE_CHECKING:
    import torch


def resolve_device(device: str = "auto") -> torch.device:
    """``auto`` → CUDA when present, else CPU; an explicit ``cuda`` without a GPU is an error, not a fallback."""
    import torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise SetupError(f"--device {device} was requested but CUDA is not available (no GPU or a CPU-only "
                           "torch); use --device cpu or auto")
    if device != "cpu" and not device.startswith("cuda"):
        raise InputError(f"unknown device {device!r}; use auto, cpu or cuda")
    return torch.device(device)

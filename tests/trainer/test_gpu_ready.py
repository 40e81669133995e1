"""GPU readiness that can be checked without a GPU: the one-GPU preset's size and bf16 autocast only on CUDA."""

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import LlamaForCausalLM

from foresight.trainer.data import write_token_file
from foresight.trainer.model import build_config, count_params
from tests.trainer.conftest import tiny_cfg, token_arrays


def test_small_preset_fits_one_gpu_budget() -> None:
    config = build_config("small", vocab_size=16384, seq_len=1024, eos_id=0, pad_id=1)
    with torch.device("meta"):
        n = count_params(LlamaForCausalLM(config))
    assert 60e6 <= n <= 125e6
    # 100 M tokens in 10 minutes at 6·N FLOPs per token needs under 10 % of a 989 TFLOP/s bf16 peak
    assert 6 * n * 100e6 / 600 / 989e12 < 0.10


def test_autocast_only_on_cuda(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import foresight.trainer.train as train
    seen = []
    real = torch.autocast

    def spy(device_type: str, dtype: torch.dtype | None = None, enabled: bool = True, **kw):  # noqa: ANN202
        seen.append((device_type, dtype, enabled))
        return real(device_type, dtype=dtype, enabled=enabled, **kw)

    monkeypatch.setattr(train.torch, "autocast", spy)
    tokens = tmp_path / "t.u32"
    write_token_file(token_arrays(6), tokens)
    config = build_config("tiny", vocab_size=300, seq_len=32, eos_id=0, pad_id=1)
    train.train_tokens(tokens, tmp_path / "run", config, tiny_cfg(device="cpu", max_steps=1))
    assert seen and all(s == ("cuda", torch.bfloat16, False) for s in seen)
    seen.clear()
    ids = torch.tensor(np.arange(8).reshape(1, 8))
    with warnings.catch_warnings():  # on a CPU-only machine torch warns that CUDA autocast is disabled
        warnings.simplefilter("ignore")
        train.loss_sum(LlamaForCausalLM(config), ids, ids, autocast=True)
    assert seen == [("cuda", torch.bfloat16, True)]  # enabled exactly when the device is CUDA

from pathlib import Path

import numpy as np
import pytest
import torch

from foresight.trainer.train import TrainConfig
from tests.helpers import make_tokenizer


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)
    from transformers.utils import logging as hf_logging
    hf_logging.disable_progress_bar()


@pytest.fixture
def tokenizer_json(tmp_path: Path) -> Path:
    return make_tokenizer(tmp_path)


def token_arrays(n_docs: int = 30, seed: int = 0, vocab: int = 300) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, vocab, size=int(rng.integers(5, 40))).astype(np.uint32) for _ in range(n_docs)]


def tiny_cfg(**kw) -> TrainConfig:
    base = dict(seq_len=32, batch_tokens=128, lr=3e-3, progress=False, checkpoint_every=0, warmup_steps=2)
    base.update(kw)
    return TrainConfig(**base)

"""Tiny labelled data and a tiny fine-tuned classifier shared by the classifier tests (CPU, 1 thread)."""

import numpy as np
import pytest
import torch

from foresight.formats.taxonomy import LABEL_NAMES

EXAMPLES = {
    "visual_concept": "The old fisherman pulled his boat onto the beach beside the village houses.",
    "visual_attribute": "Her crimson silk dress shimmered, with tiny round pearl buttons and a pale blue sash.",
    "visual_relationship": "The lamp stands on top of the desk, beside the window and in front of the mirror.",
    "code_reasoning": "def fib(n):\n    if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)\n",
    "math_reasoning": "Theorem. If $x^2 = 4$ then x = 2 or x = -2. Proof: factor (x-2)(x+2) = 0; hence QED.",
    "science_reasoning": ("The enzyme lowers the activation energy of the reaction, so the cell "
                          "metabolises glucose faster."),
}
NONE_TEXT = "The committee postponed the vote on the annual budget until next month's meeting."


def tiny_labelled(copies: int = 3) -> tuple[list[str], np.ndarray]:
    texts, rows = [], []
    for _ in range(copies):
        for j, name in enumerate(LABEL_NAMES):
            texts.append(EXAMPLES[name])
            rows.append([int(i == j) for i in range(len(LABEL_NAMES))])
        texts.append(NONE_TEXT)
        rows.append([0] * len(LABEL_NAMES))
    return texts, np.asarray(rows, dtype=np.int8)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """A MiniLM classifier fine-tuned for 2 steps at max_length 32: tests its plumbing, not its accuracy."""
    from foresight.classifiers.train import FineTuneConfig, train_transformer

    torch.set_num_threads(1)
    texts, y = tiny_labelled()
    out = tmp_path_factory.mktemp("clf") / "model"
    cfg = FineTuneConfig(epochs=1, batch_size=4, max_length=32, max_steps=2, val_fraction=0.3, device="cpu")
    train_transformer(texts, y, out, cfg)
    return out

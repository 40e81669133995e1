"""Model shape presets, torch-free so ``foresight train --help`` can list them without importing torch."""

from __future__ import annotations

# Shapes only; the vocabulary comes from the tokenizer. Parameter counts below are for a 16k vocabulary
# with tied embeddings: tiny ≈ 1.2 M, mini ≈ 7.6 M (CPU demos and tests), small ≈ 98 M, medium ≈ 222 M.
# `small` is the one-GPU preset: 100 M tokens cost 6 · 98e6 · 1e8 ≈ 5.9e16 FLOPs, i.e. 59 TFLOP/s sustained for
# 10 minutes — 6 % of an H100/H200's ~989 TFLOP/s dense bf16 peak (attention adds 12·L·T·d per token, +19 % at
# seq 1024), so it fits with room to spare at the modest utilisation a 98 M model reaches.
PRESETS: dict[str, dict[str, int]] = {
    "tiny": {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 4,
             "intermediate_size": 256},
    "mini": {"hidden_size": 256, "num_hidden_layers": 4, "num_attention_heads": 4, "num_key_value_heads": 4,
             "intermediate_size": 768},
    "small": {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12, "num_key_value_heads": 12,
              "intermediate_size": 2048},
    "medium": {"hidden_size": 1024, "num_hidden_layers": 16, "num_attention_heads": 16, "num_key_value_heads": 16,
               "intermediate_size": 2816},
}

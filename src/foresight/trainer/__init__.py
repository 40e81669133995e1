"""Llama-style trainer on exactly a manifest's tokens, probes, and the pretrain-and-probe sweep (docs/trainer.md)."""

"""Transformer classifier throughput: docs/s and tokens/s at a batch size and length.

Side by side in one run: ours (length-sorted batches, per-batch padding, inference_mode, bf16 autocast on
CUDA) vs a naive loop (input order, every batch padded to max_length, fp32, autograd on). Documents have
mixed lengths (uniform up to --length tokens), as real segments do. On CUDA it also reports achieved
FLOP/s against the device's peak (the model's FLOP bound). Runs small on a CPU.

Example: python benchmarks/bench_classify_gpu.py --docs 256 --batch-size 32 --length 128
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import torch  # noqa: E402

from foresight.classifiers.transformer import MultiLabelModel, TransformerClassifier, _load_encoder, resolve_backbone  # noqa: E402
from foresight.formats.taxonomy import LABEL_NAMES  # noqa: E402

WORDS = ("the red ball sits on the wooden table beside a blue cup while we prove that every prime larger than "
         "two is odd and the enzyme binds its substrate in the cell").split()
PEAK_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "A10": 125.0, "4090": 165.0}


def make_texts(n: int, length: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(8, max(9, length)))) for _ in range(n)]


def flops_per_token(cfg, seq_len: float) -> float:
    """Forward FLOPs per token of a BERT encoder: 2·(4d² + 2·d·ff) per layer for the matmuls, plus 4·d·T
    for the attention scores and their weighted sum."""
    d, ff, layers = cfg.hidden_size, cfg.intermediate_size, cfg.num_hidden_layers
    return layers * (2 * (4 * d * d + 2 * d * ff) + 4 * d * seq_len)


def naive(model: MultiLabelModel, tokenizer, texts: list[str], batch_size: int, length: int,
          device: torch.device) -> None:
    for i in range(0, len(texts), batch_size):
        enc = tokenizer(texts[i: i + batch_size], padding="max_length", truncation=True, max_length=length,
                        return_tensors="pt").to(device)
        torch.sigmoid(model(enc["input_ids"], enc["attention_mask"])).cpu()


def timed(fn, sync: bool) -> float:
    if sync:
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    fn()
    if sync:
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", help="a trained classifier directory (default: MiniLM with an untrained head; "
                                    "throughput does not depend on the head's weights)")
    ap.add_argument("--docs", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--length", type=int, default=128, help="max tokens per document")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=0, help="CPU threads (0 = torch default)")
    ap.add_argument("--peak-tflops", type=float, default=0.0, help="device peak (bf16 dense) for the FLOP bound")
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.model:
        clf = TransformerClassifier.load(args.model, batch_size=args.batch_size, device=args.device)
        clf.max_length = args.length
    else:
        encoder, tok = _load_encoder(resolve_backbone("minilm"))
        clf = TransformerClassifier(MultiLabelModel(encoder, len(LABEL_NAMES)), tok, {n: 0.5 for n in LABEL_NAMES},
                                    args.length, args.batch_size, args.device)
    cuda = clf.device.type == "cuda"
    texts = make_texts(args.docs, args.length, seed=0)
    clf.predict_scores(texts[: args.batch_size])  # warm-up (CUDA context, kernels, allocator)
    clf.stats["tokens"] = 0
    # Alternate the two paths and keep each one's best time, so load from other processes hits both alike.
    t_ours = t_naive = float("inf")
    for _ in range(args.repeats):
        t_ours = min(t_ours, timed(lambda: clf.predict_scores(texts), cuda))
        t_naive = min(t_naive, timed(lambda: naive(clf.model, clf.tokenizer, texts, args.batch_size, args.length,
                                                   clf.device), cuda))
    tokens = clf.stats["tokens"] // args.repeats
    ours_dps, naive_dps = args.docs / t_ours, args.docs / t_naive
    print(f"device={clf.device} docs={args.docs} batch_size={args.batch_size} length={args.length} "
          f"real_tokens={tokens} threads={torch.get_num_threads()}")
    print(f"ours: {ours_dps:.1f} docs/s, {tokens / t_ours:.0f} tokens/s")
    print(f"classify_transformer_vs_naive: ratio={ours_dps / naive_dps:.2f} "
          f"(ours {ours_dps:.1f} docs/s / reference {naive_dps:.1f} docs/s)")
    if cuda:
        name = torch.cuda.get_device_name()
        peak = args.peak_tflops or next((v for k, v in PEAK_TFLOPS.items() if k in name), 0.0)
        achieved = tokens / t_ours * flops_per_token(clf.model.encoder.config, tokens / args.docs) / 1e12
        if peak:
            print(f"classify_transformer_vs_flop_bound: ratio={achieved / peak:.3f} "
                  f"(ours {achieved:.1f} TFLOP/s / reference {peak:.0f} TFLOP/s peak on {name})")
        else:
            print(f"achieved {achieved:.1f} TFLOP/s on {name} (pass --peak-tflops for the bound)")


if __name__ == "__main__":
    main()

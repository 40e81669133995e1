#!/usr/bin/env bash
# GPU readiness check: the classifier and trainer benchmarks on CUDA, printing tokens/s and the share of the
# dense bf16 FLOP limit (achieved = 6·N·tokens/s for training, the encoder's matmul FLOPs for classifying).
#
# Example: benchmarks/gpu_check.sh --peak-tflops 989
#   --peak-tflops T   the device's dense bf16 peak (default 989: H100/H200 SXM)
#   --steps N         training steps per round (default 20)
#   --model NAME      trainer preset (default small, the one-GPU preset: ~98 M params)
set -euo pipefail
cd "$(dirname "$0")/.."
PEAK=989
STEPS=20
MODEL=small
while [[ $# -gt 0 ]]; do
  case "$1" in
    --peak-tflops) PEAK="$2"; shift 2 ;;
    --steps) STEPS="$2"; shift 2 ;;
    --model) MODEL="$2"; shift 2 ;;
    *) echo "gpu_check.sh: unknown option $1 (use --peak-tflops T, --steps N, --model NAME)" >&2; exit 2 ;;
  esac
done
PY="${PYTHON:-python}"
"$PY" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else "gpu_check.sh: no CUDA device visible to torch")'
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
echo "== classifier (MiniLM encoder, bf16 autocast)"
"$PY" benchmarks/bench_classify_gpu.py --device cuda --docs 8192 --batch-size 256 --length 512 \
  --peak-tflops "$PEAK"
echo "== trainer ($MODEL, seq 1024, 64 sequences per step, bf16 autocast)"
"$PY" benchmarks/bench_train.py --device cuda --model "$MODEL" --steps "$STEPS" --seq-len 1024 \
  --batch-tokens 65536 --vocab 16384 --rounds 1 --peak-tflops "$PEAK"

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch

from foresight.trainer import train as T
from foresight.trainer.checkpoint import find_checkpoint, load_state
from foresight.trainer.data import IGNORE_INDEX, PackedStream, write_token_file
from foresight.trainer.run import train_arrays
from tests.trainer.conftest import tiny_cfg, token_arrays


def test_tokens_consumed_equal_total_exactly(tmp_path: Path, tokenizer_json: Path) -> None:
    arrays = token_arrays()
    total = sum(a.size for a in arrays)
    assert total % 32 != 0  # the last sequence is partial
    info = train_arrays(arrays, tmp_path / "run", tokenizer_json=tokenizer_json, cfg=tiny_cfg())
    assert info["tokens_consumed"] == total and info["complete"]
    log = pl.read_parquet(tmp_path / "run" / "train_log.parquet")
    assert log["tokens"][-1] == total and log.height == info["steps"]
    info2 = train_arrays(arrays, tmp_path / "run2", tokenizer_json=tokenizer_json, cfg=tiny_cfg(epochs=2))
    assert info2["tokens_consumed"] == 2 * total


def test_packed_stream_ranks_cover_stream_exactly_once(tmp_path: Path) -> None:
    tokens = np.concatenate(token_arrays(n_docs=11)).astype(np.uint32)
    seen: list[np.ndarray] = []
    world = 3
    streams = [PackedStream(tokens, 16, 2, pad_id=999, world=world, rank=r) for r in range(world)]
    for step in range(streams[0].steps_per_run):
        for s in streams:
            b = s.batch(step)
            real = b.labels != IGNORE_INDEX
            assert int(real.sum()) == b.n_tokens
            assert torch.all(b.input_ids[~real] == 999)  # padding is masked
            seen += [b.input_ids[i][real[i]].numpy() for i in range(b.input_ids.shape[0])]
    assert np.array_equal(np.concatenate(seen), tokens)


@pytest.mark.parametrize("world,batch_size,epochs", [(1, 3, 1), (3, 2, 2), (4, 5, 1)])
def test_step_counts_equal_the_batches_summed_over_ranks(world: int, batch_size: int, epochs: int) -> None:
    # train_tokens takes the loss denominator and token count from the plan instead of all-reducing the batches'
    tokens = np.arange(16 * 9 + 5, dtype=np.uint32)  # a short last sequence; the last steps leave ranks idle
    streams = [PackedStream(tokens, 16, batch_size, 999, epochs, world, r) for r in range(world)]
    for step in range(streams[0].steps_per_run):
        batches = [s.batch(step) for s in streams]
        expected = (sum(b.n_targets for b in batches), sum(b.n_tokens for b in batches))
        assert all(s.step_counts(step) == expected for s in streams)


def test_resume_gives_same_losses(tmp_path: Path, tokenizer_json: Path) -> None:
    arrays = token_arrays(n_docs=40)
    full = train_arrays(arrays, tmp_path / "a", tokenizer_json=tokenizer_json, cfg=tiny_cfg())
    part = train_arrays(arrays, tmp_path / "b", tokenizer_json=tokenizer_json, cfg=tiny_cfg(stop_after=4))
    assert part["status"] == "paused" and part["steps"] == 4 and not part["complete"]
    done = train_arrays(arrays, tmp_path / "b", tokenizer_json=tokenizer_json, cfg=tiny_cfg(), resume=True)
    a = pl.read_parquet(tmp_path / "a" / "train_log.parquet")["loss"].to_numpy()
    b = pl.read_parquet(tmp_path / "b" / "train_log.parquet")["loss"].to_numpy()
    assert len(a) == len(b) == full["steps"] > 4
    np.testing.assert_allclose(a, b, rtol=1e-6)
    assert done["tokens_consumed"] == full["tokens_consumed"]
    # the per-step log lives beside the checkpoint, not in it; the resumed run's file has each step once
    assert "log" not in load_state(find_checkpoint(tmp_path / "b"))
    lines = [json.loads(x) for x in (tmp_path / "b" / "train_log.jsonl").read_text().splitlines()]
    assert [e["step"] for e in lines] == list(range(1, full["steps"] + 1))
    np.testing.assert_allclose([e["loss"] for e in lines], a, rtol=1e-6)


def test_resume_refuses_a_different_run(tmp_path: Path, tokenizer_json: Path) -> None:
    arrays = token_arrays()
    train_arrays(arrays, tmp_path / "r", tokenizer_json=tokenizer_json, cfg=tiny_cfg(stop_after=2))
    with pytest.raises(ValueError, match="different run.*lr"):
        train_arrays(arrays, tmp_path / "r", tokenizer_json=tokenizer_json, cfg=tiny_cfg(lr=1e-2), resume=True)
    with pytest.raises(ValueError, match="stream_tokens"):
        train_arrays(arrays[:-1], tmp_path / "r", tokenizer_json=tokenizer_json, cfg=tiny_cfg(), resume=True)
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        train_arrays(arrays, tmp_path / "new", tokenizer_json=tokenizer_json, cfg=tiny_cfg(), resume=True)


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path: Path, tokenizer_json: Path, monkeypatch) -> None:
    real = T.loss_sum
    calls = {"n": 0}

    def flaky(*args, **kwargs):
        calls["n"] += 1
        out = real(*args, **kwargs)
        return out * float("nan") if calls["n"] > 3 else out

    monkeypatch.setattr(T, "loss_sum", flaky)
    run = tmp_path / "run"
    with pytest.raises(T.TrainingDiverged, match=r"step 3.*last good checkpoint.*step 2"):
        train_arrays(token_arrays(), run, tokenizer_json=tokenizer_json, cfg=tiny_cfg(checkpoint_every=2))
    assert load_state(find_checkpoint(run))["step"] == 2
    assert json.loads((run / "run.json").read_text())["status"] == "diverged"


def test_checkpoint_loads_with_auto_classes_and_generates(tmp_path: Path, tokenizer_json: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer
    run = tmp_path / "run"
    train_arrays(token_arrays(), run, tokenizer_json=tokenizer_json, cfg=tiny_cfg())
    # the checkpoint directory alone is a model directory too (lm-eval --model_args pretrained=RUN/checkpoint)
    ckpt = find_checkpoint(run)
    assert AutoTokenizer.from_pretrained(ckpt)("the red ball").input_ids == \
        AutoTokenizer.from_pretrained(run)("the red ball").input_ids
    assert AutoModelForCausalLM.from_pretrained(ckpt).config.vocab_size == \
        AutoModelForCausalLM.from_pretrained(run).config.vocab_size
    model = AutoModelForCausalLM.from_pretrained(run)
    tok = AutoTokenizer.from_pretrained(run)
    ids = tok("the red ball", return_tensors="pt").input_ids
    out = model.generate(ids, max_new_tokens=5, do_sample=False, pad_token_id=tok.pad_token_id)
    assert out.shape[1] == ids.shape[1] + 5 and torch.equal(out[0, :ids.shape[1]], ids[0])
    with torch.no_grad():  # greedy: each new token is the argmax of the saved weights' next-token logits
        logits = model(out[:, :-1]).logits[0, ids.shape[1] - 1:]
    assert torch.equal(logits.argmax(-1), out[0, ids.shape[1]:])
    assert tok.decode(out[0]).startswith("the red ball")


def test_cuda_requested_but_absent(monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        T.resolve_device("cuda")


def test_cosine_schedule_with_warmup() -> None:
    f = T.lr_lambda(warmup=4, total=20, min_ratio=0.1)
    assert [round(f(s), 3) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert f(12) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert f(20) == pytest.approx(0.1) and f(100) == pytest.approx(0.1)


DDP_SCRIPT = """
import sys, torch, numpy as np
torch.set_num_threads(1)
from pathlib import Path
from tests.trainer.conftest import tiny_cfg, token_arrays
from foresight.trainer.run import train_arrays
train_arrays(token_arrays(), Path(sys.argv[1]), tokenizer_json=Path(sys.argv[2]), cfg=tiny_cfg())
"""


@pytest.mark.slow
def test_ddp_two_ranks_consume_the_stream_once(tmp_path: Path, tokenizer_json: Path) -> None:
    script = tmp_path / "ddp.py"
    script.write_text(DDP_SCRIPT)
    root = Path(__file__).resolve().parents[2]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(script), str(tmp_path / "ddp"), str(tokenizer_json)]
    proc = subprocess.run(cmd, cwd=root, capture_output=True, text=True, timeout=240,
                          env={**__import__("os").environ, "PYTHONPATH": str(root), "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    ddp = json.loads((tmp_path / "ddp" / "run.json").read_text())
    single = train_arrays(token_arrays(), tmp_path / "one", tokenizer_json=tokenizer_json, cfg=tiny_cfg())
    assert ddp["world_size"] == 2 and ddp["tokens_consumed"] == single["tokens_consumed"] == ddp["tokens_expected"]
    # same global batches -> same losses as one process, up to reduction-order rounding
    a = pl.read_parquet(tmp_path / "ddp" / "train_log.parquet")["loss"].to_numpy()
    b = pl.read_parquet(tmp_path / "one" / "train_log.parquet")["loss"].to_numpy()
    np.testing.assert_allclose(a, b, rtol=1e-4)


def test_write_token_file_rejects_2d(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="1-D"):
        write_token_file([np.zeros((2, 2), dtype=np.uint32)], tmp_path / "t.u32")


def test_a_finished_run_is_not_retrained_silently(tmp_path: Path, tokenizer_json: Path) -> None:
    run = tmp_path / "run"
    first = train_arrays(token_arrays(), run, tokenizer_json=tokenizer_json, cfg=tiny_cfg())
    weights = (run / "model.safetensors").read_bytes()
    with pytest.raises(FileExistsError, match="already holds a training run.*--resume.*--overwrite"):
        train_arrays(token_arrays(), run, tokenizer_json=tokenizer_json, cfg=tiny_cfg(lr=1e-2))
    assert (run / "model.safetensors").read_bytes() == weights  # untouched
    again = train_arrays(token_arrays(), run, tokenizer_json=tokenizer_json, cfg=tiny_cfg(), overwrite=True)
    assert again["steps"] == first["steps"] and (run / "model.safetensors").read_bytes() == weights


def test_an_unfinished_run_is_not_retrained_silently(tmp_path: Path, tokenizer_json: Path) -> None:
    """What a killed run leaves (a checkpoint, no run.json: tests/reliability/test_signals.py::test_train) is
    continued with --resume, never restarted over without --overwrite."""
    run = tmp_path / "run"
    train_arrays(token_arrays(), run, tokenizer_json=tokenizer_json, cfg=tiny_cfg(stop_after=2))
    (run / "run.json").unlink()  # a paused run writes it; a killed one never got that far
    state = find_checkpoint(run).joinpath("trainer_state.pt").read_bytes()
    with pytest.raises(FileExistsError, match="already holds a training run.*--resume.*--overwrite"):
        train_arrays(token_arrays(), run, tokenizer_json=tokenizer_json, cfg=tiny_cfg())
    assert find_checkpoint(run).joinpath("trainer_state.pt").read_bytes() == state


def test_gradient_accumulation_matches_one_pass(tmp_path: Path, tokenizer_json: Path) -> None:
    """4 sequences per step in one pass, or one at a time with gradients summed: the same training."""
    arrays = token_arrays(n_docs=40)
    one = train_arrays(arrays, tmp_path / "one", tokenizer_json=tokenizer_json, cfg=tiny_cfg())
    acc = train_arrays(arrays, tmp_path / "acc", tokenizer_json=tokenizer_json, cfg=tiny_cfg(micro_batch_tokens=32))
    a = pl.read_parquet(tmp_path / "one" / "train_log.parquet")
    b = pl.read_parquet(tmp_path / "acc" / "train_log.parquet")
    assert one["steps"] == acc["steps"] > 3 and one["tokens_consumed"] == acc["tokens_consumed"]
    np.testing.assert_allclose(a["loss"].to_numpy(), b["loss"].to_numpy(), rtol=1e-4)
    np.testing.assert_allclose(a["grad_norm"].to_numpy(), b["grad_norm"].to_numpy(), rtol=1e-3)

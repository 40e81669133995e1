"""``foresight train MANIFEST_DIR --out RUN_DIR``: train a Llama-style LM on exactly a manifest's tokens."""

from __future__ import annotations

import contextlib
from pathlib import Path

import typer

from foresight.cli.commands.common import console, out_path, user_errors
from foresight.trainer.presets import PRESETS


def register(app: typer.Typer) -> None:
    @app.command("train")
    @user_errors
    def train(
        manifest: Path = typer.Argument(..., help="Manifest directory (manifest.json + entries.parquet)."),
        out: Path = typer.Option(..., "--out", parser=out_path,
                                 help="Run directory to write (checkpoint, tokenizer, logs)."),
        model: str = typer.Option("tiny", "--model", help=f"Preset ({', '.join(PRESETS)}) or a JSON file of "
                                                          "LlamaConfig fields."),
        steps: int = typer.Option(None, "--steps", help="Stop after this many optimizer steps (default: all)."),
        epochs: int = typer.Option(1, "--epochs", help="Passes over the manifest's tokens."),
        lr: float = typer.Option(1e-3, "--lr", help="Peak learning rate (AdamW)."),
        warmup: int = typer.Option(None, "--warmup", help="Warm-up steps (default 5 % of steps, at most 1024)."),
        seq_len: int = typer.Option(256, "--seq-len", help="Context length of the packed sequences."),
        batch_tokens: int = typer.Option(8192, "--batch-tokens", help="Tokens per optimizer step (all ranks)."),
        seed: int = typer.Option(0, "--seed", help="Initialisation seed."),
        device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
        compile_: bool = typer.Option(False, "--compile", help="Wrap the model in torch.compile."),
        checkpoint_every: int = typer.Option(200, "--checkpoint-every", help="Steps between checkpoints."),
        micro_batch_tokens: int = typer.Option(None, "--micro-batch-tokens", help="Gradient accumulation: "
                                               "forward/backward this many tokens at a time (default: the batch)."),
        log_every: int = typer.Option(10, "--log-every", help="Steps between reads of the loss from the device "
                                                              "(one host sync each; every step is still logged)."),
        tokenizer: Path = typer.Option(None, "--tokenizer", help="tokenizer.json the shards were made with "
                                                                 "(default: found next to the shards)."),
        shards: Path = typer.Option(None, "--shards", help="Shard directory, if it moved since the manifest."),
        resume: bool = typer.Option(False, "--resume", help="Continue from RUN_DIR/checkpoint."),
        overwrite: bool = typer.Option(False, "--overwrite", help="Train again from scratch into a RUN_DIR that "
                                                                  "already holds a run (default: refused)."),
        quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
        threads: int = typer.Option(None, "--threads", help="torch CPU threads (default: torch's choice; 1 is "
                                                            "often fastest on a busy machine)."),
    ) -> None:
        """Verify the manifest, then train on exactly its tokens (torchrun --nproc_per_node N for DDP).

        Example: foresight train demo/manifests/lsbs_mix6 --out demo/runs/lsbs_mix6 --model tiny
        """
        from foresight.trainer.run import train_manifest
        from foresight.trainer.train import TrainConfig, dist_info, set_threads

        set_threads(threads)
        cfg = TrainConfig(seq_len=seq_len, batch_tokens=batch_tokens, lr=lr, warmup_steps=warmup, epochs=epochs,
                          max_steps=steps, seed=seed, device=device, compile=compile_,
                          checkpoint_every=checkpoint_every, progress=not quiet, log_every=max(1, log_every),
                          micro_batch_tokens=micro_batch_tokens)
        model_arg: str | Path = Path(model) if model.endswith(".json") else model
        from foresight.formats.atomic import check_output_dir
        from foresight.formats.lock import locked

        check_output_dir(out)
        # under torchrun every rank trains into RUN_DIR: rank 0 holds the lock for all of them
        with locked(out, f"run {out}") if dist_info()[1] == 0 else contextlib.nullcontext():
            info = train_manifest(manifest, out, model=model_arg, cfg=cfg, tokenizer=tokenizer, shards_root=shards,
                                  resume=resume, overwrite=overwrite)
        if info and dist_info()[1] == 0:  # under torchrun only rank 0 reports
            done = "all" if info["complete"] else "PARTIAL:"
            console.print(f"run: {out}  steps={info['steps']}  tokens={info['tokens_consumed']:,} ({done} of "
                          f"{info['tokens_expected']:,})  final loss={info['final_loss']:.4f}  "
                          f"params={info['params']:,}  {info['wall_time_s']:.1f}s")

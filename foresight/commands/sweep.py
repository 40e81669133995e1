"""``foresight sweep SWEEP.toml --shards D --out S`` (run) and ``foresight sweep plot S`` (figures + table)."""

from __future__ import annotations

from pathlib import Path

import typer

from foresight.commands.common import console, default_command_group, user_errors


def register(app: typer.Typer) -> None:
    group = typer.Typer(help="Pretrain-and-probe sweeps over mixtures: manifest → train → probe, then plots.",
                        cls=default_command_group("run"), no_args_is_help=True)
    app.add_typer(group, name="sweep")

    @group.command("run")
    @user_errors
    def run(
        sweep: Path = typer.Argument(..., help="Sweep file (TOML: mixtures = [...] or a [grid]; see docs/trainer.md) "
                                               "or a bundled sweep name (lsbs_mix0_vs_mix6, lsbs_reasoning_share, "
                                               "visual_share, reasoning_share, visual_share_quick)."),
        shards: Path = typer.Option(..., "--shards", help="Shard directory (with index.json)."),
        out: Path = typer.Option(..., "--out", help="Sweep directory (one sub-directory per mixture)."),
        tokenizer: Path = typer.Option(None, "--tokenizer", help="tokenizer.json of the shards (default: found "
                                                                 "next to them)."),
        device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
        quiet: bool = typer.Option(False, "--quiet", help="No training progress bars."),
        threads: int = typer.Option(None, "--threads", help="torch CPU threads (default: torch's choice; 1 is "
                                                            "often fastest on a busy machine)."),
    ) -> None:
        """Run every mixture of the sweep (finished ones are skipped) and write results.parquet.

        Example: foresight sweep demo/sweep.toml --shards demo/shards --out demo/sweep
        """
        from trainer.plots import markdown_table
        from trainer.sweep import run_sweep
        from trainer.train import set_threads

        set_threads(threads)
        path = run_sweep(sweep, shards, out, tokenizer=tokenizer, device=device, progress=not quiet,
                         log=lambda s: console.print(s, highlight=False))
        typer.echo(markdown_table(out))
        console.print(f"wrote {path}; draw it with `foresight sweep plot {out}`")

    @group.command("plot")
    @user_errors
    def plot(sweep_dir: Path = typer.Argument(..., help="Sweep directory with results.parquet.")) -> None:
        """Plot each probe score against the swept share (PNG; error bars over seeds) and write results.md
        (the run table, then the dose-response summary: mean ± std [min, max] per share, Spearman ρ).

        Example: foresight sweep plot demo/sweep
        """
        from trainer.plots import plot_sweep

        files = plot_sweep(sweep_dir)
        typer.echo((sweep_dir / "results.md").read_text(encoding="utf-8"))
        console.print(f"wrote {len(files) - 1} plots in {sweep_dir / 'plots'} and {sweep_dir / 'results.md'}")

    @group.command("summary")
    @user_errors
    def summary(
        sweep_dir: Path = typer.Argument(..., help="Sweep directory with results.parquet."),
        column: list[str] = typer.Option(None, "--column", help="Score column(s) to summarise (default: bpb_visual, "
                                                                "bpb_reasoning, bpb_label_code_reasoning, "
                                                                "bpb_overall, final_loss where present)."),
    ) -> None:
        """Print the dose-response summary: per swept share the mean over seeds ± std [min, max], then
        Spearman's ρ between share and mean score and whether the means fall or rise monotonically.

        Example: foresight sweep summary demo/effect
        """
        import polars as pl

        from formats.schema import RESULTS_FILE
        from trainer.summary import summary_markdown

        path = sweep_dir / RESULTS_FILE
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found; run the sweep first")
        rows = pl.read_parquet(path).to_dicts()
        missing = [c for c in column or [] if all(c not in r for r in rows)]
        if missing:
            raise ValueError(f"{path}: no column(s) {missing}")
        text = summary_markdown(rows, column or None)
        typer.echo(text or "no effect columns in results.parquet; name them with --column")

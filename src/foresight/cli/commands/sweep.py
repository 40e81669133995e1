"""``foresight sweep SWEEP.toml --shards D --out S`` (run), ``foresight sweep design SPEC --shards D --out S``
(write a swarm or grid of mixtures as a sweep) and ``foresight sweep plot S`` (figures + table)."""

from __future__ import annotations

from pathlib import Path

import typer

from foresight.cli.commands.common import console, default_command_group, out_path, set_option, user_errors
from foresight.formats.errors import InputError


def _bounds(items: list[str] | None, option: str) -> dict[str, float]:
    """``POOL=FRACTION`` options as a dict (one-line error naming the option on a bad item)."""
    out = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        try:
            out[name.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep or not name.strip():
            raise InputError(f"{option} {item!r}: expected POOL=FRACTION, e.g. {option} reasoning=0.2")
    return out


def _grid(items: list[str] | None) -> dict[str, list[float]]:
    """``POOL=P1,P2,...`` (percent) options, in the order given."""
    out = {}
    for item in items or []:
        name, sep, values = item.partition("=")
        try:
            out[name.strip()] = [float(v) for v in values.split(",") if v.strip()]
        except ValueError:
            sep = ""
        if not sep or not name.strip():
            raise InputError(f"--grid {item!r}: expected POOL=P1,P2,... in percent, e.g. --grid reasoning=50,60,70")
    return out


def _seeds(text: str | None) -> list[int] | None:
    if text is None:
        return None
    try:
        seeds = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        seeds = []
    if not seeds or min(seeds) < 0 or len(set(seeds)) != len(seeds):
        raise InputError(f"--seeds {text!r}: expected distinct non-negative integers, e.g. --seeds 0,1")
    return seeds


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
        out: Path = typer.Option(..., "--out", parser=out_path,
                                 help="Sweep directory (one sub-directory per mixture)."),
        tokenizer: Path = typer.Option(None, "--tokenizer", help="tokenizer.json of the shards (default: found "
                                                                 "next to them)."),
        device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
        quiet: bool = typer.Option(False, "--quiet", help="No training progress bars."),
        threads: int = typer.Option(None, "--threads", help="torch CPU threads (default: torch's choice; 1 is "
                                                            "often fastest on a busy machine)."),
        set_: list[str] = set_option("train.lr=0.002"),
    ) -> None:
        """Run every mixture of the sweep (finished ones are skipped) and write results.parquet.

        Example: foresight sweep demo/sweep.toml --shards demo/shards --out demo/sweep
        """
        from foresight.formats.atomic import check_output_dir
        from foresight.formats.lock import locked
        from foresight.trainer.plots import markdown_table
        from foresight.trainer.sweep import run_sweep
        from foresight.trainer.train import set_threads

        set_threads(threads)
        with locked(check_output_dir(out), f"sweep {out}"):
            path = run_sweep(sweep, shards, out, tokenizer=tokenizer, device=device, progress=not quiet,
                             log=lambda s: console.print(s, highlight=False), overrides=set_)
        typer.echo(markdown_table(out))
        console.print(f"wrote {path}; draw it with `foresight sweep plot {out}`")

    @group.command("design")
    @user_errors
    def design(
        spec: str = typer.Argument(..., help="Base mixture spec or preset: its pools (where/source, max_repetition, "
                                             "order), exclude and seed; its weights centre the swarm / split the "
                                             "rest of a grid."),
        shards: Path = typer.Option(..., "--shards", help="Shard directory: each pool's available tokens."),
        out: Path = typer.Option(..., "--out", help="Sweep directory: writes sweep.toml, design/*.toml, "
                                                    "design.json (run the sweep with --out the same directory)."),
        total_tokens: str = typer.Option(None, "--total-tokens", help="Budget per mixture (e.g. 20M); default the "
                                                                      "spec's (not max)."),
        mixtures: int = typer.Option(16, "--mixtures", "-n", help="Swarm size."),
        seed: int = typer.Option(0, "--seed", help="Swarm RNG seed."),
        concentration: float = typer.Option(1.0, "--concentration", help="Dirichlet concentration per pool "
                                                                         "(alpha = c·K·spec weights)."),
        grid: list[str] = typer.Option(None, "--grid", help="POOL=P1,P2,... percent; repeat for a product grid "
                                                            "(instead of a swarm)."),
        minimum: list[str] = typer.Option(None, "--min", help="POOL=FRACTION lower weight bound (repeatable)."),
        maximum: list[str] = typer.Option(None, "--max", help="POOL=FRACTION upper weight bound (repeatable)."),
        seeds: str = typer.Option(None, "--seeds", help="Train every mixture once per seed, e.g. 0,1 (the sweep "
                                                        "file's `seeds`)."),
        like: str = typer.Option(None, "--like", help="Sweep file or bundled sweep whose model, swept, [train] and "
                                                      "[probe] settings to use."),
        model: str = typer.Option(None, "--model", help="Model preset or LlamaConfig JSON (overrides --like)."),
        threads: int = typer.Option(None, "--threads", help="DuckDB threads for counting pool tokens."),
    ) -> None:
        """Write a sweep of N mixtures (Dirichlet swarm or grid) that all satisfy the bounds and repetition cap.

        Example: foresight sweep design lsbs_mix6 --shards demo/shards --out demo/swarm --total-tokens 500K -n 12
        """
        from foresight.formats.index import index_sha256
        from foresight.mixtures import load_spec
        from foresight.mixtures.design import dirichlet_alpha, make_constraints, swarm, write_design
        from foresight.mixtures.design import grid as grid_design
        from foresight.mixtures.planner import available_tokens
        from foresight.trainer.sweep import load_sweep

        base = load_spec(spec, total_tokens=total_tokens)
        if base.total_tokens is None:
            raise InputError(f"spec {spec} has total_tokens = \"max\"; give the sweep's budget with --total-tokens")
        avail = available_tokens(base, shards, threads=threads)
        cons = make_constraints(base, avail, base.total_tokens, _bounds(minimum, "--min"), _bounds(maximum, "--max"))
        points = _grid(grid)
        d = grid_design(cons, base, points) if points else \
            swarm(cons, dirichlet_alpha(base, concentration), mixtures, seed)
        settings: dict = {"model": "tiny", "swept": "reasoning"}
        if like:
            ref = load_sweep(like)
            settings = {"model": ref.model, "swept": ref.swept, "train": ref.train, "probe": ref.probe}
        if model:
            settings["model"] = model
        path = write_design(d, base, out, settings, _seeds(seeds), index_sha256(shards))
        for name, why in d.dropped.items():
            console.print(f"  dropped {name}: {why}", highlight=False)
        console.print(f"wrote {len(d.mixtures)} mixtures ({d.method}) to {path}; run them with "
                      f"`foresight sweep {path} --shards {shards} --out {out}`", highlight=False)

    @group.command("plot")
    @user_errors
    def plot(sweep_dir: Path = typer.Argument(..., help="Sweep directory with results.parquet.")) -> None:
        """Plot each probe score against the swept share (PNG; error bars over seeds) and write results.md
        (the run table, then the dose-response summary: mean ± std [min, max] per share, Spearman ρ). Prints the
        plot paths and the summary; the run table is the one `foresight sweep` printed.

        Example: foresight sweep plot demo/sweep
        """
        import polars as pl

        from foresight.formats.schema import RESULTS_FILE
        from foresight.trainer.plots import plot_sweep
        from foresight.trainer.proposal import plot_proposals
        from foresight.trainer.summary import summary_markdown

        # proposed mixtures (`foresight mix propose`): predicted against achieved, proposals.md + a PNG
        extra = plot_proposals(sweep_dir) if (sweep_dir / RESULTS_FILE).is_file() else []
        if extra:
            typer.echo(extra[1].read_text(encoding="utf-8"))
            console.print(f"predicted vs achieved: {extra[0]} and {extra[1]}")
        files = plot_sweep(sweep_dir)
        summary = summary_markdown(pl.read_parquet(sweep_dir / RESULTS_FILE).to_dicts())
        if summary:
            typer.echo(summary)
        for f in files[:-1]:
            typer.echo(f"  {f}")
        console.print(f"wrote {len(files) - 1} plots in {sweep_dir / 'plots'} and {files[-1]} (run table + summary)",
                      highlight=False)

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

        from foresight.formats.schema import RESULTS_FILE
        from foresight.trainer.summary import summary_markdown

        path = sweep_dir / RESULTS_FILE
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found; run the sweep first")
        rows = pl.read_parquet(path).to_dicts()
        missing = [c for c in column or [] if all(c not in r for r in rows)]
        if missing:
            raise InputError(f"{path}: no column(s) {missing}")
        text = summary_markdown(rows, column or None)
        typer.echo(text or "no effect columns in results.parquet; name them with --column")

"""``foresight mix SPEC --shards D --out M`` (build), ``foresight mix plan SPEC --shards D``, ``mix presets``,
``foresight mix propose SWEEP_DIR --target METRIC --out SPEC`` (a mixture from a finished designed sweep)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from foresight.cli.commands.common import console, default_command_group, out_path, set_option, user_errors


def _wide() -> Console:
    """A console at least 110 columns wide, so the mixture table's numbers are never truncated in a pipe."""
    return Console(width=max(console.width, 110), highlight=False, markup=False)

SPEC_HELP = "Mixture spec (TOML file) or a preset name such as lsbs_mix6 (see `foresight mix presets`)."


def _load(spec: str, normalize: bool, total_tokens: str | None, seed: int | None,  # noqa: ANN202
          overrides: list[str] | None):
    from foresight.mixtures import load_spec

    return load_spec(spec, normalize=normalize, total_tokens=total_tokens, seed=seed, overrides=overrides)


def register(app: typer.Typer) -> None:
    group = typer.Typer(help="Token-exact mixtures: plan a spec over shards, build its manifest.",
                        cls=default_command_group("build"), no_args_is_help=True)
    app.add_typer(group, name="mix")

    @group.command("build")
    @user_errors
    def build(
        spec: str = typer.Argument(..., help=SPEC_HELP),
        shards: Path = typer.Option(..., "--shards", help="Shard directory (with index.json)."),
        out: Path = typer.Option(..., "--out", parser=out_path,
                                 help="Manifest directory to write."),
        total_tokens: str = typer.Option(None, "--total-tokens", help="Override total_tokens (e.g. 20M, max)."),
        seed: int = typer.Option(None, "--seed", help="Override the spec's seed."),
        normalize: bool = typer.Option(False, "--normalize", help="Scale weights to sum to 1 instead of failing."),
        threads: int = typer.Option(None, "--threads", help="DuckDB threads (the result does not depend on it)."),
        overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing manifest in --out (swapped "
                                                                  "in only once the new one is complete)."),
        memory_limit: str = typer.Option(None, "--memory-limit", help="DuckDB's memory, e.g. 1GB (default: a quarter "
                                         "of RAM, at most 8 GB; as much again may spill to a temp dir). The build "
                                         "holds ~0.4 GB besides, at any size; its entries spill under TMPDIR."),
        set_: list[str] = set_option("pools.code.weight=0.3"),
    ) -> None:
        """Plan SPEC over the shards and write the manifest (manifest.json + entries.parquet).

        Example: foresight mix lsbs_mix6 --shards demo/shards --out demo/manifests/lsbs_mix6
        """
        from foresight.manifests.build import check_manifest_target, write_manifest
        from foresight.mixtures import plan
        from foresight.mixtures.report import plan_table

        check_manifest_target(out, overwrite)  # before the plan's minutes of work (checked again under the lock)
        with plan(_load(spec, normalize, total_tokens, seed, set_), shards, threads=threads,
                  memory_limit=memory_limit) as p:
            out_dir = write_manifest(p, out, overwrite)
        _wide().print(plan_table(p))
        console.print(f"manifest: {out_dir} ({p.n_entries:,} entries)")

    @group.command("plan")
    @user_errors
    def plan_cmd(
        spec: str = typer.Argument(..., help=SPEC_HELP),
        shards: Path = typer.Option(..., "--shards", help="Shard directory (with index.json)."),
        total_tokens: str = typer.Option(None, "--total-tokens", help="Override total_tokens (e.g. 20M, max)."),
        seed: int = typer.Option(None, "--seed", help="Override the spec's seed."),
        normalize: bool = typer.Option(False, "--normalize", help="Scale weights to sum to 1 instead of failing."),
        threads: int = typer.Option(None, "--threads", help="DuckDB threads."),
        memory_limit: str = typer.Option(None, "--memory-limit", help="DuckDB's memory, e.g. 1GB (default: a quarter "
                                         "of RAM, at most 8 GB; as much again may spill to a temp dir). The build "
                                         "holds ~0.4 GB besides, at any size; its entries spill under TMPDIR."),
        set_: list[str] = set_option("pools.code.weight=0.3"),
    ) -> None:
        """Show the mixture table without writing; fails on an infeasible spec (pool, tokens needed, available).

        Example: foresight mix plan lsbs_mix0 --shards demo/shards --total-tokens 2M
        """
        from foresight.mixtures import plan
        from foresight.mixtures.report import plan_table

        with plan(_load(spec, normalize, total_tokens, seed, set_), shards, threads=threads,
                  memory_limit=memory_limit) as p:
            _wide().print(plan_table(p))
        console.print(f"feasible: {p.n_entries:,} entries; every pool has enough tokens")

    @group.command("presets")
    @user_errors
    def presets() -> None:
        """List the shipped presets (LSBS mixtures, vision grid, single-category sweeps).

        Example: foresight mix presets
        """
        from foresight.mixtures import load_spec, preset_names

        for name in preset_names():
            console.print(f"{name:28s} {load_spec(name).description}", highlight=False)

    @group.command("propose")
    @user_errors
    def propose_cmd(
        sweep_dir: Path = typer.Argument(..., help="A finished sweep designed with `foresight sweep design` "
                                                   "(results.parquet, design.json, <mixture>/spec.toml)."),
        target: str = typer.Option(..., "--target", help="results.parquet column to optimise, e.g. bpb_overall."),
        maximize: bool = typer.Option(..., "--maximize/--minimize", help="Direction of the target."),
        out: Path = typer.Option(..., "--out", help="Spec file to write; OUT's stem + .sweep.toml runs it."),
        seed: int = typer.Option(0, "--seed", help="Seed of the candidate draws searched."),
    ) -> None:
        """Fit regressors of the target on pool weights, report leave-one-out fit, write the best feasible mixture.

        Example: foresight mix propose demo/swarm --target bpb_overall --minimize --out demo/proposal.toml
        """
        from foresight.mixtures.propose import propose, write_proposal

        p = propose(sweep_dir, target, maximize, seed)
        for name, cv in p.cv.items():
            mark = "  <- chosen" if name == p.regressor else ""
            console.print(f"{name:10s} leave-one-out Spearman {cv['spearman']:.3f}  R2 {cv['r2']:.3f}{mark}",
                          highlight=False)
        for note in p.notes:
            console.print(note, highlight=False)
        weights = ", ".join(f"{n} {100 * float(w):.2f}%" for n, w in p.weights.items())
        console.print(f"proposal: {weights}; predicted {target} = {p.predicted:.6g}", highlight=False)
        spec_path, sweep_path = write_proposal(p, sweep_dir, out, target, maximize)
        console.print(f"wrote {spec_path} and {sweep_path}; run it with `foresight sweep {sweep_path} --shards "
                      f"SHARDS --out DIR`, then `foresight sweep plot DIR` shows predicted against achieved",
                      highlight=False)

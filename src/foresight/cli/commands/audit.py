"""``foresight audit SHARDS "SELECT …"``, ``foresight audit SHARDS --shell``, ``foresight audit report SHARDS``."""

from __future__ import annotations

import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.text import Text

from foresight.cli.commands.common import console, default_command_group, err_console, fail, out_path, user_errors

if TYPE_CHECKING:
    from foresight.audit import AuditConnection

SHARDS_ARG = typer.Argument(..., help="Shard directory (with index.json), as written by `foresight curate`.")
MANIFEST_OPT = typer.Option([], "--manifest", "-m", help="Manifest directory to audit (repeatable).")
RESULTS_OPT = typer.Option(None, "--results", "-r", help="Sweep directory holding results.parquet.")
STRICT_OPT = typer.Option(False, "--strict", help="Refuse (instead of warn) when a shard or manifest hash differs.")
HELDOUT_OPT = typer.Option(None, "--heldout-fraction", help="Held-out probe fraction (default: formats.splits).")


@contextmanager
def opened(shards: Path, manifests: list[Path], results: Path | None, strict: bool,
           heldout: float | None, timeout_s: float | None = None,
           memory_limit: str | None = None) -> Iterator[AuditConnection]:
    """Connect, print hash warnings on stderr, and turn audit errors into the full one-message failure."""
    from foresight.audit import DEFAULT_TIMEOUT_S, AuditError, connect
    from foresight.formats.splits import DEFAULT_HELDOUT_FRACTION

    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            audit = connect(shards, manifests, results, strict=strict,
                            heldout_fraction=DEFAULT_HELDOUT_FRACTION if heldout is None else heldout,
                            timeout_s=DEFAULT_TIMEOUT_S if timeout_s is None else timeout_s,
                            memory_limit=memory_limit)
        for w in caught:
            err_console.print(Text.assemble(("warning:", "bold yellow"), " ", str(w.message)), highlight=False,
                              soft_wrap=True)
        with audit:
            yield audit
    except AuditError as e:
        # DuckDB's message spans lines (the statement, a caret at the position): keep all of it.
        fail(str(e))


def register(app: typer.Typer) -> None:
    group = typer.Typer(help="Audit shards, manifests and sweep results with read-only, sandboxed SQL.",
                        cls=default_command_group("query"), no_args_is_help=True)
    app.add_typer(group, name="audit")

    @group.command("query")
    @user_errors
    def query(
        shards: Path = SHARDS_ARG,
        sql: str = typer.Argument(None, help="One SELECT/WITH/DESCRIBE/SHOW/SUMMARIZE/PIVOT/EXPLAIN statement "
                                              "('-' reads it from stdin)."),
        manifest: list[Path] = MANIFEST_OPT,
        results: Path = RESULTS_OPT,
        param: list[str] = typer.Option([], "--param", "-p", help="Bind $name: name=value (repeatable)."),
        fmt: str = typer.Option("table", "--format", "-f", help="table, csv, json or parquet."),
        out: Path = typer.Option(None, "--out", "-o", parser=out_path,
                                 help="Write the result to this file."),
        strict: bool = STRICT_OPT,
        shell: bool = typer.Option(False, "--shell", help="Interactive SQL prompt (.tables, .schema VIEW, .quit)."),
        heldout_fraction: float = HELDOUT_OPT,
        timeout: float = typer.Option(60.0, "--timeout", help="Stop a query after this many seconds (0 = no "
                                      "limit); Ctrl-C stops it too."),
        memory_limit: str = typer.Option(None, "--memory-limit", help="DuckDB memory for a query, e.g. 2GB "
                                         "(default: a quarter of RAM, at most 8 GB; as much again may spill)."),
    ) -> None:
        """Run one read-only SQL statement over the views segments, documents, entries, manifests, pools, results.

        Values are bound with --param name=value and used as $name, never pasted into the SQL.

        Example: foresight audit demo/shards -m demo/manifests/lsbs_mix6 "SELECT source, sum(n_tokens) FROM entries WHERE visual GROUP BY source"
        """  # noqa: E501
        from foresight.audit import parse_param
        from foresight.audit.format import FORMATS, write_frame

        if fmt not in FORMATS:
            fail(f"unknown --format {fmt!r}; use one of {', '.join(FORMATS)}")
        if shell == (sql is not None):
            fail("give either one SQL statement or --shell, e.g. foresight audit SHARDS \"SELECT count(*) FROM "
                 "segments\"")
        params = dict(parse_param(p) for p in param)
        with opened(shards, manifest, results, strict, heldout_fraction, timeout, memory_limit) as audit:
            if shell:
                from foresight.audit.shell import history_path, run_shell

                run_shell(audit, console, history_path() if sys.stdin.isatty() or _history_env() else None)
                return
            text = sys.stdin.read() if sql == "-" else sql
            df = audit.query(text, params)
            write_frame(df, fmt, out, console)
            if out is not None:
                err_console.print(f"wrote {df.height} rows to {out}", highlight=False)

    @group.command("report")
    @user_errors
    def report(
        shards: Path = SHARDS_ARG,
        manifest: list[Path] = MANIFEST_OPT,
        results: Path = RESULTS_OPT,
        out: Path = typer.Option(..., "--out", "-o", parser=out_path,
                                 help="Report directory (report.md, PNG plots, CSV tables)."),
        strict: bool = STRICT_OPT,
        heldout_fraction: float = HELDOUT_OPT,
    ) -> None:
        """Write the canned composition report: markdown + PNG plots + CSV tables, with pass/fail checks.

        Example: foresight audit report demo/shards -m demo/manifests/lsbs_mix0 -m demo/manifests/lsbs_mix6 --out demo/audit
        """  # noqa: E501
        from foresight.audit.report import write_report
        from foresight.formats.atomic import check_output_dir
        from foresight.formats.lock import locked

        check_output_dir(out)  # '' would write into the current directory
        with locked(out, f"report {out}"), opened(shards, manifest, results, strict, heldout_fraction) as audit:
            summary = write_report(audit, out)
        for check in summary.checks:
            mark = ("pass", "green") if check.passed else ("FAIL", "bold red")
            console.print(Text.assemble(mark, f" {check.name}: {check.detail}"), highlight=False)
        console.print(f"report: {out / 'report.md'} ({len(summary.files)} files)", highlight=False)
        if not all(c.passed for c in summary.checks):
            raise typer.Exit(2)


def _history_env() -> bool:
    import os

    return "FORESIGHT_AUDIT_HISTORY" in os.environ

"""Rendering audit results: a rich table on the terminal, or CSV / JSON / Parquet to a file or stdout."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import polars as pl
from rich.console import Console
from rich.table import Table

from foresight.formats.atomic import check_output_file, replacing
from foresight.formats.errors import InputError

FORMATS = ("table", "csv", "json", "parquet")
MAX_TABLE_ROWS = 200
MAX_CELL = 80


def printable(df: pl.DataFrame) -> pl.DataFrame:
    """Binary columns (text_sha256) as hex, nested columns (labels, tokens) as text: what CSV and people can read."""
    casts = []
    for name, dtype in df.schema.items():
        if dtype == pl.Binary:
            casts.append(pl.col(name).bin.encode("hex"))
        elif isinstance(dtype, (pl.List, pl.Array, pl.Struct)):
            casts.append(pl.col(name).map_elements(_nested_text, return_dtype=pl.String))
    return df.with_columns(casts) if casts else df


def _nested_text(value: object) -> str:
    if isinstance(value, pl.Series):
        value = value.to_list()
    return str(value)


def json_ready(df: pl.DataFrame) -> pl.DataFrame:
    """JSON keeps lists and structs; only bytes need hex."""
    casts = [pl.col(n).bin.encode("hex") for n, t in df.schema.items() if t == pl.Binary]
    return df.with_columns(casts) if casts else df


def render_table(df: pl.DataFrame, console: Console, max_rows: int = MAX_TABLE_ROWS) -> None:
    """A rich table of the first ``max_rows`` rows, long cells shortened, and a count line."""
    shown = printable(df.head(max_rows))
    table = Table(show_header=True, header_style="bold", show_lines=False)
    for name, dtype in df.schema.items():
        numeric = dtype.is_numeric()
        table.add_column(name, justify="right" if numeric else "left", overflow="fold")
    for row in shown.iter_rows():
        table.add_row(*(_cell(v) for v in row))
    console.print(table)
    more = f" (first {max_rows} shown; use --format csv --out FILE for all)" if df.height > max_rows else ""
    console.print(f"{df.height} row{'s' if df.height != 1 else ''}{more}", style="dim", highlight=False)


def _cell(value: object) -> str:
    if value is None:
        return "NULL"
    text = f"{value:.6g}" if isinstance(value, float) else str(value)
    return text if len(text) <= MAX_CELL else text[:MAX_CELL - 1] + "…"


def write_frame(df: pl.DataFrame, fmt: str, out: Path | None, console: Console) -> None:
    """Write ``df`` as ``fmt`` to ``out`` (or stdout; Parquet needs a file)."""
    if fmt not in FORMATS:
        raise InputError(f"unknown --format {fmt!r}; use one of {', '.join(FORMATS)}")
    if out is not None:
        out = check_output_file(out)
        with replacing(out) as tmp:  # a full disk or an interrupt leaves the old file or none, never half
            _write_frame(df, fmt, tmp, console)
        return
    _write_frame(df, fmt, out, console)


def _write_frame(df: pl.DataFrame, fmt: str, out: Path | None, console: Console) -> None:
    if fmt == "table":
        if out is None:
            render_table(df, console)
            return
        buf = io.StringIO()
        render_table(df, Console(file=buf, width=200, color_system=None), max_rows=df.height)
        out.write_text(buf.getvalue(), encoding="utf-8")
        return
    if fmt == "parquet":
        if out is None:
            raise InputError("--format parquet needs --out FILE.parquet")
        df.write_parquet(out)
        return
    text = printable(df).write_csv() if fmt == "csv" else json_ready(df).write_json()
    if fmt == "json":
        text += "\n"
    if out is None:
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        out.write_text(text, encoding="utf-8")

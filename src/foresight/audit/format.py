"""Rendering audit results: a rich table on the terminal, or CSV / JSON / Parquet to a file or stdout."""

from __future__ import annotations

import datetime as dt
import decimal
import io
import json
import math
import sys
from pathlib import Path
from typing import Any

import polars as pl
from rich.console import Console
from rich.table import Table
from rich.text import Text

from foresight.formats.atomic import check_output_file, replacing
from foresight.formats.errors import InputError

FORMATS = ("table", "csv", "json", "parquet")
MAX_TABLE_ROWS = 200
MAX_CELL = 80


def printable(df: pl.DataFrame) -> pl.DataFrame:
    """Binary columns (text_sha256) as hex, nested columns (labels, tokens, structs) as JSON text with bytes in
    hex: what CSV and people can read."""
    casts = []
    for name, dtype in df.schema.items():
        if dtype == pl.Binary:
            casts.append(pl.col(name).bin.encode("hex"))
        elif dtype.is_nested():
            casts.append(pl.col(name).map_elements(_nested_text, return_dtype=pl.String, skip_nulls=True))
    return df.with_columns(casts) if casts else df


def _nested_text(value: object) -> str:
    return json.dumps(jsonable(value), ensure_ascii=False)


def jsonable(value: Any) -> Any:
    """A Python value from polars as JSON data: bytes as hex, decimals as numbers (integers exact), times as
    ISO text, at any depth."""
    if isinstance(value, pl.Series):
        value = value.to_list()
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # JSON has no NaN or infinity
    return value


def json_text(df: pl.DataFrame) -> str:
    """The rows as a JSON array of objects; lists and structs stay JSON lists and objects (see :func:`jsonable`)."""
    return json.dumps([jsonable(row) for row in df.iter_rows(named=True)], ensure_ascii=False,
                      separators=(",", ":")) + "\n"


def render_table(df: pl.DataFrame, console: Console, max_rows: int = MAX_TABLE_ROWS) -> None:
    """A rich table of the first ``max_rows`` rows, long cells shortened, and a count line."""
    shown = printable(df.head(max_rows))
    table = Table(show_header=True, header_style="bold", show_lines=False)
    for name, dtype in df.schema.items():
        numeric = dtype.is_numeric()
        table.add_column(Text(name), justify="right" if numeric else "left", overflow="fold")
    for row in shown.iter_rows():
        table.add_row(*(Text(_cell(v)) for v in row))  # Text: a value is never read as rich markup
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
    text = printable(df).write_csv() if fmt == "csv" else json_text(df)
    if out is None:
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        out.write_text(text, encoding="utf-8")

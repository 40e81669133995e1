"""Labelled-segment files (teacher output, the gold set): Parquet with text, provenance and six 0/1 columns."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from foresight.formats.atomic import replacing
from foresight.formats.errors import InputError
from foresight.formats.taxonomy import LABEL_NAMES

REQUIRED = ("text", *LABEL_NAMES)
T = TypeVar("T")


def read_json_lines(path: str | Path, what: str, parse: Callable[[Any], T]) -> Iterator[tuple[int, T]]:
    """``(line number, parse(record))`` for every non-blank line of a JSONL file. A line that is not JSON, or that
    ``parse`` rejects (a missing key, a wrong type), stops with ``PATH:LINE: not WHAT (why)``."""
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                yield n, parse(json.loads(line))
            except (ValueError, KeyError, TypeError) as e:
                raise InputError(f"{path}:{n}: not {what} ({e})") from None


def write_labels(path: str | Path, ids: list[str], doc_ids: list[str], sources: list[str], texts: list[str],
                 y: np.ndarray, extra: dict[str, list] | None = None) -> Path:
    """Columns: id, doc_id, source, text, labels (list), one int8 0/1 column per label, then ``extra``."""
    if y.shape != (len(texts), len(LABEL_NAMES)):
        raise ValueError(f"label matrix shape {y.shape} does not match {len(texts)} texts × {len(LABEL_NAMES)}")
    cols: dict[str, pa.Array] = {
        "id": pa.array(ids, pa.string()), "doc_id": pa.array(doc_ids, pa.string()),
        "source": pa.array(sources, pa.string()), "text": pa.array(texts, pa.string()),
        "labels": pa.array([[n for n, v in zip(LABEL_NAMES, row, strict=True) if v] for row in y.tolist()],
                           pa.list_(pa.string())),
    }
    cols.update({name: pa.array(y[:, j].astype(np.int8)) for j, name in enumerate(LABEL_NAMES)})
    for k, v in (extra or {}).items():
        cols[k] = pa.array(v)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with replacing(path) as tmp:
        pq.write_table(pa.table(cols), tmp, compression="zstd")
    return path


def read_labels(path: str | Path) -> tuple[pa.Table, list[str], np.ndarray]:
    """(table, texts, 0/1 matrix in taxonomy order); refuses a file without the text and label columns."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"labels file {path} does not exist; create one with `foresight classify teach`")
    table = pq.read_table(path)
    missing = [c for c in REQUIRED if c not in table.column_names]
    if missing:
        raise InputError(f"{path} lacks columns {missing}; a labels file needs 'text' and one 0/1 column per "
                         f"label {list(LABEL_NAMES)}")
    y = np.stack([np.asarray(table.column(n).to_pylist(), dtype=np.float64) for n in LABEL_NAMES], axis=1)
    bad = np.argwhere(~np.isin(y, (0, 1)))
    if len(bad):
        r, c = bad[0]
        raise InputError(f"{path} row {r}: column {LABEL_NAMES[c]} is {y[r, c]!r}; label columns must be 0 or 1")
    return table, table.column("text").to_pylist(), y.astype(np.int8)


def group_column(table: pa.Table, column: str, path: str | Path) -> list[str]:
    """A labelled file's grouping column (origin, genre, source) as strings; refuses a missing column or nulls."""
    if column not in table.column_names:
        raise InputError(f"{path} has no column {column!r} to group by; its columns are {table.column_names}")
    values = table.column(column).to_pylist()
    if None in values:
        raise InputError(f"{path} row {values.index(None)}: column {column!r} is empty; every row needs a group")
    return [str(v) for v in values]


def read_parquet_texts(path: str | Path) -> list[str]:
    """The non-empty values of a Parquet file's ``text`` column (unlabelled text: a labelled or gold set read for
    its text only)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist; give a Parquet file with a 'text' column")
    try:
        schema = pq.read_schema(path)
    except (OSError, pa.ArrowInvalid) as e:
        raise InputError(f"{path}: not a readable Parquet file ({e}); give a Parquet file with a 'text' column") from e
    if "text" not in schema.names:
        raise InputError(f"{path} has no 'text' column; its columns are {schema.names}")
    return [t for t in pq.read_table(path, columns=["text"]).column("text").to_pylist() if t]

"""TOML tables into typed dataclasses: keys by name, values by the type hints, errors naming the key."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from foresight.formats.tables import TableError, from_table


@dataclass(frozen=True)
class Settings:
    steps: int = 1
    lr: float = 1e-3
    warmup: int | None = None
    betas: tuple[float, float] = (0.9, 0.95)
    probes: list[str] | None = None
    items: Path | None = None
    quiet: bool = False


def test_values_are_converted_by_their_hints() -> None:
    s = from_table(Settings, {"steps": 3, "lr": 1, "warmup": 5, "betas": [0.8, 1], "probes": ["bpb"],
                              "items": "x.jsonl", "quiet": True}, "t")
    assert s == Settings(3, 1.0, 5, (0.8, 1.0), ["bpb"], Path("x.jsonl"), True)
    assert isinstance(s.lr, float) and isinstance(s.betas, tuple)
    assert from_table(Settings, {}, "t", defaults={"steps": 7}).steps == 7


@pytest.mark.parametrize(("table", "message"), [
    ({"stpes": 3}, r"sweep s.toml \[train\]: unknown key\(s\) \['stpes'\]; allowed: \[.*'steps'"),
    ({"steps": "3"}, r"steps = '3' is not int"),
    ({"steps": True}, r"steps = True is not int"),
    ({"lr": "fast"}, r"lr = 'fast' is not float"),
    ({"betas": [0.9]}, r"betas = \[0.9\] is not tuple\[float, float\]"),
    ({"probes": ["bpb", 3]}, r"probes = \['bpb', 3\] is not list\[str\] \| None"),
    ({"quiet": 1}, r"quiet = 1 is not bool"),
])
def test_bad_keys_and_types_name_the_key(table: dict, message: str) -> None:
    with pytest.raises(TableError, match=message):
        from_table(Settings, table, "sweep s.toml [train]")


def test_a_non_table_is_refused() -> None:
    with pytest.raises(TableError, match=r"\[probe\] must be a table, got list"):
        from_table(Settings, [1], "[probe]")

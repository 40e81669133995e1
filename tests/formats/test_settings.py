"""The one settings loader: TOML tables into typed dataclasses, --set overrides, and one error naming the file,
the table and the key."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal

import pytest

from foresight.formats.errors import InputError
from foresight.formats.settings import Invalid, Settings, SettingsError, load_table, parse_overrides, setting


@dataclass(frozen=True)
class Train:
    steps: int = 1
    lr: float = 1e-3
    warmup: int | None = None
    betas: tuple[float, float] = (0.9, 0.95)
    probes: list[str] | None = None
    items: Path | None = None
    quiet: bool = False


@dataclass(frozen=True)
class Pool:
    weight: Fraction = setting(ge=0, note="e.g. weight = 0.25")
    where: str | None = None
    order: Literal["random", "score"] = "random"

    def settings_check(self) -> None:
        if self.where == "":
            raise Invalid("empty: give a SQL expression", "where")


def _name(name: str) -> None:
    if " " in name:
        raise Invalid("a pool name has no spaces")


@dataclass(frozen=True)
class Filter:
    enabled: bool = True
    kwargs: dict[str, Any] = setting(default_factory=dict, rest=True)


@dataclass(frozen=True)
class Doc:
    total: int = setting(ge=1)
    share: float = setting(0.5, ge=0, le=1)
    shares: list[float] = setting(default_factory=list, ge=0, le=100)
    device: str = setting("auto", choices=("auto", "cpu", "cuda"))
    train: Train = Train()
    pools: dict[str, Pool] = setting(default_factory=dict, key_check=_name)
    filters: dict[str, Filter] = setting(default_factory=lambda: {"c4": Filter(False), "gopher": Filter()})


def _doc(tmp_path: Path, text: str, name: str = "mix.toml") -> Settings:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return Settings.read(path)


def _error(tmp_path: Path, text: str, overrides: list[str] | None = None) -> str:
    with pytest.raises(SettingsError) as info:
        _doc(tmp_path, text).override(overrides).load(Doc)
    message = str(info.value)
    assert "\n" not in message and isinstance(info.value, InputError)
    return message.replace(str(tmp_path) + "/", "")


def test_types_defaults_and_nested_tables(tmp_path: Path) -> None:
    doc = _doc(tmp_path, 'total = 5\nshares = [0, 12.5]\n[train]\nlr = 1\nbetas = [0.8, 1]\nprobes = ["bpb"]\n'
                         'items = "x.jsonl"\n[pools.code]\nweight = 0.1\n[pools.web]\nweight = 0.9\nwhere = "true"\n'
                         '[filters.c4]\nmin_words = 3\n')
    d = doc.load(Doc)
    assert d.total == 5 and d.share == 0.5 and d.shares == [0.0, 12.5] and d.device == "auto"
    assert d.train == Train(1, 1.0, None, (0.8, 1.0), ["bpb"], Path("x.jsonl"), False)
    assert isinstance(d.train.lr, float) and isinstance(d.train.betas, tuple)
    assert d.pools == {"code": Pool(Fraction(1, 10)), "web": Pool(Fraction(9, 10), "true")}
    # a table of known names merges over each default; other keys go to the `rest` field
    assert d.filters == {"c4": Filter(False, {"min_words": 3}), "gopher": Filter()}
    assert load_table(Train, {"steps": 3}, "s.toml", "train", base=Train(lr=0.5)) == Train(3, 0.5)


@pytest.mark.parametrize(("text", "message"), [
    ("total = 1\n[pools.code]\nweight = \"x\"\n",
     r'mix.toml: [pools.code] weight: expected a number ≥ 0, got "x" (e.g. weight = 0.25)'),
    ("total = 1\n[pools.code]\nweight = -1\n",
     r"mix.toml: [pools.code] weight: expected a number ≥ 0, got -1 (e.g. weight = 0.25)"),
    ("total = 1\n[pools.code]\nwhere = \"a\"\n", "mix.toml: [pools.code] weight: missing (e.g. weight = 0.25)"),
    ("total = 1\n[pools.code]\nweight = 1\nwhere = \"\"\n", "mix.toml: [pools.code] where: empty: give a SQL "
                                                            "expression"),
    ("total = 1\n[pools.code]\nweight = 1\norder = \"best\"\n",
     'mix.toml: [pools.code] order: expected one of "random", "score", got "best"'),
    ("total = 1\n[pools.\"a b\"]\nweight = 1\n", 'mix.toml: [pools] "a b": a pool name has no spaces'),
    ("total = 1\npools = 3\n", "mix.toml: pools: expected a table, got 3"),
    ("total = 1\n[pools]\ncode = 3\n", "mix.toml: [pools] code: expected a table [pools.code], got 3"),
    ("total = 1\n[train]\nstpes = 3\n", "mix.toml: [train] stpes: unknown key; did you mean steps?"),
    ("total = 1\n[train]\nzzz = 3\n", "mix.toml: [train] zzz: unknown key; known: betas, items, lr, probes, "
                                      "quiet, steps, warmup"),
    ("total = 1\n[train]\nsteps = \"3\"\n", 'mix.toml: [train] steps: expected an integer, got "3"'),
    ("total = 1\n[train]\nsteps = true\n", "mix.toml: [train] steps: expected an integer, got true"),
    ("total = 1\n[train]\nquiet = 1\n", "mix.toml: [train] quiet: expected true or false, got 1"),
    ("total = 1\n[train]\nbetas = [0.9]\n", "mix.toml: [train] betas: expected a list of 2 numbers, got [0.9]"),
    ("total = 1\n[train]\nprobes = [\"bpb\", 3]\n",
     'mix.toml: [train] probes: expected a list of strings, got ["bpb", 3]'),
    ("total = 1\ntrain = 5\n", "mix.toml: train: expected a table, got 5"),
    ("total = 1\n[filters.c5]\nenabled = true\n", "mix.toml: [filters] c5: unknown table; known: c4, gopher"),
    ("total = 1\n[filters.gophr]\n", "mix.toml: [filters] gophr: unknown table; did you mean gopher?"),
    ("share = 0.5\n", "mix.toml: total: missing"),
    ("total = 0\n", "mix.toml: total: expected an integer ≥ 1, got 0"),
    ("total = 1\nshare = 1.5\n", "mix.toml: share: expected a number from 0 to 1, got 1.5"),
    ("total = 1\nshares = [5, 101]\n", "mix.toml: shares: expected numbers from 0 to 100, got [5, 101]"),
    ("total = 1\ndevice = \"tpu\"\n", 'mix.toml: device: expected one of "auto", "cpu", "cuda", got "tpu"'),
    ("total = 1\ntotl = 1\n", "mix.toml: totl: unknown key; did you mean total?"),
])
def test_each_error_names_the_file_table_and_key(tmp_path: Path, text: str, message: str) -> None:
    assert _error(tmp_path, text) == message


@pytest.mark.parametrize(("text", "message"), [
    ("total = 1\nseed = = 2\n", "mix.toml: line 2, column 8: not valid TOML (invalid value)"),
    ("total = 1\ntotal = 2\n", "mix.toml: line 2, column 10: not valid TOML (cannot overwrite a value)"),
    ("x = " + "[" * 3000 + "]" * 3000 + "\n", "mix.toml: not valid TOML (nested too deeply)"),
])
def test_syntax_errors_name_the_file_and_line(tmp_path: Path, text: str, message: str) -> None:
    assert _error(tmp_path, text) == message


def test_text_that_is_not_utf8(tmp_path: Path) -> None:
    (tmp_path / "mix.toml").write_bytes(b"total = 1\nname = \"\xff\"\n")
    with pytest.raises(SettingsError, match=r"mix.toml: not UTF-8 text \(byte 18\)$"):
        Settings.read(tmp_path / "mix.toml")


def test_overrides_parse_as_toml_values_or_bare_strings() -> None:
    assert parse_overrides(["total=5", "train.lr=2e-3", "device=cuda", "train.probes=[\"bpb\"]",
                            'pools."a.b".where=lang = \'en\'', "train.quiet=true", "name="]) == {
        "total": 5, "train": {"lr": 0.002, "probes": ["bpb"], "quiet": True}, "device": "cuda",
        "pools": {"a.b": {"where": "lang = 'en'"}}, "name": ""}
    assert parse_overrides(["a=1", "a.b=2"]) == {"a": {"b": 2}}  # a later override replaces the earlier
    assert parse_overrides(["a=1\nb = 2", "c=" + "[" * 3000]) == {"a": "1\nb = 2", "c": "[" * 3000}


@pytest.mark.parametrize("bad", ["total", "=5", "a..b=1", "a b=1"])
def test_malformed_overrides_are_refused(bad: str) -> None:
    with pytest.raises(SettingsError, match=r"^--set: .*: expected TABLE.KEY=VALUE, e.g. segment.max_tokens=512$"):
        parse_overrides([bad])


def test_overrides_win_over_the_file_and_name_themselves_in_errors(tmp_path: Path) -> None:
    text = "total = 1\n[train]\nsteps = 2\n[pools.code]\nweight = 1\n"
    d = _doc(tmp_path, text).override(["train.lr=0.5", "pools.code.where=reasoning", "pools.web.weight=0"]).load(Doc)
    assert d.train == Train(steps=2, lr=0.5) and d.pools["code"] == Pool(Fraction(1), "reasoning")
    assert d.pools["web"] == Pool(Fraction(0))
    assert _error(tmp_path, text, ["train.steps=many"]) == '--set: [train] steps: expected an integer, got "many"'
    assert _error(tmp_path, text, ["train.stpes=3"]) == "--set: [train] stpes: unknown key; did you mean steps?"
    assert _error(tmp_path, text, ["pools.x=3"]) == "--set: [pools] x: expected a table [pools.x], got 3"
    # a value the override did not touch still names the file
    assert _error(tmp_path, text + "[filters.c4]\nenabled = 1\n", ["total=2"]) == \
        "mix.toml: [filters.c4] enabled: expected true or false, got 1"
    doc = _doc(tmp_path, text).override({"total": 0}, "--total")
    with pytest.raises(SettingsError, match=r"^--total: total: expected an integer ≥ 1, got 0$"):
        doc.load(Doc)


def test_a_table_that_is_not_a_table() -> None:
    with pytest.raises(SettingsError, match=r"^s.toml: probe: expected a table, got \[1\]$"):
        load_table(Train, [1], "s.toml", "probe")

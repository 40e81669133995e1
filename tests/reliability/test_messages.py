"""Messages say what happened: bracketed text survives rich (help and errors), numbers are shown with the digits
that matter, deep nesting and directory outputs name the file, refused audit statements give their real reason,
and huge numbers are a one-line error, never a traceback."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from foresight.cli import app
from tests.helpers import make_tokenizer
from tests.mixtures.corpus import build_corpus

runner = CliRunner()


def _flat(text: str) -> str:
    """Output with rich's box characters, line breaks and padding removed (help text is wrapped in panels)."""
    return re.sub(r"[\s│╭╮╰╯─]+", "", text)


def _help_texts(t: typer.Typer, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], str]]:
    import inspect

    from typer.models import ParameterInfo
    out = []
    for info in t.registered_commands:
        name = info.name or info.callback.__name__.replace("_", "-")
        out += [((*path, name), info.help or "")]
        out += [((*path, name), p.default.help) for p in inspect.signature(info.callback).parameters.values()
                if isinstance(p.default, ParameterInfo) and p.default.help]
    for g in t.registered_groups:
        out += _help_texts(g.typer_instance, (*path, g.name))
    return out


@pytest.fixture(scope="module")
def shards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_corpus(tmp_path_factory.mktemp("msgs"))


def test_help_shows_bracketed_text() -> None:
    cases = [(path, m.group(1)) for path, text in _help_texts(app)
             for m in re.finditer(r"\\?(\[[a-z][^\]\[]*\])", text)]
    assert len(cases) >= 3  # [write] exclusions, [grid], [train], [min, max] …
    for path, token in cases:
        res = runner.invoke(app, [*path, "--help"])
        assert res.exit_code == 0, res.output
        flat = _flat(res.output)
        assert _flat(token) in flat, f"`foresight {' '.join(path)} --help` lost {token!r}"
        assert "\\[" not in res.output


def test_errors_show_bracketed_text(shards: Path, tmp_path: Path) -> None:
    spec = tmp_path / "empty.toml"
    spec.write_text("total_tokens = 100\n")
    res = runner.invoke(app, ["mix", "plan", str(spec), "--shards", str(shards)])
    assert res.exit_code == 1 and "add [pools.<name>] tables" in res.output, res.output


@pytest.mark.slow  # loading a sweep imports the trainer (torch): ~10 s on a busy machine
def test_sweep_errors_show_the_table_name(shards: Path, tmp_path: Path) -> None:
    sweep = tmp_path / "x.toml"
    sweep.write_text('model = "tiny"\nmixtures = ["lsbs_mix0"]\n[train]\nlr = "fast"\n')
    res = runner.invoke(app, ["sweep", "run", str(sweep), "--shards", str(shards), "--out", str(tmp_path / "o")])
    assert res.exit_code == 1 and 'x.toml: [train] lr: expected a number, got "fast"' in res.output, res.output
    res = runner.invoke(app, ["sweep", "run", str(sweep), "--shards", str(shards), "--out", str(tmp_path / "o"),
                              "--set", "train.lr=0.01", "--set", "probe.bpb_limit=all"])
    assert res.exit_code == 1 and '--set: [probe] bpb_limit: expected an integer, got "all"' in res.output, \
        res.output


def test_audit_cells_and_headers_are_not_markup(shards: Path) -> None:
    res = runner.invoke(app, ["audit", str(shards), "SELECT '[bold]x[/bold] [red]y' AS \"[dim]h\""])
    assert res.exit_code == 0 and "[bold]x[/bold] [red]y" in res.output and "[dim]h" in res.output, res.output


def test_weights_sum_shows_the_digits_that_matter(shards: Path, tmp_path: Path) -> None:
    spec = tmp_path / "s.toml"
    spec.write_text('total_tokens = 100\n[pools.a]\nwhere = "true"\nweight = 0.500001\n'
                    '[pools.b]\nwhere = "true"\nweight = 0.500001\n')
    res = runner.invoke(app, ["mix", "plan", str(spec), "--shards", str(shards)])
    assert res.exit_code == 1 and "sum to 1.000002, not 1" in res.output and "a=0.500001" in res.output, res.output


@pytest.mark.parametrize("normalize", [False, True])
def test_huge_weights_are_one_line(shards: Path, tmp_path: Path, normalize: bool) -> None:
    spec = tmp_path / "s.toml"
    spec.write_text('total_tokens = 100\nexclude = ["heldout"]\n[pools.a]\nwhere = "reasoning"\nweight = 1e308\n'
                    '[pools.b]\nwhere = "NOT reasoning"\nweight = 1e308\n')
    res = runner.invoke(app, ["mix", "plan", str(spec), "--shards", str(shards), *(["--normalize"] * normalize)])
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    if normalize:
        assert res.exit_code == 0, res.output
    else:
        assert res.exit_code == 1 and "sum to 2E+308, not 1" in res.output, res.output


def _deep_toml(p: Path, head: str = "") -> Path:
    p.write_text(head + "x = " + "[" * 3000 + "]" * 3000 + "\n")
    return p


def test_deep_nesting_names_the_file(shards: Path, tmp_path: Path) -> None:
    deep_json = "[" * 100_000 + "]" * 100_000
    spec = _deep_toml(tmp_path / "spec.toml", "total_tokens = 100\n")
    res = runner.invoke(app, ["mix", "plan", str(spec), "--shards", str(shards)])
    assert res.exit_code == 1 and "spec.toml" in res.output, res.output
    sweep = _deep_toml(tmp_path / "sweep.toml")
    res = runner.invoke(app, ["sweep", "run", str(sweep), "--shards", str(shards), "--out", str(tmp_path / "o")])
    assert res.exit_code == 1 and "sweep.toml" in res.output, res.output
    config = _deep_toml(tmp_path / "cfg.toml")
    tok = make_tokenizer(tmp_path)
    res = runner.invoke(app, ["curate", str(tmp_path), "--out", str(tmp_path / "c"), "--config", str(config),
                              "--tokenizer", str(tok)])
    assert res.exit_code == 1 and "cfg.toml" in res.output, res.output
    bad = tmp_path / "bad_shards"
    bad.mkdir()
    (bad / "index.json").write_text(deep_json)
    res = runner.invoke(app, ["shards", "info", str(bad)])
    assert res.exit_code == 1 and "index.json" in res.output, res.output
    mdir = tmp_path / "m"
    mdir.mkdir()
    (mdir / "manifest.json").write_text(deep_json)
    res = runner.invoke(app, ["manifest", "verify", str(mdir)])
    assert res.exit_code == 1 and "manifest.json" in res.output, res.output
    model = tmp_path / "model.json"
    model.write_text(deep_json)
    from foresight.trainer.model import build_config
    with pytest.raises(ValueError, match="model.json"):
        build_config(model, vocab_size=10, seq_len=8, eos_id=0, pad_id=1)


def test_deep_pool_expression_names_the_pool(shards: Path, tmp_path: Path) -> None:
    spec = tmp_path / "s.toml"
    spec.write_text('total_tokens = 100\n[pools.deep]\nwhere = "' + "(" * 5000 + "true" + ")" * 5000 +
                    '"\nweight = 1\n')
    res = runner.invoke(app, ["mix", "plan", str(spec), "--shards", str(shards)])
    assert res.exit_code == 1 and "pool 'deep'" in res.output and "recursion" not in res.output, res.output
    assert len(res.output) < 1000  # the expression is cut in the message


@pytest.mark.parametrize("args", [
    ["manifest", "export", "M", "--format", "jsonl", "--out", "."],
    ["probe", "RUN", "--out", "."],
    ["audit", "SHARDS", "SELECT 1", "--format", "csv", "--out", "."],
    ["tokenizer", "train", "SHARDS", "--out", "."],
])
def test_a_directory_as_out_file_is_named(shards: Path, tmp_path: Path, args: list[str],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    args = [str(shards) if a == "SHARDS" else a for a in args]
    res = runner.invoke(app, args)
    assert res.exit_code == 1 and "--out . is a directory" in res.output, res.output
    assert "empty name" not in res.output


@pytest.mark.parametrize("sql,why", [
    ("CHECKPOINT", "CHECKPOINT writes the database"),
    ("FORCE CHECKPOINT", "CHECKPOINT writes the database"),
    ("IMPORT DATABASE '/tmp'", "IMPORT DATABASE reads files"),
    ("EXPORT DATABASE '/tmp/x'", "EXPORT DATABASE writes files"),
    ("ANALYZE", "VACUUM/ANALYZE"),
    ("UPDATE EXTENSIONS", "UPDATE EXTENSIONS installs extensions"),
    ("SET threads = 1", "change the configuration"),
])
def test_refused_audit_statements_give_their_reason(shards: Path, sql: str, why: str) -> None:
    res = runner.invoke(app, ["audit", str(shards), sql])
    assert res.exit_code == 1 and why in res.output, res.output


def test_manifest_json_is_still_json(shards: Path) -> None:  # the audit JSON writer keeps lists as lists
    res = runner.invoke(app, ["audit", str(shards), "SELECT labels FROM segments WHERE len(labels) > 0 LIMIT 1",
                              "--format", "json"])
    assert res.exit_code == 0 and isinstance(json.loads(res.output)[0]["labels"], list), res.output


@pytest.mark.parametrize("total", ["99999999999999999999999", '"max"'])
def test_huge_totals_with_unbounded_repetition_are_refused(shards: Path, tmp_path: Path, total: str) -> None:
    """10^22 tokens from a 1,000-token pool with max_repetition = 1e308 was an endless loop over passes."""
    spec = tmp_path / "s.toml"
    spec.write_text(f'total_tokens = {total}\nmax_repetition = 1e308\nexclude = ["heldout"]\n'
                    '[pools.a]\nwhere = "reasoning"\nweight = 0.5\n[pools.b]\nwhere = "NOT reasoning"\nweight = 0.5\n')
    res = runner.invoke(app, ["mix", "plan", str(spec), "--shards", str(shards)])
    assert res.exit_code == 1 and "manifest entries, more than 2,147,483,647" in res.output, res.output


def test_settings_errors_print_their_table_literally(shards: Path, tmp_path: Path) -> None:
    """One format for every settings file and --set: FILE: [TABLE] KEY: PROBLEM, brackets intact."""
    spec = tmp_path / "mix.toml"
    spec.write_text('total_tokens = 100\n[pools.a]\nwhere = "reasoning"\nweight = 0.5\n'
                    '[pools.b]\nwhere = "NOT reasoning"\nweight = 0.5\n')
    res = runner.invoke(app, ["mix", "plan", str(spec), "--shards", str(shards), "--set", "pools.a.weight=x"])
    assert res.exit_code == 1 and '--set: [pools.a] weight: expected a number ≥ 0, got "x"' in res.output, res.output
    res = runner.invoke(app, ["mix", "plan", str(spec), "--shards", str(shards), "--set", "pools.a.wieght=1"])
    assert res.exit_code == 1 and "--set: [pools.a] wieght: unknown key; did you mean weight?" in res.output
    spec.write_text(spec.read_text().replace("weight = 0.5\n", "weight = -0.5\n", 1))
    res = runner.invoke(app, ["mix", "plan", str(spec), "--shards", str(shards)])
    assert res.exit_code == 1 and "mix.toml: [pools.a] weight: expected a number ≥ 0, got -0.5" in res.output
    config = tmp_path / "pipeline.toml"
    config.write_text("[segment]\nmax_tokenz = 64\n")
    tok = make_tokenizer(tmp_path)
    curate = ["curate", str(tmp_path), "--out", str(tmp_path / "c"), "--tokenizer", str(tok)]
    res = runner.invoke(app, [*curate, "--config", str(config)])
    assert res.exit_code == 1 and "pipeline.toml: [segment] max_tokenz: unknown key; did you mean max_tokens?" \
        in res.output, res.output
    res = runner.invoke(app, [*curate, "--set", "language.threshold=2"])
    assert res.exit_code == 1 and "--set: [language] threshold: expected a number from 0.0 to 1.0, got 2" \
        in res.output, res.output
    res = runner.invoke(app, [*curate, "--set", "segment"])
    assert res.exit_code == 1 and '--set: "segment": expected TABLE.KEY=VALUE' in res.output, res.output


def test_set_overrides_the_spec(shards: Path, tmp_path: Path) -> None:
    spec = tmp_path / "mix.toml"
    spec.write_text('total_tokens = 400\n[pools.a]\nwhere = "reasoning"\nweight = 0.5\n'
                    '[pools.b]\nwhere = "NOT reasoning"\nweight = 0.5\n')
    plain = runner.invoke(app, ["mix", "plan", str(spec), "--shards", str(shards)])
    res = runner.invoke(app, ["mix", "plan", str(spec), "--shards", str(shards), "--set", "pools.a.weight=0.25",
                              "--set", "pools.b.weight=0.75"])
    assert plain.exit_code == 0 and res.exit_code == 0, res.output
    assert re.search(r"\ba\b.*\b100\b", res.output) and re.search(r"\bb\b.*\b300\b", res.output), res.output
    assert re.search(r"\ba\b.*\b200\b", plain.output), plain.output

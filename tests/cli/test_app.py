"""The top-level app: --version, --debug, command order, one-line user errors vs tracebacks for bugs, and no
option default that points into a checkout."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest
import typer
from typer.testing import CliRunner

from foresight.cli import app
from foresight.cli.commands import ORDER
from foresight.formats import __version__
from foresight.formats.errors import ForesightError, InputError
from foresight.pipeline.readers import detect_format, discover_inputs, is_training_file, iter_file
from foresight.trainer.presets import PRESETS

runner = CliRunner()


def _commands(group: click.Command, prefix: str = "") -> list[tuple[str, click.Command]]:
    out = [(prefix, group)]
    for name, cmd in getattr(group, "commands", {}).items():
        out += _commands(cmd, f"{prefix} {name}".strip())
    return out


def test_version() -> None:
    res = runner.invoke(app, ["--version"])
    assert res.exit_code == 0 and res.output.strip() == f"foresight {__version__}"


def test_commands_are_listed_in_data_path_order() -> None:
    res = runner.invoke(app, ["--help"], terminal_width=120)
    listed = re.findall(r"^│ (\w+) {2,}", res.output, flags=re.M)
    assert listed == list(ORDER)


def test_train_model_help_names_the_presets() -> None:
    res = runner.invoke(app, ["train", "--help"], terminal_width=200)
    assert f"Preset ({', '.join(PRESETS)})" in res.output and "base" not in res.output
    assert list(PRESETS) == ["tiny", "mini", "small", "medium"]


def test_no_option_default_points_into_a_checkout() -> None:
    """An installed foresight has no demo/, tests/ or src/ next to it: such defaults must be required options."""
    bad = []
    for name, cmd in _commands(typer.main.get_command(app)):
        for p in cmd.params:
            d = p.default
            if isinstance(d, str | Path) and re.match(r"(\./)?(demo|tests|src|benchmarks)/", str(d)):
                bad.append(f"{name} {p.name}={d}")
    assert not bad


def test_user_error_is_one_line_and_debug_shows_it(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    res = runner.invoke(app, ["manifest", "verify", str(missing)])
    assert res.exit_code == 1 and res.output.startswith("error:") and res.output.count("\n") == 1, res.output
    res = runner.invoke(app, ["--debug", "manifest", "verify", str(missing)])
    assert isinstance(res.exception, ForesightError), res.output  # re-raised: the traceback is printed


@pytest.mark.parametrize("exc, one_line", [
    (InputError("bad spec"), True),
    (ForesightError("bad state"), True),
    (ValueError("a bug"), False),
    (RuntimeError("a bug"), False),
    (KeyError("a bug"), False),
])
def test_only_project_errors_are_one_line(monkeypatch, tmp_path: Path, exc: Exception, one_line: bool) -> None:
    import foresight.manifests

    def boom(*args, **kwargs):
        raise exc

    monkeypatch.setattr(foresight.manifests, "verify", boom)
    res = runner.invoke(app, ["manifest", "verify", str(tmp_path)])
    assert res.exit_code == 1
    if one_line:
        assert isinstance(res.exception, SystemExit) and res.output.startswith("error:"), res.output
    else:
        assert res.exception is exc and "error:" not in res.output  # a bug keeps its traceback


def test_project_errors_keep_their_builtin_bases() -> None:
    """Library callers catching ValueError/RuntimeError keep working."""
    from foresight.formats.index import ShardIndexError
    from foresight.manifests.schema import ManifestError
    from foresight.mixtures.spec import SpecError

    assert issubclass(SpecError, ForesightError) and issubclass(SpecError, ValueError)
    assert issubclass(ManifestError, ForesightError) and issubclass(ShardIndexError, RuntimeError)


def test_ndjson_is_read_like_jsonl(tmp_path: Path) -> None:
    for name in ("a.ndjson", "b.ndjson.gz", "c.ndjson.zst"):
        assert detect_format(name) == "jsonl" and is_training_file(name)
    import gzip

    path = tmp_path / "web" / "a.ndjson"
    path.parent.mkdir()
    path.write_text('{"text": "hello"}\n', encoding="utf-8")
    (tmp_path / "web" / "b.ndjson.gz").write_bytes(gzip.compress(b'{"text": "world"}\n'))
    files, ignored = discover_inputs([str(tmp_path)])
    assert [f.fmt for f in files] == ["jsonl", "jsonl"] and not ignored
    assert [r.text for f in files for r in iter_file(f)] == ["hello", "world"]

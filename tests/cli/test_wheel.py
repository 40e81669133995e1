"""The wheel is the whole product: built from the sources, it holds only ``foresight/`` and its dist-info, and
installed into a fresh virtual environment (dependencies reused from this interpreter's site-packages, no
checkout on the path) it runs the data path end to end: corpus sample → tokenizer train → curate → mix →
manifest verify --deep → train → audit."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from foresight.formats import __version__

REPO = Path(__file__).resolve().parents[2]


def _run(cmd: list[str | Path], cwd: Path, env: dict[str, str], timeout: int = 300) -> str:
    res = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert res.returncode == 0, f"{' '.join(map(str, cmd))}:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
    return res.stdout


def _build_wheel(tmp: Path, env: dict[str, str]) -> Path:
    """Build from a copy of the sources, so no stale build/ directory of the checkout leaks into the wheel."""
    src = tmp / "src-copy"
    shutil.copytree(REPO / "src", src / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, src / name)
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", tmp / "dist", src],
         tmp, env)
    (wheel,) = (tmp / "dist").glob("foresight-*.whl")
    return wheel


def _venv(tmp: Path, wheel: Path, env: dict[str, str]) -> Path:
    """A fresh venv that sees this interpreter's packages through a .pth (its .pth files, such as an editable
    foresight, are not processed there) and holds foresight only as the installed wheel."""
    venv = tmp / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv], tmp, env)
    py = venv / "bin" / "python"
    purelib = Path(_run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], tmp, env).strip())
    (purelib / "_parent_site.pth").write_text(sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8")
    _run([py, "-m", "pip", "install", "-q", "--no-deps", "--ignore-installed", wheel], tmp, env)
    return venv


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_wheel_installs_and_runs_the_data_path(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    wheel = _build_wheel(tmp_path, env)

    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/", 1)[0] for n in names}
    assert tops == {"foresight", f"foresight-{__version__}.dist-info"}, tops
    for data in ("foresight/mixtures/presets/lsbs_mix6.toml", "foresight/trainer/sweeps/visual_share_quick.toml",
                 "foresight/trainer/probes/visual_knowledge.jsonl", "foresight/classifiers/models/lsbs-static/"
                 "model.safetensors", "foresight/classifiers/models/lsbs-fasttext.ftz"):
        assert data in names, data

    venv = _venv(tmp_path, wheel, env)
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    work = tmp_path / "work"  # no checkout here or on sys.path
    work.mkdir()
    where = _run([venv / "bin" / "python", "-c", "import foresight; print(foresight.__file__)"], work, env)
    assert Path(where.strip()).is_relative_to(venv), where
    fs = venv / "bin" / "foresight"
    assert _run([fs, "--version"], work, env).strip() == f"foresight {__version__}"

    _run([fs, "corpus", "sample", "corpus", "--max-docs-per-source", "15", "--quiet"], work, env)
    _run([fs, "tokenizer", "train", "corpus", "--vocab-size", "1000", "--out", "tok.json"], work, env)
    _run([fs, "curate", "corpus", "--out", "shards", "--tokenizer", "tok.json"], work, env)  # shipped classifier
    _run([fs, "mix", "lsbs_mix6", "--shards", "shards", "--out", "m", "--total-tokens", "10K"], work, env)
    assert "10,000 tokens" in _run([fs, "manifest", "verify", "m", "--deep"], work, env)
    _run([fs, "train", "m", "--out", "run", "--model", "tiny", "--steps", "3", "--seq-len", "64",
          "--batch-tokens", "512", "--threads", "1", "--quiet"], work, env)
    assert (work / "run" / "checkpoint" / "tokenizer.json").is_file()
    out = _run([fs, "audit", "shards", "-m", "m", "--format", "csv",
                "SELECT sum(n_tokens) AS tokens, count(*) > 0 AS any FROM entries"], work, env)
    assert out.split() == ["tokens,any", "10000,true"], out

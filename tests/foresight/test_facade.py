"""``import foresight``: the composition root's façade names the layers' entry points, loaded on first use, and
``python -m foresight`` is the CLI."""

from __future__ import annotations

import subprocess
import sys

import pytest

import foresight
from foresight.audit import connect
from foresight.manifests import build
from foresight.pipeline.curate import execute, plan_curation


def test_facade_names_are_the_layers_functions() -> None:
    assert foresight.plan_curation is plan_curation and foresight.execute is execute
    assert foresight.build_manifest is build and foresight.connect is connect
    assert set(foresight.__all__) >= {"plan_curation", "plan_mixture", "train_manifest", "__version__"}
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        foresight.nope  # noqa: B018


def test_python_dash_m_foresight_runs_the_cli() -> None:
    out = subprocess.run([sys.executable, "-m", "foresight", "--help"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "curate" in out.stdout and "audit" in out.stdout

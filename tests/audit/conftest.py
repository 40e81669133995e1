"""Shared, module-scoped audit fixtures: one tiny corpus, two manifests and a sweep per test module."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.audit.fixtures import corpus, make_results, mix_pair


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("audit")
    shards = corpus(tmp)
    mix_a, mix_b = mix_pair(tmp, shards)
    sweep = make_results(tmp / "sweep")
    return {"tmp": tmp, "shards": shards, "mixA": mix_a, "mixB": mix_b, "sweep": sweep}

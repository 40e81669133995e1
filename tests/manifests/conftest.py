from __future__ import annotations

from pathlib import Path

import pytest

from tests.mixtures.corpus import build_corpus


@pytest.fixture(scope="session")
def shards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_corpus(tmp_path_factory.mktemp("corpus"))

"""Traversal: nothing a record, a flag or a manifest says can make foresight write or read outside its
directories. (Manifest entry paths: tests/manifests/test_manifests.py::test_unsafe_entry_paths_refused; audit
and pool SQL confined to the shard files: tests/audit/test_sandbox.py, tests/mixtures/test_sandbox.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from foresight.pipeline.readers import clean_source
from tests.pipeline.util import accounting, curate, prose, write_jsonl


@pytest.mark.parametrize("source,partition", [
    ("../../escape", "escape"), ("a/b", "a-b"), ("..", "unknown"), ("/etc", "etc"), ("C:\\Windows", "C-Windows"),
    ("source=x/../y", "source-x-..-y"), (" web ", "web"),
])
def test_a_source_is_a_name_never_a_path(source: str, partition: str) -> None:
    assert clean_source(source) == partition and "/" not in partition


def test_records_with_path_like_sources_stay_inside_out(tmp_path: Path) -> None:
    recs = [{"id": f"d{i}", "source": s, "text": prose(i)} for i, s in enumerate(["../../escape", "a/b", "..", "/tmp"])]
    src = write_jsonl(tmp_path / "in" / "web" / "a.jsonl", recs)
    root = curate(tmp_path, [src], out="out")
    assert accounting(root)["kept"] == 4
    written = [p for p in tmp_path.rglob("*.parquet")]
    assert written and all(p.resolve().is_relative_to(root / "data") for p in written)
    assert sorted(p.name for p in (root / "data").iterdir()) == [
        "source=a-b", "source=escape", "source=tmp", "source=unknown"]


def test_source_flag_is_cleaned_and_bounded(tmp_path: Path) -> None:
    src = write_jsonl(tmp_path / "in" / "a.jsonl", [{"text": prose(1)}])
    root = curate(tmp_path, [src], out="out", source="../../x")
    assert [p.name for p in (root / "data").iterdir()] == ["source=x"]
    with pytest.raises(ValueError, match="at most 64"):
        curate(tmp_path, [src], out="out2", source="y" * 65)

"""Bad input: every bad record is counted under errored/<reason> with its file:line (and reading goes on), or
the run stops with a one-line error naming the file."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from foresight.pipeline.readers import discover_inputs
from tests.pipeline.util import accounting, curate, prose, write_jsonl


def _good(n: int, start: int = 0) -> list[dict]:
    return [{"id": f"d{i}", "text": prose(i)} for i in range(start, start + n)]


def test_invalid_utf8_costs_one_line_and_later_lines_are_kept(tmp_path: Path) -> None:
    path = tmp_path / "in" / "a.jsonl"
    path.parent.mkdir()
    lines = [json.dumps(r).encode() for r in _good(2)]
    bad = b'{"id": "bad", "text": "caf\xe9 \xff\xfe"}'
    path.write_bytes(b"\n".join([lines[0], bad, lines[1]]) + b"\n")
    acc = accounting(curate(tmp_path, [path]))
    assert acc["errored"] == {"invalid_utf8": 1}
    assert acc["read"] == 3 and acc["kept"] == 2


def test_truncated_gzip_keeps_what_was_readable(tmp_path: Path) -> None:
    path = tmp_path / "in" / "a.jsonl.gz"
    path.parent.mkdir()
    payload = "".join(json.dumps(r) + "\n" for r in _good(200))
    data = gzip.compress(payload.encode())
    path.write_bytes(data[: len(data) * 2 // 3])
    acc = accounting(curate(tmp_path, [path]))
    assert acc["errored"] == {"unreadable_file": 1}
    assert 0 < acc["kept"] < 200


def test_truncated_zstd_is_counted_not_silently_empty(tmp_path: Path) -> None:
    import zstandard

    path = tmp_path / "in" / "a.jsonl.zst"
    path.parent.mkdir()
    data = zstandard.ZstdCompressor().compress("".join(json.dumps(r) + "\n" for r in _good(50)).encode())
    path.write_bytes(data[: len(data) // 2])
    acc = accounting(curate(tmp_path, [path]))
    assert acc["errored"] == {"unreadable_file": 1}


def test_non_json_line(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "in" / "a.jsonl", [_good(1)[0], "this is {not json", _good(1, 1)[0]])
    acc = accounting(curate(tmp_path, [path]))
    assert acc["errored"] == {"bad_json": 1} and acc["kept"] == 2


def test_json_line_that_is_not_an_object(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "in" / "a.jsonl", [_good(1)[0], "[1, 2, 3]", '"just a string"'])
    acc = accounting(curate(tmp_path, [path]))
    assert acc["errored"] == {"not_object": 2} and acc["kept"] == 1


def test_missing_text_field(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "in" / "a.jsonl", [_good(1)[0], {"id": "x", "body": "no text key"}])
    acc = accounting(curate(tmp_path, [path]))
    assert acc["errored"] == {"missing_text": 1} and acc["kept"] == 1


def test_non_string_text_field(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "in" / "a.jsonl", [_good(1)[0], {"id": "x", "text": 42}, {"text": ["a"]}])
    acc = accounting(curate(tmp_path, [path]))
    assert acc["errored"] == {"text_not_string": 2} and acc["kept"] == 1


def test_empty_file_reads_nothing_but_the_run_completes(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "empty.jsonl").write_bytes(b"")
    good = write_jsonl(tmp_path / "in" / "good.jsonl", _good(2))
    acc = accounting(curate(tmp_path, [tmp_path / "in"], tasks=2))
    assert acc["read"] == 2 and acc["kept"] == 2 and acc["errored"] == {}
    assert good.exists()


def test_empty_input_directory_is_a_one_line_error(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "README.md").write_text("not data")
    with pytest.raises(FileNotFoundError, match="no input files .* found in .*in"):
        discover_inputs([str(tmp_path / "in")])


def test_50_mb_document_is_counted_too_large(tmp_path: Path) -> None:
    huge = "word " * (10 * 1024 * 1024)  # 50 MiB of text
    path = write_jsonl(tmp_path / "in" / "a.jsonl", [_good(1)[0], {"id": "huge", "text": huge}, _good(1, 1)[0]])
    acc = accounting(curate(tmp_path, [path]))
    assert acc["errored"] == {"too_large": 1} and acc["kept"] == 2


def test_corrupt_parquet_is_counted_and_other_files_are_read(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    good = tmp_path / "in" / "good.parquet"
    pq.write_table(pa.table({"text": [r["text"] for r in _good(3)], "id": ["p0", "p1", "p2"]}), good)
    bad = tmp_path / "in" / "bad.parquet"
    bad.write_bytes(good.read_bytes()[:-40] + b"garbage" * 5)
    acc = accounting(curate(tmp_path, [tmp_path / "in"]))
    assert acc["errored"] == {"corrupt_parquet": 1} and acc["kept"] == 3


def test_nonexistent_path_is_a_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does-not-exist.jsonl does not exist"):
        discover_inputs([str(tmp_path / "does-not-exist.jsonl")])


def test_whitespace_only_text_is_dropped_as_empty(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "in" / "a.jsonl", [_good(1)[0], {"text": " \n\t\x00 "}])
    acc = accounting(curate(tmp_path, [path]))
    assert acc["dropped"] == {"empty": 1} and acc["kept"] == 1


def test_hostile_records_are_named_and_the_rest_is_kept(tmp_path: Path) -> None:
    """What an attacker or a broken exporter writes: each bad record costs itself only, named by file:line."""
    path = tmp_path / "in" / "web" / "a.jsonl"
    path.parent.mkdir(parents=True)
    lines = [
        '{"id": "sur", "text": "a lone surrogate \\ud800 in an escape"}',  # not valid Unicode
        "[" * 5000 + "]" * 5000,  # nesting deeper than any JSON parser should follow
        json.dumps({"id": "long-source", "source": "x" * 300, "text": prose(1)}),  # would be a 300-char dir name
        json.dumps({"id": {"nested": 1}, "text": prose(2)}),  # unusable id: the file:line is used instead
        json.dumps({"id": "eot", "text": "<|endoftext|> literal " * 3000}),  # special-token text, one long line
        json.dumps({"id": "nul", "text": "NUL \u0000 and BOM \ufeff inside. " + prose(3)}),
        json.dumps({"id": "ok", "text": prose(4)}),
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    root = curate(tmp_path, [path], overrides={"write": {"exclusions": True}})
    acc = accounting(root)
    assert acc["errored"] == {"bad_json": 2, "bad_source": 1} and acc["kept"] == 4
    with gzip.open(root / "excluded" / "unreadable" / "00000.jsonl.gz", "rt") as f:
        named = {json.loads(line)["id"]: json.loads(line)["metadata"] for line in f}
    where = [f"{path.resolve()}:{n}" for n in (1, 2, 3)]
    assert sorted(named) == where and "at most 64" in named[where[2]]["error"]
    ids = {r["doc_id"] for r in pq.read_table(root / "data" / "source=web").to_pylist()}
    assert ids == {"a.jsonl:4", "eot", "nul", "ok"}

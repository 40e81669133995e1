"""Inputs that change or break quietly: a cut .warc, an edit that restores the mtime, fsspec URLs, dangling links."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from foresight.cli import app
from foresight.pipeline.curate import OutputDirError, plan_curation, prepare_output
from tests.helpers import make_tokenizer
from tests.pipeline.util import MINIMAL, accounting, curate, prose, write_jsonl


def _warc(path: Path, n: int) -> Path:
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        w = WARCWriter(fh, gzip=False)
        for i in range(n):
            html = f"<html><body><article><h1>Title {i}</h1><p>{prose(i, 200)}</p></article></body></html>"
            headers = StatusAndHeaders("200 OK", [("Content-Type", "text/html; charset=utf-8")], protocol="HTTP/1.1")
            w.write_record(w.create_warc_record(f"http://example.org/{i}", "response",
                                                payload=io.BytesIO(html.encode()), http_headers=headers))
    return path


def test_a_cut_uncompressed_warc_record_is_errored_not_kept(tmp_path: Path) -> None:
    path = _warc(tmp_path / "in" / "crawl" / "a.warc", 3)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 700])  # the third record loses its last 700 bytes
    acc = accounting(curate(tmp_path, [tmp_path / "in"]))
    assert acc["kept"] == 2 and acc["errored"] == {"truncated_warc": 1}, acc


def _plan(tmp_path: Path, inputs: list[str]):  # noqa: ANN202
    return plan_curation(inputs, tmp_path / "shards", make_tokenizer(tmp_path), tasks=1, overrides=MINIMAL)


@pytest.mark.parametrize("url", [False, True], ids=["path", "local-url"])
def test_a_same_size_edit_with_the_mtime_restored_is_refused(tmp_path: Path, url: bool) -> None:
    src = write_jsonl(tmp_path / "in" / "web" / "a.jsonl", [{"text": prose(i)} for i in range(3)])
    inputs = [f"local://{src}" if url else str(src)]
    p = _plan(tmp_path, inputs)
    assert all(s is not None for s in [f.state() for f in p.files])  # URLs are fingerprinted too
    assert prepare_output(p) is False
    st = src.stat()
    data = bytearray(src.read_bytes())
    i = data.index(b"Story number 1")
    data[i:i + 5] = b"STORY"
    src.write_bytes(bytes(data))
    os.utime(src, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert src.stat().st_size == st.st_size and src.stat().st_mtime_ns == st.st_mtime_ns
    with pytest.raises(OutputDirError, match="changed since"):
        prepare_output(_plan(tmp_path, inputs))


def test_unchanged_content_resumes_and_is_not_read_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = write_jsonl(tmp_path / "in" / "web" / "a.jsonl", [{"text": prose(i)} for i in range(3)])
    assert prepare_output(_plan(tmp_path, [str(src)])) is False
    from foresight.pipeline import inputstate

    def no_reads(path: str) -> str:
        raise AssertionError(f"re-hashed {path} although nothing changed")

    with monkeypatch.context() as m:
        m.setattr(inputstate, "content_hash", no_reads)
        assert prepare_output(_plan(tmp_path, [str(src)])) is True  # cached by (size, mtime, ctime, inode)
    os.utime(src)  # touched, same bytes: hashed again, same content, still the same run
    assert prepare_output(_plan(tmp_path, [str(src)])) is True


def test_a_dangling_symlink_is_reported_and_counted(tmp_path: Path) -> None:
    src = tmp_path / "in" / "web"
    write_jsonl(src / "a.jsonl", [{"text": prose(i)} for i in range(3)])
    (src / "gone.jsonl").symlink_to(tmp_path / "missing.jsonl")
    cfg = tmp_path / "c.toml"
    cfg.write_text("[classify]\nenabled = false\n[language]\nenabled = false\n[dedup.minhash]\nenabled = false\n")
    res = CliRunner().invoke(app, ["curate", str(tmp_path / "in"), "--out", str(tmp_path / "s"), "--tokenizer",
                                   str(make_tokenizer(tmp_path)), "--config", str(cfg)], env={"COLUMNS": "300"})
    assert res.exit_code == 0, res.output
    lines = [ln for ln in res.output.splitlines() if "unreadable input" in ln]  # (in-process: datatrove's log too)
    assert len(lines) == 1 and str(src / "gone.jsonl") in lines[0], res.output
    acc = accounting(tmp_path / "s")
    assert acc["kept"] == 3 and acc["errored"] == {"unreadable_file": 1}, acc


def test_a_remote_input_is_identified_by_size_and_ukey_and_an_edit_is_refused(tmp_path: Path) -> None:
    """A URL of a non-local filesystem (memory:// here) is fingerprinted by size and fsspec's ukey, not re-read;
    a same-size edit that changes the ukey is refused like a local one."""
    import fsspec

    fs = fsspec.filesystem("memory")
    url = "memory://ukey_test_in/web/a.jsonl"
    lines = "".join(json.dumps({"text": prose(i)}) + "\n" for i in range(3))
    fs.pipe(url, lines.encode())
    try:
        p = _plan(tmp_path, [url])
        state = p.files[0].state()
        assert state is not None and state[0] == len(lines) and str(state[1]).startswith("ukey:")
        assert prepare_output(p) is False
        fs.pipe(url, lines.replace("Story number 1", "STORY number 1").encode())
        assert fs.size(url) == len(lines)
        with pytest.raises(OutputDirError, match="changed since"):
            prepare_output(_plan(tmp_path, [url]))
    finally:
        fs.rm("/ukey_test_in", recursive=True)

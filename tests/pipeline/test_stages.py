"""Each stage on its own, plus its effect in a run."""

from __future__ import annotations

from dataclasses import FrozenInstanceError
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from datatrove.data import Document

from foresight.formats.settings import SettingsError
from foresight.formats.tokenizer import load_tokenizer
from foresight.pipeline.config import FilterConfig, load_config
from foresight.pipeline.langid import looks_like_code
from foresight.pipeline.stages.language import LanguageFilter
from foresight.pipeline.stages.normalise import DropEmpty, Normalise, normalise_text
from foresight.pipeline.stages.quality import quality_filters
from foresight.pipeline.stages.segment import Segmenter, split_text
from foresight.pipeline.stages.tokenize import Tokenize
from tests.helpers import make_tokenizer
from tests.pipeline.util import accounting, curate, index, prose, write_jsonl

CODE = "\n".join(["import os", "def f(x):", "    y = x * 2", "    return y", "class A:", "    pass"] * 5)


def _docs(*texts: str, source: str = "web") -> list[Document]:
    return [Document(text=t, id=f"d{i}", metadata={"source": source}) for i, t in enumerate(texts)]


def test_normalise_nfc_controls_and_line_endings() -> None:
    raw = "Cafe\u0301\r\nline two\rthree\x00\x07\tend\u2028x"
    assert normalise_text(raw) == "Caf\u00e9\nline two\nthree\tend\nx"
    empty = DropEmpty()
    out = _chain([Normalise(), empty], _docs("ok text", "\x00\x01 \r\n"))
    assert [d.text for d in out] == ["ok text"]
    assert empty.stats["dropped_empty"].total == 1


def _chain(steps: list, docs: list[Document]) -> list[Document]:
    data = iter(docs)
    for step in steps:
        data = step.run(data)
    return list(data)


def test_quality_filters_are_datatrove_steps_that_drop_with_reason_and_exempt_code() -> None:
    steps = quality_filters(load_config().filters)
    assert [s.filter_name for s in steps] == ["gopher_repetition", "gopher_quality", "fineweb_quality"]  # c4 off
    # datatrove names each step's stats (stats.json) after the step
    assert [s.stats.name for s in steps] == [f"🔻 - FILTER: 🔻 {n}" for n in ("gopher_repetition", "gopher_quality",
                                                                          "fineweb_quality")]
    repetitive = "\n".join(["buy now buy now"] * 40)
    kept = _chain(steps, _docs(prose(1, 200), repetitive))
    assert [d.id for d in kept] == ["d0"]
    dropped = {k: v.total for s in steps for k, v in s.stats.stats.items() if k.startswith("dropped_")}
    assert sum(dropped.values()) == 1 and next(iter(dropped)).startswith("dropped_gopher_repetition:")
    # the same repetitive text under the exempt `code` source passes untouched
    assert len(_chain(quality_filters(load_config().filters), _docs(repetitive, source="code"))) == 1


def test_c4_leaving_no_text_is_dropped_as_empty() -> None:
    c4 = quality_filters({"c4": FilterConfig(kwargs={"min_num_sentences": 0})})  # keeps docs with no lines left
    assert _chain(c4, _docs("no terminal punctuation here\nnor here")) == []
    assert c4[0].stats["dropped_empty"].total == 1


def test_quality_filter_bad_kwarg_names_the_section() -> None:
    with pytest.raises(ValueError, match=r"\[filters.gopher_quality\]"):
        quality_filters({"gopher_quality": FilterConfig(kwargs={"no_such_arg": 1})})


def test_language_filter_keeps_english_drops_french_and_exempts_code() -> None:
    step = LanguageFilter(["en"], threshold=0.5, exempt_sources=["code"])
    docs = _docs(prose(1), "Le chat est assis sur le tapis et la maison est très belle ce matin.", CODE)
    kept = [d.id for d in step.run(iter(docs))]
    assert kept == ["d0", "d2"]
    assert step.stats["dropped_language:fr"].total == 1
    assert looks_like_code(CODE) and not looks_like_code(prose(2))


def test_split_text_respects_limit_and_boundaries(tmp_path: Path) -> None:
    tok, _ = load_tokenizer(make_tokenizer(tmp_path))
    def count(ts: list[str]) -> list[int]:
        return [len(e.ids) for e in tok.encode_batch(ts, add_special_tokens=False)]
    paras = [prose(i, 30) for i in range(12)]
    text = "\n\n".join(paras)
    limit = 2 * max(count(paras)) + 10  # a few paragraphs fit in one segment, not all twelve
    pieces = split_text(text, limit, tok, count)
    assert "".join(pieces) == text
    assert all(n <= limit for n in count(pieces)) and 1 < len(pieces) < len(paras)
    assert all(p.endswith("\n\n") for p in pieces[:-1])  # cut at paragraph breaks
    one_line = " ".join(paras)  # no breaks at all: token boundaries
    cut = split_text(one_line, 50, tok, count)
    assert "".join(cut) == one_line and all(n <= 50 for n in count(cut))


def test_segmenter_ids_and_tokenize_eos(tmp_path: Path) -> None:
    tok_path = str(make_tokenizer(tmp_path))
    _, info = load_tokenizer(tok_path)
    docs = _docs("short text", "\n\n".join(prose(i, 40) for i in range(10)))
    segs = list(Segmenter(tok_path, max_tokens=64).run(iter(docs)))
    assert segs[0].id == "d0#0" and segs[0].metadata["doc_id"] == "d0"
    long_segs = [s for s in segs if s.metadata["doc_id"] == "d1"]
    assert [s.metadata["segment"] for s in long_segs] == list(range(len(long_segs))) and len(long_segs) > 2
    out = list(Tokenize(tok_path).run(iter(segs)))
    for s in out:
        assert s.metadata["tokens"][-1] == info.eos_id and s.metadata["n_tokens"] == len(s.metadata["tokens"])
        assert s.metadata["n_tokens"] <= 64


def test_run_writes_schema_hive_layout_and_index(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "in" / "web" / "a.jsonl", [{"id": f"w{i}", "text": prose(i, 300), "url": f"u{i}"}
                                                        for i in range(4)])
    write_jsonl(tmp_path / "in" / "code" / "b.jsonl", [{"text": CODE}])
    root = curate(tmp_path, [tmp_path / "in"], overrides={"segment": {"max_tokens": 128}})
    idx = index(root)
    assert sorted(f["path"] for f in idx["files"]) == ["data/source=code/part-00000.parquet",
                                                        "data/source=web/part-00000.parquet"]
    t = pq.read_table(root / "data/source=web/part-00000.parquet")
    assert t.column_names[:10] == ["id", "doc_id", "segment", "source", "url", "path", "text", "text_sha256",
                                   "tokens", "n_tokens"]
    assert "labels" not in t.column_names  # classify disabled: no label columns, nothing faked
    rows = t.to_pylist()
    assert rows[0]["id"] == "w0#0" and rows[0]["url"] == "u0" and max(r["n_tokens"] for r in rows) <= 128
    assert idx["totals"]["tokens"] == sum(r["n_tokens"] for r in rows) + idx["totals"]["by_source"]["code"]["tokens"]
    code = pq.read_table(root / "data/source=code/part-00000.parquet").to_pylist()
    assert code[0]["doc_id"] == "code/b.jsonl:1"  # no id: path under the input dir and line
    assert (root / "stats" / "00000.json").is_file() and accounting(root)["kept"] == 5


def test_exact_and_near_duplicates_are_dropped_across_tasks(tmp_path: Path) -> None:
    docs = [{"id": f"a{i}", "text": prose(i, 120)} for i in range(6)]
    dup = [{"id": "copy", "text": docs[0]["text"]},  # exact copy in another file/task
           {"id": "near", "text": docs[1]["text"].replace("fine day", "fine night")}]
    write_jsonl(tmp_path / "in" / "x" / "a.jsonl", docs)
    write_jsonl(tmp_path / "in" / "x" / "b.jsonl", dup)
    on = {"dedup": {"exact": {"enabled": True}, "minhash": {"enabled": True}}}
    acc = accounting(curate(tmp_path, [tmp_path / "in"], tasks=2, overrides=on))
    assert acc["dropped"] == {"exact_duplicate": 1, "near_duplicate": 1} and acc["kept"] == 6


def test_full_default_filters_run_balances(tmp_path: Path) -> None:
    recs = [{"text": prose(i, 150)} for i in range(5)] + [{"text": "Le chat est assis sur le tapis. " * 20},
                                                           {"text": "short"}]
    write_jsonl(tmp_path / "in" / "web" / "a.jsonl", recs)
    on = {"filters": {"gopher_quality": {"enabled": True}, "gopher_repetition": {"enabled": True}},
          "language": {"enabled": True}}
    root = curate(tmp_path, [tmp_path / "in"], overrides=on)
    acc = accounting(root)
    assert acc["read"] == 7 and acc["kept"] == 5
    assert "lang_score" in pq.read_schema(root / "data/source=web/part-00000.parquet").names


def test_config_rejects_unknown_keys_and_bad_types(tmp_path: Path) -> None:
    bad = tmp_path / "p.toml"
    bad.write_text("[segment]\nmax_tokenz = 5\n")
    with pytest.raises(SettingsError, match=r"p.toml: \[segment\] max_tokenz: unknown key; did you mean max_tokens\?"):
        load_config(bad)
    bad.write_text("[language]\nthreshold = \"high\"\n")
    with pytest.raises(SettingsError, match=r"p.toml: \[language\] threshold: expected a number from 0.0 to 1.0, "
                                            r"got \"high\""):
        load_config(bad)
    bad.write_text("[filters.gopher_quality]\nmin_doc_wrds = 10\n")
    with pytest.raises(SettingsError, match=r"p.toml: \[filters.gopher_quality\] min_doc_wrds: unknown key; did you "
                                            r"mean min_doc_words\?$"):
        load_config(bad)
    bad.write_text("[filters.c4]\nlanguage = 1\n")
    with pytest.raises(SettingsError, match=r"p.toml: \[filters.c4\] language: expected a language code"):
        load_config(bad)
    with pytest.raises(SettingsError, match=r"^--set: \[segment\] max_tokens: expected an integer ≥ 16, got 8$"):
        load_config(None, ["segment.max_tokens=8"])
    assert load_config(None, ["segment.max_tokens=64"]).segment.max_tokens == 64
    good = tmp_path / "ok.toml"
    good.write_text("[dedup.minhash]\nenabled = false\n[filters.gopher_quality]\nmin_doc_words = 10\n")
    cfg = load_config(good)
    assert cfg.dedup.minhash.enabled is False and cfg.filters["gopher_quality"].kwargs == {"min_doc_words": 10}
    with pytest.raises(FrozenInstanceError):
        cfg.segment.max_tokens = 5  # type: ignore[misc]


def test_example_config_is_valid_and_matches_defaults() -> None:
    example = Path(__file__).resolve().parents[2] / "docs" / "pipeline.example.toml"
    cfg = load_config(example).as_dict()
    cfg["filters"]["gopher_quality"].pop("min_doc_words")  # a pass-through datatrove kwarg, shown as an example
    assert cfg == load_config().as_dict()


def test_compressed_jsonl_inputs(tmp_path: Path) -> None:
    import gzip

    import zstandard

    recs = "".join(f'{{"id": "z{i}", "text": "{prose(i, 20)}"}}\n' for i in range(3)).encode()
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.jsonl.zst").write_bytes(zstandard.ZstdCompressor().compress(recs))
    (tmp_path / "in" / "b.jsonl.gz").write_bytes(gzip.compress(recs.replace(b'"z', b'"g')))
    acc = accounting(curate(tmp_path, [tmp_path / "in" / "*.jsonl.*"], tasks=2))
    assert acc["read"] == 6 and acc["kept"] == 6


def test_fsspec_url_inputs(tmp_path: Path) -> None:
    import json

    import fsspec

    fs = fsspec.filesystem("memory")
    with fs.open("/fs_test_in/web/a.jsonl", "w") as f:
        for i in range(2):
            f.write(json.dumps({"text": prose(i)}) + "\n")
    try:
        root = curate(tmp_path, ["memory://fs_test_in"])
        assert accounting(root)["kept"] == 2 and (root / "data/source=web/part-00000.parquet").is_file()
    finally:
        fs.rm("/fs_test_in", recursive=True)


def test_special_token_literals_in_text_are_not_eos(tmp_path: Path) -> None:
    tok_path = str(make_tokenizer(tmp_path))
    tok, info = load_tokenizer(tok_path)
    text = "the model ends with <|endoftext|> and pads with <|pad|> here " * 30
    segs = list(Segmenter(tok_path, max_tokens=64).run(iter(_docs(text))))
    out = list(Tokenize(tok_path).run(iter(segs)))
    assert len(out) > 1 and "".join(s.text for s in out) == text
    for s in out:
        ids = s.metadata["tokens"].tolist()
        assert info.eos_id not in ids[:-1] and info.pad_id not in ids and len(ids) <= 64
        assert tok.decode(ids[:-1], skip_special_tokens=False) == s.text

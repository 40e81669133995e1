"""Where foresight reaches into datatrove's internals (pyproject pins datatrove below its next minor version),
its result must equal upstream's public one: the MinHash signature files that stock ``MinhashDedupSignature``
writes (ours overrides ``get_signature``/``get_shingles`` and calls its ``_hash_func``), the verdicts of stock
quality filters (ours share one windowed word tokenizer and clear datatrove's ``split_into_parts`` cache)."""

from __future__ import annotations

from pathlib import Path

import pytest
from datatrove.data import Document
from datatrove.pipeline.dedup.minhash import MinhashDedupSignature

from foresight.pipeline.config import MinhashDedupConfig
from foresight.pipeline.stages.dedup import minhash_config, minhash_steps
from foresight.pipeline.stages.quality import make_filter
from foresight.pipeline.stages.words import release_word_cache
from tests.pipeline.util import prose


def _docs() -> list[Document]:
    texts = [prose(i, 120) for i in range(12)]
    texts += [texts[0] + " one word more", " ".join(prose(i, 200) for i in range(30))]  # near-dup, many blocks
    texts += ["short", "don't U.S.A. (x) e.g. 3.5% «quoted» naïve—dash http://a.b/c?d=1 :-) " * 40]
    return [Document(text=t, id=f"d{i}", metadata={}) for i, t in enumerate(texts)]


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_minhash_signature_files_equal_upstreams(tmp_path: Path) -> None:
    section = MinhashDedupConfig(n_grams=5, num_buckets=4, hashes_per_bucket=3, seed=7)
    ours = minhash_steps(str(tmp_path / "ours"), section)["signature"]
    ours.block_rows = 64  # the long document goes through the blockwise minimum
    stock = MinhashDedupSignature(output_folder=str(tmp_path / "stock"), config=minhash_config(section))
    ours.run(iter(_docs()))  # writes the signature files (returns nothing)
    stock.run(iter(_docs()))
    got, want = _files(tmp_path / "ours" / "sigs"), _files(tmp_path / "stock")
    assert want and got == want


@pytest.mark.parametrize("name", ["gopher_repetition", "gopher_quality", "fineweb_quality", "c4"])
def test_quality_filter_verdicts_equal_upstreams(name: str) -> None:
    from datatrove.pipeline import filters

    stock_cls = {"gopher_repetition": filters.GopherRepetitionFilter, "gopher_quality": filters.GopherQualityFilter,
                 "fineweb_quality": filters.FineWebQualityFilter, "c4": filters.C4QualityFilter}[name]
    ours = make_filter(name, {})
    for doc in _docs():
        theirs = Document(text=doc.text, id=doc.id, metadata={})
        assert ours.filter(doc) == stock_cls(language="en").filter(theirs), doc.id
        assert doc.text == theirs.text  # C4 rewrites the text: identically
        release_word_cache()


def test_release_word_cache_empties_datatroves_word_cache() -> None:
    from datatrove.utils.text import split_into_parts

    make_filter("gopher_quality", {}).filter(Document(text=prose(3, 80), id="x", metadata={}))
    assert split_into_parts.cache_info().currsize > 0
    release_word_cache()
    assert split_into_parts.cache_info().currsize == 0

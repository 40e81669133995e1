"""Resource limits: memory bounded by the document, not by its token count, in every per-document stage
that used to grow with it (segmentation, MinHash signatures, word splitting); documents over
``[read] max_doc_chars`` are counted, not processed. (Audit time/memory limits: tests/audit/test_cli.py.)"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from datatrove.data import Document
from datatrove.pipeline.dedup.minhash import MinhashDedupSignature
from datatrove.utils.word_tokenizers import load_word_tokenizer

from foresight.pipeline.config import MinhashDedupConfig
from foresight.pipeline.stages.dedup import minhash_steps
from foresight.pipeline.stages.quality import make_filter
from foresight.pipeline.stages.segment import Segmenter
from foresight.pipeline.stages.words import WindowedWordTokenizer, whitespace_windows, windowed
from tests.helpers import make_tokenizer
from tests.pipeline.util import prose

_PEAK = """
import resource, sys
from datatrove.data import Document
from foresight.pipeline.stages.segment import Segmenter
from tests.pipeline.util import prose
text = "\\n\\n".join(prose(i % 300, 120) + f" {i}" for i in range(int(sys.argv[2])))
docs = [Document(text=text, id="paragraphs", metadata={}), Document(text=text.replace("\\n", " "), id="one-line",
        metadata={})]
seg = Segmenter(sys.argv[1], 256)
seg.count_tokens(["warm up"])
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
n = sum(1 for _ in seg.run(iter(docs)))
print(len(text), n, (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) // 1024)
"""


@pytest.mark.slow
def test_segmenting_a_long_document_costs_a_small_multiple_of_its_size(tmp_path: Path) -> None:
    """8 MB of text as paragraphs and as one line: the old whole-document encodes peaked at ~4.5 GB here."""
    tok = make_tokenizer(tmp_path)
    out = subprocess.run([sys.executable, "-c", _PEAK, str(tok), "10000"], capture_output=True, text=True,
                         cwd=Path(__file__).parents[2], timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    chars, segments, peak_mb = (int(x) for x in out.stdout.split())
    assert chars > 7_000_000 and segments > 10_000
    assert peak_mb < 40 * chars / 2**20, f"segmentation peaked {peak_mb} MB above baseline for {chars} chars"


def test_segments_of_a_long_line_with_special_literals_fit_and_join_back(tmp_path: Path) -> None:
    tok = str(make_tokenizer(tmp_path))
    text = "<|endoftext|> the red ball " * 4000  # one line: cut at token boundaries, literals encoded as text
    seg = Segmenter(tok, 64)
    out = list(seg.run(iter([Document(text=text, id="d", metadata={})])))
    assert "".join(d.text for d in out) == text
    assert max(seg.count_tokens([d.text for d in out])) <= 63


def test_blockwise_minhash_signature_is_datatroves(tmp_path: Path) -> None:
    step = minhash_steps(str(tmp_path), MinhashDedupConfig(n_grams=5, num_buckets=4, hashes_per_bucket=3, seed=7))
    sig = step["signature"]
    sig.block_rows = 64  # force many blocks
    shingles = sig.get_shingles(" ".join(prose(i, 200) for i in range(10)))
    assert len(shingles) > 10 * sig.block_rows
    assert sig.get_signature(shingles) == MinhashDedupSignature.get_signature(sig, shingles)
    assert np.array_equal(shingles, MinhashDedupSignature.get_shingles(sig, " ".join(prose(i, 200)
                                                                                   for i in range(10))))


@pytest.mark.parametrize("window", [64, 1000])
def test_windowed_word_splitting_gives_datatroves_words(window: int) -> None:
    text = "\n\n".join(prose(i, 100) + "  double  spaces,\ttabs\nand (brackets) e.g. U.S.A. don't" for i in range(20))
    assert "".join(whitespace_windows(text, window)) == text
    assert all(len(w) <= window for w in whitespace_windows(text, window))
    assert WindowedWordTokenizer("en", window).word_tokenize(text) == load_word_tokenizer("en").word_tokenize(text)


def test_word_splitting_keeps_datatroves_words_across_texts_and_vocabulary_resets(monkeypatch) -> None:
    """The spaCy vocabulary and cache kept between texts (and dropped past MAX_LEXEMES) change no word."""
    import foresight.pipeline.stages.words as words

    monkeypatch.setattr(words, "MAX_LEXEMES", 50)  # a fresh pipeline every few texts
    ours, theirs = WindowedWordTokenizer("en"), load_word_tokenizer("en")
    texts = [prose(i, 60) + " don't U.S.A. (x) e.g. 3.5% «quoted» naïve—dash http://a.b/c?d=1 :-)" for i in range(30)]
    texts += ["", "   ", "one"]  # (texts holding "IS_ALPHA" go to datatrove's tokenizer: its words depend on its state)
    for text in texts + texts[::-1]:
        assert ours.word_tokenize(text) == theirs.word_tokenize(text)


@pytest.mark.parametrize("hand_over", ["dill", "pickle", "deepcopy"])
def test_each_task_uses_the_processs_one_word_tokenizer(hand_over: str) -> None:
    """A pool worker unpickles every task's steps (datatrove: dill; Ray: pickle; one worker: deepcopy). Their
    word tokenizer must come back as the process's one instance: datatrove's ``load_word_tokenizer`` is an
    unbounded cache keyed by it, so a new one per task was kept, spaCy vocabulary and all, for good."""
    import copy
    import pickle

    import dill

    roundtrip = {"dill": lambda x: dill.loads(dill.dumps(x)), "pickle": lambda x: pickle.loads(pickle.dumps(x)),
                 "deepcopy": copy.deepcopy}[hand_over]
    steps = [make_filter("gopher_repetition", {}), make_filter("gopher_quality", {})]
    sizes = []
    for task in range(4):
        task_steps = roundtrip(steps)
        assert all(s.language is windowed("en") for s in task_steps)
        for step in task_steps:
            step.filter(Document(text=prose(task, 80), id=f"doc{task}", metadata={}))
        sizes.append(load_word_tokenizer.cache_info().currsize)
    assert sizes == sizes[:1] * 4, f"datatrove's tokenizer cache grew task by task: {sizes}"

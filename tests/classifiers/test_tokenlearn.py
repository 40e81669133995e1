"""Tokenlearn: static vectors fitted to a sentence encoder's embeddings of a text pool, and its CLI."""

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from foresight.classifiers.base import PACKAGED
from foresight.classifiers.static import StaticEmbedder
from foresight.classifiers.tokenlearn import extend, learn_vectors, sentence_embeddings, without_overlap
from foresight.classifiers.transformer import resolve_backbone
from foresight.cli import app

runner = CliRunner()
KITCHEN = ["Whisk the eggs with sugar and butter, then fold in the flour.",
           "Simmer the onions and garlic in olive oil until golden.",
           "Knead the dough, let it rise, and bake the loaf until brown.",
           "Slice the tomatoes and season the salad with salt and pepper."]
CODE = ["def parse(path): return json.loads(open(path).read())",
        "for i in range(n): total += values[i] * weights[i]",
        "class Cache: def get(self, key): return self.store.get(key)",
        "if err != nil { return nil, fmt.Errorf(\"read: %w\", err) }"]


@pytest.fixture(scope="module")
def small_base() -> StaticEmbedder:
    """The packaged tokenizer with random 16-dim vectors: no topic is encoded before learning."""
    packaged = StaticEmbedder.load(PACKAGED["static"])
    rng = np.random.default_rng(0)
    return StaticEmbedder(rng.normal(size=(len(packaged.vectors), 16)).astype(np.float32), packaged.tokenizer_json,
                          source="random-16")


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_learned_vectors_take_on_the_targets_structure(small_base):
    texts = KITCHEN + CODE
    targets = np.zeros((8, 4), np.float32)
    targets[:4, 0] = 1.0  # kitchen texts point one way, code texts another
    targets[4:, 1] = 1.0
    learned = learn_vectors(small_base, texts * 5, np.vstack([targets] * 5), epochs=30, lr=3e-2, batch_size=8)
    after = StaticEmbedder(learned, small_base.tokenizer_json)

    def gap(emb: StaticEmbedder) -> float:
        x = emb.encode(texts)
        within = np.mean([_cos(x[i], x[j]) for g in (range(4), range(4, 8)) for i in g for j in g if i < j])
        between = np.mean([_cos(x[i], x[j]) for i in range(4) for j in range(4, 8)])
        return within - between

    assert gap(after) > gap(small_base) + 0.2
    unused = small_base.tokenizer.token_to_id("[unused5]")
    assert unused is not None
    np.testing.assert_array_equal(learned[unused], small_base.vectors[unused])  # untouched rows keep their base


def test_extend_appends_the_learned_table(small_base):
    learned = np.ones_like(small_base.vectors)
    both = extend(small_base, learned)
    assert both.vectors.shape == (len(small_base.vectors), 32)
    np.testing.assert_array_equal(both.vectors[:, :16], small_base.vectors)
    with pytest.raises(ValueError, match="rows"):
        extend(small_base, learned[:10])


def test_without_overlap_drops_texts_sharing_a_run_of_words():
    gold = ["The quick brown fox jumps over the lazy dog near the river bank today."]
    pool = ["Yesterday the quick brown fox jumps over the lazy dog near the barn.",  # shares 8 words in a row
            "A slow grey cat sleeps under the warm stove in the kitchen all day."]
    kept, dropped = without_overlap(pool, gold)
    assert kept == pool[1:] and dropped == 1


def test_sentence_embeddings_are_unit_rows_and_blank_text_is_zero():
    emb = sentence_embeddings(resolve_backbone("minilm"), ["A red kite over the hill.", "   ", "x = 1"])
    assert emb.shape == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(emb[[0, 2]], axis=1), 1.0, atol=1e-4)
    assert not emb[1].any()


def test_cli_tokenlearn_writes_a_model2vec_directory_and_honours_exclude(small_base, tmp_path):
    base = tmp_path / "base"
    small_base.save(base, "random-16")
    pool = tmp_path / "pool.jsonl"
    pool.write_text("".join(json.dumps({"source": "s", "text": t}) + "\n" for t in KITCHEN + CODE))
    gold = tmp_path / "gold.parquet"
    pq.write_table(pa.table({"text": [KITCHEN[0]]}), gold)
    out = tmp_path / "tl"
    res = runner.invoke(app, ["classify", "tokenlearn", str(base), str(pool), "--exclude", str(gold),
                              "--epochs", "1", "--out", str(out)], terminal_width=200)
    assert res.exit_code == 0, res.output
    assert "7 texts (1 dropped" in res.output and "embedded 7/7" in res.output and "step 1/1" in res.output
    loaded = StaticEmbedder.load(out)
    assert loaded.dim == 32 and loaded.source == "random-16+tokenlearn(all-MiniLM-L6-v2)"
    np.testing.assert_allclose(loaded.vectors[:, :16], small_base.vectors, atol=1e-2)  # float16 on disk


def test_cli_tokenlearn_refuses_a_parquet_without_text(tmp_path):
    bad = tmp_path / "bad.parquet"
    pq.write_table(pa.table({"body": ["x"]}), bad)
    res = runner.invoke(app, ["classify", "tokenlearn", "default", str(bad), "--out", str(tmp_path / "o")],
                        terminal_width=200)
    assert res.exit_code == 1 and "no 'text' column" in res.output and "Traceback" not in res.output

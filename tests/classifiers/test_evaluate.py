import numpy as np
import pytest

from foresight.classifiers.evaluate import (
    agreement,
    cohen_kappa,
    data_sha256,
    evaluate,
    lsbs_reference,
    prf,
    split_indices,
    table4_gap,
    table4_rates,
    tune_thresholds,
)
from foresight.classifiers.labelsio import read_labels, write_labels
from foresight.formats.taxonomy import LABEL_NAMES


def test_prf_by_hand():
    m = prf(np.array([1, 1, 0, 0, 1]), np.array([1, 0, 0, 1, 1]))
    assert m["precision"] == pytest.approx(2 / 3) and m["recall"] == pytest.approx(2 / 3)
    assert m["f1"] == pytest.approx(2 / 3) and m["support"] == 3 and m["predicted"] == 3
    assert prf(np.zeros(3), np.zeros(3))["f1"] == 0.0


def test_cohen_kappa_by_hand():
    a = np.array([1, 1, 0, 0, 1, 0, 1, 0, 0, 0])
    b = np.array([1, 0, 0, 0, 1, 0, 1, 1, 0, 0])
    # po = 0.8, pa = 0.4, pb = 0.4, pe = 0.16 + 0.36 = 0.52, κ = 0.28 / 0.48
    assert cohen_kappa(a, b) == pytest.approx(0.28 / 0.48)
    assert cohen_kappa(a, a) == pytest.approx(1.0) and cohen_kappa(a, 1 - a) < 0
    assert cohen_kappa(np.zeros(4), np.zeros(4)) == 1.0


def test_evaluate_and_agreement_shapes():
    gold = np.eye(6, dtype=np.int8)
    res = evaluate(gold, gold)
    assert res["macro_f1"] == 1.0 and set(res["per_label"]) == set(LABEL_NAMES)
    assert agreement(gold, gold)["mean"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="shape"):
        evaluate(gold[:3], gold)


def test_tune_thresholds_picks_the_separating_cut():
    scores = np.tile(np.array([[0.9], [0.8], [0.3], [0.2], [0.1], [0.7]]), (1, 6)).astype(np.float32)
    y = np.tile(np.array([[1], [1], [0], [0], [0], [1]]), (1, 6))
    y[:, 5] = 0  # no positives → default
    th = tune_thresholds(scores, y)
    assert all(0.3 < th[n] <= 0.7 for n in LABEL_NAMES[:5]) and th["science_reasoning"] == 0.5


def test_split_and_hash_are_deterministic():
    tr, va = split_indices(20, 0.25, seed=1)
    assert len(va) == 5 and sorted(tr + va) == list(range(20)) and split_indices(20, 0.25, 1) == (tr, va)
    y = np.zeros((2, 6), np.int8)
    assert data_sha256(["a", "b"], y) == data_sha256(["a", "b"], y) != data_sha256(["a", "c"], y)


def test_table4_rates_all_eight_columns_and_gap():
    # code rows: one code-only, one concept-only; "mine" has no LSBS counterpart
    y = np.array([[0, 0, 0, 1, 0, 0], [1, 0, 0, 0, 0, 0], [0, 0, 0, 0, 1, 1]], np.int8)
    code, mine = table4_rates(["code", "code", "mine"], y)
    assert code["pct"]["code_reasoning"] == 50 and code["pct"]["reasoning"] == 50 and code["pct"]["visual"] == 50
    assert code["lsbs"]["code_reasoning"] == 96.7 and code["lsbs"]["visual"] == 3.7 and mine["lsbs"] is None
    assert mine["pct"]["reasoning"] == 100 and mine["pct"]["math_reasoning"] == 100
    assert table4_gap([code, mine]) == (abs(50 - 97.3) + abs(50 - 3.7)) / 2
    assert lsbs_reference("mathematics") == (92.9, 8.0)


def test_labels_file_roundtrip_and_errors(tmp_path):
    y = np.eye(6, dtype=np.int8)[:2]
    p = write_labels(tmp_path / "l.parquet", ["a#0", "b#0"], ["a", "b"], ["s", "s"], ["x", "y"], y,
                     {"votes": ["{}"] * 2})
    table, texts, y2 = read_labels(p)
    assert texts == ["x", "y"] and (y2 == y).all() and table.column("labels").to_pylist() == [["visual_concept"],
                                                                                              ["visual_attribute"]]
    import pyarrow as pa
    import pyarrow.parquet as pq
    pq.write_table(table.drop_columns(["math_reasoning"]), tmp_path / "bad.parquet")
    with pytest.raises(ValueError, match="math_reasoning"):
        read_labels(tmp_path / "bad.parquet")
    t = table.set_column(table.column_names.index("code_reasoning"), "code_reasoning", pa.array([0, 2], pa.int8()))
    pq.write_table(t, tmp_path / "bad2.parquet")
    with pytest.raises(ValueError, match="row 1: column code_reasoning"):
        read_labels(tmp_path / "bad2.parquet")


def test_positive_weights_up_weight_rare_labels():
    from foresight.classifiers.train import positive_weights

    y = np.zeros((100, 6), np.int8)
    y[:50, 0] = 1
    y[:2, 1] = 1
    w = positive_weights(y).tolist()
    assert w[0] == 1.0 and w[1] == 20.0 and w[2] == 1.0  # balanced → 1, rare → capped, absent → 1

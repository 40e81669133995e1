import math

import numpy as np
import pytest
import torch

from foresight.trainer.probes import alignment as A

ALL = ["mutual_knn", "cycle_knn", "lcs_knn", "cknna", "cka", "cka_rbf", "unbiased_cka", "svcca"]


def _metric(name: str, a, b) -> float:
    fn = A.METRICS[name]
    if name in ("mutual_knn", "cycle_knn", "lcs_knn", "cknna"):
        return fn(a, b, k=5)
    if name == "svcca":
        return fn(a, b, dim=4)
    return fn(a, b)


def _feats(n: int, d: int, seed: int) -> np.ndarray:
    return A.prepare_features(np.random.default_rng(seed).normal(size=(n, d))).numpy()


def _circle(degrees: list[float]) -> np.ndarray:
    r = np.deg2rad(degrees)
    return np.stack([np.cos(r), np.sin(r)], axis=1)


@pytest.mark.parametrize("name", ALL)
def test_identical_features_score_maximum(name: str) -> None:
    a = _feats(40, 12, 0)
    assert _metric(name, a, a) == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("name", ALL)
def test_orthogonal_rotation_leaves_metric_unchanged(name: str) -> None:
    rng = np.random.default_rng(1)
    a, b = _feats(40, 8, 2), _feats(40, 6, 3)
    qa, _ = np.linalg.qr(rng.normal(size=(8, 8)))
    qb, _ = np.linalg.qr(rng.normal(size=(6, 6)))
    base = _metric(name, a, b)
    assert _metric(name, a @ qa, b @ qb) == pytest.approx(base, abs=1e-9)
    assert _metric(name, torch.tensor(a @ qa), b) == pytest.approx(base, abs=1e-9)


def test_random_features_mutual_knn_near_chance() -> None:
    n, k = 200, 10
    scores = [A.mutual_knn(_feats(n, 64, s), _feats(n, 64, s + 100), k) for s in range(3)]
    assert np.mean(scores) == pytest.approx(k / (n - 1), abs=0.015)


def test_knn_metrics_hand_computed() -> None:
    # a: angles 0,10,30,70 deg; b: 0,50,60,105 deg. k=1 neighbours: a -> [1,0,1,2], b -> [1,2,1,2]
    a, b = _circle([0, 10, 30, 70]), _circle([0, 50, 60, 105])
    assert A.knn_indices(torch.tensor(a), 1).flatten().tolist() == [1, 0, 1, 2]
    assert A.mutual_knn(a, b, 1) == pytest.approx(0.75)
    assert A.cycle_knn(a, b, 1) == pytest.approx(0.5)
    # k=2 ordered lists: a [[1,2],[0,2],[1,0],[2,1]], b [[1,2],[2,0],[1,3],[2,1]]
    assert A.mutual_knn(a, b, 2) == pytest.approx(3.5 / 4)
    assert A.lcs_knn(a, b, 2) == pytest.approx((2 + 1 + 1 + 2) / 4 / 2)


def test_linear_cka_of_one_dimensional_features_is_squared_correlation() -> None:
    x = np.array([[1.0], [2.0], [3.0], [4.0], [6.0]])
    y = np.array([[1.0], [3.0], [2.0], [5.0], [4.0]])
    r = np.corrcoef(x[:, 0], y[:, 0])[0, 1]
    assert A.cka(x, y) == pytest.approx(r**2)
    assert A.cka(x, 7.0 * y) == pytest.approx(r**2)  # isotropic scaling invariance


def test_svcca_hand_computed() -> None:
    x = np.array([1.0, -1.0, 1.0, -1.0])
    y = np.array([1.0, 1.0, -1.0, -1.0])
    z = np.array([1.0, -1.0, -1.0, 1.0])
    # canonical correlations 1 (shared x) and 0 (y vs z orthogonal) -> mean 0.5
    assert A.svcca(np.stack([x, y], 1), np.stack([x, z], 1), dim=2) == pytest.approx(0.5)
    # any invertible linear map preserves all canonical correlations
    a = np.random.default_rng(4).normal(size=(30, 3))
    assert A.svcca(a, a @ np.array([[2.0, 1.0, 0.0], [0.0, 1.0, 3.0], [1.0, 0.0, 1.0]]), dim=3) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="rank"):
        A.svcca(np.stack([x, y], 1), np.stack([x, z], 1), dim=3)


def test_unbiased_hsic_matches_definition_small() -> None:
    rng = np.random.default_rng(5)
    K = torch.tensor(rng.normal(size=(6, 6)))
    K = K @ K.T
    L = torch.tensor(rng.normal(size=(6, 6)))
    L = L @ L.T
    m = 6
    Kt, Lt = K.clone().fill_diagonal_(0), L.clone().fill_diagonal_(0)
    # explicit sum form of Song et al. eq. 5
    one = torch.ones(m, dtype=K.dtype)
    expected = (torch.trace(Kt @ Lt) + (one @ Kt @ one) * (one @ Lt @ one) / ((m - 1) * (m - 2))
                - 2 / (m - 2) * (one @ Kt @ Lt @ one)) / (m * (m - 3))
    assert float(A.hsic_unbiased(K, L)) == pytest.approx(float(expected))


def test_prepare_features_clamps_and_normalises() -> None:
    x = torch.ones(4, 3, 10)
    x[0, 0, 0] = 1000.0  # outlier clamped to the 95th percentile (1.0)
    p = A.prepare_features(x)
    assert p.shape == (4, 3, 10)
    assert torch.allclose(p.norm(dim=-1), torch.ones(4, 3))
    assert torch.allclose(p[0, 0], torch.full((10,), 1 / math.sqrt(10)))


def test_mean_pool_respects_mask() -> None:
    h = torch.tensor([[[1.0], [3.0], [100.0]]])
    assert A.mean_pool(h, torch.tensor([[1, 1, 0]])).item() == pytest.approx(2.0)


def test_best_over_layers_picks_matching_pair() -> None:
    target = _feats(30, 6, 7)
    a = np.stack([_feats(30, 6, 8), target, _feats(30, 6, 9)], axis=1)
    b = np.stack([_feats(30, 6, 10), target], axis=1)
    score, where = A.best_over_layers(a, b, A.mutual_knn, k=5)
    assert score == pytest.approx(1.0) and where == (1, 1)


def test_bad_inputs_raise() -> None:
    with pytest.raises(ValueError, match="same number of rows"):
        A.mutual_knn(np.ones((5, 2)), np.ones((4, 2)), 2)
    with pytest.raises(ValueError, match="k must be"):
        A.mutual_knn(np.eye(4), np.eye(4), 4)

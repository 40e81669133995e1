"""PRH representation-alignment metrics (Huh et al. 2024, App. A; reference code minyoungg/platonic-rep).

Every metric takes two already-prepared feature sets ``a`` (n × d_a) and ``b`` (n × d_b), numpy arrays or
torch tensors, rows paired by index, and returns a float. Neighbours are by inner product (cosine on the
L2-normalised features of :func:`prepare_features`) with each point's self excluded.

Deviations from the reference code, for documented reasons:
- ``lcs_knn`` is divided by ``k`` so that it lies in [0, 1] (PRH returns the raw length: ours × k).
- ``svcca`` centres each feature but does not scale it to unit variance, which makes the score invariant to
  orthogonal rotations of the feature space (PRH's per-feature standardisation is not). Canonical
  correlations are computed exactly (singular values of U_aᵀU_b) instead of sklearn's iterative CCA.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

ArrayLike = Any  # numpy array or torch tensor


def _t(x: ArrayLike) -> torch.Tensor:
    t = x.detach() if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))
    t = t.to(dtype=torch.float64, device="cpu")
    if t.ndim != 2:
        raise ValueError(f"expected features of shape (n, d), got {tuple(t.shape)}")
    return t


def _pair(a: ArrayLike, b: ArrayLike) -> tuple[torch.Tensor, torch.Tensor]:
    ta, tb = _t(a), _t(b)
    if ta.shape[0] != tb.shape[0]:
        raise ValueError(f"feature sets must have the same number of rows, got {ta.shape[0]} and {tb.shape[0]}")
    return ta, tb


def _check_k(n: int, k: int) -> None:
    if not 1 <= k <= n - 1:
        raise ValueError(f"k must be in [1, n-1] = [1, {n - 1}], got {k}")


# --------------------------------------------------------------------------------------------- features

def clamp_outliers(x: torch.Tensor, q: float = 0.95) -> torch.Tensor:
    """Clamp at the q-quantile of |x| (per sample over all its values, averaged over samples, as PRH does)."""
    if q >= 1.0:
        return x
    flat = x.abs().flatten(start_dim=1) if x.ndim > 1 else x.abs().unsqueeze(0)
    q_val = torch.quantile(flat.float(), q, dim=1).mean().to(x.dtype)
    return x.clamp(-q_val, q_val)


def prepare_features(x: ArrayLike, q: float = 0.95) -> torch.Tensor:
    """PRH preparation of pooled features: clamp at the 95th percentile of |x|, then L2-normalise.

    ``x`` is (n, d) for one layer or (n, layers, d) for a stack of layers; each layer's vectors are
    normalised separately. Returns float32 of the same shape.
    """
    t = x.detach() if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))
    t = clamp_outliers(t.float().cpu(), q)
    return torch.nn.functional.normalize(t, p=2, dim=-1)


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of (batch, seq, d) hidden states over positions where ``mask`` (batch, seq) is 1."""
    m = mask.to(hidden.dtype).unsqueeze(-1)
    return (hidden * m).sum(dim=1) / m.sum(dim=1).clamp(min=1.0)


def best_over_layers(a_layers: Sequence[ArrayLike] | ArrayLike, b_layers: Sequence[ArrayLike] | ArrayLike,
                     metric: Callable[..., float], **kwargs: Any) -> tuple[float, tuple[int, int]]:
    """Max of ``metric`` over all (layer of a, layer of b) pairs; inputs (n, L, d) or lists of (n, d)."""
    def layers(x: Any) -> list[ArrayLike]:
        if isinstance(x, (list, tuple)):
            return list(x)
        return [x[:, i, :] for i in range(x.shape[1])]

    best, where = -float("inf"), (0, 0)
    for i, fa in enumerate(layers(a_layers)):
        for j, fb in enumerate(layers(b_layers)):
            s = metric(fa, fb, **kwargs)
            if s > best:
                best, where = s, (i, j)
    return float(best), where


# ----------------------------------------------------------------------------------------- k-NN metrics

def knn_indices(x: torch.Tensor, k: int) -> torch.Tensor:
    """Indices (n × k) of each row's k most similar rows by inner product, self excluded, best first."""
    _check_k(x.shape[0], k)
    return knn_indices_from_kernel(x @ x.T, k)


def knn_indices_from_kernel(K: torch.Tensor, k: int) -> torch.Tensor:
    """Top-k columns per row of a similarity matrix, diagonal excluded; a stable sort breaks ties by index."""
    s = K.clone().fill_diagonal_(-float("inf"))
    return torch.sort(s, dim=1, descending=True, stable=True).indices[:, :k]


def _knn_mask(idx: torch.Tensor, n: int) -> torch.Tensor:
    mask = torch.zeros(n, n, dtype=torch.float64)
    mask.scatter_(1, idx, 1.0)
    return mask


def mutual_knn(a: ArrayLike, b: ArrayLike, k: int = 10) -> float:
    """Mean over points of |kNN_a(i) ∩ kNN_b(i)| / k."""
    ta, tb = _pair(a, b)
    n = ta.shape[0]
    ma, mb = _knn_mask(knn_indices(ta, k), n), _knn_mask(knn_indices(tb, k), n)
    return float(((ma * mb).sum(dim=1) / k).mean())


def cycle_knn(a: ArrayLike, b: ArrayLike, k: int = 10) -> float:
    """Fraction of points i that are among the a-neighbours of one of their b-neighbours."""
    ta, tb = _pair(a, b)
    ka, kb = knn_indices(ta, k), knn_indices(tb, k)
    n = ta.shape[0]
    back = ka[kb]  # n × k × k: a-neighbours of each b-neighbour
    hit = (back == torch.arange(n).view(-1, 1, 1)).reshape(n, -1).any(dim=1)
    return float(hit.double().mean())


def _lcs(x: list[int], y: list[int]) -> int:
    prev = [0] * (len(y) + 1)
    for xi in x:
        cur = [0]
        for j, yj in enumerate(y, start=1):
            cur.append(prev[j - 1] + 1 if xi == yj else max(prev[j], cur[j - 1]))
        prev = cur
    return prev[-1]


def lcs_knn(a: ArrayLike, b: ArrayLike, k: int = 10) -> float:
    """Mean longest common subsequence of the two ordered neighbour lists, divided by k."""
    ta, tb = _pair(a, b)
    ka, kb = knn_indices(ta, k).tolist(), knn_indices(tb, k).tolist()
    return float(np.mean([_lcs(x, y) for x, y in zip(ka, kb, strict=True)]) / k)


# ------------------------------------------------------------------------------------- kernel metrics

def hsic_biased(K: torch.Tensor, L: torch.Tensor) -> torch.Tensor:
    """Gretton et al.'s HSIC, trace(KHLH) (unnormalised; the normalisation cancels in CKA)."""
    n = K.shape[0]
    H = torch.eye(n, dtype=K.dtype) - 1.0 / n
    return torch.trace(K @ H @ L @ H)


def hsic_unbiased(K: torch.Tensor, L: torch.Tensor) -> torch.Tensor:
    """Song et al. (2012) unbiased HSIC estimator (eq. 5); needs n > 3."""
    m = K.shape[0]
    if m < 4:
        raise ValueError(f"unbiased HSIC needs at least 4 samples, got {m}")
    Kt, Lt = K.clone().fill_diagonal_(0), L.clone().fill_diagonal_(0)
    value = (Kt * Lt.T).sum() + Kt.sum() * Lt.sum() / ((m - 1) * (m - 2)) - 2 * (Kt @ Lt).sum() / (m - 2)
    return value / (m * (m - 3))


def _kernel(x: torch.Tensor, kernel: str, sigma: float) -> torch.Tensor:
    if kernel == "linear":
        return x @ x.T
    if kernel == "rbf":
        return torch.exp(-torch.cdist(x, x) ** 2 / (2 * sigma**2))
    raise ValueError(f"unknown kernel {kernel!r}; use 'linear' or 'rbf'")


def _ratio(kl: torch.Tensor, kk: torch.Tensor, ll: torch.Tensor) -> float:
    denom = torch.sqrt(kk * ll)
    return float(kl / denom) if float(denom) > 0 else 0.0


def cka(a: ArrayLike, b: ArrayLike, kernel: str = "linear", sigma: float = 1.0, unbiased: bool = False) -> float:
    """Centred kernel alignment with a linear or RBF kernel (biased HSIC unless ``unbiased``)."""
    ta, tb = _pair(a, b)
    K, L = _kernel(ta, kernel, sigma), _kernel(tb, kernel, sigma)
    hsic = hsic_unbiased if unbiased else hsic_biased
    return _ratio(hsic(K, L), hsic(K, K), hsic(L, L))


def unbiased_cka(a: ArrayLike, b: ArrayLike, kernel: str = "linear", sigma: float = 1.0) -> float:
    """CKA with Song et al.'s unbiased HSIC estimator."""
    return cka(a, b, kernel=kernel, sigma=sigma, unbiased=True)


def cknna(a: ArrayLike, b: ArrayLike, k: int = 10) -> float:
    """Centred kernel nearest-neighbour alignment (PRH): unbiased CKA restricted to mutual k-NN pairs."""
    ta, tb = _pair(a, b)
    n = ta.shape[0]
    if k < 2:
        raise ValueError("cknna needs k >= 2")
    _check_k(n, k)
    K, L = ta @ ta.T, tb @ tb.T

    def sim(K: torch.Tensor, L: torch.Tensor) -> torch.Tensor:
        mask = _knn_mask(knn_indices_from_kernel(K, k), n) * _knn_mask(knn_indices_from_kernel(L, k), n)
        return hsic_unbiased(mask * K, mask * L)

    kl, kk, ll = sim(K, L), sim(K, K), sim(L, L)
    return _ratio(kl, kk, ll)


# ----------------------------------------------------------------------------------------------- SVCCA

def _top_left_singular(x: torch.Tensor, dim: int) -> torch.Tensor:
    x = x - x.mean(dim=0, keepdim=True)
    U, S, _ = torch.linalg.svd(x, full_matrices=False)
    rank = int((S > S.max() * 1e-10).sum()) if S.numel() else 0
    if rank < dim:
        raise ValueError(f"svcca dim={dim} exceeds the rank {rank} of a centred feature set; lower dim")
    return U[:, :dim]


def svcca(a: ArrayLike, b: ArrayLike, dim: int = 10) -> float:
    """SVCCA: keep each set's top ``dim`` singular directions, return the mean canonical correlation."""
    ta, tb = _pair(a, b)
    ua, ub = _top_left_singular(ta, dim), _top_left_singular(tb, dim)
    # Orthonormal, centred bases: the canonical correlations are the singular values of uaᵀub.
    rho = torch.linalg.svdvals(ua.T @ ub).clamp(0.0, 1.0)
    return float(rho.mean())


METRICS: dict[str, Callable[..., float]] = {
    "mutual_knn": mutual_knn, "cycle_knn": cycle_knn, "lcs_knn": lcs_knn, "cknna": cknna,
    "cka": cka, "cka_rbf": lambda a, b: cka(a, b, kernel="rbf"), "unbiased_cka": unbiased_cka, "svcca": svcca,
}

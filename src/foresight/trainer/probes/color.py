"""Colour probe (PRH App. D): do a model's colour-word features mirror perceptual (CIELAB) colour space?

Colour names and sRGB values come from matplotlib's XKCD (949 names) or CSS4 tables; CIELAB from
scikit-image. Each name goes through three templates; a colour's feature per layer is the mean over the
templates of the PRH-prepared, mean-pooled hidden state. Pairwise cosine distances between colours are
compared with Euclidean CIELAB distances by Spearman ρ (over all pairs) and mutual k-NN; both are maxima
over layers (PRH's convention), with the best layer reported, and ρ gets a Mantel permutation p-value
(colours shuffled; the pairs of one colour are not independent). A classical-MDS 3-D embedding of the best
layer, aligned to CIELAB by a Umeyama similarity transform, is saved as a plot.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from foresight.formats.errors import InputError
from foresight.trainer.probes.alignment import prepare_features
from foresight.trainer.probes.features import LoadedModel, layer_features

TEMPLATES = ("The color {}.", "This color is {}.", "The color of this thing is {}.")


def color_table(which: str = "xkcd") -> tuple[list[str], np.ndarray]:
    """(names, sRGB in [0,1] of shape n×3) from matplotlib's colour tables: 'xkcd', 'css4', 'both', or
    'xkcd-single' (the 250 one-word XKCD names, which removes the shared-word confound: "light blue" and
    "dark blue" look alike to any bag-of-tokens model, trained or not)."""
    import matplotlib.colors as mcolors
    tables = {"xkcd": mcolors.XKCD_COLORS, "css4": mcolors.CSS4_COLORS}
    if which not in (*tables, "both", "xkcd-single"):
        raise InputError(f"unknown colour table {which!r}; use xkcd, xkcd-single, css4 or both")
    single = which == "xkcd-single"
    chosen = [tables["xkcd"]] if single else [tables[which]] if which != "both" else [tables["xkcd"], tables["css4"]]
    names, rgb, seen = [], [], set()
    for table in chosen:
        for key, hexval in sorted(table.items()):
            name = key.split(":", 1)[-1]
            if single and any(ch in name for ch in " /-'"):
                continue
            if name not in seen:
                seen.add(name)
                names.append(name)
                rgb.append(mcolors.to_rgb(hexval))
    return names, np.asarray(rgb)


def srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    from skimage.color import rgb2lab
    return rgb2lab(rgb.reshape(-1, 1, 3)).reshape(-1, 3)


def _pairwise(x: np.ndarray, metric: str) -> np.ndarray:
    if metric == "cosine":
        return 1.0 - x @ x.T
    sq = (x * x).sum(1)
    return np.sqrt(np.maximum(sq[:, None] + sq[None, :] - 2 * x @ x.T, 0.0))


def _knn(d: np.ndarray, k: int) -> np.ndarray:
    d = d.copy()
    np.fill_diagonal(d, np.inf)
    return np.argsort(d, axis=1, kind="stable")[:, :k]


def mutual_knn_distances(da: np.ndarray, db: np.ndarray, k: int) -> float:
    """Mutual k-NN from two distance matrices (neighbours by smallest distance, self excluded)."""
    ka, kb = _knn(da, k), _knn(db, k)
    return float(np.mean([len(set(a) & set(b)) / k for a, b in zip(ka, kb, strict=True)]))


def spearman_distances(da: np.ndarray, db: np.ndarray) -> float:
    from scipy.stats import spearmanr
    iu = np.triu_indices_from(da, k=1)
    return float(spearmanr(da[iu], db[iu]).statistic)


def mantel_p(da: np.ndarray, db: np.ndarray, rho: float, permutations: int = 200, seed: int = 0) -> float:
    """One-sided permutation p-value of a Spearman ρ between distance matrices (Mantel test: colours shuffled).

    Pairs of one colour are not independent, so the usual Spearman p-value is far too small; this is not.
    """
    from scipy.stats import rankdata
    n = da.shape[0]
    iu = np.triu_indices(n, k=1)
    ra = np.zeros_like(da)
    ra[iu] = rankdata(da[iu])
    ra = ra + ra.T
    rb = np.zeros_like(db)
    rb[iu] = rankdata(db[iu])
    rb = rb + rb.T
    x = ra[iu] - ra[iu].mean()
    rng = np.random.default_rng(seed)
    hits = 0
    for _ in range(permutations):
        p = rng.permutation(n)
        y = rb[p][:, p][iu]
        y = y - y.mean()
        hits += float(x @ y / np.sqrt((x @ x) * (y @ y))) >= rho
    return (hits + 1) / (permutations + 1)


def classical_mds(d: np.ndarray, dims: int = 3) -> np.ndarray:
    n = d.shape[0]
    j = np.eye(n) - 1.0 / n
    b = -0.5 * j @ (d**2) @ j
    w, v = np.linalg.eigh(b)
    order = np.argsort(w)[::-1][:dims]
    return v[:, order] * np.sqrt(np.maximum(w[order], 0.0))


def umeyama(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """``src`` mapped by the similarity transform (scale, rotation, translation) that best fits ``dst``."""
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s, d = src - mu_s, dst - mu_d
    u, sig, vt = np.linalg.svd(d.T @ s / len(src))
    sign = np.eye(3)
    sign[2, 2] = np.sign(np.linalg.det(u @ vt)) or 1.0
    rot = u @ sign @ vt
    var = (s**2).sum() / len(src)
    scale = float(np.trace(np.diag(sig) @ sign) / var) if var > 0 else 1.0
    return scale * s @ rot.T + mu_d


def color_features(lm: LoadedModel, names: list[str], batch_size: int = 64) -> torch.Tensor:
    """(n, layers, d): per colour, the mean over templates of prepared per-layer features."""
    texts = [t.format(n) for n in names for t in TEMPLATES]
    feats = prepare_features(layer_features(lm, texts, batch_size))
    return feats.view(len(names), len(TEMPLATES), *feats.shape[1:]).mean(dim=1)


def color_probe(lm: LoadedModel, table: str = "xkcd", k: int = 10, limit: int | None = None,
                plot: Path | None = None) -> dict[str, Any]:
    names, rgb = color_table(table)
    if limit is not None:
        step = max(1, len(names) // limit)
        names, rgb = names[::step][:limit], rgb[::step][:limit]
    lab = srgb_to_lab(rgb)
    d_lab = _pairwise(lab, "euclidean")
    feats = color_features(lm, names).numpy().astype(np.float64)
    best = {"rho": -2.0, "layer": 0, "knn": 0.0}
    for layer in range(feats.shape[1]):
        f = feats[:, layer]
        f = f / np.maximum(np.linalg.norm(f, axis=1, keepdims=True), 1e-12)
        d = _pairwise(f, "cosine")
        rho = spearman_distances(d, d_lab)
        rho = rho if np.isfinite(rho) else 0.0
        best["knn"] = max(best["knn"], mutual_knn_distances(d, d_lab, k))
        if rho > best["rho"]:
            best.update(rho=rho, layer=layer, d=d)
    result = {"color_spearman": best["rho"], "color_layer": best["layer"],
              "color_spearman_p": mantel_p(best["d"], d_lab, best["rho"]), "color_mutual_knn": best["knn"],
              "color_knn_chance": k / (len(names) - 1), "color_n": len(names)}
    if plot is not None:
        save_mds_plot(best["d"], lab, rgb, Path(plot), title=f"{lm.path.name}: layer {best['layer']}, "
                      f"Spearman ρ={best['rho']:.3f}")
    return result


def save_mds_plot(d_model: np.ndarray, lab: np.ndarray, rgb: np.ndarray, out: Path, title: str) -> Path:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    aligned = umeyama(classical_mds(d_model, 3), lab)
    fig = plt.figure(figsize=(10, 5))
    for i, (pts, name) in enumerate([(lab, "CIELAB"), (aligned, "model (MDS, aligned)")]):
        ax = fig.add_subplot(1, 2, i + 1, projection="3d")
        ax.scatter(pts[:, 1], pts[:, 2], pts[:, 0], c=np.clip(rgb, 0, 1), s=8)
        ax.set_xlabel("a*")
        ax.set_ylabel("b*")
        ax.set_zlabel("L*")
        ax.set_title(name)
    fig.suptitle(title)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out

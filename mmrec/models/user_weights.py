"""Per-user modality weights learnt from the user's own ratings (leave-one-out ridge regression
over a grid of text / image / audio weights). Split from :mod:`mmrec.models.train`.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np

from mmrec.models.fusion import MODALITIES, FusionModel
from mmrec.models.inference import item_embeddings


def _loo_rmse(x: np.ndarray, y: np.ndarray, ridge: float) -> np.ndarray:
    """Leave-one-out RMSE of ridge regression, for a stack of designs at once.

    ``x (K, n, D)`` embeddings of the user's n rated items under K weight settings, ``y (n,)``
    ratings -> ``(K,)``. Ridge with an unpenalised intercept is a linear smoother
    ``y_hat = H y``, so the exact leave-one-out residual is ``(y - y_hat) / (1 - H_ii)``: no
    refits, no random folds, deterministic for a user.
    """
    k, n, d = x.shape
    design = np.concatenate([x, np.ones((k, n, 1), x.dtype)], axis=2).astype(
        np.float64
    )  # (K, n, D+1)
    gram = design.transpose(0, 2, 1) @ design  # (K, D+1, D+1)
    # Penalty relative to the mean feature energy: weights shrink embeddings towards zero,
    # and a fixed absolute penalty would then favour small weights for the wrong reason.
    energy = np.einsum("kii->k", gram[:, :d, :d]) / max(d, 1)  # (K,)
    penalty = np.zeros((k, d + 1, d + 1))
    idx = np.arange(d)
    penalty[:, idx, idx] = (ridge * np.maximum(energy, 1e-12))[:, None]
    inv = np.linalg.inv(gram + penalty + 1e-9 * np.eye(d + 1))  # (K, D+1, D+1)
    hat_diag = np.einsum("kni,kij,knj->kn", design, inv, design)  # (K, n)
    beta = np.einsum("kij,kj->ki", inv, design.transpose(0, 2, 1) @ y)  # (K, D+1)
    fitted = np.einsum("kni,ki->kn", design, beta)  # (K, n)
    resid = (y[None, :] - fitted) / np.clip(1.0 - hat_diag, 1e-6, None)  # (K, n)
    return np.sqrt((resid**2).mean(1))  # (K,)


def learn_user_weights(
    model: FusionModel,
    branches: dict[str, np.ndarray],
    present: np.ndarray,
    movie_idx: np.ndarray,
    ratings: np.ndarray,
    grid: Sequence[float] | None = None,
    ridge: float | None = None,
    min_ratings: int = 5,
) -> dict:
    """Per-user modality weights from the user's own ratings.

    For every ``(w_text, w_image, w_audio)`` on ``grid``^3 (default
    ``cfg.user_weight_grid``; all-zero excluded), embed the user's rated items with those
    weights and fit a ridge regression of the ratings on the embeddings; the weights whose
    leave-one-out RMSE is lowest win (ties go to the weights closest to all-ones).

    ``movie_idx (n,)`` catalog row positions, ``ratings (n,)``. Returns ``{"weights": (3
    floats), "score": LOO RMSE at those weights, "baseline_score": LOO RMSE at (1, 1, 1),
    "mean_only_score": LOO RMSE of predicting the user's mean, "n_ratings": n, "metric":
    "loo_rmse"}`` (lower is better). With fewer than ``min_ratings`` ratings the default
    weights (1, 1, 1) are returned and the scores are None.
    """
    movie_idx = np.asarray(movie_idx, dtype=np.int64)
    y = np.asarray(ratings, dtype=np.float64)
    if movie_idx.shape != y.shape:
        raise ValueError(f"movie_idx {movie_idx.shape} and ratings {y.shape} differ in length")
    n = len(y)
    default = (1.0, 1.0, 1.0)
    result = {
        "weights": default,
        "score": None,
        "baseline_score": None,
        "mean_only_score": None,
        "n_ratings": n,
        "metric": "loo_rmse",
    }
    if n < min_ratings:
        return result
    grid = tuple(model.cfg.user_weight_grid if grid is None else grid)
    ridge = model.cfg.user_ridge if ridge is None else ridge
    candidates = [w for w in itertools.product(grid, repeat=3) if any(v > 0 for v in w)]
    if default not in candidates:
        candidates.append(default)
    combos = np.asarray(candidates, dtype=np.float32)  # (K, 3)
    k = len(combos)
    sub = {m: branches[m][movie_idx] for m in MODALITIES}  # (n, H) each
    tiled = {m: np.tile(v, (k, 1)) for m, v in sub.items()}  # (K*n, H)
    present_rows = np.tile(np.asarray(present, bool)[movie_idx], (k, 1))  # (K*n, 3)
    weights_rows = np.repeat(combos, n, axis=0)  # (K*n, 3)
    emb = item_embeddings(model, tiled, present_rows, weights_rows).reshape(k, n, -1)  # (K, n, D)
    rmse = _loo_rmse(emb, y, ridge)  # (K,)
    # Prefer the default on (near-)ties: a weight change must earn its place.
    distance = np.abs(combos - 1.0).sum(1)
    best = int(np.lexsort((distance, np.round(rmse, 6)))[0])
    mean_loo = (y - y.mean()) * n / (n - 1)  # leave-one-out residuals of the mean predictor
    result.update(
        weights=tuple(float(v) for v in combos[best]),
        score=float(rmse[best]),
        baseline_score=float(rmse[candidates.index(default)]),
        mean_only_score=float(np.sqrt((mean_loo**2).mean())),
    )
    return result

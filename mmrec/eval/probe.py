"""Linear probe: one-vs-rest logistic regression on the frozen features, the reference row of
the modality table.

A branch of the fusion network is a small MLP over the same cached encoder vectors, so a plain
logistic regression on those vectors is what it should at least match: if the network trains
a branch below the probe, the training (not the features) is at fault.

The G binary problems share nothing but their inputs, so they are fitted together as one
``(D, G)`` weight matrix with full-batch L-BFGS (SciPy): the objective is the sum of the G separate
objectives, hence the same minimiser as G scikit-learn fits (``tests`` check that), in one
pass over the data. Objective per genre: mean binary cross-entropy + ``l2 / 2 * ||w||^2``
(scikit-learn's ``C = 1 / (l2 * n)``); the intercept is not penalised. Inputs are
standardised with training statistics, and ``l2`` is chosen from ``L2_GRID`` by macro average
precision on the validation items, so the probe never sees test movies.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mmrec.eval.metrics import macro_average_precision

L2_GRID = (0.1,)  # candidate penalties, chosen on validation mAP. One value on the shared 2-core
# VM (a grid of three cost 200 s per poster fit): on the real catalog's development split (the
# non-test part of seed 0 / fold 0) the grid 1e-4..0.1 chose 0.1 for text and for posters.
MAX_ITER = 100  # L-BFGS iterations per fit at most
TOLERANCE = 1e-5  # stop when the largest gradient entry is below this (scaled objective)


def probe_inputs(features, modalities: Sequence[str]) -> tuple[np.ndarray, list[slice]]:
    """``(N, D)`` probe design for ``modalities`` and the column block of each.

    Text and image vectors are used as they are; an audio sequence ``(T, F)`` is averaged over
    time (a linear probe has no memory). Missing modalities are zero rows, and they stay zero
    after :func:`standardize` (which fits on present rows only), i.e. at the mean.
    """
    blocks, slices, start = [], [], 0
    for m in modalities:
        arr = np.asarray(getattr(features, m), dtype=np.float32)
        if arr.ndim == 3:
            arr = arr.mean(1)  # (N, F)
        has = np.asarray(getattr(features, f"has_{m}"), dtype=bool)
        arr = np.where(has[:, None], arr, 0.0).astype(np.float32)
        blocks.append(arr)
        slices.append(slice(start, start + arr.shape[1]))
        start += arr.shape[1]
    return np.concatenate(blocks, axis=1), slices


def standardize(
    x: np.ndarray, present: np.ndarray, train_idx: np.ndarray, blocks: Sequence[slice]
) -> np.ndarray:
    """Each column to mean 0 / std 1 over the training rows that have its block, then each
    block scaled so every modality carries the same total variance (a 1280-d poster block
    would otherwise outweigh a 384-d text block). Rows
    without a block stay exactly 0 there. ``present (N, len(blocks))`` bool."""
    out = np.zeros_like(x, dtype=np.float32)
    for b, sl in enumerate(blocks):
        rows = train_idx[present[train_idx, b]]
        if len(rows) == 0:
            continue
        block = x[:, sl]
        mean = block[rows].mean(0)
        std = block[rows].std(0)
        std = np.where(std > 1e-6, std, 1.0)
        # Equal total variance per block, the same total as unscaled columns (so one L2 grid
        # suits single and fused probes): each block carries width_total / n_blocks.
        scale = np.sqrt(x.shape[1] / (len(blocks) * block.shape[1]))
        z = (block - mean) / std * scale
        out[:, sl] = np.where(present[:, b : b + 1], z, 0.0)
    return out


def fit_logistic(
    x: np.ndarray,
    y: np.ndarray,
    l2: float,
    max_iter: int = MAX_ITER,
    start: tuple[np.ndarray, np.ndarray] | None = None,
    tol: float = TOLERANCE,
    dtype=np.float32,
) -> tuple[np.ndarray, np.ndarray]:
    """One-vs-rest logistic regression: ``x (n, D)``, ``y (n, G)`` 0/1 -> ``W (D, G)``, ``b (G,)``.

    Minimises, per genre, mean BCE + ``l2 / 2 * ||w_g||^2`` (intercept unpenalised) with
    SciPy's L-BFGS-B on the exact gradient (the matrix products in ``dtype``, float32 by
    default: twice as fast, and far below the probe's statistical noise); deterministic.
    ``start``: ``(W, b)`` to start from (a warm start along a path of penalties; the optimum
    is the same, it is only reached sooner).
    """
    from scipy.optimize import minimize

    x = np.asarray(x, dtype=dtype)  # (n, D)
    y = np.asarray(y, dtype=np.float64)  # (n, G)
    n, d = x.shape
    g = y.shape[1]
    if start is None:
        rate = np.clip(y.mean(0), 1e-4, 1 - 1e-4)
        theta0 = np.concatenate([np.zeros(d * g), np.log(rate / (1 - rate))])
    else:
        theta0 = np.concatenate([np.asarray(start[0]).ravel(), np.asarray(start[1])])

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        weight, bias = theta[: d * g].reshape(d, g), theta[d * g :]
        logits = (x @ weight.astype(dtype)).astype(np.float64) + bias  # (n, G)
        # Sum over genres of each genre's mean BCE: G independent objectives in one.
        loss = (np.logaddexp(0.0, logits) - y * logits).sum() / n
        loss += 0.5 * l2 * (weight**2).sum()
        resid = (1.0 / (1.0 + np.exp(-logits)) - y) / n  # (n, G)
        grad_w = (x.T @ resid.astype(dtype)).astype(np.float64) + l2 * weight  # (D, G)
        return float(loss), np.concatenate([grad_w.ravel(), resid.sum(0)])

    res = minimize(
        objective,
        theta0,
        jac=True,
        method="L-BFGS-B",
        options={"maxiter": max_iter, "gtol": tol, "ftol": tol * 1e-4},
    )
    return res.x[: d * g].reshape(d, g).copy(), res.x[d * g :].copy()


def predict_logistic(x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """``(N, D)`` -> ``(N, G)`` probabilities."""
    logits = np.asarray(x, dtype=np.float64) @ weight + bias
    return 1.0 / (1.0 + np.exp(-np.clip(logits, -50, 50)))


def linear_probe_probabilities(
    features,
    modalities: Sequence[str],
    labels: np.ndarray,
    train_idx: np.ndarray,
    val_idx: np.ndarray,
    l2_grid: Sequence[float] = L2_GRID,
) -> tuple[np.ndarray, dict]:
    """Fit the probe on ``train_idx`` (rows with a genre and one of ``modalities``), pick
    ``l2`` by validation macro AP, return ``(N, G)`` probabilities for every catalog row and
    ``{"l2", "val_map", "n_train"}``."""
    x, blocks = probe_inputs(features, modalities)
    present = np.stack([np.asarray(getattr(features, f"has_{m}"), bool) for m in modalities], 1)
    usable = present.any(1) & (labels.sum(1) > 0)
    train_idx = np.asarray(train_idx)[usable[train_idx]]
    val_idx = np.asarray(val_idx)[usable[val_idx]]
    if len(train_idx) < 2 or len(val_idx) < 1:
        raise ValueError(
            f"linear probe on {modalities}: {len(train_idx)} training and {len(val_idx)} "
            "validation items have a genre and the modality; need at least 2 and 1"
        )
    z = standardize(x, present, train_idx, blocks)
    best, previous = None, None
    for l2 in l2_grid:
        weight, bias = fit_logistic(z[train_idx], labels[train_idx], l2, start=previous)
        previous = (weight, bias)
        val_map = macro_average_precision(
            labels[val_idx], predict_logistic(z[val_idx], weight, bias)
        )
        if best is None or val_map > best[0] + 1e-9:
            best = (val_map, l2, weight, bias)
    val_map, l2, weight, bias = best
    probs = predict_logistic(z, weight, bias).astype(np.float32)
    return probs, {"l2": float(l2), "val_map": float(val_map), "n_train": int(len(train_idx))}

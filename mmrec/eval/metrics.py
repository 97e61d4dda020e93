"""Evaluation metrics, each tested against hand-computed values on tiny arrays.

Sections: multi-label classification (genre prediction, Table 5.1); ranking metrics follow.
"""

from __future__ import annotations

import numpy as np

# ============================================================================= classification
# Multi-label genre prediction. ``y_true`` and ``y_pred`` are (N, G) arrays of 0/1 (or bool):
# row = item, column = genre.


def _binary_pair(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(y_true)
    p = np.asarray(y_pred)
    if t.ndim != 2 or t.shape != p.shape:
        raise ValueError(f"y_true {t.shape} and y_pred {p.shape} must be equal (N, G) arrays")
    for name, arr in (("y_true", t), ("y_pred", p)):
        if not np.isin(arr, (0, 1)).all():
            raise ValueError(f"{name} must hold only 0/1 values")
    return t.astype(bool), p.astype(bool)


def subset_accuracy(y_true, y_pred) -> float:
    """Share of items whose predicted genre set equals the true set exactly (strictest)."""
    t, p = _binary_pair(y_true, y_pred)
    return float((t == p).all(1).mean()) if len(t) else float("nan")


def hamming_accuracy(y_true, y_pred) -> float:
    """Share of (item, genre) cells predicted correctly = 1 - Hamming loss."""
    t, p = _binary_pair(y_true, y_pred)
    return float((t == p).mean()) if t.size else float("nan")


def _safe_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    # 0/0 -> 0 (nothing predicted / nothing to find counts as a miss, as in scikit-learn).
    return np.divide(num, den, out=np.zeros_like(num), where=den > 0)


def eligible_genres(y_true, min_positives: int = 1) -> np.ndarray:
    """``(G,)`` bool: genres with at least ``min_positives`` positive items in ``y_true (N, G)``.

    The macro averages of the modality table count only these genres: a genre with a handful
    of positives gets an F1 of 0 or 1 by luck and would swing the mean (the rule is stated in
    every report).
    """
    t = np.asarray(y_true)
    if t.ndim != 2:
        raise ValueError(f"y_true must be an (N, G) array, got shape {t.shape}")
    return t.astype(bool).sum(0) >= max(int(min_positives), 1)


def _genre_mask(genres, n_genres: int) -> np.ndarray:
    if genres is None:
        return np.ones(n_genres, dtype=bool)
    mask = np.asarray(genres, dtype=bool)
    if mask.shape != (n_genres,):
        raise ValueError(f"genres mask has shape {mask.shape}; expected ({n_genres},)")
    return mask


def precision_recall_f1(
    y_true, y_pred, average: str = "micro", genres=None
) -> tuple[float, float, float]:
    """Multi-label precision, recall and F1.

    ``average="micro"`` pools true/false positives over every (item, genre) cell, so frequent
    genres weigh more. ``average="macro"`` computes P/R/F1 per genre and averages them with
    equal weight per genre, over the genres that occur at least once in ``y_true`` (recall of a
    genre with no true items is undefined; counting it as 0 would punish a model for the
    split's luck) and, when given, are set in the ``genres (G,)`` bool mask (see
    :func:`eligible_genres`). Macro F1 is the mean of per-genre F1s, not F1 of the mean P and R.
    Micro always pools every genre.
    """
    t, p = _binary_pair(y_true, y_pred)
    mask = _genre_mask(genres, t.shape[1])
    tp = (t & p).sum(0)  # (G,)
    fp = (~t & p).sum(0)  # (G,)
    fn = (t & ~p).sum(0)  # (G,)
    if average == "micro":
        tp_s, fp_s, fn_s = tp.sum(), fp.sum(), fn.sum()
        precision = float(_safe_div(tp_s, tp_s + fp_s))
        recall = float(_safe_div(tp_s, tp_s + fn_s))
        f1 = float(_safe_div(2 * tp_s, 2 * tp_s + fp_s + fn_s))
        return precision, recall, f1
    if average == "macro":
        occurs = ((tp + fn) > 0) & mask
        if not occurs.any():
            return float("nan"), float("nan"), float("nan")
        precision = _safe_div(tp, tp + fp)[occurs]
        recall = _safe_div(tp, tp + fn)[occurs]
        f1 = _safe_div(2 * tp, 2 * tp + fp + fn)[occurs]
        return float(precision.mean()), float(recall.mean()), float(f1.mean())
    raise ValueError(f"average must be 'micro' or 'macro', got {average!r}")


def multilabel_report(y_true, y_pred, genres=None) -> dict[str, float]:
    """All classification numbers of Table 5.1 for one prediction (macro over ``genres``)."""
    p_mi, r_mi, f_mi = precision_recall_f1(y_true, y_pred, "micro")
    p_ma, r_ma, f_ma = precision_recall_f1(y_true, y_pred, "macro", genres)
    return {
        "subset_accuracy": subset_accuracy(y_true, y_pred),
        "hamming_accuracy": hamming_accuracy(y_true, y_pred),
        "precision_micro": p_mi,
        "recall_micro": r_mi,
        "f1_micro": f_mi,
        "precision_macro": p_ma,
        "recall_macro": r_ma,
        "f1_macro": f_ma,
    }


def threshold_predictions(probs, threshold, at_least_one: bool = True) -> np.ndarray:
    """``(N, G)`` probabilities -> 0/1 predictions at ``threshold`` (a float, or ``(G,)`` one
    threshold per genre).

    With ``at_least_one`` every item also gets its most probable genre: every catalog movie
    has at least one genre, so an empty prediction is always wrong.
    """
    probs = np.asarray(probs, dtype=np.float64)
    th = np.asarray(threshold, dtype=np.float64)
    if th.ndim not in (0, 1) or (th.ndim == 1 and th.shape != probs.shape[1:]):
        raise ValueError(
            f"threshold must be a number or one per genre ({probs.shape[1]},), got {th.shape}"
        )
    pred = probs >= th
    if at_least_one and probs.shape[1] > 0 and len(probs):
        pred[np.arange(len(probs)), probs.argmax(1)] = True
    return pred.astype(np.int8)


THRESHOLD_GRID = np.round(np.arange(0.05, 0.951, 0.05), 2)  # one global threshold
GENRE_THRESHOLD_GRID = np.round(np.arange(0.02, 0.981, 0.02), 2)  # per-genre thresholds


def best_threshold(y_true, probs, grid=None, at_least_one: bool = True) -> float:
    """The threshold on ``grid`` (default 0.05..0.95) with the highest micro F1 on the given
    (validation) items; ties go to the threshold nearest 0.5."""
    grid = THRESHOLD_GRID if grid is None else np.asarray(grid)
    scores = [
        precision_recall_f1(y_true, threshold_predictions(probs, th, at_least_one), "micro")[2]
        for th in grid
    ]
    order = np.lexsort((np.abs(grid - 0.5), -np.round(scores, 9)))
    return float(grid[order[0]])


# A genre's threshold may predict it for at most this many times as many validation films as
# have it (issue 18). Chosen by inner 3-fold cross-validation on the non-test part of the real
# table's seed-0 / fold-0 split, among no cap and 1, 1.25, 1.5, 2, 3, by the mean of micro and
# macro F1 over every network and probe row (README "Real benchmark").
PREDICTION_CAP = 1.5


def genre_thresholds(
    y_true,
    probs,
    grid=None,
    min_positives: int = 5,
    at_least_one: bool = True,
    max_predicted: float | None = PREDICTION_CAP,
) -> np.ndarray:
    """``(G,)`` per-genre thresholds chosen on the given (validation) items.

    Genre g gets the threshold on ``grid`` (default 0.02..0.98) that maximises its own F1 on
    these items; ties go to the threshold nearest 0.5. With ``at_least_one`` each item's most
    probable genre is predicted whatever the thresholds (as :func:`threshold_predictions`
    does), and that is accounted for exactly: the forced cells do not depend on any
    threshold, so each genre's F1 depends on its own threshold alone. A genre with fewer than
    ``min_positives`` positive items here gets the global micro-F1 threshold
    (:func:`best_threshold`) instead: its own F1 curve would be noise.

    ``max_predicted``: only thresholds that predict the genre for at most ``max_predicted``
    times as many of these items as have it (forced cells included) are candidates; if none
    does, the highest grid value. Without the cap, a genre the scores barely separate has its
    F1 maximised by predicting it for nearly every item (F1 = 2p / (1 + p) at base rate p
    beats any cut of a weak ranking): on the real posters' development folds
    (``tools/modality_dev.py``) that left the image-only network 6.8 micro F1 below its probe
    (+0.3 with the cap). ``None`` switches the cap off.
    """
    t = np.asarray(y_true).astype(bool)
    p = np.asarray(probs, dtype=np.float64)
    if t.shape != p.shape or t.ndim != 2:
        raise ValueError(f"y_true {t.shape} and probs {p.shape} must be equal (N, G) arrays")
    grid = GENRE_THRESHOLD_GRID if grid is None else np.asarray(grid, dtype=np.float64)
    n_genres = t.shape[1]
    if len(t) == 0:
        return np.full(n_genres, 0.5)
    forced = np.zeros_like(t)
    if at_least_one and n_genres:
        forced[np.arange(len(p)), p.argmax(1)] = True
    pred = (p[None, :, :] >= grid[:, None, None]) | forced[None]  # (K, N, G)
    tp = (pred & t[None]).sum(1)  # (K, G)
    fp = (pred & ~t[None]).sum(1)  # (K, G)
    fn = (~pred & t[None]).sum(1)  # (K, G)
    f1 = _safe_div(2 * tp, 2 * tp + fp + fn)  # (K, G)
    allowed = np.ones_like(f1, dtype=bool)  # (K, G)
    if max_predicted is not None:
        allowed = (tp + fp) <= float(max_predicted) * t.sum(0)
    out = np.empty(n_genres)
    for g in range(n_genres):
        if not allowed[:, g].any():
            out[g] = grid.max()
            continue
        score = np.where(allowed[:, g], np.round(f1[:, g], 9), -1.0)
        order = np.lexsort((np.abs(grid - 0.5), -score))
        out[g] = grid[order[0]]
    few = t.sum(0) < max(int(min_positives), 1)
    if few.any():
        out[few] = best_threshold(t.astype(np.int8), p, at_least_one=at_least_one)
    return out


def average_precision(labels, scores) -> float:
    """Average precision of one binary label (area under the step precision-recall curve, as
    scikit-learn's ``average_precision_score``): NaN when there is no positive."""
    y = np.asarray(labels).astype(bool).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    n_pos = int(y.sum())
    if n_pos == 0:
        return float("nan")
    order = np.argsort(-s, kind="mergesort")
    y, s = y[order], s[order]
    # Tied scores form one threshold: take the counts at the last item of each tie group.
    last = np.r_[np.flatnonzero(np.diff(s) != 0), len(s) - 1]
    tp = np.cumsum(y)[last]
    precision = tp / (last + 1)
    recall = tp / n_pos
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def _macro(per_genre, y_true, probs, genres) -> float:
    """Mean of ``per_genre(labels (N,), scores (N,))`` over the genres of ``y_true (N, G)`` /
    ``probs (N, G)`` in the ``genres`` mask where it is defined (not NaN); NaN if none is."""
    t = np.asarray(y_true)
    p = np.asarray(probs, dtype=np.float64)
    if t.shape != p.shape or t.ndim != 2:
        raise ValueError(f"y_true {t.shape} and probs {p.shape} must be equal (N, G) arrays")
    mask = _genre_mask(genres, t.shape[1])
    values = [per_genre(t[:, g], p[:, g]) for g in range(t.shape[1]) if mask[g]]
    values = [v for v in values if not np.isnan(v)]
    return float(np.mean(values)) if values else float("nan")


def macro_average_precision(y_true, probs, genres=None) -> float:
    """Mean per-genre average precision over the genres with a positive (and in ``genres``):
    threshold-free, and unlike the loss it rewards ranking rare genres well, so it is what
    early stopping watches."""
    return _macro(average_precision, y_true, probs, genres)


def positive_class_weights(y_true, power: float = 0.5, max_weight: float = 10.0) -> np.ndarray:
    """``(G,)`` weights of the positive term of each genre's binary cross-entropy.

    ``(negatives / positives) ** power`` clipped to ``[1, max_weight]``: ``power=1`` balances
    the two classes of each genre fully, ``0.5`` half-way on a log scale (full balancing
    over-predicts rare genres and hurts micro F1), ``0`` switches weighting off. A genre with
    no positive gets 1 (there is nothing to up-weight).
    """
    t = np.asarray(y_true, dtype=np.float64)
    if t.ndim != 2:
        raise ValueError(f"y_true must be an (N, G) array, got shape {t.shape}")
    if max_weight < 1:
        raise ValueError(f"max_weight must be >= 1, got {max_weight}")
    pos = t.sum(0)
    neg = len(t) - pos
    ratio = np.divide(neg, pos, out=np.ones_like(pos), where=pos > 0)
    return np.clip(ratio ** float(power), 1.0, float(max_weight))


def roc_auc(labels, scores) -> float:
    """Area under the ROC curve of one binary label: the chance that a random positive scores
    above a random negative (ties count half). NaN when only one class is present."""
    y = np.asarray(labels).astype(bool).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    from scipy.stats import rankdata

    ranks = rankdata(s)  # average ranks for ties
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def macro_roc_auc(y_true, probs, genres=None) -> float:
    """Mean per-genre ROC-AUC over genres with both classes present (and in the ``genres``
    mask when given): threshold-free, so it shows what the scores rank before any decision
    rule is applied."""
    return _macro(roc_auc, y_true, probs, genres)


def resample_counts(idx, n_items: int) -> np.ndarray:
    """``(B, n)`` index arrays of B resamples -> ``(B, n_items)`` float64 counts: how often each
    item is drawn in each resample. A metric with these as item weights equals the metric on
    the resampled rows, so a bootstrap never has to copy the (N, G) arrays B times."""
    idx = np.atleast_2d(np.asarray(idx, dtype=np.int64))
    offsets = np.arange(len(idx), dtype=np.int64)[:, None] * n_items
    flat = np.bincount((idx + offsets).ravel(), minlength=len(idx) * n_items)
    return flat.reshape(len(idx), n_items).astype(np.float64)


def weighted_classification_metrics(
    y_true, y_pred, scores, weights, genres=None
) -> dict[str, np.ndarray]:
    """F1 (micro, macro), subset accuracy and macro ROC-AUC under ``(B, N)`` item weights.

    One value per weight row, shape ``(B,)``. With the counts of :func:`resample_counts` as
    weights each value equals :func:`precision_recall_f1`, :func:`subset_accuracy` and
    :func:`macro_roc_auc` on the resampled items (same conventions: macro over the genres
    that occur among the weighted items, 0/0 -> 0, AUC ties count half and a genre with one
    class is skipped), in a few matrix products instead of B Python-level metric calls.
    ``genres (G,)`` bool restricts the macro averages as in :func:`precision_recall_f1`.
    """
    t, p = _binary_pair(y_true, y_pred)  # (N, G) bool
    mask = _genre_mask(genres, t.shape[1])
    s = np.asarray(scores, dtype=np.float64)
    w = np.atleast_2d(np.asarray(weights, dtype=np.float64))  # (B, N)
    if s.shape != t.shape or w.shape[1] != len(t):
        raise ValueError(f"y_true {t.shape}, scores {s.shape}, weights {w.shape} do not match")
    tp = w @ (t & p)  # (B, G) weighted cell counts
    fp = w @ (~t & p)  # (B, G)
    fn = w @ (t & ~p)  # (B, G)
    tp_s, fp_s, fn_s = tp.sum(1), fp.sum(1), fn.sum(1)  # (B,)
    occurs = ((tp + fn) > 0) & mask  # (B, G) genre present among the weighted items
    f1_genre = _safe_div(2 * tp, 2 * tp + fp + fn)  # (B, G)
    n_occurs = occurs.sum(1)
    f1_macro = np.full(len(w), np.nan)
    np.divide((f1_genre * occurs).sum(1), n_occurs, out=f1_macro, where=n_occurs > 0)
    total = w.sum(1)
    subset = np.full(len(w), np.nan)
    np.divide(w @ (t == p).all(1), total, out=subset, where=total > 0)
    w_items = np.ascontiguousarray(w.T)  # (N, B): row gathers per genre are contiguous
    aucs = np.stack(
        [
            _weighted_roc_auc(t[:, g], s[:, g], w_items) if mask[g] else np.full(len(w), np.nan)
            for g in range(t.shape[1])
        ],
        1,
    )
    n_auc = np.isfinite(aucs).sum(1)  # (B,) genres with both classes
    auc_macro = np.full(len(w), np.nan)
    np.divide(np.nansum(aucs, 1), n_auc, out=auc_macro, where=n_auc > 0)
    return {
        "f1_micro": _safe_div(2 * tp_s, 2 * tp_s + fp_s + fn_s),
        "f1_macro": f1_macro,
        "subset_accuracy": subset,
        "roc_auc_macro": auc_macro,
    }


def _weighted_roc_auc(labels: np.ndarray, scores: np.ndarray, w_items: np.ndarray) -> np.ndarray:
    """ROC-AUC of one genre under each weight column of ``w_items`` ``(N, B)``: ``(B,)``, NaN
    where a weighting leaves one class.

    Pair counting: AUC = sum over positives of weight x (weighted negatives scoring lower +
    half the tied ones) / (positive weight x negative weight), i.e. Mann-Whitney with average
    ranks, as :func:`roc_auc`. Negatives are sorted once; a cumulative sum of their weights,
    read at each positive's ``searchsorted`` positions, gives both counts for every weighting.
    """
    neg_order = np.flatnonzero(~labels)[np.argsort(scores[~labels], kind="stable")]
    neg_scores = scores[neg_order]  # ascending
    cum_neg = np.zeros((len(neg_order) + 1, w_items.shape[1]))  # (Nn + 1, B)
    np.cumsum(w_items[neg_order], axis=0, out=cum_neg[1:])
    pos_scores = scores[labels]
    below = cum_neg[np.searchsorted(neg_scores, pos_scores, "left")]  # (P, B) strictly lower
    not_above = cum_neg[np.searchsorted(neg_scores, pos_scores, "right")]  # (P, B) lower or tied
    w_pos = w_items[labels]  # (P, B)
    num = (w_pos * (below + not_above)).sum(0) / 2
    den = w_pos.sum(0) * cum_neg[-1]
    out = np.full(w_items.shape[1], np.nan)
    np.divide(num, den, out=out, where=den > 0)
    return out


# ============================================================================= ranking
# Ranking metrics (owned by the policy/ranking evaluation). Conventions: ``ranked`` is a list
# or array of item ids/rows best first; ``relevant`` is the set of held-out positives.
# NDCG uses binary gains and log2(rank + 1) discounts; the ideal DCG places min(k, |relevant|)
# hits on top. Recall@k divides by |relevant| (RecBole's convention), so a user with more
# positives than k cannot reach 1.


def dcg_at_k(ranked, relevant, k: int) -> float:
    """Binary-gain DCG of the first ``k`` entries of ``ranked``."""
    relevant = set(np.asarray(list(relevant)).tolist())
    gains = np.array([1.0 if x in relevant else 0.0 for x in np.asarray(ranked)[:k].tolist()])
    return float((gains / np.log2(np.arange(2, len(gains) + 2))).sum())


def ndcg_at_k(ranked, relevant, k: int) -> float:
    """DCG@k / ideal DCG@k; 0.0 when there is nothing relevant (such users are usually skipped)."""
    n_rel = min(len(set(np.asarray(list(relevant)).tolist())), k)
    if n_rel == 0:
        return 0.0
    ideal = float((1.0 / np.log2(np.arange(2, n_rel + 2))).sum())
    return dcg_at_k(ranked, relevant, k) / ideal


def recall_at_k(ranked, relevant, k: int) -> float:
    """Share of the relevant items found in the first ``k`` entries (0.0 when none relevant)."""
    relevant = set(np.asarray(list(relevant)).tolist())
    if not relevant:
        return 0.0
    hits = sum(1 for x in np.asarray(ranked)[:k].tolist() if x in relevant)
    return hits / len(relevant)


def top_k(scores, k: int, exclude=None) -> np.ndarray:
    """Indices of the ``k`` highest ``scores`` (best first), never any index in ``exclude``.

    Ties break towards the lower index, so results are deterministic.
    """
    scores = np.asarray(scores, dtype=np.float64).copy()
    if exclude is not None and len(exclude):
        scores[np.asarray(list(exclude), dtype=np.int64)] = -np.inf
    k = min(k, int(np.isfinite(scores).sum()))
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    part = np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.arange(len(scores))
    order = np.lexsort((part, -scores[part]))
    return part[order].astype(np.int64)


def hit_rate(true_ratings, threshold: float = 4.0) -> float:
    """Share of recommendations whose TRUE rating reaches ``threshold``."""
    values = np.asarray(true_ratings, dtype=np.float64)
    return float((values >= threshold).mean()) if values.size else 0.0


def catalog_coverage(recommendations, n_items: int) -> float:
    """Distinct items recommended, over all lists, divided by the catalog size."""
    if n_items <= 0:
        raise ValueError("catalog_coverage: n_items must be positive")
    seen: set[int] = set()
    for rec in recommendations:
        seen.update(np.asarray(rec).ravel().tolist())
    return len(seen) / n_items


def mean_ci(values, z: float = 1.96) -> tuple[float, float]:
    """Mean and the half-width of its normal-approximation 95% confidence interval."""
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        return float("nan"), float("nan")
    if v.size == 1:
        return float(v[0]), float("nan")
    return float(v.mean()), float(z * v.std(ddof=1) / np.sqrt(v.size))

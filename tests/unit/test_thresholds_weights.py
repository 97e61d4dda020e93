"""Per-genre thresholds, class weights, average precision, the macro genre rule and the linear
probe, on hand-made arrays (issue 18)."""

import numpy as np
import pytest
import torch

from mmrec.config import FusionConfig
from mmrec.eval.metrics import (
    average_precision,
    eligible_genres,
    genre_thresholds,
    macro_average_precision,
    macro_roc_auc,
    multilabel_report,
    positive_class_weights,
    precision_recall_f1,
    resample_counts,
    threshold_predictions,
    weighted_classification_metrics,
)
from mmrec.eval.probe import fit_logistic, linear_probe_probabilities, predict_logistic
from mmrec.models.train import class_weights

# ----------------------------------------------------------------------------- thresholds


def test_threshold_predictions_take_one_threshold_per_genre():
    probs = np.array([[0.9, 0.3, 0.25], [0.2, 0.1, 0.3]])
    pred = threshold_predictions(probs, np.array([0.5, 0.2, 0.28]), at_least_one=False)
    np.testing.assert_array_equal(pred, [[1, 1, 0], [0, 0, 1]])
    # each row's top genre is predicted even below its threshold (row 1: genre 2 at 0.3)
    pred = threshold_predictions(probs, np.array([0.5, 0.5, 0.4]))
    np.testing.assert_array_equal(pred, [[1, 0, 0], [0, 0, 1]])
    with pytest.raises(ValueError, match="one per genre"):
        threshold_predictions(probs, np.array([0.5, 0.5]))


def test_genre_thresholds_find_each_genres_own_cut():
    # genre 0: positives score 0.7-0.9, negatives 0.1-0.3 -> any cut in (0.3, 0.7]; nearest 0.5
    # genre 1 (rare, low scores): positives 0.2/0.25, negatives <= 0.1 -> a cut in (0.1, 0.2]
    y = np.array([[1, 0], [1, 1], [0, 1], [0, 0], [1, 0], [0, 0]])
    p = np.array([[0.9, 0.05], [0.8, 0.25], [0.1, 0.2], [0.3, 0.1], [0.7, 0.02], [0.2, 0.08]])
    th = genre_thresholds(y, p, min_positives=2, at_least_one=False)
    assert th[0] == pytest.approx(0.5)
    assert 0.1 < th[1] <= 0.2
    pred = threshold_predictions(p, th, at_least_one=False)
    np.testing.assert_array_equal(pred, y)  # both genres perfectly separated
    # one global threshold cannot separate both genres at once
    best_single = max(
        precision_recall_f1(y, threshold_predictions(p, t, False), "macro")[2]
        for t in np.arange(0.05, 0.951, 0.05)
    )
    assert precision_recall_f1(y, pred, "macro")[2] == 1.0 > best_single


def test_genre_thresholds_are_optimal_with_the_forced_top_genre():
    # Brute force: with each item's top genre always predicted, no other grid value gives a
    # genre a higher F1 than the chosen one (the forced cells do not move with thresholds).
    rng = np.random.default_rng(5)
    y = (rng.random((50, 4)) < 0.35).astype(int)
    p = np.round(np.clip(0.35 * y + rng.random(y.shape) * 0.65, 0, 1), 2)
    grid = np.round(np.arange(0.02, 0.981, 0.02), 2)
    for cap in (None, 1.5, 1.0):
        th = genre_thresholds(y, p, min_positives=1, max_predicted=cap)

        def genre_count_f1(g, t, th=th):
            trial = th.copy()
            trial[g] = t
            pred = threshold_predictions(p, trial)
            tp = (pred[:, g] & y[:, g]).sum()
            return pred[:, g].sum(), 2 * tp / (pred[:, g].sum() + y[:, g].sum())

        for g in range(4):
            # among the grid values that predict genre g at most cap x its positives
            allowed = [
                t for t in grid if cap is None or genre_count_f1(g, t)[0] <= cap * y[:, g].sum()
            ]
            assert th[g] in allowed
            best = max(genre_count_f1(g, t)[1] for t in allowed)
            assert genre_count_f1(g, th[g])[1] == pytest.approx(best)
    # the forced cell: an item whose top genre sits below every threshold still gets it
    pred = threshold_predictions(np.array([[0.01, 0.015]]), np.array([0.5, 0.5]))
    assert pred.tolist() == [[0, 1]]


def test_the_cap_stops_a_genre_without_signal_from_being_predicted_for_everyone():
    # Genre 0 is readable (positives score 0.7-0.9). Genre 1 has no signal: its 5 positives
    # score lowest. Its own F1 is best at the lowest threshold, predicting it for all 20
    # items (F1 = 2*5 / (2*5 + 15) = 0.4 beats every cut, which lose positives): the old
    # rule does that, and every negative becomes a false positive.
    y = np.zeros((20, 2), dtype=int)
    y[:8, 0] = 1
    y[:5, 1] = 1
    p = np.zeros((20, 2))
    p[:, 0] = np.where(y[:, 0] == 1, 0.8, 0.2) + np.linspace(-0.1, 0.1, 20)
    p[:, 1] = np.where(y[:, 1] == 1, 0.1, 0.3) + np.linspace(0.0, 0.05, 20)
    old = genre_thresholds(y, p, min_positives=1, at_least_one=False, max_predicted=None)
    new = genre_thresholds(y, p, min_positives=1, at_least_one=False)  # capped at 1.5x
    assert old[1] <= 0.1  # at or below every score of genre 1
    assert threshold_predictions(p, old, at_least_one=False)[:, 1].sum() == 20
    assert threshold_predictions(p, new, at_least_one=False)[:, 1].sum() <= 1.5 * 5
    # the readable genre keeps its cut (8 predictions for 8 positives, within the cap)
    assert new[0] == old[0]
    np.testing.assert_array_equal(threshold_predictions(p, new, False)[:, 0], y[:, 0])
    # micro F1 over both genres: the capped rule's 8 correct cells and no false positives
    # against the old rule's 13 correct cells and 15 false positives
    micro = {
        name: precision_recall_f1(y, threshold_predictions(p, th, False), "micro")[2]
        for name, th in (("old", old), ("new", new))
    }
    assert micro["new"] > micro["old"]
    # a genre whose forced top-genre cells alone exceed the cap gets the highest grid value
    forced = genre_thresholds(
        np.array([[1, 0], [0, 1], [0, 1], [0, 1]]),
        np.array([[0.9, 0.1], [0.8, 0.2], [0.7, 0.3], [0.6, 0.1]]),
        min_positives=1,
    )
    assert forced[0] == pytest.approx(0.98)


def test_genres_with_few_validation_positives_get_the_global_threshold():
    rng = np.random.default_rng(0)
    y = (rng.random((60, 3)) < 0.4).astype(int)
    y[:, 2] = 0
    y[:2, 2] = 1  # only two positives
    p = np.clip(0.3 * y + rng.random(y.shape) * 0.7, 0, 1)
    th = genre_thresholds(y, p, min_positives=5)
    from mmrec.eval.metrics import best_threshold

    assert th[2] == pytest.approx(best_threshold(y, p))
    assert genre_thresholds(y[:0], p[:0]).tolist() == [0.5, 0.5, 0.5]  # nothing to tune on


# ----------------------------------------------------------------------------- macro rule


def test_eligible_genres_and_macro_over_them_by_hand():
    y = np.array([[1, 0, 1], [1, 1, 0], [1, 0, 0], [0, 0, 1]])
    pred = np.array([[1, 0, 0], [1, 0, 0], [0, 0, 0], [0, 1, 1]])
    assert eligible_genres(y, 2).tolist() == [True, False, True]
    # per-genre F1: g0 tp=2 fn=1 -> 0.8; g1 tp=0 -> 0; g2 tp=1 fn=1 -> 2/3
    _, _, all_three = precision_recall_f1(y, pred, "macro")
    _, _, counted = precision_recall_f1(y, pred, "macro", eligible_genres(y, 2))
    assert all_three == pytest.approx((0.8 + 0 + 2 / 3) / 3)
    assert counted == pytest.approx((0.8 + 2 / 3) / 2)
    # micro pools every genre whatever the mask
    report = multilabel_report(y, pred, eligible_genres(y, 2))
    assert report["f1_micro"] == pytest.approx(precision_recall_f1(y, pred, "micro")[2])
    assert report["f1_macro"] == pytest.approx(counted)
    scores = pred * 0.5 + y * 0.4
    assert macro_roc_auc(y, scores, [True, False, False]) == pytest.approx(
        macro_roc_auc(y[:, :1], scores[:, :1])
    )


def test_weighted_metrics_honour_the_genre_mask():
    rng = np.random.default_rng(1)
    y = (rng.random((40, 4)) < 0.4).astype(int)
    y[0] = 1
    s = np.clip(0.4 * y + rng.random(y.shape) * 0.6, 0, 1)
    pred = threshold_predictions(s, 0.5)
    mask = np.array([True, False, True, True])
    idx = rng.integers(0, 40, size=(5, 40))
    w = weighted_classification_metrics(y, pred, s, resample_counts(idx, 40), mask)
    for b in range(5):
        rows = idx[b]
        assert w["f1_macro"][b] == pytest.approx(
            precision_recall_f1(y[rows], pred[rows], "macro", mask)[2]
        )
        assert w["roc_auc_macro"][b] == pytest.approx(macro_roc_auc(y[rows], s[rows], mask))


# ----------------------------------------------------------------------------- average precision


def test_average_precision_by_hand_and_against_scikit_learn():
    from sklearn.metrics import average_precision_score

    # ranking: pos (1/1), neg, pos (2/3): AP = (1 + 2/3) / 2
    assert average_precision([1, 0, 1, 0], [0.9, 0.8, 0.7, 0.1]) == pytest.approx(5 / 6)
    assert np.isnan(average_precision([0, 0], [0.3, 0.2]))
    rng = np.random.default_rng(2)
    y = (rng.random((80, 5)) < 0.3).astype(int)
    y[0] = 1
    s = np.round(rng.random(y.shape) * 0.6 + 0.4 * y, 1)  # rounded: many ties
    for g in range(5):
        assert average_precision(y[:, g], s[:, g]) == pytest.approx(
            average_precision_score(y[:, g], s[:, g])
        )
    assert macro_average_precision(y, s) == pytest.approx(
        average_precision_score(y, s, average="macro")
    )


# ----------------------------------------------------------------------------- class weights


def test_positive_class_weights_by_hand():
    # 4 items: genre 0 has 1 positive (3 neg), genre 1 has 2, genre 2 none, genre 3 all four
    y = np.array([[1, 1, 0, 1], [0, 1, 0, 1], [0, 0, 0, 1], [0, 0, 0, 1]])
    np.testing.assert_allclose(positive_class_weights(y, 1.0), [3, 1, 1, 1])
    np.testing.assert_allclose(positive_class_weights(y, 0.5), [np.sqrt(3), 1, 1, 1])
    np.testing.assert_allclose(positive_class_weights(y, 1.0, max_weight=2), [2, 1, 1, 1])
    np.testing.assert_allclose(positive_class_weights(y, 0.0), [1, 1, 1, 1])
    with pytest.raises(ValueError, match="max_weight"):
        positive_class_weights(y, 1.0, max_weight=0.5)


def test_class_weights_follow_the_config_and_enter_the_loss():
    from mmrec.models.fusion import FusionModel
    from mmrec.models.train import _forward_losses

    y = np.array([[1, 0], [0, 0], [0, 1], [0, 1]], np.float32)
    cfg = FusionConfig(class_weight_power=1.0, max_class_weight=10.0)
    np.testing.assert_allclose(class_weights(y, cfg), [3, 1])
    assert class_weights(y, FusionConfig(class_weight_power=0.0)) is None
    small = FusionConfig(text_dim=3, image_dim=2, hidden_dim=4, embed_dim=2, modalities=("text",))
    model = FusionModel(small, 2, init_seed=0).eval()
    batch = {
        "text": torch.randn(4, 3),
        "image": torch.zeros(4, 2),
        "audio": torch.zeros(4, 2, small.audio_dim),
        "labels": torch.as_tensor(y),
    }
    present = torch.tensor([[True, False, False]] * 4)
    pos_weight = torch.tensor([3.0, 1.0])
    with torch.no_grad():
        loss, emb = _forward_losses(model, batch, present, pos_weight)
        unweighted, _ = _forward_losses(model, batch, present, None)
    p = torch.sigmoid(model.genre_head(emb).detach())
    by_hand = -(pos_weight * y * torch.log(p) + (1 - torch.as_tensor(y)) * torch.log(1 - p))
    assert float(loss) == pytest.approx(float(by_hand.mean()), rel=1e-5)
    assert float(loss) > float(unweighted)  # the positive of genre 0 counts three times


# ----------------------------------------------------------------------------- linear probe


def test_probe_matches_scikit_learn_logistic_regression():
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(3)
    x = rng.normal(size=(120, 6))
    w_true = rng.normal(size=(6, 3))
    y = (x @ w_true + rng.normal(size=(120, 3)) > 0.3).astype(float)
    l2 = 0.05
    weight, bias = fit_logistic(x, y, l2, max_iter=10_000, tol=1e-10, dtype=np.float64)
    for g in range(3):
        ref = LogisticRegression(C=1 / (l2 * len(x)), tol=1e-10, max_iter=10_000).fit(x, y[:, g])
        np.testing.assert_allclose(weight[:, g], ref.coef_[0], atol=1e-4)
        assert bias[g] == pytest.approx(ref.intercept_[0], abs=1e-4)
        np.testing.assert_allclose(
            predict_logistic(x, weight, bias)[:, g], ref.predict_proba(x)[:, 1], atol=1e-5
        )


def test_probe_skips_items_without_the_modality_and_never_fits_on_validation():
    from types import SimpleNamespace

    rng = np.random.default_rng(4)
    n = 90
    labels = (rng.random((n, 2)) < 0.5).astype(np.float32)
    labels[labels.sum(1) == 0, 0] = 1
    image = (labels[:, :1] * 2 + rng.normal(size=(n, 4))).astype(np.float32)
    has = np.ones(n, bool)
    has[:10] = False
    image[:10] = np.nan  # missing rows may hold anything; they must not reach the fit
    feats = SimpleNamespace(image=image, has_image=has)
    train, val = np.arange(0, 60), np.arange(60, 90)
    probs, info = linear_probe_probabilities(feats, ("image",), labels, train, val)
    assert info["n_train"] == 50 and np.isfinite(probs[10:]).all()
    assert np.isfinite(probs).all()  # missing rows sit at the mean: the base rate
    # genre 0 is readable from the poster vector, genre 1 is not
    assert macro_average_precision(labels[val, :1], probs[val, :1]) > 0.8


def test_score_rows_applies_the_given_threshold_rule_per_fold():
    from mmrec.eval.modality import FoldOutput, score_rows

    rng = np.random.default_rng(6)
    y = (rng.random((40, 3)) < 0.4).astype(np.float32)
    y[y.sum(1) == 0, 0] = 1
    probs = np.clip(0.5 * y + 0.5 * rng.random(y.shape), 0, 1)
    folds = [
        FoldOutput(np.arange(0, 10), np.arange(20, 30), probs, {}),
        FoldOutput(np.arange(10, 20), np.arange(30, 40), probs, {}),
    ]
    scored = np.ones(40, bool)
    default, _ = score_rows(folds, y, scored)
    by_hand = np.concatenate(
        [
            threshold_predictions(probs[f.test], genre_thresholds(y[f.val], probs[f.val]))
            for f in folds
        ]
    )
    assert default["f1_micro"] == pytest.approx(precision_recall_f1(y[20:], by_hand, "micro")[2])
    # a rule that never clears a threshold: only each movie's top genre is predicted
    top_only, _ = score_rows(folds, y, scored, threshold_rule=lambda yv, pv: np.full(3, 2.0))
    forced = threshold_predictions(probs[20:], 2.0)
    assert forced.sum() == 20
    assert top_only["f1_micro"] == pytest.approx(precision_recall_f1(y[20:], forced, "micro")[2])
    assert top_only["thresholds"] == [[2.0, 2.0, 2.0]] * 2

"""Ranking metrics and the temporal split, against values computed by hand."""

import math

import numpy as np
import pandas as pd
import pytest

from mmrec.eval.metrics import (
    catalog_coverage,
    dcg_at_k,
    hit_rate,
    mean_ci,
    ndcg_at_k,
    recall_at_k,
    top_k,
)
from mmrec.eval.ranking import (
    folds_random,
    paired_margin,
    split_by_time,
    split_cold_items,
    split_random,
    split_thin_users,
    summarise,
    verdict,
    windows_by_time,
)


def test_dcg_and_ndcg_hand_computed():
    ranked = [7, 3, 9, 1]
    relevant = {3, 1, 42}  # 42 never ranked
    # hits at ranks 2 and 4: 1/log2(3) + 1/log2(5)
    dcg = 1 / math.log2(3) + 1 / math.log2(5)
    assert dcg_at_k(ranked, relevant, 4) == pytest.approx(dcg)
    ideal = 1 / math.log2(2) + 1 / math.log2(3) + 1 / math.log2(4)  # 3 relevant, k = 4
    assert ndcg_at_k(ranked, relevant, 4) == pytest.approx(dcg / ideal)
    # k = 2: only the hit at rank 2 counts; ideal has min(2, 3) = 2 hits
    assert ndcg_at_k(ranked, relevant, 2) == pytest.approx(
        (1 / math.log2(3)) / (1 + 1 / math.log2(3))
    )
    assert ndcg_at_k([1, 3], {1, 3}, 2) == pytest.approx(1.0)
    assert ndcg_at_k([5, 6], set(), 2) == 0.0


def test_recall_hand_computed():
    assert recall_at_k([7, 3, 9, 1], {3, 1, 42}, 4) == pytest.approx(2 / 3)
    assert recall_at_k([7, 3, 9, 1], {3, 1, 42}, 1) == 0.0
    assert recall_at_k([7, 3], {7}, 2) == 1.0
    assert recall_at_k([7, 3], set(), 2) == 0.0


def test_top_k_excludes_and_breaks_ties_by_index():
    scores = np.array([0.5, 0.9, 0.9, 0.1, 0.7])
    assert top_k(scores, 3).tolist() == [1, 2, 4]
    assert top_k(scores, 3, exclude=[1]).tolist() == [2, 4, 0]
    assert top_k(scores, 10, exclude=[0, 1, 2]).tolist() == [4, 3]
    assert top_k(scores, 0).tolist() == []


def test_coverage_hit_rate_and_ci():
    assert catalog_coverage([[0, 1], [1, 2], np.array([2])], 10) == pytest.approx(0.3)
    with pytest.raises(ValueError):
        catalog_coverage([[0]], 0)
    assert hit_rate([4.0, 3.5, 5.0, 4.2], 4.0) == pytest.approx(0.75)
    mean, half = mean_ci([1.0, 2.0, 3.0, 4.0])
    assert mean == pytest.approx(2.5)
    # sd (ddof=1) of 1..4 = 1.2910; 1.96 * 1.2910 / 2 = 1.2652
    assert half == pytest.approx(1.96 * np.std([1, 2, 3, 4], ddof=1) / 2)
    assert np.isnan(mean_ci([3.0])[1])


def test_split_by_time_holds_out_the_latest_ratings():
    ratings = pd.DataFrame(
        {
            "userId": [1] * 10 + [2] * 3,
            "movieId": list(range(10)) + [0, 1, 2],
            "rating": [4.0] * 13,
            "timestamp": [10, 9, 8, 7, 6, 5, 4, 3, 2, 1] + [1, 2, 3],
        }
    )
    train, test = split_by_time(ratings, 0.2)
    # user 1: 10 ratings -> the 2 latest (timestamps 10 and 9 = movies 0 and 1) held out
    assert sorted(test[test.userId == 1].movieId) == [0, 1]
    # user 2 has fewer than 5 ratings: all training
    assert (train.userId == 2).sum() == 3 and (test.userId == 2).sum() == 0
    assert len(train) + len(test) == len(ratings)
    with pytest.raises(ValueError):
        split_by_time(ratings, 1.0)


def _log(n_users=12, per_user=20, n_movies=50, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        films = rng.choice(n_movies, per_user - u, replace=False) + 1  # users of different sizes
        for t, m in enumerate(films):
            rows.append((u + 1, int(m), float(rng.integers(1, 11)) / 2, 1000 * u + t))
    return pd.DataFrame(rows, columns=["userId", "movieId", "rating", "timestamp"])


def test_split_random_holds_out_a_fifth_of_each_user_and_depends_on_the_seed():
    ratings = _log()
    train, test = split_random(ratings, 0.2, seed=3)
    assert len(train) + len(test) == len(ratings)
    assert not set(map(tuple, train[["userId", "movieId"]].values)) & set(
        map(tuple, test[["userId", "movieId"]].values)
    )
    for u, g in ratings.groupby("userId"):
        assert (test.userId == u).sum() == math.ceil(0.2 * len(g))
    again, _ = split_random(ratings, 0.2, seed=3)
    other, _ = split_random(ratings, 0.2, seed=4)
    assert again.equals(train) and not set(other.index) == set(train.index)
    # not the latest ratings: some held-out rating is older than some training one
    assert any(
        test[test.userId == u].timestamp.min() < train[train.userId == u].timestamp.max()
        for u in ratings.userId.unique()
    )


def _pairs(df):
    return set(map(tuple, df[["userId", "movieId"]].values))


def test_random_folds_are_disjoint_and_never_train_on_their_own_held_out_ratings():
    ratings = _log()
    folds = folds_random(ratings, 0.2, seed=3, n_splits=3)
    first, first_val = split_random(ratings, 0.2, seed=3)
    assert folds[0][0].equals(first) and folds[0][1].equals(first_val)  # fold 0 = the split
    vals = [val for _, val in folds]
    for rest, val in folds:
        assert len(rest) + len(val) == len(ratings)
        assert not _pairs(rest) & _pairs(val)  # no held-out rating in its fitting part
        for u, g in ratings.groupby("userId"):
            assert (val.userId == u).sum() == math.ceil(0.2 * len(g))
    for i in range(3):
        for j in range(i + 1, 3):
            assert not _pairs(vals[i]) & _pairs(vals[j])  # disjoint folds
    small = ratings[ratings.userId == 1].head(4)  # fewer than 5 ratings: never held out
    assert all(len(val) == 0 for _, val in folds_random(small, 0.2, 0, 3))
    with pytest.raises(ValueError, match="do not fit"):
        folds_random(ratings, 0.4, seed=0, n_splits=3)


def test_temporal_windows_step_back_in_time_and_fit_only_on_the_past():
    ratings = _log()
    wins = windows_by_time(ratings, 0.2, 3)
    first_rest, first_val = split_by_time(ratings, 0.2)
    assert wins[0][0].equals(first_rest) and wins[0][1].equals(first_val)
    for k, (rest, val) in enumerate(wins):
        assert not _pairs(rest) & _pairs(val)
        for u, g in val.groupby("userId"):  # each user's window is after all their "rest"
            assert g.timestamp.min() > rest[rest.userId == u].timestamp.max()
        if k:  # window k is before window k - 1, and its rest excludes both
            prev_rest, prev_val = wins[k - 1]
            assert _pairs(val) <= _pairs(prev_rest) and not _pairs(rest) & _pairs(prev_val)
            for u, g in val.groupby("userId"):
                assert g.timestamp.max() < prev_val[prev_val.userId == u].timestamp.min()


def test_cold_item_split_never_leaks_a_held_out_film_into_training():
    ratings = _log(n_users=30, per_user=40, n_movies=60, seed=1)
    for seed in range(5):
        train, test, cold = split_cold_items(ratings, 0.2, seed)
        assert len(cold) == round(0.2 * ratings.movieId.nunique())
        assert not train.movieId.isin(cold).any()  # no rating of a cold film in training
        assert test.movieId.isin(cold).all()  # every test rating is of a cold film
        # every rating of a cold film is in the test: nothing lost, nothing leaked
        assert (ratings.movieId.isin(cold)).sum() == len(test)
        assert len(train) + len(test) == len(ratings)


def test_thin_user_split_keeps_the_first_ratings_only():
    ratings = _log()
    train, test, thin = split_thin_users(ratings, 0.25, keep=5, seed=0)
    assert len(thin) == 3  # a quarter of the 12 users (all have > 5 ratings)
    for u in thin:
        kept = train[train.userId == u]
        assert len(kept) == 5
        assert kept.timestamp.max() < test[test.userId == u].timestamp.min()
    assert set(test.userId) == set(thin.tolist())
    assert len(train) + len(test) == len(ratings)


def test_summary_and_paired_margin_on_hand_made_arrays():
    a1 = {"users": np.array([1, 2, 3]), "ndcg": np.array([0.5, 0.2, 0.9]),
          "recall": np.array([1.0, 0.0, 0.5]), "lists": [[0, 1], [1, 2], [2, 3]]}  # fmt: skip
    a2 = {"users": np.array([3, 1, 2]), "ndcg": np.array([0.7, 0.3, 0.0]),
          "recall": np.array([0.5, 0.0, 0.0]), "lists": [[0], [4], [5]]}  # fmt: skip
    s = summarise([a1, a2], n_items=10, k=10)
    # per-user means over the two seeds: u1 0.4, u2 0.1, u3 0.8
    assert s["ndcg@10"]["mean"] == pytest.approx((0.4 + 0.1 + 0.8) / 3)
    assert s["ndcg@10"]["ci95"] == pytest.approx(
        1.96 * np.std([0.4, 0.1, 0.8], ddof=1) / np.sqrt(3)
    )
    assert s["coverage@10"] == pytest.approx((0.4 + 0.3) / 2)
    b = {"users": np.array([1, 2, 3]), "ndcg": np.array([0.3, 0.1, 0.8]),
         "recall": np.zeros(3), "lists": [[0]] * 3}  # fmt: skip
    m = paired_margin([a1], [b], k=10)
    assert m["mean"] == pytest.approx(0.4 / 3)  # differences 0.2, 0.1, 0.1
    assert m["ci95"] == pytest.approx(1.96 * np.std([0.2, 0.1, 0.1], ddof=1) / np.sqrt(3))
    assert m["verdict"].startswith("better")
    assert verdict(0.01, 0.02).startswith("tie") and verdict(-0.05, 0.02).startswith("worse")

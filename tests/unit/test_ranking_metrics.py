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
from mmrec.eval.ranking import split_by_time


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

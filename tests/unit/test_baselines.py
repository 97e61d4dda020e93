"""The collaborative and bandit baselines on hand-made matrices: EASE and item-kNN against their
closed forms, LinUCB's exploration bonus, sparse inputs, iALS against the exact least-squares
solve, and the hybrid ranker (EASE + learned residual, content path for unrated films).

Split from tests/unit/test_rl.py (the environment, state, DQN and simulator tests), which
keeps the rankers that need its simulated world.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from mmrec.rl.baselines import (
    EASERanker,
    IALSRanker,
    ItemKNNRanker,
    LinUCBRanker,
    history_rows,
    interaction_matrix,
)
from mmrec.rl.state import CatalogIndex, UserState


def tiny_index(n_items: int, genres=("A", "B")) -> CatalogIndex:
    gm = np.zeros((n_items, len(genres)), np.float32)
    gm[np.arange(n_items), np.arange(n_items) % len(genres)] = 1
    return CatalogIndex(
        movie_ids=np.arange(n_items) + 1,
        genres=list(genres),
        genre_matrix=gm,
        runtime=np.full(n_items, 100.0, np.float32),
        popularity=np.zeros(n_items, np.float32),
    )


def test_ease_closed_form_on_a_tiny_matrix():
    # Items 0/1 always co-occur, 2/3 always co-occur.
    rows = [(u, m) for u in range(6) for m in ((0, 1) if u < 3 else (2, 3))] + [(6, 0), (6, 2)]
    ratings = pd.DataFrame(rows, columns=["userId", "movieId"]).assign(
        movieId=lambda d: d.movieId + 1, rating=4.0
    )
    index = tiny_index(4)
    ease = EASERanker.fit(ratings, index, lam=1.0)
    X = np.zeros((7, 4))
    for u, m in rows:
        X[u, m] = 1
    P = np.linalg.inv(X.T @ X + np.eye(4))
    B = np.eye(4) - P / np.diag(P)
    np.fill_diagonal(B, 0)
    assert np.allclose(ease.B, B, atol=1e-5)
    scores = ease.score(UserState(9, [(1, 5.0)], []), np.arange(4))
    assert int(np.argmax(np.where(np.arange(4) == 0, -np.inf, scores))) == 1
    knn = ItemKNNRanker.fit(ratings, index, k=1)
    assert int(np.argmax(knn.score(UserState(9, [(3, 5.0)], []), np.array([0, 1, 3])))) == 2


def test_linucb_learns_from_feedback_and_explores():
    emb = np.array([[1, 0], [0.9, 0.1], [0, 1], [-1, 0]], np.float32)
    index = tiny_index(4)
    ratings = pd.DataFrame({"userId": [1, 1], "movieId": [1, 3], "rating": [3.0, 3.0]})
    lin = LinUCBRanker.fit(ratings, emb, index, alpha=0.0, ridge=1.0)
    liked = lin.score(UserState(5, [(1, 5.0), (1, 5.0)], []), np.arange(4))
    assert liked[1] > liked[2] and liked[1] > liked[3]  # similar to the liked movie wins
    disliked = lin.score(UserState(5, [(1, 0.5)], []), np.arange(4))
    assert disliked[1] < disliked[2]
    bold = LinUCBRanker.fit(ratings, emb, index, alpha=1.0, ridge=1.0)
    s0 = bold.score(UserState(5, [(1, 3.0)] * 5, []), np.arange(4))
    lin0 = LinUCBRanker.fit(ratings, emb, index, alpha=0.0, ridge=1.0).score(
        UserState(5, [(1, 3.0)] * 5, []), np.arange(4)
    )
    bonus = s0 - lin0
    assert bonus[2] > bonus[1]  # the unexplored direction carries the larger bonus


def _random_ratings(n_users=40, n_items=30, p=0.2, seed=0):
    rng = np.random.default_rng(seed)
    mask = rng.random((n_users, n_items)) < p
    mask[:, -1] = False  # the last movie is never rated
    u, m = np.nonzero(mask)
    return pd.DataFrame({"userId": u + 100, "movieId": m + 1, "rating": 4.0}), mask


def test_interaction_matrix_is_sparse_float32_and_counts_a_pair_once():
    ratings = pd.DataFrame({"userId": [5, 5, 7], "movieId": [1, 1, 2], "rating": [3.0, 4.0, 5.0]})
    X = interaction_matrix(ratings, tiny_index(3))
    assert sp.issparse(X) and X.dtype == np.float32 and X.shape == (2, 3)
    assert X.toarray().tolist() == [[1, 0, 0], [0, 1, 0]]


def test_sparse_ease_matches_the_dense_closed_form_and_skips_unrated_movies():
    ratings, mask = _random_ratings()
    index = tiny_index(mask.shape[1])
    ease = EASERanker.fit(ratings, index, lam=5.0)
    X = mask.astype(np.float64)
    P = np.linalg.inv(X.T @ X + 5.0 * np.eye(X.shape[1]))
    B = -P / np.diag(P)[None, :]
    np.fill_diagonal(B, 0.0)
    assert ease.B.dtype == np.float32 and ease.B.shape == (29, 29)  # the unrated movie is out
    hist = [(1, 5.0), (4, 3.0), (9, 4.0)]
    got = (
        ease.score(UserState(1, hist, []), np.arange(30))
        - ease.score(UserState(1, [], []), np.arange(30)) * 1e-6
    )
    want = B[[0, 3, 8]].sum(axis=0)
    assert np.allclose(got, want, atol=1e-4)


def _long_tailed_ratings(n_users=60, n_items=30, seed=2):
    """Each movie rated with its own probability (decreasing with the id, all distinct), so the
    most-rated movies are well defined; the last movie is never rated."""
    rng = np.random.default_rng(seed)
    p = np.linspace(0.7, 0.08, n_items)
    mask = rng.random((n_users, n_items)) < p[None, :]
    mask[:, -1] = False
    u, m = np.nonzero(mask)
    return pd.DataFrame({"userId": u + 100, "movieId": m + 1, "rating": 4.0}), mask


def test_capped_ease_keeps_the_most_rated_movies_and_scores_the_rest_as_ridge_on_them():
    ratings, mask = _long_tailed_ratings()
    index = tiny_index(mask.shape[1])
    cap, lam = 12, 5.0
    ease = EASERanker.fit(ratings, index, lam=lam, max_items=cap)
    counts = mask.sum(axis=0)
    rated = np.flatnonzero(counts > 0)
    head = np.sort(rated[np.argsort(-counts[rated], kind="stable")[:cap]])
    assert ease.items.tolist() == head.tolist() and ease.B.shape == (cap, cap)
    assert counts[ease.items].min() >= counts[ease.tail_items].max()  # the cap keeps the most rated
    assert sorted(ease.items.tolist() + ease.tail_items.tolist()) == rated.tolist()
    # The reference, densely in float64: EASE on the head; each tail movie j regressed on the head
    X = mask.astype(np.float64)
    Xh = X[:, head]
    P = np.linalg.inv(Xh.T @ Xh + lam * np.eye(cap))
    B = -P / np.diag(P)[None, :]
    np.fill_diagonal(B, 0.0)
    tail = ease.tail_items
    B_tail = P @ Xh.T @ X[:, tail]  # (cap, T): b_j = P X_h^T x_j
    assert np.allclose(ease.B, B, atol=1e-5)
    hist_rows = [int(head[0]), int(head[3]), int(tail[1]), int(head[3])]  # a tail movie, a repeat
    got = ease.history_scores(np.asarray(hist_rows))
    x = np.zeros(cap)
    for r in hist_rows:
        if r in head:
            x[np.searchsorted(head, r)] += 1  # the tail movie in the history is not an input
    assert np.allclose(got[head], x @ B, atol=1e-4)
    assert np.allclose(got[tail], x @ B_tail, atol=1e-4)
    assert np.all(got[tail] != 0) and got[-1] == 0  # every rated movie is ranked; unrated at 0


def test_sparse_gram_is_exactly_the_dense_co_rating_counts():
    from mmrec.rl.baselines import _dense_gram

    _, mask = _long_tailed_ratings(n_users=300, n_items=70, seed=5)
    X = sp.csc_matrix(mask.astype(np.float32))
    G = _dense_gram(X, block=16)  # blocks that do not divide M
    assert G.dtype == np.float32 and G.flags.f_contiguous
    assert np.array_equal(G, (mask.T.astype(np.int64) @ mask.astype(np.int64)).astype(np.float32))


def test_ease_cap_at_or_above_the_rated_movies_is_exactly_uncapped_ease():
    ratings, mask = _long_tailed_ratings()
    index = tiny_index(mask.shape[1])
    n_rated = int((mask.sum(axis=0) > 0).sum())
    full = EASERanker.fit(ratings, index, lam=5.0, max_items=None)
    hist = UserState(1, [(1, 5.0), (7, 3.0), (20, 4.0)], [])
    for cap in (n_rated, n_rated + 50):
        capped = EASERanker.fit(ratings, index, lam=5.0, max_items=cap)
        assert len(capped.tail_items) == 0 and np.array_equal(capped.B, full.B)
        assert np.array_equal(capped.items, full.items)
        assert np.array_equal(capped.score(hist, np.arange(30)), full.score(hist, np.arange(30)))


def test_capped_ease_ranks_a_tail_movie_by_its_co_raters():
    # Movies 0-3 are popular (the head at cap 4); tail movie 4 is rated only by fans of movie 0,
    # tail movie 5 only by fans of movie 2. A fan of 0 gets 4 above 5, and the reverse.
    rows = [(u, m) for u in range(40) for m in (0, 1, 2, 3) if (u + m) % 3]
    rows += [(u, 4) for u in range(0, 40, 4) if (u + 0) % 3] + [
        (u, 5) for u in range(1, 40, 4) if (u + 2) % 3
    ]
    ratings = pd.DataFrame(rows, columns=["userId", "movieId"]).assign(
        movieId=lambda d: d.movieId + 1, rating=4.0
    )
    index = tiny_index(6)
    ease = EASERanker.fit(ratings, index, lam=2.0, max_items=4)
    assert ease.items.tolist() == [0, 1, 2, 3] and ease.tail_items.tolist() == [4, 5]
    fan0 = ease.score(UserState(9, [(1, 5.0)], []), np.arange(6))
    fan2 = ease.score(UserState(9, [(3, 5.0)], []), np.arange(6))
    assert fan0[4] > fan0[5] and fan2[5] > fan2[4]


def test_capped_ease_survives_the_hybrid_checkpoint_arrays(tmp_path):
    from mmrec.rl.hybrid import ease_arrays, ease_from_arrays

    ratings, mask = _long_tailed_ratings()
    index = tiny_index(mask.shape[1])
    for cap in (12, None):
        ease = EASERanker.fit(ratings, index, lam=5.0, max_items=cap)
        np.savez(tmp_path / "bases.npz", **ease_arrays(ease))
        with np.load(tmp_path / "bases.npz") as z:
            back = ease_from_arrays(z, index)
        assert np.array_equal(back.tail_items, ease.tail_items)
        rows = np.array([0, 2, 5, 20])
        want, got = ease.history_scores(rows), back.history_scores(rows)
        assert np.allclose(got, want, atol=2e-3 * np.abs(want).max())  # B is stored as float16


def test_sparse_item_knn_keeps_the_top_k_cosines_of_the_dense_reference():
    ratings, mask = _random_ratings(seed=1)
    index = tiny_index(mask.shape[1])
    knn = ItemKNNRanker.fit(ratings, index, k=4, block=7)  # blocks that do not divide N
    X = mask.astype(np.float64)
    n = np.sqrt(X.sum(axis=0))
    sim = (X.T @ X) / np.maximum(np.outer(n, n), 1e-8)
    np.fill_diagonal(sim, 0.0)
    assert sp.issparse(knn.sim) and knn.sim.dtype == np.float32
    dense = knn.sim.toarray()
    for j in range(29):
        kept = np.flatnonzero(dense[j])
        assert len(kept) == 4
        assert np.allclose(dense[j, kept], sim[j, kept], atol=1e-6)
        assert dense[j, kept].min() >= np.sort(sim[j])[-4] - 1e-6  # exactly the 4 largest
    assert dense[29].sum() == 0 and dense[:, 29].sum() == 0


def test_ials_conjugate_gradient_matches_the_exact_least_squares_user_solve():
    ratings, mask = _random_ratings(seed=2)
    index = tiny_index(mask.shape[1])
    ials = IALSRanker.fit(ratings, index, factors=6, alpha=5.0, reg=1.0, iterations=10)
    Y = ials.item_factors.astype(np.float64)
    # One half-step with many CG steps equals the closed-form ridge solve of every user.
    R = interaction_matrix(ratings, index)
    U_cg = IALSRanker._solve_rows(
        R, ials.item_factors, np.zeros((R.shape[0], 6), np.float32), 5.0, 1.0, steps=30
    )
    for u in range(R.shape[0]):
        cols = R.indices[R.indptr[u] : R.indptr[u + 1]]
        A = Y.T @ Y + 5.0 * Y[cols].T @ Y[cols] + np.eye(6)
        exact = np.linalg.solve(A, 6.0 * Y[cols].sum(axis=0))
        assert np.allclose(U_cg[u], exact, atol=1e-3)
        assert np.allclose(ials.user_vector(cols), exact, atol=1e-4)
    assert np.allclose(Y[29], 0.0)  # nobody rated it: no collaborative vector
    # Fitted factors reconstruct who rated what better than chance.
    U = np.stack(
        [ials.user_vector(R.indices[R.indptr[u] : R.indptr[u + 1]]) for u in range(R.shape[0])]
    )
    pred = U @ Y.T
    assert pred[mask].mean() > pred[~mask].mean() + 0.2


def _hybrid_world(n_users=80, n_items=60, seed=0):
    """Users rate random films; each user's validation positives are the newest candidates."""
    from mmrec.config import HybridConfig

    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        for m in rng.choice(n_items - 5, 12, replace=False):  # the last 5 films: never rated
            rows.append((u + 1, int(m) + 1, float(rng.integers(2, 6)), 1_000_000 + u))
    ratings = pd.DataFrame(rows, columns=["userId", "movieId", "rating", "timestamp"])
    index = tiny_index(n_items)
    index.set_ratings(ratings)
    years = rng.integers(1950, 2020, n_items).astype(np.float64)
    emb = rng.standard_normal((n_items, 4)).astype(np.float32)
    cfg = HybridConfig(candidates=30, ease_lambda=10.0, knn_neighbours=10, ials_factors=4,
                       ials_iterations=4, hidden=16, epochs=40, lr=1e-2)  # fmt: skip
    return ratings, index, years, emb, cfg


def test_hybrid_starts_as_ease_and_learns_a_signal_ease_cannot_see():
    from mmrec.rl.hybrid import HybridRanker, train_residual

    ratings, index, years, emb, cfg = _hybrid_world()
    hyb = HybridRanker.fit_bases(ratings, emb, index, years, cfg)
    state = UserState(1, list(zip(ratings.movieId[:12], ratings.rating[:12])), [])
    rows, _ = history_rows(state, index)
    cand, base = hyb.candidates(rows)
    s = hyb.full_scores(state)
    # f = 0: the candidates keep EASE's order and outrank every other film
    assert np.all(np.diff(s[cand]) <= 1e-6) and s[cand].min() > np.delete(s, cand).max()
    assert np.all(s[index.popularity == 0] < -1000)  # never-rated films rank last...
    # Validation positives: each user's three newest candidates (release year), which EASE's
    # co-occurrence cannot know; the residual must find them.
    val = {}
    for u, g in ratings.groupby("userId"):
        c, _ = hyb.candidates(index.positions_lenient(g.movieId.to_numpy()))
        newest = c[np.argsort(-years[c])[:3]]
        val[int(u)] = index.movie_ids[newest].tolist()
    curve = train_residual(hyb, ratings, val, cfg)
    assert curve["users"] == 80
    assert curve["best_holdout_ndcg"] > curve["holdout_ndcg_ease"] + 0.2


def test_hybrid_content_path_ranks_unrated_films_by_mapped_content():
    from mmrec.rl.hybrid import ColdContentRanker, HybridRanker

    ratings, index, years, emb, cfg = _hybrid_world(seed=1)
    # Make the content carry the collaborative signal: an unrated film copies a rated one.
    ials = IALSRanker.fit(ratings, index, 4, cfg.ials_alpha, cfg.ials_reg, cfg.ials_iterations)
    emb[:55] = ials.item_factors[:55] / np.linalg.norm(
        ials.item_factors[:55], axis=1, keepdims=True
    )
    emb[55:] = emb[[0, 1, 2, 3, 4]]
    cold = ColdContentRanker(ials, emb, index, ridge=0.1)
    state = UserState(1, [(1, 5.0), (2, 5.0)], [])  # likes films 0 and 1 (rows)
    s = cold.score(state, np.arange(55, 60))
    u = ials.user_vector(np.array([0, 1]))
    want = ials.item_factors[:5] @ u  # what their rated twins score
    assert np.corrcoef(s, want)[0, 1] > 0.8
    # inside the hybrid the same path orders the never-rated films among themselves
    hyb = HybridRanker.fit_bases(ratings, emb, index, years, cfg)
    full = hyb.full_scores(state)
    assert (
        np.corrcoef(full[55:], hyb.cold_map[55:] @ hyb.ials.user_vector(np.array([0, 1])))[0, 1]
        > 0.99
    )


def test_hybrid_extra_inputs_read_the_most_recent_films_and_the_ratings():
    import dataclasses

    from mmrec.rl.hybrid import N_BASE, N_EXTRA, N_TIME, HybridRanker, _z

    ratings, index, years, emb, cfg = _hybrid_world()
    cfg = dataclasses.replace(cfg, recent=4)
    hyb = HybridRanker.fit_bases(ratings, emb, index, years, cfg)
    g = ratings[ratings.userId == 3]
    rows = index.positions_lenient(g.movieId.to_numpy())  # history order = time order
    r = g.rating.to_numpy(np.float32)
    cand, base = hyb.candidates(rows)
    S, _ = hyb.features(3, rows, r, cand, base)
    assert S.shape[1] == N_BASE + N_EXTRA + N_TIME + len(cfg.adjacency)
    # recency: EASE from the last 4 films only; shuffling the older films changes nothing
    want = _z(hyb.ease.history_scores(rows[-4:])[cand])
    np.testing.assert_allclose(S[:, N_BASE], want, atol=1e-5)
    older = np.random.default_rng(0).permutation(rows[:-4])
    S2, _ = hyb.features(3, np.concatenate([older, rows[-4:]]), r, cand, base)
    np.testing.assert_allclose(S2[:, N_BASE], S[:, N_BASE], atol=1e-6)
    # the rating-weighted EASE: flipping every rating around the mean flips its sign
    S3, _ = hyb.features(3, rows, 2 * r.mean() - r, cand, base)
    np.testing.assert_allclose(S3[:, N_BASE + 6], -S[:, N_BASE + 6], atol=1e-4)
    np.testing.assert_allclose(S[:, N_BASE + 3], base[cand], atol=1e-6)  # raw EASE
    legacy = HybridRanker.fit_bases(
        ratings,
        emb,
        index,
        years,
        dataclasses.replace(cfg, extra_features=False, time_features=False),
    )
    assert legacy.features(3, rows, r, cand, base)[0].shape == (len(cand), N_BASE)


def test_time_windows_and_sequence_neighbours_on_hand_made_times():
    from mmrec.rl.hybrid import RatingTimes, adjacency, merged_windows

    s, e = merged_windows(np.array([0, 5, 100, 104, 300]), 3)
    assert s.tolist() == [-3, 97, 297] and e.tolist() == [8, 107, 303]
    df = pd.DataFrame({"userId": [1, 1, 1, 2, 2], "movieId": [1, 2, 3, 1, 2], "rating": 4.0,
                       "timestamp": [0, 10, 5000, 20, 30]})  # fmt: skip
    index = tiny_index(4)
    # sequence neighbours: user 1 rated 1 then 2 (then 3 after a pause), user 2 rated 1 then 2
    A = adjacency(df, index, 1, 3600).toarray()
    np.testing.assert_allclose([A[0, 1], A[1, 0]], 1.0, rtol=1e-6)  # 2 / sqrt(2 * 2)
    assert A[1, 2] == 0 and A[0, 0] == 0
    A2 = adjacency(df, index, 2, 1e9).toarray()  # no gap limit, two positions apart
    np.testing.assert_allclose(
        A2[[0, 1, 0], [1, 2, 2]], [2 / np.sqrt(9), 1 / np.sqrt(6), 1 / np.sqrt(6)]
    )
    tm = RatingTimes.build(df, index)
    c, n = tm.window_counts(np.array([0, 1, 2, 3]), np.array([0]), np.array([20]))
    assert c.tolist() == [2, 1, 0, 0] and n == 3  # movie 1 at 0 and 20, movie 2 at 10
    c, n = tm.window_counts(np.array([0, 2]), np.array([0, 4000]), np.array([15, 6000]))
    assert c.tolist() == [1, 1] and n == 3
    assert tm.user[1].tolist() == [0, 10, 5000] and tm.latest == 5000


def test_hybrid_time_inputs_read_the_users_active_window():
    import dataclasses

    from mmrec.rl.hybrid import N_BASE, N_EXTRA, N_TIME, HybridRanker, _z, adjacency

    ratings, index, years, emb, cfg = _hybrid_world()
    # user u rates its 12 films at 100 u + j seconds: users active 100 s apart
    ratings["timestamp"] = 100 * ratings.userId + ratings.groupby("userId").cumcount()
    cfg = dataclasses.replace(cfg, time_kernel_days=150 / 86400, adjacency=((2, 5.0),))
    hyb = HybridRanker.fit_bases(ratings, emb, index, years, cfg)
    u = 7
    g = ratings[ratings.userId == u]
    rows = index.positions_lenient(g.movieId.to_numpy())
    cand, base = hyb.candidates(rows)
    S, _ = hyb.features(u, rows, g.rating.to_numpy(np.float32), cand, base)
    assert S.shape == (len(cand), N_BASE + N_EXTRA + N_TIME + 1)
    T = S[:, N_BASE + N_EXTRA :]
    mid = index.movie_ids[cand]
    share = np.log((np.array([(ratings.movieId == m).sum() for m in mid]) + 1) / (len(ratings) + 1))
    # kernel: 150 s around user 7's ratings (700..711), cut at their last one: users 6 and 7
    inside = ratings[(ratings.timestamp >= 700 - 150) & (ratings.timestamp <= 711)]
    c = np.array([(inside.movieId == m).sum() for m in mid])
    np.testing.assert_allclose(
        T[:, 2], (np.log((c + 1) / (len(inside) + 1)) - share) / 3, atol=1e-5
    )
    np.testing.assert_allclose(T[:, 3], _z(np.log1p(c)), atol=1e-5)
    assert c.sum() > 0  # user 6 rated some of user 7's candidates
    # the active window 700..711 holds only user 7's own films: no candidate in it
    np.testing.assert_allclose(T[:, 0], (np.log(1 / 13) - share) / 3, atol=1e-5)
    # sequence neighbours of the history, one input per (window, gap)
    A = adjacency(ratings, index, 2, 5.0)
    assert T.shape[1] == 5
    np.testing.assert_allclose(T[:, 4], _z(A[rows].sum(axis=0).A1[cand]), atol=1e-5)
    # a user the ratings never saw (the app's) is active at the latest training rating
    new = hyb.features(10_000, rows, g.rating.to_numpy(np.float32), cand, base)[0]
    last = ratings[ratings.timestamp >= ratings.timestamp.max() - 150]
    c = np.array([(last.movieId == m).sum() for m in mid])
    np.testing.assert_allclose(new[:, N_BASE + N_EXTRA + 3], _z(np.log1p(c)), atol=1e-5)
    legacy = HybridRanker.fit_bases(
        ratings, emb, index, years, dataclasses.replace(cfg, time_features=False)
    )
    assert legacy.features(u, rows, g.rating.to_numpy(np.float32), cand, base)[0].shape[1] == (
        N_BASE + N_EXTRA
    )

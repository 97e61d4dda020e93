"""Issue 12's learning side: the Bayesian live layer, onboarding, stable lists, evaluate live.

Everything runs on the tiny built catalog (tests/conftest.py) through the real service.
"""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest

from mmrec.config import LiveConfig
from mmrec.rl.online import (
    calibrated_fill,
    genre_distributions,
    genre_target,
    posterior,
    sherman_morrison,
    stable_slots,
)


def _service(cfg, db_path, **live):
    from mmrec.service import Recommender

    cfg = copy.deepcopy(cfg)
    cfg.paths.db_path = str(db_path)  # own database: the shared fixture stays untouched
    for key, value in live.items():
        setattr(cfg.live, key, value)
    return Recommender.from_config(cfg)


@pytest.fixture(scope="module")
def svc(tiny_built, tmp_path_factory):
    return _service(tiny_built, tmp_path_factory.mktemp("live") / "live.sqlite3")


def _all_scores(svc, uid) -> dict[int, float]:
    """Score of every film the user may still be shown (the ranking score, not Q)."""
    return {p.movie_id: p.score for p in svc.recommend(uid, k=len(svc._ids))}


# ----------------------------------------------------------------------------- pure parts


def test_posterior_rank_one_update_matches_the_closed_form():
    rng = np.random.default_rng(0)
    phi = np.concatenate([rng.normal(size=(30, 6)), np.ones((30, 1))], axis=1)
    cfg = LiveConfig(taste_precision=2.0, level_precision=1.0, genre_pseudo=0.0)
    rows, ratings = np.array([3, 7, 11]), np.array([4.5, 1.0, 3.0])
    before = posterior(phi, rows, ratings, np.zeros((2, 0, 7)), cfg, level=0.3)
    after = posterior(phi, np.r_[rows, 20], np.r_[ratings, 5.0], np.zeros((2, 0, 7)), cfg, 0.3)
    cov, mu = sherman_morrison(np.linalg.inv(before.precision), before.mu, phi[20], 1.0)
    np.testing.assert_allclose(mu, after.mu, atol=1e-10)
    np.testing.assert_allclose(cov, np.linalg.inv(after.precision), atol=1e-10)


def test_stable_slots_keep_places_fill_freed_and_swap_only_past_the_margin():
    score = np.array([9.0, 8.0, 7.0, 6.0, 5.0, 4.0, 3.0, 2.0])
    allowed = np.ones(8, dtype=bool)
    allowed[1] = False  # film 1 was just rated
    # on screen: 5, 1, 6 (slot order); outsiders by score: 0 (9), 2 (7), 3 (6), 4 (5), 7 (2)
    slots, info = stable_slots(score, allowed, [5, 1, 6], 3, margin=1.5)
    # slot 1 (rated) takes the best outsider (0); then 2 (7) beats 6 (3) by 4 > 1.5 -> swap;
    # 3 (6) vs 5 (4): 2 > 1.5 -> swap
    assert slots == [3, 0, 2] and info["freed"] == 1 and info["replaced"] == 2
    slots, info = stable_slots(score, allowed, [5, 1, 6], 3, margin=10.0)
    assert slots == [5, 0, 6] and info["replaced"] == 0  # nothing beats by 10: all stay


# ----------------------------------------------------------------------------- through the service


def test_sign_of_the_update_on_the_rated_films_neighbours(svc):
    """1 star lowers, 5 stars raises the scores of the rated film's nearest neighbours in fused
    space, for random users (random onboarding genre, 0-4 earlier random ratings) and films.

    A trial is one (user, film, rating); its sign is that of the mean score move of the film's
    3 nearest unrated neighbours. Per neighbour the sign can flip by "explaining away": when an
    earlier rating fell on a near-duplicate, the posterior credits the new rating to what tells
    the two films apart (the kernel phi_j' A^-1 phi_a turns negative). In this 40-film catalog
    random earlier ratings often land that close: about 86% of neighbours move the right way
    here (the floor below only guards against regressions); on the 2,000-movie demo a probe of
    the same loop had all 240 neighbours right.

    The trial floor depends on this tiny catalog's fused space: with the audio branch's old
    pooling (last_mean) 158 of 160 trials were right here, with the meanmax default (issue 15,
    trailer span) 148; on the 2,000-movie demo the same loop (40 trials) had 80/80 trials and
    240/240 neighbours right with either pooling. Hence 0.9, not 0.95.
    """
    rng = np.random.default_rng(12)
    ids = [int(m) for m in svc.catalog.movie_ids]
    right = total = trials_right = trials = 0
    for trial in range(80):
        genre = [str(rng.choice(svc.catalog.genres))]
        earlier = [
            (int(m), float(rng.integers(1, 11) / 2))
            for m in rng.choice(ids, size=int(rng.integers(0, 5)), replace=False)
        ]
        hist = {m for m, _ in earlier}
        film = int(rng.choice([m for m in ids if m not in hist]))
        neigh = [m for m, _t, _s in svc.neighbours(film, k=6) if m not in hist][:3]
        for stars in (1.0, 5.0):
            uid = svc.create_user(f"sign-{trial}-{stars}", liked_genres=genre)
            for m, r in earlier:
                svc.rate(uid, m, r)
            before = _all_scores(svc, uid)
            svc.rate(uid, film, stars)
            after = _all_scores(svc, uid)
            moves = np.array([after[m] - before[m] for m in neigh])
            sign = -1.0 if stars == 1.0 else 1.0
            right += int((sign * moves > 0).sum())
            total += len(moves)
            trials_right += int(sign * moves.mean() > 0)
            trials += 1
    assert trials == 160 and total >= 400
    assert trials_right / trials >= 0.9, f"right sign in {trials_right}/{trials} trials"
    assert right / total >= 0.80, f"right sign for {right}/{total} neighbours"


def test_updates_off_keeps_scores_at_the_prior(tiny_built, tmp_path):
    off = _service(tiny_built, tmp_path / "off.sqlite3", updates=False)
    uid = off.create_user("frozen", liked_genres=["Drama"])
    before = _all_scores(off, uid)
    film = next(iter(before))
    res = off.rate(uid, film, 5.0)
    after = _all_scores(off, uid)
    assert film not in after and res.telemetry["updates"] is False
    assert all(after[m] == pytest.approx(before[m]) for m in after)
    assert off.store.ratings(uid) == [(film, 5.0)]  # the rating itself is kept


def test_genre_target_counts_onboarding_and_liked_films_only():
    genres = np.array([[1, 0, 0], [0, 1, 0], [1, 1, 0], [0, 0, 1]], dtype=float)  # (N=4, G=3)
    dist = genre_distributions(genres)
    no_rows, no_ratings = np.zeros(0, dtype=int), np.zeros(0)
    # two ticked genres, nothing rated, no discovery: half and half
    t = genre_target(dist, np.array([1, 1, 0]), no_rows, no_ratings, discovery=0.0)
    assert np.allclose(t, [0.5, 0.5, 0.0])
    # a 1-star rating adds nothing; a 5-star rating adds its film's genres
    t1 = genre_target(dist, np.array([1, 1, 0]), np.array([3]), np.array([1.0]), 0.0)
    assert np.allclose(t1, t)
    t5 = genre_target(dist, np.array([1, 1, 0]), np.array([3]), np.array([5.0]), 0.0)
    assert np.allclose(t5, [1 / 3, 1 / 3, 1 / 3])
    # discovery: part of the mass goes to the catalog's mix, less as ratings accumulate
    catalog = dist.mean(axis=0)
    d0 = genre_target(dist, np.array([1, 0, 0]), no_rows, no_ratings, discovery=0.5)
    assert np.allclose(d0, 0.5 * np.array([1, 0, 0]) + 0.5 * catalog)  # 0.5 * 5 / (5 + 0)
    rows, stars = np.array([0, 0, 0, 0, 0]), np.full(5, 2.0)  # five ratings that add nothing
    d5 = genre_target(dist, np.array([1, 0, 0]), rows, stars, discovery=0.5)
    assert d5[2] < d0[2] and np.isclose(d5.sum(), 1.0)
    # no evidence at all: the catalog's mix
    assert np.allclose(genre_target(dist, np.zeros(3), no_rows, no_ratings, 0.0), catalog)


def test_calibrated_fill_moves_the_genre_mix_towards_the_target():
    rng = np.random.default_rng(0)
    n = 40
    genres = np.zeros((n, 2))
    genres[:20, 0] = 1  # films 0-19: genre A, scored higher than every B film
    genres[20:, 1] = 1
    score = np.concatenate([5 + rng.random(20), rng.random(20)])
    dist = genre_distributions(genres)
    cand = np.argsort(-score, kind="stable")
    plain = calibrated_fill(score, cand, [], 8, dist, np.array([0.5, 0.5]), weight=0.0)
    assert plain == [int(r) for r in cand[:8]]  # weight 0: the top 8 by score, all A
    cal = calibrated_fill(score, cand, [], 8, dist, np.array([0.5, 0.5]), weight=1000.0)
    a = sum(r < 20 for r in cal)
    assert a == 4, cal  # half and half
    # within each genre the best-scored films are the ones chosen
    assert sorted(r for r in cal if r < 20) == sorted(int(r) for r in cand[:4])
    # kept films count: with four A films kept, the four free slots go to B
    kept = [int(r) for r in cand[:4]]
    fill = calibrated_fill(score, cand[4:], kept, 4, dist, np.array([0.5, 0.5]), weight=1000.0)
    assert all(r >= 20 for r in fill), fill
    # through stable_slots: free slots are filled by the calibrated choice, kept films stay
    allowed = np.ones(n, dtype=bool)
    slots, info = stable_slots(score, allowed, kept, 8, 0.5, (dist, np.array([0.5, 0.5]), 1000.0))
    assert slots[:4] == kept and all(r >= 20 for r in slots[4:]) and info["replaced"] == 0


def test_hysteresis_swaps_pay_for_the_genre_mix_they_spoil():
    """A 5-star Sci-Fi rating lifted a Romance film in fused space past a kept Sci-Fi film: by
    score alone the swap happens and the list moves away from the mix the user asked for; on
    the calibrated objective the swap must also pay for the mix, so a Sci-Fi outsider that
    wins by less takes the place instead, or nothing moves."""
    genres = np.zeros((10, 2))
    genres[[0, 1, 2, 3, 8], 0] = 1  # Sci-Fi: 0-3 on the list, 8 outside
    genres[[4, 5, 6, 7, 9], 1] = 1  # Romance: 4-7 outside, 9 outside
    dist = genre_distributions(genres)
    score = np.array([5.0, 5.0, 5.0, 3.0, 0.0, 0.0, 0.0, 0.0, 3.6, 4.5])
    allowed = np.ones(10, dtype=bool)
    kept = [0, 1, 2, 3]
    sci_fi = np.array([1.0, 0.0])
    # by score: Romance film 9 (4.5) beats the weakest kept film 3 (3.0) by more than the margin
    slots, info = stable_slots(score, allowed, kept, 4, 0.5)
    assert info["swaps"] == [(3, 9)]
    # calibrated: 9 would spoil an all-Sci-Fi mix; Sci-Fi film 8 (3.6) wins by 0.6 > 0.5
    slots, info = stable_slots(score, allowed, kept, 4, 0.5, (dist, sci_fi, 30.0))
    assert info["swaps"] == [(3, 8)] and slots == [0, 1, 2, 8]
    # the ablation switch: calibrated fill, swaps on score alone
    slots, info = stable_slots(score, allowed, kept, 4, 0.5, (dist, sci_fi, 30.0), False)
    assert info["swaps"] == [(3, 9)]
    # a larger margin: nothing moves (no Romance film slips in instead)
    slots, info = stable_slots(score, allowed, kept, 4, 0.7, (dist, sci_fi, 30.0))
    assert info["swaps"] == [] and slots == kept
    # a target that wants Romance too: the Romance film's swap now pays for itself
    slots, info = stable_slots(score, allowed, kept, 4, 0.5, (dist, np.array([0.5, 0.5]), 30.0))
    assert info["swaps"] == [(3, 9)]


def test_two_genre_newcomers_see_both_genres(tiny_built, tmp_path):
    """Calibrated lists: newcomers who tick two genres see both on their first list (the less
    represented one in a larger share than with plain top-k)."""
    from mmrec.eval.live import two_genre_balance

    cal = _service(tiny_built, tmp_path / "cal.sqlite3", calibration=30.0, discovery=0.25)
    plain = _service(tiny_built, tmp_path / "plain.sqlite3", calibration=0.0)
    b_cal = two_genre_balance(cal, n=20, seed=4, k=6)
    b_plain = two_genre_balance(plain, n=20, seed=4, k=6)
    assert b_cal["mean"] >= 0.3, b_cal
    assert b_cal["mean"] > b_plain["mean"], (b_cal, b_plain)


def test_onboarding_share_of_single_genre_newcomers(svc):
    """Newcomers who pick one genre see it in >= 60% of their first picks (k = 6 on the tiny
    catalog: genres with >= 6 films)."""
    from mmrec.eval.live import onboarding_share

    share = onboarding_share(svc, n=30, seed=3, k=6)
    assert share["n"] == 30 and len(share["eligible_genres"]) >= 2
    assert share["mean"] >= 0.60, share


def test_liked_title_pulls_in_similar_films(svc):
    film = int(svc.catalog.movie_ids[5])
    near = [m for m, _t, _s in svc.neighbours(film, k=3)]
    plain = svc.create_user("no-title")
    liked = svc.create_user("one-title", liked_movies=[film])
    s0, s1 = _all_scores(svc, plain), _all_scores(svc, liked)
    assert all(s1[m] > s0[m] for m in near)


def test_stable_lists_median_replaced_and_slots(svc):
    """30 newcomers rate 3 films each from their 12-pick list: the rated card's slot takes a
    new film, the other picks mostly stay (median replaced <= 4 of 11), and the note says why."""
    rng = np.random.default_rng(5)
    replaced = []
    for i in range(30):
        uid = svc.create_user(f"stable-{i}", liked_genres=[str(rng.choice(svc.catalog.genres))])
        shown = [p.movie_id for p in svc.recommend(uid, k=12)]
        for _ in range(3):
            slot = int(rng.integers(len(shown)))
            res = svc.rate(uid, shown[slot], float(rng.integers(1, 11) / 2), previous=shown)
            now = [p.movie_id for p in res.picks]
            assert now[slot] != shown[slot]  # the rated card left its slot ...
            others = [m for j, m in enumerate(shown) if j != slot]
            moved = sum(1 for j, m in enumerate(shown) if j != slot and now[j] != m)
            assert moved == res.replaced == sum(1 for m in others if m not in now)
            assert res.note  # ... and the service says why the list changed (or not)
            replaced.append(res.replaced)
            shown = now
    assert float(np.median(replaced)) <= 4, replaced


def test_rate_without_previous_uses_the_list_it_returned_last(svc):
    uid = svc.create_user("no-previous")
    first = svc.rate(uid, int(svc.catalog.movie_ids[0]), 4.0, k=8)
    shown = [p.movie_id for p in first.picks]
    second = svc.rate(uid, shown[2], 2.0, k=8)
    now = [p.movie_id for p in second.picks]
    assert sum(1 for j, m in enumerate(shown) if j != 2 and now[j] == m) == 7 - second.replaced


def test_evaluate_live_smoke(tiny_built, tmp_path):
    from mmrec.eval.live import evaluate_live

    cfg = copy.deepcopy(tiny_built)
    cfg.env.episode_length = 12
    result = evaluate_live(
        cfg, seeds=(0, 1), n_users=3, out_dir=tmp_path, n_newcomers=4, log=lambda *_: None
    )
    saved = json.loads((tmp_path / "live.json").read_text())
    md = (tmp_path / "live.md").read_text()
    assert saved["protocol"]["sessions"] == 6 and "Live minus updates off" in md
    arms = result["arms"]
    assert set(arms) == {"live", "updates_off", "supervised", "popularity", "dqn_alone", "oracle"}
    for arm in arms.values():
        assert len(arm["per_step"]) == 12
        assert all(0.5 <= s["true"] <= 5.0 and 0.0 <= s["hit"] <= 1.0 for s in arm["per_step"])
    # the oracle knows the true ratings: nobody beats it on the same sessions
    best = arms["oracle"]["session_true"]["mean"]
    assert all(a["session_true"]["mean"] <= best + 1e-9 for a in arms.values())
    assert result["stability"]["ratings"] == 6 * 12
    share = result["stability"]["wrong_direction_share"]
    assert result["stability"]["direction_ratings"] > 0 and 0.0 <= share <= 1.0
    assert set(result["criteria"]) >= {"late_above_early", "live_beats_updates_off"}

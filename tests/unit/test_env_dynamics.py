"""The simulator's leak fixes and user dynamics (issue 14).

A tiny catalog (36 movies, 6 genres, 40 users) whose user model is a ``FittedUserModel`` with
known genre tastes, so the true ratings are known exactly. Every test runs in well under a
second.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from mmrec.config import Config, EnvConfig
from mmrec.data.catalog import load_catalog
from mmrec.rl.env import MovieRecEnv, pick_onboarding_genres, split_users
from mmrec.rl.simulator import FittedUserModel
from mmrec.rl.state import CatalogIndex

N_MOVIES, N_USERS, DIM = 36, 40, 8
GENRES = ["Action", "Comedy", "Drama", "Horror", "Romance", "Western"]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """(catalog, item_emb (N, D), user model whose taste is one weight per genre)."""
    rng = np.random.default_rng(1)
    root = tmp_path_factory.mktemp("dyncat")
    genre_of = np.arange(N_MOVIES) % len(GENRES)
    movie_ids = np.arange(1, N_MOVIES + 1) * 10
    pd.DataFrame(
        {
            "movieId": movie_ids,
            "title": [f"Film {i}" for i in range(N_MOVIES)],
            "year": 2000,
            "genres": [GENRES[g] for g in genre_of],
            "overview": "",
            "poster": "",
            "audio": "",
            "runtime": np.linspace(80, 160, N_MOVIES).round(),
        }
    ).to_csv(root / "movies.csv", index=False)
    item_vec = np.eye(len(GENRES), dtype=np.float32)[genre_of]  # (N, G): taste = genre
    user_f = rng.standard_normal((N_USERS, len(GENRES))).astype(np.float32) * 1.2
    model = FittedUserModel(
        movie_ids, np.arange(1, N_USERS + 1), 3.2, np.zeros(N_USERS), np.zeros(N_MOVIES),
        user_f, item_vec, np.full(N_USERS, 0.3),
    )  # fmt: skip
    rows = []
    for u in model.user_ids:
        items = rng.choice(movie_ids, 10, replace=False)
        for t, (m, r) in enumerate(zip(items, model.sample_rating(u, items, rng))):
            rows.append((u, m, r, 1000 + t))
    pd.DataFrame(rows, columns=["userId", "movieId", "rating", "timestamp"]).to_csv(
        root / "ratings.csv", index=False
    )
    catalog = load_catalog(root, check_files=False)
    emb = np.concatenate(
        [item_vec, 0.1 * rng.standard_normal((N_MOVIES, DIM - len(GENRES)))], axis=1
    ).astype(np.float32)
    return catalog, emb, model


# ----------------------------------------------------------------------------- leak fixes


class _SayOnly:
    """A user model that can only *say* ratings: asking for the true taste fails the test."""

    def __init__(self, inner):
        self.inner, self.user_ids, self.asked = inner, inner.user_ids, []

    def expected_rating(self, user_id, movie_ids):
        raise AssertionError("onboarding read the user's true ratings")

    def sample_rating(self, user_id, movie_ids, rng):
        self.asked.append(len(movie_ids))
        return self.inner.sample_rating(user_id, movie_ids, rng)


def test_onboarding_uses_a_few_said_ratings_not_the_true_taste(world):
    catalog, _, model = world
    index = CatalogIndex.from_catalog(catalog)
    spy = _SayOnly(model)
    rng = np.random.default_rng(0)
    genres = pick_onboarding_genres(spy, 1, index, 2, 5, rng)
    assert len(genres) == 2 and set(genres) <= set(GENRES)
    assert spy.asked == [5]  # one question: five recalled films, rated with the user's noise


def test_onboarding_genres_still_follow_the_users_taste(world):
    """Not a random pick: a user's favourite genre is ticked far more often than chance."""
    catalog, _, model = world
    index = CatalogIndex.from_catalog(catalog)
    rng = np.random.default_rng(0)
    hits = []
    for u in model.user_ids:
        favourite = GENRES[int(np.argmax(model.user_factors[model._user_pos[int(u)]]))]
        for _ in range(5):
            hits.append(favourite in pick_onboarding_genres(model, int(u), index, 2, 10, rng))
    assert np.mean(hits) > 0.55  # chance: 2 of 6 genres = 0.33


def test_action_masks_follow_the_session(world):
    catalog, emb, model = world
    env = MovieRecEnv(catalog, emb, model, EnvConfig(episode_length=5), training=False)
    _, info = env.reset(seed=0)
    assert env.action_masks().all() and env.action_masks().dtype == bool
    for action in (3, 7):
        _, _, _, _, info = env.step(action)
        np.testing.assert_array_equal(env.action_masks(), info["action_mask"])
        assert not env.action_masks()[action]
    env.action_masks()[0] = False  # a copy: the caller cannot corrupt the env's mask
    assert env.action_masks()[0]


def test_build_item_statistics_come_from_training_users_only(world):
    from mmrec.pipeline import training_index

    catalog, _, model = world
    cfg = Config()
    train, held = split_users(model.user_ids, cfg.env)
    index = training_index(catalog, model, cfg)
    ratings = catalog.ratings
    assert index.popularity.sum() == ratings["userId"].isin(train).sum()
    # Changing every held-out rating changes nothing the policy is trained on.
    moved = ratings.copy()
    moved.loc[moved["userId"].isin(held), "rating"] = 0.5
    leaky = dataclasses.replace(catalog, ratings=moved)
    again = training_index(leaky, model, cfg)
    np.testing.assert_array_equal(again.mean_rating, index.mean_rating)
    np.testing.assert_array_equal(again.popularity, index.popularity)

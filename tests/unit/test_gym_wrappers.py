"""The shortlist wrapper off-the-shelf agents learn on (issue 14: ``mmrec.rl.gym_wrappers``).

The tiny genre world of tests/conftest.py (movie i has genre i mod G; its embedding is that
genre's one-hot plus noise; each user's true taste is one weight per genre), so what the
shortlist should contain is known. stable-baselines3 DQN and PPO train on it for a few hundred
steps with every user dynamic on (a smoke test: it runs, acts inside the shortlist, and the
rewards are the inner env's).
"""

from __future__ import annotations

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from mmrec.config import EnvConfig
from mmrec.rl.dynamics import with_dynamics
from mmrec.rl.env import MovieRecEnv
from mmrec.rl.gym_wrappers import CandidateEnv

GENRES = ["Action", "Comedy", "Drama", "Horror", "Romance", "Western"]
N_MOVIES, K = 48, 6


@pytest.fixture(scope="module")
def world(genre_world_factory):
    return genre_world_factory(
        "gymwrap", n_movies=N_MOVIES, genres=GENRES, n_users=30, seed=3, max_runtime=150,
        ratings_per_user=8, dim=8,
    )  # fmt: skip


def _env(world, dynamics: bool = False, **kw) -> CandidateEnv:
    catalog, emb, model = world
    cfg = EnvConfig(**{"episode_length": 8, "warm_start_prob": 0.0, **kw})
    if dynamics:
        cfg = with_dynamics(cfg)
    return CandidateEnv(MovieRecEnv(catalog, emb, model, cfg, split="train"), k=K)


def test_passes_gymnasium_check_env_with_every_dynamic_on(world):
    check_env(_env(world, dynamics=True), skip_render_check=True)


def test_the_shortlist_follows_the_onboarding_genres_then_the_liked_films(world):
    catalog, _, _ = world
    env = _env(world)
    genre_of = {int(m): g[0] for m, g in zip(catalog.movie_ids, catalog.movies["genres"])}
    ids = env.inner.index.movie_ids
    obs, info = env.reset(seed=0, options={"user_id": 1, "liked_genres": ["Horror"]})
    assert obs.shape == env.observation_space.shape
    assert {genre_of[int(ids[r])] for r in info["candidates"]} == {"Horror"}
    # one 5-star Western film: the taste now points at Westerns, not at the onboarding genre
    western = next(m for m, g in genre_of.items() if g == "Western")
    obs, info = env.reset(
        seed=0, options={"user_id": 1, "liked_genres": ["Horror"], "history": [(western, 5.0)]}
    )
    assert {genre_of[int(ids[r])] for r in info["candidates"]} == {"Western"}
    assert western not in {int(ids[r]) for r in info["candidates"]}  # already seen


def test_a_slot_steps_the_film_in_it_and_it_never_comes_back(world):
    env = _env(world)
    _, info = env.reset(seed=1, options={"user_id": 2})
    ids = env.inner.index.movie_ids
    picked = []
    for slot in (0, K - 1, 2, 0):
        expected = int(ids[info["candidates"][slot]])
        _, reward, terminated, truncated, info = env.step(slot)
        assert info["movie_id"] == expected and not info["invalid_action"]
        assert np.isfinite(reward)
        picked.append(expected)
        assert not set(picked) & {int(ids[r]) for r in info["candidates"]}
        assert env.action_masks().all()
    assert len(set(picked)) == 4


def test_padding_slots_are_masked_when_the_catalog_runs_out(world):
    env = _env(world, episode_length=N_MOVIES)
    env.reset(seed=2, options={"user_id": 3})
    for _ in range(N_MOVIES - K + 2):
        env.step(0)
    assert env.action_masks().tolist() == [True] * (K - 2) + [False] * 2
    _, reward, *_rest, info = env.step(K - 1)  # a padding slot: invalid, as in the inner env
    assert info["invalid_action"] and reward == -1.0


@pytest.mark.parametrize("algo", ["DQN", "PPO"])
def test_stable_baselines3_trains_a_few_steps(world, algo):
    import stable_baselines3 as sb3

    env = _env(world, dynamics=True)
    if algo == "DQN":
        model = sb3.DQN("MlpPolicy", env, learning_starts=50, buffer_size=1_000, seed=0)
        model.learn(300)
    else:
        model = sb3.PPO("MlpPolicy", env, n_steps=64, batch_size=32, n_epochs=2, seed=0)
        model.learn(128)
    obs, info = env.reset(seed=5)
    total, steps, done = 0.0, 0, False
    while not done:
        action, _ = model.predict(obs, deterministic=True)
        assert 0 <= int(action) < K
        obs, reward, terminated, truncated, info = env.step(action)
        total += reward
        steps += 1
        done = terminated or truncated
    assert steps >= 1 and np.isfinite(total)

"""The simulator's leak fixes and user dynamics (issue 14).

A tiny catalog (36 movies, 6 genres, 40 users) whose user model is a ``FittedUserModel`` with
known genre tastes, so the true ratings are known exactly. Every test runs in well under a
second.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from gymnasium.utils.env_checker import check_env

from mmrec.config import Config, EnvConfig
from mmrec.rl.dynamics import (
    any_dynamics,
    leave_probability,
    novelty_appetite,
    return_probability,
    with_dynamics,
)
from mmrec.rl.env import MovieRecEnv, pick_onboarding_genres, split_users, watch_fraction
from mmrec.rl.state import CatalogIndex

N_MOVIES, N_USERS, DIM = 36, 40, 8
GENRES = ["Action", "Comedy", "Drama", "Horror", "Romance", "Western"]


@pytest.fixture(scope="module")
def world(genre_world_factory):
    """(catalog, item_emb (N, D), user model whose taste is one weight per genre):
    tests/conftest.py genre_world."""
    return genre_world_factory(
        "dyncat", n_movies=N_MOVIES, genres=GENRES, n_users=N_USERS, seed=1, max_runtime=160,
        ratings_per_user=10, dim=DIM,
    )  # fmt: skip


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


# ----------------------------------------------------------------------------- user dynamics


def _env(world, **switches) -> MovieRecEnv:
    catalog, emb, model = world
    cfg = dataclasses.replace(EnvConfig(episode_length=8), **switches)
    return MovieRecEnv(catalog, emb, model, cfg, split="train", training=False)


def _rows_of_genre(env: MovieRecEnv, genre: str) -> np.ndarray:
    return np.flatnonzero(env.index.genre_matrix[:, env.index.genres.index(genre)] > 0)


def _play(env: MovieRecEnv, actions, seed=0, user_id=1) -> list[tuple[float, dict]]:
    _, info = env.reset(seed=seed, options={"user_id": user_id, "liked_genres": []})
    out = []
    for a in actions:
        _, reward, terminated, truncated, info = env.step(int(a))
        out.append((reward, info))
        if terminated or truncated:
            break
    return out


def test_all_switches_off_reproduce_the_static_user_whatever_the_parameters(world):
    """The off switch really is off: other dynamic parameters change nothing."""
    base = _env(world)
    odd = _env(
        world, satiation_strength=3.0, satiation_decay=0.1, novelty_strength=4.0, exit_max=1.0,
        exit_threshold=9.0, runtime_slope=5.0, return_max=0.0, max_sessions=7,
    )  # fmt: skip
    assert not any_dynamics(odd.cfg)
    actions = _rows_of_genre(base, "Action")[:6]
    for (r1, i1), (r2, i2) in zip(_play(base, actions), _play(odd, actions), strict=True):
        assert r1 == r2 and i1["rating"] == i2["rating"]
        assert i1["true_rating"] == i1["static_rating"] == i2["true_rating"]
        assert i1["watch_minutes"] == i2["watch_minutes"]
    assert base.max_episode_steps == odd.max_episode_steps == 8


def test_satiation_lowers_ratings_and_watch_time_of_a_repeated_genre_and_recovers(world):
    cfg_kw = dict(satiation=True, satiation_strength=0.4, satiation_decay=0.5)
    env, static = _env(world, **cfg_kw), _env(world)
    action, comedy = _rows_of_genre(env, "Action"), _rows_of_genre(env, "Comedy")
    seq = [action[0], action[1], action[2], comedy[0], comedy[1], comedy[2], action[3]]
    tired, fresh = _play(env, seq), _play(static, seq)
    shift = [i["true_rating"] - i["static_rating"] for _, i in tired]
    # sigma(Action) = 0, 1, 1.5 before films 1-3 and 1.75 after; it halves over each comedy to
    # 0.21875 before the last action film; the comedies tire in the same way.
    expected = [0.0, -0.4, -0.6, 0.0, -0.4, -0.6, -0.4 * 0.21875]
    np.testing.assert_allclose(shift, expected, atol=1e-6)
    for (_, t), (_, f) in zip(tired, fresh, strict=True):
        assert t["static_rating"] == pytest.approx(f["true_rating"])
        assert t["rating"] <= f["rating"]  # same noise draw, moved down
        assert t["watch_minutes"] <= f["watch_minutes"]
    assert tired[2][1]["watch_minutes"] < fresh[2][1]["watch_minutes"]
    assert sum(t["rating"] for _, t in tired) < sum(f["rating"] for _, f in fresh)
    # Recovery: the last action film is hurt far less than the third one in a row.
    assert abs(shift[6]) < abs(shift[2]) / 5


def test_novelty_appetite_rewards_unlike_films_and_penalises_near_repeats(world):
    env = _env(world, novelty=True, novelty_strength=0.6)
    action, drama = _rows_of_genre(env, "Action"), _rows_of_genre(env, "Drama")
    user = next(u for u in range(1, N_USERS + 1) if novelty_appetite(u) > 0.5)
    a = novelty_appetite(user)
    first, near, far = (
        _play(env, [action[0], action[1]], user_id=user)
        + _play(env, [action[0], drama[0]], user_id=user)[1:]
    )
    assert first[1]["true_rating"] == first[1]["static_rating"]  # nothing seen yet: no term
    emb = env.item_emb
    for (_, info), row in ((near, action[1]), (far, drama[0])):
        novelty = 1.0 - max(0.0, float(emb[action[0]] @ emb[row]))
        want = np.clip(info["static_rating"] + 0.6 * a * (novelty - 0.5), 0.5, 5.0)
        assert info["true_rating"] == pytest.approx(want, abs=1e-5)
    assert near[1]["true_rating"] < near[1]["static_rating"]  # a near-duplicate loses
    assert far[1]["true_rating"] > far[1]["static_rating"]  # a film unlike the last gains
    # Appetite is the user's own: fixed per user, different between users.
    assert novelty_appetite(user) == a
    assert len({round(novelty_appetite(u), 6) for u in range(1, 11)}) == 10


def test_watch_time_rises_with_interest_and_long_films_ask_for_more(world):
    cfg_on = dataclasses.replace(EnvConfig(), runtime_watch=True, runtime_slope=0.5)
    interest = np.array([2.0, 3.0, 4.0])
    assert np.all(np.diff(watch_fraction(interest, cfg_on, 100.0)) > 0)
    short, long_ = watch_fraction(3.5, cfg_on, 80.0), watch_fraction(3.5, cfg_on, 160.0)
    assert short > watch_fraction(3.5, cfg_on, 100.0) > long_
    off = EnvConfig()
    assert watch_fraction(3.5, off, 80.0) == watch_fraction(3.5, off, 160.0)
    env, static = _env(world, runtime_watch=True), _env(world)
    rows = np.argsort(env.index.runtime)
    seq = [rows[-1], rows[0]]  # the longest film, then the shortest
    (_, long_on), (_, short_on) = (x for x in _play(env, seq))
    (_, long_off), (_, short_off) = (x for x in _play(static, seq))
    assert long_on["watch_minutes"] < long_off["watch_minutes"]
    assert short_on["watch_minutes"] > short_off["watch_minutes"]


def _mean_length(env: MovieRecEnv, user_id: int, best: bool, episodes: int = 40):
    """Mean steps and sessions per episode when always recommending the user's best (or worst)
    unseen film."""
    model = env.user_model
    true = model.expected_rating(user_id, env.index.movie_ids)
    order = np.argsort(-true if best else true)
    steps, sessions = [], []
    for e in range(episodes):
        played = _play(env, order, seed=e, user_id=user_id)
        steps.append(len(played))
        sessions.append(played[-1][1]["session"] + 1)
    return float(np.mean(steps)), float(np.mean(sessions))


def test_dissatisfied_users_leave_early_and_satisfied_ones_stay(world):
    p = leave_probability(np.array([2.0, 3.0, 4.0]), EnvConfig())
    assert np.all(np.diff(p) < 0) and p[0] <= EnvConfig().exit_max
    env = _env(world, session_exit=True)
    user = 1
    good, _ = _mean_length(env, user, best=True)
    bad, _ = _mean_length(env, user, best=False)
    assert bad < good - 2  # episode length varies with what is recommended
    assert good > 6  # a pleased user mostly stays the whole session of 8
    static = _env(world)
    assert _mean_length(static, user, best=False)[0] == 8  # switch off: fixed length
    played = _play(env, np.argsort(env.user_model.expected_rating(user, env.index.movie_ids)))
    assert played[-1][1]["left"]  # the session ended because the user left


def test_satisfied_users_return_for_more_sessions_shaped_by_the_last(world):
    q = return_probability(np.array([2.0, 3.0, 4.0]), EnvConfig())
    assert np.all(np.diff(q) > 0)
    env = _env(world, returning=True, session_exit=True, satiation=True, max_sessions=3)
    assert env.max_episode_steps == 24
    user = 1
    good_steps, good_sessions = _mean_length(env, user, best=True)
    bad_steps, bad_sessions = _mean_length(env, user, best=False)
    assert good_sessions > bad_sessions + 0.5 and good_steps > bad_steps
    # At a return: no film repeats, satisfaction carries over, satiation recovered over the gap.
    true = env.user_model.expected_rating(user, env.index.movie_ids)
    for seed in range(40):
        _, info = env.reset(seed=seed, options={"user_id": user, "liked_genres": []})
        for a in np.argsort(-true):
            before_s = env.dynamics.satisfaction
            before_sigma = env.dynamics.satiation.copy()
            _, _, term, trunc, info = env.step(int(a))
            if info["returned"]:
                after = env.dynamics
                gap = env.cfg.satiation_decay**env.cfg.return_gap_steps
                np.testing.assert_allclose(
                    after.satiation,
                    (env.cfg.satiation_decay * before_sigma + env.dynamics.genre_weights[a]) * gap,
                )
                m = env.cfg.satisfaction_memory
                end = m * before_s + (1 - m) * info["true_rating"]  # the last session's end
                assert after.satisfaction == pytest.approx(end)  # not reset: carried over
                assert end != env.cfg.satisfaction_start and after.session_items == []
                assert env.session_steps == 0 and not info["action_mask"][a]
                break
            if term or trunc:
                break
        else:
            continue
        break
    else:
        pytest.fail("no user returned in 40 episodes of their best films")


def test_env_passes_gymnasium_check_env_with_every_dynamic_on(world):
    catalog, emb, model = world
    cfg = with_dynamics(EnvConfig(episode_length=6, warm_start_prob=0.5, max_start_history=3))
    env = MovieRecEnv(catalog, emb, model, cfg, split="train", training=True)
    check_env(env, skip_render_check=True)


def test_dqn_trains_a_few_steps_with_every_dynamic_on(world):
    from mmrec.config import DQNConfig
    from mmrec.rl.train import train_policy

    catalog, emb, model = world
    cfg = Config()
    cfg.env = with_dynamics(EnvConfig(episode_length=6, history_len=3, max_start_history=3))
    cfg.dqn = DQNConfig(total_steps=300, n_envs=4, buffer_size=600, batch_size=16,
                        learning_starts=64, target_sync=20, hidden=16, embed=8)  # fmt: skip
    agent, curves = train_policy(catalog, emb, model, cfg, seed=0)
    assert agent.gradient_steps > 0 and np.isfinite(curves["td_loss"]).all()
    assert agent.max_seen == 3 + 6 * cfg.env.max_sessions
    assert len(set(np.round(curves["episode_return"], 6))) > 1


def test_dynamics_toml_switches_every_dynamic_on():
    from pathlib import Path

    from mmrec.config import load_config

    cfg = load_config(Path(__file__).resolve().parents[2] / "dynamics.toml")
    assert cfg.env == with_dynamics(EnvConfig())


# ----------------------------------------------------------------------------- item features


def _tiny_agent(world, **dqn):
    from mmrec.config import DQNConfig
    from mmrec.rl.dqn import DQNAgent

    catalog, emb, _ = world
    cfg = DQNConfig(hidden=16, embed=8, buffer_size=64, **dqn)
    return DQNAgent(
        cfg, EnvConfig(history_len=2), emb, CatalogIndex.from_catalog(catalog), 0, "cpu"
    )


def test_item_tower_reads_runtime_and_genre_flags(world):
    from mmrec.rl.state import onboarding_state

    agent = _tiny_agent(world)
    assert agent.item_x.shape[1] == DIM + 3 + len(GENRES)
    state = agent.encode(onboarding_state(1, ["Drama"]))[None]
    before = agent.q_values(state)[0]
    index = dataclasses.replace(agent.index)
    index.runtime = index.runtime.copy()
    index.runtime[5] += 90.0  # one film becomes 1.5 h longer
    agent.set_items(agent.item_emb, index)
    after = agent.q_values(state)[0]
    assert abs(after[5] - before[5]) > 1e-3  # only that film's Q moves
    np.testing.assert_allclose(np.delete(after, 5), np.delete(before, 5), atol=1e-5)


def test_policies_saved_before_runtime_features_load_with_their_layout(world, tmp_path):
    import torch

    from mmrec.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
    from mmrec.rl.state import onboarding_state
    from mmrec.rl.train import load_policy, save_policy

    old = _tiny_agent(world, item_runtime_genres=False)
    path = save_policy(tmp_path / "policy.pt", old, {})
    state, config, meta = load_checkpoint(path)
    del config["dqn"]["item_runtime_genres"]  # as written by builds before the field existed
    save_checkpoint(path, state, config, meta)
    agent, _ = load_policy(path, device="cpu")
    assert agent.item_x.shape[1] == DIM + 2 and agent.item_side().shape[1] == 2
    s = agent.encode(onboarding_state(1, ["Drama"]))[None]
    np.testing.assert_allclose(agent.q_values(s), old.q_values(s), atol=1e-6)
    # A checkpoint whose item width this code cannot rebuild says so and how to fix it.
    config["item_dim"] = 99
    save_checkpoint(path, state, config, meta)
    with pytest.raises(CheckpointError, match="retrain the policy"):
        load_policy(path, device="cpu")
    assert isinstance(state["q.item_tower.0.weight"], torch.Tensor)


# ----------------------------------------------------------------------------- calibration


def _simulated_log(world, tmp_path, episodes: int, **switches) -> Path:
    """Ratings logged from the simulator under a random policy, in the MovieLens layout: one
    pseudo-user per episode, a minute between ratings, a day between returning sessions."""
    catalog, emb, model = world
    cfg = dataclasses.replace(EnvConfig(episode_length=20), **switches)
    env = MovieRecEnv(catalog, emb, model, cfg, training=False, users=model.user_ids)
    rng = np.random.default_rng(0)
    rows = []
    for e in range(episodes):
        _, info = env.reset(seed=e, options={"liked_genres": []})
        ts = 10**6 * e
        while True:
            _, _, term, trunc, info = env.step(int(rng.choice(np.flatnonzero(info["action_mask"]))))
            rows.append((e, info["movie_id"], info["rating"], ts))
            ts += 60 + (86_400 if info["returned"] else 0)
            if term or trunc:
                break
    out = tmp_path / f"log-{len(switches)}"
    out.mkdir()
    pd.DataFrame(rows, columns=["userId", "movieId", "rating", "timestamp"]).to_csv(
        out / "ratings.csv", index=False
    )
    genres = ["|".join(g) for g in catalog.movies["genres"]]
    pd.DataFrame({"movieId": catalog.movie_ids, "genres": genres}).to_csv(
        out / "movies.csv", index=False
    )
    return out


def test_calibration_recovers_the_simulators_own_dynamics_and_invents_none(world, tmp_path):
    from mmrec.rl.calibrate import calibrate

    dyn = dict(satiation=True, satiation_strength=0.4, satiation_decay=0.7)
    dyn.update(session_exit=True, returning=True, max_sessions=4)
    res = calibrate(_simulated_log(world, tmp_path, 200, **dyn), 60, 30)
    sat = res["satiation"]
    assert 0.25 < sat["satiation_strength"] < 0.6 and sat["strength_ci95"][0] > 0.1
    assert res["exit"]["slope_ci95"][0] > 0  # low satisfaction ends sessions
    assert res["return"]["slope_ci95"][0] > 0  # satisfied users come back
    assert res["sessions"]["sessions"] > 200  # returns split episodes into sessions
    static = calibrate(_simulated_log(world, tmp_path, 200), 60, 30)
    lo, hi = static["satiation"]["strength_ci95"]
    assert lo < 0.0 < hi and abs(static["satiation"]["satiation_strength"]) < 0.1
    assert static["sessions"]["sessions"] == 200 and static["sessions"]["median_length"] == 20


def test_myopic_oracle_scores_are_the_noise_free_immediate_reward(world):
    from mmrec.rl.state import rating_to_unit

    static = _env(world)
    static.reset(seed=0, options={"user_id": 1, "liked_genres": []})
    cfg = static.cfg
    runtime = static.index.runtime
    want = (
        rating_to_unit(static.true_ratings)
        + cfg.watch_weight
        * runtime
        * watch_fraction(static.true_ratings, cfg)
        / cfg.watch_norm_minutes
    )
    np.testing.assert_allclose(static.myopic_scores(), want, atol=1e-6)
    # With the dynamics on, the vectorised interest equals the step's one-film path everywhere.
    env = _env(world, **{k: True for k in ("satiation", "novelty", "runtime_watch")})
    user = next(u for u in range(1, N_USERS + 1) if novelty_appetite(u) > 0.5)
    env.reset(seed=0, options={"user_id": user, "liked_genres": []})
    fresh = env.myopic_scores()
    action = _rows_of_genre(env, "Action")
    for a in action[:2]:
        env.step(int(a))
    every = env.dynamics.interest_all(env.true_ratings)
    one = [env.dynamics.interest(r, float(env.true_ratings[r])) for r in range(len(every))]
    np.testing.assert_allclose(every, one, atol=1e-6)
    scores = env.myopic_scores()
    assert scores[action[2]] < fresh[action[2]] - 0.1  # a third action film in a row: less
    _, reward, *_, info = env.step(int(action[2]))
    minutes = runtime[action[2]] * watch_fraction(every[action[2]], env.cfg, runtime[action[2]])
    assert info["watch_minutes"] == pytest.approx(minutes, rel=1e-5)

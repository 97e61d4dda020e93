"""The policy evaluation's yardstick and its session metrics under user dynamics (issue 14).

``run_sessions`` with the myopic oracle (greedy on ``env.myopic_scores()``, the hidden state's
noise-free immediate reward) against a ranker that knows the user's *static* true ratings but
not the satiation / novelty state: with every dynamic on the oracle must collect more reward,
and episodes must vary in length and sessions (users leave early and come back).
"""

from __future__ import annotations

import numpy as np
import pytest

from mmrec.config import EnvConfig
from mmrec.eval.metrics import mean_ci
from mmrec.eval.policy import MyopicOracle, run_sessions
from mmrec.rl.dynamics import with_dynamics
from mmrec.rl.env import MovieRecEnv

GENRES = ["Action", "Comedy", "Drama", "Horror", "Romance", "Western"]


@pytest.fixture(scope="module")
def world(genre_world_factory):
    return genre_world_factory(
        "oracle", n_movies=60, genres=GENRES, n_users=40, seed=4, max_runtime=160,
        ratings_per_user=8, dim=8,
    )  # fmt: skip


class StaticTruth:
    """Greedy on the user's static true ratings: perfect taste, blind to the dynamics."""

    reads_hidden_state = True

    def score_env(self, env):
        return env.true_ratings.astype(np.float64)


def _play(world, ranker, dynamics: bool, n: int = 60):
    catalog, emb, model = world
    cfg = EnvConfig(episode_length=10, warm_start_prob=0.0)
    if dynamics:
        cfg = with_dynamics(cfg)
    env = MovieRecEnv(catalog, emb, model, cfg, split="heldout", training=False)
    return run_sessions(ranker, env, env.users, n, seed=0, cold_steps=5, hit_rating=4.0)


def test_with_dynamics_the_oracle_beats_perfect_static_taste(world):
    oracle, static = _play(world, MyopicOracle(), True), _play(world, StaticTruth(), True)
    diff, half = mean_ci(oracle["reward"] - static["reward"])  # paired: same users and noise
    assert diff - half > 0, (diff, half)
    assert len(set(oracle["steps"])) > 1 and oracle["sessions"].max() > 1  # exits and returns


def test_without_dynamics_the_oracle_is_greedy_on_the_true_rating(world):
    oracle, static = _play(world, MyopicOracle(), False), _play(world, StaticTruth(), False)
    assert (oracle["steps"] == 10).all() and (oracle["sessions"] == 1).all()
    # the two differ only through runtime in the watch-time term; the rating parts agree
    assert abs(oracle["satisfaction"].mean() - static["satisfaction"].mean()) < 0.15
    assert oracle["reward"].mean() >= static["reward"].mean() - 1e-9


def test_variant_and_stable_baselines3_rows(world, tmp_path):
    """``evaluate_policy`` trains a γ = 0 DQN and an sb3 DQN per seed next to the DQN; each
    row plays the same sessions, only unseen films, and the report states how it was trained."""
    import dataclasses

    from mmrec.config import Config
    from mmrec.eval.policy import evaluate_policy

    catalog, emb, model = world
    cfg = Config()
    cfg.env = with_dynamics(EnvConfig(episode_length=6, history_len=3, warm_start_prob=0.0))
    cfg.dqn = dataclasses.replace(
        cfg.dqn, total_steps=300, n_envs=4, buffer_size=1000, batch_size=32,
        learning_starts=100, target_sync=50, hidden=32, embed=16,
    )  # fmt: skip
    cfg.policy_eval.min_episodes = 10
    cfg.policy_eval.supervised_epochs = 1
    res = evaluate_policy(
        catalog, emb, model, cfg, seeds=(0,), out_dir=tmp_path,
        variants={"dqn γ=0": {"gamma": 0.0}}, sb3=("dqn",),
    )  # fmt: skip
    rows = res["policies"]
    assert {"dqn", "dqn γ=0", "sb3 DQN", "myopic oracle"} <= set(rows)
    assert res["protocol"]["variants"] == {"dqn γ=0": {"gamma": 0.0}}
    assert res["protocol"]["dqn"] == "trained per seed on train users"
    assert "dqn γ=0 0" in res["learning_curves"] and "0" in res["learning_curves"]
    for name in ("dqn γ=0", "sb3 DQN"):
        assert rows[name]["steps"]["mean"] >= 1 and 0 < rows[name]["coverage"]["mean"] <= 1
        assert name in res["lifts"]
    md = (tmp_path / "policy.md").read_text()
    assert "gamma 0.0 (DQN: 0.9)" in md and "| sb3 DQN |" in md


def test_sb3_ranker_picks_an_unseen_shortlisted_film(world):
    """The sb3 row's film is always one the wrapper shortlisted from the user's view."""
    import stable_baselines3 as sb3

    from mmrec.rl.gym_wrappers import CandidateEnv
    from mmrec.rl.sb3_agents import SB3Ranker

    catalog, emb, model = world
    cfg = with_dynamics(EnvConfig(episode_length=8, warm_start_prob=0.0))
    env = MovieRecEnv(catalog, emb, model, cfg, split="heldout", training=False)
    agent = sb3.DQN("MlpPolicy", CandidateEnv(env, k=20), learning_starts=10, seed=0)
    ranker = SB3Ranker(agent, k=20)
    env.reset(seed=1, options={"user_id": int(env.users[0])})
    for _ in range(5):
        scores = ranker.score_env(env)
        pick = int(np.argmax(scores))
        assert scores[pick] == 1.0 and env.mask[pick]
        assert pick in ranker._wrapper(env).candidates
        _, _, terminated, truncated, _ = env.step(pick)
        if terminated or truncated:
            break


class OneGenre:
    """Always the next film of genre 0 (movie i has genre i mod G in the genre world)."""

    def score(self, user_state, idx):
        return np.where(np.asarray(idx) % len(GENRES) == 0, 1.0, 0.0) - 1e-3 * np.asarray(idx)


def test_replay_records_the_hidden_dynamics_step_by_step(world):
    """``replay_episode`` (the Learning page's dynamics view): feeding one genre wears it out
    (its satiation rises every step, interest falls below taste), satisfaction is the moving
    average of interest, and the leave chance is the documented function of satisfaction."""
    from mmrec.rl.dynamics import leave_probability
    from mmrec.rl.replay import replay_episode
    from mmrec.rl.state import CatalogIndex

    catalog, emb, model = world
    cfg = EnvConfig(episode_length=8, warm_start_prob=0.0)
    index = CatalogIndex.from_catalog(catalog)
    user = int(model.user_ids[0])
    out = replay_episode(index, emb, model, cfg, OneGenre(), user, seed=3)
    steps, sat = out["steps"], np.asarray(out["satiation"])
    assert out["config"]["satiation"] and out["config"]["session_exit"]  # all dynamics on
    g0 = out["genres"].index(GENRES[0])
    assert all(index.genre_matrix[s["row"], g0] for s in steps)
    assert (np.diff(sat[:, g0]) > 0).all() and sat[:, g0].argmax() == len(steps) - 1
    drop = [s["static"] - s["interest"] for s in steps]
    assert drop[-1] > drop[0] and drop[-1] > 0  # tired of the genre: interest below taste
    m, full = cfg.satisfaction_memory, with_dynamics(cfg)
    before = cfg.satisfaction_start
    for s in steps:  # a returning user's next session starts from the last satisfaction
        assert s["satisfaction"] == pytest.approx(m * before + (1 - m) * s["interest"])
        assert s["leave_probability"] == pytest.approx(
            float(leave_probability(s["satisfaction"], full))
        )
        before = s["satisfaction"]
    # without the dynamics nothing moves: interest is the static taste
    flat = replay_episode(index, emb, model, cfg, OneGenre(), user, seed=3, all_dynamics=False)
    assert all(s["interest"] == s["static"] for s in flat["steps"])


def test_simulator_ready_only_when_it_costs_nothing(tmp_path):
    """The Learning page fits a user model only when asked: ``simulator_ready`` is True for a
    catalog that ships its hidden users, or once loaded, and False otherwise."""
    from types import SimpleNamespace

    from mmrec.service_browse import BrowsingMixin

    svc = SimpleNamespace(
        cfg=SimpleNamespace(paths=SimpleNamespace(data_dir=str(tmp_path))), _simulator_parts=None
    )
    assert not BrowsingMixin.simulator_ready(svc)
    (tmp_path / "hidden_users.npz").write_bytes(b"")
    assert BrowsingMixin.simulator_ready(svc)
    (tmp_path / "hidden_users.npz").unlink()
    svc._simulator_parts = ("model", "index", [1])
    assert BrowsingMixin.simulator_ready(svc)

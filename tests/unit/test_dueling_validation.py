"""The DQN's state value head and the validation protocol of the policy evaluation (issue 14).

- ``QNetwork(dueling=True)``: ``V(s)`` moves every film's Q in a state by the same amount, so it
  never changes a pick; policies saved before the head existed load without it.
- ``evaluate_policy(validation=True)`` never plays or trains on a held-out user: it splits the
  training users into training and validation users.
- ``--variant FIELD=VALUE`` rows parse into ``DQNConfig`` overrides, or name the bad part.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from mmrec.config import Config, DQNConfig, EnvConfig
from mmrec.rl.dqn import QNetwork


def test_state_value_shifts_every_film_of_a_state_alike():
    torch.manual_seed(0)
    net = QNetwork(state_dim=6, item_dim=5, hidden=8, embed=3, dueling=True)
    s, x = torch.randn(4, 6), torch.randn(7, 5)
    q = net(s, x)  # (4, 7)
    u, v = net.head(s)
    assert u.shape == (4, 3) and v.shape == (4,)
    with torch.no_grad():
        net.state_tower[-1].bias[-1] += 5.0  # the V(s) output only
    q2 = net(s, x)
    assert torch.allclose(q2 - q, torch.full_like(q, 5.0), atol=1e-5)
    assert torch.equal(q2.argmax(1), q.argmax(1))
    # q_sa agrees with the full matrix, V included
    a = torch.tensor([0, 3, 6, 2])
    assert torch.allclose(net.q_sa(s, x[a]), q2[torch.arange(4), a], atol=1e-5)
    # without the head, V is zero and the tower has no extra output
    plain = QNetwork(state_dim=6, item_dim=5, hidden=8, embed=3)
    assert plain.state_tower[-1].out_features == 3
    assert torch.equal(plain.head(s)[1], torch.zeros(4))


def _world(genre_world_factory):
    return genre_world_factory(
        "dueling", n_movies=40, genres=["Action", "Comedy", "Drama", "Horror"], n_users=30,
        seed=2, max_runtime=150, ratings_per_user=6, dim=8,
    )  # fmt: skip


def _tiny_cfg() -> Config:
    cfg = Config()
    cfg.env = EnvConfig(episode_length=5, history_len=3, warm_start_prob=0.0)
    cfg.dqn = dataclasses.replace(
        cfg.dqn, total_steps=200, n_envs=4, buffer_size=500, batch_size=16,
        learning_starts=50, target_sync=20, hidden=16, embed=8,
    )  # fmt: skip
    cfg.policy_eval.min_episodes = 6
    cfg.policy_eval.supervised_epochs = 1
    return cfg


def test_dueling_policy_saves_loads_and_old_checkpoints_have_no_head(genre_world_factory, tmp_path):
    from mmrec.checkpoint import load_checkpoint, save_checkpoint
    from mmrec.rl.state import CatalogIndex
    from mmrec.rl.train import load_policy, save_policy, train_policy

    catalog, emb, model = _world(genre_world_factory)
    cfg = _tiny_cfg()
    cfg.dqn = dataclasses.replace(cfg.dqn, dueling=True)
    agent, _ = train_policy(catalog, emb, model, cfg, seed=0)
    save_policy(tmp_path / "p.pt", agent)
    back = load_policy(tmp_path / "p.pt", emb, CatalogIndex.from_catalog(catalog))
    back = back[0]
    assert back.q_network.dueling
    states = np.random.default_rng(0).normal(size=(3, agent.state_dim)).astype(np.float32)
    assert np.allclose(agent.q_values(states), back.q_values(states), atol=1e-5)

    # A policy written before the head: its config has no "dueling" and its tower no V column.
    plain_cfg = _tiny_cfg()
    plain, _ = train_policy(catalog, emb, model, plain_cfg, seed=0)
    save_policy(tmp_path / "old.pt", plain)
    state, config, meta = load_checkpoint(tmp_path / "old.pt")
    del config["dqn"]["dueling"]
    save_checkpoint(tmp_path / "old.pt", state, config, meta)
    old = load_policy(tmp_path / "old.pt", emb, CatalogIndex.from_catalog(catalog))
    old = old[0]
    assert not old.q_network.dueling
    assert np.allclose(plain.q_values(states), old.q_values(states), atol=1e-5)


def test_validation_run_never_touches_held_out_users(genre_world_factory, tmp_path, monkeypatch):
    from mmrec.eval import policy as pol
    from mmrec.rl.env import split_users

    catalog, emb, model = _world(genre_world_factory)
    cfg = _tiny_cfg()
    train, held = split_users(model.user_ids, cfg.env)
    view = pol.validation_view(model, cfg.env)
    v_train, v_val = split_users(view.user_ids, cfg.env)
    assert set(view.user_ids) == set(train)

    class Fitted:  # a fitted model's synthetic users come from ALL its users' distribution
        user_ids = model.user_ids

        def with_synthetic_users(self, n, seed):
            raise AssertionError("a validation run drew users from the held-out ones' population")

    assert hasattr(Fitted(), "with_synthetic_users")
    assert not hasattr(pol.validation_view(Fitted(), cfg.env), "with_synthetic_users")
    assert not (set(v_train) | set(v_val)) & set(held) and len(v_val) > 0

    played: set[int] = set()
    real_run = pol.run_sessions

    def spy(ranker, env, users, *a, **k):
        played.update(int(u) for u in users)
        return real_run(ranker, env, users, *a, **k)

    monkeypatch.setattr(pol, "run_sessions", spy)
    res = pol.evaluate_policy(
        catalog, emb, model, cfg, seeds=(0,), out_dir=tmp_path, validation=True,
        variants={"dqn dueling=true": {"dueling": True}},
    )  # fmt: skip
    assert played and played <= set(v_val)
    assert res["protocol"]["split"].startswith("validation")
    assert "held-out" not in res["protocol"]["users"], res["protocol"]["users"]
    assert res["protocol"]["n_train_users"] == len(v_train)
    md = (tmp_path / "policy.md").read_text()
    assert "validation users" in md.splitlines()[0]
    # the variant is paired with the shipped DQN row and the baselines, in the json and the table
    pair = res["variant_lifts"]["dqn dueling=true"]["dqn"]["reward"]
    assert np.isfinite(pair["diff"]) and pair["diff_ci95"] >= 0
    assert "| dqn dueling=true − dqn |" in md and "| dqn dueling=true − supervised |" in md
    with pytest.raises(ValueError, match="validation"):
        pol.evaluate_policy(catalog, emb, model, cfg, seeds=(0,), out_dir=tmp_path,
                            validation=True, agent=object())  # fmt: skip


def test_variant_specs_parse_or_name_the_bad_part():
    from mmrec.__main__ import _dqn_overrides

    dqn = DQNConfig()
    assert _dqn_overrides("dueling=true,gamma=0.5", dqn) == {"dueling": True, "gamma": 0.5}
    assert _dqn_overrides("total_steps=100", dqn) == {"total_steps": 100}
    for bad, part in (("gama=0.5", "gama"), ("dueling=maybe", "dueling"), ("gamma", "gamma")):
        with pytest.raises(SystemExit, match=part):
            _dqn_overrides(bad, dqn)


def test_recent_genres_block_decays_with_age_and_is_optional():
    """``EnvConfig.recent_genres`` appends, per genre, the decayed share of the films rated
    lately (newest weight 1, then decay, decay², ...), liked or not; off, the state is as before."""
    from mmrec.rl.state import CatalogIndex, StateEncoder, UserState

    gm = np.array([[1, 0], [0, 1], [1, 1], [1, 0]], np.float32)  # films 1..4; film 3 is both
    index = CatalogIndex(
        movie_ids=np.arange(4) + 1, genres=["A", "B"], genre_matrix=gm,
        runtime=np.full(4, 100.0, np.float32), popularity=np.zeros(4, np.float32),
    )  # fmt: skip
    emb = np.eye(4, dtype=np.float32)
    state = UserState(7, [(1, 5.0), (2, 1.0), (3, 3.0)], ["B"])  # oldest first
    plain_cfg = EnvConfig(history_len=2)
    on_cfg = dataclasses.replace(plain_cfg, recent_genres=True, recent_genres_decay=0.5)
    plain, on = StateEncoder(plain_cfg), StateEncoder(on_cfg)
    a, b = plain.encode(state, emb, index), on.encode(state, emb, index)
    assert len(b) == on.state_dim(4, 2) == plain.state_dim(4, 2) + 2
    assert np.array_equal(b[:-2], a)  # everything else unchanged
    # film 3 (age 0, half A half B) + 0.5 * film 2 (B) + 0.25 * film 1 (A)
    assert np.allclose(b[-2:], [0.5 + 0.25, 0.5 + 0.5])
    assert np.array_equal(on.encode(UserState(7), emb, index)[-2:], [0.0, 0.0])

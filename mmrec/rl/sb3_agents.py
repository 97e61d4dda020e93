"""Off-the-shelf agents (stable-baselines3) as rows of the policy evaluation (issue 14).

``train_sb3(algo, ...)`` trains a stable-baselines3 DQN or PPO on the shortlist wrapper
(``mmrec.rl.gym_wrappers.CandidateEnv``) of the same simulator, the same training users and the
same environment-step budget as the project's DQN (``DQNConfig.total_steps``), with the
project's discount, learning rate, replay, batch and exploration schedule where the algorithm
has them (sb3's defaults otherwise). ``SB3Ranker`` plays it in ``eval.policy.run_sessions``:
at each step it builds the wrapper's observation from the evaluation env (the user state and
the K shortlisted films, nothing hidden), asks the agent for a slot and ranks that film first.

stable-baselines3 is imported only here, and only when such a row is asked for.
"""

from __future__ import annotations

import numpy as np

from mmrec.rl.env import MovieRecEnv
from mmrec.rl.gym_wrappers import CandidateEnv

SB3_ALGOS = ("dqn", "ppo")
SB3_SHORTLIST = 20  # K films per step; the observation is the state + K item feature rows


class SB3Ranker:
    """A trained stable-baselines3 agent as a ranker over the whole catalog."""

    def __init__(self, model, k: int = SB3_SHORTLIST):
        self.model = model
        self.k = int(k)
        self._wrappers: dict[int, CandidateEnv] = {}

    def _wrapper(self, env: MovieRecEnv) -> CandidateEnv:
        key = id(env)
        if key not in self._wrappers:
            self._wrappers[key] = CandidateEnv(env, k=self.k)
        return self._wrappers[key]

    def score_env(self, env: MovieRecEnv) -> np.ndarray:
        """``(N,)``: 1 for the film the agent picks from the shortlist, 0 for the rest."""
        wrap = self._wrapper(env)
        obs = wrap.observe()  # shortlist from the user state and the mask only
        slot, _ = self.model.predict(obs, deterministic=True)
        slot = int(slot)
        scores = np.zeros(env.action_space.n)
        if len(wrap.candidates):
            pick = slot if slot < len(wrap.candidates) else 0
            scores[wrap.candidates[pick]] = 1.0
        return scores


def train_sb3(algo: str, index, item_emb, user_model, cfg, seed: int) -> SB3Ranker:
    """Train ``algo`` ("dqn" or "ppo") for ``cfg.dqn.total_steps`` environment steps."""
    import stable_baselines3 as sb3
    import torch

    if algo not in SB3_ALGOS:
        raise ValueError(f"unknown stable-baselines3 algorithm {algo!r}; choose from {SB3_ALGOS}")
    dcfg = cfg.dqn
    inner = MovieRecEnv(index, item_emb, user_model, cfg.env, split="train", training=True)
    env = CandidateEnv(inner, k=SB3_SHORTLIST)
    env.reset(seed=seed * 10_000 + 7)
    torch.manual_seed(seed)
    if algo == "dqn":
        model = sb3.DQN(
            "MlpPolicy",
            env,
            learning_rate=dcfg.lr,
            buffer_size=min(dcfg.buffer_size, 20_000),  # the observation holds K item rows
            learning_starts=dcfg.learning_starts,
            batch_size=dcfg.batch_size,
            gamma=dcfg.gamma,
            train_freq=dcfg.train_frequency,
            target_update_interval=dcfg.target_sync * dcfg.train_frequency,
            exploration_fraction=dcfg.exploration_fraction,
            exploration_initial_eps=dcfg.start_e,
            exploration_final_eps=dcfg.end_e,
            max_grad_norm=dcfg.max_grad_norm,
            policy_kwargs={"net_arch": [dcfg.hidden, dcfg.hidden]},
            seed=seed,
            device="cpu",
            verbose=0,
        )
    else:
        model = sb3.PPO(
            "MlpPolicy",
            env,
            learning_rate=3e-4,  # sb3's PPO default (the DQN's 1e-3 not tried for PPO)
            gamma=dcfg.gamma,
            policy_kwargs={"net_arch": [dcfg.hidden, dcfg.hidden]},
            seed=seed,
            device="cpu",
            verbose=0,
        )
    model.learn(total_timesteps=dcfg.total_steps)
    return SB3Ranker(model, k=SB3_SHORTLIST)

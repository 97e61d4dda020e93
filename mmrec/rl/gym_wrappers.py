"""A Gymnasium view of ``MovieRecEnv`` that off-the-shelf agents can learn on (issue 14).

``MovieRecEnv`` acts over the whole catalog (``Discrete(N)``) and observes only the user's
state: the project's two-tower DQN scores every film by its content, but a generic agent
(stable-baselines3 DQN / PPO, TorchRL, RLlib) would learn one output per film *id*, which
neither generalises to films it never tried nor scales to a large catalog.
``CandidateEnv`` gives such agents the shape they expect:

* at every step it **shortlists K valid films** (not yet recommended in the episode) by a
  cheap, documented content score, ``score = item_emb @ taste + popularity_weight * z(log(1 +
  popularity))``, where ``taste`` is the mean unit embedding of the films the user rated 3.5
  or more so far (weighted by how far above 3 they were), else of the films in the user's
  onboarding genres, else zero (popularity only);
* the **action** is a slot ``0 .. K-1`` of that shortlist (``Discrete(K)``); the wrapper
  steps the inner env with the film in that slot;
* the **observation** is the inner env's user state followed by the K candidates' item
  features (unit embedding, genre flags, runtime / 180, z-scored log-popularity) in slot
  order, one flat ``Box``: an MLP can learn which *kind* of film to pick;
* ``action_masks()`` (the sb3-contrib ``MaskablePPO`` convention) is False for padding slots
  when fewer than K valid films remain; stepping a padding slot is an invalid action (reward
  -1, as in the inner env).

Rewards, episode ends, dynamics and ``info`` are the inner env's, untouched (``info`` gains
``candidates``: the shortlisted catalog rows). Example (stable-baselines3)::

    from stable_baselines3 import DQN
    env = CandidateEnv(MovieRecEnv(catalog, item_emb, user_model, cfg.env), k=50)
    DQN("MlpPolicy", env).learn(20_000)

``tests/unit/test_gym_wrappers.py`` checks it with ``gymnasium.utils.env_checker.check_env``
and trains stable-baselines3 DQN and PPO on it for a few hundred steps.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from mmrec.rl.env import MovieRecEnv

LIKED_RATING = 3.5  # a rating at or above this counts as liked when building the taste vector
RUNTIME_SCALE = 180.0  # minutes; runtime feature = runtime / this


class CandidateEnv(gym.Env):
    """``MovieRecEnv`` with a K-film shortlist as the action space (module docstring)."""

    metadata = {"render_modes": []}

    def __init__(self, env: MovieRecEnv, k: int = 50, popularity_weight: float = 0.1):
        super().__init__()
        if not isinstance(env.unwrapped, MovieRecEnv):
            raise TypeError(f"CandidateEnv wraps a MovieRecEnv, not {type(env.unwrapped)!r}")
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        self.env = env
        self.inner: MovieRecEnv = env.unwrapped
        self.k = int(k)
        self.popularity_weight = float(popularity_weight)
        index = self.inner.index
        emb = self.inner.item_emb  # (N, D) unit rows
        log_pop = np.log1p(index.popularity.astype(np.float64))
        self._pop_z = ((log_pop - log_pop.mean()) / (log_pop.std() + 1e-9)).astype(np.float32)
        self.item_features = np.concatenate(
            [
                emb,
                index.genre_matrix,
                (index.runtime / RUNTIME_SCALE)[:, None],
                self._pop_z[:, None],
            ],
            axis=1,
        ).astype(np.float32)  # (N, F)
        self._genre_col = {g: i for i, g in enumerate(index.genres)}
        n_state = int(self.inner.observation_space.shape[0])
        n_feat = self.item_features.shape[1]
        bound = float(max(np.abs(self.inner.observation_space.high).max(), 10.0))
        self.observation_space = gym.spaces.Box(
            -bound, bound, (n_state + self.k * n_feat,), np.float32
        )
        self.action_space = gym.spaces.Discrete(self.k)
        self.candidates = np.zeros(0, dtype=np.int64)  # catalog rows in slot order

    # ------------------------------------------------------------------ shortlist

    def taste(self) -> np.ndarray:
        """``(D,)`` the content direction the shortlist ranks by (module docstring)."""
        inner = self.inner
        emb = inner.item_emb
        history = inner.user_state.history
        liked = [(m, r - 3.0) for m, r in history if r >= LIKED_RATING]
        if liked:
            rows = inner.index.positions([m for m, _ in liked])
            w = np.array([x for _, x in liked], dtype=np.float32)
            return (w[:, None] * emb[rows]).sum(axis=0) / w.sum()
        cols = [self._genre_col[g] for g in inner.user_state.liked_genres if g in self._genre_col]
        if cols:
            in_genres = inner.index.genre_matrix[:, cols].sum(axis=1) > 0
            if in_genres.any():
                return emb[in_genres].mean(axis=0)
        return np.zeros(emb.shape[1], dtype=np.float32)

    def shortlist(self) -> np.ndarray:
        """The K best valid catalog rows by the shortlist score, best first (fewer if fewer
        valid films remain)."""
        valid = np.flatnonzero(self.inner.mask)
        if len(valid) == 0:
            return valid
        score = self.inner.item_emb[valid] @ self.taste()
        score = score + self.popularity_weight * self._pop_z[valid]
        take = min(self.k, len(valid))
        top = np.argpartition(-score, take - 1)[:take]
        top = top[np.argsort(-score[top], kind="stable")]
        return valid[top]

    def _observe(self, state: np.ndarray) -> np.ndarray:
        self.candidates = self.shortlist()
        feats = np.zeros((self.k, self.item_features.shape[1]), dtype=np.float32)
        feats[: len(self.candidates)] = self.item_features[self.candidates]
        obs = np.concatenate([np.asarray(state, dtype=np.float32), feats.ravel()])
        high = self.observation_space.high[0]
        return np.clip(obs, -high, high).astype(np.float32)

    def observe(self) -> np.ndarray:
        """The observation for the inner env's *current* state (shortlist rebuilt): for playing
        an agent on an env that something else resets and steps (``sb3_agents.SB3Ranker``)."""
        return self._observe(self.inner._obs())

    # ------------------------------------------------------------------ gym API

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        state, info = self.env.reset(seed=seed, options=options)
        obs = self._observe(state)
        info["candidates"] = self.candidates.copy()
        return obs, info

    def step(self, action):
        slot = int(action)
        if not 0 <= slot < self.k:
            raise ValueError(f"action {slot} outside the shortlist of {self.k}")
        if slot < len(self.candidates):
            row = int(self.candidates[slot])
        else:  # a padding slot: an invalid action, as in the inner env (any seen film)
            seen = np.flatnonzero(~self.inner.mask)
            row = int(seen[0]) if len(seen) else 0
        state, reward, terminated, truncated, info = self.env.step(row)
        obs = self._observe(state)
        info["candidates"] = self.candidates.copy()
        return obs, reward, terminated, truncated, info

    def action_masks(self) -> np.ndarray:
        """``(K,) bool``: True for slots that hold a film (all of them unless the catalog ran
        out)."""
        mask = np.zeros(self.k, dtype=bool)
        mask[: len(self.candidates)] = True
        return mask

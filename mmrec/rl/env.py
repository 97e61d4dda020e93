"""The recommendation session as a gymnasium environment.

One episode = one session of ``EnvConfig.episode_length`` recommendations to one simulated
user (shorter when the user leaves, several sessions when users return: the user dynamics
below). Each step the agent recommends one movie (action = catalog row), the user model rates
it, and the reward is

    reward = rating_to_unit(sampled rating)                          in [-1, 1]
           + watch_weight * watch_minutes / watch_norm_minutes        (multi-objective term)

Watch-time model: the user watches ``runtime * f(true rating)`` minutes of a recommended
movie, with ``f(r) = sigmoid(watch_slope * (r - watch_midpoint))`` -- with the defaults 12% of
a 2-star movie, half of a 3-star one, 88% of a 4-star one and 98% of a 5-star one. The TRUE
(noise-free) rating drives it: how long someone keeps watching depends on how much the movie
suits them, while the sampled rating adds the noise of the moment.

User dynamics (``mmrec.rl.dynamics``, formulas there; each switched in ``EnvConfig``, all off by
default, and all off is exactly the static user): genre satiation / boredom, novelty appetite,
watch time that asks long films for more interest, session exit of dissatisfied users (episode
length varies; leaving terminates) and returning users (up to ``max_sessions`` sessions per
episode, the next one shaped by the last one's satisfaction). With satiation or novelty on,
``info["true_rating"]`` is the user's interest at that moment and ``info["static_rating"]``
the static model's rating; ``info`` also carries ``left``, ``returned``, ``session`` and
``satisfaction``, and ``env.dynamics`` holds the hidden state (e.g. satiation by genre).

Recommending a movie already seen in the session (or in the warm-start history) is invalid:
it costs -1 and produces no rating. ``info["action_mask"]`` and ``env.action_masks()`` (the
sb3-contrib ``MaskablePPO`` convention) mark the valid actions (True), so agents never need to
try.

Onboarding (cold start): the simulated newcomer ticks ``onboarding_genres`` genres from a few
films they recall and rate with their own noise (``pick_onboarding_genres``), never from their
true taste over the catalog, which no newcomer could state. The session ends by truncation (time limit), not termination:
the user's taste does not end with the session, so value bootstraps through the last step.
It terminates if the catalog runs out of unseen movies, or when a user leaves for good.

Users are split once (``split_users``) into policy-training users and held-out users; an
environment serves one of the two sets.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from mmrec.config import EnvConfig
from mmrec.rl import dynamics
from mmrec.rl.dynamics import UserDynamics
from mmrec.rl.state import (
    CatalogIndex,
    StateEncoder,
    UserState,
    normalize_embeddings,
    rating_to_unit,
)

# Bound of the observation box: every encoded feature is far inside it (embeddings are unit
# length, log-counts stay below 15 for any realistic history).
OBS_BOUND = 1e3
ONBOARDING_TIE_BREAK = 1e-3  # tiny noise so genres with equal evidence are ticked at random


def split_users(user_ids: np.ndarray, cfg: EnvConfig) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic (train, held-out) user split by ``cfg.split_seed``, both sorted."""
    user_ids = np.unique(np.asarray(user_ids, dtype=np.int64))
    perm = np.random.default_rng(cfg.split_seed).permutation(len(user_ids))
    n_held = int(round(cfg.heldout_fraction * len(user_ids)))
    if len(user_ids) >= 2:
        n_held = min(max(n_held, 1), len(user_ids) - 1)  # both sides non-empty
    held = np.sort(user_ids[perm[:n_held]])
    train = np.sort(user_ids[perm[n_held:]])
    return train, held


def watch_fraction(true_rating, cfg: EnvConfig, runtime=None):
    """Share of the runtime a user watches, rising with the (true) interest (see module doc);
    ``runtime`` matters only with ``cfg.runtime_watch`` (``mmrec.rl.dynamics``)."""
    return dynamics.watch_fraction(true_rating, cfg, runtime)


def pick_onboarding_genres(
    user_model,
    user_id: int,
    index: CatalogIndex,
    n: int,
    n_recalled: int,
    rng: np.random.Generator,
) -> list[str]:
    """The ``n`` genres a simulated user ticks at sign-up, from what they could tell us.

    A newcomer knows nothing of the catalog's films they never saw; they tick the genres of
    films they remember liking. So the user recalls ``n_recalled`` films (popular ones likelier,
    as in a warm start), rates them with their own noise (``sample_rating``, the same noisy
    0.5-step ratings the app would get), and ticks the ``n`` genres with the highest sum of
    centred ratings over those films (liked films count for a genre, disliked ones against;
    ties broken at random). Nothing here reads the user's true taste over the whole catalog.
    """
    counts = index.genre_matrix.sum(axis=0)  # (G,)
    valid = counts > 0
    if n <= 0 or not valid.any():
        return []
    n_items = len(index)
    k = int(min(max(n_recalled, 1), n_items))
    p = (index.popularity + 1.0) / (index.popularity + 1.0).sum()  # (N,)
    rows = rng.choice(n_items, size=k, replace=False, p=p)  # (k,)
    said = np.asarray(
        user_model.sample_rating(user_id, index.movie_ids[rows], rng), dtype=np.float32
    )  # (k,)
    evidence = rating_to_unit(said) @ index.genre_matrix[rows]  # (G,)
    evidence = evidence + ONBOARDING_TIE_BREAK * rng.standard_normal(len(evidence))
    evidence[~valid] = -np.inf
    order = np.argsort(-evidence)[: min(n, int(valid.sum()))]
    return [index.genres[i] for i in order]


class MovieRecEnv(gym.Env):
    """Session-of-recommendations environment (see the module docstring)."""

    metadata = {"render_modes": []}

    def __init__(
        self,
        catalog,
        item_emb: np.ndarray,
        user_model,
        cfg: EnvConfig,
        split: str = "train",
        training: bool = True,
        users: np.ndarray | None = None,
    ):
        """``catalog``: a ``Catalog`` or a ``CatalogIndex``; ``item_emb``: ``(N, D)``.

        ``split``: "train" or "heldout" users of ``split_users``; ``users`` overrides it.
        ``training``: allows warm starts (prior ratings) so the policy also sees long histories.
        """
        super().__init__()
        self.index = (
            catalog if isinstance(catalog, CatalogIndex) else CatalogIndex.from_catalog(catalog)
        )
        self.item_emb = normalize_embeddings(item_emb)  # (N, D)
        if len(self.item_emb) != len(self.index):
            raise ValueError(f"{len(self.item_emb)} embeddings for {len(self.index)} movies")
        self.user_model = user_model
        self.cfg = cfg
        self.training = training
        if users is None:
            train, held = split_users(user_model.user_ids, cfg)
            if split not in ("train", "heldout"):
                raise ValueError(f"split must be 'train' or 'heldout', got {split!r}")
            users = train if split == "train" else held
        self.users = np.asarray(users, dtype=np.int64)
        if len(self.users) == 0:
            raise ValueError(f"no users in the '{split}' split")
        self.encoder = StateEncoder(cfg)
        n_items, dim = self.item_emb.shape
        self.state_dim = self.encoder.state_dim(dim, len(self.index.genres))
        self.observation_space = gym.spaces.Box(
            -OBS_BOUND, OBS_BOUND, (self.state_dim,), np.float32
        )
        self.action_space = gym.spaces.Discrete(n_items)
        self.user_state = UserState(0)
        self.mask = np.ones(n_items, dtype=bool)
        self.true_ratings = np.zeros(n_items, dtype=np.float32)
        self.steps = 0  # steps in the episode
        self.session_steps = 0  # steps in the current session
        genre_counts = np.maximum(self.index.genre_matrix.sum(axis=1, keepdims=True), 1.0)
        self.dynamics = UserDynamics(cfg, self.index.genre_matrix / genre_counts, self.item_emb)

    # ------------------------------------------------------------------ gym API

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        """Options: ``user_id`` (default: random user of the split), ``liked_genres``, ``history``."""
        super().reset(seed=seed)
        options = options or {}
        rng = self.np_random
        user_id = int(options.get("user_id", self.users[rng.integers(len(self.users))]))
        movie_ids = self.index.movie_ids
        self.true_ratings = np.asarray(
            self.user_model.expected_rating(user_id, movie_ids), dtype=np.float32
        )  # (N,)
        if "liked_genres" in options:
            liked = list(options["liked_genres"])
        else:
            liked = pick_onboarding_genres(
                self.user_model,
                user_id,
                self.index,
                self.cfg.onboarding_genres,
                self.cfg.onboarding_recall,
                rng,
            )
        history = [(int(m), float(r)) for m, r in options.get("history", [])]
        if not history and self.training and rng.random() < self.cfg.warm_start_prob:
            history = self._warm_start_history(user_id, rng)
        self.user_state = UserState(user_id, history, liked)
        self.mask = np.ones(len(movie_ids), dtype=bool)
        if history:
            self.mask[self.index.positions([m for m, _ in history])] = False
        self.steps = 0
        self.session_steps = 0
        self.dynamics.start(user_id)
        return self._obs(), self._info()

    @property
    def max_episode_steps(self) -> int:
        """Most steps an episode can take (several sessions when users return)."""
        sessions = self.cfg.max_sessions if self.cfg.returning else 1
        return self.cfg.episode_length * max(int(sessions), 1)

    def step(self, action):
        action = int(action)
        if not 0 <= action < len(self.mask):
            raise ValueError(f"action {action} outside the catalog of {len(self.mask)} movies")
        self.steps += 1
        self.session_steps += 1
        movie_id = int(self.index.movie_ids[action])
        info_extra: dict = {"movie_id": movie_id, "item_idx": action}
        left = False
        if not self.mask[action]:
            reward = -1.0
            info_extra.update(
                invalid_action=True,
                rating=np.nan,
                true_rating=np.nan,
                static_rating=np.nan,
                watch_minutes=0.0,
            )
        else:
            rating = float(
                self.user_model.sample_rating(
                    self.user_state.user_id, np.array([movie_id]), self.np_random
                )[0]
            )
            static = float(self.true_ratings[action])
            # The interest now: the static true rating moved by satiation / novelty (equal to
            # it with those dynamics off); it drives the rating, the watch time, satisfaction.
            true = self.dynamics.interest(action, static)
            if true != static:  # the same noisy rating, moved and put back on the 0.5 grid
                rating = float(np.clip(np.round((rating + true - static) * 2.0) / 2.0, 0.5, 5.0))
            runtime = self.index.runtime[action]
            minutes = float(runtime * watch_fraction(true, self.cfg, runtime))
            reward = (
                float(rating_to_unit(rating))
                + self.cfg.watch_weight * minutes / self.cfg.watch_norm_minutes
            )
            self.user_state = self.user_state.with_rating(movie_id, rating)
            self.mask[action] = False
            self.dynamics.watched(action, true)
            left = self.dynamics.leaves(self.np_random)
            info_extra.update(
                invalid_action=False,
                rating=rating,
                true_rating=true,
                static_rating=static,
                watch_minutes=minutes,
            )
        terminated, truncated, returned = not self.mask.any(), False, False
        if not terminated and (left or self.session_steps >= self.cfg.episode_length):
            terminated, truncated, returned = self._end_session(left)
        info = self._info()
        info.update(info_extra)
        info.update(left=left, returned=returned)
        return self._obs(), float(reward), terminated, truncated, info

    def _end_session(self, left: bool) -> tuple[bool, bool, bool]:
        """``(terminated, truncated, returned)`` at a session's end (``mmrec.rl.dynamics``).

        Static users (the default): the time limit truncates (their taste goes on; value
        bootstraps). A user who left and does not come back ends the episode for good.
        """
        if not self.cfg.returning:
            return left, not left, False
        if self.dynamics.session + 1 >= self.cfg.max_sessions:
            return False, True, False  # the simulation stops; the user might still return
        if self.dynamics.returns(self.np_random):
            self.session_steps = 0
            return False, False, True
        return True, False, False

    # ------------------------------------------------------------------ helpers

    def myopic_scores(self) -> np.ndarray:
        """``(N,)`` the noise-free immediate reward of recommending each film now, from the
        hidden state (true taste, satiation, novelty, runtime): what a *myopic oracle* ranks by.
        Not available to any real policy; the yardstick planning has to beat."""
        interest = self.dynamics.interest_all(self.true_ratings)  # (N,)
        minutes = self.index.runtime * watch_fraction(interest, self.cfg, self.index.runtime)
        return (
            rating_to_unit(interest) + self.cfg.watch_weight * minutes / self.cfg.watch_norm_minutes
        )

    def action_masks(self) -> np.ndarray:
        """``(N,) bool``: True where an action is valid (movies not yet seen in the session).

        The sb3-contrib ``MaskablePPO`` convention, so standard agents need no wrapper to
        avoid repeats; the same array as ``info["action_mask"]``.
        """
        return self.mask.copy()

    def _obs(self) -> np.ndarray:
        return self.encoder.encode(self.user_state, self.item_emb, self.index)

    def _info(self) -> dict:
        return {
            "action_mask": self.mask.copy(),
            "user_id": self.user_state.user_id,
            "session": self.dynamics.session,
            "satisfaction": self.dynamics.satisfaction,
        }

    def _warm_start_history(
        self, user_id: int, rng: np.random.Generator
    ) -> list[tuple[int, float]]:
        """Prior ratings for a warm start: popular movies are likelier to have been seen."""
        n_items = len(self.index)
        h = int(rng.integers(1, max(2, min(self.cfg.max_start_history, n_items - 1) + 1)))
        p = (self.index.popularity + 1.0) / (self.index.popularity + 1.0).sum()
        rows = rng.choice(n_items, size=h, replace=False, p=p)
        movie_ids = self.index.movie_ids[rows]
        ratings = self.user_model.sample_rating(user_id, movie_ids, rng)
        return [(int(m), float(r)) for m, r in zip(movie_ids, ratings)]

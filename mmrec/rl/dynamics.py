"""User dynamics of the simulator: how one user's reaction moves within and across sessions.

The user models (``mmrec.data.hidden``, ``mmrec.rl.simulator``) give a *static* taste: the
noise-free rating ``r(u, m)`` of a film never depends on what came before. Without more, the
best policy is greedy on that rating and planning ahead buys nothing. These dynamics put the
consequences of a recommendation into the future, after RecSim's interest-evolution
environment (satiation, a time budget that good content extends) and KuaiSim's leave / return
models. Each has a switch in ``EnvConfig``; with every switch off the environment is exactly
the static one (same rewards, same random draws).

Per step, the *interest* in the recommended film ``m`` is the static rating moved by the
user's current state, clipped to the rating scale::

    interest = clip(r(u, m) - satiation_strength * h(m) . sigma          (satiation)
                            + novelty_strength * a(u) * (novelty(m) - 1/2), 0.5, 5)  (novelty)

and the interest drives everything the user does with the film:

* **rating**: the user's noisy static rating moved by ``interest - r(u, m)``, again rounded to
  0.5 steps and clipped (so the noise model is unchanged);
* **watch time** ``runtime * sigmoid(watch_slope * (interest - watch_midpoint - lift))`` with,
  when ``runtime_watch`` is on, ``lift = runtime_slope * (runtime - 100) / 60``: a long film
  needs more interest to be watched through, a short one less;
* **satisfaction** ``S <- satisfaction_memory * S + (1 - satisfaction_memory) * interest``
  (stars, a moving average of the session so far; starts at ``satisfaction_start``).

Satiation / boredom (``satiation``): ``sigma`` (one value per genre) grows by ``h(m)``, the
film's genre multi-hot divided by its number of genres, after each film watched and decays by
``satiation_decay`` every step, and by ``satiation_decay ** return_gap_steps`` between two
sessions. Repeating a genre lowers the next ratings and watch time of that genre; the user
recovers when fed something else or given time.

Novelty / diversity appetite (``novelty``): ``novelty(m) = 1 - max cos(e_m, e_j)`` over the
films ``j`` watched earlier in this session (unit fused embeddings; no term for a session's
first film). ``a(u)`` in [0, 2] (mean 1) is the user's appetite for it, fixed per user (drawn
from the user id, not from the episode's random stream): a diverse list pleases some users much
more than others. Near-duplicates of what was just watched lose interest, films unlike
anything seen gain it.

Session exit (``session_exit``): after each film the user leaves with probability
``exit_max * sigmoid(exit_slope * (exit_threshold - S))``: a dissatisfied user leaves early, so
episode length varies. Leaving ends the session (``terminated`` unless the user returns).

Returning users (``returning``): an episode is up to ``max_sessions`` sessions of the same user.
When a session ends (the user left, or ``episode_length`` films were shown), the user comes
back with probability ``return_max * sigmoid(return_slope * (S - return_threshold))``: the last
session's final satisfaction decides. A returning user starts the next session with that
satisfaction and the satiation left after the gap, and never gets a film shown before; one who
does not return ends the episode (``terminated``: nothing more to gain from them). The episode
is truncated after ``max_sessions`` sessions.

The whole state (``sigma``, ``S``, the session's films) is hidden from the policy, which sees
only the rating history as before: a policy has to infer it, as a real recommender would.
"""

from __future__ import annotations

import numpy as np

from mmrec.config import EnvConfig

MIN_RATING, MAX_RATING = 0.5, 5.0
REFERENCE_RUNTIME = 100.0  # minutes: a film of this length needs no extra interest
APPETITE_SEED = 1414  # fixes each user's novelty appetite (mixed with the user id)


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=np.float64)))


def any_dynamics(cfg: EnvConfig) -> bool:
    """Whether any dynamic is switched on."""
    return bool(
        cfg.satiation or cfg.novelty or cfg.session_exit or cfg.runtime_watch or cfg.returning
    )


def with_dynamics(cfg: EnvConfig, on: bool = True) -> EnvConfig:
    """A copy of ``cfg`` with every dynamic switched on (or off), parameters kept."""
    import dataclasses

    return dataclasses.replace(
        cfg, satiation=on, novelty=on, session_exit=on, runtime_watch=on, returning=on
    )


def novelty_appetite(user_id: int) -> float:
    """The user's fixed appetite ``a(u)`` in [0, 2] for films unlike what they just watched."""
    rng = np.random.default_rng([APPETITE_SEED, abs(int(user_id))])
    return float(rng.uniform(0.0, 2.0))


def watch_fraction(interest, cfg: EnvConfig, runtime=None):
    """Share of the runtime a user watches, rising with interest (see the module doc).

    ``runtime`` (minutes) only matters when ``cfg.runtime_watch`` is on.
    """
    lift = 0.0
    if cfg.runtime_watch and runtime is not None:
        lift = cfg.runtime_slope * (np.asarray(runtime, dtype=np.float64) - REFERENCE_RUNTIME) / 60
    return _sigmoid(cfg.watch_slope * (np.asarray(interest) - cfg.watch_midpoint - lift))


def leave_probability(satisfaction, cfg: EnvConfig):
    """Chance the user leaves the session after a film, given their satisfaction (stars)."""
    return cfg.exit_max * _sigmoid(cfg.exit_slope * (cfg.exit_threshold - np.asarray(satisfaction)))


def return_probability(satisfaction, cfg: EnvConfig):
    """Chance the user comes back for another session, given the last one's satisfaction."""
    return cfg.return_max * _sigmoid(
        cfg.return_slope * (np.asarray(satisfaction) - cfg.return_threshold)
    )


class UserDynamics:
    """The hidden, evolving state of one simulated user over an episode (module doc).

    ``genre_weights`` ``(N, G)``: each film's genre multi-hot divided by its genre count;
    ``item_emb`` ``(N, D)`` unit rows. Call :meth:`start` per episode, :meth:`interest` before
    and :meth:`watched` after each film, :meth:`end_session` when a session ends.
    """

    def __init__(self, cfg: EnvConfig, genre_weights: np.ndarray, item_emb: np.ndarray):
        self.cfg = cfg
        self.genre_weights = np.asarray(genre_weights, dtype=np.float64)  # (N, G)
        self.item_emb = np.asarray(item_emb, dtype=np.float32)  # (N, D)
        self.satiation = np.zeros(self.genre_weights.shape[1])  # (G,) sigma
        self.satisfaction = cfg.satisfaction_start  # S, stars
        self.appetite = 1.0  # a(u)
        self.session_items: list[int] = []  # catalog rows watched in this session
        self.session = 0  # 0-based session index within the episode

    def start(self, user_id: int) -> None:
        self.satiation[:] = 0.0
        self.satisfaction = self.cfg.satisfaction_start
        self.appetite = novelty_appetite(user_id) if self.cfg.novelty else 1.0
        self.session_items = []
        self.session = 0

    def interest(self, row: int, true_rating: float) -> float:
        """The film's interest now: the static rating moved by satiation and novelty."""
        cfg, shift = self.cfg, 0.0
        if cfg.satiation:
            shift -= cfg.satiation_strength * float(self.genre_weights[row] @ self.satiation)
        if cfg.novelty and self.session_items:
            sims = self.item_emb[self.session_items] @ self.item_emb[row]  # (k,)
            novelty = 1.0 - float(np.clip(sims.max(), 0.0, 1.0))
            shift += cfg.novelty_strength * self.appetite * (novelty - 0.5)
        return float(np.clip(true_rating + shift, MIN_RATING, MAX_RATING))

    def interest_all(self, true_ratings: np.ndarray) -> np.ndarray:
        """``(N,)`` :meth:`interest` of every film at once (for oracles and displays; the
        environment's step uses the one-film path)."""
        cfg = self.cfg
        shift = np.zeros(len(true_ratings))
        if cfg.satiation:
            shift -= cfg.satiation_strength * (self.genre_weights @ self.satiation)
        if cfg.novelty and self.session_items:
            sims = self.item_emb @ self.item_emb[self.session_items].T  # (N, k)
            novelty = 1.0 - np.clip(sims.max(axis=1), 0.0, 1.0)
            shift += cfg.novelty_strength * self.appetite * (novelty - 0.5)
        return np.clip(np.asarray(true_ratings, dtype=np.float64) + shift, MIN_RATING, MAX_RATING)

    def watched(self, row: int, interest: float) -> None:
        """Update the state after the user watched film ``row`` with this interest."""
        cfg = self.cfg
        if cfg.satiation:
            self.satiation = cfg.satiation_decay * self.satiation + self.genre_weights[row]
        m = cfg.satisfaction_memory
        self.satisfaction = m * self.satisfaction + (1.0 - m) * interest
        self.session_items.append(int(row))

    def leaves(self, rng: np.random.Generator) -> bool:
        """Whether the user leaves now (draws from ``rng`` only when session exit is on)."""
        if not self.cfg.session_exit:
            return False
        return bool(rng.random() < leave_probability(self.satisfaction, self.cfg))

    def returns(self, rng: np.random.Generator) -> bool:
        """At a session's end: whether the user comes back for another session (and if so,
        start it: satiation recovers over the gap, satisfaction carries over)."""
        cfg = self.cfg
        if not cfg.returning or self.session + 1 >= cfg.max_sessions:
            return False
        if rng.random() >= return_probability(self.satisfaction, cfg):
            return False
        self.satiation = self.satiation * cfg.satiation_decay**cfg.return_gap_steps
        self.session_items = []
        self.session += 1
        return True

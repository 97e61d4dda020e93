"""Live learning in the app: a per-user Bayesian preference on top of the shared DQN.

Why not the DQN alone. The shared two-tower Q-network (``mmrec.rl.train``) is trained offline
in the simulator and is read-only while serving. Feeding a user's growing rating history into
its state did not adapt in a usable way: the reaction of Q to one more rating is not monotone
(for a fresh user a 5-star Sci-Fi rating lowered the Q of the nearest Sci-Fi films), and a small
per-user TD adapter on top of it was several times weaker than that state effect, so live
updates changed nothing measurable. So the DQN now supplies the *prior* (its Q for the user's
onboarding state: genres and liked titles, fixed for the user) and a per-user Bayesian linear
model supplies what the ratings teach, in closed form:

    features   phi(m) = [e(m) - mean e,  genre_scale * (g(m) - mean g),  1]      (d = D + G + 1)
               e = unit-length fused embedding (D), g = genre multi-hot (G), 1 = the user's level
    model      y = rating on -1..1 = phi(m) . theta + noise
    prior      theta ~ N(m0, A0^-1):  A0 = diag(taste_precision, ..., level_precision),
               m0 = (0, ..., 0, population mean rating); plus, per onboarding genre,
               ``genre_pseudo`` pseudo-ratings of 4.5 stars at the centroid phi of its films and
               as many at the population mean at the centroid of the others (a contrast)
    posterior  A = A0 + sum phi phi^T,  b = A0 m0 + sum y phi,  mu = A^-1 b   (ratings so far)
    score      s(m) = z(Q_dqn(onboarding state, m)) + weight * phi(m) . mu

z() standardises Q over the catalog, so ``weight`` is in units of its spread. One rating
(phi_a, y_a) is a rank-one update (Sherman--Morrison), and the change of every score is

    s'(m) - s(m) = weight * phi(m)^T A'^-1 phi_a * (y_a - phi_a . mu)

i.e. the sign of the surprise (rating above or below what was expected) times the posterior
similarity of m to the rated film. For the rated film's nearest neighbours in fused space that
similarity is positive (their features nearly coincide), so a 1-star rating (below any
sensible prediction) lowers them and a 5-star rating raises them: the test over random users
and films in tests/unit/test_live.py checks it. The evidence weighting is built in: with few
ratings the prior (DQN + onboarding) dominates; each rating adds one unit of precision.

The posterior is a pure function of the stored ratings and the onboarding profile: it is
recomputed per request from them (a d x d Cholesky solve, d ~ 100: well under a millisecond),
so nothing can drift, a restart or a slider change (other item embeddings) is exact, and two
users never share state. :func:`sherman_morrison` is the incremental form; the tests check both
agree.

Stable lists (:func:`stable_slots`): a shown list keeps its films in their slots; a freed slot
(rated or dismissed film) takes the best new candidate, and a kept film is replaced only when a
candidate beats it by more than ``margin`` (hysteresis). Small score moves therefore change
nothing on screen; a large change happens only when a rating moved many scores by more than the
margin -- strong evidence -- and the returned note says so.

Calibrated lists (:func:`calibrated_fill`, Steck, "Calibrated Recommendations", RecSys 2018):
ranking by score alone let one genre take the whole list -- a newcomer who ticked Sci-Fi and
Romance saw 12 Romance films, 4 of them also Sci-Fi. A free slot is therefore filled greedily
by ``score - calibration * KL(p || q)``, with ``p`` the genre mix the user told us about
(:func:`genre_target`: ticked genres, liked titles, films rated above 2.5 stars) and ``q`` the
genre mix of the list with the candidate (smoothed). With calibration on, the hysteresis
compares on the same objective (:func:`_calibrated_swaps`): a kept film is swapped out only
when the swap raises ``sum(score) - calibration * KL`` by more than ``margin``, so a swap must
pay for the genre mix it spoils (by score alone one 5-star Sci-Fi rating swapped kept Sci-Fi
films for Romance films that had risen in fused space). The weight was chosen on training users: the largest two-genre balance among
settings within 0.01 stars of the best session mean (``reports/live-tuning.json``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from mmrec.config import DQNConfig, LiveConfig
from mmrec.lru import LRU
from mmrec.rl.dqn import DQNAgent
from mmrec.rl.state import (
    ONBOARDING_TITLE_RATING,
    UserState,
    normalize_embeddings,
    rating_to_unit,
)

TELEMETRY_KEEP = 500  # points of telemetry history kept per user


# ----------------------------------------------------------------------------- Bayesian layer


@dataclass
class Posterior:
    """Gaussian belief about one user's taste weights: mean ``mu (d,)``, precision ``A (d, d)``."""

    mu: np.ndarray  # (d,)
    precision: np.ndarray  # (d, d)
    n_ratings: int


def feature_matrix(emb: np.ndarray, genre_matrix: np.ndarray, genre_scale: float) -> np.ndarray:
    """``(N, d)`` float64 features ``phi`` (module docstring) of every catalog row."""
    unit = normalize_embeddings(emb).astype(np.float64)  # (N, D)
    genres = np.asarray(genre_matrix, dtype=np.float64)  # (N, G)
    return np.concatenate(
        [
            unit - unit.mean(axis=0),
            genre_scale * (genres - genres.mean(axis=0)),
            np.ones((len(unit), 1)),
        ],
        axis=1,
    )


def genre_centroids(phi: np.ndarray, genre_matrix: np.ndarray) -> np.ndarray:
    """``(2, G, d)``: mean feature row of each genre's films, and of all the other films."""
    g = np.ascontiguousarray(np.asarray(genre_matrix, dtype=np.float64).T)  # (G, N)
    counts = g.sum(axis=1)  # (G,)
    sums = g @ phi  # (G, d)
    inside = sums / np.maximum(counts, 1.0)[:, None]
    outside = (phi.sum(axis=0) - sums) / np.maximum(len(phi) - counts, 1.0)[:, None]
    return np.stack([inside, outside])


def posterior(
    phi: np.ndarray,
    rows: np.ndarray,
    ratings: np.ndarray,
    genre_rows: np.ndarray,
    cfg: LiveConfig,
    level: float,
) -> Posterior:
    """Closed-form posterior from the prior, the onboarding genres and the ratings.

    ``phi (N, d)`` features; ``rows (n,)`` catalog rows rated with ``ratings (n,)`` (stars);
    ``genre_rows (2, k, d)`` centroid features of the onboarding genres' films and of the
    other films; ``level``: population mean rating on -1..1 (the prior mean of the intercept).

    A ticked genre is a contrast: ``genre_pseudo`` pseudo-ratings of 4.5 stars at its films'
    centroid and as many at the population mean at the other films' centroid. (Without the
    second half the intercept would absorb "likes Sci-Fi" as "rates everything higher".)
    """
    d = phi.shape[1]
    prior = np.full(d, float(cfg.taste_precision))
    prior[-1] = float(cfg.level_precision)
    precision = np.diag(prior)  # (d, d)
    b = np.zeros(d)
    b[-1] = prior[-1] * level
    if genre_rows.shape[1]:
        y_genre = float(rating_to_unit(ONBOARDING_TITLE_RATING))
        for rows_g, y in ((genre_rows[0], y_genre), (genre_rows[1], level)):
            precision += cfg.genre_pseudo * rows_g.T @ rows_g
            b += cfg.genre_pseudo * y * rows_g.sum(axis=0)
    if len(rows):
        x = phi[rows]  # (n, d)
        precision += x.T @ x
        b += x.T @ rating_to_unit(ratings).astype(np.float64)
    chol = np.linalg.cholesky(precision)
    mu = np.linalg.solve(chol.T, np.linalg.solve(chol, b))  # (d,)
    return Posterior(mu=mu, precision=precision, n_ratings=len(rows))


def sherman_morrison(
    cov: np.ndarray, mu: np.ndarray, x: np.ndarray, y: float
) -> tuple[np.ndarray, np.ndarray]:
    """One rating as a rank-one update: ``(A^-1, mu) -> (A'^-1, mu')`` in O(d^2).

    ``mu' = mu + A'^-1 x (y - x.mu)``: the move is the surprise times the posterior-weighted
    direction of the rated film (what the sign argument in the module docstring uses).
    """
    cx = cov @ x  # (d,)
    cov_new = cov - np.outer(cx, cx) / (1.0 + x @ cx)
    mu_new = mu + cov_new @ x * (y - x @ mu)
    return cov_new, mu_new


def standardize(q: np.ndarray) -> np.ndarray:
    """``(N,)`` -> zero mean, unit spread over the catalog (constant input -> zeros)."""
    q = np.asarray(q, dtype=np.float64)
    sd = q.std()
    return (q - q.mean()) / sd if sd > 1e-12 else np.zeros_like(q)


# ----------------------------------------------------------------------------- stable lists


def stable_slots(
    score: np.ndarray,
    allowed: np.ndarray,
    previous: list[int],
    k: int,
    margin: float,
    calibrate: tuple[np.ndarray, np.ndarray, float] | None = None,
    calibrated_swaps: bool = True,
) -> tuple[list[int], dict]:
    """Top-``k`` rows by ``score`` among ``allowed``, keeping ``previous`` (rows, slot order).

    A previous film that is no longer allowed (rated, dismissed, filtered) frees its slot; the
    slot takes the best candidate not on the list. A kept film leaves only when the best
    remaining candidate scores more than ``margin`` above it (worst kept first). Returns the
    rows in slot order and ``{"freed", "replaced", "swaps": [(old, new), ...]}``.

    ``calibrate = (dist (N, G), target (G,), weight)``: free slots are filled by
    :func:`calibrated_fill` (genre mix of the whole list towards ``target``) instead of by
    score alone, and the hysteresis compares swaps on the same objective
    (:func:`_calibrated_swaps`; ``calibrated_swaps=False``: on score alone, the ablation).
    """
    allowed = np.asarray(allowed, dtype=bool)
    slots: list[int | None] = [int(r) if allowed[int(r)] else None for r in previous][:k]
    freed = sum(1 for s in slots if s is None)
    kept = {s for s in slots if s is not None}
    # Fewer slots than k (first call or a smaller list before): grow the list at the end.
    slots += [None] * (k - len(slots))
    cand = np.flatnonzero(allowed)
    cand = cand[~np.isin(cand, list(kept))] if kept else cand
    # Only the best few hundred can be placed (free slots, the calibrated pool, swaps): select
    # them in O(N) before sorting, so a 100k catalog costs no full sort per request.
    need = CALIBRATION_POOL + 2 * k
    if len(cand) > need:
        cand = cand[np.argpartition(-score[cand], need - 1)[:need]]
    cand = cand[np.argsort(-score[cand], kind="stable")]  # best first
    empty = [i for i, s in enumerate(slots) if s is None]
    if calibrate is not None and calibrate[2] > 0:
        dist, target, weight = calibrate
        fill = calibrated_fill(score, cand, sorted(kept), len(empty), dist, target, weight)
        cand = np.concatenate([fill, cand[~np.isin(cand, fill)]]).astype(np.int64)
    nxt = 0
    for i in empty:
        if nxt < len(cand):
            slots[i] = int(cand[nxt])
            nxt += 1
    slots = [s for s in slots if s is not None]
    if calibrate is not None and calibrate[2] > 0 and calibrated_swaps:
        swaps = _calibrated_swaps(score, slots, kept, cand[nxt:], margin, *calibrate)
        return slots, {"freed": freed, "replaced": len(swaps), "swaps": swaps}
    swaps = []
    # Hysteresis: the best outsider against the weakest kept film, while it wins by > margin.
    order = sorted((i for i, s in enumerate(slots) if s in kept), key=lambda i: score[slots[i]])
    for i in order:
        if nxt >= len(cand) or score[cand[nxt]] <= score[slots[i]] + margin:
            break
        swaps.append((slots[i], int(cand[nxt])))
        slots[i] = int(cand[nxt])
        nxt += 1
    return slots, {"freed": freed, "replaced": len(swaps), "swaps": swaps}


def _calibrated_swaps(score, slots, kept, outsiders, margin, dist, target, weight) -> list:
    """Hysteresis on the calibrated list objective ``sum(score) - weight * KL(target || mix)``
    (the one :func:`calibrated_fill` maximises): the (kept film, outsider) swap that raises it
    most, while it raises it by more than ``margin``. Edits ``slots`` in place; returns the
    swaps. By score alone a 5-star Sci-Fi rating could swap a kept Sci-Fi film for a Romance
    film that moved up in fused space, moving the list away from the mix the user just asked
    for; here that swap must also pay for the genre mix it spoils."""
    pool = [int(r) for r in outsiders[:CALIBRATION_POOL]]
    swaps: list[tuple[int, int]] = []
    if not pool:
        return swaps
    total = dist[slots].sum(axis=0)  # (G,)
    size = len(slots)
    for _ in range(len(slots)):
        base = _kl(target, (total / size)[None, :])[0]
        rows = np.asarray(pool, dtype=np.int64)
        best = (margin, None, None)
        for i, s in enumerate(slots):
            if s not in kept:
                continue  # a film placed in this call stays
            mix = (total - dist[s])[None, :] + dist[rows]  # (M, G) with each outsider for s
            gain = score[rows] - score[s] - weight * (_kl(target, mix / size) - base)
            j = int(np.argmax(gain))
            if gain[j] > best[0]:
                best = (float(gain[j]), i, j)
        if best[1] is None:
            break
        _, i, j = best
        old, new = slots[i], pool.pop(j)
        swaps.append((old, new))
        slots[i] = new
        total += dist[new] - dist[old]
        if not pool:
            break
    return swaps


# ----------------------------------------------------------------------------- calibrated lists

CALIBRATION_POOL = 300  # best-scored candidates a calibrated fill chooses from
KL_SMOOTHING = 0.01  # Steck's alpha: q~ = (1 - a) q + a p keeps KL(p || q~) finite


def genre_distributions(genre_matrix: np.ndarray) -> np.ndarray:
    """``(N, G)``: each film's genres as a distribution (uniform over its genres; 0 if none)."""
    g = np.asarray(genre_matrix, dtype=np.float64)
    return g / np.maximum(g.sum(axis=1, keepdims=True), 1.0)


def genre_target(
    dist: np.ndarray,
    liked_genres: np.ndarray,
    rated_rows: np.ndarray,
    ratings: np.ndarray,
    discovery: float,
    catalog: np.ndarray | None = None,
) -> np.ndarray:
    """``(G,)`` the genre mix a list for this user should have (calibrated recommendations,
    Steck 2018), from what the user told us:

    - each onboarding genre counts as one film of that genre alone;
    - each rated (or liked at onboarding) film counts with weight ``(stars - 2.5) / 2.5`` when
      above 2.5 stars, spread over its genres; a film rated 2.5 stars or less adds nothing
      (a disliked genre loses share because the others gain it, and through the score);
    - mixed with the whole catalog's mix at ``discovery * 5 / (5 + n_ratings)``: a newcomer's
      list leaves room for films outside what they named, less so as evidence accumulates.

    ``dist (N, G)`` from :func:`genre_distributions`; ``liked_genres (G,)`` 0/1; ``catalog``
    the catalog's mix ``dist.mean(axis=0)`` when the caller keeps it.
    """
    catalog = dist.mean(axis=0) if catalog is None else catalog  # (G,)
    evidence = np.asarray(liked_genres, dtype=np.float64).copy()  # a pseudo-film per genre
    w = np.clip((np.asarray(ratings, dtype=np.float64) - 2.5) / 2.5, 0.0, None)  # (n,)
    if len(rated_rows):
        evidence = evidence + w @ dist[rated_rows]
    user = evidence / evidence.sum() if evidence.sum() > 0 else catalog
    share = float(discovery) * 5.0 / (5.0 + len(rated_rows))
    target = (1.0 - share) * user + share * catalog
    return target / target.sum()


def _kl(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """``KL(p || q~)`` for each row of ``q (M, G)`` with Steck's smoothing; ``p (G,)``."""
    q = (1.0 - KL_SMOOTHING) * q + KL_SMOOTHING * p
    nz = p > 0
    return (p[nz] * np.log(p[nz] / np.maximum(q[:, nz], 1e-12))).sum(axis=1)


def calibrated_fill(
    score: np.ndarray,
    cand: np.ndarray,
    kept: list[int],
    n: int,
    dist: np.ndarray,
    target: np.ndarray,
    weight: float,
) -> list[int]:
    """Choose ``n`` rows from ``cand`` (best score first) to join ``kept``, one at a time,
    each maximising ``score - weight * KL(target || genre mix of the list with it)``.

    The greedy form of Steck's calibrated re-ranking; with ``weight`` 0 it is the top ``n``.
    Only the ``CALIBRATION_POOL`` best-scored candidates are considered.
    """
    pool = np.asarray(cand[:CALIBRATION_POOL], dtype=np.int64)
    if weight <= 0 or n <= 0 or len(pool) == 0:
        return [int(r) for r in pool[:n]]
    total = dist[kept].sum(axis=0) if kept else np.zeros(dist.shape[1])  # (G,)
    size = len(kept)
    chosen: list[int] = []
    free = np.ones(len(pool), dtype=bool)
    for _ in range(min(n, len(pool))):
        mix = (total[None, :] + dist[pool]) / (size + 1)  # (M, G) list mix with each candidate
        gain = score[pool] - weight * _kl(target, mix)
        gain[~free] = -np.inf
        j = int(np.argmax(gain))
        free[j] = False
        chosen.append(int(pool[j]))
        total += dist[pool[j]]
        size += 1
    return chosen


# ----------------------------------------------------------------------------- the policy


class PersonalPolicy:
    """Scores for app users: DQN prior Q + the user's Bayesian preference (module docstring)."""

    def __init__(self, agent: DQNAgent, cfg: DQNConfig, live: LiveConfig | None = None):
        self.agent = agent
        self.cfg = cfg
        self.live = live or LiveConfig()
        self._reps = LRU(256)  # (id(emb), kind) -> (emb, item-side arrays)
        self._dist: np.ndarray | None = None  # (N, G) genre distributions, on first use
        self._catalog_mix: np.ndarray | None = None  # (G,) their mean
        index = agent.index
        self.genre_matrix = np.asarray(index.genre_matrix, dtype=np.float64)  # (N, G)
        # Prior mean of the user's level: the training ratings' mean (shrunk item means average)
        self.level = float(rating_to_unit(float(np.mean(index.mean_rating))))

    # ----------------------------------------------------------------- item side
    def _cached(self, emb: np.ndarray, kind: str, make):
        key = (id(emb), kind)
        hit = self._reps.get(key)
        if hit is not None and hit[0] is emb:
            return hit[1]
        value = make()
        self._reps.put(key, (emb, value))  # keep emb alive so its id is not reused
        return value

    def item_reps(self, emb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(unit embeddings (N, D), item vectors (N, E), item bias (N,)) for this matrix."""

        def make():
            x = torch.from_numpy(self.agent.item_inputs(emb)).to(self.agent.device)
            with torch.no_grad():
                vec, bias = self.agent.q_network.items(x)  # (N, E), (N,)
            return normalize_embeddings(emb), vec.cpu().numpy(), bias.cpu().numpy()

        return self._cached(emb, "reps", make)

    def features(self, emb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(phi (N, d), genre centroids (2, G, d): in-genre, out-of-genre) for this matrix."""

        def make():
            phi = feature_matrix(emb, self.genre_matrix, self.live.genre_scale)
            return phi, genre_centroids(phi, self.genre_matrix)

        return self._cached(emb, "phi", make)

    def _state_vecs(self, states: list[UserState], unit_emb: np.ndarray) -> np.ndarray:
        """(B, E) state-tower outputs for these user states."""
        enc = np.stack(
            [self.agent.encoder.encode(s, unit_emb, self.agent.index) for s in states]
        )  # (B, S)
        with torch.no_grad():
            out = self.agent.q_network.states(torch.from_numpy(enc).to(self.agent.device))
        return out.cpu().numpy()

    @staticmethod
    def _delta(personal: dict, dim: int) -> np.ndarray:
        """A per-user adapter stored by earlier versions (kept so old users score as before)."""
        d = np.asarray(personal.get("delta", []), dtype=np.float32)
        return d if d.shape == (dim,) else np.zeros(dim, dtype=np.float32)

    # ----------------------------------------------------------------- scoring
    def q_values(self, state: UserState, emb: np.ndarray, personal: dict) -> np.ndarray:
        """(N,) the DQN's Q for ``state`` (the prior part of the score): one mat-vec. A dueling
        network's state value V(s) is left out: the same for every film, it changes no ranking
        (the score standardises Q per user), and the explanations differentiate this same sum."""
        unit, vec, bias = self.item_reps(emb)
        u = self._state_vecs([state], unit)[0] + self._delta(personal, vec.shape[1])  # (E,)
        return vec @ u + bias  # (N,)

    def belief(self, state: UserState, emb: np.ndarray) -> Posterior:
        """The user's posterior after every rating in ``state.history`` (prior if updates off)."""
        phi, centroids = self.features(emb)
        genre_idx = np.flatnonzero(self.agent.index.genre_vector(state.liked_genres))
        rows = self.agent.index.positions_lenient([m for m, _ in state.history])
        ratings = np.asarray([r for _, r in state.history], dtype=np.float64)
        keep = rows >= 0
        rows, ratings = rows[keep], ratings[keep]
        if not self.live.updates:
            rows, ratings = rows[:0], ratings[:0]
        return posterior(phi, rows, ratings, centroids[:, genre_idx], self.live, self.level)

    def scores(
        self, prior_state: UserState, state: UserState, emb: np.ndarray, personal: dict
    ) -> tuple[np.ndarray, np.ndarray, Posterior]:
        """``(score (N,), Q (N,), posterior)``: Q of the DQN for ``prior_state`` (onboarding),
        the posterior from ``state`` (onboarding + every rating), combined as documented."""
        # The prior state changes only at onboarding: its Q is cached per user and embedding.
        key = repr(
            (prior_state.user_id, prior_state.history, sorted(prior_state.liked_genres),
             personal.get("delta"))
        )  # fmt: skip
        q = self._cached(emb, key, lambda: self.q_values(prior_state, emb, personal))
        post = self.belief(state, emb)
        phi, _ = self.features(emb)
        score = standardize(q) + self.live.weight * (phi @ post.mu)  # (N,)
        return score, q, post

    def calibration(self, prior_state: UserState, state: UserState):
        """``(dist (N, G), target (G,), weight)`` for :func:`stable_slots`, or None when
        calibration is off. Evidence: onboarding genres, liked titles and every rating."""
        if self.live.calibration <= 0:
            return None
        if self._dist is None:
            dist = genre_distributions(self.genre_matrix)
            self._catalog_mix = dist.mean(axis=0)
            self._dist = dist
        index = self.agent.index
        pairs = list(prior_state.history) + list(state.history)
        rows = index.positions_lenient([m for m, _ in pairs])
        ratings = np.asarray([r for _, r in pairs], dtype=np.float64)
        keep = rows >= 0
        target = genre_target(
            self._dist,
            index.genre_vector(state.liked_genres),
            rows[keep],
            ratings[keep],
            self.live.discovery,
            self._catalog_mix,
        )
        return self._dist, target, float(self.live.calibration)

    # ----------------------------------------------------------------- telemetry
    def record(
        self, personal: dict, before: Posterior, emb: np.ndarray, pos: int, rating: float, eps
    ) -> tuple[dict, dict]:
        """Telemetry of one rating: reward, the prediction before it and its surprise."""
        phi, _ = self.features(emb)
        predicted = float(phi[pos] @ before.mu)  # on -1..1
        reward = float(rating_to_unit(rating))
        surprise = reward - predicted
        out = dict(personal)
        out["n_updates"] = int(personal.get("n_updates", 0)) + (1 if self.live.updates else 0)
        for key, value in (
            ("rewards", reward),
            ("predicted", predicted),
            ("surprises", surprise),
            ("epsilons", float(eps)),
        ):
            out[key] = (list(personal.get(key, [])) + [value])[-TELEMETRY_KEEP:]
        telemetry = {
            "reward": reward,
            "predicted": predicted,
            "surprise": surprise,
            "epsilon": float(eps),
            "n_updates": out["n_updates"],
            "movie_pos": int(pos),
            "updates": bool(self.live.updates),
        }
        return out, telemetry

"""The one facade the dashboard and the CLI use: recommend, rate, what-if, explain, browse.

Everything here is plain Python over NumPy arrays and the SQLite store; no Streamlit. One
``Recommender`` serves many sessions at once (Streamlit runs each in a thread), so:

- the catalog, the fusion model, the cached branch outputs and the shared policy are read-only
  after loading;
- each user's learned state lives in SQLite: the ratings and onboarding profile (from which the
  user's Bayesian preference is recomputed per request, see ``mmrec.rl.online``) and telemetry,
  written under that user's lock only: no cross-talk between users;
- a rating is committed to SQLite before anything else happens, so it is never lost even if
  the policy update that follows fails.
"""

from __future__ import annotations

import threading
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd

from mmrec.config import Config, load_config
from mmrec.lru import LRU
from mmrec.service_browse import BrowsingMixin
from mmrec.service_explain import ExplanationsMixin

# The value types live in mmrec.values (shared with mmrec.explain, which must not import the
# service); the pages and the CLI keep importing them from this facade.
from mmrec.values import Filters, Pick, RateResult, ServiceError, Weights


class Recommender(BrowsingMixin, ExplanationsMixin):
    """Loads everything once; thread-safe for concurrent sessions.

    Serving state, ranking and rating are here; browsing (movie, search, neighbours, map,
    telemetry, reports, status) is inherited from ``mmrec.service_browse`` and the explanation
    entry points (``serving_state``, ``explain*``, ``learn_user_weights``) from
    ``mmrec.service_explain``.
    """

    def __init__(self, cfg: Config, parts: tuple | None = None, store=None):
        """Load the built catalog and models for ``cfg`` (or take ``parts`` already in memory:
        ``(catalog, model, branches, present, default_emb, agent, policy_meta)``)."""
        from mmrec.built import load_built
        from mmrec.rl.online import PersonalPolicy
        from mmrec.store import RatingsStore

        self.cfg = cfg
        # Torch's thread count is the process's business (mmrec.threads.use_serving_threads,
        # called where a serving process starts), never set per request or per service here.
        if parts is None:
            from mmrec.checkpoint import CheckpointError, CheckpointMismatchError

            try:
                parts = load_built(cfg)
            except FileNotFoundError as exc:
                raise ServiceError(
                    f"models are not built for {cfg.paths.data_dir}: run `python -m mmrec build "
                    f"--data {cfg.paths.data_dir}` ({exc})"
                ) from exc
            except CheckpointMismatchError as exc:
                raise ServiceError(str(exc)) from exc
            except CheckpointError as exc:
                raise ServiceError(
                    f"a checkpoint is damaged: {exc}. Rebuild it (Data page, or `python -m mmrec "
                    f"build --data {cfg.paths.data_dir}`)"
                ) from exc
        (
            self.catalog,
            self.model,
            self.branches,
            self.present,
            self.default_emb,
            self.agent,
            self.policy_meta,
        ) = parts
        self.store = store if store is not None else RatingsStore(cfg.paths.db)
        self.policy = PersonalPolicy(self.agent, cfg.dqn, cfg.live)
        self.hybrid = self._load_hybrid()
        m = self.catalog.movies
        self._ids = self.catalog.movie_ids
        self._pos = {int(mid): i for i, mid in enumerate(self._ids)}
        self._genre_col = {g: j for j, g in enumerate(self.catalog.genres)}
        self._genre_matrix = self.catalog.genre_matrix() > 0  # (N, G) bool
        self._genre_sets = [set(g) for g in m["genres"]]
        self._years = m["year"].astype("float").to_numpy()
        self._avg = m["avg_rating"].to_numpy(dtype=np.float64)
        self._popularity = m["n_ratings"].to_numpy(dtype=np.float64)
        # Plain arrays for building picks: a pandas row lookup per card cost more than ranking.
        self._titles = m["title"].astype(str).to_numpy()
        self._rows = {c: m[c].to_numpy() for c in ("year", "genres", "overview", "poster", "audio")}
        self._emb_cache = LRU(16)  # weight setting -> (N, D) embeddings
        self._user_locks: dict[int, threading.Lock] = {}
        self._locks_lock = threading.Lock()
        self._explainer = None
        self._simulator_lock = threading.Lock()  # the Learning page's simulated users, loaded once
        self._simulator_parts = None  # (user model, training index, held-out ids)

    @classmethod
    def from_config(cls, cfg: Config | None = None) -> Recommender:
        return cls(cfg or load_config())

    # ----------------------------------------------------------------- internals
    def _lock(self, user_id: int) -> threading.Lock:
        with self._locks_lock:
            return self._user_locks.setdefault(int(user_id), threading.Lock())

    def embeddings(self, weights: Weights = Weights()) -> np.ndarray:
        """(N, D) item embeddings under these modality weights (cached; fusion only)."""
        from mmrec.models.inference import item_embeddings

        key = weights.key()
        return self._emb_cache.get_or_make(
            key, lambda: item_embeddings(self.model, self.branches, self.present, key)
        )

    def _movie_pos(self, movie_id: int) -> int:
        try:
            return self._pos[int(movie_id)]
        except (KeyError, ValueError, TypeError):
            raise ServiceError(f"unknown movie id {movie_id!r}") from None

    def _check_user(self, user_id: int) -> dict:
        from mmrec.store import StoreError

        try:
            return self.store.user(int(user_id))
        except (StoreError, ValueError, TypeError):
            raise ServiceError(f"unknown user id {user_id!r}") from None

    def user_state(self, user_id: int):
        from mmrec.rl.state import UserState

        user = self._check_user(user_id)
        history = [(m, r) for m, r in self.store.ratings(user_id) if int(m) in self._pos]
        return UserState(
            user_id=int(user_id),
            history=history,
            liked_genres=list(user["profile"].get("liked_genres", [])),
        )

    def prior_state(self, user_id: int):
        """The state the DQN's Q is read for: onboarding genres and liked titles only.

        Fixed per user on purpose: ratings move the score through the Bayesian preference,
        whose reaction has the right sign (``mmrec.rl.online``), not through the network state.
        """
        from mmrec.rl.state import ONBOARDING_TITLE_RATING, UserState

        user = self._check_user(user_id)
        profile = user["profile"]
        liked = [int(m) for m in profile.get("liked_movies", []) if int(m) in self._pos]
        return UserState(
            user_id=int(user_id),
            history=[(m, ONBOARDING_TITLE_RATING) for m in liked],
            liked_genres=list(profile.get("liked_genres", [])),
        )

    def candidate_mask(self, user_id: int | None, filters: Filters = Filters()) -> np.ndarray:
        """(N,) bool: movies allowed by the user's rules and not yet rated or dismissed."""
        n = len(self._ids)
        mask = np.ones(n, dtype=bool)
        # vectorised over the genre matrix: no Python loop over items (100k-movie catalogs)
        inc = [self._genre_col[g] for g in filters.include_genres if g in self._genre_col]
        if filters.include_genres:
            mask &= self._genre_matrix[:, inc].any(axis=1)
        exc = [self._genre_col[g] for g in filters.exclude_genres if g in self._genre_col]
        if exc:
            mask &= ~self._genre_matrix[:, exc].any(axis=1)
        if filters.year_min is not None:
            mask &= np.nan_to_num(self._years, nan=-1) >= filters.year_min
        if filters.year_max is not None:
            mask &= np.nan_to_num(self._years, nan=1e9) <= filters.year_max
        if filters.min_avg_rating is not None:
            mask &= np.nan_to_num(self._avg, nan=0.0) >= filters.min_avg_rating
        if user_id is not None:
            seen = {m for m, _ in self.store.ratings(user_id)} | self.store.hidden_movies(user_id)
            idx = [self._pos[m] for m in seen if m in self._pos]
            mask[idx] = False
        return mask

    def _load_hybrid(self):
        """The hybrid ranker (EASE + learned residual) when `train-hybrid` built one for this
        catalog: real catalogs rank with it; the demo (no hybrid.pt) keeps the DQN."""
        from mmrec.checkpoint import CheckpointError
        from mmrec.rl.hybrid import load_hybrid

        ckpt = Path(self.cfg.paths.checkpoints_dir)
        if not (ckpt / "hybrid.pt").exists():
            return None
        try:
            return load_hybrid(ckpt, self.catalog, self.default_emb)[0]
        except (CheckpointError, OSError, ValueError, KeyError) as exc:
            raise ServiceError(
                f"the hybrid ranker in {ckpt} cannot be used: {exc}. Rebuild it with `python -m "
                f"mmrec train-hybrid --data {self.cfg.paths.data_dir} --checkpoints {ckpt}`"
            ) from exc

    def _scores(self, state, weights: Weights):
        """``(score (N,), Q (N,), emb (N, D), posterior)`` for this user under these weights."""
        emb = self.embeddings(weights)
        if self.hybrid is not None:  # real catalog: the hybrid ranks (the DQN still learns)
            hybrid = np.asarray(self.hybrid.full_scores(state), dtype=np.float64)
            return hybrid, hybrid, emb, self.policy.belief(state, emb)
        personal = self.store.load_policy_state(state.user_id) or {}
        prior = self.prior_state(state.user_id)
        score, q, post = self.policy.scores(prior, state, emb, personal)
        return score, q, emb, post

    def _pick(
        self, i: int, q: float, rank: int, exploration: bool, reason: str, score: float = 0.0
    ) -> Pick:
        row = {c: v[i] for c, v in self._rows.items()}
        year = row["year"]
        return Pick(
            movie_id=int(self._ids[i]),
            title=str(self._titles[i]),
            year=None if pd.isna(year) else int(year),
            genres=tuple(row["genres"]),
            overview=str(row["overview"]),
            poster=row["poster"],
            audio=row["audio"],
            q=float(q),
            rank=rank,
            exploration=exploration,
            reason=reason,
            score=float(score),
        )

    def _reason(self, i: int, state, emb: np.ndarray, filters: Filters, exploration: bool) -> str:
        if exploration:
            return "exploration: a pick outside the policy's top list, to learn your taste"
        liked = [(m, r) for m, r in state.history if r >= 4.0 and m in self._pos]
        parts = []
        if liked:
            pos = np.array([self._pos[m] for m, _ in liked])
            sims = (
                emb[pos]
                @ emb[i]
                / (np.linalg.norm(emb[pos], axis=1) * np.linalg.norm(emb[i]) + 1e-9)
            )
            j = int(np.argmax(sims))
            title = self._titles[pos[j]]
            parts.append(f"similar to {title}, which you rated {liked[j][1]:g}★")
        elif state.liked_genres:
            common = sorted(self._genre_sets[i] & set(state.liked_genres))
            if common:
                parts.append("matches your chosen genres: " + ", ".join(common))
        if not parts:
            parts.append("the policy's prior for a new user")
        rules = filters.describe()
        if rules:
            parts.append("rules: " + "; ".join(rules))
        return " · ".join(parts)

    def _topk(self, q: np.ndarray, mask: np.ndarray, k: int) -> np.ndarray:
        cand = np.flatnonzero(mask)
        if len(cand) == 0:
            return cand
        k = min(k, len(cand))
        part = cand[np.argpartition(-q[cand], k - 1)[:k]]
        return part[np.argsort(-q[part], kind="stable")]

    # ----------------------------------------------------------------- users
    def users(self) -> list[dict]:
        counts = self.store.rating_counts()
        return [
            {"user_id": u["user_id"], "name": u["name"], "n_ratings": counts.get(u["user_id"], 0)}
            for u in self.store.users()
        ]

    def create_user(self, name: str, liked_genres=(), liked_movies=()) -> int:
        user_id = self.store.create_user(name)
        if liked_genres or liked_movies:
            self.set_onboarding(user_id, liked_genres, liked_movies)
        return user_id

    def set_onboarding(self, user_id: int, liked_genres=(), liked_movies=()) -> None:
        """Cold start: chosen genres become pseudo-ratings at their centroids (and the DQN's
        state); liked titles count as 4.5-star ratings and enter the DQN's prior state."""
        user = self._check_user(user_id)
        unknown = [g for g in liked_genres if g not in self.catalog.genres]
        if unknown:
            raise ServiceError(f"unknown genre(s): {', '.join(unknown)}")
        profile = dict(user["profile"])
        for movie_id in liked_movies:
            self._movie_pos(movie_id)
        profile["liked_genres"] = list(liked_genres)
        profile["liked_movies"] = [int(m) for m in liked_movies]
        self.store.set_profile(user_id, profile)
        for movie_id in liked_movies:
            self.store.add_rating(user_id, int(movie_id), 4.5, source="onboarding")

    # ----------------------------------------------------------------- recommendations
    def _ranked(self, user_id, k, weights, filters, epsilon, seed, previous=None):
        """(rows in slot order, Q, score, exploration flags, state, emb, posterior, slot info).

        ``previous``: movie ids on screen (slot order); kept where still allowed and not beaten
        by more than the margin (``mmrec.rl.online.stable_slots``). None: a fresh top-k.
        """
        from mmrec.rl.online import stable_slots

        state = self.user_state(user_id)
        score, q, emb, post = self._scores(state, weights)
        mask = self.candidate_mask(user_id, filters)
        calibrate = self.policy.calibration(self.prior_state(user_id), state)
        if previous is None and calibrate is None:
            top = self._topk(score, mask, k)
            info = {"freed": 0, "replaced": 0, "swaps": [], "kept": set()}
        else:
            rows = [self._pos[int(m)] for m in previous or () if int(m) in self._pos]
            live = self.cfg.live
            slots, info = stable_slots(
                score, mask, rows, k, live.margin, calibrate, live.calibrated_swaps
            )
            top = np.asarray(slots, dtype=np.int64)
            info["kept"] = set(rows) & set(slots)
        explore = np.zeros(len(top), dtype=bool)
        if epsilon > 0 and len(top):
            # deterministic per (user, number of ratings): a rerun shows the same list
            rng = np.random.default_rng(
                seed if seed is not None else (int(user_id) * 7919 + len(state.history))
            )
            rest = np.setdiff1d(np.flatnonzero(mask), top)
            for slot in range(len(top)):
                if top[slot] in info["kept"]:
                    continue  # exploration never pulls a shown film from under the cursor
                if len(rest) and rng.random() < epsilon:
                    j = int(rng.integers(len(rest)))
                    top[slot], rest = rest[j], np.delete(rest, j)
                    explore[slot] = True
        return top, q, score, explore, state, emb, post, info

    def _picks(self, top, q, score, explore, state, emb, filters) -> list[Pick]:
        order = np.argsort(-score[top], kind="stable") if len(top) else np.zeros(0, int)
        rank = np.empty(len(top), dtype=np.int64)
        rank[order] = np.arange(1, len(top) + 1)
        return [
            self._pick(
                i,
                q[i],
                int(rank[r]),
                bool(explore[r]),
                self._reason(i, state, emb, filters, bool(explore[r])),
                score[i],
            )
            for r, i in enumerate(top)
        ]

    def recommend(
        self,
        user_id: int,
        k: int = 12,
        weights: Weights = Weights(),
        filters: Filters = Filters(),
        epsilon: float = 0.0,
        seed: int | None = None,
        previous: list[int] | None = None,
    ) -> list[Pick]:
        """Top-k by score (DQN prior + the user's Bayesian preference); with probability
        ``epsilon`` a new slot explores.

        ``previous``: the movie ids on screen, in slot order. Given, the list is stable: those
        films keep their slots unless rated/dismissed/filtered out (their slot takes the best new
        film) or a candidate beats them by more than ``cfg.live.margin``. Without it the list is
        sorted by score (``Pick.rank`` is the score rank either way).
        """
        top, q, score, explore, state, emb, _post, _info = self._ranked(
            user_id, k, weights.clipped(), filters, epsilon, seed, previous
        )
        return self._picks(top, q, score, explore, state, emb, filters)

    @staticmethod
    def _list_key(weights: Weights, filters: Filters, k: int) -> str:
        return repr((weights.key(), asdict(filters), int(k)))

    def rate(
        self,
        user_id: int,
        movie_id: int,
        rating: float,
        weights: Weights = Weights(),
        filters: Filters = Filters(),
        k: int = 12,
        epsilon: float = 0.0,
        previous: list[int] | None = None,
    ) -> RateResult:
        """Commit the rating, update this user's belief, return the refreshed list and the diff.

        The returned ``picks`` are in slot order: the list that was on screen (``previous``;
        default: the list this call returned last time for the same weights/filters/k, else the
        top-k before the rating) with the rated film's slot given to the best new film and other
        films replaced only when beaten by more than the margin. ``note`` says why.
        """
        t0 = time.perf_counter()
        self._check_user(user_id)
        pos = self._movie_pos(movie_id)
        try:
            rating = float(rating)
        except (TypeError, ValueError):
            raise ServiceError(f"rating {rating!r} is not a number") from None
        if not (0.5 <= rating <= 5.0):  # also rejects NaN
            raise ServiceError(f"rating {rating!r} outside 0.5-5.0")
        weights = weights.clipped()
        key = self._list_key(weights, filters, k)
        with self._lock(user_id):
            personal = self.store.load_policy_state(user_id) or {}
            if previous is None and personal.get("shown_key") == key:
                previous = list(personal.get("shown", []))
            top0, _q0, s0, _x0, _st0, emb, post0, _i0 = self._ranked(
                user_id, k, weights, filters, epsilon, None, previous
            )
            if previous is None:
                before = [int(self._ids[i]) for i in top0]
            else:  # what is on screen, as it is
                before = [int(m) for m in previous if int(m) in self._pos]
            self.store.add_rating(user_id, int(movie_id), float(rating))  # committed first
            top1, q1, s1, x1, state1, emb1, _post1, info = self._ranked(
                user_id, k, weights, filters, epsilon, None, before
            )
            personal, telemetry = self.policy.record(personal, post0, emb, pos, rating, epsilon)
            personal["shown"] = [int(self._ids[i]) for i in top1]
            personal["shown_key"] = key
            self.store.save_policy_state(user_id, personal)
        after = self._picks(top1, q1, s1, x1, state1, emb1, filters)
        titles = self.catalog.movies["title"].to_numpy()
        before_rows = {self._pos[m] for m in before}
        now = set(top1.tolist())
        entered = [str(titles[i]) for i in top1 if i not in before_rows]
        left = [str(titles[i]) for i in before_rows if i not in now and i != pos]
        q_moves = {int(self._ids[i]): float(s1[i] - s0[i]) for i in before_rows if i in now}
        note = self._change_note(pos, rating, telemetry, info, s0, s1, titles)
        telemetry["ms"] = (time.perf_counter() - t0) * 1000
        telemetry["replaced"] = int(info["replaced"])
        return RateResult(
            picks=after,
            entered=entered,
            left=left,
            q_moves=q_moves,
            telemetry=telemetry,
            note=note,
            replaced=int(info["replaced"]),
        )

    def _change_note(self, pos, rating, telemetry, info, s0, s1, titles) -> str:
        """Why the list changed after a rating, in one or two sentences."""
        from mmrec.rl.state import RATING_HALF_RANGE, RATING_MID

        expected = RATING_MID + RATING_HALF_RANGE * telemetry["predicted"]
        direction = "above" if telemetry["surprise"] > 0 else "below"
        head = (
            f"You rated {titles[pos]} {rating:g}★; the model expected about "
            f"{min(5.0, max(0.5, expected)):.1f}★, so films like it moved "
            f"{'up' if telemetry['surprise'] > 0 else 'down'} ({direction} expectation)."
        )
        if not self.cfg.live.updates:
            head = f"You rated {titles[pos]} {rating:g}★ (live updates are off)."
        n = int(info["replaced"])
        margin = self.cfg.live.margin
        if n == 0:
            return head + (
                f" The other picks stay: no new film beat one of them by more than {margin:g}."
            )
        swaps = info["swaps"]
        gains = [float(s1[new] - s1[old]) for old, new in swaps]
        names = ", ".join(f"{titles[new]} for {titles[old]}" for old, new in swaps[:3])
        more = f" and {n - 3} more" if n > 3 else ""
        strength = "strong evidence: " if n >= 4 else ""
        return head + (
            f" {strength}{n} other pick{'s' if n > 1 else ''} replaced ({names}{more}), each "
            f"beaten by more than the {margin:g} margin (by up to {max(gains):.2f})."
        )

    def dismiss(self, user_id: int, movie_id: int, kind: str) -> None:
        if kind not in ("not_interested", "not_seen"):
            raise ServiceError(f"unknown dismissal kind {kind!r}")
        self._check_user(user_id)
        self._movie_pos(movie_id)
        self.store.log_event(user_id, kind, int(movie_id))

    def what_if(
        self,
        user_id: int,
        weights_new: Weights,
        weights_old: Weights = Weights(),
        filters: Filters = Filters(),
        k: int = 12,
    ) -> dict:
        old = self.recommend(user_id, k, weights_old, filters)
        new = self.recommend(user_id, k, weights_new, filters)
        old_ids = {p.movie_id for p in old}
        new_ids = {p.movie_id for p in new}
        return {
            "entered": [p for p in new if p.movie_id not in old_ids],
            "left": [p for p in old if p.movie_id not in new_ids],
            "picks": new,
        }


def pick_dict(p: Pick) -> dict:
    return asdict(p)


def rebuild(cfg: Config, progress=None, log=None) -> dict:
    """Features + fusion + policy for ``cfg``'s data folder (the Data page's button): built
    beside the served checkpoints and swapped in only when complete
    (:func:`mmrec.rebuild.rebuild_beside`), so other sessions keep being served meanwhile."""
    from mmrec.rebuild import rebuild_beside

    return rebuild_beside(cfg, force=False, progress=progress, log=log or (lambda *_: None))

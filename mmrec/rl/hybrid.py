"""The hybrid ranker: EASE's collaborative score plus a learned residual over content and more.

``score(u, a) = z_EASE(u, a) + f(s_u, x_a)`` on EASE's top ``candidates`` movies for the user,
with ``f`` a small MLP whose last layer starts at zero, so an untrained hybrid *is* EASE and
training can only move it where the validation data says so. ``f`` reads, per (user, movie):

- collaborative scores: EASE (standardised over the user's candidates, log rank), iALS, item-kNN;
- the fused multimodal embedding: cosine of the movie to the user's implicit profile (mean of
  the history's unit embeddings) and to the rating-weighted profile (ratings centred at 3, so a
  disliked film pushes away: the rating as a secondary signal), the closest history film, and
  the element-wise product of profile and movie embedding (which directions of the fused space
  matter to this user);
- movie facts: log-popularity, shrunk mean rating, genre affinity with the history, release year
  against the user's history; optionally (``rating_time_feature``, off by default) how long the
  movie had been rated when the user was last seen.

- with ``extra_features`` (the default): recency (EASE and item-kNN from the user's last
  ``recent`` films, the closest of the last five), EASE weighted by the user's centred ratings,
  raw EASE, popularity standardised over the candidates, release year against the recent films.
- with ``time_features`` (the default): when the user was active and what was rated next to
  what, from the training ratings' timestamps: the candidate's share of everyone's ratings
  inside the user's active window [first, last training rating] and within
  ``time_kernel_days`` of any of their ratings (cut at the last), each against its share
  overall ("popular while this user was active", what a live service knows as "popular now");
  and sequence neighbours of the history (films rated within w positions and g seconds of each
  other in one user's ratings, for each ``adjacency`` (w, g): a page of the site, a search, one
  sitting). These exploit the time structure a random split keeps: its held-out films were
  rated in the same sittings as the user's training films. A temporal split is immune to it
  (nothing after the user's last training rating is read by the window inputs).

Training is for what the user will interact with next, cross-fitted: the training ratings are
cut into ``splits`` validation splits with the test's own rule (disjoint random folds, or
successive temporal windows); for each, the base models are fitted on the rest and the user's
candidates and features are computed exactly as at test time; ``f`` minimises the listwise
softmax cross-entropy of the validation positives among the candidates (the other candidates
are the hard negatives) over the lists of every split. Epochs are chosen on a held-out fifth of
the users. (With one split and the 14 original inputs, the residual's validation gain did not
carry to the test: too few lists, and no input that EASE does not already summarise.)

Films with no training rating have no collaborative vector: they are ranked below every rated
film, among themselves by the content path, the user's iALS vector against the movie's
content mapped into iALS space (a ridge map from the fused embedding to the item factors,
fitted on rated films; Gantner et al.'s attribute-to-factor mapping). A user with no history
gets popularity order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
import torch.nn as nn

from mmrec.config import HybridConfig
from mmrec.eval.metrics import ndcg_at_k, top_k
from mmrec.rl.baselines import (
    TIE_BREAK,
    EASERanker,
    IALSRanker,
    ItemKNNRanker,
    _pop_tiebreak,
    history_rows,
)
from mmrec.rl.state import CatalogIndex, UserState, normalize_embeddings, rating_to_unit

SECONDS_PER_YEAR = 365.25 * 24 * 3600
WARM_OFFSET = 1e3  # candidates (z + f, |.| << 1e3) > other rated films > unrated films
N_BASE = 14  # scalar features per (user, candidate) of every hybrid
N_EXTRA = 7  # more with ``HybridConfig.extra_features`` (see HybridRanker._extra)
N_TIME = 4  # more with ``HybridConfig.time_features``, + one per ``adjacency`` (HybridRanker._time)


def n_scalar(cfg: HybridConfig) -> int:
    n_time = N_TIME + len(cfg.adjacency) if cfg.time_features else 0
    return N_BASE + (N_EXTRA if cfg.extra_features else 0) + n_time


# ----------------------------------------------------------------------------- the residual f


class Residual(nn.Module):
    """``f(scalars (B, C, K), profile (B, D), items (B, C, D)) -> (B, C)``; zero at init."""

    def __init__(self, n_scalar: int, dim: int, hidden: int):
        super().__init__()
        self.inp = nn.Linear(n_scalar + dim, hidden)
        self.mid = nn.Linear(hidden, hidden)
        self.out = nn.Linear(hidden, 1)
        nn.init.zeros_(self.out.weight)  # f = 0 at the start: the hybrid begins as EASE
        nn.init.zeros_(self.out.bias)

    def forward(self, scalars, profile, items):
        x = torch.cat([scalars, profile[:, None, :] * items], dim=-1)  # (B, C, K + D)
        h = torch.relu(self.mid(torch.relu(self.inp(x))))  # (B, C, H)
        return self.out(h)[..., 0]  # (B, C)


# ----------------------------------------------------------------------------- features


@dataclass
class ItemFacts:
    """Per-movie arrays the features read, all from training ratings only."""

    emb: np.ndarray  # (N, D) unit fused embeddings
    log_pop: np.ndarray  # (N,)
    mean_rating: np.ndarray  # (N,) shrunk
    genres: np.ndarray  # (N, G) rows normalised to sum 1 (zeros if none)
    year: np.ndarray  # (N,) release year, NaN unknown
    first_seen: np.ndarray  # (N,) first training-rating time (years since 1970), NaN if unrated

    @classmethod
    def build(cls, item_emb, index: CatalogIndex, years, ratings: pd.DataFrame) -> ItemFacts:
        n = len(index)
        first = np.full(n, np.nan)
        if "timestamp" in ratings.columns and len(ratings):
            pos = index.positions_lenient(ratings["movieId"].to_numpy())
            ts = ratings["timestamp"].to_numpy(np.float64) / SECONDS_PER_YEAR
            keep = pos >= 0
            t = pd.Series(ts[keep]).groupby(pos[keep]).min()
            first[t.index.to_numpy()] = t.to_numpy()
        g = index.genre_matrix.astype(np.float32)
        return cls(
            emb=normalize_embeddings(item_emb),
            log_pop=np.log1p(index.popularity).astype(np.float32),
            mean_rating=np.asarray(index.mean_rating, np.float32),
            genres=g / np.maximum(g.sum(axis=1, keepdims=True), 1.0),
            year=np.asarray(years, np.float64),
            first_seen=first,
        )


_TK = np.int64(1) << np.int64(32)  # RatingTimes.key = movie row * _TK + timestamp (s)


@dataclass
class RatingTimes:
    """When the training ratings were given: per movie (sorted) and per user (sorted), seconds.

    What the time-aware inputs read: how popular a candidate was among everyone's training
    ratings *while this user was active* (a service's "popular now" for a user active now).
    """

    key: np.ndarray  # (R,) int64 sorted movie row * _TK + timestamp
    all_t: np.ndarray  # (R,) int64 every rating's time, sorted
    count: np.ndarray  # (N,) training ratings per movie
    first: np.ndarray  # (N,) first training rating (s), NaN if unrated
    user: dict  # user id -> (n,) int64 sorted times of their training ratings
    latest: int  # the latest training rating (s): "now" for a user with no recorded times

    @classmethod
    def build(cls, ratings: pd.DataFrame, index: CatalogIndex) -> RatingTimes:
        n = len(index)
        if "timestamp" not in ratings.columns or not len(ratings):
            z = np.zeros(0, np.int64)
            return cls(z, z, np.zeros(n), np.full(n, np.nan), {}, 0)
        rows = index.positions_lenient(ratings["movieId"].to_numpy())
        ts = ratings["timestamp"].to_numpy(np.int64)
        keep = rows >= 0
        rows, ts = rows[keep].astype(np.int64), ts[keep]
        first = np.full(n, np.nan)
        f = pd.Series(ts).groupby(rows).min()
        first[f.index.to_numpy()] = f.to_numpy()
        users = ratings["userId"].to_numpy()[keep]
        order = np.lexsort((ts, users))  # by user, then time
        u_sorted = users[order]
        cuts = np.flatnonzero(u_sorted[1:] != u_sorted[:-1]) + 1
        starts = np.r_[0, cuts]
        per_user = {int(u_sorted[i]): t for i, t in zip(starts, np.split(ts[order], cuts))}
        return cls(
            key=np.sort(rows * _TK + ts), all_t=np.sort(ts),
            count=np.bincount(rows, minlength=n).astype(np.float64), first=first,
            user=per_user, latest=int(ts.max()),
        )  # fmt: skip

    def window_counts(self, cand, starts, ends) -> tuple[np.ndarray, int]:
        """Ratings of each candidate ``(C,)`` and of all films inside the union of the disjoint
        windows ``[starts[j], ends[j]]``."""
        c = np.asarray(cand, np.int64)[:, None] * _TK
        lo = np.searchsorted(self.key, c + np.asarray(starts)[None], "left")
        hi = np.searchsorted(self.key, c + np.asarray(ends)[None], "right")
        total = np.searchsorted(self.all_t, ends, "right") - np.searchsorted(
            self.all_t, starts, "left"
        )
        return (hi - lo).sum(axis=1), int(total.sum())


def merged_windows(times: np.ndarray, half: int) -> tuple[np.ndarray, np.ndarray]:
    """The union of ``[t - half, t + half]`` over sorted ``times`` as disjoint windows."""
    times = np.asarray(times, np.int64)
    lo, hi = times - half, times + half  # both sorted: a window ends where a gap > 2 half opens
    new = np.ones(len(times), bool)
    new[1:] = lo[1:] > hi[:-1]
    last = np.r_[np.flatnonzero(new)[1:] - 1, len(times) - 1]
    return lo[new], hi[last]


def adjacency(ratings: pd.DataFrame, index: CatalogIndex, window: int, gap_s: float):
    """Sequence neighbours ``(N, N)`` float32 CSR: how often two films were rated within
    ``window`` positions of each other in one user's time-ordered ratings, no more than
    ``gap_s`` seconds apart; symmetric, each count divided by ``sqrt(deg_i deg_j)``.

    Films shown together (a page of the site, a search, one sitting) are rated next to each
    other; EASE, which only sees *who* rated what, cannot see that.
    """
    n = len(index)
    if "timestamp" not in ratings.columns or not len(ratings):
        return sp.csr_matrix((n, n), dtype=np.float32)
    d = ratings.sort_values(["userId", "timestamp"], kind="stable")
    r = index.positions_lenient(d["movieId"].to_numpy())
    t, u = d["timestamp"].to_numpy(np.int64), d["userId"].to_numpy()
    keep = r >= 0
    r, t, u = r[keep], t[keep], u[keep]
    pairs = [
        (r[:-k][ok], r[k:][ok])
        for k in range(1, window + 1)
        for ok in [(u[k:] == u[:-k]) & (t[k:] - t[:-k] <= gap_s)]
    ]
    i = np.concatenate([p[0] for p in pairs] + [np.zeros(0, np.int64)])
    j = np.concatenate([p[1] for p in pairs] + [np.zeros(0, np.int64)])
    A = sp.coo_matrix((np.ones(len(i), np.float32), (i, j)), shape=(n, n)).tocsr()
    A = A + A.T
    deg = np.asarray(A.sum(axis=1)).ravel()
    inv = np.where(deg > 0, 1.0 / np.sqrt(np.maximum(deg, 1e-9)), 0.0).astype(np.float32)
    return sp.csr_matrix(sp.diags(inv) @ A @ sp.diags(inv), dtype=np.float32)


def _z(x: np.ndarray) -> np.ndarray:
    return (x - x.mean()) / (x.std() + 1e-6)


class HybridRanker:
    name = "hybrid"

    def __init__(self, ease, ials, knn, facts: ItemFacts, index, cfg: HybridConfig, f=None,
                 cold_map=None, now: float | None = None, times: RatingTimes | None = None,
                 adjacent: list | None = None):  # fmt: skip
        self.ease, self.ials, self.knn, self.facts, self.index, self.cfg = (
            ease, ials, knn, facts, index, cfg,
        )  # fmt: skip
        if cfg.time_features and (times is None or adjacent is None):
            raise ValueError("time_features needs the rating times and the adjacency matrices")
        self.times, self.adjacent = times, adjacent
        self.f = (
            f.eval() if f is not None else Residual(n_scalar(cfg), facts.emb.shape[1], cfg.hidden)
        )
        self.rated = index.popularity > 0  # (N,) has a collaborative vector
        if cold_map is None:
            cold_map = fit_cold_map(ials, facts.emb, self.rated, cfg.cold_ridge)
        self.cold_map = cold_map
        # "Now" for a user without timestamps (the app): the latest training rating.
        finite = facts.first_seen[np.isfinite(facts.first_seen)]
        self.now = now if now is not None else (float(finite.max()) if len(finite) else 0.0)
        self.user_time: dict[int, float] = {}  # user id -> last training time (evaluation)

    # -- fitting ------------------------------------------------------------------------------

    @classmethod
    def fit_bases(cls, ratings, item_emb, index, years, cfg: HybridConfig, ease=None):
        """The collaborative parts and item facts from ``ratings`` (f untrained, i.e. EASE)."""
        ease = ease or EASERanker.fit(ratings, index, cfg.ease_lambda, cfg.ease_max_items)
        ials = IALSRanker.fit(
            ratings, index, cfg.ials_factors, cfg.ials_alpha, cfg.ials_reg, cfg.ials_iterations,
            seed=cfg.seed,
        )  # fmt: skip
        knn = ItemKNNRanker.fit(ratings, index, cfg.knn_neighbours)
        facts = ItemFacts.build(item_emb, index, years, ratings)
        times, adjacent = time_parts(ratings, index, cfg)
        hyb = cls(ease, ials, knn, facts, index, cfg, times=times, adjacent=adjacent)
        hyb.user_time = last_times(ratings)
        return hyb

    # -- scoring ------------------------------------------------------------------------------

    def candidates(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """EASE's top-C rated, unseen movies ``(C,)`` and the full EASE scores ``(N,)``."""
        base = self.ease.history_scores(rows)  # (N,)
        masked = np.where(self.rated, base, -np.inf)
        return top_k(masked, self.cfg.candidates, exclude=rows), base

    def features(self, user_id: int, rows, ratings, cand, base):
        """``scalars (C, K)``, ``profile (D,)`` for one user and their candidates."""
        fx, emb = self.facts, self.facts.emb
        hist = emb[rows]  # (n, D)
        prof = hist.mean(axis=0)
        prof = prof / (np.linalg.norm(prof) + 1e-8)
        w = rating_to_unit(ratings)  # (n,) -1..1
        wprof = (w[:, None] * hist).sum(axis=0)
        wprof = wprof / (np.linalg.norm(wprof) + 1e-8)
        ce = emb[cand]  # (C, D)
        sims = ce @ hist.T  # (C, n)
        gaff = fx.genres[cand] @ fx.genres[rows].mean(axis=0)  # (C,)
        years = fx.year[rows]
        yr_mu = np.nanmean(years) if np.isfinite(years).any() else 1995.0
        yc = np.nan_to_num(fx.year[cand], nan=yr_mu)
        now = self.user_time.get(int(user_id), self.now)
        age = np.nan_to_num(now - fx.first_seen[cand], nan=0.0)  # years rated before "now"
        if not self.cfg.rating_time_feature:
            age = np.zeros(len(cand))
        e = base[cand]
        rank = np.arange(len(cand))
        cols = [
            _z(e), np.log1p(rank) / 5.0,
            _z(self.ials.history_scores(rows)[cand]), _z(self.knn.history_scores(rows)[cand]),
            fx.log_pop[cand] / 5.0, fx.mean_rating[cand] - 3.5,
            ce @ prof, ce @ wprof, sims.max(axis=1), gaff * 5.0,
            (yc - yr_mu) / 10.0, (yc - 1995.0) / 20.0,
            np.clip(age, -5, 30) / 10.0, np.full(len(cand), np.log1p(len(rows)) / 5.0),
        ]  # fmt: skip
        if self.cfg.extra_features:
            cols += self._extra(rows, ratings, cand, e, sims, yr_mu)
        if self.cfg.time_features:
            cols += self._time(user_id, rows, cand)
        scalars = np.stack(cols, axis=1).astype(np.float32)
        return scalars, prof.astype(np.float32)

    def _extra(self, rows, ratings, cand, e, sims, yr_mu) -> list[np.ndarray]:
        """The ``N_EXTRA`` inputs: recency, rating-weighted EASE, scale and popularity.

        ``rows`` are in history order (time order in the evaluation, rating order in the app),
        so the last ``recent`` rows are the user's most recent films. Films outside EASE's
        capped head (``ease_max_items``; none on the real catalog) count 0 in the recency and
        rating-weighted inputs.
        """
        fx, ease = self.facts, self.ease
        col_r, col_c = ease._col[rows], ease._col[cand]
        ok = col_r >= 0  # history films EASE knows (all of them in the evaluation)
        Bc = ease.B[np.ix_(col_r[ok], np.maximum(col_c, 0))] * (col_c >= 0)  # (n', C)
        recent = self.cfg.recent
        rec_ease = Bc[-recent:].sum(axis=0)  # EASE from the most recent films only
        rec_knn = self.knn.history_scores(rows[-recent:])[cand]
        cw = ratings[ok] - ratings[ok].mean()  # the rating as a signal: liked vs disliked
        yr_rec = fx.year[rows[-recent:]]
        yr_rec = np.nanmean(yr_rec) if np.isfinite(yr_rec).any() else yr_mu
        yc = np.nan_to_num(fx.year[cand], nan=yr_rec)
        return [
            _z(rec_ease), _z(rec_knn), sims[:, -5:].max(axis=1), e.astype(np.float64),
            _z(fx.log_pop[cand]), (yc - yr_rec) / 10.0, _z(cw @ Bc),
        ]  # fmt: skip

    def _time(self, user_id, rows, cand) -> list[np.ndarray]:
        """The ``N_TIME`` + ``len(adjacency)`` inputs: when the user was active against when
        films were rated, and the history's sequence neighbours.

        The user's times are their training ratings' (the evaluation, ``train-hybrid``); a user
        with none recorded (the app's) is taken as active at the latest training rating.
        """
        tm = self.times
        t = tm.user.get(int(user_id))
        if t is None or not len(t):
            t = np.asarray([tm.latest], np.int64)
        a, b = int(t[0]), int(t[-1])
        n_all = len(tm.all_t)
        share_all = np.log((tm.count[cand] + 1.0) / (n_all + 1.0))
        c_win, n_win = tm.window_counts(cand, np.asarray([a]), np.asarray([b]))
        starts, ends = merged_windows(t, int(self.cfg.time_kernel_days * 86400))
        ends = np.minimum(ends, b)  # nothing after the user's last rating is read
        c_ker, n_ker = tm.window_counts(cand, starts, ends)
        adj = [A[rows].sum(axis=0).A1[cand] for A in self.adjacent]  # (C,) each
        return [
            (np.log((c_win + 1.0) / (n_win + 1.0)) - share_all) / 3.0, _z(np.log1p(c_win)),
            (np.log((c_ker + 1.0) / (n_ker + 1.0)) - share_all) / 3.0, _z(np.log1p(c_ker)),
            *[_z(a) for a in adj],
        ]  # fmt: skip

    def _residual(self, scalars, prof, cand) -> np.ndarray:
        with torch.no_grad():
            out = self.f(
                torch.from_numpy(scalars)[None],
                torch.from_numpy(prof)[None],
                torch.from_numpy(self.facts.emb[cand])[None],
            )
        return out[0].numpy()

    def full_scores(self, user_state: UserState) -> np.ndarray:
        """Scores of every movie ``(N,)``: candidates, then other rated films, then unrated."""
        rows, ratings = history_rows(user_state, self.index)
        n = len(self.index)
        if len(rows) == 0:
            pop = _pop_tiebreak(self.index, np.arange(n)) / TIE_BREAK
            return with_genre_prior(pop, self.index, user_state.liked_genres)
        cand, base = self.candidates(rows)
        scalars, prof = self.features(user_state.user_id, rows, ratings, cand, base)
        out = np.where(
            self.rated, np.tanh(base) - WARM_OFFSET, self.cold_scores(rows) - 2 * WARM_OFFSET
        )
        out[cand] = scalars[:, 0] + self._residual(scalars, prof, cand)  # z(EASE) + f
        return out

    def cold_scores(self, rows: np.ndarray) -> np.ndarray:
        """Content path ``(N,)``: the user's iALS vector against mapped content (bounded)."""
        s = self.cold_map @ self.ials.user_vector(rows)  # (N,)
        return np.tanh(s / (np.abs(s).max() + 1e-8))

    def score(self, user_state: UserState, item_idx: np.ndarray) -> np.ndarray:
        return self.full_scores(user_state)[np.asarray(item_idx)]


def time_parts(ratings: pd.DataFrame, index: CatalogIndex, cfg: HybridConfig):
    """The rating times and sequence-adjacency matrices the time inputs read (None if off)."""
    if not cfg.time_features:
        return None, None
    adjacent = [adjacency(ratings, index, int(w), float(g)) for w, g in cfg.adjacency]
    return RatingTimes.build(ratings, index), adjacent


def last_times(ratings: pd.DataFrame) -> dict[int, float]:
    if "timestamp" not in ratings.columns:
        return {}
    t = ratings.groupby("userId")["timestamp"].max() / SECONDS_PER_YEAR
    return {int(u): float(v) for u, v in t.items()}


def fit_cold_map(ials: IALSRanker, emb: np.ndarray, rated: np.ndarray, ridge: float):
    """Content -> iALS factors for every movie ``(N, F)``: ridge fitted on rated movies."""
    X = np.concatenate([emb, np.ones((len(emb), 1), np.float32)], axis=1)  # (N, D+1)
    Xr, Y = X[rated].astype(np.float64), ials.item_factors[rated].astype(np.float64)
    if len(Xr) == 0:
        return np.zeros_like(ials.item_factors)
    W = np.linalg.solve(Xr.T @ Xr + ridge * np.eye(X.shape[1]), Xr.T @ Y)  # (D+1, F)
    return (X @ W).astype(np.float32)


class ColdContentRanker:
    """The hybrid's content path alone: ``<u_iALS, W content_a>`` for any movie.

    What the hybrid uses for films nobody has rated; evaluated on its own on cold films.
    """

    name = "hybrid_content"

    def __init__(self, ials: IALSRanker, emb: np.ndarray, index: CatalogIndex, ridge: float):
        self.ials, self.index = ials, index
        self.cold_map = fit_cold_map(ials, normalize_embeddings(emb), index.popularity > 0, ridge)

    def score(self, user_state: UserState, item_idx: np.ndarray) -> np.ndarray:
        item_idx = np.asarray(item_idx)
        rows, _ = history_rows(user_state, self.index)
        if len(rows) == 0:
            return _pop_tiebreak(self.index, item_idx) / TIE_BREAK
        return self.cold_map[item_idx] @ self.ials.user_vector(rows)


# ----------------------------------------------------------------------------- training f


def residual_lists(hyb: HybridRanker, train: pd.DataFrame, val_pos: dict[int, list[int]]) -> dict:
    """Each validation user's candidates, features and positives under ``hyb``'s base models.

    ``train`` holds the histories (the ratings ``hyb`` was fitted on), ``val_pos`` the movie
    ids each user rated in the held-out part. Users none of whose positives is among their
    candidates teach ``f`` nothing and are left out. Returns ``S (L, C, K)``, ``P (L, D)``,
    ``C (L, C)`` candidate rows, ``M (L, C)`` bool positives and ``users (L,)``.
    """
    index = hyb.index
    if "timestamp" in train.columns:  # time order: the recency inputs read the last films
        train = train.sort_values(["userId", "timestamp"], kind="stable")
    hist = {int(u): g for u, g in train.groupby("userId", sort=False)}
    S, P, C, M, U = [], [], [], [], []
    for u, movies in val_pos.items():
        if u not in hist:
            continue
        g = hist[u]
        rows = index.positions_lenient(g["movieId"].to_numpy())
        keep = rows >= 0
        rows, ratings = rows[keep], g["rating"].to_numpy(np.float32)[keep]
        if len(rows) == 0:
            continue
        cand, base = hyb.candidates(rows)
        pos = np.isin(cand, index.positions_lenient(movies))
        if not pos.any():
            continue
        scalars, prof = hyb.features(u, rows, ratings, cand, base)
        S.append(scalars), P.append(prof), C.append(cand), M.append(pos), U.append(u)
    if not S:
        return {"users": np.zeros(0, np.int64)}
    # One candidate count for the batch: the shortest list (lists are in EASE order, so this
    # keeps each user's top ones; on a real catalog every list has ``candidates`` entries).
    c = min(len(x) for x in C)
    keep = [i for i in range(len(S)) if M[i][:c].any()]
    return {"S": np.stack([S[i][:c] for i in keep]), "P": np.stack([P[i] for i in keep]),
            "C": np.stack([C[i][:c] for i in keep]), "M": np.stack([M[i][:c] for i in keep]),
            "users": np.asarray([U[i] for i in keep], np.int64)}  # fmt: skip


def fit_residual(lists: list[dict], emb: np.ndarray, cfg: HybridConfig) -> tuple[Residual, dict]:
    """Train ``f`` on the lists of one or more validation splits (see :func:`residual_lists`).

    Listwise softmax over each list's candidates; the epoch with the best NDCG@10 on the lists
    of a held-out fifth of the *users* (all their splits) is kept, so early stopping never
    scores a user ``f`` was fitted on. Returns ``f`` and the training curve.
    """
    lists = [x for x in lists if len(x["users"])]
    f = None
    if lists:
        c = min(x["C"].shape[1] for x in lists)
        cat = {k: np.concatenate([x[k][:, :c] if k in "SCM" else x[k] for x in lists])
               for k in ("S", "P", "C", "M", "users")}  # fmt: skip
        ok = cat["M"].any(axis=1)
        cat = {k: v[ok] for k, v in cat.items()}
    if not lists or len(np.unique(cat["users"])) < 2:
        f = Residual(n_scalar(cfg), emb.shape[1], cfg.hidden)
        return f.eval(), {"users": 0}
    S_t = torch.from_numpy(cat["S"])  # (L, C, K)
    P_t = torch.from_numpy(cat["P"])  # (L, D)
    E_t = torch.from_numpy(emb[cat["C"]])  # (L, C, D)
    M_t = torch.from_numpy(cat["M"])  # (L, C) bool
    rng = np.random.default_rng(cfg.seed)
    users = np.unique(cat["users"])
    held = rng.choice(users, max(1, len(users) // 5), replace=False)
    is_held = np.isin(cat["users"], held)
    hold, fit = np.flatnonzero(is_held), np.flatnonzero(~is_held)
    torch.manual_seed(cfg.seed)
    f = Residual(S_t.shape[-1], P_t.shape[-1], cfg.hidden)
    opt = torch.optim.Adam(f.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)

    def hold_ndcg():
        with torch.no_grad():
            s = S_t[hold, :, 0] + f(S_t[hold], P_t[hold], E_t[hold])  # (H, C)
        ranked = torch.argsort(s, dim=1, descending=True)[:, :10].numpy()
        return float(np.mean([ndcg_at_k(r, set(np.flatnonzero(m)), 10)
                              for r, m in zip(ranked, M_t[hold].numpy())]))  # fmt: skip

    best, best_state, curve = hold_ndcg(), {k: v.clone() for k, v in f.state_dict().items()}, []
    curve.append(best)
    gen = torch.Generator().manual_seed(cfg.seed)
    fit_t = torch.from_numpy(fit)
    for _ in range(cfg.epochs):
        f.train()
        for b in fit_t[torch.randperm(len(fit_t), generator=gen)].split(32):
            logits = S_t[b, :, 0] + f(S_t[b], P_t[b], E_t[b])  # (B, C)
            logp = torch.log_softmax(logits, dim=1)
            m = M_t[b].float()
            loss = -((logp * m).sum(1) / m.sum(1)).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        f.eval()
        score = hold_ndcg()
        curve.append(score)
        if score > best:
            best, best_state = score, {k: v.clone() for k, v in f.state_dict().items()}
    f.load_state_dict(best_state)
    return f.eval(), {"users": len(users), "lists": len(cat["users"]), "splits": len(lists),
                      "holdout_ndcg_curve": curve, "best_holdout_ndcg": best,
                      "holdout_ndcg_ease": curve[0]}  # fmt: skip


def train_residual(hyb: HybridRanker, train: pd.DataFrame, val_pos: dict[int, list[int]],
                   cfg: HybridConfig, log=None) -> dict:  # fmt: skip
    """Fit ``hyb.f`` on one validation split (positives per user given ``train`` histories)."""
    f, curve = fit_residual([residual_lists(hyb, train, val_pos)], hyb.facts.emb, cfg)
    hyb.f = f
    return curve


# ----------------------------------------------------------------------------- serving


def with_genre_prior(scores: np.ndarray, index: CatalogIndex, liked_genres) -> np.ndarray:
    """A new user with onboarding genres only: popularity inside the ticked genres first."""
    g = index.genre_vector(liked_genres)  # (G,)
    if not g.any():
        return scores
    return scores + 100.0 * (index.genre_matrix @ g > 0)


def ease_arrays(ease: EASERanker) -> dict[str, np.ndarray]:
    """EASE's arrays for ``hybrid-bases.npz``; with a cap, the tail's too (see EASERanker)."""
    arrays = dict(
        ease_B=ease.B.astype(np.float16),  # ranking needs no more precision; half the disk
        ease_items=ease.items,
    )
    if len(ease.tail_items):  # capped: the rated movies outside EASE's inputs
        arrays.update(ease_tail_items=ease.tail_items, ease_p_diag=ease.p_diag)
        for name in ("tail_raters", "head_raters"):  # binary CSR: structure and shape suffice
            m = getattr(ease, name)
            arrays.update({f"ease_{name}_indptr": m.indptr, f"ease_{name}_indices": m.indices,
                           f"ease_{name}_shape": np.asarray(m.shape)})  # fmt: skip
    return arrays


def ease_from_arrays(z, index: CatalogIndex) -> EASERanker:
    """The inverse of ``ease_arrays`` (``z``: the loaded npz or a dict)."""
    names = z.files if hasattr(z, "files") else list(z)
    tail = {}
    if "ease_tail_items" in names:
        tail = dict(tail_items=z["ease_tail_items"], p_diag=z["ease_p_diag"])
        for name in ("tail_raters", "head_raters"):
            indices, indptr = z[f"ease_{name}_indices"], z[f"ease_{name}_indptr"]
            ones = np.ones(len(indices), np.float32)
            shape = tuple(int(x) for x in z[f"ease_{name}_shape"])
            tail[name] = sp.csr_matrix((ones, indices, indptr), shape=shape)
    return EASERanker(z["ease_B"].astype(np.float32), index, z["ease_items"], **tail)


def save_hybrid(ckpt_dir, hyb: HybridRanker, meta: dict) -> None:
    """``hybrid.pt`` (f, config, meta) and ``hybrid-bases.npz`` (EASE, iALS, kNN arrays)."""
    import dataclasses
    from pathlib import Path

    from mmrec.atomic import atomic_write
    from mmrec.checkpoint import save_checkpoint

    ckpt_dir = Path(ckpt_dir)
    knn = hyb.knn.sim
    arrays = dict(
        **ease_arrays(hyb.ease),
        ials_factors=hyb.ials.item_factors,
        knn_indptr=knn.indptr, knn_indices=knn.indices, knn_data=knn.data,
    )  # fmt: skip
    atomic_write(ckpt_dir / "hybrid-bases.npz", lambda fh: np.savez(fh, **arrays))
    save_checkpoint(
        ckpt_dir / "hybrid.pt", hyb.f.state_dict(), dataclasses.asdict(hyb.cfg),
        {**meta, "now": hyb.now},
    )  # fmt: skip


def load_hybrid(ckpt_dir, catalog, item_emb: np.ndarray) -> tuple[HybridRanker, dict]:
    """The served hybrid for ``catalog``; raises ``FileNotFoundError`` when none was built."""
    from pathlib import Path

    from mmrec.checkpoint import CheckpointError, load_checkpoint

    ckpt_dir = Path(ckpt_dir)
    state, config, meta = load_checkpoint(ckpt_dir / "hybrid.pt")
    if list(meta.get("movie_ids", [])) != catalog.movie_ids.tolist():
        raise CheckpointError(f"{ckpt_dir / 'hybrid.pt'} was built for another catalog")
    # A checkpoint saved before the extra (time) inputs existed was trained without them.
    cfg = HybridConfig(**{"extra_features": False, "time_features": False, **config})
    with np.load(ckpt_dir / "hybrid-bases.npz") as z:
        index = CatalogIndex.from_catalog(catalog)
        ease = ease_from_arrays(z, index)
        ials = IALSRanker(z["ials_factors"], index, cfg.ials_alpha, cfg.ials_reg)
        n = len(index)
        knn = ItemKNNRanker(
            sp.csr_matrix((z["knn_data"], z["knn_indices"], z["knn_indptr"]), shape=(n, n)), index
        )
    times, adjacent = time_parts(catalog.ratings, index, cfg)
    if times is not None:  # the app's users are not the catalog's raters (ids overlap): each
        times.user = {}  # is taken as active at the latest training rating
    years = catalog.movies["year"].astype("Float64").to_numpy(dtype=np.float64, na_value=np.nan)
    facts = ItemFacts.build(item_emb, index, years, catalog.ratings)
    f = Residual(n_scalar(cfg), facts.emb.shape[1], cfg.hidden)
    f.load_state_dict(state)
    hyb = HybridRanker(ease, ials, knn, facts, index, cfg, f=f, now=meta.get("now"), times=times,
                       adjacent=adjacent)  # fmt: skip
    return hyb, meta

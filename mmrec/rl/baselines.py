"""Baseline rankers behind the one interface ``score(user_state, item_idx) -> scores``.

Every ranker is a pure function of the ``UserState`` (ratings so far + onboarding genres), so
online feedback within a session is simply the growing history: LinUCB re-solves its ridge
system from the history on each call (20 ratings, a (D+1)^2 system: cheap). Rankers fit on
*training* ratings only (``fit`` classmethods take a ratings frame).

Cold start: a user with no ratings but onboarding genres gets the genres' average movie as one
pseudo-rating of ``ONBOARDING_RATING`` in the content and LinUCB rankers; EASE and item-kNN
(collaborative only) fall back to popularity.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.linalg
import scipy.linalg.lapack
import scipy.sparse as sp
import torch
import torch.nn.functional as F

from mmrec.config import EASE_MAX_ITEMS, EnvConfig
from mmrec.rl.dqn import QNetwork, item_features
from mmrec.rl.state import (
    CatalogIndex,
    StateEncoder,
    UserState,
    normalize_embeddings,
    rating_to_unit,
)

ONBOARDING_RATING = 4.5  # a ticked genre counts like one 4.5-star rating of its average movie
TIE_BREAK = 1e-6  # popularity nudge that orders otherwise equal scores


def _pop_tiebreak(index: CatalogIndex, item_idx: np.ndarray) -> np.ndarray:
    return TIE_BREAK * np.log1p(index.popularity[item_idx])


def history_rows(state: UserState, index: CatalogIndex) -> tuple[np.ndarray, np.ndarray]:
    """Catalog rows ``(n,)`` and ratings ``(n,)`` of the history (unknown movies dropped)."""
    if not state.history:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
    rows = index.positions_lenient([m for m, _ in state.history])
    ratings = np.asarray([r for _, r in state.history], dtype=np.float32)
    keep = rows >= 0
    return rows[keep], ratings[keep]


def genre_centroids(item_emb: np.ndarray, index: CatalogIndex) -> np.ndarray:
    """Mean embedding of each genre's movies ``(G, D)``."""
    counts = np.maximum(index.genre_matrix.sum(axis=0), 1.0)  # (G,)
    return (index.genre_matrix.T @ item_emb) / counts[:, None]  # (G, D)


# ----------------------------------------------------------------------------- simple rankers


class RandomRanker:
    name = "random"

    def __init__(self, seed: int = 0):
        self.rng = np.random.default_rng(seed)

    def score(self, user_state: UserState, item_idx: np.ndarray) -> np.ndarray:
        return self.rng.random(len(item_idx))


class PopularityRanker:
    """Most-rated first (training ratings), ties by shrunk mean rating: the traditional baseline."""

    name = "popularity"

    def __init__(self, index: CatalogIndex):
        self.index = index
        self.values = np.log1p(index.popularity) + 1e-3 * index.mean_rating  # (N,)

    def score(self, user_state: UserState, item_idx: np.ndarray) -> np.ndarray:
        return self.values[np.asarray(item_idx)]


class ContentRanker:
    """Cosine between the item and the user's rating-weighted profile in fused space."""

    name = "content"

    def __init__(self, item_emb: np.ndarray, index: CatalogIndex):
        self.index = index
        self.item_emb = normalize_embeddings(item_emb)  # (N, D)
        self.centroids = genre_centroids(self.item_emb, index)  # (G, D)

    def profile(self, user_state: UserState) -> np.ndarray:
        rows, ratings = history_rows(user_state, self.index)
        # Centred weights: a 1-star rating pushes the profile away from that movie.
        prof = (rating_to_unit(ratings)[:, None] * self.item_emb[rows]).sum(axis=0)  # (D,)
        genres = self.index.genre_vector(user_state.liked_genres)  # (G,)
        if genres.any():
            prof = prof + float(rating_to_unit(ONBOARDING_RATING)) * (genres @ self.centroids)
        return prof

    def score(self, user_state: UserState, item_idx: np.ndarray) -> np.ndarray:
        item_idx = np.asarray(item_idx)
        prof = self.profile(user_state)
        norm = np.linalg.norm(prof)
        if norm < 1e-8:  # nothing known: popularity order
            return _pop_tiebreak(self.index, item_idx) / TIE_BREAK
        return self.item_emb[item_idx] @ (prof / norm) + _pop_tiebreak(self.index, item_idx)


# ----------------------------------------------------------------------------- LinUCB


class LinUCBRanker:
    """Disjoint LinUCB per user over ``[fused embedding, 1]`` with a population prior.

    ``theta_u = A^-1 b`` with ``A = ridge*I + sum x x^T`` and ``b = ridge*theta_0 + sum y x`` over
    the user's ratings (``y`` = rating on -1..1); ``theta_0`` is a ridge fit on all training
    ratings, so a new user starts from the population's taste, not from zero. Score =
    ``x.theta_u + alpha * sqrt(x^T A^-1 x)``: the bonus favours movies unlike anything rated.
    """

    name = "linucb"

    def __init__(
        self,
        item_emb: np.ndarray,
        index: CatalogIndex,
        theta0: np.ndarray,
        alpha: float,
        ridge: float,
    ):
        self.index = index
        emb = normalize_embeddings(item_emb)
        self.x = np.concatenate([emb, np.ones((len(emb), 1), np.float32)], axis=1).astype(
            np.float64
        )  # (N, D+1)
        self.centroid_x = np.concatenate(
            [genre_centroids(emb, index), np.ones((len(index.genres), 1))], axis=1
        )  # (G, D+1)
        self.theta0, self.alpha, self.ridge = theta0.astype(np.float64), alpha, ridge

    @classmethod
    def fit(
        cls,
        ratings: pd.DataFrame,
        item_emb: np.ndarray,
        index: CatalogIndex,
        alpha: float = 0.5,
        ridge: float = 1.0,
    ) -> LinUCBRanker:
        emb = normalize_embeddings(item_emb)
        x = np.concatenate([emb, np.ones((len(emb), 1), np.float32)], axis=1).astype(np.float64)
        rows = index.positions_lenient(ratings["movieId"].to_numpy())
        keep = rows >= 0
        y = rating_to_unit(ratings["rating"].to_numpy()[keep]).astype(np.float64)  # (R,)
        xr = x[rows[keep]]  # (R, D+1)
        theta0 = np.linalg.solve(xr.T @ xr + 1.0 * np.eye(x.shape[1]), xr.T @ y)  # (D+1,)
        return cls(item_emb, index, theta0, alpha, ridge)

    def score(self, user_state: UserState, item_idx: np.ndarray) -> np.ndarray:
        item_idx = np.asarray(item_idx)
        rows, ratings = history_rows(user_state, self.index)
        xs, ys = [self.x[rows]], [rating_to_unit(ratings).astype(np.float64)]
        genres = self.index.genre_vector(user_state.liked_genres).astype(bool)
        if genres.any():  # onboarding genres as pseudo-ratings (see module docstring)
            xs.append(self.centroid_x[genres])
            ys.append(np.full(int(genres.sum()), float(rating_to_unit(ONBOARDING_RATING))))
        X, y = np.concatenate(xs), np.concatenate(ys)  # (n, D+1), (n,)
        dim = self.x.shape[1]
        A = self.ridge * np.eye(dim) + X.T @ X  # (D+1, D+1)
        b = self.ridge * self.theta0 + X.T @ y  # (D+1,)
        A_inv = np.linalg.inv(A)
        theta = A_inv @ b
        x = self.x[item_idx]  # (k, D+1)
        # x^T A^-1 x per row as a matmul: 10x faster than the equivalent three-operand einsum.
        bonus = np.sqrt(np.maximum(((x @ A_inv) * x).sum(axis=1), 0.0))  # (k,)
        return x @ theta + self.alpha * bonus


# ----------------------------------------------------------------------------- collaborative
# Sparse inputs throughout (scipy CSR, float32), as RecBole's ``ease.py``: the user x item
# matrix is never dense. EASE still needs one dense (M, M) float32 Gram inverse over its M
# input movies, inverted in place by Cholesky: one M x M array alive. M is the movies with at
# least one training rating (a movie nobody rated has an all-zero row and column in B anyway),
# capped at the ``max_items`` most-rated ones (EASE_MAX_ITEMS): 4 * M^2 bytes grows past any one
# machine's memory long before 100,000 films (40 GB at M = 100,000). Item-kNN keeps a sparse
# top-k neighbour matrix built block by block.


def interaction_matrix(ratings: pd.DataFrame, index: CatalogIndex) -> sp.csr_matrix:
    """Binary user x item matrix ``(U, N)`` float32 CSR of who rated what (implicit feedback).

    Users are numbered in sorted ``userId`` order; duplicate (user, movie) pairs count once.
    """
    rows = index.positions_lenient(ratings["movieId"].to_numpy())
    keep = rows >= 0
    _, users = np.unique(ratings["userId"].to_numpy()[keep], return_inverse=True)
    n_users = int(users.max()) + 1 if len(users) else 0
    X = sp.csr_matrix(
        (np.ones(len(users), np.float32), (users, rows[keep])),
        shape=(n_users, len(index)),
        dtype=np.float32,
    )
    X.data[:] = 1.0  # duplicates were summed by the constructor
    return X


def _mirror_lower(P: np.ndarray, block: int = 512) -> None:
    """Copy the lower triangle of square ``P`` onto its upper one, in place, block by block."""
    n = P.shape[0]
    for lo in range(0, n, block):
        hi = min(lo + block, n)
        d = P[lo:hi, lo:hi]
        d[...] = np.tril(d) + np.tril(d, -1).T
        P[lo:hi, hi:] = P[hi:, lo:hi].T


def _dense_gram(Xc: sp.csc_matrix, block: int = 1024) -> np.ndarray:
    """``X^T X`` of a sparse ``(U, M)`` matrix as a dense ``(M, M)`` float32 Fortran array, one
    block of columns at a time from the sparse product (work ~ sum over users of their
    movies x block, not U x M^2 as a dense product). Counts below 2^24 are exact in float32."""
    m = Xc.shape[1]
    G = np.zeros((m, m), np.float32, order="F")
    Xt = Xc.T.tocsr()  # (M, U)
    for lo in range(0, m, block):
        hi = min(lo + block, m)
        G[:, lo:hi] = (Xt @ Xc[:, lo:hi]).toarray()
    return G


class EASERanker:
    """EASE (Steck 2019): ``B = I - P diag(1/diag(P))``, ``P = (X_h^T X_h + lambda I)^-1``, diag 0.

    Scores ``x_u B`` where ``x_u`` marks the movies in the user's history. ``B (M, M)`` is kept
    over ``items``: the catalog rows with a training rating, at most ``max_items`` of them (the
    most rated; ties by catalog row). Without a cap that is exactly EASE.

    With more rated movies than the cap, EASE's own objective ``min ||X - X B||^2 + lambda
    ||B||^2, diag(B) = 0`` is solved with only the capped ("head") movies as *inputs* (rows of
    B) but every rated movie as an *output* (column): a tail movie ``j``'s column is the ridge
    regression of its raters on the head, ``b_j = P X_h^T x_j``, on the same scale as the head's
    columns. Its scores need no dense (M, T) array: ``x_u b_j`` for every tail movie at once is
    ``X_t^T (X_h (P x_u))``, two sparse products with the training interactions (``X_h (U, M)``
    and ``X_t (U, T)``: as many entries as ratings, cheaper than their co-occurrence), and
    ``P x_u`` is recovered from B's rows and ``diag(P)``. What the cap loses: a tail movie in
    the history predicts nothing (only head movies are inputs), so a user who rated only tail
    movies gets popularity order, and tail-to-tail similarity is invisible.

    Movies nobody rated score 0 plus the popularity tie-break. Cold users (no history) get
    popularity order.
    """

    name = "ease"

    def __init__(
        self,
        B: np.ndarray,
        index: CatalogIndex,
        items: np.ndarray | None = None,
        tail_items: np.ndarray | None = None,
        tail_raters: sp.spmatrix | None = None,
        head_raters: sp.spmatrix | None = None,
        p_diag: np.ndarray | None = None,
    ):
        self.B = np.asarray(B, dtype=np.float32)  # (M, M)
        self.index = index
        self.items = np.arange(len(index)) if items is None else np.asarray(items, np.int64)
        self._col = np.full(len(index), -1, np.int64)  # catalog row -> column of B
        self._col[self.items] = np.arange(len(self.items))
        # rated movies outside the cap: catalog rows (T,), X_t^T (T, U), X_h (U, M), diag(P) (M,)
        self.tail_items = (
            np.zeros(0, np.int64) if tail_items is None else np.asarray(tail_items, np.int64)
        )
        if len(self.tail_items) and (tail_raters is None or head_raters is None or p_diag is None):
            raise ValueError("EASE: tail movies need the head's and their raters and diag(P)")
        self.tail_raters = (
            None if tail_raters is None else sp.csr_matrix(tail_raters, dtype=np.float32)
        )
        self.head_raters = (
            None if head_raters is None else sp.csr_matrix(head_raters, dtype=np.float32)
        )
        self.p_diag = None if p_diag is None else np.asarray(p_diag, np.float32)

    @classmethod
    def fit(
        cls,
        ratings: pd.DataFrame,
        index: CatalogIndex,
        lam: float = 200.0,
        max_items: int | None = EASE_MAX_ITEMS,
    ) -> EASERanker:
        X = interaction_matrix(ratings, index)  # (U, N) CSR
        counts = np.asarray(X.sum(axis=0)).ravel()  # (N,) raters per movie
        items = np.flatnonzero(counts > 0)  # (M,)
        tail = np.zeros(0, np.int64)
        if max_items is not None and len(items) > max_items:
            if max_items < 1:
                raise ValueError(f"EASE: max_items must be at least 1 (got {max_items})")
            order = np.argsort(-counts[items], kind="stable")  # most rated first, ties by row
            items, tail = np.sort(items[order[:max_items]]), np.sort(items[order[max_items:]])
        Xc = X.tocsc()
        Xa = Xc[:, items]  # (U, M)
        G = _dense_gram(Xa)  # (M, M) the one dense array
        G[np.diag_indices_from(G)] += lam
        # P = G^-1 in place: Cholesky (G is symmetric positive definite), then the inverse from
        # the factor; LAPACK fills one triangle, mirrored below.
        c, info = scipy.linalg.lapack.spotrf(G, lower=True, overwrite_a=True)
        if info != 0:
            raise np.linalg.LinAlgError(f"EASE: Gram matrix not positive definite (info {info})")
        P, info = scipy.linalg.lapack.spotri(c, lower=True, overwrite_c=True)
        if info != 0:
            raise np.linalg.LinAlgError(f"EASE: inverse failed (info {info})")
        _mirror_lower(P)
        diag = np.diag(P).copy()
        P /= -diag[None, :]  # B = -P / diag(P), column-wise
        np.fill_diagonal(P, 0.0)
        if not len(tail):
            return cls(P, index, items)
        tail_raters = Xc[:, tail].T.tocsr()  # (T, U)
        return cls(P, index, items, tail, tail_raters, Xa.tocsr(), diag)

    def history_scores(self, rows: np.ndarray) -> np.ndarray:
        """``x_u B`` over the whole catalog ``(N,)`` float32 (0 for movies nobody rated)."""
        cols = self._col[rows]
        cols = cols[cols >= 0]
        out = np.zeros(len(self.index), np.float32)
        if len(cols):
            head = self.B[cols].sum(axis=0)  # (M,)
            out[self.items] = head
            if len(self.tail_items):
                # P x_u from B: P[i, j] = -B[i, j] P[j, j] off the diagonal, B[j, j] = 0
                counts = np.bincount(cols, minlength=len(self.items)).astype(np.float32)
                v = self.p_diag * (counts - head)  # (M,) = P x_u
                out[self.tail_items] = self.tail_raters @ (self.head_raters @ v)
        return out

    def score(self, user_state: UserState, item_idx: np.ndarray) -> np.ndarray:
        item_idx = np.asarray(item_idx)
        rows, _ = history_rows(user_state, self.index)
        if len(rows) == 0:
            return _pop_tiebreak(self.index, item_idx) / TIE_BREAK
        return self.history_scores(rows)[item_idx] + _pop_tiebreak(self.index, item_idx)


class ItemKNNRanker:
    """Item-based kNN: cosine between items' rater sets, top-k neighbours kept per item.

    Score of item i = sum of its similarities to the movies in the user's history. ``sim`` is a
    sparse ``(N, N)`` float32 CSR with at most ``k`` entries per row (row j = neighbours of j).
    """

    name = "item_knn"

    def __init__(self, sim, index: CatalogIndex):
        self.sim = sp.csr_matrix(sim, dtype=np.float32)  # (N, N)
        self.index = index

    @classmethod
    def fit(
        cls, ratings: pd.DataFrame, index: CatalogIndex, k: int = 50, block: int = 1024
    ) -> ItemKNNRanker:
        X = interaction_matrix(ratings, index)  # (U, N)
        Xc = X.tocsc()
        norms = np.sqrt(np.asarray(X.sum(axis=0)).ravel())  # (N,)
        inv = np.where(norms > 0, 1.0 / np.maximum(norms, 1e-8), 0.0).astype(np.float32)
        n = X.shape[1]
        block = max(1, min(block, 2**26 // max(n, 1)))  # a (block, N) float32 slice <= 256 MB
        indptr, indices, data = [0], [], []
        # Block by block: only a (block, N) dense slice of the co-occurrence is ever alive.
        for lo in range(0, n, block):
            hi = min(lo + block, n)
            co = np.asarray((Xc[:, lo:hi].T @ X).toarray(), dtype=np.float32)  # (b, N)
            co *= inv[lo:hi, None] * inv[None, :]
            co[np.arange(hi - lo), np.arange(lo, hi)] = 0.0
            kk = min(k, n - 1) if n > 1 else 0
            for r in range(hi - lo):
                row = co[r]
                if kk <= 0:
                    indptr.append(len(indices))
                    continue
                # Keep the k most similar neighbours: the long tail of tiny similarities is
                # mostly noise from co-rating by heavy users.
                top = np.argpartition(-row, kk - 1)[:kk] if kk < n else np.arange(n)
                top = top[row[top] > 0]
                indices.extend(top.tolist())
                data.extend(row[top].tolist())
                indptr.append(len(indices))
        sim = sp.csr_matrix(
            (np.asarray(data, np.float32), np.asarray(indices, np.int64), np.asarray(indptr)),
            shape=(n, n),
        )
        return cls(sim, index)

    def history_scores(self, rows: np.ndarray) -> np.ndarray:
        """Sum of the history movies' neighbour rows ``(N,)`` float32."""
        if len(rows) == 0:
            return np.zeros(len(self.index), np.float32)
        return np.asarray(self.sim[rows].sum(axis=0), dtype=np.float32).ravel()

    def score(self, user_state: UserState, item_idx: np.ndarray) -> np.ndarray:
        item_idx = np.asarray(item_idx)
        rows, _ = history_rows(user_state, self.index)
        if len(rows) == 0:
            return _pop_tiebreak(self.index, item_idx) / TIE_BREAK
        return self.history_scores(rows)[item_idx] + _pop_tiebreak(self.index, item_idx)


class IALSRanker:
    """Implicit ALS (Hu, Koren & Volinsky 2008), exact alternating least squares.

    Preference ``p_ui = 1`` for a rated movie, confidence ``c_ui = 1 + alpha``; every unrated
    pair is a zero with confidence 1. Each half-step solves, per user (item), the ridge system
    ``(Y^T Y + alpha Y_u^T Y_u + reg I) x = (1 + alpha) Y_u^T 1`` with the shared Gram ``Y^T Y``
    computed once. A user's vector is solved the same way at scoring time from the history, so
    new users and the app's live ratings need no refit. Movies nobody rated keep vector 0.
    """

    name = "ials"

    def __init__(self, item_factors: np.ndarray, index: CatalogIndex, alpha: float, reg: float):
        self.item_factors = np.asarray(item_factors, np.float32)  # (N, F)
        self.index, self.alpha, self.reg = index, alpha, reg
        self.gram = (self.item_factors.T @ self.item_factors).astype(np.float64)  # (F, F)

    @staticmethod
    def _solve_rows(
        R: sp.csr_matrix, Y: np.ndarray, X: np.ndarray, alpha: float, reg: float, steps: int = 3
    ) -> np.ndarray:
        """Factors of every row of ``R`` against the fixed other side ``Y (M, F)``.

        Batched conjugate gradient warm-started at ``X (rows, F)`` (a few steps per half
        iteration suffice, as in the ``implicit`` package): the products touch only the
        nonzeros of ``R``, never a per-row F x F system.
        """
        gram = (Y.T @ Y).astype(np.float32)  # (F, F)
        row_of_nz = np.repeat(np.arange(R.shape[0]), np.diff(R.indptr))  # (nnz,)
        Ynz = Y[R.indices]  # (nnz, F)

        def apply(V):  # (rows, F) -> A V, row by row
            s = (Ynz * V[row_of_nz]).sum(axis=1)  # (nnz,)
            Rs = sp.csr_matrix((s, R.indices, R.indptr), shape=R.shape)
            return V @ gram + alpha * (Rs @ Y) + reg * V

        X = X.copy()
        b = (1.0 + alpha) * (R @ Y)  # (rows, F)
        r = b - apply(X)
        p = r.copy()
        rs = (r * r).sum(axis=1)
        for _ in range(steps):
            Ap = apply(p)
            step = rs / np.maximum((p * Ap).sum(axis=1), 1e-20)
            X += step[:, None] * p
            r -= step[:, None] * Ap
            rs_new = (r * r).sum(axis=1)
            p = r + (rs_new / np.maximum(rs, 1e-20))[:, None] * p
            rs = rs_new
        X[np.diff(R.indptr) == 0] = 0.0
        return X.astype(np.float32)

    @classmethod
    def fit(cls, ratings: pd.DataFrame, index: CatalogIndex, factors: int = 64,
            alpha: float = 10.0, reg: float = 10.0, iterations: int = 12, seed: int = 0) -> IALSRanker:  # fmt: skip
        X = interaction_matrix(ratings, index)  # (U, N)
        Xt = X.T.tocsr()  # (N, U)
        rng = np.random.default_rng(seed)
        Y = (0.01 * rng.standard_normal((X.shape[1], factors))).astype(np.float32)  # (N, F)
        U = np.zeros((X.shape[0], factors), np.float32)  # (U, F)
        for _ in range(iterations):
            U = cls._solve_rows(X, Y, U, alpha, reg)
            Y = cls._solve_rows(Xt, U, Y, alpha, reg)
        return cls(Y, index, alpha, reg)

    def user_vector(self, rows: np.ndarray) -> np.ndarray:
        """The least-squares user factor ``(F,)`` for a history of catalog rows."""
        rows = np.unique(rows)
        Yu = self.item_factors[rows].astype(np.float64)  # (n, F)
        A = self.gram + self.alpha * (Yu.T @ Yu) + self.reg * np.eye(self.gram.shape[0])
        return scipy.linalg.solve(A, (1.0 + self.alpha) * Yu.sum(axis=0), assume_a="pos")

    def history_scores(self, rows: np.ndarray) -> np.ndarray:
        if len(rows) == 0:
            return np.zeros(len(self.index), np.float32)
        return (self.item_factors @ self.user_vector(rows)).astype(np.float32)

    def score(self, user_state: UserState, item_idx: np.ndarray) -> np.ndarray:
        item_idx = np.asarray(item_idx)
        rows, _ = history_rows(user_state, self.index)
        if len(rows) == 0:
            return _pop_tiebreak(self.index, item_idx) / TIE_BREAK
        return self.history_scores(rows)[item_idx] + _pop_tiebreak(self.index, item_idx)


# ----------------------------------------------------------------------------- supervised


def training_examples(
    ratings: pd.DataFrame,
    index: CatalogIndex,
    item_emb: np.ndarray,
    encoder: StateEncoder,
    max_per_user: int = 64,
    max_history: int = 100,
    n_genres_pick: int = 3,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(state, item row, rating) triples from logged ratings in time order.

    For each user, up to ``max_per_user`` ratings are targets; the state holds the ratings
    before it (last ``max_history``) and the user's favourite genres (a stand-in for the
    onboarding choice), dropped half the time so both regimes are learnt.
    """
    rng = np.random.default_rng(seed)
    emb = normalize_embeddings(item_emb)
    cols = ["userId", "timestamp"] if "timestamp" in ratings.columns else ["userId"]
    df = ratings.sort_values(cols, kind="stable")
    rows_all = index.positions_lenient(df["movieId"].to_numpy())
    df = df.assign(_row=rows_all)[rows_all >= 0]
    states, items, targets = [], [], []
    for user_id, g in df.groupby("userId", sort=False):
        movie_ids = g["movieId"].to_numpy()
        vals = g["rating"].to_numpy(dtype=np.float32)
        rows = g["_row"].to_numpy()
        unit = rating_to_unit(vals)
        genre_pref = (index.genre_matrix[rows] * unit[:, None]).sum(0) / np.maximum(
            index.genre_matrix[rows].sum(0), 1
        )
        liked = [
            index.genres[i] for i in np.argsort(-genre_pref)[:n_genres_pick] if genre_pref[i] > 0
        ]
        cut_points = np.arange(len(g))
        if len(cut_points) > max_per_user:
            cut_points = np.sort(rng.choice(cut_points, max_per_user, replace=False))
        for t in cut_points:
            lo = max(0, t - max_history)
            hist = list(zip(movie_ids[lo:t].tolist(), vals[lo:t].tolist()))
            genres = liked if rng.random() < 0.5 else []
            states.append(encoder.encode(UserState(int(user_id), hist, genres), emb, index))
            items.append(rows[t])
            targets.append(vals[t])
    return np.stack(states), np.asarray(items, np.int64), np.asarray(targets, np.float32)


class SupervisedRanker:
    """Greedy supervised scorer: regress the rating from (state, item features), rank by it.

    Same two-tower network as the DQN, trained with MSE on logged ratings instead of TD
    targets in the simulator -- the comparison isolates what simulator RL adds.
    """

    name = "supervised"

    def __init__(
        self, net: QNetwork, item_emb: np.ndarray, index: CatalogIndex, env_cfg: EnvConfig
    ):
        self.net, self.index = net.eval(), index
        self.item_emb = normalize_embeddings(item_emb)
        self.encoder = StateEncoder(env_cfg)
        self.item_x = torch.from_numpy(item_features(item_emb, index))  # (N, D+3+G)
        with torch.no_grad():
            self.vec, self.bias = net.items(self.item_x)  # (N, E), (N,)

    @classmethod
    def fit(cls, ratings: pd.DataFrame, item_emb: np.ndarray, index: CatalogIndex, env_cfg: EnvConfig,
            epochs: int = 8, hidden: int = 128, embed: int = 64, seed: int = 0) -> SupervisedRanker:  # fmt: skip
        encoder = StateEncoder(env_cfg)
        S, items, y = training_examples(ratings, index, item_emb, encoder, seed=seed)
        torch.manual_seed(seed)
        item_x = torch.from_numpy(item_features(item_emb, index))  # (N, D+3+G)
        net = QNetwork(S.shape[1], item_x.shape[1], hidden, embed)
        opt = torch.optim.Adam(net.parameters(), lr=1e-3)
        S_t, items_t = torch.from_numpy(S), torch.from_numpy(items)
        y_t = torch.from_numpy(rating_to_unit(y))  # (R,) on -1..1
        gen = torch.Generator().manual_seed(seed)
        for _ in range(epochs):
            perm = torch.randperm(len(y_t), generator=gen)
            for start in range(0, len(perm), 256):
                b = perm[start : start + 256]
                pred = net.q_sa(S_t[b], item_x[items_t[b]])  # (B,)
                loss = F.mse_loss(pred, y_t[b])
                opt.zero_grad()
                loss.backward()
                opt.step()
        return cls(net, item_emb, index, env_cfg)

    def score(self, user_state: UserState, item_idx: np.ndarray) -> np.ndarray:
        s = torch.from_numpy(self.encoder.encode(user_state, self.item_emb, self.index))[
            None
        ]  # (1, S)
        idx = torch.as_tensor(np.asarray(item_idx))
        with torch.no_grad():
            q = self.net.states(s) @ self.vec[idx].T + self.bias[idx]  # (1, k)
        return q[0].numpy()

"""A user simulator fitted from logged ratings, for catalogs without a hidden ground truth.

:class:`FittedUserModel` implements the ``UserModel`` protocol (docs/ARCHITECTURE.md)::

    r_hat(u, i) = mu + b_u + b_i + w_b . e_i + p_u . (q_i + W e_i)

Biased matrix factorisation plus a content term on the fused item embedding ``e_i``: the
free item parameters (``b_i``, ``q_i``) are shrunk to zero for movies with few ratings, so
those movies are rated through ``W e_i`` and ``w_b . e_i`` -- the simulator can rate movies
a user never rated, including movies nobody rated. Each user's noise is the standard deviation
of their training residuals, shrunk towards the global residual spread (few ratings -> little
evidence). Those are in-sample residuals, so the simulated noise is if anything a little low.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from mmrec.rl.dqn import few_threads
from mmrec.rl.state import normalize_embeddings

MIN_RATING, MAX_RATING = 0.5, 5.0
# Pseudo-count of "average" residuals mixed into each user's noise estimate.
NOISE_PRIOR_COUNT = 10.0


def round_half_steps(x: np.ndarray) -> np.ndarray:
    """Round to the 0.5-step MovieLens scale and clip to [0.5, 5]."""
    return np.clip(np.round(np.asarray(x) * 2.0) / 2.0, MIN_RATING, MAX_RATING)


class FittedUserModel:
    """Biased MF + content term, fitted from ratings; see the module docstring."""

    def __init__(
        self,
        movie_ids: np.ndarray,  # (N,) catalog order
        user_ids: np.ndarray,  # (U,)
        global_mean: float,
        user_bias: np.ndarray,  # (U,)
        item_bias: np.ndarray,  # (N,) free + content bias, already summed
        user_factors: np.ndarray,  # (U, k)
        item_vectors: np.ndarray,  # (N, k) q_i + W e_i, already summed
        noise_std: np.ndarray,  # (U,)
    ):
        self.movie_ids = np.asarray(movie_ids, dtype=np.int64)
        self.user_ids = np.asarray(user_ids, dtype=np.int64)
        self.global_mean = float(global_mean)
        self.user_bias = np.asarray(user_bias, dtype=np.float32)
        self.item_bias = np.asarray(item_bias, dtype=np.float32)
        self.user_factors = np.asarray(user_factors, dtype=np.float32)
        self.item_vectors = np.asarray(item_vectors, dtype=np.float32)
        self.noise_std = np.asarray(noise_std, dtype=np.float32)
        self._user_pos = {int(u): i for i, u in enumerate(self.user_ids)}
        self._movie_pos = {int(m): i for i, m in enumerate(self.movie_ids)}

    # ------------------------------------------------------------------ fitting

    @classmethod
    def fit(
        cls,
        catalog,
        item_emb: np.ndarray,
        factors: int = 32,
        epochs: int = 300,
        reg: float = 0.3,
        seed: int = 0,
        ratings: pd.DataFrame | None = None,
    ) -> FittedUserModel:
        """Fit on ``ratings`` (default ``catalog.ratings``: userId, movieId, rating).

        ``item_emb`` is the ``(N, D)`` fused embedding in catalog row order. Pass a subset of
        the ratings (e.g. a training split) to keep evaluation data out of the simulator.
        """
        movie_ids = np.asarray(catalog.movie_ids, dtype=np.int64)
        ratings = catalog.ratings if ratings is None else ratings
        if len(item_emb) != len(movie_ids):
            raise ValueError(f"{len(item_emb)} embeddings for {len(movie_ids)} movies")
        missing = [c for c in ("userId", "movieId", "rating") if c not in ratings.columns]
        if missing:
            raise ValueError(f"ratings lack columns {missing}")
        if len(ratings) == 0:
            raise ValueError("cannot fit a user simulator on zero ratings")
        movie_pos = pd.Series(np.arange(len(movie_ids)), index=movie_ids)
        item_idx = movie_pos.reindex(ratings["movieId"].to_numpy()).to_numpy()
        if np.isnan(item_idx).any():
            row = int(np.where(np.isnan(item_idx))[0][0])
            raise ValueError(
                f"ratings row {row}: movieId {int(ratings['movieId'].iloc[row])} is not in the catalog"
            )
        values = ratings["rating"].to_numpy(dtype=np.float32)
        bad = ~np.isfinite(values) | (values < MIN_RATING) | (values > MAX_RATING)
        if bad.any():
            row = int(np.where(bad)[0][0])
            raise ValueError(f"ratings row {row}: rating {values[row]} outside [0.5, 5]")
        with few_threads(blas=True):
            return cls._fit(
                ratings, movie_ids, item_emb, item_idx, values, factors, epochs, reg, seed
            )

    @classmethod
    def _fit(cls, ratings, movie_ids, item_emb, item_idx, values, factors, epochs, reg, seed):
        user_ids, user_idx = np.unique(
            ratings["userId"].to_numpy(dtype=np.int64), return_inverse=True
        )
        gen = torch.Generator().manual_seed(seed)
        emb = torch.from_numpy(normalize_embeddings(item_emb))  # (N, D)
        u_t = torch.from_numpy(user_idx.astype(np.int64))  # (R,)
        i_t = torch.from_numpy(item_idx.astype(np.int64))  # (R,)
        r_t = torch.from_numpy(values.copy())  # (R,) writable copy
        mu = float(values.mean())
        U, N, D = len(user_ids), len(movie_ids), emb.shape[1]

        def init(*shape):
            return (0.01 * torch.randn(*shape, generator=gen)).requires_grad_()

        user_bias, item_bias = init(U), init(N)
        content_bias = init(D)
        user_f, item_f, content_w = init(U, factors), init(N, factors), init(D, factors)
        params = [user_bias, item_bias, content_bias, user_f, item_f, content_w]
        opt = torch.optim.Adam(params, lr=0.05)
        for _ in range(epochs):
            item_vec = item_f + emb @ content_w  # (N, k)
            bias_i = item_bias + emb @ content_bias  # (N,)
            pred = mu + user_bias[u_t] + bias_i[i_t] + (user_f[u_t] * item_vec[i_t]).sum(1)  # (R,)
            mse = ((pred - r_t) ** 2).mean()
            # Per-rating L2 (the usual SGD-MF regulariser, applied in full batch): parameters of
            # users/items with many ratings are constrained by data, the rest shrink to zero.
            penalty = (
                user_f[u_t].pow(2).sum(1) + item_f[i_t].pow(2).sum(1) + user_bias[u_t].pow(2)
            ).mean() + item_bias[i_t].pow(2).mean()
            loss = mse + reg * penalty + 1e-4 * (content_w.pow(2).sum() + content_bias.pow(2).sum())
            opt.zero_grad()
            loss.backward()
            opt.step()

        with torch.no_grad():
            item_vec = (item_f + emb @ content_w).numpy()
            bias_i = (item_bias + emb @ content_bias).numpy()
            pred = np.clip(
                mu
                + user_bias.numpy()[user_idx]
                + bias_i[item_idx.astype(np.int64)]
                + (user_f.numpy()[user_idx] * item_vec[item_idx.astype(np.int64)]).sum(1),
                MIN_RATING,
                MAX_RATING,
            )
        resid = values - pred
        global_var = float(resid.var())
        sq_sum = np.bincount(user_idx, weights=resid**2, minlength=U)
        counts = np.bincount(user_idx, minlength=U)
        noise = np.sqrt((sq_sum + NOISE_PRIOR_COUNT * global_var) / (counts + NOISE_PRIOR_COUNT))
        model = cls(
            movie_ids, user_ids, mu, user_bias.detach().numpy(), bias_i, user_f.detach().numpy(),
            item_vec, noise,
        )  # fmt: skip
        model.train_rmse = float(np.sqrt((resid**2).mean()))
        return model

    # ------------------------------------------------------------------ UserModel protocol

    def _rows(self, user_id: int, movie_ids: np.ndarray) -> tuple[int, np.ndarray]:
        try:
            u = self._user_pos[int(user_id)]
        except KeyError:
            raise KeyError(f"user {user_id} is not in the simulator") from None
        try:
            items = np.fromiter(
                (self._movie_pos[int(m)] for m in np.atleast_1d(movie_ids)), np.int64
            )
        except KeyError as exc:
            raise KeyError(f"movie id {exc.args[0]} is not in the simulator's catalog") from None
        return u, items

    def expected_rating(self, user_id: int, movie_ids: np.ndarray) -> np.ndarray:
        """Noise-free rating ``(k,)`` in [0.5, 5]."""
        u, items = self._rows(user_id, movie_ids)
        raw = (
            self.global_mean
            + self.user_bias[u]
            + self.item_bias[items]
            + self.item_vectors[items] @ self.user_factors[u]
        )  # (k,)
        return np.clip(raw, MIN_RATING, MAX_RATING).astype(np.float32)

    def sample_rating(
        self, user_id: int, movie_ids: np.ndarray, rng: np.random.Generator
    ) -> np.ndarray:
        """Expected rating plus the user's Gaussian noise, rounded to 0.5 steps ``(k,)``."""
        mean = self.expected_rating(user_id, movie_ids)
        sigma = self.noise_std[self._user_pos[int(user_id)]]
        return round_half_steps(mean + sigma * rng.standard_normal(mean.shape)).astype(np.float32)

    # ------------------------------------------------------------------ new users

    def with_synthetic_users(self, n: int, seed: int = 0) -> FittedUserModel:
        """A copy with ``n`` extra users drawn from the fitted population.

        Biases and factors come from a Gaussian with the fitted users' mean and covariance,
        noise levels are resampled from the fitted users. New ids continue after the largest
        existing id, so they can never collide with a real user.
        """
        rng = np.random.default_rng(seed)
        U = len(self.user_ids)
        params = np.column_stack([self.user_bias, self.user_factors])  # (U, 1+k)
        mean = params.mean(axis=0)
        cov = np.cov(params, rowvar=False) + 1e-6 * np.eye(params.shape[1])
        new = rng.multivariate_normal(mean, cov, size=n).astype(np.float32)  # (n, 1+k)
        new_ids = np.arange(n, dtype=np.int64) + int(self.user_ids.max()) + 1
        model = FittedUserModel(
            self.movie_ids,
            np.concatenate([self.user_ids, new_ids]),
            self.global_mean,
            np.concatenate([self.user_bias, new[:, 0]]),
            self.item_bias,
            np.concatenate([self.user_factors, new[:, 1:]]),
            self.item_vectors,
            np.concatenate([self.noise_std, self.noise_std[rng.integers(0, U, size=n)]]),
        )
        model.synthetic_user_ids = new_ids
        return model

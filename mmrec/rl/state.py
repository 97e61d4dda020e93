"""User state and its fixed-size encoding, shared by the simulator, the DQN and the baselines.

A :class:`UserState` is what the recommender knows about a user: the ratings given so far (in
order) and the genres picked at onboarding. :class:`StateEncoder` turns it into one vector:

    [ last L rated items: embedding (D) + rating (1) + present flag (1), newest first ]  L*(D+2)
    [ rating-weighted profile mean in embedding space                                 ]  D
    [ mean embedding of the liked items (rating >= 4)                                  ]  D
    [ counts: log1p(n), share liked, mean rating centred, history empty flag          ]  4
    [ onboarding genre multi-hot                                                      ]  G
    [ rating-weighted genre preference from the history                               ]  G
    [ recent genres: sum of decay^age * genres / n genres of each rated film (option)  ]  G

The last block exists with ``EnvConfig.recent_genres`` only: how much of each genre the user
was shown lately, whatever they thought of it (age 0 = the newest film; ``recent_genres_decay``
per film). It is what a satiated or bored user would be reacting to (``mmrec.rl.dynamics``),
which the last L ratings show for L films only.

Item embeddings are L2-normalised once (:func:`normalize_embeddings`) so the encoding does not
depend on the scale the fusion model happens to produce; every consumer uses the same rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from mmrec.config import EnvConfig

# Ratings live on the MovieLens 0.5..5 scale; 2.75 is the midpoint, 2.25 the half range.
RATING_MID = 2.75
RATING_HALF_RANGE = 2.25
LIKED_RATING = 4.0
PRIOR_MEAN_RATING = 3.5  # typical MovieLens mean, used before any rating is known
ONBOARDING_TITLE_RATING = 4.5  # a title picked as "liked" at sign-up counts as this rating
MEAN_PRIOR_COUNT = 5.0  # pseudo-ratings shrinking each movie's mean towards the global mean


def rating_to_unit(rating):
    """Map a 0.5..5 rating linearly onto -1..1 (0.5 -> -1, 5 -> +1). Works on arrays."""
    return np.clip((np.asarray(rating, dtype=np.float32) - RATING_MID) / RATING_HALF_RANGE, -1, 1)


def normalize_embeddings(item_emb: np.ndarray) -> np.ndarray:
    """Unit-length rows ``(N, D) float32``; all-zero rows (no modality at all) stay zero."""
    emb = np.asarray(item_emb, dtype=np.float32)
    if emb.ndim != 2:
        raise ValueError(f"item embeddings must be (N, D), got shape {emb.shape}")
    if not np.isfinite(emb).all():
        bad = int(np.where(~np.isfinite(emb).all(axis=1))[0][0])
        raise ValueError(f"item embeddings contain NaN/inf (first bad row {bad})")
    norms = np.linalg.norm(emb, axis=1, keepdims=True)  # (N, 1)
    return emb / np.maximum(norms, 1e-8)


@dataclass
class UserState:
    """What is known about one user: ratings so far (oldest first) and onboarding genres."""

    user_id: int
    history: list[tuple[int, float]] = field(default_factory=list)  # (movie_id, rating)
    liked_genres: list[str] = field(default_factory=list)

    def seen_movie_ids(self) -> list[int]:
        return [int(m) for m, _ in self.history]

    def with_rating(self, movie_id: int, rating: float) -> UserState:
        """A new state with one more rating appended (the original is left untouched)."""
        return UserState(
            self.user_id, [*self.history, (int(movie_id), float(rating))], list(self.liked_genres)
        )


def onboarding_state(
    user_id: int,
    liked_genres: Sequence[str] = (),
    liked_movie_ids: Sequence[int] = (),
    rating: float = ONBOARDING_TITLE_RATING,
) -> UserState:
    """A new user's state from the sign-up choices: ticked genres and a few liked titles.

    Liked titles enter as ratings of ``rating`` (their rating-weighted profile then points at
    them), so every ranker -- DQN, content, LinUCB, EASE -- can use them from the first call.
    """
    return UserState(
        int(user_id), [(int(m), float(rating)) for m in liked_movie_ids], list(liked_genres)
    )


@dataclass
class CatalogIndex:
    """The parts of a ``Catalog`` the policies need, as arrays in catalog row order."""

    movie_ids: np.ndarray  # (N,) int64
    genres: list[str]  # genre vocabulary (sorted)
    genre_matrix: np.ndarray  # (N, G) float32 multi-hot
    runtime: np.ndarray  # (N,) float32 minutes
    popularity: np.ndarray  # (N,) float32 rating counts (training ratings where known)
    mean_rating: np.ndarray | None = None  # (N,) float32 shrunk mean rating; None -> global prior
    _pos: dict[int, int] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.movie_ids = np.asarray(self.movie_ids, dtype=np.int64)
        self._pos = {int(m): i for i, m in enumerate(self.movie_ids)}
        if len(self._pos) != len(self.movie_ids):
            raise ValueError("catalog index: duplicate movie ids")
        if self.mean_rating is None:
            self.mean_rating = np.full(len(self.movie_ids), PRIOR_MEAN_RATING, dtype=np.float32)

    @classmethod
    def from_catalog(cls, catalog, ratings=None) -> CatalogIndex:
        """Index of ``catalog``; popularity and mean ratings from ``ratings`` (default: all).

        Pass the training ratings when evaluating, so held-out users' ratings never leak into
        the popularity features.
        """
        movies = catalog.movies
        runtime = movies["runtime"] if "runtime" in movies else None
        index = cls(
            movie_ids=np.asarray(catalog.movie_ids, dtype=np.int64),
            genres=list(catalog.genres),
            genre_matrix=np.asarray(catalog.genre_matrix(), dtype=np.float32),
            runtime=(
                np.full(len(movies), 100.0, dtype=np.float32)
                if runtime is None
                else runtime.to_numpy(dtype=np.float32, na_value=100.0)
            ),
            popularity=np.zeros(len(movies), dtype=np.float32),
        )
        index.set_ratings(catalog.ratings if ratings is None else ratings)
        return index

    def set_ratings(self, ratings) -> None:
        """Recompute ``popularity`` (counts) and ``mean_rating`` from a ratings frame.

        The mean is shrunk towards the global mean with ``MEAN_PRIOR_COUNT`` pseudo-ratings, so
        a movie with one 5-star rating does not outrank a classic with hundreds.
        """
        pos = self.positions_lenient(ratings["movieId"].to_numpy())
        keep = pos >= 0
        pos = pos[keep]
        values = ratings["rating"].to_numpy(dtype=np.float64)[keep]
        n = len(self.movie_ids)
        counts = np.bincount(pos, minlength=n).astype(np.float64)
        sums = np.bincount(pos, weights=values, minlength=n)
        prior = float(values.mean()) if len(values) else PRIOR_MEAN_RATING
        self.popularity = counts.astype(np.float32)
        self.mean_rating = ((sums + MEAN_PRIOR_COUNT * prior) / (counts + MEAN_PRIOR_COUNT)).astype(
            np.float32
        )

    def positions_lenient(self, movie_ids) -> np.ndarray:
        """Catalog rows of ``movie_ids`` with -1 for unknown ids ``(k,) int64``."""
        return np.fromiter((self._pos.get(int(m), -1) for m in movie_ids), dtype=np.int64)

    def item_side_features(self, runtime_genres: bool = False) -> np.ndarray:
        """``(N, 2)`` float32 id-free item facts a new movie also has: log-popularity, mean rating;
        with ``runtime_genres`` ``(N, 3 + G)``: also runtime ((minutes - 100) / 60) and the genre
        multi-hot (the watch-time reward scales with runtime; policies built before issue 14
        saw only the first two).

        Fixed scalings (not catalog maxima) so appending a movie never changes other rows.
        """
        log_pop = np.log1p(self.popularity) / 10.0  # 22k ratings -> 1.0
        mean = rating_to_unit(self.mean_rating)
        side = np.stack([log_pop, mean], axis=1).astype(np.float32)  # (N, 2)
        if not runtime_genres:
            return side
        runtime = (np.asarray(self.runtime, dtype=np.float32)[:, None] - 100.0) / 60.0  # (N, 1)
        return np.concatenate([side, runtime, self.genre_matrix], axis=1).astype(np.float32)

    def __len__(self) -> int:
        return len(self.movie_ids)

    def positions(self, movie_ids: Sequence[int]) -> np.ndarray:
        """Catalog rows of ``movie_ids`` ``(k,) int64``; unknown ids raise with the id named."""
        try:
            return np.fromiter((self._pos[int(m)] for m in movie_ids), dtype=np.int64)
        except KeyError as exc:
            raise KeyError(f"movie id {exc.args[0]} is not in the catalog") from None

    def genre_vector(self, genres: Sequence[str]) -> np.ndarray:
        """Multi-hot ``(G,)`` of the given genre names; unknown names are ignored."""
        vec = np.zeros(len(self.genres), dtype=np.float32)
        lookup = {g.lower(): i for i, g in enumerate(self.genres)}
        for g in genres:
            i = lookup.get(str(g).lower())
            if i is not None:
                vec[i] = 1.0
        return vec


class StateEncoder:
    """``UserState`` -> fixed-size ``(S,)`` float32 vector (layout in the module docstring)."""

    def __init__(self, cfg: EnvConfig):
        self.cfg = cfg

    def state_dim(self, emb_dim: int, n_genres: int) -> int:
        recent = n_genres if self.cfg.recent_genres else 0
        return self.cfg.history_len * (emb_dim + 2) + 2 * emb_dim + 4 + 2 * n_genres + recent

    def encode(self, state: UserState, item_emb: np.ndarray, index: CatalogIndex) -> np.ndarray:
        """Encode one state. ``item_emb`` must already be normalised ``(N, D)``."""
        n_items, dim = item_emb.shape
        if n_items != len(index):
            raise ValueError(f"{n_items} item embeddings for a catalog of {len(index)} movies")
        L, G = self.cfg.history_len, len(index.genres)
        out = np.zeros(self.state_dim(dim, G), dtype=np.float32)
        if state.history:
            rows = index.positions([m for m, _ in state.history])  # (n,)
            ratings = np.asarray([r for _, r in state.history], dtype=np.float32)  # (n,)
            unit = rating_to_unit(ratings)  # (n,) in -1..1
            emb = item_emb[rows]  # (n, D)
            # Newest first, so slot 0 is always the latest rating whatever the history length.
            last_emb, last_unit = emb[::-1][:L], unit[::-1][:L]  # (l, D), (l,) with l <= L
            block = out[: L * (dim + 2)].reshape(L, dim + 2)
            block[: len(last_unit), :dim] = last_emb
            block[: len(last_unit), dim] = last_unit
            block[: len(last_unit), dim + 1] = 1.0
            o = L * (dim + 2)
            # Weighted by the centred rating: disliked items push the profile away from them.
            out[o : o + dim] = (unit[:, None] * emb).mean(axis=0)
            liked = ratings >= LIKED_RATING
            if liked.any():
                out[o + dim : o + 2 * dim] = emb[liked].mean(axis=0)
            o += 2 * dim
            out[o] = np.log1p(len(rows))
            out[o + 1] = liked.mean()
            out[o + 2] = unit.mean()
            genre_rows = index.genre_matrix[rows]  # (n, G)
            weight = np.maximum(genre_rows.sum(axis=0), 1.0)  # (G,)
            out[o + 4 + G : o + 4 + 2 * G] = (unit[:, None] * genre_rows).sum(axis=0) / weight
            if self.cfg.recent_genres:
                age = np.arange(len(rows))[::-1]  # 0 for the newest film
                share = genre_rows / np.maximum(genre_rows.sum(axis=1, keepdims=True), 1.0)
                decay = float(self.cfg.recent_genres_decay) ** age  # (n,)
                out[o + 4 + 2 * G :] = (decay[:, None] * share).sum(axis=0)
        else:
            out[L * (dim + 2) + 2 * dim + 3] = 1.0  # empty-history flag: the cold-start regime
        o = L * (dim + 2) + 2 * dim + 4
        out[o : o + G] = index.genre_vector(state.liked_genres)
        return out

    def encode_many(
        self, states: Sequence[UserState], item_emb: np.ndarray, index: CatalogIndex
    ) -> np.ndarray:
        """``(B, S)`` float32 for a list of states."""
        return np.stack([self.encode(s, item_emb, index) for s in states])

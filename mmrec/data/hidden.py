"""The demo's ground-truth user model: hidden tastes that generated ``ratings.csv``.

``mmrec.data.demo`` samples every movie's latent attributes and every user's tastes, builds a
``HiddenUserModel`` from them, samples the ratings with it and saves it beside the catalog. The
RL simulator and the evaluation then load it back to ask for the *true* rating of any user for
any movie, not only those in ``ratings.csv``. It implements the ``UserModel`` protocol of
docs/ARCHITECTURE.md.

The model (all arrays in catalog order of ``movie_ids``)::

    x_g(m)   raw features of movie m in group g        g in genre, theme, visual, audio
    c_g      mean of x_g over the catalog (centres each group, so a taste has no hidden bias)
    s_g      std of  w_g(u) . (x_g(m) - c_g)  over all (u, m) at generation (unit-variance groups)
    z(u, m)  = offset + bias(u) + quality(m)
               + strength * sum_g alpha_g(u) * w_g(u) . (x_g(m) - c_g) / s_g
    expected(u, m) = 0.5 + 4.5 * sigmoid(z(u, m))                 noise-free, in (0.5, 5)
    sample(u, m)   = clip(round_half(expected + noise(u) * N(0, 1)), 0.5, 5)

``alpha(u)`` (sums to 1) says how much each group drives the user's taste: a user with a large
``alpha_visual`` mostly reacts to posters. Which modality reveals which group is the demo's
business (see ``mmrec.data.demo``): genre -> labels and, partly, all three modalities;
theme -> synopsis only; visual -> poster only; audio -> trailer only; quality -> no modality
(only ratings reveal it).

Files: ``hidden_users.npz`` (arrays, ``np.load(allow_pickle=False)``) and ``hidden_users.json``
(format, version, feature names per group, constants, plus any metadata the generator adds).
npz keys: ``movie_ids (N,)``, ``user_ids (U,)``, ``item_<g> (N, D_g)``, ``center_<g> (D_g,)``,
``user_<g> (U, D_g)``, ``user_alpha (U, 4)``, ``user_bias (U,)``, ``user_noise (U,)``,
``item_quality (N,)``, ``group_scale (4,)`` and optional ``extra_<name>`` arrays (diagnostics
such as popularity or which genre the poster shows), all numeric.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mmrec.atomic import atomic_write

GROUPS = ("genre", "theme", "visual", "audio")  # taste groups, order of user_alpha / group_scale
NPZ_NAME = "hidden_users.npz"
JSON_NAME = "hidden_users.json"
FORMAT = "mmrec-hidden-users"
VERSION = 1
MIN_RATING, MAX_RATING = 0.5, 5.0


class HiddenModelError(Exception):
    """hidden_users.npz / .json missing, corrupt or inconsistent (the message names the file)."""


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def group_scales(
    item_features: dict[str, np.ndarray],
    user_weights: dict[str, np.ndarray],
    centers: dict[str, np.ndarray],
) -> np.ndarray:
    """Std of ``w_g(u) . (x_g(m) - c_g)`` over all (user, movie) pairs, per group -> (4,).

    Dividing by it puts every group on the same footing, so ``alpha`` alone says how much a
    group matters (otherwise a 16-d genre vector would outweigh a 9-d audio one by size).
    """
    scales = np.ones(len(GROUPS), dtype=np.float64)
    for k, g in enumerate(GROUPS):
        scores = user_weights[g].astype(np.float64) @ (item_features[g] - centers[g]).T  # (U, N)
        std = float(scores.std())
        scales[k] = std if std > 1e-8 else 1.0  # a constant group carries no taste; avoid /0
    return scales


@dataclass(eq=False)
class HiddenUserModel:
    """Ground-truth tastes of the demo's simulated users (see the module docstring)."""

    user_ids: np.ndarray  # (U,) int64
    movie_ids: np.ndarray  # (N,) int64, catalog row order
    item_features: dict[str, np.ndarray]  # group -> (N, D_g) float32 raw features
    centers: dict[str, np.ndarray]  # group -> (D_g,) catalog mean of the features
    user_weights: dict[str, np.ndarray]  # group -> (U, D_g) taste per feature
    user_alpha: np.ndarray  # (U, 4) share of each group in the taste, rows sum to 1
    user_bias: np.ndarray  # (U,) personal offset on the logit scale (harsh vs generous)
    user_noise: np.ndarray  # (U,) std of the rating noise, in stars
    item_quality: np.ndarray  # (N,) shared appeal no modality shows
    group_scale: np.ndarray  # (4,) unit-variance normaliser per group
    offset: float = 0.0  # base logit (the demo's watch choice lifts the observed mean to ~3.5)
    strength: float = 1.8  # how strongly tastes move the logit
    feature_names: dict[str, list[str]] = field(default_factory=dict)  # group -> names (D_g)
    extras: dict[str, np.ndarray] = field(default_factory=dict)  # diagnostics, saved as extra_*
    meta: dict = field(default_factory=dict)  # JSON-able description written to the .json

    def __post_init__(self) -> None:
        self.user_ids = np.asarray(self.user_ids, dtype=np.int64)
        self.movie_ids = np.asarray(self.movie_ids, dtype=np.int64)
        n_users, n_movies = len(self.user_ids), len(self.movie_ids)
        for g in GROUPS:
            if g not in self.item_features or g not in self.user_weights or g not in self.centers:
                raise HiddenModelError(f"hidden user model: group '{g}' is missing")
            x, w, c = self.item_features[g], self.user_weights[g], self.centers[g]
            if x.shape[0] != n_movies or w.shape[0] != n_users or x.shape[1] != w.shape[1]:
                raise HiddenModelError(
                    f"hidden user model: group '{g}' has item {x.shape}, user {w.shape} "
                    f"for {n_movies} movies and {n_users} users"
                )
            if c.shape != (x.shape[1],):
                raise HiddenModelError(f"hidden user model: center_{g} has shape {c.shape}")
        for name, arr, n in (
            ("user_alpha", self.user_alpha, n_users),
            ("user_bias", self.user_bias, n_users),
            ("user_noise", self.user_noise, n_users),
            ("item_quality", self.item_quality, n_movies),
        ):
            if arr.shape[0] != n:
                raise HiddenModelError(
                    f"hidden user model: {name} has {arr.shape[0]} rows, want {n}"
                )
        if self.user_alpha.shape[1:] != (len(GROUPS),) or self.group_scale.shape != (len(GROUPS),):
            raise HiddenModelError("hidden user model: user_alpha/group_scale must have 4 groups")
        if len(np.unique(self.user_ids)) != n_users or len(np.unique(self.movie_ids)) != n_movies:
            raise HiddenModelError("hidden user model: duplicate user or movie ids")
        self._user_pos = {int(u): i for i, u in enumerate(self.user_ids)}
        self._movie_order = np.argsort(self.movie_ids, kind="stable")
        self._sorted_movies = self.movie_ids[self._movie_order]
        # One matrix product per query: fold alpha, centres and scales into two blocks so that
        # taste(u, m) = user_block[u] . item_block[m].
        item_blocks, user_blocks = [], []
        for k, g in enumerate(GROUPS):
            item_blocks.append((self.item_features[g] - self.centers[g]) / self.group_scale[k])
            user_blocks.append(self.user_weights[g] * self.user_alpha[:, k : k + 1])
        self._item_block = np.concatenate(item_blocks, axis=1).astype(np.float64)  # (N, D)
        self._user_block = np.concatenate(user_blocks, axis=1).astype(np.float64)  # (U, D)

    # ------------------------------------------------------------------ lookups

    def user_index(self, user_id: int) -> int:
        try:
            return self._user_pos[int(user_id)]
        except KeyError:
            raise KeyError(
                f"userId {user_id} is not in the hidden user model ({len(self.user_ids)} users)"
            ) from None

    def movie_index(self, movie_ids) -> np.ndarray:
        """Positions of ``movie_ids`` in catalog order; KeyError naming the first unknown id."""
        ids = np.atleast_1d(np.asarray(movie_ids, dtype=np.int64))
        pos = np.searchsorted(self._sorted_movies, ids)
        pos = np.minimum(pos, len(self._sorted_movies) - 1)
        bad = self._sorted_movies[pos] != ids
        if bad.any():
            raise KeyError(
                f"movieId {int(ids[bad][0])} is not in the hidden user model "
                f"({len(self.movie_ids)} movies)"
            )
        return self._movie_order[pos]

    # ------------------------------------------------------------------ ratings

    def _logits(self, user_pos: np.ndarray, movie_pos: np.ndarray) -> np.ndarray:
        taste = self._user_block[user_pos] @ self._item_block[movie_pos].T  # (u, n)
        return (
            self.offset
            + self.user_bias[user_pos][:, None]
            + self.item_quality[movie_pos][None, :]
            + self.strength * taste
        )

    def expected_rating(self, user_id: int, movie_ids: np.ndarray) -> np.ndarray:
        """Noise-free rating in (0.5, 5) of one user for ``movie_ids`` (n,) -> (n,) float64."""
        u = np.array([self.user_index(user_id)])
        z = self._logits(u, self.movie_index(movie_ids))[0]  # (n,)
        return MIN_RATING + (MAX_RATING - MIN_RATING) * _sigmoid(z)

    def expected_matrix(self, user_ids=None, movie_ids=None) -> np.ndarray:
        """Noise-free ratings for many users at once -> (U', N') float64 (all by default)."""
        u = (
            np.arange(len(self.user_ids))
            if user_ids is None
            else np.array([self.user_index(x) for x in np.atleast_1d(user_ids)])
        )
        m = np.arange(len(self.movie_ids)) if movie_ids is None else self.movie_index(movie_ids)
        return MIN_RATING + (MAX_RATING - MIN_RATING) * _sigmoid(self._logits(u, m))

    def sample_rating(
        self, user_id: int, movie_ids: np.ndarray, rng: np.random.Generator
    ) -> np.ndarray:
        """Ratings with the user's noise, in 0.5 steps within [0.5, 5] -> (n,) float64."""
        expected = self.expected_rating(user_id, movie_ids)
        noisy = expected + self.user_noise[self.user_index(user_id)] * rng.standard_normal(
            expected.shape
        )
        return np.clip(np.round(noisy * 2.0) / 2.0, MIN_RATING, MAX_RATING)

    def modality_weights(self, user_id: int) -> dict[str, float]:
        """The user's true share of each taste group (genre, theme, visual, audio)."""
        alpha = self.user_alpha[self.user_index(user_id)]
        return {g: float(a) for g, a in zip(GROUPS, alpha)}

    # ------------------------------------------------------------------ files

    def save(self, data_dir) -> None:
        """Write hidden_users.npz and hidden_users.json atomically into ``data_dir``."""
        data_dir = Path(data_dir)
        data_dir.mkdir(parents=True, exist_ok=True)
        arrays = {
            "movie_ids": self.movie_ids,
            "user_ids": self.user_ids,
            "user_alpha": self.user_alpha.astype(np.float32),
            "user_bias": self.user_bias.astype(np.float32),
            "user_noise": self.user_noise.astype(np.float32),
            "item_quality": self.item_quality.astype(np.float32),
            "group_scale": self.group_scale.astype(np.float64),
        }
        for g in GROUPS:
            arrays[f"item_{g}"] = self.item_features[g].astype(np.float32)
            arrays[f"center_{g}"] = self.centers[g].astype(np.float64)
            arrays[f"user_{g}"] = self.user_weights[g].astype(np.float32)
        for name, arr in self.extras.items():
            arrays[f"extra_{name}"] = np.asarray(arr)
        meta = dict(self.meta)
        meta.update(
            format=FORMAT,
            version=VERSION,
            groups=list(GROUPS),
            offset=self.offset,
            strength=self.strength,
            feature_names={g: list(self.feature_names.get(g, [])) for g in GROUPS},
            n_users=int(len(self.user_ids)),
            n_movies=int(len(self.movie_ids)),
        )
        atomic_write(data_dir / NPZ_NAME, lambda fh: _write_npz(fh, arrays))
        text = json.dumps(meta, indent=2, sort_keys=True) + "\n"
        atomic_write(data_dir / JSON_NAME, lambda fh: fh.write(text.encode("utf-8")))

    @classmethod
    def load(cls, data_dir) -> HiddenUserModel:
        """Read the model written by ``save``; HiddenModelError naming the file on any problem."""
        data_dir = Path(data_dir)
        npz_path, json_path = data_dir / NPZ_NAME, data_dir / JSON_NAME
        try:
            meta = json.loads(json_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise HiddenModelError(
                f"{json_path}: missing (only demo catalogs have a hidden user model)"
            ) from None
        except (OSError, ValueError) as exc:
            raise HiddenModelError(f"{json_path}: unreadable: {exc}") from None
        if (
            not isinstance(meta, dict)
            or meta.get("format") != FORMAT
            or meta.get("version") != VERSION
        ):
            raise HiddenModelError(
                f"{json_path}: format {meta.get('format')!r} version {meta.get('version')!r}, "
                f"expected {FORMAT!r} version {VERSION}"
            )
        try:
            with np.load(npz_path, allow_pickle=False) as npz:
                arrays = {k: npz[k] for k in npz.files}
        except FileNotFoundError:
            raise HiddenModelError(f"{npz_path}: missing") from None
        except Exception as exc:  # zip / header corruption surfaces as many exception types
            raise HiddenModelError(f"{npz_path}: unreadable: {exc}") from None
        required = ["movie_ids", "user_ids", "user_alpha", "user_bias", "user_noise"]
        required += ["item_quality", "group_scale"]
        required += [f"{p}_{g}" for g in GROUPS for p in ("item", "center", "user")]
        missing = [k for k in required if k not in arrays]
        if missing:
            raise HiddenModelError(f"{npz_path}: missing arrays {missing}")
        if not all(isinstance(meta.get(k), (int, float)) for k in ("offset", "strength")):
            raise HiddenModelError(f"{json_path}: 'offset' and 'strength' must be numbers")
        try:
            return cls(
                user_ids=arrays["user_ids"],
                movie_ids=arrays["movie_ids"],
                item_features={g: arrays[f"item_{g}"] for g in GROUPS},
                centers={g: arrays[f"center_{g}"] for g in GROUPS},
                user_weights={g: arrays[f"user_{g}"] for g in GROUPS},
                user_alpha=arrays["user_alpha"],
                user_bias=arrays["user_bias"],
                user_noise=arrays["user_noise"],
                item_quality=arrays["item_quality"],
                group_scale=arrays["group_scale"],
                offset=float(meta["offset"]),
                strength=float(meta["strength"]),
                feature_names={g: list(v) for g, v in meta.get("feature_names", {}).items()},
                extras={k[len("extra_") :]: v for k, v in arrays.items() if k.startswith("extra_")},
                meta={k: v for k, v in meta.items() if k not in ("feature_names",)},
            )
        except HiddenModelError as exc:
            raise HiddenModelError(f"{npz_path}: {exc}") from None


def _write_npz(fh, arrays: dict[str, np.ndarray]) -> None:
    """Like ``np.savez_compressed`` but with fixed zip timestamps: same arrays, same bytes."""
    with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name in sorted(arrays):
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            with zf.open(info, "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.asarray(arrays[name]), allow_pickle=False)

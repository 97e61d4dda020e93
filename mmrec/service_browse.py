"""The browsing side of the service facade (``Recommender`` inherits it): one movie's row,
search, neighbours and the 2-D map under the modality weights, the popular titles onboarding
offers, telemetry, reports and status. Split from :mod:`mmrec.service` (serving state,
ranking, rating).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from mmrec.values import Filters, Weights


class BrowsingMixin:
    """Needs from the class it is mixed into: ``cfg``, ``catalog``, ``store``, ``policy_meta``,
    ``agent``, ``default_emb``, ``_titles``, ``_rows``, ``_simulator_lock`` / ``_simulator_parts``,
    ``_ids``, ``_popularity``, ``embeddings``, ``candidate_mask``, ``recommend``,
    ``_movie_pos``."""

    def popular_titles(self, n: int = 24) -> list[tuple[int, str]]:
        order = np.argsort(-self._popularity, kind="stable")[:n]
        return [(int(self._ids[i]), str(self.catalog.movies.iloc[i]["title"])) for i in order]

    def movie(self, movie_id: int) -> dict:
        i = self._movie_pos(movie_id)
        row = self.catalog.movies.iloc[i].to_dict()
        row["movie_id"] = int(movie_id)
        row["year"] = None if pd.isna(row.get("year")) else int(row["year"])
        return row

    def search(
        self, query: str = "", filters: Filters = Filters(), limit: int = 200
    ) -> pd.DataFrame:
        mask = self.candidate_mask(None, filters)
        m = self.catalog.movies
        if query.strip():
            q = query.strip().lower()
            hit = m["title"].str.lower().str.contains(q, regex=False) | m[
                "overview"
            ].str.lower().str.contains(q, regex=False)
            mask &= hit.to_numpy()
        out = m.loc[
            mask,
            [
                "title",
                "year",
                "genres",
                "avg_rating",
                "n_ratings",
                "has_text",
                "has_image",
                "has_audio",
            ],
        ].copy()
        out["genres"] = out["genres"].map(" | ".join)
        return out.sort_values("n_ratings", ascending=False).head(limit)

    def neighbours(
        self, movie_id: int, weights: Weights = Weights(), k: int = 8
    ) -> list[tuple[int, str, float]]:
        i = self._movie_pos(movie_id)
        emb = self.embeddings(weights.clipped())
        norm = emb / (np.linalg.norm(emb, axis=1, keepdims=True) + 1e-9)
        sims = norm @ norm[i]
        sims[i] = -np.inf
        top = np.argpartition(-sims, min(k, len(sims) - 1))[:k]
        top = top[np.argsort(-sims[top])]
        return [
            (int(self._ids[j]), str(self.catalog.movies.iloc[j]["title"]), float(sims[j]))
            for j in top
        ]

    def map_2d(self, weights: Weights = Weights()) -> pd.DataFrame:
        """2-D PCA projection of the fused item embeddings under these weights."""
        emb = self.embeddings(weights.clipped()).astype(np.float64)
        centred = emb - emb.mean(axis=0)
        _u, _s, vt = np.linalg.svd(centred, full_matrices=False)
        xy = centred @ vt[:2].T
        m = self.catalog.movies
        return pd.DataFrame(
            {
                "movie_id": self._ids,
                "x": xy[:, 0],
                "y": xy[:, 1],
                "title": m["title"].to_numpy(),
                "genre": [g[0] if g else "(none)" for g in m["genres"]],
                "poster": m["poster"].to_numpy(),
            }
        )

    def telemetry(
        self, user_id: int, weights: Weights = Weights(), filters: Filters = Filters(), k: int = 12
    ) -> dict:
        personal = self.store.load_policy_state(user_id) or {}
        picks = self.recommend(user_id, k, weights, filters)
        return {
            "rewards": personal.get("rewards", []),
            "predicted": personal.get("predicted", []),  # expected rating (-1..1) before each
            "surprises": personal.get("surprises", []),  # reward - predicted: what was learnt
            "td_losses": personal.get("td_losses", []),  # older versions' TD adapter only
            "epsilons": personal.get("epsilons", []),
            "n_updates": personal.get("n_updates", 0),
            "q_values": [p.q for p in picks],
            "scores": [p.score for p in picks],
            "titles": [p.title for p in picks],
        }

    # ------------------------------------------------------------- simulated dynamics
    DYNAMICS_POLICIES = ("served DQN", "popularity", "myopic oracle")

    def _simulator(self):
        """(user model, training index, held-out user ids), loaded once: the demo's hidden
        users, or a model fitted from the catalog's ratings (``pipeline.load_user_model``)."""
        from mmrec.pipeline import load_user_model, training_index
        from mmrec.rl.env import split_users

        with self._simulator_lock:
            if self._simulator_parts is None:
                model, _source = load_user_model(self.cfg, self.catalog, self.default_emb)
                index = training_index(self.catalog, model, self.cfg)
                _train, held = split_users(model.user_ids, self.cfg.env)
                self._simulator_parts = (model, index, held)
            return self._simulator_parts

    def simulator_ready(self) -> bool:
        """True when ``simulated_users`` answers at once: already loaded, or the catalog ships
        its hidden users (the demo). Otherwise the first call fits a user model from the
        ratings (~20 s on the real MovieLens catalog, 2-core VM), which a page should only do
        when asked."""
        data = Path(self.cfg.paths.data_dir)
        return self._simulator_parts is not None or (data / "hidden_users.npz").exists()

    def simulated_users(self, n: int = 50) -> list[int]:
        """The first ``n`` held-out simulated users (never trained on by the policy)."""
        return [int(u) for u in self._simulator()[2][:n]]

    def dynamics_replay(self, sim_user: int, policy: str = "served DQN", seed: int = 0) -> dict:
        """One cold-start episode of a held-out simulated user with every user dynamic on
        (``mmrec.rl.replay``), played by the served DQN, popularity or the myopic oracle;
        titles added for the page."""
        import copy

        from mmrec.eval.policy import MyopicOracle
        from mmrec.rl.baselines import PopularityRanker
        from mmrec.rl.replay import replay_episode
        from mmrec.values import ServiceError

        model, index, held = self._simulator()
        if not np.isin(int(sim_user), held):
            raise ServiceError(f"{sim_user!r} is not a held-out simulated user")
        if policy == "served DQN":
            ranker = copy.copy(self.agent)  # re-pointed at the training index, as evaluated
            ranker.set_items(self.default_emb, index)
        elif policy == "popularity":
            ranker = PopularityRanker(index)
        elif policy == "myopic oracle":
            ranker = MyopicOracle()
        else:
            raise ServiceError(f"unknown policy {policy!r}: one of {self.DYNAMICS_POLICIES}")
        out = replay_episode(
            index, self.default_emb, model, self.cfg.env, ranker, int(sim_user), seed=int(seed)
        )
        for step in out["steps"]:
            step["title"] = str(self._titles[step["row"]])
            step["genres"] = "|".join(self._rows["genres"][step["row"]])
        out["policy"] = policy
        return out

    def reports(self, reports_dir: str | Path = "reports") -> dict:
        import json

        out = {}
        for path in sorted(Path(reports_dir).glob("*.json")):
            try:
                out[path.stem] = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
        return out

    def status(self) -> dict:
        return {
            "data_dir": str(self.cfg.paths.data_dir),
            "checkpoints_dir": str(self.cfg.paths.checkpoints_dir),
            "summary": self.catalog.summary(),
            "problems": [str(p) for p in self.catalog.problems],
            "policy": {k: v for k, v in self.policy_meta.items() if k != "curves"},
        }

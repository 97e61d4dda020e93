"""The explanation entry points of the service facade (``Recommender`` inherits them).

Explanations never see the ``Recommender`` itself: :meth:`serving_state` hands them a narrow
``mmrec.explain.serving.ServingState``, and one ``Explainer`` per service is built from it on
first use. Split from :mod:`mmrec.service` (serving state, ranking, rating) so that module
stays about serving.
"""

from __future__ import annotations

import threading

import numpy as np

from mmrec.values import Filters, ServiceError, Weights


class ExplanationsMixin:
    """Needs from the class it is mixed into: ``cfg``, ``catalog``, ``model``, ``branches``,
    ``present``, ``agent``, ``policy``, ``store``, ``_pos``, ``_locks_lock``, ``_explainer``,
    ``user_state``, ``prior_state``, ``embeddings``, ``_check_user``, ``_movie_pos``."""

    def learn_user_weights(self, user_id: int) -> dict:
        from mmrec.models.user_weights import learn_user_weights

        history = self.user_state(user_id).history
        if len(history) < 5:
            raise ServiceError("rate at least 5 movies before learning your modality weights")
        idx = np.array([self._pos[m] for m, _ in history])
        ratings = np.array([r for _, r in history], dtype=np.float32)
        return learn_user_weights(self.model, self.branches, self.present, idx, ratings)

    def serving_state(self):
        """What explanations read (``mmrec.explain.serving.ServingState``): the served models,
        the catalog rows and per-user lookups that go back to this service's store."""
        from mmrec.explain.serving import ServingState

        return ServingState(
            cfg=self.cfg,
            catalog=self.catalog,
            model=self.model,
            branches=self.branches,
            present=self.present,
            q_network=self.agent.q_network,
            item_side=self.agent.item_side(),
            policy=self.policy,
            positions=self._pos,
            user_state=self.user_state,
            prior_state=self.prior_state,
            policy_state=lambda user_id: self.store.load_policy_state(user_id),
            embeddings=self.embeddings,
        )

    def warm_explainer(self) -> float:
        """Load the explanation encoders now (seconds taken): ``python main.py`` does it while
        the server boots, so the first "Why this pick" does not pay for them."""
        return self._get_explainer().warm()

    def warm_explainer_in_background(self) -> threading.Thread:
        """Load the explanation encoders (text, poster, trailer) in a daemon thread, so the
        first "Why this pick" does not pay for them; errors are left for that request to say."""

        def run():
            try:
                self.warm_explainer()
            except Exception:  # noqa: BLE001  (the explanation itself reports what is wrong)
                pass

        thread = threading.Thread(target=run, name="mmrec-warm-explainer", daemon=True)
        thread.start()
        return thread

    def _get_explainer(self):
        from mmrec.explain import Explainer

        with self._locks_lock:
            if self._explainer is None:
                self._explainer = Explainer(self.serving_state())
        return self._explainer

    def explain(
        self,
        user_id: int,
        movie_id: int,
        weights: Weights = Weights(),
        steps: int | None = None,
        filters: Filters | None = None,
    ):
        """``mmrec.explain.Explanation`` of this movie's Q for this user (cached per user state,
        movie, weights, steps); ``filters`` are quoted in the reasons."""
        return self._get_explainer().explain(
            user_id, movie_id, weights.clipped(), steps=steps, filters=filters
        )

    def explain_summary(
        self, user_id: int, movie_id: int, weights: Weights = Weights(), filters=None
    ) -> dict:
        """Q, modality shares and reasons of one pick without the heatmaps (no encoder runs):
        what the Why page shows at once. See ``Explainer.summary``."""
        self._check_user(user_id)
        self._movie_pos(movie_id)
        return self._get_explainer().summary(user_id, movie_id, weights.clipped(), filters)

    def explain_shares(
        self, user_id: int, movie_ids, weights: Weights = Weights()
    ) -> dict[int, tuple[float, float, float]]:
        """Modality shares (text, image, audio) of each movie's Q, for the grid's share bars;
        cached branch outputs only, no encoder runs."""
        return self._get_explainer().shares(user_id, movie_ids, weights.clipped())

    def explain_trailer(
        self, user_id: int, movie_id: int, clip, weights: Weights = Weights(), steps=None
    ):
        """``(TrailerAttribution or None, notes)``: the trailer map of this movie's Q with the
        audio file ``clip`` in its trailer's place (probes; see ``Explainer.trailer_map``)."""
        self._check_user(user_id)
        self._movie_pos(movie_id)
        return self._get_explainer().trailer_map(user_id, movie_id, clip, weights.clipped(), steps)

    def explain_sanity(
        self, user_id: int, movie_id: int, weights: Weights = Weights(), steps: int | None = None
    ) -> dict[str, float]:
        """Randomisation sanity check: Spearman per modality between the heatmaps of the trained
        and a re-initialised Q-network (near 1 would mean the maps ignore the model)."""
        return self._get_explainer().sanity_check(user_id, movie_id, weights.clipped(), steps)

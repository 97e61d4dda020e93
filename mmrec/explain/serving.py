"""What explanations read from the serving side: one small, documented object.

``mmrec.service.Recommender.serving_state()`` builds it; ``mmrec.explain.Explainer`` takes it.
The explainer never sees the recommender itself, so the recommender's internals (caches, locks,
how it stores users) can change without touching explanations, and ``mmrec.explain`` does not
import ``mmrec.service`` (an import-contract test holds both to that).

Everything here is read-only while serving; the callables go back to the live store, so an
explanation always sees the user's latest ratings.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from mmrec.values import ServiceError, Weights


@dataclass(frozen=True)
class ServingState:
    cfg: Any  # mmrec.config.Config: features (which encoders to re-enter) and explain settings
    catalog: Any  # mmrec.data.catalog.Catalog: movies in row order (titles, genres, ids)
    model: Any  # mmrec.models.fusion.FusionModel: the served fusion network (device, branches)
    branches: Mapping[str, np.ndarray]  # modality -> (N, H) cached branch outputs
    present: np.ndarray  # (N, 3) bool: which modalities each movie has
    q_network: Any  # the served DQN's Q-network (torch.nn.Module), read-only
    item_side: np.ndarray  # (N, F) the Q-network's per-item side features (DQNAgent.item_side)
    policy: Any  # mmrec.rl.online.PersonalPolicy: item_reps(emb), q_values(state, emb, personal)
    positions: Mapping[int, int]  # movie id -> catalog row
    user_state: Callable[[int], Any]  # user id -> UserState (ratings + onboarding); raises
    # ServiceError for an unknown user
    prior_state: Callable[[int], Any]  # user id -> the onboarding-only state the DQN's Q reads
    policy_state: Callable[[int], dict | None]  # user id -> stored per-user policy state
    embeddings: Callable[[Weights], np.ndarray]  # weights -> (N, D) fused embeddings (cached)

    def row(self, movie_id: int) -> int:
        """The catalog row of ``movie_id``; ServiceError for an id the catalog does not have."""
        try:
            return self.positions[int(movie_id)]
        except (KeyError, ValueError, TypeError):
            raise ServiceError(f"unknown movie id {movie_id!r}") from None

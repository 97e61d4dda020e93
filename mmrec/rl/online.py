"""Live learning in the app: a personal adapter on top of the shared DQN, one per user.

The shared two-tower Q-network is trained offline in the simulator (``mmrec.rl.train``) and is
read-only while serving. Each app user gets a small personal vector ``delta_u`` (E numbers)
added to the state tower's output:

    Q_u(s, a) = <state_tower(s) + delta_u, v_a> + b_a        (v_a, b_a from the item tower)

A rating becomes a transition (s, a, r, s'); ``update`` runs a few gradient steps of the
Huber TD loss on ``delta_u`` over the fresh transition mixed with the user's own earlier
transitions (their personal replay), with double-DQN-style masked targets (argmax over unseen
items of s'), held fixed within a step like a target network. ``delta_u`` and the telemetry are
JSON-serialisable and persisted per user in SQLite, so:

- a restart keeps every user's learned state;
- one user's ratings never move another user's scores (no cross-talk), and concurrent
  sessions never write the same parameters;
- the update is a handful of (E x N) products: milliseconds at 5,000 movies.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np
import torch

from mmrec.config import DQNConfig
from mmrec.rl.dqn import DQNAgent, item_features
from mmrec.rl.state import UserState, normalize_embeddings, rating_to_unit

PERSONAL_REPLAY = 24  # most recent own transitions replayed with each fresh one
PERSONAL_LR = 0.05  # SGD step size on delta_u
PERSONAL_L2 = 0.01  # pulls delta_u back towards the shared policy (0)
TELEMETRY_KEEP = 500  # points of telemetry history kept per user


class PersonalPolicy:
    """Scores and live updates for app users, over any item embedding matrix (slider weights)."""

    def __init__(self, agent: DQNAgent, cfg: DQNConfig):
        self.agent = agent
        self.cfg = cfg
        self.gamma = agent.cfg.gamma
        self.steps = max(1, cfg.online_steps)
        self._reps: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    # ----------------------------------------------------------------- item side
    def item_reps(self, emb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(unit embeddings (N, D), item vectors (N, E), item bias (N,)) for this matrix."""
        key = id(emb)
        with self._lock:
            hit = self._reps.get(key)
            if hit is not None and hit[0] is emb:
                self._reps.move_to_end(key)
                return hit[1]
        x = torch.from_numpy(item_features(emb, self.agent.index)).to(self.agent.device)
        with torch.no_grad():
            vec, bias = self.agent.q_network.items(x)  # (N, E), (N,)
        reps = (normalize_embeddings(emb), vec.cpu().numpy(), bias.cpu().numpy())
        with self._lock:
            self._reps[key] = (emb, reps)  # keep emb alive so its id is not reused
            while len(self._reps) > 16:
                self._reps.popitem(last=False)
        return reps

    def _state_vecs(self, states: list[UserState], unit_emb: np.ndarray) -> np.ndarray:
        """(B, E) state-tower outputs for these user states."""
        enc = np.stack(
            [self.agent.encoder.encode(s, unit_emb, self.agent.index) for s in states]
        )  # (B, S)
        with torch.no_grad():
            out = self.agent.q_network.states(torch.from_numpy(enc).to(self.agent.device))
        return out.cpu().numpy()  # (B, E)

    @staticmethod
    def _delta(personal: dict, dim: int) -> np.ndarray:
        d = np.asarray(personal.get("delta", []), dtype=np.float32)
        return d if d.shape == (dim,) else np.zeros(dim, dtype=np.float32)

    # ----------------------------------------------------------------- scoring
    def q_values(self, state: UserState, emb: np.ndarray, personal: dict) -> np.ndarray:
        """(N,) Q_u(s, a) over the whole catalog: one matrix-vector product."""
        unit, vec, bias = self.item_reps(emb)
        u = self._state_vecs([state], unit)[0] + self._delta(personal, vec.shape[1])  # (E,)
        return vec @ u + bias  # (N,)

    # ----------------------------------------------------------------- learning
    def update(
        self,
        state_after: UserState,
        emb: np.ndarray,
        personal: dict,
        action_pos: int,
        rating: float,
        epsilon: float = 0.0,
    ) -> tuple[dict, dict]:
        """Learn from the newest rating (the last entry of ``state_after.history``)."""
        unit, vec, bias = self.item_reps(emb)
        index = self.agent.index
        history = state_after.history
        # Transitions for the last PERSONAL_REPLAY + 1 ratings: the fresh one is the last.
        start = max(0, len(history) - PERSONAL_REPLAY - 1)
        states = [
            UserState(state_after.user_id, history[:t], list(state_after.liked_genres))
            for t in range(start, len(history) + 1)
        ]
        s_vecs = self._state_vecs(states, unit)  # (T+1, E)
        actions = index.positions_lenient([m for m, _ in history[start:]])  # (T,)
        rewards = rating_to_unit([r for _, r in history[start:]]).astype(np.float32)  # (T,)
        keep = actions >= 0
        s, s_next = s_vecs[:-1][keep], s_vecs[1:][keep]
        actions, rewards = actions[keep], rewards[keep]
        seen_rows = index.positions_lenient(state_after.seen_movie_ids())
        seen = np.zeros(len(vec), dtype=bool)
        seen[seen_rows[seen_rows >= 0]] = True

        delta = self._delta(personal, vec.shape[1])
        losses = []
        for _ in range(self.steps):
            # Target held fixed within the step (the lagging-target idea at personal scale).
            q_next = (s_next + delta) @ vec.T + bias  # (T, N)
            q_next[:, seen] = -np.inf  # only movies still recommendable in s'
            best = q_next.argmax(axis=1)
            target = rewards + self.gamma * q_next[np.arange(len(best)), best]
            q_sa = ((s + delta) * vec[actions]).sum(axis=1) + bias[actions]  # (T,)
            err = q_sa - target
            losses.append(
                float(np.mean(np.where(np.abs(err) <= 1, 0.5 * err**2, np.abs(err) - 0.5)))
            )
            # Huber gradient w.r.t. delta: clip(err, -1, 1) * v_a, averaged, plus L2 pull to 0.
            grad = (np.clip(err, -1.0, 1.0)[:, None] * vec[actions]).mean(
                axis=0
            ) + PERSONAL_L2 * delta
            delta = (delta - PERSONAL_LR * grad).astype(np.float32)

        reward = float(rating_to_unit(rating))
        out = dict(personal)
        out["delta"] = delta.tolist()
        out["n_updates"] = int(personal.get("n_updates", 0)) + 1
        for key, value in (
            ("rewards", reward),
            ("td_losses", losses[-1]),
            ("epsilons", float(epsilon)),
        ):
            out[key] = (list(personal.get(key, [])) + [value])[-TELEMETRY_KEEP:]
        telemetry = {
            "reward": reward,
            "td_loss": losses[-1],
            "td_loss_before": losses[0],
            "epsilon": float(epsilon),
            "n_updates": out["n_updates"],
            "replayed": int(len(actions) - 1),
            "movie_pos": int(action_pos),
        }
        return out, telemetry

"""Double DQN over a two-tower Q-network, in the order of CleanRL's ``dqn.py``.

1. Q-network        ``Q(s, a) = V(s) + <state_tower(s), item_tower(x_a)> + item_bias(x_a)``
2. replay buffer    transitions with the next state's seen items (for masked targets)
3. target network   a lagging copy that evaluates the bootstrap target
4. epsilon schedule a pure function of the step
5. update step      Huber loss on double-DQN targets, Adam

``x_a`` is item a's fused embedding (unit length) plus id-free side features (log popularity,
shrunk mean rating, runtime and genre flags; ``DQNConfig.item_runtime_genres``). Because an item enters only through its features, scoring a
whole catalog is one matrix product ``(B, E) @ (E, N)`` and a movie added after training is
scored without retraining: append its row and call ``DQNAgent.set_items``.

No file I/O here: checkpoints are written by ``mmrec.rl.train``.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from mmrec.config import DQNConfig, EnvConfig, pick_device
from mmrec.rl.state import (
    CatalogIndex,
    StateEncoder,
    UserState,
    normalize_embeddings,
    rating_to_unit,
)


@contextlib.contextmanager
def few_threads(n: int = 1, blas: bool = False):
    """Run a long small-network job (training, an evaluation) on ``n`` CPU threads, restoring
    the setting afterwards. Entered once per job by its entry point (``train_policy``, the
    evaluations, the simulator fit), never per call: torch's thread count is process-wide, and a
    serving process sets its own once at start (``mmrec.threads``).

    The towers are tiny (batches of 128 x ~500): with several threads the synchronisation
    costs more than the arithmetic -- on the 2-core dev machine under load one forward took
    6.8 ms on 2 threads and 0.3 ms on 1.
    """
    before = torch.get_num_threads()
    if torch.cuda.is_available():  # the GPU does the work; leave the CPU setting alone
        yield
        return
    torch.set_num_threads(n)
    threadpool_limits = None
    if blas:
        # numpy's BLAS has the same problem (LinUCB's 65x65 solves: 33 ms -> 4 ms per call).
        # Entering the limit costs ~10 ms, so only long runs (training, evaluation) ask for it.
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:  # optional (ships with scikit-learn): only speed is lost
            pass
    try:
        if threadpool_limits is None:
            yield
        else:
            with threadpool_limits(n):
                yield
    finally:
        torch.set_num_threads(before)


# ----------------------------------------------------------------------------- 1. Q-network


class QNetwork(nn.Module):
    """Two towers meeting in a dot product, plus a per-item bias read from the item features
    and, with ``dueling``, a state value ``V(s)`` shared by every item.

    Why the state value (Wang et al. 2016, "Dueling network architectures"): with ``gamma > 0``
    most of a Q-value is the continuation value ``gamma * E[Q(s', a')]``, the same for every film
    in a state. Without ``V(s)`` the dot product must carry that state-dependent constant, which
    a dot product with item vectors can only do by giving every film a shared direction: it
    competes with the differences between films that decide the pick. ``V(s)`` takes it over
    (one more output of the state tower); the pick, an argmax over films, ignores it.
    Measured on validation users with every user dynamic on (``reports/policy-validation-dynamics``)
    it changed nothing at ``gamma = 0.9``, so it is off by default.
    """

    def __init__(
        self,
        state_dim: int,
        item_dim: int,
        hidden: int = 128,
        embed: int = 64,
        dueling: bool = False,
    ):
        super().__init__()
        self.state_dim, self.item_dim, self.hidden, self.embed = state_dim, item_dim, hidden, embed
        self.dueling = bool(dueling)
        # LayerNorm first: the state mixes unit-length embeddings, counts and genre flags of
        # very different scales, and keeps drifting as histories grow.
        self.state_tower = nn.Sequential(
            nn.LayerNorm(state_dim),
            nn.Linear(state_dim, hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, embed + int(self.dueling)),  # + V(s) as the last column
        )
        # One extra output column is the item bias: the share of value that is the same for
        # every user (broad appeal), learnt from content and popularity, never from an id.
        self.item_tower = nn.Sequential(
            nn.Linear(item_dim, hidden), nn.ReLU(), nn.Linear(hidden, embed + 1)
        )

    def head(self, s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, S) -> (user vectors (B, E), state values (B,))``; the values are 0 without
        ``dueling``."""
        out = self.state_tower(s)
        if self.dueling:
            return out[:, :-1], out[:, -1]
        return out, out.new_zeros(out.shape[0])

    def states(self, s: torch.Tensor) -> torch.Tensor:
        """``(B, S) -> (B, E)``: the user vector only (what ranks films)."""
        return self.head(s)[0]

    def items(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(N, F) -> (item vectors (N, E), item bias (N,))``."""
        out = self.item_tower(x)  # (N, E+1)
        return out[:, :-1], out[:, -1]

    def forward(self, s: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Q for every (state, item) pair: ``s (B, S), x (N, F) -> (B, N)``."""
        vec, bias = self.items(x)  # (N, E), (N,)
        u, v = self.head(s)  # (B, E), (B,)
        return u @ vec.T + bias + v[:, None]  # (B, N)

    def q_sa(self, s: torch.Tensor, x_a: torch.Tensor) -> torch.Tensor:
        """Q of one item per state: ``s (B, S), x_a (B, F) -> (B,)``."""
        vec, bias = self.items(x_a)  # (B, E), (B,)
        u, v = self.head(s)  # (B, E), (B,)
        return (u * vec).sum(-1) + bias + v  # (B,)


# ----------------------------------------------------------------------------- 2. replay buffer


@dataclass
class Transition:
    """One step: the next state's seen items make the masked double-DQN target possible."""

    state: np.ndarray  # (S,)
    action: int  # catalog row
    reward: float
    next_state: np.ndarray  # (S,)
    done: bool  # true termination only; a time-limit truncation is NOT done
    next_seen: np.ndarray  # (k,) catalog rows not recommendable in the next state


class ReplayBuffer:
    """Fixed-size ring buffer of transitions stored as flat numpy arrays."""

    def __init__(self, capacity: int, state_dim: int, max_seen: int, seed: int = 0):
        self.capacity, self.max_seen = capacity, max_seen
        self.states = np.zeros((capacity, state_dim), dtype=np.float32)
        self.next_states = np.zeros((capacity, state_dim), dtype=np.float32)
        self.actions = np.zeros(capacity, dtype=np.int64)
        self.rewards = np.zeros(capacity, dtype=np.float32)
        self.dones = np.zeros(capacity, dtype=np.float32)
        # -1 pads; when a user has seen more than max_seen items only the most recent are kept
        # (long-time app users): the target may then bootstrap from an item they already saw.
        self.next_seen = np.full((capacity, max_seen), -1, dtype=np.int64)
        self.pos, self.size = 0, 0
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return self.size

    def add(self, t: Transition) -> None:
        i = self.pos
        self.states[i], self.next_states[i] = t.state, t.next_state
        self.actions[i], self.rewards[i], self.dones[i] = t.action, t.reward, float(t.done)
        seen = np.asarray(t.next_seen, dtype=np.int64)[-self.max_seen :]
        self.next_seen[i] = -1
        self.next_seen[i, : len(seen)] = seen
        self.pos = (self.pos + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def sample(self, batch_size: int) -> dict[str, np.ndarray]:
        idx = self.rng.integers(0, self.size, size=batch_size)
        return self.gather(idx)

    def gather(self, idx: np.ndarray) -> dict[str, np.ndarray]:
        return {
            "states": self.states[idx],
            "actions": self.actions[idx],
            "rewards": self.rewards[idx],
            "next_states": self.next_states[idx],
            "dones": self.dones[idx],
            "next_seen": self.next_seen[idx],
        }


def stack_transitions(transitions: list[Transition], max_seen: int) -> dict[str, np.ndarray]:
    """A batch dict (same layout as ``ReplayBuffer.sample``) from a list of transitions."""
    buf = ReplayBuffer(len(transitions), len(transitions[0].state), max_seen)
    for t in transitions:
        buf.add(t)
    return buf.gather(np.arange(len(transitions)))


# ----------------------------------------------------------------------------- 3. target network


def sync_target(q_network: nn.Module, target_network: nn.Module, tau: float) -> None:
    """``target <- tau * online + (1 - tau) * target`` (tau = 1: hard copy).

    The target lags the online net on purpose: bootstrapping from the very weights being
    updated chases its own tail and diverges; a slow copy keeps the regression target fixed.
    """
    with torch.no_grad():
        for tp, p in zip(target_network.parameters(), q_network.parameters()):
            tp.copy_(tau * p + (1.0 - tau) * tp)


# ----------------------------------------------------------------------------- 4. epsilon schedule


def linear_schedule(start_e: float, end_e: float, duration: int, t: int) -> float:
    """Epsilon at step ``t``: linear from ``start_e`` to ``end_e`` over ``duration``, then flat."""
    if duration <= 0:
        return end_e
    slope = (end_e - start_e) / duration
    return max(slope * t + start_e, end_e) if end_e <= start_e else min(slope * t + start_e, end_e)


# ----------------------------------------------------------------------------- 5. update step


def seen_mask(next_seen: torch.Tensor, n_items: int) -> torch.Tensor:
    """``(B, k)`` padded rows -> ``(B, N)`` bool, True where the item was already seen."""
    mask = torch.zeros(next_seen.shape[0], n_items + 1, dtype=torch.bool, device=next_seen.device)
    # -1 padding goes to an extra last column that is dropped.
    mask.scatter_(1, torch.where(next_seen < 0, n_items, next_seen), True)
    return mask[:, :n_items]  # (B, N)


def double_dqn_targets(
    next_q_online: torch.Tensor,
    next_q_target,
    next_seen_mask: torch.Tensor,
    rewards: torch.Tensor,
    dones: torch.Tensor,
    gamma: float,
) -> torch.Tensor:
    """``y = r + gamma * (1 - done) * Q_target(s', argmax_{a' unseen} Q_online(s', a'))``.

    Shapes: next_q_online ``(B, N)``, mask ``(B, N)`` True = not allowed, rewards/dones
    ``(B,)``. ``next_q_target`` is either the target net's ``(B, N)`` values or a function
    ``best (B,) -> (B,)`` evaluating only the picked items (what training uses: the target
    tower then runs on B items instead of the whole catalog).
    Double DQN: the online net picks a', the target net values it -- taking the max of one
    noisy estimate (plain DQN) systematically overestimates, worse with thousands of actions.
    Masking matters as much: a' must be a movie the user has not seen, else the target is the
    value of an action the policy can never take.
    """
    masked = next_q_online.masked_fill(next_seen_mask, float("-inf"))  # (B, N)
    best = masked.argmax(dim=1)  # (B,)
    if callable(next_q_target):
        next_value = next_q_target(best)  # (B,)
    else:
        next_value = next_q_target.gather(1, best[:, None]).squeeze(1)  # (B,)
    # Everything seen (catalog exhausted) -> the episode terminated; no bootstrap value.
    no_action = next_seen_mask.all(dim=1)
    next_value = torch.where(no_action, torch.zeros_like(next_value), next_value)
    return rewards + gamma * (1.0 - dones) * next_value  # (B,)


def item_features(
    item_emb: np.ndarray, index: CatalogIndex, runtime_genres: bool = True
) -> np.ndarray:
    """``(N, D + 3 + G)`` float32: unit-length embedding + log popularity + shrunk mean rating +
    runtime + genre flags (``(N, D + 2)`` without ``runtime_genres``: the older layout)."""
    side = index.item_side_features(runtime_genres)
    return np.concatenate([normalize_embeddings(item_emb), side], axis=1)


class DQNAgent:
    """The policy: Q-network + target + replay + optimiser, with the ranker interface."""

    name = "dqn"

    def __init__(
        self,
        cfg: DQNConfig,
        env_cfg: EnvConfig,
        item_emb: np.ndarray,
        index: CatalogIndex,
        seed: int = 0,
        device: str | None = None,
    ):
        self.cfg, self.env_cfg = cfg, env_cfg
        self.device = torch.device(device or pick_device())
        torch.manual_seed(seed)
        self.encoder = StateEncoder(env_cfg)
        self.set_items(item_emb, index)
        emb_dim = self.item_emb.shape[1]
        self.state_dim = self.encoder.state_dim(emb_dim, len(index.genres))
        self.q_network = QNetwork(
            self.state_dim, self.item_x.shape[1], cfg.hidden, cfg.embed, cfg.dueling
        ).to(self.device)
        self.target_network = copy.deepcopy(self.q_network)
        self.target_network.requires_grad_(False)
        self.optimizer = torch.optim.Adam(self.q_network.parameters(), lr=cfg.lr)
        sessions = max(int(env_cfg.max_sessions), 1) if env_cfg.returning else 1
        self.max_seen = env_cfg.max_start_history + env_cfg.episode_length * sessions
        self.replay = ReplayBuffer(cfg.buffer_size, self.state_dim, self.max_seen, seed)
        self.rng = np.random.default_rng(seed)
        self.gradient_steps = 0
        self.env_steps = 0

    # ------------------------------------------------------------------ items

    def set_items(self, item_emb: np.ndarray, index: CatalogIndex) -> None:
        """Swap in a (possibly grown) catalog; no retraining: items enter only via features."""
        if len(item_emb) != len(index):
            raise ValueError(f"{len(item_emb)} embeddings for {len(index)} movies")
        if hasattr(self, "item_emb") and item_emb.shape[1] != self.item_emb.shape[1]:
            raise ValueError(
                f"embedding width {item_emb.shape[1]} differs from the trained {self.item_emb.shape[1]}"
            )
        self.index = index
        self.item_emb = normalize_embeddings(item_emb)  # (N, D)
        self.item_x = torch.from_numpy(self.item_inputs(item_emb)).to(self.device)  # (N, F)
        self._item_cache = None

    def item_inputs(self, item_emb: np.ndarray) -> np.ndarray:
        """``(N, F)`` item-tower inputs of ``item_emb`` rows with this agent's side features."""
        return item_features(item_emb, self.index, self.cfg.item_runtime_genres)

    def item_side(self) -> np.ndarray:
        """``(N, F - D)`` the side features the item tower reads besides the embedding."""
        return self.index.item_side_features(self.cfg.item_runtime_genres)

    def _item_reps(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Online item tower over the catalog, cached until the next gradient step."""
        if self._item_cache is None:
            with torch.no_grad():
                self._item_cache = self.q_network.items(self.item_x)  # (N, E), (N,)
        return self._item_cache

    # ------------------------------------------------------------------ acting / scoring

    def encode(self, user_state: UserState) -> np.ndarray:
        return self.encoder.encode(user_state, self.item_emb, self.index)  # (S,)

    def q_values(self, states: np.ndarray) -> np.ndarray:
        """``(B, S)`` encoded states -> ``(B, N)`` Q over the whole catalog (one matmul)."""
        vec, bias = self._item_reps()
        with torch.no_grad():
            s = torch.as_tensor(states, dtype=torch.float32, device=self.device)
            u, v = self.q_network.head(s)  # (B, E), (B,)
            q = u @ vec.T + bias + v[:, None]  # (B, N)
        return q.cpu().numpy()

    def score(self, user_state: UserState, item_idx: np.ndarray) -> np.ndarray:
        """Ranker interface: Q of ``item_idx`` (catalog rows) for this user ``(k,)``."""
        return self.q_values(self.encode(user_state)[None])[0][np.asarray(item_idx)]

    def act_batch(self, states: np.ndarray, masks: np.ndarray, epsilon: float) -> np.ndarray:
        """epsilon-greedy over allowed items: ``states (B, S), masks (B, N) True = allowed``."""
        q = self.q_values(states)  # (B, N)
        q[~masks] = -np.inf
        actions = q.argmax(axis=1)
        explore = self.rng.random(len(actions)) < epsilon
        for b in np.where(explore)[0]:
            actions[b] = self.rng.choice(np.flatnonzero(masks[b]))
        return actions

    def act(self, user_state: UserState, mask: np.ndarray, epsilon: float = 0.0) -> int:
        return int(self.act_batch(self.encode(user_state)[None], mask[None], epsilon)[0])

    # ------------------------------------------------------------------ learning

    def update(self, batch: dict[str, np.ndarray]) -> float:
        """One gradient step on a batch (``ReplayBuffer.sample`` layout); returns the TD loss."""
        dev = self.device
        states = torch.as_tensor(batch["states"], device=dev)  # (B, S)
        next_states = torch.as_tensor(batch["next_states"], device=dev)  # (B, S)
        actions = torch.as_tensor(batch["actions"], device=dev)  # (B,)
        rewards = torch.as_tensor(batch["rewards"], device=dev)  # (B,)
        dones = torch.as_tensor(batch["dones"], device=dev)  # (B,)
        with torch.no_grad():
            td_target = self._td_targets(batch, next_states, rewards, dones)  # (B,)
        q = self.q_network.q_sa(states, self.item_x[actions])  # (B,)
        # Huber: a surprising rating (noise) moves the weights by a bounded amount.
        loss = F.smooth_l1_loss(q, td_target)
        self.optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(self.q_network.parameters(), self.cfg.max_grad_norm)
        self.optimizer.step()
        self._item_cache = None
        self.gradient_steps += 1
        if self.cfg.tau < 1.0:
            sync_target(self.q_network, self.target_network, self.cfg.tau)
        elif self.gradient_steps % self.cfg.target_sync == 0:
            sync_target(self.q_network, self.target_network, 1.0)
        return float(loss.item())

    def _td_targets(self, batch, next_states, rewards, dones) -> torch.Tensor:
        """Masked double-DQN targets ``(B,)``; call under ``torch.no_grad()``."""
        n_items = self.item_x.shape[0]
        mask = seen_mask(torch.as_tensor(batch["next_seen"], device=self.device), n_items)  # (B, N)
        # The online item tower over the catalog is the acting cache: current weights, and
        # computed once per gradient step whether acting or learning asks first.
        vec, bias = self._item_reps()  # (N, E), (N,)
        # V(s') is the same for every film: the argmax needs only the user vector.
        next_q_online = self.q_network.states(next_states) @ vec.T + bias  # (B, N)

        def target_value(best: torch.Tensor) -> torch.Tensor:
            return self.target_network.q_sa(next_states, self.item_x[best])  # (B,)

        return double_dqn_targets(next_q_online, target_value, mask, rewards, dones, self.cfg.gamma)

    def td_loss(self, batch: dict[str, np.ndarray]) -> float:
        """The TD loss of a batch without updating (for tests and telemetry)."""
        dev = self.device
        with torch.no_grad():
            y = self._td_targets(
                batch,
                torch.as_tensor(batch["next_states"], device=dev),
                torch.as_tensor(batch["rewards"], device=dev),
                torch.as_tensor(batch["dones"], device=dev),
            )
            actions = torch.as_tensor(batch["actions"], device=dev)
            q = self.q_network.q_sa(
                torch.as_tensor(batch["states"], device=dev), self.item_x[actions]
            )
            return float(F.smooth_l1_loss(q, y).item())

    def make_transition(
        self, before: UserState, movie_id: int, rating: float, after: UserState | None = None
    ) -> Transition:
        """A live rating in the app as a transition (reward = rating only: no watch signal)."""
        after = after if after is not None else before.with_rating(movie_id, rating)
        seen = self.index.positions_lenient(after.seen_movie_ids())
        return Transition(
            state=self.encode(before),
            action=int(self.index.positions([movie_id])[0]),
            reward=float(rating_to_unit(rating)),
            next_state=self.encode(after),
            done=False,
            next_seen=seen[seen >= 0],
        )

    def online_update(self, fresh: list[Transition], n_steps: int | None = None) -> dict:
        """Learn from live ratings: each step trains on the fresh transitions + a replay sample.

        Mixing in replayed transitions keeps one user's few ratings from dragging the shared
        network towards that user alone (catastrophic forgetting). Returns telemetry.
        """
        start = time.perf_counter()
        n_steps = self.cfg.online_steps if n_steps is None else n_steps
        for t in fresh:
            self.replay.add(t)
        fresh_batch = stack_transitions(fresh, self.max_seen) if fresh else None
        losses = []
        for _ in range(n_steps):
            parts = [fresh_batch] if fresh_batch is not None else []
            if len(self.replay) > 0 and self.cfg.online_batch > 0:
                parts.append(self.replay.sample(self.cfg.online_batch))
            if not parts:
                break
            batch = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
            losses.append(self.update(batch))
        return {
            "td_loss": float(np.mean(losses)) if losses else float("nan"),
            "epsilon": self.cfg.online_epsilon,
            "gradient_steps": self.gradient_steps,
            "n_fresh": len(fresh),
            "replay_size": len(self.replay),
            "update_ms": 1000.0 * (time.perf_counter() - start),
        }

    # ------------------------------------------------------------------ checkpoints

    def config(self) -> dict:
        """Everything needed to rebuild the networks (saved beside the weights)."""
        return {
            "dqn": dataclasses.asdict(self.cfg),
            "env": dataclasses.asdict(self.env_cfg),
            "state_dim": self.state_dim,
            "item_dim": int(self.item_x.shape[1]),
            "emb_dim": int(self.item_emb.shape[1]),
            "n_genres": len(self.index.genres),
        }

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Flat tensor dict: online weights under ``q.``, target weights under ``target.``."""
        out = {f"q.{k}": v for k, v in self.q_network.state_dict().items()}
        out.update({f"target.{k}": v for k, v in self.target_network.state_dict().items()})
        out["gradient_steps"] = torch.tensor(self.gradient_steps)
        return out

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.q_network.load_state_dict({k[2:]: v for k, v in state.items() if k.startswith("q.")})
        self.target_network.load_state_dict(
            {k[7:]: v for k, v in state.items() if k.startswith("target.")}
        )
        self.gradient_steps = int(state.get("gradient_steps", torch.tensor(0)).item())
        self._item_cache = None

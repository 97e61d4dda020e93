"""Train the DQN policy in the user simulator, and save / load it.

``train_policy`` follows CleanRL's loop: act epsilon-greedily, store the transition, after
``learning_starts`` steps do one gradient step every ``train_frequency`` environment steps,
sync the target network. ``n_envs`` sessions run side by side so acting is one batched
forward per round (the environments themselves are cheap numpy).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from mmrec.config import Config, DQNConfig, EnvConfig
from mmrec.rl.dqn import DQNAgent, Transition, few_threads, linear_schedule
from mmrec.rl.env import MovieRecEnv
from mmrec.rl.state import CatalogIndex

Progress = Callable[[int, int, str], None]


def train_policy(
    catalog,
    item_emb: np.ndarray,
    user_model,
    cfg: Config | DQNConfig,
    seed: int = 0,
    progress: Progress | None = None,
    index: CatalogIndex | None = None,
) -> tuple[DQNAgent, dict]:
    """Train a ``DQNAgent`` on the simulator's training users.

    ``cfg``: the whole ``Config`` (uses ``cfg.dqn`` and ``cfg.env``); a bare ``DQNConfig`` is
    accepted too and then runs with the default ``EnvConfig``. ``catalog``: ``Catalog`` (or
    pass ``index`` to control popularity features, e.g. built from training ratings only).
    Returns ``(agent, curves)``; ``curves`` holds per-episode returns with the step they
    ended at, binned averages, TD loss and epsilon over steps.
    """
    if isinstance(cfg, DQNConfig):
        cfg = Config(dqn=cfg)
    with few_threads(blas=True):
        return _train_policy(catalog, item_emb, user_model, cfg, seed, progress, index)


def _train_policy(catalog, item_emb, user_model, cfg, seed, progress, index):
    dcfg, ecfg = cfg.dqn, cfg.env
    index = index if index is not None else CatalogIndex.from_catalog(catalog)
    agent = DQNAgent(dcfg, ecfg, item_emb, index, seed=seed)
    envs = [
        MovieRecEnv(index, item_emb, user_model, ecfg, split="train", training=True)
        for _ in range(dcfg.n_envs)
    ]
    obs, masks = [], []
    for i, env in enumerate(envs):
        o, info = env.reset(seed=seed * 10_000 + i)
        obs.append(o)
        masks.append(info["action_mask"])
    obs_arr, mask_arr = np.stack(obs), np.stack(masks)  # (E, S), (E, N)
    returns = np.zeros(len(envs))
    curves: dict[str, list] = {
        "episode_end_step": [],
        "episode_return": [],
        "loss_step": [],
        "td_loss": [],
        "epsilon": [],
    }
    start = time.perf_counter()
    step = 0
    last_report = 0
    duration = int(dcfg.exploration_fraction * dcfg.total_steps)
    while step < dcfg.total_steps:
        epsilon = linear_schedule(dcfg.start_e, dcfg.end_e, duration, step)
        actions = agent.act_batch(obs_arr, mask_arr, epsilon)
        for i, env in enumerate(envs):
            next_obs, reward, terminated, truncated, info = env.step(actions[i])
            next_mask = info["action_mask"]
            # Truncation is not termination: the stored next state keeps its bootstrap value.
            agent.replay.add(
                Transition(
                    obs_arr[i],
                    int(actions[i]),
                    reward,
                    next_obs,
                    terminated,
                    np.flatnonzero(~next_mask),
                )
            )
            returns[i] += reward
            if terminated or truncated:
                curves["episode_end_step"].append(step + i + 1)
                curves["episode_return"].append(float(returns[i]))
                returns[i] = 0.0
                next_obs, info = env.reset()
                next_mask = info["action_mask"]
            obs_arr[i], mask_arr[i] = next_obs, next_mask
        prev = step
        step += len(envs)
        agent.env_steps = step
        learn(agent, dcfg, prev, step, epsilon, curves)
        if progress is not None and step - last_report >= max(dcfg.total_steps // 100, 1):
            last_report = step
            progress(min(step, dcfg.total_steps), dcfg.total_steps, "train-policy")
    curves["binned"] = bin_curve(curves["episode_end_step"], curves["episode_return"], 20)
    curves["seconds"] = time.perf_counter() - start
    curves["total_steps"] = step
    if progress is not None:
        progress(dcfg.total_steps, dcfg.total_steps, "train-policy")
    return agent, curves


def learn(agent: DQNAgent, dcfg, prev: int, step: int, epsilon: float, curves: dict) -> None:
    """The TD updates owed for the env steps ``prev -> step``: one per ``train_frequency`` steps
    past ``learning_starts`` (the update-to-data ratio; the Ray loop calls this too, so both
    keep the same ratio); every 50th gradient step's loss goes into ``curves``."""
    if step < dcfg.learning_starts:
        return
    n_updates = (
        step // dcfg.train_frequency - max(prev, dcfg.learning_starts) // dcfg.train_frequency
    )
    for _ in range(max(n_updates, 0)):
        loss = agent.update(agent.replay.sample(dcfg.batch_size))
        if agent.gradient_steps % 50 == 0:
            curves["loss_step"].append(step)
            curves["td_loss"].append(loss)
            curves["epsilon"].append(epsilon)


def bin_curve(steps: list[int], values: list[float], n_bins: int) -> dict[str, list[float]]:
    """Average ``values`` in ``n_bins`` equal step ranges -> ``{"step": [...], "mean": [...]}``."""
    if not steps:
        return {"step": [], "mean": []}
    steps_a, values_a = np.asarray(steps), np.asarray(values)
    edges = np.linspace(0, steps_a.max(), n_bins + 1)
    which = np.clip(np.searchsorted(edges, steps_a, side="left") - 1, 0, n_bins - 1)
    out_steps, out_means = [], []
    for b in range(n_bins):
        sel = which == b
        if sel.any():
            out_steps.append(float(edges[b + 1]))
            out_means.append(float(values_a[sel].mean()))
    return {"step": out_steps, "mean": out_means}


# ----------------------------------------------------------------------------- checkpoints

# The catalog the policy was trained on travels inside the checkpoint (as tensors), so
# ``load_policy(path)`` alone gives a working agent; pass other embeddings to rescore.
_INDEX_KEYS = ("movie_ids", "genre_matrix", "runtime", "popularity", "mean_rating")


def save_policy(path: str | Path, agent: DQNAgent, meta: dict | None = None) -> Path:
    """Weights + the config that built them + the item side (atomic, see ``mmrec.checkpoint``)."""
    import torch

    from mmrec.checkpoint import save_checkpoint

    state = agent.state_dict()
    state["items.emb"] = torch.from_numpy(agent.item_emb.copy())
    for key in _INDEX_KEYS:
        state[f"items.{key}"] = torch.from_numpy(np.asarray(getattr(agent.index, key)).copy())
    config = agent.config()
    config["genres"] = list(agent.index.genres)
    meta = dict(meta or {})
    meta.setdefault("n_items", len(agent.index))
    return save_checkpoint(path, state, config, meta)


def load_policy(
    path: str | Path,
    item_emb: np.ndarray | None = None,
    index: CatalogIndex | None = None,
    device: str | None = None,
) -> tuple[DQNAgent, dict]:
    """Rebuild the ``DQNAgent`` saved by ``save_policy`` -> ``(agent, meta)``.

    Without ``item_emb``/``index`` the agent serves the catalog it was saved with.
    """
    from mmrec.checkpoint import CheckpointError, load_checkpoint

    state, config, meta = load_checkpoint(path)
    try:
        # Policies built before issue 14 have no item_runtime_genres: their item tower reads
        # embedding + popularity + mean rating only; they keep loading with that layout.
        # Policies built before the dueling head have no "dueling": they have no V(s) output.
        dqn_fields = {"item_runtime_genres": False, "dueling": False, **config["dqn"]}
        dcfg, ecfg = DQNConfig(**dqn_fields), EnvConfig(**config["env"])
        saved_index = CatalogIndex(
            movie_ids=state["items.movie_ids"].numpy(),
            genres=list(config["genres"]),
            genre_matrix=state["items.genre_matrix"].numpy(),
            runtime=state["items.runtime"].numpy(),
            popularity=state["items.popularity"].numpy(),
            mean_rating=state["items.mean_rating"].numpy(),
        )
        saved_emb = state["items.emb"].numpy()
    except (KeyError, TypeError) as exc:
        raise CheckpointError(
            f"checkpoint {path} is not a DQN policy checkpoint (missing {exc}); "
            "retrain the policy (python -m mmrec train-policy)"
        ) from exc
    item_emb = saved_emb if item_emb is None else item_emb
    index = saved_index if index is None else index
    if item_emb.shape[1] != config["emb_dim"] or len(index.genres) != config["n_genres"]:
        raise CheckpointError(
            f"checkpoint {path} was trained for {config['emb_dim']}-d embeddings and "
            f"{config['n_genres']} genres, got {item_emb.shape[1]} and {len(index.genres)}; "
            "retrain the policy (python -m mmrec train-policy)"
        )
    agent = DQNAgent(dcfg, ecfg, item_emb, index, device=device)
    if "item_dim" in config and int(agent.item_x.shape[1]) != int(config["item_dim"]):
        raise CheckpointError(
            f"checkpoint {path} has a {config['item_dim']}-wide item tower input, this code "
            f"builds {int(agent.item_x.shape[1])}; retrain the policy (python -m mmrec train-policy)"
        )
    try:
        agent.load_state_dict({k: v for k, v in state.items() if not k.startswith("items.")})
    except RuntimeError as exc:
        raise CheckpointError(
            f"checkpoint {path} does not match its own config ({str(exc).splitlines()[0]})"
        ) from exc
    return agent, meta

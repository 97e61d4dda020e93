"""Distributed rollouts for the DQN: N Ray actors play simulator sessions, one learner trains.

The shape of Ape-X (Horgan et al., 2018) without its prioritised replay:

1. rollout actors  each holds the simulator (user model, catalog index, item embeddings) and
                   an acting copy of the Q-network; ``collect`` plays ``rollout_steps``
                   epsilon-greedy steps over its sessions and returns the transitions
2. learner         this process: the one ``DQNAgent`` with the replay buffer, target network
                   and optimiser of ``mmrec.rl.dqn``; it adds each batch of transitions to the
                   replay and does the gradient steps that many environment steps earn
                   (``train_frequency``), exactly as the single-process loop does
3. weight sync     the learner puts its online weights in the object store every
                   ``weight_sync_steps`` environment steps; an actor picks up the newest ones on
                   its next ``collect`` (acting lags the learner by at most one sync, as in Ape-X)

Exploration follows the same linear epsilon schedule over the global step count as
``mmrec.rl.train``, so the two trainers are comparable; the uniform replay is the existing one.
The agent is saved by ``mmrec.rl.train.save_policy``: the checkpoint format does not change.
"""

from __future__ import annotations

import dataclasses
import time
from collections import Counter

import numpy as np

from mmrec.config import Config
from mmrec.rl.dqn import DQNAgent, Transition, few_threads, linear_schedule
from mmrec.rl.env import MovieRecEnv
from mmrec.rl.state import CatalogIndex
from mmrec.rl.train import bin_curve, learn


class RolloutWorker:
    """A Ray actor: ``n_envs`` simulator sessions and an acting copy of the Q-network."""

    def __init__(
        self, index, item_emb, user_model, cfg: Config, worker_id: int, seed: int, n_envs: int
    ):
        import torch

        from mmrec.cluster import node_of_this_worker

        torch.set_num_threads(1)
        # the replay lives with the learner; the acting copy needs none
        dcfg = dataclasses.replace(cfg.dqn, buffer_size=1)
        self.agent = DQNAgent(dcfg, cfg.env, item_emb, index, seed=seed, device="cpu")
        self.node = node_of_this_worker()
        self.worker_id = worker_id
        self.envs = [
            MovieRecEnv(index, item_emb, user_model, cfg.env, split="train", training=True)
            for _ in range(max(1, n_envs))
        ]
        obs, masks = [], []
        for i, env in enumerate(self.envs):
            o, info = env.reset(seed=seed * 10_000 + i)
            obs.append(o)
            masks.append(info["action_mask"])
        self.obs, self.masks = np.stack(obs), np.stack(masks)  # (E, S), (E, N)
        self.returns = np.zeros(len(self.envs))

    def ready(self) -> str:
        """The node this actor runs on, once its simulator is built."""
        return self.node

    def collect(self, q_weights: dict, steps: int, epsilon: float) -> dict:
        """Play at least ``steps`` steps with ``q_weights`` -> transitions and finished returns."""
        self.agent.q_network.load_state_dict(q_weights)
        self.agent._item_cache = None  # item tower recomputed with the new weights
        transitions: list[Transition] = []
        finished: list[tuple[int, float]] = []  # (index in this batch where it ended, return)
        with few_threads():
            while len(transitions) < steps:
                actions = self.agent.act_batch(self.obs, self.masks, epsilon)
                for i, env in enumerate(self.envs):
                    next_obs, reward, terminated, truncated, info = env.step(actions[i])
                    next_mask = info["action_mask"]
                    # truncation is not termination: the next state keeps its bootstrap value
                    transitions.append(
                        Transition(
                            self.obs[i],
                            int(actions[i]),
                            reward,
                            next_obs,
                            terminated,
                            np.flatnonzero(~next_mask),
                        )
                    )
                    self.returns[i] += reward
                    if terminated or truncated:
                        finished.append((len(transitions), float(self.returns[i])))
                        self.returns[i] = 0.0
                        next_obs, info = env.reset()
                        next_mask = info["action_mask"]
                    self.obs[i], self.masks[i] = next_obs, next_mask
        return {"transitions": transitions, "finished": finished, "node": self.node}


def _weights(agent: DQNAgent) -> dict:
    return {k: v.detach().cpu().clone() for k, v in agent.q_network.state_dict().items()}


def train_policy_distributed(
    catalog,
    item_emb: np.ndarray,
    user_model,
    cfg: Config,
    seed: int = 0,
    progress=None,
    index: CatalogIndex | None = None,
    workers: int | None = None,
) -> tuple[DQNAgent, dict]:
    """``mmrec.rl.train.train_policy`` with the acting spread over ``workers`` Ray actors.

    Needs a connected Ray session (``mmrec.cluster.ray_session``). Returns ``(agent, curves)``
    in the single-process layout plus ``rollout_workers`` and ``steps_per_node``.
    """
    with few_threads(blas=True):
        return _train(catalog, item_emb, user_model, cfg, seed, progress, index, workers)


def _train(catalog, item_emb, user_model, cfg, seed, progress, index, workers):
    import ray

    dcfg, rc = cfg.dqn, cfg.ray
    n_workers = max(1, int(workers or rc.workers))
    index = index if index is not None else CatalogIndex.from_catalog(catalog)
    agent = DQNAgent(dcfg, cfg.env, item_emb, index, seed=seed)
    shared = [ray.put(index), ray.put(np.asarray(item_emb)), ray.put(user_model)]
    actor = ray.remote(num_cpus=float(rc.cpus_per_worker))(RolloutWorker)
    envs_each = max(1, dcfg.n_envs // n_workers)
    actors = [
        actor.remote(*shared, cfg, i, seed * 1_000 + i + 1, envs_each) for i in range(n_workers)
    ]
    curves: dict[str, list] = {
        "episode_end_step": [],
        "episode_return": [],
        "loss_step": [],
        "td_loss": [],
        "epsilon": [],
    }
    steps_per_node: Counter = Counter()
    duration = int(dcfg.exploration_fraction * dcfg.total_steps)
    start = time.perf_counter()
    step = since_sync = last_report = 0
    weights = ray.put(_weights(agent))

    def launch(worker):
        eps = linear_schedule(dcfg.start_e, dcfg.end_e, duration, step)
        return worker.collect.remote(weights, int(rc.rollout_steps), eps)

    # every actor has built its simulator before the first call, so the first one up cannot
    # take all the early steps while another node is still starting its worker process
    ray.get([a.ready.remote() for a in actors], timeout=float(rc.start_timeout_s))
    pending = {launch(w): w for w in actors}
    try:
        while step < dcfg.total_steps:
            [ref], _ = ray.wait(list(pending), num_returns=1)
            worker = pending.pop(ref)
            out = ray.get(ref)
            batch = out["transitions"]
            for t in batch:
                agent.replay.add(t)
            for pos, ret in out["finished"]:
                curves["episode_end_step"].append(step + pos)
                curves["episode_return"].append(ret)
            steps_per_node[out["node"]] += len(batch)
            prev = step
            step += len(batch)
            agent.env_steps = step
            epsilon = linear_schedule(dcfg.start_e, dcfg.end_e, duration, step)
            learn(agent, dcfg, prev, step, epsilon, curves)  # the single-process loop's ratio
            since_sync += len(batch)
            if since_sync >= rc.weight_sync_steps:
                weights = ray.put(_weights(agent))
                since_sync = 0
            if step < dcfg.total_steps:
                pending[launch(worker)] = worker
            if progress is not None and step - last_report >= max(dcfg.total_steps // 100, 1):
                last_report = step
                progress(min(step, dcfg.total_steps), dcfg.total_steps, "train-policy (ray)")
    finally:
        for a in actors:
            ray.kill(a)
    curves["binned"] = bin_curve(curves["episode_end_step"], curves["episode_return"], 20)
    curves["seconds"] = time.perf_counter() - start
    curves["total_steps"] = step
    curves["rollout_workers"] = n_workers
    curves["steps_per_node"] = dict(steps_per_node)
    if progress is not None:
        progress(dcfg.total_steps, dcfg.total_steps, "train-policy (ray)")
    return agent, curves

"""Offline full-ranking evaluation on logged ratings: NDCG@k and Recall@k over ALL movies.

Protocol:

- Per-user temporal split: the last ``ranking_test_fraction`` of each user's ratings (by
  timestamp; users with fewer than ``MIN_USER_RATINGS`` ratings stay entirely in training) are
  held out. Positives = held-out ratings >= ``positive_rating``; users without a positive are
  skipped (reported).
- Every ranker is fitted on the training part only and scores every movie in the catalog (no
  sampled negatives); the user's training movies are excluded from the ranking.
- The state given to history-based rankers is the user's training history in time order, with
  no onboarding genres (logged users never picked any).
- The DQN is leak-free: a ``FittedUserModel`` is fitted on the training part only, the policy
  is trained in that simulator, then ranks by Q. An ``agent`` passed in is evaluated as well
  (row ``dqn_given``); if its simulator saw the held-out ratings, that row is optimistic.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from mmrec.config import Config
from mmrec.eval.metrics import catalog_coverage, mean_ci, ndcg_at_k, recall_at_k, top_k
from mmrec.eval.policy import machine_info, write_atomic
from mmrec.rl.baselines import (
    ContentRanker,
    EASERanker,
    ItemKNNRanker,
    PopularityRanker,
    SupervisedRanker,
)
from mmrec.rl.simulator import FittedUserModel
from mmrec.rl.state import CatalogIndex, UserState
from mmrec.rl.train import few_threads, train_policy

MIN_USER_RATINGS = 5  # fewer ratings: the user only contributes training data
Progress = Callable[[int, int, str], None]


def split_by_time(ratings: pd.DataFrame, test_fraction: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per user: the last ``ceil(test_fraction * n)`` ratings by timestamp -> test.

    Ties in timestamp keep file order (stable sort), so the split is deterministic.
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    df = ratings.sort_values(["userId", "timestamp"], kind="stable")
    n = df.groupby("userId")["movieId"].transform("size").to_numpy()
    rank = df.groupby("userId").cumcount().to_numpy()
    n_test = np.ceil(test_fraction * n).astype(int)
    is_test = (n >= MIN_USER_RATINGS) & (rank >= n - n_test)
    return df[~is_test], df[is_test]


def evaluate_ranking(
    catalog,
    item_emb: np.ndarray,
    cfg: Config,
    out_dir: Path = Path("reports"),
    agent=None,
    progress: Progress | None = None,
    command: str | None = None,
    seed: int = 0,
) -> dict:
    """Full-ranking NDCG@k / Recall@k of every ranker; writes ``ranking.json`` / ``ranking.md``."""
    with few_threads(blas=True):
        return _evaluate_ranking(
            catalog, item_emb, cfg, Path(out_dir), agent, progress, command, seed
        )


def _evaluate_ranking(catalog, item_emb, cfg, out_dir, agent, progress, command, seed):
    t0 = time.perf_counter()
    pcfg = cfg.policy_eval
    k = pcfg.ranking_k
    train, test = split_by_time(catalog.ratings, pcfg.ranking_test_fraction)
    index = CatalogIndex.from_catalog(catalog, ratings=train)
    n_items = len(index)
    all_idx = np.arange(n_items)

    def step(msg):
        if progress:
            progress(len(timings), 8, msg)

    timings: dict[str, float] = {}
    rankers: dict = {}
    for name, build in (
        ("popularity", lambda: PopularityRanker(index)),
        ("item_knn", lambda: ItemKNNRanker.fit(train, index, pcfg.knn_neighbours)),
        ("ease", lambda: EASERanker.fit(train, index, pcfg.ease_lambda)),
        ("content", lambda: ContentRanker(item_emb, index)),
        (
            "supervised",
            lambda: SupervisedRanker.fit(
                train,
                item_emb,
                index,
                cfg.env,
                epochs=pcfg.supervised_epochs,
                hidden=cfg.dqn.hidden,
                embed=cfg.dqn.embed,
                seed=seed,
            ),  # fmt: skip
        ),
    ):
        start = time.perf_counter()
        rankers[name] = build()
        timings[f"fit_{name}"] = time.perf_counter() - start
        step(f"fitted {name}")
    notes = {}
    if pcfg.ranking_dqn:
        start = time.perf_counter()
        sim = FittedUserModel.fit(
            catalog, item_emb, factors=pcfg.simulator_factors, epochs=pcfg.simulator_epochs, reg=pcfg.simulator_reg,
            seed=seed, ratings=train,
        )  # fmt: skip
        dqn, _curves = train_policy(catalog, item_emb, sim, cfg, seed=seed, index=index)
        rankers["dqn"] = dqn
        timings["fit_dqn"] = time.perf_counter() - start
        notes["dqn"] = (
            f"trained in a FittedUserModel fitted on the training split only "
            f"(train RMSE {sim.train_rmse:.3f}), {cfg.dqn.total_steps} steps"
        )
        step("trained dqn")
    if agent is not None:
        given = copy.copy(agent)
        given.set_items(item_emb, index)
        rankers["dqn_given"] = given
        notes["dqn_given"] = (
            "the agent passed in (e.g. from `build`); optimistic if its simulator saw test ratings"
        )

    train_hist = {
        int(u): list(zip(g["movieId"].tolist(), g["rating"].astype(float).tolist()))
        for u, g in train.groupby("userId", sort=False)
    }
    positives = (
        test[test["rating"] >= pcfg.positive_rating].groupby("userId")["movieId"].apply(list)
    )
    users = [int(u) for u in positives.index if int(u) in train_hist]
    per_ranker = {}
    for name, ranker in rankers.items():
        start = time.perf_counter()
        ndcgs, recalls, lists = [], [], []
        for u in users:
            history = train_hist[u]
            seen = index.positions_lenient([m for m, _ in history])
            relevant = index.positions_lenient(positives[u])
            relevant = set(relevant[relevant >= 0].tolist())
            scores = ranker.score(UserState(u, history, []), all_idx)  # (N,)
            ranked = top_k(scores, k, exclude=seen[seen >= 0])
            ndcgs.append(ndcg_at_k(ranked, relevant, k))
            recalls.append(recall_at_k(ranked, relevant, k))
            lists.append(ranked)
        n_mean, n_ci = mean_ci(ndcgs)
        r_mean, r_ci = mean_ci(recalls)
        per_ranker[name] = {
            f"ndcg@{k}": {"mean": n_mean, "ci95": n_ci},
            f"recall@{k}": {"mean": r_mean, "ci95": r_ci},
            f"coverage@{k}": catalog_coverage(lists, n_items),
            "score_seconds": time.perf_counter() - start,
        }
        step(f"ranked with {name}")

    result = {
        "protocol": {
            "split": f"per user, last {pcfg.ranking_test_fraction:.0%} of ratings by timestamp held out "
            f"(users with >= {MIN_USER_RATINGS} ratings)",
            "positives": f"held-out rating >= {pcfg.positive_rating}",
            "candidates": f"all {n_items} movies minus the user's training movies (no sampled negatives)",
            "k": k,
            "n_users_evaluated": len(users),
            "n_users_total": int(catalog.ratings["userId"].nunique()),
            "n_train_ratings": len(train),
            "n_test_ratings": len(test),
            "notes": notes,
        },
        "rankers": per_ranker,
        "timings": timings,
        "config": {
            "policy_eval": dataclasses.asdict(pcfg),
            "dqn": dataclasses.asdict(cfg.dqn),
            "env": dataclasses.asdict(cfg.env),
        },
        "command": command or "python -m mmrec evaluate ranking",
        "machine": machine_info(),
        "seconds": time.perf_counter() - t0,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(out_dir / "ranking.json", json.dumps(result, indent=1))
    write_atomic(out_dir / "ranking.md", ranking_markdown(result))
    return result


def ranking_markdown(result: dict) -> str:
    p, k = result["protocol"], result["protocol"]["k"]
    lines = [
        "# Offline full ranking",
        "",
        f"Command: `{result['command']}`  ",
        f"Machine: {result['machine']['platform']}, {result['machine']['cpu_count']} CPUs, "
        f"torch {result['machine']['torch']}  ",
        f"Split: {p['split']}; positives: {p['positives']}; candidates: {p['candidates']}.  ",
        f"Users evaluated: {p['n_users_evaluated']} of {p['n_users_total']} (others have no "
        "held-out positive). Mean ± 95% CI over users.",
        "",
        f"| ranker | NDCG@{k} | Recall@{k} | coverage@{k} |",
        "|---|---|---|---|",
    ]
    for name, row in result["rankers"].items():
        n, r = row[f"ndcg@{k}"], row[f"recall@{k}"]
        lines.append(
            f"| {name} | {n['mean']:.4f} ± {n['ci95']:.4f} | {r['mean']:.4f} ± {r['ci95']:.4f} "
            f"| {row[f'coverage@{k}']:.3f} |"
        )
    for name, note in p["notes"].items():
        lines.append(f"\n{name}: {note}")
    lines.append("")
    return "\n".join(lines)

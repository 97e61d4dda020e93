"""Offline full-ranking evaluation on logged ratings: NDCG@k, Recall@k, coverage@k.

Protocols (every ranker is fitted on the training part only; the user's training movies are
excluded from the ranking; the state given to history-based rankers is the user's training
history in time order, with no onboarding genres):

- (A) ``random``: per user, a random ``ranking_test_fraction`` of the ratings is held out
  (users with fewer than ``MIN_USER_RATINGS`` stay in training); every held-out rating is a
  positive (implicit feedback); ``ranking_seeds`` splits.
- (C) ``temporal``: per user, the last ``ranking_test_fraction`` by timestamp is held out;
  positives are held-out ratings >= ``positive_rating``.
- ``cold_films``: ``cold_item_fraction`` of the rated films are held out entirely (none of their
  ratings in training); each user ranks only those films against their held-out ratings of them.
  Content-based rankers per modality (text only, poster only, both, and genres as a reference).
- ``thin_users``: ``thin_user_fraction`` of the users keep only their first ``thin_user_keep``
  ratings for training; the rest of theirs is the test (positives >= ``positive_rating``); all
  movies ranked.

Tuned on validation, never on test: EASE's lambda and item-kNN's k on a validation split carved
from the first seed's training part with the protocol's own rule; the hybrid's residual is
cross-fitted on ``hybrid.splits`` validation splits of each training part carved with the same
rule (`folds_random`, `windows_by_time`; `mmrec.rl.hybrid`). Means are over users with a 95%
normal CI; for (A), each user's metric is first averaged over the seeds. The hybrid's margin over
EASE is the paired per-user difference with its CI.
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
from mmrec.eval.policy import write_atomic
from mmrec.provenance import commit_line, git_commit, machine_info
from mmrec.rl.baselines import (
    ContentRanker,
    EASERanker,
    IALSRanker,
    ItemKNNRanker,
    PopularityRanker,
    RandomRanker,
    SupervisedRanker,
)
from mmrec.rl.hybrid import ColdContentRanker, HybridRanker, fit_residual, residual_lists
from mmrec.rl.simulator import FittedUserModel
from mmrec.rl.state import CatalogIndex, UserState
from mmrec.rl.train import few_threads, train_policy

MIN_USER_RATINGS = 5  # fewer ratings: the user only contributes training data
Progress = Callable[[int, int, str], None]


# ----------------------------------------------------------------------------- splits


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


def split_random(
    ratings: pd.DataFrame, test_fraction: float, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per user: a random ``ceil(test_fraction * n)`` of the ratings -> test (time order kept)."""
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    cols = ["userId", "timestamp"] if "timestamp" in ratings.columns else ["userId"]
    df = ratings.sort_values(cols, kind="stable")
    rng = np.random.default_rng(seed)
    key = rng.random(len(df))
    n = df.groupby("userId")["movieId"].transform("size").to_numpy()
    # rank of each rating's random key inside its user: the lowest n_test keys go to test
    rank = pd.Series(key, index=df.index).groupby(df["userId"].to_numpy()).rank(method="first")
    n_test = np.ceil(test_fraction * n).astype(int)
    is_test = (n >= MIN_USER_RATINGS) & (rank.to_numpy() <= n_test)
    return df[~is_test], df[is_test]


def folds_random(
    ratings: pd.DataFrame, test_fraction: float, seed: int, n_splits: int
) -> list[tuple[pd.DataFrame, pd.DataFrame]]:
    """``n_splits`` disjoint per-user random validation folds, each like :func:`split_random`.

    Fold ``k`` holds out the ratings whose per-user random rank falls in the ``k``-th block of
    ``ceil(test_fraction * n)``; fold 0 is exactly ``split_random(ratings, test_fraction,
    seed)``. Returns ``[(rest, fold), ...]``.
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    if n_splits < 1 or n_splits * test_fraction > 1.0 + 1e-9:
        raise ValueError(
            f"{n_splits} folds of {test_fraction:.0%} do not fit in one user's ratings"
        )
    cols = ["userId", "timestamp"] if "timestamp" in ratings.columns else ["userId"]
    df = ratings.sort_values(cols, kind="stable")
    key = np.random.default_rng(seed).random(len(df))  # as split_random: fold 0 is its split
    n = df.groupby("userId")["movieId"].transform("size").to_numpy()
    rank = pd.Series(key, index=df.index).groupby(df["userId"].to_numpy()).rank(method="first")
    rank = rank.to_numpy()
    n_test = np.ceil(test_fraction * n).astype(int)
    out = []
    for k in range(n_splits):
        held = (n >= MIN_USER_RATINGS) & (rank > k * n_test) & (rank <= (k + 1) * n_test)
        out.append((df[~held], df[held]))
    return out


def windows_by_time(
    ratings: pd.DataFrame, test_fraction: float, n_splits: int
) -> list[tuple[pd.DataFrame, pd.DataFrame]]:
    """``n_splits`` successive temporal validation windows: each one is the last
    ``test_fraction`` (by :func:`split_by_time`) of what came before the previous one, and its
    ``rest`` is everything earlier. Window 0 is ``split_by_time(ratings, test_fraction)``.
    """
    out, rest = [], ratings
    for _ in range(n_splits):
        rest, val = split_by_time(rest, test_fraction)
        out.append((rest, val))
    return out


def split_cold_items(
    ratings: pd.DataFrame, fraction: float, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    """Hold out ``fraction`` of the rated films entirely: ALL their ratings -> test.

    Returns (train, test, cold movie ids sorted). No cold film has a rating in train.
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"fraction must be in (0, 1), got {fraction}")
    films = np.unique(ratings["movieId"].to_numpy())
    rng = np.random.default_rng(seed)
    cold = np.sort(rng.choice(films, int(round(fraction * len(films))), replace=False))
    is_test = ratings["movieId"].isin(cold).to_numpy()
    return ratings[~is_test], ratings[is_test], cold


def split_thin_users(
    ratings: pd.DataFrame, fraction: float, keep: int, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    """``fraction`` of the users (with more than ``keep`` ratings) keep their first ``keep``.

    Their later ratings are the test; everyone else's ratings stay in training.
    """
    df = ratings.sort_values(["userId", "timestamp"], kind="stable")
    counts = df.groupby("userId").size()
    eligible = counts.index[counts > keep].to_numpy()
    rng = np.random.default_rng(seed)
    thin = np.sort(rng.choice(eligible, int(round(fraction * len(eligible))), replace=False))
    rank = df.groupby("userId").cumcount().to_numpy()
    is_test = df["userId"].isin(thin).to_numpy() & (rank >= keep)
    return df[~is_test], df[is_test], thin


# ----------------------------------------------------------------------------- scoring


def histories(train: pd.DataFrame) -> dict[int, list[tuple[int, float]]]:
    cols = ["userId", "timestamp"] if "timestamp" in train.columns else ["userId"]
    df = train.sort_values(cols, kind="stable")
    return {
        int(u): list(zip(g["movieId"].tolist(), g["rating"].astype(float).tolist()))
        for u, g in df.groupby("userId", sort=False)
    }


def positives_of(test: pd.DataFrame, min_rating: float | None) -> dict[int, list[int]]:
    t = test if min_rating is None else test[test["rating"] >= min_rating]
    return {int(u): list(g) for u, g in t.groupby("userId")["movieId"]}


def rank_users(ranker, index, hist, positives, k, candidates=None) -> dict:
    """Per-user NDCG@k / Recall@k and the top-k lists; ``candidates`` restricts the ranking."""
    n = len(index)
    all_idx = np.arange(n) if candidates is None else np.asarray(candidates)
    users, ndcg, rec, lists = [], [], [], []
    for u, movies in positives.items():
        if u not in hist:
            continue
        relevant = index.positions_lenient(movies)
        relevant = set(relevant[relevant >= 0].tolist())
        if candidates is not None:
            relevant &= set(all_idx.tolist())
        if not relevant:
            continue
        history = hist[u]
        scores = np.full(n, -np.inf)
        scores[all_idx] = ranker.score(UserState(u, history, []), all_idx)
        seen = index.positions_lenient([m for m, _ in history])
        ranked = top_k(scores, k, exclude=seen[seen >= 0])
        users.append(u), ndcg.append(ndcg_at_k(ranked, relevant, k))
        rec.append(recall_at_k(ranked, relevant, k)), lists.append(ranked)
    return {"users": np.asarray(users), "ndcg": np.asarray(ndcg), "recall": np.asarray(rec),
            "lists": lists}  # fmt: skip


def summarise(runs: list[dict], n_items: int, k: int) -> dict:
    """Mean ± CI over users of each user's metric averaged over the runs (seeds)."""
    common = set(runs[0]["users"].tolist())
    for r in runs[1:]:
        common &= set(r["users"].tolist())
    users = np.asarray(sorted(common))
    out = {"n_users": len(users), "n_seeds": len(runs)}
    for m in ("ndcg", "recall"):
        per = np.mean([pd.Series(r[m], index=r["users"]).loc[users].to_numpy() for r in runs], 0)
        mean, ci = mean_ci(per)
        out[f"{m}@{k}"] = {"mean": mean, "ci95": ci}
    cov = [catalog_coverage(r["lists"], n_items) for r in runs]
    out[f"coverage@{k}"] = float(np.mean(cov))
    return out


def paired_margin(a: list[dict], b: list[dict], k: int) -> dict:
    """Per-user NDCG@k of ``a`` minus ``b`` (averaged over seeds), mean ± 95% CI."""
    common = set(a[0]["users"].tolist())
    for r in a + b:
        common &= set(r["users"].tolist())
    users = np.asarray(sorted(common))

    def per(runs):
        return np.mean(
            [pd.Series(r["ndcg"], index=r["users"]).loc[users].to_numpy() for r in runs], 0
        )

    mean, ci = mean_ci(per(a) - per(b))
    base = float(per(b).mean())
    return {"mean": mean, "ci95": ci, "relative": mean / base if base else float("nan"),
            "verdict": verdict(mean, ci)}  # fmt: skip


def verdict(mean: float, ci: float) -> str:
    if not np.isfinite(ci):
        return "n/a"
    if mean - ci > 0:
        return "better (CI above 0)"
    if mean + ci < 0:
        return "worse (CI below 0)"
    return "tie (CI includes 0)"


# ----------------------------------------------------------------------------- tuning


def tune_collaborative(train, val_pos, index, pcfg, k, log):
    """EASE lambda and item-kNN k with the best validation NDCG@k; the best EASE is returned."""
    hist = histories(train)
    ease_scores, best = {}, (-1.0, None, None)
    for lam in pcfg.ease_lambda_grid:
        ease = EASERanker.fit(train, index, lam, pcfg.ease_max_items)
        s = float(rank_users(ease, index, hist, val_pos, k)["ndcg"].mean())
        ease_scores[lam] = s
        log(f"  validation EASE lambda {lam:g}: NDCG@{k} {s:.4f}")
        if s > best[0]:
            best = (s, lam, ease)
    knn_scores = {}
    for nk in pcfg.knn_grid:
        s = float(
            rank_users(ItemKNNRanker.fit(train, index, nk), index, hist, val_pos, k)["ndcg"].mean()
        )
        knn_scores[nk] = s
        log(f"  validation item-kNN k {nk}: NDCG@{k} {s:.4f}")
    best_k = max(knn_scores, key=knn_scores.get)
    return best[1], best_k, best[2], {"ease_lambda": ease_scores, "knn_k": knn_scores}


def fit_hybrid(train, val_splits, min_rating, item_emb, index_fn, years, cfg, log, tuned=None):
    """Hybrid fitted on ``train``: its residual cross-fitted on validation splits of ``train``.

    ``val_splits(train) -> [(inner, val), ...]`` (the first is also where EASE's lambda and
    item-kNN's k are tuned); ``index_fn(ratings) -> CatalogIndex``. For each split the base
    models are fitted on ``inner`` and the residual's lists built from ``val``'s positives;
    the residual is trained on all of them, then the bases are refitted on ``train``. With
    ``tuned`` (lambda, k, EASE on the first inner) given, that EASE is reused.
    """
    splits = val_splits(train)
    inner, val = splits[0]
    val_pos = positives_of(val, min_rating)
    hcfg = dataclasses.replace(cfg.hybrid)
    if tuned is None:
        lam, nk, inner_ease, tuning = tune_collaborative(
            inner, val_pos, index_fn(inner), cfg.policy_eval, cfg.policy_eval.ranking_k, log
        )
    else:
        lam, nk, inner_ease, tuning = tuned
    hcfg.ease_lambda, hcfg.ease_max_items = lam, cfg.policy_eval.ease_max_items
    lists = []
    for i, (inner_i, val_i) in enumerate(splits):
        index_i = index_fn(inner_i)
        ease_i = (
            inner_ease if i == 0 else EASERanker.fit(inner_i, index_i, lam, hcfg.ease_max_items)
        )
        hyb_i = HybridRanker.fit_bases(inner_i, item_emb, index_i, years, hcfg, ease=ease_i)
        lists.append(residual_lists(hyb_i, inner_i, positives_of(val_i, min_rating)))
        emb = hyb_i.facts.emb
        del hyb_i, ease_i
    f, curve = fit_residual(lists, emb, hcfg)
    log(f"  hybrid residual: {curve.get('users', 0)} users, {curve.get('lists', 0)} lists from "
        f"{len(splits)} validation splits, held-out NDCG@10 "
        f"{curve.get('holdout_ndcg_ease', float('nan')):.4f} (EASE) -> {curve.get('best_holdout_ndcg', float('nan')):.4f}")  # fmt: skip
    index = index_fn(train)
    ease = EASERanker.fit(train, index, lam, hcfg.ease_max_items)
    hyb = HybridRanker.fit_bases(train, item_emb, index, years, hcfg, ease=ease)
    hyb.f = f
    return hyb, ease, index, {"lambda": lam, "knn_k": nk, "tuning": tuning, "residual": curve,
                              "inner": (lam, nk, inner_ease, tuning)}  # fmt: skip


# ----------------------------------------------------------------------------- the evaluation


def evaluate_ranking(
    catalog,
    item_emb: np.ndarray,
    cfg: Config,
    out_dir: Path = Path("reports"),
    agent=None,
    progress: Progress | None = None,
    command: str | None = None,
    seed: int = 0,
    modality_embeddings: dict[str, np.ndarray] | None = None,
    protocols: tuple[str, ...] = ("random", "temporal", "cold_films", "thin_users"),
    log: Callable[[str], None] = print,
) -> dict:
    """Every protocol of the module docstring; writes ``ranking.json`` / ``ranking.md``.

    ``modality_embeddings`` (name -> (N, D) fused embeddings with some branches off) feeds the
    cold-film modality ablation; without it only the given ``item_emb`` is used.
    """
    with few_threads(blas=True):
        return _evaluate(catalog, item_emb, cfg, Path(out_dir), agent, progress, command, seed,
                         modality_embeddings, protocols, log)  # fmt: skip


def _evaluate(
    catalog, item_emb, cfg, out_dir, agent, progress, command, seed, mod_emb, protocols, log
):
    t0 = time.perf_counter()
    pcfg, k = cfg.policy_eval, cfg.policy_eval.ranking_k
    ratings = catalog.ratings
    years = catalog.movies["year"].astype("Float64").to_numpy(dtype=np.float64, na_value=np.nan)
    frac = pcfg.ranking_test_fraction

    def index_fn(r):
        return CatalogIndex.from_catalog(catalog, ratings=r)

    done = [0]

    def step(msg):
        done[0] += 1
        log(f"[{time.perf_counter() - t0:6.0f}s] {msg}")
        if progress:
            progress(done[0], 0, msg)

    result = {"protocols": {}, "command": command or "python -m mmrec evaluate ranking",
              "commit": git_commit(), "machine": machine_info()}  # fmt: skip

    def write(final: bool):
        """Report after every protocol, so a long run leaves what it has finished."""
        result.update({
            "k": k, "n_movies": len(catalog.movies), "n_users": int(ratings["userId"].nunique()),
            "n_ratings": len(ratings), "complete": final,
            "config": {"policy_eval": dataclasses.asdict(pcfg), "hybrid": dataclasses.asdict(cfg.hybrid),
                       "dqn": dataclasses.asdict(cfg.dqn), "env": dataclasses.asdict(cfg.env)},
            "seconds": time.perf_counter() - t0,
        })  # fmt: skip
        out_dir.mkdir(parents=True, exist_ok=True)
        write_atomic(out_dir / "ranking.json", json.dumps(result, indent=1, default=_json_default))
        write_atomic(out_dir / "ranking.md", ranking_markdown(result))

    def learned_rankers(train, index, s):
        out, notes = {}, {}
        out["supervised"] = SupervisedRanker.fit(
            train, item_emb, index, cfg.env, epochs=pcfg.supervised_epochs, hidden=cfg.dqn.hidden,
            embed=cfg.dqn.embed, seed=s,
        )  # fmt: skip
        if pcfg.ranking_dqn:
            sim = FittedUserModel.fit(
                catalog, item_emb, factors=pcfg.simulator_factors, epochs=pcfg.simulator_epochs,
                reg=pcfg.simulator_reg, seed=s, ratings=train,
            )  # fmt: skip
            out["dqn"], _ = train_policy(catalog, item_emb, sim, cfg, seed=s, index=index)
            notes["dqn"] = (f"trained in a FittedUserModel fitted on the training split only "
                            f"(train RMSE {sim.train_rmse:.3f}), {cfg.dqn.total_steps} steps")  # fmt: skip
        if agent is not None:
            given = copy.copy(agent)
            given.set_items(item_emb, index)
            out["dqn_given"] = given
            notes["dqn_given"] = (
                "the agent from `build` (its simulator saw every rating: optimistic)"
            )
        return out, notes

    # -- (A) random and (C) temporal -------------------------------------------------------
    for proto in [p for p in ("random", "temporal") if p in protocols]:
        min_rating = None if proto == "random" else pcfg.positive_rating
        seeds = list(range(seed, seed + (pcfg.ranking_seeds if proto == "random" else 1)))
        runs: dict[str, list[dict]] = {}
        info, notes, tuned = {}, {}, None
        for si, s in enumerate(seeds):
            if proto == "random":
                train, test = split_random(ratings, frac, s)

                def val_split(tr, s=s):
                    return folds_random(tr, frac, s + 1000, cfg.hybrid.splits)
            else:
                train, test = split_by_time(ratings, frac)

                def val_split(tr):
                    return windows_by_time(tr, frac, cfg.hybrid.splits)

            step(f"{proto} seed {s}: {len(train)} train / {len(test)} test ratings")
            hyb, ease, index, hinfo = fit_hybrid(
                train, val_split, min_rating, item_emb, index_fn, years, cfg, log,
                tuned=None if tuned is None else _retune(tuned, train, val_split, index_fn, cfg.policy_eval.ease_max_items),
            )  # fmt: skip
            if tuned is None:
                tuned = (hinfo["lambda"], hinfo["knn_k"])  # tuned on the first seed, kept after
            info[f"seed{s}"] = {k2: v for k2, v in hinfo.items() if k2 != "inner"}
            step(
                f"{proto} seed {s}: hybrid fitted (EASE lambda {hinfo['lambda']:g}, kNN k {hinfo['knn_k']})"
            )
            rankers = {
                "popularity": PopularityRanker(index),
                "item_knn": ItemKNNRanker.fit(train, index, hinfo["knn_k"]),
                "ease": ease,
                "ials": hyb.ials,
                "content": ContentRanker(item_emb, index),
                "hybrid": hyb,
            }
            if si < pcfg.ranking_learned_seeds:
                more, more_notes = learned_rankers(train, index, s)
                rankers.update(more), notes.update(more_notes)
                step(f"{proto} seed {s}: learned rankers fitted")
            hist, pos = histories(train), positives_of(test, min_rating)
            for name, ranker in rankers.items():
                runs.setdefault(name, []).append(rank_users(ranker, index, hist, pos, k))
            step(f"{proto} seed {s}: ranked")
        table = {name: summarise(r, len(catalog.movies), k) for name, r in runs.items()}
        margins = {b: paired_margin(runs["hybrid"], runs[b][: len(runs["hybrid"])], k)
                   for b in ("ease", "ials", "item_knn") if b in runs}  # fmt: skip
        result["protocols"][proto] = {
            "split": _describe(proto, pcfg), "positives": "every held-out rating" if min_rating is None
            else f"held-out rating >= {min_rating}", "seeds": seeds, "rankers": table,
            "hybrid_margin": margins, "fitting": info, "notes": notes,
        }  # fmt: skip
        write(final=False)

    # -- cold-start films -------------------------------------------------------------------
    if "cold_films" in protocols:
        train, test, cold = split_cold_items(ratings, pcfg.cold_item_fraction, seed)
        index = index_fn(train)
        cold_rows = index.positions_lenient(cold)
        hist, pos = histories(train), positives_of(test, None)
        hcfg = cfg.hybrid
        ials = IALSRanker.fit(train, index, hcfg.ials_factors, hcfg.ials_alpha, hcfg.ials_reg,
                              hcfg.ials_iterations, seed=hcfg.seed)  # fmt: skip
        step(f"cold films: {len(cold)} films held out, iALS fitted")
        variants = dict(mod_emb or {"fused": item_emb})
        variants["genres only (metadata)"] = catalog.genre_matrix().astype(np.float32)
        runs = {"random": rank_users(RandomRanker(seed), index, hist, pos, k, cold_rows),
                "popularity (of nothing)": rank_users(PopularityRanker(index), index, hist, pos, k, cold_rows)}  # fmt: skip
        for name, emb in variants.items():
            runs[f"hybrid content path: {name}"] = rank_users(
                ColdContentRanker(ials, emb, index, hcfg.cold_ridge), index, hist, pos, k, cold_rows
            )
            runs[f"content: {name}"] = rank_users(
                ContentRanker(emb, index), index, hist, pos, k, cold_rows
            )
            step(f"cold films: ranked with {name}")
        table = {name: summarise([r], len(cold_rows), k) for name, r in runs.items()}
        margins = {
            name: paired_margin([r], [runs["random"]], k)
            for name, r in runs.items()
            if name != "random"
        }
        result["protocols"]["cold_films"] = {
            "split": f"{pcfg.cold_item_fraction:.0%} of the rated films ({len(cold)}) held out entirely "
            f"(seed {seed}); each user ranks only those films",
            "positives": "every held-out rating of a held-out film", "rankers": table,
            "margin_vs_random": margins,
            "leak_check": int(train["movieId"].isin(cold).sum()),
        }  # fmt: skip
        write(final=False)

    # -- thin users ---------------------------------------------------------------------------
    if "thin_users" in protocols:
        train, test, thin = split_thin_users(
            ratings, pcfg.thin_user_fraction, pcfg.thin_user_keep, seed
        )
        hyb, ease, index, hinfo = fit_hybrid(
            train, lambda tr: windows_by_time(tr, frac, cfg.hybrid.splits), pcfg.positive_rating, item_emb, index_fn,
            years, cfg, log,
        )  # fmt: skip
        step(f"thin users: {len(thin)} users cut to {pcfg.thin_user_keep} ratings; hybrid fitted")
        rankers = {"popularity": PopularityRanker(index), "item_knn": ItemKNNRanker.fit(train, index, hinfo["knn_k"]),
                   "ease": ease, "ials": hyb.ials, "content": ContentRanker(item_emb, index), "hybrid": hyb}  # fmt: skip
        hist, pos = histories(train), positives_of(test, pcfg.positive_rating)
        pos = {u: m for u, m in pos.items() if u in set(thin.tolist())}
        runs = {name: rank_users(r, index, hist, pos, k) for name, r in rankers.items()}
        table = {name: summarise([r], len(catalog.movies), k) for name, r in runs.items()}
        result["protocols"]["thin_users"] = {
            "split": f"{pcfg.thin_user_fraction:.0%} of the users ({len(thin)}) keep their first "
            f"{pcfg.thin_user_keep} ratings by time; the rest of theirs is the test (seed {seed})",
            "positives": f"held-out rating >= {pcfg.positive_rating}", "rankers": table,
            "hybrid_margin": {b: paired_margin([runs["hybrid"]], [runs[b]], k) for b in ("ease", "popularity")},
            "fitting": {k2: v for k2, v in hinfo.items() if k2 != "inner"},
        }  # fmt: skip
        step("thin users: ranked")

    write(final=True)
    return result


def _retune(tuned, train, val_splits, index_fn, max_items):
    """Later seeds keep the first seed's lambda and k; only the inner EASE is refitted."""
    lam, nk = tuned
    inner, _val = val_splits(train)[0]
    ease = EASERanker.fit(inner, index_fn(inner), lam, max_items)
    return lam, nk, ease, {"from_first_seed": True}


def _describe(proto, pcfg) -> str:
    if proto == "random":
        return (f"(A) per user, a random {pcfg.ranking_test_fraction:.0%} of ratings held out "
                f"(users with >= {MIN_USER_RATINGS} ratings), {pcfg.ranking_seeds} seeds")  # fmt: skip
    return (f"(C) per user, last {pcfg.ranking_test_fraction:.0%} of ratings by timestamp held out "
            f"(users with >= {MIN_USER_RATINGS} ratings)")  # fmt: skip


def _json_default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


# ----------------------------------------------------------------------------- markdown


def _fmt(x: dict) -> str:
    return f"{x['mean']:.4f} ± {x['ci95']:.4f}"


def ranking_markdown(result: dict) -> str:
    k = result["k"]
    m = result["machine"]
    lines = [
        "# Offline ranking: collaborative, content, learned and hybrid rankers",
        "",
        f"Command: `{result['command']}`  ",
        *commit_line(result),
        f"Machine: {m['platform']}, {m['cpu_count']} CPUs, torch {m['torch']}; "
        f"{result['seconds'] / 60:.1f} min in all.  ",
        f"Catalog: {result['n_movies']} movies, {result['n_users']} users, {result['n_ratings']} ratings. "
        f"Mean ± 95% CI over users; margins are paired per-user differences.",
        "",
    ]
    if not result.get("complete", True):
        lines += ["**Partial report: the run had not finished every protocol.**", ""]
    titles = {"random": "(A) random 80/20 per user, all ratings positive",
              "temporal": "(C) temporal last 20% per user, relevant = rating ≥ 4",
              "cold_films": "Cold-start films (no rating in training)",
              "thin_users": "Thin users (≤ 5 training ratings)"}  # fmt: skip
    for proto, p in result["protocols"].items():
        lines += [
            f"## {titles.get(proto, proto)}",
            "",
            f"Split: {p['split']}; positives: {p['positives']}.",
            "",
        ]
        lines += [
            f"| ranker | NDCG@{k} | Recall@{k} | coverage@{k} | users |",
            "|---|---|---|---|---|",
        ]
        for name, row in p["rankers"].items():
            lines.append(f"| {name} | {_fmt(row[f'ndcg@{k}'])} | {_fmt(row[f'recall@{k}'])} "
                         f"| {row[f'coverage@{k}']:.3f} | {row['n_users']} × {row['n_seeds']} seeds |")  # fmt: skip
        margins = p.get("hybrid_margin") or p.get("margin_vs_random") or {}
        if margins:
            against = "random" if "margin_vs_random" in p else None
            lines += [
                "",
                f"| paired NDCG@{k} margin | mean ± 95% CI | relative | verdict |",
                "|---|---|---|---|",
            ]
            for b, mg in margins.items():
                label = f"{b} − random" if against else f"hybrid − {b}"
                lines.append(
                    f"| {label} | {mg['mean']:+.4f} ± {mg['ci95']:.4f} | {mg['relative']:+.1%} | {mg['verdict']} |"
                )
        fit = p.get("fitting") or {}
        for key, val in fit.items():
            if isinstance(val, dict) and "lambda" in val:
                lines.append(f"\n{key}: EASE λ {val['lambda']:g}, item-kNN k {val['knn_k']} "
                             f"(validation: {val['tuning']}); residual {_curve(val['residual'])}")  # fmt: skip
        if "lambda" in fit:
            lines.append(
                f"\nEASE λ {fit['lambda']:g}, item-kNN k {fit['knn_k']}; residual {_curve(fit['residual'])}"
            )
        for name, note in (p.get("notes") or {}).items():
            lines.append(f"\n{name}: {note}")
        if "leak_check" in p:
            lines.append(f"\nTraining ratings of held-out films: {p['leak_check']} (must be 0).")
        lines.append("")
    return "\n".join(lines)


def _curve(c: dict) -> str:
    if not c.get("users"):
        return "not trained (no validation users)"
    lists = f" ({c['lists']} lists from {c['splits']} validation splits)" if "lists" in c else ""
    return (f"trained on {c['users']} validation users{lists}, held-out users' NDCG@10 "
            f"{c['holdout_ndcg_ease']:.4f} at f = 0 (EASE) -> {c['best_holdout_ndcg']:.4f}")  # fmt: skip

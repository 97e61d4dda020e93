"""Does the served loop learn within a session? ``python -m mmrec evaluate live``.

Protocol (``reports/live.md`` / ``live.json``):

- Users: the held-out users of ``split_users`` (never seen by the DQN's training or by the
  baselines' fits); item popularity and mean ratings come from the training users' ratings.
- Every session starts as a newcomer: the simulated user ticks ``EnvConfig.onboarding_genres``
  genres (their best genres by true rating, noisily) and nothing else is known.
- ``live`` and ``updates off`` run through the real service (``mmrec.service.Recommender``
  with its SQLite store): the user is shown ``k`` picks (``recommend``), rates the top-scored
  pick on screen with the hidden user model's noisy rating, and ``rate(..., previous=shown)``
  returns the next list (stable slots, as in the app). ``updates off`` is the same loop with
  ``LiveConfig.updates = False``: ratings are stored, beliefs stay at the onboarding prior.
- Baselines (greedy top-1 by their score, no repeats): the greedy supervised scorer, popularity,
  the DQN alone (its Q for the current history, no Bayesian layer) and the oracle (true rating).
- Common random numbers: session ``e`` of seed ``s`` is the same user, onboarding genres and
  stream of rating noise for every arm (``MovieRecEnv.reset(seed=s * 1_000_003 + e)``), so the
  live - updates-off difference is paired per session; its 95% CI is over sessions.
- Per step: mean true (noise-free) rating and hit rate (true rating >= ``hit_rating``).
  Cold-start reward: the env's reward summed over the first ``cold_start_steps`` steps.
- Stability: for every rating in the live arm, how many of the other ``k - 1`` shown picks
  were replaced. Onboarding share: newcomers who pick one genre (with >= k films), share of
  their first k picks carrying it. Two-genre balance: newcomers who tick two genres, share of
  their first k picks carrying the less represented one, served (calibrated) and plain top-k.

``--tune`` runs the same loop on TRAINING users only over a small grid of the live layer's
hyper-parameters and writes ``live-tuning.json``; the chosen values are frozen in
``LiveConfig`` before the held-out run (the report says so); it lives in
:mod:`mmrec.eval.live_tune`, the report's markdown in :mod:`mmrec.eval.live_report`.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from mmrec.atomic import atomic_write_text
from mmrec.config import Config
from mmrec.eval.live_report import criteria, live_markdown
from mmrec.eval.metrics import mean_ci
from mmrec.provenance import git_commit, machine_info

ARMS = ("live", "updates_off", "supervised", "popularity", "dqn_alone", "oracle")
K_SHOWN = 12


class _Oracle:
    """Ranks by the session's true ratings (what a perfect model would know)."""

    name = "oracle"

    def __init__(self, env):
        self.env = env

    def score(self, user_state, item_idx):
        return self.env.true_ratings[np.asarray(item_idx)]


def _scratch_dir() -> str | None:
    """A RAM-backed folder for the evaluation's throw-away SQLite stores when there is one."""
    shm = Path("/dev/shm")
    return str(shm) if shm.is_dir() else None


def setup(cfg: Config):
    """(catalog, parts for the service, user model, train users, held-out users, index)."""
    from mmrec.built import load_built
    from mmrec.pipeline import load_user_model
    from mmrec.rl.env import split_users
    from mmrec.rl.state import CatalogIndex

    catalog, model, branches, present, item_emb, agent, meta = load_built(cfg)
    user_model, source = load_user_model(cfg, catalog, item_emb)
    train, held = split_users(user_model.user_ids, cfg.env)
    ratings = catalog.ratings
    index = CatalogIndex.from_catalog(catalog, ratings=ratings[ratings["userId"].isin(train)])
    # The served agent re-pointed at leak-free item side features (training users' ratings).
    eval_agent = copy.copy(agent)
    eval_agent.set_items(item_emb, index)
    parts = (catalog, model, branches, present, item_emb, eval_agent, meta)
    return catalog, parts, user_model, source, train, held, index


def _service(cfg: Config, parts, folder: str, name: str, **live):
    from mmrec.service import Recommender
    from mmrec.store import RatingsStore

    c = copy.deepcopy(cfg)
    for key, value in live.items():
        setattr(c.live, key, value)
    return Recommender(c, parts=parts, store=RatingsStore(Path(folder) / f"{name}.sqlite3"))


def play_service(svc, env, users, n_sessions: int, seed: int, steps: int, tag: str) -> dict:
    """Sessions through the service (see the module docstring) -> per-step arrays."""
    true = np.full((n_sessions, steps), np.nan)
    reward = np.full((n_sessions, steps), np.nan)
    replaced: list[int] = []
    rate_ms: list[float] = []
    # per rating of >= 4 or <= 2 stars: did the films sharing a genre with the rated one move
    # the wrong way on the list (fewer after a high rating, more after a low one)?
    wrong: list[bool] = []
    genres = {int(m): set(g) for m, g in zip(svc.catalog.movie_ids, svc.catalog.movies["genres"])}
    for e in range(n_sessions):
        _, info = env.reset(
            seed=seed * 1_000_003 + e, options={"user_id": int(users[e % len(users)])}
        )
        uid = svc.create_user(f"{tag}-s{seed}-e{e}", liked_genres=env.user_state.liked_genres)
        shown = [p.movie_id for p in svc.recommend(uid, k=K_SHOWN)]
        picks = None
        for t in range(steps):
            if picks is None:
                picks = svc.recommend(uid, k=K_SHOWN, previous=shown)
            if not picks:
                break
            best = min(picks, key=lambda p: p.rank)  # the top-scored pick on screen
            action = int(svc._pos[best.movie_id])
            _, r, _term, _trunc, info = env.step(action)
            true[e, t], reward[e, t] = info["true_rating"], r
            res = svc.rate(uid, best.movie_id, info["rating"], k=K_SHOWN, previous=shown)
            rate_ms.append(res.telemetry["ms"])
            replaced.append(int(res.replaced))
            g = genres.get(int(best.movie_id), set())
            if g and (info["rating"] >= 4 or info["rating"] <= 2):
                before = sum(bool(genres.get(m, set()) & g) for m in shown)
                after = sum(bool(genres.get(p.movie_id, set()) & g) for p in res.picks)
                wrong.append(after < before if info["rating"] >= 4 else after > before)
            picks = res.picks
            shown = [p.movie_id for p in picks]
    return {
        "true": true,
        "reward": reward,
        "replaced": replaced,
        "rate_ms": rate_ms,
        "wrong_direction": wrong,
    }


def play_ranker(ranker, env, users, n_sessions: int, seed: int, steps: int) -> dict:
    """Greedy top-1 sessions of a ``score(user_state, item_idx)`` ranker, same seeds."""
    all_idx = np.arange(env.action_space.n)
    true = np.full((n_sessions, steps), np.nan)
    reward = np.full((n_sessions, steps), np.nan)
    for e in range(n_sessions):
        _, info = env.reset(
            seed=seed * 1_000_003 + e, options={"user_id": int(users[e % len(users)])}
        )
        for t in range(steps):
            mask = info["action_mask"]
            if not mask.any():
                break
            scores = np.asarray(ranker.score(env.user_state, all_idx), dtype=np.float64)
            scores[~mask] = -np.inf
            _, r, _term, _trunc, info = env.step(int(np.argmax(scores)))
            true[e, t], reward[e, t] = info["true_rating"], r
    return {"true": true, "reward": reward}


def _common_genres(svc, k: int) -> list[str]:
    """Genres with at least ``k`` films (a newcomer's first ``k`` picks can all carry one)."""
    counts = svc._genre_matrix.sum(axis=0)
    return [str(g) for g, c in zip(svc.catalog.genres, counts) if c >= k]


def two_genre_balance(svc, n: int, seed: int, k: int = K_SHOWN) -> dict:
    """Newcomers who tick two random genres (each with >= k films): share of their first k
    picks that carry the less represented of the two (0.5 = both equally; 0 = one ignored)."""
    common = _common_genres(svc, k)
    if len(common) < 2:
        return {"n": 0, "mean": float("nan")}
    rng = np.random.default_rng(seed)
    values = []
    for i in range(n):
        a, b = (common[j] for j in rng.choice(len(common), size=2, replace=False))
        uid = svc.create_user(f"balance-{seed}-{i}", liked_genres=[a, b])
        picks = svc.recommend(uid, k=k)
        values.append(min(np.mean([g in p.genres for p in picks]) for g in (a, b)))
    mean, half = mean_ci(values)
    return {"n": n, "k": k, "mean": mean, "ci95": half, "min": float(np.min(values))}


def onboarding_share(svc, n: int, seed: int, k: int = K_SHOWN) -> dict:
    """Newcomers who each pick one random genre with >= k films: share of the first k picks
    that carry it (mean over newcomers, and the per-genre detail)."""
    common = _common_genres(svc, k)
    if not common:
        return {"n": 0, "mean": float("nan"), "genres": {}, "eligible_genres": []}
    rng = np.random.default_rng(seed)
    shares, per = [], {}
    for i in range(n):
        g = str(common[int(rng.integers(len(common)))])
        uid = svc.create_user(f"onboard-{seed}-{i}", liked_genres=[g])
        picks = svc.recommend(uid, k=k)
        share = float(np.mean([g in p.genres for p in picks]))
        shares.append(share)
        per.setdefault(g, []).append(share)
    mean, half = mean_ci(shares)
    return {
        "n": n,
        "k": k,
        "mean": mean,
        "ci95": half,
        "min": float(np.min(shares)),
        "genres": {g: float(np.mean(v)) for g, v in sorted(per.items())},
        "eligible_genres": common,
    }


def _arm_summary(res: dict, cold_steps: int, hit_rating: float) -> dict:
    true, reward = res["true"], res["reward"]
    hit = np.where(np.isnan(true), np.nan, (true >= hit_rating).astype(float))
    steps = true.shape[1]
    per_step = []
    for t in range(steps):
        m, h = mean_ci(true[:, t][~np.isnan(true[:, t])])
        hm, hh = mean_ci(hit[:, t][~np.isnan(hit[:, t])])
        per_step.append({"true": m, "true_ci95": h, "hit": hm, "hit_ci95": hh})
    session = np.nanmean(true, axis=1)
    early = np.nanmean(true[:, :5], axis=1)
    late = np.nanmean(true[:, 10:20], axis=1) if steps > 10 else early * np.nan
    cold = np.nansum(reward[:, :cold_steps], axis=1)
    out = {
        "per_step": per_step,
        "session_true": dict(zip(("mean", "ci95"), mean_ci(session))),
        "hit_rate": dict(zip(("mean", "ci95"), mean_ci(np.nanmean(hit, axis=1)))),
        "steps_1_5_true": dict(zip(("mean", "ci95"), mean_ci(early))),
        "steps_11_20_true": dict(zip(("mean", "ci95"), mean_ci(late))),
        "late_minus_early": dict(zip(("diff", "ci95"), mean_ci(late - early))),
        "cold_start_reward": dict(zip(("mean", "ci95"), mean_ci(cold))),
        "_session": session,
        "_cold": cold,
    }
    return out


def _paired(a: np.ndarray, b: np.ndarray) -> dict:
    diff, half = mean_ci(a - b)
    return {"diff": diff, "ci95": half, "excludes_0": bool(abs(diff) > half)}


def evaluate_live(
    cfg: Config,
    seeds=(0, 1, 2),
    n_users: int | None = None,
    out_dir: Path = Path("reports"),
    command: str | None = None,
    n_newcomers: int = 60,
    log=print,
) -> dict:
    """The held-out run; writes ``out_dir/live.json`` and ``live.md``; returns the json dict."""
    from mmrec.rl.baselines import PopularityRanker, SupervisedRanker
    from mmrec.rl.dqn import few_threads
    from mmrec.rl.env import MovieRecEnv

    t0 = time.perf_counter()
    commit = git_commit()  # the code this run imports (HEAD may move while it runs)
    catalog, parts, user_model, source, train, held, index = setup(cfg)
    ecfg, pcfg = cfg.env, cfg.policy_eval
    steps = ecfg.episode_length
    n_sessions = int(n_users or len(held))
    ratings = catalog.ratings
    train_ratings = ratings[ratings["userId"].isin(train)]
    item_emb, agent = parts[4], parts[5]
    per_seed: dict[str, list[dict]] = {a: [] for a in ARMS}
    stability: list[int] = []
    wrong_direction: list[bool] = []
    rate_ms: list[float] = []
    shares = None
    with tempfile.TemporaryDirectory(dir=_scratch_dir()) as folder, few_threads(blas=True):
        live = _service(cfg, parts, folder, "live", updates=True)
        off = _service(cfg, parts, folder, "off", updates=False)
        shares = onboarding_share(live, n_newcomers, seed=12345)
        log(f"onboarding share over {shares['n']} single-genre newcomers: {shares['mean']:.3f}")
        balance = {
            arm: two_genre_balance(svc, n_newcomers, seed=54321)
            for arm, svc in (
                ("live", live),
                ("top_k", _service(cfg, parts, folder, "topk", calibration=0.0)),
            )
        }
        log(f"two-genre balance: {balance['live']['mean']:.3f} "
            f"(plain top-k {balance['top_k']['mean']:.3f})")  # fmt: skip
        for seed in seeds:
            env = MovieRecEnv(index, item_emb, user_model, ecfg, users=held, training=False)
            rankers = {
                "supervised": SupervisedRanker.fit(
                    train_ratings,
                    item_emb,
                    index,
                    ecfg,
                    epochs=pcfg.supervised_epochs,
                    hidden=cfg.dqn.hidden,
                    embed=cfg.dqn.embed,
                    seed=seed,
                ),  # fmt: skip
                "popularity": PopularityRanker(index),
                "dqn_alone": agent,
                "oracle": _Oracle(env),
            }
            for arm, svc in (("live", live), ("updates_off", off)):
                ts = time.perf_counter()
                res = play_service(svc, env, held, n_sessions, seed, steps, arm)
                per_seed[arm].append(res)
                if arm == "live":
                    stability += res["replaced"]
                    rate_ms += res["rate_ms"]
                    wrong_direction += res["wrong_direction"]
                log(f"seed {seed}: {arm} {time.perf_counter() - ts:.0f} s")
            for arm, ranker in rankers.items():
                per_seed[arm].append(play_ranker(ranker, env, held, n_sessions, seed, steps))
            log(f"seed {seed}: baselines done")

    arms = {}
    for arm, runs in per_seed.items():
        merged = {
            "true": np.concatenate([r["true"] for r in runs]),
            "reward": np.concatenate([r["reward"] for r in runs]),
        }
        arms[arm] = _arm_summary(merged, pcfg.cold_start_steps, pcfg.hit_rating)
    live_s, off_s = arms["live"]["_session"], arms["updates_off"]["_session"]
    pop_cold = arms["popularity"]["cold_start_reward"]["mean"]
    live_cold = arms["live"]["cold_start_reward"]["mean"]
    replaced = np.asarray(stability, dtype=float)
    result = {
        "protocol": {
            "users": f"{len(held)} held-out users ({source}); {n_sessions} sessions per seed",
            "seeds": list(seeds),
            "sessions": int(n_sessions * len(seeds)),
            "steps": steps,
            "k_shown": K_SHOWN,
            "n_items": int(len(index)),
            "onboarding_genres": ecfg.onboarding_genres,
            "hit_rating": pcfg.hit_rating,
            "cold_start_steps": pcfg.cold_start_steps,
            "hyper_parameters": "chosen on training users (`evaluate live --tune`, "
            "reports/live-tuning.json) and frozen in LiveConfig before this run",
        },
        "live_config": dataclasses.asdict(cfg.live),
        "arms": {a: {k: v for k, v in s.items() if not k.startswith("_")} for a, s in arms.items()},
        "live_minus_off": _paired(live_s, off_s),
        "live_minus_supervised": _paired(live_s, arms["supervised"]["_session"]),
        "cold_start_vs_popularity": {
            "live": live_cold,
            "popularity": pop_cold,
            "relative": (live_cold - pop_cold) / abs(pop_cold) if pop_cold else float("nan"),
            "paired": _paired(arms["live"]["_cold"], arms["popularity"]["_cold"]),
        },
        "stability": {
            "ratings": int(len(replaced)),
            "median_replaced_of_other": float(np.median(replaced)) if len(replaced) else None,
            "mean_replaced": float(replaced.mean()) if len(replaced) else None,
            "p90_replaced": float(np.percentile(replaced, 90)) if len(replaced) else None,
            "other_picks": K_SHOWN - 1,
            # ratings of >= 4 / <= 2 stars after which the films sharing a genre with the rated
            # one became fewer / more on the list (the rated film itself counted before)
            "wrong_direction_share": float(np.mean(wrong_direction)) if wrong_direction else None,
            "direction_ratings": int(len(wrong_direction)),
        },
        "onboarding_share": shares,
        "two_genre_balance": balance,
        "rate_ms": {
            "median": float(np.median(rate_ms)) if rate_ms else None,
            "p95": float(np.percentile(rate_ms, 95)) if rate_ms else None,
        },
        "command": command or " ".join(["python", "-m", "mmrec", *sys.argv[1:]]),
        "commit": commit,
        "machine": machine_info(),
        "seconds": time.perf_counter() - t0,
    }
    checks = criteria(result)
    result["criteria"] = checks
    out_dir = Path(out_dir)
    atomic_write_text(out_dir / "live.json", json.dumps(result, indent=1))
    atomic_write_text(out_dir / "live.md", live_markdown(result))
    return result

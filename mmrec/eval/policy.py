"""Policy evaluation: the DQN against the baselines on held-out simulated users.

Protocol (one row of ``reports/policy.md`` per policy):

- Users are split once (``EnvConfig.split_seed``). The DQN trains in the simulator on the
  training users only; baselines fit on the training users' logged ratings only; popularity
  features use those ratings too. Held-out users are never seen by any policy.
- Every policy plays the same sessions: session ``e`` of seed ``s`` is the same user, the
  same onboarding genres and the same stream of rating noise for all policies (common random
  numbers), so differences are paired and their CIs tight.
- A session starts cold (no ratings, only the onboarding genres) and lasts
  ``episode_length`` greedy recommendations, no repeats.
- When there are fewer held-out users than ``min_episodes``: a ``FittedUserModel`` adds
  synthetic users drawn from the fitted population (new, never-trained-on users); any other
  user model cycles through the held-out users with fresh noise. The report says which.

Metrics per session: episode reward (the training reward), satisfaction (mean TRUE rating of
the recommended movies), simulated watch minutes, hit rate (true rating >= ``hit_rating``),
cold-start reward (reward over the first ``cold_start_steps`` steps), recommendations made
(fewer than the limit when a user leaves early: ``mmrec.rl.dynamics``), sessions (more than one
when users return); per policy and seed: catalog coverage. Means with 95% CIs over all
sessions of all seeds. Under user dynamics an episode may span several sessions: satisfaction
and hit rate are then over all its recommendations, watch minutes their sum.

Besides the policies, a yardstick no real policy can be: the **myopic oracle**, greedy on the
noise-free immediate reward computed from the hidden state (true taste, satiation, novelty,
runtime: ``MovieRecEnv.myopic_scores``). With the static user it is the best possible policy;
with dynamics, beating it is what planning ahead has to show (issue 14).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from mmrec.atomic import atomic_write_text
from mmrec.config import Config
from mmrec.eval.metrics import catalog_coverage, mean_ci
from mmrec.provenance import commit_line, git_commit, machine_info
from mmrec.rl.baselines import (
    ContentRanker,
    EASERanker,
    LinUCBRanker,
    PopularityRanker,
    RandomRanker,
    SupervisedRanker,
)
from mmrec.rl.env import MovieRecEnv, split_users
from mmrec.rl.replay import greedy_action
from mmrec.rl.state import CatalogIndex
from mmrec.rl.train import few_threads, train_policy

METRICS = (
    "reward",
    "satisfaction",
    "watch_minutes",
    "hit_rate",
    "cold_start_reward",
    "steps",
    "sessions",
)
METRIC_LABELS = {
    "reward": "episode reward",
    "satisfaction": "satisfaction (mean true rating)",
    "watch_minutes": "watch minutes / episode",  # summed over all sessions of the episode
    "hit_rate": "hit rate (true >= 4)",
    "cold_start_reward": "cold-start reward (first 5)",
    "steps": "recommendations / episode",
    "sessions": "sessions / episode",
    "coverage": "catalog coverage",
}
ORACLE = "myopic oracle"  # a yardstick that sees the hidden state, not a policy (module doc)


class MyopicOracle:
    """Greedy on ``env.myopic_scores()``: reads the simulator's hidden state (module doc)."""

    reads_hidden_state = True

    def score_env(self, env: MovieRecEnv) -> np.ndarray:
        return env.myopic_scores()


Progress = Callable[[int, int, str], None]


def write_atomic(path: Path, text: str) -> None:
    """Write a report atomically (never a torn report)."""
    atomic_write_text(path, text)


def run_sessions(
    ranker,
    env: MovieRecEnv,
    users: np.ndarray,
    n_sessions: int,
    seed: int,
    cold_steps: int,
    hit_rating: float,
) -> dict[str, np.ndarray]:
    """Play ``n_sessions`` greedy sessions; returns per-session metric arrays + ``items`` (n, L)."""
    out = {m: np.zeros(n_sessions) for m in METRICS}
    items = np.full((n_sessions, env.max_episode_steps), -1, dtype=np.int64)
    for e in range(n_sessions):
        # The reset seed fixes the onboarding genres and the noise stream of this session for
        # every policy alike (common random numbers).
        _, info = env.reset(
            seed=seed * 1_000_003 + e, options={"user_id": int(users[e % len(users)])}
        )
        rewards, trues, minutes = [], [], []
        for t in range(env.max_episode_steps):
            mask = info["action_mask"]
            if not mask.any():
                break
            action = greedy_action(ranker, env, mask)
            _, reward, terminated, truncated, info = env.step(action)
            items[e, t] = action
            rewards.append(reward)
            trues.append(info["true_rating"])
            minutes.append(info["watch_minutes"])
            if terminated or truncated:
                break
        trues_a = np.asarray(trues)
        out["reward"][e] = float(np.sum(rewards))
        out["satisfaction"][e] = float(trues_a.mean())
        out["watch_minutes"][e] = float(np.sum(minutes))
        out["hit_rate"][e] = float((trues_a >= hit_rating).mean())
        out["cold_start_reward"][e] = float(np.sum(rewards[:cold_steps]))
        out["steps"][e] = float(len(rewards))
        out["sessions"][e] = float(info.get("session", 0)) + 1.0
    out["items"] = items
    return out


class UserSubset:
    """A user model seen through some of its users: ``user_ids`` is the subset, everything else
    is the model's. ``evaluate_policy(validation=True)`` evaluates on validation users carved
    out of the training users with it, so the held-out users are never read while choosing
    settings (the discount, the Q-network's head)."""

    def __init__(self, model, user_ids):
        self._model = model
        self.user_ids = np.unique(np.asarray(user_ids, dtype=np.int64))

    def __getattr__(self, name):
        if name == "_model":  # copy/pickle probe the instance before __init__ ran
            raise AttributeError(name)
        if name == "with_synthetic_users":
            # A fitted model draws synthetic users from ALL its users' distribution, held-out
            # ones included: a validation run cycles its own users with fresh noise instead.
            raise AttributeError(name)
        return getattr(self._model, name)


def validation_view(user_model, ecfg) -> UserSubset:
    """The training users of ``split_users`` as a user model of their own: its own
    ``split_users`` then splits them into (training, validation) users with the same rule."""
    train, _held = split_users(user_model.user_ids, ecfg)
    return UserSubset(user_model, train)


def _held_out_users(user_model, cfg: Config, seed: int):
    """(user model to evaluate with, held-out user ids, note)."""
    _, held = split_users(user_model.user_ids, cfg.env)
    need = cfg.policy_eval.min_episodes
    if len(held) >= need:
        return user_model, held, f"{len(held)} held-out users"
    if hasattr(user_model, "with_synthetic_users"):
        extra = need - len(held)
        model = user_model.with_synthetic_users(extra, seed=10_000 + seed)
        users = np.concatenate([held, model.synthetic_user_ids])
        return (
            model,
            users,
            f"{len(held)} held-out users + {extra} synthetic users from the fitted population",
        )
    return (
        user_model,
        held,
        f"{len(held)} held-out users, cycled with fresh noise to {need} sessions",
    )


def fit_baselines(
    catalog, item_emb, train_ratings, index: CatalogIndex, cfg: Config, seed: int
) -> dict:
    """Every baseline ranker fitted on training ratings only, keyed by name."""
    pcfg = cfg.policy_eval
    return {
        "random": RandomRanker(seed),
        "popularity": PopularityRanker(index),
        "content": ContentRanker(item_emb, index),
        "linucb": LinUCBRanker.fit(
            train_ratings, item_emb, index, pcfg.linucb_alpha, pcfg.linucb_ridge
        ),
        "supervised": SupervisedRanker.fit(
            train_ratings,
            item_emb,
            index,
            cfg.env,
            epochs=pcfg.supervised_epochs,
            hidden=cfg.dqn.hidden,
            embed=cfg.dqn.embed,
            seed=seed,
        ),  # fmt: skip
        "ease": EASERanker.fit(train_ratings, index, pcfg.ease_lambda, pcfg.ease_max_items),
    }


def evaluate_policy(
    catalog,
    item_emb: np.ndarray,
    user_model,
    cfg: Config,
    seeds=(0, 1, 2),
    out_dir: Path = Path("reports"),
    agent=None,
    progress: Progress | None = None,
    command: str | None = None,
    learning_curves: dict | None = None,
    variants: dict[str, dict] | None = None,
    sb3: tuple[str, ...] = (),
    validation: bool = False,
) -> dict:
    """Evaluate the DQN (trained per seed unless ``agent`` is given) against every baseline.

    ``learning_curves``: the given agent's training curves (``train_policy``'s second
    result), reported as seed "given". ``variants``: more DQN rows, name -> ``DQNConfig``
    fields that differ (e.g. ``{"dqn γ=0": {"gamma": 0.0}}``), each trained per seed like the
    DQN (training seed = evaluation seed). ``sb3``: stable-baselines3 agents ("dqn", "ppo")
    trained per seed on the shortlist wrapper with the DQN's budget (``mmrec.rl.sb3_agents``).
    ``validation``: never read the held-out users; train on part of the training users and
    evaluate on the rest (``validation_view``), to choose settings before the test run. It
    needs the DQN trained per seed (``agent`` None): a built agent saw the validation users.
    Writes ``out_dir/policy.json`` and ``out_dir/policy.md``; returns the json dict.
    """
    if validation:
        if agent is not None:
            raise ValueError(
                "a validation run trains its own DQN: the built one saw every training user"
            )
        user_model = validation_view(user_model, cfg.env)
    with few_threads(blas=True):
        return _evaluate_policy(
            catalog, item_emb, user_model, cfg, seeds, Path(out_dir), agent, progress, command,
            learning_curves, variants or {}, tuple(sb3), validation,
        )  # fmt: skip


def _evaluate_policy(
    catalog, item_emb, user_model, cfg, seeds, out_dir, agent, progress, command, given_curves,
    variants, sb3, validation=False,
):  # fmt: skip
    t0 = time.perf_counter()
    commit = git_commit()  # the code this run imports, not the head when the report is written
    pcfg, ecfg = cfg.policy_eval, cfg.env
    train_users, _ = split_users(user_model.user_ids, ecfg)
    ratings = catalog.ratings
    train_ratings = ratings[ratings["userId"].isin(train_users)]
    index = CatalogIndex.from_catalog(catalog, ratings=train_ratings)
    eval_cfg = dataclasses.replace(ecfg)

    per_seed: dict[str, list[dict]] = {}
    curves: dict[str, dict] = {}
    if agent is not None and given_curves:
        curves["given"] = given_curves
    notes = []
    sb3_seconds: dict[str, float] = {}
    # per seed: the DQN, each variant and sb3 agent trained, then every row played
    total_work = len(seeds) * (1 + 2 * (len(variants) + len(sb3)) + 8)
    done = 0
    for seed in seeds:
        model, users, note = _held_out_users(user_model, cfg, seed)
        notes.append(note.replace("held-out users", "validation users") if validation else note)
        n_sessions = max(pcfg.min_episodes, len(users))
        if agent is None:
            seed_agent, seed_curves = train_policy(
                catalog, item_emb, user_model, cfg, seed=seed, index=index
            )
            curves[str(seed)] = seed_curves
        else:
            # A shallow copy re-pointed at this evaluation's item side (popularity from the
            # training users only); the caller's agent is left as it was.
            seed_agent = copy.copy(agent)
            seed_agent.set_items(item_emb, index)
        done += 1
        if progress:
            progress(done, total_work, f"seed {seed}: trained policy")
        extra = {}
        for name, overrides in variants.items():
            vcfg = dataclasses.replace(cfg, dqn=dataclasses.replace(cfg.dqn, **overrides))
            extra[name], curves[f"{name} {seed}"] = train_policy(
                catalog, item_emb, user_model, vcfg, seed=seed, index=index
            )
            done += 1
            if progress:
                progress(done, total_work, f"seed {seed}: trained {name}")
        for algo in sb3:
            from mmrec.rl.sb3_agents import train_sb3

            start = time.perf_counter()
            extra[f"sb3 {algo.upper()}"] = train_sb3(algo, index, item_emb, user_model, cfg, seed)
            sb3_seconds[f"sb3 {algo.upper()} {seed}"] = time.perf_counter() - start
            done += 1
            if progress:
                progress(done, total_work, f"seed {seed}: trained sb3 {algo}")
        rankers = {
            "dqn": seed_agent,
            **extra,
            **fit_baselines(catalog, item_emb, train_ratings, index, cfg, seed),
            ORACLE: MyopicOracle(),
        }
        env = MovieRecEnv(index, item_emb, model, eval_cfg, users=users, training=False)
        for name, ranker in rankers.items():
            start = time.perf_counter()
            res = run_sessions(
                ranker, env, users, n_sessions, seed, pcfg.cold_start_steps, pcfg.hit_rating
            )
            res["coverage"] = catalog_coverage(res.pop("items"), len(index))
            res["seconds"] = time.perf_counter() - start
            per_seed.setdefault(name, []).append(res)
            done += 1
            if progress:
                progress(done, total_work, f"seed {seed}: {name}")

    summary = summarize(per_seed, seeds)
    result = {
        "protocol": {
            "sessions_per_seed": int(max(pcfg.min_episodes, len(users))),
            "seeds": list(seeds),
            "users": notes[0],
            "n_train_users": int(len(train_users)),
            "n_items": int(len(index)),
            "episode_length": ecfg.episode_length,
            "watch_weight": ecfg.watch_weight,
            "start": "cold: onboarding genres only",
            "split": "validation: users carved out of the training users (no policy or "
            "baseline reads the held-out users; a simulator fitted to ratings was fitted on all)"
            if validation
            else "test: the held-out users",
            "dqn": "trained per seed on train users"
            if agent is None
            else "given agent (not retrained)",
            "variants": {name: dict(ov) for name, ov in variants.items()},
            "sb3": list(sb3),
            "sb3_train_seconds": sb3_seconds,
        },
        "policies": summary["policies"],
        "lifts": summary["lifts"],
        "variant_lifts": summary["variant_lifts"],
        "learning_curves": {
            s: {
                "binned": c["binned"],
                "episode_end_step": c["episode_end_step"][
                    :: max(1, len(c["episode_end_step"]) // 500)
                ],
                "episode_return": c["episode_return"][:: max(1, len(c["episode_return"]) // 500)],
                "loss_step": c["loss_step"],
                "td_loss": c["td_loss"],
                "epsilon": c["epsilon"],
                "train_seconds": c.get("seconds", float("nan")),
            }
            for s, c in curves.items()
        },
        "config": {
            "env": dataclasses.asdict(ecfg),
            "dqn": dataclasses.asdict(cfg.dqn),
            "policy_eval": dataclasses.asdict(pcfg),
        },
        "command": command or " ".join([Path(sys.executable).name, *sys.argv]),
        "commit": commit,
        "machine": machine_info(),
        "seconds": time.perf_counter() - t0,
    }
    out_dir = Path(out_dir)
    write_atomic(out_dir / "policy.json", json.dumps(result, indent=1))
    write_atomic(out_dir / "policy.md", policy_markdown(result))
    return result


def summarize(per_seed: dict[str, list[dict]], seeds) -> dict:
    """Pooled means with CIs per policy; paired lifts of the DQN over every baseline."""
    policies = {}
    for name, runs in per_seed.items():
        row = {}
        for m in METRICS:
            mean, half = mean_ci(np.concatenate([r[m] for r in runs]))
            row[m] = {"mean": mean, "ci95": half, "per_seed": [float(r[m].mean()) for r in runs]}
        cov = [r["coverage"] for r in runs]
        mean, half = mean_ci(cov)
        row["coverage"] = {"mean": mean, "ci95": half, "per_seed": cov}
        row["eval_seconds"] = float(sum(r["seconds"] for r in runs))
        policies[name] = row

    def lift(of: str, over: str) -> dict:
        out = {}
        for m in METRICS:
            diffs = np.concatenate([d[m] - b[m] for d, b in zip(per_seed[of], per_seed[over])])
            diff, half = mean_ci(diffs)
            base = policies[over][m]["mean"]
            out[m] = {
                "diff": diff,
                "diff_ci95": half,
                "relative": diff / abs(base) if abs(base) > 1e-12 else float("nan"),
            }
        return out

    lifts = {}
    if "dqn" in per_seed:
        lifts = {name: lift("dqn", name) for name in per_seed if name != "dqn"}
    # Every other DQN row (a discount or head variant) paired with every row but itself: what
    # choosing between the variants needs (the same sessions, so paired CIs).
    variant_lifts = {
        v: {name: lift(v, name) for name in per_seed if name != v}
        for v in per_seed
        if v.startswith("dqn ")
    }
    return {"policies": policies, "lifts": lifts, "variant_lifts": variant_lifts}


def _fmt(x: dict, digits: int = 3) -> str:
    ci = x["ci95"]
    return (
        f"{x['mean']:.{digits}f} ± {ci:.{digits}f}"
        if np.isfinite(ci)
        else f"{x['mean']:.{digits}f}"
    )


def _variant_lines(protocol: dict, config: dict) -> list[str]:
    """The extra DQN rows and off-the-shelf agents, as the report states them."""
    lines = []
    if protocol.get("variants"):
        base = config["dqn"]
        desc = "; ".join(
            f"{name}: " + ", ".join(f"{k} {v} (DQN: {base.get(k)})" for k, v in ov.items())
            for name, ov in protocol["variants"].items()
        )
        lines.append(f"DQN variants, trained per seed like the DQN: {desc}.  ")
    if protocol.get("sb3"):
        lines.append(
            "stable-baselines3 rows: trained per seed on the shortlist wrapper "
            "(`mmrec.rl.gym_wrappers.CandidateEnv`, K = 20) with the DQN's step budget "
            "(`mmrec.rl.sb3_agents`).  "
        )
    return lines


def variant_pairs(result: dict) -> list[tuple[str, str, dict]]:
    """``(row, base, paired lift)`` for choosing between DQN rows: the DQN ("dqn") and each
    variant against the other DQN rows, greedy supervised and the oracle, each pair once."""
    rows = {**result.get("variant_lifts", {}), "dqn": result["lifts"]}
    out, done = [], set()
    for row, lifts in rows.items():
        for base, lift in lifts.items():
            pair = frozenset((row, base))
            if pair in done or not (base.startswith("dqn") or base in ("supervised", ORACLE)):
                continue
            done.add(pair)
            out.append((row, base, lift))
    return out


def policy_markdown(result: dict) -> str:
    p = result["protocol"]
    validation = str(p.get("split", "")).startswith("validation")
    # _held_out_users names the users it plays "held-out"; in a validation run they are the
    # validation users (the held-out ones are never read)
    users = p["users"].replace("held-out users", "validation users") if validation else p["users"]
    if validation:
        users += f"; policies trained on the other {p['n_train_users']} training users"
    lines = [
        "# Policy evaluation (simulated "
        + ("validation users: settings are chosen here" if validation else "held-out users")
        + ")",
        "",
        f"Command: `{result['command']}`  ",
        *commit_line(result),
        f"Machine: {result['machine']['platform']}, {result['machine']['cpu_count']} CPUs, "
        f"torch {result['machine']['torch']}, device {result['machine']['device']}  ",
        f"Protocol: {p['sessions_per_seed']} sessions per seed x seeds {p['seeds']} ({users}); "
        f"{p['n_items']} movies; {p['episode_length']} recommendations per session, {p['start']}; "
        f"reward = rating on -1..1 + {p['watch_weight']} x watch minutes / 120; DQN: {p['dqn']}.",
        *_variant_lines(p, result["config"]),
        "Values: mean ± 95% CI over all sessions (coverage: over seeds).",
        "",
        "| policy | " + " | ".join(METRIC_LABELS[m] for m in (*METRICS, "coverage")) + " |",
        "|---|" + "---|" * (len(METRICS) + 1),
    ]
    for name, row in result["policies"].items():
        lines.append(
            f"| {name} | " + " | ".join(_fmt(row[m]) for m in (*METRICS, "coverage")) + " |"
        )
    lines += [
        "",
        "## DQN lift over each baseline (paired: same users, same noise)",
        "",
        "| baseline | " + " | ".join(METRIC_LABELS[m] for m in METRICS) + " |",
        "|---|" + "---|" * len(METRICS),
    ]
    for name, lift in result["lifts"].items():
        cells = [
            f"{lift[m]['diff']:+.3f} ± {lift[m]['diff_ci95']:.3f} ({100 * lift[m]['relative']:+.1f}%)"
            for m in METRICS
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    if result.get("variant_lifts"):
        lines += [
            "",
            "## Each DQN row against the other DQN rows, greedy supervised and the oracle (paired)",
            "",
            "| row − row | episode reward | watch minutes / episode | satisfaction |",
            "|---|---|---|---|",
        ]
        for row, base, lift in variant_pairs(result):
            cells = [
                f"{lift[m]['diff']:+.3f} ± {lift[m]['diff_ci95']:.3f}"
                for m in ("reward", "watch_minutes", "satisfaction")
            ]
            lines.append(f"| {row} − {base} | " + " | ".join(cells) + " |")
    if result["learning_curves"]:
        lines += ["", "## DQN learning curves (mean training episode reward, epsilon-greedy)", ""]
        for seed, c in result["learning_curves"].items():
            pts = ", ".join(
                f"{s:.0f}: {v:.2f}" for s, v in zip(c["binned"]["step"], c["binned"]["mean"])
            )
            label = f"seed {seed}" if str(seed).isdigit() or seed == "given" else seed
            lines.append(f"- {label} ({c['train_seconds']:.0f} s): {pts}")
        lines.append("")
        lines.append("Full curves (per episode, TD loss, epsilon) are in policy.json.")
    lines.append("")
    return "\n".join(lines)

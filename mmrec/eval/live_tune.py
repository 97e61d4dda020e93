"""``python -m mmrec evaluate live --tune``: the live layer's hyper-parameters chosen on
TRAINING users only (``live-tuning.json``), frozen in ``LiveConfig`` before the held-out
run. Split from :mod:`mmrec.eval.live` (the simulated sessions, which it replays).
"""

from __future__ import annotations

import itertools
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from mmrec.atomic import atomic_write_text
from mmrec.config import Config
from mmrec.eval.live import (
    _scratch_dir,
    _service,
    onboarding_share,
    play_service,
    setup,
    two_genre_balance,
)
from mmrec.provenance import git_commit, machine_info

TUNE_GRID = {
    "weight": (2.0, 4.0, 8.0),
    "taste_precision": (1.0, 3.0),
    "genre_pseudo": (3.0, 10.0, 30.0),
    "genre_scale": (0.5, 1.0),
}


TUNE_MARGINS = (0.1, 0.25, 0.5)


# Calibrated lists: KL weight x discovery share (mmrec.rl.online.calibrated_fill / genre_target)
TUNE_CALIBRATION = (0.0, 3.0, 10.0, 30.0)


TUNE_DISCOVERY = (0.0, 0.25, 0.5)


def tune_live(
    cfg: Config,
    n_users: int = 40,
    seed: int = 100,
    out_dir: Path = Path("reports"),
    n_newcomers: int = 40,
    log=print,
) -> dict:
    """Grid search on TRAINING users only (never the held-out ones); writes live-tuning.json.

    Objective: mean true rating over the session, among settings whose onboarding share
    (single-genre newcomers, a different random draw than the report's) is >= 0.6; then the
    largest margin from ``TUNE_MARGINS`` that keeps the objective within 0.01 stars of the best
    and the median replaced picks <= 4 (both stages with calibrated lists off); then the
    calibrated-list setting (``TUNE_CALIBRATION`` x ``TUNE_DISCOVERY``) with the best two-genre
    balance among those within 0.01 stars of the best session mean that keep the onboarding
    share >= 0.6 and the median replaced picks <= 4.
    """
    from mmrec.rl.dqn import few_threads
    from mmrec.rl.env import MovieRecEnv

    t0 = time.perf_counter()
    catalog, parts, user_model, _source, train, _held, index = setup(cfg)
    rng = np.random.default_rng(seed)
    users = np.sort(rng.choice(train, size=min(n_users, len(train)), replace=False))
    env = MovieRecEnv(index, parts[4], user_model, cfg.env, users=users, training=False)
    steps = cfg.env.episode_length
    rows = []
    with tempfile.TemporaryDirectory(dir=_scratch_dir()) as folder, few_threads(blas=True):
        keys = list(TUNE_GRID)
        for i, values in enumerate(itertools.product(*TUNE_GRID.values())):
            setting = dict(zip(keys, values))
            svc = _service(cfg, parts, folder, f"tune{i}", calibration=0.0, **setting)
            share = onboarding_share(svc, n_newcomers, seed=seed + 1)["mean"]
            res = play_service(svc, env, users, len(users), seed, steps, "tune")
            row = {
                **setting,
                "margin": cfg.live.margin,
                "session_true": float(np.nanmean(res["true"])),
                "steps_1_5": float(np.nanmean(res["true"][:, :5])),
                "steps_11_20": float(np.nanmean(res["true"][:, 10:20])),
                "median_replaced": float(np.median(res["replaced"])),
                "onboarding_share": share,
            }
            rows.append(row)
            log(json.dumps(row))
        ok = [r for r in rows if r["onboarding_share"] >= 0.6] or rows
        best = max(ok, key=lambda r: r["session_true"])
        chosen = {k: best[k] for k in keys}
        margin_rows = []
        for j, margin in enumerate(TUNE_MARGINS):
            svc = _service(
                cfg, parts, folder, f"margin{j}", calibration=0.0, margin=margin, **chosen
            )
            res = play_service(svc, env, users, len(users), seed, steps, "margin")
            row = {
                "margin": margin,
                "session_true": float(np.nanmean(res["true"])),
                "median_replaced": float(np.median(res["replaced"])),
            }
            margin_rows.append(row)
            log(json.dumps(row))
        top = max(r["session_true"] for r in margin_rows)
        fine = [
            r for r in margin_rows if r["session_true"] >= top - 0.01 and r["median_replaced"] <= 4
        ]
        chosen["margin"] = (
            max(fine, key=lambda r: r["margin"])["margin"] if fine else cfg.live.margin
        )
        # Calibrated lists: the setting that best covers both genres of two-genre newcomers,
        # among those within 0.01 stars of the best session mean that keep the onboarding
        # share >= 0.6 and the median replaced picks <= 4.
        cal_rows = []
        for j, (cal, disc) in enumerate(itertools.product(TUNE_CALIBRATION, TUNE_DISCOVERY)):
            if cal == 0.0 and disc > 0.0:
                continue  # discovery acts through the calibrated fill only
            svc = _service(cfg, parts, folder, f"cal{j}", calibration=cal, discovery=disc, **chosen)
            res = play_service(svc, env, users, len(users), seed, steps, "cal")
            row = {
                "calibration": cal,
                "discovery": disc,
                "session_true": float(np.nanmean(res["true"])),
                "steps_1_5": float(np.nanmean(res["true"][:, :5])),
                "steps_11_20": float(np.nanmean(res["true"][:, 10:20])),
                "median_replaced": float(np.median(res["replaced"])),
                "onboarding_share": onboarding_share(svc, n_newcomers, seed=seed + 1)["mean"],
                "two_genre_balance": two_genre_balance(svc, n_newcomers, seed=seed + 2)["mean"],
            }
            cal_rows.append(row)
            log(json.dumps(row))
    top = max(r["session_true"] for r in cal_rows)
    fine = [
        r
        for r in cal_rows
        if r["session_true"] >= top - 0.01
        and r["onboarding_share"] >= 0.6
        and r["median_replaced"] <= 4
    ]
    pick = max(fine, key=lambda r: r["two_genre_balance"]) if fine else cal_rows[0]
    chosen["calibration"], chosen["discovery"] = pick["calibration"], pick["discovery"]
    result = {
        "users": f"{len(users)} TRAINING users (seed {seed}); held-out users not used",
        "grid": rows,
        "margins": margin_rows,
        "calibration": cal_rows,
        "chosen": chosen,
        "seconds": time.perf_counter() - t0,
        "commit": git_commit(),
        "machine": machine_info(),
    }
    atomic_write_text(Path(out_dir) / "live-tuning.json", json.dumps(result, indent=1))
    return result

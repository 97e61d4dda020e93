"""Comparisons behind the per-modality table (:mod:`mmrec.eval.modality`): each network row
against its linear probe, the fused network against each single modality, the paired
per-seed differences and the paired bootstrap over movies, and the issue's targets read from
them. Split from :mod:`mmrec.eval.modality` (the cross-validated training loop).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from mmrec.eval.metrics import (
    resample_counts,
    weighted_classification_metrics,
)

COMPARED = ("f1_micro", "f1_macro", "subset_accuracy", "roc_auc_macro")  # fused vs each single


PROBE_COMPARED = ("f1_micro", "f1_macro")  # network row vs its linear probe


BOOTSTRAP = 1000  # paired bootstrap resamples of the movies for fused vs best single; 0: off


BOOTSTRAP_SEED = 0  # fixed, so the same predictions always give the same interval


class Pooled(NamedTuple):
    """One row's pooled out-of-fold test predictions of one seed (its scored movies only)."""

    labels: np.ndarray  # (N, G) 0/1 true genres
    pred: np.ndarray  # (N, G) 0/1 thresholded predictions
    scores: np.ndarray  # (N, G) genre probabilities
    genres: np.ndarray | None = None  # (G,) bool: the genres macro averages count


def _compare(
    a_row: dict,
    b_row: dict,
    a_runs: Sequence[Pooled] | None,
    b_runs: Sequence[Pooled] | None,
    metrics: Sequence[str],
    bootstrap: int,
) -> dict:
    """``a`` minus ``b`` per metric: margin of the seed means, paired per-seed differences, and
    (with ``bootstrap`` > 0) the paired bootstrap over the scored movies."""
    boot = {}
    if a_runs is not None and bootstrap > 0:
        boot = paired_bootstrap(a_runs, {m: b_runs for m in metrics}, resamples=bootstrap)
    out = {}
    for metric in metrics:
        diffs = [x[metric] - y[metric] for x, y in zip(a_row["per_seed"], b_row["per_seed"])]
        out[metric] = {
            "margin": a_row[metric]["mean"] - b_row[metric]["mean"],
            "spread": max(a_row[metric]["std"], b_row[metric]["std"]),
            "paired_differences": diffs,
        }
        if metric in boot:
            out[metric]["bootstrap"] = boot[metric]
    return out


def _comparisons(rows, subset_rows, pooled, bootstrap: int) -> dict:
    """Each network row against its linear probe (on the row's own films), and the fused
    network against each single modality on the films with every modality; the issue's
    targets read from them."""
    started = time.perf_counter()
    by_name = {r["variant"]: r for r in rows if "na" not in r}
    probe_vs = {}
    for row in by_name.values():
        if row["kind"] != "network" or row["scored_on"] == "all evaluated films":
            continue
        probe = next(
            (
                r
                for r in by_name.values()
                if r["kind"] == "linear probe"
                and r["modalities"] == row["modalities"]
                and r["masked_text"] == row["masked_text"]
            ),
            None,
        )
        if probe is None:
            continue
        comp = _compare(
            row,
            probe,
            pooled["rows"][row["variant"]],
            pooled["rows"][probe["variant"]],
            PROBE_COMPARED,
            bootstrap,
        )
        for c in comp.values():
            # "Reaches the probe": not below it beyond the uncertainty (bootstrap CI upper
            # end >= 0; the seed spread without a bootstrap).
            hi = (
                c["bootstrap"]["ci95"][1] if "bootstrap" in c and "ci95" in c["bootstrap"] else None
            )
            c["reaches"] = bool(hi >= 0) if hi is not None else bool(c["margin"] >= -c["spread"])
        probe_vs[row["variant"]] = {"probe": probe["variant"], **comp}
    out = {"network_vs_probe": probe_vs}
    targets = _probe_target(probe_vs)
    for masked, key in ((False, "fused_vs_single"), (True, "fused_vs_single_masked")):
        nets = [r for r in subset_rows if r["kind"] == "network"]
        fused = next(
            (r for r in nets if len(r["modalities"]) > 1 and r["masked_text"] == masked), None
        )
        if fused is None:
            continue
        # Single rows of the same text (masking changes only the text rows).
        singles = [
            r
            for r in nets
            if len(r["modalities"]) == 1
            and (r["masked_text"] == masked or r["modalities"] != ["text"])
        ]
        fused_vs = {
            single["variant"]: _compare(
                fused,
                single,
                pooled["subset"][fused["variant"]],
                pooled["subset"][single["variant"]],
                COMPARED,
                bootstrap,
            )
            for single in singles
        }
        out[key] = {"scored_on": fused["scored_on"], "fused": fused["variant"], "versus": fused_vs}
        text = next((r["variant"] for r in singles if r["modalities"] == ["text"]), None)
        targets.update(_fusion_targets(fused_vs, text, ", genre words masked" if masked else ""))
    out["targets"] = targets
    out["comparison_seconds"] = round(time.perf_counter() - started, 1)
    return out


def _ci_low(c: dict) -> float | None:
    boot = c.get("bootstrap") or {}
    return boot["ci95"][0] if "ci95" in boot else None


def _probe_target(probe_vs: dict) -> dict:
    """The issue's first "done when" check: every single-modality network reaches its probe."""
    singles = {k: v for k, v in probe_vs.items() if not k.startswith("fused")}
    if not singles:
        return {}
    return {
        "single_rows_reach_probe": {
            "holds": all(v[m]["reaches"] for v in singles.values() for m in PROBE_COMPARED),
            "rule": "each single-modality network row's micro and macro F1 is not below its "
            "linear probe beyond the paired bootstrap 95% CI (CI upper end >= 0)",
        }
    }


def _fusion_targets(fused_vs: dict, text: str | None, suffix: str) -> dict:
    """The issue's fusion checks against the text-only row ``text``, True / False with the
    numbers behind them; ``suffix`` names the masked variant."""
    if text is None or text not in fused_vs:
        return {}
    micro, macro = fused_vs[text]["f1_micro"], fused_vs[text]["f1_macro"]
    lo_micro, lo_macro = _ci_low(micro), _ci_low(macro)
    return {
        f"fused_micro_f1_text_plus_4{suffix}": {
            "holds": bool(micro["margin"] >= 0.04 and lo_micro is not None and lo_micro > 0),
            "margin": micro["margin"],
            "ci_low": lo_micro,
            "rule": f"fused minus {text} micro F1 >= 4 points and its paired bootstrap 95% "
            "CI excludes 0, on the films with every modality",
        },
        f"fused_macro_f1_above_text{suffix}": {
            "holds": bool(macro["margin"] >= 0 and lo_macro is not None and lo_macro > 0),
            "margin": macro["margin"],
            "ci_low": lo_macro,
            "rule": f"fused minus {text} macro F1 >= 0 and its paired bootstrap 95% CI "
            "excludes 0, on the films with every modality",
        },
    }


def bootstrap_differences(
    fused: Sequence[Pooled], best: dict[str, Sequence[Pooled]], idx: np.ndarray
) -> dict[str, np.ndarray]:
    """Fused minus best single on each resample of movies, averaged over seeds: ``(B,)`` per
    metric of ``best`` (metric -> that metric's best single variant, one ``Pooled`` per seed).

    ``idx`` is ``(B, N)`` movie indices; both sides of a difference are scored on the same
    resampled movies (paired). With ``idx = arange(N)[None]`` the one value is the mean over
    seeds of the per-seed differences in the report.
    """
    n_items = len(fused[0].labels)
    counts = resample_counts(idx, n_items)  # (B, N)
    cache: dict[int, dict[str, np.ndarray]] = {}  # id(Pooled) -> metrics; best may repeat

    def metrics(run: Pooled) -> dict[str, np.ndarray]:
        if id(run) not in cache:
            cache[id(run)] = weighted_classification_metrics(
                run.labels, run.pred, run.scores, counts, run.genres
            )
        return cache[id(run)]

    out = {}
    for metric, best_runs in best.items():
        if len(best_runs) != len(fused):
            raise ValueError(f"{metric}: {len(best_runs)} seeds of the best single, {len(fused)}")
        # The seeds score the same N movies, so one resample of movies applies to every seed
        # and its differences are averaged: the statistic bootstrapped is then exactly the
        # reported margin (mean over seeds), and the interval shows the uncertainty from the
        # choice of movies alone. Pooling the seeds' differences instead would mix the
        # seed-to-seed (training / fold) noise, reported separately as the spread, into it.
        diffs = [metrics(f)[metric] - metrics(b)[metric] for f, b in zip(fused, best_runs)]
        out[metric] = np.mean(diffs, axis=0)
    return out


def paired_bootstrap(
    fused: Sequence[Pooled],
    best: dict[str, Sequence[Pooled]],
    resamples: int = BOOTSTRAP,
    seed: int = BOOTSTRAP_SEED,
) -> dict[str, dict]:
    """Paired bootstrap over movies of fused minus best single, per metric of ``best``.

    Draws ``resamples`` sets of N movies with replacement (``numpy.random.default_rng(seed)``)
    and scores both sides of each metric on the same draw (:func:`bootstrap_differences`).
    Returns per metric ``{"resamples", "mean", "ci95": [lo, hi], "p_fused_wins",
    "ci_excludes_zero"}``: the 2.5 / 97.5 percentiles, and the share of resamples where fused
    is strictly ahead. Resamples where a metric is undefined (no genre with both classes for
    AUC) are dropped and ``resamples`` counts those kept.
    """
    n_items = len(fused[0].labels)
    rng = np.random.default_rng(seed)
    # Blocks of resamples keep the (block, N) count matrix near 32 MB for any catalog size.
    block = max(1, min(resamples, 4_000_000 // max(n_items, 1)))
    parts: dict[str, list[np.ndarray]] = {m: [] for m in best}
    for start in range(0, resamples, block):
        idx = rng.integers(0, n_items, size=(min(block, resamples - start), n_items))
        for metric, diffs in bootstrap_differences(fused, best, idx).items():
            parts[metric].append(diffs)
    out = {}
    for metric, chunks in parts.items():
        diffs = np.concatenate(chunks)
        diffs = diffs[np.isfinite(diffs)]
        if not len(diffs):
            out[metric] = {"resamples": 0, "note": "metric undefined on every resample"}
            continue
        lo, hi = (float(v) for v in np.percentile(diffs, [2.5, 97.5]))
        out[metric] = {
            "resamples": int(len(diffs)),
            "mean": float(diffs.mean()),
            "ci95": [lo, hi],
            "p_fused_wins": float((diffs > 0).mean()),
            "ci_excludes_zero": bool(lo > 0 or hi < 0),
        }
    return out

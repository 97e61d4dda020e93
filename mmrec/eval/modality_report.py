"""The per-modality table (document Table 5.1) as markdown, from the result dict that
:func:`mmrec.eval.modality.evaluate_modality` writes to ``modality*.json``. Split from
:mod:`mmrec.eval.modality` (the cross-validated training loop).
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from mmrec.eval.modality_compare import COMPARED, PROBE_COMPARED


def _invocation() -> str:
    """How this process was started, as a user would type it (``python -m mmrec ...``)."""
    argv = list(sys.argv)
    if argv and Path(argv[0]).parts[-2:] == ("mmrec", "__main__.py"):
        return shlex.join(["python", "-m", "mmrec", *argv[1:]])
    return shlex.join(["python", *argv])


def _pct(summary: dict) -> str:
    return f"{100 * summary['mean']:.1f} ± {100 * summary['std']:.1f}"


TABLE_HEAD = [
    "| Model | Scored on | Films | F1 (micro) | F1 (macro) | ROC-AUC (macro) | AP (macro) "
    "| Subset acc. | Hamming acc. | Recall (micro) | Recall (macro) |",
    "|---|---|---|---|---|---|---|---|---|---|---|",
]


def _table(rows: list[dict]) -> list[str]:
    lines = list(TABLE_HEAD)
    for row in rows:
        if "na" in row:
            lines.append(f"| {row['variant']} | n/a ({row['na']}) |" + " n/a |" * 9)
            continue
        lines.append(
            f"| {row['variant']} | {row['scored_on']} | {row['n_scored']} "
            f"| {_pct(row['f1_micro'])} | {_pct(row['f1_macro'])} | {_pct(row['roc_auc_macro'])} "
            f"| {_pct(row['ap_macro'])} | {_pct(row['subset_accuracy'])} "
            f"| {_pct(row['hamming_accuracy'])} | {_pct(row['recall_micro'])} "
            f"| {_pct(row['recall_macro'])} |"
        )
    return lines


def _comparison_line(metric: str, c: dict) -> str:
    diffs = ", ".join(f"{100 * d:+.1f}" for d in c["paired_differences"])
    return f"{metric} {100 * c['margin']:+.1f} (per-seed {diffs})" + _bootstrap_text(
        c.get("bootstrap")
    )


def render_markdown(result: dict) -> str:
    """The Table 5.1 report as markdown."""
    machine = result["machine"]
    protocol = result["protocol"]
    every = " and ".join(result["every_modality"])
    lines = [
        "# Genre prediction by modality (Table 5.1)",
        "",
        f"- command: `{result['command']}`",
        f"- commit: `{result.get('commit')}`",
        f"- data folder: `{result['data_dir']}` ({result['n_movies']} movies, "
        f"{result['n_evaluated']} with a genre and at least one modality, "
        f"{result['n_every_modality']} with {every}; {len(result['genres'])} genres)",
        f"- protocol: {protocol['folds']}-fold cross-validation by movie (each movie tested "
        f"once per seed; {100 * protocol['val_share']:.0f}% of movies as validation inside each "
        "fold for early stopping, the probe's penalty and the thresholds), folds re-drawn per "
        f"seed and shared by every row; seeds {', '.join(map(str, result['seeds']))}",
        f"- date: {result['created']}; machine: {machine['host']} ({machine['platform']}, "
        f"{machine['cpu_count']} CPUs, device {machine['device']}, torch {machine['torch']}); "
        f"took {result['seconds']} s",
        f"- audio features: {result['audio_kind']}",
        "- synopses: "
        + (
            "genre words masked (mask_genre_words) before the text encoder, in every row"
            if result.get("text_masked")
            else "as imported (genre words not masked)"
        ),
        "",
        "Percent, mean ± std over seeds; each seed's value is computed on the pooled test "
        "predictions of the row's scored films (every fold's test films together). Network rows "
        "are the fusion model with only the row's modalities switched on; linear-probe rows "
        "are a one-vs-rest logistic regression on the same cached encoder vectors (standardised, "
        "each modality block scaled to equal variance, L2 penalty chosen on validation mAP), "
        "trained and tested on the same folds. Subset accuracy = exact genre set; Hamming "
        "accuracy = share of correct (movie, genre) cells; micro pools all cells. "
        f"Macro rule: {result['macro_rule']}. ROC-AUC and AP (average precision) are "
        "threshold-free.",
        "",
        "## Each row on the films that have its modalities",
        "",
        *_table(result["rows"]),
        "",
        'The row "..., all films" scores the fused network on every evaluated film, '
        "including those missing a modality.",
        "",
        f"## Every row on the films with {every} ({result['n_every_modality']} films)",
        "",
        *_table(result["subset_rows"]),
        "",
        f"Decision threshold: {result['threshold_rule']}.",
        "",
    ]
    probe_vs = result.get("network_vs_probe") or {}
    if probe_vs:
        lines += ["## Network minus its linear probe (points; each row on its own films)", ""]
        for name, comp in probe_vs.items():
            parts = [_comparison_line(m, comp[m]) for m in PROBE_COMPARED]
            reached = all(comp[m]["reaches"] for m in PROBE_COMPARED)
            verdict = "reaches its probe" if reached else "BELOW its probe"
            lines.append(f"- {name} vs {comp['probe']}: {verdict}; " + "; ".join(parts))
        lines.append("")
    for key in ("fused_vs_single", "fused_vs_single_masked"):
        fused_vs = result.get(key) or {}
        if not fused_vs.get("versus"):
            continue
        lines += [
            f"## {fused_vs['fused']} minus each single modality ({fused_vs['scored_on']}; points)",
            "",
        ]
        for name, comp in fused_vs["versus"].items():
            parts = [_comparison_line(m, comp[m]) for m in COMPARED]
            lines.append(f"- vs {name}: " + "; ".join(parts))
        lines.append("")
    targets = result.get("targets") or {}
    if targets:
        lines += ["## Targets of issue 18", ""]
        for name, t in targets.items():
            extra = ""
            if "margin" in t:
                low = "n/a" if t["ci_low"] is None else f"{100 * t['ci_low']:+.1f}"
                extra = f" (margin {100 * t['margin']:+.1f}, CI low {low})"
            lines.append(f"- {name}: {'MET' if t['holds'] else 'NOT MET'}{extra} — {t['rule']}")
        lines.append("")
    lines.append(
        "The paired bootstrap resamples the scored films with replacement and scores both "
        "rows on the same draw, averaging each draw's difference over the seeds: its interval "
        "is the sampling uncertainty of having only these films; the per-seed differences show "
        f"training and fold noise (comparisons took {result.get('comparison_seconds', 0)} s)."
    )
    return "\n".join(lines) + "\n"


def _bootstrap_text(boot: dict | None) -> str:
    if not boot:
        return ""
    if "mean" not in boot:
        return f"; bootstrap: {boot.get('note', 'not computed')}"
    lo, hi = boot["ci95"]
    verdict = "excludes 0" if boot["ci_excludes_zero"] else "includes 0"
    return f", 95% CI [{100 * lo:+.1f}, {100 * hi:+.1f}] ({verdict}, {boot['resamples']} resamples)"

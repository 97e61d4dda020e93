"""The live-learning report (``reports/live.md``) from the result dict
:func:`mmrec.eval.live.evaluate_live` writes, and the issue's done-when checks computed from
it. Split from :mod:`mmrec.eval.live` (the simulated sessions).
"""

from __future__ import annotations

import numpy as np

from mmrec.provenance import commit_line

ARM_LABELS = {
    "live": "live (as served)",
    "updates_off": "same loop, updates off",
    "supervised": "greedy supervised scorer",
    "popularity": "popularity",
    "dqn_alone": "DQN alone (history in its state)",
    "oracle": "oracle (true rating)",
}


def _share(x) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def criteria(result: dict) -> dict:
    """The issue's done-when checks, computed from the numbers (True / False)."""
    live = result["arms"]["live"]
    share = result["onboarding_share"]
    stab = result["stability"]["median_replaced_of_other"]
    return {
        "late_above_early": live["steps_11_20_true"]["mean"] > live["steps_1_5_true"]["mean"],
        "live_beats_updates_off": result["live_minus_off"]["diff"] > 0
        and result["live_minus_off"]["excludes_0"],
        "cold_start_ge_popularity_plus_10pct": result["cold_start_vs_popularity"]["relative"]
        >= 0.10,
        "onboarding_share_ge_60pct": bool(share["n"] >= 30 and share["mean"] >= 0.60),
        "stability_median_le_4": stab is not None and stab <= 4,
    }


def _f(x: dict, key: str = "mean", digits: int = 3) -> str:
    ci = x.get("ci95", float("nan"))
    v = x[key]
    return f"{v:.{digits}f} ± {ci:.{digits}f}" if np.isfinite(ci) else f"{v:.{digits}f}"


def live_markdown(r: dict) -> str:
    p, m = r["protocol"], r["machine"]
    lines = [
        "# Live learning within a session (simulated held-out newcomers)",
        "",
        f"Command: `{r['command']}`  ",
        *commit_line(r),
        f"Machine: {m['platform']}, {m['cpu_count']} CPUs, torch {m['torch']}, device "
        f"{m['device']}; {r['seconds'] / 60:.0f} min  ",
        f"Protocol: {p['users']}, seeds {p['seeds']} ({p['sessions']} sessions); {p['n_items']} "
        f"movies; {p['steps']} steps per session, each newcomer ticks {p['onboarding_genres']} "
        f"genres; live and updates-off run through the service (`recommend` -> hidden-model "
        f"rating of the top-scored pick of {p['k_shown']} shown -> `rate`); common random numbers "
        f"across arms; hit = true rating >= {p['hit_rating']:g}.  ",
        f"Hyper-parameters: {p['hyper_parameters']}: "
        + ", ".join(f"{k} = {v}" for k, v in r["live_config"].items())
        + ".",
        "Values: mean ± 95% CI over sessions.",
        "",
        "| policy | mean true rating | steps 1-5 | steps 11-20 | 11-20 minus 1-5 (paired) "
        "| hit rate | cold-start reward (first 5) |",
        "|---|---|---|---|---|---|---|",
    ]
    for arm, s in r["arms"].items():
        lines.append(
            f"| {ARM_LABELS.get(arm, arm)} | {_f(s['session_true'])} | {_f(s['steps_1_5_true'])} "
            f"| {_f(s['steps_11_20_true'])} | {_f(s['late_minus_early'], 'diff')} "
            f"| {_f(s['hit_rate'])} | {_f(s['cold_start_reward'])} |"
        )
    d, c = r["live_minus_off"], r["cold_start_vs_popularity"]
    st, sh = r["stability"], r["onboarding_share"]
    lines += [
        "",
        f"- **Live minus updates off** (mean true rating per session, paired): "
        f"{d['diff']:+.3f} ± {d['ci95']:.3f} (95% CI {'excludes' if d['excludes_0'] else 'includes'} 0).",
        f"- **Live minus greedy supervised** (paired): {r['live_minus_supervised']['diff']:+.3f} ± "
        f"{r['live_minus_supervised']['ci95']:.3f}.",
        f"- **Cold start** (reward over the first steps): live {c['live']:.3f} vs popularity "
        f"{c['popularity']:.3f} ({100 * c['relative']:+.1f}%).",
        f"- **Stable lists**: over {st['ratings']} ratings in the live arm, the median number of "
        f"the other {st['other_picks']} picks replaced per rating is {st['median_replaced_of_other']:g} "
        f"(mean {st['mean_replaced']:.2f}, 90th percentile {st['p90_replaced']:g}).",
        *(
            [
                f"- **Direction**: after {st['direction_ratings']} ratings of >= 4 or <= 2 stars, "
                "the films sharing a genre with the rated one became fewer (after a high rating) "
                f"or more (after a low one) on the list in {_share(st['wrong_direction_share'])} "
                "of them."
            ]
            if st.get("direction_ratings")  # reports written before the measure lack it
            else []
        ),
        f"- **Onboarding share**: {sh['n']} newcomers picking one genre (with >= {sh.get('k', 12)} "
        f"films): {sh['mean']:.3f} ± {sh.get('ci95', float('nan')):.3f} of their first "
        f"{sh.get('k', 12)} picks carry it (lowest {sh.get('min', float('nan')):.2f}).",
        *(
            [
                f"- **Two-genre balance** (calibrated lists): {b['live']['n']} newcomers ticking "
                f"two genres: the less represented one is on {b['live']['mean']:.3f} ± "
                f"{b['live']['ci95']:.3f} of their first {b['live']['k']} picks (plain top-k by "
                f"score: {b['top_k']['mean']:.3f} ± {b['top_k']['ci95']:.3f}; 0.5 = even)."
            ]
            if (b := r.get("two_genre_balance"))
            else []
        ),
        f"- `rate()` inside this loop: median {r['rate_ms']['median']:.1f} ms, p95 "
        f"{r['rate_ms']['p95']:.1f} ms (throw-away store in RAM; see reports/bench.md for the "
        f"5,000-movie figure).",
        "",
        "## Criteria (issue 12)",
        "",
    ]
    for name, ok in r["criteria"].items():
        lines.append(f"- {name.replace('_', ' ')}: {'met' if ok else 'NOT met'}")
    lines += ["", "## Mean true rating per step", ""]
    arms = list(r["arms"])
    lines.append("| step | " + " | ".join(ARM_LABELS.get(a, a) for a in arms) + " |")
    lines.append("|---|" + "---|" * len(arms))
    for t in range(p["steps"]):
        cells = [f"{r['arms'][a]['per_step'][t]['true']:.3f}" for a in arms]
        lines.append(f"| {t + 1} | " + " | ".join(cells) + " |")
    lines += ["", "## Hit rate per step", ""]
    lines.append("| step | " + " | ".join(ARM_LABELS.get(a, a) for a in arms) + " |")
    lines.append("|---|" + "---|" * len(arms))
    for t in range(p["steps"]):
        cells = [f"{r['arms'][a]['per_step'][t]['hit']:.3f}" for a in arms]
        lines.append(f"| {t + 1} | " + " | ".join(cells) + " |")
    lines.append("")
    return "\n".join(lines)

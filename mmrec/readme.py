"""README's result tables, rendered from ``reports/*.json`` so they cannot drift.

README.md marks every generated block with a pair of comments::

    <!-- report: policy.lifts -->
    ...rendered text...
    <!-- /report -->

``python -m mmrec.readme`` rewrites each block from the JSON report it names (``BLOCKS`` below);
``python -m mmrec.readme --check`` exits 1 and prints a diff when README.md differs from what the
reports give (``tests/unit/test_readme.py`` runs the check). To change a figure, re-run the
command that writes the report, then re-render; never edit a block by hand.

Where a report's own markdown already has the table, the block is cut from that markdown (the
same function writes ``reports/X.md``), so README and report share one formatter.
"""

from __future__ import annotations

import argparse
import difflib
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path

from mmrec.atomic import atomic_write_text

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
REPORTS = ROOT / "reports"

BLOCK = re.compile(r"(<!-- report: (?P<name>[\w.-]+) -->\n)(?P<body>.*?)(<!-- /report -->)", re.S)


def load(name: str) -> dict:
    return json.loads((REPORTS / f"{name}.json").read_text())


def tables(markdown: str) -> list[str]:
    """The markdown tables of a document, in order (each its lines joined)."""
    found, current = [], []
    for line in markdown.splitlines():
        if line.startswith("|"):
            current.append(line)
        elif current:
            found.append("\n".join(current))
            current = []
    if current:
        found.append("\n".join(current))
    return found


def source(report: dict, name: str) -> str:
    """One line naming the report, the command, the commit and the machine behind a table."""
    m = report.get("machine") or {}
    cores = m.get("cpu_count") or m.get("cores")
    what = m.get("cpu") or m.get("platform") or "unknown machine"
    machine = f"{what}, {cores} cores" if cores else what
    commit = report.get("commit")
    commit_text = (
        f"commit `{commit}`"
        if commit
        else "commit not recorded (the report predates recorded commits)"
    )
    command = report.get("command")
    command = f"`{command}`" if command else "command not recorded in the JSON"
    return (
        f"<sub>Source: `reports/{name}.json` — {command}; {commit_text}; machine: {machine}.</sub>"
    )


# ---- modality (Table 5.1): reports of several protocol generations share these row fields


def _pct(summary: dict, spread: bool) -> str:
    if spread:
        return f"{100 * summary['mean']:.1f} ± {100 * summary['std']:.1f}"
    return f"{100 * summary['mean']:.1f}"


DEMO_COLUMNS = (
    ("Subset acc.", "subset_accuracy"),
    ("Hamming acc.", "hamming_accuracy"),
    ("Recall (micro)", "recall_micro"),
    ("F1 (micro)", "f1_micro"),
    ("Recall (macro)", "recall_macro"),
    ("F1 (macro)", "f1_macro"),
    ("ROC-AUC (macro)", "roc_auc_macro"),
)
REAL_COLUMNS = (
    ("F1 (micro)", "f1_micro"),
    ("F1 (macro)", "f1_macro"),
    ("ROC-AUC (macro)", "roc_auc_macro"),
    ("AP (macro)", "ap_macro"),
)


def modality_table(
    parts: list[tuple[str, list[dict]]],
    columns=DEMO_COLUMNS,
    *,
    head: str = "Model",
    coverage: bool = True,
    scored: bool = False,
    spread: bool = True,
) -> str:
    """Rows of one or more modality reports: ``parts`` = [(label prefix, rows)]."""
    names = [head] + (["Scored on", "Films"] if scored else []) + [c for c, _ in columns]
    names += ["Coverage"] if coverage else []
    lines = ["| " + " | ".join(names) + " |", "|" + "---|" * len(names)]
    for prefix, rows in parts:
        for row in rows:
            if "na" in row:
                continue
            cells = [prefix + row["variant"]]
            cells += [row["scored_on"], str(row["n_scored"])] if scored else []
            cells += [_pct(row[key], spread) for _, key in columns]
            cells += [f"{100 * row['test_coverage']:.0f}%"] if coverage else []
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _rows(report: dict, variants: tuple[str, ...] | None = None) -> list[dict]:
    rows = [r for r in report["rows"] if not r.get("masked_text")]
    return [r for r in rows if variants is None or r["variant"] in variants]


def modality_demo(name: str) -> Callable[[], str]:
    return lambda: modality_table([("", _rows(load(name)))])


def modality_audio() -> str:
    keep = ("audio only", "fused (text + image + audio)")
    return modality_table(
        [
            ("aisfx: ", _rows(load("modality-demo"), keep)),
            ("log-mel: ", _rows(load("modality-demo-logmel"), keep)),
        ],
        head="Front end: model",
    )


def modality_pooling() -> str:
    """Audio-only and fused rows of the demo under both audio poolings (same protocol, day, VM)."""
    keep = ("audio only", "linear probe: audio", "fused (text + image + audio)")
    return modality_table(
        [
            ("meanmax: ", _rows(load("modality-demo-meanmax"), keep)),
            ("last_mean: ", _rows(load("modality-demo-lastmean"), keep)),
        ],
        REAL_COLUMNS,
        head="Audio pooling: model",
        coverage=False,
    )


def span_probe_table() -> str:
    """The trailer-span probe under both audio poolings (``mmrec.eval.span_probe`` reports)."""
    lines = [
        "| audio pooling (`FusionConfig.audio_pooling`) | span followed the moved sound "
        "| \\|attribution\\| in first / middle / last third | report |",
        "|---|---|---|---|",
    ]
    what = {
        "last_mean": "forward LSTM, last state + mean of the outputs (before)",
        "meanmax": "bidirectional LSTM, mean + max over time (now the default)",
    }
    for name in ("span-probe-demo-lastmean", "span-probe-demo"):
        r = load(name)
        thirds = " / ".join(f"{100 * x:.1f}%" for x in r["attribution_by_third"])
        lines.append(
            f"| `{r['audio_pooling']}`: {what[r['audio_pooling']]} | {r['followed_content']} of "
            f"{r['rotations']} rotations | {thirds} | `reports/{name}.json` |"
        )
    return "\n".join(lines)


def modality_real(subset: bool, masked: bool = False) -> str:
    r = load("modality-mmrec-real")
    spread = len(r["seeds"]) > 1
    if subset:
        rows = [row for row in r["subset_rows"] if bool(row.get("masked_text")) == masked]
        if masked:  # the image rows do not change with masking: shown once, for reference
            rows = [row for row in r["subset_rows"] if "text" not in row["modalities"]] + rows
        return modality_table([("", rows)], REAL_COLUMNS, coverage=False, spread=spread)
    return modality_table(
        [("", _rows(r))], REAL_COLUMNS, coverage=False, scored=True, spread=spread
    )


def modality_demo_skip() -> str:
    """The demo's network rows, seed 0 (same folds, same threshold rule): shipped settings vs
    fusion-skip.toml."""
    old, new = load("modality-demo-cap"), load("modality-demo-fusionskip")
    before = {r["variant"]: r for r in old["rows"] if "na" not in r}
    keys = (("F1 (micro)", "f1_micro"), ("F1 (macro)", "f1_macro"), ("AP (macro)", "ap_macro"))
    head = ["Model (seed 0)"] + [f"{c}: {w}" for c, _ in keys for w in ("shipped", "skip")]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in new["rows"]:
        if "na" in row or row.get("kind") != "network" or row["variant"] not in before:
            continue
        a, b = before[row["variant"]]["per_seed"][0], row["per_seed"][0]
        assert a["seed"] == b["seed"] == 0
        cells = [f"{100 * x[k]:.1f}" for _, k in keys for x in (a, b)]
        lines.append("| " + " | ".join([row["variant"], *cells]) + " |")
    return "\n".join(lines)


def modality_real_targets() -> str:
    """Network minus probe, fused minus text, and issue 18's targets as the report judged
    them (paired bootstrap 95% CIs over films, points)."""
    r = load("modality-mmrec-real")

    def diff(x: dict) -> str:
        lo, hi = x["bootstrap"]["ci95"]
        return f"{100 * x['margin']:+.1f} [{100 * lo:+.1f}, {100 * hi:+.1f}]"

    def cells(comp: dict) -> str:
        return f"micro F1 {diff(comp['f1_micro'])}; macro F1 {diff(comp['f1_macro'])}"

    lines = [
        f"- {net} minus {comp['probe']} (each on its own films): {cells(comp)}"
        for net, comp in r["network_vs_probe"].items()
    ]
    for key in ("fused_vs_single", "fused_vs_single_masked"):
        comp = r.get(key)
        if not comp:
            continue
        for versus, metrics in comp["versus"].items():
            if versus.startswith("text only"):
                lines.append(
                    f"- {comp['fused']} minus {versus} ({comp['scored_on']}): {cells(metrics)}"
                )
    for name, t in r["targets"].items():
        margin = f" (margin {100 * t['margin']:+.1f})" if "margin" in t else ""
        lines.append(f"- target `{name}`: {'met' if t['holds'] else 'NOT met'}{margin}")
    return "\n".join(lines)


# ---- policy


def policy_table(i: int, name: str = "policy") -> str:
    from mmrec.eval.policy import policy_markdown

    return tables(policy_markdown(load(name)))[i]


def policy_lifts() -> str:
    """The DQN's paired lift in the two figures the design document promises."""
    r = load("policy")
    lines = []
    for name, lift in r["lifts"].items():
        if name == "random":
            continue
        sat, watch = lift["satisfaction"], lift["watch_minutes"]
        if name == "myopic oracle":
            name += " (reads the simulator's hidden state: a yardstick, not a policy)"
        lines.append(
            f"- vs {name}: satisfaction {sat['diff']:+.3f} ± {sat['diff_ci95']:.3f} stars "
            f"({100 * sat['relative']:+.1f}%, CI {_verdict(sat)}), watch time "
            f"{watch['diff']:+.0f} ± {watch['diff_ci95']:.0f} minutes per session "
            f"({100 * watch['relative']:+.1f}%, CI {_verdict(watch)})"
        )
    return "\n".join(lines)


def policy_gamma_verdicts(name: str) -> str:
    """Issue 14's comparisons in a retrained report (every DQN row trained per seed): the
    shipped discount against γ = 0, the greedy supervised scorer and the myopic oracle on
    episode reward and watch minutes; the document's two claims against popularity and EASE."""
    r = load(name)
    gamma = r["config"]["dqn"]["gamma"]
    lines = []
    for base in ("dqn γ=0", "supervised", "myopic oracle", "sb3 DQN", "sb3 PPO"):
        lift = r["lifts"].get(base)
        if lift is None:
            continue
        rew, watch = lift["reward"], lift["watch_minutes"]
        lines.append(
            f"- DQN (γ = {gamma:g}) − {base}: episode reward {rew['diff']:+.3f} ± "
            f"{rew['diff_ci95']:.3f} (CI {_verdict(rew)}), watch minutes "
            f"{watch['diff']:+.0f} ± {watch['diff_ci95']:.0f} (CI {_verdict(watch)})"
        )
    for base in ("popularity", "ease"):
        sat, watch = r["lifts"][base]["satisfaction"], r["lifts"][base]["watch_minutes"]
        lines.append(
            f"- vs {base} (the document's claims: +20% satisfaction, +15 min watch time): "
            f"satisfaction {100 * sat['relative']:+.1f}% (CI {_verdict(sat)}), watch time "
            f"{watch['diff']:+.0f} ± {watch['diff_ci95']:.0f} minutes per episode"
        )
    return "\n".join(lines)


def policy_variant_verdicts(name: str) -> str:
    """A validation run's choice (issue 14): ``mmrec.eval.policy.variant_pairs`` on episode
    reward and watch minutes."""
    from mmrec.eval.policy import variant_pairs

    r = load(name)
    label = {"dqn": f"dqn (γ = {r['config']['dqn']['gamma']:g})"}
    lines = []
    for row, base, lift in variant_pairs(r):
        rew, watch = lift["reward"], lift["watch_minutes"]
        lines.append(
            f"- {label.get(row, row)} − {label.get(base, base)}: episode reward "
            f"{rew['diff']:+.3f} ± {rew['diff_ci95']:.3f} (CI {_verdict(rew)}), watch minutes "
            f"{watch['diff']:+.0f} ± {watch['diff_ci95']:.0f} (CI {_verdict(watch)})"
        )
    return "\n".join(lines)


def _verdict(x: dict) -> str:
    return "includes 0" if abs(x["diff"]) <= x["diff_ci95"] else "excludes 0"


# ---- ranking (real benchmark)


def _ci(x: dict) -> str:
    return f"{x['mean']:.4f} ± {x['ci95']:.4f}"


def ranking_warm() -> str:
    p = load("ranking")["protocols"]
    a, c = p["random"]["rankers"], p["temporal"]["rankers"]
    lines = [
        "| ranker | (A) random 80/20, all ratings: NDCG@10 | Recall@10 "
        "| (C) temporal last 20%, ≥ 4: NDCG@10 | Recall@10 |",
        "|---|---|---|---|---|",
    ]
    for name, row in a.items():
        other = c.get(name)
        cells = [_ci(row["ndcg@10"]), _ci(row["recall@10"])]
        cells += [_ci(other["ndcg@10"]), _ci(other["recall@10"])] if other else ["n/a", "n/a"]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def ranking_simple(protocol: str, coverage: bool) -> str:
    rankers = load("ranking")["protocols"][protocol]["rankers"]
    head = "| ranker | NDCG@10 | Recall@10 |" + (" coverage@10 |" if coverage else "")
    lines = [head, "|---|---|---|" + ("---|" if coverage else "")]
    for name, row in rankers.items():
        cells = [_ci(row["ndcg@10"]), _ci(row["recall@10"])]
        cells += [f"{row['coverage@10']:.3f}"] if coverage else []
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def ranking_margins(protocols: tuple[str, ...], key: str, base: str = "hybrid") -> str:
    p = load("ranking")["protocols"]
    labels = {
        "random": "(A)",
        "temporal": "(C)",
        "cold_films": "cold films",
        "thin_users": "thin users",
    }
    lines = []
    for proto in protocols:
        for other, m in p[proto][key].items():
            left = f"{base} − {other}" if key == "hybrid_margin" else f"{other} − random"
            lines.append(
                f"- {labels[proto]} {left}: {m['mean']:+.4f} ± {m['ci95']:.4f} "
                f"({100 * m['relative']:+.1f}%), {m['verdict']}"
            )
    return "\n".join(lines)


# ---- live, bench, scale: cut from the reports' own markdown


def live_table() -> str:
    from mmrec.eval.live_report import live_markdown

    return tables(live_markdown(load("live")))[0]


def live_findings() -> str:
    from mmrec.eval.live_report import live_markdown

    md = live_markdown(load("live"))
    return "\n".join(
        line for line in md.split("## Criteria")[0].splitlines() if line.startswith("- ")
    )


def bench_body() -> str:
    from mmrec.bench import bench_markdown

    return bench_markdown(load("bench")).strip()


def scale_body() -> str:
    from mmrec.scale import render_markdown

    md = render_markdown(load("scale"))
    body = md[md.index("\n## ") + 1 :].strip()
    # README's own sections are level 2: the report's sections sit below them.
    return re.sub(r"^## ", "#### ", body, flags=re.M)


def firstrun_body() -> str:
    """``python -m mmrec.ui.firstrun``'s marks as one sentence."""
    r = load("firstrun")
    m = r["marks_s"]

    def t(key: str) -> str:
        s = m.get(key)
        return "–" if s is None else (f"{s:.0f} s" if s < 120 else f"{s / 60:.1f} min")

    load_avg = r.get("load_average_at_end")
    busy = (
        f" (load average {load_avg[0]:.1f} at the end; other jobs shared the VM)"
        if load_avg
        else ""
    )
    return (
        f"First run of {r['config']} on an empty folder, timed in Chromium{busy}: the server "
        f"answers after **{t('server_answers_s')}**, the page shows the build's progress after "
        f"**{t('progress_visible_s')}**, the models are ready after **{t('models_ready_s')}** and "
        f"a new user's first picks are on screen after **{t('first_picks_s')}** (build stages: "
        + ", ".join(r.get("build_stages") or [])
        + ")."
    )


def load_row() -> str:
    """README's reliability paragraph for ``python -m mmrec.ui.load``: the before runs (the code before
    the grid became one component, ``reports/load-before-<commit>-<n>.json``) against the
    current ``reports/load.json``."""
    after = load("load")
    before = [json.loads(p.read_text()) for p in sorted(REPORTS.glob("load-before-d1777f9-*.json"))]
    runs = after.get("runs") or [after]

    def s(x: float) -> str:
        return f"{x:.2f} s"

    b_p95 = ", ".join(s(r["p95_s"]) for r in before)
    b_p50 = ", ".join(s(r["p50_s"]) for r in before)
    b_cpu = ", ".join(f"{r['browser_cpu_s_per_rating']:.2f}" for r in before)
    return (
        f"**{after['users']} browser users rating at once** (`python -m mmrec.ui.load`): {after['users']} users × "
        f"{after['rounds']} rounds on the 2,000-movie demo, all {after['users']} Chromium tabs and "
        f"the server on this 2-core VM ({after['machine']['cpu']}). Before (the grid of Streamlit "
        f"elements, commit d1777f9, {len(before)} runs): p95 round trip {b_p95}, p50 {b_p50}, "
        f"Chromium CPU per rating {b_cpu} s. After (the grid as one browser component, commit "
        f"{str(after['commit'])[:7]}, {len(runs)} runs, {after['ratings']} ratings): **p95 "
        f"{s(after['p95_s'])}** (per run "
        + ", ".join(s(r["p95_s"]) for r in runs)
        + f"), p50 {s(after['p50_s'])}, Chromium CPU per rating "
        f"{after['browser_cpu_s_per_rating']:.2f} s, server {after['server_cpu_s_per_rating']:.3f}"
        f" s. The 3 s target is {'**met**' if after['p95_s'] <= 3.0 else '**not met**'} "
        "(`reports/load-before-d1777f9-*.json`, `reports/load.json`; docs/RELIABILITY.md "
        '"Load").'
    )


def _src(name: str) -> Callable[[], str]:
    return lambda: source(load(name), name)


BLOCKS: dict[str, Callable[[], str]] = {
    "modality-demo.source": _src("modality-demo"),
    "modality-demo.table": modality_demo("modality-demo"),
    "modality-demo5k.source": _src("modality-demo5k"),
    "modality-demo5k.table": modality_demo("modality-demo5k"),
    "modality-demo-logmel.source": _src("modality-demo-logmel"),
    "modality-audio.table": modality_audio,
    "modality-demo-meanmax.source": _src("modality-demo-meanmax"),
    "modality-demo-lastmean.source": _src("modality-demo-lastmean"),
    "modality-pooling.table": modality_pooling,
    "span-probe.table": span_probe_table,
    "modality-mmrec-real.source": _src("modality-mmrec-real"),
    "modality-mmrec-real.table": lambda: modality_real(subset=False),
    "modality-mmrec-real.subset": lambda: modality_real(subset=True),
    "modality-mmrec-real.masked": lambda: modality_real(subset=True, masked=True),
    "modality-mmrec-real.targets": modality_real_targets,
    "modality-demo-cap.source": _src("modality-demo-cap"),
    "modality-demo-fusionskip.source": _src("modality-demo-fusionskip"),
    "modality-demo-fusionskip.table": modality_demo_skip,
    "policy.source": _src("policy"),
    "policy.policies": lambda: policy_table(0),
    "policy.lift-table": lambda: policy_table(1),
    "policy.lifts": policy_lifts,
    "policy-dynamics.source": _src("policy-dynamics/policy"),
    "policy-dynamics.policies": lambda: policy_table(0, "policy-dynamics/policy"),
    "policy-dynamics.lift-table": lambda: policy_table(1, "policy-dynamics/policy"),
    "policy-gamma.source": _src("policy-gamma/policy"),
    "policy-gamma.policies": lambda: policy_table(0, "policy-gamma/policy"),
    "policy-gamma.verdicts": lambda: policy_gamma_verdicts("policy-gamma/policy"),
    "policy-gamma-dynamics.source": _src("policy-gamma-dynamics/policy"),
    "policy-gamma-dynamics.policies": lambda: policy_table(0, "policy-gamma-dynamics/policy"),
    "policy-gamma-dynamics.verdicts": lambda: policy_gamma_verdicts("policy-gamma-dynamics/policy"),
    "policy-validation-dynamics.source": _src("policy-validation-dynamics/policy"),
    "policy-validation-dynamics.policies": lambda: policy_table(
        0, "policy-validation-dynamics/policy"
    ),
    "policy-validation-dynamics.verdicts": lambda: policy_variant_verdicts(
        "policy-validation-dynamics/policy"
    ),
    "policy-validation-recent.source": _src("policy-validation-recent/policy"),
    "policy-validation-recent.verdicts": lambda: policy_variant_verdicts(
        "policy-validation-recent/policy"
    ),
    "policy-validation-120k.source": _src("policy-validation-120k/policy"),
    "policy-validation-120k.policies": lambda: policy_table(0, "policy-validation-120k/policy"),
    "policy-validation-120k.verdicts": lambda: policy_gamma_verdicts(
        "policy-validation-120k/policy"
    ),
    "policy-dynamics-120k.source": _src("policy-dynamics-120k/policy"),
    "policy-dynamics-120k.policies": lambda: policy_table(0, "policy-dynamics-120k/policy"),
    "policy-dynamics-120k.verdicts": lambda: policy_gamma_verdicts("policy-dynamics-120k/policy"),
    "ranking.source": _src("ranking"),
    "ranking.warm": ranking_warm,
    "ranking.warm-margins": lambda: ranking_margins(("random", "temporal"), "hybrid_margin"),
    "ranking.cold": lambda: ranking_simple("cold_films", coverage=True),
    "ranking.cold-margins": lambda: ranking_margins(("cold_films",), "margin_vs_random"),
    "ranking.thin": lambda: ranking_simple("thin_users", coverage=False),
    "ranking.thin-margins": lambda: ranking_margins(("thin_users",), "hybrid_margin"),
    "live.source": _src("live"),
    "live.table": live_table,
    "live.findings": live_findings,
    "bench.source": _src("bench"),
    "bench.body": bench_body,
    "load.row": load_row,
    "firstrun.source": _src("firstrun"),
    "firstrun.body": firstrun_body,
    "scale.source": _src("scale"),
    "scale.body": scale_body,
}


def render(text: str) -> str:
    """README text with every marked block re-rendered from its report."""
    unknown = sorted({m["name"] for m in BLOCK.finditer(text)} - set(BLOCKS))
    if unknown:
        raise KeyError(f"README.md names blocks that mmrec.readme does not know: {unknown}")
    return BLOCK.sub(
        lambda m: m.group(1) + BLOCKS[m["name"]]().rstrip("\n") + "\n" + m.group(4), text
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m mmrec.readme", description=__doc__.split("\n")[0])
    ap.add_argument("--check", action="store_true", help="exit 1 if README.md is out of date")
    ap.add_argument("--readme", type=Path, default=README)
    args = ap.parse_args(argv)
    text = args.readme.read_text()
    new = render(text)
    if args.check:
        if new != text:
            diff = difflib.unified_diff(
                text.splitlines(), new.splitlines(), "README.md", "rendered", lineterm=""
            )
            print("\n".join(diff))
            print(f"{args.readme} differs from reports/*.json: run python -m mmrec.readme")
            return 1
        print(f"{args.readme}: {len(BLOCK.findall(text))} blocks match their reports")
        return 0
    if new != text:
        atomic_write_text(args.readme, new)
    print(f"{args.readme}: {len(BLOCK.findall(new))} blocks rendered")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Evaluation reports for the Results page: the tables, charts and plain-word verdicts."""

from __future__ import annotations

from pathlib import Path

from mmrec.service import Recommender

# What each evaluation report holds: where its rows are, what labels them, what to chart.
REPORT_SPECS = {
    "modality": {
        "title": "Per-modality comparison (genre prediction)",
        "rows": "rows",
        "label": "variant",
        "metrics": ["f1_micro", "f1_macro", "subset_accuracy", "hamming_accuracy"],
        "command": "python -m mmrec evaluate modality --seeds 3",
    },
    "policy": {
        "title": "Policy: DQN vs baselines in the simulator",
        "rows": "policies",
        "label": "policy",
        "metrics": ["reward", "hit_rate", "cold_start_reward", "satisfaction", "watch_minutes"],
        "command": "python -m mmrec evaluate policy --seeds 3",
    },
    "ranking": {
        "title": "Ranking on held-out ratings",
        "rows": "rankers",
        "label": "ranker",
        "metrics": ["ndcg@10", "recall@10", "coverage@10"],
        "command": "python -m mmrec evaluate ranking",
    },
}


def report_kind(name: str) -> str | None:
    """'modality-demo-masked' -> 'modality'; unknown names -> None."""
    return next((k for k in REPORT_SPECS if name == k or name.startswith(k + "-")), None)


def metric_frame(rows, label: str = "name"):
    """Rows of metrics -> DataFrame indexed by ``label``; a metric given as {mean, ci95|std}
    becomes two columns: ``metric`` and ``metric ±``. Lists (per-seed values) are left out."""
    import pandas as pd

    items = rows.items() if isinstance(rows, dict) else ((r.get(label), r) for r in rows or [])
    out = {}
    for name, row in items:
        flat = {}
        for key, value in (row or {}).items():
            if isinstance(value, dict) and "mean" in value:
                flat[key] = value["mean"]
                spread = value.get("ci95", value.get("std"))
                if spread is not None:
                    flat[f"{key} ±"] = spread
            elif isinstance(value, (int, float)) and not isinstance(value, bool):
                flat[key] = value
        out[str(name)] = flat
    frame = pd.DataFrame.from_dict(out, orient="index")
    frame.index.name = label
    return frame


def report_frame(name: str, report: dict):
    """The main table of a report (None when the report has no rows we know)."""
    kind = report_kind(name)
    if kind is None or not isinstance(report, dict):
        return None
    spec = REPORT_SPECS[kind]
    rows = report.get(spec["rows"])
    if not rows and isinstance(report.get("protocols"), dict):  # ranking: one table per protocol
        rows = {
            f"{proto}: {name}": row
            for proto, p in report["protocols"].items()
            for name, row in (p.get("rankers") or {}).items()
        }
    if not rows:
        return None
    return metric_frame(rows, spec["label"])


def report_chart(frame, metric: str, title: str, highlight: str | None = None):
    """Bar chart of one metric with its ± as error bars (plotly figure)."""
    import plotly.graph_objects as go

    err = frame[f"{metric} ±"] if f"{metric} ±" in frame else None
    colors = ["#e50914" if str(i) == highlight else "#8ab4f8" for i in frame.index]
    fig = go.Figure(
        go.Bar(
            x=[str(i) for i in frame.index],
            y=frame[metric],
            error_y=dict(type="data", array=err.fillna(0).tolist()) if err is not None else None,
            marker_color=colors,
        )
    )
    fig.update_layout(title=title, yaxis_title=metric, margin=dict(l=10, r=10, t=40, b=10))
    return fig


def report_markdown(svc: Recommender, name: str) -> str | None:
    """The report's own Markdown rendering (reports/<name>.md) when present."""
    for folder in (Path("reports"), Path(__file__).resolve().parents[2] / "reports"):
        path = folder / f"{name}.md"
        if path.is_file():
            try:
                return path.read_text(encoding="utf-8")
            except OSError:
                return None
    return None


def _ci_word(diff: float, half: float | None) -> str:
    if half is None:
        return "better" if diff > 0 else "worse"
    if diff - half > 0:
        return "better"
    if diff + half < 0:
        return "worse"
    return "tie, the 95% CI includes 0"


def report_verdict(kind: str, report: dict) -> str | None:
    """One paragraph in plain words from a report's own numbers: what wins, what loses, and
    how sure that is. None when the report lacks the fields (older formats)."""
    try:
        if kind == "modality":
            fb = report["fused_vs_best_single"]["f1_micro"]
            fused = next(r for r in report["rows"] if str(r["variant"]).startswith("fused"))
            boot = fb.get("bootstrap") or {}
            sure = (
                " (bootstrap 95% CI excludes 0)"
                if boot.get("ci_excludes_zero")
                else " (within the seed spread or a CI that includes 0: not a clear win)"
                if not fb.get("holds")
                else ""
            )
            lead = "leads" if fb["margin"] >= 0 else "trails"
            return (
                f"Fusing the three modalities gives micro-F1 {fused['f1_micro']['mean']:.3f}: it "
                f"{lead} the best single modality ({fb['best_single']}) by "
                f"{100 * abs(fb['margin']):.1f} points{sure}. Rows are genre prediction from "
                "each input alone and fused."
            )
        if kind == "policy":
            parts = []
            for base, lift in report["lifts"].items():
                sat = lift["satisfaction"]
                word = _ci_word(sat["diff"], sat.get("diff_ci95"))
                parts.append(f"{base} {100 * sat['relative']:+.1f}% ({word})")
            return (
                "The DQN's satisfaction against each baseline in the simulator (paired over the "
                "same simulated users): " + "; ".join(parts) + ". A simulator we wrote is weak "
                "evidence: see the ranking section for real ratings."
            )
        if kind == "ranking":
            lines = []
            for proto, p in report["protocols"].items():
                rankers = {
                    n: r["ndcg@10"]["mean"]
                    for n, r in (p.get("rankers") or {}).items()
                    if isinstance(r.get("ndcg@10"), dict)
                }
                if not rankers:
                    continue
                best = max(rankers, key=rankers.get)
                text = f"{proto}: best NDCG@10 {best} {rankers[best]:.3f}"
                if "dqn" in rankers and best != "dqn":
                    times = rankers[best] / rankers["dqn"] if rankers["dqn"] > 0 else float("inf")
                    text += f", the DQN alone {rankers['dqn']:.4f} ({times:.0f}x lower)"
                lines.append(text)
            return "Full ranking over every film on held-out ratings: " + "; ".join(lines) + "."
    except (KeyError, TypeError, StopIteration, ValueError, ZeroDivisionError):
        return None
    return None


def report_data_dir(report: dict) -> str | None:
    """The data folder a report was written for: its ``data_dir`` field, else the ``--data``
    argument of its recorded command; None when it records neither."""
    import shlex

    if not isinstance(report, dict):
        return None
    if report.get("data_dir"):
        return str(report["data_dir"])
    try:
        args = shlex.split(str(report.get("command") or ""))
    except ValueError:
        return None
    for i, arg in enumerate(args):
        if arg == "--data" and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith("--data="):
            return arg.split("=", 1)[1]
    return None


def same_folder(a: str | None, b: str | None) -> bool:
    """True when two folder names point at the same place (relative ones from the working
    directory, as the commands that wrote the reports ran there)."""
    if not a or not b:
        return False
    try:
        return Path(a).resolve() == Path(b).resolve()
    except OSError:
        return False


def find_reports(svc: Recommender) -> dict:
    """reports/*.json from the working folder, else from the repository's reports/."""
    found = svc.reports()
    if not found:
        repo_reports = Path(__file__).resolve().parents[2] / "reports"
        found = svc.reports(repo_reports)
    return found


def report_for_folder(reports: dict, name: str, data_dir: str) -> tuple[dict | None, str | None]:
    """``(report, None)`` when ``reports[name]`` was written for ``data_dir``; ``(None,
    folder)`` when it was written for another folder (or records none: ``"folder not
    recorded"``); ``(None, None)`` when there is no such report. The Learning page, like the
    Results page, never shows one catalog's evaluation as if it were another's."""
    report = reports.get(name)
    if not report:
        return None, None
    folder = report_data_dir(report)
    if same_folder(folder, data_dir):
        return report, None
    return None, folder or "folder not recorded"

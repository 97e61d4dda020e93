"""Paired bootstrap over movies for fused vs best single (modality table): the weighted
metrics equal the plain ones on resampled rows, and the interval says what it should on
cases whose answer is known."""

import numpy as np
import pytest

from mmrec.eval.metrics import (
    macro_roc_auc,
    multilabel_report,
    precision_recall_f1,
    resample_counts,
    subset_accuracy,
    threshold_predictions,
    weighted_classification_metrics,
)
from mmrec.eval.modality import METRICS
from mmrec.eval.modality_compare import (
    COMPARED,
    Pooled,
    _compare,
    _comparisons,
    bootstrap_differences,
    paired_bootstrap,
)
from mmrec.eval.modality_report import render_markdown


def full_report(labels, pred, scores) -> dict[str, float]:
    """Every table metric the way evaluate_modality computes them for one seed."""
    report = multilabel_report(labels, pred)
    report["roc_auc_macro"] = macro_roc_auc(labels, scores)
    return report


def direct_metrics(labels, pred, scores) -> dict[str, float]:
    """The comparison's metrics, unresampled."""
    return {m: v for m, v in full_report(labels, pred, scores).items() if m in COMPARED}


def noisy_run(labels, noise, rng) -> Pooled:
    """Scores rounded to 2 decimals so ties occur; predictions at 0.5 (+ the top genre)."""
    scores = np.round(np.clip(0.25 + 0.5 * labels + rng.normal(0, noise, labels.shape), 0, 1), 2)
    return Pooled(labels, threshold_predictions(scores, 0.5), scores)


def random_labels(rng, n=120, g=5, rare=None) -> np.ndarray:
    labels = (rng.random((n, g)) < 0.3).astype(np.int8)
    labels[labels.sum(1) == 0, 0] = 1
    if rare is not None:  # a genre only two movies have: often absent from a resample
        labels[:, rare] = 0
        labels[:2, rare] = 1
    return labels


# ----------------------------------------------------------------------------- weighted metrics


def test_resample_counts_by_hand():
    counts = resample_counts([[0, 0, 2], [3, 1, 1]], 4)
    assert counts.tolist() == [[2, 0, 1, 0], [0, 2, 0, 1]]
    assert resample_counts(np.arange(3), 3).tolist() == [[1, 1, 1]]  # 1-d: one resample


def test_identity_resample_equals_the_direct_metrics():
    rng = np.random.default_rng(0)
    labels = random_labels(rng, rare=4)
    run = noisy_run(labels, 0.3, rng)
    weighted = weighted_classification_metrics(
        run.labels, run.pred, run.scores, resample_counts(np.arange(len(labels))[None], 120)
    )
    for metric, value in direct_metrics(*run[:3]).items():
        assert weighted[metric].shape == (1,)
        assert weighted[metric][0] == pytest.approx(value, abs=1e-12), metric


def test_weighted_metrics_equal_the_metrics_of_materialised_resamples():
    rng = np.random.default_rng(1)
    labels = random_labels(rng, rare=4)
    labels[:, 3] = 1  # every movie has genre 3: one class, so AUC must skip it
    run = noisy_run(labels, 0.35, rng)
    idx = rng.integers(0, len(labels), size=(30, len(labels)))
    weighted = weighted_classification_metrics(
        run.labels, run.pred, run.scores, resample_counts(idx, len(labels))
    )
    dropped_rare = 0
    for b, rows in enumerate(idx):
        y, p, s = run.labels[rows], run.pred[rows], run.scores[rows]
        dropped_rare += not y[:, 4].any()
        expected = {
            "f1_micro": precision_recall_f1(y, p, "micro")[2],
            # macro over the genres present among the resampled movies, as the main table
            "f1_macro": precision_recall_f1(y, p, "macro")[2],
            "subset_accuracy": subset_accuracy(y, p),
            "roc_auc_macro": macro_roc_auc(y, s),
        }
        for metric, value in expected.items():
            assert weighted[metric][b] == pytest.approx(value, abs=1e-12), (metric, b)
    assert dropped_rare > 0  # the absent-genre path was exercised


def test_weighted_auc_counts_ties_half_and_skips_one_class():
    labels = np.array([[1, 1], [0, 1], [1, 1], [0, 1]])
    scores = np.array([[0.5, 0.1], [0.5, 0.2], [0.9, 0.3], [0.1, 0.4]])
    pred = threshold_predictions(scores, 0.5)
    # genre 0: pairs (.5,.5) tie -> 0.5, (.5,.1) 1, (.9,.5) 1, (.9,.1) 1 -> 3.5/4; genre 1 skipped
    out = weighted_classification_metrics(labels, pred, scores, np.ones((1, 4)))
    assert out["roc_auc_macro"][0] == pytest.approx(3.5 / 4)
    # drop movie 0 (weight 0), count movie 3 twice: (.9,.5) 1, (.9,.1) x2 -> 3/3
    out = weighted_classification_metrics(labels, pred, scores, np.array([[0, 1, 1, 2]]))
    assert out["roc_auc_macro"][0] == pytest.approx(1.0)
    # only positives left: no genre has both classes -> undefined, not 0
    out = weighted_classification_metrics(labels, pred, scores, np.array([[1, 0, 1, 0]]))
    assert np.isnan(out["roc_auc_macro"][0])


# ----------------------------------------------------------------------------- paired bootstrap


def perfect_and_wrong(n=200, g=4, seeds=3):
    """A fused model right on every movie and a single modality wrong on every movie."""
    rng = np.random.default_rng(2)
    labels = random_labels(rng, n, g)
    fused, single = [], []
    for _ in range(seeds):
        scores = np.where(labels == 1, 0.8, 0.2) + rng.uniform(-0.1, 0.1, labels.shape)
        fused.append(Pooled(labels, labels.copy(), scores))
        # the complement of the true set: every genre of every movie wrong
        single.append(Pooled(labels, 1 - labels, rng.uniform(0, 1, labels.shape)))
    return fused, single


def test_fused_better_on_every_movie_gives_an_interval_above_zero():
    fused, single = perfect_and_wrong()
    out = paired_bootstrap(fused, {m: single for m in COMPARED}, resamples=300)
    for metric, boot in out.items():
        assert boot["resamples"] == 300
        assert boot["ci95"][0] > 0 and boot["ci95"][0] <= boot["mean"] <= boot["ci95"][1]
        assert boot["p_fused_wins"] == 1.0 and boot["ci_excludes_zero"], metric
    assert out["subset_accuracy"]["mean"] == pytest.approx(1.0)  # 1 - 0 on every resample


def test_fused_worse_gives_an_interval_below_zero():
    fused, single = perfect_and_wrong()
    out = paired_bootstrap(single, {m: fused for m in COMPARED}, resamples=300)
    for metric, boot in out.items():
        assert boot["ci95"][1] < 0 and boot["p_fused_wins"] == 0.0, metric
        assert boot["ci_excludes_zero"]


def test_identical_predictions_give_zero_and_a_zero_interval():
    rng = np.random.default_rng(3)
    labels = random_labels(rng)
    runs = [noisy_run(labels, 0.3, rng) for _ in range(2)]
    copies = [Pooled(*(a.copy() for a in r[:3])) for r in runs]  # equal values, other arrays
    out = paired_bootstrap(runs, {m: copies for m in COMPARED}, resamples=200)
    for boot in out.values():
        assert boot["mean"] == 0.0 and boot["ci95"] == [0.0, 0.0]
        assert boot["p_fused_wins"] == 0.0 and not boot["ci_excludes_zero"]


def test_bootstrap_is_deterministic_and_seeded():
    rng = np.random.default_rng(4)
    labels = random_labels(rng, rare=4)
    fused = [noisy_run(labels, 0.3, rng) for _ in range(3)]
    single = [noisy_run(labels, 0.35, rng) for _ in range(3)]
    best = {m: single for m in COMPARED}
    first = paired_bootstrap(fused, best, resamples=150)
    assert paired_bootstrap(fused, best, resamples=150) == first
    assert paired_bootstrap(fused, best, resamples=150, seed=1) != first


def test_identity_resample_is_the_mean_of_the_per_seed_differences():
    rng = np.random.default_rng(5)
    labels = random_labels(rng, rare=4)
    fused = [noisy_run(labels, 0.3, rng) for _ in range(3)]
    text = [noisy_run(labels, 0.4, rng) for _ in range(3)]
    image = [noisy_run(labels, 0.35, rng) for _ in range(3)]
    best = {"f1_micro": text, "f1_macro": image, "subset_accuracy": text, "roc_auc_macro": image}
    out = bootstrap_differences(fused, best, np.arange(len(labels))[None])
    for metric, runs in best.items():
        per_seed = [
            direct_metrics(*f[:3])[metric] - direct_metrics(*b[:3])[metric]
            for f, b in zip(fused, runs)
        ]
        assert out[metric].shape == (1,)
        assert out[metric][0] == pytest.approx(np.mean(per_seed), abs=1e-12), metric


def comparison_rows(fused: list[Pooled], single: list[Pooled]) -> list[dict]:
    """Rows as evaluate_modality builds them, from pooled predictions: two networks and the
    text probe (equal to the text network here)."""
    rows = []
    for name, kind, modalities, runs in (
        ("text only", "network", ["text"], single),
        ("linear probe: text", "linear probe", ["text"], single),
        ("fused (text + image)", "network", ["text", "image"], fused),
    ):
        per_seed = [full_report(*r[:3]) for r in runs]
        summary = {
            m: {"mean": float(np.mean([s[m] for s in per_seed])), "std": 0.0}
            for m in METRICS
            if m in per_seed[0]
        }
        rows.append(
            {
                "variant": name,
                "kind": kind,
                "modalities": modalities,
                "masked_text": False,
                "scored_on": "films with text and image",
                "n_scored": len(runs[0].labels),
                "genres_counted": runs[0].labels.shape[1],
                "test_coverage": 1.0,
                **summary,
                "ap_macro": {"mean": 0.5, "std": 0.0},
                "per_seed": per_seed,
            }
        )
    return rows


def test_comparisons_report_the_bootstrap_the_targets_and_zero_switches_it_off():
    fused, single = perfect_and_wrong(seeds=2)
    rows = comparison_rows(fused, single)
    pooled = {
        table: {"text only": single, "linear probe: text": single, "fused (text + image)": fused}
        for table in ("rows", "subset")
    }
    comp = _comparisons(rows, rows, pooled, bootstrap=100)
    versus = comp["fused_vs_single"]["versus"]["text only"]
    for metric in COMPARED:
        boot = versus[metric]["bootstrap"]
        assert set(boot) >= {"resamples", "mean", "ci95", "p_fused_wins", "ci_excludes_zero"}
        assert boot["resamples"] == 100 and boot["p_fused_wins"] == 1.0
        # the bootstrap centres on the reported margin (same statistic, resampled movies)
        assert abs(boot["mean"] - versus[metric]["margin"]) < 0.1
    # the text network equals its probe: margin 0, reaches it; fused is far above text
    text_vs_probe = comp["network_vs_probe"]["text only"]
    assert text_vs_probe["probe"] == "linear probe: text"
    assert text_vs_probe["f1_micro"]["margin"] == 0.0 and text_vs_probe["f1_micro"]["reaches"]
    targets = comp["targets"]
    assert targets["single_rows_reach_probe"]["holds"]
    assert targets["fused_micro_f1_text_plus_4"]["holds"]
    assert targets["fused_macro_f1_above_text"]["holds"]
    # the other way round every target fails
    swapped = _comparisons(
        comparison_rows(single, fused),
        comparison_rows(single, fused),
        {
            t: {"text only": fused, "linear probe: text": fused, "fused (text + image)": single}
            for t in ("rows", "subset")
        },
        bootstrap=100,
    )
    assert not swapped["targets"]["fused_micro_f1_text_plus_4"]["holds"]
    assert not swapped["targets"]["fused_macro_f1_above_text"]["holds"]
    off = _compare(rows[2], rows[0], fused, single, COMPARED, bootstrap=0)
    assert all("bootstrap" not in c for c in off.values())
    # without a bootstrap a target that needs the CI cannot be met
    no_ci = _comparisons(rows, rows, pooled, bootstrap=0)
    assert not no_ci["targets"]["fused_micro_f1_text_plus_4"]["holds"]

    result = {
        "machine": {"host": "h", "platform": "p", "cpu_count": 2, "device": "cpu", "torch": "t"},
        "protocol": {"folds": 5, "val_share": 0.15},
        "command": "test",
        "commit": "abc",
        "data_dir": "d",
        "n_movies": 200,
        "n_evaluated": 200,
        "n_every_modality": 200,
        "every_modality": ["text", "image"],
        "genres": ["A", "B", "C", "D"],
        "seeds": [0, 1],
        "created": "now",
        "seconds": 1.0,
        "audio_kind": None,
        "rows": rows,
        "subset_rows": rows,
        "threshold_rule": "rule",
        "macro_rule": "macro rule",
        **comp,
    }
    md = render_markdown(result)
    line = next(x for x in md.splitlines() if x.startswith("- vs text only:"))
    assert "subset_accuracy +100.0 (per-seed +100.0, +100.0), 95% CI [+100.0, +100.0]" in line
    assert "(excludes 0, 100 resamples)" in line
    assert "- fused_micro_f1_text_plus_4: MET" in md
    assert "text only vs linear probe: text: reaches its probe" in md
    assert "sampling uncertainty" in md and "training and fold noise" in md

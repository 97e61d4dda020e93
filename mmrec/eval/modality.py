"""Per-modality results table (document Table 5.1): text, image, audio and fused models.

Each variant is a fusion model trained on genre labels with only its modalities switched on.
The protocol is repeated k-fold cross-validation by *movie*: per seed the evaluable movies are
shuffled and cut into ``folds`` folds (default 5). Each fold is the test set once; of the other
movies, ``val_share`` of the catalog (default 15%) is held out for early stopping and the
decision threshold, and the rest train. The test predictions of all folds are pooled, so every
evaluable movie is scored exactly once per seed, and the seed's metrics are computed on all of
them (a single 70/15/15 split scored only 15% of the movies and left a large seed-to-seed
spread). Every variant within a seed uses the same folds, so differences between rows are
paired. Test movies never influence their own model or threshold. Every number is a mean +-
sample standard deviation over the seeds.

That seed spread only measures training and fold noise on one fixed set of movies. The
fused-vs-best-single comparison therefore adds a paired bootstrap over movies
(:func:`paired_bootstrap`): resample the evaluated movies, score both models on the same draw,
and read the interval of the difference, i.e. the sampling uncertainty of having only N movies.

Wikipedia leads usually name the genre outright ("...is a 2014 American musical romantic
comedy-drama film"), so a text classifier partly reads its labels. ``mask_genre_words``
removes those words; the caller computes text features from masked synopses and passes them
as ``masked_features`` to get the honest rows.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import re
import shlex
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

import numpy as np

from mmrec.atomic import atomic_write_text
from mmrec.config import FusionConfig, pick_device
from mmrec.eval.metrics import (
    best_threshold,
    macro_roc_auc,
    multilabel_report,
    resample_counts,
    threshold_predictions,
    weighted_classification_metrics,
)
from mmrec.models.fusion import MODALITIES
from mmrec.models.train import (
    branch_outputs,
    check_alignment,
    genre_probabilities,
    present_matrix,
    train_fusion,
)

FOLDS = 5  # cross-validation folds per seed: each movie is a test movie once per seed
VAL_SHARE = 0.15  # share of all evaluable movies held out inside each fold for early stopping
METRICS = (
    "subset_accuracy",
    "hamming_accuracy",
    "precision_micro",
    "recall_micro",
    "f1_micro",
    "precision_macro",
    "recall_macro",
    "f1_macro",
    "roc_auc_macro",
)
COMPARED = ("f1_micro", "f1_macro", "subset_accuracy", "roc_auc_macro")  # fused vs best single
BOOTSTRAP = 1000  # paired bootstrap resamples of the movies for fused vs best single; 0: off
BOOTSTRAP_SEED = 0  # fixed, so the same predictions always give the same interval

# ----------------------------------------------------------------------------- genre masking

# Words that name or paraphrase a genre, keyed by the lower-cased genre label. Only the
# entries of genres in the catalog's vocabulary are masked; unknown labels mask their own name.
GENRE_WORDS: dict[str, tuple[str, ...]] = {
    "action": ("action",),
    "adventure": ("adventure", "adventures"),
    "animation": ("animation", "animated", "anime", "cartoon", "cartoons", "stop-motion"),
    "children": ("children's", "childrens", "children", "kids", "family"),
    "comedy": (
        "comedy",
        "comedies",
        "comedic",
        "comic",
        "rom-com",
        "romcom",
        "parody",
        "satire",
        "satirical",
        "slapstick",
        "sitcom",
    ),
    "crime": ("crime", "crimes", "gangster", "gangsters", "heist"),
    "documentary": ("documentary", "documentaries", "docudrama", "mockumentary"),
    "drama": ("drama", "dramas", "dramatic", "melodrama", "melodramatic", "docudrama", "dramedy"),
    "family": ("family", "families"),
    "fantasy": ("fantasy", "fantasies", "fantastical"),
    "film-noir": ("film noir", "film-noir", "neo-noir", "noir"),
    "horror": ("horror", "slasher", "splatter"),
    "imax": ("imax",),
    "musical": ("musical", "musicals"),
    "mystery": ("mystery", "mysteries", "whodunit"),
    "romance": ("romance", "romances", "romantic"),
    "sci-fi": ("science fiction", "science-fiction", "sci-fi", "scifi"),
    "science fiction": ("science fiction", "science-fiction", "sci-fi", "scifi"),
    "thriller": ("thriller", "thrillers", "suspense"),
    "war": ("war", "wars", "wartime"),
    "western": ("western", "westerns"),
}


def genre_pattern(genre_vocab: Iterable[str]) -> re.Pattern | None:
    """One case-insensitive regex matching runs of genre words (``comedy-drama``,
    ``action/adventure``, ``musical romantic comedy``) for the given vocabulary."""
    forms: set[str] = set()
    for genre in genre_vocab:
        key = genre.strip().lower()
        if not key or key.startswith("("):  # MovieLens "(no genres listed)"
            continue
        forms.update(GENRE_WORDS.get(key, (key, key + "s")))
    if not forms:
        return None
    # Longest first so "science fiction" wins over a shorter overlapping form; spaces inside a
    # form match any whitespace or hyphen ("science-fiction", "film  noir").
    alternatives = "|".join(
        re.escape(f).replace(r"\ ", r"[\s\-]+") for f in sorted(forms, key=len, reverse=True)
    )
    word = rf"(?:{alternatives})"
    return re.compile(rf"(?<![\w']){word}(?:\s*[-/]\s*{word})*(?![\w'])", re.IGNORECASE)


def mask_genre_words(text: str, genre_vocab: Iterable[str], replacement: str = "") -> str:
    """``text`` with every word naming one of ``genre_vocab`` removed (or replaced).

    >>> mask_genre_words("Up is a 2014 American musical romantic comedy-drama film.",
    ...                  ["Comedy", "Drama", "Musical", "Romance"])
    'Up is a 2014 American film.'
    """
    pattern = genre_pattern(genre_vocab)
    if pattern is None or not text:
        return text
    out = pattern.sub(replacement, text)
    out = re.sub(r"[ \t]{2,}", " ", out)  # the gap a removed word leaves
    out = re.sub(r" +([,.;:!?)])", r"\1", out)
    return out.strip()


# ----------------------------------------------------------------------------- evaluation


@dataclasses.dataclass
class Variant:
    name: str  # row label in the table
    modalities: tuple[str, ...]  # branches switched on
    features: object  # ItemFeatures to train and test on


class Pooled(NamedTuple):
    """One variant's pooled out-of-fold test predictions of one seed (evaluated movies only)."""

    labels: np.ndarray  # (N, G) 0/1 true genres
    pred: np.ndarray  # (N, G) 0/1 thresholded predictions
    scores: np.ndarray  # (N, G) genre probabilities


def _variants(features, masked_features, cfg: FusionConfig) -> tuple[list[Variant], dict[str, str]]:
    present = present_matrix(features)
    available = tuple(
        m for col, m in enumerate(MODALITIES) if m in cfg.modalities and present[:, col].any()
    )
    skipped = {
        m: "no movie in the catalog has this modality"
        for col, m in enumerate(MODALITIES)
        if not present[:, col].any()
    }
    variants = [Variant(f"{m} only", (m,), features) for m in available]
    if len(available) > 1:
        variants.append(Variant("fused (" + " + ".join(available) + ")", available, features))
    if masked_features is not None and "text" in available:
        _check_same_items(features, masked_features)
        variants.append(Variant("text only, genre words masked", ("text",), masked_features))
        if len(available) > 1:
            variants.append(Variant("fused, genre words masked", available, masked_features))
    return variants, skipped


def _check_same_items(features, masked_features) -> None:
    ids = np.asarray(features.movie_ids, dtype=np.int64)
    masked_ids = np.asarray(masked_features.movie_ids, dtype=np.int64)
    if not np.array_equal(ids, masked_ids):
        raise ValueError(
            "masked_features must list the same movies in the same order as features "
            f"({len(masked_ids)} vs {len(ids)} rows)"
        )


def _summary(values: Sequence[float]) -> dict[str, float]:
    arr = np.asarray(values, dtype=np.float64)
    return {
        "mean": float(arr.mean()),
        # Sample std (ddof=1): the seed-to-seed spread of a new run, not of these 3 numbers.
        "std": float(arr.std(ddof=1)) if len(arr) > 1 else 0.0,
    }


def _coverage(present: np.ndarray, idx: np.ndarray, modalities: tuple[str, ...]) -> float:
    cols = [MODALITIES.index(m) for m in modalities]
    return float(present[idx][:, cols].any(1).mean()) if len(idx) else float("nan")


def cv_folds(
    n_items: int, folds: int = FOLDS, val_share: float = VAL_SHARE, seed: int = 0
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """``folds`` (train, validation, test) index triples into ``range(n_items)``, sorted each.

    The items are permuted by ``seed`` and cut into ``folds`` near-equal test folds, so the
    test parts partition the items. Fold k validates on the first ``round(val_share *
    n_items)`` items of the folds after it (k+1, k+2, ... wrapping around) and trains on the
    rest: the validation parts rotate too, instead of all coming from one fold.
    """
    if int(folds) != folds or folds < 2:
        raise ValueError(
            f"folds must be an integer >= 2 (k-fold cross-validation tests each movie once), "
            f"got {folds!r}"
        )
    folds = int(folds)
    if n_items < folds:
        raise ValueError(f"{folds} folds need at least {folds} items, got {n_items}")
    n_val = int(round(val_share * n_items))
    largest_test = -(-n_items // folds)  # ceil: np.array_split puts the extra items first
    if n_val < 1 or n_items - largest_test - n_val < 2:
        raise ValueError(
            f"val_share {val_share} leaves {n_val} validation and "
            f"{n_items - largest_test - n_val} training items of {n_items} with {folds} folds; "
            "need at least 1 and 2"
        )
    parts = np.array_split(np.random.default_rng(seed).permutation(n_items), folds)
    triples = []
    for k in range(folds):
        rest = np.concatenate(parts[k + 1 :] + parts[:k])  # later folds first: rotating val
        triples.append((np.sort(rest[n_val:]), np.sort(rest[:n_val]), np.sort(parts[k])))
    return triples


def evaluate_modality(
    catalog,
    features,
    cfg: FusionConfig | None = None,
    seeds: Sequence[int] = (0, 1, 2),
    out_dir: str | os.PathLike | None = Path("reports"),
    tag: str = "",
    masked_features=None,
    command: str | None = None,
    progress: Callable[[int, int, str], None] | None = None,
    folds: int = FOLDS,
    val_share: float = VAL_SHARE,
    bootstrap: int = BOOTSTRAP,
) -> dict:
    """Cross-validate text-only, image-only, audio-only and fused models over ``seeds``.

    ``cfg`` is the :class:`FusionConfig` (a whole ``Config`` is accepted too). Per seed,
    ``folds``-fold cross-validation by movie (:func:`cv_folds`, ``val_share`` of the movies as
    validation inside each fold); the seed's metrics are computed on the pooled out-of-fold
    predictions of every evaluable movie. Modalities no movie has are reported as n/a and
    skipped. ``masked_features``: optional features whose text was computed from
    :func:`mask_genre_words` synopses; adds masked rows. Writes ``out_dir/modality{tag}.json``
    and ``.md`` (unless ``out_dir`` is None) and returns the JSON dict. ``progress(done, total,
    stage)`` is called after each trained model (``folds`` per variant and seed).
    ``bootstrap``: resamples of the paired bootstrap over movies in the fused-vs-best-single
    comparison (:func:`paired_bootstrap`); 0 skips it.
    """
    started = time.perf_counter()
    cfg = getattr(cfg, "fusion", cfg) or FusionConfig()
    check_alignment(features, catalog)
    seeds = list(seeds)
    if not seeds:
        raise ValueError("evaluate_modality needs at least one seed")
    labels = np.asarray(catalog.genre_matrix(), dtype=np.float32)  # (N, G)
    present = present_matrix(features)  # (N, 3)
    pool = np.flatnonzero((labels.sum(1) > 0) & present.any(1))
    if int(bootstrap) != bootstrap or bootstrap < 0:
        raise ValueError(f"bootstrap must be an integer >= 0, got {bootstrap!r}")
    if len(pool) < 20:
        raise ValueError(
            f"catalog {catalog.data_dir}: only {len(pool)} movies have a genre and a modality; "
            "the modality table needs at least 20"
        )
    cv_folds(len(pool), folds, val_share, seeds[0])  # bad folds / val_share fail before training
    variants, skipped = _variants(features, masked_features, cfg)
    total = len(variants) * len(seeds) * folds
    per_seed: dict[str, list[dict]] = {v.name: [] for v in variants}
    # Per variant, per seed: the pooled (labels, predictions, scores) of the evaluated movies,
    # for the bootstrap; kept in memory only, never written to the JSON.
    pooled: dict[str, list[Pooled]] = {v.name: [] for v in variants}
    done = 0
    for seed in seeds:
        # Catalog rows of each fold, shared by every variant of this seed (paired rows).
        splits = [
            tuple(pool[p] for p in parts) for parts in cv_folds(len(pool), folds, val_share, seed)
        ]
        for variant in variants:
            vcfg = dataclasses.replace(cfg, modalities=variant.modalities)
            probs_oof = np.full(labels.shape, np.nan, dtype=np.float32)  # (N, G) out-of-fold
            pred_oof = np.zeros(labels.shape, dtype=np.int64)  # (N, G)
            fold_runs = []
            for k, (train_part, val_part, test_part) in enumerate(splits):
                model = train_fusion(
                    variant.features,
                    catalog,
                    vcfg,
                    seed=seed,
                    train_idx=train_part,
                    val_idx=val_part,
                )
                branches = branch_outputs(model, variant.features)
                probs = genre_probabilities(model, branches, present_matrix(variant.features))
                # Threshold from this fold's validation movies only; its test movies are
                # touched once, below.
                threshold = best_threshold(labels[val_part], probs[val_part])
                probs_oof[test_part] = probs[test_part]
                pred_oof[test_part] = threshold_predictions(probs[test_part], threshold)
                fold_runs.append(
                    {
                        "fold": k,
                        "threshold": threshold,
                        "epochs": model.history["epochs"],
                        "train_seconds": round(model.history["seconds"], 2),
                        "n_train": int(model.history["n_train"]),
                        "n_val": int(model.history["n_val"]),
                        "n_test": len(test_part),
                    }
                )
                done += 1
                if progress is not None:
                    progress(done, total, variant.name)
            # One set of metrics per seed on the pooled predictions: every movie counted once.
            report = multilabel_report(labels[pool], pred_oof[pool])
            # Pools the scores of the folds' models; if their scales differ this is slightly
            # conservative compared with averaging per-fold AUCs.
            report["roc_auc_macro"] = macro_roc_auc(labels[pool], probs_oof[pool])
            report.update(
                seed=seed,
                n_test=int(len(pool)),
                test_coverage=_coverage(present, pool, variant.modalities),
                train_seconds=round(sum(f["train_seconds"] for f in fold_runs), 2),
                folds=fold_runs,
            )
            per_seed[variant.name].append(report)
            pooled[variant.name].append(Pooled(labels[pool], pred_oof[pool], probs_oof[pool]))

    rows = []
    for variant in variants:
        runs = per_seed[variant.name]
        rows.append(
            {
                "variant": variant.name,
                "modalities": list(variant.modalities),
                "masked_text": variant.features is masked_features and masked_features is not None,
                "test_coverage": float(np.mean([r["test_coverage"] for r in runs])),
                **{m: _summary([r[m] for r in runs]) for m in METRICS},
                "per_seed": runs,
            }
        )
    for m in MODALITIES:
        if m in skipped:
            rows.append({"variant": f"{m} only", "modalities": [m], "na": skipped[m]})
    result = {
        "kind": "modality",
        "created": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "command": command or _invocation(),
        "data_dir": str(catalog.data_dir),
        "n_movies": int(catalog.n_movies) if hasattr(catalog, "n_movies") else len(labels),
        "n_evaluated": int(len(pool)),
        "genres": list(catalog.genres),
        "protocol": {
            "kind": "repeated k-fold",
            "folds": int(folds),
            "val_share": float(val_share),
            "unit": "movie",
        },
        "seeds": seeds,
        "audio_kind": getattr(features, "audio_kind", None),
        "machine": _machine(),
        "fusion_config": dataclasses.asdict(cfg),
        "threshold_rule": "one global threshold per fold maximising micro F1 on that fold's "
        "validation movies (grid 0.05..0.95); each movie also gets its most probable genre",
        "std": "sample standard deviation over seeds (ddof=1); each seed's value is computed "
        "on the pooled out-of-fold predictions of all evaluated movies",
        "rows": rows,
        "fused_vs_best_single": _comparison(rows, pooled, bootstrap),
        "seconds": round(time.perf_counter() - started, 1),
    }
    if out_dir is not None:
        out_dir = Path(out_dir)
        atomic_write_text(out_dir / f"modality{tag}.json", json.dumps(result, indent=2) + "\n")
        atomic_write_text(out_dir / f"modality{tag}.md", render_markdown(result))
    result["markdown"] = render_markdown(result)  # for the CLI to print; not in the JSON
    return result


def _comparison(
    rows: list[dict], pooled: dict[str, list[Pooled]] | None = None, bootstrap: int = BOOTSTRAP
) -> dict:
    """Fused vs the best single modality on the unmasked features, per metric of ``COMPARED``.

    ``holds`` is True when the fused mean beats the best single-modality mean by more than
    the larger of the two seed-to-seed standard deviations. The paired per-seed differences
    (same folds within a seed) are reported too. With ``pooled`` predictions and
    ``bootstrap`` > 0 each metric also gets a paired bootstrap over movies
    (:func:`paired_bootstrap`): the seed spread only measures training / fold noise on these
    movies, the bootstrap the uncertainty of having evaluated only these N movies.
    """
    out = {}
    scored = [r for r in rows if "na" not in r and not r["masked_text"]]
    fused = [r for r in scored if len(r["modalities"]) > 1]
    singles = [r for r in scored if len(r["modalities"]) == 1]
    if not fused or not singles:
        return {"note": "needs a fused row and at least one single-modality row"}
    fused_row = fused[0]
    best_of = {m: max(singles, key=lambda r: r[m]["mean"]) for m in COMPARED}
    boot: dict[str, dict] = {}
    if pooled is not None and bootstrap > 0:
        started = time.perf_counter()
        boot = paired_bootstrap(
            pooled[fused_row["variant"]],
            {m: pooled[best_of[m]["variant"]] for m in COMPARED},
            resamples=bootstrap,
        )
        seconds = round(time.perf_counter() - started, 2)
        for summary in boot.values():
            summary["seconds"] = seconds  # the whole bootstrap, all metrics together
    for metric in COMPARED:
        best = best_of[metric]
        margin = fused_row[metric]["mean"] - best[metric]["mean"]
        spread = max(fused_row[metric]["std"], best[metric]["std"])
        diffs = [f[metric] - b[metric] for f, b in zip(fused_row["per_seed"], best["per_seed"])]
        out[metric] = {
            "best_single": best["variant"],
            "margin": margin,
            "spread": spread,
            "paired_differences": diffs,
            "holds": bool(margin > spread),
        }
        if metric in boot:
            out[metric]["bootstrap"] = boot[metric]
    return out


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
                run.labels, run.pred, run.scores, counts
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


def _invocation() -> str:
    """How this process was started, as a user would type it (``python -m mmrec ...``)."""
    argv = list(sys.argv)
    if argv and Path(argv[0]).parts[-2:] == ("mmrec", "__main__.py"):
        return shlex.join(["python", "-m", "mmrec", *argv[1:]])
    return shlex.join(["python", *argv])


def _machine() -> dict:
    import torch

    return {
        "host": platform.node(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "device": pick_device(),
        "cpu_count": os.cpu_count(),
    }


def _pct(summary: dict) -> str:
    return f"{100 * summary['mean']:.1f} ± {100 * summary['std']:.1f}"


def render_markdown(result: dict) -> str:
    """The Table 5.1 report as markdown."""
    machine = result["machine"]
    protocol = result["protocol"]
    lines = [
        "# Genre prediction by modality (Table 5.1)",
        "",
        f"- command: `{result['command']}`",
        f"- data folder: `{result['data_dir']}` ({result['n_movies']} movies, "
        f"{result['n_evaluated']} with a genre and at least one modality; "
        f"{len(result['genres'])} genres)",
        f"- protocol: {protocol['folds']}-fold cross-validation by movie (each movie tested "
        f"once per seed; {100 * protocol['val_share']:.0f}% of movies as validation inside each "
        "fold for early stopping and the threshold), folds re-drawn per seed; seeds "
        f"{', '.join(map(str, result['seeds']))}",
        f"- date: {result['created']}; machine: {machine['host']} ({machine['platform']}, "
        f"{machine['cpu_count']} CPUs, device {machine['device']}, torch {machine['torch']}); "
        f"took {result['seconds']} s",
        f"- audio features: {result['audio_kind']}",
        "",
        "Percent, mean ± std over seeds; each seed's value is computed on the pooled test "
        f"predictions of all {result['n_evaluated']} movies (every fold's test movies together). "
        "Subset accuracy = exact genre set; Hamming accuracy = share of correct (movie, genre) "
        "cells; micro pools all cells, macro averages genres present among the test movies. "
        "ROC-AUC (macro) = mean per-genre ROC-AUC of the scores, threshold-free. Coverage = "
        "share of test movies that have the row's modality.",
        "",
        "| Model | Subset acc. | Hamming acc. | Recall (micro) | F1 (micro) | Recall (macro) "
        "| F1 (macro) | ROC-AUC (macro) | Coverage |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in result["rows"]:
        if "na" in row:
            lines.append(
                f"| {row['variant']} | n/a | n/a | n/a | n/a | n/a | n/a | n/a | 0% ({row['na']}) |"
            )
            continue
        lines.append(
            f"| {row['variant']} | {_pct(row['subset_accuracy'])} | {_pct(row['hamming_accuracy'])} "
            f"| {_pct(row['recall_micro'])} | {_pct(row['f1_micro'])} | {_pct(row['recall_macro'])} "
            f"| {_pct(row['f1_macro'])} | {_pct(row['roc_auc_macro'])} "
            f"| {100 * row['test_coverage']:.0f}% |"
        )
    lines += ["", f"Decision threshold: {result['threshold_rule']}.", ""]
    comp = result["fused_vs_best_single"]
    if "note" in comp:
        lines.append(f"Fused vs best single modality: {comp['note']}.")
    else:
        lines.append("Fused vs best single modality (margin in points; spread = larger std):")
        lines.append("")
        for metric, c in comp.items():
            verdict = (
                "beats it by more than the spread"
                if c["holds"]
                else "does NOT beat it by more than the spread"
            )
            diffs = ", ".join(f"{100 * d:+.1f}" for d in c["paired_differences"])
            lines.append(
                f"- {metric}: fused {verdict} (best single: {c['best_single']}; margin "
                f"{100 * c['margin']:+.1f}, spread {100 * c['spread']:.1f}; per-seed {diffs})"
                + _bootstrap_text(c.get("bootstrap"))
            )
        boot = next((c["bootstrap"] for c in comp.values() if "bootstrap" in c), None)
        if boot is not None:
            lines += [
                "",
                "The paired bootstrap resamples the evaluated movies with replacement and scores "
                "fused and the best single modality on the same draw, averaging each draw's "
                "difference over the seeds: its interval measures the sampling uncertainty of "
                f"having only these {result['n_evaluated']} movies, while the seed spread above "
                "only measures training and fold noise on the same movies "
                f"(bootstrap took {boot.get('seconds', 0):.1f} s).",
            ]
    return "\n".join(lines) + "\n"


def _bootstrap_text(boot: dict | None) -> str:
    if not boot:
        return ""
    if "mean" not in boot:
        return f"; paired bootstrap over movies: {boot.get('note', 'not computed')}"
    lo, hi = boot["ci95"]
    verdict = "CI excludes 0" if boot["ci_excludes_zero"] else "CI includes 0"
    share = 100 * boot["p_fused_wins"]
    share_text = f"{share:.0f}%" if share in (0, 100) else f"{share:.1f}%"
    return (
        f"; paired bootstrap over movies: {100 * boot['mean']:+.1f} [{100 * lo:+.1f}, "
        f"{100 * hi:+.1f}] (95% CI; {verdict}), fused ahead in {share_text} of "
        f"{boot['resamples']} resamples"
    )

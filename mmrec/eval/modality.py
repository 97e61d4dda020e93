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
(:func:`mmrec.eval.modality_compare.paired_bootstrap`): resample the evaluated movies, score both models on the same draw,
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
import re
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

import numpy as np

from mmrec.atomic import atomic_write_text
from mmrec.config import FusionConfig
from mmrec.eval.metrics import (
    PREDICTION_CAP,
    eligible_genres,
    genre_thresholds,
    macro_average_precision,
    macro_roc_auc,
    multilabel_report,
    threshold_predictions,
)
from mmrec.eval.modality_compare import BOOTSTRAP, Pooled, _comparisons
from mmrec.eval.modality_report import _invocation, render_markdown
from mmrec.eval.probe import L2_GRID, linear_probe_probabilities
from mmrec.eval.probe import MAX_ITER as PROBE_MAX_ITER
from mmrec.models.fusion import MODALITIES
from mmrec.models.inference import branch_outputs, genre_probabilities, present_matrix
from mmrec.models.train import check_alignment, train_fusion
from mmrec.provenance import git_commit, machine_info

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
    "ap_macro",
)
PROBE = "linear probe"  # row-name prefix of the probe rows
# Macro averages count genres with at least this many positive films among a row's scored
# films: genres with a handful of films get F1 0 or 1 by luck (the 1-10 posters).
MIN_GENRE_POSITIVES = 50

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
    modalities: tuple[str, ...]  # branches switched on (network) / feature blocks (probe)
    features: object  # ItemFeatures to train and test on
    kind: str = "network"  # "network" (the fusion model) or "probe" (logistic regression)
    masked: bool = False  # text computed from genre-masked synopses (``masked_features``)


class FoldOutput(NamedTuple):
    """One trained model of one fold: where it validates and tests, and what it predicts."""

    val: np.ndarray  # catalog rows of the fold's validation movies
    test: np.ndarray  # catalog rows of the fold's test movies
    probs: np.ndarray  # (N, G) genre probabilities for every catalog row
    info: dict  # epochs, training time, probe penalty ...


def _variants(features, masked_features, cfg: FusionConfig) -> tuple[list[Variant], dict[str, str]]:
    """Network rows (each modality, then fused), each followed by its linear-probe reference."""
    present = present_matrix(features)
    available = tuple(
        m for col, m in enumerate(MODALITIES) if m in cfg.modalities and present[:, col].any()
    )
    skipped = {
        m: "no movie in the catalog has this modality"
        for col, m in enumerate(MODALITIES)
        if not present[:, col].any()
    }
    sets = [(features, False)]
    if masked_features is not None and "text" in available:
        _check_same_items(features, masked_features)
        sets.append((masked_features, True))
    variants = []
    for feats, masked in sets:
        suffix = ", genre words masked" if masked else ""
        for m in available:
            if masked and m != "text":
                continue  # the other modalities do not change with masking
            variants.append(Variant(f"{m} only{suffix}", (m,), feats, "network", masked))
            variants.append(Variant(f"{PROBE}: {m}{suffix}", (m,), feats, "probe", masked))
        if len(available) > 1:
            joined = " + ".join(available)
            variants.append(
                Variant(f"fused ({joined}){suffix}", available, feats, "network", masked)
            )
            variants.append(
                Variant(f"{PROBE}: {joined}{suffix}", available, feats, "probe", masked)
            )
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


def films_with(present: np.ndarray, modalities: Sequence[str], how: str = "all") -> np.ndarray:
    """``(N,)`` bool: rows of ``present (N, 3)`` with all (``how="all"``) or any of
    ``modalities``."""
    cols = present[:, [MODALITIES.index(m) for m in modalities]]
    return cols.all(1) if how == "all" else cols.any(1)


def _scored_on(modalities: Sequence[str], how: str) -> str:
    if len(modalities) == 1:
        return f"films with {modalities[0]}"
    joiner = " and " if how == "all" else " or "
    return "films with " + joiner.join(modalities)


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


def _fit_fold(variant: Variant, catalog, cfg: FusionConfig, labels, seed, train_part, val_part):
    """Train one model of ``variant`` on a fold -> ``(probs (N, G), info)``."""
    if variant.kind == "probe":
        return linear_probe_probabilities(
            variant.features, variant.modalities, labels, train_part, val_part
        )
    vcfg = dataclasses.replace(cfg, modalities=variant.modalities)
    model = train_fusion(
        variant.features, catalog, vcfg, seed=seed, train_idx=train_part, val_idx=val_part
    )
    branches = branch_outputs(model, variant.features)
    probs = genre_probabilities(model, branches, present_matrix(variant.features))
    return probs, {
        "epochs": model.history["epochs"],
        "best_epoch": model.history["best_epoch"] + 1,
        "train_seconds": round(model.history["seconds"], 2),
        "n_train": int(model.history["n_train"]),
        "n_val": int(model.history["n_val"]),
    }


def score_rows(
    folds: Sequence[FoldOutput],
    labels: np.ndarray,
    scored: np.ndarray,
    min_positives: int = 1,
    threshold_rule: Callable[[np.ndarray, np.ndarray], np.ndarray] = genre_thresholds,
) -> tuple[dict, Pooled]:
    """Metrics of one model on the catalog rows ``scored`` (bool ``(N,)``), from its folds.

    Per fold, per-genre thresholds (:func:`genre_thresholds`, capped at
    ``PREDICTION_CAP`` times a genre's validation positives) are chosen on the fold's
    validation movies that are in ``scored`` and applied to its test movies in ``scored``; the
    test predictions of all folds are pooled, so each scored movie counts once. Macro averages
    count the genres with at least ``min_positives`` positive movies among the scored ones.
    ``threshold_rule(labels (n, G), probs (n, G)) -> (G,)``: the rule (another one only in
    ``tools/modality_dev.py``, which compares rules on development folds).
    """
    pred = np.zeros(labels.shape, dtype=np.int8)
    scores = np.full(labels.shape, np.nan, dtype=np.float64)
    tested = np.zeros(len(labels), dtype=bool)
    thresholds = []
    for fold in folds:
        val = fold.val[scored[fold.val]]
        test = fold.test[scored[fold.test]]
        th = threshold_rule(labels[val], fold.probs[val])
        thresholds.append([round(float(t), 2) for t in th])
        pred[test] = threshold_predictions(fold.probs[test], th)
        scores[test] = fold.probs[test]
        tested[test] = True
    rows = np.flatnonzero(scored & tested)
    y = labels[rows].astype(np.int8)
    genres = eligible_genres(y, min_positives)
    report = multilabel_report(y, pred[rows], genres)
    report["roc_auc_macro"] = macro_roc_auc(y, scores[rows], genres)
    report["ap_macro"] = macro_average_precision(y, scores[rows], genres)
    report["n_scored"] = int(len(rows))
    report["genres_counted"] = int(genres.sum())
    report["thresholds"] = thresholds
    return report, Pooled(y, pred[rows], scores[rows], genres)


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
    min_positives: int = MIN_GENRE_POSITIVES,
    text_masked: bool = False,
) -> dict:
    """Cross-validate text-only, image-only, audio-only and fused models, and a linear probe
    of each, over ``seeds``.

    ``cfg`` is the :class:`FusionConfig` (a whole ``Config`` is accepted too). Per seed,
    ``folds``-fold cross-validation by movie (:func:`cv_folds`, ``val_share`` of the movies as
    validation inside each fold) over the movies with a genre and any modality; every row of
    a seed uses the same folds. Each model trains on the fold's training movies that have one
    of its modalities. Two tables come out:

    * ``rows``: each row scored on the films that have all its modalities (text only on films
      with a synopsis, ...), plus the fused network on every evaluated film (labelled "all
      films");
    * ``subset_rows``: every row scored on the films that have every available modality, so
      single and fused rows compare on the same movies.

    Per-genre decision thresholds are chosen on each fold's validation movies of the scored
    set; macro averages count genres with at least ``min_positives`` positive scored movies.
    Modalities no movie has are reported as n/a. ``masked_features``: optional features whose
    text came from :func:`mask_genre_words` synopses; adds masked text and fused rows.
    ``bootstrap``: paired resamples of the movies for the comparisons (0 skips it). Writes
    ``out_dir/modality{tag}.json`` and ``.md`` (unless ``out_dir`` is None) and returns the
    JSON dict; ``progress(done, total, row)`` is called after each fitted model.
    ``text_masked``: the caller computed ``features.text`` from genre-masked synopses (said
    in the report).
    """
    started = time.perf_counter()
    # The commit of the code this run imports, read now: a run takes half an hour, and the
    # branch may move before the report is written.
    commit = git_commit()
    cfg = getattr(cfg, "fusion", cfg) or FusionConfig()
    check_alignment(features, catalog)
    seeds = list(seeds)
    if not seeds:
        raise ValueError("evaluate_modality needs at least one seed")
    labels = np.asarray(catalog.genre_matrix(), dtype=np.float32)  # (N, G)
    present = present_matrix(features)  # (N, 3)
    in_pool = (labels.sum(1) > 0) & present.any(1)
    pool = np.flatnonzero(in_pool)
    if int(bootstrap) != bootstrap or bootstrap < 0:
        raise ValueError(f"bootstrap must be an integer >= 0, got {bootstrap!r}")
    if len(pool) < 20:
        raise ValueError(
            f"catalog {catalog.data_dir}: only {len(pool)} movies have a genre and a modality; "
            "the modality table needs at least 20"
        )
    cv_folds(len(pool), folds, val_share, seeds[0])  # bad folds / val_share fail before training
    variants, skipped = _variants(features, masked_features, cfg)
    available = next((v.modalities for v in variants if len(v.modalities) > 1), None) or (
        variants[0].modalities
    )
    every = in_pool & films_with(present, available, "all")  # films with every modality
    # (row name, variant, scored rows, "scored on" text) of each table
    main_specs, subset_specs = [], []
    for v in variants:
        own = in_pool & films_with(present, v.modalities, "all")
        main_specs.append((v.name, v, own, _scored_on(v.modalities, "all")))
        if v.kind == "network" and len(v.modalities) > 1:
            main_specs.append((f"{v.name}, all films", v, in_pool, "all evaluated films"))
        subset_specs.append((v.name, v, every, _scored_on(available, "all")))
    total = len(variants) * len(seeds) * folds
    per_seed = {"rows": {s[0]: [] for s in main_specs}, "subset": {s[0]: [] for s in subset_specs}}
    # Pooled predictions per table, row and seed, for the bootstrap; kept in memory only.
    pooled = {"rows": {s[0]: [] for s in main_specs}, "subset": {s[0]: [] for s in subset_specs}}
    done = 0
    for seed in seeds:
        # Catalog rows of each fold, shared by every variant of this seed (paired rows).
        splits = [
            tuple(pool[p] for p in parts) for parts in cv_folds(len(pool), folds, val_share, seed)
        ]
        outputs: dict[str, list[FoldOutput]] = {}
        for variant in variants:
            runs = []
            for train_part, val_part, test_part in splits:
                probs, info = _fit_fold(variant, catalog, cfg, labels, seed, train_part, val_part)
                runs.append(FoldOutput(val_part, test_part, probs, info))
                done += 1
                if progress is not None:
                    progress(done, total, variant.name)
            outputs[variant.name] = runs
        for table, specs in (("rows", main_specs), ("subset", subset_specs)):
            for name, variant, scored, _ in specs:
                report, pool_run = score_rows(outputs[variant.name], labels, scored, min_positives)
                report["seed"] = seed
                report["folds"] = [
                    {"fold": k, "n_test": int(scored[f.test].sum()), **f.info}
                    for k, f in enumerate(outputs[variant.name])
                ]
                per_seed[table][name].append(report)
                pooled[table][name].append(pool_run)

    def table_rows(table: str, specs) -> list[dict]:
        rows = []
        for name, variant, scored, scored_on in specs:
            runs = per_seed[table][name]
            rows.append(
                {
                    "variant": name,
                    "kind": "linear probe" if variant.kind == "probe" else "network",
                    "modalities": list(variant.modalities),
                    "masked_text": variant.masked,
                    "scored_on": scored_on,
                    "n_scored": int(runs[0]["n_scored"]),
                    "genres_counted": int(runs[0]["genres_counted"]),
                    "test_coverage": float(scored.sum() / max(in_pool.sum(), 1)),
                    **{m: _summary([r[m] for r in runs]) for m in METRICS},
                    "per_seed": runs,
                }
            )
        return rows

    rows = table_rows("rows", main_specs)
    for m in MODALITIES:
        if m in skipped:
            rows.append({"variant": f"{m} only", "modalities": [m], "na": skipped[m]})
    subset_rows = table_rows("subset", subset_specs)
    comparisons = _comparisons(rows, subset_rows, pooled, bootstrap)
    result = {
        "kind": "modality",
        "created": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "command": command or _invocation(),
        "commit": commit,
        "data_dir": str(catalog.data_dir),
        "n_movies": int(catalog.n_movies) if hasattr(catalog, "n_movies") else len(labels),
        "n_evaluated": int(len(pool)),
        "n_every_modality": int(every.sum()),
        "every_modality": list(available),
        "genres": list(catalog.genres),
        "protocol": {
            "kind": "repeated k-fold",
            "folds": int(folds),
            "val_share": float(val_share),
            "unit": "movie",
        },
        "seeds": seeds,
        "audio_kind": getattr(features, "audio_kind", None),
        "text_masked": bool(text_masked),
        "machine": machine_info(),
        "fusion_config": dataclasses.asdict(cfg),
        "probe": {"l2_grid": list(L2_GRID), "max_iter": PROBE_MAX_ITER},
        "threshold_rule": "one threshold per genre and fold, maximising that genre's F1 on the "
        "fold's validation movies of the scored set (grid 0.02..0.98) among the thresholds that "
        f"predict it for at most {PREDICTION_CAP:g} times as many validation movies as have it "
        "(a genre with fewer than 5 validation positives gets the fold's micro-F1-best global "
        "threshold); each movie also gets its most probable genre",
        "macro_rule": f"macro F1 / precision / recall / ROC-AUC / AP average the genres with at "
        f"least {min_positives} positive films among the row's scored films",
        "min_genre_positives": int(min_positives),
        "std": "sample standard deviation over seeds (ddof=1); each seed's value is computed "
        "on the pooled out-of-fold predictions of the row's scored movies",
        "rows": rows,
        "subset_rows": subset_rows,
        **comparisons,
        "seconds": round(time.perf_counter() - started, 1),
    }
    if out_dir is not None:
        out_dir = Path(out_dir)
        atomic_write_text(out_dir / f"modality{tag}.json", json.dumps(result, indent=2) + "\n")
        atomic_write_text(out_dir / f"modality{tag}.md", render_markdown(result))
    result["markdown"] = render_markdown(result)  # for the CLI to print; not in the JSON
    return result

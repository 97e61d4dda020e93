"""Development folds of the modality table (issue 18): choose fusion settings and the threshold
rule without reading the table's test films.

The development set is the non-test part of the table's seed-0 / fold-0 split (``cv_folds`` over
the evaluable films, as ``evaluate_modality`` draws it); inside it, an inner 3-fold
cross-validation (inner seed 7, 15% validation) trains each network and linear-probe row, and
every threshold rule is scored on the pooled inner test films, each row on the films that have
its modalities. Printed per rule: micro / macro F1 (and the threshold-free macro AP) of each
network row and its probe, their F1 differences, fused minus text on the films with both, and
the mean of micro and macro F1 over all rows (the criterion the cap was chosen by). Predictions are cached in ``--out``.

Usage::

    python tools/modality_dev.py --config fusion-skip.toml --data /tmp/mmrec-real \
        --out /tmp/modality-dev [--set label_smoothing_target=\"half\"] [--masked]

The fold 0 test films of seed 0 are never read here; they are test films of the table (the
other folds' test films are in the development set, as in any choice made on one split).
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
from pathlib import Path

import numpy as np

from mmrec import pipeline
from mmrec.config import load_config
from mmrec.data.catalog import load_catalog
from mmrec.eval.metrics import GENRE_THRESHOLD_GRID, genre_thresholds
from mmrec.eval.modality import (
    FOLDS,
    MIN_GENRE_POSITIVES,
    VAL_SHARE,
    FoldOutput,
    Variant,
    _fit_fold,
    cv_folds,
    films_with,
    mask_genre_words,
    score_rows,
)
from mmrec.models.inference import present_matrix

CAPS = (None, 1.0, 1.25, 1.5, 2.0, 3.0)  # candidate PREDICTION_CAP values (None: no cap)
ROWS = (("image", ("image",)), ("text", ("text",)), ("fused", ("text", "image")))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True, help="folder for cached predictions")
    ap.add_argument("--set", action="append", default=[], help="FusionConfig field=JSON value")
    ap.add_argument("--masked", action="store_true", help="text from genre-masked synopses")
    args = ap.parse_args()

    cfg = load_config(args.config, data_dir=args.data)
    overrides = {}
    for item in args.set:
        key, value = item.split("=", 1)
        overrides[key] = json.loads(value)
    fusion = dataclasses.replace(cfg.fusion, **overrides)
    catalog = load_catalog(cfg.paths.data_dir, cfg.data)
    mask = (lambda t: mask_genre_words(t, catalog.genres)) if args.masked else None
    features = pipeline._features(cfg, catalog, text_transform=mask)
    labels = np.asarray(catalog.genre_matrix(), dtype=np.float32)
    present = present_matrix(features)
    in_pool = (labels.sum(1) > 0) & present.any(1)
    pool = np.flatnonzero(in_pool)
    train0, val0, _test0 = (pool[p] for p in cv_folds(len(pool), FOLDS, VAL_SHARE, 0)[0])
    dev = np.sort(np.concatenate([train0, val0]))
    inner = [tuple(dev[p] for p in parts) for parts in cv_folds(len(dev), 3, VAL_SHARE, 7)]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    setting = json.dumps([dataclasses.asdict(fusion), args.masked], sort_keys=True, default=str)

    runs = {}
    for name, mods in ROWS:
        for kind in ("network", "probe"):
            key = hashlib.sha1(f"{setting}{name}{kind}".encode()).hexdigest()[:12]
            path = out / f"{name}-{kind}-{key}.npz"
            if path.exists():
                probs = list(np.load(path)["probs"])
            else:
                variant = Variant(name, mods, features, kind)
                probs = [
                    _fit_fold(variant, catalog, fusion, labels, 0, tr, va)[0].astype(np.float32)
                    for tr, va, _ in inner
                ]
                np.savez(path, probs=np.stack(probs))
            runs[name, kind] = [
                FoldOutput(va, te, p, {}) for (_, va, te), p in zip(inner, probs, strict=True)
            ]
            print(f"{name} {kind}: {path}", flush=True)

    every = in_pool & films_with(present, ("text", "image"), "all")
    for cap in CAPS:
        rule = lambda y, p, cap=cap: genre_thresholds(y, p, max_predicted=cap)  # noqa: E731
        parts, means = [], []
        for name, mods in ROWS:
            own = in_pool & films_with(present, mods, "all")
            f1 = {}
            for kind in ("network", "probe"):
                rep = _score(runs[name, kind], labels, own, rule)
                f1[kind] = (100 * rep["f1_micro"], 100 * rep["f1_macro"], 100 * rep["ap_macro"])
                means.append((f1[kind][0] + f1[kind][1]) / 2)
            (a, b, ap), (c, d, ap_probe) = f1["network"], f1["probe"]
            parts.append(
                f"{name} {a:.1f}/{b:.1f} AP {ap:.1f}, probe {c:.1f}/{d:.1f} AP {ap_probe:.1f} "
                f"({a - c:+.1f}/{b - d:+.1f})"
            )
        fused = _score(runs["fused", "network"], labels, every, rule)
        text = _score(runs["text", "network"], labels, every, rule)
        gain = (
            100 * (fused["f1_micro"] - text["f1_micro"]),
            100 * (fused["f1_macro"] - text["f1_macro"]),
        )
        print(
            f"cap {cap}: mean {np.mean(means):.2f} | "
            + " | ".join(parts)
            + f" | fused-text {gain[0]:+.1f}/{gain[1]:+.1f}",
            flush=True,
        )
    print(f"grid {GENRE_THRESHOLD_GRID[0]}..{GENRE_THRESHOLD_GRID[-1]}; micro/macro F1, percent")
    print(f"development films {len(dev)}, inner folds 3; rows scored on their own films")


def _score(folds, labels, scored, rule) -> dict:
    """The table's own scoring (pooled folds, macro rule) with threshold rule ``rule``."""
    return score_rows(folds, labels, scored, MIN_GENRE_POSITIVES, threshold_rule=rule)[0]


if __name__ == "__main__":
    main()

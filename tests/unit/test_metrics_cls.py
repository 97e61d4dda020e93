"""Classification metrics against hand-computed values; genre masking; the modality table."""

import dataclasses
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from mmrec.config import FusionConfig
from mmrec.eval.metrics import (
    best_threshold,
    hamming_accuracy,
    multilabel_report,
    precision_recall_f1,
    subset_accuracy,
    threshold_predictions,
)
from mmrec.eval.modality import cv_folds, evaluate_modality, mask_genre_words

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from synthetic import labelled_catalog  # noqa: E402

# 4 items x 3 genres. Per genre: g0 tp=2 fp=0 fn=0; g1 tp=1 fp=0 fn=1; g2 tp=1 fp=1 fn=1.
Y_TRUE = np.array([[1, 0, 1], [0, 1, 0], [1, 1, 0], [0, 0, 1]])
Y_PRED = np.array([[1, 0, 0], [0, 1, 1], [1, 0, 0], [0, 0, 1]])


def test_subset_and_hamming_accuracy_by_hand():
    assert subset_accuracy(Y_TRUE, Y_PRED) == pytest.approx(1 / 4)  # only the last row matches
    assert hamming_accuracy(Y_TRUE, Y_PRED) == pytest.approx(9 / 12)  # 3 wrong cells of 12


def test_micro_by_hand():
    p, r, f = precision_recall_f1(Y_TRUE, Y_PRED, "micro")
    # pooled tp=4, fp=1, fn=2
    assert p == pytest.approx(4 / 5)
    assert r == pytest.approx(4 / 6)
    assert f == pytest.approx(8 / 11)


def test_macro_by_hand():
    p, r, f = precision_recall_f1(Y_TRUE, Y_PRED, "macro")
    assert p == pytest.approx((1 + 1 + 0.5) / 3)
    assert r == pytest.approx((1 + 0.5 + 0.5) / 3)
    assert f == pytest.approx((1 + 2 / 3 + 0.5) / 3)  # mean of per-genre F1, not F1 of means


def test_macro_skips_genres_absent_from_truth_but_micro_counts_their_false_positives():
    y_true = np.hstack([Y_TRUE, np.zeros((4, 1), int)])
    y_pred = np.hstack([Y_PRED, np.array([[1], [0], [0], [0]])])
    _, r_macro, f_macro = precision_recall_f1(y_true, y_pred, "macro")
    assert r_macro == pytest.approx((1 + 0.5 + 0.5) / 3)
    assert f_macro == pytest.approx((1 + 2 / 3 + 0.5) / 3)
    p, _, f = precision_recall_f1(y_true, y_pred, "micro")
    assert p == pytest.approx(4 / 6)
    assert f == pytest.approx(8 / 12)


def test_agrees_with_scikit_learn_on_random_arrays():
    from sklearn.metrics import f1_score, recall_score

    rng = np.random.default_rng(0)
    y_true = (rng.random((50, 6)) < 0.3).astype(int)
    y_true[0] = 1  # every genre occurs, so both macro conventions coincide
    y_pred = (rng.random((50, 6)) < 0.4).astype(int)
    for avg in ("micro", "macro"):
        _, r, f = precision_recall_f1(y_true, y_pred, avg)
        assert r == pytest.approx(recall_score(y_true, y_pred, average=avg, zero_division=0))
        assert f == pytest.approx(f1_score(y_true, y_pred, average=avg, zero_division=0))


def test_report_and_bad_input():
    report = multilabel_report(Y_TRUE, Y_PRED)
    assert report["f1_micro"] == pytest.approx(8 / 11)
    assert report["recall_macro"] == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="equal"):
        multilabel_report(Y_TRUE, Y_PRED[:, :2])
    with pytest.raises(ValueError, match="0/1"):
        subset_accuracy(Y_TRUE, Y_PRED * 2)
    with pytest.raises(ValueError, match="micro"):
        precision_recall_f1(Y_TRUE, Y_PRED, "weighted")


def test_threshold_predictions_keep_the_top_genre():
    probs = np.array([[0.9, 0.6, 0.1], [0.2, 0.3, 0.1]])
    np.testing.assert_array_equal(threshold_predictions(probs, 0.5), [[1, 1, 0], [0, 1, 0]])
    np.testing.assert_array_equal(
        threshold_predictions(probs, 0.5, at_least_one=False), [[1, 1, 0], [0, 0, 0]]
    )


def test_best_threshold_picks_the_separating_value():
    y_true = np.array([[1, 0], [1, 1], [0, 1]])
    # true cells have prob >= 0.7, false cells <= 0.35: any threshold in (0.35, 0.7] is
    # perfect, and the tie goes to the one nearest 0.5
    probs = np.array([[0.8, 0.3], [0.7, 0.75], [0.35, 0.9]])
    assert best_threshold(y_true, probs) == pytest.approx(0.5)
    probs_low = np.array([[0.3, 0.1], [0.25, 0.3], [0.1, 0.35]])  # positives in [0.25, 0.35]
    assert best_threshold(y_true, probs_low) in (0.15, 0.2, 0.25)


# ----------------------------------------------------------------------------- genre masking

VOCAB = ["Action", "Adventure", "Comedy", "Drama", "Musical", "Romance", "Sci-Fi", "War"]


def test_mask_wikipedia_lead():
    text = "La La Land is a 2016 American musical romantic comedy-drama film directed by Chazelle."
    assert (
        mask_genre_words(text, VOCAB) == "La La Land is a 2016 American film directed by Chazelle."
    )


def test_mask_variants_and_word_boundaries():
    text = "An Action/Adventure and science-fiction epic; a Science Fiction WAR film, warning: comedians."
    out = mask_genre_words(text, VOCAB)
    for word in ("action", "adventure", "science", "fiction", " war "):
        assert word not in out.lower()
    assert "warning" in out and "comedians" in out  # substrings of longer words survive


def test_mask_only_vocabulary_genres():
    text = "A horror film about a war."
    assert mask_genre_words(text, ["Horror"]) == "A film about a war."
    assert mask_genre_words(text, ["War"]) == "A horror film about a."
    assert mask_genre_words(text, []) == text
    assert mask_genre_words("", VOCAB) == ""


# ----------------------------------------------------------------------------- modality table


def synthetic_catalog(n=200, seed=0, with_audio=False):
    """Genres 0/1 readable from text, 2/3 from the poster vector: each modality alone is
    partial, together they cover every genre."""
    rng = np.random.default_rng(seed)
    genres = ["A", "B", "C", "D"]
    labels = (rng.random((n, 4)) < 0.4).astype(np.float32)
    labels[labels.sum(1) == 0, 0] = 1
    text = np.zeros((n, 12), np.float32)
    text[:, :2] = labels[:, :2] * 3
    text += rng.normal(size=text.shape).astype(np.float32) * 0.5
    image = np.zeros((n, 10), np.float32)
    image[:, :2] = labels[:, 2:] * 3
    image += rng.normal(size=image.shape).astype(np.float32) * 0.5
    ids = np.arange(10, 10 + n, dtype=np.int64)
    audio = np.zeros((n, 4, 3), np.float32)
    return labelled_catalog(ids, genres, labels, text, image, audio, has_audio=with_audio)


def test_evaluate_modality_writes_table_and_marks_missing_audio(tmp_path):
    catalog, features = synthetic_catalog()
    # lr 1e-2 (not the default 1e-3) so the tiny model converges in a test's time budget
    cfg = FusionConfig(
        hidden_dim=16, embed_dim=8, max_epochs=25, patience=6, batch_size=32, lr=1e-2
    )
    result = evaluate_modality(
        catalog,
        features,
        cfg,
        seeds=(0, 1),
        out_dir=tmp_path,
        tag="_t",
        command="test",
        min_positives=10,
        folds=3,
        bootstrap=200,
    )
    names = [r["variant"] for r in result["rows"]]
    assert names == [
        "text only",
        "linear probe: text",
        "image only",
        "linear probe: image",
        "fused (text + image)",
        "fused (text + image), all films",
        "linear probe: text + image",
        "audio only",
    ]
    audio_row = result["rows"][-1]
    assert "na" in audio_row
    rows = {r["variant"]: r for r in result["rows"] if "na" not in r}
    for row in rows.values():
        assert len(row["per_seed"]) == 2
        assert 0 <= row["f1_micro"]["mean"] <= 1 and row["f1_micro"]["std"] >= 0
        assert row["n_scored"] == 200 and row["genres_counted"] == 4
    assert [r["kind"] for r in result["rows"][:2]] == ["network", "linear probe"]
    # each single modality sees half the genres; fusing them must do better than either,
    # network and probe alike
    for fused, text, image in (
        ("fused (text + image)", "text only", "image only"),
        ("linear probe: text + image", "linear probe: text", "linear probe: image"),
    ):
        assert rows[fused]["f1_macro"]["mean"] > max(
            rows[text]["f1_macro"]["mean"], rows[image]["f1_macro"]["mean"]
        )
    # the probe reads each single modality's two genres near perfectly
    assert rows["linear probe: text"]["ap_macro"]["mean"] > 0.6
    saved = json.loads((tmp_path / "modality_t.json").read_text())
    assert saved["n_movies"] == 200 and saved["seeds"] == [0, 1]
    assert [r["variant"] for r in saved["subset_rows"]] == [
        n for n in names if n not in ("fused (text + image), all films", "audio only")
    ]
    md = (tmp_path / "modality_t.md").read_text()
    assert "| audio only | n/a" in md and "fused (text + image)" in md and "`test`" in md
    assert "linear probe: text + image" in md and "with at least 10 positive films" in md
    versus = saved["fused_vs_single"]["versus"]
    assert set(versus) == {"text only", "image only"}
    for comp in versus["text only"].values():
        boot = comp["bootstrap"]  # paired resamples of the movies
        assert boot["resamples"] == 200 and 0 <= boot["p_fused_wins"] <= 1
        assert boot["ci95"][0] <= boot["mean"] <= boot["ci95"][1]
    assert set(saved["network_vs_probe"]) == {"text only", "image only", "fused (text + image)"}
    assert set(saved["targets"]) == {
        "single_rows_reach_probe",
        "fused_micro_f1_text_plus_4",
        "fused_macro_f1_above_text",
    }
    assert "Pooled" not in json.dumps(saved) and "labels" not in saved  # arrays stay in memory


def test_evaluate_modality_masked_rows(tmp_path):
    catalog, features = synthetic_catalog(n=120)
    masked = dataclasses.replace(features, text=np.zeros_like(features.text))
    cfg = FusionConfig(
        hidden_dim=16, embed_dim=8, max_epochs=30, patience=8, batch_size=32, lr=1e-2
    )
    result = evaluate_modality(
        catalog,
        features,
        cfg,
        seeds=(0,),
        out_dir=None,
        masked_features=masked,
        bootstrap=0,
        folds=3,
    )
    rows = {r["variant"]: r for r in result["rows"]}
    assert rows["text only, genre words masked"]["masked_text"]
    assert rows["linear probe: text, genre words masked"]["masked_text"]
    assert "image only, genre words masked" not in rows  # masking changes only the text
    # the masked fused row is compared with the masked text row and the (shared) image row
    assert set(result["fused_vs_single_masked"]["versus"]) == {
        "text only, genre words masked",
        "image only",
    }
    assert "fused_micro_f1_text_plus_4, genre words masked" in result["targets"]
    # text without its signal: F1 on genres A/B collapses below the unmasked text model
    assert (
        rows["text only, genre words masked"]["f1_micro"]["mean"]
        < rows["text only"]["f1_micro"]["mean"]
    )
    with pytest.raises(ValueError, match="same movies"):
        bad = dataclasses.replace(features, movie_ids=features.movie_ids[::-1].copy())
        evaluate_modality(catalog, features, cfg, seeds=(0,), out_dir=None, masked_features=bad)


def test_cv_folds_partition_the_items_and_never_overlap():
    n = 37
    triples = cv_folds(n, folds=5, val_share=0.15, seed=4)
    assert len(triples) == 5
    tests = np.concatenate([test for _, _, test in triples])
    assert np.array_equal(np.sort(tests), np.arange(n))  # every item tested exactly once
    for train, val, test in triples:
        assert len(val) == round(0.15 * n)
        assert not (set(train) & set(val) or set(train) & set(test) or set(val) & set(test))
        assert len(train) + len(val) + len(test) == n
    vals = [set(val) for _, val, _ in triples]
    assert vals[0] != vals[1]  # validation rotates with the fold
    again = cv_folds(n, folds=5, val_share=0.15, seed=4)
    assert all(np.array_equal(a, b) for t1, t2 in zip(triples, again) for a, b in zip(t1, t2))
    other = cv_folds(n, folds=5, val_share=0.15, seed=5)
    assert not np.array_equal(triples[0][2], other[0][2])


@pytest.mark.parametrize("folds", [1, 0, -3, 2.5])
def test_cv_folds_needs_at_least_two_folds(folds):
    with pytest.raises(ValueError, match="folds must be an integer >= 2"):
        cv_folds(50, folds=folds)


def test_cv_folds_rejects_a_validation_share_that_leaves_no_training():
    with pytest.raises(ValueError, match="val_share"):
        cv_folds(50, folds=2, val_share=0.49)
    with pytest.raises(ValueError, match="val_share"):
        cv_folds(50, folds=5, val_share=0.0)


CV_CFG = FusionConfig(hidden_dim=8, embed_dim=4, max_epochs=6, patience=3, batch_size=32, lr=1e-2)


def test_evaluate_modality_tests_every_evaluable_movie_once_per_seed(monkeypatch):
    import mmrec.eval.modality as modality
    import mmrec.eval.modality_compare as modality_compare

    catalog, features = synthetic_catalog(n=80)
    # five movies with no modality at all are not evaluable
    features.has_text[:5] = False
    features.has_image[:5] = False
    features.text[:5] = 0
    features.image[:5] = 0
    pool = set(range(5, 80))
    calls = []
    real = modality.train_fusion

    def spy(features, catalog, cfg, seed, train_idx, val_idx):
        calls.append((seed, cfg.modalities, set(train_idx.tolist()), set(val_idx.tolist())))
        return real(features, catalog, cfg, seed=seed, train_idx=train_idx, val_idx=val_idx)

    monkeypatch.setattr(modality, "train_fusion", spy)
    bootstrapped = []
    real_bootstrap = modality_compare.paired_bootstrap

    def bootstrap_spy(fused, best, resamples):
        bootstrapped.append((fused, best, resamples))
        return real_bootstrap(fused, best, resamples=resamples)

    monkeypatch.setattr(modality_compare, "paired_bootstrap", bootstrap_spy)
    result = evaluate_modality(
        catalog,
        features,
        CV_CFG,
        seeds=(0, 1),
        out_dir=None,
        folds=3,
        bootstrap=50,
        min_positives=5,
    )
    assert len(calls) == 2 * 3 * 3  # seeds x variants x folds
    for seed in (0, 1):
        by_variant: dict[tuple, list] = {}
        for s, mods, train, val in calls:
            if s == seed:
                by_variant.setdefault(mods, []).append((train, val))
        runs = list(by_variant.values())
        assert all(r == runs[0] for r in runs)  # every variant sees the same folds
        tested = []
        for train, val in runs[0]:
            assert not train & val and train | val <= pool
            assert len(val) == round(0.15 * len(pool))
            tested += sorted(pool - train - val)
        assert sorted(tested) == sorted(pool)  # each evaluable movie tested exactly once
    for row in result["rows"]:
        if "na" in row:
            continue
        for run in row["per_seed"]:
            assert run["n_scored"] == len(pool) == result["n_evaluated"]
            assert sum(f["n_test"] for f in run["folds"]) == len(pool)
            assert [f["fold"] for f in run["folds"]] == [0, 1, 2]
            assert len(run["thresholds"]) == 3  # one per fold, one per genre
            assert all(len(t) == 4 and all(0 < v < 1 for v in t) for t in run["thresholds"])
            if row["kind"] == "network":
                assert all(f["epochs"] >= f["best_epoch"] >= 1 for f in run["folds"])
            else:
                assert all(f["l2"] > 0 and f["n_train"] > 0 for f in run["folds"])
    assert result["protocol"] == {
        "kind": "repeated k-fold",
        "folds": 3,
        "val_share": 0.15,
        "unit": "movie",
    }
    assert "- protocol: 3-fold cross-validation by movie" in result["markdown"]
    # The bootstrap sees the pooled predictions of the evaluable movies, one set per seed; the
    # identity "resample" reproduces the reported paired per-seed differences.
    # 3 networks vs their probes, then fused vs text and vs image
    assert len(bootstrapped) == 5 and all(r == 50 for _, _, r in bootstrapped)
    fused, best, _ = bootstrapped[3]
    assert len(fused) == 2 and all(run.labels.shape == (len(pool), 4) for run in fused)
    identity = modality_compare.bootstrap_differences(fused, best, np.arange(len(pool))[None])
    for metric, comp in result["fused_vs_single"]["versus"]["text only"].items():
        assert identity[metric][0] == pytest.approx(np.mean(comp["paired_differences"]), abs=1e-9)
        assert comp["bootstrap"]["resamples"] == 50
    assert "15% of movies as validation" in result["markdown"]


def test_evaluate_modality_is_reproducible_and_rejects_one_fold():
    catalog, features = synthetic_catalog(n=60)

    def numbers(seed):
        result = evaluate_modality(
            catalog,
            features,
            CV_CFG,
            seeds=(seed,),
            out_dir=None,
            folds=2,
            min_positives=5,
            bootstrap=0,
        )
        out = []
        for row in result["rows"]:
            if "na" in row:
                continue
            for run in row["per_seed"]:  # everything but the wall-clock times
                for fold in run["folds"]:
                    fold.pop("train_seconds", None)  # networks only
            out.append(({m: row[m] for m in ("f1_micro", "roc_auc_macro")}, row["per_seed"]))
        return out

    first = numbers(3)
    assert numbers(3) == first
    assert numbers(4) != first  # the seed does reach the folds and the models
    with pytest.raises(ValueError, match="folds must be an integer >= 2"):
        evaluate_modality(catalog, features, CV_CFG, seeds=(0,), out_dir=None, folds=1)


def test_roc_auc_by_hand():
    from mmrec.eval.metrics import macro_roc_auc, roc_auc

    # positive/negative pairs: (.9,.8) yes, (.9,.1) yes, (.4,.8) no, (.4,.1) yes -> 3/4
    assert roc_auc([1, 0, 1, 0], [0.9, 0.8, 0.4, 0.1]) == pytest.approx(0.75)
    assert roc_auc([1, 0], [0.5, 0.5]) == pytest.approx(0.5)  # a tie counts half
    assert np.isnan(roc_auc([1, 1], [0.2, 0.3]))
    y = np.array([[1, 0, 1], [0, 1, 1], [1, 0, 1], [0, 0, 1]])
    s = np.array([[0.9, 0.1, 0.5], [0.8, 0.7, 0.5], [0.4, 0.2, 0.5], [0.1, 0.3, 0.5]])
    # genre 0 -> 0.75, genre 1 -> 1.0, genre 2 has no negatives and is skipped
    assert macro_roc_auc(y, s) == pytest.approx((0.75 + 1.0) / 2)

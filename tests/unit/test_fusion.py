"""Fusion model: weight-0 / missing modality independence, training, caching, user weights."""

import dataclasses
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from mmrec.config import FusionConfig
from mmrec.models.fusion import FusionModel
from mmrec.models.inference import (
    branch_outputs,
    genre_probabilities,
    item_embeddings,
    present_matrix,
)
from mmrec.models.train import modality_dropout, train_fusion
from mmrec.models.user_weights import learn_user_weights

SMALL = FusionConfig(
    text_dim=12,
    image_dim=10,
    audio_dim=6,
    hidden_dim=16,
    embed_dim=8,
    audio_lstm_hidden=8,
    audio_max_steps=4,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from synthetic import labelled_catalog  # noqa: E402


def inputs(batch=5, steps=9, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (
        torch.randn(batch, 12, generator=g),  # text (B, 12)
        torch.randn(batch, 10, generator=g),  # image (B, 10)
        torch.randn(batch, steps, 6, generator=g),  # audio (B, T, F)
    )


def model(cfg=SMALL, seed=0):
    torch.manual_seed(seed)
    return FusionModel(cfg, n_genres=4).eval()


# ----------------------------------------------------------------------------- weights and masks


@pytest.mark.parametrize("column", [0, 1, 2])
def test_zero_weight_makes_embedding_bit_identical(column):
    net = model()
    text, image, audio = inputs()
    changed = [t.clone() for t in (text, image, audio)]
    changed[column] = torch.randn_like(changed[column]) * 100
    changed[column][0].fill_(float("nan"))  # even NaN must not leak through a zero weight
    weights = [1.0, 0.7, 0.4]
    weights[column] = 0.0
    present = torch.ones(5, 3, dtype=torch.bool)
    with torch.no_grad():
        base = net.fuse(*net.encode_branches(text, image, audio), present, weights)
        other = net.fuse(*net.encode_branches(*changed), present, weights)
        full = net.fuse(*net.encode_branches(*changed), present, [1.0, 0.7, 0.4])
    assert torch.equal(base, other)  # bit-identical, not merely close
    assert not torch.equal(base[1:], full[1:])  # with its weight back, the input matters


def test_missing_modality_is_ignored_per_item():
    net = model()
    text, image, audio = inputs()
    present = torch.ones(5, 3, dtype=torch.bool)
    present[2, 2] = False  # item 2 has no trailer
    audio2 = audio.clone()
    audio2[2] = torch.randn(9, 6) * 50
    with torch.no_grad():
        a = net(text, image, audio, present)[0]  # (B, D)
        b = net(text, image, audio2, present)[0]
    assert torch.equal(a[2], b[2])
    assert torch.equal(a[[0, 1, 3, 4]], b[[0, 1, 3, 4]])


def test_disabled_modality_never_matters():
    cfg = FusionConfig(**{**vars(SMALL), "modalities": ("text",)})
    net = model(cfg)
    text, image, audio = inputs()
    present = torch.ones(5, 3, dtype=torch.bool)
    with torch.no_grad():
        a = net(text, image, audio, present)[0]
        b = net(text, image * 3, audio + 5, present)[0]
    assert torch.equal(a, b)


def test_per_item_weights_and_validation():
    net = model()
    branches = net.encode_branches(*inputs())
    present = torch.ones(5, 3, dtype=torch.bool)
    w_rows = torch.tensor([[1.0, 0.0, 0.5]] * 5)
    with torch.no_grad():
        assert torch.equal(
            net.fuse(*branches, present, w_rows), net.fuse(*branches, present, [1.0, 0.0, 0.5])
        )
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        net.fuse(*branches, present, [1.2, 0.0, 0.5])
    with pytest.raises(ValueError, match="shape"):
        net.fuse(*branches, present, [1.0, 1.0])


def test_modality_dropout_keeps_one_and_never_invents():
    g = torch.Generator().manual_seed(0)
    present = torch.tensor([[1, 1, 1], [1, 0, 0], [0, 1, 1], [0, 0, 0]], dtype=torch.bool).repeat(
        50, 1
    )
    kept = modality_dropout(present, 0.9, g)
    assert not (kept & ~present).any()  # never shows a modality the item lacks
    assert kept[present.any(1)].any(1).all()  # every item with something keeps something
    assert (kept.sum() < present.sum()).item()


# ----------------------------------------------------------------------------- training


def tiny_catalog(n=120, seed=0, steps=10):
    """Genre 0 in the text, genre 1 in the poster, genre 2 in the audio rhythm."""
    rng = np.random.default_rng(seed)
    labels = (rng.random((n, 3)) < 0.5).astype(np.float32)
    labels[labels.sum(1) == 0, 0] = 1
    text = rng.normal(size=(n, 12)).astype(np.float32) * 0.5
    text[:, 0] += 3 * labels[:, 0]
    image = rng.normal(size=(n, 10)).astype(np.float32) * 0.5
    image[:, 0] += 3 * labels[:, 1]
    t = np.arange(steps)
    audio = rng.normal(size=(n, steps, 6)).astype(np.float32) * 0.3
    audio[:, :, 0] += (labels[:, 2:3] * np.sin(t)[None, :] * 3).astype(np.float32)  # (n, T)
    has_image = rng.random(n) < 0.8  # some posters missing
    image[~has_image] = 0
    ids = np.arange(1, n + 1, dtype=np.int64)
    genres = ["Comedy", "Drama", "Horror"]
    return labelled_catalog(ids, genres, labels, text, image, audio, has_image=has_image,
                            data_dir="tiny")  # fmt: skip


TRAIN_CFG = FusionConfig(
    hidden_dim=16,
    embed_dim=8,
    audio_lstm_hidden=8,
    max_epochs=30,
    patience=30,
    batch_size=32,
    lr=1e-2,
)


def test_training_reduces_loss_and_learns_all_modalities():
    catalog, features = tiny_catalog()
    net = train_fusion(features, catalog, TRAIN_CFG, seed=0, device="cpu")
    hist = net.history
    assert hist["best_val_loss"] < hist["val_loss"][0] * 0.8
    assert hist["train_loss"][-1] < hist["train_loss"][0] * 0.8
    assert net.cfg.audio_dim == 6 and net.cfg.text_dim == 12  # sized from the features
    branches = branch_outputs(net, features)
    assert branches["audio"].shape == (120, 16) and branches["text"].dtype == np.float32
    probs = genre_probabilities(net, branches, present_matrix(features))  # (N, G)
    labels = catalog.genre_matrix()
    accuracy = ((probs > 0.5) == (labels > 0)).mean(0)  # per genre
    assert (accuracy > 0.75).all(), accuracy  # each genre lives in a different modality


def test_training_is_seedable():
    catalog, features = tiny_catalog(n=60)
    cfg = FusionConfig(**{**vars(TRAIN_CFG), "max_epochs": 3})
    a = train_fusion(features, catalog, cfg, seed=3, device="cpu").state_dict()
    b = train_fusion(features, catalog, cfg, seed=3, device="cpu").state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_init_of_each_part_depends_only_on_seed_and_part():
    narrow = FusionModel(SMALL, n_genres=4, init_seed=5).state_dict()
    wide = FusionModel(FusionConfig(**{**vars(SMALL), "audio_dim": 9}), 4, init_seed=5)
    wide = wide.state_dict()
    shared = [k for k in narrow if not k.startswith("audio_branch.")]
    assert all(torch.equal(narrow[k], wide[k]) for k in shared)  # bit-identical
    assert narrow["audio_branch.lstm.weight_ih_l0"].shape[1] == 6
    other_seed = FusionModel(SMALL, n_genres=4, init_seed=6).state_dict()
    assert not torch.equal(
        narrow["text_branch.net.1.weight"], other_seed["text_branch.net.1.weight"]
    )
    # building a seeded model leaves the global RNG where it was
    torch.manual_seed(0)
    FusionModel(SMALL, n_genres=4, init_seed=5)
    after = torch.rand(3)
    torch.manual_seed(0)
    assert torch.equal(after, torch.rand(3))


def test_text_only_model_does_not_depend_on_the_audio_features():
    catalog, features = tiny_catalog(n=60, steps=10)
    rng = np.random.default_rng(3)
    other = dataclasses.replace(  # another audio front end: 11 features per step, 5 steps
        features, audio=rng.normal(size=(60, 5, 11)).astype(np.float32)
    )
    cfg = FusionConfig(**{**vars(TRAIN_CFG), "max_epochs": 3, "modalities": ("text",)})
    a = train_fusion(features, catalog, cfg, seed=2, device="cpu")
    b = train_fusion(other, catalog, cfg, seed=2, device="cpu")
    sa, sb = a.state_dict(), b.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa if not k.startswith("audio_branch."))
    present = present_matrix(features)
    np.testing.assert_array_equal(
        genre_probabilities(a, branch_outputs(a, features), present),
        genre_probabilities(b, branch_outputs(b, other), present),
    )


def test_training_rejects_misaligned_features():
    catalog, features = tiny_catalog(n=30)
    features.movie_ids = features.movie_ids[::-1].copy()
    with pytest.raises(ValueError, match="row 0"):
        train_fusion(features, catalog, TRAIN_CFG, seed=0, device="cpu")


def test_item_embeddings_match_forward_and_respect_weights():
    catalog, features = tiny_catalog(n=40)
    net = train_fusion(
        features,
        catalog,
        FusionConfig(**{**vars(TRAIN_CFG), "max_epochs": 2}),
        seed=0,
        device="cpu",
    )
    present = present_matrix(features)
    branches = branch_outputs(net, features)
    emb = item_embeddings(net, branches, present, (1.0, 0.5, 0.0))
    assert emb.shape == (40, 8) and emb.dtype == np.float32
    with torch.no_grad():
        direct = net(
            torch.as_tensor(features.text),
            torch.as_tensor(features.image),
            torch.as_tensor(features.audio),
            torch.as_tensor(present),
            [1.0, 0.5, 0.0],
        )[0].numpy()
    np.testing.assert_allclose(emb, direct, rtol=1e-5, atol=1e-5)
    other_audio = {**branches, "audio": branches["audio"] + 1.0}
    assert np.array_equal(item_embeddings(net, other_audio, present, (1.0, 0.5, 0.0)), emb)


# ----------------------------------------------------------------------------- per-user weights


def test_learn_user_weights_recovers_text_only_taste():
    catalog, features = tiny_catalog(n=200)
    net = train_fusion(
        features,
        catalog,
        FusionConfig(**{**vars(TRAIN_CFG), "max_epochs": 5}),
        seed=0,
        device="cpu",
    )
    branches = branch_outputs(net, features)
    present = present_matrix(features)
    rng = np.random.default_rng(1)
    idx = rng.choice(200, size=150, replace=False)
    # This user's ratings are an exact linear function of the text-only embedding.
    text_only = item_embeddings(net, branches, present, (1.0, 0.0, 0.0))[idx]  # (n, D)
    ratings = 3.0 + text_only @ rng.normal(size=text_only.shape[1])
    started = time.perf_counter()
    result = learn_user_weights(net, branches, present, idx, ratings, ridge=1e-6)
    elapsed = time.perf_counter() - started
    assert result["weights"][1:] == (0.0, 0.0) and result["weights"][0] > 0
    assert result["score"] < 1e-2 < result["baseline_score"]
    assert result["score"] <= result["baseline_score"] <= result["mean_only_score"] + 1e-9
    assert elapsed < 5.0  # ~0.1-0.5 s on a laptop CPU; generous for busy CI machines


def test_learn_user_weights_needs_enough_ratings():
    catalog, features = tiny_catalog(n=30)
    net = model(
        FusionConfig(**{**vars(TRAIN_CFG), "text_dim": 12, "image_dim": 10, "audio_dim": 6})
    )
    branches = branch_outputs(net, features)
    result = learn_user_weights(
        net, branches, present_matrix(features), np.array([0, 1]), np.array([4.0, 2.0])
    )
    assert result["weights"] == (1.0, 1.0, 1.0) and result["score"] is None
    with pytest.raises(ValueError, match="differ in length"):
        learn_user_weights(
            net, branches, present_matrix(features), np.array([0, 1]), np.array([4.0])
        )


def test_training_names_the_row_with_nan_features():
    catalog, features = tiny_catalog(n=30)
    features.text[7, 3] = np.nan
    with pytest.raises(ValueError, match=r"features.text has NaN/inf at row 7 \(movieId 8\)"):
        train_fusion(features, catalog, TRAIN_CFG, seed=0, device="cpu")
    features.text[7, 3] = 0.0
    features.has_image[:] = False
    features.image[4] = np.inf  # a missing poster's row is never read
    train_fusion(
        features,
        catalog,
        FusionConfig(**{**vars(TRAIN_CFG), "max_epochs": 1}),
        seed=0,
        device="cpu",
    )


def test_auxiliary_rating_objective_learns_and_stays_out_of_the_checkpoint():
    catalog, features = tiny_catalog(n=120)
    rng = np.random.default_rng(0)
    # Two kinds of users: one likes poster feature 0 (genre 1), the other dislikes it.
    rows = []
    for user in range(20):
        sign = 1 if user % 2 else -1
        for item in rng.choice(120, size=40, replace=False):
            rating = 3 + sign * np.tanh(features.image[item, 0]) + rng.normal(0, 0.1)
            rows.append((user, int(catalog.movie_ids[item]), float(np.clip(rating, 0.5, 5)), 0))
    catalog.ratings = pd.DataFrame(rows, columns=["userId", "movieId", "rating", "timestamp"])
    cfg = FusionConfig(
        **{**vars(TRAIN_CFG), "rating_weight": 1.0, "max_epochs": 15, "patience": 15}
    )
    net = train_fusion(features, catalog, cfg, seed=0, device="cpu")
    losses = net.history["rating_loss"]
    assert len(losses) == 15 and losses[-1] < 0.85 * losses[0]  # starts at the residual variance
    plain = train_fusion(
        features,
        catalog,
        FusionConfig(**{**vars(cfg), "rating_weight": 0.0, "max_epochs": 1}),
        seed=0,
        device="cpu",
    )
    assert net.state_dict().keys() == plain.state_dict().keys()  # user vectors are not saved
    assert plain.history["rating_loss"] == []


@pytest.mark.parametrize("criterion", ["map", "loss"])
def test_early_stopping_keeps_the_best_validation_epoch(criterion):
    from mmrec.eval.metrics import macro_average_precision

    catalog, features = tiny_catalog(n=80)
    cfg = FusionConfig(**{**vars(TRAIN_CFG), "max_epochs": 8, "early_stopping": criterion})
    train_idx, val_idx = np.arange(0, 60), np.arange(60, 80)
    net = train_fusion(
        features, catalog, cfg, seed=1, train_idx=train_idx, val_idx=val_idx, device="cpu"
    )
    hist = net.history
    assert len(hist["val_map"]) == len(hist["val_loss"]) == hist["epochs"]
    curve = hist["val_map"] if criterion == "map" else [-v for v in hist["val_loss"]]
    assert curve[hist["best_epoch"]] >= max(curve) - 1e-4
    # the weights returned are that epoch's: its validation mAP is reproduced exactly
    probs = genre_probabilities(net, branch_outputs(net, features), present_matrix(features))
    labels = catalog.genre_matrix()
    assert macro_average_precision(labels[val_idx], probs[val_idx]) == pytest.approx(
        hist["best_val_map"], abs=1e-5
    )
    with pytest.raises(ValueError, match="early_stopping"):
        train_fusion(
            features, catalog, FusionConfig(**{**vars(cfg), "early_stopping": "f1"}), device="cpu"
        )


def test_branch_losses_train_heads_outside_the_saved_model():
    catalog, features = tiny_catalog(n=60)
    cfg = FusionConfig(**{**vars(TRAIN_CFG), "max_epochs": 2, "branch_loss_weight": 0.5})
    plain = FusionConfig(**{**vars(TRAIN_CFG), "max_epochs": 2})
    with_heads = train_fusion(features, catalog, cfg, seed=0, device="cpu")
    without = train_fusion(features, catalog, plain, seed=0, device="cpu")
    # same parameters (the heads are training-only), different training
    assert with_heads.state_dict().keys() == without.state_dict().keys()
    assert with_heads.history["train_loss"][0] != without.history["train_loss"][0]

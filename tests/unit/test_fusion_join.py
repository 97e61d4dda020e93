"""Fusion settings of issue 18: the late join's linear skip, input dropout, label smoothing."""

import dataclasses
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from mmrec.checkpoint import load_checkpoint, load_fusion, save_checkpoint, save_fusion
from mmrec.config import FusionConfig
from mmrec.models.fusion import FusionModel
from mmrec.models.inference import branch_outputs, genre_probabilities, present_matrix
from mmrec.models.train import train_fusion

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_fusion import TRAIN_CFG, tiny_catalog  # noqa: E402

SMALL = FusionConfig(
    text_dim=12, image_dim=10, audio_dim=6, hidden_dim=16, embed_dim=8, audio_lstm_hidden=8
)


def _inputs(batch=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (
        torch.randn(batch, 12, generator=g),  # text (B, 12)
        torch.randn(batch, 10, generator=g),  # image (B, 10)
        torch.randn(batch, 7, 6, generator=g),  # audio (B, T, F)
    )


def test_skip_join_adds_a_linear_path_beside_the_fc_layers():
    net = FusionModel(dataclasses.replace(SMALL, late_join="mlp_skip"), 4, init_seed=0).eval()
    plain = FusionModel(dataclasses.replace(SMALL, late_join="mlp"), 4, init_seed=0).eval()
    assert net.late_skip.weight.shape == (8, 2 * 16) and net.late_skip.bias is None
    assert plain.late_skip is None and "late_skip.weight" not in plain.state_dict()
    # same seed, same FC parts: the embeddings differ by exactly the linear path
    present = torch.ones(5, 3, dtype=torch.bool)
    with torch.no_grad():
        t, i, a = net.encode_branches(*_inputs())
        av = net.early(torch.cat([i, a], 1))
        expected = plain.fuse(t, i, a, present) + net.late_skip(torch.cat([t, av], 1))
        assert torch.allclose(net.fuse(t, i, a, present), expected, atol=1e-6)
    with pytest.raises(ValueError, match="late_join"):
        FusionModel(dataclasses.replace(SMALL, late_join="sum"), 4)


@pytest.mark.parametrize("column", [0, 1, 2])
def test_skip_join_keeps_a_zero_weight_modality_out(column):
    net = FusionModel(dataclasses.replace(SMALL, late_join="mlp_skip"), 4, init_seed=1).eval()
    x = _inputs()
    changed = [v.clone() for v in x]
    changed[column] = torch.randn_like(changed[column]) * 100
    changed[column][0].fill_(float("nan"))
    weights = [1.0, 0.6, 0.3]
    weights[column] = 0.0
    present = torch.ones(5, 3, dtype=torch.bool)
    with torch.no_grad():
        base = net.fuse(*net.encode_branches(*x), present, weights)
        other = net.fuse(*net.encode_branches(*changed), present, weights)
    assert torch.equal(base, other)


def test_a_checkpoint_without_late_join_loads_as_the_plain_join(tmp_path):
    old = FusionModel(dataclasses.replace(SMALL, late_join="mlp"), 3, init_seed=0).eval()
    path = tmp_path / "fusion.pt"
    save_fusion(path, old, {})
    state, config, meta = load_checkpoint(path)
    del config["late_join"], config["input_dropout"], config["label_smoothing"]
    save_checkpoint(path, state, config, meta)  # as written before the fields existed
    loaded, _ = load_fusion(path, device="cpu")
    assert loaded.cfg.late_join == "mlp" and loaded.late_skip is None
    new = FusionModel(dataclasses.replace(SMALL, late_join="mlp_skip"), 3, init_seed=0).eval()
    save_fusion(path, new, {})
    assert load_fusion(path, device="cpu")[0].cfg.late_join == "mlp_skip"


def test_the_join_is_part_of_the_fusion_build_key():
    from mmrec.config import Config
    from mmrec.pipeline import fusion_build_key

    a, b = Config(), Config()
    b.fusion.late_join = "mlp" if a.fusion.late_join == "mlp_skip" else "mlp_skip"
    assert fusion_build_key(a, "fp") != fusion_build_key(b, "fp")


def test_input_dropout_is_its_own_setting():
    net = FusionModel(dataclasses.replace(SMALL, dropout=0.1, input_dropout=0.6), 4)
    assert net.text_branch.net[0].p == 0.6 and net.image_branch.net[0].p == 0.6
    assert net.text_branch.net[3].p == 0.1  # hidden-layer dropout unchanged


def test_label_smoothing_enters_the_training_loss():
    catalog, features = tiny_catalog(n=60)
    cfg = dataclasses.replace(TRAIN_CFG, max_epochs=2, late_join="mlp_skip")
    plain = train_fusion(features, catalog, cfg, seed=0, device="cpu")
    smooth = train_fusion(
        features, catalog, dataclasses.replace(cfg, label_smoothing=0.2), seed=0, device="cpu"
    )
    # the smoothed targets change what is fitted from the first step on
    assert smooth.history["train_loss"][0] != plain.history["train_loss"][0]


def test_label_smoothing_towards_the_prior_keeps_each_genres_mean_target():
    from mmrec.models.train import smoothed_targets, smoothing_target

    # 50 films: genre 0 has 1 positive (2%), genre 1 has 25 (50%)
    y = np.zeros((50, 2), np.float32)
    y[0, 0] = 1
    y[:25, 1] = 1
    labels = torch.as_tensor(y)
    prior = smoothing_target(y, dataclasses.replace(SMALL, label_smoothing_target="prior"))
    np.testing.assert_allclose(prior.numpy(), [0.02, 0.5])
    assert smoothing_target(y, SMALL) == 0.5  # the default: towards 0.5
    towards_prior = smoothed_targets(labels, 0.1, prior)
    towards_half = smoothed_targets(labels, 0.1, 0.5)
    # by hand: a positive of genre 0 -> 0.9 + 0.1 * 0.02, a negative -> 0.1 * 0.02 (or 0.05)
    assert float(towards_prior[0, 0]) == pytest.approx(0.902)
    assert float(towards_prior[1, 0]) == pytest.approx(0.002)
    assert float(towards_half[1, 0]) == pytest.approx(0.05)
    # Towards the prior every genre keeps its base rate as its mean target; towards 0.5 the
    # rare genre's 49 negatives carry 49 * 0.05 = 2.45 of smoothed positive mass against its
    # one real positive's 0.95: the label's signal is buried (issue 18, the image-only row).
    np.testing.assert_allclose(towards_prior.mean(0).numpy(), [0.02, 0.5], atol=1e-6)
    assert float(towards_half.mean(0)[0]) == pytest.approx(0.068)
    assert float(towards_half[1:, 0].sum()) > 2 * float(towards_half[0, 0])
    with pytest.raises(ValueError, match="label_smoothing_target"):
        smoothing_target(y, dataclasses.replace(SMALL, label_smoothing_target="uniform"))


def test_prior_smoothing_trains_and_differs_from_half():
    catalog, features = tiny_catalog(n=60)
    cfg = dataclasses.replace(TRAIN_CFG, max_epochs=2, late_join="mlp_skip", label_smoothing=0.2)
    half = train_fusion(features, catalog, cfg, seed=0, device="cpu")
    prior = train_fusion(
        features,
        catalog,
        dataclasses.replace(cfg, label_smoothing_target="prior"),
        seed=0,
        device="cpu",
    )
    assert prior.history["train_loss"][0] != half.history["train_loss"][0]
    assert prior.cfg.label_smoothing_target == "prior"


def test_skip_join_trains_on_the_tiny_catalog():
    """Every genre lives in one modality; the skip-joined model learns all three."""
    catalog, features = tiny_catalog()
    cfg = dataclasses.replace(TRAIN_CFG, late_join="mlp_skip", dropout=0.5, input_dropout=0.5)
    net = train_fusion(features, catalog, cfg, seed=0, device="cpu")
    probs = genre_probabilities(net, branch_outputs(net, features), present_matrix(features))
    accuracy = ((probs > 0.5) == (catalog.genre_matrix() > 0)).mean(0)
    assert (accuracy > 0.75).all(), accuracy
    assert np.isfinite(net.history["best_val_map"])

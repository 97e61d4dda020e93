"""The audio branch's pooling (``FusionConfig.audio_pooling``): does the attribution follow a
sound wherever it sits in the clip, and do old checkpoints keep the pooling they were trained
with?

The trailer-span finding behind this (issue 15): on the 2,000-film demo the Why page's
"most influential" trailer span stayed near the clip's end when the sound was moved in time
(``python -m mmrec.eval.span_probe``), because the forward LSTM's last state weighs the last
steps. The synthetic task here has the same shape: a short burst placed at a random step of a
noisy clip decides the label, and Integrated Gradients on the trained branch must put its
largest attribution on the burst's step, in the first, middle and last third of the clip alike.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn as nn

from mmrec.checkpoint import load_checkpoint, load_fusion, save_checkpoint, save_fusion
from mmrec.config import FusionConfig
from mmrec.models.audio_lstm import AudioLSTM
from mmrec.models.fusion import FusionModel

STEPS, FEATURES, HIDDEN = 12, 32, 16  # a clip of 12 steps like aisfx's 12 windows


def _clips(n: int, burst: torch.Tensor, g: torch.Generator):
    """``n`` noise clips ``(n, T, F)``; half carry ``burst`` at one random step (label 1)."""
    x = torch.randn(n, STEPS, FEATURES, generator=g)  # (n, T, F)
    y = (torch.rand(n, generator=g) < 0.5).float()  # (n,)
    pos = torch.randint(0, STEPS, (n,), generator=g)  # (n,)
    x[torch.arange(n), pos] += burst * y[:, None]
    return x, y, pos


def _integrated_gradients(model: nn.Module, x: torch.Tensor, steps: int = 16) -> torch.Tensor:
    """Per-step IG of ``model(x).sum()`` from the all-zero clip -> ``(B, T)`` (midpoint rule)."""
    total = torch.zeros_like(x)
    for alpha in (torch.arange(steps) + 0.5) / steps:
        xi = (alpha * x).requires_grad_(True)
        (grad,) = torch.autograd.grad(model(xi).sum(), xi)
        total += grad / steps
    return (total * x).sum(-1)  # (B, T)


def _burst_found(pooling: str, seed: int, epochs: int = 12):
    """Train a tiny audio branch + linear head on burst detection; on new clips with a burst,
    -> (whether IG's largest step is the burst's step (B,) bool, the burst's step (B,))."""
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    burst = torch.randn(FEATURES, generator=g)
    burst = burst / burst.norm() * 4.0  # (F,)
    x, y, _ = _clips(256, burst, g)
    branch = AudioLSTM(FEATURES, HIDDEN, HIDDEN, max_steps=16, dropout=0.0, pooling=pooling)
    model = nn.Sequential(branch, nn.Linear(HIDDEN, 1))
    branch.standardize.fit(x)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    # a fixed, short budget, as early stopping gives the real model
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=g)
        for i in range(0, len(x), 32):
            idx = order[i : i + 32]
            loss = nn.functional.binary_cross_entropy_with_logits(model(x[idx]).squeeze(1), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()
    xt, yt, pt = _clips(256, burst, g)
    xt, pt = xt[yt > 0], pt[yt > 0]
    attr = _integrated_gradients(model, xt)  # (B, T)
    return attr.argmax(1) == pt, pt


def _found_by_third(pooling: str) -> list[float]:
    """Share of bursts IG finds, for bursts in the first, middle and last third; 4 seeds."""
    found, where = zip(*(_burst_found(pooling, seed) for seed in range(4)), strict=True)
    found, where = torch.cat(found).float(), torch.cat(where)
    third = STEPS // 3
    return [float(found[(where >= k * third) & (where < (k + 1) * third)].mean()) for k in range(3)]


def test_attribution_follows_the_burst_anywhere_in_the_clip_with_meanmax_pooling():
    # Measured (2-core VM): meanmax finds 93% / 89% / 95% of the bursts by third; the legacy
    # last_mean pooling 93% / 84% / 62%: its last-step summary makes bursts in the last third
    # hard to tell apart from the noise around them.
    shares = _found_by_third("meanmax")
    print(f"meanmax: bursts found by third {[round(x, 3) for x in shares]}")  # shown with -s
    assert min(shares) >= 0.8, shares


def test_the_legacy_pooling_misses_bursts_in_one_part_of_the_clip():
    # The same check fails with the pooling every checkpoint before audio_pooling used: the test
    # above can fail, and this is the artefact it guards against.
    shares = _found_by_third("last_mean")
    print(f"last_mean: bursts found by third {[round(x, 3) for x in shares]}")  # shown with -s
    assert min(shares) < 0.8, shares


def test_unknown_pooling_is_refused_with_the_setting_named():
    with pytest.raises(ValueError, match="audio_pooling"):
        AudioLSTM(4, 4, 4, 16, 0.0, pooling="attention-ish")


def _tiny_cfg(**kw) -> FusionConfig:
    return FusionConfig(
        text_dim=6, image_dim=5, audio_dim=4, hidden_dim=8, embed_dim=4, audio_lstm_hidden=3, **kw
    )


def test_meanmax_is_the_default_and_reads_both_directions():
    model = FusionModel(_tiny_cfg(), n_genres=2)
    assert model.cfg.audio_pooling == "meanmax"
    assert model.audio_branch.lstm.bidirectional
    assert model.audio_branch.proj[0].in_features == 4 * 3  # mean + max of 2 directions


def test_a_checkpoint_without_the_field_keeps_the_legacy_pooling(tmp_path):
    """Checkpoints written before ``audio_pooling`` existed were trained with last_mean; they
    load with it and give the same outputs as before."""
    legacy = FusionModel(_tiny_cfg(audio_pooling="last_mean"), n_genres=2, init_seed=0).eval()
    path = tmp_path / "fusion.pt"
    save_fusion(path, legacy, {"genres": ["A", "B"]})
    state, config, meta = load_checkpoint(path)
    del config["audio_pooling"]  # as an older version wrote it
    save_checkpoint(path, state, config, meta)
    loaded, _ = load_fusion(path, device="cpu")
    assert loaded.cfg.audio_pooling == "last_mean"
    assert not loaded.audio_branch.lstm.bidirectional
    x = (torch.randn(3, 6), torch.randn(3, 5), torch.randn(3, 7, 4))
    present = torch.ones(3, 3, dtype=torch.bool)
    with torch.no_grad():
        assert torch.equal(legacy(*x, present)[0], loaded(*x, present)[0])


def test_a_new_checkpoint_records_its_pooling(tmp_path):
    model = FusionModel(_tiny_cfg(), n_genres=2, init_seed=0).eval()
    save_fusion(tmp_path / "fusion.pt", model, {})
    _, config, _ = load_checkpoint(tmp_path / "fusion.pt")
    assert config["audio_pooling"] == "meanmax"
    loaded, _ = load_fusion(tmp_path / "fusion.pt", device="cpu")
    assert loaded.cfg == dataclasses.replace(model.cfg)


def test_the_pooling_is_part_of_the_fusion_build_key():
    """A build with another pooling retrains the fusion model (and so the policy on top)."""
    from mmrec.config import Config
    from mmrec.pipeline import fusion_build_key

    new, old = Config(), Config()
    old.fusion.audio_pooling = "last_mean"
    assert fusion_build_key(new, "fp") != fusion_build_key(old, "fp")


def test_only_the_legacy_pooling_gets_the_position_caveat():
    import numpy as np

    from mmrec.explain.audio import trailer_result

    heat = torch.rand(8, 40)
    att = trailer_result(heat, heat, 0.0, 0.1, 1.0, (1.0, 0.0), 0.0, 4, "aisfx")
    assert att.position_caveat is None  # default: meanmax
    att.audio_pooling = "last_mean"
    assert "last seconds" in att.position_caveat and "span_probe" in att.position_caveat
    assert np.isfinite(att.total)

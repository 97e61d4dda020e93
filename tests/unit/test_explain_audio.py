"""Trailer attributions for both audio front ends on small random models (no build).

``attribute_trailer_aisfx`` (Integrated Gradients on the aisfx CNN's last feature map, spread
back onto the spectrogram) and ``attribute_trailer`` (IG on the log-mel bins) run on a 2 s tone
in a 3 s window through a random fusion model and Q-network: shapes, orientation, completeness,
the span staying inside the sound, weight 0, and a randomised Q-network changing the map. The
explainer-level checks on a trained model are in ``test_explain.py`` (on the tiny build, whose
default audio front end is aisfx).

Stated tolerance: completeness within ``COMPLETENESS_REL`` (5 %) of the attributions' total
magnitude ``sum |attr|`` at 64 Gauss-Legendre steps, as in ``test_explain.py``.
"""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch

from mmrec.config import FeatureConfig, FusionConfig
from mmrec.explain.audio import (
    AISFX_SECONDS_PER_FRAME,
    attribute_trailer,
    attribute_trailer_aisfx,
    spread_cells,
)
from mmrec.explain.explainer import spearman
from mmrec.explain.forward import ItemContext, QForward, randomized_copy
from mmrec.models.fusion import FusionModel
from mmrec.rl.dqn import QNetwork

CLIP_SECONDS = 3.0  # the encoders' window
SOUND_SECONDS = 2.0  # the clip's real audio; the rest of the window is padded silence
STEPS = 64
COMPLETENESS_REL = 0.05


def _tone(path, seconds: float = SOUND_SECONDS, sr: int = 44_100, freq: float = 220.0) -> str:
    """A low tone with a rising noise burst in its second half (something to attribute)."""
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * sr)) / sr
    wave = 0.4 * np.sin(2 * np.pi * freq * t)
    wave[len(t) // 2 :] += 0.2 * rng.standard_normal(len(t) - len(t) // 2) * t[len(t) // 2 :]
    sf.write(path, wave.astype(np.float32), sr, format="WAV")
    return str(path)


def _qforward(audio_dim: int, audio_weight: float = 1.0, seed: int = 0):
    torch.manual_seed(seed)
    cfg = FusionConfig(hidden_dim=16, embed_dim=8, audio_dim=audio_dim, audio_lstm_hidden=8)
    model = FusionModel(cfg, n_genres=4).eval().requires_grad_(False)
    q_network = QNetwork(state_dim=10, item_dim=10, hidden=12, embed=7).eval()
    ctx = ItemContext(
        pos=0,
        movie_id=0,
        user_vec=torch.randn(7),
        side=torch.rand(2),
        present=torch.ones(3, dtype=torch.bool),
        weights=torch.tensor([1.0, 1.0, audio_weight]),
        branches={m: torch.rand(16) for m in ("text", "image", "audio")},
    )
    return QForward(model, q_network, ctx)


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return _tone(tmp_path_factory.mktemp("trailer") / "tone.wav")


@pytest.fixture(scope="module")
def aisfx():
    from mmrec.features.audio import AisfxEncoder

    return AisfxEncoder(FeatureConfig(audio_kind="aisfx", clip_seconds=CLIP_SECONDS), "cpu")


@pytest.fixture(scope="module")
def aisfx_part(aisfx, clip):
    return attribute_trailer_aisfx(_qforward(512), aisfx, clip, STEPS, span_seconds=1.0)


def _check_completeness(part) -> None:
    gap = part.q_input - part.q_baseline
    magnitude = float(part.heatmap.abs().sum())
    assert magnitude > 0
    err = abs(part.total - gap)
    assert err <= COMPLETENESS_REL * magnitude + 1e-7, (part.total, gap, magnitude)
    assert abs(part.delta - err) < 1e-5  # Captum's convergence delta is that same error
    assert part.total == pytest.approx(float(part.heatmap.double().sum()), abs=1e-6)


def test_spread_cells_keeps_the_sum_and_places_each_cell():
    cells = torch.arange(1.0, 7.0).reshape(3, 2)  # (T'=3, F'=2): 8 frames x 8 bands each
    heat = spread_cells(cells, frames=26, n_mels=16)
    assert heat.shape == (16, 26)
    assert float(heat.sum()) == pytest.approx(float(cells.sum()))
    # cell (t=1, f=0) = 3 covers frames 8..15 and the low bands 0..7, 3/64 per bin
    assert torch.allclose(heat[0:8, 8:16], torch.full((8, 8), 3.0 / 64))
    assert torch.allclose(heat[8:16, 16:24], torch.full((8, 8), 6.0 / 64))
    assert bool((heat[:, 24:] == 0).all())  # the frames the CNN's pooling drops


def test_aisfx_trailer_map_covers_the_spectrogram(aisfx, aisfx_part):
    from mmrec.features.audio import aisfx_frames

    part = aisfx_part
    frames = aisfx_frames(aisfx.cfg)  # 130 for 3 s
    assert part.method == "aisfx"
    assert tuple(part.heatmap.shape) == tuple(part.logmel.shape) == (96, frames)
    assert part.frame_scores.shape == (frames,)
    assert part.seconds_per_frame == pytest.approx(1024 / 44_100)
    # the spectrogram is aisfx's own input transposed, low frequencies first: a 220 Hz tone
    # lives in the lowest bands (frames 5..35: the tone alone, before the noise burst)
    tone = part.logmel[:, 5:35]
    assert float(tone[:16].mean()) > 2 * float(tone[-32:].mean())
    assert 0.0 <= float(part.logmel.min()) and float(part.logmel.max()) <= 1.0
    # constant over each 8-frame x 8-band cell
    cell = part.heatmap[8:16, 16:24]
    assert torch.allclose(cell, cell[0, 0].expand_as(cell))
    assert bool((part.heatmap[:, (frames // 8) * 8 :] == 0).all())
    assert "feature map" in part.resolution


def test_aisfx_trailer_completeness(aisfx_part):
    _check_completeness(aisfx_part)


def test_aisfx_span_stays_in_the_sound(aisfx_part):
    start, end = aisfx_part.span
    assert 0 <= start < end <= SOUND_SECONDS + 0.1
    assert end - start == pytest.approx(1.0, abs=AISFX_SECONDS_PER_FRAME)
    assert any(f"{SOUND_SECONDS:.1f} s long" in n for n in aisfx_part.notes)


def test_aisfx_audio_weight_zero_gives_a_zero_map(aisfx, clip):
    part = attribute_trailer_aisfx(_qforward(512, audio_weight=0.0), aisfx, clip, 8)
    assert part.q_input == pytest.approx(part.q_baseline, abs=1e-6)
    assert bool((part.heatmap == 0).all()) and part.total == 0.0


def test_aisfx_map_changes_with_a_randomised_q_network(aisfx, clip, aisfx_part):
    qf = _qforward(512)
    rand = QForward(qf.model, randomized_copy(qf.q_network, seed=1234), qf.ctx)
    other = attribute_trailer_aisfx(rand, aisfx, clip, 16, span_seconds=1.0)
    rho = spearman(aisfx_part.heatmap, other.heatmap)
    assert np.isfinite(rho) and rho < 0.9, rho


def test_logmel_trailer_map_and_completeness(clip):
    from mmrec.features.audio import AudioFrontend

    fcfg = FeatureConfig(audio_kind="logmel", clip_seconds=CLIP_SECONDS, audio_steps=16)
    frontend = AudioFrontend(fcfg)
    part = attribute_trailer(_qforward(fcfg.n_mels), frontend, clip, STEPS, span_seconds=1.0)
    frames = frontend.n_frames
    assert part.method == "logmel" and part.resolution == "one value per spectrogram bin"
    assert tuple(part.heatmap.shape) == tuple(part.logmel.shape) == (fcfg.n_mels, frames)
    _check_completeness(part)
    assert part.span[1] <= SOUND_SECONDS + 0.1


def test_spectrogram_image_scales_by_the_data_range():
    # aisfx spectrograms are 0..1 (0 = silence), not dB: loud frames must still be brighter
    from mmrec.explain import render

    spec = torch.zeros(96, 100)
    spec[:, :50] = torch.linspace(0.3, 0.9, 96)[:, None]  # sound, then padded silence
    img = render.spectrogram_image(spec, torch.zeros(96, 100), AISFX_SECONDS_PER_FRAME)
    grey = np.asarray(img.convert("L")).astype(int)
    width = img.width
    loud, silent = grey[:200, : width // 2 - 5], grey[:200, width // 2 + 5 :]
    assert loud.mean() > silent.mean() + 60
    assert loud.std() > 5  # the band ramp is visible, not saturated

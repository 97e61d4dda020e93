"""Fusion network: (image (+) audio) early, (+) text late -> item embedding -> genre logits.

Document section 4.2: text, image and audio each pass through their own branch; image and
audio are fused early into one vector, which is then joined with text late through fully
connected layers. The model is split in two so the dashboard stays fast:

* ``encode_branches`` runs the (relatively) expensive per-modality branches; its outputs are
  cached once per catalog;
* ``fuse`` is a few small matrix products; it re-runs whenever a modality-weight slider moves
  (5,000 items in a few milliseconds on a CPU).

With ``late_join="mlp_skip"`` (issue 18; ``fusion-skip.toml``) a bias-free linear path from the
joined ``[text, audiovisual]`` vector is added to the late FC layers' output: the embedding can
read both branches linearly, which on the real catalog is most of what the frozen features
carry (a linear probe of them beat the plain FC join by 3 micro F1 points).

Each branch vector is multiplied by ``weight * present`` before fusion. A weight of 0 or a
missing modality is replaced by an exact zero (``torch.where``, not a multiplication, so even
NaN/inf inputs cannot leak through), which makes the embedding independent of that input.

With ``init_seed`` every part (each branch, the early and late fusion layers, the genre head)
draws its initial weights from its own seed ``init_seed * 1009 + part``, so a text-only model
starts from the same text weights whatever the audio input size is: the rows of the modality
table stay comparable across audio front ends.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import torch
import torch.nn as nn

from mmrec.config import FusionConfig
from mmrec.models.audio_lstm import AudioLSTM, FeatureStandardizer

MODALITIES = ("text", "image", "audio")  # column order of `present` and `weights`
LATE_JOINS = ("mlp", "mlp_skip")  # FusionConfig.late_join


class MLPBranch(nn.Module):
    """Frozen-encoder vector ``(B, in_dim)`` -> branch vector ``(B, H)``."""

    def __init__(
        self, in_dim: int, out_dim: int, dropout: float, input_dropout: float | None = None
    ):
        super().__init__()
        self.standardize = FeatureStandardizer(in_dim)
        self.net = nn.Sequential(
            # input dropout: 384/1280-d inputs overfit small catalogs
            nn.Dropout(dropout if input_dropout is None else input_dropout),
            nn.Linear(in_dim, out_dim),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(out_dim, out_dim),
            nn.ReLU(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.standardize(x))  # (B, H)


def gate(x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """Scale ``x (B, H)`` by ``g (B,)``; exactly zero where ``g == 0`` whatever ``x`` holds."""
    g = g.unsqueeze(1)  # (B, 1)
    return torch.where(g > 0, x * g, torch.zeros((), dtype=x.dtype, device=x.device))  # (B, H)


@contextlib.contextmanager
def seeded_init(init_seed: int | None, part: int) -> Iterator[None]:
    """Build one part of the model from the CPU RNG seeded by ``(init_seed, part)``; the global
    RNG is restored afterwards. ``init_seed=None``: the global RNG as it stands (old behaviour).
    """
    if init_seed is None:
        yield
        return
    # Only the CPU generator: parameters are created on the CPU, and torch.manual_seed would
    # also reseed CUDA generators that fork_rng(devices=[]) does not restore.
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(init_seed * 1009 + part)
        yield


class FusionModel(nn.Module):
    """Multimodal item encoder with a multi-label genre head."""

    def __init__(self, cfg: FusionConfig, n_genres: int, init_seed: int | None = None):
        super().__init__()
        unknown = set(cfg.modalities) - set(MODALITIES)
        if unknown or not cfg.modalities:
            raise ValueError(f"FusionConfig.modalities must be a non-empty subset of {MODALITIES}")
        self.cfg = cfg
        self.n_genres = n_genres
        hidden = cfg.hidden_dim
        with seeded_init(init_seed, 0):
            self.text_branch = MLPBranch(cfg.text_dim, hidden, cfg.dropout, cfg.input_dropout)
        with seeded_init(init_seed, 1):
            self.image_branch = MLPBranch(cfg.image_dim, hidden, cfg.dropout, cfg.input_dropout)
        with seeded_init(init_seed, 2):
            self.audio_branch = AudioLSTM(
                cfg.audio_dim,
                cfg.audio_lstm_hidden,
                hidden,
                cfg.audio_max_steps,
                cfg.dropout,
                cfg.audio_pooling,
            )
        # Early fusion: poster and trailer are both "look and feel" signals of one item.
        with seeded_init(init_seed, 3):
            self.early = nn.Sequential(
                nn.Linear(2 * hidden, hidden), nn.ReLU(), nn.Dropout(cfg.dropout)
            )
        # Late fusion: the synopsis joins the audiovisual vector through FC layers.
        with seeded_init(init_seed, 4):
            self.late = nn.Sequential(
                nn.Linear(2 * hidden, hidden),
                nn.ReLU(),
                nn.Dropout(cfg.dropout),
                nn.Linear(hidden, cfg.embed_dim),
            )
        if cfg.late_join not in LATE_JOINS:
            raise ValueError(
                f"FusionConfig.late_join must be one of {LATE_JOINS}, got {cfg.late_join!r}"
            )
        # "mlp_skip": a linear path from [text, audiovisual] to the embedding beside the FC
        # layers (a residual join), so the genre head can read both branches linearly.
        self.late_skip = None
        if cfg.late_join == "mlp_skip":
            with seeded_init(init_seed, 7):
                self.late_skip = nn.Linear(2 * hidden, cfg.embed_dim, bias=False)
        # Linear head: genres stay linearly readable from the embedding, which is what the
        # recommender's linear/ridge user models and kNN rely on.
        with seeded_init(init_seed, 5):
            self.genre_head = nn.Linear(cfg.embed_dim, n_genres)
        enabled = torch.tensor([m in cfg.modalities for m in MODALITIES], dtype=torch.float32)
        self.register_buffer("enabled", enabled)  # (3,) 1 for the modalities this model uses

    @property
    def device(self) -> torch.device:
        return self.enabled.device

    def encode_branches(
        self, text: torch.Tensor, image: torch.Tensor, audio: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``text (B, 384), image (B, 1280), audio (B, T, F)`` -> three ``(B, H)`` vectors.

        Disabled modalities return zeros without running their branch.
        """
        batch = text.shape[0]
        zeros = text.new_zeros(batch, self.cfg.hidden_dim)  # (B, H)
        t = self.text_branch(text) if "text" in self.cfg.modalities else zeros  # (B, H)
        i = self.image_branch(image) if "image" in self.cfg.modalities else zeros  # (B, H)
        a = self.audio_branch(audio) if "audio" in self.cfg.modalities else zeros  # (B, H)
        return t, i, a

    def fuse(
        self,
        t: torch.Tensor,
        i: torch.Tensor,
        a: torch.Tensor,
        present: torch.Tensor,
        weights: torch.Tensor | Sequence[float] | None = None,
    ) -> torch.Tensor:
        """Branch vectors ``(B, H)`` x3, ``present (B, 3)`` bool, ``weights (3,)`` or ``(B, 3)``
        in [0, 1] (text, image, audio; None = all 1) -> item embedding ``(B, D)``."""
        weights = self._weights(weights, t.shape[0])  # (B, 3)
        g = weights * present.to(weights.dtype) * self.enabled  # (B, 3)
        t = gate(t, g[:, 0])  # (B, H)
        i = gate(i, g[:, 1])  # (B, H)
        a = gate(a, g[:, 2])  # (B, H)
        audiovisual = self.early(torch.cat([i, a], dim=1))  # (B, H)
        joined = torch.cat([t, audiovisual], dim=1)  # (B, 2H)
        if self.late_skip is None:
            return self.late(joined)  # (B, D)
        return self.late(joined) + self.late_skip(joined)  # (B, D)

    def forward(
        self,
        text: torch.Tensor,
        image: torch.Tensor,
        audio: torch.Tensor,
        present: torch.Tensor,
        weights: torch.Tensor | Sequence[float] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Raw features -> ``(embedding (B, D), genre_logits (B, G))``."""
        t, i, a = self.encode_branches(text, image, audio)  # (B, H) x3
        embedding = self.fuse(t, i, a, present, weights)  # (B, D)
        return embedding, self.genre_head(embedding)  # (B, D), (B, G)

    def _weights(self, weights, batch: int) -> torch.Tensor:
        if weights is None:
            return torch.ones(batch, 3, device=self.device)
        w = torch.as_tensor(weights, dtype=torch.float32, device=self.device)
        if w.shape not in ((3,), (batch, 3)):
            raise ValueError(
                f"modality weights must have shape (3,) or ({batch}, 3), got {tuple(w.shape)}"
            )
        if not bool(((w >= 0) & (w <= 1)).all()):
            raise ValueError(
                f"modality weights must lie in [0, 1], got {w.tolist() if w.ndim == 1 else 'a row outside'}"
            )
        return w.expand(batch, 3)  # (B, 3)

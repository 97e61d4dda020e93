"""Audio branch: an LSTM over the trailer's frame sequence (document section 4.2).

Input is the cached ``(T, F)`` sequence from ``mmrec.features`` (log-mel frames, T~128 and
F~64, or aisfx blocks, T~6-12 and F=512). Long sequences are average-pooled in time first:
neighbouring 23 ms mel frames carry nearly the same information, and a 4x shorter sequence
makes the LSTM (the slowest part of training on CPU) 4x cheaper.

How the LSTM's outputs become one vector is ``FusionConfig.audio_pooling``:

* ``"meanmax"`` (default): a bidirectional LSTM, then the mean and the max over time of its
  outputs. Every step enters the summary the same way wherever it sits in the clip, so a sound
  counts the same at 2 s as at 12 s (``python -m mmrec.eval.span_probe`` measures this on a
  catalog: the trailer map's span follows a sound moved in time).
* ``"last_mean"`` (checkpoints written before the field existed): a forward LSTM, its last
  state ``h_n`` and the mean of its outputs. ``h_n`` is a summary that favours the last steps,
  and on the 2,000-film demo the trailer attribution sat mostly in the clip's last third
  (a position effect of the model, reported faithfully by the attribution).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


class FeatureStandardizer(nn.Module):
    """Per-feature ``(x - mean) / std`` with statistics fitted once on the training items.

    The frozen encoders produce very different scales (MiniLM unit vectors, EfficientNet
    activations up to ~10, log-mel in dB), so every branch starts by standardising. The
    statistics are buffers: they travel with the checkpoint.
    """

    def __init__(self, dim: int):
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))

    @torch.no_grad()
    def fit(self, x: torch.Tensor) -> None:
        """Fit on ``x`` of shape (N, dim) or (N, T, dim) (present items only)."""
        flat = x.reshape(-1, x.shape[-1]).float()  # (N*T, dim)
        if flat.shape[0] == 0:
            return
        self.mean.copy_(flat.mean(0))
        # Floor avoids blowing up constant features (e.g. silent mel bands).
        self.std.copy_(flat.std(0, unbiased=False).clamp_min(1e-3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


POOLINGS = ("meanmax", "last_mean")  # FusionConfig.audio_pooling values; see the docstring


class AudioLSTM(nn.Module):
    """``(B, T, F)`` frame sequence -> ``(B, H)`` audio branch vector."""

    def __init__(
        self,
        n_features: int,
        lstm_hidden: int,
        out_dim: int,
        max_steps: int,
        dropout: float,
        pooling: str = "meanmax",
    ):
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"audio_pooling must be one of {POOLINGS}, got {pooling!r}")
        self.max_steps = max_steps
        self.pooling = pooling
        self.standardize = FeatureStandardizer(n_features)
        bidirectional = pooling == "meanmax"
        self.lstm = nn.LSTM(n_features, lstm_hidden, batch_first=True, bidirectional=bidirectional)
        # meanmax: mean and max of the (B, T', 2L) outputs -> 4L; both treat every step alike,
        # and reading both directions gives each step context from either side.
        # last_mean: last state (order of events) + mean over steps (a short gradient path for
        # every frame) -> 2L; the last state leans on the clip's end.
        summary_dim = 4 * lstm_hidden if bidirectional else 2 * lstm_hidden
        self.proj = nn.Sequential(nn.Linear(summary_dim, out_dim), nn.ReLU(), nn.Dropout(dropout))

    def pool_time(self, x: torch.Tensor) -> torch.Tensor:
        """Average-pool ``(B, T, F)`` to at most ``max_steps`` steps."""
        steps = x.shape[1]
        if steps <= self.max_steps:
            return x
        factor = -(-steps // self.max_steps)  # ceil division
        x = x.transpose(1, 2)  # (B, F, T)
        x = F.avg_pool1d(x, kernel_size=factor, stride=factor, ceil_mode=True)  # (B, F, T')
        return x.transpose(1, 2)  # (B, T', F)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        """``audio (B, T, F)`` -> ``(B, H)``."""
        # Pool before standardising: the affine per-feature map commutes with averaging,
        # and the pooled tensor is up to 8x smaller.
        x = self.standardize(self.pool_time(audio))  # (B, T', F)
        outputs, (h_n, _) = self.lstm(x)  # (B, T', L or 2L), (1 or 2, B, L)
        if self.pooling == "meanmax":
            summary = torch.cat([outputs.mean(1), outputs.amax(1)], dim=1)  # (B, 4L)
        else:
            summary = torch.cat([h_n[-1], outputs.mean(1)], dim=1)  # (B, 2L)
        return self.proj(summary)  # (B, H)

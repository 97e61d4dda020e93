"""Trailer attributions: Integrated Gradients on the log-mel spectrogram.

The clip is decoded and turned into the same fixed-length log-mel spectrogram the feature
store pooled (``AudioFrontend.clip_logmel``); Integrated Gradients then walks from digital
silence (every bin at the -100 dB floor, the value a silent or padded stretch has) to the
trailer's spectrogram through the differentiable pooling (``sequence_from_logmel``), the audio
LSTM, the fusion and Q. The result is a signed ``(n_mels, frames)`` map that sums to
``Q(trailer) - Q(silence)`` up to the convergence delta. Summed over mel bands it gives a score
per frame; the window of ``span_seconds`` with the largest positive sum is the "most
influential" stretch the page plays from.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from captum.attr import IntegratedGradients

from mmrec.explain.forward import QForward

SILENCE_DB = -100.0  # 10 * log10(LOGMEL_FLOOR): the log-mel value of digital silence


@dataclass
class TrailerAttribution:
    heatmap: torch.Tensor  # (n_mels, frames) signed attributions, low frequencies first
    logmel: torch.Tensor  # (n_mels, frames) the clip's log-mel spectrogram in dB
    frame_scores: np.ndarray  # (frames,) attributions summed over mel bands
    seconds_per_frame: float  # hop / sample rate
    span: tuple[float, float]  # (start s, end s) of the most influential stretch
    span_score: float  # sum of attributions inside the span
    total: float
    q_input: float  # Q with the trailer
    q_baseline: float  # Q with a silent trailer
    delta: float  # convergence delta
    steps: int
    notes: list[str] = field(default_factory=list)


def best_span(
    frame_scores: np.ndarray, width: int, n_active: int | None = None
) -> tuple[int, float]:
    """Start frame and summed score of the most influential ``width``-frame window.

    Only windows inside the first ``n_active`` frames (the real audio, not the silence a short
    clip is padded with) are considered. The window that raises the score most wins; if no
    window raises it, the one that lowers it most."""
    n = len(frame_scores) if n_active is None else max(1, min(int(n_active), len(frame_scores)))
    width = max(1, min(int(width), n))
    sums = np.convolve(frame_scores[:n], np.ones(width), mode="valid")  # (n - width + 1,)
    start = int(np.argmax(sums)) if sums.max() > 0 else int(np.argmin(sums))
    return start, float(sums[start])


def attribute_trailer(
    qf: QForward,
    audio_frontend,
    clip: str,
    steps: int,
    method: str = "gausslegendre",
    span_seconds: float = 3.0,
    internal_batch_size: int | None = None,
) -> TrailerAttribution:
    """Spectrogram heatmap of ``Q_u(s, a)`` for this trailer (see the module docstring)."""
    logmel = torch.from_numpy(audio_frontend.clip_logmel(clip)).unsqueeze(0)  # (1, M, frames)
    silence = torch.full_like(logmel, SILENCE_DB)  # (1, M, frames)

    def forward(spec: torch.Tensor) -> torch.Tensor:
        return qf.from_logmel(audio_frontend, spec)  # (B,)

    ig = IntegratedGradients(forward)
    attr, delta = ig.attribute(
        logmel,
        baselines=silence,
        n_steps=int(steps),
        method=method,
        internal_batch_size=internal_batch_size,
        return_convergence_delta=True,
    )
    heat = attr[0].detach().float()  # (M, frames)
    frame_scores = heat.sum(dim=0).double().numpy()  # (frames,)
    sec_per_frame = float(audio_frontend.cfg.hop_length) / float(audio_frontend.sample_rate)
    sounding = np.flatnonzero((logmel[0] > SILENCE_DB + 1e-3).any(dim=0).numpy())
    n_active = int(sounding[-1]) + 1 if len(sounding) else len(frame_scores)
    width = max(1, min(round(span_seconds / sec_per_frame), n_active))
    start, span_score = best_span(frame_scores, width, n_active)
    with torch.no_grad():
        q_in, q_base = (float(v) for v in forward(torch.cat([logmel, silence])))
    notes = []
    if span_score <= 0:
        notes.append("no stretch of the trailer raises the score; the span shown lowers it most")
    if n_active < len(frame_scores):
        notes.append(
            f"the clip is {n_active * sec_per_frame:.1f} s long; the rest of the "
            f"{len(frame_scores) * sec_per_frame:.0f} s window is silence and carries no attribution"
        )
    return TrailerAttribution(
        heatmap=heat,
        logmel=logmel[0],
        frame_scores=frame_scores,
        seconds_per_frame=sec_per_frame,
        span=(start * sec_per_frame, (start + width) * sec_per_frame),
        span_score=span_score,
        total=float(attr.sum()),
        q_input=q_in,
        q_baseline=q_base,
        delta=float(delta.abs().max()),
        steps=int(steps),
        notes=notes,
    )

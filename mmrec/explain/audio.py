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


def best_span(frame_scores: np.ndarray, width: int) -> tuple[int, float]:
    """Start frame of the ``width``-frame window with the largest summed score, and that sum."""
    width = max(1, min(int(width), len(frame_scores)))
    sums = np.convolve(frame_scores, np.ones(width), mode="valid")  # (frames - width + 1,)
    start = int(np.argmax(sums))
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
    start, span_score = best_span(frame_scores, round(span_seconds / sec_per_frame))
    width = max(1, min(round(span_seconds / sec_per_frame), len(frame_scores)))
    with torch.no_grad():
        q_in, q_base = (float(v) for v in forward(torch.cat([logmel, silence])))
    notes = []
    if span_score <= 0:
        notes.append("no stretch of the trailer raises the score; the span shown lowers it least")
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

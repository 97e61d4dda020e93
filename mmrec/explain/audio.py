"""Trailer attributions: Integrated Gradients onto the trailer's log-mel spectrogram.

Both audio front ends (``FeatureConfig.audio_kind``) give the same result: a signed
``(n_mels, frames)`` map over the clip's spectrogram (low frequencies first) that sums to
``Q(trailer) - Q(silence)`` up to the convergence delta. Summed over mel bands it gives a score
per frame; the window of ``span_seconds`` with the largest positive sum is the "most
influential" stretch the page plays from. How the map is obtained differs:

- ``"logmel"`` (:func:`attribute_trailer`): the clip is decoded and turned into the same
  fixed-length log-mel spectrogram the feature store pooled (``AudioFrontend.clip_logmel``);
  Integrated Gradients walks from digital silence (every bin at the -100 dB floor, the value a
  silent or padded stretch has) to the trailer's spectrogram through the differentiable pooling
  (``sequence_from_logmel``), the audio LSTM, the fusion and Q. One attribution per
  spectrogram bin (64 mels x ~23 ms frames).

- ``"aisfx"`` (:func:`attribute_trailer_aisfx`): a *layer* attribution, like the poster's
  feature-map stage, not one on the raw spectrogram bins. The clip's normalised 96-mel
  spectrogram (``AisfxEncoder.preprocess``) runs once through the aisfx CNN to its last
  feature map ``(512, frames_used // 8, 12)`` (the frames any window reads), as does digital
  silence (all zeros; computed once per encoder and cached). Integrated Gradients then walks
  from the silence map to the clip's map through the windowed pooling (``sequence_from_map``),
  the audio LSTM, the fusion and Q, which is cheap per step. (IG on the raw spectrogram would
  need the CNN forward and backward at every step: too slow for the page's budget on a CPU.)
  Summed over the 512 channels this is a ``(frames_used // 8, 12)`` grid of cells of 8 frames x
  8 mel bands (~0.19 s each); every cell's attribution is spread evenly over the 64 spectrogram
  bins it covers, so the map is drawn on the spectrogram and still sums to the same total. The
  map's resolution is that grid: it says which ~0.19 s x 8-band patches of the CNN's last map
  the score comes from, not which single bins (each cell's receptive field in the spectrogram is
  wider than the patch it is drawn on). Frames no pooling window reads (the clip's last ~0.5 s,
  which the CNN never sees) get 0. Two properties of aisfx's pooling show in the map: the max
  over each window passes gradient only to the step where a channel peaks, and the mean over
  frequency gives a channel the same gradient in all 12 bands at a step, so differences between
  bands come from how strongly each band activates the channels the model weighs. Both maps come
  from the same CNN the feature store ran (its int8 copy on CPU), so the pooled clip map is
  exactly the cached feature and ``q_input`` is the ranked Q.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field

import numpy as np
import torch

from mmrec.explain.forward import QForward, integrated_gradients

SILENCE_DB = -100.0  # 10 * log10(LOGMEL_FLOOR): the log-mel value of digital silence
AISFX_SILENCE = 0.0  # aisfx's normalised log10(1e4 x + 1) of digital silence
AISFX_SECONDS_PER_FRAME = 1024 / 44_100  # aisfx spectrogram hop / sample rate

# feature map of an all-silent clip per aisfx encoder and clip length: the same for every
# trailer, so it is computed once (a CNN forward is the costly part of a trailer explanation)
_SILENCE_MAPS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


@dataclass
class TrailerAttribution:
    heatmap: torch.Tensor  # (n_mels, frames) signed attributions, low frequencies first
    logmel: torch.Tensor  # (n_mels, frames) the clip's log-mel spectrogram (dB or aisfx 0..1)
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
    method: str = "logmel"  # "logmel": IG per spectrogram bin; "aisfx": IG on the CNN's last map
    audio_pooling: str = "meanmax"  # the audio branch's FusionConfig.audio_pooling

    @property
    def position_caveat(self) -> str | None:
        """A warning for the page when the model's audio branch is known to weigh the clip's
        end (the legacy ``last_mean`` pooling: on the 2,000-film demo 57.5% of |attribution|
        sat in the last third and the span followed a moved sound in 3 of 24 rotations,
        ``python -m mmrec.eval.span_probe``); None for the position-invariant pooling."""
        if self.audio_pooling != "last_mean":
            return None
        return (
            "Read with care: this model's trailer branch is an older one that listens mostly to "
            "the last seconds of a clip (moving the sound in time rarely moved the span; "
            "`python -m mmrec.eval.span_probe` measures it), so the span may say where the "
            "model listens more than which sound is most distinctive. Rebuilding the models "
            "(`python -m mmrec build`) gives a branch that weighs every second alike."
        )

    @property
    def resolution(self) -> str:
        """What one independent value of the heatmap covers, in words (for captions)."""
        if self.method == "aisfx":
            from mmrec.features.audio import AISFX_POOL

            cell = AISFX_POOL * self.seconds_per_frame
            return f"aisfx CNN feature map, {cell:.2f} s × {AISFX_POOL} mel bands per cell"
        return "one value per spectrogram bin"


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


def sounding_frames(spec: torch.Tensor, silence: float) -> int:
    """Frames up to the last one with any band above ``silence`` (the clip's real audio; the
    rest is the padding of a short clip). ``spec (n_mels, frames)``; all silent -> all frames.
    Padding is digital silence, exactly ``silence`` in both front ends."""
    sounding = np.flatnonzero((spec > silence + 1e-6 * max(1.0, abs(silence))).any(dim=0).numpy())
    return int(sounding[-1]) + 1 if len(sounding) else int(spec.shape[1])


def trailer_result(
    heat: torch.Tensor,
    spec: torch.Tensor,
    silence: float,
    seconds_per_frame: float,
    span_seconds: float,
    q: tuple[float, float],
    delta: float,
    steps: int,
    method: str,
) -> TrailerAttribution:
    """The part both front ends share: frame scores, the influential span, notes.

    ``heat``, ``spec`` ``(n_mels, frames)``; ``silence`` the spectrogram value of digital
    silence; ``q`` (Q with the trailer, Q with the silent baseline)."""
    heat = heat.detach().float().cpu()  # (M, frames)
    spec = spec.detach().float().cpu()  # (M, frames)
    frame_scores = heat.sum(dim=0).double().numpy()  # (frames,)
    n_active = sounding_frames(spec, silence)
    width = max(1, min(round(span_seconds / seconds_per_frame), n_active))
    start, span_score = best_span(frame_scores, width, n_active)
    notes = []
    if span_score <= 0:
        notes.append("no stretch of the trailer raises the score; the span shown lowers it most")
    if n_active < len(frame_scores):
        notes.append(
            f"the clip is {n_active * seconds_per_frame:.1f} s long; the rest of the "
            f"{len(frame_scores) * seconds_per_frame:.0f} s window is silence and carries no "
            "attribution"
        )
    return TrailerAttribution(
        heatmap=heat,
        logmel=spec,
        frame_scores=frame_scores,
        seconds_per_frame=float(seconds_per_frame),
        span=(start * seconds_per_frame, (start + width) * seconds_per_frame),
        span_score=span_score,
        total=float(heat.double().sum()),
        q_input=float(q[0]),
        q_baseline=float(q[1]),
        delta=float(delta),
        steps=int(steps),
        notes=notes,
        method=method,
    )


def attribute_trailer(
    qf: QForward,
    audio_frontend,
    clip: str,
    steps: int,
    method: str = "gausslegendre",
    span_seconds: float = 3.0,
    internal_batch_size: int | None = None,
) -> TrailerAttribution:
    """Log-mel front end: spectrogram heatmap of ``Q_u(s, a)`` for this trailer, one value per
    bin (see the module docstring)."""
    logmel = torch.from_numpy(audio_frontend.clip_logmel(clip)).unsqueeze(0)  # (1, M, frames)
    silence = torch.full_like(logmel, SILENCE_DB)  # (1, M, frames)

    def forward(spec: torch.Tensor) -> torch.Tensor:
        return qf.from_logmel(audio_frontend, spec)  # (B,)

    attr, delta, q = integrated_gradients(
        forward, logmel, silence, steps, method, internal_batch_size
    )
    sec_per_frame = float(audio_frontend.cfg.hop_length) / float(audio_frontend.sample_rate)
    return trailer_result(
        attr[0], logmel[0], SILENCE_DB, sec_per_frame, span_seconds, q, delta, steps, "logmel"
    )


def silence_map(aisfx_encoder, frames: int) -> torch.Tensor:
    """``(1, 512, frames_used // 8, 12)``: the last map of an all-silent clip from the trunk the
    feature store runs, cached per encoder and clip length."""
    maps = _SILENCE_MAPS.setdefault(aisfx_encoder, {})
    if frames not in maps:
        from mmrec.features.audio import AISFX_MELS

        silence = torch.full((1, frames, AISFX_MELS), AISFX_SILENCE)  # (1, frames, 96)
        with torch.no_grad():
            maps[frames] = aisfx_encoder.fast_feature_map(silence).contiguous()
    return maps[frames]


def spread_cells(cells: torch.Tensor, frames: int, n_mels: int) -> torch.Tensor:
    """``cells (T', F')`` -> ``(n_mels, frames)``, low frequencies first: each cell's value
    divided evenly over the 8 frames (the CNN's time pooling) x ``n_mels // F'`` bins it covers
    (cell ``(t, f)``: frames ``[8t, 8t + 8)``, bins ``[8f, 8f + 8)`` for aisfx). Frames past
    ``8 T'`` get 0, so the map sums to what the cells sum to."""
    from mmrec.features.audio import AISFX_POOL

    n_f = cells.shape[1]
    k_t, k_f = AISFX_POOL, n_mels // n_f
    dense = cells.repeat_interleave(k_t, dim=0).repeat_interleave(k_f, dim=1) / (k_t * k_f)
    dense = dense[:frames]  # (min(8 T', frames), n_mels)
    out = torch.zeros(frames, n_mels, dtype=cells.dtype, device=cells.device)  # (frames, M)
    out[: dense.shape[0]] = dense
    return out.T.contiguous()  # (n_mels, frames)


def attribute_trailer_aisfx(
    qf: QForward,
    aisfx_encoder,
    clip: str,
    steps: int,
    method: str = "gausslegendre",
    span_seconds: float = 3.0,
    internal_batch_size: int | None = None,
) -> TrailerAttribution:
    """aisfx front end: Integrated Gradients on the CNN's last feature map, spread back onto
    the clip's ``(96, frames)`` spectrogram in 8-frame x 8-band cells (see the module
    docstring)."""
    spec = aisfx_encoder.preprocess(clip).unsqueeze(0)  # (1, frames, 96)
    frames, n_mels = int(spec.shape[1]), int(spec.shape[2])
    fm = aisfx_encoder.fast_feature_map(spec).contiguous()  # (1, 512, T', 12), as cached
    fm_silence = silence_map(aisfx_encoder, frames)  # (1, 512, T', 12)

    def forward(feature_map: torch.Tensor) -> torch.Tensor:
        return qf.from_aisfx_map(aisfx_encoder, feature_map)  # (B,)

    attr, delta, q = integrated_gradients(
        forward, fm, fm_silence, steps, method, internal_batch_size
    )
    cells = attr[0].sum(dim=0).float().cpu()  # (T', 12): channels summed, sign kept
    heat = spread_cells(cells, frames, n_mels)  # (96, frames)
    return trailer_result(
        heat,
        spec[0].T,  # (96, frames)
        AISFX_SILENCE,
        AISFX_SECONDS_PER_FRAME,
        span_seconds,
        q,
        delta,
        steps,
        "aisfx",
    )

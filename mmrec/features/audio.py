"""Trailer audio: decoding, the log-mel front end for the audio LSTM, and the frozen aisfx CNN.

Two feature kinds (``FeatureConfig.audio_kind``):

- ``"logmel"`` (default): mono 22.05 kHz -> log-mel spectrogram (64 mels, hop 512) -> frames
  average-pooled to a fixed ``T = audio_steps`` sequence (T, 64). No learned weights here: the
  LSTM that reads the sequence is trained inside the fusion model. ``logmel_to_sequence`` is
  the torch-differentiable step from spectrogram to sequence, so explanations can attribute
  the item embedding back onto the spectrogram.
- ``"aisfx"``: the pretrained sound-effects CNN from the ``aisfx`` package (ISMIR 2022
  "X-Sequential-CE"), frozen: 96-mel 44.1 kHz spectrogram, one 512-d vector per ~2.3 s block
  with 50 % overlap -> (T_blocks, 512).

Clips are padded / truncated to ``clip_seconds`` so every item has the same T, and only the
first ``clip_seconds`` (at most ``max_audio_seconds``) are ever decoded: a two-hour file costs
what a trailer does. Unreadable, empty or non-audio files raise ``AudioDecodeError`` naming
the file; the feature store turns that into "audio missing" plus a warning.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from mmrec.config import FeatureConfig
from mmrec.features import autocast, resolve_precision

# Fixed affine scaling of log-mel dB values for the LSTM (not per-clip statistics, which would
# erase loudness differences between trailers). Music from immich-memories-music peak-normalised
# to 0 dBFS has band levels of roughly -60..+20 dB with these STFT settings; this maps that range
# to about [-2, 1.2]; digital silence (-100 dB) lands at -3.6.
LOGMEL_CENTER_DB = -10.0
LOGMEL_SCALE_DB = 25.0
LOGMEL_FLOOR = 1e-10  # power floor before the log: -100 dB

# aisfx's own spectrogram settings (aisfx/inference.py); the weights were trained on these
AISFX_SAMPLE_RATE = 44_100
AISFX_N_FFT = 2048
AISFX_HOP = 1024
AISFX_MELS = 96
AISFX_BLOCK = 100  # spectrogram frames per embedding (~2.3 s)
AISFX_NORM_MAX = 9.457798957824707  # 'original' min-max normalisation of the ISMIR paper
AISFX_DIM = 512


class AudioDecodeError(Exception):
    """A clip that cannot be used; the message names the file."""


def decode_audio(path: str | Path, seconds: float, sample_rate: int) -> np.ndarray:
    """First ``seconds`` of a file -> mono float32 (samples,) at ``sample_rate``.

    soundfile (libsndfile: wav, flac, ogg vorbis/opus, mp3) reads only the frames asked for;
    librosa's loader is the fallback for anything else. Raises AudioDecodeError naming the file.
    """
    import soundfile as sf

    path = Path(path)
    if not path.is_file():
        raise AudioDecodeError(f"{path}: file not found")
    try:
        with sf.SoundFile(str(path)) as fh:
            native_sr = int(fh.samplerate)
            want = int(math.ceil(seconds * native_sr))
            # frames is 0 or unknown for some streams; read() then stops at the real end
            frames = min(fh.frames, want) if fh.frames > 0 else want
            data = fh.read(frames=frames, dtype="float32", always_2d=True)  # (S, C)
        wave = data.mean(axis=1)  # (S,)
    except Exception as sf_exc:  # libsndfile refuses the format: try librosa's other decoders
        try:
            import librosa

            with warnings.catch_warnings():  # its own "PySoundFile failed" notice is noise here
                warnings.simplefilter("ignore")
                wave, native_sr = librosa.load(str(path), sr=None, mono=True, duration=seconds)
            wave = np.asarray(wave, dtype=np.float32)
        except Exception as exc:
            raise AudioDecodeError(
                f"{path}: unreadable audio ({type(sf_exc).__name__}: {sf_exc}; "
                f"fallback {type(exc).__name__}: {exc})"
            ) from exc
    if wave.size == 0:
        raise AudioDecodeError(f"{path}: audio has no samples")
    if not np.isfinite(wave).all():
        raise AudioDecodeError(f"{path}: audio contains NaN or infinite samples")
    if native_sr != sample_rate:
        import librosa

        wave = librosa.resample(wave, orig_sr=native_sr, target_sr=sample_rate, res_type="soxr_hq")
    return np.ascontiguousarray(wave, dtype=np.float32)


def fix_length(wave: np.ndarray, n_samples: int) -> np.ndarray:
    """Pad with silence or cut to exactly ``n_samples`` (S,) -> (n_samples,)."""
    if len(wave) >= n_samples:
        return wave[:n_samples]
    return np.pad(wave, (0, n_samples - len(wave)))


def mel_power(waves: torch.Tensor, n_fft: int, hop: int, mel_basis: torch.Tensor) -> torch.Tensor:
    """Mel power spectrogram, librosa's conventions (centred frames, zero padding, periodic
    Hann window, |STFT|^2). waves (B, S), mel_basis (M, n_fft//2+1) -> (B, M, 1 + S // hop).

    Done in torch, batched, in the calling thread: one clip at a time through numpy's
    multithreaded BLAS from several decode threads oversubscribes a small machine badly.
    """
    window = torch.hann_window(n_fft, periodic=True, dtype=waves.dtype, device=waves.device)
    spec = torch.stft(
        waves,
        n_fft=n_fft,
        hop_length=hop,
        window=window,
        center=True,
        pad_mode="constant",
        return_complex=True,
    )  # (B, n_fft//2+1, frames)
    power = spec.real.square() + spec.imag.square()  # (B, n_fft//2+1, frames)
    return torch.matmul(mel_basis, power)  # (B, M, frames)


def logmel_to_sequence(logmel: torch.Tensor, steps: int) -> torch.Tensor:
    """Log-mel dB (..., n_mels, frames) -> LSTM sequence (..., steps, n_mels). Differentiable.

    Average pooling over time (not striding) keeps every frame's energy in the sequence, so an
    attribution on the sequence spreads back over all the frames it summarises.
    """
    lead = logmel.shape[:-2]
    n_mels, frames = logmel.shape[-2:]
    x = logmel.reshape(-1, n_mels, frames)  # (B, n_mels, frames)
    x = F.adaptive_avg_pool1d(x, steps)  # (B, n_mels, steps)
    x = (x - LOGMEL_CENTER_DB) / LOGMEL_SCALE_DB  # (B, n_mels, steps)
    return x.transpose(1, 2).reshape(*lead, steps, n_mels)  # (..., steps, n_mels)


def logmel_version(cfg: FeatureConfig) -> str:
    """Everything that changes the log-mel sequences; part of the feature-cache key."""
    return (
        f"audio:logmel:sr={cfg.sample_rate}:clip={cfg.clip_seconds}:fft={cfg.n_fft}"
        f":hop={cfg.hop_length}:mels={cfg.n_mels}:steps={cfg.audio_steps}"
        f":scale={LOGMEL_CENTER_DB}/{LOGMEL_SCALE_DB}:v1"
    )


def aisfx_version(cfg: FeatureConfig, precision: str) -> str:
    """Everything that changes the aisfx sequences; part of the feature-cache key."""
    size = aisfx_checkpoint_path().stat().st_size
    return f"audio:aisfx:{size}:clip={cfg.clip_seconds}:hop={cfg.aisfx_hop}:{precision}:v1"


def aisfx_steps(cfg: FeatureConfig) -> int:
    """T_blocks of one clip: whole ~2.3 s blocks only (aisfx's drop_partial_block), >= 1."""
    n_frames = 1 + int(round(cfg.clip_seconds * AISFX_SAMPLE_RATE)) // AISFX_HOP
    hop = max(1, int(round(AISFX_BLOCK * cfg.aisfx_hop)))
    return max(1, (n_frames - AISFX_BLOCK) // hop + 1)


class AudioFrontend:
    """Decoding and the log-mel front end.

    ``load(path)`` -> (S,) waveform; ``logmel(wave)`` -> (n_mels, frames) dB;
    ``sequence(path)`` -> (T, n_mels) float32; ``sequence_from_logmel`` is the torch
    differentiable path from spectrogram to sequence.
    """

    def __init__(self, cfg: FeatureConfig):
        self.cfg = cfg
        self.sample_rate = int(cfg.sample_rate)
        self.n_samples = int(round(cfg.clip_seconds * cfg.sample_rate))
        self.steps = int(cfg.audio_steps)
        self.dim = int(cfg.n_mels)
        self._mel_basis: torch.Tensor | None = None

    @property
    def version(self) -> str:
        return logmel_version(self.cfg)

    @property
    def n_frames(self) -> int:
        """STFT frames of one clip (centred frames: 1 + samples // hop)."""
        return 1 + self.n_samples // int(self.cfg.hop_length)

    def load(self, path: str | Path, seconds: float | None = None) -> np.ndarray:
        """(S,) float32 mono at ``sample_rate``: the first ``seconds`` (default the clip length,
        never more than ``max_audio_seconds``)."""
        limit = min(seconds or self.cfg.clip_seconds, self.cfg.max_audio_seconds)
        return decode_audio(path, limit, self.sample_rate)

    @property
    def mel_basis(self) -> torch.Tensor:
        """(n_mels, n_fft // 2 + 1) librosa Slaney mel filter bank, built once."""
        if self._mel_basis is None:
            import librosa

            c = self.cfg
            basis = librosa.filters.mel(sr=self.sample_rate, n_fft=c.n_fft, n_mels=c.n_mels)
            self._mel_basis = torch.from_numpy(basis.astype(np.float32))
        return self._mel_basis

    def clip(self, path: str | Path) -> np.ndarray:
        """File -> (clip_samples,) float32: the first clip_seconds, silence-padded if short."""
        return fix_length(self.load(path), self.n_samples)

    def logmel_batch(self, waves: torch.Tensor) -> torch.Tensor:
        """(B, S) waveforms -> (B, n_mels, 1 + S // hop) log-mel power in dB (ref 1.0)."""
        mel = mel_power(waves, self.cfg.n_fft, self.cfg.hop_length, self.mel_basis)
        return 10.0 * torch.log10(mel.clamp(min=LOGMEL_FLOOR))  # (B, n_mels, frames)

    def logmel(self, wave: np.ndarray) -> np.ndarray:
        """(S,) waveform -> (n_mels, 1 + S // hop) float32 log-mel power in dB (ref 1.0)."""
        waves = torch.from_numpy(np.ascontiguousarray(wave, dtype=np.float32))[None]  # (1, S)
        return self.logmel_batch(waves)[0].numpy()

    def clip_logmel(self, path: str | Path) -> np.ndarray:
        """File -> fixed-length clip -> (n_mels, n_frames) dB (what ``sequence`` pools)."""
        return self.logmel(self.clip(path))

    def preprocess(self, path: str | Path) -> torch.Tensor:
        """File -> (n_mels, n_frames) log-mel dB tensor: the input of the differentiable
        ``sequence_from_logmel``, where spectrogram attributions live."""
        return torch.from_numpy(self.clip_logmel(path))

    def sequences(self, clips: np.ndarray) -> np.ndarray:
        """(B, clip_samples) clips -> (B, T, n_mels) float32, batched."""
        with torch.inference_mode():
            mel = self.logmel_batch(torch.from_numpy(clips))  # (B, n_mels, frames)
            return self.sequence_from_logmel(mel).numpy()  # (B, T, n_mels)

    def sequence_from_logmel(self, logmel: torch.Tensor) -> torch.Tensor:
        """(..., n_mels, frames) dB -> (..., T, n_mels); differentiable."""
        return logmel_to_sequence(logmel, self.steps)

    def sequence(self, path: str | Path) -> np.ndarray:
        """File -> (T, n_mels) float32 sequence for the audio LSTM."""
        mel = torch.from_numpy(self.clip_logmel(path))  # (n_mels, frames)
        return self.sequence_from_logmel(mel).numpy()  # (T, n_mels)


# ----------------------------------------------------------------------------- aisfx CNN


def aisfx_checkpoint_path() -> Path:
    try:
        import aisfx.inference
    except ImportError as exc:
        raise RuntimeError(
            "audio_kind='aisfx' needs the package aisfx (requirements-nodeps.txt)"
        ) from exc
    return Path(aisfx.inference.get_path_modelWeights())


def load_aisfx_checkpoint(path: str | Path | None = None) -> tuple[dict, dict]:
    """(weights, ds_dict) from the aisfx checkpoint, with ``weights_only=True``.

    The file pickles its ``ds_dict`` with numpy int64 scalars; exactly those numpy types are
    allow-listed, so the loader still refuses arbitrary objects.
    """
    from numpy._core.multiarray import scalar as np_scalar

    path = Path(path) if path else aisfx_checkpoint_path()
    allowed = [
        (np_scalar, "numpy.core.multiarray.scalar"),  # name used by numpy 1.x pickles
        np_scalar,
        np.dtype,
        np.dtypes.Int64DType,
        np.dtypes.Float64DType,
        np.dtypes.Float32DType,
    ]
    with torch.serialization.safe_globals(allowed):
        loaded = torch.load(path, weights_only=True, map_location="cpu")
    if not (isinstance(loaded, (tuple, list)) and len(loaded) == 2):
        raise ValueError(f"{path}: expected a (weights, ds_dict) pair")
    weights, ds_dict = loaded
    return weights, {k: (int(v[0]), int(v[1])) for k, v in ds_dict.items()}


def build_aisfx(path: str | Path | None = None) -> torch.nn.Module:
    """aisfx CrossNet with its pretrained weights, loaded strictly; eval mode."""
    from aisfx.models.cnn2d import CrossNet, EmbeddingNet

    weights, ds_dict = load_aisfx_checkpoint(path)
    # the architecture aisfx.inference.load_bestModel builds: max pooling, 3x3 kernels,
    # stride 1, 64 base channels (-> 512-d embedding)
    model = CrossNet(EmbeddingNet("max", 3, 1, 64), ds_dict, "cpu")
    model.load_state_dict(weights, strict=True)
    return model.eval()


class AisfxEncoder:
    """Frozen aisfx CNN: clip -> (T_blocks, 512).

    ``spectrogram(wave)`` -> (frames, 96); ``blocks(spec)`` -> (T_blocks, 100, 96);
    ``forward(blocks (B, 100, 96))`` -> (B, 512) differentiable; ``sequence(path)``.
    """

    def __init__(self, cfg: FeatureConfig, device: str | torch.device = "cpu"):
        self.cfg = cfg
        self.device = torch.device(device)
        # channels_last: faster oneDNN convolutions on CPU, same maths
        self.model = build_aisfx().requires_grad_(False)
        self.model.to(self.device, memory_format=torch.channels_last)
        self.n_samples = int(round(cfg.clip_seconds * AISFX_SAMPLE_RATE))
        self.block_hop = max(1, int(round(AISFX_BLOCK * cfg.aisfx_hop)))
        self.steps = aisfx_steps(cfg)
        self.precision = resolve_precision(cfg.precision, self.device)
        self.dim = AISFX_DIM
        self._mel_basis: torch.Tensor | None = None

    @property
    def version(self) -> str:
        return aisfx_version(self.cfg, self.precision)

    def clip(self, path: str | Path) -> np.ndarray:
        """File -> (clip_samples,) float32 at 44.1 kHz, silence-padded if short."""
        limit = min(self.cfg.clip_seconds, self.cfg.max_audio_seconds)
        return fix_length(decode_audio(path, limit, AISFX_SAMPLE_RATE), self.n_samples)

    @property
    def mel_basis(self) -> torch.Tensor:
        """(96, 1025) HTK mel filters with unit-sum rows, as aisfx's librosa path builds."""
        if self._mel_basis is None:
            import librosa

            basis = librosa.filters.mel(
                sr=AISFX_SAMPLE_RATE,
                n_fft=AISFX_N_FFT,
                n_mels=AISFX_MELS,
                fmin=0.0,
                fmax=AISFX_SAMPLE_RATE / 2,
                htk=True,
                norm=1.0,
            )
            self._mel_basis = torch.from_numpy(basis.astype(np.float32))
        return self._mel_basis

    def spectrogram_batch(self, waves: torch.Tensor) -> torch.Tensor:
        """(B, S) at 44.1 kHz -> (B, frames, 96) normalised log-mel as aisfx's librosa path
        computes it (peak-normalised audio, HTK mel, unit-sum filters, log10(1e4 x + 1), the
        paper's min-max scaling), in the (time, mel) layout its model reads. (aisfx's own
        librosa helper forgets that transpose; its Essentia path, used in the paper, has it.)"""
        peak = waves.abs().amax(dim=1, keepdim=True)  # (B, 1)
        waves = waves / torch.where(peak > 0, peak, torch.ones_like(peak))  # (B, S)
        mel = mel_power(waves, AISFX_N_FFT, AISFX_HOP, self.mel_basis)  # (B, 96, frames)
        mel = torch.log10(mel * 10_000.0 + 1.0) / AISFX_NORM_MAX
        return mel.transpose(1, 2).contiguous()  # (B, frames, 96)

    def spectrogram(self, wave: np.ndarray) -> np.ndarray:
        """(S,) at 44.1 kHz -> (frames, 96) float32."""
        waves = torch.from_numpy(np.ascontiguousarray(wave, dtype=np.float32))[None]  # (1, S)
        return self.spectrogram_batch(waves)[0].numpy()

    def blocks(self, spec: np.ndarray) -> np.ndarray:
        """(frames, 96) -> (T_blocks, 100, 96) overlapping windows (zero-padded if short)."""
        need = (self.steps - 1) * self.block_hop + AISFX_BLOCK
        if len(spec) < need:
            spec = np.pad(spec, ((0, need - len(spec)), (0, 0)))
        starts = np.arange(self.steps) * self.block_hop
        return np.stack([spec[s : s + AISFX_BLOCK] for s in starts])  # (T_blocks, 100, 96)

    def clip_blocks(self, path: str | Path) -> np.ndarray:
        """File -> (T_blocks, 100, 96) model input."""
        return self.blocks(self.spectrogram(self.clip(path)))

    def preprocess(self, path: str | Path) -> torch.Tensor:
        """File -> (T_blocks, 100, 96) tensor, the input of ``forward``."""
        return torch.from_numpy(self.clip_blocks(path))

    def forward(self, blocks: torch.Tensor) -> torch.Tensor:
        """(B, 100, 96) -> (B, 512) embeddings."""
        return self.model.get_embedding(blocks)  # (B, 512)

    @torch.inference_mode()
    def encode_blocks(self, blocks: np.ndarray, batch_size: int | None = None) -> np.ndarray:
        """(N, T_blocks, 100, 96) -> (N, T_blocks, 512) float32."""
        n = blocks.shape[0]
        flat = torch.from_numpy(blocks.reshape(n * self.steps, AISFX_BLOCK, AISFX_MELS))
        batch_size = int(batch_size or self.cfg.aisfx_batch_size)
        with autocast(self.precision, self.device):
            out = [
                self.forward(flat[i : i + batch_size].to(self.device)).float().cpu()
                for i in range(0, len(flat), batch_size)
            ]
        return torch.cat(out).reshape(n, self.steps, self.dim).numpy()

    def sequence(self, path: str | Path) -> np.ndarray:
        """File -> (T_blocks, 512) float32."""
        return self.encode_blocks(self.clip_blocks(path)[None])[0]

    def sequences(self, clips: np.ndarray) -> np.ndarray:
        """(B, clip_samples) clips at 44.1 kHz -> (B, T_blocks, 512) float32, batched."""
        with torch.inference_mode():
            spec = self.spectrogram_batch(torch.from_numpy(clips)).numpy()  # (B, frames, 96)
        return self.encode_blocks(np.stack([self.blocks(s) for s in spec]))

"""Trailer audio: the log-mel front end for the audio LSTM and the frozen aisfx CNN (decoding:
``mmrec.media``).

Two feature kinds (``FeatureConfig.audio_kind``):

- ``"logmel"`` (``logmel.toml``): mono 22.05 kHz -> log-mel spectrogram (64 mels, hop 512) -> frames
  average-pooled to a fixed ``T = audio_steps`` sequence (T, 64). No learned weights here: the
  LSTM that reads the sequence is trained inside the fusion model. ``logmel_to_sequence`` is
  the torch-differentiable step from spectrogram to sequence, so explanations can attribute
  the item embedding back onto the spectrogram.
- ``"aisfx"`` (the default): the pretrained sound-effects CNN from the ``aisfx`` package (ISMIR 2022
  "X-Sequential-CE"), frozen: 96-mel 44.1 kHz spectrogram, one 512-d vector per ~2.3 s block
  with 50 % overlap -> (T_blocks, 512).

Clips are padded / truncated to ``clip_seconds`` so every item has the same T, and only the
first ``clip_seconds`` (at most ``max_audio_seconds``) are ever decoded: a two-hour file costs
what a trailer does. Unreadable, empty or non-audio files raise ``AudioDecodeError`` naming
the file; the feature store turns that into "audio missing" plus a warning.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from mmrec.config import FeatureConfig
from mmrec.features import autocast, resolve_precision
from mmrec.media import (  # noqa: F401 (AudioDecodeError, decode_audio: re-exported)
    CALIBRATION,
    AudioDecodeError,
    calibration_paths,
    decode_audio,
    fix_length,
    has_music,
)

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
    if mel_basis.layout == torch.sparse_csr:  # 2 % of the bank is non-zero: 2.5x faster
        batch, bins, frames = power.shape
        flat = power.transpose(0, 1).reshape(bins, batch * frames)  # (bins, B * frames)
        mel = torch.sparse.mm(mel_basis, flat)  # (M, B * frames)
        return mel.reshape(-1, batch, frames).transpose(0, 1)  # (B, M, frames)
    return torch.matmul(mel_basis, power)  # (B, M, frames)


def sparse_bank(basis: np.ndarray) -> torch.Tensor:
    """A mel filter bank (M, bins) as a sparse CSR tensor for ``mel_power`` (each FFT bin
    feeds at most two triangular filters)."""
    import warnings

    with warnings.catch_warnings():  # "sparse CSR support is in beta"
        warnings.simplefilter("ignore", UserWarning)
        return torch.from_numpy(basis.astype(np.float32)).to_sparse_csr()


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
            self._mel_basis = sparse_bank(basis)
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


AISFX_POOL = 8  # the CNN's time (and frequency) downsampling: three 2x2 max pools


def aisfx_precision(cfg: FeatureConfig, device: str | torch.device, precision: str) -> str:
    """``"int8"`` when ``cfg.aisfx_precision`` asks for it (``"auto"``: on a CPU whose torch has
    the x86/fbgemm quantized engine, 2.5x the bf16 speed here); else the float precision the
    other encoders use (``precision``, already resolved). Part of the cache version."""
    want = str(cfg.aisfx_precision)
    if want not in ("auto", "int8", "float"):
        raise ValueError(f"features.aisfx_precision='{want}': expected auto, int8 or float")
    if want == "float" or not str(device).startswith("cpu"):
        return precision
    engines = set(torch.backends.quantized.supported_engines)
    has_engine = bool({"x86", "fbgemm"} & engines)
    if has_engine and has_music():  # the bundled tracks calibrate the int8 ranges
        return "int8"
    if want == "int8":
        raise RuntimeError(
            "features.aisfx_precision='int8' needs torch's x86 or fbgemm engine and the "
            "immich-memories-music package (its tracks calibrate the int8 ranges)"
        )
    return precision


def aisfx_version(cfg: FeatureConfig, precision: str) -> str:
    """Everything that changes the aisfx sequences; part of the feature-cache key.
    ``precision``: the resolved aisfx precision (``aisfx_precision``)."""
    size = aisfx_checkpoint_path().stat().st_size
    win, hop = aisfx_window(cfg)
    return (
        f"audio:aisfx:{size}:clip={cfg.clip_seconds}:win={win}:hop={hop}:{precision}"
        f":cal={CALIBRATION.tag}:v3"  # the named calibration set (mmrec.media.CALIBRATION)
    )


def aisfx_window(cfg: FeatureConfig) -> tuple[int, int]:
    """(width, hop) of one embedding window in feature-map steps: a ~2.3 s block of 100
    spectrogram frames is 12 steps of the CNN's last map (8 frames each)."""
    width = AISFX_BLOCK // AISFX_POOL
    return width, max(1, int(round(width * cfg.aisfx_hop)))


def aisfx_frames(cfg: FeatureConfig) -> int:
    """Spectrogram frames of one clip (centred STFT: 1 + samples // hop)."""
    return 1 + int(round(cfg.clip_seconds * AISFX_SAMPLE_RATE)) // AISFX_HOP


def aisfx_steps(cfg: FeatureConfig) -> int:
    """T of one clip's aisfx sequence: whole windows over the CNN's last map, >= 1."""
    width, hop = aisfx_window(cfg)
    map_t = aisfx_frames(cfg) // AISFX_POOL  # three floor-halvings of the time axis
    return max(1, (max(map_t, width) - width) // hop + 1)


def _conv_bn_relu(conv: torch.nn.Conv2d, bn: torch.nn.BatchNorm2d) -> list[torch.nn.Module]:
    import copy

    return [copy.deepcopy(conv), copy.deepcopy(bn), torch.nn.ReLU()]


class AisfxTrunk(torch.nn.Module):
    """aisfx's EmbeddingNet as one convolutional stack over a whole clip.

    The published model embeds ~2.3 s blocks (100 frames) one by one: 4 conv blocks, then the
    mean over frequency and the max over time. Convolutions and pooling commute with cutting
    the time axis, so running the stack once over the whole spectrogram and taking the max
    over 12-step windows of its last map (12 x 8 = 96 frames) gives every block's embedding
    at once, without recomputing the overlap (11 overlapping blocks cost 1.7x the whole clip).
    The only difference is at block edges, where a lone block sees zero padding and the
    whole-clip map sees the neighbouring audio.

    ``forward(spec (B, frames, 96))`` -> last feature map (B, 512, frames // 8, 12);
    ``AisfxEncoder`` feeds it only the ``frames_used`` frames that some window reads;
    ``QuantStub``/``DeQuantStub`` make it quantizable (identity while float).
    """

    def __init__(self, embedding_net: torch.nn.Module):
        from torch.ao.quantization import DeQuantStub, QuantStub

        super().__init__()
        layers: list[torch.nn.Module] = []
        blocks = [getattr(embedding_net, f"conv_block{i}") for i in range(1, 5)]
        for i, block in enumerate(blocks):
            layers += _conv_bn_relu(block.conv1, block.bn1)
            layers += _conv_bn_relu(block.conv2, block.bn2)
            if i < 3:  # the last block pools with (1, 1): identity
                layers.append(torch.nn.MaxPool2d(2))
        self.body = torch.nn.Sequential(*layers)
        self.quant, self.dequant = QuantStub(), DeQuantStub()

    def fusable(self) -> list[list[str]]:
        """Names of every (conv, bn, relu) triple, for ``fuse_modules``."""
        mods = list(self.body)
        return [
            [f"body.{i}", f"body.{i + 1}", f"body.{i + 2}"]
            for i, m in enumerate(mods)
            if isinstance(m, torch.nn.Conv2d)
        ]

    def forward(self, spec: torch.Tensor) -> torch.Tensor:
        return self.dequant(self.body(self.quant(spec.unsqueeze(1))))


def pool_windows(feature_map: torch.Tensor, width: int, hop: int, steps: int) -> torch.Tensor:
    """Last map (B, C, T', F') -> (B, steps, C): aisfx's pooling (mean over frequency, max over
    time) inside each window. Differentiable; short maps are zero-padded to one window."""
    x = feature_map.mean(dim=3)  # (B, C, T')
    need = (steps - 1) * hop + width
    if x.shape[2] < need:
        x = F.pad(x, (0, need - x.shape[2]))
    windows = x[:, :, :need].unfold(2, width, hop)  # (B, C, steps, width)
    return windows.amax(dim=3).transpose(1, 2)  # (B, steps, C)


def calibration_spectrograms(encoder: AisfxEncoder) -> torch.Tensor:
    """(n, frames, 96) spectrograms of the first ``CALIBRATION.seconds`` of the named bundled
    tracks of ``mmrec.media.CALIBRATION`` (plus one silent clip): the same on every machine
    and independent of the catalog, so adding movies never changes the int8 scales of movies
    already cached."""
    n = encoder.n_samples
    secs = CALIBRATION.seconds
    clips = [fix_length(decode_audio(p, secs, AISFX_SAMPLE_RATE), n) for p in calibration_paths()]
    clips.append(np.zeros(n, np.float32))
    with torch.inference_mode():
        return encoder.spectrogram_batch(torch.from_numpy(np.stack(clips)))


def quantize_trunk(trunk: AisfxTrunk, calibration: torch.Tensor) -> torch.nn.Module:
    """Static int8 copy of ``trunk``: conv+BN+ReLU fused, per-channel symmetric int8 weights,
    activation ranges from min/max over ``calibration`` (B, frames, 96). Embeddings keep a
    cosine of ~0.999 to the float trunk on trailer clips (tested)."""
    import copy

    from torch.ao.quantization import QConfig, convert, fuse_modules, prepare
    from torch.ao.quantization.observer import MinMaxObserver, PerChannelMinMaxObserver

    engines = torch.backends.quantized.supported_engines
    torch.backends.quantized.engine = "x86" if "x86" in engines else "fbgemm"
    q = fuse_modules(copy.deepcopy(trunk).eval(), trunk.fusable())
    q.qconfig = QConfig(
        # 7-bit activations: no overflow in fbgemm's AVX2 u8 x s8 kernels either
        activation=MinMaxObserver.with_args(quant_min=0, quant_max=127),
        weight=PerChannelMinMaxObserver.with_args(
            dtype=torch.qint8, qscheme=torch.per_channel_symmetric
        ),
    )
    prepare(q, inplace=True)
    with torch.inference_mode():
        for i in range(0, len(calibration), 2):
            q(calibration[i : i + 2])
    with warnings.catch_warnings():
        # torch 2.14 flags its eager quantized tensors as deprecated (pytorch#184982); they
        # work in the pinned release, and aisfx_precision="float" avoids them entirely
        warnings.filterwarnings("ignore", message=".*quantized tensor creation functions.*")
        convert(q, inplace=True)
    return q.eval()


class AisfxEncoder:
    """Frozen aisfx CNN: clip -> (T, 512), one 512-d vector per ~2.3 s window.

    ``spectrogram(wave)`` -> (frames, 96); ``feature_map(spec (B, frames, 96))`` -> the float
    trunk's last map (B, 512, T', 12), differentiable (explanations); ``sequence_from_map`` ->
    (B, T, 512); ``sequences(clips)`` is the fast batched path the feature store uses (int8 on
    CPU, see ``aisfx_precision``). ``forward(blocks (B, 100, 96))`` is the published
    block-by-block embedding, kept as the reference the whole-clip path is tested against.
    """

    def __init__(self, cfg: FeatureConfig, device: str | torch.device = "cpu"):
        self.cfg = cfg
        self.device = torch.device(device)
        self.model = build_aisfx().requires_grad_(False)  # float reference, CPU
        self.n_samples = int(round(cfg.clip_seconds * AISFX_SAMPLE_RATE))
        self.width, self.hop = aisfx_window(cfg)
        self.steps = aisfx_steps(cfg)
        self.float_precision = resolve_precision(cfg.precision, self.device)
        self.precision = aisfx_precision(cfg, self.device, self.float_precision)
        self.dim = AISFX_DIM
        self._mel_basis: torch.Tensor | None = None
        # float trunk (explanations; the fast path on CUDA), channels_last for oneDNN on CPU
        self.trunk = AisfxTrunk(self.model.embedding_net).eval().requires_grad_(False)
        self.trunk.to(self.device, memory_format=torch.channels_last)
        self._fast: torch.nn.Module | None = None
        # frames any window reads (e.g. 624 of a 15-s clip's 646): the CNN never sees the rest,
        # so no cell is computed that no window pools
        self.frames_used = ((self.steps - 1) * self.hop + self.width) * AISFX_POOL

    @property
    def version(self) -> str:
        return aisfx_version(self.cfg, self.precision)

    @property
    def fast(self) -> torch.nn.Module:
        """The trunk the feature store runs: int8 (calibrated on first use, ~1-2 s) or float."""
        if self._fast is None:
            if self.precision == "int8":
                self._fast = quantize_trunk(self.trunk.cpu(), calibration_spectrograms(self))
                self.trunk.to(self.device)
            else:
                self._fast = self.trunk
        return self._fast

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
            self._mel_basis = sparse_bank(basis)
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

    def clip_spectrogram(self, path: str | Path) -> np.ndarray:
        """File -> (frames, 96): the model input of one clip (what the store batches)."""
        return self.spectrogram(self.clip(path))

    def preprocess(self, path: str | Path) -> torch.Tensor:
        """File -> (frames, 96) tensor, the input of ``feature_map`` (attributions live here)."""
        return torch.from_numpy(self.clip_spectrogram(path))

    # -- reference: the published block-by-block embedding ------------------------------------
    def blocks(self, spec: np.ndarray, hop_frames: int | None = None) -> np.ndarray:
        """(frames, 96) -> (T, 100, 96) windows of 100 frames every ``hop_frames`` (default the
        whole-clip path's hop, 8 frames per map step), zero-padded if short."""
        hop = int(hop_frames or self.hop * AISFX_POOL)
        need = (self.steps - 1) * hop + AISFX_BLOCK
        if len(spec) < need:
            spec = np.pad(spec, ((0, need - len(spec)), (0, 0)))
        starts = np.arange(self.steps) * hop
        return np.stack([spec[s : s + AISFX_BLOCK] for s in starts])  # (T, 100, 96)

    def forward(self, blocks: torch.Tensor) -> torch.Tensor:
        """(B, 100, 96) -> (B, 512) embeddings, the published per-block model."""
        return self.model.get_embedding(blocks)  # (B, 512)

    # -- the whole-clip path ---------------------------------------------------------------------
    def feature_map(self, spec: torch.Tensor) -> torch.Tensor:
        """(B, frames, 96) -> float trunk's last map (B, 512, frames_used // 8, 12) of the
        frames the windows read; differentiable."""
        return self.trunk(spec[:, : self.frames_used].to(self.device))

    def sequence_from_map(self, feature_map: torch.Tensor) -> torch.Tensor:
        """(B, 512, T', 12) -> (B, T, 512): the windowed aisfx pooling; differentiable."""
        return pool_windows(feature_map, self.width, self.hop, self.steps)

    def fast_feature_map(self, spec: torch.Tensor) -> torch.Tensor:
        """(B, frames, 96) -> (B, 512, T', 12) float32 from the trunk the feature store runs
        (int8 on CPU): the map whose pooled windows are the cached features, so attributions
        that start from it explain exactly the ranked score. Not differentiable (IG runs on the
        map, not through the CNN)."""
        model = self.fast
        with torch.no_grad():
            x = spec[:, : self.frames_used]
            if self.precision == "int8":
                fm = model(x.cpu())
            else:
                with autocast(self.precision, self.device):
                    fm = model(x.to(self.device))
        return fm.float()

    @torch.inference_mode()
    def encode_spectrograms(self, spec: np.ndarray | torch.Tensor, batch_size: int = 4):
        """(N, frames, 96) -> (N, T, 512) float32 with the fast trunk."""
        spec = torch.as_tensor(spec)
        out = [
            self.sequence_from_map(self.fast_feature_map(spec[i : i + batch_size])).cpu()
            for i in range(0, len(spec), batch_size)
        ]
        return torch.cat(out).numpy() if out else np.zeros((0, self.steps, self.dim), np.float32)

    def sequence(self, path: str | Path) -> np.ndarray:
        """File -> (T, 512) float32."""
        return self.encode_spectrograms(self.clip_spectrogram(path)[None])[0]

    def sequences(self, clips: np.ndarray) -> np.ndarray:
        """(B, clip_samples) clips at 44.1 kHz -> (B, T, 512) float32, batched."""
        with torch.inference_mode():
            spec = self.spectrogram_batch(torch.from_numpy(clips))  # (B, frames, 96)
        return self.encode_spectrograms(spec)

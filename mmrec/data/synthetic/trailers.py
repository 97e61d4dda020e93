"""Trailers: a clip cut from the bundled music, and its reproducible Ogg Vorbis bytes.

A track of the movie's mood and instrumentation at a random offset, varispeed, a second
track layered or cut in, a filter, an optional echo, fades, peak normalisation; then the
Ogg stream serial libsndfile picks at random is rewritten from the seed (with the page CRCs).
"""

from __future__ import annotations

import io
import math
import zlib

import numpy as np

from mmrec.media import decode_track

TRACK_CACHE: dict[tuple[str, int], np.ndarray] = {}  # per process: decode each track once


def _load_track(path: str, sr: int) -> np.ndarray:
    key = (path, sr)
    if key not in TRACK_CACHE:
        TRACK_CACHE[key] = decode_track(path, sr)
    return TRACK_CACHE[key]


def _read_varispeed(track: np.ndarray, offset: float, n: int, speed: float, sr: int) -> np.ndarray:
    """n samples read at ``speed`` (tempo and pitch together) from a fraction into the track."""
    from scipy.signal import butter, sosfilt

    need = int(math.ceil(n * speed)) + 2
    if len(track) < need:  # a short source loops rather than failing
        track = np.tile(track, need // len(track) + 1)
    start = int(offset * (len(track) - need))
    seg = track[start : start + need]
    if speed > 1.0:
        # Reading faster moves content above the new Nyquist; cut it first (no aliasing).
        seg = sosfilt(butter(4, 0.95 * sr / 2 / speed, fs=sr, output="sos"), seg)
    pos = np.arange(n, dtype=np.float64) * speed  # (n,)
    return np.interp(pos, np.arange(len(seg)), seg).astype(np.float32)


def trailer_sources(spec: dict, tracks: list[tuple[str, bool, str]]):
    """The two source tracks of a trailer: (mood, electronic, path) each."""
    same_mood = [t for t in tracks if t[0] == spec["mood"]]
    first = [t for t in same_mood if t[1] == spec["electronic"]] or same_mood
    a = first[int(spec["pick_a"] * len(first)) % len(first)]
    others = [t for t in same_mood if t != a] or [a]
    b = others[int(spec["pick_b"] * len(others)) % len(others)]
    return a, b


def render_trailer(
    spec: dict, tracks: list[tuple[str, bool, str]], seconds: float, sr: int
) -> np.ndarray:
    """A mono float32 clip of ``seconds`` at ``sr`` from the spec (deterministic)."""
    from scipy.signal import butter, sosfilt

    n = int(round(seconds * sr))
    a, b = trailer_sources(spec, tracks)
    y = _read_varispeed(_load_track(a[2], sr), spec["offset_a"], n, spec["speed"], sr)
    y2 = _read_varispeed(_load_track(b[2], sr), spec["offset_b"], n, spec["speed"], sr)
    if spec["cut"]:
        # A trailer "cut": crossfade to the second track partway through.
        at, width = int(spec["cut_at"] * n), int(0.6 * sr)
        ramp = np.clip((np.arange(n) - at) / width, 0.0, 1.0).astype(np.float32)
        y = y * np.cos(ramp * np.pi / 2) + y2 * np.sin(ramp * np.pi / 2)
    else:
        y = (1.0 - spec["mix"]) * y + spec["mix"] * y2
    bright = spec["brightness"]
    if bright < 0:
        cutoff = 9000.0 * 2.0 ** (3.0 * bright)  # 9 kHz .. 1.1 kHz: darker as it goes negative
        y = sosfilt(butter(2, min(cutoff, 0.45 * sr), fs=sr, output="sos"), y)
    else:
        y = y + 0.9 * bright * sosfilt(butter(2, 2500.0, btype="highpass", fs=sr, output="sos"), y)
    if spec["echo"] > 0:
        d = int(spec["echo_delay"] * sr)
        y[d:] = y[d:] + spec["echo"] * y[:-d]
    fade_in, fade_out = int(spec["fade_in"] * sr), int(spec["fade_out"] * sr)
    y[:fade_in] *= np.sin(np.linspace(0, np.pi / 2, fade_in)) ** 2
    y[n - fade_out :] *= np.cos(np.linspace(0, np.pi / 2, fade_out)) ** 2
    peak = float(np.max(np.abs(y))) or 1.0
    return (y * (0.89 / peak)).astype(np.float32)  # peak at -1 dBFS


_BITREV = bytes(int(f"{i:08b}"[::-1], 2) for i in range(256))


def _ogg_crc(page: bytes) -> int:
    """Ogg's CRC-32 (poly 0x04C11DB7, MSB-first, init 0, no final xor) via zlib's C code.

    zlib computes the bit-reflected variant; reflecting every input byte and the result
    turns one into the other, without a slow Python loop over the bytes.
    """
    raw = zlib.crc32(page.translate(_BITREV), 0xFFFFFFFF) ^ 0xFFFFFFFF
    return int(f"{raw:032b}"[::-1], 2)


def set_ogg_serial(data: bytes, serial: int) -> bytes:
    """Rewrite the stream serial of every Ogg page (and its CRC): libsndfile picks it at random."""
    buf = bytearray(data)
    pos = 0
    while pos < len(buf):
        if buf[pos : pos + 4] != b"OggS":
            raise ValueError(f"not an Ogg page at byte {pos}")
        n_seg = buf[pos + 26]
        size = 27 + n_seg + sum(buf[pos + 27 : pos + 27 + n_seg])
        buf[pos + 14 : pos + 18] = serial.to_bytes(4, "little")
        buf[pos + 22 : pos + 26] = b"\0\0\0\0"
        buf[pos + 22 : pos + 26] = _ogg_crc(bytes(buf[pos : pos + size])).to_bytes(4, "little")
        pos += size
    return bytes(buf)


def encode_ogg(samples: np.ndarray, sr: int, compression: float, serial: int) -> bytes:
    """Ogg Vorbis bytes of a mono clip; the same input gives the same bytes."""
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, samples, sr, format="OGG", subtype="VORBIS", compression_level=compression)
    return set_ogg_serial(buf.getvalue(), serial)

"""Media without torch: posters and trailers decoded, content digests, the bundled music.

One module for every layer that touches media files: the feature store (decoding before the
encoders, digests for its cache keys), explanations (the poster under a heatmap), the demo
generator (the bundled music its trailers are cut from) and the dashboard (thumbnails, trailer
excerpts). Imports numpy, Pillow and soundfile, never torch (tests/unit/test_import_contracts.py):
the dashboard and the demo generator need no model to show or make a poster.

- Posters: :func:`decode_image` never raises for a bad file; it returns the problem naming the
  file. A pixel limit is checked on the header before any pixel is decoded (decompression
  bombs), big JPEGs decode at reduced scale (``draft``), CMYK / greyscale / palette / 16-bit /
  alpha become RGB.
- Trailers: :func:`decode_audio` reads only the first ``seconds`` and raises
  :class:`AudioDecodeError` naming the file; :func:`trailer_excerpt` is what the browser gets.
- Digests: :func:`file_digest`, the content key of a poster or clip in the feature cache.
- Bundled music: the 28 MIT-licensed tracks of ``immich-memories-music`` (5 mood folders),
  read by the demo's trailers (:func:`list_tracks`) and, a fixed named subset of them
  (:data:`CALIBRATION`), by the aisfx int8 calibration.
"""

from __future__ import annotations

import hashlib
import io
import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

# ============================================================================= posters


@dataclass
class DecodedImage:
    image: Image.Image | None  # RGB, or None when the poster is unusable
    problem: str | None  # why it is unusable, naming the file


def to_rgb(im: Image.Image) -> Image.Image:
    """Any PIL mode -> RGB. Transparent areas become white (poster paper), 16-bit and float
    greyscale are rescaled to 8 bits instead of being clipped."""
    if im.mode == "RGB":
        return im
    if im.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        arr = np.asarray(im, dtype=np.float32)
        lo, hi = float(arr.min()), float(arr.max())
        arr = (arr - lo) / (hi - lo) * 255.0 if hi > lo else np.zeros_like(arr)
        return Image.fromarray(arr.astype(np.uint8), mode="L").convert("RGB")
    if im.mode == "P" and "transparency" in im.info:
        im = im.convert("RGBA")
    if im.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        im = im.convert("RGBA")
        background = Image.new("RGBA", im.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, im).convert("RGB")
    return im.convert("RGB")  # CMYK, YCbCr, L, 1, P, LAB, HSV


def _shrink(im: Image.Image, target: int) -> Image.Image:
    """A decoded image much larger than ``target`` reduced (box filter; nearest for palette,
    bilevel and 16-bit modes) to about twice the target before any mode conversion: a
    40-megapixel 16-bit PNG then costs one decode, not several full-size float copies."""
    w, h = im.size
    factor = max(w, h) // (2 * target)
    if factor < 2:
        return im
    if im.mode in ("L", "LA", "RGB", "RGBA", "CMYK", "I", "F", "PA", "YCbCr", "RGBa", "La"):
        return im.reduce(factor)
    return im.resize((max(1, w // factor), max(1, h // factor)), Image.Resampling.NEAREST)


def decode_image(path: str | Path, max_pixels: int, target: int = 224) -> DecodedImage:
    """Open a poster robustly. Never raises for bad files: returns ``problem`` instead.

    Only a regular file is opened (a FIFO or a device is refused from ``stat``); JPEG decodes
    at reduced scale directly, other formats are reduced right after decoding (:func:`_shrink`).
    """
    from mmrec.safeio import UnsafeFileError, open_regular

    path = Path(path)
    try:
        with open_regular(path, what="poster") as fh, Image.open(fh) as im:
            w, h = im.size
            if w * h > max_pixels:
                # checked on the header, before any pixel is decoded
                return DecodedImage(
                    None, f"{path}: image too large ({w}x{h} > {max_pixels} pixels)"
                )
            if im.format == "JPEG":
                # JPEG can decode at 1/2, 1/4, 1/8 scale directly: a 6000x9000 scan then costs
                # about what a 750x1125 one does, and still exceeds the target size
                im.draft("RGB", (target, target))
            im.load()  # forces the full decode inside the try: truncation surfaces here
            im = ImageOps.exif_transpose(_shrink(im, target))  # phone photos carry a rotation
            rgb = to_rgb(im)
            rgb.load()
    except Image.DecompressionBombError as exc:
        return DecodedImage(None, f"{path}: image too large ({exc})")
    except (FileNotFoundError, UnsafeFileError) as exc:
        if isinstance(exc, UnsafeFileError):
            return DecodedImage(None, str(exc))
        return DecodedImage(None, f"{path}: file not found")
    except Exception as exc:  # PIL raises many types (OSError, SyntaxError, ValueError ...)
        return DecodedImage(None, f"{path}: unreadable image ({type(exc).__name__}: {exc})")
    return DecodedImage(rgb, None)


def file_digest(path: str | Path) -> str:
    """Content hash of a media file (the feature-cache key for posters and clips)."""
    from mmrec.safeio import open_regular

    with open_regular(path) as fh:  # a FIFO would block a plain open() forever
        return hashlib.file_digest(fh, lambda: hashlib.blake2b(digest_size=20)).hexdigest()


# ============================================================================= trailers


class AudioDecodeError(Exception):
    """A clip that cannot be used; the message names the file."""


def decode_audio(path: str | Path, seconds: float, sample_rate: int) -> np.ndarray:
    """First ``seconds`` of a file -> mono float32 (samples,) at ``sample_rate``.

    soundfile (libsndfile: wav, flac, ogg vorbis/opus, mp3) reads only the frames asked for;
    librosa's loader is the fallback for anything else. Raises AudioDecodeError naming the file.
    """
    import soundfile as sf

    from mmrec.safeio import check_regular, open_regular

    path = Path(path)
    refused = check_regular(path, what="trailer")  # FIFOs and devices are never opened
    if refused:
        raise AudioDecodeError(f"{path}: {refused}")
    try:
        with open_regular(path, what="trailer") as raw, sf.SoundFile(raw) as fh:
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


# What the dashboard hands the browser for a trailer: a bounded excerpt, never a whole file.
# ``st.audio(path)`` reads the file whole into the server's memory (a 10-hour WAV: 1.6 GB per
# distinct clip, held by the media manager) and sends all of it. :func:`trailer_excerpt` instead
# opens only regular files within the trailer cap and, when the clip is longer than ``seconds``
# or large, decodes just the first ``seconds`` and encodes them as OGG Vorbis (a 30 s stereo
# excerpt is a few hundred KB). Short, small clips are served as they are.
SERVE_AS_IS_BYTES = 2_000_000  # a clip within the duration and this size goes out unchanged
MIME = {".ogg": "audio/ogg", ".wav": "audio/wav", ".mp3": "audio/mpeg", ".flac": "audio/flac"}


@dataclass
class Excerpt:
    data: bytes | None  # what the player gets; None when the clip cannot be served
    mime: str
    seconds: float  # duration of ``data`` (0 when unknown)
    trimmed: bool  # True when ``data`` is a re-encoded start of a longer clip
    problem: str | None = None


def trailer_excerpt(path: str | Path, seconds: float, max_bytes: int) -> Excerpt:
    """At most ``seconds`` of the trailer at ``path`` (a regular file within ``max_bytes``)."""
    import soundfile as sf

    from mmrec.safeio import UnsafeFileError, check_regular, escape, open_regular, read_bytes

    path = Path(path)
    mime = MIME.get(path.suffix.lower(), "audio/wav")
    refused = check_regular(path, max_bytes, what="trailer")
    if refused:
        return Excerpt(None, mime, 0.0, False, f"{escape(path.name)}: {refused}")
    size = path.stat().st_size
    try:
        with open_regular(path, max_bytes, what="trailer") as raw, sf.SoundFile(raw) as fh:
            rate, frames = int(fh.samplerate), int(fh.frames)
            duration = frames / rate if rate > 0 and frames > 0 else 0.0
            if 0 < duration <= seconds and size <= SERVE_AS_IS_BYTES:
                return Excerpt(read_bytes(path, max_bytes), mime, duration, False)
            want = int(seconds * rate)
            block = fh.read(frames=min(frames, want) if frames > 0 else want, dtype="float32")
    except UnsafeFileError as exc:
        return Excerpt(None, mime, 0.0, False, str(exc))
    except Exception as exc:  # a format libsndfile cannot read: serve it only if small
        if size <= SERVE_AS_IS_BYTES:
            return Excerpt(read_bytes(path, max_bytes), mime, 0.0, False)
        return Excerpt(
            None, mime, 0.0, False, f"{escape(path.name)}: cannot trim ({type(exc).__name__})"
        )
    if block.size == 0 or not np.isfinite(block).all():
        return Excerpt(None, mime, 0.0, False, f"{escape(path.name)}: no playable samples")
    out = io.BytesIO()
    sf.write(out, block, rate, format="OGG", subtype="VORBIS")
    return Excerpt(out.getvalue(), "audio/ogg", len(block) / rate, True)


# ============================================================================= bundled music

MOODS = ("calm", "energetic", "happy", "nostalgic", "tender")  # immich-memories-music folders
MUSIC_PACKAGE = "immich-memories-music==0.1.0"  # pinned in requirements.txt


@dataclass(frozen=True)
class CalibrationSet:
    """Bundled tracks whose first ``seconds`` calibrate aisfx's int8 activation ranges.

    ``tag`` is how the feature-cache key names the set (``aisfx_version``: ``cal=<tag>``).
    The tracks are listed by name, not picked by position from a listing, so nothing else (the
    demo's moods, a new track in the package) can change them; a test pins the names to the
    tag, so a different set cannot ship under the old tag and mix with rows cached before it.
    """

    tag: str
    seconds: float
    tracks: tuple[str, ...]  # paths relative to the package's tracks folder


# The set every aisfx int8 cache row so far was built with (every 4th of the 28 sorted tracks;
# its tag "6x15.0" predates the names and is kept so existing caches stay valid).
CALIBRATION = CalibrationSet(
    tag="6x15.0",
    seconds=15.0,
    tracks=(
        "calm/calm_acoustic_1.opus",
        "calm/calm_electronic_s522.opus",
        "energetic/energetic_electronic_2.opus",
        "happy/happy_acoustic_s411.opus",
        "nostalgic/nostalgic_acoustic_1.opus",
        "nostalgic/nostalgic_electronic_s411.opus",
    ),
)


def music_dir() -> Path:
    """The bundled tracks' folder (one sub-folder per mood); RuntimeError when not installed."""
    try:
        from immich_memories_music import tracks_dir
    except ImportError:
        raise RuntimeError(
            "the demo trailers and the aisfx int8 calibration need the "
            f"'immich-memories-music' package (MIT-licensed tracks): pip install {MUSIC_PACKAGE}"
        ) from None
    return Path(tracks_dir())


def has_music() -> bool:
    """True when the bundled tracks are installed (no import of the package itself)."""
    import importlib.util

    return importlib.util.find_spec("immich_memories_music") is not None


def list_tracks() -> list[tuple[str, bool, str]]:
    """(mood, electronic, path) for every bundled track, sorted by mood then file name."""
    root = music_dir()
    tracks = []
    for mood in MOODS:
        for path in sorted((root / mood).glob("*.opus")):
            tracks.append((mood, "electronic" in path.name, str(path)))
    missing = [m for m in MOODS if not any(t[0] == m for t in tracks)]
    if missing:
        raise RuntimeError(f"{root}: no .opus tracks for moods {missing}")
    return tracks


def calibration_paths(cal: CalibrationSet = CALIBRATION) -> list[str]:
    """Absolute paths of ``cal``'s tracks, in its order; RuntimeError naming any missing one."""
    root = music_dir()
    paths = [root / name for name in cal.tracks]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise RuntimeError(
            f"aisfx int8 calibration tracks missing: {missing} (expected {MUSIC_PACKAGE})"
        )
    return [str(p) for p in paths]


def decode_track(path: str, sr: int) -> np.ndarray:
    """A whole source track as mono float32 at ``sr`` (polyphase resampling: anti-aliased)."""
    import soundfile as sf
    from scipy.signal import resample_poly

    data, src_sr = sf.read(path, dtype="float32", always_2d=True)
    mono = data.mean(axis=1)  # (n,)
    if src_sr != sr:
        g = math.gcd(int(sr), int(src_sr))
        mono = resample_poly(mono, sr // g, src_sr // g)
    return np.ascontiguousarray(mono, dtype=np.float32)

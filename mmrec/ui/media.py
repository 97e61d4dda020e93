"""What the dashboard hands the browser for a trailer: a bounded excerpt, never a whole file.

``st.audio(path)`` reads the file whole into the server's memory (a 10-hour WAV: 1.6 GB per
distinct clip, held by the media manager) and sends all of it. :func:`trailer_excerpt` instead
opens only regular files within the trailer cap and, when the clip is longer than
``seconds`` or large, decodes just the first ``seconds`` and encodes them as OGG Vorbis (a
30 s stereo excerpt is a few hundred KB). Short, small clips are served as they are.
No Streamlit here: ``mmrec.ui.loaders.show_trailer`` caches and renders the result.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

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
    import numpy as np
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

"""Posters and trailers on a page: bounded thumbnails and excerpts (decoded by ``mmrec.media``),
cached, with alternative text, or a caption saying why there is none."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from mmrec.ui.safetext import md
from mmrec.ui.session import base_config

POSTER_THUMB_PIXELS = 448  # longest side of a displayed poster (the grid shows ~110-260 px)


@st.cache_data(show_spinner=False, max_entries=2048)
def poster_thumbnail(path: str, max_pixels: int, width: int = POSTER_THUMB_PIXELS):
    """A poster as JPEG bytes exactly ``width`` pixels wide, decoded once with the encoder's
    bounded decoder: ``(jpeg bytes or None, problem or None)``.

    Bytes at the displayed width, not a PIL image: ``st.image`` then neither re-encodes nor
    resizes on each script run (given an image it encodes it, decodes that, resizes and
    encodes again, per poster per run, and ``st.cache_data`` returns a pickled copy of an image
    each time; under 8 users rating at once that was the largest share of server time).
    ``st.image(path)`` would also decode the file itself, in full, and fails on modes it cannot
    re-encode (16-bit greyscale, CMYK with some profiles).
    """
    import io

    from mmrec.media import decode_image

    decoded = decode_image(path, max_pixels, target=POSTER_THUMB_PIXELS)
    if decoded.image is None:
        return None, decoded.problem
    img = decoded.image.copy()
    w, h = img.size
    width = max(1, min(int(width), w))
    img = img.resize((width, max(1, round(h * width / w))))
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=88)
    return buf.getvalue(), None


@st.cache_data(show_spinner=False, max_entries=256)
def trailer_excerpt(path: str, seconds: float, max_bytes: int, stamp: tuple = ()):
    """:func:`mmrec.media.trailer_excerpt`, computed once per (file, size, mtime)."""
    from mmrec.media import trailer_excerpt as excerpt

    return excerpt(path, seconds, max_bytes)


def trailer_clip(path: str | None):
    """The excerpt of a film's trailer the pages play (at most ``ui.trailer_seconds``, never the
    whole file): ``(excerpt, None)``, or ``(None, why there is none)`` in plain text."""
    if not path:
        return None, "no trailer"
    cfg = base_config()
    try:
        st_ = Path(path).stat()
    except OSError:
        return None, "trailer unavailable (file not found)"
    stamp = (st_.st_size, st_.st_mtime_ns)
    ex = trailer_excerpt(str(path), cfg.ui.trailer_seconds, cfg.data.max_audio_bytes, stamp)
    if ex.data is None:
        return None, f"trailer unavailable ({ex.problem or 'unreadable'})"
    return ex, None


def poster_jpeg(path: str | None, pixels: int, max_pixels: int = 40_000_000):
    """A film's poster as JPEG bytes ``pixels`` wide: ``(bytes, None)``, or ``(None, why there
    is none)`` in plain text."""
    if not path:
        return None, "no poster"
    data, problem = poster_thumbnail(str(path), max_pixels, int(pixels))
    if data is None:
        return None, f"poster unavailable ({problem or 'unreadable'})"
    return data, None


def show_trailer(path: str | None, start_time: int = 0, label: str = "Trailer") -> None:
    """An audio player for at most ``ui.trailer_seconds`` of the trailer (never the whole file),
    labelled ``label`` for screen readers, or a caption saying why there is none."""
    ex, problem = trailer_clip(path)
    if ex is None:
        st.caption(md(problem))
        return
    st.audio(
        ex.data,
        format=ex.mime,
        start_time=min(int(start_time), int(ex.seconds or 0)),
        alt=label,
    )


def poster_alt(title: str, year) -> str:
    """Alternative text of a poster: the film's title and year."""
    return f"Poster of {title}" + (f" ({int(year)})" if year else "")


def show_poster(
    path: str | None,
    width: int | str,
    max_pixels: int = 40_000_000,
    alt: str = "Poster",
    pixels: int | None = None,
) -> None:
    """Render a poster (``width`` pixels or "stretch"; ``pixels``: width of the JPEG sent),
    with ``alt`` as its alternative text, or a caption saying why there is none."""
    data, problem = poster_jpeg(path, int(pixels or width), max_pixels)
    if data is None:
        st.caption(md(problem))
        return
    st.image(data, width=width, output_format="JPEG", alt=alt)

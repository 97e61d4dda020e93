"""Pictures of attributions: poster overlays, spectrogram heatmaps, highlighted synopses.

Plain PIL / NumPy, no Streamlit: the page only shows the images these return. Colours are one
diverging scale everywhere: red raises the score, blue lowers it, strength by opacity. Maps
are scaled by their 99th-percentile magnitude so one hot pixel does not wash out the rest.
The synopsis highlights are Markdown text (:func:`synopsis_markdown`): every word is escaped, so
catalog text never reaches the browser as markup; only the colour directives are.
"""

from __future__ import annotations

import textwrap

import numpy as np
from PIL import Image, ImageDraw, ImageFont

POSITIVE = np.array([220, 30, 30], dtype=np.float32)  # raises Q
NEGATIVE = np.array([30, 90, 220], dtype=np.float32)  # lowers Q


def _as_array(x) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float32)


def scaled(values, quantile: float = 0.99) -> np.ndarray:
    """Signed values -> [-1, 1] by the ``quantile`` of their magnitude (all zero stays zero)."""
    v = _as_array(values)
    mag = np.abs(v)
    ref = float(np.quantile(mag, quantile)) if mag.size else 0.0
    if ref <= 0:
        ref = float(mag.max()) if mag.size else 0.0
    return np.clip(v / ref, -1.0, 1.0) if ref > 0 else np.zeros_like(v)


def colorize(base: np.ndarray, heat: np.ndarray, alpha: float) -> np.ndarray:
    """Blend signed ``heat (H, W)`` in [-1, 1] over ``base (H, W, 3)`` with opacity ``alpha``."""
    strength = (np.abs(heat) * float(np.clip(alpha, 0.0, 1.0)))[..., None]  # (H, W, 1)
    color = np.where(heat[..., None] >= 0, POSITIVE, NEGATIVE)  # (H, W, 3)
    return base * (1.0 - strength) + color * strength


def overlay(poster_path, heatmap, alpha: float = 0.5) -> Image.Image:
    """The poster at its own size with the heatmap (any resolution, the squashed model frame)
    stretched over it; ``alpha`` 0 = poster only, 1 = full-strength colours."""
    from mmrec.media import decode_image

    decoded = decode_image(poster_path, max_pixels=40_000_000, target=512)
    if decoded.image is None:
        raise ValueError(decoded.problem)
    poster = decoded.image
    if max(poster.size) > 512:  # the page shows it at most a few hundred pixels wide
        poster.thumbnail((512, 512))
    heat = scaled(heatmap)
    heat_img = Image.fromarray(heat).resize(poster.size, Image.BILINEAR)  # mode "F"
    out = colorize(np.asarray(poster, dtype=np.float32), np.asarray(heat_img), alpha)
    return Image.fromarray(np.clip(out, 0, 255).astype(np.uint8))


def spectrogram_image(
    logmel,
    heatmap,
    seconds_per_frame: float,
    span: tuple[float, float] | None = None,
    alpha: float = 0.8,
    height_per_band: int = 3,
) -> Image.Image:
    """Log-mel spectrogram (grey, low frequencies at the bottom) with the signed attribution
    heatmap over it, the influential ``span`` framed, and a time axis in seconds.

    The grey runs between the spectrogram's own 2nd and 99.5th percentiles, so any value scale
    works: dB (the log-mel front end) as well as aisfx's normalised 0..1 (0 = silence)."""
    mel = _as_array(logmel)  # (M, frames)
    lo, hi = np.percentile(mel, 2), np.percentile(mel, 99.5)
    grey = np.clip((mel - lo) / max(hi - lo, 1e-6), 0, 1)[::-1] * 200.0 + 30.0  # (M, frames)
    base = np.repeat(grey[..., None], 3, axis=2)
    heat = scaled(heatmap)[::-1]  # flipped like the spectrogram
    img = Image.fromarray(np.clip(colorize(base, heat, alpha), 0, 255).astype(np.uint8))
    n_mels, frames = mel.shape
    width = max(frames, 480)
    img = img.resize((width, n_mels * height_per_band), Image.NEAREST)
    axis = 18
    canvas = Image.new("RGB", (width, img.height + axis), (255, 255, 255))
    canvas.paste(img, (0, 0))
    draw = ImageDraw.Draw(canvas)
    px_per_s = width / (frames * seconds_per_frame)
    duration = frames * seconds_per_frame
    font = ImageFont.load_default()
    for sec in range(0, int(duration) + 1):
        x = int(sec * px_per_s)
        draw.line([(x, img.height), (x, img.height + 4)], fill=(0, 0, 0))
        if sec % 2 == 0:
            draw.text((x + 2, img.height + 4), f"{sec}s", fill=(0, 0, 0), font=font)
    if span is not None:
        x0, x1 = int(span[0] * px_per_s), int(span[1] * px_per_s)
        draw.rectangle([x0, 0, max(x1 - 1, x0 + 1), img.height - 1], outline=(255, 200, 0), width=3)
    return canvas


def word_colors(words: list[tuple], alpha: float = 0.9) -> list[tuple[str, tuple[int, int, int]]]:
    """``(word, score, ...)`` -> ``(word, RGB background)`` on the shared diverging scale."""
    heat = scaled([w[1] for w in words]) if words else np.zeros(0)
    white = np.full((len(words), 3), 255.0, dtype=np.float32)
    rgb = colorize(white[None], heat[None], alpha)[0] if len(words) else white
    return [(w[0], tuple(int(c) for c in col)) for w, col in zip(words, rgb)]


def highlighted_text_image(
    words: list[tuple], width: int = 720, font_size: int = 18, alpha: float = 0.9
) -> Image.Image:
    """The synopsis as read by the encoder, each word on a background coloured by its score."""
    try:
        font = ImageFont.load_default(size=font_size)
    except TypeError:  # Pillow without FreeType sizes
        font = ImageFont.load_default()
    pad, gap, line_h = 10, 6, int(font_size * 1.5)
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    placed, x, y = [], pad, pad
    prev_end = None
    for word, (text, color) in zip(words, word_colors(words, alpha)):
        text = text.replace("\n", " ").strip() or "·"
        # punctuation written against the previous word stays against it
        if prev_end is not None and len(word) >= 4 and word[2] <= prev_end:
            x -= gap - 1
        prev_end = word[3] if len(word) >= 4 else None
        w = probe.textlength(text, font=font)
        if x + w > width - pad and x > pad:
            x, y = pad, y + line_h
        placed.append((x, y, w, text, color))
        x += w + gap
    height = y + line_h + pad
    img = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(img)
    for x, y, w, text, color in placed:
        draw.rectangle([x - 2, y, x + w + 2, y + line_h - 3], fill=color)
        draw.text((x, y + 2), text, fill=(0, 0, 0), font=font)
    return img


def synopsis_markdown(
    words: list[tuple], escape, strong: float = 0.5, moderate: float = 0.2
) -> str:
    """The synopsis as Markdown *text* (readable on a phone, by a screen reader, copyable):
    words whose score reaches ``strong`` of the map's scale get a red / blue background
    (raises / lowers the score), those above ``moderate`` red / blue letters, the rest plain.

    ``words``: ``(word, score[, start, end])`` as in :func:`highlighted_text_image`;
    ``escape``: makes catalog text inert for Markdown (the page's ``md``): every word passes
    through it, so only the colour directives are markup."""
    if not words:
        return ""
    heat = scaled([w[1] for w in words])
    out: list[str] = []
    prev_end = None
    for word, h in zip(words, heat):
        text = escape(str(word[0]).replace("\n", " ").strip())
        if not text:
            continue
        if abs(h) >= strong:
            text = f":{'red' if h > 0 else 'blue'}-background[{text}]"
        elif abs(h) >= moderate:
            text = f":{'red' if h > 0 else 'blue'}[{text}]"
        glued = prev_end is not None and len(word) >= 4 and word[2] <= prev_end
        prev_end = word[3] if len(word) >= 4 else None
        if glued and out:
            out[-1] += text
        else:
            out.append(text)
    return " ".join(out)


def legend_image(width: int = 320, height: int = 14, alpha: float = 1.0) -> Image.Image:
    """The colour scale every map uses: blue (lowers the score) -> none -> red (raises it),
    strength from 0 to the map's 99th-percentile magnitude; labelled underneath."""
    heat = np.linspace(-1.0, 1.0, width, dtype=np.float32)[None, :].repeat(height, axis=0)
    white = np.full((height, width, 3), 255.0, dtype=np.float32)
    bar = Image.fromarray(np.clip(colorize(white, heat, alpha), 0, 255).astype(np.uint8))
    canvas = Image.new("RGB", (width, height + 16), (255, 255, 255))
    canvas.paste(bar, (0, 0))
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default()
    draw.text((2, height + 2), "lowers the score", fill=(30, 60, 160), font=font)
    draw.text((width // 2 - 3, height + 2), "0", fill=(0, 0, 0), font=font)
    right = "raises it"
    draw.text((width - 6 * len(right) - 4, height + 2), right, fill=(170, 20, 20), font=font)
    return canvas


def message_image(message: str, width: int = 480, height: int = 120) -> Image.Image:
    """A grey placeholder with a message (e.g. "no poster for this movie")."""
    img = Image.new("RGB", (width, height), (235, 235, 235))
    draw = ImageDraw.Draw(img)
    for k, line in enumerate(textwrap.wrap(message, 60)[:5]):
        draw.text((10, 10 + 16 * k), line, fill=(60, 60, 60), font=ImageFont.load_default())
    return img

"""Posters: per-genre palettes, the layout and the style transforms, the title set in type.

A 224x224 JPEG drawn at 2x with Pillow and downsampled: gradient background in the motif
genre's palette, the genre motif (``mmrec.data.synthetic.motifs``), the style transforms,
a texture, a vignette and the title, year and credit line.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from mmrec.data.synthetic.motifs import draw_motif
from mmrec.data.synthetic.vocabulary import POSTER_SIZE, SUPERSAMPLE

# genre -> (sky top, sky bottom, accent, ink); RGB before the style transforms
PALETTES = {
    "Action": ((40, 12, 8), (235, 96, 20), (255, 200, 40), (18, 10, 10)),
    "Adventure": ((30, 110, 140), (235, 200, 140), (255, 190, 60), (25, 60, 40)),
    "Animation": ((110, 200, 255), (255, 170, 215), (255, 235, 80), (60, 60, 160)),
    "Comedy": ((255, 225, 60), (255, 150, 70), (240, 40, 130), (30, 30, 70)),
    "Crime": ((8, 12, 30), (40, 45, 70), (230, 40, 40), (5, 5, 10)),
    "Documentary": ((235, 232, 222), (175, 175, 170), (190, 50, 40), (50, 50, 50)),
    "Drama": ((70, 90, 120), (170, 165, 160), (220, 180, 110), (35, 35, 45)),
    "Fantasy": ((60, 20, 110), (20, 20, 70), (255, 210, 90), (25, 10, 45)),
    "Horror": ((5, 5, 5), (110, 0, 0), (235, 230, 210), (0, 0, 0)),
    "Musical": ((200, 20, 140), (70, 20, 120), (255, 215, 80), (30, 5, 40)),
    "Mystery": ((10, 50, 60), (5, 15, 20), (250, 220, 120), (5, 10, 15)),
    "Romance": ((255, 180, 190), (255, 220, 180), (220, 30, 70), (120, 30, 60)),
    "Sci-Fi": ((0, 0, 15), (10, 40, 110), (60, 230, 255), (5, 10, 30)),
    "Thriller": ((120, 125, 130), (15, 15, 20), (230, 230, 40), (5, 5, 5)),
    "War": ((110, 110, 80), (200, 185, 140), (180, 70, 30), (40, 40, 25)),
    "Western": ((240, 140, 50), (245, 215, 150), (255, 240, 160), (80, 40, 20)),
}
ABSTRACT_PALETTES = (
    ((30, 30, 40), (90, 90, 110), (240, 120, 60), (230, 230, 230)),
    ((230, 225, 210), (200, 190, 170), (40, 90, 160), (30, 30, 30)),
    ((20, 60, 60), (120, 160, 150), (250, 200, 100), (15, 30, 30)),
)


@lru_cache(maxsize=64)
def _font(size: int):
    from PIL import ImageFont

    # Pillow >= 10.1 embeds Aileron Regular: works on a fresh machine without system fonts.
    return ImageFont.load_default(size=size)


def _wrap(draw, text: str, size: int, width: float) -> list[str]:
    font, lines, line = _font(size), [], ""
    for word in text.split():
        trial = f"{line} {word}".strip()
        if line and draw.textlength(trial, font=font) > width:
            lines.append(line)
            line = word
        else:
            line = trial
    return lines + [line]


def render_poster(spec: dict):
    """The poster for one movie as a 224x224 RGB ``PIL.Image`` (deterministic for the spec)."""
    from PIL import Image, ImageDraw

    size = POSTER_SIZE
    s = size * SUPERSAMPLE
    rng = np.random.default_rng(spec["seed"])
    genre = spec["motif"]
    pal = PALETTES[genre] if genre else ABSTRACT_PALETTES[int(rng.integers(len(ABSTRACT_PALETTES)))]
    top, bottom = np.array(pal[0], np.float32), np.array(pal[1], np.float32)
    layout = spec["layout"]
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size  # (224, 224) each
    # Background: the layout picks the gradient's direction (or a hard split).
    if layout == "diagonal":
        t = (xx + yy) / 2.0
    elif layout == "split":
        t = (xx > 0.5 + 0.1 * (yy - 0.5)).astype(np.float32) * 0.8 + 0.2 * yy
    else:
        t = yy
    bg = top * (1 - t[..., None]) + bottom * t[..., None]  # (224, 224, 3)
    img = Image.fromarray(bg.astype(np.uint8)).resize((s, s), Image.BILINEAR).convert("RGBA")
    jitter = rng.uniform(-0.04, 0.04, 2) * s
    cx, cy, r, hz = {
        "centered": (0.5, 0.45, 0.24, 0.70),
        "low-horizon": (0.5, 0.60, 0.20, 0.80),
        "split": (0.62, 0.48, 0.22, 0.74),
        "framed": (0.5, 0.44, 0.21, 0.68),
        "diagonal": (0.58, 0.40, 0.26, 0.70),
    }[layout]
    cx, cy, r, hz = cx * s + jitter[0], cy * s + jitter[1], r * s, hz * s
    # Shapes are drawn at 2x and box-reduced: ImageDraw does not antialias polygons.
    overlay = Image.new("RGBA", (s, s), (0, 0, 0, 0))
    draw_motif(ImageDraw.Draw(overlay), genre, s, cx, cy, r, hz, pal, rng)
    img = Image.alpha_composite(img, overlay).convert("RGB").reduce(SUPERSAMPLE)

    # Visual style: the genre palette is shifted per movie, so hue alone is not the genre.
    arr = np.asarray(img, dtype=np.float32) / 255.0  # (224, 224, 3)
    gray = arr.mean(axis=2, keepdims=True)  # (224, 224, 1)
    arr = gray + (arr - gray) * (1.0 + 0.5 * spec["saturation"])
    warm = 0.10 * spec["warmth"]
    arr = arr + np.array([warm, 0.15 * warm, -warm], np.float32)
    arr = np.clip(arr, 0.0, 1.0) ** (2.0 ** (-0.6 * spec["brightness"]))
    texture = spec["texture"]
    if texture == "grain":
        arr = arr + rng.normal(0.0, 0.045, (size, size, 1)).astype(np.float32)
    elif texture == "halftone":
        period = 4
        f = (np.arange(size) % period) - period / 2 + 0.5  # (224,)
        dist = np.sqrt(f[:, None] ** 2 + f[None, :] ** 2) / (period / 2)  # (224, 224)
        lum = arr.mean(axis=2)
        dots = (dist < 1.05 * (1.0 - lum))[..., None]
        arr = np.where(dots, arr * 0.55, np.minimum(arr * 1.08, 1.0))
    elif texture == "scanlines":
        arr[(np.arange(size) % 3) == 0] *= 0.72
    vignette = 1.0 - 0.7 * ((xx - 0.5) ** 2 + (yy - 0.5) ** 2)  # (224, 224)
    arr = np.clip(arr * vignette[..., None], 0.0, 1.0)
    img = Image.fromarray((arr * 255.0 + 0.5).astype(np.uint8))

    draw = ImageDraw.Draw(img)
    if layout == "framed":
        draw.rectangle([3, 3, size - 4, size - 4], outline=pal[2], width=5)
    title = spec["title"].upper() if spec["upper"] else spec["title"]
    font_px = int(size * 0.13)
    while True:
        lines = _wrap(draw, title, font_px, size * 0.84)
        too_wide = any(draw.textlength(line, font=_font(font_px)) > size * 0.88 for line in lines)
        if (len(lines) <= 3 and not too_wide) or font_px <= 9:
            break
        font_px = int(font_px * 0.9)
    font = _font(font_px)
    line_h = font_px * 1.1
    block_h = line_h * len(lines)
    title_at = {"centered": "bottom", "low-horizon": "top", "split": "top",
                "framed": "bottom", "diagonal": "bottom"}[layout]  # fmt: skip
    y0 = size * 0.06 if title_at == "top" else size * 0.86 - block_h
    region = arr[int(y0) : int(y0 + block_h) + 1].mean()
    ink, edge = ((15, 15, 20), (245, 245, 245)) if region > 0.6 else ((250, 248, 240), (10, 10, 10))
    left_aligned = layout in ("diagonal", "split")
    for k, line in enumerate(lines):
        w = draw.textlength(line, font=font)
        x = size * 0.07 if left_aligned else (size - w) / 2
        draw.text((x, y0 + k * line_h), line, font=font, fill=ink, stroke_width=1, stroke_fill=edge)
    small = _font(8)
    credit = f"A FILM BY {spec['director'].upper()}  {spec['year']}"
    y_credit = size * 0.93 if title_at == "top" else size * 0.02
    cw = draw.textlength(credit, font=small)
    draw.text(((size - cw) / 2, y_credit), credit, font=small, fill=ink)
    return img

"""Poster motifs: a small set of drawing primitives and, per genre, the silhouettes that show it.

``MOTIFS`` maps each genre (``None``: an abstract, genre-free composition) to the function
that draws its motif on a transparent overlay of side ``s`` around the centre ``(cx, cy)``,
radius ``r`` and horizon ``hz`` in the palette ``pal = (sky top, sky bottom, accent, ink)``,
drawing its random details from ``rng`` (the call order of ``rng`` is part of the demo's
bytes: keep it when editing a motif). ``render_poster`` picks the entry from this table.
"""

from __future__ import annotations

import math

import numpy as np

from mmrec.data.synthetic.vocabulary import pick


def _star_points(cx, cy, r_out, r_in, n, rot=0.0):
    pts = []
    for k in range(2 * n):
        r = r_out if k % 2 == 0 else r_in
        a = rot + math.pi * k / n
        pts.append((cx + r * math.cos(a), cy + r * math.sin(a)))
    return pts


def _person(d, x, base, h, color, hat=False):
    """A standing silhouette of height h whose feet touch y=base."""
    head = h * 0.13
    d.ellipse([x - head / 2, base - h, x + head / 2, base - h + head], fill=color)
    d.polygon(
        [(x - h * 0.16, base - h * 0.45), (x - h * 0.12, base - h * 0.84),
         (x + h * 0.12, base - h * 0.84), (x + h * 0.16, base - h * 0.45),
         (x + h * 0.07, base), (x - h * 0.07, base)],
        fill=color,
    )  # fmt: skip
    if hat:
        d.rectangle(
            [x - head * 0.9, base - h + head * 0.1, x + head * 0.9, base - h + head * 0.25],
            fill=color,
        )
        d.rectangle(
            [x - head * 0.5, base - h - head * 0.35, x + head * 0.5, base - h + head * 0.2],
            fill=color,
        )


def _ridge(d, rng, s, base, height, color, peaks):
    xs = np.linspace(-0.1 * s, 1.1 * s, peaks * 2 + 1)
    pts = [(float(x), base - (height * rng.uniform(0.5, 1.0) if k % 2 else height * rng.uniform(0, 0.25)))
           for k, x in enumerate(xs)]  # fmt: skip
    d.polygon([(-s, s * 1.1)] + pts + [(2 * s, s * 1.1)], fill=color)


def _skyline(d, rng, s, base, color, windows):
    x = -5.0
    while x < s:
        w = rng.uniform(0.06, 0.14) * s
        h = rng.uniform(0.08, 0.35) * s
        d.rectangle([x, base - h, x + w, s], fill=color)
        if windows is not None:
            for wy in np.arange(base - h + 6, base - 6, 14):
                for wx in np.arange(x + 4, x + w - 6, 11):
                    if rng.random() < 0.35:
                        d.rectangle([wx, wy, wx + 4, wy + 6], fill=windows)
        x += w + rng.uniform(0, 0.02) * s


def _tree(d, x, y, length, angle, depth, color, width):
    if depth == 0 or length < 2:
        return
    x2, y2 = x + length * math.cos(angle), y - length * math.sin(angle)
    d.line([(x, y), (x2, y2)], fill=color, width=max(1, int(width)))
    for da in (-0.45, 0.38):
        _tree(d, x2, y2, length * 0.72, angle + da, depth - 1, color, width * 0.7)


def _heart(d, cx, cy, r, color):
    d.ellipse([cx - r, cy - r * 0.6, cx, cy + r * 0.4], fill=color)
    d.ellipse([cx, cy - r * 0.6, cx + r, cy + r * 0.4], fill=color)
    d.polygon(
        [(cx - r * 0.97, cy - 0.0), (cx + r * 0.97, cy - 0.0), (cx, cy + r * 1.1)], fill=color
    )


def _stars(d, rng, s, n, color, ymax):
    for _ in range(n):
        x, y, r = rng.uniform(0, s), rng.uniform(0, ymax), rng.uniform(0.6, 2.2)
        d.ellipse([x - r, y - r, x + r, y + r], fill=color)


def _rgba(color, alpha):
    return (*color, int(alpha))


# ----------------------------------------------------------------------------- motifs


def _action(d, s, cx, cy, r, hz, pal, rng):
    """A starburst explosion over a city skyline and a standing figure."""
    accent, ink = pal[2], pal[3]
    d.polygon(
        _star_points(cx, cy, r * 1.15, r * 0.55, 16, rng.uniform(0, 1)), fill=_rgba(accent, 230)
    )
    d.polygon(
        _star_points(cx, cy, r * 0.7, r * 0.35, 12, rng.uniform(0, 1)),
        fill=(255, 245, 200, 220),
    )
    _skyline(d, rng, s, hz, ink, None)
    _person(d, cx + rng.uniform(-0.2, 0.2) * s, hz + 0.02 * s, r * 0.9, ink)


def _adventure(d, s, cx, cy, r, hz, pal, rng):
    """A sun over two mountain ridges and a small figure on the near one."""
    accent, ink = pal[2], pal[3]
    d.ellipse([cx - r * 0.6, cy - r * 0.6, cx + r * 0.6, cy + r * 0.6], fill=_rgba(accent, 255))
    _ridge(d, rng, s, hz - 0.05 * s, 0.35 * s, _rgba(ink, 160), 4)
    _ridge(d, rng, s, hz + 0.05 * s, 0.22 * s, _rgba(ink, 255), 3)
    _person(d, cx + r * 0.3, hz - 0.02 * s, r * 0.4, ink)


def _animation(d, s, cx, cy, r, hz, pal, rng):
    """Three to five round cartoon faces with big eyes above a hill."""
    ink = pal[3]
    for _ in range(int(rng.integers(3, 6))):
        bx, by = cx + rng.uniform(-1.2, 1.2) * r, cy + rng.uniform(-0.6, 0.9) * r
        br = rng.uniform(0.25, 0.5) * r
        col = tuple(int(c) for c in rng.integers(80, 256, 3))
        d.ellipse([bx - br, by - br, bx + br, by + br], fill=col)
        for ex in (-0.35, 0.35):
            d.ellipse(
                [
                    bx + ex * br - br * 0.2,
                    by - br * 0.35,
                    bx + ex * br + br * 0.2,
                    by + br * 0.05,
                ],
                fill=(255, 255, 255),
            )
            d.ellipse(
                [
                    bx + ex * br - br * 0.08,
                    by - br * 0.2,
                    bx + ex * br + br * 0.08,
                    by - br * 0.02,
                ],
                fill=(20, 20, 20),
            )
    d.ellipse([-0.2 * s, hz, 1.2 * s, hz + 0.6 * s], fill=_rgba(ink, 200))


def _comedy(d, s, cx, cy, r, hz, pal, rng):
    """Confetti over a big smiling face."""
    accent, ink = pal[2], pal[3]
    for _ in range(60):
        x, y = rng.uniform(0, s), rng.uniform(0, hz)
        col = pick(rng, [accent, ink, (255, 255, 255), (80, 200, 255)])
        d.rectangle([x, y, x + rng.uniform(4, 10), y + rng.uniform(3, 7)], fill=col)
    d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=_rgba(accent, 255))
    d.arc(
        [cx - r * 0.6, cy - r * 0.5, cx + r * 0.6, cy + r * 0.6],
        20,
        160,
        fill=ink,
        width=int(r * 0.12),
    )
    for ex in (-0.35, 0.35):
        d.ellipse(
            [cx + ex * r - r * 0.1, cy - r * 0.4, cx + ex * r + r * 0.1, cy - r * 0.1], fill=ink
        )


def _crime(d, s, cx, cy, r, hz, pal, rng):
    """A searchlight over a lit skyline and a figure in a hat."""
    accent, ink = pal[2], pal[3]
    d.polygon(
        [(cx - r * 0.15, -5), (cx + r * 0.15, -5), (cx + r * 1.2, hz), (cx - r * 1.2, hz)],
        fill=(255, 255, 230, 60),
    )
    _skyline(d, rng, s, hz, ink, accent)
    _person(d, cx, hz + 0.04 * s, r * 1.3, ink, hat=True)


def _documentary(d, s, cx, cy, r, hz, pal, rng):
    """A grid, a camera lens and a red recording dot."""
    accent, ink = pal[2], pal[3]
    for k in range(1, 6):
        y = s * k / 6
        d.line([(0, y), (s, y)], fill=_rgba(ink, 40), width=2)
        d.line([(y, 0), (y, s)], fill=_rgba(ink, 40), width=2)
    d.ellipse([cx - r, cy - r, cx + r, cy + r], outline=_rgba(ink, 255), width=int(r * 0.12))
    d.ellipse([cx - r * 0.55, cy - r * 0.55, cx + r * 0.55, cy + r * 0.55], fill=_rgba(ink, 200))
    d.ellipse([cx - r * 0.2, cy - r * 0.35, cx + r * 0.05, cy - r * 0.1], fill=(255, 255, 255, 180))
    d.rectangle([cx + r * 0.9, cy - r * 1.05, cx + r * 1.05, cy - r * 0.9], fill=accent)


def _drama(d, s, cx, cy, r, hz, pal, rng):
    """A low sun, a lone figure on the horizon, rain."""
    accent, ink = pal[2], pal[3]
    d.ellipse([cx - r, hz - r * 1.1, cx + r, hz + r * 0.9], fill=_rgba(accent, 150))
    d.rectangle([-5, hz, s + 5, s + 5], fill=_rgba(ink, 230))
    _person(d, cx + rng.uniform(-0.3, 0.3) * r, hz + 1, r * 0.7, ink)
    for _ in range(40):
        x, y = rng.uniform(0, s), rng.uniform(0, hz)
        d.line([(x, y), (x - 4, y + 18)], fill=(255, 255, 255, 70), width=1)


def _fantasy(d, s, cx, cy, r, hz, pal, rng):
    """Stars, a crescent moon and a castle on a hill."""
    top, accent, ink = pal[0], pal[2], pal[3]
    _stars(d, rng, s, 60, (255, 250, 220), hz)
    d.ellipse([cx + r * 0.2, cy - r * 1.1, cx + r * 1.0, cy - r * 0.3], fill=accent)
    d.ellipse([cx + r * 0.45, cy - r * 1.2, cx + r * 1.2, cy - r * 0.45], fill=top)
    d.ellipse([-0.3 * s, hz - 0.05 * s, 1.3 * s, hz + 0.6 * s], fill=ink)
    for tx, th in ((-0.45, 0.9), (-0.15, 1.3), (0.15, 1.0), (0.45, 0.75)):
        x0 = cx + tx * r * 1.6
        d.rectangle([x0 - r * 0.14, hz - th * r, x0 + r * 0.14, hz + 5], fill=ink)
        d.polygon(
            [
                (x0 - r * 0.2, hz - th * r),
                (x0 + r * 0.2, hz - th * r),
                (x0, hz - th * r - r * 0.4),
            ],
            fill=ink,
        )
    d.rectangle([cx - r * 0.7, hz - r * 0.55, cx + r * 0.7, hz + 5], fill=ink)


def _horror(d, s, cx, cy, r, hz, pal, rng):
    """A pale moon, a dead tree and dripping blood."""
    accent, ink = pal[2], pal[3]
    d.ellipse([cx - r * 0.8, cy - r * 1.1, cx + r * 0.8, cy + r * 0.5], fill=_rgba(accent, 245))
    d.rectangle([-5, hz, s + 5, s + 5], fill=ink)
    _tree(d, cx - r * 0.5, hz + 2, r * 0.75, math.pi / 2, 7, ink, r * 0.14)
    for _ in range(int(rng.integers(5, 11))):
        x, ln = rng.uniform(0, s), rng.uniform(0.04, 0.14) * s
        d.rectangle([x, 0, x + 5, ln], fill=(150, 0, 0))
        d.ellipse([x - 2, ln - 4, x + 7, ln + 5], fill=(150, 0, 0))


def _musical(d, s, cx, cy, r, hz, pal, rng):
    """Stage spotlights, a lit stage and floating notes."""
    accent, ink = pal[2], pal[3]
    for bx in (-0.6, 0.0, 0.6):
        x = cx + bx * s * 0.5
        d.polygon(
            [(x - 6, -5), (x + 6, -5), (x + r * 0.9, hz), (x - r * 0.9, hz)],
            fill=(255, 255, 240, 55),
        )
    d.rectangle([-5, hz, s + 5, s + 5], fill=ink)
    d.ellipse([cx - r * 1.4, hz - r * 0.15, cx + r * 1.4, hz + r * 0.25], fill=_rgba(accent, 120))
    for _ in range(int(rng.integers(3, 7))):
        x, y, nr = cx + rng.uniform(-1.3, 1.3) * r, cy + rng.uniform(-1.0, 0.5) * r, r * 0.12
        d.ellipse([x - nr, y - nr * 0.75, x + nr, y + nr * 0.75], fill=accent)
        d.line([(x + nr * 0.9, y), (x + nr * 0.9, y - nr * 4)], fill=accent, width=4)
        d.line([(x + nr * 0.9, y - nr * 4), (x + nr * 2.2, y - nr * 3.2)], fill=accent, width=4)


def _mystery(d, s, cx, cy, r, hz, pal, rng):
    """A keyhole in a faint halo and banks of fog."""
    accent, ink = pal[2], pal[3]
    d.ellipse([cx - r * 1.6, cy - r * 1.6, cx + r * 1.6, cy + r * 1.6], fill=_rgba(accent, 45))
    d.ellipse([cx - r * 0.45, cy - r * 0.9, cx + r * 0.45, cy], fill=ink)
    d.polygon(
        [
            (cx - r * 0.2, cy - r * 0.2),
            (cx + r * 0.2, cy - r * 0.2),
            (cx + r * 0.42, cy + r),
            (cx - r * 0.42, cy + r),
        ],
        fill=ink,
    )
    for k in range(4):
        y = hz - 0.1 * s + k * 0.07 * s
        d.ellipse(
            [-0.3 * s + rng.uniform(-20, 20), y, 1.3 * s, y + 0.09 * s],
            fill=(230, 230, 230, 45),
        )


def _romance(d, s, cx, cy, r, hz, pal, rng):
    """Soft bokeh, a heart and two figures."""
    accent, ink = pal[2], pal[3]
    for _ in range(18):
        x, y, br = rng.uniform(0, s), rng.uniform(0, s), rng.uniform(6, 22)
        d.ellipse([x - br, y - br, x + br, y + br], fill=(255, 255, 255, 60))
    _heart(d, cx, cy - r * 0.55, r * 0.55, _rgba(accent, 235))
    _person(d, cx - r * 0.22, hz + 0.05 * s, r * 1.1, ink)
    _person(d, cx + r * 0.22, hz + 0.05 * s, r * 1.0, ink)


def _scifi(d, s, cx, cy, r, hz, pal, rng):
    """Stars, a ringed planet and a perspective grid."""
    accent, ink = pal[2], pal[3]
    _stars(d, rng, s, 120, (220, 240, 255), hz)
    d.ellipse([cx - r * 0.7, cy - r * 0.7, cx + r * 0.7, cy + r * 0.7], fill=_rgba(accent, 255))
    d.ellipse(
        [cx - r * 0.7 + r * 0.25, cy - r * 0.7, cx + r * 0.7, cy + r * 0.7 - r * 0.25],
        fill=_rgba(ink, 110),
    )
    d.ellipse(
        [cx - r * 1.3, cy - r * 0.25, cx + r * 1.3, cy + r * 0.25],
        outline=(255, 255, 255, 200),
        width=5,
    )
    d.rectangle([-5, hz, s + 5, s + 5], fill=ink)
    for k in range(-8, 9):
        d.line([(cx + k * 0.03 * s, hz), (cx + k * 0.25 * s, s)], fill=_rgba(accent, 150), width=2)
    for k in range(1, 7):
        y = hz + (s - hz) * (k / 7) ** 1.6
        d.line([(0, y), (s, y)], fill=_rgba(accent, 150), width=2)


def _thriller(d, s, cx, cy, r, hz, pal, rng):
    """Light rays from an off-centre point, a lit doorway and a figure."""
    accent, ink = pal[2], pal[3]
    ox, oy = cx + rng.uniform(-0.5, 0.5) * r, cy + rng.uniform(-0.5, 0.5) * r
    for _ in range(9):
        a = rng.uniform(0, 2 * math.pi)
        da = rng.uniform(0.05, 0.16)
        d.polygon([(ox, oy), (ox + 2 * s * math.cos(a), oy + 2 * s * math.sin(a)),
                   (ox + 2 * s * math.cos(a + da), oy + 2 * s * math.sin(a + da))],
                  fill=pick(rng, [_rgba(accent, 150), (255, 255, 255, 90)]))  # fmt: skip
    d.rectangle([cx - r * 0.4, cy - r * 0.6, cx + r * 0.4, hz], fill=_rgba(accent, 230))
    _person(d, cx, hz, r * 1.1, ink)
    d.rectangle([-5, hz, s + 5, s + 5], fill=ink)


def _war(d, s, cx, cy, r, hz, pal, rng):
    """Searchlights, smoke, a ridge and a row of soldiers."""
    ink = pal[3]
    for bx in (-0.5, 0.4):
        x = cx + bx * s
        d.polygon(
            [(x, hz), (x + 12, hz), (x + bx * s + 0.35 * s, -5), (x + bx * s + 0.2 * s, -5)],
            fill=(255, 255, 230, 50),
        )
    for _ in range(8):
        x, y, br = rng.uniform(0, s), rng.uniform(0.3, 0.8) * hz, rng.uniform(20, 55)
        d.ellipse([x - br, y - br, x + br, y + br], fill=(60, 55, 50, 70))
    _ridge(d, rng, s, hz + 0.04 * s, 0.12 * s, ink, 3)
    for k in range(int(rng.integers(3, 7))):
        _person(d, 0.12 * s + k * 0.14 * s, hz - 0.04 * s, r * 0.55, ink)


def _western(d, s, cx, cy, r, hz, pal, rng):
    """A low sun, a mesa and a saguaro cactus."""
    accent, ink = pal[2], pal[3]
    d.ellipse([cx - r * 0.9, hz - r * 1.2, cx + r * 0.9, hz + r * 0.6], fill=_rgba(accent, 255))
    mx = rng.uniform(0.1, 0.6) * s
    d.polygon(
        [
            (mx - 0.1 * s, hz + 2),
            (mx, hz - 0.2 * s),
            (mx + 0.3 * s, hz - 0.2 * s),
            (mx + 0.4 * s, hz + 2),
        ],
        fill=_rgba(ink, 200),
    )
    d.rectangle([-5, hz, s + 5, s + 5], fill=ink)
    kx, kh = cx + r * rng.choice([-1.1, 1.1]), r * 1.2
    d.rounded_rectangle([kx - kh * 0.1, hz - kh, kx + kh * 0.1, hz + 5], radius=kh * 0.1, fill=ink)
    d.rounded_rectangle(
        [kx - kh * 0.4, hz - kh * 0.6, kx - kh * 0.25, hz - kh * 0.25],
        radius=kh * 0.07,
        fill=ink,
    )
    d.rectangle([kx - kh * 0.4, hz - kh * 0.32, kx, hz - kh * 0.22], fill=ink)
    d.rounded_rectangle(
        [kx + kh * 0.25, hz - kh * 0.75, kx + kh * 0.4, hz - kh * 0.35],
        radius=kh * 0.07,
        fill=ink,
    )
    d.rectangle([kx, hz - kh * 0.42, kx + kh * 0.4, hz - kh * 0.32], fill=ink)


def _abstract(d, s, cx, cy, r, hz, pal, rng):
    """Four to eight random circles, bars and triangles: no genre cue at all."""
    bottom, accent, ink = pal[1], pal[2], pal[3]
    for _ in range(int(rng.integers(4, 9))):
        col = _rgba(pick(rng, [accent, ink, bottom, (255, 255, 255)]), rng.integers(90, 230))
        x, y, sz = (
            rng.uniform(0.1, 0.9) * s,
            rng.uniform(0.1, 0.75) * s,
            rng.uniform(0.05, 0.25) * s,
        )
        kind = int(rng.integers(3))
        if kind == 0:
            d.ellipse([x - sz, y - sz, x + sz, y + sz], fill=col)
        elif kind == 1:
            d.rectangle([x - sz, y - sz * 0.6, x + sz, y + sz * 0.6], fill=col)
        else:
            d.polygon([(x, y - sz), (x + sz, y + sz), (x - sz, y + sz)], fill=col)


# genre -> the function that draws its motif; None -> an abstract composition
MOTIFS = {
    "Action": _action,
    "Adventure": _adventure,
    "Animation": _animation,
    "Comedy": _comedy,
    "Crime": _crime,
    "Documentary": _documentary,
    "Drama": _drama,
    "Fantasy": _fantasy,
    "Horror": _horror,
    "Musical": _musical,
    "Mystery": _mystery,
    "Romance": _romance,
    "Sci-Fi": _scifi,
    "Thriller": _thriller,
    "War": _war,
    "Western": _western,
    None: _abstract,
}


def draw_motif(d, genre, s, cx, cy, r, hz, pal, rng):
    """Draw the genre's motif (``MOTIFS``); ``genre`` None draws an abstract composition."""
    MOTIFS[genre](d, s, cx, cy, r, hz, pal, rng)

"""The demo's vocabulary: genres, themes, moods, style features and their frequencies.

Every table here is data the other parts of the generator read (``mmrec.data.demo`` documents
the generative model that uses them).
"""

from __future__ import annotations

import numpy as np

from mmrec.media import MOODS

GENRES = (
    "Action", "Adventure", "Animation", "Comedy", "Crime", "Documentary", "Drama", "Fantasy",
    "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western",
)  # fmt: skip
# How often each genre is the primary one (roughly MovieLens proportions).
GENRE_FREQ = np.array(
    [9, 6, 4, 14, 6, 3, 16, 5, 6, 2, 4, 7, 6, 8, 2, 2], dtype=np.float64
) / 100.0  # fmt: skip
GENRE_PARTNERS = {
    "Action": ("Adventure", "Thriller", "Crime", "Sci-Fi", "War"),
    "Adventure": ("Action", "Fantasy", "Animation", "Comedy", "Western"),
    "Animation": ("Comedy", "Adventure", "Fantasy", "Musical"),
    "Comedy": ("Romance", "Drama", "Animation", "Musical", "Crime"),
    "Crime": ("Thriller", "Drama", "Mystery", "Action", "Comedy"),
    "Documentary": ("War", "Musical", "Drama"),
    "Drama": ("Romance", "War", "Crime", "Comedy", "Mystery"),
    "Fantasy": ("Adventure", "Animation", "Horror", "Romance"),
    "Horror": ("Thriller", "Mystery", "Sci-Fi", "Fantasy"),
    "Musical": ("Comedy", "Romance", "Animation", "Drama"),
    "Mystery": ("Thriller", "Crime", "Horror", "Drama"),
    "Romance": ("Comedy", "Drama", "Musical", "Fantasy"),
    "Sci-Fi": ("Action", "Thriller", "Horror", "Adventure"),
    "Thriller": ("Crime", "Mystery", "Action", "Horror", "Sci-Fi"),
    "War": ("Drama", "Action", "Documentary"),
    "Western": ("Adventure", "Action", "Drama", "Comedy"),
}
RUNTIME_MEAN = {
    "Action": 112, "Adventure": 115, "Animation": 88, "Comedy": 100, "Crime": 114,
    "Documentary": 95, "Drama": 118, "Fantasy": 120, "Horror": 96, "Musical": 115,
    "Mystery": 108, "Romance": 106, "Sci-Fi": 118, "Thriller": 108, "War": 132, "Western": 115,
}  # fmt: skip

# genre -> (mood, P(electronic), tempo bias, brightness bias), biases in [-1, 1]
GENRE_AUDIO = {
    "Action": ("energetic", 0.7, 0.7, 0.2),
    "Adventure": ("happy", 0.3, 0.3, 0.3),
    "Animation": ("happy", 0.5, 0.5, 0.6),
    "Comedy": ("happy", 0.3, 0.6, 0.5),
    "Crime": ("nostalgic", 0.6, 0.0, -0.3),
    "Documentary": ("calm", 0.3, -0.3, 0.0),
    "Drama": ("nostalgic", 0.25, -0.4, -0.1),
    "Fantasy": ("tender", 0.4, -0.1, 0.3),
    "Horror": ("calm", 0.7, -0.8, -0.8),
    "Musical": ("happy", 0.3, 0.6, 0.5),
    "Mystery": ("calm", 0.6, -0.3, -0.5),
    "Romance": ("tender", 0.25, -0.3, 0.2),
    "Sci-Fi": ("calm", 0.9, 0.0, 0.4),
    "Thriller": ("energetic", 0.7, -0.2, -0.5),
    "War": ("nostalgic", 0.5, -0.1, -0.4),
    "Western": ("nostalgic", 0.1, 0.1, 0.1),
}
THEMES = (
    "revenge", "family", "love", "survival", "friendship", "identity",
    "power", "redemption", "coming of age", "betrayal", "freedom", "obsession",
)  # fmt: skip
LAYOUTS = ("centered", "low-horizon", "split", "framed", "diagonal")
TEXTURES = ("clean", "grain", "halftone", "scanlines")
VISUAL_FEATURES = ("brightness", "warmth", "saturation") + tuple(
    f"layout:{x}" for x in LAYOUTS
) + tuple(f"texture:{x}" for x in TEXTURES)  # fmt: skip
AUDIO_FEATURES = tuple(f"mood:{m}" for m in MOODS) + (
    "electronic", "tempo", "brightness", "layering",
)  # fmt: skip

MAX_MIX = 0.45  # loudest second track under the first (layering = mix / MAX_MIX)
SPEED_RANGE = 0.16  # varispeed factor = 1 + SPEED_RANGE * tempo
POSTER_SIZE = 224
SUPERSAMPLE = 2  # posters are drawn at 2x and downsampled: smooth edges without antialiasing
JPEG_QUALITY = 88
FIRST_YEAR, LAST_YEAR = 1950, 2023


def pick(rng: np.random.Generator, items):
    """One of ``items``, uniformly: one integer draw (every part of the generator shares it)."""
    return items[int(rng.integers(len(items)))]

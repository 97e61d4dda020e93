"""Hidden attributes: every movie's genres, themes, style and media recipes, every user's
tastes, and the ratings drawn from them (the formulas are in ``mmrec.data.demo``).
"""

from __future__ import annotations

import math
import zlib

import numpy as np

from mmrec.config import DemoConfig
from mmrec.data.hidden import GROUPS, HiddenUserModel, group_scales
from mmrec.data.synthetic.text import NAMES, SURNAMES, TITLE_GENRE_WORDS, make_synopsis, make_title
from mmrec.data.synthetic.vocabulary import (
    AUDIO_FEATURES,
    FIRST_YEAR,
    GENRE_AUDIO,
    GENRE_FREQ,
    GENRE_PARTNERS,
    GENRES,
    LAST_YEAR,
    LAYOUTS,
    MAX_MIX,
    MOODS,
    RUNTIME_MEAN,
    SPEED_RANGE,
    TEXTURES,
    THEMES,
    VISUAL_FEATURES,
    pick,
)


def genre_affinity() -> np.ndarray:
    """(G, G) weights for drawing a movie's extra genres given its primary genre."""
    g = len(GENRES)
    aff = np.ones((g, g))
    for a, partners in GENRE_PARTNERS.items():
        for b in partners:
            aff[GENRES.index(a), GENRES.index(b)] = aff[GENRES.index(b), GENRES.index(a)] = 5.0
    doc = GENRES.index("Documentary")
    # Documentaries rarely mix with fiction genres outside their partners.
    for j in range(g):
        if aff[doc, j] == 1.0:
            aff[doc, j] = aff[j, doc] = 0.05
    np.fill_diagonal(aff, 0.0)
    return aff


def sample_movies(cfg: DemoConfig, rng: np.random.Generator) -> dict:
    """Every movie's hidden attributes, title, synopsis and the media recipes."""
    n, n_genres = cfg.movies, len(GENRES)
    affinity = genre_affinity()
    genre_mh = np.zeros((n, n_genres), dtype=np.float32)
    theme_mh = np.zeros((n, len(THEMES)), dtype=np.float32)
    visual = np.zeros((n, len(VISUAL_FEATURES)), dtype=np.float32)
    audio = np.zeros((n, len(AUDIO_FEATURES)), dtype=np.float32)
    text_revealed = np.zeros((n, n_genres), dtype=np.uint8)
    primary = np.zeros(n, dtype=np.int16)
    poster_genre = np.full(n, -1, dtype=np.int16)
    audio_genre = np.zeros(n, dtype=np.int16)
    rows, poster_specs, audio_specs = [], [], []
    seen_titles: set[str] = set()
    quality = rng.normal(0.0, 0.45, n)
    years = np.clip(LAST_YEAR - np.floor(rng.exponential(18.0, n)), FIRST_YEAR, LAST_YEAR)
    recency = (years - 1990.0) / 30.0
    log_pop = 0.6 * quality / 0.45 + 0.25 * recency + rng.normal(0.0, 1.2, n)
    for i in range(n):
        movie_id = i + 1
        p = int(rng.choice(n_genres, p=GENRE_FREQ))
        k = int(rng.choice([1, 2, 3], p=[0.35, 0.45, 0.20]))
        weights = GENRE_FREQ * affinity[p]
        extra = list(rng.choice(n_genres, size=k - 1, replace=False, p=weights / weights.sum()))
        idx = [p] + [int(x) for x in extra]
        names = [GENRES[j] for j in idx]
        genre_mh[i, idx] = 1.0
        primary[i] = p
        n_themes = 1 if rng.random() < 0.6 else 2
        themes = [THEMES[j] for j in rng.choice(len(THEMES), size=n_themes, replace=False)]
        theme_mh[i, [THEMES.index(t) for t in themes]] = 1.0

        # --- synopsis and title: each genre revealed independently
        revealed = [g for g in names if rng.random() < cfg.text_genre_prob]
        text_revealed[i, [GENRES.index(g) for g in revealed]] = 1
        overview = make_synopsis(rng, names, revealed, themes)
        genre_word = None
        if names[0] in revealed and rng.random() < 0.5:
            genre_word = pick(rng, TITLE_GENRE_WORDS[names[0]])
        title = make_title(rng, genre_word)
        tries = 0
        while title.lower() in seen_titles:
            tries += 1
            # A big catalog exhausts some short patterns; sequels keep titles unique.
            title = make_title(rng, genre_word) if tries < 30 else f"{title} {tries - 28}"
        seen_titles.add(title.lower())

        # --- poster: motif genre and a genre-independent visual style
        if rng.random() < cfg.poster_genre_prob:
            poster_genre[i] = p
        elif len(idx) > 1:
            poster_genre[i] = int(rng.choice(idx[1:]))
        brightness, warmth, saturation = rng.uniform(-1.0, 1.0, 3)
        layout, texture = int(rng.integers(len(LAYOUTS))), int(rng.integers(len(TEXTURES)))
        visual[i, :3] = (brightness, warmth, saturation)
        visual[i, 3 + layout] = 1.0
        visual[i, 3 + len(LAYOUTS) + texture] = 1.0
        director = f"{pick(rng, NAMES)} {pick(rng, SURNAMES)}"
        poster_specs.append(
            dict(
                title=title, year=int(years[i]), director=director,
                motif=GENRES[poster_genre[i]] if poster_genre[i] >= 0 else None,
                brightness=float(brightness), warmth=float(warmth),
                saturation=float(saturation), layout=LAYOUTS[layout],
                texture=TEXTURES[texture], seed=[cfg.seed, 11, movie_id],
                upper=bool(rng.random() < 0.5),
            )
        )  # fmt: skip

        # --- trailer: mood from one genre, style partly from that genre, partly free
        ag = p if (len(idx) == 1 or rng.random() < cfg.audio_primary_prob) else int(
            rng.choice(idx[1:])
        )  # fmt: skip
        audio_genre[i] = ag
        mood, p_elec, tempo_bias, bright_bias = GENRE_AUDIO[GENRES[ag]]
        if rng.random() >= 0.8:
            mood = MOODS[int(rng.integers(len(MOODS)))]
        electronic = bool(rng.random() < p_elec)
        tempo = float(np.clip(0.6 * tempo_bias + rng.normal(0.0, 0.5), -1.0, 1.0))
        a_bright = float(np.clip(0.5 * bright_bias + rng.normal(0.0, 0.55), -1.0, 1.0))
        mix = float(rng.uniform(0.0, MAX_MIX))
        audio[i, MOODS.index(mood)] = 1.0
        audio[i, len(MOODS) :] = (float(electronic), tempo, a_bright, mix / MAX_MIX)
        audio_specs.append(
            dict(
                mood=mood, electronic=electronic, speed=1.0 + SPEED_RANGE * tempo,
                brightness=a_bright, mix=mix, cut=bool(rng.random() < 0.5),
                cut_at=float(rng.uniform(0.35, 0.65)), pick_a=float(rng.random()),
                pick_b=float(rng.random()), offset_a=float(rng.random()),
                offset_b=float(rng.random()), fade_in=float(rng.uniform(0.2, 1.5)),
                fade_out=float(rng.uniform(0.8, 2.5)),
                echo=float(rng.uniform(0.15, 0.4)) if rng.random() < 0.3 else 0.0,
                echo_delay=float(rng.uniform(0.12, 0.35)),
                serial=(zlib.crc32(f"{cfg.seed}:{movie_id}".encode()) & 0x7FFFFFFF),
            )
        )  # fmt: skip

        runtime = int(np.clip(round(RUNTIME_MEAN[names[0]] + rng.normal(0, 12)), 70, 190))
        rows.append(
            dict(
                movieId=movie_id, title=title, year=int(years[i]), genres="|".join(names),
                overview=overview, poster=f"images/{movie_id}.jpg",
                audio=f"audio/{movie_id}.ogg", runtime=runtime,
            )
        )  # fmt: skip
    return dict(
        rows=rows, poster_specs=poster_specs, audio_specs=audio_specs, genre=genre_mh,
        theme=theme_mh, visual=visual, audio=audio, quality=quality.astype(np.float32),
        log_pop=log_pop.astype(np.float32), primary=primary, poster_genre=poster_genre,
        audio_genre=audio_genre, text_revealed=text_revealed,
    )  # fmt: skip


def sample_users(cfg: DemoConfig, movies: dict, rng: np.random.Generator) -> HiddenUserModel:
    """Hidden tastes of ``cfg.users`` users over the catalog's latent attributes."""
    u, n = cfg.users, cfg.movies
    n_genres = len(GENRES)
    w_genre = rng.normal(0.0, 0.6, (u, n_genres))
    for row in w_genre:
        fav = rng.choice(n_genres, size=int(rng.integers(1, 4)), replace=False)
        row[fav] += rng.uniform(1.5, 2.5, len(fav))
        others = np.setdiff1d(np.arange(n_genres), fav)
        bad = rng.choice(others, size=int(rng.integers(0, 3)), replace=False)
        row[bad] -= rng.uniform(1.5, 2.5, len(bad))
    w_theme = rng.normal(0.0, 1.0, (u, len(THEMES)))
    w_theme[np.arange(u), rng.integers(len(THEMES), size=u)] += 1.5
    weights = {
        "genre": w_genre,
        "theme": w_theme,
        "visual": rng.normal(0.0, 1.0, (u, len(VISUAL_FEATURES))),
        "audio": rng.normal(0.0, 1.0, (u, len(AUDIO_FEATURES))),
    }
    items = {g: movies[g] for g in GROUPS}
    centers = {g: items[g].astype(np.float64).mean(axis=0) for g in GROUPS}
    alpha = rng.dirichlet([2.0, 1.2, 1.2, 1.2], size=u)
    return HiddenUserModel(
        user_ids=np.arange(1, u + 1, dtype=np.int64),
        movie_ids=np.arange(1, n + 1, dtype=np.int64),
        item_features=items,
        centers=centers,
        user_weights={g: w.astype(np.float32) for g, w in weights.items()},
        user_alpha=alpha.astype(np.float32),
        user_bias=rng.normal(0.0, 0.45, u).astype(np.float32),
        user_noise=rng.uniform(0.25, 0.7, u).astype(np.float32),
        item_quality=movies["quality"],
        # Calibrated so the *observed* ratings (biased towards liked movies by the watch
        # choice) look like MovieLens (mean 3.50, std 1.04): 3.46 / 1.05 at the default size,
        # 3.71 / 0.98 with 5,000 movies (more choice, so people find more they like).
        offset=0.0,
        strength=1.8,
        group_scale=group_scales(items, weights, centers),
        feature_names={
            "genre": list(GENRES),
            "theme": list(THEMES),
            "visual": list(VISUAL_FEATURES),
            "audio": list(AUDIO_FEATURES),
        },  # fmt: skip
        extras={
            "log_popularity": movies["log_pop"],
            "primary_genre": movies["primary"],
            "poster_genre": movies["poster_genre"],
            "audio_genre": movies["audio_genre"],
            "text_genres": movies["text_revealed"],
        },  # fmt: skip
    )


def sample_ratings(
    cfg: DemoConfig, model: HiddenUserModel, movies: dict, rng: np.random.Generator
) -> list[tuple[int, int, float, int]]:
    """(userId, movieId, rating, timestamp) rows, sorted by user then movie."""
    n = len(model.movie_ids)
    lo, hi = min(cfg.min_ratings_per_user, n), min(cfg.max_ratings_per_user, n)
    median = math.sqrt(cfg.min_ratings_per_user * cfg.max_ratings_per_user)  # 63 for 20..200
    counts = np.clip(
        np.round(np.exp(rng.normal(math.log(median), 0.75, len(model.user_ids)))), lo, hi
    )
    gamma = rng.uniform(0.5, 1.5, len(model.user_ids))
    expected = model.expected_matrix()  # (U, N)
    release = np.array([epoch(row["year"]) for row in movies["rows"]], dtype=np.int64)
    start_lo, start_hi = epoch(2005), epoch(2023, 6)
    rows = []
    for k, user_id in enumerate(model.user_ids):
        # Per-user generator: the RL simulator can replay one user's draws without the others.
        urng = np.random.default_rng([cfg.seed, 2, int(user_id)])
        keys = movies["log_pop"] + gamma[k] * (expected[k] - 3.0) + urng.gumbel(size=n)
        chosen = np.sort(np.argpartition(-keys, int(counts[k]) - 1)[: int(counts[k])])
        movie_ids = model.movie_ids[chosen]
        ratings = model.sample_rating(int(user_id), movie_ids, urng)
        start = int(urng.integers(start_lo, start_hi))
        span = max(86_400.0, urng.exponential(120 * 86_400.0))
        stamps = start + (urng.random(len(chosen)) * span).astype(np.int64)
        # Nobody rates a film before it comes out: push such stamps past the release date.
        early = stamps < release[chosen]
        late = urng.integers(30 * 86_400, 400 * 86_400, early.sum())  # 1-13 months after
        stamps[early] = release[chosen][early] + late
        rows.extend(
            zip([int(user_id)] * len(chosen), movie_ids.tolist(), ratings.tolist(), stamps.tolist())
        )
    return rows


def epoch(year: int, month: int = 1) -> int:
    import datetime as dt

    return int(dt.datetime(int(year), month, 1, tzinfo=dt.UTC).timestamp())

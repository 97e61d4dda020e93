"""Catalog loader: reads a data folder (movies.csv, ratings.csv, images/, audio/) and validates it.

Problems never stop the load: every one is recorded as a ``Problem`` naming the file and the
line, and the rest keeps working.

- a missing or corrupt poster/audio file -> the movie is kept, that modality is marked missing
  (warning);
- a malformed row, a bad rating value, a duplicate movieId -> the row is skipped (error);
- ratings for unknown movies -> counted, reported once, skipped (warning);
- a media path that leaves the data folder (``../../etc/passwd``, absolute paths, a symlink to
  elsewhere) -> treated as missing and never opened (error), unless the folder it leads to is
  listed in ``DataConfig.media_roots`` / ``MMREC_MEDIA_ROOTS`` (the explicit way to keep posters
  outside the catalog);
- anything that is not a regular file (a FIFO, ``/dev/zero``, a directory) and any file over its
  size cap (``DataConfig.max_csv_bytes`` / ``max_poster_bytes`` / ``max_audio_bytes``) is refused
  from ``stat`` before it is opened (:mod:`mmrec.safeio`): a CSV with a fatal ``CatalogError``
  naming it, a poster or trailer as a warning (modality missing);
- ids must be plain ASCII digits (``^[0-9]+$``): ``1_000``, ``٣``, ``-0``, ``+5`` are refused;
- a CSV header wider than ``max_csv_columns`` is refused; extra movies.csv columns beyond
  ``max_extra_columns`` are dropped with one warning;
- a title with no visible character (zero-width spaces only) is kept with a warning.

Every message escapes control and bidi characters (:func:`mmrec.safeio.escape`), so a movieId
holding a terminal escape sequence prints as ``\x1b[...`` text.

``validate`` exits non-zero when any error-level problem exists.

File checks (does the JPEG decode, is the audio readable) are cached per (path, size, mtime) in
``<data>/.cache/filecheck.json`` so reloading a 5,000-movie catalog is fast.
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from mmrec.config import DataConfig
from mmrec.data.media_checks import _FileChecks, media_roots, resolve_media
from mmrec.safeio import UnsafeFileError, check_regular, escape, read_bytes, visible

MOVIE_COLUMNS = ("movieId", "title", "year", "genres", "overview", "poster", "audio")
RATING_COLUMNS = ("userId", "movieId", "rating", "timestamp")
DEFAULT_RUNTIME = 100.0  # minutes, when a catalog does not say
MAX_ID = 2**63 - 1  # ids must fit int64 (NumPy) and SQLite's INTEGER
ID_PATTERN = re.compile(r"[0-9]+")  # ASCII digits only: no sign, no "_", no other scripts


def parse_id(value: str) -> int:
    """An id from a CSV cell: ASCII digits only, within int64. Raises ValueError otherwise."""
    text = value.strip(" \t")
    if not ID_PATTERN.fullmatch(text):
        raise ValueError("not a plain number")
    number = int(text)
    if number > MAX_ID:
        raise ValueError("id out of range")
    return number


@dataclass
class Problem:
    severity: str  # "error" or "warning"
    file: str  # path relative to the data folder where possible
    line: int | None  # 1-based line in the file (the header is line 1), None if not a row
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return escape(f"{where}: {self.severity}: {self.message}")


class CatalogError(Exception):
    """The catalog cannot be loaded at all (e.g. movies.csv missing or without a header)."""


@dataclass
class Catalog:
    data_dir: Path
    movies: pd.DataFrame  # indexed by movieId, canonical row order
    ratings: pd.DataFrame  # userId, movieId, rating, timestamp
    problems: list[Problem] = field(default_factory=list)
    genres: list[str] = field(default_factory=list)

    @property
    def movie_ids(self) -> np.ndarray:
        return self.movies.index.to_numpy(dtype=np.int64)

    @property
    def n_movies(self) -> int:
        return len(self.movies)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]

    def index_of(self, movie_ids) -> np.ndarray:
        """Row positions of ``movie_ids``; raises KeyError naming the first unknown id."""
        ids = np.atleast_1d(np.asarray(movie_ids, dtype=np.int64))
        pos = self.movies.index.get_indexer(ids)
        if (pos < 0).any():
            raise KeyError(f"unknown movieId {int(ids[np.argmax(pos < 0)])}")
        return pos

    def genre_matrix(self) -> np.ndarray:
        """(N, G) float32 multi-hot genre labels in ``self.genres`` order."""
        col = {g: j for j, g in enumerate(self.genres)}
        out = np.zeros((len(self.movies), len(self.genres)), dtype=np.float32)
        for i, gs in enumerate(self.movies["genres"]):
            for g in gs:
                out[i, col[g]] = 1.0
        return out

    def coverage(self) -> dict[str, int]:
        m = self.movies
        return {
            "text": int(m["has_text"].sum()),
            "image": int(m["has_image"].sum()),
            "audio": int(m["has_audio"].sum()),
            "all_three": int((m["has_text"] & m["has_image"] & m["has_audio"]).sum()),
            "text_and_image": int((m["has_text"] & m["has_image"]).sum()),
        }

    def fingerprint(self) -> str:
        """Hash of the CSVs and the media files' names, sizes and mtimes (cheap, no decoding)."""
        h = hashlib.sha256()
        for name in ("movies.csv", "ratings.csv"):
            p = self.data_dir / name
            if p.exists():
                h.update(name.encode())
                h.update(read_bytes(p, MAX_ID))
        for col in ("poster", "audio"):
            for path in self.movies[col]:
                if path:
                    st = os.stat(path)
                    h.update(f"{path}:{st.st_size}:{st.st_mtime_ns}".encode())
        return h.hexdigest()[:16]

    def content_fingerprint(self) -> str:
        """What checkpoints are bound to (see ``mmrec.built.check_binding``): the bytes of
        movies.csv and ratings.csv and each media file's path relative to the data folder and
        size. Unlike :meth:`fingerprint` it survives a copy of the folder (new mtimes, a new
        absolute path), so a copied catalog keeps its checkpoints."""
        h = hashlib.sha256()
        for name in ("movies.csv", "ratings.csv"):
            p = self.data_dir / name
            if p.exists():
                h.update(name.encode())
                h.update(read_bytes(p, MAX_ID))
        root = self.data_dir.resolve()
        for col in ("poster", "audio"):
            for path in self.movies[col]:
                if path:
                    rel = os.path.relpath(path, root)
                    h.update(f"{rel}:{os.stat(path).st_size}".encode())
        return h.hexdigest()[:16]

    def summary(self) -> dict:
        cov = self.coverage()
        return {
            "data_dir": str(self.data_dir),
            "movies": self.n_movies,
            "users": int(self.ratings["userId"].nunique()) if len(self.ratings) else 0,
            "ratings": len(self.ratings),
            "genres": len(self.genres),
            "coverage": cov,
            "errors": len(self.errors),
            "warnings": len(self.warnings),
        }


# ----------------------------------------------------------------------------- helpers


def _read_csv_rows(path: Path, problems: list[Problem], rel: str, cfg: DataConfig):
    """Yield (line_number, header, row) with robust decoding (BOM, non-UTF-8 bytes).

    The file must be a regular file within ``cfg.max_csv_bytes`` whose real path stays in the
    data folder (or a media root); its header at most ``cfg.max_csv_columns`` wide."""
    try:
        raw = read_bytes(path, cfg.max_csv_bytes, roots=media_roots(path.parent, cfg), what=rel)
    except UnsafeFileError as exc:
        raise CatalogError(str(exc)) from None
    except OSError as exc:
        raise CatalogError(
            f"{escape(path)}: cannot read ({type(exc).__name__}: {escape(exc)})"
        ) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        problems.append(
            Problem("warning", rel, line, "not valid UTF-8; undecodable bytes replaced")
        )
        text = raw.decode("utf-8-sig", errors="replace")
    text = text.replace("\x00", "")
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise CatalogError(f"{rel}: file is empty (expected a header line)") from None
    except csv.Error as exc:
        raise CatalogError(f"{rel}:1: cannot parse header ({exc})") from None
    if len(header) > cfg.max_csv_columns:
        raise CatalogError(
            f"{rel}:1: header has {len(header):,} columns, more than the limit "
            f"{cfg.max_csv_columns} ([data] max_csv_columns): refused"
        )
    header = [h.strip() for h in header]
    while True:
        start = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            problems.append(Problem("error", rel, start, f"malformed CSV ({exc}); row skipped"))
            continue
        if not row or all(not c.strip() for c in row):
            continue
        yield start, header, row


def _parse_year(value: str):
    value = value.strip()
    if not value:
        return pd.NA
    f = float(value)
    if not math.isfinite(f):  # int(inf) raises OverflowError, not ValueError
        raise ValueError(f"year '{value}' is not a number")
    y = int(f)
    if not 1870 <= y <= 2100:
        raise ValueError(f"year {y} out of range")
    return y


# ----------------------------------------------------------------------------- loading


def _load_movies(data_dir: Path, cfg: DataConfig, problems: list[Problem], check_files: bool):
    rel = "movies.csv"
    path = data_dir / rel
    if not path.exists():
        raise CatalogError(f"{escape(path)}: not found (expected movies.csv in the data folder)")
    checks = _FileChecks(data_dir) if check_files else None
    records: list[dict] = []
    seen: dict[int, int] = {}
    header_checked = False
    extra_cols: list[str] = []
    for line, header, row in _read_csv_rows(path, problems, rel, cfg):
        if not header_checked:
            missing = [c for c in ("movieId", "title") if c not in header]
            if missing:
                raise CatalogError(f"{rel}:1: header lacks required column(s) {missing}")
            header_checked = True
            extra_cols = [c for c in header if c not in MOVIE_COLUMNS and c != "runtime"]
            if len(extra_cols) > cfg.max_extra_columns:
                problems.append(
                    Problem(
                        "warning",
                        rel,
                        1,
                        f"{len(extra_cols)} extra columns; only the first "
                        f"{cfg.max_extra_columns} kept ([data] max_extra_columns)",
                    )
                )
                extra_cols = extra_cols[: cfg.max_extra_columns]
        if len(row) != len(header):
            problems.append(
                Problem(
                    "error",
                    rel,
                    line,
                    f"expected {len(header)} fields, found {len(row)}; row skipped",
                )
            )
            continue
        rec = dict(zip(header, row))
        try:
            movie_id = parse_id(rec["movieId"])  # ids live in int64 arrays and SQLite INTEGER
        except ValueError:
            problems.append(
                Problem("error", rel, line, f"bad movieId '{rec['movieId']}'; row skipped")
            )
            continue
        if movie_id in seen:
            problems.append(
                Problem(
                    "error",
                    rel,
                    line,
                    f"duplicate movieId {movie_id} (first on line {seen[movie_id]}); row skipped",
                )
            )
            continue
        title = rec["title"].strip()
        if not title:
            problems.append(Problem("error", rel, line, "empty title; row skipped"))
            continue
        if not visible(title):
            problems.append(
                Problem(
                    "warning",
                    rel,
                    line,
                    f"title '{title}' has no visible character (zero-width or blank only)",
                )
            )
        try:
            year = _parse_year(rec.get("year", ""))
        except ValueError as exc:
            problems.append(Problem("warning", rel, line, f"bad year ({exc}); left empty"))
            year = pd.NA
        genres = tuple(
            g.strip()
            for g in rec.get("genres", "").split("|")
            if g.strip() and g.strip() != "(no genres listed)"
        )
        overview = rec.get("overview", "").strip()
        if len(overview) > cfg.max_synopsis_chars:
            problems.append(
                Problem(
                    "warning",
                    rel,
                    line,
                    f"synopsis of {len(overview)} characters truncated to {cfg.max_synopsis_chars}",
                )
            )
            overview = overview[: cfg.max_synopsis_chars]
        try:
            runtime = float(rec.get("runtime", "") or DEFAULT_RUNTIME)
            if not math.isfinite(runtime) or runtime <= 0:
                raise ValueError
        except ValueError:
            problems.append(
                Problem("warning", rel, line, f"bad runtime '{rec.get('runtime')}'; using default")
            )
            runtime = DEFAULT_RUNTIME
        media = {}
        for col, kind in (("poster", "image"), ("audio", "audio")):
            target, err = resolve_media(data_dir, rec.get(col, ""), cfg)
            if err:
                problems.append(Problem("error", rel, line, f"{col}: {err}"))
            elif target is not None and checks is not None:
                bad = checks.check(target, kind, cfg)
                if bad:
                    problems.append(
                        Problem(
                            "warning",
                            rel,
                            line,
                            f"{col} '{rec.get(col)}': {bad}; {kind} marked missing",
                        )
                    )
                    target = None
            elif target is not None:
                cap = cfg.max_poster_bytes if kind == "image" else cfg.max_audio_bytes
                bad = check_regular(target, cap, what=col)
                if bad and bad != "file not found":
                    problems.append(Problem("warning", rel, line, f"{col} '{rec.get(col)}': {bad}"))
                if bad:
                    target = None
            media[col] = str(target) if target is not None else None
        seen[movie_id] = line
        extra = {k: rec[k] for k in extra_cols}
        records.append(
            {
                "movieId": movie_id,
                "title": title,
                "year": year,
                "genres": genres,
                "overview": overview,
                "poster": media["poster"],
                "audio": media["audio"],
                "runtime": runtime,
                **extra,
            }
        )
    if checks is not None:
        checks.save()
    if not records:
        raise CatalogError(f"{rel}: no valid movie rows")
    movies = pd.DataFrame.from_records(records).set_index("movieId")
    movies["year"] = movies["year"].astype("Int64")
    for col in ("poster", "audio"):  # from_records turns None into NaN (truthy!) beside strings
        movies[col] = movies[col].astype(object).where(movies[col].notna(), None)
    movies["has_text"] = movies["overview"].str.len() > 0
    movies["has_image"] = movies["poster"].notna()
    movies["has_audio"] = movies["audio"].notna()
    return movies


def _load_ratings(data_dir: Path, cfg: DataConfig, movies: pd.DataFrame, problems: list[Problem]):
    rel = "ratings.csv"
    path = data_dir / rel
    empty = pd.DataFrame(
        {
            "userId": pd.Series(dtype=np.int64),
            "movieId": pd.Series(dtype=np.int64),
            "rating": pd.Series(dtype=np.float32),
            "timestamp": pd.Series(dtype=np.int64),
        }
    )
    if not path.exists():
        problems.append(Problem("warning", rel, None, "not found; no ratings loaded"))
        return empty
    known = set(movies.index.tolist())
    users, items, values, stamps = [], [], [], []
    unknown = 0
    first_unknown = None
    seen_pairs: set[tuple[int, int]] = set()
    for line, header, row in _read_csv_rows(path, problems, rel, cfg):
        if len(row) < 3:
            problems.append(
                Problem("error", rel, line, f"expected 4 fields, found {len(row)}; row skipped")
            )
            continue
        rec = dict(zip(header, row))
        try:
            user = parse_id(rec["userId"])
            movie = parse_id(rec["movieId"])
        except (KeyError, ValueError):
            problems.append(Problem("error", rel, line, "bad userId/movieId; row skipped"))
            continue
        try:
            value = float(rec["rating"])
        except (KeyError, ValueError):
            value = float("nan")
        if not (cfg.min_rating <= value <= cfg.max_rating):  # also rejects NaN
            problems.append(
                Problem(
                    "error",
                    rel,
                    line,
                    f"bad rating '{rec.get('rating')}' (expected {cfg.min_rating}-{cfg.max_rating}); row skipped",
                )
            )
            continue
        if movie not in known:
            unknown += 1
            first_unknown = first_unknown or (line, movie)
            continue
        if (user, movie) in seen_pairs:
            problems.append(
                Problem(
                    "warning",
                    rel,
                    line,
                    f"user {user} rated movie {movie} twice; the later rating wins",
                )
            )
        seen_pairs.add((user, movie))
        try:
            stamp = int(float(rec.get("timestamp", "0") or 0))
        except (ValueError, OverflowError):  # "inf" overflows int()
            stamp = 0
        users.append(user)
        items.append(movie)
        values.append(value)
        stamps.append(stamp)
    if unknown:
        line, movie = first_unknown
        problems.append(
            Problem(
                "warning",
                rel,
                line,
                f"{unknown} rating(s) for unknown movies skipped (first: movieId {movie})",
            )
        )
    if not users:
        return empty
    ratings = pd.DataFrame(
        {
            "userId": np.asarray(users, dtype=np.int64),
            "movieId": np.asarray(items, dtype=np.int64),
            "rating": np.asarray(values, dtype=np.float32),
            "timestamp": np.asarray(stamps, dtype=np.int64),
        }
    )
    # keep the last rating of a duplicated (user, movie) pair
    return ratings.drop_duplicates(["userId", "movieId"], keep="last").reset_index(drop=True)


def load_catalog(
    data_dir: str | os.PathLike, cfg: DataConfig | None = None, check_files: bool = True
) -> Catalog:
    """Load and validate a catalog folder. Raises ``CatalogError`` only when nothing is usable."""
    cfg = cfg or DataConfig()
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise CatalogError(f"{escape(data_dir)}: data folder not found")
    problems: list[Problem] = []
    movies = _load_movies(data_dir, cfg, problems, check_files)
    ratings = _load_ratings(data_dir, cfg, movies, problems)
    stats = ratings.groupby("movieId")["rating"].agg(["count", "mean"])
    movies["n_ratings"] = stats["count"].reindex(movies.index).fillna(0).astype(np.int64)
    movies["avg_rating"] = stats["mean"].reindex(movies.index).astype(np.float32)
    genres = sorted({g for gs in movies["genres"] for g in gs})
    return Catalog(
        data_dir=data_dir, movies=movies, ratings=ratings, problems=problems, genres=genres
    )


def format_summary(cat: Catalog, max_problems: int = 50) -> str:
    s = cat.summary()
    cov = s["coverage"]
    n = max(s["movies"], 1)
    lines = [
        f"data folder: {escape(s['data_dir'])}",
        f"movies: {s['movies']}   users: {s['users']}   ratings: {s['ratings']}   genres: {s['genres']}",
        "modality coverage: "
        + "   ".join(
            f"{k} {cov[k]} ({100 * cov[k] / n:.0f}%)"
            for k in ("text", "image", "audio", "all_three")
        ),
        f"problems: {s['errors']} error(s), {s['warnings']} warning(s)",
    ]
    for p in cat.problems[:max_problems]:
        lines.append(f"  {p}")
    if len(cat.problems) > max_problems:
        lines.append(f"  ... and {len(cat.problems) - max_problems} more")
    return "\n".join(lines)

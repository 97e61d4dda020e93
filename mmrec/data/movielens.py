"""Import real movies into the catalog layout: MovieLens + Wikipedia synopses + posters.

Sources (none of them may be committed into the repository; the import writes into a
folder the user names, e.g. ``/tmp/mmrec-real``):

- MovieLens ``movies.csv`` (``movieId,title,genres``, title ends in `` (YEAR)``),
  ``ratings.csv`` and ``links.csv`` (``movieId,imdbId,tmdbId``).
- Wikipedia movie JSON files, one list per decade, fields ``title, year, href, extract``.
  They are joined on a normalised title + year; MovieLens writes "Matrix, The (1999)"
  and alternative titles in parentheses, Wikipedia writes "The Matrix".
- A poster folder with ``<imdbId without leading zeros>.jpg``.

The output follows docs/ARCHITECTURE.md (``movies.csv``, ``images/``, ``ratings.csv``) plus
``README.md`` with provenance and licence terms. A movie without a synopsis or a poster
keeps that modality missing (empty field); there is no real trailer audio, so ``audio`` is
always empty.

Bad rows are skipped with a warning naming the file and line, and the import goes on.
"""

from __future__ import annotations

import argparse
import csv
import io
import logging
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from mmrec.atomic import atomic_write, atomic_write_text
from mmrec.config import DataConfig, MovieLensConfig
from mmrec.data.download import download_movielens
from mmrec.data.wikipedia import (
    ParsedTitle,
    join_wikipedia,
    load_wikipedia,
    parse_movielens_title,
)

log = logging.getLogger(__name__)

DEFAULT_URL = "https://files.grouplens.org/datasets/movielens/ml-latest-small.zip"
MOVIES_COLUMNS = [
    "movieId",
    "title",
    "year",
    "genres",
    "overview",
    "poster",
    "audio",
    "runtime",
    "imdbId",
    "wiki_href",
]
RATINGS_COLUMNS = ["userId", "movieId", "rating", "timestamp"]
PROBLEMS_LOG = "import-problems.log"  # every skipped row / file, one "file:line: message" a line
NO_GENRES = "(no genres listed)"

Progress = Callable[[int, int, str], None]


# ----------------------------------------------------------------------------- problems


@dataclass
class _Problems:
    """Warnings with file and line; logs the first ``max_logged``, counts all."""

    max_logged: int = 50
    messages: list[str] = field(default_factory=list)

    def warn(self, path: Path | str, line: int | None, message: str) -> None:
        where = f"{path}:{line}" if line is not None else str(path)
        text = f"{where}: {message}"
        self.messages.append(text)
        if len(self.messages) <= self.max_logged:
            log.warning("%s", text)
        elif len(self.messages) == self.max_logged + 1:
            log.warning("further problems are counted but not logged one by one")


def _csv_rows(path: Path, required: list[str]) -> Iterator[tuple[int, dict[str, str]]]:
    """Yield ``(line_number, row)`` from a CSV with a header; line numbers are 1-based."""
    with open(path, encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in required if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(
                f"{path}:1: header {reader.fieldnames} lacks column(s) {', '.join(missing)}"
            )
        # reader.line_num is the physical line where the row *ended* (quoted newlines).
        start = reader.line_num + 1
        for row in reader:
            yield start, row
            start = reader.line_num + 1


def _count_data_lines(path: Path) -> int:
    """Lines after the header; only a progress total (a quoted newline would count twice)."""
    newlines, last = 0, b"\n"
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            newlines += chunk.count(b"\n")
            last = chunk[-1:]
    return max(newlines + (last != b"\n") - 1, 0)


def _parse_int(text: str | None) -> int:
    if text is None:
        raise ValueError("missing value")
    return int(text.strip())


# ----------------------------------------------------------------------------- output


def _atomic_write_csv(path: Path, columns: list[str], rows: list[list]) -> None:
    def write(fh) -> None:
        text = io.TextIOWrapper(fh, encoding="utf-8", newline="")
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows(rows)
        text.flush()
        text.detach()  # leave the binary handle open for atomic_write's fsync

    atomic_write(path, write)


def _copy_atomic(src: Path, dst: Path) -> None:
    def write(fh) -> None:
        with open(src, "rb") as source:
            shutil.copyfileobj(source, fh, 1 << 20)

    atomic_write(dst, write, fsync=False)


_IMAGE_MAGIC = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n")


def _looks_like_image(path: Path) -> bool:
    # A cheap header check; full decoding (and the pixel-count guard) happens in the
    # catalog loader / image features, which must handle bad files anyway.
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
    except OSError:
        return False
    return any(head.startswith(m) for m in _IMAGE_MAGIC)


# ----------------------------------------------------------------------------- import


@dataclass
class _Movie:
    movie_id: int
    line: int
    title: str
    year: int | None
    genres: str
    parsed: ParsedTitle
    overview: str = ""
    poster: str = ""
    imdb_id: str = ""
    wiki_href: str = ""


def import_movielens(
    movielens_dir: str | os.PathLike,
    synopses_dir: str | os.PathLike | None,
    posters_dir: str | os.PathLike | None,
    out_dir: str | os.PathLike,
    download: bool = False,
    url: str | None = None,
    progress: Progress | None = None,
    cfg: MovieLensConfig | None = None,
) -> dict:
    """Build a catalog folder in ``out_dir`` from MovieLens, Wikipedia synopses and posters.

    ``synopses_dir`` / ``posters_dir`` may be None (that modality stays missing for all).
    ``download``: fetch ``url`` (None -> ``cfg.url``, i.e. :data:`DEFAULT_URL`) when
    ``movielens_dir`` does not exist. ``progress(done,
    total, stage)`` is called per stage. Returns counts: ``movies``, ``movies_with_synopsis``,
    ``movies_with_poster``, ``movies_with_both``, ``ratings``, ``users``,
    ``ratings_on_both``, ``wiki_entries``, ``wiki_matched`` (+ ``_exact_year``,
    ``_near_year``, ``_title_only``), ``movies_skipped``, ``ratings_skipped``, ``problems``
    (count; the messages are logged and all written to ``out_dir/import-problems.log``),
    ``seconds``.
    """
    cfg = cfg or MovieLensConfig()
    url = url or cfg.url
    started = time.perf_counter()
    problems = _Problems(max_logged=cfg.max_logged_problems)
    report = progress or (lambda done, total, stage: None)
    movielens_dir, out_dir = Path(movielens_dir), Path(out_dir)

    if not movielens_dir.exists():
        if not download:
            raise FileNotFoundError(
                f"{movielens_dir}: MovieLens folder not found (pass --download to fetch "
                f"ml-latest-small from GroupLens)"
            )
        download_movielens(movielens_dir, url, cfg)
    for name in ("movies.csv", "ratings.csv"):
        if not (movielens_dir / name).is_file():
            raise FileNotFoundError(f"{movielens_dir / name}: required MovieLens file missing")
    if out_dir.resolve() == movielens_dir.resolve():
        raise ValueError(f"{out_dir}: output folder must differ from the MovieLens folder")
    out_dir.mkdir(parents=True, exist_ok=True)

    movies = _read_movies(movielens_dir / "movies.csv", problems)
    movies_skipped = len(problems.messages)
    report(len(movies), len(movies), "movies")
    imdb_ids = _read_links(movielens_dir / "links.csv", movies, problems)

    match_counts = {"exact_year": 0, "near_year": 0, "title_only": 0}
    wiki_entries = 0
    if synopses_dir is not None:
        synopses_dir = Path(synopses_dir)
        if not synopses_dir.is_dir():
            raise FileNotFoundError(f"{synopses_dir}: synopses folder not found")
        index = load_wikipedia(synopses_dir, problems)
        wiki_entries = index.n_entries
        matches = join_wikipedia(
            {i: m.parsed for i, m in movies.items()}, index, cfg.year_tolerance
        )
        for movie_id, (entry, how) in matches.items():
            movie = movies[movie_id]
            match_counts[how] += 1
            movie.overview = entry.extract
            movie.wiki_href = entry.url
            if movie.year is None:
                movie.year = entry.year
        report(len(movies), len(movies), "wikipedia")

    if posters_dir is not None:
        posters_dir = Path(posters_dir)
        if not posters_dir.is_dir():
            raise FileNotFoundError(f"{posters_dir}: posters folder not found")
        images = out_dir / "images"
        images.mkdir(exist_ok=True)
        for done, movie in enumerate(movies.values(), 1):
            imdb = imdb_ids.get(movie.movie_id)
            if imdb is not None:
                movie.imdb_id = str(imdb)
                src = posters_dir / f"{imdb}.jpg"
                if src.is_file():
                    if _looks_like_image(src):
                        # Named by movieId: the catalog's key, independent of the source.
                        dst = images / f"{movie.movie_id}.jpg"
                        _copy_atomic(src, dst)
                        movie.poster = f"images/{dst.name}"
                    else:
                        problems.warn(src, None, "not a JPEG/PNG file; poster left missing")
            if done % 1000 == 0 or done == len(movies):
                report(done, len(movies), "posters")
    else:
        for movie in movies.values():
            if movie.movie_id in imdb_ids:
                movie.imdb_id = str(imdb_ids[movie.movie_id])

    _atomic_write_csv(
        out_dir / "movies.csv",
        MOVIES_COLUMNS,
        [
            [
                m.movie_id,
                m.title,
                "" if m.year is None else m.year,
                m.genres,
                m.overview,
                m.poster,
                "",  # audio: no real trailer audio exists for these movies
                "",  # runtime: not in MovieLens; the catalog uses its default
                m.imdb_id,
                m.wiki_href,
            ]
            for m in movies.values()
        ],
    )
    n_before = len(problems.messages)
    ratings = _copy_ratings(
        movielens_dir / "ratings.csv", out_dir / "ratings.csv", movies, problems, report
    )
    ratings_skipped = len(problems.messages) - n_before

    both = {m.movie_id for m in movies.values() if m.overview and m.poster}
    counts = {
        "movies": len(movies),
        "movies_with_synopsis": sum(1 for m in movies.values() if m.overview),
        "movies_with_poster": sum(1 for m in movies.values() if m.poster),
        "movies_with_both": len(both),
        "ratings": ratings["ratings"],
        "users": ratings["users"],
        "ratings_on_both": sum(ratings["per_movie"].get(i, 0) for i in both),
        "users_on_both": len(set().union(*(ratings["users_by_movie"].get(i, ()) for i in both))),
        "wiki_entries": wiki_entries,
        "wiki_matched": sum(match_counts.values()),
        "wiki_matched_exact_year": match_counts["exact_year"],
        "wiki_matched_near_year": match_counts["near_year"],
        "wiki_matched_title_only": match_counts["title_only"],
        "movies_skipped": movies_skipped,
        "ratings_skipped": ratings_skipped,
        "problems": len(problems.messages),
    }
    # The log carries every problem; the logger only the first max_logged of them.
    problems_log = out_dir / PROBLEMS_LOG
    if problems.messages:
        atomic_write_text(problems_log, "\n".join(problems.messages) + "\n")
    else:
        problems_log.unlink(missing_ok=True)  # a stale log from an earlier run would mislead
    counts["seconds"] = round(time.perf_counter() - started, 2)
    atomic_write_text(
        out_dir / "README.md",
        _readme(movielens_dir, synopses_dir, posters_dir, url if download else None, counts),
    )
    return counts


def _read_movies(path: Path, problems: _Problems) -> dict[int, _Movie]:
    movies: dict[int, _Movie] = {}
    for line, row in _csv_rows(path, ["movieId", "title", "genres"]):
        try:
            movie_id = _parse_int(row.get("movieId"))
        except ValueError:
            problems.warn(path, line, f"movieId {row.get('movieId')!r} is not an integer; skipped")
            continue
        if movie_id in movies:
            problems.warn(
                path,
                line,
                f"movieId {movie_id} repeated (first on line {movies[movie_id].line}); skipped",
            )
            continue
        raw_title = (row.get("title") or "").strip()
        if not raw_title:
            problems.warn(path, line, f"movieId {movie_id} has an empty title; skipped")
            continue
        if None in row:  # more fields than the header: an unquoted comma in the title
            problems.warn(path, line, f"movieId {movie_id}: more fields than the header; skipped")
            continue
        genres_raw = (row.get("genres") or "").strip()
        genres = (
            ""
            if genres_raw in ("", NO_GENRES)
            else "|".join(g.strip() for g in genres_raw.split("|") if g.strip())
        )
        parsed = parse_movielens_title(raw_title)
        movies[movie_id] = _Movie(
            movie_id=movie_id,
            line=line,
            title=parsed.display,
            year=parsed.year,
            genres=genres,
            parsed=parsed,
        )
    return movies


def _read_links(path: Path, movies: dict[int, _Movie], problems: _Problems) -> dict[int, int]:
    """movieId -> imdbId as an int (the poster files drop the leading zeros)."""
    if not path.is_file():
        problems.warn(path, None, "links.csv not found; posters cannot be joined")
        return {}
    links: dict[int, int] = {}
    for line, row in _csv_rows(path, ["movieId", "imdbId"]):
        try:
            movie_id = _parse_int(row.get("movieId"))
            imdb = _parse_int(row.get("imdbId"))
        except ValueError:
            problems.warn(path, line, f"cannot parse movieId/imdbId {row!r}; skipped")
            continue
        if movie_id in movies:
            links[movie_id] = imdb
    return links


def _copy_ratings(
    src: Path, dst: Path, movies: dict[int, _Movie], problems: _Problems, report: Progress
) -> dict:
    data_cfg = DataConfig()
    total = _count_data_lines(src)  # a real total for progress bars; one fast binary pass
    rows: list[list[str]] = []
    per_movie: dict[int, int] = {}
    users_by_movie: dict[int, set[int]] = {}
    users: set[int] = set()
    for n_read, (line, row) in enumerate(_csv_rows(src, RATINGS_COLUMNS), 1):
        if n_read % 50_000 == 0:
            report(n_read, total, "ratings")
        try:
            user_id = _parse_int(row["userId"])
            movie_id = _parse_int(row["movieId"])
            rating = float(row["rating"])
            timestamp = _parse_int(row["timestamp"])
        except (ValueError, TypeError, AttributeError):
            problems.warn(src, line, f"cannot parse rating row {row!r}; skipped")
            continue
        if not data_cfg.min_rating <= rating <= data_cfg.max_rating:
            problems.warn(
                src,
                line,
                f"rating {rating} outside [{data_cfg.min_rating}, {data_cfg.max_rating}]; skipped",
            )
            continue
        if movie_id not in movies:
            problems.warn(src, line, f"movieId {movie_id} is not in movies.csv; skipped")
            continue
        # Written back in MovieLens form (the source strings) so nothing is reformatted.
        rows.append([str(user_id), str(movie_id), row["rating"].strip(), str(timestamp)])
        per_movie[movie_id] = per_movie.get(movie_id, 0) + 1
        users_by_movie.setdefault(movie_id, set()).add(user_id)
        users.add(user_id)
    _atomic_write_csv(dst, RATINGS_COLUMNS, rows)
    report(total, total, "ratings")

    return {
        "ratings": len(rows),
        "users": len(users),
        "users_by_movie": users_by_movie,
        "per_movie": per_movie,
    }


def _readme(
    movielens_dir: Path,
    synopses_dir: Path | None,
    posters_dir: Path | None,
    url: str | None,
    counts: dict,
) -> str:
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    source = f"{movielens_dir}" + (f" (downloaded from {url})" if url else "")
    return f"""# Real-movie catalog (imported by `python -m mmrec import-movielens`)

Built {now}. Do not commit this folder or anything derived from it into a code repository:
the terms below allow research and evaluation use, not re-publication under a code licence.

## Sources

| part | source | terms |
|---|---|---|
| `ratings.csv`, movie ids, titles, genres | MovieLens, {source} | GroupLens usage licence: research use only, no commercial use without permission, no endorsement by the University of Minnesota / GroupLens may be implied, cite F. M. Harper and J. A. Konstan, "The MovieLens Datasets: History and Context", ACM TiiS 5(4), 2015, <https://doi.org/10.1145/2827872>; redistribution of transformations only under the same terms |
| `overview` column | Wikipedia article leads, {synopses_dir or "not used"} | CC BY-SA 4.0: each synopsis is attributed by its article link in the `wiki_href` column; derived text must keep the same licence |
| `images/` (posters) | {posters_dir or "not used"}, matched via MovieLens `links.csv` imdbId | studios' copyright: for evaluation only, not for redistribution or display outside research |
| `audio` column | none: no real trailer audio is available | empty for every movie |

`runtime` is empty (not in MovieLens). A movie without a synopsis or poster has that field
empty, and the recommender treats the modality as missing.

## Counts

| what | count |
|---|---|
| movies | {counts["movies"]} |
| with synopsis | {counts["movies_with_synopsis"]} |
| with poster | {counts["movies_with_poster"]} |
| with both | {counts["movies_with_both"]} |
| ratings | {counts["ratings"]} |
| users | {counts["users"]} |
| ratings on movies with both | {counts["ratings_on_both"]} |
| Wikipedia entries read | {counts["wiki_entries"]} |
| MovieLens movies matched to Wikipedia | {counts["wiki_matched"]} (same year {counts["wiki_matched_exact_year"]}, year +-1 {counts["wiki_matched_near_year"]}, title only {counts["wiki_matched_title_only"]}) |
| rows skipped with a warning | movies {counts["movies_skipped"]}, ratings {counts["ratings_skipped"]} (all problems: `{PROBLEMS_LOG}`) |
"""


# ----------------------------------------------------------------------------- CLI


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Arguments of ``python -m mmrec import-movielens`` (for the lead's CLI wiring)."""
    parser.add_argument("--movielens", required=True, help="MovieLens folder (movies.csv, ...)")
    parser.add_argument("--synopses", default=None, help="Wikipedia movie JSON folder")
    parser.add_argument("--posters", default=None, help="poster folder <imdbId>.jpg")
    parser.add_argument("--data", required=True, help="output catalog folder (outside the repo)")
    parser.add_argument(
        "--download", action="store_true", help="fetch ml-latest-small if --movielens is absent"
    )
    parser.add_argument("--url", default=None, help=f"archive for --download ({DEFAULT_URL})")
    return parser


def run_cli(args: argparse.Namespace, cfg: MovieLensConfig | None = None) -> int:
    """Run the import from parsed arguments, print the counts; returns the exit code."""

    def progress(done: int, total: int, stage: str) -> None:
        print(f"  {stage}: {done}" + (f"/{total}" if total else ""), flush=True)

    try:
        counts = import_movielens(
            args.movielens,
            args.synopses,
            args.posters,
            args.data,
            download=args.download,
            url=args.url,
            progress=progress,
            cfg=cfg,
        )
    except (OSError, ValueError) as exc:
        print(f"import-movielens: {exc}", file=sys.stderr)
        return 1
    for key, value in counts.items():
        print(f"{key}: {value}")
    print(f"wrote {args.data} (see its README.md for provenance and terms)")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = add_arguments(argparse.ArgumentParser(prog="mmrec import-movielens"))
    return run_cli(parser.parse_args(argv))


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    raise SystemExit(main())

"""Real-data import (mmrec.data.movielens) on tiny hand-made MovieLens / Wikipedia / poster
folders; the --download path runs against a local HTTP server, never the internet."""

from __future__ import annotations

import csv
import functools
import http.server
import json
import logging
import threading
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from mmrec.config import MovieLensConfig
from mmrec.data.download import download_movielens
from mmrec.data.movielens import import_movielens, main
from mmrec.data.wikipedia import front_article, normalise_title, parse_movielens_title

# movieId, title, genres; line numbers in the file are index + 2 (header is line 1).
MOVIES = [
    ("1", "Matrix, The (1999)", "Action|Sci-Fi|Thriller"),
    ("2", "City of Lost Children, The (Cité des enfants perdus, La) (1995)", "Fantasy"),
    ("3", "Twelve Monkeys (a.k.a. 12 Monkeys) (1995)", "Mystery|Sci-Fi"),
    ("4", "Whiplash (2013)", "Drama"),  # the short: must not steal the 2014 film's synopsis
    ("5", "Whiplash (2014)", "Drama"),
    ("6", "Obscure Film Nobody Wrote About (2001)", "(no genres listed)"),
    ("7", "Captive, The (2014)", "Thriller"),  # "Captive" (2015) is another film
    ("8", "Hurt Locker, The (2008)", "Action|War"),  # Wikipedia says 2009: year +-1
    ("9", "Ready Player One", "Action|Sci-Fi"),  # MovieLens gives no year
    ("x1", "Bad Id Row (2000)", "Drama"),  # malformed: line 11
    ("10", "Avventura, L' (1960)", "Drama"),
]

WIKI_1990S = [
    {
        "title": "The Matrix",
        "year": 1999,
        "href": "The_Matrix",
        "extract": "The Matrix is a 1999\nscience fiction film.",
    },
    {
        "title": "The City of Lost Children",
        "year": 1995,
        "href": "The_City_of_Lost_Children",
        "extract": "A fantasy film about dreams.",
    },
    {"title": "12 Monkeys", "year": 1995, "href": "12_Monkeys", "extract": "Time travel."},
    {"title": "Broken Item Without Year"},  # malformed: skipped with a warning
]
WIKI_2000S = [
    {
        "title": "The Hurt Locker",
        "year": 2009,
        "href": "The_Hurt_Locker",
        "extract": "A war film about a bomb squad.",
    },
]
WIKI_2010S = [
    {"title": "Whiplash", "year": 2014, "href": "Whiplash_(2014_film)", "extract": "Drums."},
    {"title": "Captive", "year": 2015, "href": "Captive_(2015_film)", "extract": "Hostage."},
    {
        "title": "Ready Player One (film)",
        "year": 2018,
        "href": "Ready_Player_One_(film)",
        "extract": "A virtual reality adventure.",
    },
]
LINKS = {"1": "0133093", "2": "0112682", "5": "2582802", "6": "0000006", "7": "0000007"}
RATINGS = [
    ("1", "1", "4.0", "964982703"),
    ("1", "5", "4.5", "964982704"),
    ("2", "1", "3.0", "964982705"),
    ("2", "6", "2.5", "964982706"),
    ("2", "oops", "3.0", "964982707"),  # malformed: line 6
    ("3", "1", "7.0", "964982708"),  # out of range: line 7
    ("3", "999", "3.0", "964982709"),  # unknown movie: line 8
    ("3", "2", "5.0", "964982710"),
]


def _write_csv(path: Path, header: list[str], rows) -> None:
    with open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def _jpeg(path: Path, color) -> None:
    Image.new("RGB", (8, 12), color).save(path, format="JPEG")


def _movielens(folder: Path) -> Path:
    folder.mkdir(parents=True)
    _write_csv(folder / "movies.csv", ["movieId", "title", "genres"], MOVIES)
    _write_csv(
        folder / "links.csv",
        ["movieId", "imdbId", "tmdbId"],
        [(k, v, "1") for k, v in LINKS.items()],
    )
    _write_csv(folder / "ratings.csv", ["userId", "movieId", "rating", "timestamp"], RATINGS)
    return folder


@pytest.fixture
def sources(tmp_path: Path) -> dict[str, Path]:
    movielens = _movielens(tmp_path / "ml")
    wiki = tmp_path / "wiki"
    wiki.mkdir()
    (wiki / "movies-1990s.json").write_text(json.dumps(WIKI_1990S), encoding="utf-8")
    (wiki / "movies-2000s.json").write_text(json.dumps(WIKI_2000S), encoding="utf-8")
    (wiki / "movies-2010s.json").write_text(json.dumps(WIKI_2010S), encoding="utf-8")
    (wiki / "movies-broken.json").write_text('[\n  {"title": "x",\n  oops\n]', encoding="utf-8")
    posters = tmp_path / "posters"
    posters.mkdir()
    _jpeg(posters / "133093.jpg", (200, 10, 10))  # The Matrix
    _jpeg(posters / "2582802.jpg", (10, 10, 200))  # Whiplash (2014)
    _jpeg(posters / "6.jpg", (10, 200, 10))  # the obscure film: poster, no synopsis
    (posters / "7.jpg").write_bytes(b"this is not an image")
    return {
        "ml": movielens,
        "wiki": wiki,
        "posters": posters,
        "out": tmp_path / "out",
        "tmp": tmp_path,
    }


def _read_movies(out: Path) -> dict[str, dict[str, str]]:
    with open(out / "movies.csv", encoding="utf-8", newline="") as fh:
        return {row["movieId"]: row for row in csv.DictReader(fh)}


# ----------------------------------------------------------------------------- titles


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("Matrix, The", "The Matrix"),
        ("Beautiful Mind, A", "A Beautiful Mind"),
        ("Avventura, L'", "L'Avventura"),
        ("Postino, Il", "Il Postino"),
        ("Lord of the Rings: The Two Towers, The", "The Lord of the Rings: The Two Towers"),
        ("Bon Voyage, Charlie Brown", "Bon Voyage, Charlie Brown"),
        ("I, Robot", "I, Robot"),
    ],
)
def test_front_article(raw, expected):
    assert front_article(raw) == expected


def test_normalise_title_ignores_article_case_accents_and_punctuation():
    assert normalise_title("Matrix, The") == normalise_title("The Matrix") == "matrix"
    assert normalise_title("Dumb & Dumber") == normalise_title("Dumb and Dumber")
    assert normalise_title("Léon: The Professional") == "leon the professional"
    assert normalise_title("Don't Look Now") == normalise_title("Dont Look Now")
    assert normalise_title("The Captive", drop_article=False) != normalise_title(
        "Captive", drop_article=False
    )


def test_parse_movielens_title_year_alternatives_and_display():
    parsed = parse_movielens_title(
        "City of Lost Children, The (Cité des enfants perdus, La) (1995)"
    )
    assert parsed.year == 1995
    assert parsed.display == "The City of Lost Children (La Cité des enfants perdus)"
    assert "city of lost children" in parsed.keys
    assert "la cite des enfants perdus" in parsed.keys  # only English articles drop

    aka = parse_movielens_title("Twelve Monkeys (a.k.a. 12 Monkeys) (1995)")
    assert aka.keys[-1] == "12 monkeys" and "twelve monkeys" in aka.keys

    # A title that really ends in parentheses keeps its whole form as the first key.
    whole = parse_movielens_title("Bon Voyage, Charlie Brown (and Don't Come Back!!) (1980)")
    assert whole.keys[0] == "bon voyage charlie brown and dont come back"

    assert parse_movielens_title("Ready Player One").year is None
    assert parse_movielens_title("Babylon 5 (1994-1998)").year == 1994
    assert parse_movielens_title("(500) Days of Summer (2009)").display == "(500) Days of Summer"
    assert parse_movielens_title("Paterson (2016) ").year == 2016  # trailing space in ml-small


# ----------------------------------------------------------------------------- import


def test_import_joins_synopses_and_posters(sources, caplog):
    caplog.set_level(logging.WARNING, logger="mmrec.data.movielens")
    stages = []
    counts = import_movielens(
        sources["ml"],
        sources["wiki"],
        sources["posters"],
        sources["out"],
        progress=lambda done, total, stage: stages.append(stage),
    )
    ratings_progress = []
    import_movielens(  # the same import again, now recording the ratings progress calls
        sources["ml"],
        sources["wiki"],
        sources["posters"],
        sources["out"],
        progress=lambda d, t, stage: ratings_progress.append((d, t)) if stage == "ratings" else 0,
    )
    out = sources["out"]
    movies = _read_movies(out)
    assert list(movies) == ["1", "2", "3", "4", "5", "6", "7", "8", "9", "10"]
    with open(out / "movies.csv", encoding="utf-8") as fh:
        assert fh.readline().strip() == (
            "movieId,title,year,genres,overview,poster,audio,runtime,imdbId,wiki_href"
        )

    matrix = movies["1"]
    assert matrix["title"] == "The Matrix" and matrix["year"] == "1999"
    # Newlines collapsed: one CSV line per movie.
    assert matrix["overview"] == "The Matrix is a 1999 science fiction film."
    assert matrix["wiki_href"] == "https://en.wikipedia.org/wiki/The_Matrix"
    assert matrix["poster"] == "images/1.jpg"
    assert (out / "images" / "1.jpg").read_bytes() == (
        sources["posters"] / "133093.jpg"
    ).read_bytes()
    assert matrix["imdbId"] == "133093"  # leading zeros dropped, like the poster names
    assert matrix["audio"] == "" and matrix["runtime"] == ""

    assert movies["2"]["overview"] == "A fantasy film about dreams."  # article + alternative
    assert movies["2"]["poster"] == ""  # links to a poster that does not exist
    assert movies["3"]["overview"] == "Time travel."  # matched via its a.k.a. title
    assert movies["4"]["overview"] == ""  # the 2013 short does not take the 2014 film
    assert movies["5"]["overview"] == "Drums." and movies["5"]["poster"] == "images/5.jpg"
    assert movies["6"]["genres"] == ""  # "(no genres listed)"
    assert movies["6"]["overview"] == "" and movies["6"]["poster"] == "images/6.jpg"
    assert movies["7"]["overview"] == ""  # "The Captive" (2014) is not "Captive" (2015)
    assert movies["7"]["poster"] == ""  # its poster file is not an image
    assert movies["8"]["overview"] == "A war film about a bomb squad."  # year +-1
    assert movies["9"]["overview"] == "A virtual reality adventure."  # title only, "(film)"
    assert movies["9"]["year"] == "2018"  # year taken from the matched article
    assert movies["10"]["title"] == "L'Avventura"

    assert counts["movies"] == 10
    assert counts["movies_with_synopsis"] == 6  # 1, 2, 3, 5, 8, 9
    assert counts["movies_with_poster"] == 3  # 1, 5, 6
    assert counts["movies_with_both"] == 2  # 1, 5
    assert counts["wiki_entries"] == 7
    assert counts["wiki_matched"] == 6
    assert counts["wiki_matched_exact_year"] == 4
    assert counts["wiki_matched_near_year"] == 1
    assert counts["wiki_matched_title_only"] == 1
    assert counts["movies_skipped"] == 1
    assert counts["ratings"] == 5 and counts["ratings_skipped"] == 3
    assert counts["users"] == 3
    assert counts["ratings_on_both"] == 3  # (1,1), (1,5), (2,1)

    # Every malformed input is reported with its file and line, and the import went on.
    messages = (out / "import-problems.log").read_text(encoding="utf-8").splitlines()
    assert counts["problems"] == len(messages)
    ml = sources["ml"]
    assert any(m.startswith(f"{ml / 'movies.csv'}:11:") and "x1" in m for m in messages)
    assert any(m.startswith(f"{ml / 'ratings.csv'}:6:") for m in messages)
    assert any(m.startswith(f"{ml / 'ratings.csv'}:7:") and "outside" in m for m in messages)
    assert any(m.startswith(f"{ml / 'ratings.csv'}:8:") and "999" in m for m in messages)
    broken = sources["wiki"] / "movies-broken.json"
    assert any(m.startswith(f"{broken}:3:") and "not valid JSON" in m for m in messages)
    assert any("Broken Item Without Year" in m for m in messages)
    assert any(m.startswith(str(sources["posters"] / "7.jpg")) for m in messages)
    assert "movies.csv:11" in caplog.text

    with open(out / "ratings.csv", encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["userId", "movieId", "rating", "timestamp"]
    assert rows[1:] == [list(r) for r in RATINGS if r[1] in ("1", "5", "6", "2") and r[2] != "7.0"]

    readme = (out / "README.md").read_text(encoding="utf-8")
    for phrase in ("GroupLens", "CC BY-SA", "wiki_href", "evaluation only", "Harper"):
        assert phrase in readme
    assert {"movies", "wikipedia", "posters", "ratings"} <= set(stages)
    assert ratings_progress[-1] == (8, 8)  # data lines read of the total
    assert not list(out.glob(".*tmp*")) and not list((out / "images").glob(".*tmp*"))


def test_import_output_loads_as_a_catalog(sources):
    from mmrec.data.catalog import load_catalog

    import_movielens(sources["ml"], sources["wiki"], sources["posters"], sources["out"])
    catalog = load_catalog(sources["out"])
    assert catalog.errors == []
    assert catalog.n_movies == 10
    assert int(catalog.movies["has_text"].sum()) == 6
    assert int(catalog.movies["has_image"].sum()) == 3
    assert int(catalog.movies["has_audio"].sum()) == 0
    assert catalog.movies.loc[1, "wiki_href"] == "https://en.wikipedia.org/wiki/The_Matrix"


def test_import_without_synopses_or_posters_leaves_modalities_missing(sources):
    counts = import_movielens(sources["ml"], None, None, sources["out"])
    movies = _read_movies(sources["out"])
    assert all(m["overview"] == "" and m["poster"] == "" for m in movies.values())
    assert movies["1"]["imdbId"] == "133093"
    assert counts["movies_with_both"] == 0 and counts["wiki_matched"] == 0


def test_import_rerun_overwrites_cleanly(sources):
    first = import_movielens(sources["ml"], sources["wiki"], sources["posters"], sources["out"])
    movies_csv = (sources["out"] / "movies.csv").read_bytes()
    second = import_movielens(sources["ml"], sources["wiki"], sources["posters"], sources["out"])
    assert (sources["out"] / "movies.csv").read_bytes() == movies_csv
    for key in ("movies", "movies_with_both", "ratings", "wiki_matched", "problems"):
        assert first[key] == second[key]
    # A clean source afterwards removes the stale problem log.
    (sources["wiki"] / "movies-broken.json").unlink()
    clean = sources["tmp"] / "ml-clean"
    _movielens(clean)
    _write_csv(clean / "movies.csv", ["movieId", "title", "genres"], [MOVIES[0]])
    _write_csv(clean / "ratings.csv", ["userId", "movieId", "rating", "timestamp"], [RATINGS[0]])
    (sources["wiki"] / "movies-1990s.json").write_text(json.dumps(WIKI_1990S[:3]))
    third = import_movielens(clean, sources["wiki"], sources["posters"], sources["out"])
    assert third["problems"] == 0 and third["movies_with_both"] == 1
    assert not (sources["out"] / "import-problems.log").exists()


def test_default_url_is_the_configured_one():
    from mmrec.data.movielens import DEFAULT_URL

    assert MovieLensConfig().url == DEFAULT_URL
    assert DEFAULT_URL.endswith("/ml-latest-small.zip")


def test_missing_movielens_without_download_names_the_flag(tmp_path):
    with pytest.raises(FileNotFoundError, match="--download"):
        import_movielens(tmp_path / "absent", None, None, tmp_path / "out")


def test_bad_header_is_a_clear_error(tmp_path):
    ml = tmp_path / "ml"
    ml.mkdir()
    (ml / "movies.csv").write_text("id,name\n1,x\n", encoding="utf-8")
    (ml / "ratings.csv").write_text("userId,movieId,rating,timestamp\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"movies\.csv:1: .*movieId"):
        import_movielens(ml, None, None, tmp_path / "out")


# ----------------------------------------------------------------------------- download


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest output clean
        pass


@pytest.fixture
def local_server(tmp_path):
    """Serve ``tmp_path / 'www'`` on 127.0.0.1 at an ephemeral port."""
    www = tmp_path / "www"
    www.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(www))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield www, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _zip_folder(folder: Path, archive: Path, prefix: str) -> None:
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(folder.iterdir()):
            zf.write(path, f"{prefix}/{path.name}")


def test_download_then_import_from_local_server(tmp_path, local_server):
    www, base = local_server
    _zip_folder(_movielens(tmp_path / "fixture"), www / "ml-latest-small.zip", "ml-latest-small")
    movielens_dir = tmp_path / "data" / "ml-latest-small"
    counts = import_movielens(
        movielens_dir,
        None,
        None,
        tmp_path / "out",
        download=True,
        url=f"{base}/ml-latest-small.zip",
    )
    assert (movielens_dir / "movies.csv").read_bytes() == (
        tmp_path / "fixture" / "movies.csv"
    ).read_bytes()
    assert counts["movies"] == 10 and counts["ratings"] == 5
    assert [p.name for p in movielens_dir.parent.iterdir()] == ["ml-latest-small"]  # no temp
    assert "downloaded from" in (tmp_path / "out" / "README.md").read_text(encoding="utf-8")


def test_download_refuses_path_traversal(tmp_path, local_server):
    www, base = local_server
    with zipfile.ZipFile(www / "evil.zip", "w") as zf:
        zf.writestr("ml/movies.csv", "movieId,title,genres\n")
        zf.writestr("../../escaped.txt", "gotcha")
    dest = tmp_path / "deep" / "data" / "ml"
    with pytest.raises(ValueError, match="unsafe path"):
        download_movielens(dest, f"{base}/evil.zip")
    assert not dest.exists()
    assert not list(tmp_path.rglob("escaped.txt"))
    assert list(dest.parent.iterdir()) == []  # the temporary folder was removed


def test_download_size_limit_and_bad_responses(tmp_path, local_server):
    www, base = local_server
    _zip_folder(_movielens(tmp_path / "fixture"), www / "ml.zip", "ml-latest-small")
    dest = tmp_path / "dl" / "ml"
    with pytest.raises(ValueError, match="over the limit"):
        download_movielens(dest, f"{base}/ml.zip", MovieLensConfig(max_download_bytes=100))
    with pytest.raises(ValueError, match="over the limit"):
        download_movielens(dest, f"{base}/ml.zip", MovieLensConfig(max_unzipped_bytes=100))
    (www / "not-a-zip.zip").write_bytes(b"<html>maintenance</html>")
    with pytest.raises(ValueError, match="not a zip"):
        download_movielens(dest, f"{base}/not-a-zip.zip")
    with pytest.raises(OSError, match="404"):
        download_movielens(dest, f"{base}/missing.zip")
    with pytest.raises(ValueError, match="http"):
        download_movielens(dest, f"file://{www / 'ml.zip'}")
    assert not dest.exists()


def test_cli_main_prints_counts(sources, capsys):
    code = main(
        [
            "--movielens",
            str(sources["ml"]),
            "--synopses",
            str(sources["wiki"]),
            "--posters",
            str(sources["posters"]),
            "--data",
            str(sources["out"]),
        ]
    )
    printed = capsys.readouterr().out
    assert code == 0
    assert "movies_with_both: 2" in printed
    assert main(["--movielens", str(sources["ml"] / "nope"), "--data", str(sources["out"])]) == 1

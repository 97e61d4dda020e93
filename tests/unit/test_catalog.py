"""Catalog loader error paths: every problem names its file and line; the rest still loads."""

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from mmrec.data.catalog import CatalogError, load_catalog


def _poster(path, color=(200, 40, 40)):
    Image.new("RGB", (224, 224), color).save(path, "JPEG")


def _clip(path, seconds=1.0, sr=22050):
    t = np.arange(int(seconds * sr)) / sr
    sf.write(path, (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), sr, format="OGG")


@pytest.fixture
def folder(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "audio").mkdir()
    _poster(tmp_path / "images" / "1.jpg")
    _poster(tmp_path / "images" / "2.jpg")
    _clip(tmp_path / "audio" / "1.ogg")
    (tmp_path / "images" / "3.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")  # corrupt
    (tmp_path / "audio" / "2.ogg").write_bytes(b"this is not audio at all")
    (tmp_path / "movies.csv").write_text(
        "movieId,title,year,genres,overview,poster,audio\n"
        '1,Alpha,1999,Action|Drama,"A hero, a plan.",images/1.jpg,audio/1.ogg\n'
        "2,Beta,2001,Comedy,Jokes.,images/2.jpg,audio/2.ogg\n"
        "3,Gamma,,Horror,,images/3.jpg,\n"
        "2,Beta again,2002,Comedy,dup,,\n"
        "x,Bad id,2000,Drama,,,\n"
        "4,Escape,2000,Drama,tries to escape,../../etc/passwd,/etc/passwd\n"
        "5,Short row\n"
    )
    (tmp_path / "ratings.csv").write_text(
        "userId,movieId,rating,timestamp\n"
        "1,1,4.5,100\n"
        "1,2,7,101\n"
        "1,99,3.0,102\n"
        "2,3,nan,103\n"
        "2,2,2.5,104\n"
    )
    return tmp_path


def test_loader_reports_file_and_line(folder):
    cat = load_catalog(folder)
    text = "\n".join(str(p) for p in cat.problems)
    assert sorted(cat.movie_ids.tolist()) == [1, 2, 3, 4]
    assert "movies.csv:5: error: duplicate movieId 2 (first on line 3)" in text
    assert "movies.csv:6: error: bad movieId 'x'" in text
    assert "movies.csv:8: error: expected 7 fields" in text
    assert "movies.csv:4: warning: poster 'images/3.jpg': unreadable image" in text
    assert "movies.csv:3: warning: audio 'audio/2.ogg': unreadable audio" in text
    assert "movies.csv:7: error: poster: path '../../etc/passwd' leaves the data folder" in text
    assert "movies.csv:7: error: audio: absolute path '/etc/passwd' refused" in text
    assert "ratings.csv:3: error: bad rating '7'" in text
    assert "ratings.csv:5: error: bad rating 'nan'" in text
    assert "ratings.csv:4: warning: 1 rating(s) for unknown movies skipped" in text
    m = cat.movies
    assert m.loc[1, "has_image"] and m.loc[1, "has_audio"] and m.loc[1, "has_text"]
    assert m.loc[2, "has_image"] and not m.loc[2, "has_audio"]
    assert not m.loc[3, "has_image"] and not m.loc[3, "has_text"]
    assert not m.loc[4, "has_image"] and not m.loc[4, "has_audio"]
    assert len(cat.ratings) == 2
    assert cat.genres == ["Action", "Comedy", "Drama", "Horror"]
    assert cat.genre_matrix().sum() == 5


def test_bom_quotes_newlines_and_bad_bytes(tmp_path):
    raw = (
        "\ufeffmovieId,title,year,genres,overview,poster,audio\n"
        '1,"Quoted, ""title""",1990,Drama,"line one\nline two",,\n'
    ).encode() + b"2,Caf\xe9,1991,Drama,bad bytes,,\n"
    (tmp_path / "movies.csv").write_bytes(raw)
    cat = load_catalog(tmp_path)
    assert cat.movies.loc[1, "title"] == 'Quoted, "title"'
    assert "line two" in cat.movies.loc[1, "overview"]
    assert cat.movies.loc[2, "title"].startswith("Caf")
    assert any("not valid UTF-8" in str(p) and ":4:" in str(p) for p in cat.problems)


def test_missing_folder_and_file(tmp_path):
    with pytest.raises(CatalogError, match="not found"):
        load_catalog(tmp_path / "nope")
    with pytest.raises(CatalogError, match="movies.csv"):
        load_catalog(tmp_path)


def test_filecheck_cache_notices_changed_file(folder):
    cat = load_catalog(folder)
    assert cat.movies.loc[2, "has_image"]
    (folder / "images" / "2.jpg").write_bytes(b"garbage now")
    cat2 = load_catalog(folder)
    assert not cat2.movies.loc[2, "has_image"]

"""Demo catalog generator and hidden user model, on a tiny catalog (30 movies, 20 users)."""

from __future__ import annotations

import csv
import io
import re
import zlib

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from mmrec.config import DemoConfig
from mmrec.data import demo
from mmrec.data.hidden import HiddenModelError, HiddenUserModel
from mmrec.data.synthetic import latents, motifs, posters, trailers, vocabulary
from mmrec.data.synthetic import text as synopsis_text

N_MOVIES, N_USERS = 30, 20


def _cfg(seed=7, workers=1):
    return DemoConfig(movies=N_MOVIES, users=N_USERS, seed=seed, workers=workers)


@pytest.fixture(scope="module")
def catalogs(tmp_path_factory):
    """Seed 7 with two worker processes, seed 7 in-process, seed 8: three folders."""
    a = tmp_path_factory.mktemp("demo_a")
    b = tmp_path_factory.mktemp("demo_b")
    c = tmp_path_factory.mktemp("demo_c")
    calls = []
    # More than 16 tasks with workers=2 goes through the process pool (the tracks it decodes
    # stay cached in this process, which makes the in-process runs below fast).
    summary = demo.generate_demo(a, _cfg(workers=2), progress=lambda *x: calls.append(x))
    demo.generate_demo(b, _cfg(workers=1))
    demo.generate_demo(c, _cfg(seed=8))
    return {"a": a, "b": b, "c": c, "summary": summary, "progress": calls}


def _rows(path):
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_same_seed_gives_same_bytes_with_any_worker_count(catalogs):
    a, b = catalogs["a"], catalogs["b"]
    for name in ("movies.csv", "ratings.csv", "hidden_users.npz", "hidden_users.json"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    for sub in ("images", "audio"):
        names = sorted(p.name for p in (a / sub).iterdir())
        assert len(names) == N_MOVIES
        for name in names:
            assert (a / sub / name).read_bytes() == (b / sub / name).read_bytes(), f"{sub}/{name}"


def test_different_seed_gives_different_catalog(catalogs):
    a, c = catalogs["a"], catalogs["c"]
    assert (a / "movies.csv").read_bytes() != (c / "movies.csv").read_bytes()
    assert (a / "ratings.csv").read_bytes() != (c / "ratings.csv").read_bytes()
    assert (a / "images" / "1.jpg").read_bytes() != (c / "images" / "1.jpg").read_bytes()


def test_movies_csv_follows_the_layout(catalogs):
    rows = _rows(catalogs["a"] / "movies.csv")
    assert list(rows[0]) == [
        "movieId", "title", "year", "genres", "overview", "poster", "audio", "runtime",
    ]  # fmt: skip
    assert [int(r["movieId"]) for r in rows] == list(range(1, N_MOVIES + 1))
    assert len({r["title"].lower() for r in rows}) == N_MOVIES
    assert len(vocabulary.GENRES) >= 12
    for r in rows:
        genres = r["genres"].split("|")
        assert 1 <= len(genres) <= 3 and len(set(genres)) == len(genres)
        assert set(genres) <= set(vocabulary.GENRES)
        assert vocabulary.FIRST_YEAR <= int(r["year"]) <= vocabulary.LAST_YEAR
        assert 100 <= len(r["overview"]) <= 300, r["overview"]
        assert r["title"].isascii()  # the embedded poster font has no accents
        assert 70 <= int(r["runtime"]) <= 190
        assert r["poster"] == f"images/{r['movieId']}.jpg"
        assert r["audio"] == f"audio/{r['movieId']}.ogg"
    assert "immich-memories-music" in (catalogs["a"] / "README.md").read_text()
    stages = {stage for _, _, stage in catalogs["progress"]}
    assert "posters+trailers" in stages
    assert catalogs["summary"]["movies"] == N_MOVIES


def test_posters_are_224_jpegs_with_content(catalogs):
    for movie_id in (1, 7, 30):
        img = Image.open(catalogs["a"] / "images" / f"{movie_id}.jpg")
        assert img.format == "JPEG" and img.size == (224, 224) and img.mode == "RGB"
        pixels = np.asarray(img, dtype=np.float32)
        assert pixels.std() > 15  # not a flat fill: gradient, motif and title are there


def test_trailers_are_15_second_mono_vorbis(catalogs):
    for movie_id in (1, 15, 30):
        path = catalogs["a"] / "audio" / f"{movie_id}.ogg"
        info = sf.info(path)
        assert (info.format, info.subtype, info.channels) == ("OGG", "VORBIS", 1)
        assert info.samplerate == 22_050
        assert abs(info.duration - 15.0) < 0.1
        samples, _ = sf.read(path, dtype="float32")
        assert 0.3 < np.abs(samples).max() <= 1.0
        assert samples[22_050 * 5 : 22_050 * 10].std() > 0.01  # music in the middle, not silence
        assert path.stat().st_size < 120_000


def test_trailers_differ_between_movies(catalogs):
    clips = [sf.read(catalogs["a"] / "audio" / f"{i}.ogg")[0][: 22_050 * 3] for i in (1, 2, 3)]
    assert not np.allclose(clips[0], clips[1]) and not np.allclose(clips[1], clips[2])


def test_ratings_are_valid_and_sparse(catalogs):
    cfg = _cfg()
    rows = _rows(catalogs["a"] / "ratings.csv")
    assert list(rows[0]) == ["userId", "movieId", "rating", "timestamp"]
    ratings = np.array([float(r["rating"]) for r in rows])
    assert ratings.min() >= 0.5 and ratings.max() <= 5.0
    assert np.all(ratings * 2 == np.round(ratings * 2))
    assert len(np.unique(ratings)) >= 6  # the whole scale is used, not a couple of values
    pairs = [(r["userId"], r["movieId"]) for r in rows]
    assert len(set(pairs)) == len(pairs)
    counts = np.bincount([int(r["userId"]) for r in rows])[1:]
    assert len(counts) == N_USERS
    lo = min(cfg.min_ratings_per_user, N_MOVIES)
    hi = min(cfg.max_ratings_per_user, N_MOVIES)
    assert counts.min() >= lo and counts.max() <= hi
    years = {r["movieId"]: int(r["year"]) for r in _rows(catalogs["a"] / "movies.csv")}
    for r in rows:
        assert int(r["movieId"]) in range(1, N_MOVIES + 1)
        assert int(r["timestamp"]) >= latents.epoch(years[r["movieId"]])


def test_popularity_skew_on_a_bigger_user_base(tmp_path):
    # Ratings only (no media): the watch choice must favour popular movies.
    cfg = DemoConfig(movies=200, users=150, seed=3)
    movies = latents.sample_movies(cfg, np.random.default_rng([cfg.seed, 0]))
    model = latents.sample_users(cfg, movies, np.random.default_rng([cfg.seed, 1]))
    rows = latents.sample_ratings(cfg, model, movies, np.random.default_rng([cfg.seed, 3]))
    per_movie = np.bincount([m for _, m, _, _ in rows], minlength=201)[1:]
    top = np.sort(per_movie)[::-1]
    assert top[:20].sum() > 4 * top[-20:].sum()  # top decile watched far more than bottom
    per_user = np.bincount([u for u, *_ in rows])[1:]
    assert per_user.min() >= 20 and per_user.max() <= 200 and len(np.unique(per_user)) > 10


def test_hidden_model_round_trips_and_explains_the_ratings(catalogs, tmp_path):
    model = HiddenUserModel.load(catalogs["a"])
    assert list(model.user_ids) == list(range(1, N_USERS + 1))
    assert list(model.movie_ids) == list(range(1, N_MOVIES + 1))
    model.save(tmp_path)
    again = HiddenUserModel.load(tmp_path)
    ids = np.arange(1, N_MOVIES + 1)
    for user_id in (1, 11, 20):
        np.testing.assert_array_equal(
            model.expected_rating(user_id, ids), again.expected_rating(user_id, ids)
        )
    assert (tmp_path / "hidden_users.npz").read_bytes() == (
        catalogs["a"] / "hidden_users.npz"
    ).read_bytes()

    rows = _rows(catalogs["a"] / "ratings.csv")
    observed = np.array([float(r["rating"]) for r in rows])
    expected = np.array(
        [model.expected_rating(int(r["userId"]), np.array([int(r["movieId"])]))[0] for r in rows]
    )
    assert np.all((expected > 0.5) & (expected < 5.0))
    assert np.corrcoef(observed, expected)[0, 1] > 0.6
    shares = model.modality_weights(3)
    assert set(shares) == {"genre", "theme", "visual", "audio"}
    assert abs(sum(shares.values()) - 1.0) < 1e-5


def test_hidden_model_protocol_and_errors(catalogs):
    model = HiddenUserModel.load(catalogs["a"])
    ids = np.array([3, 1, 2])
    first = model.sample_rating(5, ids, np.random.default_rng(0))
    second = model.sample_rating(5, ids, np.random.default_rng(0))
    np.testing.assert_array_equal(first, second)
    assert first.shape == (3,) and np.all(first * 2 == np.round(first * 2))
    # Order follows the ids asked for, not catalog order.
    np.testing.assert_allclose(
        model.expected_rating(5, ids)[[1, 2, 0]], model.expected_rating(5, np.array([1, 2, 3]))
    )
    assert model.expected_matrix().shape == (N_USERS, N_MOVIES)
    with pytest.raises(KeyError, match="movieId 999"):
        model.expected_rating(1, np.array([1, 999]))
    with pytest.raises(KeyError, match="userId 77"):
        model.expected_rating(77, ids)


def test_hidden_model_load_errors_name_the_file(tmp_path, catalogs):
    with pytest.raises(HiddenModelError, match="hidden_users.json"):
        HiddenUserModel.load(tmp_path)
    (tmp_path / "hidden_users.json").write_bytes((catalogs["a"] / "hidden_users.json").read_bytes())
    (tmp_path / "hidden_users.npz").write_bytes(b"not a zip file")
    with pytest.raises(HiddenModelError, match="hidden_users.npz"):
        HiddenUserModel.load(tmp_path)


def test_catalog_loader_accepts_the_demo(catalogs):
    from mmrec.data.catalog import load_catalog

    catalog = load_catalog(catalogs["a"])
    assert not catalog.errors, [str(p) for p in catalog.errors]
    assert catalog.n_movies == N_MOVIES
    assert bool(catalog.movies["has_image"].all() and catalog.movies["has_audio"].all())


def test_refuses_to_overwrite_a_real_catalog(tmp_path):
    (tmp_path / "movies.csv").write_text("movieId,title\n1,Heat\n")
    with pytest.raises(FileExistsError, match="not a demo catalog"):
        demo.generate_demo(tmp_path, _cfg())
    assert (tmp_path / "movies.csv").read_text() == "movieId,title\n1,Heat\n"


def test_bad_config_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="min_ratings_per_user"):
        demo.generate_demo(tmp_path, DemoConfig(min_ratings_per_user=50, max_ratings_per_user=10))


def _genre_phrases():
    pools = (
        synopsis_text.HEROES,
        synopsis_text.SETTINGS,
        synopsis_text.INCITINGS,
        synopsis_text.TAGLINES,
    )
    return {g: [p for pool in pools for p in pool[g]] for g in vocabulary.GENRES}


def test_synopsis_implies_only_the_revealed_genres():
    phrases = _genre_phrases()
    rng = np.random.default_rng(0)
    for _ in range(200):
        genres = list(rng.choice(vocabulary.GENRES, size=3, replace=False))
        revealed = genres[:1]
        text = synopsis_text.make_synopsis(rng, genres, revealed, ["family"])
        assert 100 <= len(text) <= 300
        hits = {g for g, ps in phrases.items() if any(p in text or _cap1(p) in text for p in ps)}
        assert hits == set(revealed), (text, revealed, hits)
        assert any(goal in text for goal in synopsis_text.THEME_GOALS["family"])
    hidden = synopsis_text.make_synopsis(rng, ["Horror"], [], ["love"])
    assert not any(p in hidden or _cap1(p) in hidden for ps in phrases.values() for p in ps)


def _cap1(text):
    return text[:1].upper() + text[1:]


def test_each_modality_reveals_a_different_part_of_the_genres():
    cfg = DemoConfig(movies=1500, seed=5)
    m = latents.sample_movies(cfg, np.random.default_rng([cfg.seed, 0]))
    primary_on_poster = np.mean(m["poster_genre"] == m["primary"])
    assert 0.8 < primary_on_poster < 0.9  # poster_genre_prob = 0.85
    multi = m["genre"].sum(axis=1) > 1
    audio_primary = np.mean(m["audio_genre"][multi] == m["primary"][multi])
    assert 0.4 < audio_primary < 0.6  # audio_primary_prob = 0.5 on multi-genre movies
    shown = m["text_revealed"].sum() / m["genre"].sum()
    assert 0.55 < shown < 0.65  # text_genre_prob = 0.6
    # Secondary genres are almost never on the poster, but often in the text: complementary.
    secondary = m["genre"].astype(bool)
    secondary[np.arange(len(secondary)), m["primary"]] = False
    assert m["text_revealed"][secondary].mean() > 0.5


def test_ogg_serial_rewrite_keeps_valid_crcs():
    samples = (0.1 * np.sin(np.arange(22_050) / 10.0)).astype(np.float32)
    buf = io.BytesIO()
    sf.write(buf, samples, 22_050, format="OGG", subtype="VORBIS")
    raw = buf.getvalue()
    # Our CRC must reproduce libsndfile's own page CRCs before we trust it for rewriting.
    pos = 0
    while pos < len(raw):
        n_seg = raw[pos + 26]
        size = 27 + n_seg + sum(raw[pos + 27 : pos + 27 + n_seg])
        page = bytearray(raw[pos : pos + size])
        stored = int.from_bytes(page[22:26], "little")
        page[22:26] = b"\0\0\0\0"
        assert trailers._ogg_crc(bytes(page)) == stored
        pos += size
    fixed = trailers.set_ogg_serial(raw, 12345)
    assert fixed == trailers.set_ogg_serial(raw, 12345)
    assert len(re.findall(b"OggS", fixed)) == len(re.findall(b"OggS", raw))
    decoded, _ = sf.read(io.BytesIO(fixed), dtype="float32")
    assert decoded.shape == (22_050,) and zlib.crc32(fixed) != zlib.crc32(raw)


def test_pool_forks_only_without_other_threads():
    import threading

    # Other tests in the session may have left threads behind; then spawn is the right answer.
    alone = threading.active_count() == 1
    assert demo._pool_context().get_start_method() == ("fork" if alone else "spawn")
    stop = threading.Event()
    worker = threading.Thread(target=stop.wait)
    worker.start()
    try:
        # A Streamlit server or a tokenizer pool would be running threads: never fork those.
        assert demo._pool_context().get_start_method() == "spawn"
    finally:
        stop.set()
        worker.join()


def test_every_genre_has_a_palette_and_a_motif_and_the_abstract_poster_has_no_genre():
    assert set(posters.PALETTES) == set(vocabulary.GENRES)
    assert set(motifs.MOTIFS) == set(vocabulary.GENRES) | {None}
    assert len(set(motifs.MOTIFS.values())) == len(motifs.MOTIFS)  # no genre borrows another's


def test_each_motif_draws_something_of_its_own():
    """Every motif paints pixels on an empty overlay, and two genres never paint the same."""
    from PIL import Image, ImageDraw

    s = 2 * vocabulary.POSTER_SIZE
    seen = {}
    for genre in motifs.MOTIFS:
        pal = posters.PALETTES.get(genre, posters.ABSTRACT_PALETTES[0])
        overlay = Image.new("RGBA", (s, s), (0, 0, 0, 0))
        rng = np.random.default_rng(0)
        motifs.draw_motif(
            ImageDraw.Draw(overlay), genre, s, s / 2, s * 0.45, s * 0.24, s * 0.7, pal, rng
        )
        pixels = overlay.tobytes()
        assert overlay.getbbox() is not None, genre
        assert pixels not in seen, f"{genre} draws what {seen.get(pixels)} draws"
        seen[pixels] = genre

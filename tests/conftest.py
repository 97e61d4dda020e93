"""Shared fixtures: a tiny demo catalog, generated and built into a temporary folder.

``tiny_built`` (session scope) is generic on purpose: ~40 movies with all three modalities, the
models trained on a tiny budget, nothing else changed. Tests that need a special catalog call
:func:`build_tiny` themselves (e.g. the browser test adds a hostile title).
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

REPO = Path(__file__).resolve().parents[1]


def pytest_configure(config):
    # The test process serves like the dashboard (services, explanations, AppTest sessions):
    # the same process-wide thread policy, set once here (mmrec.threads), as main.py does.
    from mmrec.threads import use_serving_threads

    use_serving_threads()


# Small budgets so a build of the tiny catalog takes well under a minute on 2 cores.
TINY_TOML = """
[demo]
movies = {movies}
users = {users}
seed = 7
clip_seconds = 6.0
min_ratings_per_user = 5
max_ratings_per_user = 25

[fusion]
max_epochs = 4
patience = 2
batch_size = 32

[dqn]
total_steps = 1200
n_envs = 4
buffer_size = 4000
batch_size = 32
learning_starts = 200
target_sync = 100

[policy_eval]
min_episodes = 20
supervised_epochs = 1
simulator_epochs = 20

[paths]
data_dir = "{data}"
checkpoints_dir = "{ckpt}"
"""


def tiny_config(root: Path, movies: int = 40, users: int = 30):
    """A Config (and its TOML at ``root/tiny.toml``) for a tiny catalog under ``root``."""
    from mmrec.config import load_config

    root = Path(root)
    toml = root / "tiny.toml"
    toml.write_text(
        TINY_TOML.format(
            movies=movies,
            users=users,
            data=(root / "data").as_posix(),
            ckpt=(root / "checkpoints").as_posix(),
        )
    )
    cfg = load_config(toml)
    # MMREC_DATA / MMREC_CHECKPOINTS in the outer environment must not redirect the fixture
    cfg.paths.data_dir = (root / "data").as_posix()
    cfg.paths.checkpoints_dir = (root / "checkpoints").as_posix()
    cfg.paths.db_path = ""
    return cfg


def set_titles(data_dir: Path, titles: dict[int, str]) -> None:
    """Rewrite movies.csv with some titles replaced (movieId -> new title)."""
    path = Path(data_dir) / "movies.csv"
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        fields = reader.fieldnames
        rows = list(reader)
    for row in rows:
        new = titles.get(int(row["movieId"]))
        if new is not None:
            row["title"] = new
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)


def build_tiny(root: Path, movies: int = 40, users: int = 30, titles: dict[int, str] | None = None):
    """Generate the demo catalog under ``root/data``, build ``root/checkpoints``; return Config.

    ``titles`` optionally replaces some titles (by position in movies.csv: 0 = first movie)
    before the build."""
    from mmrec.data.demo import generate_demo
    from mmrec.pipeline import build

    cfg = tiny_config(root, movies, users)
    data = Path(cfg.paths.data_dir)
    generate_demo(data, cfg.demo)
    if titles:
        with open(data / "movies.csv", newline="", encoding="utf-8") as fh:
            ids = [int(r["movieId"]) for r in csv.DictReader(fh)]
        set_titles(data, {ids[pos]: t for pos, t in titles.items()})
    build(cfg)
    return cfg


@pytest.fixture(scope="session")
def tiny_built(tmp_path_factory):
    """Config of a ~40-movie demo catalog with built checkpoints (shared by the session)."""
    return build_tiny(tmp_path_factory.mktemp("tiny"))


# The app's environment for the AppTest modules (tests/app).
@pytest.fixture
def env(tiny_built, tmp_path, monkeypatch):
    """The app's environment: the tiny catalog, its checkpoints, a fresh ratings database."""
    db = tmp_path / "ratings.sqlite3"
    monkeypatch.setenv("MMREC_DATA", tiny_built.paths.data_dir)
    monkeypatch.setenv("MMREC_CHECKPOINTS", tiny_built.paths.checkpoints_dir)
    monkeypatch.setenv("MMREC_DB", str(db))
    monkeypatch.delenv("MMREC_CONFIG", raising=False)
    return {"cfg": tiny_built, "db": db}


@pytest.fixture(scope="session")
def tiny_builder():
    """:func:`build_tiny` for tests that need their own variant of the tiny catalog."""
    return build_tiny


def genre_world(
    root: Path,
    n_movies: int,
    genres: list[str],
    n_users: int,
    seed: int,
    max_runtime: float,
    ratings_per_user: int,
    dim: int = 8,
):
    """``(catalog, item_emb (N, dim), user model)`` of a tiny RL world written to ``root``.

    Movie ``i`` has the single genre ``genres[i % G]``; the user model is a ``FittedUserModel``
    whose item factors are the genre one-hots (so each user's taste is one weight per genre and
    the true ratings are known exactly); each user rated ``ratings_per_user`` random movies with
    their noise; the item embedding is the genre one-hot plus small noise in the other columns.
    """
    import numpy as np
    import pandas as pd

    from mmrec.data.catalog import load_catalog
    from mmrec.rl.simulator import FittedUserModel

    rng = np.random.default_rng(seed)
    n_genres = len(genres)
    genre_of = np.arange(n_movies) % n_genres
    movie_ids = np.arange(1, n_movies + 1) * 10
    pd.DataFrame(
        {
            "movieId": movie_ids,
            "title": [f"Film {i}" for i in range(n_movies)],
            "year": 2000,
            "genres": [genres[g] for g in genre_of],
            "overview": "",
            "poster": "",
            "audio": "",
            "runtime": np.linspace(80, max_runtime, n_movies).round(),
        }
    ).to_csv(root / "movies.csv", index=False)
    item_vec = np.eye(n_genres, dtype=np.float32)[genre_of]  # (N, G): taste = genre
    user_f = rng.standard_normal((n_users, n_genres)).astype(np.float32) * 1.2
    model = FittedUserModel(
        movie_ids, np.arange(1, n_users + 1), 3.2, np.zeros(n_users), np.zeros(n_movies),
        user_f, item_vec, np.full(n_users, 0.3),
    )  # fmt: skip
    rows = []
    for u in model.user_ids:
        items = rng.choice(movie_ids, ratings_per_user, replace=False)
        for t, (m, r) in enumerate(zip(items, model.sample_rating(u, items, rng))):
            rows.append((u, m, r, 1000 + t))
    pd.DataFrame(rows, columns=["userId", "movieId", "rating", "timestamp"]).to_csv(
        root / "ratings.csv", index=False
    )
    catalog = load_catalog(root, check_files=False)
    emb = np.concatenate(
        [item_vec, 0.1 * rng.standard_normal((n_movies, dim - n_genres))], axis=1
    ).astype(np.float32)
    return catalog, emb, model


@pytest.fixture(scope="session")
def genre_world_factory(tmp_path_factory):
    """:func:`genre_world` in a fresh temporary folder: ``factory(name, **parameters)``
    (tests/unit/test_rl.py and test_env_dynamics.py each build their own size)."""
    return lambda name, **kw: genre_world(tmp_path_factory.mktemp(name), **kw)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    """Leave without the interpreter's teardown once pytest has reported.

    Native threads of third-party libraries (Ray's core worker, torch pools) were seen to abort
    the process while Python tears down after a green run ("terminate called without an active
    exception", 1 run in 3 on the shared VM), turning a passing `make test` red. The results are
    final here (summary printed, exit status known), so the process exits with that status now.
    """
    import sys

    status = getattr(config, "_mmrec_exitstatus", None)
    if status is None:
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(int(status))


def pytest_sessionfinish(session, exitstatus):
    session.config._mmrec_exitstatus = exitstatus

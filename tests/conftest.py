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


@pytest.fixture(scope="session")
def tiny_builder():
    """:func:`build_tiny` for tests that need their own variant of the tiny catalog."""
    return build_tiny


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

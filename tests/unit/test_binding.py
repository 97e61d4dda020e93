"""Checkpoints bound to their catalog; a rebuild beside the served version (issue 19).

- a 30-film catalog with the checkpoints of another (here: the tiny catalog's, 40 films) is
  refused on load with a message naming both folders and the rebuild command; so is a catalog
  whose movies.csv changed with the same ids (fingerprint), and a copied folder still loads;
- another data folder never shares the default checkpoints (derived per folder);
- ``rebuild_beside`` never touches the served folder until the new version is complete, a
  service loaded before keeps answering (rate, recommend) during and after the build, the swap is
  one step, and a failed build leaves the served version as it was.
"""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest

from mmrec.built import load_built
from mmrec.checkpoint import CheckpointMismatchError
from mmrec.config import checkpoints_for, load_config
from mmrec.rebuild import checkpoint_version, rebuild_beside
from mmrec.service import Recommender, ServiceError


def copy_catalog(cfg, dest: Path, keep: int | None = None, retitle: bool = False) -> Path:
    """The tiny catalog copied to ``dest`` (optionally only the first ``keep`` movies, or with
    one title changed)."""
    shutil.copytree(cfg.paths.data_dir, dest, ignore=shutil.ignore_patterns(".cache", "*.sqlite3"))
    if keep is None and not retitle:
        return dest  # a plain copy, byte for byte
    path = dest / "movies.csv"
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        fields, rows = reader.fieldnames, list(reader)
    if keep is not None:
        rows = rows[:keep]
    if retitle:
        rows[0]["title"] = rows[0]["title"] + " (director's cut)"
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    return dest


def with_paths(cfg, data: Path, ckpt: Path | str, db: Path | None = None):
    out = load_config(data_dir=str(data), checkpoints_dir=str(ckpt))
    out.fusion, out.dqn, out.env, out.demo = cfg.fusion, cfg.dqn, cfg.env, cfg.demo
    out.policy_eval = cfg.policy_eval
    if db is not None:
        out.paths.db_path = str(db)
    return out


def test_checkpoints_of_another_catalog_are_refused(tiny_built, tmp_path):
    small = copy_catalog(tiny_built, tmp_path / "small", keep=30)
    cfg = with_paths(tiny_built, small, tiny_built.paths.checkpoints_dir)
    with pytest.raises(CheckpointMismatchError) as info:
        load_built(cfg, attempts=1)
    msg = str(info.value)
    print(f"\nBINDING 30-film catalog, 40-film checkpoints: {msg}")
    assert "40 movies stored, 30 in the catalog" in msg
    assert "python -m mmrec build --data" in msg and str(small) in msg
    with pytest.raises(ServiceError) as info:  # what the dashboard shows: the same, no traceback
        Recommender(cfg)
    assert "not built from the catalog" in str(info.value)


def test_same_ids_but_changed_catalog_is_refused_and_a_copy_still_loads(tiny_built, tmp_path):
    changed = copy_catalog(tiny_built, tmp_path / "changed", retitle=True)
    cfg = with_paths(tiny_built, changed, tiny_built.paths.checkpoints_dir)
    with pytest.raises(CheckpointMismatchError) as info:
        load_built(cfg, attempts=1)
    assert "fingerprint" in str(info.value)
    # a plain copy (new mtimes, new absolute paths) keeps its checkpoints
    copied = copy_catalog(tiny_built, tmp_path / "copied")
    ckpt = tmp_path / "copied-ckpt"
    shutil.copytree(tiny_built.paths.checkpoints_dir, ckpt)
    catalog, *_ = load_built(with_paths(tiny_built, copied, ckpt))
    assert catalog.n_movies == 40


def test_another_data_folder_gets_its_own_checkpoints(tmp_path, monkeypatch):
    monkeypatch.delenv("MMREC_CHECKPOINTS", raising=False)
    monkeypatch.delenv("MMREC_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data" / "movielens").mkdir(parents=True)
    assert load_config().paths.checkpoints_dir == "checkpoints/demo"
    assert load_config(data_dir="data/movielens").paths.checkpoints_dir == "checkpoints/movielens"
    a = load_config(data_dir=str(tmp_path / "x" / "demo")).paths.checkpoints_dir
    b = load_config(data_dir=str(tmp_path / "y" / "demo")).paths.checkpoints_dir
    assert a != b and a.startswith("checkpoints/demo-") and a != "checkpoints/demo"
    monkeypatch.setenv("MMREC_DATA", str(tmp_path / "x" / "demo"))
    assert load_config().paths.checkpoints_dir == a == checkpoints_for(tmp_path / "x" / "demo")
    # an explicit folder always wins
    assert load_config(checkpoints_dir="mine").paths.checkpoints_dir == "mine"


def test_rebuild_beside_keeps_serving_and_swaps_when_complete(tiny_built, tmp_path):
    data = copy_catalog(tiny_built, tmp_path / "data")
    ckpt = tmp_path / "ckpt"
    shutil.copytree(tiny_built.paths.checkpoints_dir, ckpt)
    cfg = with_paths(tiny_built, data, ckpt, db=tmp_path / "r.sqlite3")
    served = Recommender(cfg)
    uid = served.create_user("b", liked_genres=tuple(served.catalog.genres[:2]))
    before = {p.name: p.stat().st_mtime_ns for p in ckpt.iterdir()}
    version = checkpoint_version(ckpt)
    # the catalog changes (one title): the served checkpoints no longer fit it
    copy_catalog(tiny_built, tmp_path / "tmp", retitle=True)
    shutil.copy(tmp_path / "tmp" / "movies.csv", data / "movies.csv")
    seen = {"calls": 0, "rated": 0}

    def progress(done, total, stage):
        # mid-build: the served folder is untouched and the old service keeps answering
        seen["calls"] += 1
        if seen["calls"] % 25 == 1:
            assert {p.name: p.stat().st_mtime_ns for p in ckpt.iterdir()} == before
            assert checkpoint_version(ckpt) == version
            mid = served.recommend(uid, k=3)[0].movie_id
            served.rate(uid, mid, 4.0)
            seen["rated"] += 1

    result = rebuild_beside(cfg, progress=progress)
    assert result["built"] and "switched" in result["message"]
    assert seen["rated"] >= 2
    assert checkpoint_version(ckpt) != version
    assert (tmp_path / ".ckpt.previous").is_dir()  # the old version, for readers that had it
    assert not list(tmp_path.glob(".ckpt.building-*"))
    fresh = Recommender(cfg)  # the new version loads and fits the changed catalog
    assert fresh.catalog.movies.iloc[0]["title"].endswith("(director's cut)")
    assert len(served.store.ratings(uid)) == seen["rated"] == len(fresh.store.ratings(uid))


def test_failed_rebuild_leaves_the_served_version(tiny_built, tmp_path, monkeypatch):
    import mmrec.rebuild as P

    data = copy_catalog(tiny_built, tmp_path / "data")
    ckpt = tmp_path / "ckpt"
    shutil.copytree(tiny_built.paths.checkpoints_dir, ckpt)
    cfg = with_paths(tiny_built, data, ckpt)
    version = checkpoint_version(ckpt)

    def boom(*_a, **_k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(P, "build", boom)
    with pytest.raises(RuntimeError):
        rebuild_beside(cfg, in_process=True)
    assert checkpoint_version(ckpt) == version
    # the same from the child process: a catalog that cannot load fails the build there
    original = (data / "movies.csv").read_bytes()
    (data / "movies.csv").write_text("no,header\n")
    with pytest.raises(RuntimeError) as info:
        rebuild_beside(cfg)
    assert "build failed" in str(info.value) and "no valid movie rows" in str(info.value)
    assert checkpoint_version(ckpt) == version
    assert not list(tmp_path.glob(".ckpt.building-*"))
    (data / "movies.csv").write_bytes(original)
    load_built(cfg)  # the served version is intact and still fits the catalog

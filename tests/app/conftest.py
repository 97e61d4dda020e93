"""Shared by the AppTest modules: the app's environment on the tiny built catalog."""

from __future__ import annotations

import pytest


@pytest.fixture
def env(tiny_built, tmp_path, monkeypatch):
    """The app's environment: the tiny catalog, its checkpoints, a fresh ratings database."""
    db = tmp_path / "ratings.sqlite3"
    monkeypatch.setenv("MMREC_DATA", tiny_built.paths.data_dir)
    monkeypatch.setenv("MMREC_CHECKPOINTS", tiny_built.paths.checkpoints_dir)
    monkeypatch.setenv("MMREC_DB", str(db))
    monkeypatch.delenv("MMREC_CONFIG", raising=False)
    return {"cfg": tiny_built, "db": db}

"""Config: defaults, TOML overrides by section, env vars for the paths."""

import pytest

from mmrec.config import load_config


def test_defaults_toml_and_env(tmp_path, monkeypatch):
    monkeypatch.delenv("MMREC_CONFIG", raising=False)
    monkeypatch.delenv("MMREC_DATA", raising=False)
    cfg = load_config()
    assert cfg.paths.data_dir == "data/demo"
    toml = tmp_path / "c.toml"
    toml.write_text('seed = 3\n[demo]\nmovies = 42\n[paths]\ndata_dir = "x"\n')
    cfg = load_config(toml)
    assert cfg.demo.movies == 42 and cfg.seed == 3 and cfg.paths.data_dir == "x"
    monkeypatch.setenv("MMREC_DATA", str(tmp_path / "d"))
    monkeypatch.setenv("MMREC_CHECKPOINTS", str(tmp_path / "c"))
    cfg = load_config(toml)
    assert cfg.paths.data_dir == str(tmp_path / "d")  # env beats the file
    assert cfg.paths.checkpoints_dir == str(tmp_path / "c")
    assert cfg.paths.db == tmp_path / "d" / "mmrec.sqlite3"
    assert load_config(toml, data_dir="y").paths.data_dir == "y"  # explicit beats env


def test_unknown_setting_is_an_error(tmp_path):
    toml = tmp_path / "c.toml"
    toml.write_text("[demo]\nmoviez = 1\n")
    with pytest.raises(ValueError, match="moviez"):
        load_config(toml)

"""Configuration: one dataclass per component, defaults here, overridable by TOML and env vars.

Each component receives its own config object whole (CleanRL's ``Args``, nanoGPT's
``GPTConfig``). A TOML file may override any field by section name, e.g.::

    [fusion]
    embed_dim = 128

Environment variables: ``MMREC_DATA`` (data folder), ``MMREC_CHECKPOINTS`` (checkpoint
folder), ``MMREC_DB`` (ratings database), ``MMREC_CONFIG`` (TOML file), ``MMREC_DEVICE``
("cpu" / "cuda"; default: CUDA when available).

Components add their dataclass in their own section below; keep each field commented.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

# ----------------------------------------------------------------------------- paths


@dataclass
class PathsConfig:
    data_dir: str = "data/demo"  # catalog folder: movies.csv, ratings.csv, images/, audio/
    checkpoints_dir: str = "checkpoints/demo"  # weights + config + data fingerprint
    db_path: str = ""  # SQLite ratings store; empty -> <data_dir>/mmrec.sqlite3
    cache_dir: str = ""  # feature cache; empty -> <data_dir>/.cache/features

    @property
    def db(self) -> Path:
        return Path(self.db_path) if self.db_path else Path(self.data_dir) / "mmrec.sqlite3"

    @property
    def cache(self) -> Path:
        return (
            Path(self.cache_dir) if self.cache_dir else Path(self.data_dir) / ".cache" / "features"
        )


# ----------------------------------------------------------------------------- data


@dataclass
class DataConfig:
    max_synopsis_chars: int = 20_000  # longer synopses are truncated with a warning
    max_image_pixels: int = 40_000_000  # decompression-bomb guard for posters
    max_audio_seconds: float = 120.0  # longer clips are cut (only the start is decoded)
    min_rating: float = 0.5  # MovieLens scale
    max_rating: float = 5.0


# ----------------------------------------------------------------------------- demo


@dataclass
class DemoConfig:
    movies: int = 600  # default demo size: quick first run (make run)
    users: int = 300  # simulated users with hidden tastes
    seed: int = 7  # everything is deterministic for a seed
    clip_seconds: float = 15.0  # trailer length
    sample_rate: int = 22_050  # trailer sample rate (Hz)
    min_ratings_per_user: int = 20  # sparsity bounds per user
    max_ratings_per_user: int = 200


# ----------------------------------------------------------------------------- movielens import


@dataclass
class MovieLensConfig:
    url: str = (
        "https://files.grouplens.org/datasets/movielens/ml-latest-small.zip"  # --download source
    )
    download_timeout_s: float = 60.0  # socket timeout per network operation while downloading
    max_download_bytes: int = 100_000_000  # refuse larger archives (ml-latest-small is ~1 MB)
    max_unzipped_bytes: int = 1_000_000_000  # zip-bomb guard: total uncompressed size allowed
    year_tolerance: int = 1  # Wikipedia (US release) year may differ from MovieLens year by this
    max_logged_problems: int = 50  # problems beyond this are counted, not logged one by one


# ----------------------------------------------------------------------------- fusion model


@dataclass
class FusionConfig:
    modalities: tuple[str, ...] = ("text", "image", "audio")  # branches the model may use
    text_dim: int = 384  # MiniLM sentence vector size
    image_dim: int = 1280  # EfficientNet-Lite0 pooled feature size
    audio_dim: int = 64  # F of the (T, F) audio sequence; set from the features at training
    hidden_dim: int = 128  # H: width of every branch output
    audio_lstm_hidden: int = 64  # LSTM state size inside the audio branch
    audio_max_steps: int = 32  # longer sequences are average-pooled in time to this many steps
    embed_dim: int = 64  # D: item embedding size used by the policy and the dashboard
    dropout: float = 0.2  # dropout inside branches and fusion layers during training
    modality_dropout: float = 0.3  # chance to hide each present modality per training item
    lr: float = 1e-3  # Adam learning rate (document section 4.3)
    weight_decay: float = 1e-5  # L2 on the weights through Adam
    batch_size: int = 128  # items per optimisation step
    max_epochs: int = 60  # upper bound; early stopping usually ends sooner
    patience: int = 6  # epochs without validation improvement before stopping
    val_fraction: float = 0.15  # items held out for early stopping
    user_weight_grid: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0)  # per-user weight search
    user_ridge: float = 0.1  # ridge strength relative to the mean feature energy


# ----------------------------------------------------------------------------- top level


def pick_device() -> str:
    """CUDA when present (users with a GPU expect it to be used), CPU otherwise."""
    forced = os.environ.get("MMREC_DEVICE")
    if forced:
        return forced
    try:
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    except Exception:  # torch missing or broken: the CPU path still works
        return "cpu"


@dataclass
class Config:
    paths: PathsConfig = field(default_factory=PathsConfig)
    data: DataConfig = field(default_factory=DataConfig)
    demo: DemoConfig = field(default_factory=DemoConfig)
    movielens: MovieLensConfig = field(default_factory=MovieLensConfig)
    fusion: FusionConfig = field(default_factory=FusionConfig)


def _apply(obj, overrides: dict, where: str) -> None:
    names = {f.name: f for f in dataclasses.fields(obj)}
    for key, value in overrides.items():
        if key not in names:
            raise ValueError(f"{where}: unknown setting '{key}'")
        current = getattr(obj, key)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, dict):
                raise ValueError(f"{where}.{key}: expected a table")
            _apply(current, value, f"{where}.{key}")
        else:
            setattr(obj, key, type(current)(value) if current is not None else value)


def load_config(path: str | os.PathLike | None = None, **path_overrides) -> Config:
    """Defaults, then the TOML file (``path`` or ``MMREC_CONFIG``), then env vars, then kwargs."""
    cfg = Config()
    toml_path = path or os.environ.get("MMREC_CONFIG")
    if toml_path:
        with open(toml_path, "rb") as fh:
            _apply(cfg, tomllib.load(fh), str(toml_path))
    env = {
        "data_dir": os.environ.get("MMREC_DATA"),
        "checkpoints_dir": os.environ.get("MMREC_CHECKPOINTS"),
        "db_path": os.environ.get("MMREC_DB"),
    }
    for key, value in env.items():
        if value:
            setattr(cfg.paths, key, value)
    for key, value in path_overrides.items():
        if value is not None:
            setattr(cfg.paths, key, str(value))
    return cfg

"""Checkpoints: weights + the config that built them + metadata, written atomically.

A checkpoint is one ``torch.save`` file holding a plain dict::

    {"format": 1, "state_dict": {...tensors...}, "config": {...}, "meta": {...}}

``config`` is enough to rebuild the module without guessing dimensions (nanoGPT saves
``model_args`` beside the weights for the same reason); ``meta`` carries the data fingerprint,
the genre list and anything else a loader needs to check that the weights fit the data.

Writes go to a temp file in the same folder, are fsynced and then ``os.replace``-d over the
target, so a crash mid-write leaves either the old checkpoint or the new one, never a torn
file. Loads use ``weights_only=True``: a checkpoint is data, never code.
"""

from __future__ import annotations

import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from mmrec.atomic import atomic_write

FORMAT_VERSION = 1


class CheckpointError(RuntimeError):
    """A checkpoint is missing, truncated, corrupt or not in the expected layout."""


class CheckpointMismatchError(CheckpointError, ValueError):
    """The checkpoints load but were built from another catalog (ids or fingerprint differ).

    Also a ``ValueError``: the files are fine, the value they were built from is not this one.
    """


def save_checkpoint(
    path: str | os.PathLike, state_dict: dict, config: dict, meta: dict | None = None
) -> Path:
    """Write ``{state_dict, config, meta}`` to ``path`` atomically and return the path.

    ``config`` and ``meta`` must hold only plain values (str, int, float, bool, None, lists,
    tuples, dicts, tensors) so that ``weights_only`` loading accepts them.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": FORMAT_VERSION,
        # Detached CPU copies: a CUDA-trained model loads on a CPU-only machine.
        "state_dict": {k: v.detach().cpu() for k, v in state_dict.items()},
        "config": dict(config),
        "meta": dict(meta or {}),
    }
    return atomic_write(path, lambda fh: torch.save(payload, fh), fsync_dir=True)


def load_checkpoint(path: str | os.PathLike) -> tuple[dict, dict, dict]:
    """Read a checkpoint written by :func:`save_checkpoint`.

    Returns ``(state_dict, config, meta)``. Raises :class:`CheckpointError` naming the path
    when the file is missing, truncated, corrupt or laid out differently.
    """
    path = Path(path)
    hint = "delete it and rebuild the models (python -m mmrec build)"
    if not path.is_file():
        raise CheckpointError(
            f"checkpoint {path} does not exist; rebuild the models (python -m mmrec build)"
        )
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except (
        RuntimeError,
        EOFError,
        OSError,
        ValueError,
        KeyError,
        IndexError,
        zipfile.BadZipFile,
        pickle.UnpicklingError,
    ) as exc:
        raise CheckpointError(
            f"checkpoint {path} is unreadable (truncated or corrupt: {type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''}); {hint}"
        ) from exc
    if not isinstance(payload, dict) or not {"state_dict", "config", "meta"} <= payload.keys():
        raise CheckpointError(
            f"checkpoint {path} lacks state_dict/config/meta (not written by mmrec); {hint}"
        )
    if payload.get("format") != FORMAT_VERSION:
        raise CheckpointError(
            f"checkpoint {path} has format {payload.get('format')!r}, expected {FORMAT_VERSION}; {hint}"
        )
    state_dict: dict[str, Any] = payload["state_dict"]
    if not isinstance(state_dict, dict) or not all(
        isinstance(v, torch.Tensor) for v in state_dict.values()
    ):
        raise CheckpointError(f"checkpoint {path} has a malformed state_dict; {hint}")
    return state_dict, dict(payload["config"]), dict(payload["meta"])


# ----------------------------------------------------------------------------- fusion model

LEGACY_AUDIO_POOLING = "last_mean"  # FusionConfig.audio_pooling of checkpoints without the field


def save_fusion(path: str | os.PathLike, model, meta: dict | None = None) -> Path:
    """Save a :class:`mmrec.models.fusion.FusionModel` with its config and ``n_genres``.

    ``meta`` should carry ``fingerprint`` (catalog fingerprint) and ``genres`` (label order).
    """
    import dataclasses

    config = dataclasses.asdict(model.cfg)
    config["n_genres"] = int(model.n_genres)
    return save_checkpoint(path, model.state_dict(), config, meta or {})


def load_fusion(path: str | os.PathLike, device: str | None = None):
    """Load a fusion checkpoint -> ``(FusionModel in eval mode, meta)``.

    The model is rebuilt from the saved config, so dimensions are never guessed.
    """
    import dataclasses

    from mmrec.config import FusionConfig, pick_device
    from mmrec.models.fusion import FusionModel

    state_dict, config, meta = load_checkpoint(path)
    config = dict(config)
    n_genres = config.pop("n_genres", None)
    known = {f.name for f in dataclasses.fields(FusionConfig)}
    unknown = sorted(set(config) - known)
    if n_genres is None or unknown:
        raise CheckpointError(
            f"checkpoint {path} is not a fusion checkpoint (n_genres={n_genres}, unknown config "
            f"keys {unknown}); rebuild the models (python -m mmrec build)"
        )
    # Tuples come back as tuples from torch.load, but be tolerant of lists.
    for key in ("modalities", "user_weight_grid"):
        if key in config:
            config[key] = tuple(config[key])
    # Written before the pooling was a setting: those models were trained with the forward
    # LSTM's last state + mean, and keep it (the new default would not match their weights).
    config.setdefault("audio_pooling", LEGACY_AUDIO_POOLING)
    config.setdefault("late_join", "mlp")  # written before the linear skip existed
    cfg = FusionConfig(**config)
    model = FusionModel(cfg, int(n_genres))
    try:
        model.load_state_dict(state_dict)
    except RuntimeError as exc:
        raise CheckpointError(
            f"checkpoint {path} does not match its own config ({str(exc).splitlines()[0]}); "
            "rebuild the models (python -m mmrec build)"
        ) from exc
    model.to(device or pick_device()).eval()
    return model, meta

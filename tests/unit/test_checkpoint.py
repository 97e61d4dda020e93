"""Checkpoints: round trip with config and meta, atomic writes, corruption -> CheckpointError."""

import os

import pytest
import torch

from mmrec.checkpoint import (
    CheckpointError,
    load_checkpoint,
    load_fusion,
    save_checkpoint,
    save_fusion,
)
from mmrec.config import FusionConfig
from mmrec.models.fusion import FusionModel


def small_state():
    torch.manual_seed(0)
    return {
        "layer.weight": torch.randn(4, 3),
        "layer.bias": torch.randn(4),
        "steps": torch.tensor(7),
    }


def test_round_trip_keeps_tensors_config_and_meta(tmp_path):
    path = tmp_path / "sub" / "model.pt"
    state = small_state()
    config = {"hidden_dim": 32, "modalities": ("text", "image"), "lr": 1e-3}
    meta = {"fingerprint": "abc123", "genres": ["Comedy", "Drama"], "epochs": 5}
    save_checkpoint(path, state, config, meta)
    loaded_state, loaded_config, loaded_meta = load_checkpoint(path)
    assert loaded_state.keys() == state.keys()
    for key in state:
        assert torch.equal(loaded_state[key], state[key])
    assert loaded_config == config
    assert loaded_meta == meta
    # the temp file was renamed into place, nothing else is left in the folder
    assert os.listdir(path.parent) == ["model.pt"]


def test_missing_file_names_the_path(tmp_path):
    path = tmp_path / "nope.pt"
    with pytest.raises(CheckpointError, match="nope.pt") as info:
        load_checkpoint(path)
    assert "rebuild" in str(info.value)


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty"])
def test_corrupt_file_raises_checkpoint_error_with_path(tmp_path, damage):
    path = tmp_path / "model.pt"
    save_checkpoint(path, small_state(), {"a": 1}, {})
    data = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "garbage":
        path.write_bytes(b"\x00not a checkpoint\xff" * 50)
    else:
        path.write_bytes(b"")
    with pytest.raises(CheckpointError, match=str(path).replace("\\", "\\\\")) as info:
        load_checkpoint(path)
    assert "rebuild" in str(info.value)


def test_foreign_torch_file_is_rejected(tmp_path):
    path = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(2)}, path)
    with pytest.raises(CheckpointError, match="foreign.pt"):
        load_checkpoint(path)


def test_failed_write_keeps_the_old_checkpoint(tmp_path):
    path = tmp_path / "model.pt"
    save_checkpoint(path, small_state(), {"version": 1}, {})
    # A lambda cannot be pickled: torch.save fails half-way through the new write.
    with pytest.raises(Exception):  # noqa: B017 - whatever pickle raises
        save_checkpoint(path, small_state(), {"version": 2}, {"bad": lambda: None})
    _, config, _ = load_checkpoint(path)
    assert config == {"version": 1}
    assert os.listdir(tmp_path) == ["model.pt"]  # temp file cleaned up


def test_fusion_round_trip_rebuilds_from_saved_config(tmp_path):
    cfg = FusionConfig(
        text_dim=10,
        image_dim=12,
        audio_dim=5,
        hidden_dim=16,
        embed_dim=6,
        audio_lstm_hidden=8,
        modalities=("text", "audio"),
    )
    torch.manual_seed(1)
    model = FusionModel(cfg, n_genres=3).eval()
    path = tmp_path / "fusion.pt"
    save_fusion(path, model, {"fingerprint": "f00d", "genres": ["A", "B", "C"]})
    loaded, meta = load_fusion(path, device="cpu")
    assert meta == {"fingerprint": "f00d", "genres": ["A", "B", "C"]}
    assert loaded.cfg == cfg and loaded.n_genres == 3
    assert not loaded.training
    text, image, audio = torch.randn(4, 10), torch.randn(4, 12), torch.randn(4, 7, 5)
    present = torch.ones(4, 3, dtype=torch.bool)
    with torch.no_grad():
        expected = model(text, image, audio, present)
        got = loaded(text, image, audio, present)
    assert torch.equal(expected[0], got[0]) and torch.equal(expected[1], got[1])


def test_load_fusion_rejects_a_non_fusion_checkpoint(tmp_path):
    path = tmp_path / "other.pt"
    save_checkpoint(path, small_state(), {"state_dim": 4}, {})
    with pytest.raises(CheckpointError, match="not a fusion checkpoint"):
        load_fusion(path, device="cpu")

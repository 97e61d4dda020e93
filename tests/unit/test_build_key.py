"""The build's fusion key follows the encoders' versions, not only the settings."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from mmrec import pipeline  # noqa: E402
from mmrec.config import Config  # noqa: E402
from mmrec.features import audio  # noqa: E402


def test_changed_encoder_version_changes_the_fusion_key(monkeypatch):
    cfg = Config()
    key = pipeline.fusion_build_key(cfg, "fp-1")
    assert key == pipeline.fusion_build_key(cfg, "fp-1")  # deterministic
    assert key != pipeline.fusion_build_key(cfg, "fp-2")  # data changed
    real = audio.aisfx_version
    monkeypatch.setattr(audio, "aisfx_version", lambda c, p: real(c, p) + ":next")
    assert pipeline.fusion_build_key(cfg, "fp-1") != key  # same settings, new encoder

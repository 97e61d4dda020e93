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


def test_a_setting_at_its_neutral_value_leaves_the_key_as_before_it_existed():
    """A setting added later is out of the key while it reproduces the old training, so an
    upgrade does not retrain; any other value, or a changed setting that was always there,
    changes the key."""
    from dataclasses import replace

    from mmrec.config import EnvConfig, FusionConfig

    fusion = FusionConfig()
    keyed = pipeline._key_dict(fusion)
    assert not {"late_join", "label_smoothing", "label_smoothing_target", "input_dropout"} & set(
        keyed
    )
    assert "dropout" in keyed and "class_weight_power" in keyed  # always keyed
    base = pipeline._cfg_key(fusion)
    for changed in (
        replace(fusion, late_join="mlp_skip"),
        replace(fusion, label_smoothing=0.1),
        replace(fusion, input_dropout=0.5),  # no longer equal to dropout
        replace(fusion, dropout=0.5),  # and input_dropout (0.2) now differs from it
    ):
        assert pipeline._cfg_key(changed) != base, changed
    smoothed = replace(fusion, label_smoothing=0.1)
    assert pipeline._cfg_key(replace(smoothed, label_smoothing_target="prior")) != (
        pipeline._cfg_key(smoothed)
    )
    # input_dropout is neutral while it equals dropout, whatever that is
    both = replace(fusion, dropout=0.5, input_dropout=0.5)
    assert "input_dropout" not in pipeline._key_dict(both)

    env = EnvConfig()  # every user dynamic off: the static user of before issue 14
    keyed = pipeline._key_dict(env)
    assert not {"satiation", "satiation_strength", "satisfaction_start", "max_sessions"} & set(
        keyed
    )
    assert "episode_length" in keyed and "onboarding_recall" in keyed
    off = pipeline._cfg_key(env)
    # a parameter of a dynamic that is off changes nothing, so not the key either
    assert pipeline._cfg_key(replace(env, satiation_strength=0.9)) == off
    on = replace(env, satiation=True)
    assert pipeline._cfg_key(on) != off
    assert pipeline._cfg_key(replace(on, satiation_strength=0.9)) != pipeline._cfg_key(on)
    # satisfaction drives both leaving and returning
    leave = replace(env, session_exit=True)
    assert pipeline._cfg_key(replace(leave, satisfaction_start=3.0)) != pipeline._cfg_key(leave)
    back = replace(env, returning=True)
    assert pipeline._cfg_key(replace(back, satisfaction_start=3.0)) != pipeline._cfg_key(back)

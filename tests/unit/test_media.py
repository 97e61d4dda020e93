"""mmrec.media: the named aisfx calibration set and its name in the feature-cache key."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from mmrec import media
from mmrec.media import CALIBRATION, CalibrationSet

# The tracks (and seconds) every cache row tagged "6x15.0" was calibrated with. Changing the set
# changes the int8 features, so it needs a new tag (a new cache key): update both together.
PINNED = {"6x15.0": "da0469a00cb3188b"}


def set_digest(cal: CalibrationSet) -> str:
    return hashlib.sha256(repr((cal.seconds, cal.tracks)).encode()).hexdigest()[:16]


def test_the_calibration_tracks_are_pinned_to_their_tag():
    assert CALIBRATION.tag in PINNED, f"new calibration tag {CALIBRATION.tag}: pin it here"
    assert set_digest(CALIBRATION) == PINNED[CALIBRATION.tag], (
        "the calibration tracks changed under the old tag: give the set a new tag"
    )
    changed = CalibrationSet(CALIBRATION.tag, CALIBRATION.seconds, CALIBRATION.tracks[:-1])
    assert set_digest(changed) != PINNED[CALIBRATION.tag]


def test_the_aisfx_cache_key_names_the_calibration_set():
    pytest.importorskip("aisfx")
    from mmrec.config import FeatureConfig
    from mmrec.features.audio import aisfx_version

    key = aisfx_version(FeatureConfig(), "int8")
    # the exact tail every existing cache was built under: moving the tracks here re-keys nothing
    assert key.endswith(":int8:cal=6x15.0:v3"), key
    other = CalibrationSet("7x15.0", 15.0, CALIBRATION.tracks)
    assert f"cal={other.tag}" not in key


def test_the_named_tracks_are_the_ones_old_builds_picked():
    """Before the names, the set was every 4th of the sorted bundled tracks (28 // 6 = 4)."""
    if not media.has_music():
        pytest.skip("immich-memories-music not installed")
    tracks = [path for _, _, path in media.list_tracks()]
    step = max(1, len(tracks) // len(CALIBRATION.tracks))
    assert media.calibration_paths() == tracks[::step][: len(CALIBRATION.tracks)]


def test_a_missing_calibration_track_is_named():
    if not media.has_music():
        pytest.skip("immich-memories-music not installed")
    bad = CalibrationSet("x", 15.0, ("calm/no_such_track.opus",))
    with pytest.raises(RuntimeError, match="no_such_track.opus"):
        media.calibration_paths(bad)


def test_decode_track_is_mono_float32_at_the_asked_rate(tmp_path):
    import soundfile as sf

    sr = 8_000
    stereo = np.stack([np.linspace(-0.5, 0.5, sr), np.zeros(sr)], axis=1).astype(np.float32)
    path = tmp_path / "t.wav"
    sf.write(path, stereo, sr)
    mono = media.decode_track(str(path), 16_000)
    assert mono.dtype == np.float32 and mono.ndim == 1
    assert abs(len(mono) - 2 * sr) <= 1
    assert abs(float(mono.mean())) < 0.01  # the two channels averaged: ramp / 2 is centred

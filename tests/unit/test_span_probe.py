"""The trailer-span probe (``python -m mmrec.eval.span_probe``) on the tiny catalog."""

from __future__ import annotations

import copy

from mmrec.eval.span_probe import _moved_with_content, probe


def test_moved_with_content_wraps_around_the_clip():
    assert _moved_with_content(2.0, 7.0, 5.0, 15.0)
    assert _moved_with_content(12.0, 1.5, 5.0, 15.0)  # 12 + 5 = 17 -> 2 s after wrapping
    assert not _moved_with_content(12.0, 12.0, 5.0, 15.0)  # stayed put


def test_probe_explains_rotated_clips(tiny_built, tmp_path):
    from mmrec.service import Recommender

    cfg = copy.deepcopy(tiny_built)
    cfg.paths.db_path = str(tmp_path / "probe.sqlite3")
    out = probe(Recommender.from_config(cfg), n_clips=2, shifts=(5.0,), steps=4)
    assert len(out["clips"]) == 2 and out["rotations"] == 2
    for clip in out["clips"]:
        assert set(clip["span_start_s"]) == {0.0, 5.0}
        assert all(0.0 <= s <= 15.0 for s in clip["span_start_s"].values())
    assert abs(sum(out["attribution_by_third"]) - 1.0) < 1e-6

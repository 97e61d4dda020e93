"""The first-run progress file (mmrec.progress): what the build writes, what the pages read."""

from __future__ import annotations

import json
import subprocess
import sys
import time

from mmrec.progress import ProgressFile, progress_path, read_progress


def test_progress_file_tracks_stages_eta_and_the_end(tmp_path):
    ckpt = tmp_path / "checkpoints" / "demo"
    assert progress_path(ckpt) == tmp_path / "checkpoints" / ".demo.setup.json"
    assert read_progress(ckpt) is None
    p = ProgressFile(progress_path(ckpt))
    p(0, 100, "demo posters")
    p.state["stage_started"] -= 10  # ten seconds into the stage
    p._last_write = 0.0
    p(25, 100, "demo posters")
    r = read_progress(ckpt)
    assert r["state"] == "running" and r["stage"] == "demo posters"
    assert r["fraction"] == 0.25 and 25 < r["eta_s"] < 35  # 10 s for 25 -> ~30 s for 75
    p(3, 10, "text features")  # a new stage is written at once
    r = read_progress(ckpt)
    assert r["stage"] == "text features" and r["stages"] == ["demo posters", "text features"]
    assert r["eta_s"] is None  # not measurable yet in the new stage
    p.note("training the fusion model ...")
    p.finish(True, "built")
    r = read_progress(ckpt)
    assert r["state"] == "done" and r["message"] == "built"


def test_a_build_that_died_reads_as_stopped(tmp_path):
    child = subprocess.Popen([sys.executable, "-c", "import os; print(os.getpid())"])
    child.wait()
    path = progress_path(tmp_path / "ckpt")
    state = {"pid": child.pid, "state": "running", "started": time.time(), "stage": "x",
             "stage_started": time.time(), "done": 1, "total": 2, "stages": ["x"]}  # fmt: skip
    path.write_text(json.dumps(state))
    assert read_progress(tmp_path / "ckpt")["state"] == "stopped"
    path.write_text("{ torn")
    assert read_progress(tmp_path / "ckpt") is None

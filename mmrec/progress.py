"""Progress of a first-run setup, shared between the build process and the dashboard.

``make run`` starts the dashboard at once and the build (``python -m mmrec setup``) beside it;
the build writes its progress to a small JSON file next to the checkpoint folder
(:func:`progress_path`) and the pages read it (:func:`read_progress`) to show the stage, how far
it is and an estimate of the time left, until the models are there.

The file is rewritten atomically (never half-written) at most twice a second::

    {"pid": 1234, "state": "running" | "done" | "failed", "started": t0, "updated": t,
     "stage": "text features", "done": 120, "total": 2000, "stage_started": t1,
     "stages": ["demo posters", ...] (in order seen), "message": "..."}

Times are Unix seconds. A file whose process is gone while ``state`` is still "running" reads
as ``"stopped"`` (the build was killed): the page then says so instead of waiting forever.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from mmrec.atomic import atomic_write_text

WRITE_EVERY_S = 0.5  # at most two writes a second: the dashboard polls every few seconds


def progress_path(ckpt_dir: str | Path) -> Path:
    """``<parent>/.<name>.setup.json`` beside the checkpoint folder (which may not exist yet)."""
    ckpt = Path(ckpt_dir)
    return ckpt.parent / f".{ckpt.name}.setup.json"


class ProgressFile:
    """A ``progress(done, total, stage)`` callback (as ``build`` and ``generate_demo`` take)
    that keeps :func:`progress_path`'s file current; :meth:`finish` marks the end."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        now = time.time()
        self.state = {
            "pid": os.getpid(),
            "state": "running",
            "started": now,
            "updated": now,
            "stage": "starting",
            "done": 0,
            "total": 0,
            "stage_started": now,
            "stages": [],
            "message": "",
        }
        self._last_write = 0.0
        self._write(force=True)

    def __call__(self, done: int, total: int, stage: str) -> None:
        now = time.time()
        s = self.state
        if stage != s["stage"]:
            if s["stage"] != "starting":  # seconds each finished stage took (what dominates)
                s.setdefault("stage_seconds", {})[s["stage"]] = round(now - s["stage_started"], 1)
            s["stage"], s["stage_started"] = stage, now
            if stage not in s["stages"]:
                s["stages"].append(stage)
            self._last_write = 0.0  # a new stage is shown at once
        s["done"], s["total"], s["updated"] = int(done), int(total), now
        self._write()

    def note(self, message: str) -> None:
        """A line of what is happening now (e.g. "training the fusion model ...")."""
        self.state["message"] = str(message)[:300]
        self.state["updated"] = time.time()
        self._write()

    def finish(self, ok: bool, message: str = "") -> None:
        if ok and self.state["stage"] != "starting":
            self.state.setdefault("stage_seconds", {})[self.state["stage"]] = round(
                time.time() - self.state["stage_started"], 1
            )
        self.state.update(state="done" if ok else "failed", message=message, updated=time.time())
        self._write(force=True)

    def _write(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_write < WRITE_EVERY_S:
            return
        self._last_write = now
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.path, json.dumps(self.state))


def _alive(pid: int) -> bool:
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError, TypeError):
        return True  # exists but not ours, or an odd value: do not call it dead
    return True


def read_progress(ckpt_dir: str | Path) -> dict | None:
    """The setup's progress for this checkpoint folder with derived fields, or None when there
    is no file (or it is unreadable). Adds ``fraction`` (of the current stage), ``eta_s`` (time
    left in the current stage from its rate so far, None until measurable), ``elapsed_s``, and
    turns a "running" file of a dead process into ``"stopped"``."""
    path = progress_path(ckpt_dir)
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(state, dict):
        return None
    now = time.time()
    done, total = int(state.get("done", 0)), int(state.get("total", 0))
    state["fraction"] = min(1.0, done / total) if total > 0 else 0.0
    spent = now - float(state.get("stage_started", now))
    state["eta_s"] = spent / done * (total - done) if 0 < done < total and spent > 1 else None
    state["elapsed_s"] = now - float(state.get("started", now))
    if state.get("state") == "running" and not _alive(state.get("pid", -1)):
        state["state"] = "stopped"
    return state

"""Where a report came from: the machine and the commit, one definition for every report.

Every report writer (`evaluate modality/policy/ranking/live`, `bench`, `bench --scale`, the
build manifest, the browser load test) records ``machine_info()`` and ``git_commit()``, so a
figure quoted in README.md can be traced to the code and the hardware that produced it
(`python -m mmrec.readme` prints both beside each table). No torch import here: the build
manifest and the report renderers must not pay for it.
"""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path

from mmrec.config import pick_device

REPO_ROOT = Path(__file__).resolve().parents[1]


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _torch_version() -> str | None:
    try:
        return metadata.version("torch")
    except metadata.PackageNotFoundError:
        return None


def machine_info() -> dict:
    """The machine a report ran on. The key set is the union of what the earlier per-module
    copies recorded (reports written before this module keep their own subset):
    ``cpu``/``cores`` (bench, scale, build manifest), ``platform``/``processor``/``cpu_count``/
    ``torch``/``device`` (policy, ranking, live), ``host`` (modality)."""
    cores = os.cpu_count()
    return {
        "host": platform.node(),
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "processor": platform.processor() or platform.machine(),
        "cores": cores,
        "cpu_count": cores,
        "python": platform.python_version(),
        "torch": _torch_version(),
        "device": pick_device(),
    }


def git_commit(root: Path = REPO_ROOT) -> str | None:
    """The git commit of the code that made a report (``+dirty`` when files under ``mmrec/``
    differ from it); None outside a git checkout."""
    try:
        sha = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no", "mmrec"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return sha + ("+dirty" if dirty else "")


def commit_line(report: dict) -> list[str]:
    """The report header's commit line, or nothing for reports written before commits were
    recorded (so re-rendering an old report's JSON gives back its markdown unchanged)."""
    return [f"Commit: `{report['commit']}`  "] if report.get("commit") else []

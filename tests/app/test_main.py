"""`python main.py` serves the same app on the configured address (tiny built catalog)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from mmrec.ui.browser import free_port

REPO = Path(__file__).resolve().parents[2]


def test_main_serves_on_localhost(tiny_built, tmp_path):
    port = free_port()
    env = dict(
        os.environ,
        MMREC_DATA=tiny_built.paths.data_dir,
        MMREC_CHECKPOINTS=tiny_built.paths.checkpoints_dir,
        MMREC_DB=str(tmp_path / "r.sqlite3"),
        HF_HUB_OFFLINE="1",
    )
    proc = subprocess.Popen(
        [sys.executable, str(REPO / "main.py"), "--port", str(port)],
        cwd=tmp_path,  # works from any folder
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline, body = time.monotonic() + 90, None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{port}/_stcore/health", timeout=2
                ) as r:
                    body = r.read().decode()
                    break
            except OSError:
                time.sleep(0.5)
        assert body == "ok", f"no health answer; exit code {proc.poll()}"
        # bound to 127.0.0.1 only: the server says so in its startup lines
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as r:
            assert r.status == 200
    finally:
        proc.terminate()
        try:
            out = proc.communicate(timeout=20)[0].decode(errors="replace")
        except subprocess.TimeoutExpired:
            proc.kill()
            out = proc.communicate()[0].decode(errors="replace")
    assert f"127.0.0.1:{port}" in out, out[-2000:]

"""The first run as a newcomer meets it: ``make run``'s server on an empty folder, timed in Chromium.

    python -m mmrec.ui.firstrun --root /tmp/first-run [--config tiny.toml] [--out reports/firstrun.json]

Starts ``main.py --setup`` (what ``make run`` runs) with ``MMREC_DATA`` / ``MMREC_CHECKPOINTS`` /
``MMREC_DB`` under ``--root`` (which must not hold a catalog yet), opens the address in headless
Chromium (Debian's ``/usr/bin/chromium`` via Playwright) and records, from the command's start:
when the server answers HTTP, when the page shows the build's progress, when the models are
ready (the onboarding form appears), and when a new user's first picks are on screen; plus the
build's own stage timings from its progress file. Screenshots go to ``--root``. Writes the
result as JSON to ``--out`` when given. The venv must exist (``make venv``): its creation is
not part of what this measures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from mmrec.ui import browser as B

REPO = Path(__file__).resolve().parents[2]


def measure(root: Path, config: str | None = None, timeout_s: float = 3600.0) -> dict:
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    if (root / "data" / "movies.csv").exists():
        raise SystemExit(f"{root / 'data'} already holds a catalog: use an empty --root")
    env = dict(os.environ)
    env.update(
        MMREC_DATA=str(root / "data"),
        MMREC_CHECKPOINTS=str(root / "checkpoints"),
        MMREC_DB=str(root / "ratings.sqlite3"),
    )
    env.pop("MMREC_CONFIG", None)
    if config:
        env["MMREC_CONFIG"] = str(Path(config).resolve())
    port = B.free_port()
    url = f"http://127.0.0.1:{port}/"
    marks: dict[str, float] = {}
    t0 = time.time()
    with open(root / "server.log", "w") as log:
        proc = subprocess.Popen(
            [sys.executable, str(REPO / "main.py"), "--setup", "--port", str(port)],
            env=env,
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        while True:
            try:
                urllib.request.urlopen(url, timeout=2)
                break
            except OSError:
                if proc.poll() is not None or time.time() - t0 > 300:
                    raise RuntimeError(
                        f"the server did not start: see {root / 'server.log'}"
                    ) from None
                time.sleep(0.5)
        marks["server_answers_s"] = time.time() - t0
        from playwright.sync_api import sync_playwright

        with sync_playwright() as pw:
            browser = B.launch(pw)
            page = browser.new_context(viewport={"width": 1440, "height": 900}).new_page()
            page.goto(url)
            page.wait_for_selector("text=first run", timeout=300_000)
            marks["progress_visible_s"] = time.time() - t0
            page.screenshot(path=str(root / "01-progress.png"))
            shots = 0
            while not page.get_by_label("Your name").count():
                time.sleep(3)
                if time.time() - t0 > 120 * (shots + 1):
                    page.screenshot(path=str(root / f"02-progress-{shots:02d}.png"))
                    shots += 1
                if time.time() - t0 > timeout_s:
                    raise RuntimeError(f"no models after {timeout_s:.0f} s")
            marks["models_ready_s"] = time.time() - t0
            B.wait_idle(page, 300)
            B.onboard(page, "Newcomer", genres=2, timeout=300)
            marks["first_picks_s"] = time.time() - t0
            marks["cards"] = len(B.card_ids(page))
            page.screenshot(path=str(root / "03-first-picks.png"))
            browser.close()
    finally:
        try:
            os.killpg(proc.pid, 15)
            proc.wait(timeout=30)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(proc.pid, 9)
    from mmrec.progress import read_progress
    from mmrec.provenance import git_commit, machine_info

    build = read_progress(root / "checkpoints") or {}
    return {
        "command": "python -m mmrec.ui.firstrun " + " ".join(sys.argv[1:]),
        "commit": git_commit(),
        "machine": machine_info(),
        "load_average_at_end": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "python": platform.python_version(),
        "config": config or "default (the 2,000-movie demo)",
        "marks_s": {k: round(v, 1) for k, v in marks.items()},
        "build_stages": build.get("stages"),
        "build_stage_seconds": build.get("stage_seconds"),
        "build_state": build.get("state"),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m mmrec.ui.firstrun", description=__doc__)
    ap.add_argument("--root", required=True, help="an empty folder for the catalog and models")
    ap.add_argument("--config", help="a TOML config (e.g. a tiny demo); default: the real default")
    ap.add_argument("--out", help="write the result JSON here")
    ap.add_argument("--timeout", type=float, default=3600.0)
    args = ap.parse_args(argv)
    result = measure(Path(args.root), args.config, args.timeout)
    print(json.dumps(result["marks_s"]))
    if args.out:
        from mmrec.atomic import atomic_write_text

        atomic_write_text(Path(args.out), json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

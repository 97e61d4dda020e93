"""Server-side time of the dashboard's interactive loops, measured through AppTest.

    python -m mmrec.ui.timing --data data/demo --checkpoints checkpoints/demo --repeats 10

What a user waits for, minus the network and the browser's drawing: each number is one full
script run of the real entry script (``streamlit_app.py`` + the For you page), triggered the
way the browser triggers it:

- ``rate``: a star rating -> ``svc.rate`` (SQLite commit + DQN update) -> the refreshed grid;
- ``slider``: moving a weight slider -> the what-if (two rankings) -> the page;
- ``apply``: "Apply" -> the grid re-ranked under the new weights.

Runs against a throw-away ratings database, so the real store is never touched. ``measure``
returns a dict for ``mmrec.bench`` to fold into ``reports/bench.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from mmrec.config import load_config

APP = Path(__file__).resolve().parents[2] / "streamlit_app.py"


def _stats(ms: list[float]) -> dict:
    ordered = sorted(ms)
    return {
        "n": len(ms),
        "median_ms": round(statistics.median(ms), 1),
        "p90_ms": round(ordered[max(0, int(0.9 * len(ordered)) - 1)], 1),
        "max_ms": round(max(ms), 1),
    }


def measure(data_dir: str, ckpt_dir: str, repeats: int = 10) -> dict:
    """Median / p90 / max server time (ms) of rate, slider and apply script runs."""
    from streamlit.testing.v1 import AppTest

    from mmrec.ui import cardgrid
    from mmrec.ui import loaders as L

    old_env = {k: os.environ.get(k) for k in ("MMREC_DATA", "MMREC_CHECKPOINTS", "MMREC_DB")}
    with tempfile.TemporaryDirectory(prefix="mmrec-timing-") as tmp:
        os.environ.update(
            MMREC_DATA=str(data_dir),
            MMREC_CHECKPOINTS=str(ckpt_dir),
            MMREC_DB=str(Path(tmp) / "ratings.sqlite3"),
        )
        try:
            # AppTest must run the entry from a copy outside the repository (see mmrec.ui.session)
            at = AppTest.from_string(APP.read_text(), default_timeout=600)
            t0 = time.perf_counter()
            at.run()
            cold_s = time.perf_counter() - t0
            genres = at.multiselect(key="onb_genres").options[:2]
            at.text_input(key="onb_name").input("timing")
            for g in genres:
                at.multiselect(key="onb_genres").select(g)
            [b for b in at.button if b.label == "Show my picks"][0].click()
            at.run()
            rate, slider, apply = [], [], []
            for i in range(repeats):
                mid = at.session_state[L.K_GRID]["picks"][0].movie_id
                t0 = time.perf_counter()
                cardgrid.apptest_event(at, "rate", {"id": mid, "stars": 1 + i % 5})
                rate.append((time.perf_counter() - t0) * 1000)
                at.slider(key="w_audio").set_value(0.0 if i % 2 == 0 else 1.0)
                t0 = time.perf_counter()
                at.run()
                slider.append((time.perf_counter() - t0) * 1000)
                at.button(key="whatif_apply").click()
                t0 = time.perf_counter()
                at.run()
                apply.append((time.perf_counter() - t0) * 1000)
                if at.exception:
                    raise RuntimeError(at.exception[0].value)
        finally:
            for k, v in old_env.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
    return {
        "first_run_s": round(cold_s, 2),
        "rate": _stats(rate),
        "slider": _stats(slider),
        "apply": _stats(apply),
        "repeats": repeats,
        "note": "AppTest script-run time: service + page rendering, no network or browser",
    }


def main(argv=None) -> int:
    cfg = load_config()
    parser = argparse.ArgumentParser(prog="python -m mmrec.ui.timing", description=__doc__)
    parser.add_argument("--data", default=cfg.paths.data_dir)
    parser.add_argument("--checkpoints", default=cfg.paths.checkpoints_dir)
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args(argv)
    result = measure(args.data, args.checkpoints, args.repeats)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

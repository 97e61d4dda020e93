"""The README screenshot of the home page, made from a built catalog in headless Chromium.

    python -m mmrec.ui.screenshot --out docs/screenshot-home.png
    python -m mmrec.ui.screenshot --data data/demo --checkpoints checkpoints/demo --out shot.png

Starts the dashboard on a free 127.0.0.1 port with a throw-away ratings database (the real
store is never touched), onboards a user who likes two genres, rates one pick five stars so the
"what changed" note shows, and saves the page.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from mmrec.config import load_config
from mmrec.ui import browser as B


def take(
    out: Path,
    data_dir: str,
    ckpt_dir: str,
    width: int = 1500,
    height: int = 1150,
    full_page: bool = False,
    rate: bool = True,
) -> Path:
    from playwright.sync_api import sync_playwright

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="mmrec-shot-") as tmp:
        db = Path(tmp) / "ratings.sqlite3"
        with B.AppServer(data_dir, ckpt_dir, db, log_path=Path(tmp) / "server.log") as server:
            with sync_playwright() as pw:
                browser = B.launch(pw)
                page = browser.new_page(viewport={"width": width, "height": height})
                page.set_default_timeout(120_000)
                page.goto(server.url)
                B.wait_idle(page, 120)
                B.onboard(page, "Demo viewer", genres=2, timeout=120)
                if rate:
                    mid = B.card_ids(page)[0]
                    B.rate_card(page, mid, 5)
                # let posters finish loading before the shot
                page.wait_for_function(
                    "Array.from(document.images).every(i => i.complete)", timeout=30_000
                )
                page.screenshot(path=str(out), full_page=full_page)
                browser.close()
    return out


def main(argv=None) -> int:
    cfg = load_config()
    parser = argparse.ArgumentParser(prog="python -m mmrec.ui.screenshot", description=__doc__)
    parser.add_argument("--out", default="docs/screenshot-home.png")
    parser.add_argument("--data", default=cfg.paths.data_dir, help="catalog folder (built)")
    parser.add_argument("--checkpoints", default=cfg.paths.checkpoints_dir)
    parser.add_argument("--full-page", action="store_true", help="the whole grid, not the top")
    parser.add_argument("--no-rating", action="store_true", help="skip the example rating")
    args = parser.parse_args(argv)
    if not Path(B.CHROMIUM).exists():
        print(
            f"{B.CHROMIUM} not found: apt-get install chromium (or make e2e-deps)", file=sys.stderr
        )
        return 2
    path = take(
        Path(args.out),
        args.data,
        args.checkpoints,
        full_page=args.full_page,
        rate=not args.no_rating,
    )
    print(f"saved {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

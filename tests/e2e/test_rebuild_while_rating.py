"""Session A rebuilds from the Data page while session B keeps rating (issue 19), in Chromium.

The server runs with the admin setting on (``MMREC_DATA_ADMIN=1``) on a copy of the tiny
catalog whose movies.csv has changed since its checkpoints were built (one title), so the
Rebuild really trains a new version. While A's rebuild runs, B rates movie after movie:

- B never sees an error (no exception box, no error alert) and every rating is stored;
- the served checkpoint folder is untouched until the new version is complete (its version
  token and every file's mtime are checked at each of B's ratings), then swapped in one step;
- after the swap both sessions are served the new version (the changed title shows in B's
  search) and B keeps rating.
"""

from __future__ import annotations

import csv
import shutil
import time
from pathlib import Path

import pytest
from e2e_helpers import ARTIFACTS, require_browser, shot  # noqa: E402  (tests/e2e on sys.path)

pytestmark = pytest.mark.e2e

NEW_TITLE_SUFFIX = " (rebuilt cut)"


def retitle_first(movies_csv: Path) -> str:
    with open(movies_csv, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        fields, rows = reader.fieldnames, list(reader)
    rows[0]["title"] += NEW_TITLE_SUFFIX
    with open(movies_csv, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    return rows[0]["title"]


def snapshot(ckpt: Path) -> dict:
    return {p.name: p.stat().st_mtime_ns for p in ckpt.iterdir()}


RATE_EVERY_S = 5.0  # B's pace while A rebuilds


def test_rebuild_from_data_page_while_another_session_rates(tiny_built, tmp_path, monkeypatch):
    require_browser()
    from playwright.sync_api import sync_playwright

    from mmrec.config import load_config
    from mmrec.rebuild import CHECKPOINT_FILES, checkpoint_version
    from mmrec.service import Recommender
    from mmrec.ui import browser as B

    data, ckpt, db = tmp_path / "data", tmp_path / "ckpt", tmp_path / "ratings.sqlite3"
    shutil.copytree(tiny_built.paths.data_dir, data, ignore=shutil.ignore_patterns("*.sqlite3"))
    shutil.copytree(tiny_built.paths.checkpoints_dir, ckpt)
    toml = Path(tiny_built.paths.data_dir).parent / "tiny.toml"  # tiny training budgets
    monkeypatch.setenv("MMREC_CONFIG", str(toml))
    monkeypatch.setenv("MMREC_DATA_ADMIN", "1")
    log = ARTIFACTS / "server-rebuild.log"
    server = B.AppServer(data, ckpt, db, log_path=log).start()
    try:
        with sync_playwright() as pw:
            browser = B.launch(pw)
            b = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
            a = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
            for page in (a, b):
                page.set_default_timeout(180_000)
            b.goto(server.url)
            B.wait_idle(b)
            B.onboard(b, "bea", genres=2)

            # the catalog changes on disk (an edited title); B is still served the old version
            new_title = retitle_first(data / "movies.csv")
            version0, files0 = checkpoint_version(ckpt), snapshot(ckpt)

            a.goto(server.url)
            B.wait_idle(a)
            B.goto_page(a, "Data")
            a.get_by_role("button", name="Rebuild features and models").click()
            a.wait_for_selector('[data-testid="stProgress"]', timeout=60_000)

            rated, during, after, swapped = [], 0, 0, None
            t0 = time.monotonic()
            last = 0.0
            while time.monotonic() - t0 < 600:
                # B rates like a person, one film every few seconds (as fast as the browser
                # allows, a slow rebuild on a busy machine let B rate the whole tiny catalog)
                time.sleep(max(0.0, RATE_EVERY_S - (time.monotonic() - last)))
                last = time.monotonic()
                done = a.get_by_text("switched to it").count() > 0
                ids = B.card_ids(b)
                assert ids, f"B rated every film ({len(rated)}) before A's rebuild finished"
                mid = ids[0]
                B.rate_card(b, mid, 4)
                rated.append(mid)
                assert not B.exception_boxes(b), B.exception_boxes(b)
                errors = b.locator('[data-testid="stAlert"]').filter(has_text="rror").count()
                assert errors == 0, b.locator('[data-testid="stAlert"]').all_inner_texts()
                version = checkpoint_version(ckpt)
                if version == version0:
                    # not swapped yet: the served folder is exactly the one B started with
                    assert snapshot(ckpt) == files0
                    assert not done
                    during += 1
                else:
                    # swapped: once, to a complete version (every file present and loadable)
                    swapped = swapped or version
                    assert version == swapped
                    assert set(CHECKPOINT_FILES) <= set(snapshot(ckpt))
                    after += done
                    if after >= 2:
                        break
            shot(a, "rebuild-A-done")
            shot(b, "rebuild-B-after")
            assert during >= 2, f"B rated only {during} times while A rebuilt"
            assert after >= 2, "A's rebuild never finished"
            assert not B.exception_boxes(a), B.exception_boxes(a)
            assert checkpoint_version(ckpt) != version0

            # after the swap, B is served the new version: the edited title is found
            B.goto_page(b, "Explore")
            b.locator(".st-key-explore_query input").fill("rebuilt cut")
            b.keyboard.press("Enter")
            B.wait_idle(b)
            assert b.get_by_text(new_title).count() >= 1
            assert not B.exception_boxes(b)
            browser.close()
    finally:
        server.stop()

    cfg = load_config(data_dir=str(data), checkpoints_dir=str(ckpt))
    cfg.paths.db_path = str(db)
    svc = Recommender(cfg)  # the swapped-in version loads and fits the edited catalog
    user = next(u for u in svc.users() if u["name"] == "bea")
    stored = dict(svc.store.ratings(user["user_id"]))
    print(
        f"\nREBUILD B rated {during} times during A's rebuild, {after} after; stored {len(stored)}"
    )
    assert set(rated) <= set(stored)

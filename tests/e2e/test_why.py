"""End-to-end in headless Chromium: "Why this pick" for a recommended movie (issue 6).

Onboard, rate one pick 5★ (so the reasons can quote a liked movie), follow a card's "Why this
pick?" link, and find the share bar plus the three heatmap images (synopsis, poster, trailer
spectrogram) actually decoded by the browser, the "play from" trailer player, then run the
randomisation sanity check. The home grid's per-card share bars are checked on the way.
Screenshots go to ``tests/e2e/artifacts/why-*.png``.

Skips when Chromium is missing, unless ``MMREC_REQUIRE_BROWSER=1`` (CI), where it fails.
"""

from __future__ import annotations

import pytest
from e2e_helpers import ARTIFACTS, require_browser, shot  # noqa: E402  (tests/e2e is on sys.path)

pytestmark = pytest.mark.e2e

SLOW = 600.0  # seconds: a cold explanation on a loaded 2-core machine


def _decoded_images(page, key: str) -> list[int]:
    """naturalWidth of every <img> inside the keyed container (0 = not decoded)."""
    return page.eval_on_selector_all(f".st-key-{key} img", "els => els.map(e => e.naturalWidth)")


def test_why_this_pick_in_chromium(tiny_built, tmp_path):
    require_browser()
    from playwright.sync_api import sync_playwright

    from mmrec.ui import browser as B

    cfg = tiny_built
    server = B.AppServer(
        cfg.paths.data_dir,
        cfg.paths.checkpoints_dir,
        tmp_path / "ratings.sqlite3",
        log_path=ARTIFACTS / "server-why.log",
    ).start()
    try:
        with sync_playwright() as pw:
            browser = B.launch(pw)
            page = browser.new_page(viewport={"width": 1500, "height": 1100})
            page.set_default_timeout(SLOW * 1000)
            page.goto(server.url)
            B.wait_idle(page, SLOW)
            B.onboard(page, "wendy", genres=2, timeout=SLOW)

            # rate the first pick 5 stars: a liked movie for the reasons
            mid = B.card_ids(page)[0]
            page.locator(B.star(mid, 5)).click()
            page.wait_for_selector(B.card(mid), state="detached")
            B.wait_idle(page, SLOW)

            # every card carries its modality share bar
            cards = B.card_ids(page)
            bars = page.locator(B.CARD).filter(has_text="synopsis").filter(has_text="trailer")
            assert bars.count() == len(cards), (bars.count(), len(cards))
            shot(page, "why-01-home-share-bars")

            target = cards[0]
            page.locator(B.card(target)).get_by_role("link", name="Why this pick?").click()
            page.wait_for_selector(".st-key-why_trailer img", timeout=SLOW * 1000)
            B.wait_idle(page, SLOW)
            assert f"movie={target}" in page.url
            assert not B.exception_boxes(page), B.exception_boxes(page)

            # the share bar (plotly) and the three heatmap images, decoded by the browser
            assert page.locator('[data-testid="stPlotlyChart"]').count() >= 1
            assert page.get_by_text("Modality shares").count() >= 1
            for key in ("why_poster", "why_trailer"):
                widths = _decoded_images(page, key)
                assert widths and all(w > 0 for w in widths), (key, widths)
            # the synopsis highlights are text (readable by a screen reader), not a picture
            synopsis = page.locator(".st-key-why_text")
            assert synopsis.locator("img").count() == 0
            assert len(synopsis.inner_text().split()) >= 5, synopsis.inner_text()
            assert page.get_by_text("Play from").count() >= 1
            assert page.locator("audio").count() >= 1
            assert page.get_by_text("which you rated 5★").count() >= 1
            shot(page, "why-02-explanation")
            # Streamlit scrolls inside its own container, so full-page shots stop at the fold:
            # the heatmaps are also saved as element shots
            for name, selector in (
                ("shares", '[data-testid="stPlotlyChart"]'),
                ("synopsis", ".st-key-why_text"),
                ("poster", ".st-key-why_poster"),
                ("trailer", ".st-key-why_trailer"),
            ):
                element = page.locator(selector).first
                element.scroll_into_view_if_needed(timeout=30_000)
                element.screenshot(path=str(ARTIFACTS / f"why-02-{name}.png"), timeout=30_000)

            # the randomisation check shows one correlation per map
            page.locator('[data-testid="stExpander"]').filter(has_text="Sanity check").locator(
                "summary"
            ).click()
            page.locator(".st-key-why_sanity button").click()
            page.wait_for_selector('[data-testid="stTable"]', timeout=SLOW * 1000)
            B.wait_idle(page, SLOW)
            assert page.get_by_text("Spearman").count() >= 1
            # a verdict per map, in words
            verdicts = (
                page.get_by_text("passes (ρ =").count() + page.get_by_text("fails (ρ =").count()
            )
            assert verdicts >= 1
            assert not B.exception_boxes(page), B.exception_boxes(page)
            shot(page, "why-03-sanity")
            table = page.locator('[data-testid="stTable"]').first
            table.scroll_into_view_if_needed(timeout=30_000)
            table.screenshot(path=str(ARTIFACTS / "why-03-sanity-table.png"), timeout=30_000)
            browser.close()
    finally:
        server.stop()

"""The For you grid component (``mmrec.ui.cardgrid``) in Chromium, on a page of its own with
hand-made cards (``cardgrid_app.py``): catalog text stays text, a rating removes only its card
and the new card is guarded for a moment, every control works by mouse and keyboard, and each
event reaches Python once."""

from __future__ import annotations

from pathlib import Path

import pytest
from e2e_helpers import require_browser, shot  # noqa: E402  (tests/e2e is on sys.path)

pytestmark = pytest.mark.e2e

HERE = Path(__file__).resolve().parent
XSS = "<img src=x onerror=alert(1)>"
# Counts the cards inserted into and removed from the grid from now on (moving a node counts as
# a removal and an insertion).
COUNT_MOVES = """() => {
    window.__moves = {added: [], removed: []};
    new MutationObserver(records => records.forEach(r => {
        r.addedNodes.forEach(n => window.__moves.added.push(n.dataset.mmrecCard));
        r.removedNodes.forEach(n => window.__moves.removed.push(n.dataset.mmrecCard));
    })).observe(document.querySelector('.mmrec-grid'), {childList: true});
}"""

# A star's computed colour and the page's background as [r, g, b] on 0..255 (Chromium writes a
# color-mix() result as "color(srgb r g b)" on 0..1, a plain colour as "rgb(r, g, b)").
STAR_AND_PAGE_COLOURS = """e => {
    const rgb = s => s.startsWith('color(srgb')
        ? s.slice(11, -1).split(' ').slice(0, 3).map(x => 255 * parseFloat(x))
        : s.match(/[\\d.]+/g).slice(0, 3).map(Number);
    const app = document.querySelector('.stApp') || document.body;
    return [rgb(getComputedStyle(e).color), rgb(getComputedStyle(app).backgroundColor)];
}"""


def contrast(a, b) -> float:
    """WCAG contrast ratio of two sRGB colours on 0..255."""

    def lum(c):
        lin = [
            (x / 255) / 12.92 if x / 255 <= 0.04045 else ((x / 255 + 0.055) / 1.055) ** 2.4
            for x in c
        ]
        return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]

    hi, lo = sorted((lum(a), lum(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def test_grid_component_text_events_and_arrival(tmp_path):
    require_browser()
    from playwright.sync_api import sync_playwright

    from mmrec.ui import browser as B

    dialogs: list[str] = []
    app = B.AppServer("unused", "unused", app=HERE / "cardgrid_app.py", cwd=tmp_path)
    with app, sync_playwright() as pw:
        browser = B.launch(pw)
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.set_default_timeout(60_000)
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(app.url)
        page.wait_for_selector(B.CARD)
        B.wait_idle(page)
        assert B.card_ids(page) == [1, 2, 3]

        # catalog text is text: the title, synopsis, genres and reason show the markup literally
        first = page.locator(B.card(1))
        assert XSS in first.locator(".mmrec-title").inner_text()
        first.locator("summary").click()
        details = first.locator("details").inner_text()
        assert details.count(XSS) == 3 and "<script>alert(2)</script>" in details, details
        assert "no trailer" in details
        assert (
            page.locator('img[src="x"]').count() == 0
            and page.locator("script").filter(has_text="alert(2)").count() == 0
        )
        assert page.locator(B.card(2)).get_by_text("exploration").count() == 1
        # a star under the pointer is drawn in gold mixed with the theme's text colour, legible
        # on the page's background (WCAG 1.4.11: 3:1 for a control's state)
        page.locator(B.star(1, 3)).hover()
        fg, bg = page.locator(B.star(1, 3)).evaluate(STAR_AND_PAGE_COLOURS)
        assert fg[0] > fg[2] + 60, fg  # still gold, not the plain text colour
        assert contrast(fg, bg) >= 3.0, (fg, bg)
        # chosen and empty stars differ by shape too, not by colour alone (WCAG 1.4.1)
        glyphs = page.locator(f"{B.card(1)} .mmrec-stars button").evaluate_all(
            "bs => bs.map(b => getComputedStyle(b, '::before').content)"
        )
        assert glyphs == ['"★"'] * 3 + ['"☆"'] * 2, glyphs
        shot(page, "cardgrid-00-hover-three-stars")
        page.mouse.move(0, 0)
        assert (
            page.locator(f"{B.card(1)} .mmrec-stars button").evaluate_all(
                "bs => bs.map(b => getComputedStyle(b, '::before').content)"
            )
            == ['"☆"'] * 5
        )

        # the stars are labelled buttons in a named group
        assert page.locator(B.star(1, 4)).get_attribute("aria-label") == "4 stars"
        assert page.locator(f"{B.card(1)} .mmrec-stars").get_attribute("aria-label") == (
            f"Rate {XSS} Night"
        )

        # a rating: only that card leaves and one is built in its slot; the others are neither
        # rebuilt nor moved (a MutationObserver counts the grid's child insertions/removals)
        page.evaluate(COUNT_MOVES)
        page.locator(B.star(1, 4)).click()
        page.wait_for_selector(B.card(1), state="detached")
        B.wait_idle(page)
        assert B.card_ids(page) == [11, 2, 3]
        assert page.evaluate("() => window.__moves") == {"added": ["11"], "removed": ["1"]}
        new = page.locator(B.card(11))
        assert new.locator(".mmrec-badge.new").inner_text() == "✦ new"
        assert new.get_by_text("In the place of <b>Gone</b>").count() == 1
        anim = new.locator(".mmrec-stars").evaluate(
            "e => [getComputedStyle(e).animationName, getComputedStyle(e).animationDuration]"
        )
        assert anim == ["mmrec-arrive-1", "0.9s"], anim
        shot(page, "cardgrid-01-after-rating")

        # keyboard: a star takes focus and Enter rates; the second card leaves
        page.locator(B.star(2, 2)).focus()
        page.keyboard.press("Enter")
        page.wait_for_selector(B.card(2), state="detached")
        B.wait_idle(page)
        assert B.card_ids(page) == [11, 12, 3]
        # its replacement's guard restarts under the other animation name
        anim = page.locator(f"{B.card(12)} .mmrec-stars").evaluate(
            "e => getComputedStyle(e).animationName"
        )
        assert anim == "mmrec-arrive-0", anim

        # a refused rating leaves the card on the grid, clickable again (not stuck as busy)
        # and showing no rating
        page.locator(B.star(3, 1)).click()
        page.wait_for_function(
            f"() => !document.querySelector('{B.card(3)}').classList.contains('mmrec-busy')"
        )
        B.wait_idle(page)
        assert B.card_ids(page) == [11, 12, 3]
        assert page.locator(f"{B.card(3)} .mmrec-stars button.on").count() == 0

        # two cards rated faster than the server answers: both ratings arrive, in order
        # (Streamlit keeps only the newest trigger value when two wait: the script queues)
        page.locator(B.star(11, 5)).click()
        page.locator(B.star(12, 3)).click()
        page.wait_for_selector(B.card(12), state="detached")
        B.wait_idle(page)
        assert B.card_ids(page) == [13, 14, 3]

        # Details: "Haven't seen it", and "Why this pick?" stay in this session (an event)
        page.locator(f"{B.card(3)} summary").click()
        page.locator(B.card(3)).get_by_role("button", name="Haven't seen it").click()
        B.wait_idle(page)
        why = page.locator(B.card(13)).get_by_role("link", name="Why this pick?")
        assert why.get_attribute("href") == "/why?user=7&movie=13"  # a new tab: same user
        why.click()
        B.wait_idle(page)
        events = page.get_by_text("events:").inner_text().strip()
        assert events == (
            "events: rate 1 4 | rate 2 2 | rate 3 1 | rate 11 5 | rate 12 3 | dismiss 3 not_seen"
            " | why 13"
        ), events
        assert page.url.rstrip("/") == app.url.rstrip("/")  # no navigation away
        assert dialogs == [] and errors == [], (dialogs, errors)
        browser.close()

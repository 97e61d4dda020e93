"""An open what-if follows the ratings, in real headless Chromium.

The For you grid is an ``st.fragment`` (a rating reruns only the grid) and the what-if box sits
outside it. Rating a film that the what-if lists under "Would leave your list" must refresh the
box: the film is no longer on the list, so it cannot leave it. A stale box keeps naming it.

Skips when Chromium is missing, unless ``MMREC_REQUIRE_BROWSER=1`` (CI), where it fails.
"""

from __future__ import annotations

import pytest
from e2e_helpers import onboarded_page, require_browser  # noqa: E402  (tests/e2e is on sys.path)

pytestmark = pytest.mark.e2e

BOX = ".st-key-whatif_box"


def names(line: str, title: str) -> bool:
    """A what-if line ("Title (year)" or "Title") names this title."""
    return line == title or line.startswith(title + " (")


def leaving(page) -> list[str]:
    """Lines under "Would leave your list" in the what-if box."""
    text = page.locator(f'{BOX} [data-testid="stColumn"]').nth(1).inner_text()
    return [line.strip() for line in text.splitlines()[1:] if line.strip()]


def test_a_rating_refreshes_an_open_what_if(tiny_built, tmp_path):
    require_browser()
    from mmrec.ui import browser as B

    with onboarded_page(tiny_built, tmp_path / "r.sqlite3", "wendy", genres=2) as page:
        gone: list[str] = []
        for key in ("w_text", "w_audio"):  # poster alone ranks differently enough
            B.drag_slider_to_min(page, key)
            page.wait_for_selector(BOX)
            B.wait_idle(page)
            gone = leaving(page)
            if gone:
                break
        assert gone, "no weight change makes any film leave the list"
        titles = {
            mid: page.locator(f"{B.card(mid)} .mmrec-title").first.inner_text()
            for mid in B.card_ids(page)
        }
        target = next(m for m, t in titles.items() if any(names(line, t) for line in gone))
        B.rate_card(page, target, 5)
        page.wait_for_selector(BOX)
        B.wait_idle(page)
        now = leaving(page)
        assert not any(names(line, titles[target]) for line in now), (titles[target], now)
        assert not B.exception_boxes(page)

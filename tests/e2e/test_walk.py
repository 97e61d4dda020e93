"""The whole dashboard as a newcomer walks it, in real headless Chromium (issue 15).

Served as ``make run`` serves it (``python main.py``: models and explanation encoders preloaded)
on the tiny catalog, at 1440x900 and at a 390x844 phone:

- deep links: each page opened directly on the freshly started server (the first test of this
  module, so the first sessions) renders inside the app with its navigation, no exception box,
  no console error and no failed request (Streamlit's base-URL probe used to 404 there);
- the walk: onboard -> rate 5 films -> what-if (drag a weight slider, Apply) -> a filter ("Only
  highly rated" and one genre excluded, by keyboard; every card left must match) -> Why this
  pick -> Explore (search, map) -> Learning -> Results -> Data, then a reload of a page
  that held a trailer player; no exception box and no console error or HTTP error anywhere;
- axe-core (``axe-playwright-python``) on every page of the walk, at both sizes: no serious or
  critical violation except the commented entries of ``e2e_helpers.AXE_ALLOWED``;
- timings as generous bounds and orderings (the share bar comes before the heatmaps), printed.

Screenshots of every page at both sizes: ``tests/e2e/artifacts/walk-<size>-*.png`` (ignored by
git). Skips when Chromium is missing, unless ``MMREC_REQUIRE_BROWSER=1`` (CI), where it fails.
"""

from __future__ import annotations

import re
import time

import pytest
from e2e_helpers import (  # noqa: E402  (tests/e2e is on sys.path)
    ARTIFACTS,
    axe_problems,
    require_browser,
    shot,
)

pytestmark = pytest.mark.e2e

SIZES = {"desktop": (1440, 900), "phone": (390, 844)}
# url path -> the page's own heading (st.title), the default page first in st.navigation
PAGES = {
    "": "For you",
    "explore": "Explore the catalog",
    "why": "Why this pick",
    "learning": "Learning",
    "results": "Results",
    "data": "Data",
}
# Generous bounds on a loaded 2-core machine (the targets on an idle one: the share bar
# in 0.3 s, the first full explanation in 5 s, a rating's new grid at once).
BOUND_RATING_S = 30.0
BOUND_SHARES_S = 30.0
BOUND_EXPLANATION_S = 180.0
BOUND_PAGE_S = 30.0
MIN_AVG = 3.5  # the sidebar's default minimum average under "Only highly rated"


@pytest.fixture(scope="module")
def server(tiny_built, tmp_path_factory):
    require_browser()
    from mmrec.ui import browser as B

    cfg = tiny_built
    db = tmp_path_factory.mktemp("walk") / "ratings.sqlite3"
    srv = B.AppServer(
        cfg.paths.data_dir,
        cfg.paths.checkpoints_dir,
        db,
        log_path=ARTIFACTS / "server-walk.log",
        entry="main",
    ).start()
    yield srv
    srv.stop()


def heading(page) -> str:
    return page.locator('[data-testid="stMain"] h1').first.inner_text().strip()


def test_deep_link_to_every_page_of_a_fresh_server(server):
    """First sessions of the server: each page's address opened directly."""
    from playwright.sync_api import sync_playwright

    from mmrec.ui import browser as B

    problems = []
    with sync_playwright() as pw:
        browser = B.launch(pw)
        for path in [p for p in PAGES if p] + [""]:  # the default page last: not the first run
            context = browser.new_context(viewport={"width": 1440, "height": 900})
            page = context.new_page()
            page.set_default_timeout(120_000)
            watch = B.ConsoleWatch(page)
            page.goto(f"{server.url}/{path}")
            B.wait_idle(page, 120)
            page.locator('[data-testid="stMain"] h1').first.wait_for()
            where = f"/{path}"
            assert heading(page) == PAGES[path], (where, heading(page))
            # inside the app: the navigation lists every page and marks this one
            links = page.locator('[data-testid="stSidebarNav"] a')
            assert links.count() == len(PAGES), where
            current = page.locator('[data-testid="stSidebarNav"] a[aria-current="page"]')
            assert current.count() == 1 and PAGES[path].split()[0] in current.inner_text(), where
            assert page.locator('[data-testid="stSidebar"] .st-key-user_select').count() == 1
            assert not B.exception_boxes(page), (where, B.exception_boxes(page))
            # a reload of the same address: again no probe 404s
            page.reload()
            B.wait_idle(page, 120)
            assert heading(page) == PAGES[path], (where, "reload", heading(page))
            problems += [f"{where}: {e}" for e in watch.take()]
            context.close()
        browser.close()
    assert problems == [], "\n".join(problems)


@pytest.mark.parametrize("size", list(SIZES))
def test_walk_every_page(server, size):
    from playwright.sync_api import sync_playwright

    from mmrec.data.catalog import load_catalog
    from mmrec.ui import browser as B

    catalog = load_catalog(server.data_dir, check_files=False)
    movies = catalog.movies
    width, height = SIZES[size]
    phone = width < 640
    timings: dict[str, float] = {}
    axe: list[str] = []
    errors: list[str] = []
    n_shot = iter(range(1, 100))

    def check(page, name: str, accessible: bool = True) -> None:
        """After each step: no exception box, no console/HTTP error; a screenshot; axe."""
        assert not B.exception_boxes(page), (size, name, B.exception_boxes(page))
        errors.extend(f"{name}: {e}" for e in watch.take())
        if phone:
            B.close_sidebar(page)  # the page itself, not the sidebar over it
        shot(page, f"walk-{size}-{next(n_shot):02d}-{name}")
        if accessible:
            axe.extend(axe_problems(page, f"{size} {name}"))

    def timed(name: str, since: float) -> float:
        timings[name] = round(time.monotonic() - since, 2)
        return timings[name]

    def goto(title: str, name: str) -> None:
        t0 = time.monotonic()
        B.goto_page(page, title)
        page.locator('[data-testid="stMain"] h1').filter(has_text=title.split()[0]).wait_for()
        assert timed(f"page {name}", t0) < BOUND_PAGE_S, timings
        check(page, name)

    with sync_playwright() as pw:
        browser = B.launch(pw)
        context = browser.new_context(
            viewport={"width": width, "height": height},
            is_mobile=phone,
            has_touch=phone,
            device_scale_factor=2 if phone else 1,
        )
        page = context.new_page()
        page.set_default_timeout(BOUND_EXPLANATION_S * 1000)
        watch = B.ConsoleWatch(page)
        page.goto(server.url)
        B.wait_idle(page, 120)
        check(page, "onboarding")

        # --- onboard: picks at once
        t0 = time.monotonic()
        B.onboard(page, f"walker-{size}", genres=2, timeout=120)
        timed("onboarding to first picks", t0)
        check(page, "for-you")

        # --- rate five films, each confirmed in words at the card's place (a toast)
        for n, stars in enumerate((5, 4, 1, 5, 2)):
            mid = B.card_ids(page)[0]
            t0 = time.monotonic()
            B.rate_card(page, mid, stars)
            assert timed(f"rating {n + 1}", t0) < BOUND_RATING_S, timings
            toast = page.locator('[data-testid="stToast"]').filter(has_text="Saved:")
            assert toast.count() >= 1
        page.get_by_text("5 ratings stored").first.wait_for(state="attached")
        check(page, "for-you-rated-5")

        # --- what-if: drag the trailer weight to 0, see the preview, Apply
        B.open_sidebar(page)
        assert B.drag_slider_to_min(page, "w_audio") == 0.0
        if phone:
            B.close_sidebar(page)
        page.wait_for_selector(".st-key-whatif_box")
        check(page, "what-if")
        page.locator(".st-key-whatif_apply button").click()
        page.wait_for_selector(".st-key-whatif_box", state="detached")
        B.wait_idle(page)
        assert page.get_by_text("audio 0.00").count() >= 1  # the grid's caption: applied
        check(page, "what-if-applied")

        # --- a filter: "Only highly rated" and "Never <a genre on screen>"; afterwards every
        # card on the grid must match both (checked against the catalog's own table)
        shown = B.card_ids(page)
        onboarded = catalog.genres[:2]  # B.onboard picked the first two offered genres
        on_screen = [g for mid in shown for g in movies.at[mid, "genres"] if g not in onboarded]
        high = movies["avg_rating"].fillna(0.0) >= MIN_AVG
        # the genre on screen that leaves the most highly rated films (the grid stays full)
        genre = max(
            dict.fromkeys(on_screen),
            key=lambda g: (high & ~movies["genres"].map(lambda gs, g=g: g in gs)).sum(),
        )
        B.open_sidebar(page)
        filters = page.locator('[data-testid="stSidebar"] [data-testid="stExpander"]').filter(
            has_text="Filters"
        )
        filters.locator("summary").click()
        B.set_toggle(page, "f_only_high", True)
        B.pick_option(page, "f_exclude", genre)
        if phone:
            B.close_sidebar(page)
        page.get_by_text(f"no {genre}").first.wait_for()
        # (Streamlit's Markdown draws ">=" as "≥")
        page.get_by_text(re.compile(rf"average rating (>=|≥) {MIN_AVG:.1f}")).first.wait_for()
        filtered = B.card_ids(page)
        assert filtered, "the filters left no picks on the tiny catalog"
        wrong = [
            (mid, movies.at[mid, "genres"], movies.at[mid, "avg_rating"])
            for mid in filtered
            if genre in movies.at[mid, "genres"] or not high.at[mid]
        ]
        assert wrong == [], (genre, wrong)
        assert filtered != shown  # a card with the excluded genre was on screen before
        check(page, "filtered")

        # --- Why this pick: the share bar at once, the heatmaps after
        target = B.card_ids(page)[0]
        t0 = time.monotonic()
        page.locator(B.card(target)).get_by_role("link", name="Why this pick?").click()
        page.locator('.st-key-why_shares, [data-testid="stPlotlyChart"]').first.wait_for()
        shares_s = timed("why: share bar", t0)
        page.locator(".st-key-why_trailer img").wait_for()
        full_s = timed("why: full explanation", t0)
        B.wait_idle(page, BOUND_EXPLANATION_S)
        assert f"movie={target}" in page.url
        assert shares_s <= full_s and shares_s < BOUND_SHARES_S, timings
        assert full_s < BOUND_EXPLANATION_S, timings
        check(page, "why")

        # --- the other pages
        goto("Explore", "explore")
        # a click on a table row opens that film in the detail view under the table
        detail = page.locator(".st-key-explore_detail h3").first
        shown_before = detail.inner_text().strip()
        B.click_table_row(page, "explore_table", 2)
        page.wait_for_function(
            "t => { const h = document.querySelector('.st-key-explore_detail h3');"
            " return h && h.innerText.trim() !== t; }",
            arg=shown_before,
        )
        B.wait_idle(page)
        chosen = B.widget_text(page, "explore_movie")
        assert detail.inner_text().split(" (")[0].strip() in chosen, (chosen, detail.inner_text())
        check(page, "explore-row-opened")
        page.get_by_role("tab", name="Map of the fused space").click()
        page.locator(".js-plotly-plot").first.wait_for()
        B.wait_idle(page)
        check(page, "explore-map")
        # a click on a point opens that film beside the map; the search tab keeps its film
        B.click_map_point(page, "explore_map")
        page.locator(".st-key-explore_map_detail h3").wait_for()
        B.wait_idle(page)
        check(page, "explore-map-opened")
        assert B.widget_text(page, "explore_movie") == chosen
        goto("Learning", "learning")
        assert page.get_by_text("Ratings learned from").count() == 1
        goto("Results", "results")
        goto("Data", "data")

        # --- a trailer player, then a reload: no request for the old session's media
        goto("For you", "for-you-again")
        mid = B.card_ids(page)[0]
        page.locator(f"{B.card(mid)} summary").click()
        page.locator("audio").first.wait_for()
        assert B.audio_duration(page, 0) > 0.5
        check(page, "details-trailer")
        page.keyboard.press("Escape")
        page.reload()
        B.wait_idle(page, 120)
        page.wait_for_selector(B.CARD)
        check(page, "for-you-reloaded", accessible=False)
        browser.close()

    print(f"\n{size} {width}x{height} timings (s):", timings)
    assert errors == [], "\n".join(errors)
    assert axe == [], "\n".join(axe)

"""Shared by the browser tests: the Chromium/Playwright check, screenshots, a fresh server with a
newly onboarded user in one page, and the axe-core check."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"


def require_browser() -> None:
    """Skip without Chromium + Playwright, unless ``MMREC_REQUIRE_BROWSER=1`` (CI): fail."""
    from mmrec.ui.browser import CHROMIUM

    missing = None
    if not Path(CHROMIUM).exists():
        missing = f"{CHROMIUM} not found (apt-get install chromium)"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError as exc:
            missing = f"playwright (Python package) not importable: {exc}"
    if missing:
        if os.environ.get("MMREC_REQUIRE_BROWSER") == "1":
            pytest.fail(f"MMREC_REQUIRE_BROWSER=1 but {missing}")
        pytest.skip(f"browser tests need Chromium + Playwright: {missing}")


def shot(page, name: str) -> None:
    """Full-page screenshot to ``tests/e2e/artifacts/<name>.png``."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


VIEW = {"width": 1400, "height": 1000}  # the desktop viewport of the flow tests


@contextlib.contextmanager
def onboarded_page(cfg, db: Path, name: str, genres, timeout_s: float = 90) -> Iterator:
    """A fresh dashboard server on ``cfg``'s catalog and checkpoints with its ratings in ``db``,
    one headless Chromium page (:data:`VIEW`, ``timeout_s`` per action) opened on it, and a new
    user ``name`` onboarded there (``genres``: how many to tick, or which). Yields the page;
    the browser and the server stop on exit."""
    from playwright.sync_api import sync_playwright

    from mmrec.ui import browser as B

    with B.AppServer(cfg.paths.data_dir, cfg.paths.checkpoints_dir, db) as server:
        with sync_playwright() as pw:
            browser = B.launch(pw)
            try:
                page = browser.new_context(viewport=VIEW).new_page()
                page.set_default_timeout(timeout_s * 1000)
                page.goto(server.url)
                B.wait_idle(page)
                B.onboard(page, name, genres=genres)
                yield page
            finally:
                browser.close()


# Serious or critical axe-core findings inside Streamlit's own widgets that the app cannot
# change (the element's markup is Streamlit's), as (axe rule id, a piece of the element's opening
# tag). Each entry says why; anything else serious or critical fails the test.
AXE_ALLOWED = (
    # st.toast (Streamlit 1.67): the toast is role="alertdialog" with aria-labelledby naming an
    # id that no element carries, so the dialog has no accessible name. Its text (the rating
    # confirmation) is the app's; its markup is not. The same sentence is also under "What
    # changed with your last action" below the grid.
    ("aria-dialog-name", 'data-testid="stToast"'),
)


def axe_problems(page, where: str, impacts=("serious", "critical")) -> list[str]:
    """Run axe-core (bundled by the ``axe-playwright-python`` package) on the page as it is
    and return one line per element with a serious or critical violation, less
    :data:`AXE_ALLOWED`."""
    from axe_playwright_python.sync_playwright import Axe

    found = Axe().run(page, options={"resultTypes": ["violations"]}).response["violations"]
    out = []
    for rule in found:
        if rule.get("impact") not in impacts:
            continue
        for node in rule["nodes"]:
            tag = node["html"].split(">", 1)[0]
            if any(rule["id"] == rid and piece in tag for rid, piece in AXE_ALLOWED):
                continue
            summary = " ".join((node.get("failureSummary") or "").split())
            out.append(f"{where}: {rule['id']} ({rule['impact']}) {tag[:200]}> :: {summary[:300]}")
    return out

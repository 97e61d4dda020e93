"""Shared by the browser tests: the Chromium/Playwright check and screenshots."""

from __future__ import annotations

import os
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

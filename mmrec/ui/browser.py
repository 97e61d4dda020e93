"""Drive the dashboard in a real headless Chromium: the server, the browser, waiting helpers.

Used by the end-to-end tests (``tests/e2e``) and by ``python -m mmrec.ui.screenshot``. The
browser is the system's Chromium (``/usr/bin/chromium``, Debian package) driven by Playwright
for Python through ``executable_path``: no browser is ever downloaded.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
APP = REPO / "streamlit_app.py"
MAIN = REPO / "main.py"
CHROMIUM = os.environ.get("MMREC_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--autoplay-policy=no-user-gesture-required",  # lets the test start a trailer
]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class AppServer:
    """``streamlit run streamlit_app.py`` (or ``app``) on 127.0.0.1 in a child process; with
    ``entry="main"`` the way ``make run`` serves it instead: ``python main.py`` (models and
    explanation encoders preloaded, the page told the server's base URL)."""

    def __init__(
        self,
        data_dir: str,
        checkpoints_dir: str,
        db_path: str | None = None,
        port: int | None = None,
        log_path: str | Path | None = None,
        cwd: str | Path | None = None,
        entry: str = "streamlit",
        app: str | Path | None = None,
    ):
        if entry not in ("streamlit", "main"):
            raise ValueError(f"entry: 'streamlit' or 'main', not {entry!r}")
        self.entry = entry
        self.app = Path(app) if app else APP  # the script ``streamlit run`` serves
        self.cwd = Path(cwd) if cwd else REPO  # reports/ is read relative to it
        self.data_dir = str(data_dir)
        self.checkpoints_dir = str(checkpoints_dir)
        self.db_path = str(db_path) if db_path else ""
        self.port = port or free_port()
        self.log_path = Path(log_path) if log_path else None
        self.proc: subprocess.Popen | None = None
        self._log = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 120.0) -> AppServer:
        env = dict(os.environ)
        env.update(
            MMREC_DATA=self.data_dir,
            MMREC_CHECKPOINTS=self.checkpoints_dir,
            HF_HUB_OFFLINE="1",
            TRANSFORMERS_OFFLINE="1",
            PYTHONUNBUFFERED="1",
        )
        if self.db_path:
            env["MMREC_DB"] = self.db_path
        if self.entry == "main":
            cmd = [sys.executable, str(MAIN), "--port", str(self.port), "--address", "127.0.0.1"]
        else:
            cmd = [sys.executable, "-m", "streamlit", "run", str(self.app), "--server.port"]
            cmd += [str(self.port), "--server.address", "127.0.0.1", "--server.headless", "true"]
        cmd += ["--browser.gatherUsageStats", "false"]
        if self.log_path:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            cmd,
            cwd=self.cwd,
            env=env,
            stdout=self._log or subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"streamlit exited with {self.proc.returncode}; log: {self.log_path}"
                )
            try:
                with urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        return self
            except OSError:
                pass
            time.sleep(0.3)
        self.stop()
        raise TimeoutError(f"streamlit did not answer on {self.url} within {timeout:.0f} s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.proc = None
        if self._log:
            self._log.close()
            self._log = None

    def __enter__(self) -> AppServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def launch(playwright):
    """The system Chromium, headless."""
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)


def wait_idle(page, timeout: float = 60.0) -> None:
    """Wait until the app's script run has finished (and the connection is up)."""
    page.wait_for_selector(
        '[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=timeout * 1000
    )
    page.wait_for_timeout(300)  # let the last deltas render
    page.wait_for_selector(
        '[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=timeout * 1000
    )


# The For you grid's cards (``mmrec.ui.cardgrid``): one selector for any card, one per film.
CARD = "[data-mmrec-card]"


def card(movie_id: int) -> str:
    """CSS selector of the card of ``movie_id``."""
    return f'[data-mmrec-card="{int(movie_id)}"]'


def star(movie_id: int, stars: int) -> str:
    """CSS selector of the ``stars``-th star button (1-5) of the card of ``movie_id``."""
    return f'{card(movie_id)} .mmrec-stars button[data-stars="{int(stars)}"]'


def card_ids(page) -> list[int]:
    """Movie ids of the cards on the For you grid, in page order."""
    ids = page.eval_on_selector_all(CARD, "els => els.map(e => e.dataset.mmrecCard)")
    return [int(i) for i in ids if i]


def sidebar_open(page) -> bool:
    """True when the sidebar is on screen (a collapsed one sits left of the window: Playwright
    still calls its links visible)."""
    return page.evaluate(
        """() => { const s = document.querySelector('[data-testid="stSidebar"]');
        if (!s) return false; const r = s.getBoundingClientRect();
        return r.width > 50 && r.left > -5; }"""
    )


def open_sidebar(page) -> None:
    """Open the sidebar when it is collapsed (a phone-sized window starts with it closed)."""
    if sidebar_open(page):
        return
    page.locator('[data-testid="stExpandSidebarButton"]').click()
    page.wait_for_function(
        """() => { const s = document.querySelector('[data-testid="stSidebar"]');
        const r = s.getBoundingClientRect(); return r.width > 50 && r.left > -1; }"""
    )
    page.wait_for_timeout(300)  # the end of the slide-in: its widgets move with it


def close_sidebar(page) -> None:
    """Close the sidebar when it covers the page (phone-sized windows)."""
    if not sidebar_open(page):
        return
    page.locator('[data-testid="stSidebarHeader"]').hover()  # the button shows on hover
    page.get_by_role("button", name="Collapse sidebar").click()
    page.wait_for_function(
        """() => { const s = document.querySelector('[data-testid="stSidebar"]');
        const r = s.getBoundingClientRect(); return r.right <= 1 || r.width <= 1; }"""
    )


def goto_page(page, title: str, timeout: float = 60.0) -> None:
    """Click a page in the sidebar navigation (opening the sidebar first when it is
    collapsed) and wait for it to render."""
    open_sidebar(page)
    page.locator('[data-testid="stSidebarNav"] a').filter(has_text=title).first.click()
    page.wait_for_timeout(300)
    wait_idle(page, timeout)


def onboard(page, name: str, genres: int | list[str] = 2, timeout: float = 60.0) -> None:
    """Fill the onboarding form of a fresh session and wait for the first picks.

    ``genres``: how many of the offered genres to choose (the first ones), or their names."""
    page.get_by_label("Your name").fill(name)
    box = page.locator(".st-key-onb_genres input")
    if isinstance(genres, int):
        for _ in range(genres):
            box.click()
            page.get_by_role("option").first.click()
            page.keyboard.press("Escape")
    else:
        for genre in genres:
            box.click()
            box.fill(genre)
            page.get_by_role("option", name=genre, exact=True).click()
            page.keyboard.press("Escape")
    page.get_by_role("button", name="Show my picks").click()
    page.wait_for_selector(CARD, timeout=timeout * 1000)
    wait_idle(page, timeout)


def session_user(page, timeout: float = 20.0) -> str:
    """The user name the sidebar picker shows ("➕ New user …" when nobody is chosen); waits
    for the picker to render its value (a rerun redraws it)."""
    picker = page.locator('[data-testid="stSidebar"] .st-key-user_select')
    deadline = time.monotonic() + timeout
    while True:
        shown = picker.evaluate(
            "e => [...e.querySelectorAll('input')].map(i => i.value).join(' ') + ' '"
            " + e.textContent"
        ).strip()
        if shown or time.monotonic() > deadline:
            return shown
        page.wait_for_timeout(250)


def rate_card(page, movie_id: int, stars: int) -> None:
    """Click the ``stars``-th star (1-5) of a card and wait for the card to leave."""
    page.locator(star(movie_id, stars)).click()
    page.wait_for_selector(card(movie_id), state="detached")
    wait_idle(page)


def audio_duration(page, index: int = 0, timeout_ms: int = 20000) -> float:
    """Load the index-th <audio> element's source and return its duration in seconds."""
    return (
        page.locator("audio")
        .nth(index)
        .evaluate(
            """(el, timeoutMs) => new Promise((resolve, reject) => {
            if (el.readyState >= 1 && isFinite(el.duration)) { resolve(el.duration); return; }
            const t = setTimeout(() => reject(new Error('no loadedmetadata')), timeoutMs);
            el.addEventListener('loadedmetadata', () => { clearTimeout(t); resolve(el.duration); }, {once: true});
            el.addEventListener('error', () => { clearTimeout(t); reject(new Error('media error ' + (el.error && el.error.code))); }, {once: true});
            el.preload = 'metadata';
            el.load();
        })""",
            timeout_ms,
        )
    )


def audio_plays(page, index: int = 0, ms: int = 800) -> float:
    """Play the index-th <audio> muted for ``ms`` and return how far it got (seconds)."""
    return (
        page.locator("audio")
        .nth(index)
        .evaluate(
            """async (el, ms) => {
            el.muted = true;
            await el.play();
            await new Promise(r => setTimeout(r, ms));
            el.pause();
            return el.currentTime;
        }""",
            ms,
        )
    )


class ConsoleWatch:
    """What a page reported while a test drove it: console errors, uncaught exceptions,
    HTTP answers >= 400 and failed requests (a request cancelled because the page moved on,
    net::ERR_ABORTED, is not a failure). Attach before the first ``goto``."""

    def __init__(self, page):
        self.errors: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.errors.append(f"uncaught: {exc}"))
        page.on("response", self._response)
        page.on("requestfailed", self._failed)

    def _console(self, msg) -> None:
        if msg.type == "error":
            self.errors.append(f"console: {msg.text} ({msg.location.get('url', '')})")

    def _response(self, response) -> None:
        if response.status >= 400:
            self.errors.append(f"HTTP {response.status}: {response.url}")

    def _failed(self, request) -> None:
        failure = request.failure or ""
        if "ERR_ABORTED" not in failure:
            self.errors.append(f"request failed ({failure}): {request.url}")

    def take(self) -> list[str]:
        """The errors seen since the last call (and forget them)."""
        out, self.errors = self.errors, []
        return out


def exception_boxes(page) -> list[str]:
    return page.locator('[data-testid="stException"]').all_inner_texts()


def slider_value(page, key: str) -> float:
    return float(page.locator(f'.st-key-{key} input[type="range"]').input_value())


def drag_slider_to_min(page, key: str) -> float:
    """Drag the keyed slider's thumb past its left end with the mouse; returns the new value."""
    inp = page.locator(f'.st-key-{key} input[type="range"]')
    thumb = inp.locator("xpath=../..")  # input -> visually hidden wrapper -> thumb
    track = thumb.locator("xpath=..")
    tb, kb = thumb.bounding_box(), track.bounding_box()
    y = tb["y"] + tb["height"] / 2
    page.mouse.move(tb["x"] + tb["width"] / 2, y)
    page.mouse.down()
    page.mouse.move(kb["x"] - 20, y, steps=12)
    page.mouse.up()
    wait_idle(page)
    if slider_value(page, key) != float(inp.get_attribute("min")):
        inp.focus()  # a drag that fell short (tiny viewport): finish with the keyboard
        page.keyboard.press("Home")
        wait_idle(page)
    return slider_value(page, key)


def card_scores(page) -> list[tuple[int, str]]:
    """(movie id, modality shares shown on the card) for every card on the grid, in page
    order (the score itself is under the card's Details)."""
    import re

    out = []
    for mid in card_ids(page):
        text = page.locator(card(mid)).inner_text()
        m = re.search(r"synopsis.*?trailer\s*\d+%", text, re.S)
        out.append((mid, " ".join(m.group(0).split()) if m else ""))
    return out


def set_toggle(page, key: str, on: bool) -> None:
    """Switch the keyed ``st.toggle`` on or off with the keyboard (focus, Space): no tap that a
    scrolling sidebar could move away from the switch."""
    switch = page.locator(f'.st-key-{key} input[type="checkbox"]')
    wait_idle(page)
    if switch.is_checked() != on:
        switch.focus()
        page.keyboard.press("Space")
    page.wait_for_function(
        "([sel, on]) => { const e = document.querySelector(sel); return e && e.checked === on; }",
        arg=[f'.st-key-{key} input[type="checkbox"]', on],
    )
    wait_idle(page)


def pick_option(page, key: str, option: str, attempts: int = 5) -> None:
    """Add ``option`` to the keyed ``st.multiselect`` with the keyboard: focus its input, type
    the option's name, wait until the list offers it (ArrowDown opens a list that stayed shut),
    Enter, and wait for its tag. Taps were flaky in headless Chromium: the list often stayed
    shut after a tap that scrolled the sidebar, or redrew under the tap. Raises when the tag
    never appears."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    widget = page.locator(f".st-key-{key}")
    box = widget.locator("input")
    tag = widget.locator(f'[data-tag][aria-label="{option}"]')  # a chosen option's chip
    listed = page.get_by_role("option", name=option, exact=True)
    for _ in range(attempts):
        wait_idle(page)
        if tag.count():
            break
        box.focus()
        box.fill("")
        page.keyboard.type(option)
        try:
            listed.wait_for(timeout=3000)
        except PlaywrightTimeout:
            page.keyboard.press("ArrowDown")  # focused but shut: open it
            try:
                listed.wait_for(timeout=3000)
            except PlaywrightTimeout:
                continue
        # the typed name narrows the list; Enter takes the highlighted (first) entry, which must
        # be this one (not "Select all", not a longer name that contains it)
        if page.get_by_role("option").first.inner_text().strip() != option:
            listed.click()
        else:
            page.keyboard.press("Enter")
        try:
            tag.wait_for(timeout=5000)
        except PlaywrightTimeout:
            continue
    page.keyboard.press("Escape")
    wait_idle(page)
    if not tag.count():
        raise AssertionError(f"multiselect {key!r}: {option!r} not selected after {attempts} tries")


def click_table_row(page, key: str, row: int) -> None:
    """Click the row marker (the left edge) of the ``row``-th data row (0 = first) of the keyed
    ``st.dataframe`` with row selections (a canvas: rows are found by their height, the header
    is one row)."""
    grid = page.locator(f'.st-key-{key} [data-testid="stDataFrameResizable"]').first
    grid.scroll_into_view_if_needed()
    box = grid.bounding_box()
    row_px = 35  # Streamlit's default row height (header row included)
    page.mouse.move(box["x"] + 15, box["y"] + row_px * (row + 1) + row_px / 2)  # marker shows
    page.wait_for_timeout(200)
    page.mouse.click(box["x"] + 15, box["y"] + row_px * (row + 1) + row_px / 2)
    wait_idle(page)


def click_map_point(page, key: str, trace: int = 0, point: int = 0) -> None:
    """Click one point of the keyed plotly scatter chart (SVG points; small catalogs)."""
    dot = page.locator(f".st-key-{key} .scatterlayer .trace").nth(trace).locator("path.point")
    dot.nth(point).scroll_into_view_if_needed()
    box = dot.nth(point).bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    wait_idle(page)


def widget_text(page, key: str) -> str:
    """What the keyed widget shows: its inputs' values and its text (a select box's choice)."""
    return (
        page.locator(f".st-key-{key}")
        .evaluate(
            "e => [...e.querySelectorAll('input')].map(i => i.value).join(' ') + ' '"
            " + e.textContent"
        )
        .strip()
    )

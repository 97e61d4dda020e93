"""Several browser users rating at once: the rating round trip as people see it.

    python -m mmrec.ui.load --data data/demo --checkpoints checkpoints/demo --users 8 --rounds 5

Starts the dashboard (``streamlit run`` on 127.0.0.1, a throw-away ratings database), opens
``users`` sessions in one headless Chromium (Debian's ``/usr/bin/chromium`` via Playwright),
onboards each, then runs ``rounds`` rounds in which every session clicks a star on its first card
at the same moment. A round trip is the time from the click until the rated card has left the
grid and the app is idle again (the refreshed grid is on screen). Prints and returns p50 / p95 /
max over all ratings, and writes ``reports/load.json`` when ``--out`` is given.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from mmrec.ui.browser import CARD, star

IDLE = '[data-testid="stApp"][data-test-script-state="notRunning"]'


async def _idle(page, timeout_ms: float = 120_000) -> None:
    await page.wait_for_selector(IDLE, timeout=timeout_ms)
    await page.wait_for_timeout(200)
    await page.wait_for_selector(IDLE, timeout=timeout_ms)


async def _card_ids(page) -> list[int]:
    ids = await page.eval_on_selector_all(CARD, "els => els.map(e => e.dataset.mmrecCard)")
    return [int(i) for i in ids if i]


async def _onboard(page, url: str, name: str) -> None:
    await page.goto(url)
    await _idle(page)
    if not await page.get_by_label("Your name").count():
        # a session that opened on an existing user (see the identity issue): pick "New user"
        await page.locator(".st-key-user_select input").click()
        await page.get_by_role("option").filter(has_text="New user").click()
        await _idle(page)
    await page.get_by_label("Your name").fill(name)
    for _ in range(2):
        await page.locator(".st-key-onb_genres input").click()
        await page.get_by_role("option").first.click()
        await page.keyboard.press("Escape")
    await page.get_by_role("button", name="Show my picks").click()
    await page.wait_for_selector(CARD, timeout=120_000)
    await _idle(page)


# Installs (in the page) a promise that resolves once the rated card has left the grid and the
# app is idle: a MutationObserver, so the measurement costs the browser nothing while it waits.
# Playwright's wait_for_selector polls the page on every animation frame instead; with 8 tabs
# waiting ~4 s each, that polling was CPU the harness took from the cores the app shares.
_WATCH = """(mid) => {
    const done = () => !document.querySelector(`[data-mmrec-card="${mid}"]`)
        && document.querySelector('[data-testid="stApp"][data-test-script-state="notRunning"]');
    window.__mmrecDone = new Promise(resolve => {
        const obs = new MutationObserver(() => {
            if (done()) { obs.disconnect(); resolve(true); }
        });
        obs.observe(document.body, {subtree: true, childList: true, attributes: true,
                                    attributeFilter: ["data-test-script-state", "class"]});
    });
}"""


async def _rate_first(page, stars: int) -> float:
    """Click ``stars`` on the first card; seconds until the refreshed grid is idle on screen."""
    mid = (await _card_ids(page))[0]
    await page.evaluate(_WATCH, mid)
    t0 = time.perf_counter()
    await page.locator(star(mid, stars)).click()
    await asyncio.wait_for(page.evaluate("() => window.__mmrecDone"), timeout=120)
    return time.perf_counter() - t0


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux /proc)."""
    import os

    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def browser_cpu_seconds() -> float:
    """CPU seconds of this process's Chromium processes (the Playwright driver's children)."""
    return _children_cpu_seconds(lambda name: "chrom" in name)


def harness_cpu_seconds(server_pid: int | None = None) -> float:
    """CPU seconds of the measuring harness: this Python process and the Playwright driver
    (node), i.e. what the test itself takes from the cores the app and its tabs share."""
    import psutil

    own = psutil.Process().cpu_times()
    return (
        own.user
        + own.system
        + _children_cpu_seconds(lambda name: "chrom" not in name, skip=server_pid)
    )


def _children_cpu_seconds(keep, skip: int | None = None) -> float:
    import psutil

    total = 0.0
    procs = psutil.Process().children(recursive=True)
    if skip is not None:  # the server and anything it started
        try:
            gone = {skip} | {c.pid for c in psutil.Process(skip).children(recursive=True)}
        except psutil.Error:
            gone = {skip}
        procs = [p for p in procs if p.pid not in gone]
    for proc in procs:
        try:
            if keep(proc.name().lower()):
                t = proc.cpu_times()
                total += t.user + t.system
        except psutil.Error:
            pass
    return total


async def _run(url: str, users: int, rounds: int, log, server_pid: int | None = None) -> dict:
    from playwright.async_api import async_playwright

    from mmrec.ui.browser import CHROMIUM, CHROMIUM_ARGS

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        pages = []
        for i in range(users):
            ctx = await browser.new_context(viewport={"width": 1400, "height": 1000})
            page = await ctx.new_page()
            page.set_default_timeout(120_000)
            await _onboard(page, url, f"load-{i}")
            pages.append(page)
        log(f"{users} sessions onboarded")
        times: list[float] = []
        errors = 0
        cpu0 = cpu_seconds(server_pid) if server_pid else 0.0
        browser0 = browser_cpu_seconds()
        wall0 = time.perf_counter()
        per_round = []
        for r in range(rounds):
            s0 = cpu_seconds(server_pid) if server_pid else float("nan")
            b0, h0 = browser_cpu_seconds(), harness_cpu_seconds(server_pid)
            got = await asyncio.gather(*(_rate_first(p, 5 - (r % 5)) for p in pages))
            s1 = cpu_seconds(server_pid) if server_pid else float("nan")
            b1, h1 = browser_cpu_seconds(), harness_cpu_seconds(server_pid)
            times.extend(got)
            for p in pages:
                errors += await p.locator('[data-testid="stException"]').count()
            per_round.append(
                {
                    "server_cpu_s": round(s1 - s0, 3),
                    "browser_cpu_s": round(b1 - b0, 3),
                    "harness_cpu_s": round(h1 - h0, 3),
                }
            )
            log(
                f"round {r + 1}: "
                + " ".join(f"{t:.2f}" for t in got)
                + f" s (CPU: server {s1 - s0:.2f} s, browser {b1 - b0:.2f} s,"
                f" harness {h1 - h0:.2f} s)"
            )
        cpu = cpu_seconds(server_pid) - cpu0 if server_pid else float("nan")
        browser_cpu = browser_cpu_seconds() - browser0
        wall = time.perf_counter() - wall0
        await browser.close()
    return {
        "users": users,
        "rounds": rounds,
        "ratings": len(times),
        "p50_s": round(statistics.median(times), 3),
        "p95_s": round(p95(times), 3),
        "max_s": round(max(times), 3),
        "exceptions_on_pages": errors,
        # the server's CPU time per rating: what the server costs, whatever else runs
        "server_cpu_s_per_rating": round(cpu / len(times), 3),
        "server_cpu_share": round(cpu / wall, 2),  # cores the server used during the rounds
        "browser_cpu_s_per_rating": round(browser_cpu / len(times), 3),  # Chromium, all tabs
        "load_average": [round(x, 1) for x in __import__("os").getloadavg()],
        "all_s": [round(t, 3) for t in times],
        "per_round_cpu": per_round,
    }


def measure(data_dir, ckpt_dir, users: int = 8, rounds: int = 5, log=print) -> dict:
    """Start a server on ``data_dir``/``ckpt_dir`` with a fresh ratings database and run the
    load; returns the statistics (seconds)."""
    from mmrec.ui.browser import AppServer

    with tempfile.TemporaryDirectory(prefix="mmrec-load-") as tmp:
        server = AppServer(data_dir, ckpt_dir, Path(tmp) / "ratings.sqlite3")
        server.start()
        try:
            result = asyncio.run(_run(server.url, users, rounds, log, server.proc.pid))
        finally:
            server.stop()
    from mmrec.provenance import git_commit, machine_info

    result.update(data_dir=str(data_dir), machine=machine_info(), commit=git_commit())
    return result


def p95(times: list[float]) -> float:
    """The 95th percentile of the round trips (nearest rank)."""
    ordered = sorted(times)
    return ordered[min(len(ordered) - 1, int(round(0.95 * len(ordered))) - 1)]


def pooled(runs: list[dict]) -> dict:
    """Several runs as one result: p50 / p95 / max over all their ratings, CPU per rating
    averaged over the runs, and each run's own summary under ``runs``."""
    times = [t for r in runs for t in r["all_s"]]
    keys = ("p50_s", "p95_s", "max_s", "server_cpu_s_per_rating", "browser_cpu_s_per_rating")
    out = dict(runs[-1])
    out.update(
        ratings=len(times),
        p50_s=round(statistics.median(times), 3),
        p95_s=round(p95(times), 3),
        max_s=round(max(times), 3),
        exceptions_on_pages=sum(r["exceptions_on_pages"] for r in runs),
        server_cpu_s_per_rating=round(
            statistics.mean(r["server_cpu_s_per_rating"] for r in runs), 3
        ),
        browser_cpu_s_per_rating=round(
            statistics.mean(r["browser_cpu_s_per_rating"] for r in runs), 3
        ),
        all_s=[round(t, 3) for t in times],
        runs=[{k: r[k] for k in keys + ("load_average",)} for r in runs],
    )
    out.pop("per_round_cpu", None)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="data/demo")
    parser.add_argument("--checkpoints", default="checkpoints/demo")
    parser.add_argument("--users", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", help="write the result as JSON here (e.g. reports/load.json)")
    parser.add_argument(
        "--runs",
        type=int,
        default=1,
        help="repeat the whole measurement (a fresh server and browser each time); the "
        "figures are then over all runs' ratings, and each run's are kept under 'runs'",
    )
    args = parser.parse_args(argv)
    runs = [measure(args.data, args.checkpoints, args.users, args.rounds) for _ in range(args.runs)]
    result = runs[0] if len(runs) == 1 else pooled(runs)
    result["command"] = "python -m mmrec.ui.load " + " ".join(
        argv if argv is not None else sys.argv[1:]
    )
    print(
        f"{result['ratings']} ratings by {result['users']} users at once: p50 "
        f"{result['p50_s']:.2f} s, p95 {result['p95_s']:.2f} s, max {result['max_s']:.2f} s; "
        f"server CPU {result['server_cpu_s_per_rating']:.3f} s, browser CPU "
        f"{result['browser_cpu_s_per_rating']:.3f} s per rating; load average "
        f"{result['load_average']}"
    )
    if args.out:
        from mmrec.atomic import atomic_write_text

        atomic_write_text(Path(args.out), json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

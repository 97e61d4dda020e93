"""Where one browser tab's CPU goes when a user rates a film on For you (issue 19, Load).

    python -m mmrec.ui.tabprofile --data data/demo --checkpoints checkpoints/demo --ratings 8

Starts the dashboard (a throw-away ratings database), onboards one user in headless Chromium,
then records V8's sampling profiler (Chrome DevTools Protocol ``Profiler``) over ``ratings``
ratings of the first card, each followed by a second of quiet. Prints, per rating, the sampled
milliseconds by script bundle (``react-dom``, ``emotion-styled`` CSS-in-JS, Streamlit's
``index``, the Markdown renderer, ...) and by native activity (``(program)``: style, layout and
other work outside JavaScript; ``(garbage collector)``), so a change to the page can be judged
by what it saves in the browser, not only by the server's time. Profiling adds overhead: compare
runs of this command with each other, not with ``python -m mmrec.ui.load``.
"""

from __future__ import annotations

import argparse
import collections
import tempfile
from pathlib import Path


def profile(data_dir, ckpt_dir, ratings: int = 8, interval_us: int = 200) -> dict:
    """``{"bundles": {name: ms per rating}, "top": [(function, bundle, ms per rating)]}``."""
    from playwright.sync_api import sync_playwright

    from mmrec.ui import browser as B

    with B.AppServer(data_dir, ckpt_dir, Path(tempfile.mkdtemp()) / "r.sqlite3") as server:
        with sync_playwright() as pw:
            browser = B.launch(pw)
            ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
            page = ctx.new_page()
            page.set_default_timeout(120_000)
            page.goto(server.url)
            B.wait_idle(page)
            B.onboard(page, "profile", genres=2)
            page.wait_for_timeout(1500)
            cdp = ctx.new_cdp_session(page)
            cdp.send("Profiler.enable")
            cdp.send("Profiler.setSamplingInterval", {"interval": interval_us})
            cdp.send("Profiler.start")
            for i in range(ratings):
                mid = B.card_ids(page)[0]
                B.rate_card(page, mid, 5 - i % 5)
                page.wait_for_timeout(1000)
            prof = cdp.send("Profiler.stop")["profile"]
            browser.close()
    return summarise(prof, ratings)


def summarise(prof: dict, ratings: int) -> dict:
    """Self time of a CDP ``Profiler`` profile by bundle and by function, ms per rating."""
    nodes = {nd["id"]: nd for nd in prof["nodes"]}
    spent: collections.Counter = collections.Counter()
    for sample, delta in zip(prof["samples"], prof["timeDeltas"]):
        spent[sample] += delta
    bundles: collections.Counter = collections.Counter()
    funcs: collections.Counter = collections.Counter()
    for nid, us in spent.items():
        frame = nodes[nid]["callFrame"]
        bundle = frame["url"].rsplit("/", 1)[-1].split(".")[0] or frame["functionName"]
        bundles[bundle] += us
        funcs[(frame["functionName"] or "(anonymous)", bundle)] += us
    bundles.pop("(idle)", None)
    per = 1000.0 * ratings
    return {
        "ratings": ratings,
        "bundles": {k: round(v / per, 1) for k, v in bundles.most_common()},
        "top": [(f, b, round(v / per, 1)) for (f, b), v in funcs.most_common(25) if f != "(idle)"],
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default="data/demo")
    ap.add_argument("--checkpoints", default="checkpoints/demo")
    ap.add_argument("--ratings", type=int, default=8)
    args = ap.parse_args(argv)
    res = profile(args.data, args.checkpoints, args.ratings)
    total = sum(res["bundles"].values())
    print(f"sampled browser main-thread time per rating: {total:.0f} ms (idle excluded)")
    for name, ms in res["bundles"].items():
        if ms >= 1.0:
            print(f"  {ms:7.1f} ms  {name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

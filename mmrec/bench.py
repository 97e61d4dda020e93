"""``python -m mmrec bench``: speed on this machine, with warm-up, repeats, medians and p95.

Measures, on the built catalog in ``cfg.paths`` (the demo by default):
- feature extraction throughput per modality (``mmrec.features.bench``);
- ``recommend`` latency through the real service at catalog sizes 1k, 5k, 20k, 100k (above the
  demo's size the catalog is synthetic: branch outputs resampled from the real ones with
  noise, run through the real fusion model and policy), and the bare scoring pass compared
  with the memory-bandwidth floor for reading the item matrix once (bandwidth measured in the
  same run);
- ``rate()`` round trip and a slider change (new weights -> refreshed list) at the demo size;
- explanation latency, cold and cached;
- app cold start to first rendered page, and the app process's peak RSS (needs Chromium).

Writes ``reports/bench.json``, ``reports/bench.md`` and ``reports/bench-latency.png``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shlex
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from mmrec.atomic import atomic_write_text
from mmrec.config import Config
from mmrec.provenance import git_commit, machine_info
from mmrec.threads import use_serving_threads

TARGETS_MS = {"recommend_5k_p95": 10.0, "recommend_100k_p95": 60.0, "rate_5k_p95": 100.0}


def _stats(samples_s: list[float]) -> dict:
    a = np.asarray(samples_s) * 1000.0
    return {
        "n": len(a),
        "median_ms": float(np.median(a)),
        "p95_ms": float(np.percentile(a, 95)),
        "min_ms": float(a.min()),
    }


def _time(fn, repeats: int, warmup: int = 3) -> dict:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return _stats(out)


def memory_bandwidth(mb: int = 512, repeats: int = 7) -> dict:
    """Read bandwidth: sum over a large float32 array (one pass), best of ``repeats``."""
    a = np.ones(mb * 1024 * 1024 // 4, dtype=np.float32)
    a.sum()
    best = min(_time(a.sum, repeats, warmup=1)["min_ms"], 1e9)
    return {"array_mb": mb, "read_gb_s": (a.nbytes / 1e9) / (best / 1000.0)}


# ----------------------------------------------------------------------------- synthetic catalogs


def synthetic_parts(svc, n: int, seed: int = 0):
    """A catalog of ``n`` movies whose branch outputs are resampled from the real ones (+ noise),
    run through the real fusion model; the shared policy is reused (items enter by features)."""
    from mmrec.data.catalog import Catalog
    from mmrec.models.inference import item_embeddings
    from mmrec.rl.state import CatalogIndex

    rng = np.random.default_rng(seed)
    src = rng.integers(0, svc.catalog.n_movies, size=n)
    base = svc.catalog.movies.iloc[src]
    movies = pd.DataFrame(
        {
            "title": [f"Synthetic movie {i}" for i in range(n)],
            "year": base["year"].to_numpy(),
            "genres": base["genres"].to_numpy(),
            "overview": base["overview"].to_numpy(),
            "poster": [None] * n,
            "audio": [None] * n,
            "runtime": base["runtime"].to_numpy(),
            "has_text": base["has_text"].to_numpy(),
            "has_image": base["has_image"].to_numpy(),
            "has_audio": base["has_audio"].to_numpy(),
            "n_ratings": rng.poisson(5, n),
            "avg_rating": rng.uniform(1, 5, n).astype(np.float32),
        },
        index=pd.Index(np.arange(1, n + 1, dtype=np.int64), name="movieId"),
    )
    catalog = Catalog(
        data_dir=svc.catalog.data_dir,
        movies=movies,
        ratings=svc.catalog.ratings.iloc[:0],
        genres=list(svc.catalog.genres),
    )
    branches = {}
    for k, v in svc.branches.items():
        noise = rng.normal(0, 0.1 * (v.std() + 1e-6), size=(n, v.shape[1])).astype(v.dtype)
        branches[k] = v[src] + noise
    present = svc.present[src]
    emb = item_embeddings(svc.model, branches, present, (1.0, 1.0, 1.0))
    agent = _agent_for(svc.agent, emb, CatalogIndex.from_catalog(catalog))
    return (catalog, svc.model, branches, present, emb, agent, svc.policy_meta)


def _agent_for(agent, emb, index):
    import copy

    clone = copy.copy(agent)  # shares the trained networks; only the item side differs
    clone.set_items(emb, index)
    return clone


def bench_service(svc, repeats: int, label: str, log) -> dict:
    from mmrec.service import Weights

    rng = np.random.default_rng(0)
    uid = svc.create_user(f"bench-{label}-{time.time_ns()}")
    ids = svc.catalog.movie_ids
    for m in rng.choice(ids, size=min(10, len(ids) // 2), replace=False):
        svc.store.add_rating(uid, int(m), float(rng.integers(1, 11) / 2))
    rec = _time(lambda: svc.recommend(uid, k=12), repeats)
    # the bare scoring pass: state -> Q over all items (no store, no masking, no reasons)
    state = svc.user_state(uid)
    emb = svc.embeddings(Weights())
    personal = svc.store.load_policy_state(uid) or {}
    score = _time(lambda: svc.policy.q_values(state, emb, personal), repeats)
    _unit, vec, bias = svc.policy.item_reps(emb)
    log(
        f"  {label}: recommend p50 {rec['median_ms']:.2f} ms p95 {rec['p95_ms']:.2f} ms; scoring pass p50 {score['median_ms']:.2f} ms"
    )
    return {
        "n_items": int(len(ids)),
        "recommend": rec,
        "scoring_pass": score,
        "item_matrix_bytes": int(vec.nbytes + bias.nbytes),
    }


def bench_rate_and_sliders(svc, repeats: int, log) -> dict:
    from mmrec.service import Weights

    rng = np.random.default_rng(1)
    uid = svc.create_user(f"bench-rate-{time.time_ns()}")
    order = rng.permutation(svc.catalog.movie_ids)
    it = iter(order)
    rate = _time(
        lambda: svc.rate(uid, int(next(it)), float(rng.integers(1, 11) / 2)), repeats, warmup=2
    )

    def slider():
        w = Weights(*rng.uniform(0, 1, 3).round(2))  # new, uncached weights every time
        svc.recommend(uid, k=12, weights=w)

    sl = _time(slider, repeats, warmup=2)
    log(
        f"  rate(): p50 {rate['median_ms']:.1f} ms p95 {rate['p95_ms']:.1f} ms; slider change p95 {sl['p95_ms']:.1f} ms"
    )
    return {"rate": rate, "slider_change": sl}


def bench_explain(svc, log, steps: int | None = None) -> dict:
    try:
        from mmrec.service import Weights

        uid = svc.create_user(f"bench-explain-{time.time_ns()}")
        t0 = time.perf_counter()
        svc._get_explainer().warm()  # encoders load once per process (the app preloads them)
        warm_s = time.perf_counter() - t0
        picks = svc.recommend(uid, k=4)
        cold, cached, summary = [], [], []
        for p in picks:
            t0 = time.perf_counter()  # what the Why page shows at once: shares and reasons
            svc.explain_summary(uid, p.movie_id, Weights())
            summary.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            svc.explain(uid, p.movie_id, Weights(), steps=steps)
            cold.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            svc.explain(uid, p.movie_id, Weights(), steps=steps)
            cached.append(time.perf_counter() - t0)
        out = {
            "encoder_load_s": warm_s,
            "summary": _stats(summary),
            "first_s": cold[0] if cold else None,  # the first full explanation, encoders loaded
            "later": _stats(cold[1:]) if len(cold) > 1 else None,  # other films after it
            "cold": _stats(cold),
            "cached": _stats(cached),
        }
        log(
            f"  explain: cold p50 {out['cold']['median_ms']:.0f} ms, cached p50 {out['cached']['median_ms']:.1f} ms"
        )
        return out
    except Exception as exc:  # explanation module missing or failing: report, do not hide
        log(f"  explain: not measured ({type(exc).__name__}: {exc})")
        return {"error": f"{type(exc).__name__}: {exc}"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bench_app(cfg: Config, log, timeout: float = 120.0) -> dict:
    """Start the dashboard with ``python main.py`` (as a user does), time it to the first page
    and to the first picks of a new user in headless Chromium, and sample its peak RSS."""
    import threading

    import psutil

    from mmrec.ui import browser as B

    port = _free_port()
    tmp = tempfile.mkdtemp(prefix="mmrec-bench-app-")
    env = dict(
        os.environ,
        MMREC_DATA=str(cfg.paths.data_dir),
        MMREC_CHECKPOINTS=str(cfg.paths.checkpoints_dir),
        MMREC_DB=str(Path(tmp) / "bench.sqlite3"),  # never the user's ratings
    )
    launcher = Path(__file__).resolve().parent.parent / "main.py"
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, str(launcher), "--port", str(port), "--address", "127.0.0.1"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    peak = [0]
    stop = threading.Event()

    def sample():
        ps = psutil.Process(proc.pid)
        while not stop.is_set():
            try:
                rss = sum(p.memory_info().rss for p in [ps, *ps.children(recursive=True)])
                peak[0] = max(peak[0], rss)
            except psutil.Error:
                pass
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out: dict = {"launcher": "python main.py"}
    try:
        if not Path(B.CHROMIUM).exists():
            out["note"] = "chromium not installed: page times not measured"
        else:
            from playwright.sync_api import sync_playwright

            with sync_playwright() as pw:
                browser = B.launch(pw)
                page = browser.new_page()
                while time.perf_counter() - t0 < timeout:
                    try:
                        page.goto(f"http://127.0.0.1:{port}/", timeout=5000)
                        break
                    except Exception:  # server not listening yet
                        time.sleep(0.1)
                # the onboarding form lists the catalog's genres: the service has loaded
                page.get_by_label("Your name").wait_for(timeout=timeout * 1000)
                B.wait_idle(page, timeout)
                out["first_page_s"] = time.perf_counter() - t0
                t1 = time.perf_counter()
                B.onboard(page, "bench", timeout=timeout)
                out["first_picks_after_onboarding_s"] = time.perf_counter() - t1
                out["first_picks_from_start_s"] = time.perf_counter() - t0
                browser.close()
    finally:
        stop.set()
        sampler.join(2)
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
    out["peak_rss_mb"] = peak[0] / 2**20
    try:
        from mmrec.ui.timing import measure

        out["server_time"] = measure(
            str(cfg.paths.data_dir), str(cfg.paths.checkpoints_dir), repeats=10
        )
    except Exception as exc:
        out["server_time"] = {"error": f"{type(exc).__name__}: {exc}"}
    log(
        f"  app: first page {out.get('first_page_s', float('nan')):.1f} s, first picks "
        f"{out.get('first_picks_from_start_s', float('nan')):.1f} s, peak RSS {out['peak_rss_mb']:.0f} MB; "
        f"server time {out['server_time']}"
    )
    return out


def latency_chart(
    sizes: list[int], p95: list[float], med: list[float], floor: list[float], path: Path
) -> None:
    """A small PNG line chart (log-x) drawn with PIL: no plotting dependency needed."""
    from PIL import Image, ImageDraw, ImageFont

    w, h, pad = 720, 420, 60
    img = Image.new("RGB", (w, h), "white")
    d = ImageDraw.Draw(img)
    font = ImageFont.load_default(size=13)
    ymax = max(p95) * 1.15
    xs = np.log10(sizes)
    x0, x1 = xs.min() - 0.1, xs.max() + 0.1

    def pt(x, y):
        return (pad + (x - x0) / (x1 - x0) * (w - 2 * pad), h - pad - y / ymax * (h - 2 * pad))

    d.line([pt(x0, 0), pt(x1, 0)], fill="black")
    d.line([pt(x0, 0), pt(x0, ymax)], fill="black")
    for frac in (0.25, 0.5, 0.75, 1.0):
        y = ymax * frac / 1.15
        d.line([pt(x0, y), pt(x1, y)], fill="#dddddd")
        d.text((5, pt(x0, y)[1] - 7), f"{y:.1f}", fill="black", font=font)
    for s, x in zip(sizes, xs):
        d.text((pt(x, 0)[0] - 15, h - pad + 8), f"{s // 1000}k", fill="black", font=font)
    for series, color, _name in (
        (p95, "#d62728", "recommend p95"),
        (med, "#1f77b4", "recommend median"),
        (floor, "#2ca02c", "bandwidth floor (scoring)"),
    ):
        pts = [pt(x, y) for x, y in zip(xs, series)]
        d.line(pts, fill=color, width=3)
        for p in pts:
            d.ellipse([p[0] - 4, p[1] - 4, p[0] + 4, p[1] + 4], fill=color)
    for i, (color, name) in enumerate(
        (
            ("#d62728", "recommend p95 (ms)"),
            ("#1f77b4", "recommend median (ms)"),
            ("#2ca02c", "memory-bandwidth floor, scoring pass (ms)"),
        )
    ):
        d.rectangle([pad + 10, 12 + 18 * i, pad + 22, 24 + 18 * i], fill=color)
        d.text((pad + 28, 10 + 18 * i), name, fill="black", font=font)
    d.text((w // 2 - 40, h - 25), "catalog size (log scale)", fill="black", font=font)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)


def run_bench(
    cfg: Config, out: Path = Path("reports/bench.json"), quick: bool = False, sizes=None, log=print
) -> dict:
    from mmrec.pipeline import build
    from mmrec.service import Recommender
    from mmrec.store import RatingsStore

    sizes = sizes or ([500, 2_000] if quick else [1_000, 5_000, 20_000, 100_000])
    repeats = 10 if quick else 50
    log(f"bench on {machine_info()}")
    build(cfg, log=log)
    result: dict = {
        "command": shlex.join(["python", "-m", "mmrec", *sys.argv[1:]]),
        "commit": git_commit(),
        "machine": machine_info(),
        "quick": quick,
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    result["memory_bandwidth"] = memory_bandwidth(64 if quick else 512)
    log(f"  memory read bandwidth {result['memory_bandwidth']['read_gb_s']:.1f} GB/s")

    with tempfile.TemporaryDirectory() as tmp:
        store = RatingsStore(Path(tmp) / "bench.sqlite3")  # never touches the user's ratings
        # from here on this process serves like the dashboard: its thread policy (mmrec.threads)
        use_serving_threads()
        svc = Recommender(cfg, store=store)
        try:
            from mmrec.features.bench import bench_features

            result["features"] = bench_features(svc.catalog, cfg.features, n=20 if quick else 200)
            log(f"  features: {result['features']}")
        except Exception as exc:
            result["features"] = {"error": f"{type(exc).__name__}: {exc}"}
        result["demo"] = bench_service(svc, repeats, f"{svc.catalog.n_movies} (built catalog)", log)
        result.update(bench_rate_and_sliders(svc, repeats if not quick else 5, log))
        result["explain"] = bench_explain(svc, log)
        scaling = []
        for n in sizes:
            parts = synthetic_parts(svc, n)
            syn = Recommender(cfg, parts=parts, store=RatingsStore(Path(tmp) / f"syn{n}.sqlite3"))
            r = bench_service(syn, repeats, f"{n} synthetic", log)
            floor_ms = (
                r["item_matrix_bytes"] / (result["memory_bandwidth"]["read_gb_s"] * 1e9) * 1000
            )
            r["bandwidth_floor_ms"] = floor_ms
            scaling.append(r)
        result["scaling"] = scaling
        if not quick:
            result["rate_5k"] = None
            five = [r for r in scaling if r["n_items"] == 5_000]
            if five:
                syn = Recommender(
                    cfg,
                    parts=synthetic_parts(svc, 5_000),
                    store=RatingsStore(Path(tmp) / "rate5k.sqlite3"),
                )
                result["rate_5k"] = bench_rate_and_sliders(syn, repeats, log)
    if not quick:
        result["app"] = bench_app(cfg, log)
    out = Path(out)
    atomic_write_text(out, json.dumps(result, indent=2, default=float))
    sc = result["scaling"]
    latency_chart(
        [r["n_items"] for r in sc],
        [r["recommend"]["p95_ms"] for r in sc],
        [r["recommend"]["median_ms"] for r in sc],
        [r["bandwidth_floor_ms"] for r in sc],
        out.with_name(out.stem + "-latency.png"),
    )
    atomic_write_text(out.with_suffix(".md"), bench_markdown(result))
    log(bench_markdown(result))
    return result


def bench_markdown(r: dict) -> str:
    m = r["machine"]
    lines = [
        f"Machine: {m['cpu']}, {m['cores']} cores, Python {m['python']} ({r['date']}; `python -m mmrec bench`"
        + (f", commit {r['commit']}" if r.get("commit") else "")
        + ").",
        f"Memory read bandwidth: {r['memory_bandwidth']['read_gb_s']:.1f} GB/s.",
        "",
        "| catalog size | recommend median (ms) | recommend p95 (ms) | scoring pass median (ms) | bandwidth floor (ms) |",
        "|---:|---:|---:|---:|---:|",
    ]
    for s in r["scaling"]:
        lines.append(
            f"| {s['n_items']:,} | {s['recommend']['median_ms']:.2f} | {s['recommend']['p95_ms']:.2f} | "
            f"{s['scoring_pass']['median_ms']:.2f} | {s['bandwidth_floor_ms']:.3f} |"
        )
    lines += ["", "| measurement | median | p95 |", "|---|---:|---:|"]
    lines.append(
        f"| recommend, built catalog ({r['demo']['n_items']:,}) | {r['demo']['recommend']['median_ms']:.2f} ms | {r['demo']['recommend']['p95_ms']:.2f} ms |"
    )
    lines.append(
        f"| rate() round trip, built catalog | {r['rate']['median_ms']:.1f} ms | {r['rate']['p95_ms']:.1f} ms |"
    )
    lines.append(
        f"| slider change (new weights -> list) | {r['slider_change']['median_ms']:.1f} ms | {r['slider_change']['p95_ms']:.1f} ms |"
    )
    if r.get("rate_5k"):
        lines.append(
            f"| rate() round trip, 5k synthetic | {r['rate_5k']['rate']['median_ms']:.1f} ms | {r['rate_5k']['rate']['p95_ms']:.1f} ms |"
        )
        lines.append(
            f"| slider change, 5k synthetic | {r['rate_5k']['slider_change']['median_ms']:.1f} ms | {r['rate_5k']['slider_change']['p95_ms']:.1f} ms |"
        )
    e = r.get("explain", {})
    if "summary" in e:
        lines.append(
            f"| explanation: shares and reasons (shown at once) | {e['summary']['median_ms']:.1f} ms | {e['summary']['p95_ms']:.1f} ms |"
        )
    if e.get("first_s") is not None:
        lines.append(
            f"| explanation: first full, encoders preloaded | {e['first_s'] * 1000:.0f} ms | – |"
        )
    if e.get("later"):
        lines.append(
            f"| explanation: later films (full) | {e['later']['median_ms']:.0f} ms | {e['later']['p95_ms']:.0f} ms |"
        )
    if "cold" in e:
        lines.append(
            f"| explanation, cold | {e['cold']['median_ms']:.0f} ms | {e['cold']['p95_ms']:.0f} ms |"
        )
        lines.append(
            f"| explanation, cached | {e['cached']['median_ms']:.2f} ms | {e['cached']['p95_ms']:.2f} ms |"
        )
    a = r.get("app")
    if a:
        lines += [
            "",
            f"App (`{a.get('launcher')}`): first page rendered {a.get('first_page_s', float('nan')):.1f} s "
            f"after start; a new user's first picks {a.get('first_picks_after_onboarding_s', float('nan')):.1f} s "
            f"after onboarding ({a.get('first_picks_from_start_s', float('nan')):.1f} s from start); "
            f"peak RSS of the app process {a.get('peak_rss_mb', 0):.0f} MB.",
        ]
        server = a.get("server_time") or {}
        rows = [(k, v) for k, v in server.items() if isinstance(v, dict) and "median_ms" in v]
        if rows:
            lines += [
                "",
                "Dashboard server time per interaction (AppTest: one full script run, ms):",
                "",
            ]
            lines += ["| interaction | median | p90 | max |", "|---|---:|---:|---:|"]
            lines += [
                f"| {k} | {v['median_ms']} | {v['p90_ms']} | {v['max_ms']} |" for k, v in rows
            ]
    f = r.get("features", {})
    if f and "error" not in f:
        mps = f.get("movies_per_s", {})
        lines += [
            "",
            f"Feature extraction ({f.get('n')} demo movies, cold cache, {f.get('precision')}; "
            f"audio {f.get('audio_kind')} {f.get('audio_precision', '')}): "
            + ", ".join(f"{k} {v:.0f}/s" for k, v in mps.items())
            + f"; all three modalities {f.get('all_three_movies_per_s', float('nan')):.1f} movies/s "
            f"({f.get('cold_s', float('nan')):.1f} s cold incl. encoder loading); unchanged rerun {f.get('warm_rerun_s', float('nan')):.2f} s.",
        ]
    return "\n".join(lines) + "\n"


__all__ = ["run_bench", "memory_bandwidth", "synthetic_parts", "dataclasses"]

"""``python -m mmrec bench --scale``: how far one machine goes, and what a cluster would need.

Three measurements, written to ``reports/scale.json`` and ``reports/scale.md`` (``--scale-parts``
measures some and keeps the others from the existing report):

1. **Feature throughput on Ray** with 1 and 2 encoder actors (a local Ray instance), cold
   cache, all three modalities, on a demo sample. Per modality: the wall time of its Ray run
   (actor start and encoder loading included) and the steady rate (items after the first batch
   came back / time from then to the last batch). The per-worker rate (1 actor) gives the
   arithmetic for a cluster: workers needed for 100,000 films in an hour.
2. **A growth curve of end-to-end builds**: demo catalogs of increasing size with real
   features (synopsis + poster for every film, a trailer for every ``trailer_every``-th), each
   built by the default pipeline (features, fusion, DQN policy) in a fresh process whose peak
   resident memory (process tree) is sampled; then the service loads it and answers
   ``recommend``; EASE and item-kNN (sparse, ``mmrec.rl.baselines``) are fitted on its
   ratings. Wall time, CPU seconds (user + sys of the process tree: on a shared machine far
   steadier than wall time) and peak RSS. A power law ``t = a * N^b`` fitted to the measured
   sizes projects 100,000 films.
3. **The collaborative baselines at 100,000 films** (``SYNTHETIC``: long-tailed synthetic
   ratings, the point being the memory and time of the fits): item-kNN and EASE capped at
   several input sizes, each fitted in a fresh process (fit wall / CPU s, peak RSS, recommend
   latency); optionally what the cap costs on a real catalog's ratings (``ease_cap_quality``).
"""

from __future__ import annotations

import json
import math
import os
import shlex
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from mmrec.config import Config

TARGET_FILMS = 100_000
TARGET_SECONDS = 3_600.0
PARTS = ("throughput", "growth", "baselines")


# ----------------------------------------------------------------------------- 1. Ray throughput


def ray_throughput(cfg: Config, data_dir: Path, workers: int, log=print) -> dict:
    """Cold-cache feature extraction of ``data_dir`` through Ray with ``workers`` actors."""
    import dataclasses

    from mmrec.cluster import ray_session
    from mmrec.data.catalog import load_catalog
    from mmrec.features.distributed import RayFeatureExtractor
    from mmrec.features.store import compute_features

    rcfg = dataclasses.replace(cfg.ray, address="local", workers=workers)
    catalog = load_catalog(data_dir, cfg.data)
    marks: dict[str, list[tuple[float, int]]] = {}

    def progress(done: int, total: int, stage: str) -> None:
        marks.setdefault(stage, []).append((time.perf_counter(), done))

    with tempfile.TemporaryDirectory(prefix="mmrec-scale-") as tmp, ray_session(rcfg, log):
        ex = RayFeatureExtractor(cfg.features, rcfg)
        t0 = time.perf_counter()
        compute_features(catalog, cfg.features, progress=progress, cache_dir=tmp, extractor=ex)
        wall = time.perf_counter() - t0
        nodes = {m: dict(c) for m, c in ex.node_items.items()}
        busy = ex.actor_busy
    out: dict = {"workers": workers, "movies": catalog.n_movies, "wall_s": round(wall, 2)}
    for m in ("text", "image", "audio"):
        pts = marks.get(m, [])
        actors = busy.get(m) or {}
        if not pts or not actors:
            continue
        rates = [n / s for n, s in actors.values() if s > 0]
        out[m] = {
            "items": int(pts[-1][1]),
            # wall time of this modality's Ray run: actor start + encoder loading included
            "run_s": round(pts[-1][0] - pts[0][0], 2),
            # each actor's items / its seconds inside the encoder: the per-worker rate
            "per_worker_items_per_s": round(float(np.mean(rates)), 2),
            # the pool's rate while every actor encodes (sum of the actors' rates)
            "pool_items_per_s": round(float(np.sum(rates)), 2),
            "actors": len(actors),
        }
    out["items_per_node"] = nodes
    return out


def cluster_arithmetic(per_worker: dict, trailer_share: float = 1.0) -> dict:
    """Seconds per film for one worker (text + poster + trailer share) -> workers for the
    target. Assumes the linear scaling the 2-worker run is compared against."""
    s_text = 1.0 / per_worker["text"]["per_worker_items_per_s"]
    s_image = 1.0 / per_worker["image"]["per_worker_items_per_s"]
    s_audio = 1.0 / per_worker["audio"]["per_worker_items_per_s"]
    per_film = s_text + s_image + trailer_share * s_audio
    need = TARGET_FILMS * per_film / TARGET_SECONDS
    return {
        "seconds_per_film_one_worker": round(per_film, 4),
        "films_per_hour_one_worker": round(TARGET_SECONDS / per_film),
        "workers_for_100k_in_an_hour": math.ceil(need),
        "exact": round(need, 2),
        "trailer_share": trailer_share,
    }


# ----------------------------------------------------------------------------- 2. growth curve

_ONE_BUILD = r"""
import json, resource, sys, time
from pathlib import Path
from mmrec.config import load_config
from mmrec.pipeline import build
cfg = load_config(sys.argv[1] or None, data_dir=sys.argv[2], checkpoints_dir=sys.argv[3])
cfg.paths.db_path = str(Path(sys.argv[3]) / "bench.sqlite3")
def cpu():  # user + sys seconds of this process and its reaped children (all threads)
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime
stages, cpu_stages, t0, c0 = {}, {}, time.perf_counter(), cpu()
def log(msg):
    stages[msg.split(" ...")[0][:60]] = round(time.perf_counter() - t0, 2)
    cpu_stages[msg.split(" ...")[0][:60]] = round(cpu() - c0, 2)
    print(msg, flush=True)
build(cfg, force=True, log=log)
out = {"build_s": round(time.perf_counter() - t0, 2), "build_cpu_s": round(cpu() - c0, 2),
       "stage_marks_s": stages, "stage_marks_cpu_s": cpu_stages}
from mmrec.service import Recommender
from mmrec.threads import use_serving_threads
use_serving_threads()
t1 = time.perf_counter()
svc = Recommender(cfg)
out["service_load_s"] = round(time.perf_counter() - t1, 2)
uid = svc.create_user("scale-bench")
svc.recommend(uid, k=12)
times = []
for _ in range(20):
    t = time.perf_counter(); svc.recommend(uid, k=12); times.append(time.perf_counter() - t)
out["recommend_ms_median"] = round(1000 * sorted(times)[10], 2)
from mmrec.rl.baselines import EASERanker, ItemKNNRanker
from mmrec.rl.state import CatalogIndex
idx = CatalogIndex.from_catalog(svc.catalog)
for name, fit in (("ease", EASERanker.fit), ("item_knn", ItemKNNRanker.fit)):
    t = time.perf_counter(); fit(svc.catalog.ratings, idx); out[name + "_fit_s"] = round(time.perf_counter() - t, 2)
print("RESULT " + json.dumps(out), flush=True)
"""


def _peak_rss_of(proc: subprocess.Popen, stop: threading.Event, peak: list) -> None:
    import psutil

    try:
        root = psutil.Process(proc.pid)
    except psutil.Error:
        return
    while not stop.is_set():
        try:
            total = root.memory_info().rss + sum(
                c.memory_info().rss for c in root.children(recursive=True)
            )
            peak[0] = max(peak[0], total)
        except psutil.Error:
            pass
        stop.wait(0.5)


def _children_cpu_s() -> float:
    import resource

    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def build_and_measure(config_path: str, data_dir: Path, ckpt: Path, log=print) -> dict:
    """The default build of ``data_dir`` in a fresh process (cold feature cache), then the
    service and the sparse baselines; wall times, CPU seconds (user + sys of the process tree:
    far less sensitive than wall time to other jobs on a shared machine) and the peak RSS of
    the process tree."""
    import shutil

    shutil.rmtree(Path(data_dir) / ".cache", ignore_errors=True)  # real, cold features
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    cmd = [sys.executable, "-c", _ONE_BUILD, config_path or "", str(data_dir), str(ckpt)]
    t0, c0 = time.perf_counter(), _children_cpu_s()
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )
    stop, peak = threading.Event(), [0]
    watcher = threading.Thread(target=_peak_rss_of, args=(proc, stop, peak), daemon=True)
    watcher.start()
    result, tail = None, []
    for line in proc.stdout:
        if line.startswith("RESULT "):
            result = json.loads(line[len("RESULT ") :])
        else:
            tail = (tail + [line.rstrip()])[-20:]
            log(f"    {line.rstrip()}")
    proc.wait()
    stop.set()
    watcher.join()
    if proc.returncode != 0 or result is None:
        raise RuntimeError(f"build of {data_dir} failed ({proc.returncode}):\n" + "\n".join(tail))
    result["wall_s"] = round(time.perf_counter() - t0, 2)
    # the child and everything it reaped; the bench runs one child at a time
    result["cpu_s"] = round(_children_cpu_s() - c0, 2)
    result["peak_rss_mb"] = round(peak[0] / 2**20)
    return result


def power_law(sizes: list[int], values: list[float]) -> tuple[float, float]:
    """Least-squares fit of ``log v = log a + b log n`` -> ``(a, b)``."""
    b, log_a = np.polyfit(np.log(sizes), np.log(values), 1)
    return float(np.exp(log_a)), float(b)


# ----------------------------------------------------------------------------- 3. baselines at 100k

# The synthetic ratings of the baselines part (the point is memory and time of the fits, not
# their quality): film popularity is Zipf-Mandelbrot, p(rank r) ~ (r + zipf_q)^-zipf_a (long
# tailed: the top film draws ~0.6% of the ratings, the last ~1e-6), each user's number of draws
# is log-normal (median ``median_ratings``, log-sd ``sigma``, clipped to [5, 5000]); films are
# drawn independently with replacement and a repeated (user, film) pair counts once.
SYNTHETIC = dict(films=100_000, users=100_000, median_ratings=50, sigma=1.0, zipf_a=1.0,
                 zipf_q=20.0, seed=0)  # fmt: skip


def synthetic_ratings(films: int, users: int, median_ratings: float, sigma: float,
                      zipf_a: float, zipf_q: float, seed: int):  # fmt: skip
    """A long-tailed ``userId, movieId, rating`` frame (see ``SYNTHETIC``); film ids 1..films."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    p = (np.arange(films) + zipf_q) ** -zipf_a
    p /= p.sum()
    counts = np.clip(rng.lognormal(np.log(median_ratings), sigma, users), 5, 5000).astype(np.int64)
    user = np.repeat(np.arange(users, dtype=np.int64) + 1, counts)
    film = np.searchsorted(np.cumsum(p), rng.random(len(user)), side="right").clip(0, films - 1)
    rating = rng.integers(1, 11, len(user)).astype(np.float32) / 2.0  # 0.5..5 stars
    df = pd.DataFrame({"userId": user, "movieId": film + 1, "rating": rating})
    return df.drop_duplicates(["userId", "movieId"], ignore_index=True)


def synthetic_index(films: int, ratings):
    from mmrec.rl.state import CatalogIndex

    index = CatalogIndex(
        movie_ids=np.arange(films) + 1,
        genres=["Drama"],
        genre_matrix=np.ones((films, 1), np.float32),
        runtime=np.full(films, 100.0, np.float32),
        popularity=np.zeros(films, np.float32),
    )
    index.set_ratings(ratings)
    return index


_ONE_BASELINE = r"""
import json, resource, sys, time
import numpy as np
from mmrec.eval.metrics import top_k
from mmrec.rl.baselines import EASERanker, ItemKNNRanker
from mmrec.rl.state import UserState
from mmrec.scale import synthetic_index, synthetic_ratings
spec = json.loads(sys.argv[1])
def cpu():
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime
def rss_mb(kind):
    if kind == "peak":  # the kernel's high-water mark of this process (KiB on Linux)
        return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    with open("/proc/self/statm") as fh:
        import os
        return round(int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20)
t = time.perf_counter()
ratings = synthetic_ratings(**spec["generator"])
index = synthetic_index(spec["generator"]["films"], ratings)
out = {"generate_s": round(time.perf_counter() - t, 2), "ratings": len(ratings),
       "rated_films": int((index.popularity > 0).sum()), "rss_before_fit_mb": rss_mb("now"),
       "peak_before_fit_mb": rss_mb("peak")}
t, c = time.perf_counter(), cpu()
if spec["model"] == "ease":
    ranker = EASERanker.fit(ratings, index, spec["lambda"], spec["max_items"])
    out.update(head_films=len(ranker.items), tail_films=len(ranker.tail_items),
               B_mb=round(ranker.B.nbytes / 2**20),
               tail_raters_nnz=0 if ranker.tail_raters is None else int(ranker.tail_raters.nnz))
else:
    ranker = ItemKNNRanker.fit(ratings, index, spec["k"])
    out.update(sim_nnz=int(ranker.sim.nnz))
out.update(fit_s=round(time.perf_counter() - t, 2), fit_cpu_s=round(cpu() - c, 2),
           peak_rss_mb=rss_mb("peak"), rss_after_fit_mb=rss_mb("now"))
# recommend: score every film for a user's history, top 12 unseen; 50 random users
rng = np.random.default_rng(1)
by_user = ratings.groupby("userId")["movieId"]
users = rng.choice(ratings["userId"].unique(), 50, replace=False)
allidx, times = np.arange(len(index)), []
for u in users:
    hist = [(int(m), 4.0) for m in by_user.get_group(u)]
    t = time.perf_counter()
    scores = ranker.score(UserState(int(u), hist, []), allidx)
    top_k(scores, 12, exclude=index.positions_lenient([m for m, _ in hist]))
    times.append(time.perf_counter() - t)
out["recommend_ms_median"] = round(1000 * float(np.median(times)), 2)
out["recommend_ms_p95"] = round(1000 * float(np.quantile(times, 0.95)), 2)
print("RESULT " + json.dumps(out), flush=True)
"""


def baseline_fit(spec: dict, log=print) -> dict:
    """One baseline fitted on the synthetic ratings in a fresh process (its own peak RSS)."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    cmd = [sys.executable, "-c", _ONE_BASELINE, json.dumps(spec)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    lines = (proc.stdout + proc.stderr).splitlines()
    result = next((json.loads(x[7:]) for x in lines if x.startswith("RESULT ")), None)
    if proc.returncode != 0 or result is None:
        raise RuntimeError(
            f"baseline fit {spec} failed ({proc.returncode}):\n" + "\n".join(lines[-20:])
        )
    result["process_wall_s"] = round(time.perf_counter() - t0, 2)
    return result


def ease_cap_quality(cfg: Config, data_dir: Path, caps: list, lam: float, seed: int = 0,
                     k: int = 10, log=print) -> dict:  # fmt: skip
    """What the cap costs on real ratings: EASE uncapped against capped at ``caps`` on one
    random 80/20 split per user (protocol A of ``evaluate ranking``, every held-out rating
    relevant), NDCG@k and Recall@k with the paired per-user difference to uncapped EASE."""
    from mmrec.data.catalog import load_catalog
    from mmrec.eval.ranking import histories, paired_margin, positives_of, rank_users, split_random
    from mmrec.rl.baselines import EASERanker
    from mmrec.rl.state import CatalogIndex

    catalog = load_catalog(data_dir, cfg.data)
    train, test = split_random(catalog.ratings, cfg.policy_eval.ranking_test_fraction, seed)
    index = CatalogIndex.from_catalog(catalog, ratings=train)
    hist, pos = histories(train), positives_of(test, None)
    rows, full = [], None
    for cap in [None, *caps]:
        t = time.perf_counter()
        ease = EASERanker.fit(train, index, lam, cap)
        fit_s = time.perf_counter() - t
        run = rank_users(ease, index, hist, pos, k)
        row = {"cap": cap, "head_films": len(ease.items), "tail_films": len(ease.tail_items),
               "fit_s": round(fit_s, 2), "users": len(run["users"]),
               f"ndcg@{k}": round(float(run["ndcg"].mean()), 4),
               f"recall@{k}": round(float(run["recall"].mean()), 4)}  # fmt: skip
        if full is None:
            full = run
        else:
            m = paired_margin([run], [full], k)
            row["vs_uncapped"] = m
        log(f"  EASE cap {cap}: {json.dumps(row)}")
        rows.append(row)
    return {"data": Path(data_dir).name, "films": catalog.n_movies, "train_ratings": len(train),
            "rated_films": int((index.popularity > 0).sum()), "lambda": lam, "seed": seed, "k": k,
            "split": "random 80/20 per user, every held-out rating relevant", "rows": rows}  # fmt: skip


def _baselines(cfg, report, out, gen, caps, quality_data, log) -> None:
    from mmrec.config import EASE_MAX_ITEMS

    lam, k = cfg.policy_eval.ease_lambda, cfg.policy_eval.knn_neighbours
    section: dict = {"generator": gen, "lambda": lam, "knn_k": k, "runs": []}
    report["baselines"] = section
    mem = _machine_memory_gb()
    for model, cap in [("item_knn", None)] + [("ease", c) for c in caps]:
        spec = {"model": model, "generator": gen, "lambda": lam, "k": k, "max_items": cap}
        log(f"baselines: {model}{'' if cap is None else f' cap {cap:,}'} on {gen['films']:,} "
            "synthetic films (fresh process) ...")  # fmt: skip
        row = {"model": model, "cap": cap, **baseline_fit(spec, log)}
        log(f"  {json.dumps(row)}")
        section["runs"].append(row)
        _write(report, out)
    rated = max((r["rated_films"] for r in section["runs"]), default=0)
    section["uncapped_ease_gb"] = round(4 * rated**2 / 1e9, 1)  # the one dense M x M float32
    section["machine_memory_gb"] = mem
    section["default_cap"] = EASE_MAX_ITEMS
    if quality_data:
        log(f"EASE cap quality on {quality_data} ...")
        section["cap_quality"] = ease_cap_quality(
            cfg, Path(quality_data), [5000, 2000, 1000], cfg.hybrid.ease_lambda, log=log
        )
    report["baselines_measured"] = time.strftime("%Y-%m-%d %H:%M:%S")
    report["baselines_load_average"] = os.getloadavg()[0]


def _machine_memory_gb() -> float:
    import psutil

    return round(psutil.virtual_memory().total / 2**30, 1)


# ----------------------------------------------------------------------------- the command


def run_scale_bench(
    cfg: Config,
    out: Path,
    sizes: list[int],
    sample: int = 240,
    workers: tuple[int, ...] = (1, 2),
    trailer_every: int = 20,
    users: int = 1000,
    work_dir: Path | None = None,
    config_path: str | None = None,
    parts: tuple[str, ...] = ("throughput", "growth"),
    ease_caps: tuple[int, ...] = (5_000, 10_000, 20_000),
    quality_data: Path | None = None,
    synthetic: dict | None = None,
    append_growth: bool = False,
    log=print,
) -> dict:
    from mmrec.provenance import git_commit, machine_info

    work = Path(work_dir or tempfile.mkdtemp(prefix="mmrec-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    report: dict = {}
    if set(parts) != set(PARTS) and Path(out).exists():
        report = json.loads(Path(out).read_text())  # keep the part not measured this time
        if report.get("growth") and not report.get("growth_measured"):
            report["growth_measured"] = report.get("finished") or report.get("started")
            report["growth_load_average"] = None
    command = shlex.join(["python", "-m", "mmrec", *sys.argv[1:]])
    report.update(
        machine=machine_info(),
        commit=git_commit(),
        command=command,
        started=time.strftime("%Y-%m-%d %H:%M:%S"),
    )
    # each part keeps the command and commit that measured it (parts are often run apart)
    runs = report.setdefault("part_runs", {})
    for part in parts:
        new = {"command": command, "commit": report["commit"]}
        before = runs.get(part) or []
        before = before if isinstance(before, list) else [before]
        # appended sizes come from another command: keep every command of the curve
        runs[part] = [*before, new] if (part == "growth" and append_growth) else [new]
    report["load_average_at_start"] = os.getloadavg()[0]
    if "throughput" in parts:
        _throughput(cfg, report, work, sample, workers, trailer_every, log)
        report["throughput_measured"] = time.strftime("%Y-%m-%d %H:%M:%S")
        report["throughput_load_average"] = os.getloadavg()[0]
        _write(report, out)
    if "growth" in parts:
        kept = []
        if append_growth:  # the sizes measured before stay; a size measured again is replaced
            kept = [row for row in report.get("growth") or [] if row["films"] not in sizes]
        _growth(cfg, report, work, out, sizes, users, trailer_every, config_path, log, kept)
        report["growth_measured"] = time.strftime("%Y-%m-%d %H:%M:%S")
        report["growth_load_average"] = os.getloadavg()[0]
    if "baselines" in parts:
        gen = {**SYNTHETIC, **(synthetic or {})}
        _baselines(cfg, report, out, gen, list(ease_caps), quality_data, log)
    report["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
    _write(report, out)
    return report


def _throughput(cfg, report, work, sample, workers, trailer_every, log) -> None:
    from mmrec.data.demo import generate_demo

    # 1. throughput on Ray: a sample with every modality
    sample_dir = work / f"sample{sample}"
    if not (sample_dir / "movies.csv").exists():
        import dataclasses

        generate_demo(sample_dir, dataclasses.replace(cfg.demo, movies=sample, users=100))
    runs = []
    for w in workers:
        log(f"feature throughput on Ray, {w} worker(s), {sample} movies, cold cache ...")
        runs.append(ray_throughput(cfg, sample_dir, w, log))
        log(f"  {json.dumps(runs[-1])}")
    report["ray_throughput"] = runs
    one = next((r for r in runs if r["workers"] == 1), None)
    if one and all(m in one for m in ("text", "image", "audio")):
        report["cluster_all_trailers"] = cluster_arithmetic(one, 1.0)
        report["cluster_sampled_trailers"] = cluster_arithmetic(one, 1.0 / trailer_every)
    two = next((r for r in runs if r["workers"] == 2), None)
    if one and two:
        report["speedup_2_workers"] = {
            m: {
                "pool_rate": round(two[m]["pool_items_per_s"] / one[m]["pool_items_per_s"], 2),
                "wall": round(one[m]["run_s"] / two[m]["run_s"], 2),
            }
            for m in ("text", "image", "audio")
            if m in one and m in two
        }


def _growth(cfg, report, work, out, sizes, users, trailer_every, config_path, log, kept=()):
    from mmrec.data.demo import generate_demo

    curve = list(kept)
    for n in sizes:
        data = work / f"demo{n}"
        if not (data / "movies.csv").exists():
            import dataclasses

            log(f"generating a {n}-film demo (trailer for every {trailer_every}th) ...")
            t0 = time.perf_counter()
            generate_demo(
                data,
                dataclasses.replace(cfg.demo, movies=n, users=users, trailer_every=trailer_every),
            )
            log(f"  generated in {time.perf_counter() - t0:.0f} s")
        log(f"building {n} films end to end (features cold, fusion, policy, service) ...")
        started, load0 = time.strftime("%Y-%m-%d %H:%M:%S"), os.getloadavg()[0]
        row = {"films": n, **build_and_measure(config_path, data, work / f"ckpt{n}", log)}
        row.update(started=started, load_average_start=load0, load_average_end=os.getloadavg()[0])
        curve = sorted([*curve, row], key=lambda r: r["films"])
        log(f"  {json.dumps(row)}")
        _write(report | {"growth": curve}, out)
    report["growth"] = curve


STAGES = (("setup", None), ("features", "features for"), ("fusion", "training the fusion"),
          ("policy", "training the DQN"))  # fmt: skip


def build_stages(row: dict, marks: str = "stage_marks_cpu_s", total: str = "build_cpu_s") -> dict:
    """Seconds per build stage from the marks (a mark = when the stage's log line came):
    setup (catalog load, fingerprints), features, fusion, policy (to the end of the build)."""
    got = row.get(marks) or {}
    if total not in row:
        return {}
    at = {}
    for name, prefix in STAGES[1:]:
        hit = [v for k, v in got.items() if k.startswith(prefix)]
        if not hit:
            return {}
        at[name] = hit[0]
    bounds = [0.0, at["features"], at["fusion"], at["policy"], float(row[total])]
    return {name: round(bounds[i + 1] - bounds[i], 2) for i, (name, _) in enumerate(STAGES)}


def project(curve: list[dict]) -> dict:
    """Power-law fit per measured quantity over the growth curve, evaluated at 100,000."""
    proj = {}
    ns = [r["films"] for r in curve]
    # EASE and item-kNN at 100,000 films are measured directly (the baselines part), not projected
    for key in ("build_s", "build_cpu_s", "peak_rss_mb"):
        vals = [r.get(key) for r in curve]
        if all(v and v > 0 for v in vals):
            a, b = power_law(ns, vals)
            proj[key] = {"a": a, "exponent": round(b, 3), "at_100k": round(a * TARGET_FILMS**b, 1)}
    stages = [build_stages(r) for r in curve]
    if all(stages):
        per = {}
        for name, _ in STAGES:
            vals = [st[name] for st in stages]
            if all(v > 0 for v in vals):
                a, b = power_law(ns, vals)
                per[name] = {"cpu_s": vals, "exponent": round(b, 3),
                             "at_100k": round(a * TARGET_FILMS**b, 1)}  # fmt: skip
        if len(per) == len(STAGES):
            proj["build_cpu_s_by_stage"] = per
            proj["build_cpu_s_sum_of_stages_at_100k"] = round(
                sum(v["at_100k"] for v in per.values()), 1
            )
    return proj


def _write(report: dict, out: Path) -> None:
    from mmrec.atomic import atomic_write_text

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if len(report.get("growth") or []) >= 2:
        report["projection_100k"] = project(report["growth"])
    atomic_write_text(out, json.dumps(report, indent=2))
    atomic_write_text(out.with_suffix(".md"), render_markdown(report))


def _provenance(r: dict, part: str) -> list[str]:
    runs = (r.get("part_runs") or {}).get(part)
    if not runs:
        return []
    lines = []
    for run in runs if isinstance(runs, list) else [runs]:
        commit = f" (commit {run['commit']})" if run.get("commit") else ""
        lines.append(f"Command: `{run['command']}`{commit}.")
    return [" ".join(lines), ""]


def render_markdown(r: dict) -> str:
    lines = [
        "# Scale figures (`python -m mmrec bench --scale`)",
        "",
        f"Machine: {r['machine'].get('cpu')}, {r['machine'].get('cores')} cores; started "
        f"{r.get('started')} (load average {r.get('load_average_at_start', 0):.1f} at start)"
        + (f"; commit {r['commit']}." if r.get("commit") else "."),
        "",
    ]
    runs = r.get("ray_throughput") or []
    if runs:
        lines += [
            "## Feature throughput on Ray (local instance, cold cache)",
            "",
            *_provenance(r, "throughput"),
            f"Measured {r.get('throughput_measured')} (load average "
            f"{r.get('throughput_load_average', 0):.1f} at the end). Each cell: per-worker rate "
            "(items / s inside the encoder) / pool rate (sum over the actors) / wall s of the "
            "modality's Ray run (actor start and encoder loading included).",
            "",
            "| workers | movies | wall s (all) | text | poster | trailer |",
            "|---:|---:|---:|---|---|---|",
        ]
        for run in runs:
            cells = [
                f"{run[m]['per_worker_items_per_s']} / {run[m]['pool_items_per_s']} / {run[m]['run_s']}"
                if m in run
                else "n/a"
                for m in ("text", "image", "audio")
            ]
            lines.append(
                f"| {run['workers']} | {run['movies']} | {run['wall_s']} | "
                + " | ".join(cells)
                + " |"
            )
        lines.append("")
        if r.get("speedup_2_workers"):
            sp = r["speedup_2_workers"]
            lines.append(
                "2 workers against 1 (pool rate; wall time of the run): "
                + "; ".join(f"{m} x{v['pool_rate']} (wall x{v['wall']})" for m, v in sp.items())
                + "."
            )
        for key, label in (
            ("cluster_all_trailers", "every film with a trailer"),
            ("cluster_sampled_trailers", "trailers for a sample"),
        ):
            c = r.get(key)
            if c:
                lines.append(
                    f"- {label} (trailer share {c['trailer_share']:.2f}): one worker needs "
                    f"{c['seconds_per_film_one_worker']} s per film = "
                    f"{c['films_per_hour_one_worker']:,} films/hour, so 100,000 films in an hour "
                    f"need 100,000 x {c['seconds_per_film_one_worker']} / 3,600 = {c['exact']} "
                    f"-> **{c['workers_for_100k_in_an_hour']} workers** like this one."
                )
        lines.append("")
    curve = r.get("growth") or []
    if curve:
        lines += [
            "## End-to-end builds (default pipeline, cold features)",
            "",
            *_provenance(r, "growth"),
            f"Measured {r.get('growth_measured')} (load average "
            f"{r.get('growth_load_average') or r.get('load_average_at_start', 0):.1f} at the end). "
            "Each size is a fresh demo catalog (synopsis + poster for every film, a trailer for "
            "every 20th) built by the default pipeline in a fresh process: features from a cold "
            "cache, fusion, DQN policy; then the service loads it and answers `recommend`, and "
            "EASE and item-kNN are fitted on its ratings. Build CPU s = user + sys seconds of the "
            "build (all threads and child processes): far less sensitive than wall time to the "
            "other jobs sharing the machine. Peak RSS: the whole process tree, sampled.",
            "",
            "| films | build wall s | build CPU s | peak RSS MB | service load s | recommend ms "
            "| EASE fit s | item-kNN fit s | started (load avg start / end) |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---|",
        ]
        for row in curve:
            load = (
                f"{row.get('started', '')[5:16]} ({row['load_average_start']:.1f} / "
                f"{row['load_average_end']:.1f})"
                if row.get("load_average_start") is not None
                else "n/a"
            )
            lines.append(
                f"| {row['films']:,} | {row['build_s']} | {row.get('build_cpu_s', 'n/a')} | "
                f"{row['peak_rss_mb']} | {row.get('service_load_s')} | "
                f"{row.get('recommend_ms_median')} | {row.get('ease_fit_s')} | "
                f"{row.get('item_knn_fit_s')} | {load} |"
            )
        lines.append("")
        proj = r.get("projection_100k") or {}
        if proj:
            ns_list = [row["films"] for row in curve]
            ns = ", ".join(f"{n:,}" for n in ns_list)
            lines += [
                f"Power law `value = a * films^b` fitted (least squares on logs) to the {len(curve)} "
                f"sizes ({ns}) and evaluated at 100,000 films, an extrapolation "
                f"{TARGET_FILMS / max(row['films'] for row in curve):.0f}x past the largest "
                "measured size:",
                "",
            ]
            labels = {
                "build_s": "build wall s",
                "build_cpu_s": "build CPU s",
                "peak_rss_mb": "peak RSS MB",
                "ease_fit_s": "EASE fit s",
                "item_knn_fit_s": "item-kNN fit s",
            }
            for key, pr in proj.items():
                if key not in labels:
                    continue
                extra = ""
                if key in ("build_s", "build_cpu_s"):
                    extra = f" = {pr['at_100k'] / 3600:.1f} h"
                lines.append(
                    f"- {labels.get(key, key)}: exponent b = {pr['exponent']}, "
                    f"projected at 100,000 films: {pr['at_100k']:,}{extra}"
                )
            lines.append("")
            per = proj.get("build_cpu_s_by_stage")
            if per:
                lines += [
                    "Build CPU seconds by stage (from the build's log marks), each stage with its "
                    "own power law (the stages need not grow alike); their sum is the "
                    "stage-wise projection of the build's CPU seconds:",
                    "",
                    "| stage | " + " | ".join(f"{n:,} films" for n in ns_list) + " | exponent b "
                    "| projected at 100,000 films |",
                    "|---|" + "---:|" * (len(ns_list) + 2),
                ]
                for name, v in per.items():
                    lines.append(
                        f"| {name} | "
                        + " | ".join(str(x) for x in v["cpu_s"])
                        + f" | {v['exponent']} | {v['at_100k']:,} |"
                    )
                tot = proj["build_cpu_s_sum_of_stages_at_100k"]
                lines += [
                    "| **sum** |"
                    + " |" * (len(ns_list) + 1)
                    + f" **{tot:,} CPU s = {tot / 3600:.1f} h** |",
                    "",
                ]
    base = r.get("baselines") or {}
    if base.get("runs"):
        g = base["generator"]
        lines += [
            f"## Collaborative baselines at {g['films']:,} films (synthetic ratings)",
            "",
            *_provenance(r, "baselines"),
            f"Measured {r.get('baselines_measured')} (load average "
            f"{r.get('baselines_load_average') or 0:.1f} at the end). Ratings: {g['users']:,} "
            f"users over {g['films']:,} films; film popularity Zipf-Mandelbrot, p(rank r) ~ "
            f"(r + {g['zipf_q']:g})^-{g['zipf_a']:g}; ratings per user log-normal (median "
            f"{g['median_ratings']}, log-sd {g['sigma']:g}, clipped to 5..5,000); seed {g['seed']}; "
            "films drawn independently (no taste structure: these runs measure memory and time, "
            "not quality). Each fit runs in a fresh single-threaded process. Peak RSS: the "
            "process's high-water mark over its life, generating the ratings included; the "
            "two columns after it say where the process stood when the fit began (its RSS then, "
            "and its high-water mark from generating the ratings): a peak equal to the latter "
            "means the fit itself stayed below it. Recommend: score every film for one user's "
            "history and take the top 12 unseen, median / p95 over 50 random users.",
            "",
            "| model | EASE inputs (cap) | tail films | fit s | fit CPU s | peak RSS MB "
            "| RSS at fit start MB | high-water before fit MB | recommend ms median / p95 |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for run in base["runs"]:
            name = "EASE" if run["model"] == "ease" else f"item-kNN (k {base.get('knn_k')})"
            head = f"{run['head_films']:,}" if run.get("head_films") is not None else "-"
            tail = f"{run['tail_films']:,}" if run.get("tail_films") is not None else "-"
            lines.append(
                f"| {name} | {head} | {tail} | {run['fit_s']} | {run['fit_cpu_s']} | "
                f"{run['peak_rss_mb']:,} | {run['rss_before_fit_mb']:,} | "
                f"{run['peak_before_fit_mb']:,} | "
                f"{run['recommend_ms_median']} / {run['recommend_ms_p95']} |"
            )
        run0 = base["runs"][0]
        lines += [
            "",
            f"{run0['ratings']:,} ratings; {run0['rated_films']:,} of the {g['films']:,} films "
            f"have one. Uncapped EASE would invert one dense {run0['rated_films']:,}^2 float32 "
            f"array: {base.get('uncapped_ease_gb')} GB, against {base.get('machine_memory_gb')} "
            f"GiB of memory on this machine, so it was not attempted. The default cap is "
            f"{base.get('default_cap', 0):,} films.",
            "",
        ]
    q = base.get("cap_quality")
    if q:
        k = q["k"]
        lines += [
            f"### What the cap costs: EASE capped vs uncapped on `{q['data']}`",
            "",
            f"{q['films']:,} films ({q['rated_films']:,} with a training rating), "
            f"{q['train_ratings']:,} training ratings; {q['split']} (seed {q['seed']}); "
            f"lambda {q['lambda']:g}. Difference: per-user NDCG@{k} of capped minus uncapped "
            "EASE, mean with its 95% CI.",
            "",
            f"| cap | EASE inputs | tail films | NDCG@{k} | Recall@{k} | NDCG@{k} vs uncapped | fit s |",
            "|---|---:|---:|---:|---:|---|---:|",
        ]
        for row in q["rows"]:
            vs = row.get("vs_uncapped")
            diff = (
                f"{vs['mean']:+.4f} ± {vs['ci95']:.4f} ({100 * vs['relative']:+.1f}%, {vs['verdict']})"
                if vs
                else "-"
            )
            cap = "none" if row["cap"] is None else f"{row['cap']:,}"
            lines.append(
                f"| {cap} | {row['head_films']:,} | {row['tail_films']:,} | {row[f'ndcg@{k}']} | "
                f"{row[f'recall@{k}']} | {diff} | {row['fit_s']} |"
            )
        lines.append("")
    return "\n".join(lines)

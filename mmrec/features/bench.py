"""Feature-extraction throughput: movies per second per modality, cold and warm cache.

``bench_features(catalog, cfg, n)`` encodes the first ``n`` movies of ``catalog`` into a
throw-away cache (so everything is computed), then runs again on that cache (the "nothing
changed" rerun). Encoder loading is timed apart from encoding, because it is paid once per
process, not per movie.

    python -m mmrec.features.bench --data data/demo --n 200 [--repeat 3] [--audio-kind logmel]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from dataclasses import replace
from types import SimpleNamespace

import numpy as np

from mmrec.config import FeatureConfig
from mmrec.features.audio import aisfx_precision
from mmrec.features.store import FeatureExtractor, compute_features


def _warm_up(ex: FeatureExtractor) -> dict[str, float]:
    """Load the encoders and run one tiny batch each (oneDNN builds its kernels on first use);
    returns seconds per encoder."""
    import torch

    took = {}
    t0 = time.perf_counter()
    ex.text_encoder.encode(["warm up"])
    took["text"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    enc = ex.image_encoder
    enc.encode_tensors(torch.zeros(2, 3, enc.cfg.image_size, enc.cfg.image_size))
    took["image"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    if ex.cfg.audio_kind == "aisfx":
        ex.aisfx_encoder.sequences(np.zeros((1, ex.aisfx_encoder.n_samples), np.float32))
    else:
        ex.audio_frontend.sequences(np.zeros((1, ex.audio_frontend.n_samples), np.float32))
    took["audio"] = time.perf_counter() - t0
    return took


def bench_features(catalog, cfg: FeatureConfig, n: int = 200) -> dict:
    """Throughput of ``compute_features`` on the first ``n`` movies of ``catalog``.

    Returns ``movies_per_s`` per modality (items that modality encoded / seconds of its
    stage), ``all_three_movies_per_s`` (n / seconds of the whole cold run, hashing and cache
    writes included), ``warm_rerun_s``, the CPU time spent, and the machine context (workers,
    load average: other processes slow every wall-clock number down).
    """
    import torch

    movies = catalog.movies.iloc[: int(n)]
    sub = SimpleNamespace(data_dir=catalog.data_dir, movies=movies)
    with tempfile.TemporaryDirectory(prefix="mmrec-featbench-") as tmp:
        run_cfg = replace(cfg, cache_dir=tmp)
        ex = FeatureExtractor(run_cfg)
        load_s = _warm_up(ex)
        ex.computed = {"text": 0, "image": 0, "audio": 0}
        spans: dict[str, list[float]] = {}

        def progress(done: int, total: int, stage: str) -> None:
            now = time.perf_counter()
            spans.setdefault(stage, [now, now])[1] = now

        load_before = os.getloadavg()[0]
        cpu0, t0 = time.process_time(), time.perf_counter()
        feats = compute_features(sub, run_cfg, progress=progress, extractor=ex)
        cold_s = time.perf_counter() - t0
        cpu_s = time.process_time() - cpu0

        t0 = time.perf_counter()
        compute_features(sub, run_cfg, progress=lambda d, t, s: None, extractor=ex)
        warm_s = time.perf_counter() - t0

    stage_s = {m: spans[m][1] - spans[m][0] for m in ("text", "image", "audio") if m in spans}
    per_s = {
        m: round(ex.computed[m] / stage_s[m], 2) if stage_s.get(m) else None
        for m in ("text", "image", "audio")
    }
    return {
        "n": int(len(movies)),
        "encoded": dict(ex.computed),
        "device": str(ex.device),
        "precision": ex.precision,
        "workers": ex.workers,
        "torch_threads_per_worker": int(cfg.torch_threads)
        or (1 if ex.workers > 1 else torch.get_num_threads()),
        "cores": os.cpu_count(),
        "audio_kind": cfg.audio_kind,
        "audio_precision": aisfx_precision(cfg, ex.device, ex.precision)
        if cfg.audio_kind == "aisfx"
        else "fp32",
        "encoder_load_s": {k: round(v, 2) for k, v in load_s.items()},
        "stage_s": {k: round(v, 2) for k, v in stage_s.items()},
        "movies_per_s": per_s,
        "all_three_movies_per_s": round(len(movies) / cold_s, 2) if cold_s else None,
        "cold_s": round(cold_s, 2),
        "cpu_s": round(cpu_s, 2),
        # CPU time is far less sensitive than wall time to other processes on the machine;
        # cpu_s / cores is what the cold run would take with the cores to itself
        "cpu_ms_per_movie": round(1000 * cpu_s / max(1, len(movies)), 1),
        "projected_movies_per_s_idle_cores": round(len(movies) / (cpu_s / (os.cpu_count() or 1)), 1)
        if cpu_s
        else None,
        "warm_rerun_s": round(warm_s, 3),
        "load_avg_1min_before": round(load_before, 2),
        "coverage": {
            "text": int(feats.has_text.sum()),
            "image": int(feats.has_image.sum()),
            "audio": int(feats.has_audio.sum()),
        },
    }


def main(argv=None) -> int:
    from mmrec.config import load_config
    from mmrec.data.catalog import load_catalog

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", help="catalog folder (default: MMREC_DATA / config)")
    ap.add_argument("--n", type=int, default=200, help="movies to encode")
    ap.add_argument("--repeat", type=int, default=1, help="cold runs (median reported)")
    ap.add_argument("--audio-kind", choices=["logmel", "aisfx"], help="override audio_kind")
    ap.add_argument("--precision", choices=["auto", "fp32", "bf16"], help="override precision")
    args = ap.parse_args(argv)
    cfg = load_config(data_dir=args.data)
    fcfg = cfg.features
    if args.audio_kind:
        fcfg = replace(fcfg, audio_kind=args.audio_kind)
    if args.precision:
        fcfg = replace(fcfg, precision=args.precision)
    catalog = load_catalog(cfg.paths.data_dir)
    runs = [bench_features(catalog, fcfg, args.n) for _ in range(max(1, args.repeat))]
    if len(runs) == 1:
        print(json.dumps(runs[0], indent=2))
        return 0
    rates = [r["all_three_movies_per_s"] for r in runs]
    summary = {
        "n": args.n,
        "repeat": len(runs),
        "all_three_movies_per_s": rates,
        "median_all_three_movies_per_s": float(np.median(rates)),
        "median_cold_s": float(np.median([r["cold_s"] for r in runs])),
        "median_cpu_ms_per_movie": float(np.median([r["cpu_ms_per_movie"] for r in runs])),
        "runs": runs,
    }
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

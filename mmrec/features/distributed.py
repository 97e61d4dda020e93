"""Feature extraction on Ray Data: the same encoders, spread over a pool of actors.

``RayFeatureExtractor`` is a ``FeatureExtractor`` whose three ``encode_*`` loops run as Ray Data
``map_batches`` over an actor pool instead of a local thread pool. Everything around them stays
in ``mmrec.features.store.compute_features``: content hashing, the cache lookup, writing the
same content-keyed cache, and turning a file that fails to decode into a missing modality with
a ``Problem`` naming the file. So a cache filled through Ray serves the single-process build and
the reverse.

Each actor loads its encoder once, in its constructor, and the pool waits for every actor to be
ready before handing out batches, so work spreads over the nodes instead of going to whichever
actor loaded first. On a cluster with GPUs every actor reserves ``gpus_per_worker`` and encodes
on CUDA (the cache version then records the CUDA precision, as a local GPU build would).

The actors read posters and clips by path: on a multi-machine cluster the catalog folder must
be at the same path on every node (a shared or synced file system), as for any Ray Data job
that reads local files.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from collections import Counter

import numpy as np

from mmrec.config import FeatureConfig, RayConfig
from mmrec.features.store import FeatureExtractor, _Reporter

# Items per Ray Data run. compute_features saves the cache after each run, so an interrupted
# build resumes from there; each run starts the actor pool afresh (one encoder load per actor).
RAY_SAVE_EVERY = 10_000
MAX_BLOCKS = 2_000  # input blocks per run: enough for balance and live progress


class EncoderActor:
    """One frozen encoder, loaded once; ``__call__`` encodes one batch of the Ray dataset.

    Batch in: ``row`` (B,) int64 positions, ``src`` (B,) synopses or file paths. Batch out:
    ``row``, ``value`` (B, *shape) float32, ``ok`` (B,) bool, ``problem`` (B,) str ("" when
    fine), ``node`` (B,) the Ray node that did the work.
    """

    def __init__(self, cfg: FeatureConfig, modality: str, device: str, threads: int):
        import torch

        from mmrec.cluster import node_of_this_worker

        torch.set_num_threads(max(1, threads))
        # one decode thread: the actor is the unit of parallelism, Ray runs one per CPU share
        self.extractor = FeatureExtractor(dataclasses.replace(cfg, decode_workers=1), device)
        self.modality = modality
        self.node = node_of_this_worker()
        self.actor = f"{self.node[:8]}-{os.getpid()}"
        ex = self.extractor
        if modality == "text":
            self.encode = ex.encode_texts
            _ = ex.text_encoder
        elif modality == "image":
            self.encode = ex.encode_images
            _ = ex.image_encoder.fast
        elif modality == "audio":
            self.encode = ex.encode_audio
            if cfg.audio_kind == "aisfx":
                _ = ex.aisfx_encoder.fast  # int8 calibration happens here, once per actor
            else:
                _ = ex.audio_frontend
        else:
            raise ValueError(f"unknown modality {modality!r}")

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        sources = [str(s) for s in batch["src"]]
        quiet = _Reporter(None)  # progress is reported by the driver as batches come back
        quiet.start(0, self.modality)
        t0 = time.perf_counter()
        values, ok, problems = self.encode(sources, quiet)
        busy = time.perf_counter() - t0
        why = dict(problems)
        return {
            "row": batch["row"],
            "value": np.asarray(values, dtype=np.float32),  # (B, *shape)
            "ok": np.asarray(ok, dtype=bool),
            "problem": np.array([why.get(s, "") for s in sources], dtype=object),
            "node": np.array([self.node] * len(sources), dtype=object),
            "actor": np.array([self.actor] * len(sources), dtype=object),
            # this batch's encode time, spread over its rows (sums to the actor's busy time)
            "busy_s": np.full(len(sources), busy / max(1, len(sources))),
        }


def cluster_device() -> str:
    """``cuda`` when the connected cluster offers GPUs, else ``cpu``."""
    import ray

    return "cuda" if ray.cluster_resources().get("GPU", 0) > 0 else "cpu"


class RayFeatureExtractor(FeatureExtractor):
    """``FeatureExtractor`` whose encoders run on Ray actors; needs a connected Ray session.

    ``node_items[modality][node_id]`` counts the items each Ray node encoded (cache misses
    only), so a caller can see that every node took part.
    """

    save_every = RAY_SAVE_EVERY

    def __init__(self, cfg: FeatureConfig, ray_cfg: RayConfig, device: str | None = None):
        super().__init__(cfg, device or cfg.device or cluster_device())
        self.ray_cfg = ray_cfg
        self.node_items: dict[str, Counter] = {m: Counter() for m in ("text", "image", "audio")}
        # per modality and actor: [items, seconds spent encoding them] (the per-worker rate)
        self.actor_busy: dict[str, dict[str, list]] = {m: {} for m in ("text", "image", "audio")}

    def _map(
        self, modality: str, sources: list[str], batch_size: int, report: _Reporter, order=None
    ):
        """Encode ``sources`` on the actor pool -> ((N, *shape), ok (N,), [(source, problem)])."""
        import ray.data
        from ray.data import ActorPoolStrategy, DataContext

        spec = {"text": self.text_spec, "image": self.image_spec, "audio": self.audio_spec}
        _, shape = spec[modality]()
        n = len(sources)
        values = np.zeros((n, *shape), np.float32)
        ok = np.zeros(n, bool)
        problems: list[tuple[str, str]] = []
        if n == 0:
            return values, ok, problems
        rc = self.ray_cfg
        batch_size = max(1, int(batch_size))
        order = np.arange(n) if order is None else np.asarray(order)
        workers = max(1, min(int(rc.workers), math.ceil(n / batch_size)))
        ctx = DataContext.get_current()
        # every actor loads its encoder before the first batch is handed out (see module doc)
        ctx.wait_for_min_actors_s = int(rc.start_timeout_s)
        items = [{"row": int(i), "src": sources[i]} for i in order]
        blocks = min(MAX_BLOCKS, math.ceil(n / batch_size))
        gpus = float(rc.gpus_per_worker) if str(self.device).startswith("cuda") else 0.0
        ds = ray.data.from_items(items, override_num_blocks=blocks).map_batches(
            EncoderActor,
            fn_constructor_kwargs={
                "cfg": self.cfg,
                "modality": modality,
                "device": self.device,
                "threads": max(1, math.floor(rc.cpus_per_worker)),
            },
            batch_size=batch_size,
            batch_format="numpy",
            compute=ActorPoolStrategy(size=workers),
            num_cpus=float(rc.cpus_per_worker),
            num_gpus=gpus,
        )
        for out in ds.iter_batches(batch_size=None, batch_format="numpy"):
            rows = np.asarray(out["row"], dtype=np.int64)
            values[rows] = out["value"]
            ok[rows] = out["ok"]
            for r, why in zip(rows.tolist(), out["problem"]):
                if why:
                    problems.append((sources[r], str(why)))
            for node, good in zip(out["node"], out["ok"]):
                self.node_items[modality][str(node)] += int(good)
            for actor, busy in zip(out["actor"], out["busy_s"]):
                acc = self.actor_busy[modality].setdefault(str(actor), [0, 0.0])
                acc[0] += 1
                acc[1] += float(busy)
            self.computed[modality] += int(np.count_nonzero(out["ok"]))
            report.advance(len(rows))
        return values, ok, problems

    def encode_texts(self, texts: list[str], report: _Reporter):
        # sorted by length so each batch trims most of its padding, as the local loop does
        order = np.argsort([len(t) for t in texts], kind="stable")
        return self._map("text", texts, self.cfg.text_batch_size, report, order)

    def encode_images(self, paths: list[str], report: _Reporter):
        return self._map("image", paths, self.cfg.image_batch_size, report)

    def encode_audio(self, paths: list[str], report: _Reporter):
        batch = max(1, self.cfg.aisfx_batch_size) if self.cfg.audio_kind == "aisfx" else 8
        return self._map("audio", paths, batch, report)

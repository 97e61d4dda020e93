"""Connecting to Ray: the one place that imports it for the scale-out paths.

``python -m mmrec build --ray [ADDRESS]`` and ``train-policy --ray [ADDRESS]`` run inside
``ray_session``. Without an address (or with ``local``) a private Ray instance starts on this
machine and stops afterwards; with ``auto`` or ``HOST:PORT`` (``ray://HOST:10001`` for Ray
Client) mmrec joins an existing cluster and only disconnects. Either way this package's code is
shipped to the workers (``runtime_env.py_modules``), so the cluster's nodes need the
dependencies of ``requirements.txt`` but not mmrec itself.

Nothing else in mmrec imports Ray: the default, single-process build and the dashboard never
load it (tested in ``tests/unit/test_ray.py``).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from mmrec.config import RayConfig

LOCAL = ("", "local")


def runtime_env() -> dict:
    """This mmrec package for every worker, and the offline switches the encoders rely on."""
    package = Path(__file__).resolve().parent
    env = {k: os.environ[k] for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE") if k in os.environ}
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("TRANSFORMERS_OFFLINE", "1")
    if "MMREC_DEVICE" in os.environ:
        env["MMREC_DEVICE"] = os.environ["MMREC_DEVICE"]
    return {
        "py_modules": [str(package)],
        "excludes": ["__pycache__", "*.pyc"],
        "env_vars": env,
    }


@contextlib.contextmanager
def ray_session(cfg: RayConfig, log=print) -> Iterator:
    """``ray`` connected per ``cfg.address``; shut down on exit, even after an error.

    A session that is already connected (a test's cluster, a notebook) is reused and left
    connected: whoever opened it closes it.
    """
    import ray

    if ray.is_initialized():
        yield ray
        return
    common = dict(runtime_env=runtime_env(), log_to_driver=True)
    if cfg.address in LOCAL:
        ray.init(
            num_cpus=int(cfg.local_cpus) or os.cpu_count() or 1,
            object_store_memory=int(cfg.object_store_mb) * 2**20,
            include_dashboard=False,
            **common,
        )
        where = "a local Ray instance"
    else:
        ray.init(address=cfg.address, **common)
        where = f"the Ray cluster at {cfg.address}"
    try:
        res = ray.cluster_resources()
        log(
            f"connected to {where}: {len(ray.nodes())} node(s), {res.get('CPU', 0):g} CPU, "
            f"{res.get('GPU', 0):g} GPU"
        )
        yield ray
    finally:
        ray.shutdown()


def node_of_this_worker() -> str:
    """The Ray node id of the calling actor (recorded with each batch it encodes)."""
    import ray

    return ray.get_runtime_context().get_node_id()

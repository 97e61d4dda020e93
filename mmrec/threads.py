"""The process's CPU thread policy, set once when a process starts serving.

Torch's intra-op thread count is process-wide. A serving process (the dashboard, the benchmark
of it, a test session) answers many tiny requests (a state-tower pass, a fuse over N items, one
attribution at a time) from parallel threads (Streamlit runs each session in one): there, one
intra-op thread per request is faster than two threads contending for two cores, and no request
may change the setting under another. So the policy is set here, once, by whoever starts the
process -- ``main.py``, the dashboard's service loader (``streamlit run`` / AppTest), ``python -m
mmrec bench`` -- never per call inside the service or the explainer.

Long single jobs (building features, training the fusion model or the policy, evaluations) keep
their own limits for the duration of the job (``mmrec.rl.dqn.few_threads``, the feature store's
worker threads, ``FusionConfig.cpu_threads``).
"""

from __future__ import annotations

SERVING_THREADS = 1  # torch intra-op threads of a serving process (see the module docstring)


def use_serving_threads() -> int:
    """Apply the serving policy to this process (idempotent); returns the thread count."""
    import torch

    if torch.get_num_threads() != SERVING_THREADS:
        torch.set_num_threads(SERVING_THREADS)
    return SERVING_THREADS

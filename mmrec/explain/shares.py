"""Modality shares: exact Shapley values of Q_u(s, a) over the three branch outputs.

With three modalities there are only 2^3 = 8 coalitions, and each is one pass of the cheap
fusion + Q part over cached branch outputs, so the exact Shapley values cost less than any
sampling approximation and need no encoder. A modality outside the coalition has its branch
output replaced by zero (the baseline), which is exactly what a weight of 0 or a missing
modality feeds the fusion; the values therefore sum to ``Q(all) - Q(none)`` (efficiency) and a
modality whose gate ``weight * present`` is 0 is a null player with value exactly 0.

Shares shown on the grid are ``|phi_m| / sum |phi|`` (sum to 1; signs kept in ``phi``).
"""

from __future__ import annotations

import itertools
from math import factorial

import numpy as np
import torch
import torch.nn as nn

from mmrec.explain.forward import unit_rows
from mmrec.models.fusion import MODALITIES, FusionModel

N_MODALITIES = len(MODALITIES)
# (8, 3) 0/1 rows: every subset of {text, image, audio}
COALITIONS = torch.tensor(list(itertools.product((0, 1), repeat=N_MODALITIES)), dtype=torch.float32)


def _shapley_matrix() -> torch.Tensor:
    """(8, 3) M with phi = v @ M for coalition values v (8,): the Shapley weights
    ``|S|! (n-|S|-1)! / n!`` with + for S u {m} and - for S, m not in S."""
    n = N_MODALITIES
    index = {tuple(int(x) for x in row): k for k, row in enumerate(COALITIONS.tolist())}
    mat = torch.zeros(len(COALITIONS), n, dtype=torch.float64)
    for row, k in index.items():
        size = sum(row)
        for m in range(n):
            if row[m]:
                continue
            w = factorial(size) * factorial(n - size - 1) / factorial(n)
            with_m = list(row)
            with_m[m] = 1
            mat[index[tuple(with_m)], m] += w
            mat[k, m] -= w
    return mat


SHAPLEY_MATRIX = _shapley_matrix()  # (8, 3)


@torch.no_grad()
def coalition_values(
    model: FusionModel,
    q_network: nn.Module,
    user_vec: torch.Tensor,
    branches: dict[str, torch.Tensor],
    present: torch.Tensor,
    side: torch.Tensor,
    weights: torch.Tensor,
) -> torch.Tensor:
    """Q for every coalition of every movie.

    ``user_vec (E,)``, ``branches[name] (N, H)``, ``present (N, 3)`` bool, ``side (N, F)``,
    ``weights (3,)`` -> ``(N, 8)`` in the row order of :data:`COALITIONS`.
    """
    n = present.shape[0]
    k = len(COALITIONS)
    mask = COALITIONS.to(user_vec.device).repeat(n, 1)  # (N*8, 3)
    parts = [
        branches[name].repeat_interleave(k, dim=0) * mask[:, j : j + 1]  # (N*8, H)
        for j, name in enumerate(MODALITIES)
    ]
    present_rows = present.repeat_interleave(k, dim=0)  # (N*8, 3)
    emb = model.fuse(*parts, present_rows, weights)  # (N*8, D)
    x_a = torch.cat([unit_rows(emb), side.repeat_interleave(k, dim=0)], dim=1)  # (N*8, D+F)
    vec, bias = q_network.items(x_a)  # (N*8, E), (N*8,)
    return (vec @ user_vec + bias).view(n, k)  # (N, 8)


def shapley(values: torch.Tensor, gate: torch.Tensor) -> torch.Tensor:
    """Coalition values ``(N, 8)`` + gates ``(N, 3)`` (weight * present) -> phi ``(N, 3)``.

    Null players (gate 0) are set to exactly 0: their coalition values are equal in exact
    arithmetic, and this removes float noise from batched matrix products."""
    phi = values.double() @ SHAPLEY_MATRIX.to(values.device)  # (N, 3)
    return torch.where(gate > 0, phi, torch.zeros_like(phi))


def normalise(phi: np.ndarray) -> np.ndarray:
    """``(N, 3)`` Shapley values -> shares ``|phi| / sum |phi|`` (rows of zeros stay zero)."""
    mag = np.abs(np.asarray(phi, dtype=np.float64))
    total = mag.sum(axis=-1, keepdims=True)
    return np.divide(mag, total, out=np.zeros_like(mag), where=total > 0)

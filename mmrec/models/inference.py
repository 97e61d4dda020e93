"""Running a trained fusion model over cached features: its inputs as tensors, the branch
outputs cached once per catalog, item embeddings for any modality weights, genre probabilities.

Split from :mod:`mmrec.models.train` (training) so that serving and evaluation read the
inference helpers without the training loop.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from mmrec.models.fusion import MODALITIES, FusionModel


def present_matrix(features) -> np.ndarray:
    """``(N, 3)`` bool: which of text, image, audio each item has."""
    return np.stack(
        [
            np.asarray(features.has_text),
            np.asarray(features.has_image),
            np.asarray(features.has_audio),
        ],
        axis=1,
    ).astype(bool)


def _zero_missing(arr, has: np.ndarray) -> np.ndarray:
    """Rows of missing items set to 0 (the contract's value). The gate already ignores them in
    the forward pass, but inf/NaN there would still turn weight gradients into NaN."""
    arr = np.asarray(arr, dtype=np.float32)
    missing = ~has
    if missing.any() and not (arr[missing] == 0).all():
        arr = arr.copy()
        arr[missing] = 0.0
    return arr


def _tensors(features, device: str) -> dict[str, torch.Tensor]:
    present = present_matrix(features)
    arrays = {
        m: _zero_missing(getattr(features, m), present[:, c]) for c, m in enumerate(MODALITIES)
    }
    return {
        **{m: torch.as_tensor(a, device=device) for m, a in arrays.items()},  # (N, ...) each
        "present": torch.as_tensor(present, device=device),  # (N, 3)
    }


@torch.no_grad()
def branch_outputs(model: FusionModel, features, batch_size: int = 512) -> dict[str, np.ndarray]:
    """Run the branches once over the catalog -> ``{"text", "image", "audio"}`` of ``(N, H)``
    float32 arrays (zeros for modalities the model does not use). Cache this per catalog."""
    model.eval()
    data = _tensors(features, str(model.device))
    parts: dict[str, list[np.ndarray]] = {m: [] for m in MODALITIES}
    for start in range(0, len(features.movie_ids), batch_size):
        sl = slice(start, start + batch_size)
        outs = model.encode_branches(data["text"][sl], data["image"][sl], data["audio"][sl])
        for name, out in zip(MODALITIES, outs):
            parts[name].append(out.float().cpu().numpy())
    hidden = model.cfg.hidden_dim
    return {
        m: np.concatenate(p) if p else np.zeros((0, hidden), np.float32) for m, p in parts.items()
    }


@torch.no_grad()
def item_embeddings(
    model: FusionModel,
    branches: dict[str, np.ndarray],
    present: np.ndarray,
    weights: Sequence[float] | np.ndarray = (1.0, 1.0, 1.0),
) -> np.ndarray:
    """Fuse cached branch outputs -> ``(N, D)`` float32 embeddings for ``weights (3,)`` or
    ``(N, 3)`` (text, image, audio in [0, 1]); cheap enough to call on every slider move."""
    model.eval()
    device = model.device
    t = torch.as_tensor(branches["text"], device=device)  # (N, H)
    i = torch.as_tensor(branches["image"], device=device)  # (N, H)
    a = torch.as_tensor(branches["audio"], device=device)  # (N, H)
    mask = torch.as_tensor(np.asarray(present, dtype=bool), device=device)  # (N, 3)
    emb = model.fuse(t, i, a, mask, torch.as_tensor(np.asarray(weights, np.float32), device=device))
    return emb.cpu().numpy().astype(np.float32, copy=False)  # (N, D)


@torch.no_grad()
def genre_probabilities(
    model: FusionModel,
    branches: dict[str, np.ndarray],
    present: np.ndarray,
    weights: Sequence[float] | np.ndarray = (1.0, 1.0, 1.0),
) -> np.ndarray:
    """``(N, G)`` sigmoid genre probabilities from cached branch outputs."""
    emb = torch.as_tensor(item_embeddings(model, branches, present, weights), device=model.device)
    return torch.sigmoid(model.genre_head(emb)).cpu().numpy()  # (N, G)

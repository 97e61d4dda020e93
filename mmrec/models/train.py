"""Training the fusion model on the catalog's genre labels.

Document section 4.3: the multimodal model is trained on multi-label genre prediction with a
cross-entropy loss, Adam, learning rate 0.001. Early stopping on a held-out item split keeps
it from memorising small catalogs; modality dropout during training teaches it to embed an
item from any subset of its modalities (missing posters, weight sliders at 0).

Running a trained model (branch outputs, item embeddings) lives in :mod:`mmrec.models.inference`;
per-user modality weights in :mod:`mmrec.models.user_weights`; saving and loading in
:mod:`mmrec.checkpoint`.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import time
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from mmrec.config import FusionConfig, pick_device
from mmrec.models.fusion import MODALITIES, FusionModel, seeded_init

# branch_outputs, item_embeddings, genre_probabilities and learn_user_weights are re-exported
# for code written before the split (branches in flight); their homes are
# mmrec.models.inference and mmrec.models.user_weights.
from mmrec.models.inference import (  # noqa: F401
    _tensors,
    branch_outputs,
    genre_probabilities,
    item_embeddings,
    present_matrix,
)
from mmrec.models.user_weights import learn_user_weights  # noqa: F401

Progress = Callable[[int, int, str], None]


# ----------------------------------------------------------------------------- inputs


def check_alignment(features, catalog) -> None:
    """Features must be in the catalog's row order (the contract); say which row differs."""
    ids = np.asarray(features.movie_ids, dtype=np.int64)
    expected = catalog.movie_ids
    if ids.shape != expected.shape or not np.array_equal(ids, expected):
        n = min(len(ids), len(expected))
        bad = np.flatnonzero(ids[:n] != expected[:n])
        where = (
            f"first mismatch at row {int(bad[0])}"
            if len(bad)
            else f"{len(ids)} vs {len(expected)} rows"
        )
        raise ValueError(
            f"features do not match catalog {catalog.data_dir}/movies.csv ({where}); "
            "recompute the features (python -m mmrec build)"
        )
    n_items = len(ids)
    for name, arr, ndim in (
        ("text", features.text, 2),
        ("image", features.image, 2),
        ("audio", features.audio, 3),
    ):
        if arr.ndim != ndim or arr.shape[0] != n_items:
            raise ValueError(
                f"features.{name} has shape {arr.shape}; expected {ndim} dims and {n_items} rows"
            )


def check_finite(features, present: np.ndarray) -> None:
    """NaN/inf in a present modality would poison training silently; name the first bad row."""
    ids = np.asarray(features.movie_ids)
    for col, name in enumerate(MODALITIES):
        arr = np.asarray(getattr(features, name))
        bad_rows = ~np.isfinite(arr.reshape(len(arr), -1)).all(1) & present[:, col]
        if bad_rows.any():
            row = int(np.argmax(bad_rows))
            raise ValueError(
                f"features.{name} has NaN/inf at row {row} (movieId {int(ids[row])}) and "
                f"{int(bad_rows.sum()) - 1} more rows; recompute the features (python -m mmrec build)"
            )


def sized_config(cfg: FusionConfig, features) -> FusionConfig:
    """The config with input sizes taken from the features, so the checkpoint records them."""
    return dataclasses.replace(
        cfg,
        text_dim=int(features.text.shape[1]),
        image_dim=int(features.image.shape[1]),
        audio_dim=int(features.audio.shape[2]),
    )


def split_items(n_items: int, fractions: Sequence[float], seed: int) -> list[np.ndarray]:
    """Random disjoint index sets with the given fractions of ``n_items`` (sorted each)."""
    order = np.random.default_rng(seed).permutation(n_items)
    bounds = np.round(np.cumsum(fractions) * n_items).astype(int)
    parts = np.split(order, bounds[:-1])
    return [np.sort(p) for p in parts]


# ----------------------------------------------------------------------------- training


def modality_dropout(present: torch.Tensor, p: float, generator: torch.Generator) -> torch.Tensor:
    """Hide each present modality with probability ``p``, keeping at least one per item.

    ``present (B, 3)`` bool -> ``(B, 3)`` bool. Items left with nothing get back one of their
    own modalities at random, so every training example still carries a signal.
    """
    drop = torch.rand(present.shape, generator=generator, device=present.device) < p  # (B, 3)
    kept = present & ~drop  # (B, 3)
    empty = ~kept.any(1) & present.any(1)  # (B,)
    if bool(empty.any()):
        scores = torch.rand(present.shape, generator=generator, device=present.device)  # (B, 3)
        scores = scores.masked_fill(~present, -1.0)
        pick = F.one_hot(scores.argmax(1), 3).bool()  # (B, 3)
        kept = torch.where(empty.unsqueeze(1), pick, kept)
    return kept


def _genre_loss(
    model: FusionModel,
    batch: dict[str, torch.Tensor],
    present: torch.Tensor,
    pos_weight: torch.Tensor | None = None,
) -> torch.Tensor:
    return _forward_losses(model, batch, present, pos_weight)[0]


def _forward_losses(
    model: FusionModel,
    batch: dict[str, torch.Tensor],
    present: torch.Tensor,
    pos_weight: torch.Tensor | None = None,
    branch_heads: BranchHeads | None = None,
    branch_weight: float = 0.0,
    label_smoothing: float = 0.0,
    smooth_to: torch.Tensor | float = 0.5,
) -> tuple[torch.Tensor, torch.Tensor]:
    branches = model.encode_branches(batch["text"], batch["image"], batch["audio"])  # (B, H) x3
    embedding = model.fuse(*branches, present)  # (B, D)
    logits = model.genre_head(embedding)  # (B, G)
    # Multi-label cross-entropy = a sigmoid cross-entropy per genre (BCE with logits): the
    # document's "cross-entropy loss" for items that belong to several genres at once.
    # pos_weight (G,) up-weights the positives of rare genres (class weighting): without it a
    # genre with 3% positives is learnt as "never" and macro F1 collapses.
    targets = batch["labels"]
    if label_smoothing > 0:
        targets = smoothed_targets(targets, label_smoothing, smooth_to)
    loss = F.binary_cross_entropy_with_logits(logits, targets, pos_weight=pos_weight)
    if branch_heads is not None and branch_weight > 0:
        loss = loss + branch_weight * branch_heads(branches, present, targets, pos_weight)
    return loss, embedding


def smoothed_targets(
    labels: torch.Tensor, share: float, target: torch.Tensor | float = 0.5
) -> torch.Tensor:
    """Label smoothing of multi-label genre targets: ``labels (B, G)`` 0/1 ->
    ``(1 - share) * labels + share * target``, with ``target`` 0.5 or ``(G,)`` per-genre
    training base rates (:func:`smoothing_target`)."""
    return labels * (1 - share) + share * target


def smoothing_target(labels: np.ndarray, cfg: FusionConfig) -> torch.Tensor | float:
    """What ``cfg.label_smoothing`` pulls the genre targets towards: 0.5 (``"half"``) or each
    genre's share of the training films ``labels (n, G)`` (``"prior"``, a ``(G,)`` tensor)."""
    if cfg.label_smoothing_target == "half":
        return 0.5
    if cfg.label_smoothing_target == "prior":
        return torch.as_tensor(np.asarray(labels, dtype=np.float32).mean(0))
    raise ValueError(
        "FusionConfig.label_smoothing_target must be 'half' or 'prior', got "
        f"{cfg.label_smoothing_target!r}"
    )


class BranchHeads(torch.nn.Module):
    """Training-only linear genre heads on each branch output (deep supervision).

    In the fused model the text branch alone already fits the labels well, so its gradient
    dominates and the poster / trailer branches stop learning once the joint loss is low:
    they end below a linear probe of their own inputs. A cross-entropy term per branch keeps
    every branch learning genres from its own modality. The heads are not part of the saved
    model: the item embedding and its interface are unchanged.
    """

    def __init__(self, hidden: int, n_genres: int, modalities: Sequence[str]):
        super().__init__()
        self.modalities = [m for m in MODALITIES if m in modalities]
        self.heads = torch.nn.ModuleDict(
            {m: torch.nn.Linear(hidden, n_genres) for m in self.modalities}
        )

    def forward(
        self,
        branches: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
        shown: torch.Tensor,
        labels: torch.Tensor,
        pos_weight: torch.Tensor | None,
    ) -> torch.Tensor:
        """Mean over branches of the genre loss on the items whose modality was shown."""
        losses = []
        for m in self.modalities:
            col = MODALITIES.index(m)
            rows = shown[:, col]  # (B,)
            if bool(rows.any()):
                logits = self.heads[m](branches[col][rows])  # (B_m, G)
                losses.append(
                    F.binary_cross_entropy_with_logits(logits, labels[rows], pos_weight=pos_weight)
                )
        return torch.stack(losses).mean() if losses else labels.sum() * 0.0


def class_weights(labels: np.ndarray, cfg: FusionConfig) -> np.ndarray | None:
    """``(G,)`` positive-class weights of the genre loss from the training labels ``(n, G)``
    (:func:`mmrec.eval.metrics.positive_class_weights`); None when weighting is off."""
    from mmrec.eval.metrics import positive_class_weights

    if cfg.class_weight_power <= 0:
        return None
    return positive_class_weights(labels, cfg.class_weight_power, cfg.max_class_weight)


class RatingObjective(torch.nn.Module):
    """Auxiliary user-preference loss: ``rating ~ user mean + <p_u, embedding_m>``.

    Genre labels alone teach the embedding nothing about what users like beyond genre (story
    themes, poster style, trailer mood); this term pulls those directions into it. The user
    vectors ``p_u`` exist only during training: the saved model stays a pure item encoder, so
    new users cost nothing. Only ratings of training items are used (no test leakage).
    """

    def __init__(self, ratings, catalog, train_idx: np.ndarray, embed_dim: int, device: str):
        super().__init__()
        items = catalog.index_of(ratings["movieId"].to_numpy())
        keep = np.isin(items, train_idx)
        items = items[keep]
        users, _ = pd.factorize(ratings["userId"].to_numpy()[keep])
        values = ratings["rating"].to_numpy(np.float32)[keep]
        user_mean = np.bincount(users, weights=values) / np.maximum(np.bincount(users), 1)
        residual = (values - user_mean[users]).astype(np.float32)  # (R,)
        # Rating rows grouped by item (CSR), so a batch of items finds its ratings fast.
        order = np.argsort(items, kind="stable")
        self.row_item = items[order]
        self.row_user = torch.as_tensor(users[order], device=device)
        self.row_residual = torch.as_tensor(residual[order], device=device)
        self.item_start = np.searchsorted(self.row_item, np.arange(catalog.n_movies + 1))
        self.user_vectors = torch.nn.Embedding(max(int(users.max(initial=-1)) + 1, 1), embed_dim)
        torch.nn.init.normal_(self.user_vectors.weight, std=0.01)
        self.to(device)

    def __len__(self) -> int:
        return len(self.row_item)

    def forward(self, item_idx: np.ndarray, embedding: torch.Tensor) -> torch.Tensor:
        """``item_idx (B,)`` catalog rows of the batch, ``embedding (B, D)`` -> mean squared error."""
        starts, stops = self.item_start[item_idx], self.item_start[item_idx + 1]
        counts = stops - starts  # (B,)
        if counts.sum() == 0:
            return embedding.sum() * 0.0
        rows = np.repeat(stops - counts.cumsum(), counts) + np.arange(counts.sum())  # (R_b,)
        pos = torch.as_tensor(np.repeat(np.arange(len(item_idx)), counts), device=embedding.device)
        rows_t = torch.as_tensor(rows, device=embedding.device)
        users = self.user_vectors(self.row_user[rows_t])  # (R_b, D)
        predicted = (users * embedding[pos]).sum(1)  # (R_b,)
        return F.mse_loss(predicted, self.row_residual[rows_t])


@torch.no_grad()
def _validate(
    model: FusionModel,
    data: dict[str, torch.Tensor],
    idx: torch.Tensor,
    batch_size: int,
    pos_weight: torch.Tensor | None,
) -> tuple[float, float]:
    """``(mean genre loss, macro average precision)`` on the items ``idx``, all their
    modalities shown."""
    from mmrec.eval.metrics import macro_average_precision

    model.eval()
    total = 0.0
    probs = []
    for start in range(0, len(idx), batch_size):
        b = idx[start : start + batch_size]
        batch = {k: v[b] for k, v in data.items()}
        loss, embedding = _forward_losses(model, batch, batch["present"], pos_weight)
        total += float(loss) * len(b)
        probs.append(torch.sigmoid(model.genre_head(embedding)).float().cpu().numpy())
    labels = data["labels"][idx].cpu().numpy()
    scores = np.concatenate(probs) if probs else np.zeros_like(labels)
    return total / max(len(idx), 1), macro_average_precision(labels, scores)


@contextlib.contextmanager
def _torch_threads(n: int, device: str):
    """Temporarily cap torch's CPU threads (process-wide; restored afterwards)."""
    before = torch.get_num_threads()
    if device == "cpu" and 0 < n < before:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def train_fusion(
    features,
    catalog,
    cfg: FusionConfig,
    seed: int = 0,
    progress: Progress | None = None,
    train_idx: np.ndarray | None = None,
    val_idx: np.ndarray | None = None,
    device: str | None = None,
    ratings: pd.DataFrame | None = None,
) -> FusionModel:
    """Train a :class:`FusionModel` on the catalog's genre labels; returns it in eval mode.

    Items without any genre or without any of ``cfg.modalities`` are skipped (no label or no
    input). Without ``train_idx``/``val_idx`` a random ``cfg.val_fraction`` of the usable
    items (by ``seed``) is held out for early stopping; evaluation passes its own split.
    The best epoch's weights are kept: highest validation macro average precision with
    ``cfg.early_stopping == "map"`` (threshold-free and sensitive to rare genres, where the
    loss is dominated by the frequent ones and stopped training after 1-2 epochs), lowest
    validation loss with ``"loss"``. With ``cfg.class_weight_power > 0`` the genre loss
    weights each genre's positives by :func:`class_weights`. ``model.history`` records the
    per-epoch losses and validation mAP. ``progress(epoch, max_epochs, "fusion")`` is called per epoch.
    With ``cfg.rating_weight > 0`` the auxiliary rating objective uses ``ratings`` (default:
    ``catalog.ratings``; columns userId, movieId, rating) on the training items.
    """
    device = device or pick_device()
    with _torch_threads(cfg.cpu_threads, device):
        return _train_fusion(
            features, catalog, cfg, seed, progress, train_idx, val_idx, device, ratings
        )


def _train_fusion(
    features, catalog, cfg, seed, progress, train_idx, val_idx, device, ratings
) -> FusionModel:
    check_alignment(features, catalog)
    cfg = sized_config(cfg, features)
    labels = np.asarray(catalog.genre_matrix(), dtype=np.float32)  # (N, G)
    if labels.shape[1] == 0:
        raise ValueError(
            f"catalog {catalog.data_dir}: no genres in movies.csv, cannot train the fusion model"
        )
    torch.manual_seed(seed)
    generator = torch.Generator(device=device).manual_seed(seed)

    present = present_matrix(features)
    check_finite(features, present)
    enabled = np.array([m in cfg.modalities for m in MODALITIES])
    usable = (labels.sum(1) > 0) & (present & enabled).any(1)
    if train_idx is None:
        candidates = np.flatnonzero(usable)
        n_val = max(1, int(round(cfg.val_fraction * len(candidates))))
        order = np.random.default_rng(seed).permutation(candidates)
        val_idx, train_idx = np.sort(order[:n_val]), np.sort(order[n_val:])
    else:
        train_idx = np.asarray(train_idx)[usable[train_idx]]
        val_idx = np.asarray(val_idx if val_idx is not None else [], dtype=np.int64)
        val_idx = val_idx[usable[val_idx]]
    if len(train_idx) < 2 or len(val_idx) < 1:
        raise ValueError(
            f"catalog {catalog.data_dir}: only {len(train_idx)} training and {len(val_idx)} validation "
            f"items have a genre and one of {cfg.modalities}; need at least 2 and 1"
        )
    if cfg.early_stopping not in ("map", "loss"):
        raise ValueError(
            f"FusionConfig.early_stopping must be 'map' or 'loss', got {cfg.early_stopping!r}"
        )

    # Each part's initial weights come from (seed, part) alone: a text-only model starts the
    # same whatever the audio input size, and the global RNG (dropout masks) is left untouched.
    model = FusionModel(cfg, labels.shape[1], init_seed=seed).to(device)
    data = _tensors(features, device)
    data["labels"] = torch.as_tensor(labels, device=device)
    data["present"] = data["present"] & torch.as_tensor(enabled, device=device)
    # Standardisation statistics from training items that have the modality (zeros of
    # missing items would drag the mean).
    tr = torch.as_tensor(train_idx, device=device)
    for col, (name, branch) in enumerate(
        (("text", model.text_branch), ("image", model.image_branch), ("audio", model.audio_branch))
    ):
        rows = tr[data["present"][tr, col]]
        branch.standardize.fit(data[name][rows])

    # Start the genre head at the training base rates: otherwise the first epochs are spent
    # learning label frequencies, and on a small catalog early stopping fires before any
    # item-specific signal is learnt.
    with torch.no_grad():
        rate = data["labels"][tr].mean(0).clamp(1e-3, 1 - 1e-3)  # (G,)
        model.genre_head.bias.copy_(torch.log(rate / (1 - rate)))

    rating_rows = catalog.ratings if ratings is None else ratings
    objective = None
    if cfg.rating_weight > 0 and rating_rows is not None and len(rating_rows):
        objective = RatingObjective(rating_rows, catalog, train_idx, cfg.embed_dim, device)
    branch_heads = None
    if cfg.branch_loss_weight > 0 and len(cfg.modalities) > 1:
        with seeded_init(seed, 6):
            branch_heads = BranchHeads(cfg.hidden_dim, labels.shape[1], cfg.modalities).to(device)
    params = list(model.parameters()) + (list(objective.parameters()) if objective else [])
    params += list(branch_heads.parameters()) if branch_heads is not None else []
    optimizer = torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    weights = class_weights(labels[train_idx], cfg)
    pos_weight = (
        None if weights is None else torch.as_tensor(weights, dtype=torch.float32, device=device)
    )
    target = smoothing_target(labels[train_idx], cfg)
    if isinstance(target, torch.Tensor):
        target = target.to(device)
    val = torch.as_tensor(val_idx, device=device)
    # Higher is better for both criteria: the loss enters negated.
    best_score, best_loss, best_state, best_epoch, stale = -float("inf"), float("nan"), None, -1, 0
    history: dict[str, list[float]] = {
        "train_loss": [],
        "val_loss": [],
        "val_map": [],
        "rating_loss": [],
    }
    started = time.perf_counter()
    for epoch in range(cfg.max_epochs):
        model.train()
        order = tr[torch.randperm(len(tr), generator=generator, device=device)]
        total = rating_total = 0.0
        for start in range(0, len(order), cfg.batch_size):
            b = order[start : start + cfg.batch_size]
            batch = {k: v[b] for k, v in data.items()}
            shown = modality_dropout(batch["present"], cfg.modality_dropout, generator)  # (B, 3)
            loss, embedding = _forward_losses(
                model,
                batch,
                shown,
                pos_weight,
                branch_heads,
                cfg.branch_loss_weight,
                cfg.label_smoothing,
                target,
            )
            if objective is not None:
                rating_loss = objective(b.cpu().numpy(), embedding)
                loss = loss + cfg.rating_weight * rating_loss
                rating_total += float(rating_loss.detach()) * len(b)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(b)
        history["train_loss"].append(total / len(order))
        if objective is not None:
            history["rating_loss"].append(rating_total / len(order))
        val_loss, val_map = _validate(model, data, val, cfg.batch_size * 4, pos_weight)
        history["val_loss"].append(val_loss)
        history["val_map"].append(val_map)
        if progress is not None:
            progress(epoch + 1, cfg.max_epochs, "fusion")
        score = val_map if cfg.early_stopping == "map" else -val_loss
        if score > best_score + 1e-4:
            best_score, best_loss, best_epoch, stale = score, val_loss, epoch, 0
            best_state = copy.deepcopy(model.state_dict())
        else:
            stale += 1
            if stale >= cfg.patience:
                break
    if best_state is None:  # every validation loss was NaN
        raise RuntimeError(
            f"fusion training diverged on {catalog.data_dir} (validation loss {history['val_loss'][-1]}); "
            "try a lower FusionConfig.lr"
        )
    model.load_state_dict(best_state)
    model.eval()
    model.history = {
        **history,
        "best_epoch": best_epoch,
        "best_val_loss": best_loss,
        "best_val_map": history["val_map"][best_epoch],
        "early_stopping": cfg.early_stopping,
        "epochs": len(history["val_loss"]),
        "seconds": time.perf_counter() - started,
        "n_train": int(len(train_idx)),
        "n_val": int(len(val_idx)),
    }
    return model

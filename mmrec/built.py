"""The built checkpoint folder as the service reads it: its file names, loading the catalog,
fusion model, cached branch outputs and policy, and the check that they were built from this
catalog (``check_binding``). Split from :mod:`mmrec.pipeline` (the build stages).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from mmrec.config import Config

MANIFEST = "manifest.json"
FUSION = "fusion.pt"
BRANCHES = "branches.npz"
POLICY = "policy.pt"


def load_branches(path: Path, with_ids: bool = False):
    """The cached branch outputs ``(branches, present)`` (plus the stored movie ids with
    ``with_ids``); a damaged file raises ``CheckpointError`` naming it."""
    import zipfile

    from mmrec.checkpoint import CheckpointError

    try:
        with np.load(path, allow_pickle=False) as stored:
            arrays = {k: stored[k] for k in stored.files}  # reads every array: detects truncation
    except FileNotFoundError:
        raise
    except (zipfile.BadZipFile, OSError, ValueError, KeyError, EOFError) as exc:
        raise CheckpointError(
            f"{path}: damaged ({type(exc).__name__}: {exc}); run `python -m mmrec build --force`"
        ) from exc
    if "present" not in arrays:
        raise CheckpointError(
            f"{path}: missing the 'present' array; run `python -m mmrec build --force`"
        )
    present = arrays.pop("present")
    ids = arrays.pop("movie_ids", None)
    return (arrays, present, ids) if with_ids else (arrays, present)


def checkpoints_ok(ckpt: Path, log=None) -> bool:
    """True when every checkpoint file loads; logs what is damaged otherwise."""
    from mmrec.checkpoint import CheckpointError, load_checkpoint

    try:
        load_checkpoint(ckpt / FUSION)
        load_checkpoint(ckpt / POLICY)
        load_branches(ckpt / BRANCHES)
        return True
    except (CheckpointError, FileNotFoundError) as exc:
        if log:
            log(f"checkpoint problem, rebuilding: {exc}")
        return False


def _first_difference(stored, ids: np.ndarray) -> str:
    stored = np.asarray(stored, dtype=np.int64).ravel()
    if len(stored) != len(ids):
        extra = sorted(set(stored.tolist()) - set(ids.tolist()))[:3]
        missing = sorted(set(ids.tolist()) - set(stored.tolist()))[:3]
        return (
            f"{len(stored):,} movies stored, {len(ids):,} in the catalog"
            + (f"; e.g. movieId {extra} not in the catalog" if extra else "")
            + (f"; e.g. movieId {missing} not in the checkpoints" if missing else "")
        )
    pos = int(np.argmax(stored != ids))
    return f"row {pos}: movieId {int(stored[pos])} stored, {int(ids[pos])} in the catalog"


def check_binding(catalog, ckpt: Path, fusion_meta: dict, branch_ids, policy_meta, agent) -> None:
    """Refuse checkpoints that were not built from this catalog.

    Compared: the movie ids stored in fusion.pt, branches.npz and policy.pt (same ids, same
    order) and the genre list with the catalog's; the content fingerprint
    (:meth:`Catalog.content_fingerprint`) stored in fusion.pt and policy.pt with the catalog's.
    Checkpoints written before the fingerprint was stored are checked on ids and genres.
    Raises :class:`mmrec.checkpoint.CheckpointMismatchError` saying what differs and how to
    rebuild."""
    from mmrec.checkpoint import CheckpointMismatchError
    from mmrec.safeio import escape

    ids = catalog.movie_ids
    problems = []
    for name, stored in (
        (FUSION, fusion_meta.get("movie_ids")),
        (BRANCHES, branch_ids),
        (POLICY, getattr(getattr(agent, "index", None), "movie_ids", None)),
    ):
        if stored is None:
            problems.append(f"{name} stores no movie ids")
        elif not np.array_equal(np.asarray(stored, dtype=np.int64).ravel(), ids):
            problems.append(f"{name}: {_first_difference(stored, ids)}")
    genres = fusion_meta.get("genres")
    if genres is not None and list(genres) != list(catalog.genres):
        problems.append(
            f"{FUSION} was trained on {len(genres)} genres, the catalog has {len(catalog.genres)}"
        )
    stored_fps = {n: m.get("catalog") for n, m in ((FUSION, fusion_meta), (POLICY, policy_meta))}
    if any(stored_fps.values()):
        current = catalog.content_fingerprint()
        for name, fp in stored_fps.items():
            if fp != current:
                problems.append(f"{name} fingerprint {fp}, catalog {current}")
    if problems:
        raise CheckpointMismatchError(
            f"the checkpoints in {escape(ckpt)} were not built from the catalog in "
            f"{escape(catalog.data_dir)} ({'; '.join(problems)}). Rebuild them for this folder: "
            f"`python -m mmrec build --data {escape(catalog.data_dir)} --checkpoints "
            f"{escape(ckpt)}` (or Rebuild on the Data page)"
        )


def load_built(cfg: Config, attempts: int = 3):
    """Catalog, fusion model, branches, default item embeddings and the policy agent, checked
    against each other and the catalog (:func:`check_binding`).

    A rebuild swaps a whole new checkpoint folder in at once (:func:`swap_in`); a load that
    straddles the swap reads files of two versions, which the check catches: it then reads
    again (``attempts`` times in all) before reporting the mismatch."""
    from mmrec.checkpoint import CheckpointMismatchError, load_fusion
    from mmrec.data.catalog import load_catalog
    from mmrec.models.inference import item_embeddings
    from mmrec.rl.train import load_policy

    ckpt = Path(cfg.paths.checkpoints_dir)
    catalog = load_catalog(cfg.paths.data_dir, cfg.data)
    for attempt in range(attempts):
        model, meta = load_fusion(ckpt / FUSION)
        branches, present, branch_ids = load_branches(ckpt / BRANCHES, with_ids=True)
        agent, policy_meta = load_policy(ckpt / POLICY)
        try:
            check_binding(catalog, ckpt, meta, branch_ids, policy_meta, agent)
            break
        except CheckpointMismatchError:
            if attempt == attempts - 1:
                raise
            time.sleep(0.2)
    item_emb = item_embeddings(model, branches, present, (1.0, 1.0, 1.0))
    return catalog, model, branches, present, item_emb, agent, policy_meta


def check_checkpoints_match(cfg: Config, catalog, meta: dict | None = None) -> None:
    """Refuse checkpoints built for another catalog (e.g. the demo's default folder)."""
    from mmrec.checkpoint import load_fusion

    ckpt = Path(cfg.paths.checkpoints_dir)
    if meta is None:
        _model, meta = load_fusion(ckpt / FUSION)
    ids = meta.get("movie_ids")
    if ids is not None and list(ids) != catalog.movie_ids.tolist():
        raise ValueError(
            f"the checkpoints in {ckpt} were built for another catalog ({len(ids)} movies; "
            f"{cfg.paths.data_dir} has {len(catalog.movie_ids)}): pass --checkpoints with the "
            f"folder `python -m mmrec build --data {cfg.paths.data_dir} --checkpoints DIR` wrote"
        )

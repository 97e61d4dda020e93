"""The build pipeline: catalog -> features -> fusion model -> item branches -> DQN policy.

``build`` is idempotent: the manifest in the checkpoint folder records the data fingerprint and
the configs that produced each stage; a stage re-runs only when its inputs changed (or
``force``). Every checkpoint is written atomically by ``mmrec.checkpoint``.

Reading a built folder back (and checking it fits the catalog) is :mod:`mmrec.built`;
rebuilding a served folder beside it and swapping it in is :mod:`mmrec.rebuild`.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import numpy as np

from mmrec.atomic import atomic_write, atomic_write_text
from mmrec.built import (
    BRANCHES,
    FUSION,
    MANIFEST,
    POLICY,
    check_checkpoints_match,
    checkpoints_ok,
    load_branches,
    load_built,
)
from mmrec.config import Config, FeatureConfig
from mmrec.provenance import machine_info


def _noop(*_a, **_k):
    return None


def _read_manifest(ckpt: Path) -> dict:
    try:
        return json.loads((ckpt / MANIFEST).read_text())
    except (OSError, ValueError):
        return {}


def _write_manifest(ckpt: Path, manifest: dict) -> None:
    atomic_write_text(ckpt / MANIFEST, json.dumps(manifest, indent=2, default=str))


def _save_npz_atomic(path: Path, **arrays) -> None:
    atomic_write(path, lambda fh: np.savez(fh, **arrays))


# Settings added after builds already existed, with the value that reproduces the code from
# before them (a constant, or a function of the other settings): while a setting holds that value
# it is left out of the build key, so an upgrade that adds it does not retrain a model whose
# training did not change. A new setting whose default keeps the old behaviour is listed here;
# one that changes training (or a changed default) is not, and retrains as it should.
KEY_NEUTRAL: dict[str, dict[str, object]] = {
    "FusionConfig": {
        "late_join": "mlp",  # issue 18: "mlp_skip" added
        "label_smoothing": 0.0,
        "label_smoothing_target": "half",  # issue 18: "prior" added
        "input_dropout": lambda c: c.dropout,  # the branch inputs used `dropout` before
    },
    "DQNConfig": {"dueling": False},  # issue 14: the state value V(s) added
    "EnvConfig": {  # issue 14: the user dynamics, all off = the static user of before
        "satiation": False,
        "novelty": False,
        "session_exit": False,
        "runtime_watch": False,
        "returning": False,
        "recent_genres": False,  # a state block added with issue 14's validation runs
    },
}


def _key_dict(obj) -> dict:
    """A settings dataclass as the build key sees it: every field, less the neutral ones
    (``KEY_NEUTRAL``) that hold their neutral value, and the parameters of user dynamics that
    are all off (they change nothing then)."""
    out = dataclasses.asdict(obj)
    for name, neutral in KEY_NEUTRAL.get(type(obj).__name__, {}).items():
        if name not in out:
            continue
        value = neutral(obj) if callable(neutral) else neutral
        if out[name] == value:
            del out[name]
    if type(obj).__name__ == "EnvConfig":
        for param, switches in _DYNAMIC_PARAMS.items():
            if not any(out.get(sw) for sw in switches):
                out.pop(param, None)  # every dynamic that reads it is off
    return out


# Each user-dynamics parameter of EnvConfig (mmrec.rl.dynamics) or state option
# (mmrec.rl.state) and the switches that read it: with all of them off it cannot change training.
_DYNAMIC_PARAMS: dict[str, tuple[str, ...]] = {
    "satiation_strength": ("satiation",),
    "satiation_decay": ("satiation",),
    "novelty_strength": ("novelty",),
    "exit_threshold": ("session_exit",),
    "exit_slope": ("session_exit",),
    "exit_max": ("session_exit",),
    "satisfaction_memory": ("session_exit", "returning"),
    "satisfaction_start": ("session_exit", "returning"),
    "runtime_slope": ("runtime_watch",),
    "max_sessions": ("returning",),
    "recent_genres_decay": ("recent_genres",),
    "return_threshold": ("returning",),
    "return_slope": ("returning",),
    "return_max": ("returning",),
    "return_gap_steps": ("returning",),
}


def _cfg_key(*parts) -> str:
    import hashlib

    blob = json.dumps(
        [_key_dict(p) if dataclasses.is_dataclass(p) else p for p in parts],
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def fusion_build_key(cfg: Config, fingerprint: str) -> str:
    """What the fusion checkpoint depends on: the data, the feature and fusion settings, and
    the encoders' version strings (read without loading a model), so a changed encoder (new
    weights, new preprocessing) retrains even when no setting changed."""
    from mmrec.features.store import FeatureExtractor

    ex = FeatureExtractor(cfg.features)
    versions = [ex.text_spec()[0], ex.image_spec()[0], ex.audio_spec()[0]]
    return _cfg_key(fingerprint, cfg.features, cfg.fusion, versions)


def load_user_model(cfg: Config, catalog, item_emb: np.ndarray):
    """Ground truth on the demo (hidden_users.npz), a model fitted from ratings elsewhere."""
    data = Path(cfg.paths.data_dir)
    if (data / "hidden_users.npz").exists():
        from mmrec.data.hidden import HiddenUserModel

        return HiddenUserModel.load(data), "hidden ground truth (demo)"
    from mmrec.rl.simulator import FittedUserModel

    return FittedUserModel.fit(catalog, item_emb, seed=0), "fitted from ratings"


def training_index(catalog, user_model, cfg: Config):
    """The policy's item side with popularity and mean rating from the policy-training users
    only (``split_users``): the held-out users the policy evaluation plays must not shape the
    features the shipped policy was trained on (the evaluation builds the same index)."""
    from mmrec.rl.env import split_users
    from mmrec.rl.state import CatalogIndex

    train_users, _ = split_users(user_model.user_ids, cfg.env)
    ratings = catalog.ratings
    return CatalogIndex.from_catalog(catalog, ratings=ratings[ratings["userId"].isin(train_users)])


def build(
    cfg: Config,
    force: bool = False,
    retrain_policy: bool = False,
    progress=None,
    log=_noop,
    use_ray: bool = False,
) -> dict:
    """Bring the checkpoint folder up to date with the data folder.

    ``use_ray``: encoders and policy rollouts run on Ray (``cfg.ray``: a local instance or an
    existing cluster; ``mmrec.cluster``); same cache, same checkpoints. The report then says
    how many items / environment steps each Ray node did (``ray``)."""
    if not use_ray:
        return _build(cfg, force, retrain_policy, progress, log, None)
    from mmrec.cluster import ray_session

    with ray_session(cfg.ray, log):
        return _build(cfg, force, retrain_policy, progress, log, {})


def _build(cfg: Config, force, retrain_policy, progress, log, ray_report: dict | None) -> dict:
    # load_checkpoint is imported only to fail early if the module is missing.
    from mmrec.checkpoint import load_checkpoint, save_fusion  # noqa: F401
    from mmrec.data.catalog import load_catalog
    from mmrec.features.store import compute_features
    from mmrec.models.inference import branch_outputs, item_embeddings
    from mmrec.models.train import train_fusion
    from mmrec.rl.train import save_policy, train_policy

    t0 = time.time()
    progress = progress or _noop
    ckpt = Path(cfg.paths.checkpoints_dir)
    ckpt.mkdir(parents=True, exist_ok=True)
    catalog = load_catalog(cfg.paths.data_dir, cfg.data)
    for p in catalog.problems[:20]:
        log(f"  {p}")
    fingerprint = catalog.fingerprint()
    manifest = _read_manifest(ckpt)
    fusion_key = fusion_build_key(cfg, fingerprint)
    policy_key = _cfg_key(fusion_key, cfg.env, cfg.dqn)
    need_fusion = force or manifest.get("fusion_key") != fusion_key or not (ckpt / FUSION).exists()
    need_policy = (
        need_fusion
        or retrain_policy
        or manifest.get("policy_key") != policy_key
        or not (ckpt / POLICY).exists()
    )
    if not need_fusion and not need_policy and not checkpoints_ok(ckpt, log):
        # a damaged file (killed write of an older version, disk error) forces a rebuild
        need_fusion = need_policy = True
    if not need_fusion and not need_policy:
        return {
            "message": f"checkpoints in {ckpt} are up to date with {cfg.paths.data_dir} ({time.time() - t0:.1f} s)",
            "built": False,
        }

    log(f"features for {catalog.n_movies} movies ...")
    extractor = None
    if ray_report is not None:
        from mmrec.features.distributed import RayFeatureExtractor

        extractor = RayFeatureExtractor(cfg.features, cfg.ray)
    features = compute_features(
        catalog, cfg.features, progress=progress, cache_dir=cfg.paths.cache, extractor=extractor
    )
    if extractor is not None:
        ray_report["feature_items_per_node"] = {m: dict(c) for m, c in extractor.node_items.items()}
    if need_fusion:
        log("training the fusion model ...")
        model = train_fusion(features, catalog, cfg.fusion, seed=cfg.seed, progress=progress)
        meta = {
            "fingerprint": fingerprint,
            "catalog": catalog.content_fingerprint(),  # what every load checks (check_binding)
            "genres": catalog.genres,
            "movie_ids": catalog.movie_ids.tolist(),
        }
        save_fusion(ckpt / FUSION, model, meta)
        branches = branch_outputs(model, features)
        present = np.stack([features.has_text, features.has_image, features.has_audio], axis=1)
        _save_npz_atomic(ckpt / BRANCHES, movie_ids=catalog.movie_ids, present=present, **branches)
        manifest.update(fusion_key=fusion_key, fusion_built=time.time())
        _write_manifest(ckpt, manifest)
    else:
        from mmrec.checkpoint import load_fusion

        model, _ = load_fusion(ckpt / FUSION)
        branches, present = load_branches(ckpt / BRANCHES)

    item_emb = item_embeddings(model, branches, present, (1.0, 1.0, 1.0))
    user_model, source = load_user_model(cfg, catalog, item_emb)
    index = training_index(catalog, user_model, cfg)
    log(f"training the DQN policy in the simulator ({source}) ...")
    if ray_report is None:
        agent, curves = train_policy(
            catalog, item_emb, user_model, cfg, seed=cfg.seed, progress=progress, index=index
        )
    else:
        from mmrec.rl.distributed import train_policy_distributed

        agent, curves = train_policy_distributed(
            catalog, item_emb, user_model, cfg, seed=cfg.seed, progress=progress, index=index
        )
        ray_report["rollout_steps_per_node"] = curves["steps_per_node"]
    save_policy(
        ckpt / POLICY,
        agent,
        {
            "fingerprint": fingerprint,
            "catalog": catalog.content_fingerprint(),
            "curves": curves,
            "user_model": source,
        },
    )
    manifest.update(
        policy_key=policy_key,
        policy_built=time.time(),
        fingerprint=fingerprint,
        data_dir=str(cfg.paths.data_dir),
        machine=machine_info(),
    )
    _write_manifest(ckpt, manifest)
    report = {
        "message": f"built {ckpt} from {cfg.paths.data_dir} in {time.time() - t0:.1f} s",
        "built": True,
    }
    if ray_report is not None:
        report["ray"] = ray_report
    return report


# ----------------------------------------------------------------------------- evaluations


def _features(cfg: Config, catalog, progress=None, text_transform=None):
    from mmrec.features.store import compute_features

    if text_transform is None:
        return compute_features(catalog, cfg.features, progress=progress, cache_dir=cfg.paths.cache)
    masked = catalog.movies.copy()
    masked["overview"] = [text_transform(t) for t in masked["overview"]]
    cat2 = dataclasses.replace(catalog, movies=masked)
    return compute_features(cat2, cfg.features, progress=progress, cache_dir=cfg.paths.cache)


def evaluate_modality(
    cfg: Config,
    seeds=(0, 1, 2),
    out_dir=Path("reports"),
    mask_genres=False,
    log=_noop,
    folds: int = 5,
    progress=None,
    bootstrap: int = 1000,
    masked_rows: bool = False,
) -> dict:
    """Table 5.1 for ``cfg``'s catalog: ``folds``-fold cross-validation by movie per seed;
    ``bootstrap`` paired resamples of the movies for the comparisons (0: off).
    ``mask_genres``: every row uses genre-masked synopses (report ``...-masked``);
    ``masked_rows``: unmasked rows plus masked text and fused rows in one report (the image
    and audio rows, identical under masking, are trained once)."""
    from mmrec.data.catalog import load_catalog
    from mmrec.eval.modality import evaluate_modality as run
    from mmrec.eval.modality import mask_genre_words

    catalog = load_catalog(cfg.paths.data_dir, cfg.data)
    transform = (lambda t: mask_genre_words(t, catalog.genres)) if mask_genres else None
    features = _features(cfg, catalog, text_transform=transform)
    masked = None
    if masked_rows and not mask_genres:
        masked = _features(
            cfg, catalog, text_transform=lambda t: mask_genre_words(t, catalog.genres)
        )
    tag = "-masked" if mask_genres else ""
    if cfg.features.audio_kind != FeatureConfig.audio_kind:  # keep each front end's table apart
        tag = f"-{cfg.features.audio_kind}{tag}"
    name = Path(cfg.paths.data_dir).name
    return run(
        catalog,
        features,
        cfg.fusion,
        seeds=seeds,
        out_dir=Path(out_dir),
        tag=f"-{name}{tag}",
        folds=folds,
        progress=progress,
        bootstrap=bootstrap,
        text_masked=mask_genres,
        masked_features=masked,
    )


def _command(what: str, cfg: Config, extra: str = "") -> str:
    """The command line that reproduces a report (written into the report)."""
    return (
        f"python -m mmrec evaluate {what} --data {cfg.paths.data_dir} "
        f"--checkpoints {cfg.paths.checkpoints_dir}{extra}"
    )


def evaluate_policy(
    cfg: Config,
    seeds=(0, 1, 2),
    out_dir=Path("reports"),
    log=_noop,
    retrain: bool = False,
    variants: dict | None = None,
    sb3=(),
    command: str | None = None,
    validation: bool = False,
) -> dict:
    """``retrain``: train the DQN per seed (as every variant is) instead of the built one.
    ``validation``: evaluate on validation users carved out of the training users (retrains)."""
    from mmrec.eval.policy import evaluate_policy as run

    catalog, _model, _branches, _present, item_emb, agent, policy_meta = load_built(cfg)
    user_model, _source = load_user_model(cfg, catalog, item_emb)
    return run(
        catalog,
        item_emb,
        user_model,
        cfg,
        seeds=seeds,
        out_dir=Path(out_dir),
        agent=None if retrain or validation else agent,
        command=command or _command("policy", cfg),
        # the build's curves describe the built agent only
        learning_curves=None if retrain or validation else policy_meta.get("curves"),
        variants=variants,
        sb3=sb3,
        validation=validation,
        progress=lambda done, total, what: log(f"[{done}/{total}] {what}"),
    )


def modality_embeddings(model, branches, present) -> dict[str, np.ndarray]:
    """Fused embeddings with branches switched off, for the cold-start modality ablation."""
    from mmrec.models.inference import item_embeddings

    has = present.any(axis=0)  # (3,) text, image, audio exist anywhere
    variants = {"text only": (1.0, 0.0, 0.0), "poster only": (0.0, 1.0, 0.0)}
    if has[2]:
        variants["trailer only"] = (0.0, 0.0, 1.0)
        variants["text + poster"] = (1.0, 1.0, 0.0)
        variants["all three"] = (1.0, 1.0, 1.0)
    else:
        variants["text + poster"] = (1.0, 1.0, 1.0)
    return {name: item_embeddings(model, branches, present, w) for name, w in variants.items()}


def evaluate_ranking(cfg: Config, out_dir=Path("reports"), log=_noop, command=None) -> dict:
    from mmrec.checkpoint import load_fusion
    from mmrec.data.catalog import load_catalog
    from mmrec.eval.ranking import evaluate_ranking as run
    from mmrec.models.inference import item_embeddings
    from mmrec.rl.train import load_policy

    ckpt = Path(cfg.paths.checkpoints_dir)
    catalog = load_catalog(cfg.paths.data_dir, cfg.data)
    model, fusion_meta = load_fusion(ckpt / FUSION)
    check_checkpoints_match(cfg, catalog, fusion_meta)
    branches, present = load_branches(ckpt / BRANCHES)
    item_emb = item_embeddings(model, branches, present, (1.0, 1.0, 1.0))
    # The built policy is only the optional `dqn_given` row (the evaluation trains its own
    # leak-free DQN), so a folder with the fusion model alone is enough.
    agent = load_policy(ckpt / POLICY)[0] if (ckpt / POLICY).exists() else None
    return run(
        catalog, item_emb, cfg, out_dir=Path(out_dir), agent=agent,
        command=command or _command("ranking", cfg), log=log,
        modality_embeddings=modality_embeddings(model, branches, present),
    )  # fmt: skip


HYBRID = "hybrid.pt"


def build_hybrid(cfg: Config, log=_noop) -> dict:
    """Fit the hybrid ranker on every rating of the catalog and save it beside the policy.

    Its residual is cross-fitted on ``hybrid.splits`` successive temporal windows (each the last
    20% of what precedes it; relevant = rating >= ``positive_rating``) with the collaborative
    parts fitted on what comes before each, EASE's lambda and item-kNN's k tuned on the latest
    window; then the collaborative parts are refitted on all.
    """
    from mmrec.eval.ranking import fit_hybrid, windows_by_time
    from mmrec.rl.hybrid import save_hybrid
    from mmrec.rl.state import CatalogIndex
    from mmrec.rl.train import few_threads

    t0 = time.time()
    catalog, _model, _branches, _present, item_emb, _agent, _meta = load_built(cfg)
    check_checkpoints_match(cfg, catalog)
    years = catalog.movies["year"].astype("Float64").to_numpy(dtype=np.float64, na_value=np.nan)
    frac = cfg.policy_eval.ranking_test_fraction
    with few_threads(blas=True):
        hyb, _ease, _index, info = fit_hybrid(
            catalog.ratings, lambda r: windows_by_time(r, frac, cfg.hybrid.splits),
            cfg.policy_eval.positive_rating,
            item_emb, lambda r: CatalogIndex.from_catalog(catalog, ratings=r), years, cfg, log,
        )  # fmt: skip
    meta = {"fingerprint": catalog.fingerprint(), "movie_ids": catalog.movie_ids.tolist(),
            "lambda": info["lambda"], "knn_k": info["knn_k"], "residual": info["residual"]}  # fmt: skip
    save_hybrid(Path(cfg.paths.checkpoints_dir), hyb, meta)
    return {"message": f"hybrid ranker saved in {cfg.paths.checkpoints_dir} ({time.time() - t0:.0f} s)",
            **{k: v for k, v in meta.items() if k != "movie_ids"}}  # fmt: skip

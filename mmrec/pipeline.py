"""The build pipeline: catalog -> features -> fusion model -> item branches -> DQN policy.

``build`` is idempotent: the manifest in the checkpoint folder records the data fingerprint and
the configs that produced each stage; a stage re-runs only when its inputs changed (or
``force``). Every checkpoint is written atomically by ``mmrec.checkpoint``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from pathlib import Path

import numpy as np

from mmrec.atomic import atomic_write, atomic_write_text
from mmrec.config import Config, FeatureConfig
from mmrec.provenance import machine_info

MANIFEST = "manifest.json"
FUSION = "fusion.pt"
BRANCHES = "branches.npz"
POLICY = "policy.pt"


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


def _cfg_key(*parts) -> str:
    import hashlib

    blob = json.dumps(
        [dataclasses.asdict(p) if dataclasses.is_dataclass(p) else p for p in parts],
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


# ----------------------------------------------------------------------------- versioned rebuild

CHECKPOINT_FILES = (MANIFEST, FUSION, BRANCHES, POLICY)
OPTIONAL_FILES = ("hybrid.pt",)  # copied into a new version too (its own check says if stale)


def checkpoint_version(ckpt: str | os.PathLike) -> str:
    """A token that changes whenever a new version of the folder is swapped in (its inode) or
    rebuilt in place (the manifest's mtime); "" when there is none. Part of the service cache
    key, so a rebuild is served by a new cache entry while the old one keeps serving."""
    try:
        st = os.stat(ckpt)
        man = os.stat(Path(ckpt) / MANIFEST).st_mtime_ns
    except OSError:
        return ""
    return f"{st.st_ino}-{man}"


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (Linux ``renameat2(RENAME_EXCHANGE)``); False if unsupported."""
    import ctypes
    import errno

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    rc = renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange)
    if rc == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False
    raise OSError(err, os.strerror(err), str(a))


def swap_in(new: Path, ckpt: Path) -> Path | None:
    """Make the complete folder ``new`` the checkpoint folder ``ckpt`` in one step. The old
    version is kept as ``.<name>.previous`` beside it (returned), for readers that opened it."""
    import shutil

    previous = ckpt.parent / f".{ckpt.name}.previous"
    if not ckpt.exists():
        os.rename(new, ckpt)
        return None
    if not _exchange(new, ckpt):  # no renameat2: two renames, a window of microseconds
        aside = ckpt.parent / f".{ckpt.name}.old-{time.time_ns()}"
        os.rename(ckpt, aside)
        os.rename(new, ckpt)
        new = aside
    shutil.rmtree(previous, ignore_errors=True)
    os.rename(new, previous)
    return previous


def _build_in_child(cfg: Config, force: bool, progress, log) -> dict:
    """:func:`build` in a child process at lower CPU priority (nice 10): a rebuild started from
    the dashboard must not hold the server's GIL and cores while other sessions are served.
    Progress and log lines come back over a pipe."""
    import subprocess
    import sys
    import tempfile

    repo = Path(__file__).resolve().parents[1]
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
        json.dump({"config": dataclasses.asdict(cfg), "force": force}, fh, default=list)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(repo), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    tail: list[str] = []
    result = None
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mmrec.pipeline", fh.name],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            preexec_fn=lambda: os.nice(10),
        )
        for line in proc.stdout:
            line = line.rstrip("\n")
            if line.startswith("@progress "):
                _, done, total, stage = line.split(" ", 3)
                (progress or _noop)(int(done), int(total), stage)
            elif line.startswith("@result "):
                result = json.loads(line[len("@result ") :])
            else:
                log(line)
                tail = (tail + [line])[-5:]
        rc = proc.wait()
    finally:
        os.unlink(fh.name)
    if rc != 0 or result is None:
        raise RuntimeError(f"build failed (exit {rc}): " + " | ".join(tail))
    return result


def _child_main(argv: list[str]) -> int:
    """Entry of :func:`_build_in_child`: ``python -m mmrec.pipeline <job.json>``."""
    from mmrec.config import _apply

    with open(argv[0]) as fh:
        job = json.load(fh)
    cfg = Config()
    _apply(cfg, job["config"], "rebuild job")
    try:
        result = build(
            cfg,
            force=job["force"],
            progress=lambda d, t, s: print(f"@progress {d} {t} {s}", flush=True),
            log=lambda m: print(m, flush=True),
        )
    except Exception as exc:  # the parent shows the last lines: make the last one the reason
        print(f"{type(exc).__name__}: {exc}", flush=True)
        return 1
    print("@result " + json.dumps(result), flush=True)
    return 0


def rebuild_beside(
    cfg: Config, force: bool = False, progress=None, log=_noop, in_process: bool = False
) -> dict:
    """Rebuild ``cfg``'s checkpoints without touching the served folder until the new version
    is complete: copy it to a staging folder beside it, build there (incremental as usual),
    load the result and check it against the catalog, then :func:`swap_in`. One rebuild per
    folder at a time (a lock file); a failed build leaves the served folder as it was. The
    build runs in a child process at lower priority unless ``in_process``."""
    import copy
    import fcntl
    import shutil

    ckpt = Path(cfg.paths.checkpoints_dir)
    ckpt.parent.mkdir(parents=True, exist_ok=True)
    with open(ckpt.parent / f".{ckpt.name}.lock", "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return {"message": f"a rebuild of {ckpt} is already running", "built": False}
        staging = ckpt.parent / f".{ckpt.name}.building-{os.getpid()}-{time.time_ns()}"
        staging.mkdir()
        try:
            for name in CHECKPOINT_FILES + OPTIONAL_FILES:
                if (ckpt / name).is_file():
                    shutil.copy2(ckpt / name, staging / name)
            scfg = copy.deepcopy(cfg)
            scfg.paths.checkpoints_dir = str(staging)
            if in_process:
                result = build(scfg, force=force, progress=progress, log=log)
            else:
                result = _build_in_child(scfg, force, progress, log)
            load_built(scfg)  # the new version must load and fit the catalog before it is served
            if not result.get("built") and ckpt.is_dir():
                result["message"] = (
                    f"checkpoints in {ckpt} are up to date with {cfg.paths.data_dir}"
                )
                return result
            swap_in(staging, ckpt)
            result["message"] = f"built a new version of {ckpt} and switched to it"
            return result
        finally:
            shutil.rmtree(staging, ignore_errors=True)


def _command(what: str, cfg: Config, extra: str = "") -> str:
    """The command line that reproduces a report (written into the report)."""
    return (
        f"python -m mmrec evaluate {what} --data {cfg.paths.data_dir} "
        f"--checkpoints {cfg.paths.checkpoints_dir}{extra}"
    )


def evaluate_policy(cfg: Config, seeds=(0, 1, 2), out_dir=Path("reports"), log=_noop) -> dict:
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
        agent=agent,
        command=_command("policy", cfg),
        learning_curves=policy_meta.get("curves"),  # from the build that trained this agent
    )


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

    Its residual is trained on the last 20% of each user's ratings (relevant = rating >=
    ``positive_rating``) with the collaborative parts fitted on the rest, EASE's lambda and
    item-kNN's k tuned on the same split; then the collaborative parts are refitted on all.
    """
    from mmrec.eval.ranking import fit_hybrid, split_by_time
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
            catalog.ratings, lambda r: split_by_time(r, frac), cfg.policy_eval.positive_rating,
            item_emb, lambda r: CatalogIndex.from_catalog(catalog, ratings=r), years, cfg, log,
        )  # fmt: skip
    meta = {"fingerprint": catalog.fingerprint(), "movie_ids": catalog.movie_ids.tolist(),
            "lambda": info["lambda"], "knn_k": info["knn_k"], "residual": info["residual"]}  # fmt: skip
    save_hybrid(Path(cfg.paths.checkpoints_dir), hyb, meta)
    return {"message": f"hybrid ranker saved in {cfg.paths.checkpoints_dir} ({time.time() - t0:.0f} s)",
            **{k: v for k, v in meta.items() if k != "movie_ids"}}  # fmt: skip


if __name__ == "__main__":
    import sys

    raise SystemExit(_child_main(sys.argv[1:]))

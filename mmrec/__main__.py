"""Command line: ``python -m mmrec <command>``.

Commands: demo, import-movielens, validate, build, train-policy, train-hybrid,
evaluate {modality,policy,ranking,live},
bench, setup (what ``make run`` calls: demo + build when missing), serve.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def _cfg(args):
    from mmrec.config import load_config

    return load_config(
        getattr(args, "config", None),
        data_dir=getattr(args, "data", None),
        checkpoints_dir=getattr(args, "checkpoints", None),
    )


def _tqdm_progress():
    """A progress(done, total, stage) callback that drives one tqdm bar per stage."""
    from tqdm import tqdm

    bars: dict[str, tqdm] = {}

    def progress(done: int, total: int, stage: str) -> None:
        bar = bars.get(stage)
        if bar is None:
            for other in bars.values():
                other.close()
            bar = bars[stage] = tqdm(total=total, desc=stage, unit="it", leave=True)
        bar.total = total
        bar.n = done
        bar.refresh()

    return progress


def _folds(value: str) -> int:
    """argparse type for --folds: k-fold cross-validation needs k >= 2."""
    folds = int(value)
    if folds < 2:
        raise argparse.ArgumentTypeError(f"--folds must be >= 2 (got {folds})")
    return folds


def _non_negative(value: str) -> int:
    """argparse type for counts where 0 means off (--bootstrap)."""
    number = int(value)
    if number < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0 (got {number})")
    return number


def cmd_demo(args) -> int:
    from mmrec.data.demo import generate_demo

    cfg = _cfg(args)
    demo = cfg.demo
    for key in ("movies", "users", "seed"):
        if getattr(args, key) is not None:
            setattr(demo, key, getattr(args, key))
    t0 = time.time()
    summary = generate_demo(Path(cfg.paths.data_dir), demo, progress=_tqdm_progress())
    print(f"demo catalog written to {cfg.paths.data_dir} in {time.time() - t0:.1f} s")
    for key, value in (summary or {}).items():
        print(f"  {key}: {value}")
    return 0


def cmd_import(args) -> int:
    from mmrec.data.movielens import run_cli

    return run_cli(args, _cfg(args).movielens)


def cmd_validate(args) -> int:
    from mmrec.data.catalog import CatalogError, format_summary, load_catalog

    cfg = _cfg(args)
    try:
        cat = load_catalog(cfg.paths.data_dir, cfg.data)
    except CatalogError as exc:
        print(f"fatal: {exc}", file=sys.stderr)
        return 2
    print(format_summary(cat, max_problems=args.max_problems))
    if cat.errors:
        print(f"validation failed: {len(cat.errors)} error(s)", file=sys.stderr)
        return 1
    print("validation passed")
    return 0


def _ray_cfg(args, cfg) -> bool:
    """Apply --ray [ADDRESS] / --workers N to ``cfg.ray``; True when Ray is asked for."""
    if getattr(args, "workers", None) is not None:
        if args.workers < 1:
            raise SystemExit(f"--workers must be >= 1 (got {args.workers})")
        cfg.ray.workers = args.workers
    if getattr(args, "ray", None) is None:
        return False
    if args.ray != "local":
        cfg.ray.address = args.ray
    return True


def _print_ray_report(report: dict) -> None:
    for key, per in (report.get("ray") or {}).items():
        print(f"  ray {key}: {per}")


def cmd_build(args) -> int:
    from mmrec.pipeline import build

    cfg = _cfg(args)
    use_ray = _ray_cfg(args, cfg)
    report = build(cfg, force=args.force, progress=_tqdm_progress(), log=print, use_ray=use_ray)
    print(report.get("message", "built"))
    _print_ray_report(report)
    return 0


def cmd_train_policy(args) -> int:
    from mmrec.pipeline import build

    cfg = _cfg(args)
    use_ray = _ray_cfg(args, cfg)
    report = build(
        cfg,
        force=False,
        retrain_policy=True,
        progress=_tqdm_progress(),
        log=print,
        use_ray=use_ray,
    )
    print(report.get("message", "built"))
    _print_ray_report(report)
    return 0


def cmd_train_hybrid(args) -> int:
    from mmrec.pipeline import build_hybrid

    try:
        report = build_hybrid(_cfg(args), log=print)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(report["message"])
    return 0


def cmd_setup(args) -> int:
    """What `make run` does: a demo catalog and models when missing. Its progress goes to the
    terminal and to ``mmrec.progress.progress_path(checkpoints)``, which the dashboard (started
    beside it by ``python main.py --setup``) shows until the models are ready."""
    from mmrec.data.demo import generate_demo
    from mmrec.pipeline import build
    from mmrec.progress import ProgressFile, progress_path

    cfg = _cfg(args)
    data = Path(cfg.paths.data_dir)
    shown = ProgressFile(progress_path(cfg.paths.checkpoints_dir))
    bar = _tqdm_progress()

    def progress(done: int, total: int, stage: str) -> None:
        bar(done, total, stage)
        shown(done, total, stage)

    def log(message) -> None:
        print(message)
        shown.note(str(message).strip())

    try:
        if not (data / "movies.csv").exists():
            log(f"no catalog at {data}: generating the demo catalog (a few minutes) ...")
            t0 = time.time()
            generate_demo(data, cfg.demo, progress=progress)
            log(f"demo catalog written to {data} in {time.time() - t0:.1f} s")
        log("checking features and models (first run: several minutes; later runs: seconds) ...")
        report = build(cfg, force=False, progress=progress, log=log)
    except BaseException as exc:
        shown.finish(False, f"{type(exc).__name__}: {exc}")
        raise
    message = report.get("message", "built")
    print(message)
    shown.finish(True, message)
    return 0


def _dqn_overrides(spec: str, dqn) -> dict:
    """``"gamma=0.5,dueling=true"`` -> ``{"gamma": 0.5, "dueling": True}``, each name a
    ``DQNConfig`` field and each value of that field's type (else ``SystemExit`` naming it)."""
    import dataclasses

    fields = {f.name: type(getattr(dqn, f.name)) for f in dataclasses.fields(dqn)}
    out = {}
    for part in filter(None, (x.strip() for x in spec.split(","))):
        name, sep, raw = part.partition("=")
        name = name.strip()
        if not sep or name not in fields:
            raise SystemExit(f"--variant {spec!r}: {part!r} is not FIELD=VALUE of a DQN setting")
        kind, raw = fields[name], raw.strip()
        try:
            if kind is bool:
                if raw.lower() not in ("true", "false", "1", "0"):
                    raise ValueError(raw)
                out[name] = raw.lower() in ("true", "1")
            else:
                out[name] = kind(raw)
        except ValueError:
            raise SystemExit(
                f"--variant {spec!r}: {name} needs a {kind.__name__}, got {raw!r}"
            ) from None
    if not out:
        raise SystemExit(f"--variant {spec!r}: no FIELD=VALUE in it")
    return out


def cmd_evaluate(args) -> int:
    from mmrec import pipeline

    cfg = _cfg(args)
    seeds = tuple(range(args.seeds))
    out = Path(args.out)
    if args.what == "modality":
        bar = _tqdm_progress()
        result = pipeline.evaluate_modality(
            cfg,
            seeds=seeds,
            out_dir=out,
            mask_genres=args.mask_genre_words,
            log=print,
            folds=args.folds,
            bootstrap=args.bootstrap,
            masked_rows=args.masked_rows,
            progress=lambda done, total, _variant: bar(done, total, "modality models"),
        )
    elif args.what == "live":
        from mmrec.eval.live import evaluate_live
        from mmrec.eval.live_tune import tune_live

        if args.tune:
            result = tune_live(cfg, n_users=args.users or 40, out_dir=out, log=print)
            print(json.dumps(result["chosen"]))
            return 0
        command = f"python -m mmrec evaluate live --data {cfg.paths.data_dir} --checkpoints {cfg.paths.checkpoints_dir}"
        if args.seeds != 3:
            command += f" --seeds {args.seeds}"
        if args.users:
            command += f" --users {args.users}"
        result = evaluate_live(
            cfg, seeds=seeds, n_users=args.users, out_dir=out, command=command, log=print
        )
    elif args.what == "policy":
        variants = {f"dqn γ={g:g}": {"gamma": g} for g in (args.gammas or []) if g != cfg.dqn.gamma}
        for spec in args.variant or []:
            variants[f"dqn {spec}"] = _dqn_overrides(spec, cfg.dqn)
        result = pipeline.evaluate_policy(
            cfg,
            seeds=seeds,
            out_dir=out,
            log=print,
            retrain=args.retrain or bool(variants) or bool(args.sb3),
            variants=variants,
            sb3=tuple(args.sb3 or ()),
            command="python -m mmrec " + " ".join(args.argv),  # with --config and every flag
            validation=args.validation,
        )
    else:
        cfg.policy_eval.ranking_seeds = args.seeds  # protocol (A): random splits 0..N-1
        command = "python -m mmrec " + " ".join(args.argv)  # the report names its own command
        try:
            result = pipeline.evaluate_ranking(cfg, out_dir=out, log=print, command=command)
        except ValueError as exc:  # checkpoints of another catalog: say so, never guess
            print(f"error: {exc}", file=sys.stderr)
            return 2
    md = result.get("markdown") if isinstance(result, dict) else None
    report = out / f"{args.what}.md"
    if not md and report.exists():
        md = report.read_text()
    if md:
        print(md)
    return 0


def cmd_bench(args) -> int:
    cfg = _cfg(args)
    if args.scale:
        from mmrec.scale import run_scale_bench

        out = Path(args.out if args.out != "reports/bench.json" else "reports/scale.json")
        run_scale_bench(
            cfg,
            out=out,
            sizes=args.sizes or [2000, 5000, 10000],
            parts=tuple(args.scale_parts),
            ease_caps=tuple(args.ease_caps),
            quality_data=Path(args.ease_quality_data) if args.ease_quality_data else None,
            append_growth=args.append_growth,
            synthetic={
                k: v
                for k, v in (("films", args.synthetic_films), ("users", args.synthetic_users))
                if v
            },
            sample=args.sample,
            work_dir=Path(args.work_dir) if args.work_dir else None,
            config_path=getattr(args, "config", None),
            trailer_every=args.trailer_every,
            log=print,
        )
        return 0
    from mmrec.bench import run_bench

    run_bench(cfg, out=Path(args.out), quick=args.quick, sizes=args.sizes, log=print)
    return 0


def cmd_serve(args) -> int:
    """Same as ``python main.py`` (one launcher, one set of server settings)."""
    import subprocess

    launcher = Path(__file__).resolve().parent.parent / "main.py"
    cmd = [sys.executable, str(launcher), "--port", str(args.port), "--address", args.address]
    return subprocess.call(cmd)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mmrec", description=__doc__)
    parser.add_argument("--config", help="TOML file overriding the defaults (or MMREC_CONFIG)")
    sub = parser.add_subparsers(dest="command", required=True)

    def data_args(p, checkpoints=True):
        p.add_argument("--data", help="catalog folder (default: MMREC_DATA or data/demo)")
        if checkpoints:
            p.add_argument(
                "--checkpoints",
                help="checkpoint folder (default: MMREC_CHECKPOINTS or checkpoints/demo)",
            )

    p = sub.add_parser("demo", help="generate the deterministic demo catalog")
    data_args(p, checkpoints=False)
    p.add_argument("--movies", type=int)
    p.add_argument("--users", type=int)
    p.add_argument("--seed", type=int)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser(
        "import-movielens", help="build a catalog from MovieLens + Wikipedia + posters"
    )
    from mmrec.data.movielens import add_arguments

    add_arguments(p)
    p.set_defaults(func=cmd_import)

    p = sub.add_parser("validate", help="check a catalog folder and print a summary")
    data_args(p, checkpoints=False)
    p.add_argument("--max-problems", type=int, default=50)
    p.set_defaults(func=cmd_validate)

    def ray_args(p, what):
        p.add_argument(
            "--ray",
            nargs="?",
            const="local",
            metavar="ADDRESS",
            help=f"{what} on Ray: no ADDRESS starts a local instance; 'auto' or HOST:PORT "
            "(ray://HOST:10001) joins an existing cluster",
        )
        p.add_argument("--workers", type=int, help="Ray actors (default: ray.workers, 2)")

    p = sub.add_parser("build", help="features, fusion model and DQN policy into checkpoints/")
    data_args(p)
    p.add_argument("--force", action="store_true", help="retrain even if nothing changed")
    ray_args(p, "run the encoders and the policy rollouts")
    p.set_defaults(func=cmd_build)

    p = sub.add_parser("train-policy", help="retrain only the DQN policy")
    data_args(p)
    ray_args(p, "collect the simulator episodes")
    p.set_defaults(func=cmd_train_policy)

    p = sub.add_parser(
        "train-hybrid",
        help="fit the hybrid ranker (EASE + learned residual) the app serves on real catalogs",
    )
    data_args(p)
    p.set_defaults(func=cmd_train_hybrid)

    p = sub.add_parser("setup", help="demo catalog + build when missing (used by make run)")
    data_args(p)
    p.set_defaults(func=cmd_setup)

    p = sub.add_parser("evaluate", help="write reports/*.json and markdown tables")
    p.add_argument("what", choices=["modality", "policy", "ranking", "live"])
    data_args(p)
    p.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1")
    p.add_argument(
        "--folds",
        type=_folds,
        default=5,
        help="modality: cross-validation folds per seed (>= 2; each movie tested once per seed)",
    )
    p.add_argument(
        "--bootstrap",
        type=_non_negative,
        default=1000,
        help="modality: paired bootstrap resamples of the movies for fused vs best single (0: off)",
    )
    p.add_argument("--out", default="reports", help="folder for the report files")
    p.add_argument(
        "--users", type=int, default=None, help="live: sessions per seed (default: all held-out)"
    )
    p.add_argument(
        "--retrain",
        action="store_true",
        help="policy: train the DQN per seed (training seed = evaluation seed) instead of "
        "evaluating the built one",
    )
    p.add_argument(
        "--gammas",
        type=float,
        nargs="+",
        help="policy: also train and evaluate a DQN per discount (rows 'dqn γ=G'; implies "
        "--retrain so every DQN row is trained the same way)",
    )
    p.add_argument(
        "--variant",
        action="append",
        metavar="FIELD=VALUE[,FIELD=VALUE]",
        help="policy: one more DQN row with these DQNConfig settings changed, trained per seed "
        "like the DQN (e.g. --variant dueling=true,gamma=0.9); repeatable; implies --retrain",
    )
    p.add_argument(
        "--validation",
        action="store_true",
        help="policy: never read the held-out users: train on part of the training users and "
        "evaluate on the rest, to choose settings before the test run (implies --retrain)",
    )
    p.add_argument(
        "--sb3",
        nargs="+",
        choices=["dqn", "ppo"],
        help="policy: add stable-baselines3 agents trained on the shortlist wrapper with the "
        "DQN's step budget (implies --retrain)",
    )
    p.add_argument(
        "--tune",
        action="store_true",
        help="live: grid-search the live layer on TRAINING users (writes live-tuning.json)",
    )
    p.add_argument(
        "--mask-genre-words", action="store_true", help="modality: mask genre words in synopses"
    )
    p.add_argument(
        "--masked-rows",
        action="store_true",
        help="modality: add text and fused rows with genre words masked to the unmasked table",
    )
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("bench", help="measure speed on this machine")
    data_args(p)
    p.add_argument("--out", default="reports/bench.json")
    p.add_argument("--quick", action="store_true", help="tiny sizes (smoke test)")
    p.add_argument("--sizes", type=int, nargs="*", default=None)
    p.add_argument(
        "--scale",
        action="store_true",
        help="Ray feature throughput at 1 and 2 workers, end-to-end builds at --sizes "
        "(default 2000 5000 10000) with a projection to 100,000 films, EASE (capped) and "
        "item-kNN fitted at 100,000 synthetic films (reports/scale.*)",
    )
    p.add_argument("--sample", type=int, default=240, help="--scale: movies for the Ray runs")
    p.add_argument("--trailer-every", type=int, default=20, help="--scale: k-th film has a trailer")
    p.add_argument("--work-dir", help="--scale: where the catalogs are generated (kept)")
    p.add_argument(
        "--scale-parts",
        nargs="+",
        choices=["throughput", "growth", "baselines"],
        default=["throughput", "growth", "baselines"],
        help="--scale: measure only these parts (the others are kept from the existing report)",
    )
    p.add_argument(
        "--ease-caps",
        type=int,
        nargs="+",
        default=[5_000, 10_000, 20_000],
        help="--scale baselines: EASE input caps fitted on the 100,000-film synthetic ratings",
    )
    p.add_argument(
        "--append-growth",
        action="store_true",
        help="--scale growth: keep the sizes already in the report, add (or redo) --sizes",
    )
    p.add_argument(
        "--synthetic-films",
        type=int,
        help="--scale baselines: films of the synthetic ratings (default 100,000)",
    )
    p.add_argument(
        "--synthetic-users",
        type=int,
        help="--scale baselines: users of the synthetic ratings (default 100,000)",
    )
    p.add_argument(
        "--ease-quality-data",
        help="--scale baselines: a catalog whose ratings measure what the EASE cap costs "
        "(NDCG@10 of capped vs uncapped EASE on a random 80/20 split)",
    )
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("serve", help="start the dashboard")
    p.add_argument("--port", type=int, default=5000)
    p.add_argument("--address", default="127.0.0.1")
    p.set_defaults(func=cmd_serve)

    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # reports name their own command
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())

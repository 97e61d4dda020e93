"""Rebuilding a served checkpoint folder without disturbing its readers: build a copy beside it
(in a child process at lower priority), check that the copy loads and fits the catalog, then
swap it in at once (``renameat2(RENAME_EXCHANGE)``); ``checkpoint_version`` tells caches
that a new version arrived. Split from :mod:`mmrec.pipeline` (the build stages).
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from pathlib import Path

from mmrec.built import BRANCHES, FUSION, MANIFEST, POLICY, load_built
from mmrec.config import Config
from mmrec.pipeline import _noop, build

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
            [sys.executable, "-m", "mmrec.rebuild", fh.name],
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
    """Entry of :func:`_build_in_child`: ``python -m mmrec.rebuild <job.json>``."""
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


if __name__ == "__main__":
    import sys

    raise SystemExit(_child_main(sys.argv[1:]))

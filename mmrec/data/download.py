"""Downloading a MovieLens archive and extracting it safely (no path escapes, no links, a cap
on the unzipped size). Split from :mod:`mmrec.data.movielens` (the import itself).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import stat
import tempfile
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path, PurePosixPath

from mmrec.config import MovieLensConfig

log = logging.getLogger("mmrec.data.movielens")  # the import's logger: one place to listen


def download_movielens(
    dest: str | os.PathLike,
    url: str | None = None,
    cfg: MovieLensConfig | None = None,
) -> Path:
    """Download a MovieLens zip and extract it so ``dest`` holds ``movies.csv`` etc.

    The archive goes to a temporary folder beside ``dest`` and only a complete, checked
    extraction is moved into place, so an interrupted download leaves nothing half-made.
    """
    cfg = cfg or MovieLensConfig()
    url = url or cfg.url
    dest = Path(dest)
    scheme = urllib.parse.urlparse(url).scheme
    if scheme not in ("http", "https"):
        raise ValueError(f"download URL must be http(s), got {url!r}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".mmrec-download-", dir=dest.parent))
    try:
        archive = work / "movielens.zip"
        _fetch(url, archive, cfg)
        extracted = work / "extracted"
        safe_extract_zip(archive, extracted, cfg.max_unzipped_bytes)
        root = _find_movielens_root(extracted)
        if root is None:
            raise ValueError(f"{url}: the archive has no movies.csv (top level or one folder down)")
        if dest.exists():
            raise FileExistsError(f"{dest} appeared during the download; not overwriting it")
        os.replace(root, dest)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    log.info("downloaded %s into %s", url, dest)
    return dest


def _fetch(url: str, target: Path, cfg: MovieLensConfig) -> None:
    request = urllib.request.Request(url, headers={"User-Agent": "mmrec-import/0.1"})
    # Scheme is checked to be http(s) by the caller, so urlopen cannot read local files.
    with urllib.request.urlopen(request, timeout=cfg.download_timeout_s) as response:  # noqa: S310
        status = getattr(response, "status", 200)
        if status != 200:
            raise OSError(f"{url}: HTTP {status}")
        declared = response.headers.get("Content-Length")
        expected = int(declared) if declared and declared.isdigit() else None
        if expected is not None and expected > cfg.max_download_bytes:
            raise ValueError(
                f"{url}: archive is {expected} bytes, over the limit of "
                f"{cfg.max_download_bytes} (MovieLensConfig.max_download_bytes)"
            )
        received = 0
        with open(target, "wb") as out:
            while chunk := response.read(1 << 16):
                received += len(chunk)
                # Servers may omit or misstate Content-Length; count what actually arrives.
                if received > cfg.max_download_bytes:
                    raise ValueError(
                        f"{url}: more than {cfg.max_download_bytes} bytes received; aborted"
                    )
                out.write(chunk)
    if expected is not None and received != expected:
        raise OSError(f"{url}: truncated download ({received} of {expected} bytes)")
    if received == 0:
        raise OSError(f"{url}: empty response")


def safe_extract_zip(archive: Path, dest: Path, max_total_bytes: int) -> None:
    """Extract ``archive`` into ``dest``, refusing path traversal, links and zip bombs."""
    if not zipfile.is_zipfile(archive):
        raise ValueError(f"{archive}: not a zip archive")
    dest.mkdir(parents=True, exist_ok=True)
    root = dest.resolve()
    with zipfile.ZipFile(archive) as zf:
        members = zf.infolist()
        total = sum(m.file_size for m in members)
        if total > max_total_bytes:
            raise ValueError(
                f"{archive}: would unpack to {total} bytes, over the limit of {max_total_bytes}"
            )
        for member in members:
            name = member.filename
            parts = PurePosixPath(name.replace("\\", "/")).parts
            if name.startswith(("/", "\\")) or ".." in parts or re.match(r"^[A-Za-z]:", name):
                raise ValueError(f"{archive}: unsafe path {name!r} in archive; refusing to extract")
            mode = member.external_attr >> 16
            if stat.S_ISLNK(mode):
                raise ValueError(f"{archive}: symbolic link {name!r} in archive; refusing")
            target = (dest / Path(*parts)).resolve() if parts else root
            if target != root and root not in target.parents:
                raise ValueError(f"{archive}: {name!r} escapes the target folder; refusing")
        # Checked every member first so a bad archive leaves nothing behind.
        for member in members:
            parts = PurePosixPath(member.filename.replace("\\", "/")).parts
            target = dest.joinpath(*parts)
            if member.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(member) as src, open(target, "wb") as out:
                shutil.copyfileobj(src, out, 1 << 16)


def _find_movielens_root(folder: Path) -> Path | None:
    if (folder / "movies.csv").is_file():
        return folder
    candidates = [p for p in folder.iterdir() if p.is_dir() and (p / "movies.csv").is_file()]
    return candidates[0] if len(candidates) == 1 else None

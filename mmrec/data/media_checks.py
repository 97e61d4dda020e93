"""Checking a catalog's media files before anything decodes them: paths that stay inside the
data folder (or the configured media roots), posters and trailers that open within their size
caps and decode, with the verdicts cached per (path, size, mtime) in ``.cache/filecheck.json``.
Split from :mod:`mmrec.data.catalog` (reading movies.csv and ratings.csv).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from mmrec.atomic import atomic_write_text
from mmrec.config import DataConfig
from mmrec.safeio import UnsafeFileError, check_regular, read_bytes

FILECHECK_VERSION = 3  # bump when the checks change, to invalidate the cache
MAX_FILECHECK_BYTES = 64_000_000  # the file-check cache is data too: bounded like the rest


def media_roots(data_dir: Path, cfg: DataConfig | None = None) -> list[Path]:
    """Where media may live: the data folder, plus ``cfg.media_roots`` (relative ones are taken
    relative to the data folder)."""
    roots = [data_dir.resolve()]
    for extra in (cfg.media_roots if cfg else ()) or ():
        p = Path(extra).expanduser()
        roots.append((p if p.is_absolute() else data_dir / p).resolve())
    return roots


def resolve_media(
    data_dir: Path, rel: str, cfg: DataConfig | None = None
) -> tuple[Path | None, str | None]:
    """Resolve a media path relative to the data folder; refuse anything that leaves it (and
    the configured media roots)."""
    rel = rel.strip()
    if not rel:
        return None, None
    if os.path.isabs(rel) or rel.startswith(("~", "\\")) or re.match(r"^[A-Za-z]:", rel):
        return (
            None,
            f"absolute path '{rel}' refused: media paths must be relative to the data folder",
        )
    root = data_dir.resolve()
    target = (root / rel).resolve()
    roots = media_roots(data_dir, cfg)
    if not any(r == target or r in target.parents for r in roots):
        return None, (
            f"path '{rel}' leaves the data folder: refused (to allow a media folder outside "
            "the catalog, list it in [data] media_roots or MMREC_MEDIA_ROOTS)"
        )
    return target, None


def _check_image(path: Path, cfg: DataConfig) -> str | None:
    from PIL import Image

    try:
        with read_open(path, cfg.max_poster_bytes, "poster") as fh, Image.open(fh) as im:
            w, h = im.size
            if w * h > cfg.max_image_pixels:
                return f"image too large ({w}x{h} pixels > {cfg.max_image_pixels})"
            if im.format == "JPEG":
                im.draft("RGB", (max(1, w // 8), max(1, h // 8)))  # decode cheaply, still whole
            im.load()
    except UnsafeFileError as exc:
        return str(exc).split(": ", 1)[-1]
    except Exception as exc:  # any decoder failure means: this poster is unusable
        return f"unreadable image ({type(exc).__name__}: {exc})"
    return None


def read_open(path: Path, max_bytes: int, what: str):
    """A regular file opened for reading within its cap (see :mod:`mmrec.safeio`)."""
    from mmrec.safeio import open_regular

    return open_regular(path, max_bytes, what=what)


def _check_audio(path: Path, cfg: DataConfig) -> str | None:
    import soundfile as sf

    try:
        with read_open(path, cfg.max_audio_bytes, "trailer") as raw, sf.SoundFile(raw) as fh:
            if fh.frames <= 0 or fh.samplerate <= 0:
                return "audio has no samples"
            block = fh.read(frames=min(4096, fh.frames), dtype="float32")  # headers can lie
            if len(block) == 0:
                return "audio has no decodable samples"
    except UnsafeFileError as exc:
        return str(exc).split(": ", 1)[-1]
    except Exception as exc:
        return f"unreadable audio ({type(exc).__name__}: {exc})"
    return None


class _FileChecks:
    """Cache of media checks keyed by (path, size, mtime)."""

    def __init__(self, data_dir: Path):
        self.path = data_dir / ".cache" / "filecheck.json"
        self.entries: dict[str, str] = {}
        self.dirty = False
        try:
            raw = json.loads(read_bytes(self.path, MAX_FILECHECK_BYTES))
            if raw.get("version") == FILECHECK_VERSION:
                self.entries = raw["entries"]
        except (OSError, ValueError, KeyError, AttributeError):
            pass

    def check(self, path: Path, kind: str, cfg: DataConfig) -> str | None:
        cap = cfg.max_poster_bytes if kind == "image" else cfg.max_audio_bytes
        refused = check_regular(path, cap, what="poster" if kind == "image" else "trailer")
        if refused:  # FIFOs, devices, oversize files: never opened, never cached
            return refused
        st = path.stat()
        key = f"{kind}:{path}:{st.st_size}:{st.st_mtime_ns}"
        if key in self.entries:
            return self.entries[key] or None
        result = _check_image(path, cfg) if kind == "image" else _check_audio(path, cfg)
        self.entries[key] = result or ""
        self.dirty = True
        return result

    def save(self) -> None:
        if not self.dirty:
            return
        try:
            payload = {"version": FILECHECK_VERSION, "entries": self.entries}
            atomic_write_text(self.path, json.dumps(payload))
        except OSError:
            pass  # a read-only data folder still loads; it just re-checks next time

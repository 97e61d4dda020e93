"""Atomic file writes: a temp file in the same folder, fsync, then ``os.replace``.

A reader (or a process killed mid-write) sees either the old file or the new one, never a torn
one. The temp name comes from ``mkstemp``, so concurrent writers in one process (Streamlit
sessions are threads) never share a temp file. Every writer in the package goes through here:
reports, manifests, the feature cache, catalogs (demo, import, hidden users) and checkpoints.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


def atomic_write(
    path: str | os.PathLike,
    write: Callable[[BinaryIO], None],
    *,
    mode: int = 0o644,
    fsync: bool = True,
    fsync_dir: bool = False,
) -> Path:
    """Call ``write(fh)`` on a binary temp file, then move it over ``path``.

    ``mode``: the file's permissions (mkstemp makes 0600; catalogs and reports are shared
    read-only). ``fsync=False`` skips the flush to disk (bulk media, where a crash can only
    leave an older complete file); ``fsync_dir`` also syncs the folder so the rename itself
    survives a power cut (POSIX; checkpoints)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), mode)
            write(fh)
            if fsync:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    if fsync_dir and hasattr(os, "O_DIRECTORY"):
        try:
            dir_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
        except OSError:
            return path
        try:
            os.fsync(dir_fd)
        except OSError:
            pass
        finally:
            os.close(dir_fd)
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write UTF-8 text atomically."""
    data = text.encode("utf-8")
    return atomic_write(path, lambda fh: fh.write(data))

"""Bounded, inert handling of files and text that come from a data folder.

Every file the package reads from a catalog goes through :func:`check_regular` or
:func:`open_regular` first:

- only regular files are opened: a FIFO would block ``open()`` forever, ``/dev/zero`` never
  ends, a device may have side effects; they are refused from ``stat`` before any ``open``, and
  the open itself is non-blocking and re-checked with ``fstat`` (the file may be swapped
  between the two);
- a file whose real path (symlinks resolved) leaves the allowed roots is refused;
- every file has a size cap (CSVs, posters, trailers: ``DataConfig.max_*_bytes``), checked on
  the size before reading, and reads stop at the cap even if the file grows meanwhile.

Text that reaches a terminal or a page inside a message (ids, titles, paths) goes through
:func:`escape`: C0/C1 control characters (terminal escape sequences, newlines that fake extra
lines) and Unicode bidi controls (which reorder what a reader sees) become visible ``\\xNN`` /
``\\uNNNN`` escapes. :func:`visible` says whether a title shows anything at all.
"""

from __future__ import annotations

import os
import re
import stat
import unicodedata
from pathlib import Path

# C0 and C1 controls, DEL, and the Unicode bidi / line-separator controls
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
# characters that render as nothing although their category says "letter" or "symbol"
_BLANK = frozenset("\u115f\u1160\u3164\uffa0\u2800\u180e")
_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zs", "Zl", "Zp", "Mn", "Me"})


class UnsafeFileError(OSError):
    """A file refused before (or instead of) being read; the message names the file."""


def escape(text) -> str:
    """``text`` with control and bidi characters replaced by visible escapes."""

    def sub(m: re.Match) -> str:
        c = ord(m.group(0))
        return f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}"

    return _UNSAFE.sub(sub, "" if text is None else str(text))


def visible(text: str) -> bool:
    """True when the text has at least one character that renders as something."""
    return any(
        c not in _BLANK and unicodedata.category(c) not in _INVISIBLE_CATEGORIES
        for c in str(text or "")
    )


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISDIR(mode):
        return "a directory"
    return "not a regular file"


def _mb(n: int) -> str:
    return f"{n / 1e6:,.1f} MB" if n >= 1e5 else f"{n:,} bytes"


def inside(path: Path, roots) -> bool:
    """Is the (already resolved) ``path`` one of ``roots`` or below one of them?"""
    for root in roots:
        root = Path(root).resolve()
        if path == root or root in path.parents:
            return True
    return False


def check_regular(path, max_bytes: int | None = None, roots=None, what: str = "file") -> str | None:
    """Why ``path`` must not be opened (None when it may be): missing, not a regular file,
    larger than ``max_bytes``, or (with ``roots``) its real path leaves them. Never opens it."""
    path = Path(path)
    if roots is not None:
        real = path.resolve()
        if not inside(real, roots):
            return f"{what} links to {escape(real)}, outside the allowed folders: refused"
    try:
        st = os.stat(path)  # follows symlinks: the target is what would be opened
    except FileNotFoundError:
        return "file not found"
    except OSError as exc:
        return f"cannot stat ({type(exc).__name__}: {escape(exc)})"
    if not stat.S_ISREG(st.st_mode):
        return f"{what} is {_kind(st.st_mode)}, not a regular file: refused"
    if max_bytes is not None and st.st_size > max_bytes:
        return f"{what} too large ({_mb(st.st_size)} > cap {_mb(max_bytes)}): refused"
    return None


def open_regular(path, max_bytes: int | None = None, roots=None, what: str = "file"):
    """Open ``path`` for binary reading after :func:`check_regular`; raises
    :class:`UnsafeFileError` naming the file. The open does not block on a FIFO swapped in after
    the check, and ``fstat`` on the open descriptor is checked again."""
    path = Path(path)
    problem = check_regular(path, max_bytes, roots, what)
    if problem:
        raise UnsafeFileError(f"{escape(path)}: {problem}")
    flags = os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0)

    def opener(name, mode_flags):
        fd = os.open(name, mode_flags | flags)
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise UnsafeFileError(f"{escape(path)}: {what} is {_kind(st.st_mode)}: refused")
            if max_bytes is not None and st.st_size > max_bytes:
                raise UnsafeFileError(
                    f"{escape(path)}: {what} too large ({_mb(st.st_size)} > cap {_mb(max_bytes)})"
                )
            os.set_blocking(fd, True)
        except BaseException:
            os.close(fd)
            raise
        return fd

    return open(path, "rb", opener=opener)  # .name stays the path (messages, instrumentation)


def read_bytes(path, max_bytes: int, roots=None, what: str = "file") -> bytes:
    """The whole file, refused (:class:`UnsafeFileError`) beyond ``max_bytes`` even if it grows
    while being read."""
    with open_regular(path, max_bytes, roots, what) as fh:
        size = os.fstat(fh.fileno()).st_size
        parts, total = [], 0
        while total <= max_bytes:  # read what stat promised, then stop at EOF or past the cap
            chunk = fh.read(max(size - total, 0) + 1 if total < size else 1 << 20)
            if not chunk:
                break
            parts.append(chunk)
            total += len(chunk)
        data = b"".join(parts)
    if len(data) > max_bytes:
        raise UnsafeFileError(f"{escape(path)}: {what} grew beyond the cap {_mb(max_bytes)}")
    return data

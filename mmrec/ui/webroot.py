"""The page Streamlit hands the browser, told where the server is: a deep link logs no 404s.

Streamlit's front end does not know whether the app is served at the site's root or under a
path prefix. Opened at ``/why`` it first probes ``/why/_stcore/health`` and
``/why/_stcore/host-config`` (404: the server answers those only at its base path), then falls
back to ``/_stcore/...``. Every deep link and every reload of a page other than the first
therefore logged two "Failed to load resource: 404" errors in the browser console (issue 15).

The front end skips the probe when the page defines ``window.__streamlit.BACKEND_BASE_URL``
(Streamlit's own hook for hosts that embed it). :func:`install`, called by ``main.py`` before
the server starts, serves Streamlit's static folder through a linked copy whose ``index.html``
sets it to the server's real base (``server.baseUrlPath``, read when the server builds its
routes, after the command line is parsed). Nothing else changes: the other files are links to
the installed ones. ``streamlit run streamlit_app.py`` (without ``main.py``) still probes.
"""

from __future__ import annotations

import atexit
import json
import shutil
import tempfile
from pathlib import Path

MARK = "mmrec: backend base url"


def base_url_script(base_path: str) -> str:
    """The inline script that names the server's base: the page's origin + ``/base_path``."""
    base = "/" + base_path.strip("/") if base_path.strip("/") else "/"
    return (
        f"<script>/* {MARK} */ window.__streamlit = Object.assign("
        f"{{BACKEND_BASE_URL: window.location.origin + {json.dumps(base)}}}, "
        "window.__streamlit || {});</script>"
    )


def with_base_url(index_html: str, base_path: str) -> str:
    """``index.html`` with the script first in ``<head>`` (before Streamlit's own bundle)."""
    if MARK in index_html or "<head>" not in index_html:
        return index_html
    return index_html.replace("<head>", "<head>\n    " + base_url_script(base_path), 1)


def linked_copy(static_dir: Path, dest: Path, base_path: str) -> Path:
    """``dest`` holding a link to every entry of ``static_dir`` but ``index.html``, which is
    rewritten by :func:`with_base_url`."""
    dest.mkdir(parents=True, exist_ok=True)
    for entry in static_dir.iterdir():
        if entry.name != "index.html":
            (dest / entry.name).symlink_to(entry.resolve())
    index = (static_dir / "index.html").read_text(encoding="utf-8")
    (dest / "index.html").write_text(with_base_url(index, base_path), encoding="utf-8")
    return dest


def install() -> None:
    """Serve Streamlit's static folder with the base URL set (call before the server starts).

    Streamlit asks ``file_util.get_static_dir()`` once, when it builds its routes; the linked
    copy is made then, in a temporary folder removed at exit. Any failure leaves Streamlit's
    own folder in place (the app works; deep links then log the probe's 404s)."""
    from streamlit import config, file_util

    original = file_util.get_static_dir
    made: dict[str, str] = {}

    def static_dir() -> str:
        real = original()
        try:
            base = str(config.get_option("server.baseUrlPath") or "")
            if base not in made:
                dest = Path(tempfile.mkdtemp(prefix="mmrec-static-"))
                atexit.register(shutil.rmtree, dest, ignore_errors=True)
                made[base] = str(linked_copy(Path(real), dest / "static", base))
            return made[base]
        except OSError:
            return real

    file_util.get_static_dir = static_dir

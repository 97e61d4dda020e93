"""Safety (issue 8), checked statically over the source with ``ast`` and by launching nothing:

- no unpickling of data or checkpoints: every ``torch.load`` passes ``weights_only=True``; no
  ``pickle.load(s)`` / ``Unpickler`` / ``pd.read_pickle`` / ``joblib.load`` / ``dill``; no
  ``np.load(..., allow_pickle=True)``;
- catalog text never reaches raw HTML: ``unsafe_allow_html`` is only ever given constant text,
  and ``st.html`` / ``components.html`` only constant strings;
- the dashboard binds to 127.0.0.1 by default (``.streamlit/config.toml``, ``main.py``,
  ``python -m mmrec serve``).

Each scanner is also run on a small bad snippet, so the checks are known to fire.
"""

from __future__ import annotations

import ast
import sys
import tomllib
from pathlib import Path

import pytest
from source_ast import parse

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "mmrec"
UI_FILES = [REPO / "streamlit_app.py", REPO / "main.py", *sorted((REPO / "pages").glob("*.py"))]
UI_FILES += sorted((PACKAGE / "ui").glob("*.py"))


def _sources(paths) -> list[tuple[str, str]]:
    return [(str(p.relative_to(REPO)), p.read_text()) for p in paths if p.is_file()]


def _dotted(node: ast.AST) -> str:
    """'torch.load' for Attribute(Name('torch'), 'load'); '' for anything dynamic."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return ""


def _aliases(tree: ast.AST) -> dict[str, str]:
    """Local name -> full dotted name for imports (``import numpy as np``, ``from torch import load``)."""
    out = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                out[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.module:
            for a in node.names:
                out[a.asname or a.name] = f"{node.module}.{a.name}"
    return out


def _full_name(call: ast.Call, aliases: dict[str, str]) -> str:
    name = _dotted(call.func)
    if not name:
        return ""
    head, _, rest = name.partition(".")
    head = aliases.get(head, head)
    return f"{head}.{rest}" if rest else head


def _kw(call: ast.Call, name: str):
    for k in call.keywords:
        if k.arg == name:
            return k.value
    return None


def _is_const(node, value) -> bool:
    return isinstance(node, ast.Constant) and node.value is value


def scan_unpickling(sources) -> list[str]:
    bad = []
    banned = {
        "pickle.load", "pickle.loads", "pickle.Unpickler", "_pickle.load", "_pickle.loads",
        "cPickle.load", "cPickle.loads", "dill.load", "dill.loads", "joblib.load",
        "pandas.read_pickle", "pd.read_pickle", "shelve.open", "marshal.load", "marshal.loads",
        "torch.serialization.load",
    }  # fmt: skip
    for rel, text in sources:
        tree = parse(text, rel)
        aliases = _aliases(tree)
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            name = _full_name(node, aliases)
            where = f"{rel}:{node.lineno}"
            if name in banned or name.endswith(".read_pickle"):
                bad.append(f"{where}: {name}(...) unpickles arbitrary objects")
            elif name == "torch.load" and not _is_const(_kw(node, "weights_only"), True):
                bad.append(f"{where}: torch.load without weights_only=True")
            elif name in ("numpy.load", "np.load"):
                ap = _kw(node, "allow_pickle")
                if ap is not None and not _is_const(ap, False):
                    bad.append(f"{where}: np.load with allow_pickle={ast.unparse(ap)}")
    return bad


def _constant_text(node) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str)


def _constant_names(sources) -> set[str]:
    """Module-level names bound exactly once, to a constant string, in the scanned files.

    Such a name (a stylesheet kept next to the code it styles, say) is as safe to render as the
    literal itself: nothing at run time can change it. A name bound twice anywhere, or to
    anything else, does not count.
    """
    seen: dict[str, int] = {}
    constant: set[str] = set()
    for rel, text in dict(sources).items():  # a file listed twice is still one binding
        for node in ast.walk(parse(text, rel)):
            targets = []
            if isinstance(node, ast.Assign):
                targets = [t for t in node.targets if isinstance(t, ast.Name)]
            elif isinstance(node, (ast.AnnAssign, ast.AugAssign)) and isinstance(
                node.target, ast.Name
            ):
                targets = [node.target]
            for t in targets:
                seen[t.id] = seen.get(t.id, 0) + 1
                if isinstance(node, ast.Assign) and _constant_text(node.value):
                    constant.add(t.id)
    return {n for n in constant if seen[n] == 1}


def scan_raw_html(sources) -> list[str]:
    """Calls that render raw HTML with anything but a constant string (literal or constant name)."""
    sources = list(sources)
    constants = _constant_names(sources)
    bad = []
    for rel, text in sources:
        tree = parse(text, rel)
        aliases = _aliases(tree)
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            name = _full_name(node, aliases)
            where = f"{rel}:{node.lineno}"
            unsafe = _kw(node, "unsafe_allow_html")
            raw_html = name.endswith(".html") and (
                name.startswith("streamlit") or "components" in name or name.startswith("st.")
            )
            if unsafe is not None and not _is_const(unsafe, False) or raw_html:
                args = list(node.args) + [
                    k.value for k in node.keywords if k.arg in ("body", "html")
                ]
                if not args or not all(
                    _constant_text(a) or (isinstance(a, ast.Name) and a.id in constants)
                    for a in args
                ):
                    bad.append(f"{where}: {ast.unparse(node)[:120]} renders non-constant raw HTML")
    return bad


# ----------------------------------------------------------------------------- the checks fire


BAD_SNIPPET = """
import pickle, torch
import numpy as np
from torch import load as tload
import pandas as pd
import streamlit as st
import streamlit.components.v1 as components
pickle.loads(b"")
torch.load("x.pt")
torch.load("x.pt", weights_only=False)
tload("x.pt")
np.load("x.npy", allow_pickle=True)
pd.read_pickle("x")
st.markdown(f"<b>{title}</b>", unsafe_allow_html=True)
st.markdown("<b>" + movie["overview"] + "</b>", unsafe_allow_html=flag)
st.html(pick.title)
components.html(synopsis)
CSS = "<style>.a{}</style>"
CSS = title
st.html(CSS)
"""
GOOD_SNIPPET = """
import torch, numpy as np, streamlit as st
torch.load("x.pt", map_location="cpu", weights_only=True)
np.load("x.npz", allow_pickle=False)
np.load("x.npz")
st.markdown("<style>.x{}</style>", unsafe_allow_html=True)
st.markdown(title)
STYLE = "<style>.b{}</style>"
st.html(STYLE)
"""


def test_scanners_fire_on_bad_code_and_pass_good_code():
    unpickle = scan_unpickling([("bad.py", BAD_SNIPPET)])
    assert len(unpickle) == 6, unpickle
    html = scan_raw_html([("bad.py", BAD_SNIPPET)])
    assert len(html) == 5, html
    assert scan_unpickling([("good.py", GOOD_SNIPPET)]) == []
    assert scan_raw_html([("good.py", GOOD_SNIPPET)]) == []


# ----------------------------------------------------------------------------- the real source


def test_no_unpickling_anywhere_in_the_project():
    files = sorted(PACKAGE.rglob("*.py")) + UI_FILES
    assert len(files) > 10
    bad = scan_unpickling(_sources(files))
    assert not bad, "\n".join(bad)


def test_catalog_text_never_reaches_raw_html():
    files = UI_FILES + sorted(PACKAGE.rglob("*.py"))
    bad = scan_raw_html(_sources(files))
    assert not bad, "\n".join(bad)


def test_streamlit_config_binds_localhost():
    path = REPO / ".streamlit" / "config.toml"
    assert path.is_file(), ".streamlit/config.toml missing"
    conf = tomllib.loads(path.read_text())
    server = conf.get("server", {})
    assert server.get("address") == "127.0.0.1"
    # the protections Streamlit has on by default stay on
    assert server.get("enableXsrfProtection", True) is True
    assert server.get("enableCORS", True) is True
    assert conf.get("browser", {}).get("gatherUsageStats") is False


def test_config_default_address_is_localhost():
    from mmrec.config import Config

    assert Config().ui.address == "127.0.0.1"


def _launcher():
    if not (REPO / "main.py").is_file():
        pytest.fail("main.py missing (the dashboard launcher)")
    sys.path.insert(0, str(REPO))
    try:
        import main as launcher
    finally:
        sys.path.remove(str(REPO))
    return launcher


def test_main_py_launches_on_localhost(monkeypatch):
    """The streamlit command line main.py builds binds 127.0.0.1 unless told otherwise. Nothing
    is served here (no in-process server, so Streamlit's process-wide pages flag stays as it
    was); tests/app/test_main.py starts the real server and reads its bind address."""
    launcher = _launcher()
    argv = launcher.streamlit_argv(None, None, [])
    assert argv[:3] == ["streamlit", "run", str(REPO / "streamlit_app.py")], argv
    assert argv[argv.index("--server.address") + 1] == "127.0.0.1", argv
    assert argv[argv.index("--server.port") + 1] == "5000", argv
    moved = launcher.streamlit_argv(8123, "0.0.0.0", ["--x", "y"])
    assert moved[moved.index("--server.address") + 1] == "0.0.0.0"
    assert moved[moved.index("--server.port") + 1] == "8123" and moved[-2:] == ["--x", "y"]
    # main() hands its flags to serve() unchanged (serve replaced: it would start the server)
    calls = []
    monkeypatch.setattr(launcher, "serve", lambda *a: calls.append(a) or 0)
    assert launcher.main([]) == 0 and launcher.main(["--port", "7"]) == 0
    assert calls == [(None, None, []), (7, None, [])]


def test_cli_serve_defaults_to_localhost(monkeypatch):
    """``python -m mmrec serve`` runs main.py with an explicit 127.0.0.1 (subprocess.call is
    replaced: it would start the server)."""
    import subprocess

    from mmrec import __main__ as cli

    calls = []
    monkeypatch.setattr(subprocess, "call", lambda cmd, *a, **k: calls.append(cmd) or 0)
    assert cli.main(["serve"]) == 0
    (cmd,) = calls
    cmd = [str(c) for c in cmd]
    assert Path(cmd[1]) == REPO / "main.py", cmd
    assert cmd[cmd.index("--address") + 1] == "127.0.0.1", cmd
    assert cmd[cmd.index("--port") + 1] == "5000", cmd

"""The layering of docs/ARCHITECTURE.md, checked statically over every module of the package.

Contracts (an import anywhere in a module counts, lazy imports inside functions included: they
are dependencies all the same):

- ``mmrec.data`` never imports ``mmrec.models``, ``mmrec.rl``, ``mmrec.ui``;
- ``mmrec.models`` never imports ``mmrec.rl``, ``mmrec.ui``;
- nothing outside ``mmrec.ui`` imports ``mmrec.ui`` (the core does not know the dashboard),
  except the tools in ``UI_CLIENTS`` that exist to drive the dashboard;
- ``mmrec.explain`` never imports ``mmrec.service`` (it reads a ``ServingState``);
- ``mmrec.values`` (the shared value types) imports nothing from the package;
- ``mmrec.media`` (decoding, digests, bundled music) imports only ``mmrec.safeio`` and never
  torch, checked statically and in a fresh interpreter;
- ``mmrec.ui`` never imports ``mmrec.features`` (it decodes media through ``mmrec.media``).

And no import cycle among modules at import time (module-level imports only: a function-level
import runs after both modules are loaded).
"""

from __future__ import annotations

import ast
from pathlib import Path

from source_ast import parse

PACKAGE = Path(__file__).resolve().parents[2] / "mmrec"

FORBIDDEN = {
    "mmrec.data": ("mmrec.models", "mmrec.rl", "mmrec.ui"),
    "mmrec.models": ("mmrec.rl", "mmrec.ui"),
    # the facade is one class in three modules (mmrec.service + its two mixins)
    "mmrec.explain": ("mmrec.service", "mmrec.service_browse", "mmrec.service_explain"),
    "mmrec.values": ("mmrec",),
    "mmrec.ui": ("mmrec.features",),
}
# Modules that must stay light (third-party packages they never import, each with why).
NO_THIRD_PARTY = {"mmrec.media": ("torch",)}  # the dashboard and the demo decode without torch
ONLY_FROM_PACKAGE = {"mmrec.media": ("mmrec.safeio",)}  # media sits below every other layer
# Modules above the UI layer, allowed to import it (each with why).
UI_CLIENTS = {"mmrec.bench": "times the dashboard itself (AppTest runs, Chromium page loads)"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path: Path, top_level_only: bool = False, package_only: bool = True) -> set[str]:
    """Every mmrec module ``path`` imports (``from a import b`` counts as a and a.b); with
    ``package_only=False`` every module, third-party ones included."""
    tree = parse(path.read_text(), str(path))
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    nodes = tree.body if top_level_only else ast.walk(tree)
    found = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative import
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            found.add(base)
            found |= {f"{base}.{a.name}" for a in node.names}
    if not package_only:
        return found
    return {m for m in found if m == "mmrec" or m.startswith("mmrec.")}


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def violations() -> list[str]:
    found = []
    for name, path in modules().items():
        deps = imports(path)
        for package, banned in FORBIDDEN.items():
            if within(name, package):
                found += [
                    f"{name} imports {d}"
                    for d in sorted(deps)
                    if any(within(d, b) for b in banned) and not within(d, package)
                ]
        for package, banned in NO_THIRD_PARTY.items():
            if within(name, package):
                every = imports(path, package_only=False)
                found += [
                    f"{name} imports {d}"
                    for d in sorted(every)
                    if any(within(d, b) for b in banned)
                ]
        for package, allowed in ONLY_FROM_PACKAGE.items():
            if within(name, package):
                found += [
                    f"{name} imports {d}"
                    for d in sorted(deps)
                    if not any(within(d, a) for a in allowed) and not within(d, package)
                ]
        if not within(name, "mmrec.ui") and name not in UI_CLIENTS:
            found += [f"{name} imports {d}" for d in sorted(deps) if within(d, "mmrec.ui")]
    return found


def cycles() -> list[list[str]]:
    mods = modules()
    graph = {
        name: {d for d in imports(path, top_level_only=True) if d in mods and d != name}
        for name, path in mods.items()
    }
    seen, stack, on_stack, out = set(), [], set(), []

    def visit(node):
        seen.add(node)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt in on_stack:
                out.append(stack[stack.index(nxt) :] + [nxt])
            elif nxt not in seen:
                visit(nxt)
        stack.pop()
        on_stack.discard(node)

    for node in sorted(graph):
        if node not in seen:
            visit(node)
    # a package's __init__ importing its own submodules is how packages work, not a cycle
    return [c for c in out if not all(within(m, c[0]) or within(c[0], m) for m in c)]


def test_import_contracts_hold():
    assert violations() == []


def test_media_loads_without_torch():
    """Importing the media module (and what it imports) in a fresh interpreter loads no torch."""
    import os
    import subprocess
    import sys

    code = "import sys, mmrec.media; print('torch' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=PACKAGE.parent,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(PACKAGE.parent)},
    )
    assert out.stdout.strip() == "False", out.stderr


def test_no_import_cycle_at_import_time():
    assert cycles() == []


def test_the_checks_fire_on_a_bad_tree(tmp_path):
    bad = tmp_path / "mmrec"
    for rel, text in {
        "__init__.py": "",
        "values.py": "from mmrec.config import Config\n",
        "config.py": "",
        "data/__init__.py": "",
        "data/catalog.py": "def f():\n    from mmrec.rl import dqn\n",
        "rl/__init__.py": "",
        "rl/dqn.py": "",
        "explain/__init__.py": "",
        "explain/explainer.py": "from mmrec import service\n",
        "service.py": "from mmrec.explain.explainer import Explainer\nimport mmrec.ui.loaders\n",
        "ui/__init__.py": "",
        "ui/loaders.py": "from mmrec.features.image import decode_image\n",
        "features/__init__.py": "",
        "features/image.py": "",
        "media.py": "import numpy\nfrom mmrec.safeio import open_regular\n"
        "def f():\n    import torch.nn\n    from mmrec.config import Config\n",
        "safeio.py": "",
    }.items():
        (bad / rel).parent.mkdir(parents=True, exist_ok=True)
        (bad / rel).write_text(text)
    globals()["PACKAGE"] = bad
    try:
        found = violations()
        loops = cycles()
    finally:
        globals()["PACKAGE"] = Path(__file__).resolve().parents[2] / "mmrec"
    assert "mmrec.data.catalog imports mmrec.rl" in found
    assert "mmrec.explain.explainer imports mmrec.service" in found
    assert "mmrec.service imports mmrec.ui.loaders" in found
    assert "mmrec.values imports mmrec.config" in found
    assert "mmrec.ui.loaders imports mmrec.features.image" in found
    assert "mmrec.media imports torch.nn" in found
    assert "mmrec.media imports mmrec.config" in found
    assert not [f for f in found if "numpy" in f or "safeio" in f]
    assert ["mmrec.explain.explainer", "mmrec.service", "mmrec.explain.explainer"] in loops

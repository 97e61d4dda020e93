"""``ast.parse`` for the tests that read the project's own source (import contracts, safety).

CPython 3.11 (3.11.7 here) can fail an ``ast.parse`` with a spurious ``SystemError: AST
constructor recursion depth mismatch`` (CPython gh-106905, the AST constructor's recursion-depth
bookkeeping; reported as rare and in processes with several threads). The test process runs
torch, Ray and Streamlit threads, and one clean-clone CI run hit it once in ``test_ray``. The
parse is retried on that error alone, with the garbage collector paused (so no finalizer runs
Python code in the middle of it); any other error, and a third failure, are raised.
"""

from __future__ import annotations

import ast
import gc


def parse(source: str, filename: str = "<unknown>") -> ast.Module:
    for attempt in range(3):
        enabled = gc.isenabled()
        gc.disable()
        try:
            return ast.parse(source, filename)
        except SystemError as exc:
            if "recursion depth mismatch" not in str(exc) or attempt == 2:
                raise
        finally:
            if enabled:
                gc.enable()
    raise AssertionError("unreachable")

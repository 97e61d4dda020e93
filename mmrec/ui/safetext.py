"""Catalog text made safe to show: titles and synopses are user data.

They go through :func:`md` before any Markdown call, through :func:`hover` (``html.escape``)
before plotly hover text, and never into ``unsafe_allow_html``.
"""

from __future__ import annotations

import html
import re

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:^=])")


def md(text) -> str:
    """Catalog text made inert for ``st.markdown``: every Markdown/HTML-significant character is
    backslash-escaped and newlines flattened, so ``<img src=x onerror=...>`` shows as text."""
    s = "" if text is None else str(text)
    s = s.replace("\r", " ").replace("\n", " ")
    return _MD_SPECIAL.sub(r"\\\1", s)


def hover(text) -> str:
    """Catalog text for plotly hover labels (plotly parses a small HTML subset)."""
    return html.escape("" if text is None else str(text), quote=True)


def short(text: str, limit: int) -> str:
    """The synopsis cut at a word boundary near ``limit`` characters."""
    text = " ".join(str(text or "").split())
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0]
    return cut.rstrip(",.;:") + " …"


def title_line(title: str, year) -> str:
    """Markdown for "**Title** (year)" with the title escaped."""
    return f"**{md(title)}**" + (f" ({int(year)})" if year else "")

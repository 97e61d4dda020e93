"""MovieLens titles parsed and joined to Wikipedia synopses (a normalised title + year).

MovieLens writes "Matrix, The (1999)" and alternative titles in parentheses, Wikipedia writes
"The Matrix"; :func:`parse_movielens_title` turns the first into every key it may be filed
under and :func:`join_wikipedia` picks one entry per movie (exact keys first, then a year
within the tolerance). Split from :mod:`mmrec.data.movielens` (the import itself).
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mmrec.data.movielens import _Problems

WIKIPEDIA_BASE = "https://en.wikipedia.org/wiki/"


# Articles MovieLens moves to the end ("Matrix, The", "Avventura, L'"). English ones plus
# the foreign ones that occur in its alternative titles ("Postino, Il").
_TRAILING_ARTICLE = re.compile(
    r"^(?P<rest>.+), (?P<article>The|A|An|Les|La|Le|L'|Il|Lo|Gli|I|Das|Der|Die|Den|Det|"
    r"El|Los|Las|Un|Une|Una|Ein|Eine)$"
)
# "(1999)" or a series range "(2006-2007)" at the very end of a MovieLens title.
_YEAR_SUFFIX = re.compile(r"\s*\((?P<year>\d{4})(?:\s*[-\u2013]\s*(?:\d{4})?)?\)\s*$")
# Wikipedia disambiguation that leaked into a title: "(film)", "(1920 film)", "(re-release)".
_WIKI_QUALIFIER = re.compile(
    r"\s*\((?:[^()]*\b(?:film|serial|release|re-release|TV special|cut)\b[^()]*)\)\s*$",
    re.IGNORECASE,
)
# A few titles carry MediaWiki CSS for fractions ("Naked Gun .mw-parser-output ... 33+1/3").
_WIKI_CSS = re.compile(r"\.mw-parser-output.*\}")
_LEADING_ARTICLE = re.compile(r"^(?:the|a|an) ")


# ----------------------------------------------------------------------------- titles


def front_article(title: str) -> str:
    """ "Matrix, The" -> "The Matrix"; "Avventura, L'" -> "L'Avventura"; others unchanged."""
    title = title.strip()
    m = _TRAILING_ARTICLE.match(title)
    if not m:
        return title
    article = m.group("article")
    # An elided article ("L'") attaches to the word without a space.
    sep = "" if article.endswith("'") else " "
    return f"{article}{sep}{m.group('rest')}"


def normalise_title(title: str, drop_article: bool = True) -> str:
    """Matching key: accents, case, punctuation and (by default) a leading article removed.

    "The Matrix", "Matrix, The" and "matrix" all give "matrix"; "Dumb & Dumber" and
    "Dumb and Dumber" both give "dumb and dumber". ``drop_article=False`` keeps "the matrix"
    apart from "matrix", for the looser year matches where "The Captive" != "Captive".
    """
    text = front_article(title)
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    text = text.casefold().replace("&", " and ")
    # Apostrophes join ("Don't" -> "dont") so they match titles typed without them.
    text = re.sub(r"['\u2019`]", "", text)
    text = re.sub(r"[^0-9a-z]+", " ", text).strip()
    return _LEADING_ARTICLE.sub("", text) if drop_article else text


def _split_trailing_groups(title: str) -> tuple[str, list[str]]:
    """Peel balanced "(...)" groups off the end: "A (B) (C)" -> ("A", ["B", "C"])."""
    groups: list[str] = []
    rest = title.strip()
    while rest.endswith(")"):
        depth = 0
        start = -1
        for i in range(len(rest) - 1, -1, -1):
            if rest[i] == ")":
                depth += 1
            elif rest[i] == "(":
                depth -= 1
                if depth == 0:
                    start = i
                    break
        if start <= 0:  # unbalanced, or the whole title is one group ("(Untitled)")
            break
        head = rest[:start].rstrip()
        if not head:
            break
        groups.insert(0, rest[start + 1 : -1].strip())
        rest = head
    return rest, groups


def _clean_alternative(text: str) -> str:
    text = re.sub(r"^(?:a\.k\.a\.|aka)\s+", "", text.strip(), flags=re.IGNORECASE)
    return front_article(text)


@dataclass(frozen=True)
class ParsedTitle:
    display: str  # human title: article in front, no year, alternatives kept in parentheses
    year: int | None  # from the "(YEAR)" suffix; None when MovieLens gives none
    keys: tuple[str, ...]  # normalised matching keys, most specific first
    strict_keys: frozenset[str]  # the same candidates with their leading article kept


def parse_movielens_title(raw: str) -> ParsedTitle:
    """Split a MovieLens title into display title, year and candidate matching keys.

    "City of Lost Children, The (Cité des enfants perdus, La) (1995)" gives display
    "The City of Lost Children (La Cité des enfants perdus)", year 1995, and keys for the
    whole title, the main title and each alternative ("a.k.a." stripped).
    """
    text = raw.strip()
    year = None
    m = _YEAR_SUFFIX.search(text)
    if m:
        year = int(m.group("year"))
        text = text[: m.start()].rstrip()
    main, alternatives = _split_trailing_groups(text)
    main = front_article(main)
    alternatives = [_clean_alternative(a) for a in alternatives if a.strip()]
    display = main + "".join(f" ({a})" for a in alternatives)
    # The whole title first: some real titles end in parentheses ("Bon Voyage, Charlie
    # Brown (and Don't Come Back!!)") and must not be split when the full form matches.
    candidates = [front_article(text), display, main, *alternatives]
    keys: list[str] = []
    for candidate in candidates:
        key = normalise_title(candidate)
        if key and key not in keys:
            keys.append(key)
    strict = frozenset(normalise_title(c, drop_article=False) for c in candidates)
    return ParsedTitle(display=display or text, year=year, keys=tuple(keys), strict_keys=strict)


# ----------------------------------------------------------------------------- wikipedia


@dataclass(frozen=True)
class WikiEntry:
    title: str
    year: int
    href: str  # article name as in the JSON (already URL-quoted), "" when absent
    extract: str  # whitespace-collapsed lead paragraph, "" when absent
    file: str
    index: int  # position in the file's JSON list

    @property
    def url(self) -> str:
        return WIKIPEDIA_BASE + self.href if self.href else ""


@dataclass
class WikiIndex:
    """Wikipedia entries under (key, year) and key -> years, for title-only matches."""

    by_key_year: dict[tuple[str, int], WikiEntry] = field(default_factory=dict)
    years_by_key: dict[str, set[int]] = field(default_factory=dict)
    n_entries: int = 0

    def add(self, key: str, entry: WikiEntry, rank: tuple) -> None:
        slot = (key, entry.year)
        current = self.by_key_year.get(slot)
        # Same title in the same year (re-releases, remakes): keep the best-ranked one.
        if current is None or rank < _entry_rank(current, key):
            self.by_key_year[slot] = entry
        self.years_by_key.setdefault(key, set()).add(entry.year)


def _entry_rank(entry: WikiEntry, key: str) -> tuple:
    # Lower is better: the title itself (not a de-qualified one) gives the key, and an
    # entry with a synopsis beats one without.
    return (normalise_title(entry.title) != key, not entry.extract)


def _clean_text(text: str) -> str:
    # One line per movie keeps movies.csv line numbers meaningful for later error messages.
    return re.sub(r"\s+", " ", text).strip()


def load_wikipedia(synopses_dir: Path, problems: _Problems) -> WikiIndex:
    """Read every ``*.json`` list under ``synopses_dir`` into a :class:`WikiIndex`."""
    index = WikiIndex()
    files = sorted(synopses_dir.glob("*.json"))
    if not files:
        problems.warn(synopses_dir, None, "no *.json files found; no synopses will be joined")
    for path in files:
        try:
            with open(path, encoding="utf-8") as fh:
                records = json.load(fh)
        except json.JSONDecodeError as exc:
            problems.warn(path, exc.lineno, f"not valid JSON ({exc.msg}); file skipped")
            continue
        except (OSError, UnicodeDecodeError) as exc:
            problems.warn(path, None, f"cannot read ({exc}); file skipped")
            continue
        if not isinstance(records, list):
            problems.warn(path, None, "expected a JSON list of movies; file skipped")
            continue
        for i, record in enumerate(records):
            entry = _wiki_entry(record, path, i, problems)
            if entry is None:
                continue
            index.n_entries += 1
            for key in _wiki_keys(entry.title):
                index.add(key, entry, _entry_rank(entry, key))
    return index


def _wiki_entry(record, path: Path, i: int, problems: _Problems) -> WikiEntry | None:
    if not isinstance(record, dict):
        problems.warn(path, None, f"item {i}: not a JSON object; skipped")
        return None
    title, year = record.get("title"), record.get("year")
    if not isinstance(title, str) or not title.strip():
        problems.warn(path, None, f"item {i}: missing 'title'; skipped")
        return None
    if isinstance(year, str) and year.strip().isdigit():
        year = int(year)
    if not isinstance(year, int) or isinstance(year, bool):
        problems.warn(path, None, f"item {i} ({title!r}): missing or bad 'year'; skipped")
        return None
    extract = record.get("extract")
    href = record.get("href")
    return WikiEntry(
        title=title.strip(),
        year=year,
        href=href.strip() if isinstance(href, str) else "",
        extract=_clean_text(extract) if isinstance(extract, str) else "",
        file=path.name,
        index=i,
    )


def _wiki_variants(title: str) -> list[str]:
    cleaned = _WIKI_CSS.sub("", title).strip()
    return [cleaned, _WIKI_QUALIFIER.sub("", cleaned)]


def _wiki_keys(title: str) -> list[str]:
    keys: list[str] = []
    for v in _wiki_variants(title):
        key = normalise_title(v)
        if key and key not in keys:
            keys.append(key)
    return keys


def _strict_match(parsed: ParsedTitle, entry: WikiEntry) -> bool:
    return any(
        normalise_title(v, drop_article=False) in parsed.strict_keys
        for v in _wiki_variants(entry.title)
    )


def match_wikipedia(
    parsed: ParsedTitle,
    index: WikiIndex,
    year_tolerance: int = 1,
    claimed: set[tuple[str, int]] | frozenset = frozenset(),
    exact_only: bool = False,
) -> tuple[WikiEntry | None, str]:
    """Best Wikipedia entry for a MovieLens title and how it matched.

    Returns ``(entry, how)`` with ``how`` one of "exact_year", "near_year" (within
    ``year_tolerance``: festival vs US release), "title_only" (MovieLens has no year and
    exactly one Wikipedia film has the title), or ``(None, "none")``.

    The looser two kinds must also agree on a leading article ("The Captive" (2014) is not
    "Captive" (2015)) and may not take an entry in ``claimed`` (``(file, index)`` of
    entries another movie matched exactly: "Whiplash" (2013), the short, is not the 2014
    film when MovieLens lists both).
    """
    if parsed.year is not None:
        for key in parsed.keys:
            entry = index.by_key_year.get((key, parsed.year))
            if entry is not None:
                return entry, "exact_year"
    if exact_only:
        return None, "none"

    def acceptable(entry: WikiEntry | None) -> bool:
        return (
            entry is not None
            and (entry.file, entry.index) not in claimed
            and _strict_match(parsed, entry)
        )

    if parsed.year is not None:
        for delta in range(1, year_tolerance + 1):
            for key in parsed.keys:
                for year in (parsed.year - delta, parsed.year + delta):
                    entry = index.by_key_year.get((key, year))
                    if acceptable(entry):
                        return entry, "near_year"
        return None, "none"
    for key in parsed.keys:
        years = index.years_by_key.get(key, set())
        # Without a year a common title ("Moonlight") is ambiguous; only a unique one counts.
        if len(years) == 1:
            entry = index.by_key_year[(key, next(iter(years)))]
            if acceptable(entry):
                return entry, "title_only"
    return None, "none"


def join_wikipedia(
    titles: dict[int, ParsedTitle], index: WikiIndex, year_tolerance: int = 1
) -> dict[int, tuple[WikiEntry, str]]:
    """Match every movie: same-year matches first, then the looser kinds on what is left."""
    matches: dict[int, tuple[WikiEntry, str]] = {}
    for movie_id, parsed in titles.items():
        entry, how = match_wikipedia(parsed, index, year_tolerance, exact_only=True)
        if entry is not None:
            matches[movie_id] = (entry, how)
    claimed = {(e.file, e.index) for e, _ in matches.values()}
    for movie_id, parsed in titles.items():
        if movie_id in matches:
            continue
        entry, how = match_wikipedia(parsed, index, year_tolerance, claimed)
        if entry is not None:
            matches[movie_id] = (entry, how)
    return matches

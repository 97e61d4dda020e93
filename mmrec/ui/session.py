"""The session's place in the app: page files, session-state keys, the cached service, the view.

- ``get_service`` is the one ``st.cache_resource`` loader: the catalog, the fusion model and the
  policy load once per (data folder, checkpoint folder, checkpoint version) and are shared by
  every session. A rebuild swaps a new version of the checkpoint folder in when complete
  (``mmrec.rebuild.rebuild_beside``); sessions reach it through a new cache entry on their next
  run and only the old entry is dropped.
- Which data folders a session may use: the configured one, and (only with the admin setting
  ``ui.data_admin`` / ``MMREC_DATA_ADMIN=1``) catalogs found under the configured data roots
  (``paths.data_roots`` / ``MMREC_DATA_ROOTS``); their checkpoints are derived, never typed.
- Per-session choices (user, applied weights, filters, the grid on screen) live in
  ``st.session_state`` under the keys below; ratings and learned state live in SQLite via the
  service, so a server restart keeps them. :func:`view` reads them into a :class:`View`.
- The 2-D map of the catalog (``map_table``) is a derived table: ``st.cache_data``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from mmrec.config import Config, load_config
from mmrec.rebuild import checkpoint_version
from mmrec.service import Filters, Recommender, ServiceError, Weights
from mmrec.ui.identity import K_USER, NEW_USER

# ----------------------------------------------------------------------------- page files
# Absolute paths, used by st.navigation, st.page_link and st.switch_page. Absolute so the entry
# script also runs from a copy elsewhere: AppTest must run it outside the repository root,
# because a `pages/` folder beside the entry switches AppTest to the legacy multipage mode
# (it then reruns the page file alone, without the entry's sidebar).
PAGES_DIR = Path(__file__).resolve().parents[2] / "pages"
HOME_PAGE = str(PAGES_DIR / "home.py")
EXPLORE_PAGE = str(PAGES_DIR / "explore.py")
LEARNING_PAGE = str(PAGES_DIR / "learning.py")
RESULTS_PAGE = str(PAGES_DIR / "results.py")
DATA_PAGE = str(PAGES_DIR / "data.py")
WHY_PAGE = str(PAGES_DIR / "why.py")

# ----------------------------------------------------------------------------- session keys
# K_USER (the session's user) and NEW_USER (nobody yet: onboarding) live in mmrec.ui.identity
K_W = {"text": "w_text", "image": "w_image", "audio": "w_audio"}  # sidebar sliders (proposed)
K_APPLIED = "applied_weights"  # (text, image, audio) the grid is ranked with
K_EPS = "epsilon"
K_INCLUDE = "f_include"
K_EXCLUDE = "f_exclude"
K_YEARS = "f_years"
K_HIGH = "f_only_high"
K_MIN_AVG = "f_min_avg"
K_DATA_DIR = "data_dir_override"
K_CKPT_DIR = "ckpt_dir_override"
K_GRID = "grid_state"  # {"key": ..., "picks": [Pick]} the grid on screen
K_CHANGE = "last_change"  # what the last rating / dismissal changed (shown above the grid)
K_VERSION = "view_version"  # bumped by every rating / dismissal: the grid is recomputed
K_WHY = "why_movie"  # movie id the "Why this pick" page explains when no query param is set
K_GOTO_WHY = "goto_why"  # movie id whose "Why this pick?" was clicked on the grid (page switch)
K_COUNT_SLOT = "rating_count_slot"  # the sidebar's place for the user's rating count (this run)
K_RATINGS_LOG = "ratings_this_session"  # [(movie_id, stars)] rated in this session (AppTest)


def base_config() -> Config:
    """Defaults + MMREC_CONFIG TOML + MMREC_DATA / MMREC_CHECKPOINTS / MMREC_DB."""
    return load_config()


def data_choices(cfg: Config | None = None) -> dict[str, str]:
    """Catalog folders a session may switch to: the configured one and every folder with a
    movies.csv directly below a configured data root (label -> real path). Nothing typed."""
    from mmrec.safeio import escape

    cfg = cfg or base_config()
    out = {f"{escape(cfg.paths.data_dir)} (default)": str(cfg.paths.data_dir)}
    for root in cfg.paths.data_roots:
        root_path = Path(root).expanduser()
        try:
            children = sorted(p for p in root_path.iterdir() if p.is_dir())
        except OSError:
            continue
        for child in children[:200]:
            real = child.resolve()
            if (child / "movies.csv").is_file() and real != Path(cfg.paths.data_dir).resolve():
                out.setdefault(escape(child), str(real))
    return out


def allowed_data_dir(path: str, cfg: Config | None = None) -> bool:
    """True for the configured folder and folders below a configured data root (real paths)."""
    from mmrec.safeio import inside

    cfg = cfg or base_config()
    real = Path(path).expanduser().resolve()
    if real == Path(cfg.paths.data_dir).resolve():
        return True
    return inside(real, [Path(r).expanduser() for r in cfg.paths.data_roots]) and not any(
        real == Path(r).expanduser().resolve() for r in cfg.paths.data_roots
    )


def current_paths() -> tuple[str, str]:
    """The data and checkpoint folders this session uses (the Data page can switch them, only
    with the admin setting and only within the data roots; the checkpoints are derived)."""
    from mmrec.config import checkpoints_for

    cfg = base_config()
    chosen = st.session_state.get(K_DATA_DIR)
    if chosen and cfg.ui.data_admin and allowed_data_dir(chosen, cfg):
        return str(chosen), checkpoints_for(chosen, cfg.paths.checkpoints_root)
    return str(cfg.paths.data_dir), str(cfg.paths.checkpoints_dir)


def current_config() -> Config:
    data_dir, ckpt_dir = current_paths()
    return load_config(data_dir=data_dir, checkpoints_dir=ckpt_dir)


@st.cache_resource(show_spinner="Loading the catalog and the models …", max_entries=4)
def get_service(data_dir: str, ckpt_dir: str, db_path: str = "", version: str = "") -> Recommender:
    """One Recommender per (data, checkpoints, ratings db, checkpoint version) for the whole
    server: models load once. ``db_path`` empty means ``<data_dir>/mmrec.sqlite3``;
    ``version`` (:func:`mmrec.rebuild.checkpoint_version`) changes when a rebuild swaps a new
    version in, so the next run loads it into a new entry while the old one keeps serving."""
    from mmrec.threads import use_serving_threads

    use_serving_threads()  # this process serves the dashboard: its thread policy, set once
    cfg = load_config(data_dir=data_dir, checkpoints_dir=ckpt_dir)
    cfg.paths.db_path = db_path
    return Recommender.from_config(cfg)


_SERVED: dict[tuple, str] = {}  # (data, ckpt, db) -> the version last served (for eviction)


def service() -> tuple[Recommender | None, str | None]:
    """(service, None) when the models load, else (None, a message saying what is missing)."""
    data_dir, ckpt_dir = current_paths()
    db = base_config().paths.db_path
    version = checkpoint_version(ckpt_dir)
    try:
        svc = get_service(data_dir, ckpt_dir, db, version)
    except ServiceError as exc:
        return None, str(exc)
    except Exception as exc:  # missing folder, unreadable CSV, corrupt checkpoint: say so
        return None, f"{type(exc).__name__}: {exc}"
    old = _SERVED.get((data_dir, ckpt_dir, db))
    _SERVED[(data_dir, ckpt_dir, db)] = version
    if old is not None and old != version:  # a new version is served: drop only the old entry
        get_service.clear(data_dir, ckpt_dir, db, old)
    return svc, None


def reload_service() -> None:
    """Drop this session's cached entry (e.g. after a failed load); other entries stay."""
    data_dir, ckpt_dir = current_paths()
    get_service.clear(data_dir, ckpt_dir, base_config().paths.db_path, checkpoint_version(ckpt_dir))


@dataclass
class View:
    """Everything a page needs to call the service for this session."""

    svc: Recommender | None
    error: str | None
    user_id: int | None  # None: no user yet (onboarding)
    weights: Weights  # applied: what the grid is ranked with
    proposed: Weights  # the sliders right now (what-if until applied)
    filters: Filters
    epsilon: float
    k: int
    ui: object  # mmrec.config.UIConfig

    @property
    def pending(self) -> bool:
        """The sliders differ from the weights the grid uses."""
        return self.proposed.key() != self.weights.key()


def _weights_from(values) -> Weights:
    return Weights(*(float(v) for v in values))


def view() -> View:
    cfg = base_config()
    svc, error = service()
    ss = st.session_state
    applied = _weights_from(ss.get(K_APPLIED, (1.0, 1.0, 1.0)))
    proposed = Weights(
        float(ss.get(K_W["text"], applied.text)),
        float(ss.get(K_W["image"], applied.image)),
        float(ss.get(K_W["audio"], applied.audio)),
    )
    years = ss.get(K_YEARS)
    bounds = year_bounds(svc) if svc is not None else None
    year_min = year_max = None
    if years and bounds:
        # only a narrowed range is a rule; the full range keeps movies without a year
        year_min = int(years[0]) if int(years[0]) > bounds[0] else None
        year_max = int(years[1]) if int(years[1]) < bounds[1] else None
    filters = Filters(
        include_genres=tuple(ss.get(K_INCLUDE, ())),
        exclude_genres=tuple(ss.get(K_EXCLUDE, ())),
        year_min=year_min,
        year_max=year_max,
        min_avg_rating=float(ss.get(K_MIN_AVG, 3.5)) if ss.get(K_HIGH) else None,
    )
    user = ss.get(K_USER)
    if isinstance(user, str) and svc is not None:  # a label sent back by the browser
        user = next((u["user_id"] for u in users(svc) if u["name"] == user), None)
    user_id = int(user) if isinstance(user, int) and user != NEW_USER else None
    if (
        svc is not None
        and user_id is not None
        and user_id not in {u["user_id"] for u in users(svc)}
    ):
        user_id = None  # a user of another data folder
    return View(
        svc=svc,
        error=error,
        user_id=user_id,
        weights=applied,
        proposed=proposed,
        filters=filters,
        epsilon=float(ss.get(K_EPS, cfg.ui.default_epsilon)),
        k=cfg.ui.picks,
        ui=cfg.ui,
    )


def show_rating_count(n: int) -> None:
    """The user's rating count in its place under the sidebar's user picker (written from the
    For you grid's fragment after each rating: Streamlit redraws a fragment's writes to an
    outside container on each of its reruns)."""
    slot = st.session_state.get(K_COUNT_SLOT)
    if slot is not None:
        slot.caption(f"{n} rating{'s' if n != 1 else ''} stored")


def user_rating_count(svc: Recommender, user_id: int) -> int:
    return next((int(u["n_ratings"]) for u in users(svc) if u["user_id"] == user_id), 0)


def users(svc: Recommender) -> list[dict]:
    return svc.users()


def year_bounds(svc: Recommender) -> tuple[int, int] | None:
    years = svc.catalog.movies["year"].dropna()
    if years.empty:
        return None
    return int(years.min()), int(years.max())


@st.cache_data(show_spinner=False, max_entries=32)
def map_table(
    data_dir: str, ckpt_dir: str, weights_key: tuple[float, float, float], version: str = ""
):
    """The 2-D map of fused item embeddings under these weights (service computes it)."""
    return get_service(data_dir, ckpt_dir, base_config().paths.db_path, version).map_2d(
        Weights(*weights_key)
    )

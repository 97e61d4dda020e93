"""What every page shares: the cached service, the sidebar controls, the view state, safe text.

- ``get_service`` is the one ``st.cache_resource`` loader: the catalog, the fusion model and the
  policy load once per (data folder, checkpoint folder, checkpoint version) and are shared by
  every session. A rebuild swaps a new version of the checkpoint folder in when complete
  (``mmrec.pipeline.rebuild_beside``); sessions reach it through a new cache entry on their next
  run and only the old entry is dropped.
- Which data folders a session may use: the configured one, and (only with the admin setting
  ``ui.data_admin`` / ``MMREC_DATA_ADMIN=1``) catalogs found under the configured data roots
  (``paths.data_roots`` / ``MMREC_DATA_ROOTS``); their checkpoints are derived, never typed.
- Derived tables (the 2-D map, folder validation) go through ``st.cache_data``.
- Per-session choices (user, applied weights, filters, the grid on screen) live in
  ``st.session_state`` under the keys below; ratings and learned state live in SQLite via the
  service, so a server restart keeps them.
- Catalog text (titles, synopses) is user data: it goes through :func:`md` before any Markdown
  call, through :func:`html.escape` before plotly hover text, and never into
  ``unsafe_allow_html``.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from mmrec.config import Config, load_config
from mmrec.pipeline import checkpoint_version
from mmrec.service import Filters, Pick, Recommender, ServiceError, Weights
from mmrec.ui import identity
from mmrec.ui.grid import keep_slots
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
K_COUNT_SLOT = "rating_count_slot"  # the sidebar's place for the user's rating count (this run)
K_RATINGS_LOG = "ratings_this_session"  # [(movie_id, stars)] rated in this session (AppTest)

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:^=])")


# ----------------------------------------------------------------------------- safe text


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


# ----------------------------------------------------------------------------- config and service


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
    ``version`` (:func:`mmrec.pipeline.checkpoint_version`) changes when a rebuild swaps a new
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


# ----------------------------------------------------------------------------- the session's view


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


# ----------------------------------------------------------------------------- the grid


def grid_key(v: View) -> tuple:
    return (
        current_paths(),
        v.user_id,
        v.weights.key(),
        v.filters,
        round(v.epsilon, 3),
        v.k,
        st.session_state.get(K_VERSION, 0),
    )


def current_picks(v: View) -> list[Pick]:
    """The grid on screen; recomputed only when something it depends on changed."""
    state = st.session_state.get(K_GRID)
    key = grid_key(v)
    if state is None or state.get("key") != key:
        picks = v.svc.recommend(
            v.user_id, k=v.k, weights=v.weights, filters=v.filters, epsilon=v.epsilon
        )
        state = {"key": key, "picks": picks}
        st.session_state[K_GRID] = state
    return state["picks"]


def _show_in_place(v: View, shown: list[Pick], fresh: list[Pick], left_id: int) -> list[Pick]:
    """Make ``fresh`` the grid with every kept card in its slot; note which cards arrived."""
    picks, arrived = keep_slots(shown, fresh)
    # kept cards never move, so a different film in a slot is a new card in a freed slot
    in_place_of = {
        new.movie_id: old.title for old, new in zip(shown, picks) if new.movie_id != old.movie_id
    }
    st.session_state[K_GRID] = {
        "key": grid_key(v),
        "picks": picks,
        "arrived": [p.movie_id for p in arrived],
        "in_place_of": in_place_of,  # new card id -> title of the card whose slot it took
        "left_id": left_id,  # the rated / dismissed card
    }
    return picks


def arrivals() -> tuple[list[int], dict[int, str]]:
    """Cards that arrived with the last rating or dismissal (marked "new" until the next one),
    and for each new card in a freed slot the title of the card that left it."""
    state = st.session_state.get(K_GRID) or {}
    return list(state.get("arrived", ())), dict(state.get("in_place_of", {}))


def _bump() -> None:
    st.session_state[K_VERSION] = st.session_state.get(K_VERSION, 0) + 1


def on_rate(movie_id: int, widget_key: str) -> None:
    """st.feedback callback: commit the rating through the service, note what changed."""
    stars = st.session_state.get(widget_key)
    if stars is None:
        return
    v = view()
    if v.svc is None or v.user_id is None:
        return
    rating = float(stars) + 1.0  # st.feedback("stars") returns 0..4
    shown = current_picks(v)
    before = {p.movie_id: p for p in shown}
    if movie_id not in before:
        # a click that arrived for a card no longer on the grid (the second click of a double
        # click on a card that just left): never rate a film the user cannot see
        return
    rated_title = before[movie_id].title
    try:
        result = v.svc.rate(
            v.user_id,
            movie_id,
            rating,
            weights=v.weights,
            filters=v.filters,
            k=v.k,
            epsilon=v.epsilon,
            previous=[p.movie_id for p in shown],  # the screen, in slot order: kept as it is
        )
    except ServiceError as exc:
        st.session_state[K_CHANGE] = {"error": str(exc)}
        return
    _bump()
    # the service's refreshed list (same weights, filters and ε), each kept card in its slot
    _show_in_place(v, shown, result.picks, movie_id)
    titles = {p.movie_id: p.title for p in list(before.values()) + result.picks}
    moves = sorted(result.q_moves.items(), key=lambda kv: -abs(kv[1]))
    st.session_state[K_CHANGE] = {
        "kind": "rating",
        "movie_id": movie_id,
        "title": rated_title,
        "rating": rating,
        "entered": list(result.entered),
        "left": list(result.left),
        "q_moves": [(titles.get(mid, str(mid)), dq) for mid, dq in moves[:5] if mid in titles],
        "telemetry": dict(result.telemetry),
        "note": result.note,  # why the list changed (or did not), from the service
        "replaced": int(result.replaced),  # other picks replaced (the rated card's not counted)
        "toast": True,  # confirm once, at the next render
    }
    log = list(st.session_state.get(K_RATINGS_LOG, []))
    log.append((movie_id, rating))
    st.session_state[K_RATINGS_LOG] = log


def on_dismiss(movie_id: int, kind: str) -> None:
    v = view()
    if v.svc is None or v.user_id is None:
        return
    shown = current_picks(v)
    before = {p.movie_id: p for p in shown}
    if movie_id not in before:
        return  # a stale click (see on_rate)
    v.svc.dismiss(v.user_id, movie_id, kind)
    _bump()
    v = view()
    fresh = v.svc.recommend(
        v.user_id,
        k=v.k,
        weights=v.weights,
        filters=v.filters,
        epsilon=v.epsilon,
        previous=[p.movie_id for p in shown],
    )
    after = _show_in_place(v, shown, fresh, movie_id)
    st.session_state[K_CHANGE] = {
        "kind": kind,
        "movie_id": movie_id,
        "title": before[movie_id].title if movie_id in before else str(movie_id),
        "entered": [p.title for p in after if p.movie_id not in before],
        "left": [],
        "q_moves": [],
        "telemetry": {},
        "toast": True,
    }


def change_sentence(change: dict) -> str:
    """The last rating or dismissal in plain words (Markdown, catalog text escaped).

    Neutral for low ratings: a 1-star rating is useful information, not a failure."""
    title = f"**{md(change['title'])}**"
    n_new = len(change.get("entered") or ())
    tail = f" {n_new} new pick{'s' if n_new != 1 else ''}." if n_new else ""
    if change["kind"] == "rating":
        r = float(change["rating"])
        if r >= 4:
            note = "You'll see more like it."
        elif r <= 2:
            note = "You'll see fewer like it."
        else:
            note = "Noted."
        if change.get("replaced"):  # more than the rated card's slot changed: say where why is
            tail = tail.rstrip(".") + " (why: below the list)."
        return f"Saved: {title}, {r:g}★. {note}{tail}"
    why = "not interested" if change["kind"] == "not_interested" else "you haven't seen it"
    return f"Hidden: {title} ({why}).{tail}"


def apply_weights() -> None:
    """Make the sliders' weights the ones the grid is ranked with."""
    ss = st.session_state
    ss[K_APPLIED] = tuple(float(ss.get(K_W[m], 1.0)) for m in ("text", "image", "audio"))
    ss.pop(K_CHANGE, None)


def revert_weights() -> None:
    ss = st.session_state
    applied = ss.get(K_APPLIED, (1.0, 1.0, 1.0))
    for m, w in zip(("text", "image", "audio"), applied):
        ss[K_W[m]] = float(w)


def reset_view() -> None:
    """Clear this session's view (weights, filters, ε, notes); stored ratings stay."""
    cfg = base_config()
    ss = st.session_state
    for m in ("text", "image", "audio"):
        ss[K_W[m]] = 1.0
    ss[K_APPLIED] = (1.0, 1.0, 1.0)
    ss[K_EPS] = cfg.ui.default_epsilon
    ss[K_INCLUDE] = []
    ss[K_EXCLUDE] = []
    ss[K_HIGH] = False
    ss[K_MIN_AVG] = 3.5
    for key in (K_YEARS, K_GRID, K_CHANGE, K_WHY):
        ss.pop(key, None)
    _bump()


def create_user(name: str, genres, liked_movies) -> str | None:
    """Onboarding callback body: returns an error message or None (the user is selected)."""
    v = view()
    name = (name or "").strip()
    if not name:
        return "Please enter a name."
    if name in {u["name"] for u in users(v.svc)}:
        return f"The name {name!r} is taken: pick it in the sidebar or choose another."
    try:
        user_id = v.svc.create_user(
            name, liked_genres=tuple(genres), liked_movies=tuple(liked_movies)
        )
    except ServiceError as exc:
        return str(exc)
    choose_user(user_id)
    return None


def forget_user_view() -> None:
    """The user changed: drop what belonged to the previous one (grid, notes, Why's movie)."""
    ss = st.session_state
    for key in (K_GRID, K_CHANGE, K_WHY, K_RATINGS_LOG, "learn_msg"):
        ss.pop(key, None)
    _bump()


def choose_user(user_id: int) -> None:
    """The explicit switch (onboarding, "Continue as"): this session is now ``user_id``."""
    st.session_state[K_USER] = int(user_id)
    forget_user_view()


# ----------------------------------------------------------------------------- sidebar


def render_sidebar(count_here: bool = True) -> View:
    """The controls every page shares; returns the session's view after them. ``count_here``
    False: the page fills the rating count's place itself (For you, whose grid is a fragment:
    a rating reruns only the grid, which then refills the count; see ``show_rating_count``)."""
    cfg = base_config()
    ss = st.session_state
    ss.setdefault(K_APPLIED, (1.0, 1.0, 1.0))
    svc, error = service()
    sb = st.sidebar
    if svc is None:
        from mmrec.progress import read_progress

        building = read_progress(current_paths()[1])
        if building is not None and building.get("state") == "running":
            sb.info("First run: building the models (progress on the page).")
        else:
            sb.error("Models not loaded — see the **Data** page.")
        return view()

    all_users = users(svc)
    ids = [u["user_id"] for u in all_users]
    identity.restore(ids)  # a new session (or a reload): ?user= in the address, else nobody
    # Labels must not change while a user is selected (the browser sends the selected label
    # back; a label with a rating count would stop matching after the next rating).
    names = {u["user_id"]: u["name"] for u in all_users}
    counts = {u["user_id"]: u["n_ratings"] for u in all_users}
    options = ids + [NEW_USER]
    current = ss.get(K_USER)
    if isinstance(current, str):  # a stale label: map it back to the id
        current = next((i for i, n in names.items() if n == current), None)
        ss[K_USER] = current
    if current not in options:
        # a user of another data folder, or a cleared choice: back to the picker, never to
        # somebody else's account
        ss[K_USER] = NEW_USER
    sb.selectbox(
        "User",
        options,
        key=K_USER,
        on_change=forget_user_view,
        format_func=lambda u: "➕ New user …" if u == NEW_USER else names.get(u, str(u)),
        help="Switch to another user or create a new one (onboarding on the For you page). "
        "The page address (?user=) remembers your choice across reloads.",
    )
    identity.sync_address(identity.session_user())
    ss[K_COUNT_SLOT] = sb.container(key="rating_count")
    if count_here and ss.get(K_USER) in counts:
        show_rating_count(counts[ss[K_USER]])

    sb.markdown("**Modality weights**")
    for m, label in (
        ("text", "Synopsis (text)"),
        ("image", "Poster (image)"),
        ("audio", "Trailer (audio)"),
    ):
        ss.setdefault(K_W[m], float(ss[K_APPLIED][("text", "image", "audio").index(m)]))
        sb.slider(label, 0.0, 1.0, step=0.05, key=K_W[m])
    v = view()
    if v.pending:
        sb.caption("Weights changed: the What-if on **For you** shows the effect.")
        c1, c2 = sb.columns(2)
        c1.button("Apply", key="sidebar_apply", on_click=apply_weights, type="primary")
        c2.button("Revert", key="sidebar_revert", on_click=revert_weights)

    ss.setdefault(K_EPS, cfg.ui.default_epsilon)
    sb.slider(
        "Exploration rate ε",
        0.0,
        float(cfg.ui.max_epsilon),
        step=0.01,
        key=K_EPS,
        help="Chance that a slot on the grid shows an exploratory pick instead of the policy's top choice.",
    )

    with sb.expander(
        "Filters", expanded=bool(ss.get(K_INCLUDE) or ss.get(K_EXCLUDE) or ss.get(K_HIGH))
    ):
        genres = list(svc.catalog.genres)
        for key in (K_INCLUDE, K_EXCLUDE):
            ss[key] = [g for g in ss.get(key, []) if g in genres]
        st.multiselect("Only these genres", genres, key=K_INCLUDE)
        st.multiselect("Never these genres", genres, key=K_EXCLUDE)
        bounds = year_bounds(svc)
        if bounds and bounds[0] < bounds[1]:
            cur = ss.get(K_YEARS)
            if not cur or cur[0] < bounds[0] or cur[1] > bounds[1]:
                ss[K_YEARS] = bounds
            st.slider("Years", bounds[0], bounds[1], key=K_YEARS)
        ss.setdefault(K_HIGH, False)
        ss.setdefault(K_MIN_AVG, 3.5)
        st.toggle("Only highly rated", key=K_HIGH)
        st.slider(
            "Minimum average rating",
            0.5,
            5.0,
            step=0.25,
            key=K_MIN_AVG,
            disabled=not ss.get(K_HIGH),
        )
    sb.button(
        "Reset my view",
        key="reset_view",
        on_click=reset_view,
        help="Clears this session's weights, filters and notes. Your stored ratings stay.",
    )
    data_dir, _ = current_paths()
    sb.caption(f"Data: {md(data_dir)}")
    return view()


# ----------------------------------------------------------------------------- derived tables


@st.cache_data(show_spinner=False, max_entries=32)
def map_table(
    data_dir: str, ckpt_dir: str, weights_key: tuple[float, float, float], version: str = ""
):
    """The 2-D map of fused item embeddings under these weights (service computes it)."""
    return get_service(data_dir, ckpt_dir, base_config().paths.db_path, version).map_2d(
        Weights(*weights_key)
    )


@st.cache_data(show_spinner=False, max_entries=8, ttl=60)
def validate_folder(path: str) -> dict:
    """Load a candidate data folder and report what the catalog loader found (only the
    configured folder and folders below the data roots are ever read)."""
    from mmrec.data.catalog import CatalogError, load_catalog
    from mmrec.safeio import escape

    folder = Path(path).expanduser()
    if not allowed_data_dir(str(folder)):
        return {
            "ok": False,
            "message": f"{escape(folder)}: not below a configured data root: refused",
            "problems": [],
        }
    if not (folder / "movies.csv").is_file():
        return {"ok": False, "message": f"{escape(folder)}: no movies.csv here", "problems": []}
    try:
        cat = load_catalog(folder, base_config().data)
    except CatalogError as exc:
        return {"ok": False, "message": str(exc), "problems": []}
    summary = cat.summary()
    return {
        "ok": not cat.errors and summary["movies"] > 0,
        "message": f"{summary['movies']} movies, {summary['ratings']} ratings, "
        f"{summary['errors']} error(s), {summary['warnings']} warning(s)",
        "summary": summary,
        "problems": [str(p) for p in cat.problems[:200]],
    }


def _duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"


def setup_progress(ckpt_dir: str) -> bool:
    """While ``python -m mmrec setup`` builds this folder (first run, ``make run``): its stage,
    progress and time left, refreshed every few seconds; the app reruns into the normal pages
    when the build is done. True while a build is (or was, unfinished) in progress."""
    from mmrec.progress import read_progress

    p = read_progress(ckpt_dir)
    if p is None or p.get("state") == "done":
        return False

    @st.fragment(run_every=3)
    def panel():
        q = read_progress(ckpt_dir)
        if q is None or q.get("state") == "done":
            st.rerun()  # models ready: the whole page, now with recommendations
        state = q.get("state")
        if state == "running":
            st.subheader("Preparing the demo catalog and the models (first run)", anchor=False)
            st.write(
                "This happens once: generating the demo films (posters, trailers, ratings), "
                "encoding synopses, posters and trailers, then training the fusion model and "
                "the policy. Your recommendations appear here when it is done."
            )
            stage = str(q.get("stage", ""))
            done, total = int(q.get("done", 0)), int(q.get("total", 0))
            count = f" · {done:,} of {total:,}" if total else ""
            eta = q.get("eta_s")
            left = f" · about {_duration(eta)} left in this stage" if eta is not None else ""
            st.progress(q.get("fraction", 0.0), text=f"{md(stage)}{count}{left}")
            finished = [x for x in q.get("stages", []) if x != stage]
            st.caption(
                f"Running for {_duration(q.get('elapsed_s', 0))}"
                + (" · done: " + ", ".join(md(x) for x in finished) if finished else "")
                + (f" · {md(q['message'])}" if q.get("message") else "")
            )
        elif state == "failed":
            st.error(f"The first build failed: {md(q.get('message', ''))}")
            st.caption("The terminal running `make run` has the details; run it again to retry.")
        else:  # stopped: the process is gone without finishing
            st.warning(
                "The first build stopped before it finished (the process is gone). Run "
                "`make run` (or `python -m mmrec setup`) again: finished stages are kept."
            )

    panel()
    return True


def not_ready(v: View) -> bool:
    """Show why the models are missing (with a link to the Data page); True if so. While the
    first build runs, its progress instead (:func:`setup_progress`)."""
    if v.svc is not None:
        return False
    if setup_progress(current_paths()[1]):
        return True
    st.error(
        "The recommender is not ready for this data folder.\n\n"
        f"{v.error}\n\nBuild the features and models on the **Data** page (or run "
        "`python -m mmrec build`)."
    )
    st.page_link(DATA_PAGE, label="Open the Data page to build", icon="🛠️")
    return True


def need_user(v: View) -> bool:
    if v.user_id is not None:
        return False
    st.info("Pick a user in the sidebar, or create one on the **For you** page.")
    st.page_link(HOME_PAGE, label="For you: create a user", icon="🎬")
    return True


# ----------------------------------------------------------------------------- reports

# What each evaluation report holds: where its rows are, what labels them, what to chart.
REPORT_SPECS = {
    "modality": {
        "title": "Per-modality comparison (genre prediction)",
        "rows": "rows",
        "label": "variant",
        "metrics": ["f1_micro", "f1_macro", "subset_accuracy", "hamming_accuracy"],
        "command": "python -m mmrec evaluate modality --seeds 3",
    },
    "policy": {
        "title": "Policy: DQN vs baselines in the simulator",
        "rows": "policies",
        "label": "policy",
        "metrics": ["reward", "hit_rate", "cold_start_reward", "satisfaction", "watch_minutes"],
        "command": "python -m mmrec evaluate policy --seeds 3",
    },
    "ranking": {
        "title": "Ranking on held-out ratings",
        "rows": "rankers",
        "label": "ranker",
        "metrics": ["ndcg@10", "recall@10", "coverage@10"],
        "command": "python -m mmrec evaluate ranking",
    },
}


def report_kind(name: str) -> str | None:
    """'modality-demo-masked' -> 'modality'; unknown names -> None."""
    return next((k for k in REPORT_SPECS if name == k or name.startswith(k + "-")), None)


def metric_frame(rows, label: str = "name"):
    """Rows of metrics -> DataFrame indexed by ``label``; a metric given as {mean, ci95|std}
    becomes two columns: ``metric`` and ``metric ±``. Lists (per-seed values) are left out."""
    import pandas as pd

    items = rows.items() if isinstance(rows, dict) else ((r.get(label), r) for r in rows or [])
    out = {}
    for name, row in items:
        flat = {}
        for key, value in (row or {}).items():
            if isinstance(value, dict) and "mean" in value:
                flat[key] = value["mean"]
                spread = value.get("ci95", value.get("std"))
                if spread is not None:
                    flat[f"{key} ±"] = spread
            elif isinstance(value, (int, float)) and not isinstance(value, bool):
                flat[key] = value
        out[str(name)] = flat
    frame = pd.DataFrame.from_dict(out, orient="index")
    frame.index.name = label
    return frame


def report_frame(name: str, report: dict):
    """The main table of a report (None when the report has no rows we know)."""
    kind = report_kind(name)
    if kind is None or not isinstance(report, dict):
        return None
    spec = REPORT_SPECS[kind]
    rows = report.get(spec["rows"])
    if not rows and isinstance(report.get("protocols"), dict):  # ranking: one table per protocol
        rows = {
            f"{proto}: {name}": row
            for proto, p in report["protocols"].items()
            for name, row in (p.get("rankers") or {}).items()
        }
    if not rows:
        return None
    return metric_frame(rows, spec["label"])


def report_chart(frame, metric: str, title: str, highlight: str | None = None):
    """Bar chart of one metric with its ± as error bars (plotly figure)."""
    import plotly.graph_objects as go

    err = frame[f"{metric} ±"] if f"{metric} ±" in frame else None
    colors = ["#e50914" if str(i) == highlight else "#8ab4f8" for i in frame.index]
    fig = go.Figure(
        go.Bar(
            x=[str(i) for i in frame.index],
            y=frame[metric],
            error_y=dict(type="data", array=err.fillna(0).tolist()) if err is not None else None,
            marker_color=colors,
        )
    )
    fig.update_layout(title=title, yaxis_title=metric, margin=dict(l=10, r=10, t=40, b=10))
    return fig


def report_markdown(svc: Recommender, name: str) -> str | None:
    """The report's own Markdown rendering (reports/<name>.md) when present."""
    for folder in (Path("reports"), Path(__file__).resolve().parents[2] / "reports"):
        path = folder / f"{name}.md"
        if path.is_file():
            try:
                return path.read_text(encoding="utf-8")
            except OSError:
                return None
    return None


def _ci_word(diff: float, half: float | None) -> str:
    if half is None:
        return "better" if diff > 0 else "worse"
    if diff - half > 0:
        return "better"
    if diff + half < 0:
        return "worse"
    return "tie, the 95% CI includes 0"


def report_verdict(kind: str, report: dict) -> str | None:
    """One paragraph in plain words from a report's own numbers: what wins, what loses, and
    how sure that is. None when the report lacks the fields (older formats)."""
    try:
        if kind == "modality":
            fb = report["fused_vs_best_single"]["f1_micro"]
            fused = next(r for r in report["rows"] if str(r["variant"]).startswith("fused"))
            boot = fb.get("bootstrap") or {}
            sure = (
                " (bootstrap 95% CI excludes 0)"
                if boot.get("ci_excludes_zero")
                else " (within the seed spread or a CI that includes 0: not a clear win)"
                if not fb.get("holds")
                else ""
            )
            lead = "leads" if fb["margin"] >= 0 else "trails"
            return (
                f"Fusing the three modalities gives micro-F1 {fused['f1_micro']['mean']:.3f}: it "
                f"{lead} the best single modality ({fb['best_single']}) by "
                f"{100 * abs(fb['margin']):.1f} points{sure}. Rows are genre prediction from "
                "each input alone and fused."
            )
        if kind == "policy":
            parts = []
            for base, lift in report["lifts"].items():
                sat = lift["satisfaction"]
                word = _ci_word(sat["diff"], sat.get("diff_ci95"))
                parts.append(f"{base} {100 * sat['relative']:+.1f}% ({word})")
            return (
                "The DQN's satisfaction against each baseline in the simulator (paired over the "
                "same simulated users): " + "; ".join(parts) + ". A simulator we wrote is weak "
                "evidence: see the ranking section for real ratings."
            )
        if kind == "ranking":
            lines = []
            for proto, p in report["protocols"].items():
                rankers = {
                    n: r["ndcg@10"]["mean"]
                    for n, r in (p.get("rankers") or {}).items()
                    if isinstance(r.get("ndcg@10"), dict)
                }
                if not rankers:
                    continue
                best = max(rankers, key=rankers.get)
                text = f"{proto}: best NDCG@10 {best} {rankers[best]:.3f}"
                if "dqn" in rankers and best != "dqn":
                    times = rankers[best] / rankers["dqn"] if rankers["dqn"] > 0 else float("inf")
                    text += f", the DQN alone {rankers['dqn']:.4f} ({times:.0f}x lower)"
                lines.append(text)
            return "Full ranking over every film on held-out ratings: " + "; ".join(lines) + "."
    except (KeyError, TypeError, StopIteration, ValueError, ZeroDivisionError):
        return None
    return None


def report_data_dir(report: dict) -> str | None:
    """The data folder a report was written for: its ``data_dir`` field, else the ``--data``
    argument of its recorded command; None when it records neither."""
    import shlex

    if not isinstance(report, dict):
        return None
    if report.get("data_dir"):
        return str(report["data_dir"])
    try:
        args = shlex.split(str(report.get("command") or ""))
    except ValueError:
        return None
    for i, arg in enumerate(args):
        if arg == "--data" and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith("--data="):
            return arg.split("=", 1)[1]
    return None


def same_folder(a: str | None, b: str | None) -> bool:
    """True when two folder names point at the same place (relative ones from the working
    directory, as the commands that wrote the reports ran there)."""
    if not a or not b:
        return False
    try:
        return Path(a).resolve() == Path(b).resolve()
    except OSError:
        return False


def find_reports(svc: Recommender) -> dict:
    """reports/*.json from the working folder, else from the repository's reports/."""
    found = svc.reports()
    if not found:
        repo_reports = Path(__file__).resolve().parents[2] / "reports"
        found = svc.reports(repo_reports)
    return found


# ----------------------------------------------------------------------------- posters

POSTER_THUMB_PIXELS = 448  # longest side of a displayed poster (the grid shows ~110-260 px)


@st.cache_data(show_spinner=False, max_entries=2048)
def poster_thumbnail(path: str, max_pixels: int, width: int = POSTER_THUMB_PIXELS):
    """A poster as JPEG bytes exactly ``width`` pixels wide, decoded once with the encoder's
    bounded decoder: ``(jpeg bytes or None, problem or None)``.

    Bytes at the displayed width, not a PIL image: ``st.image`` then neither re-encodes nor
    resizes on each script run (given an image it encodes it, decodes that, resizes and
    encodes again, per poster per run, and ``st.cache_data`` returns a pickled copy of an image
    each time; under 8 users rating at once that was the largest share of server time).
    ``st.image(path)`` would also decode the file itself, in full, and fails on modes it cannot
    re-encode (16-bit greyscale, CMYK with some profiles).
    """
    import io

    from mmrec.media import decode_image

    decoded = decode_image(path, max_pixels, target=POSTER_THUMB_PIXELS)
    if decoded.image is None:
        return None, decoded.problem
    img = decoded.image.copy()
    w, h = img.size
    width = max(1, min(int(width), w))
    img = img.resize((width, max(1, round(h * width / w))))
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=88)
    return buf.getvalue(), None


@st.cache_data(show_spinner=False, max_entries=256)
def trailer_excerpt(path: str, seconds: float, max_bytes: int, stamp: tuple = ()):
    """:func:`mmrec.media.trailer_excerpt`, computed once per (file, size, mtime)."""
    from mmrec.media import trailer_excerpt as excerpt

    return excerpt(path, seconds, max_bytes)


def show_trailer(path: str | None, start_time: int = 0, label: str = "Trailer") -> None:
    """An audio player for at most ``ui.trailer_seconds`` of the trailer (never the whole file),
    labelled ``label`` for screen readers, or a caption saying why there is none."""
    if not path:
        st.caption("no trailer")
        return
    cfg = base_config()
    try:
        st_ = Path(path).stat()
        stamp = (st_.st_size, st_.st_mtime_ns)
    except OSError:
        st.caption("trailer unavailable (file not found)")
        return
    ex = trailer_excerpt(str(path), cfg.ui.trailer_seconds, cfg.data.max_audio_bytes, stamp)
    if ex.data is None:
        st.caption(f"trailer unavailable ({md(ex.problem or 'unreadable')})")
        return
    st.audio(
        ex.data,
        format=ex.mime,
        start_time=min(int(start_time), int(ex.seconds or 0)),
        alt=label,
    )


def poster_alt(title: str, year) -> str:
    """Alternative text of a poster: the film's title and year."""
    return f"Poster of {title}" + (f" ({int(year)})" if year else "")


def show_poster(
    path: str | None,
    width: int | str,
    max_pixels: int = 40_000_000,
    alt: str = "Poster",
    pixels: int | None = None,
) -> None:
    """Render a poster (``width`` pixels or "stretch"; ``pixels``: width of the JPEG sent),
    with ``alt`` as its alternative text, or a caption saying why there is none."""
    if not path:
        st.caption("no poster")
        return
    data, problem = poster_thumbnail(str(path), max_pixels, int(pixels or width))
    if data is None:
        st.caption(f"poster unavailable ({md(problem or 'unreadable')})")
        return
    st.image(data, width=width, output_format="JPEG", alt=alt)

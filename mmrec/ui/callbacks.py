"""What a click does: the grid on screen, ratings and dismissals, weights, the user switch.

Widget callbacks (``on_grid_event``, ``rate``, ``on_dismiss``, ``apply_weights``, ...) change the session's state
and go through the service; the grid keeps every card in its slot (``mmrec.ui.grid``).
"""

from __future__ import annotations

import streamlit as st

from mmrec.service import Pick, ServiceError
from mmrec.ui.grid import keep_slots
from mmrec.ui.identity import K_USER
from mmrec.ui.safetext import md
from mmrec.ui.session import (
    K_APPLIED,
    K_CHANGE,
    K_EPS,
    K_EXCLUDE,
    K_GOTO_WHY,
    K_GRID,
    K_HIGH,
    K_INCLUDE,
    K_MIN_AVG,
    K_RATINGS_LOG,
    K_VERSION,
    K_W,
    K_WHY,
    K_YEARS,
    WHY_PAGE,
    View,
    base_config,
    current_paths,
    users,
    view,
)


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


def on_grid_event(name: str, value: dict) -> None:
    """The For you grid's callback (``mmrec.ui.cardgrid``): a star click, a dismissal or "Why
    this pick?" on the card of movie ``value["id"]``, drawn for user ``value["user"]``. An
    event for another user than the session's (the user was switched while the click was on
    its way) is dropped: a rating never lands on somebody else."""
    movie_id = int(value["id"])
    if value.get("user") != st.session_state.get(K_USER):
        return
    if name == "rate":
        stars = value.get("stars")
        if isinstance(stars, int) and not isinstance(stars, bool) and 1 <= stars <= 5:
            rate(movie_id, float(stars))
    elif name == "dismiss":
        if value.get("kind") in ("not_interested", "not_seen"):
            on_dismiss(movie_id, value["kind"])
    elif name == "why":
        st.session_state[K_GOTO_WHY] = movie_id  # follow_why() switches page (see there)


def follow_why() -> None:
    """Open the Why page for the film whose "Why this pick?" was clicked, if any. Called at
    the top of the For you page and of its grid fragment (a click reruns only the fragment):
    a callback cannot switch pages, the page registry is not built yet when callbacks run."""
    movie_id = st.session_state.pop(K_GOTO_WHY, None)
    if movie_id is not None:
        st.switch_page(WHY_PAGE, query_params={"movie": str(movie_id)})


def rate(movie_id: int, rating: float) -> None:
    """Commit ``rating`` (1-5 stars) for a card on the grid through the service, note what
    changed."""
    v = view()
    if v.svc is None or v.user_id is None:
        return
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
        return  # a stale click (see rate)
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

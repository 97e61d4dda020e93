"""The sidebar every page shares: user picker, modality weights, exploration rate, filters."""

from __future__ import annotations

import streamlit as st

from mmrec.ui import identity
from mmrec.ui.callbacks import apply_weights, forget_user_view, reset_view, revert_weights
from mmrec.ui.identity import K_USER, NEW_USER
from mmrec.ui.safetext import md
from mmrec.ui.session import (
    K_APPLIED,
    K_COUNT_SLOT,
    K_EPS,
    K_EXCLUDE,
    K_HIGH,
    K_INCLUDE,
    K_MIN_AVG,
    K_W,
    K_YEARS,
    View,
    base_config,
    current_paths,
    service,
    show_rating_count,
    users,
    view,
    year_bounds,
)


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
        if ss.get(K_HIGH):  # not drawn disabled: a greyed label fails WCAG contrast (axe)
            st.slider("Minimum average rating", 0.5, 5.0, step=0.25, key=K_MIN_AVG)
    sb.button(
        "Reset my view",
        key="reset_view",
        on_click=reset_view,
        help="Clears this session's weights, filters and notes. Your stored ratings stay.",
    )
    data_dir, _ = current_paths()
    sb.caption(f"Data: {md(data_dir)}")
    return view()

"""For you: onboarding for a new user, then the grid of picks with live rating and a what-if."""

import streamlit as st

from mmrec.ui import cardgrid
from mmrec.ui import loaders as L

L.follow_why()  # a "Why this pick?" click on the grid
v = L.view()
st.title("For you")
if L.not_ready(v):
    st.stop()


# ----------------------------------------------------------------------------- onboarding


def _onboard() -> None:
    ss = st.session_state
    ss["onb_error"] = L.create_user(
        ss.get("onb_name", ""), ss.get("onb_genres", []), ss.get("onb_movies", [])
    )


def _continue_as() -> None:
    chosen = st.session_state.get("continue_as")
    if chosen is not None:
        L.choose_user(chosen)


if v.user_id is None:
    known = L.users(v.svc)
    if known:
        # the user picker: a new browser session starts here, never as somebody else
        names = {u["user_id"]: u["name"] for u in known}
        with st.container(border=True, key="picker_box"):
            st.subheader("Who's watching?")
            st.selectbox(
                "Continue as",
                list(names),
                index=None,
                key="continue_as",
                format_func=lambda u: names.get(u, str(u)),
                placeholder="Choose your name",
                on_change=_continue_as,
            )
    st.subheader("New here? Tell us a little about your taste")
    st.write(
        "Choose a few genres, or tick a few popular movies you liked; your first picks appear "
        "at once and improve with every rating."
    )
    popular = v.svc.popular_titles(v.ui.onboarding_popular)
    titles = dict(popular)
    with st.form("onboarding_form", border=True):
        st.text_input("Your name", key="onb_name", max_chars=60)
        st.multiselect(
            "Genres you like",
            v.svc.catalog.genres,
            key="onb_genres",
            max_selections=v.ui.onboarding_max_genres,
        )
        st.multiselect(
            "Popular movies you liked",
            [mid for mid, _ in popular],
            format_func=lambda mid: (
                f"{titles.get(mid, mid)} (#{mid})"
            ),  # same-titled remakes stay apart
            key="onb_movies",
        )
        st.form_submit_button("Show my picks", type="primary", on_click=_onboard)
    if st.session_state.get("onb_error"):
        st.error(st.session_state["onb_error"])
    st.stop()


# ----------------------------------------------------------------------------- what-if


def _learn_weights() -> None:
    try:
        res = v.svc.learn_user_weights(v.user_id)
    except L.ServiceError as exc:
        st.session_state["learn_msg"] = str(exc)
        return
    w = res.get("weights", (1.0, 1.0, 1.0))
    for m, value in zip(("text", "image", "audio"), w):
        st.session_state[L.K_W[m]] = round(float(value) * 20) / 20  # the sliders' 0.05 grid
    score, base = res.get("score"), res.get("baseline_score")
    st.session_state["learn_msg"] = (
        "Learned weights "
        + ", ".join(f"{x:.2f}" for x in w)
        + (
            f" (fit {score:.3f} vs {base:.3f} with equal weights)"
            if score is not None and base is not None
            else ""
        )
    )


# the grid version the what-if below was computed for (the grid fragment compares)
st.session_state["whatif_version"] = st.session_state.get(L.K_VERSION, 0)
if v.pending:
    wi = v.svc.what_if(v.user_id, v.proposed, v.weights, v.filters, v.k)
    with st.container(border=True, key="whatif_box"):
        p = v.proposed
        st.markdown(f"#### What if: text {p.text:.2f} · image {p.image:.2f} · audio {p.audio:.2f}")
        c1, c2 = st.columns(2)
        with c1:
            st.markdown(f"**Would enter your list ({len(wi['entered'])})**")
            for pk in wi["entered"]:
                st.markdown("- " + L.title_line(pk.title, pk.year))
        with c2:
            st.markdown(f"**Would leave your list ({len(wi['left'])})**")
            for pk in wi["left"]:
                st.markdown("- " + L.title_line(pk.title, pk.year))
        if not wi["entered"] and not wi["left"]:
            st.caption("Same titles; only their order would change.")
        b1, b2, _ = st.columns([1, 1, 4])
        b1.button("Apply", key="whatif_apply", type="primary", on_click=L.apply_weights)
        b2.button("Keep current", key="whatif_revert", on_click=L.revert_weights)

with st.expander("Learn my modality weights from my ratings"):
    st.button("Learn my weights", key="learn_weights", on_click=_learn_weights)
    if st.session_state.get("learn_msg"):
        st.caption(L.md(st.session_state["learn_msg"]))


# ----------------------------------------------------------------------------- the grid


# A fragment: a rating or a dismissal reruns only the grid (and the count under the sidebar's
# user picker), not the sidebar's widgets nor the what-if: less for the server to run and, most
# of all, for the browser to draw (docs/RELIABILITY.md, Load).
@st.fragment
def grid() -> None:
    if v.pending and st.session_state.get("whatif_version") != st.session_state.get(L.K_VERSION, 0):
        # a rating or a dismissal while a what-if is open: it compares against the old list, so
        # run the whole page once (the what-if sits outside this fragment)
        st.rerun()
    L.follow_why()  # a "Why this pick?" click (the click reran only this fragment)
    L.show_rating_count(L.user_rating_count(v.svc, v.user_id))
    change = st.session_state.get(L.K_CHANGE)
    if change and change.get("error"):
        st.error(change["error"])
    elif change and change.pop("toast", False):
        # plain words, shown once and floating: nothing above the grid moves when it appears
        st.toast(L.change_sentence(change), icon="⭐" if change["kind"] == "rating" else "🙈")

    picks = L.current_picks(v)
    w = v.weights
    rules = v.filters.describe()
    st.caption(
        f"{len(picks)} picks · weights text {w.text:.2f} / image {w.image:.2f} / audio {w.audio:.2f}"
        f" · ε {v.epsilon:.2f}" + (" · " + L.md("; ".join(rules)) if rules else "")
    )
    if not picks:
        st.warning("Nothing left to recommend under these filters. Loosen them in the sidebar.")

    try:  # modality shares of each pick's Q (cached branch outputs only: milliseconds)
        shares = v.svc.explain_shares(v.user_id, [p.movie_id for p in picks], v.weights)
    except Exception:  # the bars are an extra; the grid must render without them
        shares = {}

    arrived, in_place_of = L.arrivals()
    # Poster-first cards that flow into as many columns as fit (4 at 1440 px, 2-3 at 1024 px, one on
    # a phone); the film's story, trailer and the hide buttons are one click away under "Details".
    # One browser component, not ~100 Streamlit elements: with 8 people rating at once, redrawing
    # every card's elements in every tab was most of the wait (docs/RELIABILITY.md, Load).
    cfg = L.base_config()
    cards = [
        cardgrid.card_payload(
            p,
            slot,
            share=shares.get(p.movie_id),
            arrived=p.movie_id in arrived,
            in_place_of=in_place_of.get(p.movie_id),
            cfg=cfg,
        )
        for slot, p in enumerate(picks)
    ]
    parity = st.session_state.get(L.K_VERSION, 0) % 2  # restarts the arrival guard (cardgrid)
    cardgrid.render(cards, v.ui.card_width, parity, L.on_grid_event, user_id=v.user_id)

    change = st.session_state.get(L.K_CHANGE)
    if change and not change.get("error"):
        # the details of the last change, below the grid: nothing above the cards moves
        with st.expander("What changed with your last action", key="change_box"):
            # one Markdown element (the fragment redraws it with every rating)
            parts = [L.change_sentence(change)]
            if change.get("note"):
                parts.append(L.md(change["note"]))
            if change["entered"]:
                parts.append(
                    "**New on your list:** " + ", ".join(L.md(t) for t in change["entered"])
                )
            if change["left"]:
                parts.append("**Dropped:** " + ", ".join(L.md(t) for t in change["left"]))
            if change["q_moves"]:
                parts.append(
                    "**Score moves of the picks that stayed:** "
                    + ", ".join(f"{L.md(t)} {dq:+.3f}" for t, dq in change["q_moves"])
                )
            parts.append(":gray[The numbers behind each update are on the **Learning** page.]")
            st.markdown("\n\n".join(parts))


grid()

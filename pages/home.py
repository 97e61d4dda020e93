"""For you: onboarding for a new user, then the grid of picks with live rating and a what-if."""

import streamlit as st

from mmrec.ui import loaders as L

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


if v.user_id is None:
    st.subheader("Welcome — tell us a little about your taste")
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


# ----------------------------------------------------------------------------- what changed


change = st.session_state.get(L.K_CHANGE)
if change and change.get("error"):
    st.error(change["error"])
elif change:
    if change["kind"] == "rating":
        head = f"Saved: you rated {L.title_line(change['title'], None)} {change['rating']:g}★."
    elif change["kind"] == "not_interested":
        head = f"{L.title_line(change['title'], None)} is hidden: not interested."
    else:
        head = f"{L.title_line(change['title'], None)} is hidden: you haven't seen it."
    lines = [head]
    if change["entered"]:
        lines.append("**New on your list:** " + ", ".join(L.md(t) for t in change["entered"]))
    if change["left"]:
        lines.append("**Dropped:** " + ", ".join(L.md(t) for t in change["left"]))
    if change["q_moves"]:
        lines.append(
            "**Q-value moves:** " + ", ".join(f"{L.md(t)} {dq:+.3f}" for t, dq in change["q_moves"])
        )
    tel = change.get("telemetry") or {}
    if tel:
        bits = [
            f"{k} {tel[k]:.3g}"
            for k in ("reward", "td_loss", "epsilon")
            if isinstance(tel.get(k), (int, float))
        ]
        if isinstance(tel.get("ms"), (int, float)):
            bits.append(f"{tel['ms']:.0f} ms")
        if bits:
            lines.append("Policy update: " + " · ".join(bits))
    st.success("  \n".join(lines), icon="✅")


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


def share_bar(share: tuple[float, float, float], cells: int = 20) -> str:
    """Markdown bar: synopsis blue, poster orange, trailer green, lengths by share."""
    counts = [round(x * cells) for x in share]
    bar = "".join(f":{c}[{'█' * n}]" for c, n in zip(("blue", "orange", "green"), counts) if n)
    label = " · ".join(f"{n} {x:.0%}" for n, x in zip(("synopsis", "poster", "trailer"), share))
    return f"{bar} {label}" if bar else "no modality moves this score"


ncol = max(1, int(v.ui.grid_columns))
for row_start in range(0, len(picks), ncol):
    cols = st.columns(ncol)
    for col, p in zip(cols, picks[row_start : row_start + ncol]):
        mid = p.movie_id
        with col.container(border=True, key=f"card_{mid}"):
            left, right = st.columns([2, 3])
            with left:
                L.show_poster(p.poster, v.ui.thumbnail_width)
            with right:
                st.markdown(f"{p.rank}\\. {L.title_line(p.title, p.year)}")
                if p.exploration:
                    st.badge("exploration", icon="🎲", color="violet")
                st.caption(L.md(" · ".join(p.genres)) or "no genres")
                st.markdown(L.md(L.short(p.overview, v.ui.synopsis_chars)) or "_no synopsis_")
            if p.audio:
                st.audio(p.audio, format=L.audio_mime(p.audio))
            else:
                st.caption("no trailer")
            rate_key = f"rate_{v.user_id}_{mid}"
            st.feedback("stars", key=rate_key, on_change=L.on_rate, args=(mid, rate_key))
            b1, b2 = st.columns(2)
            b1.button(
                "Not interested",
                key=f"ni_{v.user_id}_{mid}",
                on_click=L.on_dismiss,
                args=(mid, "not_interested"),
            )
            b2.button(
                "Haven't seen it",
                key=f"ns_{v.user_id}_{mid}",
                on_click=L.on_dismiss,
                args=(mid, "not_seen"),
            )
            st.caption(f"Q {p.q:.3f} · " + L.md(p.reason))
            if mid in shares:
                st.caption(share_bar(shares[mid]), help="Share of this pick's score per modality")
            st.page_link(
                L.WHY_PAGE, label="Why this pick?", icon="💡", query_params={"movie": str(mid)}
            )

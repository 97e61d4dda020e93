"""Why this pick: the explanation of one recommended movie for this user.

Reached from every card on the For you grid (``?movie=<id>``). The attributions (modality
shares, synopsis tokens, poster and spectrogram heatmaps, reasons) come from ``svc.explain``
(issue 6): attributions of the very Q-value that ranked the movie; the pictures are drawn by the
returned explanation, so no model or attribution code runs in this page.
"""

import streamlit as st

from mmrec.ui import loaders as L

# The randomisation check's verdict: maps whose rank correlation with a random model's maps is
# at least this are called input-driven (Adebayo et al. report no fixed cut-off; 0.5 says
# "more alike than not" and is stated on the page).
SANITY_RHO = 0.5

v = L.view()
st.title("Why this pick")
if L.not_ready(v) or L.need_user(v):
    st.stop()

grid = (st.session_state.get(L.K_GRID) or {}).get("picks") or L.current_picks(v)
by_id = {p.movie_id: p for p in grid}
wanted = st.query_params.get("movie") or st.session_state.get(L.K_WHY)
try:
    wanted = int(wanted) if wanted is not None else None
except (TypeError, ValueError):
    wanted = None
options = list(by_id)
if wanted is not None and wanted not in by_id:
    try:
        v.svc.movie(wanted)
        options.insert(0, wanted)
    except L.ServiceError:
        st.warning(f"Unknown movie id {wanted}; choose one of your picks instead.")
        wanted = None
if not options:
    st.info("No picks to explain yet: rate a few movies on the For you page.")
    st.stop()

titles = {mid: (by_id[mid].title if mid in by_id else v.svc.movie(mid)["title"]) for mid in options}
movie_id = st.selectbox(
    "Movie",
    options,
    index=options.index(wanted) if wanted in options else 0,
    format_func=lambda mid: f"{titles[mid]} (#{mid})",  # ids keep same-titled movies apart
    key="why_select",
)
st.session_state[L.K_WHY] = movie_id
if st.query_params.get("movie") != str(movie_id):
    st.query_params["movie"] = str(movie_id)

movie = v.svc.movie(movie_id)
pick = by_id.get(movie_id)
left, right = st.columns([1, 2])
with left:
    L.show_poster(movie.get("poster"), 240, alt=L.poster_alt(movie["title"], movie.get("year")))
    if movie.get("audio"):
        L.show_trailer(movie["audio"], label=f"Trailer of {movie['title']}")
with right:
    st.subheader(L.md(movie["title"]), anchor=False)
    st.markdown(
        L.md(
            " · ".join(
                str(x) for x in [movie.get("year") or "year unknown", *(movie.get("genres") or ())]
            )
        )
    )
    st.markdown(L.md(movie.get("overview", "")) or "_no synopsis_")
    if pick is not None:
        st.markdown(
            f"**Rank {pick.rank}** on your list · Q {pick.q:.3f}"
            + (" · exploration pick" if pick.exploration else "")
        )
        st.info(L.md(pick.reason), icon="💡")
    else:
        st.caption(
            "Not on your current list (already rated, hidden, filtered out, or the list moved on)."
        )

st.divider()
st.subheader("Why the policy scores it this way", anchor=False)
names = {"text": "synopsis", "image": "poster", "audio": "trailer"}
# At once (milliseconds, no encoder runs): the share bar and the reasons; the heatmaps follow.
try:
    summary = v.svc.explain_summary(v.user_id, movie_id, v.weights, filters=v.filters)
except L.ServiceError as exc:
    summary = None
    st.warning(str(exc))
except Exception as exc:  # an explanation failure must not take the page down
    summary = None
    st.error(f"Explanation failed: {type(exc).__name__}: {L.md(exc)}")

if summary is not None:
    import plotly.graph_objects as go

    shares, signed = summary["shares"], summary["shapley"]
    fig = go.Figure(
        go.Bar(
            x=[shares[m] for m in names],
            y=[names[m] for m in names],
            orientation="h",
            text=[f"{shares[m]:.0%}" for m in names],
            marker_color=["#4c78a8", "#f58518", "#54a24b"],
            hovertext=[f"Shapley value {signed[m]:+.4f}" for m in names],
        )
    )
    fig.update_layout(
        height=190,
        margin=dict(l=10, r=10, t=30, b=10),
        title="Modality shares of this pick's Q (exact Shapley values, |φ| normalised)",
        xaxis_range=[0, 1],
    )
    st.plotly_chart(fig, key="why_shares")
    st.caption(
        f"Q {summary['q']:.4f} = {summary['q_no_modalities']:.4f} with no modality + "
        + " + ".join(f"{names[m]} {signed[m]:+.4f}" for m in names)
        + (
            " · " + "; ".join(f"no {names[m]}" for m in summary["absent"])
            if summary["absent"]
            else ""
        )
        + (
            " · weight 0: " + ", ".join(names[m] for m in summary["muted"])
            if summary["muted"]
            else ""
        )
    )
    st.markdown("**In words**")
    for reason in summary["reasons"]:
        st.markdown("- " + L.md(reason))

e = None
if summary is not None:
    try:
        with st.spinner("Attributing the score to synopsis words, poster regions and trailer …"):
            e = v.svc.explain(v.user_id, movie_id, v.weights, filters=v.filters)
    except L.ServiceError as exc:
        st.warning(str(exc))
    except Exception as exc:  # an explanation failure must not take the page down
        st.error(f"Explanation failed: {type(exc).__name__}: {L.md(exc)}")

if e is not None:
    for note in e.notes:
        st.caption(L.md(note))

    st.markdown("**Synopsis** — red words raise the score, blue words lower it")
    st.image(
        e.legend_image(),
        caption="Colour scale of every map on this page",
        alt="Colour scale: blue lowers the score, white is neutral, red raises it",
    )
    with st.container(key="why_text"):
        if e.text is not None:
            st.markdown(e.synopsis_markdown(L.md))
        else:
            st.caption(L.md(e.missing_message("text")))
    if e.text is not None:
        st.caption(
            f"Layer Integrated Gradients, {e.text.steps} steps · words sum to "
            f"{e.text.total:+.4f} = Q(synopsis) − Q(synopsis of [PAD] tokens) "
            f"{e.text.q_input - e.text.q_baseline:+.4f} (delta {e.text.delta:.2e}). The share "
            "bar compares with no synopsis at all, a different baseline, so the words' sum and "
            "the synopsis share need not agree in size or sign."
        )
        st.caption("Strongest words: " + ", ".join(f"{L.md(w)} {s:+.3f}" for w, s in e.top_words()))

    c1, c2 = st.columns([2, 3])
    with c1:
        st.markdown("**Poster**")
        alpha = st.slider("Heatmap opacity", 0.0, 1.0, 0.55, 0.05, key="why_alpha")
        with st.container(key="why_poster"):
            st.image(
                e.poster_image(alpha),
                caption="Poster attributions",
                width=260,
                alt=f"Poster of {movie['title']} with the regions that moved its score in colour",
            )
        if e.poster is not None:
            st.caption(
                f"{e.poster.method}, {e.poster.steps} steps, blurred-poster baseline · "
                f"sum {e.poster.total:+.4f} vs ΔQ {e.poster.q_input - e.poster.q_baseline:+.4f} "
                f"· delta {e.poster.delta:.2e}"
            )
    with c2:
        st.markdown("**Trailer** — log-mel spectrogram, the most influential span framed")
        with st.container(key="why_trailer"):
            st.image(
                e.spectrogram_image(),
                caption="Trailer attributions (Integrated Gradients)",
                alt=f"Spectrogram of the trailer of {movie['title']} with the parts that moved "
                "its score in colour and the most influential span framed",
            )
        if e.trailer is not None:
            start, end = e.trailer.span
            st.caption(
                f"Most influential: {start:.1f}–{end:.1f} s · {e.trailer.steps} steps, silent "
                f"baseline · {e.trailer.resolution} · delta {e.trailer.delta:.2e}"
            )
            if e.trailer.position_caveat:
                st.caption(e.trailer.position_caveat)
            st.markdown(f"▶ Play from {int(start)} s")
            L.show_trailer(
                e.audio_path,
                start_time=int(start),
                label=f"Trailer of {movie['title']}, from {int(start)} s",
            )

    t = e.timings
    st.caption(
        ("served from cache · " if e.cached else "")
        + " · ".join(
            f"{k} {t[k] * 1000:.0f} ms"
            for k in ("shares", "text", "image", "audio", "total")
            if k in t
        )
    )

    with st.expander("Sanity check (Adebayo et al.): randomise the Q-network"):
        st.write(
            "Re-initialises every layer of a copy of the Q-network and recomputes the maps. "
            "Maps that hardly change (rank correlation near 1) would describe the input, not "
            "the model."
        )
        if st.button("Run the randomisation check", key="why_sanity"):
            with st.spinner("Recomputing the maps with a random Q-network …"):
                st.session_state["why_sanity_result"] = (
                    movie_id,
                    v.svc.explain_sanity(v.user_id, movie_id, v.weights),
                )
        done = st.session_state.get("why_sanity_result")
        if done and done[0] == movie_id:
            for m, rho in done[1].items():
                if abs(rho) < SANITY_RHO:
                    st.success(
                        f"{names[m].capitalize()}: passes (ρ = {rho:.2f}, below {SANITY_RHO}): "
                        "the map changes when the model is randomised, so it depends on what "
                        "the model learned.",
                        icon="✅",
                    )
                else:
                    st.warning(
                        f"{names[m].capitalize()}: fails (ρ = {rho:.2f}, at least "
                        f"{SANITY_RHO}): the map barely changes with a random model, so it "
                        "mostly reflects the input itself; read it with care.",
                        icon="⚠️",
                    )
            st.table(
                {
                    "map": [names[m] for m in done[1]],
                    "Spearman ρ (trained vs random Q)": [f"{r:.3f}" for r in done[1].values()],
                }
            )

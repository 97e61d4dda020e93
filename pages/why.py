"""Why this pick: the explanation of one recommended movie for this user.

Reached from every card on the For you grid (``?movie=<id>``). The attributions (modality
shares, synopsis tokens, poster and spectrogram heatmaps) come from ``svc.explain`` (issue 6);
until that module exists this page shows the pick's details and the service's reason text.
"""

import streamlit as st

from mmrec.ui import loaders as L

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
    format_func=lambda mid: titles[mid],
    key="why_select",
)
st.session_state[L.K_WHY] = movie_id
if st.query_params.get("movie") != str(movie_id):
    st.query_params["movie"] = str(movie_id)

movie = v.svc.movie(movie_id)
pick = by_id.get(movie_id)
left, right = st.columns([1, 2])
with left:
    if movie.get("poster"):
        st.image(movie["poster"], width=240)
    if movie.get("audio"):
        st.audio(movie["audio"], format=L.audio_mime(movie["audio"]))
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
st.subheader("Attributions", anchor=False)
try:
    explanation = v.svc.explain(v.user_id, movie_id, v.weights)
except (ImportError, NotImplementedError) as exc:
    explanation = None
    st.caption(f"Detailed attributions are not available yet ({type(exc).__name__}: {L.md(exc)}).")
except L.ServiceError as exc:
    explanation = None
    st.warning(str(exc))

if explanation is not None:
    shares = getattr(explanation, "shares", None)
    if isinstance(shares, dict) and shares:
        import plotly.graph_objects as go

        fig = go.Figure(go.Bar(x=list(shares.values()), y=list(shares.keys()), orientation="h"))
        fig.update_layout(
            height=200,
            margin=dict(l=10, r=10, t=30, b=10),
            title="Modality shares",
            xaxis_range=[0, 1],
        )
        st.plotly_chart(fig, key="why_shares")
    reasons = getattr(explanation, "reasons", None)
    for reason in reasons or []:
        st.markdown("- " + L.md(reason))

"""Explore: search and filter the catalog, a movie's detail view, the map of fused embeddings."""

import plotly.express as px
import streamlit as st

from mmrec.ui import loaders as L

v = L.view()
st.title("Explore the catalog")
if L.not_ready(v):
    st.stop()

K_MOVIE = "explore_movie"


K_MAP_PICK = "explore_map_pick"  # a movie opened from the map stays listed until a new search


def _open_from_map(movie_id: int) -> None:
    st.session_state[K_MAP_PICK] = movie_id
    st.session_state[K_MOVIE] = movie_id


def _new_search() -> None:
    st.session_state.pop(K_MAP_PICK, None)


tab_search, tab_map = st.tabs(["Search & details", "Map of the fused space"])

# ----------------------------------------------------------------------------- search + detail
with tab_search:
    query = st.text_input(
        "Search titles and synopses",
        key="explore_query",
        placeholder="e.g. space, heist, love",
        on_change=_new_search,
    )
    results = v.svc.search(query, v.filters, limit=v.ui.search_rows)
    rules = v.filters.describe()
    st.caption(
        f"{len(results)} movies"
        + (" (sidebar filters: " + L.md("; ".join(rules)) + ")" if rules else "")
    )
    st.dataframe(
        results,
        key="explore_table",
        height=260,
        column_config={
            "avg_rating": st.column_config.NumberColumn("avg ★", format="%.2f"),
            "n_ratings": st.column_config.NumberColumn("ratings"),
        },
    )
    ids = [int(i) for i in results.index]
    from_map = st.session_state.get(K_MAP_PICK)
    if from_map is not None and from_map not in ids:
        ids.insert(0, int(from_map))  # opened from the map: listed even if filtered out
    if ids and st.session_state.get(K_MOVIE) not in ids:
        # set, not dropped: a value set here is sent to the browser, which otherwise keeps
        # showing the label of a movie the new search no longer lists
        st.session_state[K_MOVIE] = ids[0]
    if not ids:
        st.info("No movie matches; change the search or the sidebar filters.")
    else:
        titles = v.svc.catalog.movies["title"]
        movie_id = st.selectbox(
            "Details for",
            ids,
            key=K_MOVIE,
            # the widget keeps the label, not the id: titles repeat, so the id disambiguates
            format_func=lambda mid: f"{titles.get(mid, mid)} (#{mid})",
        )
        movie = v.svc.movie(movie_id)
        with st.container(border=True, key="explore_detail"):
            c1, c2 = st.columns([1, 2])
            with c1:
                L.show_poster(
                    movie.get("poster"), 260, alt=L.poster_alt(movie["title"], movie.get("year"))
                )
            with c2:
                st.markdown("### " + L.title_line(movie["title"], movie.get("year")))
                st.caption(L.md(" · ".join(movie.get("genres") or ())))
                avg, n = movie.get("avg_rating"), int(movie.get("n_ratings") or 0)
                st.caption(f"average {avg:.2f}★ from {n} ratings" if n else "no ratings yet")
                st.markdown(L.md(movie.get("overview", "")) or "_no synopsis_")
                if movie.get("audio"):
                    L.show_trailer(movie["audio"], label=f"Trailer of {movie['title']}")
                else:
                    st.caption("no trailer")
            w = v.proposed
            st.markdown(
                f"**Nearest neighbours in the fused space** (weights text {w.text:.2f} · "
                f"image {w.image:.2f} · audio {w.audio:.2f})"
            )
            neighbours = v.svc.neighbours(movie_id, w, k=v.ui.neighbours)
            ncols = st.columns(min(4, max(1, len(neighbours))))
            for j, (nid, _title, sim) in enumerate(neighbours):
                nb = v.svc.movie(nid)
                with ncols[j % len(ncols)]:
                    L.show_poster(
                        nb.get("poster"), 110, alt=L.poster_alt(nb["title"], nb.get("year"))
                    )
                    st.markdown(L.title_line(nb["title"], nb.get("year")))
                    st.caption(f"similarity {sim:.3f}")

# ----------------------------------------------------------------------------- map
with tab_map:
    data_dir, ckpt_dir = L.current_paths()
    w = v.proposed
    table = L.map_table(data_dir, ckpt_dir, w.key(), L.checkpoint_version(ckpt_dir)).copy()
    table["hover"] = [L.hover(t) for t in table["title"]]
    st.caption(
        f"PCA of the fused item embeddings under the sidebar weights (text {w.text:.2f} · image "
        f"{w.image:.2f} · audio {w.audio:.2f}); it moves when you move a slider. Click a point "
        "to see its poster."
    )
    fig = px.scatter(
        table,
        x="x",
        y="y",
        color="genre",
        custom_data=["movie_id", "hover"],
        height=v.ui.map_height,
    )
    fig.update_traces(
        hovertemplate="%{customdata[1]}<extra>%{fullData.name}</extra>",
        marker=dict(size=9, opacity=0.85),
    )
    fig.update_layout(
        margin=dict(l=10, r=10, t=40, b=10),  # room for plotly's toolbar above the legend
        legend_title_text="primary genre",
        xaxis_title=None,
        yaxis_title=None,
    )
    map_col, side_col = st.columns([3, 1])
    with map_col:
        event = st.plotly_chart(fig, key="explore_map", on_select="rerun", selection_mode="points")
    with side_col:
        points = (event or {}).get("selection", {}).get("points", []) if event else []
        if points:
            cd = points[0].get("customdata") or []
            try:
                picked = int(cd[0])
            except (IndexError, TypeError, ValueError):
                picked = None
            if picked is not None:
                movie = v.svc.movie(picked)
                L.show_poster(
                    movie.get("poster"), 200, alt=L.poster_alt(movie["title"], movie.get("year"))
                )
                st.markdown(L.title_line(movie["title"], movie.get("year")))
                st.caption(L.md(" · ".join(movie.get("genres") or ())))
                st.button("Show details", key="map_open", on_click=_open_from_map, args=(picked,))
        else:
            st.caption("Select a point (click) to see its poster here.")

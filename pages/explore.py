"""Explore: search and filter the catalog, a movie's detail view, the map of fused embeddings.

A click opens a film where it was clicked: a row of the table opens it in the detail view under
the table, a neighbour's "Open" button opens it there too, a point of the map opens it next to
the map. Nothing changes the other tab.
"""

import streamlit as st

from mmrec.ui import charts as LC
from mmrec.ui import loaders as L

v = L.view()
st.title("Explore the catalog")
if L.not_ready(v):
    st.stop()

K_MOVIE = "explore_movie"
K_TABLE = "explore_table"
K_TABLE_IDS = "explore_table_ids"  # the table's movie ids in row order (for its row clicks)
K_PINNED = "explore_pinned"  # a film opened from a neighbour stays listed until a new search


def _open_row() -> None:
    """A row of the table was clicked: open its film in the detail view below."""
    picked = LC.picked_row(st.session_state.get(K_TABLE), st.session_state.get(K_TABLE_IDS, []))
    if picked is not None:
        st.session_state[K_MOVIE] = picked


def _open_neighbour(movie_id: int) -> None:
    st.session_state[K_PINNED] = movie_id
    st.session_state[K_MOVIE] = movie_id


def _new_search() -> None:
    st.session_state.pop(K_PINNED, None)


def film_detail(movie_id: int, neighbours: bool, poster_px: int) -> None:
    """Poster, title, genres, rating, synopsis, trailer; with ``neighbours`` also the nearest
    films in the fused space with what makes each near (and a button to open it here)."""
    movie = v.svc.movie(movie_id)
    c1, c2 = st.columns([1, 2]) if neighbours else (st.container(), st.container())
    with c1:
        L.show_poster(
            movie.get("poster"), poster_px, alt=L.poster_alt(movie["title"], movie.get("year"))
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
    if not neighbours:
        return
    w = v.proposed
    st.markdown(
        f"**Nearest neighbours in the fused space** (weights text {w.text:.2f} · "
        f"image {w.image:.2f} · audio {w.audio:.2f})"
    )
    table = LC.neighbour_table(v.svc, movie_id, w, v.ui.neighbours)
    if len(table):
        st.caption(
            f"Their cosine similarities lie close together ({table['cosine'].min():.3f}–"
            f"{table['cosine'].max():.3f}), so each also says what share of the catalog it is "
            "closer than: overall, and by its synopsis, poster and trailer alone (100% = the "
            "closest film of all)."
        )
    ncols = st.columns(min(4, max(1, len(table))))
    for j, row in enumerate(table.itertuples(index=False)):
        nb = v.svc.movie(row.movie_id)
        with ncols[j % len(ncols)]:
            L.show_poster(nb.get("poster"), 110, alt=L.poster_alt(nb["title"], nb.get("year")))
            st.markdown(L.title_line(nb["title"], nb.get("year")))
            st.caption(LC.closeness_words(table.iloc[j]) + f" · cosine {row.cosine:.3f}")
            st.button(
                "Open",
                key=f"nb_open_{row.movie_id}",
                on_click=_open_neighbour,
                args=(int(row.movie_id),),
                help=f"Show {nb['title']} in this detail view",
            )


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
        + (" · click a row to open it below" if len(results) else "")
    )
    ids = [int(i) for i in results.index]
    st.session_state[K_TABLE_IDS] = ids
    st.dataframe(
        results,
        key=K_TABLE,
        height=260,
        on_select=_open_row,
        selection_mode="single-row",
        column_config={
            "avg_rating": st.column_config.NumberColumn("avg ★", format="%.2f"),
            "n_ratings": st.column_config.NumberColumn("ratings"),
        },
    )
    pinned = st.session_state.get(K_PINNED)
    if pinned is not None and pinned not in ids:
        ids.insert(0, int(pinned))  # opened from a neighbour: listed even if filtered out
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
        with st.container(border=True, key="explore_detail"):
            film_detail(movie_id, neighbours=True, poster_px=260)

# ----------------------------------------------------------------------------- map
with tab_map:
    data_dir, ckpt_dir = L.current_paths()
    w = v.proposed
    table = L.map_table(data_dir, ckpt_dir, w.key(), L.checkpoint_version(ckpt_dir)).copy()
    table["hover"] = [L.hover(t) for t in table["title"]]
    history = [] if v.user_id is None else v.svc.user_state(v.user_id).history
    rated = {int(m) for m, _r in history}
    st.caption(
        f"PCA of the fused item embeddings under the sidebar weights (text {w.text:.2f} · image "
        f"{w.image:.2f} · audio {w.audio:.2f}); it moves when you move a slider. Colour: a "
        f"film's first genre; white rings: the {len(rated)} films you rated. Click a point to "
        "open that film next to the map (under it on a narrow screen)."
    )
    fig = LC.map_chart(table, rated, v.ui.map_height)
    map_col, side_col = st.columns([3, 2])
    with map_col:
        event = st.plotly_chart(fig, key="explore_map", on_select="rerun", selection_mode="points")
    with side_col:
        picked = LC.picked_point(event)
        if picked is not None:
            with st.container(border=True, key="explore_map_detail"):
                film_detail(picked, neighbours=False, poster_px=200)
        else:
            st.caption("Click a point of the map to open that film here.")

"""The Learning and Explore pages' figures, built from plain data (tests read their axes).

Each chart puts one quantity on one axis and says what the axis is: ε on its own 0..max axis,
Q as differences from the list's mean (bars start at a meaningful zero), the simulator's
training curves as small multiples over the environment step, the map's genres in a fixed
palette of 24 distinguishable colours with the user's rated films ringed.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

# Green-Armytage's 26-colour "alphabet" (plotly.express.colors.qualitative.Alphabet), designed
# for many distinguishable categories, less its two darkest (a dark grey and a dark brown that
# vanish on the dashboard's dark background): 24 colours, none repeated, reordered so that the
# first ones (given to the most frequent genres) are the most different hues.
GENRE_PALETTE = (
    "#3283FE", "#FEAF16", "#1CBE4F", "#F6222E", "#AA0DFE", "#FBE426", "#2ED9FF", "#FC1CBF",
    "#E2E2E2", "#C4451C", "#90AD1C", "#DEA0FD", "#1C8356", "#F8A19F", "#782AB6", "#1CFFCE",
    "#B00068", "#F7E1A0", "#325A9B", "#16FF32", "#C075A6", "#FE00FA", "#B10DA1", "#FA0087",
)  # fmt: skip
OTHER_GENRES = "other genres"  # the rarest genres share one grey beyond 23 (none in MovieLens)
OTHER_COLOUR = "#8C8C8C"
RATED_NAME = "films you rated"  # the map's legend entry for the ring around rated films
RATED_RING = "#FFFFFF"  # the ring: white on the dark theme, drawn with a dark outline
MODALITIES = (("text", "synopsis"), ("image", "poster"), ("audio", "trailer"))


# ----------------------------------------------------------------------------- Learning page
def epsilon_chart(epsilons: list[float], max_epsilon: float) -> go.Figure:
    """ε at each live rating, on its own axis from 0 to the sidebar's maximum (or higher, if a
    stored value exceeds it): a constant ε is a flat line at its true height, not a line lost
    in an autoscaled −0.5..1 axis."""
    top = max([float(max_epsilon)] + [float(e) for e in epsilons])
    fig = go.Figure(
        go.Scatter(
            x=list(range(1, len(epsilons) + 1)),
            y=[float(e) for e in epsilons],
            mode="lines+markers",
            line_shape="hv",  # ε is a setting that holds until changed: steps, not slopes
            name="ε",
            hovertemplate="rating #%{x}<br>ε %{y:.2f}<extra></extra>",
        )
    )
    fig.update_layout(
        title="Exploration rate ε at each rating",
        xaxis_title="your rating # (live updates, oldest first)",
        yaxis_title=f"ε (share of exploratory slots, 0–{top:g})",
        showlegend=False,
    )
    fig.update_xaxes(tickformat="d", rangemode="tozero")
    fig.update_yaxes(range=[0.0, top * 1.05], tickformat=".2f")
    return fig


def q_chart(q_values: list[float], titles: list[str]) -> go.Figure:
    """Q of each pick on screen as its difference from the list's mean Q: the values differ in
    the 2nd or 3rd decimal, so bars from 0 would all look equal; bars from the mean show the
    spread and their sign. The mean (and each raw Q, on hover) is in the axis title."""
    q = np.asarray(q_values, dtype=np.float64)
    mean = float(q.mean()) if len(q) else 0.0
    fig = go.Figure(
        go.Bar(
            x=list(range(1, len(q) + 1)),
            y=(q - mean).tolist(),
            customdata=np.column_stack([titles, q]).tolist() if len(q) else [],
            hovertemplate="#%{x} %{customdata[0]}<br>Q %{customdata[1]:.4f} "
            "(%{y:+.4f} from the mean)<extra></extra>",
            marker_color=["#2ED9FF" if d >= 0 else "#F8A19F" for d in q - mean],
        )
    )
    fig.update_layout(
        title="Q of each pick on screen, minus the list's mean",
        xaxis_title="slot on the grid (1 = first)",
        yaxis_title=f"Q − mean Q (mean = {mean:.3f})",
        showlegend=False,
    )
    fig.update_xaxes(tickformat="d", dtick=1)
    fig.update_yaxes(zeroline=True, tickformat="+.3f")
    return fig


def rating_counts_sentence(learned: int, stored: int, onboarding: int, updates: int) -> str:
    """Why "ratings learned from" and "ratings stored" differ, in words (or "" when equal)."""
    parts = []
    if onboarding:
        parts.append(
            f"{onboarding} of the {stored} stored rating{'s' if stored != 1 else ''} "
            f"{'are' if onboarding != 1 else 'is'} the liked title{'s' if onboarding != 1 else ''}"
            " you chose at onboarding: they set the starting point of the policy, not a live "
            "update"
        )
    rated_on_cards = stored - onboarding
    if learned > rated_on_cards:
        parts.append(
            f"{learned - rated_on_cards} live update{'s' if learned - rated_on_cards != 1 else ''}"
            " came from rating a film again (the store keeps its latest rating, the policy "
            "learned from each)"
        )
    elif learned < rated_on_cards:
        parts.append(
            f"{rated_on_cards - learned} stored rating"
            f"{'s' if rated_on_cards - learned != 1 else ''} came from outside the cards (an "
            "import or an older version) and did not pass through a live update"
        )
    if updates != learned:
        parts.append(
            f"live updates were off for {learned - updates} of the {learned} ratings (they were "
            "stored and recorded, the policy did not change)"
        )
    return "; ".join(parts) + ("." if parts else "")


def training_curves_chart(curve: dict) -> go.Figure | None:
    """The simulator's training run as three small multiples sharing the x axis, the
    environment step: episode return (each episode and the binned mean), TD loss
    and ε. Step counters are the x axis, never a series. None when the curve has no data."""
    ret_x, ret_y = curve.get("episode_end_step") or [], curve.get("episode_return") or []
    loss_x, loss_y = curve.get("loss_step") or [], curve.get("td_loss") or []
    eps_y = curve.get("epsilon") or []
    binned = curve.get("binned") or {}
    if not (ret_y or loss_y or eps_y):
        return None
    fig = make_subplots(
        rows=3,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.08,
        subplot_titles=(
            "Return per episode (line: mean per bin)",
            "TD loss",
            "Exploration rate ε",
        ),
    )
    n = min(len(ret_x), len(ret_y))
    fig.add_trace(
        go.Scatter(
            x=ret_x[:n],
            y=ret_y[:n],
            mode="markers",
            name="episode return",
            marker=dict(size=4, opacity=0.35, color="#2ED9FF"),
        ),
        row=1,
        col=1,
    )
    bx, by = binned.get("step") or [], binned.get("mean") or []
    if bx and by:
        fig.add_trace(
            go.Scatter(
                x=bx,
                y=by,
                mode="lines+markers",
                name="mean return per bin",
                line=dict(color="#FEAF16", width=3),
            ),
            row=1,
            col=1,
        )
    n = min(len(loss_x), len(loss_y))
    fig.add_trace(
        go.Scatter(
            x=loss_x[:n], y=loss_y[:n], mode="lines", name="TD loss", line=dict(color="#F8A19F")
        ),
        row=2,
        col=1,
    )
    n = min(len(loss_x), len(eps_y))  # ε is logged with each loss point
    fig.add_trace(
        go.Scatter(x=loss_x[:n], y=eps_y[:n], mode="lines", name="ε", line=dict(color="#90AD1C")),
        row=3,
        col=1,
    )
    fig.update_yaxes(title_text="return", row=1, col=1)
    fig.update_yaxes(title_text="TD loss", rangemode="tozero", row=2, col=1)
    fig.update_yaxes(title_text="ε", range=[0, 1.0], row=3, col=1)
    fig.update_xaxes(title_text="environment step (all parallel environments)", row=3, col=1)
    fig.update_layout(height=640, showlegend=False, margin=dict(t=60))
    return fig


# ----------------------------------------------------------------------------- Explore page
def _session_starts(fig: go.Figure, steps: list[dict], rows: int = 1) -> None:
    """A dashed vertical line where each returning session begins."""
    for i, step in enumerate(steps[1:], start=2):
        if step["session"] != steps[i - 2]["session"]:
            for r in range(1, rows + 1):
                fig.add_vline(x=i - 0.5, line_dash="dash", line_color="#888", row=r, col=1)


def dynamics_interest_chart(replay: dict) -> go.Figure:
    """Per recommendation: the user's static taste for the film and the interest they felt
    (taste moved by satiation and novelty), in stars; ✕ where the user left the session."""
    steps = replay["steps"]
    x = list(range(1, len(steps) + 1))
    hover = [f"{s['title']} ({s['genres'].replace('|', ', ')})" for s in steps]
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=x, y=[s["static"] for s in steps], mode="lines+markers", name="static taste",
            line={"dash": "dot"}, customdata=hover,
            hovertemplate="#%{x} %{customdata}<br>taste %{y:.2f}<extra></extra>",
        )
    )  # fmt: skip
    fig.add_trace(
        go.Scatter(
            x=x, y=[s["interest"] for s in steps], mode="lines+markers", name="interest felt",
            customdata=hover,
            hovertemplate="#%{x} %{customdata}<br>interest %{y:.2f}<extra></extra>",
        )
    )  # fmt: skip
    left = [i for i, s in enumerate(steps, start=1) if s["left"]]
    if left:
        fig.add_trace(
            go.Scatter(
                x=left, y=[steps[i - 1]["interest"] for i in left], mode="markers",
                marker={"symbol": "x", "size": 14, "color": "#F6222E"}, name="left the session",
                hoverinfo="skip",
            )
        )  # fmt: skip
    _session_starts(fig, steps)
    fig.update_layout(
        title="Taste vs interest per film",
        xaxis_title="recommendation # (dashed: a returning session starts)",
        yaxis_title="stars (0.5–5)",
        legend={"orientation": "h", "y": -0.25},
    )
    fig.update_xaxes(tickformat="d")
    fig.update_yaxes(range=[0.4, 5.1])
    return fig


def dynamics_satiation_chart(replay: dict, max_genres: int = 8) -> go.Figure | None:
    """Satiation per genre after each film (the genres that reached the most), as a heat map:
    a bright row is a genre the user is tired of; it fades as other genres are shown."""
    sat = np.asarray(replay["satiation"], dtype=float)  # (steps, G)
    if sat.size == 0 or not sat.any():
        return None
    order = np.argsort(-sat.max(axis=0), kind="stable")[:max_genres]
    order = [g for g in order if sat[:, g].max() > 0]
    fig = go.Figure(
        go.Heatmap(
            z=sat[:, order].T,
            x=list(range(1, len(sat) + 1)),
            y=[replay["genres"][g] for g in order],
            # explicit stops (a named scale's first stop came out red under the app's theme):
            # none = the page's background, most tired = bright
            colorscale=[[0.0, "#1E1F26"], [0.35, "#5B2A86"], [0.7, "#D1495B"], [1.0, "#FFD166"]],
            zmin=0.0,
            colorbar={"title": "satiation"},
            hovertemplate="#%{x} %{y}: satiation %{z:.2f}<extra></extra>",
        )
    )
    fig.update_layout(
        title="Satiation by genre (hidden from every policy)",
        xaxis_title="recommendation #",
        yaxis={"autorange": "reversed"},
    )
    fig.update_xaxes(tickformat="d")
    return fig


def dynamics_satisfaction_chart(replay: dict) -> go.Figure:
    """The session's satisfaction (a moving average of interest, stars) and the chance that
    the user leaves after each film, as two panels over the same recommendations."""
    steps = replay["steps"]
    x = list(range(1, len(steps) + 1))
    fig = make_subplots(
        rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.12,
        subplot_titles=("Satisfaction (stars)", "Chance of leaving after this film"),
    )  # fmt: skip
    fig.add_trace(
        go.Scatter(
            x=x, y=[s["satisfaction"] for s in steps], mode="lines+markers", name="satisfaction",
            hovertemplate="#%{x} satisfaction %{y:.2f}<extra></extra>",
        ),
        row=1, col=1,
    )  # fmt: skip
    fig.add_trace(
        go.Bar(
            x=x, y=[s["leave_probability"] for s in steps], name="leave chance",
            hovertemplate="#%{x} leave %{y:.1%}<extra></extra>",
        ),
        row=2, col=1,
    )  # fmt: skip
    _session_starts(fig, steps, rows=2)
    fig.update_layout(showlegend=False, margin={"t": 50})
    fig.update_yaxes(range=[0.4, 5.1], row=1, col=1)
    fig.update_yaxes(tickformat=".0%", rangemode="tozero", row=2, col=1)
    fig.update_xaxes(tickformat="d", title_text="recommendation #", row=2, col=1)
    return fig


def genre_colours(genres: pd.Series) -> dict[str, str]:
    """A fixed colour per genre, most frequent first (ties by name): each its own palette
    colour while they fit; beyond that the rarest share :data:`OTHER_GENRES`' grey."""
    counts = genres.astype(str).value_counts()
    order = sorted(counts.index, key=lambda g: (-int(counts[g]), g))
    if len(order) <= len(GENRE_PALETTE):
        return {g: GENRE_PALETTE[j] for j, g in enumerate(order)}
    keep = len(GENRE_PALETTE) - 1
    out = {g: GENRE_PALETTE[j] for j, g in enumerate(order[:keep])}
    out[OTHER_GENRES] = OTHER_COLOUR
    return out


def _points(part: pd.DataFrame, name: str, marker: dict, hover: str, **kw) -> go.Scatter:
    """One map trace; ``customdata`` = (movie id, hover title) so a click selects a film."""
    return go.Scatter(
        x=part["x"],
        y=part["y"],
        mode="markers",
        name=name,
        marker=marker,
        customdata=np.column_stack([part["movie_id"], part["hover"]]).tolist() if len(part) else [],
        hovertemplate=hover,
        **kw,
    )


def map_chart(table: pd.DataFrame, rated: set[int], height: int) -> go.Figure:
    """The PCA map: one trace per primary genre (legend order: most frequent first) in
    :data:`GENRE_PALETTE`, then the user's rated films as white rings on top (their own legend
    entry). ``customdata`` = (movie id, hover title) on every point: a click selects a film."""
    colours = genre_colours(table["genre"])
    genre = table["genre"].astype(str).where(table["genre"].astype(str).isin(colours), OTHER_GENRES)
    fig = go.Figure()
    for name, colour in colours.items():
        fig.add_trace(
            _points(
                table[genre == name],
                name,
                dict(size=9, opacity=0.85, color=colour),
                "%{customdata[1]}<extra>%{fullData.name}</extra>",
            )
        )
    mine = table[table["movie_id"].isin([int(m) for m in rated])]
    ring = dict(
        size=17, symbol="circle-open", color=RATED_RING, line=dict(width=2.5, color=RATED_RING)
    )
    fig.add_trace(
        _points(
            mine,
            RATED_NAME,
            ring,
            "%{customdata[1]} (you rated it)<extra></extra>",
            visible=True if len(mine) else "legendonly",
        )
    )
    fig.update_layout(
        height=height,
        margin=dict(l=10, r=10, t=40, b=10),  # room for plotly's toolbar above the legend
        legend_title_text="primary genre",
        # under the map, in rows: beside it the legend took half a phone's width
        legend=dict(orientation="h", yanchor="top", y=-0.06, xanchor="left", x=0),
        xaxis_title=None,
        yaxis_title=None,
    )
    return fig


def picked_point(event) -> int | None:
    """The movie id of the first selected point of a plotly chart's selection event."""
    points = ((event or {}).get("selection") or {}).get("points") or []
    for point in points:
        cd = point.get("customdata") or []
        try:
            return int(cd[0])
        except (IndexError, TypeError, ValueError):
            continue
    return None


def picked_row(event, ids: list[int]) -> int | None:
    """The movie id of the selected row of a dataframe's selection event (rows are positions
    in ``ids``, the table's order)."""
    rows = ((event or {}).get("selection") or {}).get("rows") or []
    for row in rows:
        if 0 <= int(row) < len(ids):
            return int(ids[int(row)])
    return None


def closer_than(emb: np.ndarray, pos: int, others: list[int]) -> list[float]:
    """For each film in ``others`` (row positions): the share of the rest of the catalog that is
    less similar to the film at ``pos`` (cosine of the embeddings, as the neighbour ranking),
    0..1. 0.99 = closer than 99% of the catalog."""
    emb = np.asarray(emb, dtype=np.float64)
    unit = emb / (np.linalg.norm(emb, axis=1, keepdims=True) + 1e-9)
    sims = unit @ unit[pos]  # (N,)
    ranked = np.sort(np.delete(sims, pos))  # everyone but the film itself
    denominator = max(len(ranked) - 1, 1)  # ... and but the neighbour being placed
    return [float(np.searchsorted(ranked, sims[j], side="left") / denominator) for j in others]


def neighbour_table(svc, movie_id: int, weights, k: int) -> pd.DataFrame:
    """The ``k`` nearest films in the fused space (the service's cosine ranking) with what
    discriminates them: the near films' cosines lie close together, so each
    row also says which share of the catalog it is closer than, overall (under the sidebar
    weights) and per modality (that branch alone; empty where either film lacks it)."""
    weights = weights.clipped()
    neighbours = svc.neighbours(movie_id, weights, k=k)
    ids = [int(n) for n, _t, _s in neighbours]
    positions = svc.catalog.index_of(np.asarray([movie_id] + ids))
    pos, others = int(positions[0]), [int(p) for p in positions[1:]]
    out = pd.DataFrame(
        {
            "movie_id": ids,
            "title": [t for _n, t, _s in neighbours],
            "cosine": [float(s) for _n, _t, s in neighbours],
            "overall": closer_than(svc.embeddings(weights), pos, others),
        }
    )
    movies = svc.catalog.movies
    for modality, label in MODALITIES:
        has = movies[f"has_{modality}"].to_numpy(dtype=bool)
        emb = svc.embeddings(type(weights)(**{m: float(m == modality) for m, _ in MODALITIES}))
        share = closer_than(emb, pos, others)
        out[label] = [s if has[pos] and has[j] else np.nan for s, j in zip(share, others)]
    return out


def closeness_words(row) -> str:
    """One neighbour's caption: overall and per-modality closeness as percentages."""
    per = " · ".join(
        f"{label} {row[label]:.0%}" for _m, label in MODALITIES if not pd.isna(row[label])
    )
    return f"closer than {row['overall']:.1%} of the catalog" + (f" ({per})" if per else "")

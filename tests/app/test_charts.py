"""The Learning and Explore charts as a user reads them (issue 15, item 4), checked on the chart
specs the pages send to the browser:

- ε on its own axis from 0 to the sidebar's maximum; Q as differences from the list's mean;
  the two rating counts explained; the simulator's training curves as small multiples over the
  environment step (no step counter plotted as a series);
- the map: one colour per genre from a fixed palette of 24 (no repeats), the user's rated films
  ringed with a legend entry; a click on a table row or a map point opens that film on the same
  tab, and nothing on the other tab changes.

AppTest has no API for a dataframe's or a chart's selection, so :func:`select` sends the
selection event the browser sends (a widget state with the selection's JSON) through
Streamlit's own widget machinery; the page's callback then runs as in a browser.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
from streamlit.proto.WidgetStates_pb2 import WidgetState
from streamlit.testing.v1 import AppTest
from test_pages import APP, grid_ids, onboard, run_app

from mmrec.config import load_config
from mmrec.ui import cardgrid
from mmrec.ui import charts as LC
from mmrec.ui import loaders as L


def charts(at: AppTest) -> dict[str, dict]:
    """The page's plotly figures by their key (the element id ends with the user key)."""
    out = {}
    for element in at.get("plotly_chart"):
        spec = json.loads(element.proto.spec)
        out[element.proto.id.rsplit("-", 1)[-1]] = spec
    return out


def select(at: AppTest, element_id: str, selection: dict) -> AppTest:
    """Run the app as after a click that selected ``selection`` in the element ``element_id``
    (a dataframe's or a chart's widget id): the widget states of the last run plus this one."""
    states = at._tree.get_widget_states()
    state = WidgetState(id=element_id)
    state.string_value = json.dumps({"selection": selection})
    states.widgets.append(state)
    at._run(states)
    assert not at.exception, [e.value for e in at.exception]
    return at


def rate_some(at: AppTest, stars=(5, 2, 4)) -> list[int]:
    rated = []
    for n in stars:
        mid = grid_ids(at)[0]
        cardgrid.apptest_event(at, "rate", {"id": mid, "stars": n})
        assert not at.exception, [e.value for e in at.exception]
        rated.append(mid)
    return rated


def test_learning_charts_have_their_own_meaningful_axes(env, tmp_path, monkeypatch):
    reports = tmp_path / "work" / "reports"
    reports.mkdir(parents=True)
    # the repository's demo report (it has training curves), re-labelled as written for this
    # session's data folder: the page shows only reports of the folder it serves
    policy = json.loads((Path(APP).parent / "reports" / "policy.json").read_text())
    policy["command"] = f"python -m mmrec evaluate policy --data {env['cfg'].paths.data_dir}"
    (reports / "policy.json").write_text(json.dumps(policy))
    shutil.copy(Path(APP).parent / "reports" / "live.json", reports)  # the demo's: not shown
    monkeypatch.chdir(tmp_path / "work")
    at = onboard("lena")
    rated = rate_some(at)
    at.switch_page(L.LEARNING_PAGE)
    run_app(at)
    assert not at.error, [e.value for e in at.error]
    figs = charts(at)
    assert "learn_live_true" not in figs  # the live report was written for the demo folder
    assert any("A live-loop report exists for another data folder" in c.value for c in at.caption)

    # ε: its own axis from 0 to the sidebar's maximum, over the ratings
    eps = figs["learn_eps"]
    ui = load_config().ui
    assert eps["layout"]["yaxis"]["range"][0] == 0.0
    assert eps["layout"]["yaxis"]["range"][1] >= ui.max_epsilon
    assert "ε" in eps["layout"]["yaxis"]["title"]["text"]
    assert "rating" in eps["layout"]["xaxis"]["title"]["text"]
    assert eps["data"][0]["y"] == [ui.default_epsilon] * len(rated)

    # Q: differences from the list's mean (they sum to 0), raw Q on hover, the mean in the title
    q = figs["learn_q"]
    diffs = np.asarray(q["data"][0]["y"], dtype=float)
    raw = np.asarray([float(c[1]) for c in q["data"][0]["customdata"]])
    assert abs(diffs.sum()) < 1e-9 * len(diffs) + 1e-9
    np.testing.assert_allclose(diffs, raw - raw.mean(), atol=1e-9)
    assert q["layout"]["yaxis"]["title"]["text"].startswith("Q − mean Q (mean = ")

    # the counts: learned from (live updates) and stored, side by side and equal here
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Ratings learned from"] == str(len(rated))
    assert metrics["Ratings stored"] == str(len(rated))
    assert not [c for c in at.caption if c.value.startswith("Why the two counts differ")]

    # the simulator's training run: three panels on one x axis (the environment step)
    curve = figs["learn_curve_given"]
    names = [t.get("name") for t in curve["data"]]
    assert not [n for n in names if "step" in (n or "")], names  # steps are the x axis
    axes = {k: v for k, v in curve["layout"].items() if k.startswith("yaxis")}
    assert len(axes) == 3, axes
    assert [axes[k]["title"]["text"] for k in ("yaxis", "yaxis2", "yaxis3")] == [
        "return",
        "TD loss",
        "ε",
    ]
    assert axes["yaxis3"]["range"] == [0, 1.0]  # ε: 0..1, not the loss's or the return's
    assert "environment step" in curve["layout"]["xaxis3"]["title"]["text"]
    report = json.loads((reports / "policy.json").read_text())["learning_curves"]["given"]
    by_name = {t["name"]: t for t in curve["data"]}
    assert by_name["TD loss"]["x"] == report["loss_step"]
    assert by_name["ε"]["y"] == report["epsilon"]
    assert max(max(t["y"]) for t in curve["data"] if t["name"] == "ε") <= 1.0

    # one simulated user's hidden dynamics: taste vs interest over the same recommendations
    # as the satisfaction / leave panels and the table; the policy is switchable
    n_recs = int(metrics["Recommendations"])
    interest = {t["name"]: t for t in figs["dyn_interest"]["data"]}
    assert len(interest["interest felt"]["y"]) == n_recs == len(interest["static taste"]["y"])
    sat = figs["dyn_satisfaction"]
    assert [a["text"] for a in sat["layout"]["annotations"]][:2] == [
        "Satisfaction (stars)",
        "Chance of leaving after this film",
    ]
    assert all(0 <= p <= 1 for p in sat["data"][1]["y"]) and len(sat["data"][0]["y"]) == n_recs
    assert len(at.dataframe[-1].value) == n_recs  # the dynamics table comes last
    at.selectbox(key="dyn_policy").set_value("myopic oracle")
    run_app(at)
    assert not at.error, [e.value for e in at.error]
    assert {m.label: m.value for m in at.metric}["Recommendations"] == str(
        len(charts(at)["dyn_interest"]["data"][0]["y"])
    )


def test_rating_counts_sentence_says_why_they_differ():
    # 5 live updates, 6 stored: one liked title from onboarding (the case)
    words = LC.rating_counts_sentence(learned=5, stored=6, onboarding=1, updates=5)
    assert "1 of the 6 stored ratings is the liked title" in words
    # a film rated twice: stored once, learned from twice
    words = LC.rating_counts_sentence(learned=4, stored=3, onboarding=0, updates=4)
    assert "1 live update came from rating a film again" in words
    assert LC.rating_counts_sentence(learned=3, stored=3, onboarding=0, updates=3) == ""


def test_map_palette_tells_sixteen_and_more_genres_apart():
    genres = [f"genre {j:02d}" for j in range(20)]
    table = pd.DataFrame(
        {
            "movie_id": np.arange(200),
            "x": np.random.default_rng(0).normal(size=200),
            "y": np.random.default_rng(1).normal(size=200),
            "genre": [genres[j % 20] for j in range(200)],
            "hover": [f"film {j}" for j in range(200)],
        }
    )
    fig = LC.map_chart(table, rated={3, 7}, height=400)
    genre_traces = [t for t in fig.data if t.name != LC.RATED_NAME]
    assert len(genre_traces) == 20
    colours = [t.marker.color for t in genre_traces]
    assert len(set(colours)) == 20  # no colour repeats (plotly's default cycles 10)
    assert len(LC.GENRE_PALETTE) >= 16 and len(set(LC.GENRE_PALETTE)) == len(LC.GENRE_PALETTE)
    ring = [t for t in fig.data if t.name == LC.RATED_NAME]
    assert len(ring) == 1 and sorted(int(c[0]) for c in ring[0].customdata) == [3, 7]
    # more genres than colours: the rarest share one grey, named as such, never a repeat
    table["genre"] = [f"g{j % 30}" for j in range(200)]
    fig = LC.map_chart(table, rated=set(), height=400)
    names = [t.name for t in fig.data if t.name != LC.RATED_NAME]
    assert LC.OTHER_GENRES in names and len(names) == len(LC.GENRE_PALETTE)
    colours = [t.marker.color for t in fig.data if t.name != LC.RATED_NAME]
    assert len(set(colours)) == len(colours)


def test_explore_map_rings_rated_films_and_opens_a_clicked_film(env):
    at = onboard("mona")
    rated = rate_some(at, stars=(4, 3))
    at.switch_page(L.EXPLORE_PAGE)
    run_app(at)
    assert not at.error, [e.value for e in at.error]
    fig = charts(at)["explore_map"]
    genre_traces = [t for t in fig["data"] if t["name"] != LC.RATED_NAME]
    colours = [t["marker"]["color"] for t in genre_traces]
    assert len(set(colours)) == len(colours) and set(colours) <= set(LC.GENRE_PALETTE)
    ring = [t for t in fig["data"] if t["name"] == LC.RATED_NAME]
    assert len(ring) == 1
    assert sorted(int(c[0]) for c in ring[0]["customdata"]) == sorted(rated)
    assert ring[0]["marker"]["symbol"] == "circle-open"

    # a click on a point opens that film beside the map; the search tab's film stays
    before = at.selectbox(key="explore_movie").value
    target = int(genre_traces[-1]["customdata"][0][0])
    map_id = next(e.proto.id for e in at.get("plotly_chart") if e.proto.id.endswith("explore_map"))
    point = {"curve_number": 0, "point_number": 0, "customdata": [target, "x"]}
    select(at, map_id, {"points": [point], "point_indices": [0], "box": [], "lasso": []})
    titles = L.title_line(*fresh_title(env, target))
    assert any(titles in m.value for m in at.markdown), "the clicked film is not shown"
    assert at.selectbox(key="explore_movie").value == before  # no silent cross-tab change
    assert not [b for b in at.button if b.label == "Show details"]


def test_explore_table_row_click_opens_that_film(env):
    at = onboard("nina")
    at.switch_page(L.EXPLORE_PAGE)
    run_app(at)
    table = at.dataframe[0]
    assert table.proto.selection_mode, "the table takes no row clicks"
    ids = [int(i) for i in table.value.index]
    assert at.selectbox(key="explore_movie").value == ids[0]
    select(at, table.proto.id, {"rows": [2], "columns": [], "cells": []})
    assert at.selectbox(key="explore_movie").value == ids[2]
    assert any(L.title_line(*fresh_title(env, ids[2])) in m.value for m in at.markdown)
    # neighbours: each with what discriminates it (closer than x% of the catalog, per modality)
    captions = [c.value for c in at.caption if "closer than" in c.value]
    assert len(captions) >= 1 and all("of the catalog" in c for c in captions)


def fresh_title(env, movie_id: int) -> tuple[str, int | None]:
    from test_pages import fresh_service

    movie = fresh_service(env).movie(movie_id)
    return movie["title"], movie.get("year")

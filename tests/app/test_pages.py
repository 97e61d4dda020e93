"""AppTest per page on the tiny built catalog: no exceptions, the key widgets, the live loops.

Each test gets its own ratings database (``MMREC_DB``) so users and ratings never leak between
tests; the stored ratings are checked through a fresh ``Recommender`` reading the same SQLite
file, i.e. what a restarted server would see.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from mmrec.config import load_config
from mmrec.service import Recommender, Weights
from mmrec.ui import cardgrid
from mmrec.ui import loaders as L

REPO = Path(__file__).resolve().parents[2]
APP = str(REPO / "streamlit_app.py")
TIMEOUT = 180  # first run loads the models; later runs are fast


def fresh_service(env) -> Recommender:
    """A second Recommender on the same files: sees only what was committed to SQLite."""
    cfg = load_config(
        data_dir=env["cfg"].paths.data_dir, checkpoints_dir=env["cfg"].paths.checkpoints_dir
    )
    cfg.paths.db_path = str(env["db"])
    return Recommender.from_config(cfg)


def run_app(at: AppTest) -> AppTest:
    at.run(timeout=TIMEOUT)
    assert not at.exception, [e.value for e in at.exception]
    return at


def new_app() -> AppTest:
    """The real entry script, run from a temporary copy: AppTest switches to the legacy
    multipage mode when a `pages/` folder sits beside the entry (it would then rerun the page
    file alone, without the sidebar); the page files are referenced by absolute path."""
    return AppTest.from_string(Path(APP).read_text(), default_timeout=TIMEOUT)


def onboard(name: str = "alice", n_genres: int = 2) -> AppTest:
    """A fresh session on an empty database: onboarding, then the first picks."""
    at = run_app(new_app())
    assert at.session_state[L.K_USER] == L.NEW_USER
    assert at.text_input(key="onb_name").value == ""  # (a lookup raises when it is missing)
    genres = at.multiselect(key="onb_genres").options[:n_genres]
    at.text_input(key="onb_name").input(name)
    for g in genres:
        at.multiselect(key="onb_genres").select(g)
    submit = [b for b in at.button if b.label == "Show my picks"]
    assert submit, "onboarding submit button missing"
    submit[0].click()
    run_app(at)
    assert at.session_state[L.K_USER] != L.NEW_USER, [e.value for e in at.error]
    return at


def grid_ids(at: AppTest) -> list[int]:
    return [p.movie_id for p in at.session_state[L.K_GRID]["picks"]]


def rate(at: AppTest, movie_id: int, stars: int) -> AppTest:
    """A click on the ``stars``-th star (1-5) of a card, as the browser sends it."""
    cardgrid.apptest_event(at, "rate", {"id": movie_id, "stars": stars})
    assert not at.exception, [e.value for e in at.exception]
    return at


# ----------------------------------------------------------------------------- pages


def test_onboarding_shows_picks_at_once(env):
    at = onboard("alice")
    user_id = at.session_state[L.K_USER]
    ids = grid_ids(at)
    assert len(ids) == load_config().ui.picks
    cards = cardgrid.apptest_cards(at)
    assert [c["id"] for c in cards] == ids  # the grid on screen, in slot order
    # every card has its poster and trailer excerpt served (or says why not), and its text
    assert all(c["poster"] and c["poster"].startswith("/mock/media/") for c in cards), cards[0]
    assert any(c["trailer"] for c in cards), "no trailer excerpts on the grid"
    assert all(c["trailer"] or c["trailer_problem"] for c in cards)
    assert all(c["title"] and c["alt"].startswith("Poster of") for c in cards)
    users = {u["user_id"]: u["name"] for u in fresh_service(env).users()}
    assert users[user_id] == "alice"


def test_sidebar_controls_present(env):
    at = onboard("bob")
    # in the sidebar (shared by every page), at their reset values; a lookup raises when missing
    side = at.sidebar
    for key in ("w_text", "w_image", "w_audio"):
        assert side.slider(key=key).value == 1.0, key
    assert side.slider(key=L.K_EPS).value == pytest.approx(load_config().ui.default_epsilon)
    # the minimum rating shows with its toggle (drawn disabled, its grey label failed WCAG AA)
    assert L.K_MIN_AVG not in [s.key for s in side.slider]
    low, high = side.slider(key=L.K_YEARS).value
    assert low <= high
    assert side.selectbox(key=L.K_USER).value == at.session_state[L.K_USER]
    assert side.multiselect(key=L.K_INCLUDE).value == []
    assert side.multiselect(key=L.K_EXCLUDE).value == []
    assert side.toggle(key=L.K_HIGH).value is False
    assert not side.button(key="reset_view").disabled
    at.sidebar.toggle(key=L.K_HIGH).set_value(True)
    run_app(at)
    assert at.sidebar.slider(key=L.K_MIN_AVG).value == 3.5


def test_rating_commits_and_refreshes_the_grid(env):
    at = onboard("carol")
    user_id = at.session_state[L.K_USER]
    before = grid_ids(at)
    target = before[0]
    rate(at, target, 5)

    change = at.session_state[L.K_CHANGE]
    assert change["kind"] == "rating" and change["movie_id"] == target and change["rating"] == 5.0
    assert at.session_state[L.K_RATINGS_LOG] == [(target, 5.0)]
    after = grid_ids(at)
    assert target not in after and after != before
    # the confirmation floats (a toast: nothing above the grid moves), in plain words
    assert any("Saved:" in t.value and "You'll see more like it" in t.value for t in at.toast)
    assert not at.success  # no block pushed above the grid
    cards = {c["id"]: c for c in cardgrid.apptest_cards(at)}
    if after[0] not in before:  # the card that took the rated card's slot names it, once
        assert cards[after[0]]["arrived"] and cards[after[0]]["in_place_of"]
    assert sum(c["arrived"] for c in cards.values()) == len(set(after) - set(before))
    # the count under the sidebar's user picker follows (For you's grid writes it: a fragment)
    assert any(c.value == "1 rating stored" for c in at.sidebar.caption)
    stored = dict(fresh_service(env).store.ratings(user_id))
    assert stored.get(target) == 5.0


def test_rated_and_dismissed_movies_never_come_back(env):
    at = onboard("dave")
    user_id = at.session_state[L.K_USER]
    rated = []
    for stars_index in (4, 0, 2):
        mid = grid_ids(at)[0]
        rate(at, mid, stars_index + 1)
        rated.append(mid)
        assert mid not in grid_ids(at)
    hidden = grid_ids(at)[0]
    cardgrid.apptest_event(at, "dismiss", {"id": hidden, "kind": "not_interested"})
    assert not at.exception, [e.value for e in at.exception]
    assert at.session_state[L.K_CHANGE]["kind"] == "not_interested"
    ids = grid_ids(at)
    assert not set(rated + [hidden]) & set(ids)
    svc = fresh_service(env)
    assert dict(svc.store.ratings(user_id)) == {rated[0]: 5.0, rated[1]: 1.0, rated[2]: 3.0}
    assert hidden in svc.store.hidden_movies(user_id)
    # a restarted session (new AppTest, same database) sees the same user and excludes them too
    at2 = new_app()
    at2.session_state[L.K_USER] = user_id
    run_app(at2)
    assert not set(rated + [hidden]) & set(grid_ids(at2))


def test_grid_events_that_must_change_nothing(env):
    """What the browser could send but a person did not mean: a click for a card that has
    already left (the second click of a double click), stars outside 1-5, an unknown kind of
    dismissal, a click drawn for another user. None of them stores anything or changes the
    grid."""
    at = onboard("hank")
    user_id = at.session_state[L.K_USER]
    first = grid_ids(at)[0]
    rate(at, first, 4)
    shown = grid_ids(at)
    rate(at, first, 1)  # the card is gone: not rated again, not re-rated
    rate(at, shown[0], 0)
    rate(at, shown[0], 6)
    cardgrid.apptest_event(at, "rate", {"id": shown[0], "stars": "5"})
    cardgrid.apptest_event(at, "dismiss", {"id": shown[0], "kind": "delete_everything"})
    cardgrid.apptest_event(at, "rate", {"id": 10**12, "stars": 5})  # not in the catalog
    cardgrid.apptest_event(at, "rate", {"id": shown[0], "stars": True})  # JSON true, not 1
    cardgrid.apptest_event(at, "rate", {"id": True, "stars": 5})
    # a click drawn for another user (switched while the click was on its way): dropped
    cardgrid.apptest_event(at, "rate", {"id": shown[0], "stars": 5, "user": user_id + 1})
    cardgrid.apptest_event(at, "rate", {"id": shown[0], "stars": 5, "user": None})
    assert not at.exception, [e.value for e in at.exception]
    assert grid_ids(at) == shown
    svc = fresh_service(env)
    assert dict(svc.store.ratings(user_id)) == {first: 4.0}
    assert not svc.store.hidden_movies(user_id)


def test_not_seen_and_why_this_pick_from_a_card(env):
    at = onboard("iris")
    user_id = at.session_state[L.K_USER]
    hidden = grid_ids(at)[1]
    cardgrid.apptest_event(at, "dismiss", {"id": hidden, "kind": "not_seen"})
    assert not at.exception, [e.value for e in at.exception]
    assert at.session_state[L.K_CHANGE]["kind"] == "not_seen"
    assert hidden not in grid_ids(at)
    assert hidden in fresh_service(env).store.hidden_movies(user_id)
    target = grid_ids(at)[0]
    data = cardgrid.apptest_data(at)
    assert data["user"] == user_id
    assert data["why_href"] == f"/why?user={user_id}&movie="  # a new tab: same user
    cardgrid.apptest_event(at, "why", {"id": target})  # the page switch, from the callback
    assert not at.exception, [e.value for e in at.exception]
    assert at.query_params.get("movie") in ([str(target)], str(target))
    assert any(t.value == "Why this pick" for t in at.title), [t.value for t in at.title]
    assert not at.error, [e.value for e in at.error]


def test_weight_slider_what_if_then_apply_changes_the_list(env):
    at = onboard("erin")
    before = grid_ids(at)
    at.slider(key="w_audio").set_value(0.0)
    at.slider(key="w_image").set_value(0.0)
    run_app(at)
    # the grid keeps the applied weights until "Apply"; the what-if box says what would change
    assert grid_ids(at) == before
    assert not at.button(key="whatif_apply").disabled
    svc = fresh_service(env)
    user_id = at.session_state[L.K_USER]
    wi = svc.what_if(user_id, Weights(1.0, 0.0, 0.0), Weights(1.0, 1.0, 1.0), k=len(before))
    expected = [p.movie_id for p in wi["picks"]]
    at.button(key="whatif_apply").click()
    run_app(at)
    assert at.session_state[L.K_APPLIED] == (1.0, 0.0, 0.0)
    after = grid_ids(at)
    assert after != before, "text-only weights left the ranked list unchanged"
    # epsilon may swap in exploration picks; the exploitation slots follow the service's list
    picks = at.session_state[L.K_GRID]["picks"]
    assert [p.movie_id for p in picks if not p.exploration] == [
        m for m, p in zip(expected, picks) if not p.exploration
    ]


def test_reset_clears_view_keeps_ratings(env):
    at = onboard("frank")
    user_id = at.session_state[L.K_USER]
    mid = grid_ids(at)[0]
    at.slider(key="w_audio").set_value(0.0)
    rate(at, mid, 4)  # the slider's change goes with the click, as in the browser
    at.button(key="reset_view").click()
    run_app(at)
    assert at.slider(key="w_audio").value == 1.0
    assert L.K_CHANGE not in at.session_state
    assert dict(fresh_service(env).store.ratings(user_id)) == {mid: 4.0}
    assert mid not in grid_ids(at)


@pytest.mark.parametrize("page", [L.EXPLORE_PAGE, L.LEARNING_PAGE, L.RESULTS_PAGE, L.DATA_PAGE])
def test_other_pages_render(env, page):
    at = onboard("gina")
    mid = grid_ids(at)[0]
    rate(at, mid, 5)
    at.switch_page(page)
    run_app(at)
    assert not at.error, [e.value for e in at.error]
    if page.endswith("explore.py"):
        assert at.text_input(key="explore_query").value == ""
        assert at.selectbox(key="explore_movie").options
        assert len(at.get("plotly_chart")) >= 1
        at.text_input(key="explore_query").input("zzzz-no-such-movie")
        run_app(at)
        assert any("No movie matches" in i.value for i in at.info)
    elif page.endswith("learning.py"):
        # one live rating -> reward and surprise telemetry for this user
        assert at.metric[0].value == "1"
        assert len(at.get("plotly_chart")) >= 1
    elif page.endswith("results.py"):
        assert [h.value for h in at.header][:3] == [
            spec["title"] for spec in L.REPORT_SPECS.values()
        ]
        # the repository's reports were written for other folders (the demo, the real
        # catalog): named, not shown, for this session's tiny catalog
        assert not at.dataframe
        assert sum("Not generated for this data folder" in i.value for i in at.info) == 3
        assert any("Written for other data folders" in c.value for c in at.caption)
    else:
        # building and switching are admin actions, off by default
        assert not [b for b in at.button if b.key == "rebuild"]
        assert not [b for b in at.button if b.label == "Use this folder"]
        assert any("admin setting" in c.value for c in at.caption)
        assert at.metric[0].value == "40"


def test_why_page_from_a_card_link(env):
    at = onboard("hank")
    mid = grid_ids(at)[1]
    at.switch_page(L.WHY_PAGE)
    at.query_params["movie"] = str(mid)
    run_app(at)
    assert at.selectbox(key="why_select").value == mid
    assert not at.error, [e.value for e in at.error]
    reason = at.session_state[L.K_GRID]["picks"][1].reason
    assert any(L.md(reason) in i.value for i in at.info)


def test_missing_checkpoints_say_so_and_offer_the_build(env, tmp_path, monkeypatch):
    monkeypatch.setenv("MMREC_CHECKPOINTS", str(tmp_path / "no-checkpoints-here"))
    at = run_app(new_app())
    assert any("not ready" in e.value for e in at.error)
    at.switch_page(L.DATA_PAGE)
    run_app(at)
    # a visitor gets the command, not a button
    assert not [b for b in at.button if b.key == "build_now"]
    assert any("python \\-m mmrec build" in i.value for i in at.info), [i.value for i in at.info]
    monkeypatch.setenv("MMREC_DATA_ADMIN", "1")
    run_app(at)
    assert not at.button(key="build_now").disabled


def test_catalog_text_is_inert_markdown():
    hostile = "<img src=x onerror=alert(1)> **bold** [x](javascript:alert(1)) $x$ :red[y]"
    out = L.md(hostile)
    # every Markdown/HTML-significant character is backslash-escaped, nothing else changes
    assert re.search(r"(?<!\\)[<>*\[\]()$:]", out) is None, out
    assert out.replace("\\", "") == hostile
    assert L.hover("<b>x</b>") == "&lt;b&gt;x&lt;/b&gt;"


def test_report_tables_flatten_mean_and_spread():
    # the shapes mmrec.eval writes: named rows of {metric: {mean, ci95|std, per_seed}}
    policy = {
        "policies": {
            "dqn": {
                "reward": {"mean": 7.0, "ci95": 0.5, "per_seed": [6.9, 7.1]},
                "eval_seconds": 2,
            },
            "random": {"reward": {"mean": 5.0, "ci95": 0.4, "per_seed": [5.0, 5.0]}},
        }
    }
    frame = L.report_frame("policy", policy)
    assert list(frame.index) == ["dqn", "random"]
    assert frame.loc["dqn", "reward"] == 7.0 and frame.loc["random", "reward ±"] == 0.4
    assert "per_seed" not in " ".join(frame.columns)
    modality = {"rows": [{"variant": "text only", "f1_micro": {"mean": 0.5, "std": 0.1}}]}
    frame = L.report_frame("modality-demo-masked", modality)
    assert frame.loc["text only", "f1_micro ±"] == 0.1
    assert L.report_kind("rankingx") is None and L.report_frame("other", {}) is None


def test_data_page_validates_and_switches_folders(env, tmp_path, monkeypatch):
    """Admin on: only catalogs below the data roots are offered (no free text), each with its
    own derived checkpoints; a folder elsewhere forced into the session is ignored."""
    import shutil

    from mmrec.config import checkpoints_for

    roots, ckpt_root = tmp_path / "roots", tmp_path / "ckpts"
    other = roots / "other"
    shutil.copytree(env["cfg"].paths.data_dir, other, ignore=shutil.ignore_patterns(".cache"))
    (roots / "not-a-catalog").mkdir()
    shutil.copytree(env["cfg"].paths.checkpoints_dir, checkpoints_for(other, ckpt_root))
    toml = tmp_path / "admin.toml"
    toml.write_text(f'[paths]\ncheckpoints_root = "{ckpt_root.as_posix()}"\n')
    monkeypatch.setenv("MMREC_CONFIG", str(toml))
    monkeypatch.setenv("MMREC_DATA_ROOTS", str(roots))
    monkeypatch.setenv("MMREC_DATA_ADMIN", "1")
    at = onboard("ivy")
    at.switch_page(L.DATA_PAGE)
    run_app(at)
    assert not at.text_input  # no free-text folder or checkpoint field
    box = at.selectbox(key="switch_data")
    assert len(box.options) == 2 and any("other" in o for o in box.options), box.options
    box.select([o for o in box.options if "other" in o][0])
    [b for b in at.button if b.label == "Validate"][0].click()
    run_app(at)
    assert any("40 movies" in s.value for s in at.success)
    [b for b in at.button if b.label == "Use this folder"][0].click()
    run_app(at)
    assert at.session_state[L.K_DATA_DIR] == str(other.resolve())
    assert at.metric[0].value == "40"
    assert any(str(ckpt_root) in m.value.replace("\\", "") for m in at.markdown)
    # a folder outside the roots forced into the session state is not used
    at.session_state[L.K_DATA_DIR] = str(tmp_path)
    run_app(at)
    assert any(env["cfg"].paths.data_dir in m.value.replace("\\", "") for m in at.markdown)


def test_filters_and_exploration_shape_the_grid(env):
    at = onboard("jack")
    genre = at.multiselect(key=L.K_INCLUDE).options[0]
    at.multiselect(key=L.K_INCLUDE).select(genre)
    at.toggle(key=L.K_HIGH).set_value(True)
    run_app(at)  # the minimum-rating slider is enabled by the toggle
    at.slider(key=L.K_MIN_AVG).set_value(3.0)
    run_app(at)
    picks = at.session_state[L.K_GRID]["picks"]
    svc = fresh_service(env)
    assert picks, "the filters left nothing on a catalog that has matching movies"
    for p in picks:
        assert genre in p.genres
        assert svc.movie(p.movie_id)["avg_rating"] >= 3.0
    # a high exploration rate swaps in exploratory picks, each with its badge
    at.multiselect(key=L.K_INCLUDE).unselect(genre)
    at.toggle(key=L.K_HIGH).set_value(False)
    at.slider(key=L.K_EPS).set_value(0.5)
    run_app(at)
    picks = at.session_state[L.K_GRID]["picks"]
    n_explore = sum(p.exploration for p in picks)
    assert n_explore > 0
    cards = cardgrid.apptest_cards(at)
    assert [c["exploration"] for c in cards] == [p.exploration for p in picks]


def test_results_show_this_folders_report_with_its_verdict(env, tmp_path, monkeypatch):
    import json
    import shutil

    reports = tmp_path / "work" / "reports"
    reports.mkdir(parents=True)
    policy = json.loads((Path(APP).parent / "reports" / "policy.json").read_text())
    policy["data_dir"] = env["cfg"].paths.data_dir  # as if written for this session's folder
    (reports / "policy.json").write_text(json.dumps(policy))
    shutil.copy(Path(APP).parent / "reports" / "ranking.json", reports)  # another folder's
    monkeypatch.chdir(tmp_path / "work")
    at = onboard("rita")
    at.switch_page(L.RESULTS_PAGE)
    run_app(at)
    assert not at.error, [e.value for e in at.error]
    assert any(m.value.startswith("**In short.** The DQN") for m in at.markdown)
    assert len(at.dataframe) == 1  # the policy table; the ranking report is only named
    assert any("ranking (" in c.value for c in at.caption)


def test_first_build_progress_shows_instead_of_the_error(env, tmp_path, monkeypatch):
    """While `python -m mmrec setup` builds (make run serves beside it), every page shows the
    build's stage, progress and time left; a failed build says so."""
    from mmrec.progress import ProgressFile, progress_path

    ckpt = tmp_path / "checkpoints-being-built"
    monkeypatch.setenv("MMREC_CHECKPOINTS", str(ckpt))
    shown = ProgressFile(progress_path(ckpt))  # this process plays the build (alive)
    shown(0, 400, "text features")
    shown.state["stage_started"] -= 20
    shown._last_write = 0.0
    shown(100, 400, "text features")
    at = run_app(new_app())
    assert not at.error, [e.value for e in at.error]
    assert any("first run" in h.value for h in at.subheader)
    text = " ".join(str(getattr(x, "value", "")) for x in at.caption) + " ".join(
        str(getattr(x, "proto", "")) for x in at.get("progress")
    )
    assert "text features" in text and "100 of 400" in text and "left in this stage" in text
    shown.finish(False, "RuntimeError: disk full")
    at = run_app(new_app())
    assert any("first build failed" in e.value and "disk full" in e.value for e in at.error)


def test_build_from_the_data_page(env, tmp_path, monkeypatch):
    """No checkpoints -> the Data page's button builds them (tiny budgets) -> picks appear."""
    toml = Path(env["cfg"].paths.data_dir).parent / "tiny.toml"
    monkeypatch.setenv("MMREC_CONFIG", str(toml))
    monkeypatch.setenv("MMREC_DATA_ADMIN", "1")
    monkeypatch.setenv("MMREC_CHECKPOINTS", str(tmp_path / "fresh-checkpoints"))
    at = run_app(new_app())
    assert any("not ready" in e.value for e in at.error)
    at.switch_page(L.DATA_PAGE)
    run_app(at)
    at.button(key="build_now").click()
    at.run(timeout=900)
    assert not at.exception, [e.value for e in at.exception]
    assert any("built" in s.value for s in at.success), [e.value for e in at.error]
    assert (tmp_path / "fresh-checkpoints" / "policy.pt").is_file()
    assert not at.button(key="rebuild").disabled  # the page now shows the loaded catalog
    at.switch_page(L.HOME_PAGE)
    run_app(at)
    assert at.text_input(key="onb_name").value == ""  # onboarding: the models are loaded

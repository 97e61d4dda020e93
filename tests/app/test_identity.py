"""Identity per browser session (AppTest): a new session starts at the picker, ``?user=``
brings the chosen user back after a reload, switching is explicit; the grid keeps its slots.

Each AppTest is one browser session; two of them on one ratings database are two browsers.
"""

from __future__ import annotations

from test_pages import fresh_service, grid_ids, new_app, onboard, rate, run_app

from mmrec.ui import loaders as L


def test_a_new_session_never_inherits_the_last_user(env):  # noqa: F811
    alice = onboard("alice").session_state[L.K_USER]
    assert alice in {u["user_id"] for u in fresh_service(env).users()}
    # a second browser (and a reload without ?user=) starts at the picker, not as alice
    other = run_app(new_app())
    assert other.session_state[L.K_USER] == L.NEW_USER
    assert L.K_GRID not in other.session_state  # no picks of anybody rendered
    picker = other.selectbox(key="continue_as")
    assert picker.value is None and "alice" in picker.options
    assert "user" not in other.query_params


def test_onboarding_writes_the_user_into_the_address_and_a_reload_restores_it(env):  # noqa: F811
    at = onboard("bob")
    bob = at.session_state[L.K_USER]
    assert at.query_params.get("user") == [str(bob)] or at.query_params.get("user") == str(bob)
    mid = grid_ids(at)[0]
    rate(at, mid, 5)
    # a reload is a new session with the same address
    again = new_app()
    again.query_params["user"] = str(bob)
    run_app(again)
    assert again.session_state[L.K_USER] == bob
    assert mid not in grid_ids(again)  # bob's rating, bob's grid


def test_an_unknown_or_malformed_user_param_opens_the_picker(env):  # noqa: F811
    onboard("carol")
    for raw in ("999", "-1", "x; drop table users"):
        at = new_app()
        at.query_params["user"] = raw
        run_app(at)
        assert at.session_state[L.K_USER] == L.NEW_USER, raw
        assert "user" not in at.query_params, raw


def test_two_sessions_keep_their_own_users_and_ratings(env):  # noqa: F811
    a = onboard("dora")
    b = onboard("emil")
    dora, emil = a.session_state[L.K_USER], b.session_state[L.K_USER]
    assert dora != emil
    mid_a = grid_ids(a)[0]
    rate(a, mid_a, 1)
    run_app(b)  # b reruns after a's rating: still emil, without a's rating
    assert b.session_state[L.K_USER] == emil
    svc = fresh_service(env)
    assert dict(svc.store.ratings(dora)) == {mid_a: 1.0}
    assert dict(svc.store.ratings(emil)) == {}


def test_continue_as_is_an_explicit_switch(env):  # noqa: F811
    fay = onboard("fay").session_state[L.K_USER]
    at = run_app(new_app())
    at.selectbox(key="continue_as").select(fay)
    run_app(at)
    assert at.session_state[L.K_USER] == fay
    assert len(grid_ids(at)) > 0
    # the sidebar picker switches back to onboarding: the address forgets the user
    at.selectbox(key=L.K_USER).select(L.NEW_USER)
    run_app(at)
    assert at.session_state[L.K_USER] == L.NEW_USER
    assert "user" not in at.query_params


def test_a_rating_keeps_the_other_cards_in_their_slots(env):  # noqa: F811
    at = onboard("gus")
    for slot in (1, 4):
        before = grid_ids(at)
        target = before[slot]
        rate(at, target, 5)
        after = grid_ids(at)
        assert target not in after
        for i, mid in enumerate(after[: len(before)]):
            if mid in before:
                assert before.index(mid) == i, (before, after)  # nothing slid
        state = at.session_state[L.K_GRID]
        assert set(state["arrived"]) == set(after) - set(before)
        if after[slot] not in before:  # a new pick took the rated card's slot, and says so
            assert state["in_place_of"][after[slot]] == at.session_state[L.K_CHANGE]["title"]

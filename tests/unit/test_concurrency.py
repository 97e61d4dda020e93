"""Concurrent sessions (issue 8): 8 users rating at once through one shared ``Recommender``,
the way Streamlit runs sessions (threads sharing the ``st.cache_resource`` service).

Checked after the storm, against what each thread sent:
- no lost and no duplicated ratings (ratings table and event log);
- each user's persisted policy state is intact and counts exactly their own ratings, with their
  own rewards in their own order;
- no cross-talk: a user's recommendations exclude exactly the movies *they* rated, their state
  holds only their movies, and their learned adapter equals the one a sequential replay of
  their ratings alone produces on a fresh database.
"""

from __future__ import annotations

import copy
import threading

import numpy as np
import pytest

SESSIONS = 8
RATINGS_PER_SESSION = 5  # 8 x 5 = the 40 movies of the tiny catalog, disjoint


def _service(cfg, db_path):
    from mmrec.service import Recommender

    cfg = copy.deepcopy(cfg)
    cfg.paths.db_path = str(db_path)  # own database: the shared fixture stays untouched
    return Recommender.from_config(cfg)


def _plan(svc, sessions: int, per_session: int) -> dict[int, list[tuple[int, float]]]:
    """Disjoint movies per session (so any cross-talk is visible) and distinct rating patterns."""
    ids = svc.catalog.movie_ids.tolist()
    assert len(ids) >= sessions * per_session, "catalog too small for the plan"
    plan = {}
    for s in range(sessions):
        movies = ids[s * per_session : (s + 1) * per_session]
        plan[s] = [
            (int(m), float(0.5 + ((s * 3 + j * 7) % 10) * 0.5)) for j, m in enumerate(movies)
        ]
    return plan


def _run_sessions(svc, user_of_session: dict[int, int], plan, recommend_too=True):
    """One thread per session, released together; returns (results, errors)."""
    barrier = threading.Barrier(len(plan))
    results: dict[int, list] = {s: [] for s in plan}
    errors: list[BaseException] = []

    def session(s):
        try:
            uid = user_of_session[s]
            barrier.wait()
            for movie_id, rating in plan[s]:
                res = svc.rate(uid, movie_id, rating, k=8)
                results[s].append(res)
                if recommend_too:
                    svc.recommend(uid, k=8, epsilon=0.2)
        except BaseException as exc:  # surfaced in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=session, args=(s,)) for s in plan]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    assert not any(t.is_alive() for t in threads), "a session hung (deadlock?)"
    return results, errors


@pytest.fixture
def svc(tiny_built, tmp_path):
    return _service(tiny_built, tmp_path / "concurrent.sqlite3")


def test_eight_sessions_rating_at_once(svc, tiny_built, tmp_path):
    from mmrec.rl.state import rating_to_unit

    plan = _plan(svc, SESSIONS, RATINGS_PER_SESSION)
    users = {s: svc.create_user(f"session-{s}") for s in plan}
    results, errors = _run_sessions(svc, users, plan)
    assert not errors, repr(errors[0])
    store = svc.store
    assert store.integrity_ok()

    all_ids = set(svc.catalog.movie_ids.tolist())
    sent_total = 0
    for s, uid in users.items():
        sent = plan[s]
        sent_total += len(sent)
        # nothing lost, nothing duplicated, nothing from another session
        assert sorted(store.ratings(uid)) == sorted(sent), f"session {s}: ratings differ"
        events = store.events(uid, "rating", limit=10_000)
        assert [(e["movie_id"], e["payload"]["rating"]) for e in events] == sent
        # the persisted policy state is whole and counts this user's ratings only
        state = store.load_policy_state(uid)
        assert state is not None, f"session {s}: no policy state"
        assert state["n_updates"] == len(sent)
        assert len(state["rewards"]) == len(sent)
        np.testing.assert_allclose(state["rewards"], rating_to_unit([r for _, r in sent]))
        assert np.isfinite(state["predicted"]).all() and len(state["predicted"]) == len(sent)
        # the user's state holds exactly their own movies
        history = svc.user_state(uid).history
        assert sorted(history) == sorted(sent)
        # recommendations exclude exactly what this user rated: other sessions' movies stay in
        mine = {m for m, _ in sent}
        picks = svc.recommend(uid, k=len(all_ids))
        assert {p.movie_id for p in picks} == all_ids - mine, f"session {s}: cross-talk"
        # every list returned mid-storm excluded what the user had rated by then
        for j, res in enumerate(results[s]):
            rated_so_far = {m for m, _ in sent[: j + 1]}
            assert not ({p.movie_id for p in res.picks} & rated_so_far)
    assert store.count_ratings() == sent_total
    print(
        f"\nCONCURRENCY: {len(plan)} sessions x {RATINGS_PER_SESSION} ratings at once: "
        f"{sent_total} sent, {store.count_ratings()} stored, lost 0, duplicated 0"
    )

    # no cross-talk in the learned beliefs: replaying each user's ratings alone, one session
    # after another on a fresh database, gives the same predictions before every rating
    solo = _service(tiny_built, tmp_path / "sequential.sqlite3")
    for s in plan:
        uid = solo.create_user(f"session-{s}")
        for movie_id, rating in plan[s]:
            solo.rate(uid, movie_id, rating, k=8)
        want = solo.store.load_policy_state(uid)["predicted"]
        got = store.load_policy_state(users[s])["predicted"]
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5, err_msg=f"session {s}")


def test_one_user_in_four_tabs(svc):
    """Four sessions of the same user (four browser tabs): every rating counted once."""
    uid = svc.create_user("many-tabs")
    plan = _plan(svc, 4, 5)
    results, errors = _run_sessions(svc, dict.fromkeys(plan, uid), plan, recommend_too=False)
    assert not errors, repr(errors[0])
    sent = [x for s in plan for x in plan[s]]
    assert sorted(svc.store.ratings(uid)) == sorted(sent)
    assert len(svc.store.events(uid, "rating", limit=10_000)) == len(sent)
    state = svc.store.load_policy_state(uid)
    # the per-user lock serialises updates: no lost update of the policy state
    assert state["n_updates"] == len(sent)
    assert len(state["rewards"]) == len(sent)
    assert svc.store.integrity_ok()


def test_concurrent_user_creation_and_bad_requests(svc):
    """Sign-ups racing each other, and bad requests mixed in, leave the store clean."""
    from mmrec.service import ServiceError
    from mmrec.store import StoreError

    names = [f"racer-{i % 4}" for i in range(16)]  # each name requested 4 times at once
    ids: list[int] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(names))
    movie = int(svc.catalog.movie_ids[0])

    def signup(name):
        try:
            barrier.wait()
            uid = svc.create_user(name)
            ids.append(uid)
            for bad in ((uid, -1, 3.0), (uid, movie, float("nan")), (uid, movie, 9.0)):
                with pytest.raises((ServiceError, StoreError)):
                    svc.rate(*bad)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=signup, args=(n,)) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors, repr(errors[0])
    assert len(set(ids)) == 4  # one user per name, however many tabs asked
    assert {u["name"] for u in svc.users()} >= {f"racer-{i}" for i in range(4)}
    assert svc.store.count_ratings() == 0  # no bad rating slipped in
    assert svc.store.integrity_ok()

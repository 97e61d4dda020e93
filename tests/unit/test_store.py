"""The ratings store: nothing lost under concurrent writers or a killed writer process."""

import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from mmrec.store import RatingsStore, StoreError


def test_eight_threads_lose_nothing(tmp_path):
    store = RatingsStore(tmp_path / "r.sqlite3")
    users = [store.create_user(f"user{i}") for i in range(8)]
    errors = []

    def writer(uid):
        try:
            for m in range(200):
                store.add_rating(uid, m, 0.5 + (m % 10) * 0.5)
        except Exception as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(u,)) for u in users]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert store.count_ratings() == 8 * 200
    for uid in users:
        got = store.ratings(uid)
        assert len(got) == 200
        assert {m for m, _ in got} == set(range(200))
        assert len(store.events(uid, "rating", limit=10_000)) == 200
    assert store.integrity_ok()


def test_rating_validation_and_replace(tmp_path):
    store = RatingsStore(tmp_path / "r.sqlite3")
    uid = store.create_user("ann")
    with pytest.raises(StoreError):
        store.add_rating(uid, 1, float("nan"))
    with pytest.raises(StoreError):
        store.add_rating(uid, 1, -1)
    with pytest.raises(StoreError):
        store.add_rating(9999, 1, 3.0)
    store.add_rating(uid, 1, 3.0)
    store.add_rating(uid, 1, 4.5)
    assert store.ratings(uid) == [(1, 4.5)]
    assert [e["payload"]["rating"] for e in store.events(uid, "rating")] == [3.0, 4.5]
    assert store.create_user("ann") == uid


WRITER = r"""
import sys
from mmrec.store import RatingsStore
store = RatingsStore(sys.argv[1])
uid = store.create_user("victim")
i = 0
print("ready", flush=True)
while True:
    store.add_rating(uid, i, 0.5 + (i % 10) * 0.5)
    print(i, flush=True)  # acknowledged only after the commit returned
    i += 1
"""


def test_killed_writer_leaves_consistent_db(tmp_path):
    db = tmp_path / "r.sqlite3"
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(db)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().strip() == "ready"
    acked = -1
    deadline = time.time() + 30
    while acked < 150 and time.time() < deadline:
        line = proc.stdout.readline()
        if line.strip().isdigit():
            acked = int(line)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    store = RatingsStore(db)
    assert store.integrity_ok()
    uid = store.create_user("victim")
    movies = [m for m, _ in store.ratings(uid)]
    # every acknowledged rating is there, and ratings/events agree row for row
    assert set(range(acked + 1)) <= set(movies)
    assert movies == list(range(len(movies)))
    assert len(store.events(uid, "rating", limit=100_000)) == len(movies)


def test_rating_counts_come_from_sql(tmp_path):
    store = RatingsStore(tmp_path / "r.sqlite3")
    a, b, c = (store.create_user(n) for n in ("a", "b", "c"))
    for m in range(5):
        store.add_rating(a, m, 4.0)
    store.add_rating(b, 1, 2.0)
    store.add_rating(b, 1, 3.0)  # a replaced rating counts once
    assert store.rating_counts() == {a: 5, b: 1}  # c has none
    assert sum(store.rating_counts().values()) == store.count_ratings() == len(store.all_ratings())
    assert c not in store.rating_counts()


def test_service_users_never_loads_every_rating(tiny_built, tmp_path, monkeypatch):
    import dataclasses

    from mmrec.service import Recommender

    cfg = dataclasses.replace(tiny_built, paths=dataclasses.replace(tiny_built.paths))
    cfg.paths.db_path = str(tmp_path / "app.sqlite3")
    svc = Recommender(cfg)
    ann = svc.create_user("ann")
    bob = svc.create_user("bob")
    for m in svc.catalog.movie_ids[:3]:
        svc.store.add_rating(ann, int(m), 4.0)

    def load_all():  # the user picker reruns on every page: counting must stay in SQL
        raise AssertionError("users() loaded every rating")

    monkeypatch.setattr(svc.store, "all_ratings", load_all)
    got = {u["name"]: u["n_ratings"] for u in svc.users()}
    assert got == {"ann": 3, "bob": 0}
    assert {u["user_id"] for u in svc.users()} == {ann, bob}

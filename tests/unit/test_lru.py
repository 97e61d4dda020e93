"""mmrec.lru.LRU: the one least-recently-used cache (service embeddings, live policy item
representations, explanations)."""

import threading

import pytest

from mmrec.lru import LRU


def test_evicts_the_least_recently_used():
    c = LRU(2)
    c.put("a", 1)
    c.put("b", 2)
    assert c.get("a") == 1  # "a" is now the most recent: "b" goes first
    c.put("c", 3)
    assert "b" not in c and c.get("a") == 1 and c.get("c") == 3 and len(c) == 2
    c.put("a", 10)  # an update refreshes too
    c.put("d", 4)
    assert "c" not in c and c.get("a") == 10 and c.get("missing", "x") == "x"


def test_get_or_make_computes_a_miss_once():
    c, calls = LRU(4), []
    assert c.get_or_make("k", lambda: calls.append(1) or "v") == "v"
    assert c.get_or_make("k", lambda: calls.append(1) or "w") == "v"
    assert calls == [1]
    c.put("none", None)  # a stored None is a hit, not a miss
    assert c.get_or_make("none", lambda: "made") is None
    with pytest.raises(ValueError):
        LRU(0)


def test_threads_never_exceed_the_bound():
    c = LRU(8)

    def work(t):
        for i in range(2000):
            c.put((t, i % 20), i)
            c.get((t, (i + 3) % 20))

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(c) == 8

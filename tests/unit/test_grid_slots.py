"""The For you grid keeps every card that stays in its slot (mmrec.ui.grid.keep_slots)."""

from __future__ import annotations

from dataclasses import dataclass

from mmrec.ui.grid import keep_slots


@dataclass
class P:
    movie_id: int
    q: float = 0.0


def ids(picks):
    return [p.movie_id for p in picks]


def test_rated_card_leaves_and_the_best_new_pick_takes_its_slot():
    shown = [P(i) for i in (1, 2, 3, 4)]
    fresh = [P(4), P(9), P(1), P(3)]  # 2 was rated; 9 is new; the rest re-ranked
    grid, arrived = keep_slots(shown, fresh)
    assert ids(grid) == [1, 9, 3, 4]
    assert ids(arrived) == [9]


def test_kept_cards_carry_their_fresh_values():
    shown = [P(1, 0.5), P(2, 0.4)]
    fresh = [P(2, 0.9), P(1, 0.1)]
    grid, arrived = keep_slots(shown, fresh)
    assert [(p.movie_id, p.q) for p in grid] == [(1, 0.1), (2, 0.9)]
    assert arrived == []


def test_several_freed_slots_fill_in_slot_order_best_first():
    shown = [P(i) for i in (1, 2, 3, 4, 5)]
    fresh = [P(7), P(1), P(6), P(3), P(5)]  # 2 rated, 4 dropped; 7 ranks above 6
    grid, arrived = keep_slots(shown, fresh)
    assert ids(grid) == [1, 7, 3, 6, 5]
    assert ids(arrived) == [7, 6]


def test_fewer_picks_close_up_and_more_picks_append():
    shown = [P(1), P(2), P(3)]
    grid, arrived = keep_slots(shown, [P(3), P(1)])  # the catalog ran out under a filter
    assert ids(grid) == [1, 3] and arrived == []
    grid, arrived = keep_slots(shown, [P(3), P(1), P(8), P(9)])
    assert ids(grid) == [1, 8, 3, 9] and ids(arrived) == [8, 9]


def test_every_fresh_card_appears_exactly_once_in_random_merges():
    import random

    rng = random.Random(0)
    for _ in range(500):
        shown = [P(i) for i in rng.sample(range(40), 12)]
        fresh = [P(i) for i in rng.sample(range(40), rng.randint(0, 14))]
        grid, arrived = keep_slots(shown, fresh)
        assert sorted(ids(grid)) == sorted(ids(fresh))
        before = {p.movie_id: slot for slot, p in enumerate(shown)}
        if len(fresh) >= len(shown):  # no slot closes up: every kept card stays where it was
            for slot, p in enumerate(grid):
                if p.movie_id in before:
                    assert before[p.movie_id] == slot
        assert set(ids(arrived)) == set(ids(fresh)) - set(before)

"""The For you grid after a rating or a dismissal: cards keep their slots.

The service returns the refreshed top-k in rank order. Showing it as is moves every card whose
rank changed, so the card under the cursor becomes another film (a double click rated a
different film). Instead the grid keeps each card that is still picked in the slot it had; the
rated or dismissed card leaves, and new picks take the freed slots, best first. A new card is
marked for one render (the card shows a "new" badge and keeps its stars inert for a moment, see
``mmrec.ui.cardgrid``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

T = TypeVar("T")


def keep_slots(
    shown: Sequence[T], fresh: Sequence[T], key=lambda p: p.movie_id
) -> tuple[list[T], list[T]]:
    """Merge the refreshed list into the shown one, slot by slot.

    ``shown``: the cards on screen, in slot order. ``fresh``: the service's new list, best
    first. Returns ``(grid, arrived)``: ``grid`` has every card of ``fresh`` exactly once; a
    card that was shown keeps its slot (with its fresh values: score, reason); the slots of
    cards that left are filled by the new cards in ``fresh`` order; extra new cards go to the
    end; when fewer cards come back than were shown, the empty slots close up at the end.
    ``arrived`` lists the new cards in the order they were placed.
    """
    fresh_by_key = {key(p): p for p in fresh}
    shown_keys = {key(p) for p in shown}
    incoming = [p for p in fresh if key(p) not in shown_keys]
    arrived: list[T] = []
    grid: list[T] = []
    queue = list(incoming)
    for p in shown:
        kept = fresh_by_key.get(key(p))
        if kept is not None:
            grid.append(kept)
        elif queue:
            grid.append(queue.pop(0))
            arrived.append(grid[-1])
    grid.extend(queue)
    arrived.extend(queue)
    return grid, arrived


# Every page, every rerun (issue 19 "Load"). Streamlit fades each element still on screen to a
# third of its opacity with a CSS transition (1 s after 0.5 s) while a script runs: the browser
# then repaints the whole page every frame for up to 1.5 s after every click, on software
# rendering ~0.5-1 s of CPU per rating and per tab, growing with the server's latency (measured
# with a server delayed by 3 s: renderer + GPU process 0.95 s in the first 2 s, 0.2 s without
# transitions). A rerun here takes well under a second, so the dimming mostly flickered. Without
# transitions the page holds still; the cursor says the app is busy. Keyframe animations (the
# grid's arrival guard, toasts) are untouched. The For you cards style themselves
# (``mmrec.ui.cardgrid``); the rest: 44 px targets for links and popovers on touch screens.
CALM_CSS = """
<style>
*, *::before, *::after { transition: none !important; }
[data-stale="true"] { opacity: 1 !important; }
[data-test-script-state="running"] .stMain { cursor: progress; }
/* WCAG AA 4.5:1 (issue 15): a slider's value (and the open tab's name) is drawn in the theme's primary red, 3.4:1 on the
   dark sidebar; this lighter red is 5.9:1 there (the primary stays for buttons: white on it). */
[data-testid="stSliderThumbValue"], [data-testid="stSliderThumbValue"] p,
[role="tab"][aria-selected="true"] p { color: #ff6b72; }
@media (pointer: coarse), (max-width: 640px) {
  [data-testid="stPageLink"] a, [data-testid="stPopover"] button { min-height: 44px; }
}
</style>
"""

"""A page with nothing but the For you grid component (``mmrec.ui.cardgrid``), fed hand-made
cards, for ``test_cardgrid.py``: hostile catalog text, an arrival, every kind of event."""

import time

import streamlit as st

from mmrec.ui import cardgrid

XSS = "<img src=x onerror=alert(1)>"


def card(mid: int, title: str, arrived: bool = False) -> dict:
    return {
        "id": mid,
        "title": title,
        "year": 1999,
        "alt": f"Poster of {title}",
        "exploration": mid == 2,
        "arrived": arrived,
        "share": [0.5, 0.3, 0.2],
        "in_place_of": "<b>Gone</b>" if arrived else None,
        "genres": f"Drama · {XSS}",
        "overview": f"A story {XSS} with <script>alert(2)</script> in it.",
        "reason": f"similar to {XSS}, which you rated 5★",
        "rank": mid,
        "score": "1.000",
        "q": "0.500",
        "poster": None,
        "poster_problem": "no poster",
        "trailer": None,
        "trailer_problem": "no trailer",
    }


ss = st.session_state
ss.setdefault("cards", [card(1, f"{XSS} Night"), card(2, "Second"), card(3, "Third")])
ss.setdefault("events", [])
ss.setdefault("version", 0)


def on_event(name: str, value: dict) -> None:
    ss.events.append(f"{name} {value.get('id')} {value.get('stars', value.get('kind', ''))}")
    if name == "rate" and value.get("stars") == 1:
        return  # refused (as the app refuses a rating the service rejects): nothing changes
    if name == "rate":
        # the rated card leaves, a new one takes its slot, marked as arrived; slowly, so a
        # second click can come while this one is handled
        time.sleep(0.5)
        ss.version += 1
        ss.cards = [
            (
                card(10 + ss.version, f"New {ss.version}", arrived=True)
                if c["id"] == value["id"]
                else {**c, "arrived": False, "in_place_of": None}
            )
            for c in ss.cards
        ]


cardgrid.render(ss.cards, 215, ss.version % 2, on_event, user_id=7)
st.markdown("events: " + " | ".join(ss.events) if ss.events else "events: none")

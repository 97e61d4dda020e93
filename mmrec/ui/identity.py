"""Who this browser tab is: the session's user, the ``?user=`` address that survives a reload.

Streamlit keeps ``st.session_state`` per browser tab (one websocket session) and a reload starts
a new, empty session. So:

- the session's user lives in ``st.session_state[K_USER]`` (the sidebar picker's key);
  ``NEW_USER`` means nobody yet: the For you page shows the user picker and onboarding;
- a new session reads ``?user=<id>`` from the address once, on its first run, and takes that
  user only if it exists; without it the session starts at the picker and never as another
  user (before, every new session opened as the most recently created user);
- every run writes the session's user back into the address, so a reload, a bookmark or a
  second tab opened from the link continue as the same user;
- the user changes only through an explicit action: the sidebar picker, "Continue as" on the
  For you page, or onboarding.

There is no authentication: anyone who can reach the dashboard can pick any user in the
sidebar (the server binds to localhost by default). The address only remembers a choice.
"""

from __future__ import annotations

from collections.abc import Iterable

import streamlit as st

K_USER = "user_select"  # the session's user id (NEW_USER: nobody yet)
K_STARTED = "identity_started"  # set on a session's first run: the address was read
QUERY_KEY = "user"  # ?user=<id>
NEW_USER = -1  # picker value that opens onboarding


def parse_user(raw) -> int | None:
    """``"12"`` -> 12; anything that is not a positive integer -> None."""
    try:
        value = int(str(raw).strip())
    except (TypeError, ValueError):
        return None
    return value if value > 0 else None


def restore(known_ids: Iterable[int]) -> None:
    """On a session's first run, take the user named by ``?user=`` if it exists.

    A user already in ``session_state`` (set by a callback or a test) is kept; an unknown or
    malformed ``?user=`` is ignored (the next :func:`sync_address` removes it)."""
    ss = st.session_state
    if ss.get(K_STARTED):
        return
    ss[K_STARTED] = True
    if ss.get(K_USER) not in (None, NEW_USER):
        return
    wanted = parse_user(st.query_params.get(QUERY_KEY))
    ss[K_USER] = wanted if wanted in set(known_ids) else NEW_USER


def session_user() -> int | None:
    """The session's user id, or None (nobody chosen yet)."""
    user = st.session_state.get(K_USER)
    if isinstance(user, bool) or not isinstance(user, int) or user == NEW_USER:
        return None
    return user


def sync_address(user_id: int | None) -> None:
    """Write the session's user into the address (``?user=``), or remove it when nobody."""
    current = st.query_params.get(QUERY_KEY)
    if user_id is None:
        if current is not None:
            del st.query_params[QUERY_KEY]
    elif current != str(user_id):
        st.query_params[QUERY_KEY] = str(user_id)

"""The live ratings store: SQLite in WAL mode.

Tables: ``users`` (the dashboard's users), ``ratings`` (one row per user and movie; a new
rating replaces the old one and the old value is kept in ``events``), ``events`` (an
append-only log: ratings, skips, "not interested", onboarding choices, policy telemetry), and
``policy_state`` (per-user learned state as JSON).

Durability: every write runs in its own transaction and is committed before the call returns,
so nothing acknowledges a rating that is not on disk. WAL mode with ``synchronous=FULL``
survives a process killed mid-write (SQLite's journal makes the transaction all-or-nothing).
Each thread gets its own connection (Streamlit runs sessions in threads); writers serialise
on SQLite's lock with a generous busy timeout.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    user_id     INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT NOT NULL UNIQUE,
    created_at  REAL NOT NULL,
    profile     TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS ratings (
    user_id     INTEGER NOT NULL REFERENCES users(user_id),
    movie_id    INTEGER NOT NULL,
    rating      REAL NOT NULL CHECK (rating >= 0.5 AND rating <= 5.0),
    timestamp   REAL NOT NULL,
    source      TEXT NOT NULL DEFAULT 'app',
    PRIMARY KEY (user_id, movie_id)
);
CREATE TABLE IF NOT EXISTS events (
    event_id    INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id     INTEGER,
    kind        TEXT NOT NULL,
    movie_id    INTEGER,
    payload     TEXT NOT NULL DEFAULT '{}',
    timestamp   REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS events_user ON events(user_id, event_id);
CREATE TABLE IF NOT EXISTS policy_state (
    user_id     INTEGER PRIMARY KEY REFERENCES users(user_id),
    state       TEXT NOT NULL,
    updated_at  REAL NOT NULL
);
"""


class StoreError(Exception):
    pass


class RatingsStore:
    """Thread-safe access to the SQLite store; one connection per thread."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        # executescript manages its own transaction (it commits first), so no _tx() here
        self._con().executescript(SCHEMA)

    # --------------------------------------------------------------------- plumbing
    def _con(self) -> sqlite3.Connection:
        con = getattr(self._local, "con", None)
        if con is None:
            con = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
            con.execute("PRAGMA journal_mode=WAL")
            con.execute("PRAGMA synchronous=FULL")  # committed means on disk
            con.execute("PRAGMA foreign_keys=ON")
            con.execute("PRAGMA busy_timeout=30000")
            self._local.con = con
        return con

    class _Tx:
        def __init__(self, con):
            self.con = con

        def __enter__(self):
            self.con.execute(
                "BEGIN IMMEDIATE"
            )  # take the write lock up front: no upgrade deadlocks
            return self.con

        def __exit__(self, exc_type, exc, tb):
            if exc_type is None:
                self.con.execute("COMMIT")
            else:
                self.con.execute("ROLLBACK")
            return False

    def _tx(self):
        return self._Tx(self._con())

    def close(self) -> None:
        con = getattr(self._local, "con", None)
        if con is not None:
            con.close()
            self._local.con = None

    # --------------------------------------------------------------------- users
    def create_user(self, name: str, profile: dict | None = None) -> int:
        name = name.strip()
        if not name:
            raise StoreError("a user needs a non-empty name")
        with self._tx() as con:
            row = con.execute("SELECT user_id FROM users WHERE name = ?", (name,)).fetchone()
            if row:
                return int(row[0])
            cur = con.execute(
                "INSERT INTO users(name, created_at, profile) VALUES (?, ?, ?)",
                (name, time.time(), json.dumps(profile or {})),
            )
            return int(cur.lastrowid)

    def users(self) -> list[dict]:
        rows = self._con().execute(
            "SELECT user_id, name, created_at, profile FROM users ORDER BY user_id"
        )
        return [
            {"user_id": r[0], "name": r[1], "created_at": r[2], "profile": json.loads(r[3])}
            for r in rows
        ]

    def user(self, user_id: int) -> dict:
        r = (
            self._con()
            .execute(
                "SELECT user_id, name, created_at, profile FROM users WHERE user_id = ?", (user_id,)
            )
            .fetchone()
        )
        if r is None:
            raise StoreError(f"unknown user id {user_id}")
        return {"user_id": r[0], "name": r[1], "created_at": r[2], "profile": json.loads(r[3])}

    def set_profile(self, user_id: int, profile: dict) -> None:
        with self._tx() as con:
            cur = con.execute(
                "UPDATE users SET profile = ? WHERE user_id = ?", (json.dumps(profile), user_id)
            )
            if cur.rowcount == 0:
                raise StoreError(f"unknown user id {user_id}")
            con.execute(
                "INSERT INTO events(user_id, kind, payload, timestamp) VALUES (?, 'profile', ?, ?)",
                (user_id, json.dumps(profile), time.time()),
            )

    # --------------------------------------------------------------------- ratings
    def add_rating(self, user_id: int, movie_id: int, rating: float, source: str = "app") -> None:
        """Commit a rating (replacing an earlier one, which stays in the event log)."""
        rating = float(rating)
        if not (0.5 <= rating <= 5.0):  # also rejects NaN
            raise StoreError(f"rating {rating!r} outside 0.5-5.0")
        now = time.time()
        with self._tx() as con:
            if con.execute("SELECT 1 FROM users WHERE user_id = ?", (user_id,)).fetchone() is None:
                raise StoreError(f"unknown user id {user_id}")
            con.execute(
                "INSERT INTO ratings(user_id, movie_id, rating, timestamp, source) VALUES (?,?,?,?,?)"
                " ON CONFLICT(user_id, movie_id) DO UPDATE SET rating=excluded.rating,"
                " timestamp=excluded.timestamp, source=excluded.source",
                (user_id, int(movie_id), rating, now, source),
            )
            con.execute(
                "INSERT INTO events(user_id, kind, movie_id, payload, timestamp) VALUES (?, 'rating', ?, ?, ?)",
                (user_id, int(movie_id), json.dumps({"rating": rating, "source": source}), now),
            )

    def ratings(self, user_id: int) -> list[tuple[int, float]]:
        """This user's ratings, oldest first, as (movie_id, rating)."""
        rows = self._con().execute(
            "SELECT movie_id, rating FROM ratings WHERE user_id = ? ORDER BY timestamp, rowid",
            (user_id,),
        )
        return [(int(m), float(r)) for m, r in rows]

    def all_ratings(self) -> list[tuple[int, int, float, float]]:
        rows = self._con().execute(
            "SELECT user_id, movie_id, rating, timestamp FROM ratings ORDER BY user_id, timestamp"
        )
        return [(int(u), int(m), float(r), float(t)) for u, m, r, t in rows]

    def rating_counts(self) -> dict[int, int]:
        """user id -> number of stored ratings, counted by SQLite (users without one absent);
        the user picker calls this on every rerun, so it never loads the ratings themselves."""
        rows = self._con().execute("SELECT user_id, COUNT(*) FROM ratings GROUP BY user_id")
        return {int(u): int(n) for u, n in rows}

    def count_ratings(self) -> int:
        return int(self._con().execute("SELECT COUNT(*) FROM ratings").fetchone()[0])

    # --------------------------------------------------------------------- events
    def log_event(self, user_id: int | None, kind: str, movie_id: int | None = None, payload=None):
        with self._tx() as con:
            con.execute(
                "INSERT INTO events(user_id, kind, movie_id, payload, timestamp) VALUES (?,?,?,?,?)",
                (user_id, kind, movie_id, json.dumps(payload or {}), time.time()),
            )

    def events(self, user_id: int, kind: str | None = None, limit: int = 1000) -> list[dict]:
        q = "SELECT event_id, kind, movie_id, payload, timestamp FROM events WHERE user_id = ?"
        args: list = [user_id]
        if kind:
            q += " AND kind = ?"
            args.append(kind)
        q += " ORDER BY event_id DESC LIMIT ?"
        args.append(limit)
        rows = self._con().execute(q, args).fetchall()
        return [
            {"event_id": e, "kind": k, "movie_id": m, "payload": json.loads(p), "timestamp": t}
            for e, k, m, p, t in reversed(rows)
        ]

    def hidden_movies(self, user_id: int) -> set[int]:
        """Movies the user dismissed ("not interested" / "haven't seen it"): never shown again."""
        rows = self._con().execute(
            "SELECT DISTINCT movie_id FROM events WHERE user_id = ? AND kind IN ('not_interested', 'not_seen')",
            (user_id,),
        )
        return {int(r[0]) for r in rows if r[0] is not None}

    # --------------------------------------------------------------------- policy state
    def save_policy_state(self, user_id: int, state: dict) -> None:
        with self._tx() as con:
            con.execute(
                "INSERT INTO policy_state(user_id, state, updated_at) VALUES (?,?,?)"
                " ON CONFLICT(user_id) DO UPDATE SET state=excluded.state, updated_at=excluded.updated_at",
                (user_id, json.dumps(state), time.time()),
            )

    def load_policy_state(self, user_id: int) -> dict | None:
        r = (
            self._con()
            .execute("SELECT state FROM policy_state WHERE user_id = ?", (user_id,))
            .fetchone()
        )
        return json.loads(r[0]) if r else None

    def integrity_ok(self) -> bool:
        return self._con().execute("PRAGMA integrity_check").fetchone()[0] == "ok"

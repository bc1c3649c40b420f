"""History: transitions, events (promotions and action results among them), maintenance
windows, silences added at run time and alerts, in SQLite (default, one file) or PostgreSQL (a ``postgresql://`` URL).

One set of SQL statements serves both: written with ``?`` placeholders, which become ``%s``
for psycopg; only the id column's type differs in the schema.

Writes are batched. The append-only records (transitions, events, alerts) are kept in memory
and written with one ``executemany`` per table when ``commit()`` runs (the service calls it
four times a second and on stop), when ``BUFFER_ROWS`` of them are waiting, or before any other
statement, so a read sees every record added before it. Other writes run at once; everything
becomes durable at the next commit. A crash therefore loses at most the records of the last
commit interval; a clean stop loses nothing (``close()`` writes and commits). Buffered records
that the database refuses when they are written are counted in ``dropped`` and logged, not
raised: the caller that added them has long moved on.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .state import StateKey, Transition

_SCHEMA = """
CREATE TABLE IF NOT EXISTS transitions (
    id {id}, ts DOUBLE PRECISION NOT NULL, site TEXT NOT NULL, host TEXT NOT NULL,
    scope TEXT NOT NULL, item TEXT NOT NULL, from_state TEXT, to_state TEXT,
    reason TEXT NOT NULL, cause TEXT NOT NULL, kind TEXT NOT NULL, margin INTEGER
);
CREATE INDEX IF NOT EXISTS transitions_item ON transitions (site, host, scope, item, ts);
CREATE INDEX IF NOT EXISTS transitions_ts ON transitions (ts);
CREATE TABLE IF NOT EXISTS events (
    id {id}, ts DOUBLE PRECISION NOT NULL, received DOUBLE PRECISION NOT NULL,
    site TEXT NOT NULL, host TEXT NOT NULL, seq BIGINT NOT NULL, type TEXT NOT NULL,
    scope TEXT NOT NULL, item TEXT NOT NULL, from_state TEXT, to_state TEXT,
    text TEXT NOT NULL, payload TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_host ON events (site, host, ts);
CREATE INDEX IF NOT EXISTS events_ts ON events (ts);
CREATE TABLE IF NOT EXISTS maintenance (
    id {id}, site TEXT NOT NULL, host TEXT NOT NULL, grp TEXT NOT NULL,
    start_ts DOUBLE PRECISION NOT NULL, end_ts DOUBLE PRECISION NOT NULL,
    reason TEXT NOT NULL, source TEXT NOT NULL, created DOUBLE PRECISION NOT NULL
);
CREATE TABLE IF NOT EXISTS silences (
    id TEXT PRIMARY KEY, matchers TEXT NOT NULL, start_ts DOUBLE PRECISION NOT NULL,
    end_ts DOUBLE PRECISION NOT NULL, created_by TEXT NOT NULL, comment TEXT NOT NULL,
    created DOUBLE PRECISION NOT NULL
);
CREATE TABLE IF NOT EXISTS alerts (
    id {id}, ts DOUBLE PRECISION NOT NULL, site TEXT NOT NULL, host TEXT NOT NULL,
    item TEXT NOT NULL, status TEXT NOT NULL, receiver TEXT NOT NULL, detail TEXT NOT NULL
);
"""
# the append-only tables' INSERTs, without their VALUES: the buffer adds as many rows as it has
_INSERT_TRANSITION = (
    "INSERT INTO transitions (ts, site, host, scope, item, from_state, to_state,"
    " reason, cause, kind, margin) VALUES ",
    11,
)
_INSERT_EVENT = (
    "INSERT INTO events (ts, received, site, host, seq, type, scope, item, from_state,"
    " to_state, text, payload) VALUES ",
    12,
)
_INSERT_ALERT = ("INSERT INTO alerts (ts, site, host, item, status, receiver, detail) VALUES ", 7)
log = logging.getLogger("hotspare.central.history")
MAX_PENDING = 100_000  # uncommitted writes kept for a replay; commits come every 0.25 s
BUFFER_ROWS = 5000  # buffered records written (not yet committed) once this many wait
ROWS_PER_INSERT = 1000  # rows per multi-row INSERT (SQLite and PostgreSQL take 12 000 values)

_ID = {"sqlite": "INTEGER PRIMARY KEY AUTOINCREMENT", "postgresql": "BIGSERIAL PRIMARY KEY"}


@dataclass(frozen=True, slots=True)
class Maintenance:
    id: int
    site: str  # "" matches every site
    host: str  # "" matches every host
    group: str  # "" matches every group (and the host itself)
    start: float
    end: float
    reason: str
    source: str  # "config" or "api"

    def covers(self, site: str, host: str, group: str = "") -> bool:
        """Whether the window applies to this host (``group`` "") or this group of it."""
        return (
            self.site in ("", site)
            and self.host in ("", host)
            and (self.group == "" or self.group == group)
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "site": self.site,
            "host": self.host,
            "group": self.group,
            "start": self.start,
            "end": self.end,
            "reason": self.reason,
            "source": self.source,
        }


@dataclass(frozen=True, slots=True)
class StoredSilence:
    """A silence added at run time (through the API), as the history keeps it."""

    id: str
    matchers: dict[str, list[str]]  # label -> globs
    start: float
    end: float
    created_by: str
    comment: str


def describe_url(url: str) -> str:
    """The database as a log line may show it: no password, ever."""
    parts = urlsplit(url)
    if parts.scheme.startswith("postgres"):
        return f"postgresql://{parts.hostname or 'localhost'}:{parts.port or 5432}{parts.path}"
    return sqlite_path(url)


def sqlite_path(url: str) -> str:
    """``sqlite:////abs/path`` -> ``/abs/path``, ``sqlite:///rel.db`` -> ``rel.db``; a plain path
    stays as it is."""
    return url[len("sqlite:///") :] if url.startswith("sqlite:///") else url


class History:
    """``History.open(url)``: a path or ``sqlite:///path`` for SQLite, ``postgresql://...``."""

    def __init__(self, connect: Callable[[], Any], dialect: str, name: str = "") -> None:
        self._connect = connect
        self.conn = connect()
        self.dialect = dialect
        self.name = name  # for log lines: never a password
        self._dirty = False
        # writes since the last commit, replayed on a new connection if the old one broke
        self._pending: list[tuple[str, Sequence[Any], bool]] = []
        # append-only records not written yet: INSERT statement -> rows, in arrival order
        self._buffer: dict[tuple[str, int], list[tuple[Any, ...]]] = {}
        self._buffered = 0
        self.dropped = 0  # buffered records the database refused when they were written
        for stmt in _SCHEMA.format(id=_ID[dialect]).split(";"):
            if stmt.strip():
                self._exec(stmt)
        self.conn.commit()

    @classmethod
    def open(cls, url: str, password: str = "") -> History:
        if urlsplit(url).scheme in ("postgresql", "postgres"):
            import psycopg

            kwargs = {"password": password} if password else {}
            return cls(lambda: psycopg.connect(url, **kwargs), "postgresql", describe_url(url))
        path = sqlite_path(url)
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)

        def connect() -> sqlite3.Connection:
            conn = sqlite3.connect(path, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            return conn

        return cls(connect, "sqlite", path)

    # --- plumbing ------------------------------------------------------------------------
    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s") if self.dialect == "postgresql" else sql

    def _run(self, sql: str, params: Sequence[Any], many: bool) -> Any:
        cur = self.conn.cursor()
        if many:
            cur.executemany(self._sql(sql), params)
        else:
            cur.execute(self._sql(sql), tuple(params))
        return cur

    def _lost(self) -> bool:
        """Whether the connection itself is gone (a PostgreSQL server restart, a network cut)."""
        return self.dialect == "postgresql" and (self.conn.closed or self.conn.broken)

    def _reconnect(self) -> None:
        """A new connection, with the writes since the last commit done again on it."""
        with contextlib.suppress(Exception):
            self.conn.close()
        self.conn = self._connect()
        for sql, params, many in self._pending:
            self._run(sql, params, many)
        log.warning(
            "history %s: connection lost; reconnected, %d uncommitted write(s) redone",
            self.name,
            len(self._pending),
        )

    def _exec(
        self, sql: str, params: Sequence[Any] = (), write: bool = False, many: bool = False
    ) -> Any:
        """Run one statement now, after the buffered records (so it sees them)."""
        if self._buffered:
            self._write_buffer()
        return self._execute(sql, params, write, many)

    def _execute(self, sql: str, params: Sequence[Any], write: bool, many: bool) -> Any:
        try:
            cur = self._run(sql, params, many)
        except Exception:
            if not self._lost():
                # PostgreSQL refuses every later statement until a rollback, which also
                # undoes the good writes before this one: do those again
                self.conn.rollback()
                for p_sql, p_params, p_many in self._pending:
                    self._run(p_sql, p_params, p_many)
                raise
            self._reconnect()  # raises when the database is still unreachable
            cur = self._run(sql, params, many)
        if write:
            if len(self._pending) < MAX_PENDING:
                self._pending.append((sql, params, many))
            self._dirty = True
        return cur

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        return list(self._exec(sql, params).fetchall())

    def _add(self, insert: tuple[str, int], row: tuple[Any, ...]) -> None:
        """Buffer one record of an append-only table (written at the latest by ``commit``)."""
        rows = self._buffer.get(insert)
        if rows is None:
            rows = self._buffer[insert] = []
        rows.append(row)
        self._buffered += 1
        if self._buffered >= BUFFER_ROWS:
            self._write_buffer()

    def _write_buffer(self) -> None:
        """Write the buffered records as multi-row INSERTs (``ROWS_PER_INSERT`` rows per
        statement: one database round trip, and one release of Python's GIL, for each,
        where ``executemany`` takes one per row). What the database refuses is counted in
        ``dropped`` and logged, never raised: the callers that added it are gone."""
        buffer, self._buffer, self._buffered = self._buffer, {}, 0
        for (head, width), rows in buffer.items():
            one = "(" + ", ".join("?" * width) + ")"
            for i in range(0, len(rows), ROWS_PER_INSERT):
                chunk = rows[i : i + ROWS_PER_INSERT]
                sql = head + ", ".join([one] * len(chunk))
                try:
                    self._execute(sql, [v for row in chunk for v in row], True, False)
                except Exception as e:
                    self.dropped += len(chunk)
                    log.error(
                        "history %s: %d record(s) could not be written (%d so far): %s: %s",
                        self.name,
                        len(chunk),
                        self.dropped,
                        type(e).__name__,
                        e,
                    )

    def commit(self) -> None:
        if self._buffered:
            self._write_buffer()
        if not self._dirty:
            return
        try:
            self.conn.commit()
        except Exception:
            if not self._lost():
                raise
            self._reconnect()
            self.conn.commit()
        self._pending.clear()
        self._dirty = False

    def close(self) -> None:
        self.commit()
        self.conn.close()

    # --- writes --------------------------------------------------------------------------
    def add_transitions(self, records: Iterable[Transition]) -> None:
        for t in records:
            self._add(
                _INSERT_TRANSITION,
                (
                    t.ts,
                    t.site,
                    t.host,
                    t.scope,
                    t.id,
                    t.from_state,
                    t.to_state,
                    t.reason,
                    t.cause,
                    t.kind,
                    t.margin,
                ),
            )

    def add_event(self, doc: dict[str, Any], received: float) -> None:
        """Store an agent event as received (every type: transitions, agent events, and the
        promotions and action results the contract adds)."""
        transition = doc["type"] == "transition"
        self._add(
            _INSERT_EVENT,
            (
                doc["ts"],
                received,
                doc["site"],
                doc["host"],
                doc["seq"],
                doc["type"],
                doc.get("scope", ""),
                doc.get("id", ""),
                doc.get("from") if transition else None,
                doc.get("to") if transition else None,
                doc.get("reason", "") if transition else doc.get("message", ""),
                json.dumps(doc, separators=(",", ":")),
            ),
        )

    def add_alert(
        self, ts: float, site: str, host: str, item: str, status: str, receiver: str, detail: str
    ) -> None:
        """An alert notification sent (or given up on): for the alert routing to record."""
        self._add(_INSERT_ALERT, (ts, site, host, item, status, receiver, detail))

    def add_maintenance(
        self,
        site: str,
        host: str,
        group: str,
        start: float,
        end: float,
        reason: str,
        source: str,
        now: float,
    ) -> Maintenance:
        row = self._exec(
            "INSERT INTO maintenance (site, host, grp, start_ts, end_ts, reason, source, created)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            (site, host, group, start, end, reason, source, now),
            write=True,
        ).fetchone()
        self.commit()
        return Maintenance(row[0], site, host, group, start, end, reason, source)

    def delete_maintenance(self, mid: int) -> bool:
        n = self._exec("DELETE FROM maintenance WHERE id = ?", (mid,), write=True).rowcount
        self.commit()
        return n > 0

    def add_silence(
        self,
        sid: str,
        matchers: dict[str, Sequence[str]],
        start: float,
        end: float,
        created_by: str,
        comment: str,
        now: float,
    ) -> None:
        """Keep a silence added at run time, so that a restart finds it (committed now)."""
        text = json.dumps({k: list(v) for k, v in sorted(matchers.items())}, separators=(",", ":"))
        self._exec(
            "INSERT INTO silences (id, matchers, start_ts, end_ts, created_by, comment, created)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (sid, text, start, end, created_by, comment, now),
            write=True,
        )
        self.commit()

    def end_silence(self, sid: str, end: float) -> bool:
        """A silence expired early: its new end (committed now). False if it is not kept."""
        n = self._exec(
            "UPDATE silences SET end_ts = ? WHERE id = ?", (end, sid), write=True
        ).rowcount
        self.commit()
        return n > 0

    def silences(self, end_after: float | None = None) -> list[StoredSilence]:
        """The kept silences (those ending after ``end_after``), by start."""
        where, params = [], []
        if end_after is not None:
            where.append("end_ts > ?")
            params.append(end_after)
        rows = self._rows(
            "SELECT id, matchers, start_ts, end_ts, created_by, comment FROM silences"
            f" {_where(where)} ORDER BY start_ts, id",
            params,
        )
        return [StoredSilence(r[0], json.loads(r[1]), r[2], r[3], r[4], r[5]) for r in rows]

    def replace_config_maintenance(
        self, windows: Iterable[tuple[str, str, str, float, float, str]], now: float
    ) -> None:
        """The windows declared in the config file replace those of the previous start."""
        self._exec("DELETE FROM maintenance WHERE source = 'config'", write=True)
        for site, host, group, start, end, reason in windows:
            self._exec(
                "INSERT INTO maintenance (site, host, grp, start_ts, end_ts, reason, source,"
                " created) VALUES (?, ?, ?, ?, ?, ?, 'config', ?)",
                (site, host, group, start, end, reason, now),
                write=True,
            )
        self.commit()

    def prune(self, cutoff: float) -> dict[str, int]:
        """Forget what happened before ``cutoff``: events, alerts, ended maintenance windows
        and silences; transitions too, except the newest of each host and group (it holds the
        state that still holds, for availability and for the restart's comparison)."""
        counts = {
            "events": self._exec("DELETE FROM events WHERE ts < ?", (cutoff,), True).rowcount,
            "alerts": self._exec("DELETE FROM alerts WHERE ts < ?", (cutoff,), True).rowcount,
            "maintenance": self._exec(
                "DELETE FROM maintenance WHERE end_ts < ? AND source = 'api'", (cutoff,), True
            ).rowcount,
            "silences": self._exec(
                "DELETE FROM silences WHERE end_ts < ?", (cutoff,), True
            ).rowcount,
            "transitions": self._exec(
                "DELETE FROM transitions WHERE ts < ? AND id NOT IN"
                " (SELECT MAX(id) FROM transitions GROUP BY site, host, scope, item)",
                (cutoff,),
                True,
            ).rowcount,
        }
        self.commit()
        return counts

    # --- reads ---------------------------------------------------------------------------
    def last_states(self) -> dict[StateKey, str | None]:
        """What was last recorded for every (site, host, scope, id)."""
        rows = self._rows(
            "SELECT t.site, t.host, t.scope, t.item, t.to_state FROM transitions t JOIN"
            " (SELECT site, host, scope, item, MAX(id) AS id FROM transitions"
            "  GROUP BY site, host, scope, item) last ON t.id = last.id"
        )
        return {(r[0], r[1], r[2], r[3]): r[4] for r in rows}

    def last_transitions(self) -> list[Transition]:
        """The newest recorded transition of every host and group: the states that hold."""
        rows = self._rows(
            "SELECT t.ts, t.site, t.host, t.scope, t.item, t.from_state, t.to_state, t.reason,"
            " t.cause, t.kind, t.margin FROM transitions t JOIN"
            " (SELECT site, host, scope, item, MAX(id) AS id FROM transitions"
            "  GROUP BY site, host, scope, item) last ON t.id = last.id ORDER BY t.id"
        )
        return [Transition(*r) for r in rows]

    def last_event_seqs(self) -> dict[tuple[str, str], int]:
        rows = self._rows("SELECT site, host, MAX(seq) FROM events GROUP BY site, host")
        return {(r[0], r[1]): int(r[2]) for r in rows}

    def changes(
        self, site: str, host: str, scope: str, item: str, start: float, end: float
    ) -> tuple[str | None, list[tuple[float, str | None]]]:
        """The state at ``start`` (None: no record yet) and the changes in [start, end)."""
        before = self._rows(
            "SELECT to_state FROM transitions WHERE site = ? AND host = ? AND scope = ?"
            " AND item = ? AND ts <= ? ORDER BY ts DESC, id DESC LIMIT 1",
            (site, host, scope, item, start),
        )
        rows = self._rows(
            "SELECT ts, to_state FROM transitions WHERE site = ? AND host = ? AND scope = ?"
            " AND item = ? AND ts > ? AND ts < ? ORDER BY ts, id",
            (site, host, scope, item, start, end),
        )
        return (before[0][0] if before else None), [(r[0], r[1]) for r in rows]

    def items(self, site: str, host: str, scope: str, start: float, end: float) -> list[str]:
        """Every id of ``scope`` on a host with a record before ``end`` that is not gone
        before ``start``."""
        rows = self._rows(
            "SELECT item, MAX(ts) FROM transitions WHERE site = ? AND host = ? AND scope = ?"
            " AND ts < ? GROUP BY item ORDER BY item",
            (site, host, scope, end),
        )
        out = []
        for item, _ in rows:
            state, changes = self.changes(site, host, scope, item, start, end)
            if state is not None or changes:
                out.append(item)
        return out

    def hosts(
        self, site: str = "", limit: int = 100, offset: int = 0
    ) -> tuple[int, list[tuple[str, str]]]:
        """Hosts with a recorded history (a page of them, by site and name) and how many."""
        where, params = (
            (["scope = 'host'", "site = ?"], [site]) if site else (["scope = 'host'"], [])
        )
        total = self._rows(
            f"SELECT COUNT(*) FROM (SELECT DISTINCT site, host FROM transitions {_where(where)}) x",
            params,
        )[0][0]
        rows = self._rows(
            f"SELECT DISTINCT site, host FROM transitions {_where(where)}"
            " ORDER BY site, host LIMIT ? OFFSET ?",
            (*params, limit, offset),
        )
        return int(total), [(r[0], r[1]) for r in rows]

    def transitions(
        self,
        site: str = "",
        host: str = "",
        scope: str = "",
        limit: int = 100,
        before: float | None = None,
    ) -> list[dict[str, Any]]:
        where, params = self._filters(site, host, before)
        if scope:
            where.append("scope = ?")
            params.append(scope)
        rows = self._rows(
            "SELECT ts, site, host, scope, item, from_state, to_state, reason, cause, kind, margin"
            f" FROM transitions {_where(where)} ORDER BY ts DESC, id DESC LIMIT ?",
            (*params, limit),
        )
        keys = ("ts", "site", "host", "scope", "id", "from", "to", "reason", "cause", "kind")
        return [dict(zip((*keys, "margin"), r, strict=True)) for r in rows]

    def events(
        self, site: str = "", host: str = "", limit: int = 100, before: float | None = None
    ) -> list[dict[str, Any]]:
        where, params = self._filters(site, host, before)
        rows = self._rows(
            f"SELECT received, payload FROM events {_where(where)} ORDER BY ts DESC, id DESC"
            " LIMIT ?",
            (*params, limit),
        )
        return [{**json.loads(r[1]), "received": r[0]} for r in rows]

    def _filters(self, site: str, host: str, before: float | None) -> tuple[list[str], list[Any]]:
        where, params = [], []
        for col, val in (("site", site), ("host", host)):
            if val:
                where.append(f"{col} = ?")
                params.append(val)
        if before is not None:
            where.append("ts < ?")
            params.append(before)
        return where, params

    def alerts(self, limit: int = 100) -> list[dict[str, Any]]:
        rows = self._rows(
            "SELECT ts, site, host, item, status, receiver, detail FROM alerts"
            " ORDER BY ts DESC, id DESC LIMIT ?",
            (limit,),
        )
        keys = ("ts", "site", "host", "id", "status", "receiver", "detail")
        return [dict(zip(keys, r, strict=True)) for r in rows]

    def maintenance(self, end_after: float | None = None) -> list[Maintenance]:
        where, params = [], []
        if end_after is not None:
            where.append("end_ts > ?")
            params.append(end_after)
        rows = self._rows(
            "SELECT id, site, host, grp, start_ts, end_ts, reason, source FROM maintenance"
            f" {_where(where)} ORDER BY start_ts, id",
            params,
        )
        return [Maintenance(*r) for r in rows]


def _where(clauses: list[str]) -> str:
    return ("WHERE " + " AND ".join(clauses)) if clauses else ""

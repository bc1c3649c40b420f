"""The on-disk outbox and the sequence counter.

Events are written here before they are published and removed only once the broker
has acknowledged them, so a transition that happens while the broker is unreachable,
or just before the agent restarts, is delivered later, in order. The outbox is
bounded: beyond ``max_items`` the oldest events are dropped and counted.

It also keeps the states last reported, so a restarted agent reports what changed
while it was down. The sequence counter reserves numbers in blocks on disk, so ``seq`` strictly
increases across restarts (a restart skips the rest of a block) without a disk write
per message.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

SEQ_BLOCK = 1000


@dataclass(frozen=True, slots=True)
class Item:
    id: int
    topic: str
    payload: bytes


class Outbox:
    def __init__(self, path: str | Path, max_items: int) -> None:
        self.path = Path(path)
        self.max_items = max_items
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS outbox ("
            " id INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT NOT NULL, payload BLOB NOT NULL)"
        )
        self._db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER)")
        self._db.execute("CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value BLOB)")
        self._count = int(self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])
        self._seq = self._meta("seq_reserved")
        self._reserved = self._seq

    def _meta(self, key: str) -> int:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return int(row[0]) if row else 0

    def _set_meta(self, key: str, value: int) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def next_seq(self) -> int:
        self._seq += 1
        if self._seq > self._reserved:
            self._reserved = self._seq + SEQ_BLOCK - 1
            self._set_meta("seq_reserved", self._reserved)
        return self._seq

    def put(self, topic: str, payload: bytes) -> int:
        """Store one message; returns how many old ones were dropped to stay in bounds."""
        with self._db:  # one transaction
            self._db.execute("BEGIN")
            self._db.execute("INSERT INTO outbox (topic, payload) VALUES (?, ?)", (topic, payload))
            excess = self._count + 1 - self.max_items
            if excess > 0:
                self._db.execute(
                    "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox ORDER BY id LIMIT ?)",
                    (excess,),
                )
                self._set_meta("dropped", self._meta("dropped") + excess)
        self._count += 1 - max(excess, 0)
        return max(excess, 0)

    def peek(self, limit: int = 100) -> list[Item]:
        rows = self._db.execute(
            "SELECT id, topic, payload FROM outbox ORDER BY id LIMIT ?", (limit,)
        ).fetchall()
        return [Item(i, t, bytes(p)) for i, t, p in rows]

    def ack(self, item_id: int) -> None:
        self._count -= self._db.execute("DELETE FROM outbox WHERE id = ?", (item_id,)).rowcount

    def save(self, key: str, value: bytes) -> None:
        """Keep a small document across restarts (the last reported states)."""
        self._db.execute("INSERT OR REPLACE INTO kv (key, value) VALUES (?, ?)", (key, value))

    def load(self, key: str) -> bytes | None:
        row = self._db.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
        return bytes(row[0]) if row else None

    def __len__(self) -> int:
        """Events waiting; kept in memory, so any thread (the metrics endpoint) may ask."""
        return self._count

    @property
    def dropped(self) -> int:
        return self._meta("dropped")

    def close(self) -> None:
        self._db.close()

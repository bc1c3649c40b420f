"""The alert engine: the Router (pure) driven by a clock, the Dispatcher delivering.

The ingest calls ``on_transition(record)`` for each change it sees; ``run()`` flushes
the router whenever something is due and hands notifications to the receivers. The
dashboard reads ``alerts()``, ``silences()`` and ``stats()`` and changes silences and
maintenance windows with ``add_silence`` / ``expire_silence``. Every method except
``run`` is synchronous and must be called from the event loop's thread (from another
thread: ``loop.call_soon_threadsafe(engine.on_transition, record)``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from central.alerts import receivers as receivers_module
from central.alerts.config import MATCH_KEYS, AlertsConfig
from central.alerts.dispatch import Dispatcher
from central.alerts.model import Alert, Notification, Silence, SilenceKind, Transition
from central.alerts.receivers import Receiver
from central.alerts.receivers.http import rfc3339
from central.alerts.routing import Router

log = logging.getLogger(__name__)

MAX_SLEEP = 60.0  # re-check at least this often (silences added with a past start, clock jumps)
KEEP_EXPIRED = 86400.0  # expired silences stay listed this long


class AlertEngine:
    def __init__(
        self,
        config: AlertsConfig,
        clock: Callable[[], float] = time.time,
        receivers: Mapping[str, Receiver] | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        on_notification: Callable[[Notification], None] | None = None,
    ) -> None:
        self.config, self.clock = config, clock
        self.on_notification = on_notification  # e.g. to keep the history of what was sent
        self.router = Router(config)
        built = dict(receivers) if receivers is not None else receivers_module.build(config)
        self.receivers = built
        self.dispatcher = Dispatcher(
            built,
            queue_size=config.queue_size,
            attempts=config.retry_attempts,
            initial=config.retry_initial,
            maximum=config.retry_max,
            sleep=sleep,
        )
        self._wake: asyncio.Event | None = None

    # ---- the ingest's side ---------------------------------------------------------------

    def on_transition(self, record: Transition) -> None:
        self.router.observe(record, self.clock())
        self._poke()

    def _poke(self) -> None:
        if self._wake is not None:
            self._wake.set()

    async def run(self) -> None:
        """Flush when due, deliver; until cancelled."""
        self._wake = asyncio.Event()
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self.dispatcher.run(), name="alerts-dispatch")
            for receiver in self.receivers.values():
                background = getattr(receiver, "background", None)
                if background is not None:
                    tasks.create_task(background(), name=f"alerts-{receiver.name}-background")
            tasks.create_task(self._loop(), name="alerts-flush")

    async def _loop(self) -> None:
        assert self._wake is not None
        while True:
            self._wake.clear()
            self.flush()
            timeout = min(MAX_SLEEP, max(0.0, self.router.due_at - self.clock()))
            # asyncio.timeout, not wait_for: Python 3.11's wait_for can swallow a cancellation
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._wake.wait()

    def flush(self) -> int:
        """Hand every due notification to the dispatcher now; how many were queued."""
        now = self.clock()
        queued = 0
        for notification in self.router.flush(now):
            if notification.receiver not in self.receivers:
                log.error("no receiver %r for %s", notification.receiver, notification.title)
                continue
            submitted = self.dispatcher.submit(notification)
            queued += submitted
            if submitted and self.on_notification is not None:
                try:
                    self.on_notification(notification)
                except Exception:
                    log.exception("recording the notification %s failed", notification.title)
        self.router.gc_silences(now, KEEP_EXPIRED)
        return queued

    # ---- the dashboard's side ------------------------------------------------------------

    def alerts(self) -> list[Alert]:
        """The firing alerts (flapping included)."""
        return self.router.alerts()

    def alerts_json(self) -> list[dict[str, Any]]:
        now = self.clock()
        return [
            {
                "id": a.key.fingerprint,
                "key": str(a.key),
                "status": a.status.value,
                "labels": dict(a.labels),
                "summary": a.summary,
                "detail": a.detail,
                "startsAt": rfc3339(a.starts_at),
                "flapping": a.flapping,
                "silencedBy": self.router.silenced_by(a, now),
                "hostOffline": self.router.host_offline(a),
            }
            for a in self.alerts()
        ]

    def silences_json(self, include_expired: bool = False) -> list[dict[str, Any]]:
        now = self.clock()
        return [
            {
                "id": s.id,
                "kind": s.kind.value,
                "matchers": {k: list(v) for k, v in s.matchers.items()},
                "startsAt": rfc3339(s.starts_at),
                "endsAt": rfc3339(s.ends_at),
                "active": s.active(now),
                "createdBy": s.created_by,
                "comment": s.comment,
            }
            for s in self.silences(include_expired)
        ]

    def silences(self, include_expired: bool = False) -> list[Silence]:
        """Silences and maintenance windows not yet over (or all that are still kept)."""
        return self.router.silences(self.clock(), include_expired)

    def add_silence(
        self,
        matchers: Mapping[str, str | Sequence[str]],
        ends_at: float,
        starts_at: float | None = None,
        *,
        kind: SilenceKind = SilenceKind.SILENCE,
        created_by: str = "",
        comment: str = "",
        silence_id: str = "",
    ) -> Silence:
        """Add a silence (or, with kind MAINTENANCE, a maintenance window).

        ``matchers`` maps labels (site, host, group, kind, severity) to a glob or a list
        of globs; an empty mapping matches everything. ValueError on a bad matcher or time.
        ``silence_id``: the id of a silence stored before (a restart); a new one otherwise.
        """
        now = self.clock()
        start = now if starts_at is None else starts_at
        if not ends_at > start:
            raise ValueError("ends_at must be after starts_at")
        clean: dict[str, tuple[str, ...]] = {}
        for label, globs in matchers.items():
            if label not in MATCH_KEYS:
                raise ValueError(
                    f"unknown label {label!r}; expected one of {', '.join(MATCH_KEYS)}"
                )
            values = (globs,) if isinstance(globs, str) else tuple(globs)
            if not values or not all(isinstance(g, str) and g for g in values):
                raise ValueError(f"matcher {label}: expected non-empty globs")
            clean[label] = values
        silence = self.router.add_silence(
            clean, start, ends_at, kind, created_by, comment, id=silence_id
        )
        log.info(
            "%s %s added by %s: %s until %s",
            kind.value,
            silence.id,
            created_by or "?",
            clean,
            rfc3339(ends_at),
        )
        self._poke()
        return silence

    def set_maintenance(self, windows: Sequence[Silence]) -> None:
        """Replace the maintenance windows (the central history owns them)."""
        self.router.set_maintenance(windows)
        self._poke()

    def expire_silence(self, silence_id: str) -> Silence:
        """End a silence or maintenance window now. KeyError if unknown."""
        silence = self.router.expire_silence(silence_id, self.clock())
        log.info("%s %s expired", silence.kind.value, silence_id)
        self._poke()
        return silence

    def stats(self) -> dict[str, Any]:
        return {
            **self.router.stats(),
            "receivers": {n: s.as_dict() for n, s in self.dispatcher.stats.items()},
        }

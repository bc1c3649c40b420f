"""Alert routing inside the central service: the ingest's records in, the alert engine out.

The pure adapters turn what the ingest sees into the alert engine's records:

- ``from_transition``: a ``state.Transition`` (scope ``group`` or ``host``) becomes a GROUP
  record (every change of a group's state) or a HOST record (the host going offline or
  coming back); a host's other changes (its worst group's state) are carried by the groups.
- ``from_event``: an agent event that reports the result of an action (a promotion that
  engaged, released or failed; a signed command refused) becomes a one-shot ACTION record.
- ``maintenance_silence``: a maintenance window of the history (config or API) becomes the
  engine's maintenance silence, so one declaration excludes the time from availability and
  keeps the alerts quiet.

``Alerting`` wires them: it is a transition and event subscriber of the ingest, mirrors the
history's maintenance windows into the engine, keeps the silences added at run time in the
history (and loads those not yet ended at start), and records every notification handed to a
receiver in the history (``alerts`` table).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from .alerts import AlertEngine, Subject
from .alerts import Transition as AlertRecord
from .alerts.model import Notification, Silence, SilenceKind
from .history import History, Maintenance
from .state import OFFLINE_CAUSES, Transition

log = logging.getLogger("hotspare.central.alerting")

OFFLINE = "offline"
ONLINE = "online"

# agent event -> (the field holding the outcome, {outcome: ACTION to_state}); an outcome not
# listed is a decision on the way (pending, dry run, ...), not the result of an action
ACTION_EVENTS: Mapping[str, tuple[str, Mapping[str, str]]] = {
    "promotion": (
        "decision",
        {"engaged": "succeeded", "released": "succeeded", "failed": "failed"},
    ),
    "command": ("decision", {"rejected": "refused"}),
}


def from_transition(record: Transition) -> AlertRecord | None:
    """The alert engine's record for one of the ingest's transitions (None: not for alerts)."""
    if record.scope == "group":
        return AlertRecord(
            subject=Subject.GROUP,
            site=record.site,
            host=record.host,
            group=record.id,
            group_kind=record.kind,
            from_state=record.from_state,
            to_state=record.to_state,
            ts=record.ts,
            detail=record.reason,
        )
    if record.scope != "host":
        return None
    went, was = record.to_state == OFFLINE, record.from_state == OFFLINE
    if went == was:
        return None  # online all along: the worst group changed, the groups tell that
    if went:
        to, detail = OFFLINE, record.reason or OFFLINE_CAUSES.get(record.cause, record.cause)
    else:
        to, detail = (ONLINE, "") if record.to_state is not None else (None, "gone")
    return AlertRecord(
        subject=Subject.HOST,
        site=record.site,
        host=record.host,
        group="",
        group_kind="",
        from_state=ONLINE if went else OFFLINE,
        to_state=to,
        ts=record.ts,
        detail=detail,
    )


def from_event(doc: Mapping[str, Any]) -> AlertRecord | None:
    """The ACTION record for an agent event that reports an action's result (else None)."""
    spec = ACTION_EVENTS.get(str(doc.get("type")))
    if spec is None:
        return None
    field, outcomes = spec
    to = outcomes.get(str(doc.get(field)))
    if to is None:
        return None
    detail = str(doc.get("message") or doc.get("reason") or "")
    return AlertRecord(
        subject=Subject.ACTION,
        site=str(doc["site"]),
        host=str(doc["host"]),
        group=str(doc.get("id", "")),
        group_kind="",
        from_state=None,
        to_state=to,
        ts=float(doc["ts"]),
        detail=f"{doc['type']} {doc.get('id', '')}: {detail}".strip(),
    )


def _exact(value: str) -> tuple[str, ...]:
    """A glob that matches ``value`` only (names with *, ? or [ stay literal)."""
    return ("".join(f"[{c}]" if c in "*?[" else c for c in value),)


def maintenance_silence(window: Maintenance) -> Silence:
    """The alert engine's view of a maintenance window: "" in site/host/group matches all.

    A window for one group silences that group's alerts; one for a whole host (group "")
    silences the host's offline alert and all its groups, as it excludes them all from
    availability.
    """
    matchers = {
        label: _exact(value)
        for label, value in (("site", window.site), ("host", window.host), ("group", window.group))
        if value
    }
    return Silence(
        id=f"maintenance:{window.id}",
        kind=SilenceKind.MAINTENANCE,
        matchers=matchers,
        starts_at=window.start,
        ends_at=window.end,
        created_by=window.source,
        comment=window.reason,
    )


def history_rows(n: Notification) -> list[tuple[float, str, str, str, str, str, str]]:
    """What the history keeps of a notification: one row per alert in it."""
    return [
        (
            n.ts,
            a.labels["site"],
            a.labels["host"],
            a.key.subject,
            ("flapping" if a.flapping else a.status.value) + (" (repeat)" if n.repeat else ""),
            n.receiver,
            f"{a.summary}: {a.detail}" if a.detail else a.summary,
        )
        for a in n.alerts
    ]


class Alerting:
    """The alert engine plugged into the central service (ingest, history, maintenance)."""

    def __init__(self, engine: AlertEngine, history: History, clock: Callable[[], float]) -> None:
        self.engine = engine
        self.history = history
        self.clock = clock
        self.changed = True  # something the dashboard shows may have changed (see view_if)
        self._viewed_at = -1e18
        engine.on_notification = self.record
        self.sync_maintenance()
        self.load_silences()

    def seed(self, records: Iterable[Transition]) -> None:
        """Raise again what still holds after a restart (the history's last states).

        The ingest records only changes, so a group still degraded when the service
        restarts would otherwise never be alerted again (and Alertmanager would let the
        alert expire). Healthy states are ignored by the engine.
        """
        for record in records:
            converted = from_transition(replace(record, from_state=None))
            if converted is not None:
                self.engine.on_transition(converted)

    def on_transition(self, record: Transition) -> None:
        converted = from_transition(record)
        if converted is not None:
            self.engine.on_transition(converted)
            self.changed = True

    def on_event(self, doc: Mapping[str, Any]) -> None:
        converted = from_event(doc)
        if converted is not None:
            self.engine.on_transition(converted)
            self.changed = True

    def sync_maintenance(self, windows: Iterable[Maintenance] | None = None) -> None:
        """Mirror the history's maintenance windows (call after every change to them)."""
        if windows is None:
            windows = self.history.maintenance(end_after=self.clock())
        self.engine.set_maintenance([maintenance_silence(w) for w in windows])
        self.changed = True

    def load_silences(self) -> None:
        """The silences added at run time before a restart that have not ended yet."""
        kept = self.history.silences(end_after=self.clock())
        for s in kept:
            self.engine.add_silence(
                s.matchers,
                s.end,
                s.start,
                created_by=s.created_by,
                comment=s.comment,
                silence_id=s.id,
            )
        if kept:
            log.info("%d silence(s) kept from before the restart", len(kept))
        self.changed = True

    def add_silence(
        self,
        matchers: Mapping[str, str | Sequence[str]],
        end: float,
        start: float | None,
        created_by: str,
        comment: str,
    ) -> Silence:
        """Add a silence to the engine (ValueError if it is not valid) and keep it in the
        history, so that it survives a restart."""
        silence = self.engine.add_silence(
            matchers, end, start, created_by=created_by, comment=comment
        )
        try:
            self.history.add_silence(
                silence.id,
                dict(silence.matchers),
                silence.starts_at,
                silence.ends_at,
                silence.created_by,
                silence.comment,
                self.clock(),
            )
        except Exception:
            # not kept, so not in force either: a silence that a restart would drop
            # silently is worse than an error the operator sees now
            self.engine.expire_silence(silence.id)
            raise
        self.changed = True
        return silence

    def expire_silence(self, silence_id: str) -> Silence:
        """End a silence now, in the engine and in the history (KeyError if unknown)."""
        silence = self.engine.expire_silence(silence_id)
        if silence.kind is SilenceKind.SILENCE:
            self.history.end_silence(silence_id, silence.ends_at)
        self.changed = True
        return silence

    def record(self, notification: Notification) -> None:
        self.changed = True
        for row in history_rows(notification):
            self.history.add_alert(*row)

    def view_if_changed(self, every: float = 5.0) -> dict[str, Any] | None:
        """``view()`` when something changed (or ``every`` seconds passed: silences start
        and end by the clock); None otherwise. Keeps the live update cheap at scale."""
        now = self.clock()
        if not self.changed and now - self._viewed_at < every:
            return None
        self.changed, self._viewed_at = False, now
        return self.view()

    def view(self) -> dict[str, Any]:
        """What the dashboard's alerts page shows (also sent live on changes)."""
        return {
            "alerts": self.engine.alerts_json(),
            "silences": self.engine.silences_json(),
        }

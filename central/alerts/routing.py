"""The alert state machine: records in, notifications out. Pure: the time is passed in.

``Router.observe(record, now)`` updates the alert of the record's (host, group) and the
aggregation groups it belongs to; ``Router.flush(now)`` returns the notifications that
are due; ``Router.next_due(now)`` says when to call ``flush`` again. No I/O, no clock of
its own, so every behaviour is tested with hand-built sequences of records and times.

The rules, in Alertmanager's terms where it has them:

- **dedupe**: one alert per (site, host, group); a record that repeats the state it
  already has changes nothing.
- **routes**: the first route whose matchers all match wins, unless it says
  ``continue``, then the next matching one is added too; no match: the default
  receivers. Routing is sticky: an alert that escalates (degraded -> failed) is added to
  the routes its new labels match and stays in those it was in, until it resolves.
- **grouping**: per route, alerts with the same ``group_by`` label values form a group.
  A new group is sent ``group_wait`` after it was created; a change to a group that was
  sent is sent ``group_interval`` after the previous send; an unchanged group with
  firing alerts is sent again every ``repeat_interval``. An alert that fires and
  resolves before its group was sent is never sent.
- **resolve**: an alert resolves when its group returns to a healthy state (redundant)
  or goes away, or the host comes back online; receivers are told (``send_resolved``)
  if they were told it fired.
- **flapping**: an alert whose state changed more than ``flap_threshold`` times within
  ``flap_window`` seconds (by the records' ``ts``) is sent once as flapping and then
  kept quiet; once no change came for ``flap_quiet`` seconds its current state is sent.
- **silences and maintenance windows**: an active one that matches an alert's labels
  keeps it out of notifications; once it ends, what is still true is sent (a firing
  alert as new, a resolution if the firing had been sent).
- **an offline host** covers its groups: while its offline alert fires, its group
  alerts are held back as if silenced (the agent cannot tell what they are now).
- **action results** are one-shot: sent once, never repeated, never resolved.
"""

from __future__ import annotations

import math
import uuid
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

from central.alerts.config import AlertsConfig, Route
from central.alerts.model import (
    Alert,
    AlertKey,
    Notification,
    Severity,
    Silence,
    SilenceKind,
    Status,
    Subject,
    Transition,
)

DEFAULT_ROUTE = -1


@dataclass(slots=True)
class _Tracked:
    """The routing's memory of one (host, group)."""

    published: Alert  # what the groups see
    state: str | None  # the latest state, even while flapping
    severity: Severity
    detail: str
    changes: deque[float] = field(default_factory=deque)  # ts of recent state changes
    last_change_at: float = 0.0  # clock time of the latest change (for flap_quiet)
    routes: set[int] = field(default_factory=set)


@dataclass(slots=True)
class _Group:
    route: int
    labels: dict[str, str]
    created_at: float
    alerts: dict[AlertKey, Alert] = field(default_factory=dict)
    notified_firing: set[AlertKey] = field(default_factory=set)  # told it fires
    last_sent: float | None = None
    last_signature: frozenset[tuple[object, ...]] = frozenset()
    changed: bool = True  # an alert was added or updated since the last send
    next_at: float = -math.inf  # when _due may next have something to send

    @property
    def key(self) -> str:
        labels = ",".join(f"{k}={v}" for k, v in self.labels.items())
        return f"{self.route}:{{{labels}}}"


class Router:
    def __init__(self, config: AlertsConfig, silences: Iterable[Silence] = ()) -> None:
        self.config = config
        self._tracked: dict[AlertKey, _Tracked] = {}
        self._groups: dict[tuple[int, tuple[str, ...]], _Group] = {}
        self._silences: dict[str, Silence] = {s.id: s for s in silences}
        self.unrouted = 0  # alerts that matched no route and there are no default receivers
        # flush() before this time has nothing to do: a record or a silence brings it forward
        self._due_at = -math.inf
        self._silence_due = -math.inf  # at a silence boundary every group is looked at
        self._watch: set[AlertKey] = set()  # tracked alerts that are flapping or resolved

    # ---- input -------------------------------------------------------------------------

    def observe(self, record: Transition, now: float) -> None:
        """Take one record in (dedupe, flap detection, publication to the groups)."""
        key = record.key
        severity = record.severity
        tracked = self._tracked.get(key)
        if tracked is None:
            if severity is Severity.NONE:
                return  # healthy and never alerted: nothing to say
            alert = self._alert(record, Status.FIRING, record.ts, None, severity)
            tracked = _Tracked(alert, record.to_state, severity, record.detail)
            tracked.changes.append(record.ts)
            tracked.last_change_at = now
            self._tracked[key] = tracked
            self._publish(tracked, alert, now)
            return
        if record.to_state == tracked.state:
            if record.detail != tracked.detail:
                tracked.detail = record.detail  # a new reason is not a new notification
            return
        tracked.state, tracked.severity, tracked.detail = record.to_state, severity, record.detail
        tracked.last_change_at = now
        tracked.changes.append(record.ts)
        while tracked.changes and tracked.changes[0] < record.ts - self.config.flap_window:
            tracked.changes.popleft()
        if tracked.published.flapping:
            return  # quiet until stable
        if len(tracked.changes) > self.config.flap_threshold:
            worst = max(severity, tracked.published.severity, key=lambda s: s.rank)
            if worst is Severity.NONE:
                worst = Severity.WARNING
            flapping = replace(
                tracked.published,
                status=Status.FIRING,
                flapping=True,
                ends_at=None,
                labels={**tracked.published.labels, "severity": worst.value},
                detail=f"{len(tracked.changes)} state changes within "
                f"{self.config.flap_window:g} s; latest: {record.to_state}",
            )
            self._publish(tracked, flapping, now)
            return
        self._publish(tracked, self._current(tracked, record.ts), now)

    def _current(self, tracked: _Tracked, ts: float) -> Alert:
        """The alert for the tracked (host, group)'s latest state."""
        old = tracked.published
        if tracked.severity is Severity.NONE:
            return replace(
                old,
                status=Status.RESOLVED,
                state=tracked.state,
                ends_at=ts,
                flapping=False,
                detail=tracked.detail,
                labels={**old.labels, "state": tracked.state or "gone"},
            )
        starts_at = old.starts_at if old.status is Status.FIRING else ts
        return replace(
            old,
            status=Status.FIRING,
            state=tracked.state,
            starts_at=starts_at,
            ends_at=None,
            flapping=False,
            detail=tracked.detail,
            labels={**old.labels, "severity": tracked.severity.value, "state": tracked.state or ""},
        )

    @staticmethod
    def _alert(
        record: Transition, status: Status, starts: float, ends: float | None, sev: Severity
    ) -> Alert:
        labels = {
            "site": record.site,
            "host": record.host,
            "group": record.group,
            "kind": record.kind,
            "severity": sev.value,
            "state": record.to_state or "",
        }
        return Alert(
            key=record.key,
            subject=record.subject,
            status=status,
            labels=labels,
            state=record.to_state,
            starts_at=starts,
            ends_at=ends,
            detail=record.detail,
            one_shot=record.subject is Subject.ACTION,
        )

    def _publish(self, tracked: _Tracked, alert: Alert, now: float) -> None:
        if alert.subject is Subject.HOST and alert.status is not tracked.published.status:
            self._due_at = self._silence_due = -math.inf  # its groups' alerts hide or show
        if alert.status is Status.FIRING:
            if tracked.published.status is Status.RESOLVED:
                tracked.routes = set()  # fires anew: routed anew
            tracked.routes |= set(self._routes(alert.labels))
        tracked.published = alert
        if alert.flapping or alert.status is Status.RESOLVED:
            self._watch.add(alert.key)  # flap_quiet or flap memory runs out: flush looks
        else:
            self._watch.discard(alert.key)
        if not tracked.routes and alert.status is Status.FIRING:
            self.unrouted += 1
        for route in tracked.routes:
            group = self._group(route, alert.labels, now)
            group.alerts[alert.key] = alert
            group.changed = True
            self._schedule(group)
            self._due_at = min(self._due_at, group.next_at)
        if alert.flapping:
            self._due_at = min(self._due_at, tracked.last_change_at + self.config.flap_quiet)
        if alert.one_shot:
            del self._tracked[alert.key]  # the group keeps it until it is sent

    def _routes(self, labels: Mapping[str, str]) -> list[int]:
        out = []
        for i, route in enumerate(self.config.routes):
            if route.matches(labels):
                out.append(i)
                if not route.continue_:
                    break
        if not out and self.config.default_receivers:
            out.append(DEFAULT_ROUTE)
        return out

    def _route(self, index: int) -> Route:
        return self.config.routes[index] if index >= 0 else self.config.default_route

    def _group(self, route: int, labels: Mapping[str, str], now: float) -> _Group:
        by = self._route(route).group_by
        values = tuple(labels.get(name, "") for name in by)
        group = self._groups.get((route, values))
        if group is None:
            group = _Group(route, dict(zip(by, values, strict=True)), now)
            self._groups[(route, values)] = group
        return group

    # ---- silences and maintenance windows ------------------------------------------------

    def add_silence(
        self,
        matchers: Mapping[str, tuple[str, ...]],
        starts_at: float,
        ends_at: float,
        kind: SilenceKind = SilenceKind.SILENCE,
        created_by: str = "",
        comment: str = "",
        id: str = "",
    ) -> Silence:
        silence = Silence(
            id or str(uuid.uuid4()), kind, dict(matchers), starts_at, ends_at, created_by, comment
        )
        self._silences[silence.id] = silence
        self._due_at = self._silence_due = -math.inf
        return silence

    def set_maintenance(self, windows: Iterable[Silence]) -> None:
        """Replace every maintenance window with ``windows`` (their owner is the history)."""
        for sid in [s.id for s in self._silences.values() if s.kind is SilenceKind.MAINTENANCE]:
            del self._silences[sid]
        for window in windows:
            self._silences[window.id] = replace(window, kind=SilenceKind.MAINTENANCE)
        self._due_at = self._silence_due = -math.inf

    def expire_silence(self, silence_id: str, now: float) -> Silence:
        """End a silence (or maintenance window) now; KeyError if there is no such id."""
        silence = self._silences[silence_id]
        if silence.ends_at > now:
            silence = replace(silence, ends_at=max(now, silence.starts_at))
            self._silences[silence_id] = silence
            self._due_at = self._silence_due = -math.inf
        return silence

    def silences(self, now: float, include_expired: bool = False) -> list[Silence]:
        out = [s for s in self._silences.values() if include_expired or s.ends_at > now]
        return sorted(out, key=lambda s: (s.starts_at, s.id))

    def silenced_by(self, alert: Alert, now: float) -> list[str]:
        return [s.id for s in self._silences.values() if s.covers(alert.labels, now)]

    def host_offline(self, alert: Alert) -> bool:
        """A group alert of a host whose offline alert fires: that alert covers it."""
        if alert.subject is not Subject.GROUP:
            return False
        host = self._tracked.get(AlertKey(alert.key.site, alert.key.host, "host"))
        return host is not None and host.published.status is Status.FIRING

    def gc_silences(self, now: float, keep: float) -> None:
        """Forget silences that ended more than ``keep`` seconds ago."""
        for sid in [s.id for s in self._silences.values() if s.ends_at < now - keep]:
            del self._silences[sid]

    # ---- output --------------------------------------------------------------------------

    def alerts(self) -> list[Alert]:
        """The active alerts (firing, flapping included), by key."""
        active = (t.published for t in self._tracked.values())
        return sorted((a for a in active if a.status is Status.FIRING), key=lambda a: a.key)

    def flush(self, now: float) -> list[Notification]:
        """End quiet flapping periods, then return every notification due at ``now``.

        Cheap when nothing is due (one comparison), so it may be called after every record.
        """
        if now < self._due_at:
            return []
        for key in list(self._watch):
            tracked = self._tracked[key]
            if (
                tracked.published.flapping
                and now - tracked.last_change_at >= self.config.flap_quiet
            ):
                tracked.changes.clear()
                self._publish(tracked, self._current(tracked, now), now)
            elif (
                tracked.published.status is Status.RESOLVED
                and now - tracked.last_change_at > self.config.flap_window
            ):
                del self._tracked[key]  # resolved and past flap memory
                self._watch.discard(key)
        out: list[Notification] = []
        every = now >= self._silence_due  # a silence began, ended or changed: look at all
        for gkey, group in list(self._groups.items()):
            if not every and group.next_at > now:
                continue
            alerts, repeat = self._due(group, now)
            if alerts is not None:
                route = self._route(group.route)
                out.extend(
                    Notification(r, group.route, dict(group.labels), alerts, now, repeat, group.key)
                    for r in route.receivers
                )
            if not group.alerts:
                del self._groups[gkey]
        boundaries = [t for s in self._silences.values() for t in (s.starts_at, s.ends_at)]
        self._silence_due = min((t for t in boundaries if t > now), default=math.inf)
        due = self.next_due(now)
        self._due_at = math.inf if due is None else due
        return out

    def _visible(self, group: _Group, now: float) -> list[Alert]:
        visible = []
        for alert in group.alerts.values():
            if self.silenced_by(alert, now) or self.host_offline(alert):
                continue
            if alert.status is Status.RESOLVED and alert.key not in group.notified_firing:
                continue  # never told it fired: nothing to resolve
            visible.append(alert)
        return visible

    def _due(self, group: _Group, now: float) -> tuple[tuple[Alert, ...] | None, bool]:
        """The alerts to send for ``group`` at ``now`` (None: nothing due) and whether a repeat."""
        visible = self._visible(group, now)
        signature = frozenset(a.signature for a in visible)
        changed = signature != group.last_signature and bool(visible)
        group.changed = changed
        route = self._route(group.route)
        if group.last_sent is None:
            due = changed and now >= group.created_at + route.group_wait
        elif changed:
            due = now >= group.last_sent + route.group_interval
        else:
            firing = any(a.status is Status.FIRING and not a.one_shot for a in visible)
            due = firing and now >= group.last_sent + route.repeat_interval
        if not visible:
            group.last_signature = frozenset()
        if not visible or not due:
            self._drop_invisible(group, now)
            self._schedule(group)
            return None, False
        repeat = not changed
        if repeat:
            visible = [a for a in visible if not a.one_shot]
        group.last_sent = now
        group.last_signature = signature
        group.changed = False
        for alert in visible:
            if alert.status is Status.FIRING and not alert.one_shot:
                group.notified_firing.add(alert.key)
            else:
                group.notified_firing.discard(alert.key)
                group.alerts.pop(alert.key, None)  # resolution and events: sent, done
        self._drop_invisible(group, now)
        self._schedule(group)
        return tuple(sorted(visible, key=lambda a: a.key)), repeat

    def _schedule(self, group: _Group) -> None:
        """Set when the group next needs a look (silence boundaries aside)."""
        route = self._route(group.route)
        if not group.alerts:
            group.next_at = math.inf
        elif group.last_sent is None:
            group.next_at = group.created_at + route.group_wait
        elif group.changed:
            group.next_at = group.last_sent + route.group_interval
        elif any(a.status is Status.FIRING and not a.one_shot for a in group.alerts.values()):
            group.next_at = group.last_sent + route.repeat_interval
        else:
            group.next_at = math.inf  # resolved, held back by a silence: its end wakes it

    def _drop_invisible(self, group: _Group, now: float) -> None:
        """Forget resolved alerts whose firing was never sent and that no silence holds back."""
        for key, alert in list(group.alerts.items()):
            if (
                alert.status is Status.RESOLVED
                and key not in group.notified_firing
                and not self.silenced_by(alert, now)
            ):
                del group.alerts[key]

    @property
    def due_at(self) -> float:
        """When ``flush`` next has something to do (-inf: now; inf: nothing pending)."""
        return self._due_at

    def next_due(self, now: float) -> float | None:
        """The earliest time ``flush`` may have something to do (None: nothing pending)."""
        times: list[float] = []
        for tracked in (self._tracked[key] for key in self._watch):
            if tracked.published.flapping:
                times.append(tracked.last_change_at + self.config.flap_quiet)
            elif tracked.published.status is Status.RESOLVED:  # forgotten then
                times.append(tracked.last_change_at + self.config.flap_window + 1)
        times.extend(group.next_at for group in self._groups.values())
        for silence in self._silences.values():
            times.extend(t for t in (silence.starts_at, silence.ends_at) if t > now)
        return min(times, default=None)

    def stats(self) -> dict[str, int]:
        return {
            "alerts": len(self.alerts()),
            "groups": len(self._groups),
            "silences": len(self._silences),
            "unrouted": self.unrouted,
        }

"""The records the alerts side takes in and the values it gives out.

``Transition`` is the seam with the ingest: one record per change the ingest noticed (a
group's state, a host going offline or coming back, the result of a promotion or other
action). Everything else here is what the routing computes from those records: alerts,
silences and the notifications handed to receivers.
"""

from __future__ import annotations

import enum
import fnmatch
import hashlib
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field


class Subject(enum.StrEnum):
    """What a transition is about."""

    GROUP = "group"  # a redundancy group changed state (from/to: group states or None)
    HOST = "host"  # the host went offline or came back (from/to: "online"/"offline")
    ACTION = "action"  # a promotion or other action finished (to: "succeeded", "failed", ...)


class Severity(enum.StrEnum):
    NONE = "none"  # a healthy state: no alert, or the end of one
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {Severity.NONE: 0, Severity.INFO: 1, Severity.WARNING: 2, Severity.CRITICAL: 3}

# Severity of the state a transition goes to, per subject. A state not listed is
# healthy for GROUP and HOST (the alert resolves) and INFO for ACTION (one-shot).
SEVERITY: Mapping[Subject, Mapping[str | None, Severity]] = {
    Subject.GROUP: {
        "failed": Severity.CRITICAL,  # fewer serving than required
        "degraded": Severity.WARNING,  # redundancy lost or reduced, still serving
        "unknown": Severity.INFO,  # the sources cannot tell; no action fires on it
    },
    Subject.HOST: {"offline": Severity.CRITICAL},
    Subject.ACTION: {"failed": Severity.CRITICAL, "refused": Severity.WARNING},
}

LABELS = ("site", "host", "group", "kind", "severity")  # what routes, silences and group_by use


@dataclass(frozen=True, slots=True)
class Transition:
    """One change the ingest noticed; the alert engine's only input.

    ``group`` is the group id ("" for a HOST record; for an ACTION the group it acted
    on, or ""). ``group_kind`` is the group's kind (power, cooling, raid, bond,
    switches, custom). ``to_state`` None means the group is gone (treated as resolved).
    ``ts`` is when it happened (the event's ``ts``), in seconds since the epoch.
    """

    subject: Subject
    site: str
    host: str
    group: str
    group_kind: str
    from_state: str | None
    to_state: str | None
    ts: float
    detail: str = ""

    @property
    def severity(self) -> Severity:
        default = Severity.INFO if self.subject is Subject.ACTION else Severity.NONE
        return SEVERITY[self.subject].get(self.to_state, default)

    @property
    def kind(self) -> str:
        """The ``kind`` label: the group kind, or "host" / "action" for those subjects."""
        return self.group_kind if self.subject is Subject.GROUP else self.subject.value

    @property
    def key(self) -> AlertKey:
        """Deduplication key: one alert per (host, group); every action result is its own."""
        if self.subject is Subject.GROUP:
            return AlertKey(self.site, self.host, f"group/{self.group}")
        if self.subject is Subject.HOST:
            return AlertKey(self.site, self.host, "host")
        return AlertKey(self.site, self.host, f"action/{self.group}@{self.ts:.6f}")


@dataclass(frozen=True, slots=True, order=True)
class AlertKey:
    site: str
    host: str
    subject: str  # "group/<id>", "host" or "action/<group>@<ts>"

    def __str__(self) -> str:
        return f"{self.site}/{self.host}/{self.subject}"

    @property
    def fingerprint(self) -> str:
        """Stable over restarts: the PagerDuty dedup_key and the webhook's alert id."""
        return hashlib.sha256(str(self).encode()).hexdigest()[:32]


def host_url(external_url: str, labels: Mapping[str, str]) -> str:
    """The dashboard's page of the alert's host (its route ``#/host/<site>/<host>``)."""
    site, host = (urllib.parse.quote(labels[k], safe="") for k in ("site", "host"))
    return f"{external_url}/#/host/{site}/{host}"


class Status(enum.StrEnum):
    FIRING = "firing"
    RESOLVED = "resolved"


@dataclass(frozen=True, slots=True)
class Alert:
    """What receivers are told about one (host, group): a snapshot, immutable."""

    key: AlertKey
    subject: Subject
    status: Status
    labels: Mapping[str, str]  # site, host, group, kind, severity, plus state
    state: str | None  # the state it went to
    starts_at: float
    ends_at: float | None  # set when resolved
    detail: str = ""
    flapping: bool = False
    one_shot: bool = False  # an action result: sent once, never repeated nor resolved

    @property
    def severity(self) -> Severity:
        return Severity(self.labels["severity"])

    @property
    def summary(self) -> str:
        where = f"{self.labels['host']} ({self.labels['site']})"
        if self.flapping:
            return f"{where}: {self.labels['group'] or 'host'} is flapping"
        if self.subject is Subject.HOST:
            return f"{where}: host {self.state}" if self.state else f"{where}: host gone"
        if self.subject is Subject.ACTION:
            return f"{where}: action on {self.labels['group'] or 'host'} {self.state}"
        if self.status is Status.RESOLVED:
            return f"{where}: {self.labels['group']} {self.state or 'gone'} (resolved)"
        return f"{where}: {self.labels['group']} {self.state}"

    @property
    def signature(self) -> tuple[object, ...]:
        """What, when it changes, is worth a new notification."""
        return (self.key, self.status, self.labels["severity"], self.flapping)


class SilenceKind(enum.StrEnum):
    SILENCE = "silence"
    MAINTENANCE = "maintenance"


def matches(matchers: Mapping[str, tuple[str, ...]], labels: Mapping[str, str]) -> bool:
    """Every matcher's label matches one of its globs (an absent label is the empty string)."""
    return all(
        any(fnmatch.fnmatchcase(labels.get(name, ""), glob) for glob in globs)
        for name, globs in matchers.items()
    )


@dataclass(frozen=True, slots=True)
class Silence:
    """Suppresses notifications of matching alerts between ``starts_at`` and ``ends_at``.

    A maintenance window is the same with ``kind`` MAINTENANCE (declared in the config
    or added at run time); the availability figures exclude those windows too.
    """

    id: str
    kind: SilenceKind
    matchers: Mapping[str, tuple[str, ...]]  # label -> globs, any of which may match
    starts_at: float
    ends_at: float
    created_by: str = ""
    comment: str = ""

    def active(self, now: float) -> bool:
        return self.starts_at <= now < self.ends_at

    def covers(self, labels: Mapping[str, str], now: float) -> bool:
        return self.active(now) and matches(self.matchers, labels)


@dataclass(frozen=True, slots=True)
class Notification:
    """One message for one receiver: the alerts of one aggregation group at a flush."""

    receiver: str
    route: int  # index of the route in the config (-1: the default receivers)
    group_labels: Mapping[str, str]  # the group_by labels' values
    alerts: tuple[Alert, ...]
    ts: float  # when it was decided
    repeat: bool = False  # a repeat of an unchanged group (repeat_interval)
    group_key: str = field(default="")

    @property
    def firing(self) -> tuple[Alert, ...]:
        return tuple(a for a in self.alerts if a.status is Status.FIRING)

    @property
    def resolved(self) -> tuple[Alert, ...]:
        return tuple(a for a in self.alerts if a.status is Status.RESOLVED)

    @property
    def title(self) -> str:
        where = ", ".join(f"{k}={v}" for k, v in self.group_labels.items()) or "all"
        counts = f"{len(self.firing)} firing" + (
            f", {len(self.resolved)} resolved" if self.resolved else ""
        )
        status = "FIRING" if self.firing else "RESOLVED"
        return f"[hotspare {status}] {where}: {counts}"

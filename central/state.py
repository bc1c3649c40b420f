"""The fleet as the central service knows it, rebuilt from the MQTT stream; pure, time passed in.

``Fleet.apply()`` takes one decoded, validated message and returns the state changes it made
as ``Transition`` records; ``Fleet.tick(now)`` marks hosts whose heartbeats stopped. Nothing
here does I/O: the ingest feeds it, the history stores what it returns, and the subscribers
(alert routing) receive the same records.

Two timelines are kept per host: each group's state (``scope="group"``) and the host's state
(``scope="host"``): the worst of its groups, or ``offline`` while the agent is not heard —
after its Last Will, a clean stop, or ``heartbeat_timeout`` seconds without a message.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .contract import OFFLINE, Kind, id_topic
from .summary import Summary

# why a host went offline, as stored in Transition.cause and shown on the dashboard
LAST_WILL = "last_will"
CLEAN_STOP = "clean_stop"
MISSED_HEARTBEATS = "missed_heartbeats"
RETAINED_OFFLINE = "retained_offline"  # offline already when the service started
OFFLINE_CAUSES = {
    LAST_WILL: "its Last Will arrived: the connection broke without a goodbye",
    CLEAN_STOP: "the agent stopped cleanly",
    MISSED_HEARTBEATS: "no message within the heartbeat timeout",
    RETAINED_OFFLINE: "already offline when the central service started",
}


@dataclass(frozen=True, slots=True)
class Transition:
    """One state change the central service saw: the record the history keeps and the
    alert routing receives (``on_transition(record)``).

    ``scope`` is ``host`` (``id`` = the host name; states are group states or ``offline``)
    or ``group`` (``id`` = the group id). ``from_state`` None: first seen; ``to_state``
    None: gone. ``cause`` says what made the change: ``state`` (a published state),
    ``last_will``, ``clean_stop``, ``missed_heartbeats``, ``retained_offline``, ``online``
    or ``gone``. ``margin`` and ``kind`` are the group's (``None``/"" for the host scope).
    """

    ts: float
    site: str
    host: str
    scope: str
    id: str
    from_state: str | None
    to_state: str | None
    reason: str = ""
    cause: str = "state"
    kind: str = ""
    margin: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "ts": self.ts,
            "site": self.site,
            "host": self.host,
            "scope": self.scope,
            "id": self.id,
            "from": self.from_state,
            "to": self.to_state,
            "reason": self.reason,
            "cause": self.cause,
            "kind": self.kind,
            "margin": self.margin,
        }


StateKey = tuple[str, str, str, str]  # (site, host, scope, id)


@dataclass
class Host:
    site: str
    host: str
    online: bool | None = None  # None: no status seen yet
    offline_cause: str = ""
    offline_since: float | None = None
    last_heard: float = 0.0
    max_seq: int = -1
    health: dict[str, Any] | None = None  # the last health document
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)
    components: dict[str, dict[str, Any]] = field(default_factory=dict)
    version: str = ""

    @property
    def key(self) -> tuple[str, str]:
        return (self.site, self.host)

    @property
    def state(self) -> str | None:
        """The host's state as the dashboard shows it: offline, or the worst group state."""
        if self.online is False:
            return OFFLINE
        return self.health["state"] if self.health else None

    def summary(self) -> dict[str, Any]:
        return {
            "site": self.site,
            "host": self.host,
            "state": self.state,
            "online": self.online,
            "offline_cause": self.offline_cause or None,
            "offline_since": self.offline_since,
            "last_heard": self.last_heard or None,
            "role": self.health["role"] if self.health else None,
            "groups": {gid: g["state"] for gid, g in sorted(self.groups.items())},
        }


_ENVELOPE = frozenset(("schema", "ts", "seq", "site", "host"))  # every message has these


def _strip(doc: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k not in _ENVELOPE}


class Fleet:
    """Every host heard of, with what was last reported per (host, scope, id).

    ``known`` (from the history) seeds what was last recorded, so a restart that finds the
    same states in the retained messages records nothing new.
    """

    def __init__(
        self, heartbeat_timeout: float, known: Mapping[StateKey, str | None] | None = None
    ):
        self.heartbeat_timeout = heartbeat_timeout
        self.hosts: dict[tuple[str, str], Host] = {}
        self.reported: dict[StateKey, str | None] = dict(known or {})
        self.summary = Summary()  # counts per state, kept by every change below
        self.resumed_at = 0.0  # the last reconnect after a lost broker (``resume``)

    def host(self, site: str, host: str) -> Host:
        h = self.hosts.get((site, host))
        if h is None:
            h = self.hosts[(site, host)] = Host(site, host)
        return h

    # --- messages ----------------------------------------------------------------------
    def apply(
        self,
        site: str,
        host: str,
        kind: Kind,
        doc: dict[str, Any] | None,
        now: float,
        retained: bool = False,
        topic_id: str = "",
    ) -> list[Transition]:
        """Apply one validated message (``doc`` None: a cleared retained group/component).

        ``now`` is when it arrived. A retained message counts as heard at its own ``ts``
        (never later than ``now``), so a stale retained health found at start is seen as
        stale at once; a live message counts as heard when it arrived.
        """
        h = self.host(site, host)
        out: list[Transition] = []
        if doc is not None:
            heard = min(doc["ts"], now) if retained else now
            if kind != Kind.STATUS or doc["state"] == "online":
                h.last_heard = max(h.last_heard, heard)
        if kind == Kind.STATUS:
            assert doc is not None
            out += self._status(h, doc, now, retained)
        elif kind == Kind.HEALTH:
            assert doc is not None
            out += self._health(h, doc, now, retained)
        elif kind == Kind.GROUP:
            if doc is None:
                gid = next((g for g in h.groups if id_topic(g) == topic_id), topic_id)
                out += self._group_gone(h, gid, now)
            else:
                out += self._group(h, _strip(doc), now)
        elif kind == Kind.COMPONENT:
            if doc is None:
                cid = next((c for c in h.components if id_topic(c) == topic_id), topic_id)
                h.components.pop(cid, None)
            else:
                h.components[doc["id"]] = _strip(doc)
        if doc is not None:
            h.max_seq = max(h.max_seq, doc["seq"])
            # any message from a host that missed its heartbeats brings it back
            if h.online is False and h.offline_cause == MISSED_HEARTBEATS and kind != Kind.STATUS:
                h.online = True
                h.offline_cause, h.offline_since = "", None
                out += self._host_state(h, now, "online")
        self.summary.update(h)
        return out

    def _status(self, h: Host, doc: dict[str, Any], now: float, retained: bool) -> list[Transition]:
        h.version = doc["version"]
        if doc["state"] == "online":
            h.online, h.offline_cause, h.offline_since = True, "", None
            return self._host_state(h, now, "online")
        # offline: a clean stop is built when it is sent (a seq above everything before it);
        # the Last Will was built at connect time, so its seq is older than what followed
        if retained:
            cause = RETAINED_OFFLINE
        elif doc["seq"] > h.max_seq:
            cause = CLEAN_STOP
        else:
            cause = LAST_WILL
        h.online, h.offline_cause, h.offline_since = False, cause, now
        return self._host_state(h, now, cause)

    def _health(self, h: Host, doc: dict[str, Any], now: float, retained: bool) -> list[Transition]:
        h.health = _strip(doc)
        if h.online is None and not retained:
            h.online = True  # a live health proves the agent is there, status or not
        out: list[Transition] = []
        seen = set()
        for g in doc["groups"]:
            seen.add(g["id"])
            out += self._group(h, g, now)
        for gid in [g for g in h.groups if g not in seen]:
            out += self._group_gone(h, gid, now)
        h.components = {c["id"]: c for c in doc["components"]}
        return out + self._host_state(h, now, "state")

    def _group(self, h: Host, g: dict[str, Any], now: float) -> list[Transition]:
        h.groups[g["id"]] = g
        return self._record(h, "group", g["id"], g["state"], now, g["reason"], "state", g)

    def _group_gone(self, h: Host, gid: str, now: float) -> list[Transition]:
        g = h.groups.pop(gid, None)
        return self._record(h, "group", gid, None, now, "gone", "gone", g)

    def _host_state(self, h: Host, now: float, cause: str) -> list[Transition]:
        state = h.state
        if state is None:
            return []
        reason = OFFLINE_CAUSES.get(h.offline_cause, "") if state == OFFLINE else ""
        return self._record(h, "host", h.host, state, now, reason, cause, None)

    def _record(
        self,
        h: Host,
        scope: str,
        sid: str,
        state: str | None,
        now: float,
        reason: str,
        cause: str,
        group: Mapping[str, Any] | None,
    ) -> list[Transition]:
        key = (h.site, h.host, scope, sid)
        before = self.reported.get(key)
        if before == state:
            return []
        if state is None and key not in self.reported:
            return []
        self.reported[key] = state
        return [
            Transition(
                ts=now,
                site=h.site,
                host=h.host,
                scope=scope,
                id=sid,
                from_state=before,
                to_state=state,
                reason=reason,
                cause=cause,
                kind=group["kind"] if group else "",
                margin=group["margin"] if group else None,
            )
        ]

    # --- time ----------------------------------------------------------------------------
    def resume(self, now: float) -> None:
        """The service hears the broker again after losing it: no host counts as silent for
        the time the service could not listen, so each gets ``heartbeat_timeout`` from
        ``now`` to be heard (its Last Will, if it died meanwhile, is among the retained
        messages that come first). Not at the first connect: a stale retained health
        found at start is stale at once."""
        self.resumed_at = now

    def tick(self, now: float) -> list[Transition]:
        """Mark offline every online host not heard for ``heartbeat_timeout`` seconds (since
        the last ``resume``, if later). Call it only while the broker is connected."""
        out: list[Transition] = []
        since = self.resumed_at
        for h in self.hosts.values():
            if (
                h.online is not False
                and h.last_heard
                and now - max(h.last_heard, since) > self.heartbeat_timeout
            ):
                h.online, h.offline_cause, h.offline_since = False, MISSED_HEARTBEATS, now
                out += self._host_state(h, now, MISSED_HEARTBEATS)
                self.summary.update(h)
        return out

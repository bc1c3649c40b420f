"""Readings -> ComponentHealth -> GroupStatus -> HostHealth.

Pure and deterministic: no I/O, no clock (``time`` only formats the times passed in). Time is passed in, so every rule here is
tested without sleeping. ``Evaluator`` keeps the per-component debounce state between
polls; everything else is a function of its arguments.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from collectors.base import GroupSpec, Reading, Snapshot, State

from .model import CollectorStatus, ComponentHealth, GroupState, GroupStatus, HostHealth, Role


@dataclass(frozen=True, slots=True)
class Policy:
    """How raw observations become reported component states.

    ``fall``: consecutive observations of a worse state before it is reported.
    ``rise``: consecutive OK observations before a recovery is reported.
    ``dwell``: seconds a new state must also have lasted (0: counts alone decide).
    ``stale_after``: a component not heard of for this long is UNKNOWN.
    """

    rise: int = 1
    fall: int = 1
    dwell: float = 0.0
    stale_after: float = 15.0


@dataclass(frozen=True, slots=True)
class Tracker:
    """Debounce state of one component."""

    reported: State
    since: float
    candidate: State | None = None
    count: int = 0
    candidate_since: float = 0.0


def step(tracker: Tracker | None, observed: State, now: float, policy: Policy) -> Tracker:
    """Advance one component's debounce by one observation.

    The first observation is reported at once: there is nothing to debounce against.
    """
    if tracker is None:
        return Tracker(reported=observed, since=now)
    if observed == tracker.reported:
        if tracker.candidate is None:
            return tracker  # unchanged (frozen): the evaluator's cache keys on identity
        return Tracker(reported=tracker.reported, since=tracker.since)
    if observed == tracker.candidate:
        count, started = tracker.count + 1, tracker.candidate_since
    else:
        count, started = 1, now
    needed = policy.rise if observed == State.OK else policy.fall
    if count >= needed and now - started >= policy.dwell:
        return Tracker(reported=observed, since=now)
    return Tracker(tracker.reported, tracker.since, observed, count, started)


def judge(slots: int, required: int, healthy: int, unknown: int) -> GroupState:
    """The group verdict from counts. UNKNOWN only when the unknown members could change it."""

    def verdict(serving: int) -> GroupState:
        if serving >= slots:
            return GroupState.REDUNDANT
        if serving >= required:
            return GroupState.DEGRADED
        return GroupState.FAILED

    worst, best = verdict(healthy), verdict(healthy + unknown)
    return worst if worst == best else GroupState.UNKNOWN


def group_status(spec: GroupSpec, health: Mapping[str, ComponentHealth]) -> GroupStatus:
    """Evaluate one redundancy group against the members' health.

    A member with no health at all counts as unknown; slots beyond the listed members
    count as lost. Counts are capped at the number of slots, so a failed member that
    was already replaced (more members than slots) does not inflate the group.
    """
    slots = spec.slots
    states = [health[m].state if m in health else State.UNKNOWN for m in spec.members]
    healthy = min(slots, sum(1 for s in states if s.serving))
    unknown = min(slots - healthy, sum(1 for s in states if s == State.UNKNOWN))
    state = judge(slots, spec.required, healthy, unknown)
    reason = _reason(spec, states, healthy)
    stated = GroupState(spec.stated.value) if spec.stated is not None else None
    if stated is not None:
        state = max(state, stated, key=lambda s: s.severity)
        reason = f"{reason}; the device says: {spec.stated_reason or stated}"
    return GroupStatus(
        id=spec.id,
        kind=spec.kind,
        state=state,
        required=spec.required,
        total=slots,
        healthy=healthy,
        unknown=unknown,
        members=spec.members,
        spares=spec.spares,
        detail=spec.detail,
        reason=reason,
        stated=stated,
    )


def _reason(spec: GroupSpec, states: list[State], healthy: int) -> str:
    lost = [f"{m} {s}" for m, s in zip(spec.members, states, strict=True) if not s.serving]
    empty = spec.slots - len(spec.members)
    if empty > 0:
        lost.append(f"{empty} slot{'s' if empty > 1 else ''} empty")
    text = f"{healthy} of {spec.slots} serving, {spec.required} required"
    return f"{text}: {', '.join(lost)}" if lost else text


_DEVICE_SEVERITY = {State.WARNING: 1, State.FAILED: 2}


def share_device_health(
    components: Mapping[str, ComponentHealth],
    devices: Mapping[str, str],
    judges: Iterable[str] = (),
) -> dict[str, ComponentHealth]:
    """Components on a disk take the worst WARNING or FAILED a whole-disk judge gives it.

    ``devices`` maps component ids to the disk they live on (``Reading.device``);
    ``judges`` are the components that judge a whole disk (``Reading.whole_disk``: SMART).
    A SMART FAILED on ``sdb`` thus makes ``md/md0/sdb1`` FAILED, with both reasons, so a
    failing drive counts against its array. Only a judge spreads (an md member kicked out
    says nothing about a ZFS partition on the same disk); only WARNING and FAILED spread
    (an unknown judge says nothing); a component is never made better, and an unknown or
    absent one stays so.
    """
    judges = set(judges)
    worst: dict[str, ComponentHealth] = {}
    for cid in judges:
        c, disk = components.get(cid), devices.get(cid)
        if c is None or not disk or c.state not in _DEVICE_SEVERITY:
            continue
        if disk not in worst or _DEVICE_SEVERITY[c.state] > _DEVICE_SEVERITY[worst[disk].state]:
            worst[disk] = c
    out = dict(components)
    for cid, disk in devices.items():
        c, bad = components.get(cid), worst.get(disk)
        if c is None or bad is None or cid in judges:
            continue
        if c.state.serving and (c.state == State.OK or bad.state == State.FAILED):
            out[cid] = replace(
                c,
                state=bad.state,
                since=max(c.since, bad.since),
                detail=f"{c.detail}; {bad.id} on the same disk: {bad.detail}".lstrip("; "),
            )
    return out


def host_state(groups: Iterable[GroupStatus]) -> GroupState:
    """The worst group state; a host without groups has nothing to lose: redundant."""
    return max(
        (g.state for g in groups),
        key=lambda s: s.severity,
        default=GroupState.REDUNDANT,
    )


def merge_groups(
    discovered: Iterable[GroupSpec], configured: Iterable[GroupSpec]
) -> tuple[GroupSpec, ...]:
    """Discovered groups overlaid with configured ones (same id: config wins).

    A configured group without members only overrides ``required`` of the discovered
    group of that id; one with members replaces or adds a group.
    """
    by_id = {g.id: g for g in discovered}
    for g in configured:
        base = by_id.get(g.id)
        if g.members or base is None:
            by_id[g.id] = g
        else:
            by_id[g.id] = replace(base, required=g.required)
    return tuple(sorted(by_id.values(), key=lambda g: g.id))


class Evaluator:
    """Holds the latest snapshot of every collector and the debounce state of every component.

    ``observe`` is called once per poll; ``evaluate`` any number of times. Both are
    deterministic functions of their arguments and the previous calls.
    """

    def __init__(self, policy: Policy, configured_groups: Iterable[GroupSpec] = ()) -> None:
        self.policy = policy
        self.configured_groups = tuple(configured_groups)
        self._snapshots: dict[str, Snapshot] = {}
        self._readings: dict[str, tuple[str, Reading]] = {}  # id -> (source, reading)
        self._trackers: dict[str, Tracker] = {}
        self._errors: dict[str, str] = {}  # source -> error of its last poll ("" when it worked)
        # An agent with many sources re-evaluates after every poll of any of them: what it
        # built for the others is kept, keyed on the identity of its (frozen) inputs.
        self._component_cache: dict[str, tuple[Reading, Tracker, ComponentHealth]] = {}
        self._group_cache: dict[str, tuple[GroupSpec, tuple[Any, ...], GroupStatus]] = {}

    def observe(self, source: str, snapshot: Snapshot, now: float) -> None:
        """Take one poll's result. Components the source no longer reports are forgotten."""
        self._errors[source] = ""
        old = self._snapshots.get(source)
        self._snapshots[source] = snapshot
        seen = {r.id for r in snapshot.readings}
        if old is not None:
            for r in old.readings:
                if r.id not in seen and self._readings.get(r.id, ("",))[0] == source:
                    del self._readings[r.id]
                    self._trackers.pop(r.id, None)
                    self._component_cache.pop(r.id, None)
        for r in snapshot.readings:
            self._readings[r.id] = (source, r)
            self._trackers[r.id] = step(self._trackers.get(r.id), r.state, now, self.policy)

    def fail(self, source: str, error: str, now: float) -> None:
        """A poll of ``source`` failed: its components become UNKNOWN (never FAILED)."""
        old = self._snapshots.get(source)
        if old is not None:
            unknown = tuple(
                replace(r, state=State.UNKNOWN, detail=f"no answer: {error}", value=None)
                for r in old.readings
            )
            self.observe(source, replace(old, readings=unknown), now)
        self._errors[source] = error

    def forget(self, source: str) -> None:
        """Drop a collector that no longer exists (after a reload)."""
        self.observe(source, Snapshot(), 0.0)
        del self._snapshots[source]
        del self._errors[source]

    def components(self, now: float) -> dict[str, ComponentHealth]:
        out: dict[str, ComponentHealth] = {}
        cache = self._component_cache
        for cid, (source, r) in self._readings.items():
            t = self._trackers[cid]
            state, since, detail = t.reported, t.since, r.detail
            age = now - r.observed_at
            stale = age > self.policy.stale_after
            hit = cache.get(cid)
            if hit is not None and hit[0] is r and hit[1] is t and not stale:
                out[cid] = hit[2]
                continue
            if stale:
                state, since = State.UNKNOWN, r.observed_at + self.policy.stale_after
                seen = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(r.observed_at))
                detail = f"stale: no reading since {seen}"
            elif t.candidate is not None and r.state != t.reported:
                detail = f"{detail} (now {r.state}, {t.count} observation(s), debouncing)"
            out[cid] = ComponentHealth(
                id=cid,
                kind=r.kind,
                state=state,
                since=since,
                observed_at=r.observed_at,
                detail=detail.strip(),
                value=r.value,
                unit=r.unit,
                source=source,
            )
            if not stale:
                cache[cid] = (r, t, out[cid])
        judges = [cid for cid, (_, r) in self._readings.items() if r.whole_disk]
        if not judges:  # no SMART readings: nothing to share, keep the cached objects
            return out
        devices = {cid: r.device for cid, (_, r) in self._readings.items() if r.device}
        return share_device_health(out, devices, judges)

    def _group_status(
        self, spec: GroupSpec, components: Mapping[str, ComponentHealth]
    ) -> GroupStatus:
        """``group_status``, again only when the spec or one of its members' health changed."""
        members = tuple(components.get(m) for m in spec.members)
        hit = self._group_cache.get(spec.id)
        if (
            hit is not None
            and hit[0] is spec
            and all(a is b for a, b in zip(hit[1], members, strict=True))
        ):
            return hit[2]
        status = group_status(spec, components)
        self._group_cache[spec.id] = (spec, members, status)
        return status

    def evaluate(self, site: str, host: str, now: float, role: Role = Role.NONE) -> HostHealth:
        components = self.components(now)
        discovered = (g for s in self._snapshots.values() for g in s.groups)
        specs = merge_groups(discovered, self.configured_groups)
        groups = tuple(self._group_status(spec, components) for spec in specs)
        if len(self._group_cache) > 2 * len(specs):  # groups that went away
            self._group_cache = {g.id: self._group_cache[g.id] for g in specs}
        return HostHealth(
            site=site,
            host=host,
            state=host_state(groups),
            role=role,
            generated_at=now,
            groups=groups,
            components=tuple(components[k] for k in sorted(components)),
            collectors=tuple(
                CollectorStatus(name, not error, error)
                for name, error in sorted(self._errors.items())
            ),
        )


@dataclass(frozen=True, slots=True)
class Transition:
    """A reported state change of a group, a component or the host."""

    scope: str  # "group" | "component" | "host"
    id: str
    old: str | None  # None: first seen
    new: str | None  # None: gone
    reason: str = ""


StateMap = dict[tuple[str, str], str]  # (scope, id) -> state, what was last reported
_HEALTHY = {
    "group": GroupState.REDUNDANT.value,
    "component": State.OK.value,
    "host": GroupState.REDUNDANT.value,
}


def state_map(h: HostHealth) -> StateMap:
    """The reported states of a HostHealth: what transitions are computed against."""
    out: StateMap = {("group", g.id): g.state.value for g in h.groups}
    out.update({("component", c.id): c.state.value for c in h.components})
    out[("host", h.host)] = h.state.value
    return out


def transitions(
    prev: StateMap | None, cur: HostHealth, now: StateMap | None = None
) -> list[Transition]:
    """What changed since ``prev``: groups, then components, then the host.

    ``prev`` is None on a first start (nothing reported before): then only what is not
    healthy is reported, so the first start of a healthy agent is quiet. A restarted
    agent passes the states it reported last, so a change while it was down is reported.
    ``now`` is ``state_map(cur)`` when the caller has it already.
    """
    now = state_map(cur) if now is None else now
    if prev == now:
        return []  # the common case after a poll: nothing to look up
    before = prev if prev is not None else {}
    reasons = {("group", g.id): g.reason for g in cur.groups}
    reasons.update({("component", c.id): c.detail for c in cur.components})
    out: list[Transition] = []
    for scope in ("group", "component", "host"):
        for key, state in now.items():
            if key[0] != scope or before.get(key) == state:
                continue
            if prev is None and state == _HEALTHY[scope]:
                continue
            out.append(Transition(scope, key[1], before.get(key), state, reasons.get(key, "")))
        out.extend(
            Transition(scope, key[1], state, None, "gone")
            for key, state in before.items()
            if key[0] == scope and key not in now
        )
    return out

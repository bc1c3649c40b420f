"""The policy engine: which states trigger which action, and when it may run.

Pure and deterministic: the caller passes the current facts and the time; the engine
answers with decisions (engage, release, pending, suppressed, ...), and is told when an
action it asked for has finished. Guard rails, all here:

* a condition must hold for the policy's ``hold_down`` before anything happens;
* ``cooldown`` seconds between two automatic actions of one policy;
* at most one action at a time across all policies (another one is ``suppressed: busy``);
* failback is manual by default (``failback_required`` once the condition cleared); with
  ``failback = "auto"`` it happens after the condition stayed clear for ``failback_after``;
* ``dry_run`` policies go through the same steps, but nothing is executed;
* never on UNKNOWN: a condition cannot name ``unknown`` (the config rejects it), and a
  fact that is unknown matches nothing.

Every decision is returned, so every decision is an event.
"""

from __future__ import annotations

import enum
import fnmatch
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

Facts = Mapping[tuple[str, str], str]  # (scope, id) -> state

SCOPES = ("group", "component", "host", "peer", "broker")
UNKNOWN = "unknown"


class Intent(enum.StrEnum):
    STEP_DOWN = "step_down"  # this host gives up its role (engaged by `hotspare demote`)
    PROMOTE = "promote"  # this host takes the role over (engaged by `hotspare promote`)
    REROUTE = "reroute"  # a path moves (bond), no role change


class Failback(enum.StrEnum):
    MANUAL = "manual"
    AUTO = "auto"


class Kind(enum.StrEnum):
    PENDING = "pending"  # the condition holds; waiting out the hold-down
    ENGAGE = "engage"  # run the action
    RELEASE = "release"  # undo it (failback)
    DRY_RUN = "dry_run"  # would engage/release; nothing executed
    SUPPRESSED = "suppressed"  # would act, but a guard rail says no (reason given)
    FAILBACK_REQUIRED = "failback_required"  # clear again; manual failback expected


@dataclass(frozen=True, slots=True)
class Condition:
    """``SCOPE[:ID-PATTERN]=STATE[|STATE...]``, e.g. ``group:power=degraded|failed``."""

    scope: str
    pattern: str
    states: frozenset[str]

    def match(self, facts: Facts) -> Trigger | None:
        for (scope, ident), state in sorted(facts.items()):
            if (
                scope == self.scope
                and state != UNKNOWN
                and state in self.states
                and fnmatch.fnmatchcase(ident, self.pattern)
            ):
                return Trigger(scope, ident, state)
        return None

    def unknown(self, facts: Facts) -> bool:
        """Some fact this condition looks at is unknown (so it cannot be called clear)."""
        return any(
            scope == self.scope and state == UNKNOWN and fnmatch.fnmatchcase(ident, self.pattern)
            for (scope, ident), state in facts.items()
        )

    def __str__(self) -> str:
        return f"{self.scope}:{self.pattern}={'|'.join(sorted(self.states))}"


def parse_condition(text: str) -> Condition:
    """Parse one condition; ValueError says what is wrong."""
    lhs, sep, rhs = text.partition("=")
    if not sep or not rhs:
        raise ValueError(f"expected SCOPE[:ID]=STATE[|STATE], got {text!r}")
    scope, _, pattern = lhs.strip().partition(":")
    if scope not in SCOPES:
        raise ValueError(
            f"unknown scope {scope!r} in {text!r}; expected one of {', '.join(SCOPES)}"
        )
    states = frozenset(s.strip() for s in rhs.split("|"))
    if "" in states:
        raise ValueError(f"empty state in {text!r}")
    if UNKNOWN in states:
        raise ValueError(f"{text!r}: no action ever fires on unknown")
    bad = states - VALID_STATES[scope]
    if bad:
        raise ValueError(
            f"{text!r}: {', '.join(sorted(bad))} is not a {scope} state; expected "
            f"{', '.join(sorted(VALID_STATES[scope]))}"
        )
    return Condition(scope, pattern.strip() or "*", states)


_GROUP = frozenset({"redundant", "degraded", "failed"})
VALID_STATES: dict[str, frozenset[str]] = {
    "group": _GROUP,
    "host": _GROUP,
    "component": frozenset({"ok", "warning", "failed", "absent"}),
    "peer": _GROUP | {"offline"},
    "broker": frozenset({"connected", "lost"}),
}


@dataclass(frozen=True, slots=True)
class Trigger:
    scope: str
    id: str
    state: str

    def __str__(self) -> str:
        return f"{self.scope} {self.id} {self.state}"


@dataclass(frozen=True, slots=True)
class PolicySpec:
    name: str
    when: tuple[Condition, ...]
    action: str  # executor kind
    intent: Intent = Intent.STEP_DOWN
    hold_down: float = 0.0
    cooldown: float = 60.0
    failback: Failback = Failback.MANUAL
    failback_after: float = 300.0
    dry_run: bool = False
    fence: str = "none"


@dataclass(frozen=True, slots=True)
class Decision:
    policy: str
    kind: Kind
    direction: str = ""  # "engage" | "release" for ENGAGE, RELEASE, DRY_RUN, SUPPRESSED
    trigger: Trigger | None = None
    reason: str = ""
    manual: bool = False

    @property
    def execute(self) -> bool:
        return self.kind in (Kind.ENGAGE, Kind.RELEASE)


@dataclass(slots=True)
class _State:
    pending_since: float | None = None
    engaged: bool = False
    trigger: Trigger | None = None
    clear_since: float | None = None
    last_action: float = -math.inf
    running: bool = False  # its action is executing
    note: str = ""  # the last repeated decision, so it is reported once, not every tick


@dataclass
class Engine:
    policies: tuple[PolicySpec, ...]
    busy: str | None = None  # the policy whose action is running
    _state: dict[str, _State] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._state = {p.name: _State() for p in self.policies}

    def engaged(self) -> list[str]:
        return [p.name for p in self.policies if self._state[p.name].engaged]

    def step(self, facts: Facts, now: float) -> list[Decision]:
        out: list[Decision] = []
        for p in self.policies:
            st = self._state[p.name]
            if st.running:
                continue
            trig = next((t for t in (c.match(facts) for c in p.when) if t is not None), None)
            if st.engaged:
                unsure = trig is None and any(c.unknown(facts) for c in p.when)
                out += self._engaged(p, st, trig, now, unsure)
            else:
                out += self._idle(p, st, trig, now)
        return out

    def _idle(self, p: PolicySpec, st: _State, trig: Trigger | None, now: float) -> list[Decision]:
        if trig is None:
            st.note = ""
            if st.pending_since is None:
                return []
            lasted = now - st.pending_since
            st.pending_since = None
            return [
                Decision(
                    p.name,
                    Kind.SUPPRESSED,
                    "engage",
                    None,
                    f"condition cleared after {lasted:.1f} s, before the hold-down of "
                    f"{p.hold_down:g} s",
                )
            ]
        out = []
        if st.pending_since is None:
            st.pending_since = now
            if p.hold_down > 0:
                out.append(
                    Decision(
                        p.name,
                        Kind.PENDING,
                        "engage",
                        trig,
                        f"{trig}: must persist for {p.hold_down:g} s",
                    )
                )
        if now - st.pending_since < p.hold_down:
            return out
        blocked = self._blocked(p, st, now)
        if blocked:
            return out + self._suppress(p, st, "engage", trig, blocked)
        return [*out, self._begin(p, st, "engage", trig, now, f"{trig}")]

    def _engaged(
        self, p: PolicySpec, st: _State, trig: Trigger | None, now: float, unsure: bool = False
    ) -> list[Decision]:
        """An engaged policy; ``unsure``: the condition is not met, but only because some of
        its facts are unknown: that is no recovery, so no failback (and no clear period)."""
        if trig is not None or unsure:
            st.clear_since = None
            if st.note.startswith("failback"):
                st.note = ""
            return []
        if st.clear_since is None:
            st.clear_since = now
        if p.failback == Failback.MANUAL:
            if st.note == "failback_required":
                return []
            st.note = "failback_required"
            return [
                Decision(
                    p.name,
                    Kind.FAILBACK_REQUIRED,
                    "release",
                    st.trigger,
                    "condition cleared; failback is manual (hotspare failback)",
                )
            ]
        if now - st.clear_since < p.failback_after:
            return []
        blocked = self._blocked(p, st, now)
        if blocked:
            return self._suppress(p, st, "release", None, blocked)
        return [
            self._begin(
                p,
                st,
                "release",
                None,
                now,
                f"condition clear for {now - st.clear_since:.1f} s (failback_after "
                f"{p.failback_after:g} s)",
            )
        ]

    def _blocked(self, p: PolicySpec, st: _State, now: float) -> str:
        if self.busy is not None:
            return f"busy: the action of policy {self.busy} is running"
        left = st.last_action + p.cooldown - now
        if left > 0:
            return f"cooldown: {left:.1f} s left of {p.cooldown:g} s"
        return ""

    def _suppress(
        self, p: PolicySpec, st: _State, direction: str, trig: Trigger | None, reason: str
    ) -> list[Decision]:
        key = reason.split(":")[0]
        if st.note == key:
            return []
        st.note = key
        return [Decision(p.name, Kind.SUPPRESSED, direction, trig, reason)]

    def _begin(
        self,
        p: PolicySpec,
        st: _State,
        direction: str,
        trig: Trigger | None,
        now: float,
        reason: str,
        manual: bool = False,
    ) -> Decision:
        st.note = ""
        st.last_action = now
        if direction == "engage":
            st.trigger = trig
        if p.dry_run:
            self._apply(st, direction, True)
            return Decision(p.name, Kind.DRY_RUN, direction, trig, reason, manual)
        self.busy = p.name
        st.running = True
        kind = Kind.ENGAGE if direction == "engage" else Kind.RELEASE
        return Decision(p.name, kind, direction, trig, reason, manual)

    @staticmethod
    def _apply(st: _State, direction: str, ok: bool) -> None:
        st.pending_since = None
        st.clear_since = None
        if direction == "engage":
            st.engaged = ok
        elif ok:
            st.engaged = False

    def finished(self, policy: str, direction: str, ok: bool, now: float) -> None:
        """The action asked for by an ENGAGE/RELEASE decision is done (``ok``: it worked).

        A failed engage leaves the policy idle: it re-arms, and the cooldown (counted from
        the end of the attempt) keeps a failing action from running in a loop.
        """
        if self.busy == policy:
            self.busy = None
        st = self._state[policy]
        st.last_action = now
        st.running = False
        self._apply(st, direction, ok)

    def command(self, verb: str, now: float, policy: str = "") -> list[Decision]:
        """An operator's command: promote, demote or failback (hold-down and cooldown waived).

        Picks the named policy, or the first whose intent fits the verb; one action at a time
        still holds.
        """
        intent = {"promote": Intent.PROMOTE, "demote": Intent.STEP_DOWN}.get(verb)
        want_engaged = verb == "failback"
        candidates = [
            p
            for p in self.policies
            if (not policy or p.name == policy)
            and (policy or want_engaged or p.intent == intent)
            and self._state[p.name].engaged == want_engaged
        ]
        name = policy or verb
        direction = "release" if want_engaged else "engage"
        if not candidates:
            what = "engaged" if want_engaged else "idle"
            return [
                Decision(
                    name, Kind.SUPPRESSED, direction, None, f"{verb}: no {what} policy fits", True
                )
            ]
        p = candidates[0]
        st = self._state[p.name]
        if self.busy is not None:
            return [
                Decision(
                    p.name,
                    Kind.SUPPRESSED,
                    direction,
                    None,
                    f"busy: the action of policy {self.busy} is running",
                    True,
                )
            ]
        trig = Trigger("command", verb, "requested")
        return [self._begin(p, st, direction, trig, now, f"operator command {verb}", manual=True)]

    def next_deadline(self, now: float) -> float | None:
        """When a decision may next fall due without a change of facts (for a timer)."""
        times: list[float] = []
        for p in self.policies:
            st = self._state[p.name]
            if st.running:
                continue
            if st.pending_since is not None and not st.engaged:
                times.append(max(st.pending_since + p.hold_down, st.last_action + p.cooldown))
            if st.engaged and st.clear_since is not None and p.failback == Failback.AUTO:
                times.append(max(st.clear_since + p.failback_after, st.last_action + p.cooldown))
        future = [t for t in times if t > now]
        return min(future) if future else None


def names(policies: Iterable[PolicySpec]) -> list[str]:
    return [p.name for p in policies]

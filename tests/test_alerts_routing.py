"""The alert state machine, driven by hand-built sequences of records and times.

Each case is a list of steps at given times: records in (``g`` a group state, ``off`` /
``on`` a host, ``act`` an action result), silences, and ``flush`` with exactly the
notifications expected at that moment, written as ``receiver: host/group=status``.
"""

from __future__ import annotations

import itertools
from dataclasses import replace

import pytest

from central.alerts.config import AlertsConfig, Route
from central.alerts.model import Notification, Silence, SilenceKind, Subject, Transition
from central.alerts.routing import Router

BASE = AlertsConfig(
    routes=(Route({}, ("ops",), False, ("site", "host"), 10.0, 60.0, 3600.0),),
    group_wait=10.0,
    group_interval=60.0,
    repeat_interval=3600.0,
    flap_threshold=4,
    flap_window=100.0,
    flap_quiet=100.0,
)


def route(receivers, *, cont=False, group_by=("site", "host"), **match) -> Route:
    matchers = {k: (v,) if isinstance(v, str) else tuple(v) for k, v in match.items()}
    return Route(matchers, tuple(receivers), cont, tuple(group_by), 10.0, 60.0, 3600.0)


KINDS = {"power": "power", "md/md0": "raid", "md/md1": "raid", "fans": "cooling"}


def record(step: tuple) -> Transition:
    t, what, host, *rest = step
    if what == "g":
        group, to = rest
        return Transition(Subject.GROUP, "dc1", host, group, KINDS[group], None, to, t, f"to {to}")
    if what in ("off", "on"):
        state = "offline" if what == "off" else "online"
        return Transition(Subject.HOST, "dc1", host, "", "", None, state, t)
    if what == "act":
        group, result = rest
        return Transition(Subject.ACTION, "dc1", host, group, KINDS[group], None, result, t)
    raise AssertionError(step)


def show(n: Notification) -> str:
    items = []
    for a in n.alerts:
        what = "flapping" if a.flapping else a.status.value
        items.append(f"{a.labels['host']}/{a.labels['group'] or 'host'}={what}")
    return f"{n.receiver}: {' '.join(items)}" + (" (repeat)" if n.repeat else "")


def run(config: AlertsConfig, steps: list[tuple]) -> list[tuple[float, list[str]]]:
    """Feed the steps; return (time, notifications) for every flush step."""
    router = Router(config)
    out = []
    for step in steps:
        t, what = step[0], step[1]
        if what == "flush":
            out.append((t, sorted(show(n) for n in router.flush(t))))
        elif what == "silence":
            router.add_silence(step[2], t, step[3], id=step[4] if len(step) > 4 else "")
        elif what == "maint":
            router.set_maintenance(step[2])
        elif what == "expire":
            router.expire_silence(step[2], t)
        else:
            router.observe(record(step), t)
    return out


def expected(steps: list[tuple]) -> list[tuple[float, list[str]]]:
    return [(s[0], sorted(s[2])) for s in steps if s[1] == "flush"]


CASES = {
    "degraded fires after group_wait, not before": (
        BASE,
        [
            (0, "g", "web-01", "power", "degraded"),
            (9, "flush", []),
            (10, "flush", ["ops: web-01/power=firing"]),
            (11, "flush", []),
        ],
    ),
    "a healthy group seen first is no alert": (
        BASE,
        [(0, "g", "web-01", "power", "redundant"), (10, "flush", []), (4000, "flush", [])],
    ),
    "repeat after repeat_interval, and only then": (
        BASE,
        [
            (0, "g", "web-01", "power", "degraded"),
            (10, "flush", ["ops: web-01/power=firing"]),
            (3609, "flush", []),
            (3610, "flush", ["ops: web-01/power=firing (repeat)"]),
        ],
    ),
    "return to redundant sends a resolve after group_interval": (
        BASE,
        [
            (0, "g", "web-01", "power", "degraded"),
            (10, "flush", ["ops: web-01/power=firing"]),
            (20, "g", "web-01", "power", "redundant"),
            (30, "flush", []),
            (70, "flush", ["ops: web-01/power=resolved"]),
            (5000, "flush", []),
        ],
    ),
    "a group that goes away resolves too": (
        BASE,
        [
            (0, "g", "web-01", "power", "failed"),
            (10, "flush", ["ops: web-01/power=firing"]),
            (20, "g", "web-01", "power", None),
            (70, "flush", ["ops: web-01/power=resolved"]),
        ],
    ),
    "fires and resolves within group_wait: nothing is sent": (
        BASE,
        [
            (0, "g", "web-01", "power", "degraded"),
            (5, "g", "web-01", "power", "redundant"),
            (10, "flush", []),
            (100, "flush", []),
        ],
    ),
    "dedupe: the same state again is no change": (
        BASE,
        [
            (0, "g", "web-01", "power", "degraded"),
            (10, "flush", ["ops: web-01/power=firing"]),
            (20, "g", "web-01", "power", "degraded"),
            (70, "flush", []),
        ],
    ),
    "escalation is sent at group_interval": (
        BASE,
        [
            (0, "g", "web-01", "power", "degraded"),
            (10, "flush", ["ops: web-01/power=firing"]),
            (20, "g", "web-01", "power", "failed"),
            (69, "flush", []),
            (70, "flush", ["ops: web-01/power=firing"]),
        ],
    ),
    "grouping: one host's groups together, another host apart": (
        BASE,
        [
            (0, "g", "web-01", "power", "degraded"),
            (3, "g", "web-01", "md/md0", "failed"),
            (5, "g", "web-02", "fans", "degraded"),
            (10, "flush", ["ops: web-01/md/md0=firing web-01/power=firing"]),
            (15, "flush", ["ops: web-02/fans=firing"]),
        ],
    ),
    "group_by site: the whole site in one notification": (
        replace(BASE, routes=(route(["ops"], group_by=("site",)),)),
        [
            (0, "g", "web-01", "power", "degraded"),
            (5, "g", "web-02", "fans", "degraded"),
            (10, "flush", ["ops: web-01/power=firing web-02/fans=firing"]),
            (20, "g", "web-03", "power", "failed"),
            (69, "flush", []),
            (
                70,
                "flush",
                ["ops: web-01/power=firing web-02/fans=firing web-03/power=firing"],
            ),
        ],
    ),
    "first match wins": (
        replace(BASE, routes=(route(["pager"], severity="critical"), route(["chat"]))),
        [
            (0, "g", "web-01", "power", "failed"),
            (0, "g", "web-02", "power", "degraded"),
            (10, "flush", ["pager: web-01/power=firing", "chat: web-02/power=firing"]),
        ],
    ),
    "continue adds the next matching route": (
        replace(
            BASE,
            routes=(route(["pager"], severity="critical", cont=True), route(["chat"])),
        ),
        [
            (0, "g", "web-01", "power", "failed"),
            (10, "flush", ["pager: web-01/power=firing", "chat: web-01/power=firing"]),
        ],
    ),
    "globs on host, kind and site": (
        replace(
            BASE,
            routes=(
                route(["dba"], host="db-*", kind="raid"),
                route(["other"], site=["dc2", "dc3"]),
            ),
            default_receivers=("catchall",),
        ),
        [
            (0, "g", "db-01", "md/md0", "failed"),
            (0, "g", "db-01", "power", "failed"),
            (10, "flush", ["dba: db-01/md/md0=firing", "catchall: db-01/power=firing"]),
        ],
    ),
    "escalation reaches the pager route too; the chat route stays": (
        replace(BASE, routes=(route(["pager"], severity="critical"), route(["chat"]))),
        [
            (0, "g", "web-01", "power", "degraded"),
            (10, "flush", ["chat: web-01/power=firing"]),
            (20, "g", "web-01", "power", "failed"),
            (30, "flush", ["pager: web-01/power=firing"]),
            (70, "flush", ["chat: web-01/power=firing"]),
            (80, "g", "web-01", "power", "redundant"),
            (
                140,
                "flush",
                ["pager: web-01/power=resolved", "chat: web-01/power=resolved"],
            ),
        ],
    ),
    "no route and no default receiver: nothing sent (counted as unrouted)": (
        replace(BASE, routes=(route(["dba"], host="db-*"),)),
        [(0, "g", "web-01", "power", "failed"), (10, "flush", []), (100, "flush", [])],
    ),
    "host offline then online": (
        BASE,
        [
            (0, "off", "web-01"),
            (10, "flush", ["ops: web-01/host=firing"]),
            (30, "on", "web-01"),
            (70, "flush", ["ops: web-01/host=resolved"]),
        ],
    ),
    "host online first seen is no alert": (BASE, [(0, "on", "web-01"), (10, "flush", [])]),
    "an offline host's group alerts are held back while it is offline": (
        BASE,
        [
            (0, "g", "web-01", "power", "degraded"),
            (1, "off", "web-01"),
            (10, "flush", ["ops: web-01/host=firing"]),
            (20, "g", "web-01", "fans", "failed"),
            (70, "flush", []),
            (100, "on", "web-01"),
            (
                160,
                "flush",
                ["ops: web-01/fans=firing web-01/power=firing web-01/host=resolved"],
            ),
        ],
    ),
    "a group alert already sent stays quiet while its host is offline": (
        BASE,
        [
            (0, "g", "web-01", "power", "degraded"),
            (10, "flush", ["ops: web-01/power=firing"]),
            (20, "off", "web-01"),
            (70, "flush", ["ops: web-01/host=firing"]),
            (80, "g", "web-01", "power", "redundant"),
            (140, "flush", []),
            (150, "on", "web-01"),
            (200, "flush", ["ops: web-01/power=resolved web-01/host=resolved"]),
        ],
    ),
    "a maintenance window is replaced when the history's windows change": (
        BASE,
        [
            (0, "maint", [Silence("maintenance:1", SilenceKind.MAINTENANCE, {}, 0.0, 1000.0)]),
            (5, "g", "web-01", "power", "degraded"),
            (15, "flush", []),
            (20, "maint", []),
            (20, "flush", ["ops: web-01/power=firing"]),
        ],
    ),
    "action results are sent once and never repeated": (
        BASE,
        [
            (0, "act", "web-01", "power", "failed"),
            (10, "flush", ["ops: web-01/power=firing"]),
            (5000, "flush", []),
        ],
    ),
    "flapping: more than K changes in T, one notification, then quiet until stable": (
        BASE,
        [
            (0, "g", "web-01", "power", "degraded"),
            (10, "flush", ["ops: web-01/power=firing"]),
            (11, "g", "web-01", "power", "redundant"),
            (12, "g", "web-01", "power", "degraded"),
            (13, "g", "web-01", "power", "redundant"),
            (14, "g", "web-01", "power", "degraded"),  # 5th change > 4: flapping
            (70, "flush", ["ops: web-01/power=flapping"]),
            (80, "g", "web-01", "power", "redundant"),
            (90, "g", "web-01", "power", "degraded"),
            (100, "g", "web-01", "power", "redundant"),
            (150, "flush", []),
            (199, "flush", []),
            (200, "flush", ["ops: web-01/power=resolved"]),  # 100 s without a change
        ],
    ),
    "flapping ends in the state it is in": (
        BASE,
        [
            (0, "g", "web-01", "power", "degraded"),
            (1, "g", "web-01", "power", "redundant"),
            (2, "g", "web-01", "power", "degraded"),
            (3, "g", "web-01", "power", "redundant"),
            (4, "g", "web-01", "power", "failed"),
            (10, "flush", ["ops: web-01/power=flapping"]),
            (104, "flush", ["ops: web-01/power=firing"]),
        ],
    ),
    "changes spread wider than the window are no flapping": (
        BASE,
        [
            (0, "g", "web-01", "power", "degraded"),
            (10, "flush", ["ops: web-01/power=firing"]),
            (40, "g", "web-01", "power", "redundant"),
            (100, "flush", ["ops: web-01/power=resolved"]),
            (140, "g", "web-01", "power", "degraded"),
            (150, "flush", ["ops: web-01/power=firing"]),
            (180, "g", "web-01", "power", "redundant"),
            (220, "g", "web-01", "power", "degraded"),
            (260, "g", "web-01", "power", "redundant"),
            (300, "flush", ["ops: web-01/power=resolved"]),
        ],
    ),
    "a silence keeps an alert out; once it ends the alert is sent": (
        BASE,
        [
            (0, "silence", {"host": ("web-*",)}, 50, "s1"),
            (0, "g", "web-01", "power", "degraded"),
            (0, "g", "db-01", "power", "degraded"),
            (10, "flush", ["ops: db-01/power=firing"]),
            (49, "flush", []),
            (50, "flush", ["ops: web-01/power=firing"]),
        ],
    ),
    "expiring a silence early": (
        BASE,
        [
            (0, "silence", {"group": ("power",)}, 1000, "s1"),
            (0, "g", "web-01", "power", "degraded"),
            (10, "flush", []),
            (20, "expire", "s1"),
            (20, "flush", ["ops: web-01/power=firing"]),
        ],
    ),
    "resolved while silenced: the resolve follows once the silence ends": (
        BASE,
        [
            (0, "g", "web-01", "power", "degraded"),
            (10, "flush", ["ops: web-01/power=firing"]),
            (20, "silence", {"host": ("web-01",)}, 200, "s1"),
            (30, "g", "web-01", "power", "redundant"),
            (100, "flush", []),
            (200, "flush", ["ops: web-01/power=resolved"]),
        ],
    ),
    "silence on severity only: the warning is kept out, the critical goes": (
        BASE,
        [
            (0, "silence", {"severity": ("warning",)}, 1000, "s1"),
            (0, "g", "web-01", "power", "degraded"),
            (0, "g", "web-01", "fans", "failed"),
            (10, "flush", ["ops: web-01/fans=firing"]),
        ],
    ),
    "a maintenance window (from the central history) suppresses like a silence": (
        BASE,
        [
            (
                0,
                "maint",
                [Silence("maintenance:1", SilenceKind.MAINTENANCE, {"site": ("dc1",)}, 0.0, 100.0)],
            ),
            (5, "g", "web-01", "power", "degraded"),
            (15, "flush", []),
            (99, "flush", []),
            (100, "flush", ["ops: web-01/power=firing"]),
        ],
    ),
    "fired and resolved inside a maintenance window: never sent": (
        BASE,
        [
            (0, "maint", [Silence("maintenance:w", SilenceKind.MAINTENANCE, {}, 0.0, 100.0)]),
            (5, "g", "web-01", "power", "degraded"),
            (15, "flush", []),
            (50, "g", "web-01", "power", "redundant"),
            (100, "flush", []),
            (200, "flush", []),
        ],
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_routing(name: str) -> None:
    config, steps = CASES[name]
    assert run(config, steps) == expected(steps)


def test_unrouted_is_counted_and_alert_still_listed() -> None:
    router = Router(replace(BASE, routes=(route(["dba"], host="db-*"),)))
    router.observe(record((0, "g", "web-01", "power", "failed")), 0)
    assert router.stats()["unrouted"] == 1
    assert [str(a.key) for a in router.alerts()] == ["dc1/web-01/group/power"]


def test_active_alerts_list_and_resolution() -> None:
    router = Router(BASE)
    router.observe(record((0, "g", "web-01", "power", "degraded")), 0)
    router.observe(record((1, "off", "web-02")), 1)
    alerts = router.alerts()
    assert [(a.labels["host"], a.labels["severity"], a.state) for a in alerts] == [
        ("web-01", "warning", "degraded"),
        ("web-02", "critical", "offline"),
    ]
    router.observe(record((2, "g", "web-01", "power", "redundant")), 2)
    assert [a.labels["host"] for a in router.alerts()] == ["web-02"]


def test_next_due_tracks_group_wait_interval_and_silences() -> None:
    router = Router(BASE)
    assert router.next_due(0) is None
    router.observe(record((0, "g", "web-01", "power", "degraded")), 0)
    assert router.next_due(0) == 10
    router.flush(10)
    assert router.next_due(10) == router.due_at == 3610  # unchanged: repeat_interval
    router.observe(record((15, "g", "web-01", "power", "failed")), 15)
    assert router.next_due(15) == router.due_at == 70  # changed: group_interval
    assert router.flush(69) == []
    router.add_silence({"host": ("x",)}, 20, 30)
    assert router.due_at == float("-inf")  # a silence forces the next flush to look
    assert router.next_due(11) == 20


def test_expire_unknown_silence_raises() -> None:
    with pytest.raises(KeyError):
        Router(BASE).expire_silence("nope", 0)


def test_severity_is_derived_from_the_state() -> None:
    sev = {
        (Subject.GROUP, "failed"): "critical",
        (Subject.GROUP, "degraded"): "warning",
        (Subject.GROUP, "unknown"): "info",
        (Subject.GROUP, "redundant"): "none",
        (Subject.GROUP, None): "none",
        (Subject.HOST, "offline"): "critical",
        (Subject.HOST, "online"): "none",
        (Subject.ACTION, "failed"): "critical",
        (Subject.ACTION, "succeeded"): "info",
    }
    for (subject, state), want in sev.items():
        t = Transition(subject, "dc1", "h", "g", "power", None, state, 0.0)
        assert t.severity.value == want, (subject, state)


# ---- invariants over random sequences -----------------------------------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

STATES = ["redundant", "degraded", "failed", "unknown", None]
steps_strategy = st.lists(
    st.tuples(
        st.sampled_from(["web-01", "db-01"]),
        st.sampled_from(["power", "md/md0", "host", "silence"]),
        st.sampled_from(STATES),
        st.floats(min_value=0, max_value=90),  # seconds until the next record
    ),
    max_size=40,
)
INVARIANT_CONFIG = replace(
    BASE,
    routes=(
        route(["pager"], severity="critical", cont=True),
        route(["dba"], host="db-*", kind="raid"),
        route(["chat"], severity=["warning", "critical"]),
    ),
    default_receivers=("catchall",),
)


@settings(max_examples=300, deadline=None)
@given(steps_strategy)
def test_every_fired_notification_is_resolved_once_all_is_well(steps) -> None:
    router = Router(INVARIANT_CONFIG)
    sent: dict[tuple[str, str], list[str]] = {}
    t = 0.0

    def flush() -> None:
        for n in router.flush(t):
            for a in n.alerts:
                sent.setdefault((n.receiver, str(a.key)), []).append(a.status.value)

    def feed(host: str, group: str, state: str | None) -> None:
        if group == "silence":  # silence the host for a while (how long: from the state)
            length = 30.0 * (STATES.index(state) + 1)
            router.add_silence({"host": (host,)}, t, t + length)
            return
        if group == "host":
            to = {"failed": "offline", "degraded": "offline"}.get(state or "", "online")
            router.observe(Transition(Subject.HOST, "dc1", host, "", "", None, to, t), t)
        else:
            rec = Transition(Subject.GROUP, "dc1", host, group, KINDS[group], None, state, t)
            router.observe(rec, t)

    for host, group, state, wait in steps:
        feed(host, group, state)
        t += wait
        flush()
    for host in ("web-01", "db-01"):  # everything heals
        for group in ("power", "md/md0", "host"):
            feed(host, group, "redundant")
    for _ in range(4):  # past silences, flap_quiet, group_interval and flap memory
        t += 200
        flush()

    assert router.alerts() == []
    for (receiver, key), statuses in sent.items():
        assert statuses[0] == "firing", (receiver, key, statuses)
        assert statuses[-1] == "resolved", (receiver, key, statuses)
        pairs = itertools.pairwise(statuses)
        assert all(not (a == b == "resolved") for a, b in pairs), (receiver, key, statuses)

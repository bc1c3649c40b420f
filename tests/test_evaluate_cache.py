"""The evaluator keeps what it built for sources that did not change; the results stay exact."""

from __future__ import annotations

from agent.evaluate import Evaluator, Policy, group_status
from collectors.base import GroupKind, GroupSpec, Kind, Reading, Snapshot, State


def psus(prefix: str, states: tuple[State, State], now: float) -> Snapshot:
    readings = tuple(
        Reading(f"{prefix}/psu/{i + 1}", Kind.PSU, s, now, f"PS{i + 1}: {s}")
        for i, s in enumerate(states)
    )
    group = GroupSpec(f"{prefix}/power", GroupKind.POWER, 1, tuple(r.id for r in readings))
    return Snapshot(readings, (group,))


def test_results_equal_an_uncached_evaluation_through_changes_and_staleness():
    ev = Evaluator(Policy(stale_after=15.0))
    ok = (State.OK, State.OK)
    for i in range(20):
        ev.observe(f"bmc{i:02d}", psus(f"bmc{i:02d}", ok, 100.0), 100.0)
    first = ev.evaluate("s", "h", 101.0)
    again = ev.evaluate("s", "h", 102.0)
    assert again.groups == first.groups  # nothing changed: the same statuses
    assert all(a is b for a, b in zip(first.groups, again.groups, strict=True))  # and reused

    # one source changes: only its group and components change
    ev.observe("bmc03", psus("bmc03", (State.OK, State.FAILED), 103.0), 103.0)
    h = ev.evaluate("s", "h", 104.0)
    by_id = {g.id: g for g in h.groups}
    assert by_id["bmc03/power"].state.value == "degraded"
    assert by_id["bmc03/power"].reason == "1 of 2 serving, 1 required: bmc03/psu/2 failed"
    assert all(g.state.value == "redundant" for gid, g in by_id.items() if gid != "bmc03/power")
    comps = {c.id: c for c in h.components}
    assert comps["bmc03/psu/2"].state == State.FAILED
    assert comps["bmc03/psu/2"].since == 103.0
    assert comps["bmc04/psu/2"].state == State.OK

    # each group equals group_status computed from scratch on the same components
    for g in h.groups:
        spec = next(s for src in ev._snapshots.values() for s in src.groups if s.id == g.id)
        assert group_status(spec, comps) == g

    # later, everything but bmc03 goes stale although its entries were cached
    ev.observe("bmc03", psus("bmc03", (State.OK, State.FAILED), 120.0), 120.0)
    late = ev.evaluate("s", "h", 121.0)
    states = {c.id: c.state for c in late.components}
    assert states["bmc04/psu/1"] == State.UNKNOWN
    assert states["bmc03/psu/2"] == State.FAILED
    assert {g.id: g.state.value for g in late.groups}["bmc04/power"] == "unknown"


def test_a_source_that_stops_reporting_a_component_loses_it():
    ev = Evaluator(Policy())
    ev.observe("a", psus("a", (State.OK, State.OK), 1.0), 1.0)
    ev.evaluate("s", "h", 1.0)
    one = Snapshot(
        (Reading("a/psu/1", Kind.PSU, State.OK, 2.0),),
        (GroupSpec("a/power", GroupKind.POWER, 1, ("a/psu/1",)),),
    )
    ev.observe("a", one, 2.0)
    h = ev.evaluate("s", "h", 2.0)
    assert [c.id for c in h.components] == ["a/psu/1"]
    assert h.groups[0].members == ("a/psu/1",)

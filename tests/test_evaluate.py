"""Readings -> ComponentHealth -> GroupStatus -> HostHealth: rules and invariants."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from agent.evaluate import (
    Evaluator,
    Policy,
    group_status,
    host_state,
    judge,
    merge_groups,
    state_map,
    step,
    transitions,
)
from agent.model import ComponentHealth, GroupState, GroupStatus
from collectors.base import GroupKind, GroupSpec, Kind, Reading, Snapshot, State, Verdict


def health(cid: str, state: State) -> ComponentHealth:
    return ComponentHealth(id=cid, kind=Kind.PSU, state=state, since=0.0, observed_at=0.0)


def spec(
    n: int, required: int, total: int | None = None, spares: tuple[str, ...] = ()
) -> GroupSpec:
    return GroupSpec(
        id="power",
        kind=GroupKind.POWER,
        required=required,
        members=tuple(f"psu/{i}" for i in range(n)),
        spares=spares,
        total=total,
    )


def evaluate(states: list[State], required: int, total: int | None = None) -> GroupStatus:
    s = spec(len(states), required, total)
    return group_status(s, {m: health(m, st_) for m, st_ in zip(s.members, states, strict=True)})


# --- concrete cases from the design ----------------------------------------------------


def test_psu_pair_with_one_out_is_degraded_with_margin_zero():
    g = evaluate([State.OK, State.FAILED], required=1)
    assert (g.state, g.healthy, g.total, g.margin) == (GroupState.DEGRADED, 1, 2, 0)
    assert "psu/1 failed" in g.reason


def test_raid6_of_six_with_one_out_is_degraded_with_margin_one():
    g = evaluate([State.OK] * 5 + [State.FAILED], required=4)
    assert (g.state, g.margin) == (GroupState.DEGRADED, 1)


def test_all_serving_is_redundant_and_warning_counts_as_serving():
    g = evaluate([State.OK, State.WARNING], required=1)
    assert (g.state, g.healthy, g.margin) == (GroupState.REDUNDANT, 2, 1)


def test_below_required_is_failed():
    g = evaluate([State.FAILED, State.FAILED], required=1)
    assert (g.state, g.margin) == (GroupState.FAILED, -1)


def test_unknown_member_that_could_change_the_verdict_makes_the_group_unknown():
    # one PSU failed, the other unknown: failed or degraded; we cannot tell
    assert evaluate([State.FAILED, State.UNKNOWN], required=1).state == GroupState.UNKNOWN
    # one unknown of a pair: redundant or degraded
    assert evaluate([State.OK, State.UNKNOWN], required=1).state == GroupState.UNKNOWN


def test_unknown_member_that_cannot_change_the_verdict_does_not_hide_it():
    # raid6 with one disk failed and one unknown: degraded either way
    g = evaluate([State.OK] * 4 + [State.FAILED, State.UNKNOWN], required=4)
    assert (g.state, g.healthy, g.unknown) == (GroupState.DEGRADED, 4, 1)


def test_empty_slots_count_as_lost_and_absent_members_too():
    g = evaluate([State.OK, State.OK], required=2, total=3)
    assert (g.state, g.total, g.margin) == (GroupState.DEGRADED, 3, 0)
    assert "1 slot empty" in g.reason
    assert evaluate([State.OK, State.ABSENT], required=1).state == GroupState.DEGRADED


def test_a_member_without_any_health_is_unknown():
    s = spec(2, 1)
    g = group_status(s, {"psu/0": health("psu/0", State.OK)})
    assert (g.state, g.unknown) == (GroupState.UNKNOWN, 1)


def test_spares_add_no_margin():
    s = spec(2, 1, spares=("psu/9",))
    hs = {m: health(m, State.OK) for m in (*s.members, "psu/9")}
    hs["psu/1"] = health("psu/1", State.FAILED)
    g = group_status(s, hs)
    assert (g.state, g.margin, g.spares) == (GroupState.DEGRADED, 0, ("psu/9",))


def test_more_members_than_slots_is_capped():
    # a faulty member still listed after its replacement was rebuilt: [2/2] plus one (F)
    g = evaluate([State.OK, State.OK, State.FAILED], required=1, total=2)
    assert (g.state, g.healthy, g.total) == (GroupState.REDUNDANT, 2, 2)


def test_host_state_is_the_worst_by_failed_degraded_unknown_redundant():
    def g(state):
        return GroupStatus("x", GroupKind.CUSTOM, state, 1, 2, 1, 0, ())

    assert host_state([]) == GroupState.REDUNDANT
    assert host_state([g(GroupState.UNKNOWN), g(GroupState.DEGRADED)]) == GroupState.DEGRADED
    assert host_state([g(GroupState.REDUNDANT), g(GroupState.UNKNOWN)]) == GroupState.UNKNOWN
    assert host_state([g(GroupState.DEGRADED), g(GroupState.FAILED)]) == GroupState.FAILED


def test_configured_group_overrides_required_or_adds_a_group():
    discovered = [spec(2, 1)]
    merged = merge_groups(discovered, [GroupSpec("power", GroupKind.CUSTOM, 2, ())])
    assert merged[0].required == 2 and merged[0].members == discovered[0].members
    custom = GroupSpec("uplinks", GroupKind.CUSTOM, 1, ("nic/a", "nic/b"))
    assert [g.id for g in merge_groups(discovered, [custom])] == ["power", "uplinks"]


# --- debounce ----------------------------------------------------------------------------


def test_debounce_fall_and_rise_counts():
    p = Policy(rise=2, fall=3)
    t = step(None, State.OK, 0, p)
    assert t.reported == State.OK  # the first observation is reported at once
    for i in range(1, 3):
        t = step(t, State.FAILED, i, p)
        assert t.reported == State.OK
    t = step(t, State.FAILED, 3, p)
    assert (t.reported, t.since) == (State.FAILED, 3)
    t = step(t, State.OK, 4, p)
    assert t.reported == State.FAILED
    t = step(t, State.OK, 5, p)
    assert (t.reported, t.since) == (State.OK, 5)


def test_debounce_an_interrupted_run_starts_over():
    p = Policy(fall=2)
    t = step(None, State.OK, 0, p)
    t = step(t, State.FAILED, 1, p)
    t = step(t, State.OK, 2, p)  # blip
    t = step(t, State.FAILED, 3, p)
    assert t.reported == State.OK
    assert step(t, State.FAILED, 4, p).reported == State.FAILED


def test_debounce_dwell_time():
    p = Policy(fall=1, dwell=10)
    t = step(None, State.OK, 0, p)
    t = step(t, State.FAILED, 100, p)
    assert t.reported == State.OK
    t = step(t, State.FAILED, 105, p)
    assert t.reported == State.OK
    assert step(t, State.FAILED, 110, p).reported == State.FAILED


# --- the evaluator: staleness, failures, transitions -------------------------------------


def _snap(now: float, *states: State) -> Snapshot:
    members = tuple(f"psu/{i}" for i in range(len(states)))
    return Snapshot(
        readings=tuple(Reading(m, Kind.PSU, s, now) for m, s in zip(members, states, strict=True)),
        groups=(GroupSpec("power", GroupKind.POWER, 1, members),),
    )


def test_stale_readings_become_unknown_never_failed():
    ev = Evaluator(Policy(stale_after=15))
    ev.observe("bmc", _snap(100, State.OK, State.FAILED), 100)
    h = ev.evaluate("dc1", "web-01", 110)
    assert h.groups[0].state == GroupState.DEGRADED
    h = ev.evaluate("dc1", "web-01", 116)
    assert {c.state for c in h.components} == {State.UNKNOWN}
    assert "stale" in h.components[0].detail
    assert h.groups[0].state == GroupState.UNKNOWN


def test_a_failed_poll_makes_components_unknown():
    ev = Evaluator(Policy())
    ev.observe("bmc", _snap(100, State.OK, State.OK), 100)
    ev.fail("bmc", "timed out after 10 s", 105)
    h = ev.evaluate("dc1", "web-01", 105)
    assert {c.state for c in h.components} == {State.UNKNOWN}
    assert h.components[0].detail == "no answer: timed out after 10 s"
    assert h.groups[0].state == GroupState.UNKNOWN


def test_components_a_source_no_longer_reports_are_forgotten():
    ev = Evaluator(Policy())
    ev.observe("bmc", _snap(100, State.OK, State.OK), 100)
    ev.observe("bmc", _snap(101, State.OK), 101)
    assert [c.id for c in ev.evaluate("dc1", "h", 101).components] == ["psu/0"]
    ev.forget("bmc")
    h = ev.evaluate("dc1", "h", 102)
    assert (h.groups, h.components) == ((), ())


def test_transitions_start_quiet_then_report_changes_in_order():
    ev = Evaluator(Policy())
    ev.observe("bmc", _snap(100, State.OK, State.OK), 100)
    first = ev.evaluate("dc1", "h", 100)
    assert transitions(None, first) == []
    ev.observe("bmc", _snap(101, State.OK, State.FAILED), 101)
    second = ev.evaluate("dc1", "h", 101)
    got = [(t.scope, t.id, t.old, t.new) for t in transitions(state_map(first), second)]
    assert got == [
        ("group", "power", GroupState.REDUNDANT, GroupState.DEGRADED),
        ("component", "psu/1", State.OK, State.FAILED),
        ("host", "h", GroupState.REDUNDANT, GroupState.DEGRADED),
    ]
    assert transitions(state_map(second), ev.evaluate("dc1", "h", 101.5)) == []


def test_a_restarted_agent_reports_what_changed_while_it_was_down():
    ev = Evaluator(Policy())
    ev.observe("bmc", _snap(100, State.OK, State.FAILED), 100)
    before_restart = state_map(ev.evaluate("dc1", "h", 100))
    fresh = Evaluator(Policy())
    fresh.observe("bmc", _snap(200, State.OK), 200)  # psu/1 was pulled and the pair repaired
    got = [
        (t.scope, t.id, t.old, t.new)
        for t in transitions(before_restart, fresh.evaluate("dc1", "h", 200))
    ]
    assert got == [
        ("group", "power", "degraded", "redundant"),
        ("component", "psu/1", "failed", None),
        ("host", "h", "degraded", "redundant"),
    ]


def test_an_unhealthy_start_is_reported():
    ev = Evaluator(Policy())
    ev.observe("bmc", _snap(100, State.OK, State.FAILED), 100)
    got = [(t.scope, t.old, t.new) for t in transitions(None, ev.evaluate("dc1", "h", 100))]
    assert got == [
        ("group", None, GroupState.DEGRADED),
        ("component", None, State.FAILED),
        ("host", None, GroupState.DEGRADED),
    ]


# --- properties -----------------------------------------------------------------------

member_states = st.lists(st.sampled_from(list(State)), min_size=0, max_size=12)


@st.composite
def groups(draw):
    states = draw(member_states)
    total = draw(st.one_of(st.none(), st.integers(len(states), len(states) + 3)))
    slots = len(states) if total is None else total
    required = draw(st.integers(0, max(slots, 0)))
    return states, required, total


@given(groups())
def test_never_failed_while_enough_members_serve(g):
    states, required, total = g
    status = evaluate(states, required, total)
    if status.healthy >= required:
        assert status.state != GroupState.FAILED
    assert status.margin == status.healthy - status.required
    assert 0 <= status.healthy + status.unknown <= status.total


@given(groups())
def test_unknown_never_becomes_failed(g):
    """Turning members unknown never produces FAILED where the known facts did not."""
    states, required, total = g
    known = evaluate(states, required, total)
    blurred = [State.UNKNOWN if s.serving else s for s in states]
    if known.state != GroupState.FAILED and any(s.serving for s in states):
        assert evaluate(blurred, required, total).state != GroupState.FAILED


@given(groups(), st.sampled_from([State.OK, State.WARNING]))
def test_adding_a_healthy_member_never_makes_a_group_worse(g, extra):
    states, required, total = g
    before = evaluate(states, required, total)
    after = evaluate([*states, extra], required, None if total is None else total + 1)
    assert after.margin >= before.margin
    if before.state == GroupState.REDUNDANT:
        assert after.state == GroupState.REDUNDANT
    if before.state != GroupState.FAILED:
        assert after.state != GroupState.FAILED


@given(groups(), st.integers(0, 11), st.sampled_from([State.FAILED, State.ABSENT]))
def test_losing_a_member_never_makes_a_group_better(g, index, lost):
    states, required, total = g
    if not states:
        return
    i = index % len(states)
    before = evaluate(states, required, total)
    after = evaluate([*states[:i], lost, *states[i + 1 :]], required, total)
    assert after.margin <= before.margin
    if before.state == GroupState.FAILED:
        assert after.state == GroupState.FAILED
    if after.state == GroupState.REDUNDANT:
        assert before.state == GroupState.REDUNDANT


@given(st.integers(0, 20), st.integers(0, 20), st.integers(0, 20), st.integers(0, 20))
def test_judge_agrees_with_its_bounds(slots, required, healthy, unknown):
    healthy = min(healthy, slots)
    unknown = min(unknown, slots - healthy)
    verdict = judge(slots, required, healthy, unknown)
    if verdict != GroupState.UNKNOWN:
        assert judge(slots, required, healthy + unknown, 0) == verdict
        assert judge(slots, required, healthy, 0) == verdict


@given(
    st.lists(st.sampled_from(list(State)), min_size=1, max_size=40),
    st.integers(1, 4),
    st.integers(1, 4),
)
def test_debounce_reports_only_states_that_held_long_enough(observations, rise, fall):
    p = Policy(rise=rise, fall=fall)
    t = None
    for i, obs in enumerate(observations):
        before = t.reported if t else None
        t = step(t, obs, float(i), p)
        if before is not None and t.reported != before:
            needed = rise if t.reported == State.OK else fall
            assert observations[i - needed + 1 : i + 1] == [t.reported] * needed


def test_a_device_stating_redundancy_lost_wins_over_healthy_counts_and_keeps_both_reasons():
    s = GroupSpec(
        "power",
        GroupKind.POWER,
        1,
        ("psu/0", "psu/1"),
        stated=Verdict.DEGRADED,
        stated_reason="PS Redundancy: Redundancy Lost",
    )
    g = group_status(s, {m: health(m, State.OK) for m in s.members})
    assert (g.state, g.margin, g.stated) == (GroupState.DEGRADED, 0, GroupState.DEGRADED)
    assert g.reason == "2 of 2 serving, 1 required; the device says: PS Redundancy: Redundancy Lost"


def test_counts_worse_than_the_stated_verdict_win():
    s = GroupSpec("power", GroupKind.POWER, 1, ("psu/0", "psu/1"), stated=Verdict.REDUNDANT)
    g = group_status(
        s, {"psu/0": health("psu/0", State.FAILED), "psu/1": health("psu/1", State.FAILED)}
    )
    assert (g.state, g.margin) == (GroupState.FAILED, -1)
    s = GroupSpec("power", GroupKind.POWER, 1, ("psu/0", "psu/1"), stated=Verdict.FAILED)
    g = group_status(s, {m: health(m, State.UNKNOWN) for m in s.members})
    assert (g.state, g.margin) == (GroupState.FAILED, -1)  # a stated fact outranks unknown members


@given(groups(), st.sampled_from(list(Verdict)))
def test_a_stated_verdict_never_makes_a_group_better(g, verdict):
    states, required, total = g
    s = spec(len(states), required, total)
    hs = {m: health(m, x) for m, x in zip(s.members, states, strict=True)}
    counted = group_status(s, hs)
    stated = group_status(
        GroupSpec(s.id, s.kind, s.required, s.members, total=s.total, stated=verdict), hs
    )
    assert stated.state.severity >= counted.state.severity
    assert stated.margin <= counted.margin

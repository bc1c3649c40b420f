"""The JSON Schemas in docs/schemas/ are valid, closed, agree with the model's enums,
and accept exactly what agent/wire.py builds."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from jsonschema import Draft202012Validator

from agent import wire
from agent.evaluate import Evaluator, Policy, Transition
from agent.model import (
    SCHEMA_VERSION,
    CollectorStatus,
    ComponentHealth,
    GroupState,
    GroupStatus,
    HostHealth,
    Role,
)
from collectors.base import GroupKind, GroupSpec, Kind, Reading, Snapshot, State
from tests.schemas import BASE_ID, NAMES, PAYLOADS, path, registry, schema, validate, validator

NOW = 1_732_550_400.123456
SITE, HOST = "dc1", "db-1"


# --- hand-built model objects -----------------------------------------------------------
def comp(
    cid: str,
    state: State = State.OK,
    kind: Kind = Kind.PSU,
    value: float | None = None,
    unit: str | None = None,
) -> ComponentHealth:
    return ComponentHealth(
        id=cid,
        kind=kind,
        state=state,
        since=NOW - 3600.5,
        observed_at=NOW - 1.25,
        detail="" if state == State.OK else f"source says {state}",
        value=value,
        unit=unit,
        source="ipmi",
    )


# (state, healthy, unknown) of a 1+1 PSU pair: the counts that give each verdict
PSU_PAIR = {
    GroupState.REDUNDANT: (2, 0),
    GroupState.DEGRADED: (1, 0),
    GroupState.FAILED: (0, 0),
    GroupState.UNKNOWN: (1, 1),
}


def psu_pair(state: GroupState) -> GroupStatus:
    healthy, unknown = PSU_PAIR[state]
    return GroupStatus(
        id="power",
        kind=GroupKind.POWER,
        state=state,
        required=1,
        total=2,
        healthy=healthy,
        unknown=unknown,
        members=("psu/1", "psu/2"),
        reason=f"{healthy} of 2 serving, 1 required",
    )


RAID_WITH_SPARE = GroupStatus(
    id="md/md0",
    kind=GroupKind.RAID,
    state=GroupState.DEGRADED,
    required=1,
    total=2,
    healthy=1,
    unknown=0,
    members=("md/md0/sda1", "md/md0/sdb1"),
    spares=("md/md0/sdc1",),  # rebuilding: adds no margin until in sync
    detail="raid1, recovery 12.6%",
    reason="1 of 2 serving, 1 required: md/md0/sdb1 failed",
)

COMPONENTS = (
    comp("fan/1", kind=Kind.FAN, value=5400, unit="RPM"),
    comp("md/md0/sda1", kind=Kind.DISK),
    comp("md/md0/sdb1", State.FAILED, Kind.DISK),
    comp("md/md0/sdc1", State.OK, Kind.DISK),
    comp("psu/1", value=None, unit=None),
    comp("psu/2", State.UNKNOWN),
    comp("temp/cpu1", State.WARNING, Kind.TEMPERATURE, value=87.5, unit="degrees C"),
)


COLLECTORS = (
    CollectorStatus("ipmi", True),
    CollectorStatus("mdstat", False, "timed out after 10 s"),
)


def host(*groups: GroupStatus, state: GroupState | None = None) -> HostHealth:
    worst = max((g.state for g in groups), key=lambda s: s.severity, default=GroupState.REDUNDANT)
    return HostHealth(
        site=SITE,
        host=HOST,
        state=state or worst,
        role=Role.NONE,
        generated_at=NOW,
        groups=groups,
        components=COMPONENTS,
        collectors=COLLECTORS,
    )


def roundtrip(payload: dict[str, Any]) -> dict[str, Any]:
    """What a subscriber receives: the payload through wire.encode and back."""
    return json.loads(wire.encode(payload))


def group_message(g: GroupStatus, seq: int = 7) -> dict[str, Any]:
    return roundtrip(wire.state_message(host(g), wire.group(g), seq, NOW))


def component_message(c: ComponentHealth, seq: int = 7) -> dict[str, Any]:
    return roundtrip(wire.state_message(host(), wire.component(c), seq, NOW))


def valid(name: str, payload: dict[str, Any]) -> bool:
    return validator(name).is_valid(payload)


# --- the schemas themselves ---------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_schema_is_valid_draft_2020_12(name: str) -> None:
    s = schema(name)
    assert s["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(s)


@pytest.mark.parametrize("name", NAMES)
def test_schema_id_is_its_file_name_under_one_base(name: str) -> None:
    assert schema(name)["$id"] == BASE_ID + path(name).name


def test_every_schema_file_is_known() -> None:
    on_disk = {p.name for p in path("common").parent.glob("*.json")}
    assert on_disk == {path(n).name for n in NAMES}


def _walk(node: Any, where: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every subschema, skipping the conditions (if, not), which must stay open."""
    if isinstance(node, dict):
        yield where, node
        for key, value in node.items():
            if key not in ("if", "not", "const", "enum"):
                yield from _walk(value, f"{where}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _walk(value, f"{where}/{i}")


@pytest.mark.parametrize("name", NAMES)
def test_every_object_is_closed(name: str) -> None:
    for where, sub in _walk(schema(name)):
        if sub.get("type") == "object":
            assert sub.get("additionalProperties") is False, f"{name}.schema.json{where}"
            assert set(sub["required"]) <= set(sub.get("properties", {})), where


@pytest.mark.parametrize("name", NAMES)
def test_every_ref_resolves_locally(name: str) -> None:
    resolver = registry().resolver(base_uri=schema(name)["$id"])
    refs = [sub["$ref"] for _, sub in _walk(schema(name)) if "$ref" in sub]
    assert refs or name == "common"
    for ref in refs:
        assert not ref.startswith(("http:", "https:")), ref  # relative to this directory
        resolver.lookup(ref)  # raises when it does not resolve


@pytest.mark.parametrize(
    ("definition", "enum"),
    [
        ("groupState", GroupState),
        ("componentState", State),
        ("groupKind", GroupKind),
        ("componentKind", Kind),
        ("role", Role),
    ],
)
def test_enums_match_the_model(definition: str, enum: Any) -> None:
    assert schema("common")["$defs"][definition]["enum"] == [e.value for e in enum]


def test_schema_version_matches_the_model() -> None:
    assert schema("common")["$defs"]["schema"]["const"] == SCHEMA_VERSION


# --- what wire.py builds is valid -----------------------------------------------------------
@pytest.mark.parametrize("state", ["online", "offline"])
def test_status(state: str) -> None:
    validate("status", wire.encode(wire.status(state, 1, NOW)))


@pytest.mark.parametrize("state", list(GroupState))
def test_health_for_every_group_state(state: GroupState) -> None:
    h = host(psu_pair(state), RAID_WITH_SPARE)
    payload = validate("health", wire.encode(wire.health(h, 42, NOW)))
    assert payload["groups"][0]["state"] == state.value
    assert payload["groups"][1]["spares"] == ["md/md0/sdc1"]
    assert [c["ok"] for c in payload["collectors"]] == [True, False]


def test_health_without_groups_or_components() -> None:
    h = HostHealth(SITE, HOST, GroupState.REDUNDANT, Role.PRIMARY, NOW, (), ())
    validate("health", wire.encode(wire.health(h, 0, NOW)))


@pytest.mark.parametrize("state", list(GroupState))
def test_group_message_for_every_state(state: GroupState) -> None:
    payload = group_message(psu_pair(state))
    validate("group", payload)
    healthy, _ = PSU_PAIR[state]
    assert payload["margin"] == healthy - 1


def test_group_message_with_spares() -> None:
    payload = validate("group", group_message(RAID_WITH_SPARE))
    assert payload["spares"] == ["md/md0/sdc1"]
    assert payload["margin"] == 0  # the spare adds nothing until it is a member in sync


@pytest.mark.parametrize("kind", list(GroupKind))
def test_group_message_for_every_kind(kind: GroupKind) -> None:
    g = GroupStatus("g", kind, GroupState.REDUNDANT, 1, 1, 1, 0, ("c",))
    validate("group", group_message(g))


@pytest.mark.parametrize("state", list(State))
def test_component_message_for_every_state(state: State) -> None:
    validate("component", component_message(comp("psu/1", state)))


@pytest.mark.parametrize("kind", list(Kind))
def test_component_message_for_every_kind(kind: Kind) -> None:
    validate("component", component_message(comp("x/1", kind=kind)))


@pytest.mark.parametrize(
    ("value", "unit"), [(None, None), (5400, "RPM"), (12.125, "V"), (-3.5, "degrees C")]
)
def test_component_value_and_unit(value: float | None, unit: str | None) -> None:
    payload = validate("component", component_message(comp("fan/1", value=value, unit=unit)))
    assert (payload["value"], payload["unit"]) == (value, unit)


TRANSITIONS = [
    Transition("group", "power", None, GroupState.DEGRADED, "1 of 2 serving, 1 required"),
    Transition("group", "power", GroupState.DEGRADED, GroupState.REDUNDANT, "2 of 2 serving"),
    Transition("group", "md/md0", GroupState.FAILED, None, "gone"),
    Transition("group", "md/md1", GroupState.REDUNDANT, GroupState.UNKNOWN, "1 unknown"),
    Transition("component", "psu/2", None, State.FAILED, "Power Supply AC lost"),
    Transition("component", "psu/2", State.FAILED, State.OK, ""),
    Transition("component", "md/md0/sdb1", State.ABSENT, None, "gone"),
    Transition("component", "fan/1", State.WARNING, State.UNKNOWN, "stale"),
    Transition("host", HOST, None, GroupState.DEGRADED),
    Transition("host", HOST, GroupState.DEGRADED, GroupState.FAILED),
    Transition("host", "db-old", GroupState.REDUNDANT, None, "gone"),  # renamed host
]


@pytest.mark.parametrize("t", TRANSITIONS, ids=lambda t: f"{t.scope}-{t.old}-{t.new}")
def test_transition_event(t: Transition) -> None:
    payload = validate("event", wire.encode(wire.transition_event(SITE, HOST, t, 9, NOW)))
    assert (payload["from"], payload["to"]) == (t.old, t.new)


@pytest.mark.parametrize("kind", ["started", "config_reloaded", "config_rejected"])
def test_agent_event(kind: str) -> None:
    event = wire.agent_event(SITE, HOST, kind, f"{kind}: something happened", 3, NOW)
    validate("event", wire.encode(event))


def test_everything_the_daemon_publishes_for_an_evaluated_host() -> None:
    """The real evaluation path: a group with a spare, a failed collector, a gone group."""
    ev = Evaluator(Policy(stale_after=30))
    disks = ("md/md0/sda1", "md/md0/sdb1", "md/md0/sdc1")
    states = (State.OK, State.FAILED, State.OK)
    readings = tuple(Reading(d, Kind.DISK, s, NOW - 2) for d, s in zip(disks, states, strict=True))
    md0 = GroupSpec("md/md0", GroupKind.RAID, 1, disks[:2], spares=disks[2:], detail="raid1")
    md1 = GroupSpec("md/md1", GroupKind.RAID, 1, ("md/md1/sdd1",))  # sdd1 unreported: unknown
    ev.observe("mdstat", Snapshot(readings, (md0, md1)), NOW - 2)
    ev.fail("ipmi", "no answer from the BMC", NOW - 1)  # never answered: no components
    before = ev.evaluate(SITE, HOST, NOW - 1)
    ev.observe("mdstat", Snapshot(readings, (md0,)), NOW)
    after = ev.evaluate(SITE, HOST, NOW)
    assert {g.state for g in before.groups} == {GroupState.DEGRADED, GroupState.UNKNOWN}
    seq = iter(range(1, 1000))
    for h in (before, after):
        validate("health", wire.encode(wire.health(h, next(seq), NOW)))
        for g in h.groups:
            validate("group", wire.encode(wire.state_message(h, wire.group(g), next(seq), NOW)))
        for c in h.components:
            body = wire.component(c)
            validate("component", wire.encode(wire.state_message(h, body, next(seq), NOW)))
    assert [(c.name, c.ok) for c in after.collectors] == [("ipmi", False), ("mdstat", True)]


MQTT_MD = Path(__file__).resolve().parent.parent / "docs" / "mqtt.md"
EXAMPLE = re.compile(r"<!-- example: (\w+) -->\n```json\n(.*?)\n```", re.DOTALL)


def test_the_examples_in_the_documentation_are_valid() -> None:
    examples = EXAMPLE.findall(MQTT_MD.read_text())
    assert {name for name, _ in examples} == set(PAYLOADS)
    for name, text in examples:
        validate(name, text)


def test_the_documentation_links_every_schema() -> None:
    text = MQTT_MD.read_text()
    for name in NAMES:
        assert f"](schemas/{path(name).name})" in text
        assert schema(name)["$id"] in text


def test_validate_accepts_str_and_returns_the_payload() -> None:
    raw = wire.encode(wire.status("online", 5, NOW)).decode()
    assert validate("status", raw)["seq"] == 5


def test_validator_is_cached() -> None:
    assert validator("health") is validator("health")


def test_unknown_schema_name() -> None:
    with pytest.raises(ValueError, match="no schema"):
        validator("nope")


# --- and what it does not build is rejected --------------------------------------------------
def samples() -> dict[str, dict[str, Any]]:
    """One valid payload per schema."""
    return {
        "status": roundtrip(wire.status("online", 1, NOW)),
        "health": roundtrip(wire.health(host(psu_pair(GroupState.DEGRADED)), 2, NOW)),
        "group": group_message(RAID_WITH_SPARE, 3),
        "component": component_message(COMPONENTS[0], 4),
        "event": roundtrip(wire.transition_event(SITE, HOST, TRANSITIONS[0], 5, NOW)),
        "agent event": roundtrip(wire.agent_event(SITE, HOST, "started", "started", 6, NOW)),
    }


def schema_of(sample: str) -> str:
    return "event" if sample == "agent event" else sample


SAMPLES = list(samples())


def test_every_payload_schema_has_a_sample() -> None:
    assert {schema_of(s) for s in SAMPLES} == set(PAYLOADS)


@pytest.mark.parametrize("sample", SAMPLES)
def test_samples_are_valid(sample: str) -> None:
    validate(schema_of(sample), samples()[sample])


@pytest.mark.parametrize("sample", SAMPLES)
def test_unknown_extra_field_is_rejected(sample: str) -> None:
    payload = {**samples()[sample], "extra": 1}
    with pytest.raises(jsonschema.ValidationError):
        validate(schema_of(sample), payload)


@pytest.mark.parametrize("sample", SAMPLES)
@pytest.mark.parametrize("field", ["schema", "ts", "seq"])
def test_missing_envelope_field_is_rejected(sample: str, field: str) -> None:
    payload = samples()[sample]
    del payload[field]
    assert not valid(schema_of(sample), payload)


@pytest.mark.parametrize("sample", SAMPLES)
@pytest.mark.parametrize(
    ("field", "value"),
    [("seq", -1), ("seq", 1.5), ("seq", "7"), ("schema", 2), ("ts", "now"), ("ts", None)],
)
def test_bad_envelope_is_rejected(sample: str, field: str, value: Any) -> None:
    payload = {**samples()[sample], field: value}
    assert not valid(schema_of(sample), payload)


@pytest.mark.parametrize(
    ("sample", "change"),
    [
        ("status", {"state": "up"}),
        ("health", {"state": "ok"}),
        ("health", {"role": "master"}),
        ("group", {"state": "ok"}),
        ("group", {"state": "Degraded"}),
        ("group", {"kind": "psu"}),
        ("component", {"state": "degraded"}),
        ("component", {"kind": "power"}),
        ("event", {"to": "ok"}),  # a group does not become "ok"
        ("event", {"from": "redundant", "scope": "component"}),
        ("event", {"to": "bogus"}),
        ("event", {"scope": "cluster"}),
        ("event", {"to": None}),  # nothing before and nothing after
        ("event", {"type": "promotion"}),
        ("agent event", {"type": "outbox_overflow"}),
        ("agent event", {"type": "transition"}),
    ],
)
def test_wrong_state_or_enum_is_rejected(sample: str, change: dict[str, Any]) -> None:
    assert not valid(schema_of(sample), {**samples()[sample], **change})


def test_agent_event_carries_no_transition_fields() -> None:
    payload = {**samples()["agent event"], "scope": "host"}
    assert not valid("event", payload)


def test_transition_carries_no_message() -> None:
    assert not valid("event", {**samples()["event"], "message": "hi"})


def test_wrong_nested_state_is_rejected() -> None:
    payload = samples()["health"]
    payload["components"][0]["state"] = "degraded"
    assert not valid("health", payload)
    payload = samples()["health"]
    payload["groups"][0]["extra"] = True
    assert not valid("health", payload)


@pytest.mark.parametrize(
    "collector",
    [
        {"name": "ipmi", "ok": True, "error": "timed out"},  # worked, yet an error
        {"name": "ipmi", "ok": False, "error": ""},  # failed without saying why
        {"name": "ipmi", "ok": "yes", "error": ""},
        {"name": "ipmi", "ok": True},
    ],
)
def test_inconsistent_collector_status_is_rejected(collector: dict[str, Any]) -> None:
    payload = samples()["health"]
    payload["collectors"] = [collector]
    assert not valid("health", payload)


@pytest.mark.parametrize("payload", [{}, [], "started", None, {"type": None}])
def test_event_that_is_neither_kind_is_rejected(payload: Any) -> None:
    assert not valid("event", payload)


def test_null_value_only_with_number() -> None:
    assert not valid("component", {**samples()["component"], "value": "5400"})


def test_cleared_retained_message_is_not_json() -> None:
    """A gone group or component is cleared with an empty payload: not a schema's business."""
    with pytest.raises(json.JSONDecodeError):
        validate("group", b"")

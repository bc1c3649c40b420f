"""Hardware RAID controllers: every recorded tool output against its ground truth, the
abnormal cases one by one, the group evaluation, and the collector's tool handling."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.evaluate import group_status
from agent.model import ComponentHealth, GroupState
from collectors import raidctl
from collectors.base import State, Verdict
from collectors.raid import arcconf, megacli, model, sasircu, ssacli, storcli
from collectors.raid.model import RaidError, Role
from collectors.tool import ToolMissing, ToolResult

FIXTURES = Path(__file__).parent / "fixtures" / "raidctl"
PARSERS = {
    "storcli_perccli_json": storcli,
    "megacli": megacli,
    "ssacli_hpacucli": ssacli,
    "arcconf": arcconf,
    "sas2ircu_sas3ircu": sasircu,
}
EXPECTED = json.loads((FIXTURES / "EXPECTED.json").read_text())["files"]
SAMPLES = sorted(
    f"{p.parent.name}/{p.name}" for folder in PARSERS for p in (FIXTURES / folder).iterdir()
)


def text(*names: str) -> str:
    return "\n".join((FIXTURES / n).read_text() for n in names)


def parse(*names: str) -> tuple[model.Controller, ...]:
    return PARSERS[names[0].split("/")[0]].parse(text(*names))


def evaluate(controllers, now: float = 0.0):
    """Groups evaluated against the readings as they are (no debounce): id -> GroupStatus."""
    snap = model.snapshot(controllers, now)
    health = {
        r.id: ComponentHealth(r.id, r.kind, r.state, now, now, r.detail, r.value, r.unit)
        for r in snap.readings
    }
    return {g.id: group_status(g, health) for g in snap.groups}, {r.id: r for r in snap.readings}


def test_every_fixture_has_ground_truth():
    assert set(SAMPLES) == set(EXPECTED), "a raidctl fixture without an EXPECTED.json entry"


@pytest.mark.parametrize("name", SAMPLES)
def test_fixture_parses_to_its_ground_truth(name):
    assert model.summary(parse(name)) == EXPECTED[name]


@pytest.mark.parametrize("name", SAMPLES)
def test_fixture_snapshot_ids_are_unique(name):
    snap = model.snapshot(parse(name), 0.0)
    ids = [r.id for r in snap.readings]
    assert len(ids) == len(set(ids))
    for g in snap.groups:
        assert set(g.members) <= set(ids) and set(g.spares) <= set(ids)


# --- the abnormal cases, each a test of its own ----------------------------------------------


def test_degraded_arcconf_raid1_missing_segment_is_a_degraded_group():
    groups, readings = evaluate(parse("arcconf/check_raid__86_arcconf-getconfig.out"))
    g = groups["raid/c1/vd0"]
    assert g.state == GroupState.DEGRADED and g.total == 2 and g.healthy == 1 and g.required == 1
    assert g.stated == GroupState.DEGRADED and "Degraded" in g.reason
    assert readings["raid/c1/pd/ld0-seg1"].state == State.FAILED  # the missing segment
    assert readings["raid/c1/pd/0,1"].state == State.FAILED  # the failed drive itself


def test_rebuilding_arcconf_raid10_shows_progress_and_no_margin_from_the_rebuilding_drive():
    names = ("arcconf/check_raid__issue47_getconfig2", "arcconf/check_raid__issue47_getstatus2")
    groups, readings = evaluate(parse(*names))
    g = groups["raid/c1/vd0"]
    assert g.state == GroupState.DEGRADED
    assert g.total == 4 and g.healthy == 3 and g.required == 3  # raid10 tolerates one loss
    assert "rebuild 1%" in g.detail
    rebuilding = readings["raid/c1/pd/0:3"]
    assert rebuilding.id in g.spares and rebuilding.value == 1.0 and rebuilding.unit == "%"


def test_offline_arcconf_spanned_volume_is_failed():
    groups, readings = evaluate(parse("arcconf/check_raid__issue90_c"))
    g = groups["raid/c1/vd0"]
    assert g.state == GroupState.FAILED and g.required == 6 and g.healthy == 5
    assert readings["raid/c1/pd/0:5"].state == State.FAILED
    assert "Defunct" in readings["raid/c1/pd/0:5"].detail


def test_interim_recovery_mode_is_degraded_on_the_controllers_word():
    groups, _ = evaluate(parse("ssacli_hpacucli/check_raid__hpacucli.interim_recovery_mode.show"))
    g = groups["raid/slot0/vd1"]
    assert g.state == GroupState.DEGRADED and g.members == ()
    assert "Interim Recovery Mode" in g.reason


def test_failed_array_fails_its_logical_drives_although_they_say_ok():
    groups, _ = evaluate(parse("ssacli_hpacucli/check_raid__issue98_logical.status"))
    assert groups["raid/slot1/vd2"].state == GroupState.FAILED
    assert "array B Failed" in groups["raid/slot1/vd2"].reason
    assert groups["raid/slot1/vd1"].state == GroupState.REDUNDANT


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("ssacli_hpacucli/netdata__ssacli-P400i-unassigned.txt", "Failed (Replace Batteries)"),
        ("ssacli_hpacucli/check_raid__PR193_ctrl-status", "Temporarily Disabled"),
        ("megacli/check_raid__issue39_batteries.bbustatus.3", "Non Operational"),
    ],
)
def test_failed_battery_or_disabled_cache_is_a_warning_of_the_controller(name, words):
    ctl = parse(name)[0]
    reading = model.controller_reading(ctl, 0.0)
    assert reading.state == State.WARNING and words in reading.detail


def test_healthy_battery_leaves_the_controller_ok():
    ctl = parse("megacli/check_raid__issue39_batteries.bbustatus.1")[0]
    assert model.controller_reading(ctl, 0.0).state == State.OK


def test_megacli_unconfigured_bad_drive_is_failed_but_in_no_group():
    names = ("megacli/check_raid__3_ldinfo", "megacli/check_raid__3_pdlist")
    groups, readings = evaluate(parse(*names))
    g = groups["raid/a0/vd0"]
    assert g.state == GroupState.REDUNDANT and g.total == 10 and g.required == 9
    assert readings["raid/a0/pd/15:10"].state == State.FAILED
    assert "raid/a0/pd/15:10" not in g.members + g.spares
    assert g.spares == ("raid/a0/pd/15:11",)  # the hot spare: no margin


def test_megacli_ldpdinfo_places_drives_under_their_virtual_drive():
    groups, readings = evaluate(parse("megacli/netdata__mega-phys-drives-info.txt"))
    g = groups["raid/a0/vd0"]
    assert len(g.members) == 8 and g.state == GroupState.REDUNDANT
    assert all(readings[m].device.startswith("megaraid,") for m in g.members)


def test_storcli_drive_group_membership_and_device_for_smart():
    groups, readings = evaluate(
        parse("storcli_perccli_json/canonical-phe__storcli__cALL_show_all.txt")
    )
    g = groups["raid/c0/vd239"]
    assert g.members == ("raid/c0/pd/251:1", "raid/c0/pd/251:2") and g.required == 1
    assert readings["raid/c0/pd/251:1"].device == "megaraid,0"


def _storcli_with(pd_states: dict[str, str], vd_state: str, topology_extra: int = 0) -> str:
    """The recorded M5015 document with drive/VD states changed (no degraded capture exists)."""
    doc = json.loads(text("storcli_perccli_json/netdata__storcli__megaraid-controllers-info.json"))
    data = doc["Controllers"][0]["Response Data"]
    data["VD LIST"][0]["State"] = vd_state
    for row in data["PD LIST"]:
        row["State"] = pd_states.get(row["EID:Slt"], row["State"])
    for _ in range(topology_extra):
        data["TOPOLOGY"].append(
            {"DG": 0, "Arr": 0, "Row": 9, "EID:Slot": "-", "Type": "DRIVE", "State": "Msng"}
        )
    return json.dumps(doc)


def test_storcli_degraded_raid6_with_one_offline_drive_keeps_margin_one():
    ctl = storcli.parse(_storcli_with({"252:0": "Offln"}, "Dgrd"))
    groups, _ = evaluate(ctl)
    g = groups["raid/c0/vd0"]
    assert g.state == GroupState.DEGRADED and g.required == 4 and g.healthy == 5
    assert g.healthy - g.required == 1


def test_storcli_hot_spare_adds_no_margin_until_it_has_taken_over():
    ctl = storcli.parse(_storcli_with({"252:0": "Rbld"}, "Dgrd"))
    groups, _ = evaluate(ctl)
    g = groups["raid/c0/vd0"]
    assert "raid/c0/pd/252:0" in g.spares and g.healthy == 5 and g.total == 6
    assert g.state == GroupState.DEGRADED
    ctl = storcli.parse(_storcli_with({}, "Optl"))
    assert evaluate(ctl)[0]["raid/c0/vd0"].state == GroupState.REDUNDANT


def test_storcli_missing_drive_counts_from_the_topology():
    doc = _storcli_with({}, "Pdgd", topology_extra=1)
    g = evaluate(storcli.parse(doc))[0]["raid/c0/vd0"]
    assert g.total == 7 and g.healthy == 6 and g.state == GroupState.DEGRADED


def test_storcli_no_controller_is_an_empty_answer_and_a_failure_an_error():
    assert (
        storcli.parse(
            text("storcli_perccli_json/canonical-phe__perccli__perccli_not_controller.json")
        )
        == ()
    )
    bad = {
        "Controllers": [{"Command Status": {"Status": "Failure", "Description": "Syntax error"}}]
    }
    with pytest.raises(RaidError, match="Syntax error"):
        storcli.parse(json.dumps(bad))
    with pytest.raises(RaidError):
        storcli.parse("not json")


@pytest.mark.parametrize(
    ("level", "slots", "required"),
    [
        ("raid0", 3, 3),
        ("raid1", 2, 1),
        ("raid1", 4, 3),
        ("raid10", 6, 5),
        ("raid5", 4, 3),
        ("raid6", 6, 4),
        ("raid60", 8, 6),
        ("raid1adm", 3, 1),
        ("spanned", 6, 6),
        ("weird", 3, 3),
    ],
)
def test_required_from_level(level, slots, required):
    assert model.required(level, slots) == required


def test_vendor_state_tables_cover_the_documented_words():
    assert storcli.VD_STATES["dgrd"] is Verdict.DEGRADED
    assert storcli.PD_STATES["ghs"] == (State.OK, Role.SPARE)
    assert megacli.PD_STATES["unconfigured(bad)"][0] is State.FAILED
    assert ssacli.LD_STATES["interim recovery mode"] is Verdict.DEGRADED
    assert arcconf.LD_STATES["offline"] is Verdict.FAILED
    assert sasircu.VOLUME_STATES["degraded"] is Verdict.DEGRADED


# --- the collector ---------------------------------------------------------------------------


class Replay:
    """Answers tool calls from recorded files, keyed by the first argument."""

    def __init__(self, answers: dict[str, str]):
        self.answers, self.calls = answers, []

    def __call__(self, argv, timeout):
        self.calls.append((tuple(argv), timeout))
        return ToolResult(tuple(argv), 0, text(self.answers[argv[1]]))


def test_collector_arcconf_asks_config_and_status_per_controller():
    run = Replay(
        {
            "GETCONFIG": "arcconf/check_raid__issue47_getconfig2",
            "GETSTATUS": "arcconf/check_raid__issue47_getstatus2",
        }
    )
    c = raidctl.create("raid", {"tool": "arcconf", "command_timeout": 7.0})
    c.run = run
    snap = c.collect(5.0)
    assert [a for a, _ in run.calls] == [
        ("arcconf", "GETCONFIG", "1", "AL"),
        ("arcconf", "GETSTATUS", "1"),
    ]
    assert all(t == 7.0 for _, t in run.calls)
    assert {g.id for g in snap.groups} == {"raid/c1/vd0"}


def test_collector_sas2ircu_lists_then_displays_each():
    run = Replay(
        {
            "LIST": "sas2ircu_sas3ircu/canonical-phe__sas2ircu__list.txt",
            "0": "sas2ircu_sas3ircu/canonical-phe__sas2ircu__display_has_volume.txt",
            "1": "sas2ircu_sas3ircu/canonical-phe__sas2ircu__display_no_volume.txt",
        }
    )
    c = raidctl.create("raid", {"tool": "sas2ircu", "path": "/usr/sbin/sas2ircu"})
    c.run = run
    snap = c.collect(0.0)
    assert [a for a, _ in run.calls][1:] == [
        ("/usr/sbin/sas2ircu", "0", "DISPLAY"),
        ("/usr/sbin/sas2ircu", "1", "DISPLAY"),
    ]
    assert [g.id for g in snap.groups] == ["raid/c0/vd286"]


def test_collector_missing_tool_is_not_applicable_once(caplog):
    def missing(argv, timeout):
        raise ToolMissing(f"{argv[0]}: not installed")

    c = raidctl.create("raid", {"tool": "storcli"})
    c.run = missing
    caplog.set_level("INFO")
    for now in range(3):
        assert c.collect(float(now)) == model.snapshot((), 0.0)
    said = [r.getMessage() for r in caplog.records if "not applicable" in r.getMessage()]
    assert said == ["collector raid: storcli64: not installed: not applicable on this host"]


def test_collector_empty_output_is_an_error_naming_the_command():
    c = raidctl.create("raid", {"tool": "ssacli"})
    c.run = lambda argv, timeout: ToolResult(tuple(argv), 1, "", "permission denied")
    with pytest.raises(Exception, match="ssacli ctrl all show config detail: no output"):
        c.collect(0.0)


def test_create_rejects_an_unknown_tool():
    with pytest.raises(ValueError, match="tool"):
        raidctl.create("raid", {"tool": "nope"})


@pytest.mark.parametrize("module", [megacli, ssacli, arcconf, sasircu, storcli])
def test_text_that_is_no_tool_output_is_a_raid_error(module):
    with pytest.raises(RaidError):
        module.parse("Segmentation fault\n")


@pytest.mark.parametrize("folder", sorted(PARSERS))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_damaged_outputs_parse_or_raise_raid_error(folder, data):
    """A recorded output cut short or with lines dropped never crashes a parser otherwise."""
    names = [n for n in SAMPLES if n.startswith(folder)]
    lines = text(data.draw(st.sampled_from(names))).splitlines()
    start = data.draw(st.integers(0, len(lines)))
    end = data.draw(st.integers(start, len(lines)))
    damaged = "\n".join(lines[:start] + lines[end:])
    with contextlib.suppress(RaidError):
        model.snapshot(PARSERS[folder].parse(damaged), 0.0)

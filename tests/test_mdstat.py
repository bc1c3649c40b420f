"""Tests of the md status collector: parser, readings and groups, collector I/O."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collectors import mdstat
from collectors.base import GroupKind, GroupSpec, Kind, Reading, Snapshot, State
from collectors.mdstat import (
    OPTIONS,
    MdArray,
    MdMember,
    Mdstat,
    MdstatCollector,
    MdstatError,
    MdSync,
    create,
    parse_mdstat,
    required_members,
    snapshot,
    to_dict,
)

FIXTURES = Path(__file__).parent / "fixtures" / "mdstat"
SAMPLES = sorted(FIXTURES.glob("*.txt"))
NOW = 1_700_000_000.0


def sample_text(name: str) -> str:
    return (FIXTURES / f"{name}.txt").read_text(encoding="utf-8")


def sample_snapshot(name: str) -> Snapshot:
    return snapshot(parse_mdstat(sample_text(name)), NOW)


def group(snap: Snapshot, group_id: str) -> GroupSpec:
    (found,) = [g for g in snap.groups if g.id == group_id]
    return found


def readings(snap: Snapshot) -> dict[str, Reading]:
    return {r.id: r for r in snap.readings}


# --- the parse against the hand-derived expected values ------------------------------------


def test_every_sample_has_expected_values():
    assert len(SAMPLES) == 29
    for sample in SAMPLES:
        assert sample.with_suffix(".expected.json").is_file(), sample.name


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.stem)
def test_parse_matches_expected(sample: Path):
    expected = json.loads(sample.with_suffix(".expected.json").read_text(encoding="utf-8"))
    expected.pop("_note", None)
    assert to_dict(parse_mdstat(sample.read_text(encoding="utf-8"))) == expected


def test_parse_gives_frozen_dataclasses():
    parsed = parse_mdstat(sample_text("check_raid__mdstat-failed"))
    (array,) = parsed.arrays
    assert parsed.personalities == ("raid6", "raid5", "raid4")
    assert array.members[0] == MdMember(dev="sdc1", slot=3, failed=True)
    assert array.failed_members == ("sdc1",)
    assert (array.raid_disks, array.active_disks, array.status) == (3, 2, "U_U")
    assert array.degraded is True and array.health == "degraded"
    with pytest.raises(AttributeError):
        array.name = "md1"  # type: ignore[misc]


def test_parse_sync_progress_and_pending():
    parsed = parse_mdstat(sample_text("check_raid__pr77"))
    delayed, check = (a.sync for a in parsed.arrays)
    assert delayed == MdSync(action="resync", pending="DELAYED")
    assert check == MdSync("check", 6.4, 1362112, 20971392, "3.3min", "97293K/sec")


def test_unknown_line_inside_a_block_is_tolerated():
    text = (
        "Personalities : [raid1]\n"
        "md0 : active raid1 sdb1[1] sda1[0]\n"
        "      1048512 blocks super 1.2 [2/2] [UU]\n"
        "      some future kernel line: 42\n"
        "\n"
        "unused devices: <none>\n"
    )
    (array,) = parse_mdstat(text).arrays
    assert (array.blocks, array.super, array.status) == (1048512, "1.2", "UU")


def test_prompt_lines_and_missing_unused_line_are_tolerated():
    text = "root@host:~# cat /proc/mdstat\nPersonalities : [raid1]\nmd0 : active raid1 sda[0]\n"
    (array,) = parse_mdstat(text).arrays
    assert array.members == (MdMember("sda", 0),)
    assert array.blocks is None


def test_raid10_layout_is_parsed():
    text = (
        "Personalities : [raid10]\n"
        "md0 : active raid10 sdd1[3] sdc1[2] sdb1[1] sda1[0]\n"
        "      1953260544 blocks super 1.2 512K chunks 2 near-copies [4/4] [UUUU]\n"
    )
    (array,) = parse_mdstat(text).arrays
    assert (array.chunk, array.layout, array.copies) == ("512K", "2 near-copies", 2)


# --- errors ------------------------------------------------------------------------------


def test_garbage_line_names_line_number_and_line():
    text = (
        "Personalities : [raid1]\n"
        "md0 : active raid1 sda1[0] sdb1[1]\n"
        "      100 blocks [2/2] [UU]\n"
        "\n"
        "this is not mdstat\n"
    )
    with pytest.raises(MdstatError, match=r"line 5: .*'this is not mdstat'") as caught:
        parse_mdstat(text)
    assert caught.value.number == 5
    assert caught.value.line == "this is not mdstat"
    assert isinstance(caught.value, ValueError)


def test_bad_device_entry_names_the_line():
    with pytest.raises(MdstatError, match=r"line 2: unrecognised device entry 'sdb1\[x\]'"):
        parse_mdstat("Personalities : [raid1]\nmd0 : active raid1 sda1[0] sdb1[x]\n")


def test_bad_personality_names_the_line():
    with pytest.raises(MdstatError, match=r"line 1: unrecognised personality"):
        parse_mdstat("Personalities : raid1\n")


@pytest.mark.parametrize("text", ["", "\n\n", "hello world\n", "md0 : active raid1 sda[0]\n"])
def test_text_without_personalities_line_is_rejected(text: str):
    with pytest.raises(MdstatError):
        parse_mdstat(text)


# --- readings and groups -----------------------------------------------------------------


def test_degraded_raid5_with_failed_member():
    snap = sample_snapshot("check_raid__mdstat-failed")
    md0 = group(snap, "md/md0")
    assert md0.kind is GroupKind.RAID
    assert (md0.required, md0.total) == (2, 3)
    assert set(md0.members) == {"md/md0/sdc1", "md/md0/sdb1", "md/md0/sdd1"}
    assert md0.spares == ()
    assert md0.detail == "raid5 [3/2] [U_U]"
    by_id = readings(snap)
    assert by_id["md/md0/sdc1"].state is State.FAILED
    assert by_id["md/md0/sdc1"].detail == "faulty (F) in /proc/mdstat"
    assert by_id["md/md0/sdb1"].state is State.OK
    assert by_id["md/md0/sdd1"].state is State.OK
    assert all(r.kind is Kind.DISK and r.observed_at == NOW for r in snap.readings)


def test_clean_raid6():
    snap = sample_snapshot("pymdstat__mdstat.06")
    md0 = group(snap, "md/md0")
    assert (md0.required, md0.total, len(md0.members), md0.spares) == (5, 7, 7, ())
    assert md0.detail == "raid6 [7/7] [UUUUUUU]"
    assert {r.state for r in snap.readings} == {State.OK}


def test_raid6_with_failed_member_from_composite_fixture():
    md7 = group(sample_snapshot("procfs__fixtures_proc_mdstat"), "md/md7")
    assert (md7.required, md7.total, len(md7.members)) == (2, 4, 4)


def test_recovery_in_composite_fixture_md6():
    snap = sample_snapshot("procfs__fixtures_proc_mdstat")
    md6 = group(snap, "md/md6")
    assert (md6.required, md6.total) == (1, 2)
    assert set(md6.members) == {"md/md6/sda2", "md/md6/sdb2"}
    # md6 is one of the composite fixture's oddities: recovery runs, yet its only
    # candidate for the rebuild, sdc, is marked (S) and no other active member is out
    # of sync (one active member, one U). So sdc is the whole of the spares; the
    # recovery progress is in the group detail.
    assert md6.spares == ("md/md6/sdc",)
    assert "recovery 8.5% (16775552/195310144) finish=17.0min" in md6.detail
    assert md6.detail.startswith("raid1 [2/1] [U_], recovery 8.5%")
    by_id = readings(snap)
    assert by_id["md/md6/sdb2"].state is State.FAILED
    assert by_id["md/md6/sda2"].state is State.OK
    assert (by_id["md/md6/sdc"].state, by_id["md/md6/sdc"].detail) == (State.OK, "hot spare")


def test_rebuilding_member_is_a_spare_until_in_sync():
    snap = sample_snapshot("check_raid__pr28_0")
    md0 = group(snap, "md/md0")
    assert md0.members == ("md/md0/sdb1",)
    assert md0.spares == ("md/md0/sda1",)
    assert (md0.required, md0.total) == (1, 2)
    assert md0.detail == (
        "raid1 [2/1] [_U], recovery 0.4% (1024/208704) finish=276.9min speed=12K/sec"
    )
    rebuilding = readings(snap)["md/md0/sda1"]
    assert rebuilding.state is State.OK
    assert rebuilding.detail == "rebuilding, recovery 0.4%"
    assert (rebuilding.value, rebuilding.unit) == (0.4, "%")


def test_readded_raid6_member_is_rebuilding():
    md0 = group(sample_snapshot("check_raid__issue43_mdstat-readd"), "md/md0")
    assert md0.spares == ("md/md0/sdc1",)
    assert (md0.required, md0.total, len(md0.members)) == (4, 6, 5)


def test_degraded_raid5_recovery_picks_device_beyond_slots():
    md127 = group(sample_snapshot("pymdstat__mdstat.05"), "md/md127")
    assert md127.spares == ("md/md127/sdh1",)
    assert len(md127.members) == 5


def test_missing_slot_has_no_reading():
    snap = sample_snapshot("pymdstat__mdstat.03")
    md0 = group(snap, "md/md0")
    assert (md0.total, len(md0.members), md0.required) == (4, 3, 3)
    assert len(snap.readings) == 3


def test_hot_spares():
    snap = sample_snapshot("check_raid__pr185_1")
    md2 = group(snap, "md/md2")
    assert md2.spares == ("md/md2/sdi", "md/md2/sdl")
    assert (md2.required, md2.total, len(md2.members)) == (4, 5, 5)
    assert readings(snap)["md/md2/sdi"].detail == "hot spare"


@pytest.mark.parametrize(
    ("sample", "array", "size"),
    [
        ("check_raid__mdstat-centos6.2", "md1", 2),
        ("pymdstat__mdstat.10", "md125", 6),
        ("procfs__fixtures_proc_mdstat", "md00", 1),
        ("procfs__fixtures_proc_mdstat", "md101", 3),
        ("check_raid__mdstat-linear", "md0", 2),
    ],
)
def test_raid0_and_linear_need_every_member(sample: str, array: str, size: int):
    found = group(sample_snapshot(sample), f"md/{array}")
    assert found.required == found.total == len(found.members) == size


def test_imsm_container_is_skipped():
    snap = sample_snapshot("check_raid__issue34")
    assert [g.id for g in snap.groups] == ["md/md127"]
    assert not [r for r in snap.readings if r.id.startswith("md/md0/")]
    md127 = group(snap, "md/md127")
    assert (md127.required, md127.total) == (1, 2)


def test_composite_fixture_groups():
    snap = sample_snapshot("procfs__fixtures_proc_mdstat")
    ids = [g.id for g in snap.groups]
    assert "md/md219" not in ids  # IMSM container
    assert "md/md126" in ids  # a raid0 inside a container is a real array
    assert len(ids) == 17


def test_device_listed_twice_is_reported_once():
    snap = sample_snapshot("procfs__fixtures_proc_mdstat")
    md3 = group(snap, "md/md3")
    assert md3.members.count("md/md3/sdd1") == 1
    assert md3.spares == ("md/md3/sdd2",)
    assert (md3.required, md3.total, len(md3.members)) == (6, 8, 8)


def test_failed_members_beyond_full_array():
    md9 = group(sample_snapshot("procfs__fixtures_proc_mdstat"), "md/md9")
    assert (md9.required, md9.total) == (1, 4)
    assert "md/md9/sde" in md9.members and "md/md9/sdf" in md9.members
    assert md9.spares == ("md/md9/sdg",)
    assert md9.detail == "raid1 [4/4] [UUUU], resync=DELAYED"


def test_read_only_in_group_detail():
    snap = sample_snapshot("procfs__fixtures_proc_mdstat")
    detail = group(snap, "md/md11").detail
    assert detail == "raid1 (auto-read-only) [2/2] [UU], resync=PENDING"
    assert group(snap, "md/md101").detail == "raid0 (read-only)"


def test_inactive_array_serves_nothing():
    snap = sample_snapshot("pymdstat__mdstat.08")
    md0 = group(snap, "md/md0")
    assert (md0.required, md0.total, len(md0.members)) == (3, 4, 3)
    assert md0.detail.startswith("inactive raid5")
    assert {r.state for r in snap.readings} == {State.FAILED}
    assert {r.detail for r in snap.readings} == {"array inactive"}


def test_inactive_array_without_level():
    snap = sample_snapshot("pymdstat__mdstat.09")
    md2 = group(snap, "md/md2")
    assert (md2.required, md2.total, len(md2.members), md2.spares) == (4, 4, 4, ())
    assert md2.detail == "inactive"
    assert all(r.state is State.FAILED for r in snap.readings if r.id.startswith("md/md2/"))


def test_inactive_array_with_failed_member_keeps_its_flag():
    by_id = readings(sample_snapshot("procfs__fixtures_proc_mdstat"))
    assert by_id["md/md4/sda3"].detail == "array inactive, faulty (F)"
    assert by_id["md/md4/sdb3"].state is State.FAILED


def test_empty_system_has_no_groups():
    assert snapshot(parse_mdstat(sample_text("check_raid__mdstat-none")), NOW) == Snapshot()


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.stem)
def test_snapshot_is_consistent(sample: Path):
    snap = snapshot(parse_mdstat(sample.read_text(encoding="utf-8")), NOW)
    ids = [r.id for r in snap.readings]
    assert len(ids) == len(set(ids))
    for found in snap.groups:
        assert found.kind is GroupKind.RAID
        assert 1 <= found.required <= found.slots
        assert not set(found.members) & set(found.spares)
        assert set(found.members) | set(found.spares) <= set(ids)


RAID10 = (
    "Personalities : [raid10]\n"
    "md0 : active raid10 sdd1[3] sdc1[2] sdb1[1] sda1[0]\n"
    "      1953260544 blocks super 1.2 {layout}[4/4] [UUUU]\n"
)


@pytest.mark.parametrize(
    ("layout", "required"),
    [
        ("512K chunks 2 near-copies ", 3),
        ("512K chunks 2 far-copies ", 3),
        ("512K chunks 2 offset-copies ", 3),
        ("3 near-copies ", 2),
        ("2 near-copies 2 far-copies ", 1),
        ("512K chunks ", 3),  # layout not shown: two copies
    ],
)
def test_raid10_required_follows_copies(layout: str, required: int):
    md0 = group(snapshot(parse_mdstat(RAID10.format(layout=layout)), NOW), "md/md0")
    assert (md0.required, md0.total) == (required, 4)
    assert md0.detail.startswith("raid10 ")


@pytest.mark.parametrize(
    ("level", "slots", "copies", "required"),
    [
        ("raid1", 2, None, 1),
        ("raid1", 8, None, 1),
        ("multipath", 2, None, 1),
        ("raid4", 5, None, 4),
        ("raid5", 3, None, 2),
        ("raid6", 4, None, 2),
        ("raid6", 8, None, 6),
        ("raid10", 4, None, 3),
        ("raid10", 6, 3, 4),
        ("raid10", 2, 2, 1),
        ("raid0", 3, None, 3),
        ("linear", 2, None, 2),
        (None, 3, None, 3),
        ("weird", 2, None, 2),
        ("raid1", 0, None, 1),
    ],
)
def test_required_members_table(level, slots, copies, required):
    assert required_members(level, slots, copies) == required


def test_write_mostly_journal_and_replacement():
    text = (
        "Personalities : [raid1] [raid5]\n"
        "md0 : active raid1 sdb1[1](W) sda1[0]\n"
        "      100 blocks super 1.2 [2/2] [UU]\n"
        "\n"
        "md1 : active raid5 nvme0n1[4](J) sdd[3](R) sdc[2] sdb[1] sda[0]\n"
        "      200 blocks super 1.2 level 5, 64k chunk, algorithm 2 [3/3] [UUU]\n"
        "      [=>...................]  recovery =  9.0% (9/100) finish=1.0min speed=1K/sec\n"
        "\n"
        "unused devices: <none>\n"
    )
    parsed = parse_mdstat(text)
    assert parsed.arrays[0].members[0] == MdMember("sdb1", 1, write_mostly=True)
    assert parsed.arrays[1].members[0] == MdMember("nvme0n1", 4, journal=True)
    assert parsed.arrays[1].members[1] == MdMember("sdd", 3, replacement=True)
    snap = snapshot(parsed, NOW)
    by_id = readings(snap)
    assert by_id["md/md0/sdb1"].detail == "in sync, write-mostly (W)"
    md1 = group(snap, "md/md1")
    assert md1.members == ("md/md1/sdc", "md/md1/sdb", "md/md1/sda")
    assert md1.spares == ("md/md1/sdd",)
    assert by_id["md/md1/sdd"].detail == "replacement (R), recovery 9.0%"
    assert by_id["md/md1/nvme0n1"].detail == "journal (J)"
    assert by_id["md/md1/nvme0n1"].state is State.OK


# --- the collector -----------------------------------------------------------------------


def test_missing_file_is_not_applicable(tmp_path: Path):
    collector = MdstatCollector("md", str(tmp_path / "absent"))
    assert collector.collect(NOW) == Snapshot()


def test_collect_reads_the_file(tmp_path: Path):
    path = tmp_path / "mdstat"
    path.write_bytes((FIXTURES / "check_raid__mdstat-failed.txt").read_bytes())
    expected = sample_snapshot("check_raid__mdstat-failed")
    assert MdstatCollector("md", str(path)).collect(NOW) == expected


def test_read_error_other_than_missing_file_raises(tmp_path: Path):
    with pytest.raises(IsADirectoryError):
        MdstatCollector("md", str(tmp_path)).collect(NOW)


def test_parse_error_raises_from_collect(tmp_path: Path):
    path = tmp_path / "mdstat"
    path.write_text("not md status\n", encoding="utf-8")
    with pytest.raises(MdstatError, match="line 1"):
        MdstatCollector("md", str(path)).collect(NOW)


def test_options_and_create():
    assert set(OPTIONS) == {"path"}
    assert OPTIONS["path"].type is str
    assert OPTIONS["path"].default == "/proc/mdstat"
    assert create("md", {}) == MdstatCollector("md", "/proc/mdstat")
    assert create("md", {"path": "/tmp/x"}).path == "/tmp/x"
    assert create("md", {}).name == "md"
    with pytest.raises(TypeError):
        create("md", {"path": 3})


def test_module_is_a_collector_factory():
    assert callable(mdstat.create) and isinstance(mdstat.OPTIONS, dict)


# --- properties --------------------------------------------------------------------------

_WITH_COUNTS = ("raid1", "raid4", "raid5", "raid6", "raid10", "multipath")
_LEVEL_NUMBER = {"raid4": 4, "raid5": 5, "raid6": 6}

devices = st.builds(
    "{}{}".format,
    st.sampled_from(["sda", "sdab", "hdb", "xvdb", "nvme0n1p", "loop", "dm-"]),
    st.sampled_from(["", "1", "2", "12"]),
)


@st.composite
def members(draw) -> MdMember:
    failed = draw(st.booleans())
    return MdMember(
        dev=draw(devices),
        slot=draw(st.integers(0, 40)),
        failed=failed,
        spare=not failed and draw(st.booleans()),
        write_mostly=draw(st.booleans()),
        journal=draw(st.booleans()),
        replacement=not failed and draw(st.booleans()),
    )


@st.composite
def syncs(draw) -> MdSync:
    action = draw(st.sampled_from(["recovery", "resync", "check", "reshape", "repair"]))
    if draw(st.booleans()):
        return MdSync(action=action, pending=draw(st.sampled_from(["DELAYED", "PENDING"])))
    total = draw(st.integers(1, 10**12))
    return MdSync(
        action=action,
        percent=draw(st.integers(0, 1000)) / 10,
        done=draw(st.integers(0, total)),
        total=total,
        finish=f"{draw(st.integers(0, 99999)) / 10}min",
        speed=f"{draw(st.integers(0, 9999999))}K/sec",
    )


@st.composite
def arrays(draw) -> MdArray:
    level = draw(st.sampled_from([None, "linear", "raid0", *_WITH_COUNTS]))
    state = "inactive" if level is None else draw(st.sampled_from(["active", "inactive"]))
    raid_disks = active_disks = status = chunk = layout = copies = None
    if level in _WITH_COUNTS:
        status = draw(st.text(alphabet="U_", min_size=1, max_size=12))
        raid_disks, active_disks = len(status), status.count("U")
    if level in ("raid0", "raid4", "raid5", "raid6", "raid10"):
        chunk = draw(st.sampled_from(["4k", "64k", "512k", "512K", "3072k"]))
    if level == "raid10" and draw(st.booleans()):
        near, far = draw(st.integers(1, 3)), draw(st.integers(1, 3))
        kind = draw(st.sampled_from(["far", "offset"]))
        parts = [(n, k) for n, k in ((near, "near"), (far, kind)) if n > 1]
        if parts:
            layout = " ".join(f"{n} {k}-copies" for n, k in parts)
            copies = near * far
    return MdArray(
        name=draw(st.builds("{}{}".format, st.sampled_from(["md", "md_d"]), st.integers(0, 999))),
        state=state,
        read_only=None
        if state == "inactive"
        else draw(st.sampled_from([None, "read-only", "auto-read-only"])),
        level=level,
        members=tuple(draw(st.lists(members(), max_size=6))),
        blocks=draw(st.integers(0, 10**14)),
        super=draw(st.sampled_from([None, "0.90", "1.0", "1.2", "external:/md127/0"])),
        raid_disks=raid_disks,
        active_disks=active_disks,
        status=status,
        sync=draw(st.none() | syncs()) if state == "active" else None,
        bitmap=draw(st.none() | st.just("0/30 pages [0KB], 65536KB chunk")),
        chunk=chunk,
        layout=layout,
        copies=copies,
    )


def render_member(member: MdMember) -> str:
    flags = [
        ("W", member.write_mostly),
        ("J", member.journal),
        ("F", member.failed),
        ("S", member.spare),
        ("R", member.replacement),
    ]
    return f"{member.dev}[{member.slot}]" + "".join(f"({f})" for f, on in flags if on)


def render_blocks(array: MdArray) -> str:
    words = [f"{array.blocks} blocks"]
    if array.super is not None:
        words.append(f"super {array.super}")
    if array.level in _LEVEL_NUMBER:
        words.append(f"level {_LEVEL_NUMBER[array.level]}, {array.chunk} chunk, algorithm 2")
    elif array.chunk is not None:
        words.append(f"{array.chunk} chunks")
    if array.layout is not None:
        words.append(array.layout)
    if array.level == "linear":
        words.append("64k rounding")
    if array.status is not None:
        words.append(f"[{array.raid_disks}/{array.active_disks}] [{array.status}]")
    return " ".join(words)


def render_sync(sync: MdSync) -> str:
    if sync.pending is not None:
        return f"{sync.action}={sync.pending}"
    return (
        f"[==>..................]  {sync.action} ={sync.percent:>5}% "
        f"({sync.done}/{sync.total}) finish={sync.finish} speed={sync.speed}"
    )


def render_array(array: MdArray, indent: str) -> list[str]:
    head = [f"{array.name} :", array.state]
    if array.read_only is not None:
        head.append(f"({array.read_only})")
    if array.level is not None:
        head.append(array.level)
    head.extend(render_member(m) for m in array.members)
    lines = [" ".join(head), indent + render_blocks(array)]
    if array.sync is not None:
        lines.append(indent + render_sync(array.sync))
    if array.bitmap is not None:
        lines.append(f"{indent}bitmap: {array.bitmap}")
    return lines


@st.composite
def mdstat_texts(draw) -> tuple[Mdstat, str]:
    personalities = tuple(draw(st.lists(st.sampled_from(["raid1", "raid0", "raid10"]))))
    found = tuple(draw(st.lists(arrays(), max_size=4)))
    indent = draw(st.sampled_from(["", "      ", "        ", "\t"]))
    separator = draw(st.sampled_from(["", "      "]))
    lines = []
    if draw(st.booleans()):
        lines.append("# cat /proc/mdstat")
    lines.append("Personalities : " + " ".join(f"[{p}]" for p in personalities))
    for array in found:
        lines.extend(render_array(array, indent))
        lines.append(separator)
    if draw(st.booleans()):
        lines.append("unused devices: <none>")
    return Mdstat(personalities, found), "\n".join(lines) + draw(st.sampled_from(["", "\n"]))


@given(mdstat_texts())
def test_generated_text_round_trips(case: tuple[Mdstat, str]):
    expected, text = case
    parsed = parse_mdstat(text)
    assert parsed == expected
    for array in parsed.arrays:
        assert array.member_count == len(array.members)
        assert len(array.failed_members) == sum(m.failed for m in array.members)
    snap = snapshot(parsed, NOW)
    assert len(snap.groups) == sum(not a.is_container for a in parsed.arrays)


def parses_or_rejects(text: str) -> None:
    with contextlib.suppress(MdstatError):
        parse_mdstat(text)


@settings(max_examples=300)
@given(st.binary(max_size=400), st.sampled_from(["utf-8", "latin-1"]))
def test_random_bytes_parse_or_raise_mdstat_error(data: bytes, encoding: str):
    parses_or_rejects(data.decode(encoding, errors="replace"))


@settings(max_examples=300)
@given(st.text(max_size=300))
def test_random_text_after_personalities_parses_or_raises(tail: str):
    parses_or_rejects("Personalities : [raid1]\n" + tail)


_TOKENS = [
    "md0 :", "active", "inactive", "raid1", "raid5", "(auto-read-only)", "sda1[0]",
    "sdb1[1](F)", "sdc[2](S)", "sdd[x]", "[2/1]", "[U_]", "[", "]", "(", "blocks", "super",
    "1.2", "level", "5,", "64k", "chunk", "chunks", "near-copies", "recovery", "=", "8.5%",
    "(1/2)", "finish=1.0min", "resync=DELAYED", "bitmap:", "unused devices:", "<none>",
    "Personalities :", "[raid6]", "9" * 5000, "\n", "\n", "\n", "      ", "\t", "#",
]  # fmt: skip


@settings(max_examples=300)
@given(st.lists(st.sampled_from(_TOKENS), max_size=60))
def test_token_soup_parses_or_raises(tokens: list[str]):
    parses_or_rejects("Personalities : [raid1]\n" + " ".join(tokens))


@settings(max_examples=200)
@given(st.sampled_from(SAMPLES), st.data())
def test_damaged_samples_parse_or_raise(sample: Path, data):
    lines = sample.read_text(encoding="utf-8").splitlines()
    index = data.draw(st.integers(0, max(0, len(lines) - 1)))
    junk = data.draw(st.text(max_size=80))
    lines[index : index + 1] = [junk]
    text = "\n".join(lines)
    with contextlib.suppress(MdstatError):
        snapshot(parse_mdstat(text), NOW)

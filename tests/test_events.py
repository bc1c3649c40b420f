"""Event sources: netlink link messages, the event socket and mdadm-event, udev decisions."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agent import events
from agent.events import AgentEvent, EventError, Events, Router, decode_event, encode_event
from tests.conftest import DEGRADED, agent_config, hotspare, write_mdstat
from tests.net_peer import Netns, inside, netns_available

BASE = "hotspare/v1/dc1/web-01"
DEGRADED_TEXT = DEGRADED.read_text()  # raid5 md0 [3/2] [U_U] with sdc1(F)
CLEAN_TEXT = DEGRADED_TEXT.replace("sdc1[3](F)", "sdc1[1]").replace("[3/2] [U_U]", "[3/3] [UUU]")


class FakePoller:
    def __init__(self, name: str) -> None:
        self.name = name
        self.triggered = 0

    def trigger(self) -> None:
        self.triggered += 1


# --- netlink ------------------------------------------------------------------------------------


def dump_links() -> bytes:
    """The kernel's own RTM_NEWLINK messages: a dump of this namespace's links."""
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, events.NETLINK_ROUTE) as s:
        s.bind((0, 0))
        RTM_GETLINK, NLM_F_REQUEST, NLM_F_DUMP = 18, 1, 0x300
        body = struct.pack("=BxHiII", socket.AF_UNSPEC, 0, 0, 0, 0)
        s.send(
            struct.pack("=IHHII", 16 + len(body), RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, 1, 0)
            + body
        )
        return s.recv(1 << 16)


def test_parse_real_link_messages_from_the_kernel():
    found = events.parse_link_messages(dump_links())
    names = {e.name: e for e in found}
    assert "lo" in names
    lo = names["lo"]
    assert lo.kind == "new" and lo.index == socket.if_nametoindex("lo")
    flags = int(Path("/sys/class/net/lo/flags").read_text(), 16)
    assert lo.up == bool(flags & events.IFF_UP)


def test_parse_link_messages_skips_garbage_and_truncation():
    data = dump_links()
    assert events.parse_link_messages(b"") == []
    assert events.parse_link_messages(b"\x00" * 7) == []
    # a truncated last message is dropped, the whole ones before it are kept
    first_len = struct.unpack_from("=I", data)[0]
    assert len(events.parse_link_messages(data[: first_len + 10])) == 1


# --- routing ------------------------------------------------------------------------------------


def test_router_triggers_only_the_collector_types_an_event_concerns():
    bond, nic, md, ipmi = (FakePoller(n) for n in ("bond", "nic", "md", "bmc"))
    r = Router()
    r.update([("bond", bond), ("nic", nic), ("mdstat", md), ("ipmi", ipmi)])
    assert r.fire("link") == 2
    assert (bond.triggered, nic.triggered, md.triggered, ipmi.triggered) == (1, 1, 0, 0)
    assert r.fire("mdadm") == 1 and md.triggered == 1
    assert r.fire("udev:block") == 1 and md.triggered == 2
    assert r.fire("udev:net") == 2 and bond.triggered == 2
    assert r.wanted() == {"link", "mdadm", "udev:net", "udev:block"}
    r.update([("ipmi", ipmi)])
    assert r.fire("link") == 0 and r.wanted() == set()


@pytest.mark.parametrize(
    ("subsystem", "action", "kind"),
    [
        ("net", "add", "udev:net"),
        ("net", "remove", "udev:net"),
        ("net", "bind", None),
        ("block", "remove", "udev:block"),
        ("block", "change", "udev:block"),
        ("power_supply", "change", "udev:power_supply"),
        ("usb", "add", None),
        (None, None, None),
    ],
)
def test_udev_decision_table(subsystem, action, kind):
    assert events.udev_kind(subsystem, action) == kind


def test_udevd_absent_is_said_once_and_polling_goes_on(tmp_path, caplog):
    async def run():
        loop = asyncio.get_running_loop()
        ev = Events(str(tmp_path / "event.sock"), udev_control=str(tmp_path / "no-control"))
        md = FakePoller("md")
        ev.update(loop, [("mdstat", md)])
        ev.update(loop, [("mdstat", md)])  # a reload: not said again
        ev.stop(loop)

    with caplog.at_level(logging.INFO, logger="hotspare.events"):
        asyncio.run(run())
    said = [r for r in caplog.records if "udevd is not running" in r.message]
    assert len(said) == 1
    assert "relying on polling" in said[0].message
    assert not events.udev_running(str(tmp_path / "no-control"))


def test_udev_control_socket_means_running(tmp_path):
    path = tmp_path / "control"
    with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as s:
        s.bind(str(path))
        assert events.udev_running(str(path))
    (tmp_path / "file").write_text("")
    assert not events.udev_running(str(tmp_path / "file"))


# --- the event socket ---------------------------------------------------------------------------


def test_event_round_trip_and_rejections():
    e = AgentEvent("mdadm", "Fail", "/dev/md0", "/dev/sdb1")
    assert decode_event(encode_event(e)) == e
    for bad in (
        b"\xff",
        b"[]",
        b'{"source": "x", "event": "Fail"}',
        b'{"source": "mdadm"}',
        b'{"source": "mdadm", "event": 1}',
        b'{"source": "mdadm", "event": "' + b"x" * 300 + b'"}',
    ):
        with pytest.raises(EventError):
            decode_event(bad)


def test_event_socket_triggers_md_pollers_and_survives_garbage(tmp_path):
    path = str(tmp_path / "event.sock")

    async def run() -> int:
        loop = asyncio.get_running_loop()
        ev = Events(path, udev_control=str(tmp_path / "none"))
        md = FakePoller("md")
        ev.update(loop, [("mdstat", md)])
        assert oct((tmp_path / "event.sock").stat().st_mode & 0o777) == "0o600"
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.sendto(b"garbage", path)
        events.send_event(path, AgentEvent("mdadm", "DegradedArray", "/dev/md0"))
        for _ in range(100):
            await asyncio.sleep(0.01)
            if md.triggered:
                break
        ev.stop(loop)
        return md.triggered

    assert asyncio.run(run()) == 1
    assert not (tmp_path / "event.sock").exists()


def test_mdadm_event_without_an_agent_fails_fast_and_clearly(tmp_path):
    started = time.monotonic()
    r = hotspare(
        "mdadm-event", "Fail", "/dev/md0", "/dev/sdb1", "--socket", str(tmp_path / "x.sock")
    )
    assert r.returncode == 69
    assert "no agent is listening on" in r.stderr and "x.sock" in r.stderr
    assert time.monotonic() - started < 30  # generous: it must not hang, not be fast
    # a socket file nobody listens on any more
    stale = tmp_path / "stale.sock"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(str(stale))
    s.close()
    r = hotspare("mdadm-event", "Fail", "/dev/md0", "--socket", str(stale))
    assert r.returncode == 69


def test_mdadm_event_with_a_bad_config_exits_78(tmp_path):
    cfg = tmp_path / "agent.toml"
    cfg.write_text("[agent]\n")
    r = hotspare("mdadm-event", "Fail", "/dev/md0", "--config", str(cfg))
    assert r.returncode == 78 and "agent.site" in r.stderr


def test_mdadm_event_makes_the_agent_repoll_without_waiting_for_the_interval(
    tmp_path, broker, subscribe, run_agent
):
    mdstat = tmp_path / "mdstat"
    write_mdstat(mdstat, CLEAN_TEXT)
    sock = tmp_path / "hs.sock"
    sub = subscribe()
    config = agent_config(
        broker.port,
        mdstat,
        tmp_path / "state",
        agent_extra=f'event_socket = "{sock}"\nheartbeat = 3600\n',
    ).replace("interval = 0.5", "interval = 3600")
    agent = run_agent(config)

    def health(state):
        return lambda m: m.topic == f"{BASE}/health" and m.payload and m.json()["state"] == state

    sub.wait(health("redundant"), what="redundant")
    for _ in range(100):  # the socket exists once the pollers started
        if sock.exists():
            break
        time.sleep(0.05)
    write_mdstat(mdstat, DEGRADED_TEXT)
    # exactly as mdadm runs its PROGRAM: one executable, three arguments, no options
    program = Path(sys.executable).with_name("hotspare-mdadm-event")
    assert program.is_file(), "scripts/bootstrap installs the hotspare-mdadm-event executable"
    env = {**os.environ, "HOTSPARE_CONFIG": str(agent.config)}
    r = subprocess.run(
        [str(program), "Fail", "/dev/md0", "/dev/sdc1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert r.returncode == 0, r.stderr
    h = sub.wait(health("degraded"), what="degraded after mdadm-event").json()
    (g,) = h["groups"]
    assert g["id"] == "md/md0" and g["margin"] == 0
    assert "mdadm event Fail on /dev/md0 (/dev/sdc1)" in agent.output()


@pytest.mark.skipif(not netns_available(), reason="needs root and iproute2")
def test_udev_monitor_sees_a_nic_added_and_triggers_the_net_collectors(tmp_path):
    """The monitor path for real, on the kernel's own uevents in a namespace of ours (udevd
    does not run here, so the source is "kernel" and the control socket is one we bind)."""
    control = tmp_path / "control"
    seen: list[tuple[str, str]] = []

    async def run() -> None:
        loop = asyncio.get_running_loop()
        mon = events.UdevMonitor(lambda k, w: seen.append((k, w)), str(control), source="kernel")
        with Netns() as ns:
            with inside(ns.name):
                assert mon.start(loop)
            a, _b = ns.veth()
            try:
                for _ in range(1000):  # up to 10 s on a loaded machine
                    await asyncio.sleep(0.01)
                    if ("udev:net", f"add {a}") in seen:
                        break
            finally:
                mon.stop(loop)
        assert ("udev:net", f"add {a}") in seen

    with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as s:
        s.bind(str(control))
        asyncio.run(run())


def test_event_socket_replaces_a_stale_one_but_not_a_live_one(tmp_path):
    path = str(tmp_path / "event.sock")
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    stale.bind(path)
    stale.close()  # the file stays, nobody listens

    async def run() -> None:
        loop = asyncio.get_running_loop()
        first = events.EventSocket(path, lambda e: None)
        first.start(loop)  # took over the stale file
        second = events.EventSocket(path, lambda e: None)
        with pytest.raises(OSError, match="in use by another running agent"):
            second.start(loop)
        first.stop(loop)

    asyncio.run(run())


def test_a_link_event_polls_at_once_and_once_more_after_the_settle_time(tmp_path, monkeypatch):
    monkeypatch.setattr(events, "LINK_SETTLE", 0.05)

    async def run() -> tuple[int, int]:
        loop = asyncio.get_running_loop()
        ev = Events("", udev_control=str(tmp_path / "none"))
        nic = FakePoller("nic")
        ev.update(loop, [("nic", nic)])
        for _ in range(3):  # a burst: three polls at once, one settle poll
            ev._on_link(events.LinkEvent("new", 5, "eth0", True, False))
        at_once = nic.triggered
        await asyncio.sleep(0.2)
        ev.stop(loop)
        return at_once, nic.triggered

    assert asyncio.run(run()) == (3, 4)


def test_an_event_about_a_device_triggers_only_collectors_that_own_it_or_cannot_tell():
    class Owning(FakePoller):
        def __init__(self, name: str, devices: set[str]) -> None:
            super().__init__(name)
            self.collector = type("C", (), {"owns": lambda _self, d: d in devices})()

    nic = Owning("nic", {"eno1", "eno2"})
    bond = FakePoller("bond")  # no owns(): any interface may be a slave
    r = Router()
    r.update([("nic", nic), ("bond", bond)])
    assert r.fire("link", "new veth1234", "veth1234") == 1
    assert (nic.triggered, bond.triggered) == (0, 1)
    assert r.fire("link", "new eno2", "eno2") == 2
    assert r.fire("link", "overrun") == 2  # no device: everyone
    assert nic.triggered == 2

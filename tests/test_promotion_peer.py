"""Promotion against real peers in network namespaces: keepalived (VRRP v3) in two hosts,
agents in each, mosquitto on the bridge, ipmi_sim BMCs with power control (see
tests/promotion_peer.py for the lab). Waits are generous deadlines, never timed assertions;
the timing goes to bench/ (``bench/run.py --only promotion``)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests import promotion_peer as lab
from tests.conftest import Subscriber
from tests.ipmisim import DELL, PSU_FAILURE
from tests.schemas import validate

pytestmark = pytest.mark.skipif(bool(lab.available()), reason=lab.available() or "runs")

VIP_PORT = lab.VIP_PORT


@pytest.fixture(scope="module")
def network() -> Iterator[None]:
    with lab.Network():
        yield


@pytest.fixture
def pair(network, tmp_path, broker) -> Iterator[lab.Pair]:
    p = lab.Pair(tmp_path, broker.port)
    try:
        yield p
    finally:
        p.close()


@pytest.fixture
def lab_broker():
    with lab.broker() as b:
        yield b


@pytest.fixture
def broker(lab_broker):  # the lab's broker also listens on the bridge
    return lab_broker


def wait_health(sub: Subscriber, host: str) -> None:
    sub.wait(
        lambda m: m.topic == f"hotspare/v1/{lab.SITE}/{host}/health" and bool(m.payload),
        30,
        f"{host}'s first health",
    )


def wait_event(sub: Subscriber, host: str, pred, what: str, timeout: float = 40) -> dict:
    msg = sub.wait(
        lambda m: m.topic == f"hotspare/v1/{lab.SITE}/{host}/events" and pred(m.json()),
        timeout,
        what,
    )
    event = msg.json()
    validate("event", event)
    return event


def promotion(decision: str, policy: str = ""):
    return lambda e: (
        e["type"] == "promotion" and e["decision"] == decision and (not policy or e["id"] == policy)
    )


def test_psu_failures_move_the_vip_to_the_standby_and_fencing_powers_the_primary_off(pair, broker):
    sub = Subscriber(broker.port, ["hotspare/v1/#"])
    try:
        pair.start()
        wait_health(sub, "pri")
        wait_health(sub, "sby")
        assert lab.who_answers(VIP_PORT) == "pri"

        t0 = time.monotonic()
        pair.bmc.sim.set_bit(DELL.psus[0], PSU_FAILURE, True)
        lab.wait_for(lambda: lab.who_answers(VIP_PORT) == "sby", 30, what="the VIP on sby")
        print(f"PSU failure -> VIP answering on the standby: {time.monotonic() - t0:.2f} s")
        engaged = wait_event(sub, "pri", promotion("engaged", "step-down"), "pri steps down")
        assert engaged["trigger"] == "group power degraded"
        assert pair.pri.track.read_text() == "-100\n"
        assert pair.bmc.power() == "on"  # redundancy lost, still serving: nobody fences

        # the redundant PSU fails too: the primary is FAILED; the standby fences, then promotes
        pair.bmc.sim.set_bit(DELL.psus[1], PSU_FAILURE, True)
        promoted = wait_event(sub, "sby", promotion("engaged", "promote-me"), "sby promotes")
        assert promoted["trigger"] in ("peer pri failed", "peer pri offline")
        assert "power state reads off" in promoted["message"]
        assert pair.bmc.power() == "off"
        assert pair.bmc.state.read_text() == "0"
        assert pair.sby.track.read_text() == "100\n"
        lab.wait_for(lambda: lab.who_answers(VIP_PORT) == "sby", 10, what="the VIP on sby")
        assert [h.has_vip() for h in (pair.pri, pair.sby)] == [False, True]
        trail = [
            (e["host"], e.get("decision") or e["type"], e["id"])
            for e in lab.events(sub.messages, "pri") + lab.events(sub.messages, "sby")
            if e["type"] == "promotion"
        ]
        print("promotion trail:", trail)
    except AssertionError:
        print(pair.diagnostics())
        raise
    finally:
        sub.close()


def test_partition_without_fencing_means_no_promotion_and_a_loud_event(pair, broker):
    """The primary is cut off from the broker and its BMC is unreachable: the standby sees
    the Last Will but cannot fence, so it does not promote; the isolated primary steps down
    by itself. One VIP holder throughout the samples."""
    sub = Subscriber(broker.port, ["hotspare/v1/#"])
    try:
        pair.start()
        wait_health(sub, "pri")
        wait_health(sub, "sby")
        pair.bmc.relay.blocked = True  # the management network is cut too
        lab.partition(pair.pri.ns, True)
        failed = wait_event(sub, "sby", promotion("failed", "promote-me"), "the fence fails", 90)
        assert failed["message"].startswith("no fencing, no promotion")
        assert failed["trigger"] == "peer pri offline"
        assert pair.sby.track.read_text() == "0\n"  # never promoted
        assert pair.bmc.power() == "on"
        assert "no fencing, no promotion" in pair.sby.log()
        # the isolated primary demoted itself (its events wait in its outbox)
        lab.wait_for(lambda: pair.pri.track.read_text() == "-254\n", 30, what="pri demotes")
        holders = [h.name for h in (pair.pri, pair.sby) if h.has_vip()]
        assert len(holders) == 1, holders
    except AssertionError:
        print(pair.diagnostics())
        raise
    finally:
        sub.close()


def test_partition_with_fencing_promotes_after_the_power_reads_off(pair, broker):
    sub = Subscriber(broker.port, ["hotspare/v1/#"])
    try:
        pair.start()
        wait_health(sub, "pri")
        wait_health(sub, "sby")
        lab.partition(pair.pri.ns, True)
        promoted = wait_event(sub, "sby", promotion("engaged", "promote-me"), "sby promotes", 60)
        assert promoted["trigger"] == "peer pri offline"
        assert "power state reads off" in promoted["message"]
        assert pair.bmc.power() == "off"
        lab.wait_for(lambda: lab.who_answers(VIP_PORT) == "sby", 10, what="the VIP on sby")
        assert [h.has_vip() for h in (pair.pri, pair.sby)] == [False, True]
        pending = [e for e in lab.events(sub.messages, "sby") if e["type"] == "promotion"]
        assert [e["decision"] for e in pending][:3] == ["pending", "engage", "engaged"]
    except AssertionError:
        print(pair.diagnostics())
        raise
    finally:
        sub.close()

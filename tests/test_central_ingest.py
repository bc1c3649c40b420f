"""The central ingest against a real mosquitto with simulated agents publishing real
contract payloads: fleet state, offline detection, rejected payloads, restart, shared
subscriptions, and the transition subscribers (the alert-routing seam)."""

from __future__ import annotations

import json
import logging

import pytest

from agent import wire
from central.contract import Kind
from central.history import History
from central.ingest import Ingest
from central.state import CLEAN_STOP, LAST_WILL, MISSED_HEARTBEATS, Fleet
from tests.central_peer import CentralThread, SimAgent, get, psu_pair, wait_for, write_config


@pytest.fixture
def agents(broker):
    made: list[SimAgent] = []

    def make(site, host, groups):
        a = SimAgent(broker.port, site, host, groups)
        made.append(a)
        return a

    yield make
    for a in made:
        a.close()


@pytest.fixture
def centrals():
    made: list[CentralThread] = []

    def make(path, subscribers=None):
        c = CentralThread(path, subscribers).start()
        made.append(c)
        return c

    yield make
    for c in made:
        c.stop()


def host_of(c: CentralThread, site: str, host: str) -> dict | None:
    status, body = get(f"{c.url}/api/hosts/{site}/{host}")
    return body if status == 200 else None


def test_fleet_is_rebuilt_from_retained_messages_and_a_restart_records_nothing_new(
    broker, agents, centrals, tmp_path, database_url
):
    agents("dc1", "web-01", {"power": "redundant", "cooling": "redundant"})
    agents("dc1", "web-02", {"power": "degraded"})
    agents("dc2", "db-01", {"power": "failed", "raid": "redundant"})
    cfg = write_config(tmp_path / "central.toml", broker.port, database_url)
    c = centrals(cfg)
    wait_for(lambda: get(f"{c.url}/api/fleet")[1]["total"] == 3, what="three hosts")
    fleet = wait_for(
        lambda: (b := get(f"{c.url}/api/fleet")[1])["hosts"][2]["state"] and b, what="states"
    )
    states = {(h["site"], h["host"]): (h["state"], h["groups"]) for h in fleet["hosts"]}
    assert states == {
        ("dc1", "web-01"): ("redundant", {"cooling": "redundant", "power": "redundant"}),
        ("dc1", "web-02"): ("degraded", {"power": "degraded"}),
        ("dc2", "db-01"): ("failed", {"power": "failed", "raid": "redundant"}),
    }
    assert fleet["counts"] == {"redundant": 1, "degraded": 1, "failed": 1}
    recorded = c.call(lambda: c.central.ingest.counters["transitions"])
    assert recorded == 3 + 5  # one host record each, one per group (first seen)
    c.stop()

    again = centrals(cfg)
    wait_for(
        lambda: (h := host_of(again, "dc2", "db-01")) and h["state"] == "failed",
        what="db-01 rebuilt",
    )
    wait_for(lambda: get(f"{again.url}/api/fleet")[1]["total"] == 3, what="three hosts again")
    assert again.call(lambda: again.central.ingest.counters["transitions"]) == 0
    h = History.open(database_url)
    try:
        assert len(h.transitions(limit=1000)) == 8
    finally:
        h.close()


def test_offline_by_last_will_by_clean_stop_and_by_missed_heartbeats(
    broker, agents, centrals, tmp_path
):
    cfg = write_config(
        tmp_path / "central.toml",
        broker.port,
        str(tmp_path / "c.db"),
        extra="heartbeat_timeout = 1.5\n",
    )
    c = centrals(cfg)
    dying = agents("dc1", "dying", {"power": "redundant"})
    stopping = agents("dc1", "stopping", {"power": "redundant"})
    silent = agents("dc1", "silent", {"power": "degraded"})
    wait_for(lambda: get(f"{c.url}/api/fleet")[1]["total"] == 3, what="three hosts")

    dying.die()
    stopping.stop()
    # the silent agent stays connected but publishes nothing: its heartbeats are missed
    for name, cause in (
        ("dying", LAST_WILL),
        ("stopping", CLEAN_STOP),
        ("silent", MISSED_HEARTBEATS),
    ):
        h = wait_for(
            lambda name=name: (h := host_of(c, "dc1", name)) and h["state"] == "offline" and h,
            what=f"{name} offline",
        )
        assert h["offline_cause"] == cause, name
        assert h["online"] is False
        t = h["transitions"][0]
        assert (t["scope"], t["to"], t["cause"]) == ("host", "offline", cause)

    silent.publish({"power": "redundant"})  # heard again: back online with its new state
    h = wait_for(
        lambda: (h := host_of(c, "dc1", "silent")) and h["state"] == "redundant" and h,
        what="silent back",
    )
    assert h["online"] is True and h["offline_cause"] is None


def test_malformed_oversized_and_schema_violating_payloads_are_rejected_and_counted(
    broker, agents, centrals, tmp_path
):
    cfg = write_config(
        tmp_path / "central.toml", broker.port, str(tmp_path / "c.db"), extra="max_payload = 2048\n"
    )
    c = centrals(cfg)
    a = agents("dc1", "web-01", {"power": "redundant"})
    good = wire.health(a.health(), 5000, 1.0)
    a.raw("health", b"{not json")
    a.raw("health", b"\xff\xfe")
    a.raw("health", json.dumps({**good, "filler": "x" * 4000}).encode())  # oversized
    a.raw("health", json.dumps({k: v for k, v in good.items() if k != "state"}).encode())
    a.raw("health", json.dumps({**good, "state": "on fire"}).encode())
    a.raw("events", json.dumps({"schema": 1, "type": "transition"}).encode())
    a.raw("health", json.dumps({**good, "host": "someone-else"}).encode())  # topic mismatch
    a.raw("groups/power", b"[]")
    a.publish({"power": "degraded"})  # and the ingest still works
    stats = wait_for(
        lambda: (s := get(f"{c.url}/api/stats")[1])["counters"].get("rejected", 0) >= 8 and s,
        what="8 rejections",
    )
    assert stats["rejected"] == {"not_json": 2, "oversized": 1, "schema": 4, "topic_mismatch": 1}
    assert stats["last_rejection"]["reason"] == "schema"
    wait_for(
        lambda: (h := host_of(c, "dc1", "web-01")) and h["state"] == "degraded",
        what="degraded after the garbage",
    )


def test_agent_events_are_stored_once(broker, agents, centrals, tmp_path):
    cfg = write_config(tmp_path / "central.toml", broker.port, str(tmp_path / "c.db"))
    c = centrals(cfg)
    a = agents("dc1", "web-01", {"power": "redundant"})
    a.publish({"power": "degraded"})
    ev = wait_for(lambda: get(f"{c.url}/api/events?host=web-01")[1]["events"], what="event")
    assert (ev[0]["type"], ev[0]["to"]) == ("transition", "degraded")
    a.raw("events", json.dumps({k: v for k, v in ev[0].items() if k != "received"}).encode())
    wait_for(
        lambda: c.call(lambda: c.central.ingest.counters["duplicate_events"]) == 1,
        what="the resent event skipped",
    )
    assert len(get(f"{c.url}/api/events?host=web-01")[1]["events"]) == 1


def test_transition_subscribers_receive_every_record(broker, agents, centrals, tmp_path):
    cfg = write_config(tmp_path / "central.toml", broker.port, str(tmp_path / "c.db"))
    received = []

    def broken(record):
        raise RuntimeError("a subscriber that fails must not stop the others")

    c = centrals(cfg, subscribers=[broken, received.append])
    a = agents("dc1", "web-01", {"power": "redundant"})
    wait_for(lambda: len(received) >= 2, what="first-seen records")
    a.publish({"power": "degraded"})
    wait_for(
        lambda: any(r.to_state == "degraded" and r.scope == "group" for r in received), what="g"
    )
    rec = next(r for r in received if r.to_state == "degraded" and r.scope == "group")
    assert (rec.site, rec.host, rec.id, rec.from_state, rec.kind, rec.margin, rec.cause) == (
        "dc1",
        "web-01",
        "power",
        "redundant",
        "power",
        0,
        "state",
    )
    assert rec.as_dict()["from"] == "redundant"
    wait_for(
        lambda: any(r.scope == "host" and r.to_state == "degraded" for r in received), what="h"
    )
    a.die()
    wait_for(
        lambda: any(r.to_state == "offline" and r.cause == LAST_WILL for r in received), what="lw"
    )
    assert c.call(lambda: c.central.ingest.counters["transitions"]) == len(received)


def test_shared_subscription_instances_rebuild_from_retained_and_split_the_live_load(
    broker, agents, centrals, tmp_path
):
    a = agents("dc1", "web-01", {"power": "redundant"})
    one = centrals(
        write_config(
            tmp_path / "1.toml",
            broker.port,
            str(tmp_path / "1.db"),
            mqtt_extra='shared_group = "central"\nclient_id = "c1"\n',
        )
    )
    two = centrals(
        write_config(
            tmp_path / "2.toml",
            broker.port,
            str(tmp_path / "2.db"),
            mqtt_extra='shared_group = "central"\nclient_id = "c2"\n',
        )
    )
    for c in (one, two):
        # retained messages are not sent on a shared subscription: both still know the host
        wait_for(
            lambda c=c: (h := host_of(c, "dc1", "web-01")) and h["state"] == "redundant",
            what="rebuilt",
        )
        wait_for(
            lambda c=c: not c.call(lambda: c.central.source.rebuilding),
            timeout=30,
            what="rebuild done",
        )
    before = [c.call(lambda c=c: c.central.ingest.counters["events"]) for c in (one, two)]
    for i in range(20):
        a.publish({"power": "degraded" if i % 2 == 0 else "redundant"})
    wait_for(
        lambda: (
            sum(c.call(lambda c=c: c.central.ingest.counters["events"]) for c in (one, two))
            - sum(before)
            >= 20
        ),
        what="20 events between the two",
    )
    got = [
        c.call(lambda c=c: c.central.ingest.counters["events"]) - b
        for c, b in zip((one, two), before, strict=True)
    ]
    assert sum(got) == 20
    assert all(n > 0 for n in got), got


def test_the_service_reconnects_after_the_broker_restarts_and_disconnects_cleanly(
    broker, agents, centrals, tmp_path, caplog
):
    caplog.set_level(logging.INFO, logger="hotspare.central.ingest")
    c = centrals(write_config(tmp_path / "c.toml", broker.port, str(tmp_path / "c.db")))
    connected = lambda: c.call(lambda: c.central.source.connected.is_set())  # noqa: E731
    assert connected()
    broker.stop()
    wait_for(lambda: not connected(), what="the loss noticed")
    broker.start()  # same port, no retained state, no sessions
    wait_for(connected, timeout=30, what="reconnected")
    assert "lost" in caplog.text and caplog.text.count("MQTT connected to") >= 2
    # and it subscribed again: a new agent's state arrives
    agents("dc1", "web-01", {"power": "degraded"})
    wait_for(
        lambda: (h := host_of(c, "dc1", "web-01")) and h["state"] == "degraded",
        timeout=30,
        what="ingest after the restart",
    )
    c.stop()
    # stopped: the broker saw a clean DISCONNECT
    assert not c.central.source.client.is_connected
    client_id = c.central.source.settings.client_id
    wait_for(lambda: f"Client {client_id} disconnected" in broker.log_tail(), what="DISCONNECT")


def test_ingest_without_a_broker_takes_cleared_groups_and_ignores_commands(tmp_path):
    h = History.open(str(tmp_path / "c.db"))
    ingest = Ingest(Fleet(90), h, "hotspare/v1", 1 << 20, clock=lambda: 1000.0)
    g, _ = psu_pair("degraded", "bond0/eth+1")
    group_doc = {"schema": 1, "ts": 999.0, "seq": 1, "site": "dc1", "host": "h", **wire.group(g)}
    topic = f"hotspare/v1/dc1/h/groups/{wire.id_topic(g.id)}"
    assert [r.to_state for r in ingest.handle(topic, wire.encode(group_doc))] == ["degraded"]
    gone = ingest.handle(topic, b"", retained=False)
    assert [(r.id, r.to_state, r.cause) for r in gone] == [("bond0/eth+1", None, "gone")]
    assert ingest.handle("hotspare/v1/dc1/h/cmd/promote", b"anything") == []
    assert ingest.handle("elsewhere/x", b"{}") == []
    assert ingest.counters["ignored"] == 1 and ingest.rejected["topic"] == 1
    assert ingest.fleet.hosts[("dc1", "h")].groups == {}
    assert Kind.GROUP.value == "group"
    h.close()


def test_a_failing_history_does_not_stop_the_state_nor_the_subscribers(tmp_path):
    class FullDisk(History):
        def add_transitions(self, records):
            raise OSError(28, "No space left on device")

    h = FullDisk.open(str(tmp_path / "c.db"))
    received = []
    ingest = Ingest(Fleet(90), h, "hotspare/v1", 1 << 20, [received.append], clock=lambda: 5.0)
    g, _ = psu_pair("degraded")
    doc = {"schema": 1, "ts": 4.0, "seq": 1, "site": "dc1", "host": "h", **wire.group(g)}
    records = ingest.handle("hotspare/v1/dc1/h/groups/power", wire.encode(doc))
    assert [r.to_state for r in records] == [r.to_state for r in received] == ["degraded"]
    assert ingest.counters["history_errors"] == 1
    assert ingest.fleet.hosts[("dc1", "h")].groups["power"]["state"] == "degraded"
    h.close()

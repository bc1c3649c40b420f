"""The agent end to end: real agent processes against a real mosquitto."""

from __future__ import annotations

import json
import signal
import time
import urllib.request

import pytest

from agent.localbroker import LocalBroker, free_port
from tests.conftest import DEGRADED, agent_config, hotspare, write_mdstat
from tests.schemas import validate

BASE = "hotspare/v1/dc1/web-01"
DEGRADED_TEXT = DEGRADED.read_text()  # raid5 md0 [3/2] [U_U] with sdc1(F)
CLEAN_TEXT = DEGRADED_TEXT.replace("sdc1[3](F)", "sdc1[1]").replace("[3/2] [U_U]", "[3/3] [UUU]")
FAILED_TEXT = (
    CLEAN_TEXT.replace("sdc1[1]", "sdc1[3](F)")
    .replace("sdd1[2]", "sdd1[2](F)")
    .replace("[3/3] [UUU]", "[3/1] [U__]")
)


def is_health(state: str):
    def pred(m):
        return m.topic == f"{BASE}/health" and m.payload and m.json()["state"] == state

    return pred


def is_event(to: str, scope: str = "group", cid: str = "md/md0"):
    def pred(m):
        if m.topic != f"{BASE}/events":
            return False
        e = m.json()
        return (
            e["type"] == "transition" and e["scope"] == scope and e["id"] == cid and e["to"] == to
        )

    return pred


def group(health: dict, gid: str) -> dict:
    return next(g for g in health["groups"] if g["id"] == gid)


def test_degraded_array_end_to_end_then_lwt_on_sigkill(tmp_path, broker, subscribe, run_agent):
    mdstat = tmp_path / "mdstat"
    write_mdstat(mdstat, DEGRADED_TEXT)
    sub = subscribe()
    agent = run_agent(agent_config(broker.port, mdstat, tmp_path / "state"))

    online = sub.wait(
        lambda m: m.topic == f"{BASE}/status" and m.json()["state"] == "online", what="birth"
    )
    validate("status", online.json())
    health = sub.wait(is_health("degraded"), what="degraded health").json()
    validate("health", health)
    g = group(health, "md/md0")
    assert (g["state"], g["required"], g["healthy"], g["total"], g["margin"]) == (
        "degraded",
        2,
        2,
        3,
        0,
    )
    assert "md/md0/sdc1" in g["members"]

    # retained: a subscriber that comes later gets the same state at once
    late = subscribe(client_id="late")
    retained = late.wait(lambda m: m.topic == f"{BASE}/health" and m.retain, what="retained health")
    assert group(retained.json(), "md/md0")["state"] == "degraded"
    grp = late.wait(
        lambda m: m.topic == f"{BASE}/groups/md/md0" and m.retain, what="retained group"
    ).json()
    validate("group", grp)
    assert (grp["state"], grp["margin"]) == ("degraded", 0)
    comp = late.wait(lambda m: m.topic == f"{BASE}/components/md/md0/sdc1" and m.retain).json()
    validate("component", comp)
    assert comp["state"] == "failed"

    # the start of an unhealthy host is reported as events too
    event = sub.wait(is_event("degraded"), what="initial transition").json()
    validate("event", event)
    assert event["from"] is None

    agent.signal(signal.SIGKILL)
    agent.wait()
    offline = sub.wait(
        lambda m: m.topic == f"{BASE}/status" and m.json()["state"] == "offline", what="Last Will"
    )
    validate("status", offline.json())
    after = subscribe(client_id="after-kill")
    status = after.wait(lambda m: m.topic == f"{BASE}/status", what="retained status")
    assert status.json()["state"] == "offline" and status.retain


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_transitions_are_published_as_events_in_order(
    tmp_path, broker, subscribe, run_agent, protocol
):
    mdstat = tmp_path / "mdstat"
    write_mdstat(mdstat, CLEAN_TEXT)
    sub = subscribe()
    run_agent(
        agent_config(broker.port, mdstat, tmp_path / "state").replace(
            "keepalive = 5\n", f'keepalive = 5\nprotocol = "{protocol}"\n'
        )
    )
    sub.wait(is_health("redundant"), what="redundant health")
    write_mdstat(mdstat, DEGRADED_TEXT)
    sub.wait(is_event("degraded"), what="degraded event")
    sub.wait(is_health("degraded"))
    write_mdstat(mdstat, FAILED_TEXT)
    sub.wait(is_event("failed"), what="failed event")
    write_mdstat(mdstat, CLEAN_TEXT)
    sub.wait(is_event("redundant"), what="recovery event")
    sub.wait(is_health("redundant"))

    events = sub.json_on("/events")
    for e in events:
        validate("event", e)
    md0 = [(e["from"], e["to"]) for e in events if e.get("id") == "md/md0"]
    assert md0 == [("redundant", "degraded"), ("degraded", "failed"), ("failed", "redundant")]
    seqs = [m.json()["seq"] for m in sub.messages if m.payload]
    event_seqs = [e["seq"] for e in events]
    assert event_seqs == sorted(event_seqs) and len(set(seqs)) == len(seqs)


def test_no_transition_is_lost_across_a_broker_outage_and_an_agent_restart(
    tmp_path, subscribe, run_agent
):
    port = free_port()
    broker = LocalBroker(port, persistent=True).start()
    try:
        mdstat = tmp_path / "mdstat"
        write_mdstat(mdstat, CLEAN_TEXT)
        # a persistent session: the broker keeps what is published for it while it is away
        sub = subscribe(port=port, client_id="keeper", persistent=True)
        cfg = agent_config(port, mdstat, tmp_path / "state")
        agent = run_agent(cfg)
        sub.wait(is_health("redundant"), what="first health")
        sub.close()
        broker.stop()

        # four transitions while the broker is down, each seen by the agent
        steps = [
            (DEGRADED_TEXT, "redundant -> degraded"),
            (FAILED_TEXT, "degraded -> failed"),
            (CLEAN_TEXT, "failed -> redundant"),
            (DEGRADED_TEXT, "redundant -> degraded"),
        ]
        for n, (text, change) in enumerate(steps):
            write_mdstat(mdstat, text)
            wait_for_log(agent, f"group md/md0: {change}", steps[: n + 1].count((text, change)))
        agent.signal(signal.SIGKILL)  # now only the on-disk outbox remembers them
        agent.wait()

        write_mdstat(mdstat, CLEAN_TEXT)  # repaired while the agent was down
        agent2 = run_agent(cfg, name="b")  # restarted while the broker is still down
        wait_for_log(agent2, "group md/md0: degraded -> redundant", 1)

        broker.start()
        sub = subscribe(port=port, client_id="keeper", persistent=True)
        sub.wait(
            lambda m: (
                m.topic.endswith("/events")
                and m.json().get("type") == "started"
                and m.json()["seq"] > 1000
            ),
            timeout=40,
            what="the second agent's start event",
        )
        sub.wait(
            lambda m: is_event("redundant")(m) and m.json()["seq"] > 1000,
            timeout=40,
            what="the second agent's recovery event",
        )
        events = sub.json_on("/events")
        for e in events:
            validate("event", e)
        md0 = [(e["from"], e["to"]) for e in events if e.get("id") == "md/md0"]
        assert md0 == [
            ("redundant", "degraded"),
            ("degraded", "failed"),
            ("failed", "redundant"),
            ("redundant", "degraded"),
            ("degraded", "redundant"),  # the restarted agent, against what the first one reported
        ]
        seqs = [e["seq"] for e in events]
        assert seqs == sorted(seqs), "events out of order"
        assert len(seqs) == len(set(seqs)), "duplicate events"
        agent2.stop()
    finally:
        broker.stop()


def wait_for_log(agent, text: str, count: int, timeout: float = 15) -> None:
    """Wait until ``text`` occurs ``count`` times in the agent's log."""
    deadline = time.monotonic() + timeout
    while agent.output().count(text) < count:
        assert time.monotonic() < deadline, f"{text!r} x{count} not in the log:\n{agent.output()}"
        assert agent.proc.poll() is None, f"agent exited:\n{agent.output()}"
        time.sleep(0.05)


def test_bad_config_exits_78_naming_the_key(tmp_path):
    cfg = tmp_path / "agent.toml"
    cfg.write_text('[agent]\nsite = "dc1"\ninterval = "soon"\n')
    r = hotspare("agent", "--config", str(cfg), timeout=30)
    assert r.returncode == 78
    assert f"{cfg}: agent.interval: expected a number" in r.stderr


def test_sighup_reloads_and_keeps_the_last_good_config(tmp_path, broker, subscribe, run_agent):
    mdstat = tmp_path / "mdstat"
    other = tmp_path / "other-mdstat"
    write_mdstat(mdstat, CLEAN_TEXT)
    write_mdstat(other, DEGRADED_TEXT.replace("md0", "md9"))
    sub = subscribe()
    cfg = agent_config(broker.port, mdstat, tmp_path / "state")
    agent = run_agent(cfg)
    sub.wait(is_health("redundant"), what="first health")

    # a good reload: a second collector appears
    agent.config.write_text(cfg + f'[[collectors.mdstat]]\nname = "second"\npath = "{other}"\n')
    agent.signal(signal.SIGHUP)
    sub.wait(
        lambda m: m.topic.endswith("/events") and m.json()["type"] == "config_reloaded",
        what="reload event",
    )
    sub.wait(is_event("degraded", cid="md/md9"), what="the new collector's group")

    # a bad reload: rejected, named, and the running config goes on working
    agent.config.write_text(cfg.replace("interval = 0.5", "interval = -1"))
    agent.signal(signal.SIGHUP)
    rejected = sub.wait(
        lambda m: m.topic.endswith("/events") and m.json()["type"] == "config_rejected"
    ).json()
    validate("event", rejected)
    assert "agent.interval" in rejected["message"] and str(agent.config) in rejected["message"]
    write_mdstat(other, CLEAN_TEXT.replace("md0", "md9"))
    sub.wait(is_event("redundant", cid="md/md9"), what="a transition after the rejected reload")
    assert agent.proc.poll() is None
    assert "reload rejected" in agent.output()


def test_status_json_and_check_work_without_a_broker(tmp_path):
    mdstat = tmp_path / "mdstat"
    write_mdstat(mdstat, DEGRADED_TEXT)
    cfg = tmp_path / "agent.toml"
    cfg.write_text(agent_config(free_port(), mdstat, tmp_path / "state"))

    def run(*args):
        return hotspare(*args, "--config", str(cfg), timeout=30)

    r = run("status", "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    validate("health", doc)
    assert doc["state"] == "degraded" and group(doc, "md/md0")["margin"] == 0

    table = run("status")
    assert "md/md0" in table.stdout and "degraded" in table.stdout

    r = run("check")
    assert r.returncode == 1
    assert r.stdout.startswith("HOTSPARE WARNING - web-01: md/md0 degraded")
    assert "md/md0_margin=0;1:;0:" in r.stdout and len(r.stdout.strip().splitlines()) == 1

    write_mdstat(mdstat, FAILED_TEXT)
    assert run("check").returncode == 2
    write_mdstat(mdstat, CLEAN_TEXT)
    r = run("check")
    assert (r.returncode, r.stdout.split(" |")[0]) == (
        0,
        "HOTSPARE OK - web-01: 1 group(s) redundant",
    )
    mdstat.unlink()
    mdstat.mkdir()  # unreadable as a file: the source fails, nothing is known
    r = run("check")
    assert r.returncode == 3 and "collector mdstat failed" in r.stdout


def test_prometheus_endpoint(tmp_path, broker, subscribe, run_agent):
    mdstat = tmp_path / "mdstat"
    write_mdstat(mdstat, DEGRADED_TEXT)
    port = free_port()
    sub = subscribe()
    run_agent(
        agent_config(broker.port, mdstat, tmp_path / "state").replace(
            "[[collectors", f'[prometheus]\nlisten = "127.0.0.1:{port}"\n[[collectors'
        )
    )
    sub.wait(is_health("degraded"))
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    assert 'hotspare_group_margin{group="md/md0"} 0.0' in text
    assert 'hotspare_group_state{group="md/md0",kind="raid",state="degraded"} 1.0' in text
    assert 'hotspare_collector_up{collector="mdstat"} 1.0' in text
    assert "hotspare_mqtt_connected 1.0" in text


MD1 = "md1 : active raid1 sdf1[1] sde1[0]\n      102388 blocks super 1.0 [2/2] [UU]\n\n"


def retained_topics(sub) -> set[str]:
    """The retained topics a fresh subscriber receives (a sentinel marks their end)."""
    sub.client.publish("hotspare/v1/sentinel", b"x", qos=1)  # delivered after every retained one
    sub.wait(lambda m: m.topic == "hotspare/v1/sentinel", what="sentinel")
    sub.close()
    return {m.topic for m in sub.messages if m.retain}


def test_a_group_gone_during_an_outage_is_cleared_after_reconnect(tmp_path, subscribe, run_agent):
    port = free_port()
    broker = LocalBroker(port, persistent=True).start()  # keeps retained messages across restarts
    try:
        mdstat = tmp_path / "mdstat"
        with_md1 = DEGRADED_TEXT.replace("md0 :", MD1 + "md0 :")
        write_mdstat(mdstat, with_md1)
        sub = subscribe(port=port)
        agent = run_agent(agent_config(port, mdstat, tmp_path / "state"))
        sub.wait(lambda m: m.topic == f"{BASE}/groups/md/md1" and m.payload, what="md1 retained")
        sub.close()
        broker.stop()
        write_mdstat(mdstat, DEGRADED_TEXT)  # md1 is stopped while the broker is away
        wait_for_log(agent, "group md/md1: redundant -> (gone)", 1)
        # An empty retained message is not delivered to later subscribers, so the clearing is
        # judged by what the broker keeps: first, with the agent held still, that the broker
        # kept md1 across its restart; then, with the agent running, that md1 goes.
        agent.proc.send_signal(signal.SIGSTOP)
        try:
            broker.start()
            assert f"{BASE}/groups/md/md1" in retained_topics(
                subscribe(port=port, client_id="kept")
            )
        finally:
            agent.proc.send_signal(signal.SIGCONT)
        deadline = time.monotonic() + 40
        attempt = 0
        while True:
            attempt += 1
            retained = retained_topics(subscribe(port=port, client_id=f"late{attempt}"))
            md1 = [t for t in retained if t.startswith(f"{BASE}/groups/md/md1") or "/md/md1/" in t]
            if not md1 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert f"{BASE}/groups/md/md0" in retained
        assert not md1, f"still retained after the agent came back: {md1}"
    finally:
        broker.stop()

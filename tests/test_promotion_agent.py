"""The promotion engine inside a real agent process, with a real mosquitto: signed commands
(forged, stale, replayed, unsigned, and the `hotspare promote|failback` CLI), the bond
action on a fixture sysfs tree, and dry-run policies."""

from __future__ import annotations

import json
import os
import time

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from agent.promotion import signing
from tests.conftest import CLEAN, DEGRADED, agent_config, hotspare, write_mdstat
from tests.schemas import validate
from tests.test_promotion import RECORDER, fixture_bond, stand_in

BASE = "hotspare/v1/dc1/web-01"


def publish(port: int, topic: str, payload: bytes) -> None:
    c = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    c.connect("127.0.0.1", port)
    c.loop_start()
    c.publish(topic, payload, qos=1).wait_for_publish(5)
    c.disconnect()
    c.loop_stop()


def command_events(sub) -> list[dict]:
    return [e for e in sub.json_on("/events") if e["type"] == "command"]


def start_standby(broker, subscribe, run_agent, tmp_path, keys, monkeypatch, promotion: str = ""):
    """An agent in the standby role trusting ``keys/trusted``, whose manual promotion
    ("take-over") runs a hook that records its calls; ``promotion``: more [promotion] keys.
    Returns (agent, subscriber, the hook's record file) once its health says standby."""
    mdstat = tmp_path / "mdstat"
    write_mdstat(mdstat, CLEAN)
    record = tmp_path / "hook-calls"
    monkeypatch.setenv("RECORD", str(record))
    hook = stand_in(tmp_path, "failover", RECORDER)
    promo = f"""
[promotion]
trusted_keys = "{keys / "trusted"}"
{promotion}role = "standby"
[[promotion.policy]]
name = "take-over"
when = ["host=failed"]
intent = "promote"
action = "hook"
[promotion.policy.hook]
argv = ["{hook}", "takeover"]
"""
    sub = subscribe()
    agent = run_agent(agent_config(broker.port, mdstat, tmp_path / "state", extra=promo))
    sub.wait(lambda m: m.topic == f"{BASE}/health" and m.json()["role"] == "standby", 20, "health")
    return agent, sub, record


def test_forged_stale_replayed_and_unsigned_commands_are_rejected_and_the_cli_is_accepted(
    broker, subscribe, run_agent, tmp_path, keys, monkeypatch
):
    agent, sub, record = start_standby(
        broker, subscribe, run_agent, tmp_path, keys, monkeypatch, "max_skew = 10.0\n"
    )

    ops = signing.load_private_key(keys / "ops.key")
    mallory = signing.load_private_key(keys / "mallory.key")
    now = time.time()
    good = signing.sign(ops, "promote", "web-01", "dc1", "ops", now, {"policy": "nope"})
    attempts = {
        "unsigned": json.dumps({"command": good["command"]}).encode(),
        "bad_signature": json.dumps(
            signing.sign(mallory, "promote", "web-01", "dc1", "ops", now)
        ).encode(),
        "unknown_sender": json.dumps(
            signing.sign(mallory, "promote", "web-01", "dc1", "mallory", now)
        ).encode(),
        "stale": json.dumps(
            signing.sign(ops, "promote", "web-01", "dc1", "ops", now - 60)
        ).encode(),
        "accepted": json.dumps(good).encode(),
        "replayed": json.dumps(good).encode(),
    }
    for payload in attempts.values():
        publish(broker.port, f"{BASE}/cmd/promote", payload)
    sub.wait(lambda m: len(command_events(sub)) >= len(attempts), 20, "every command audited")
    seen = [(e["decision"], e["reason"]) for e in command_events(sub)]
    for e in command_events(sub):
        validate("event", e)
    rejected = [reason for decision, reason in seen if decision == "rejected"]
    print(f"rejected {len(rejected)} commands: {rejected}")
    assert seen == [
        ("rejected", "unsigned"),
        ("rejected", "bad_signature"),
        ("rejected", "unknown_sender"),
        ("rejected", "stale"),
        ("accepted", "accepted"),
        ("rejected", "replayed"),
    ]
    # the accepted command named a policy that does not exist: suppressed, audited
    sub.wait(
        lambda m: any(
            e["type"] == "promotion" and e["decision"] == "suppressed" and e["manual"]
            for e in sub.json_on("/events")
        ),
        10,
        "the suppressed manual promotion",
    )
    assert not record.exists()

    # the operator's CLI: signed, accepted, engaged, and the outcome printed as JSON
    cli = [f"--url=mqtt://127.0.0.1:{broker.port}", "--site=dc1", f"--key={keys / 'ops.key'}"]
    cli += ["--sender=ops", "--config=/nonexistent.toml", "--json", "--wait=20"]
    r = hotspare("promote", "web-01", *cli)
    assert r.returncode == 0, r.stdout + r.stderr + agent.output()
    out = json.loads(r.stdout)
    assert out["command"]["decision"] == "accepted"
    assert [e["decision"] for e in out["promotion"]][-1] == "engaged"
    sub.wait(
        lambda m: m.topic == f"{BASE}/health" and m.json()["role"] == "primary",
        10,
        "health with role primary",
    )
    call = json.loads(record.read_text().splitlines()[0])
    assert call["argv"] == ["takeover"]
    assert call["env"]["HOTSPARE_MANUAL"] == "1"
    assert call["env"]["HOTSPARE_INTENT"] == "promote"
    # replaying the CLI's own message is rejected
    cmd = next(
        m
        for m in sub.messages
        if m.topic == f"{BASE}/cmd/promote" and out["nonce"].encode() in m.payload
    )
    publish(broker.port, cmd.topic, cmd.payload)
    sub.wait(
        lambda m: (
            command_events(sub)[-1]["reason"] == "replayed"
            and command_events(sub)[-1]["nonce"] == out["nonce"]
        ),
        10,
        "the CLI's command replayed and rejected",
    )
    r = hotspare("failback", "web-01", *cli)
    assert r.returncode == 0, r.stdout + r.stderr
    assert json.loads(r.stdout)["promotion"][-1]["decision"] == "released"
    # a second promote from a key the agent does not trust: rejected, exit status 1
    cli[2] = f"--key={keys / 'mallory.key'}"
    r = hotspare("promote", "web-01", *cli)
    assert r.returncode == 1 and json.loads(r.stdout)["command"]["reason"] == "bad_signature"


def test_bond_moves_to_the_other_nic_when_the_path_fails_and_the_event_says_why(
    broker, subscribe, run_agent, tmp_path
):
    """The trigger is a group transition (md0 degraded, from the mdstat collector): the SNMP
    switch collector that reports switch/tor-a is built separately; the policy and the
    action do not care which collector reported the state."""
    mdstat = tmp_path / "mdstat"
    write_mdstat(mdstat, CLEAN)
    sysfs = tmp_path / "sys"
    base = fixture_bond(sysfs)
    promo = f"""
[promotion]
[[promotion.policy]]
name = "tor-a"
when = ["group:md*=degraded|failed"]
intent = "reroute"
action = "bond"
hold_down = 1.0
cooldown = 2.0
failback = "auto"
failback_after = 2.0
[promotion.policy.bond]
bond = "bond0"
engaged_slave = "eth1"
released_slave = "eth0"
sysfs_root = "{sysfs}"

[[promotion.policy]]
name = "would-step-down"
when = ["host=degraded"]
action = "keepalived"
dry_run = true
[promotion.policy.keepalived]
track_file = "{tmp_path / "never-written"}"
"""
    sub = subscribe()
    agent = run_agent(agent_config(broker.port, mdstat, tmp_path / "state", extra=promo))
    sub.wait(lambda m: m.topic == f"{BASE}/health", 20, "health")
    write_mdstat(mdstat, DEGRADED)

    def promotion_events():
        return [e for e in sub.json_on("/events") if e["type"] == "promotion"]

    sub.wait(
        lambda m: any(e["decision"] == "engaged" for e in promotion_events()),
        20,
        "the bond action",
    )
    engaged = next(e for e in promotion_events() if e["decision"] == "engaged")
    validate("event", engaged)
    assert engaged["id"] == "tor-a" and engaged["action"] == "bond"
    assert engaged["trigger"].startswith("group md") and engaged["trigger"].endswith("degraded")
    assert engaged["message"] == "bond0: active slave eth0 -> eth1"
    assert (base / "active_slave").read_text() == "eth1\n"
    dry = [e for e in promotion_events() if e["id"] == "would-step-down"]
    assert [e["decision"] for e in dry] == ["dry_run"] and dry[0]["dry_run"]
    assert not (tmp_path / "never-written").exists()

    write_mdstat(mdstat, CLEAN)  # the path is back: automatic failback after 2 s clear
    sub.wait(
        lambda m: any(e["decision"] == "released" for e in promotion_events()),
        20,
        "the automatic failback",
    )
    assert (base / "active_slave").read_text() == "eth0\n"
    decisions = [(e["id"], e["decision"]) for e in promotion_events()]
    assert decisions.count(("tor-a", "engaged")) == 1, decisions
    assert "active slave eth1 -> eth0" in agent.output()
    assert os.path.exists(tmp_path / "state" / "outbox.sqlite3")


def test_a_flapping_group_causes_no_action_storm(broker, subscribe, run_agent, tmp_path):
    """md0 fails for 0.8 s (a poll sees it) every 2 s: each blip is reported and suppressed
    by the 3 s hold-down; then it stays failed: exactly one action."""
    mdstat = tmp_path / "mdstat"
    write_mdstat(mdstat, CLEAN)
    track = tmp_path / "track"
    promo = f"""
[promotion]
[[promotion.policy]]
name = "step-down"
when = ["group:md*=degraded|failed"]
action = "keepalived"
hold_down = 3.0
cooldown = 30.0
[promotion.policy.keepalived]
track_file = "{track}"
engaged = -100
"""
    sub = subscribe()
    run_agent(agent_config(broker.port, mdstat, tmp_path / "state", extra=promo))
    sub.wait(lambda m: m.topic == f"{BASE}/health", 20, "health")

    def decisions():
        return [e["decision"] for e in sub.json_on("/events") if e["type"] == "promotion"]

    for _ in range(3):
        write_mdstat(mdstat, DEGRADED)
        time.sleep(0.8)
        write_mdstat(mdstat, CLEAN)
        time.sleep(1.2)
    sub.wait(lambda m: "suppressed" in decisions(), 10, "a suppressed blip")
    flaps = decisions()
    print(f"{len(flaps)} decisions while flapping: {flaps}")
    assert "engage" not in flaps and not track.exists()
    write_mdstat(mdstat, DEGRADED)
    sub.wait(lambda m: "engaged" in decisions(), 20, "the step-down")
    time.sleep(1.5)
    assert decisions().count("engage") == 1 and track.read_text() == "-100\n"


def test_promotion_demo_ends_with_the_standby_promoted_and_the_trail_on_screen():
    r = hotspare("demo", "--promotion", "--duration", "18", "--pace", "4", timeout=90)
    assert r.returncode == 0, r.stderr
    last = r.stdout.rsplit("promotion trail:", 1)[-1]
    assert "db-01 policy step-down: engaged (group power degraded)" in last
    assert "db-02 policy promote-me: engaged (peer db-01" in last
    assert "power state reads off" in last
    assert "db-01 -100, db-02 100; db-01 chassis power off" in last
    tmp = r.stdout.split("logs in ")[1].split(";")[0]
    assert tmp.startswith("/tmp/hotspare-demo-") and not os.path.exists(tmp)


def test_witness_fence_promotes_only_after_the_witness_declared_the_primary_dead(
    broker, subscribe, run_agent, tmp_path, keys, monkeypatch
):
    """db-01's Last Will (published here as the broker would) triggers the standby; without a
    declaration from the witness the fence fails (no promotion, loud event); once the witness
    declares db-01 dead with a signed command, the retry after the cooldown promotes."""
    record = tmp_path / "hook-calls"
    monkeypatch.setenv("RECORD", str(record))
    hook = stand_in(tmp_path, "promote", RECORDER)
    witness = signing.generate(tmp_path / "witness.key")
    (keys / "trusted" / "witness-01.pub").write_bytes(witness.read_bytes())
    mdstat = tmp_path / "mdstat"
    write_mdstat(mdstat, CLEAN)
    config = f"""[agent]
site = "dc1"
host = "web-01"
interval = 0.5
jitter = 0
state_dir = "{tmp_path / "state"}"
[mqtt]
url = "mqtt://127.0.0.1:{broker.port}"
keepalive = 1
[[collectors.mdstat]]
path = "{mdstat}"
[promotion]
trusted_keys = "{keys / "trusted"}"
[[promotion.policy]]
name = "promote-me"
when = ["peer:db-01=offline|failed"]
intent = "promote"
action = "hook"
hold_down = 4.0
cooldown = 3.0
[promotion.policy.hook]
argv = ["{hook}"]
[promotion.policy.fence]
method = "witness"
peer = "db-01"
witness = "witness-01"
wait = 1.0
primary_demotes_after = 0.5
"""
    sub = subscribe()
    run_agent(config)
    sub.wait(lambda m: m.topic == f"{BASE}/health", 20, "health")
    publish(broker.port, "hotspare/v1/dc1/db-01/status", b'{"state":"offline"}')

    def promotions():
        return [e for e in sub.json_on("/events") if e["type"] == "promotion"]

    sub.wait(lambda m: any(e["decision"] == "failed" for e in promotions()), 30, "fence fails")
    failed = next(e for e in promotions() if e["decision"] == "failed")
    assert failed["message"].startswith("no fencing, no promotion: no declaration from witness")
    assert not record.exists()
    key = signing.load_private_key(tmp_path / "witness.key")
    declaration = signing.sign(
        key, "declare_dead", "web-01", "dc1", "witness-01", time.time(), {"about": "db-01"}
    )
    publish(broker.port, f"{BASE}/cmd/declare_dead", json.dumps(declaration).encode())
    sub.wait(lambda m: any(e["decision"] == "engaged" for e in promotions()), 30, "promotion")
    engaged = next(e for e in promotions() if e["decision"] == "engaged")
    assert engaged["message"].startswith("fenced (witness witness-01 declared db-01 dead)")
    assert len(record.read_text().splitlines()) == 1

"""Promotion without peers: the policy engine (clock passed in), signed commands, the
executors against real files and real subprocesses, and the [promotion] config."""

from __future__ import annotations

import json
import os
import stat
import sys
import textwrap
from pathlib import Path

import pytest

from agent import config
from agent.promotion import actions, signing
from agent.promotion.fence import Fenced, Witness
from agent.promotion.policy import (
    Engine,
    Failback,
    Intent,
    Kind,
    PolicySpec,
    Trigger,
    parse_condition,
)
from agent.promotion.settings import build

STEP_DOWN = PolicySpec(
    "step-down",
    (parse_condition("group:*=failed"), parse_condition("group:power=degraded")),
    "keepalived",
    hold_down=2.0,
    cooldown=30.0,
)


def kinds(decisions):
    return [(d.policy, d.kind.value) for d in decisions]


# --- conditions ---------------------------------------------------------------------------


def test_condition_matches_patterns_and_never_unknown():
    c = parse_condition("group:*=failed")
    assert c.match({("group", "power"): "failed"}) == Trigger("group", "power", "failed")
    assert c.match({("group", "power"): "unknown"}) is None
    assert c.match({("component", "psu/1"): "failed"}) is None
    sw = parse_condition("component:switch/tor-a/*=failed|absent")
    assert sw.match({("component", "switch/tor-a/port/Eth1/49"): "failed"}) is not None
    assert sw.match({("component", "switch/tor-b/port/Eth1/49"): "failed"}) is None
    assert parse_condition("broker=lost").pattern == "*"


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("group:power=unknown", "no action ever fires on unknown"),
        ("group:power=degraded|unknown", "no action ever fires on unknown"),
        ("switch:tor-a=failed", "unknown scope 'switch'"),
        ("group:power", "expected SCOPE[:ID]=STATE"),
        ("group:power=ok", "not a group state"),
        ("peer:db-01=lost", "not a peer state"),
    ],
)
def test_condition_errors(text, words):
    with pytest.raises(ValueError, match=words.replace("[", r"\[").replace("]", r"\]")):
        parse_condition(text)


# --- the engine ---------------------------------------------------------------------------


def test_hold_down_then_engage_then_manual_failback():
    e = Engine((STEP_DOWN,))
    degraded = {("group", "power"): "degraded"}
    assert kinds(e.step(degraded, 100.0)) == [("step-down", "pending")]
    assert e.step(degraded, 101.0) == []
    [d] = e.step(degraded, 102.0)
    assert d.kind == Kind.ENGAGE and d.trigger == Trigger("group", "power", "degraded")
    assert e.busy == "step-down"
    e.finished("step-down", "engage", True, 102.5)
    assert e.engaged() == ["step-down"]
    healthy = {("group", "power"): "redundant"}
    assert kinds(e.step(healthy, 103.0)) == [("step-down", "failback_required")]
    assert e.step(healthy, 10_000.0) == []  # manual: never by itself, and said once
    [d] = e.command("failback", 10_001.0)
    assert d.kind == Kind.RELEASE and d.manual
    e.finished("step-down", "release", True, 10_001.5)
    assert e.engaged() == []


def test_flapping_is_suppressed_by_hold_down_and_cooldown():
    """A component flapping every second for a minute: one action, not a storm."""
    e = Engine((STEP_DOWN,))
    executed = []
    t = 0.0
    for i in range(60):
        state = "failed" if i % 2 == 0 else "redundant"
        for d in e.step({("group", "power"): state}, t):
            if d.execute:
                executed.append(t)
                e.finished(d.policy, d.direction, True, t)
        t += 1.0
    assert executed == []  # never held for 2 s
    # now it stays failed for a while, then flaps between failed and degraded (still matching)
    for _ in range(10):
        for d in e.step({("group", "power"): "failed"}, t):
            if d.execute:
                executed.append(t)
                e.finished(d.policy, d.direction, True, t)
        t += 1.0
    assert executed == [62.0]


def test_cooldown_between_automatic_actions_and_a_failed_action_rearms():
    e = Engine((PolicySpec("p", (parse_condition("host=failed"),), "hook", cooldown=30.0),))
    failed = {("host", "h"): "failed"}
    [d] = e.step(failed, 0.0)
    assert d.kind == Kind.ENGAGE
    e.finished("p", "engage", False, 1.0)  # the action failed
    assert kinds(e.step(failed, 2.0)) == [("p", "suppressed")]
    assert e.step(failed, 3.0) == []  # reported once
    [d] = e.step(failed, 31.5)
    assert d.kind == Kind.ENGAGE


def test_one_action_at_a_time():
    a = PolicySpec("a", (parse_condition("group:power=failed"),), "keepalived")
    b = PolicySpec("b", (parse_condition("group:fans=failed"),), "hook")
    e = Engine((a, b))
    facts = {("group", "power"): "failed", ("group", "fans"): "failed"}
    out = e.step(facts, 0.0)
    assert kinds(out) == [("a", "engage"), ("b", "suppressed")]
    assert "busy" in out[1].reason
    assert e.next_deadline(0.0) is None
    e.finished("a", "engage", True, 1.0)
    assert kinds(e.step(facts, 1.0)) == [("b", "engage")]


def test_auto_failback_after_a_stable_period():
    p = PolicySpec(
        "bond",
        (parse_condition("component:switch/tor-a=failed"),),
        "bond",
        Intent.REROUTE,
        cooldown=5.0,
        failback=Failback.AUTO,
        failback_after=60.0,
    )
    e = Engine((p,))
    down = {("component", "switch/tor-a"): "failed"}
    up = {("component", "switch/tor-a"): "ok"}
    [d] = e.step(down, 0.0)
    e.finished("bond", "engage", True, 0.1)
    assert e.step(up, 10.0) == []
    assert e.next_deadline(10.0) == 70.0
    assert e.step(down, 30.0) == []  # failed again: the stable period starts over
    assert e.step(up, 40.0) == []
    assert e.step(up, 99.0) == []
    [d] = e.step(up, 100.0)
    assert d.kind == Kind.RELEASE and "failback_after" in d.reason


def test_dry_run_decides_but_does_not_execute():
    p = PolicySpec("p", (parse_condition("host=failed"),), "hook", dry_run=True)
    e = Engine((p,))
    [d] = e.step({("host", "h"): "failed"}, 0.0)
    assert d.kind == Kind.DRY_RUN and not d.execute and e.busy is None
    assert e.step({("host", "h"): "failed"}, 1.0) == []  # "engaged" in the dry run: once


def test_never_on_unknown_even_when_everything_is_unknown():
    e = Engine((STEP_DOWN,))
    for t in range(10):
        assert e.step({("group", "power"): "unknown", ("host", "h"): "unknown"}, float(t)) == []


def test_manual_commands_pick_by_intent_and_waive_hold_down():
    promote = PolicySpec(
        "promote", (parse_condition("peer:db-01=offline"),), "keepalived", Intent.PROMOTE, 10.0
    )
    e = Engine((STEP_DOWN, promote))
    [d] = e.command("promote", 0.0)
    assert (d.policy, d.kind, d.manual) == ("promote", Kind.ENGAGE, True)
    [d] = e.command("demote", 0.1)
    assert d.kind == Kind.SUPPRESSED and "busy" in d.reason
    e.finished("promote", "engage", True, 1.0)
    [d] = e.command("promote", 2.0)
    assert d.kind == Kind.SUPPRESSED and "no idle policy" in d.reason


# --- signed commands ------------------------------------------------------------------


@pytest.fixture
def keys(tmp_path):
    d = tmp_path / "trusted"
    d.mkdir(mode=0o755)
    ops = signing.generate(tmp_path / "ops.key")
    (d / "ops.pub").write_bytes(ops.read_bytes())
    os.chmod(d / "ops.pub", 0o644)
    signing.generate(tmp_path / "mallory.key")
    return {
        "ops": signing.load_private_key(tmp_path / "ops.key"),
        "mallory": signing.load_private_key(tmp_path / "mallory.key"),
        "trusted": signing.load_trusted(d),
        "dir": d,
    }


def test_signed_commands_accepted_once_and_every_forgery_rejected(keys):
    nonces = signing.NonceCache(30.0)

    def check(payload, verb="promote", now=1000.0):
        blob = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        return signing.verify(blob, verb, "db-02", "dc1", keys["trusted"], now, 30.0, nonces)

    good = signing.sign(keys["ops"], "promote", "db-02", "dc1", "ops", 1000.0)
    assert check(good).ok
    reasons = {
        "replayed": check(good).reason,
        "unsigned": check({"command": good["command"]}).reason,
        "not json": check(b"promote now").reason,
        "forged": check(
            {**signing.sign(keys["mallory"], "promote", "db-02", "dc1", "ops", 1000.0)}
        ).reason,
        "tampered": check(
            {"command": {**good["command"], "verb": "demote"}, "sig": good["sig"]}, "demote"
        ).reason,
        "stranger": check(
            signing.sign(keys["mallory"], "promote", "db-02", "dc1", "mallory", 1000.0)
        ).reason,
        "stale": check(signing.sign(keys["ops"], "promote", "db-02", "dc1", "ops", 900.0)).reason,
        "future": check(signing.sign(keys["ops"], "promote", "db-02", "dc1", "ops", 1100.0)).reason,
        "other host": check(
            signing.sign(keys["ops"], "promote", "db-01", "dc1", "ops", 1000.0)
        ).reason,
        "other topic": check(
            signing.sign(keys["ops"], "promote", "db-02", "dc1", "ops", 1000.0), "demote"
        ).reason,
    }
    assert reasons == {
        "replayed": "replayed",
        "unsigned": "unsigned",
        "not json": "unsigned",
        "forged": "bad_signature",
        "tampered": "bad_signature",
        "stranger": "unknown_sender",
        "stale": "stale",
        "future": "stale",
        "other host": "wrong_target",
        "other topic": "wrong_verb",
    }


def test_key_files_must_be_private_and_trusted_dirs_not_writable(tmp_path, keys):
    key = tmp_path / "ops.key"
    os.chmod(key, 0o640)
    with pytest.raises(signing.KeyFileError, match="mode 0640"):
        signing.load_private_key(key)
    os.chmod(keys["dir"], 0o777)
    with pytest.raises(signing.KeyFileError, match="writable by group or others"):
        signing.load_trusted(keys["dir"])
    os.chmod(keys["dir"], 0o755)
    with pytest.raises(FileExistsError):
        signing.generate(key)
    assert stat.S_IMODE((tmp_path / "mallory.key").stat().st_mode) == 0o600


# --- executors --------------------------------------------------------------------------

CTX = actions.Context(
    "p", "reroute", "engage", "dc1", "web-01", Trigger("component", "switch/tor-a", "failed")
)


def fixture_bond(root: Path, active: str = "eth0") -> Path:
    base = root / "class" / "net" / "bond0" / "bonding"
    base.mkdir(parents=True)
    (base / "slaves").write_text("eth0 eth1\n")
    (base / "mode").write_text("active-backup 1\n")
    (base / "active_slave").write_text(f"{active}\n")
    return base


def test_bond_moves_the_active_slave_and_back(tmp_path):
    base = fixture_bond(tmp_path)
    bond = actions.Bond("bond0", "eth1", "eth0", tmp_path)
    r = bond.run(CTX)
    assert r.ok and r.message == "bond0: active slave eth0 -> eth1"
    assert (base / "active_slave").read_text() == "eth1\n"
    r = bond.run(actions.Context("p", "reroute", "release", "dc1", "web-01"))
    assert r.ok and (base / "active_slave").read_text() == "eth0\n"
    assert not actions.Bond("bond0", "eth7", "eth0", tmp_path).run(CTX).ok
    assert "No such file" in actions.Bond("bond1", "eth1", "eth0", tmp_path).run(CTX).message


def test_keepalived_track_file(tmp_path):
    track = tmp_path / "track"
    k = actions.Keepalived(track, -100, 0)
    assert k.run(CTX).message.endswith("(none) -> -100")
    assert track.read_text() == "-100\n"
    assert k.run(actions.Context("p", "step_down", "release", "dc1", "h")).ok
    assert track.read_text() == "0\n"
    assert not actions.Keepalived(tmp_path / "no" / "track").run(CTX).ok


def stand_in(tmp_path: Path, name: str, body: str) -> Path:
    """A real executable that records its argv and environment, standing in for a tool."""
    path = tmp_path / name
    path.write_text(f"#!{sys.executable}\n{textwrap.dedent(body)}")
    path.chmod(0o755)
    return path


RECORDER = """\
import json, os, sys
with open(os.environ["RECORD"], "a") as fh:
    fh.write(json.dumps({"argv": sys.argv[1:], "env": {k: v for k, v in os.environ.items()
        if k.startswith("HOTSPARE_")}}) + "\\n")
sys.exit(int(os.environ.get("EXIT", "0")))
"""


def test_pacemaker_sets_health_attributes_with_attrd_updater(tmp_path, monkeypatch):
    """attrd_updater is not installed here: a stand-in records the argv it is called with."""
    record = tmp_path / "calls"
    monkeypatch.setenv("RECORD", str(record))
    tool = stand_in(tmp_path, "attrd_updater", RECORDER)
    pm = actions.Pacemaker(command=str(tool))
    ctx = actions.Context(
        "p", "step_down", "engage", "dc1", "h", Trigger("group", "power", "degraded")
    )
    assert pm.run(ctx).ok
    failed = actions.Context(
        "p", "step_down", "engage", "dc1", "h", Trigger("group", "md/md0", "failed")
    )
    assert pm.run(failed).ok
    assert pm.run(actions.Context("p", "step_down", "release", "dc1", "h")).ok
    calls = [json.loads(line)["argv"] for line in record.read_text().splitlines()]
    assert calls == [
        ["-n", "#health-power", "-U", "yellow"],
        ["-n", "#health-md-md0", "-U", "red"],
        ["-n", "#health-md-md0", "-U", "green"],
    ]


def test_hook_gets_the_transition_in_its_environment_and_a_timeout(tmp_path, monkeypatch):
    record = tmp_path / "calls"
    monkeypatch.setenv("RECORD", str(record))
    tool = stand_in(tmp_path, "hook", RECORDER)
    r = actions.Hook((str(tool), "--really; rm -rf /"), 10).run(CTX)
    assert r.ok
    [call] = [json.loads(line) for line in record.read_text().splitlines()]
    assert call["argv"] == ["--really; rm -rf /"]  # no shell
    assert call["env"]["HOTSPARE_ID"] == "switch/tor-a"
    assert call["env"]["HOTSPARE_STATE"] == "failed"
    assert call["env"]["HOTSPARE_DIRECTION"] == "engage"
    monkeypatch.setenv("EXIT", "3")
    assert actions.Hook((str(tool),), 10).run(CTX).message.endswith("exit status 3")
    slow = stand_in(tmp_path, "slow", "import time\ntime.sleep(30)\n")
    assert "killed after the timeout of 0.5 s" in actions.Hook((str(slow),), 0.5).run(CTX).message
    assert not actions.Hook((str(tmp_path / "missing"),), 1).run(CTX).ok


def test_witness_fence_needs_a_declaration_from_the_witness(tmp_path):
    track = tmp_path / "track"
    w = Witness("witness-01", max_age=30, wait=0.2, clock=lambda: 1000.0)
    gated = Fenced(w, "db-01", actions.Keepalived(track, 100, 0))
    ctx = actions.Context("promote", "promote", "engage", "dc1", "db-02")
    r = gated.run(ctx)
    assert not r.ok and r.message.startswith("no fencing, no promotion")
    assert not track.exists()
    assert not w.declare("mallory", "db-01", 1000.0)
    assert not gated.run(ctx).ok
    assert w.declare("witness-01", "db-01", 995.0)
    assert gated.run(ctx).ok and track.read_text() == "100\n"


# --- config -----------------------------------------------------------------------------

BASE = '[agent]\nsite = "dc1"\nhost = "db-02"\n'


def load(tmp_path, text):
    path = tmp_path / "agent.toml"
    path.write_text(BASE + textwrap.dedent(text))
    return config.load(path)


def test_the_three_example_policies_load(tmp_path):
    pw = tmp_path / "bmc.pass"
    pw.write_text("secret\n")
    pw.chmod(0o600)
    cfg = load(
        tmp_path,
        f"""
        [promotion]
        trusted_keys = "{tmp_path}"

        [[promotion.policy]]
        name = "step-down"
        when = ["group:*=failed", "group:power=degraded"]
        action = "keepalived"
        hold_down = 1.0
        [promotion.policy.keepalived]
        track_file = "/run/hotspare/vrrp-track"
        engaged = -100

        [[promotion.policy]]
        name = "tor-a"
        when = ["component:switch/tor-a=failed", "component:switch/tor-a/port/Eth1/49=failed"]
        action = "bond"
        intent = "reroute"
        failback = "auto"
        [promotion.policy.bond]
        bond = "bond0"
        engaged_slave = "eth1"
        released_slave = "eth0"

        [[promotion.policy]]
        name = "promote-me"
        when = ["peer:db-01=offline|failed"]
        action = "keepalived"
        intent = "promote"
        hold_down = 3.0
        [promotion.policy.keepalived]
        track_file = "/run/hotspare/vrrp-track"
        engaged = 100
        [promotion.policy.fence]
        method = "ipmi"
        peer = "db-01"
        address = "10.0.0.11"
        username = "fence"
        password_file = "{pw}"
        """,
    )
    p = cfg.promotion
    assert [x.spec.name for x in p.policies] == ["step-down", "tor-a", "promote-me"]
    assert p.peers == ("db-01",)
    assert p.policies[0].options["engaged"] == -100
    assert p.policies[2].fence.password == "secret"
    assert "secret" not in repr(p)


@pytest.mark.parametrize(
    ("text", "key", "words"),
    [
        (
            '[[promotion.policy]]\nname = "x"\nwhen = ["group:power=unknown"]\naction = "hook"\n'
            '[promotion.policy.hook]\nargv = ["/bin/true"]\n',
            "promotion.policy[0].when[0]",
            "no action ever fires on unknown",
        ),
        (
            '[[promotion.policy]]\nname = "x"\nwhen = ["peer:db-01=offline"]\nintent = "promote"\n'
            'action = "keepalived"\n[promotion.policy.keepalived]\ntrack_file = "/t"\n',
            "promotion.policy[0].fence",
            "no fencing, no promotion",
        ),
        (
            '[[promotion.policy]]\nname = "x"\nwhen = ["host=failed"]\naction = "keepalived"\n'
            '[promotion.policy.keepalived]\ntrack_file = "/t"\nengaged = -300\n',
            "promotion.policy[0].keepalived.engaged",
            "from -254 to 254",
        ),
        (
            '[[promotion.policy]]\nname = "x"\nwhen = ["host=failed"]\naction = "keepalived"\n'
            '[promotion.policy.hook]\nargv = ["/bin/true"]\n',
            "promotion.policy[0].hook",
            "but the action is 'keepalived'",
        ),
        (
            '[[promotion.policy]]\nname = "x"\nwhen = ["host=failed"]\naction = "sms"\n',
            "promotion.policy[0].action",
            "expected one of",
        ),
        (
            '[promotion]\nsigning_keys = "/k"\n',
            "promotion.signing_keys",
            "unknown key",
        ),
        (
            '[[promotion.policy]]\nname = "x"\nwhen = ["peer:db-01=offline"]\nintent = "promote"\n'
            'action = "hook"\nhold_down = 5.0\n[promotion.policy.hook]\nargv = ["/bin/true"]\n'
            '[promotion.policy.fence]\nmethod = "witness"\npeer = "db-01"\nwitness = "w"\n'
            "primary_demotes_after = 10.0\n",
            "promotion.policy[0].hold_down",
            "must exceed",
        ),
    ],
)
def test_config_errors_name_file_and_key(tmp_path, text, key, words):
    with pytest.raises(config.ConfigError) as e:
        load(tmp_path, text)
    assert e.value.key == key
    assert words in e.value.message
    assert e.value.file == str(tmp_path / "agent.toml")


def test_without_promotion_nothing_is_active(tmp_path):
    assert not load(tmp_path, "").promotion.active
    assert build([], Path("x"), 30).policies == ()


def test_the_sample_promotion_tables_load(tmp_path):
    """The commented promotion block of the sample, uncommented once, is a valid policy."""
    from agent.sample import render

    text = render()
    lines = [line[2:] for line in text[text.index("# [promotion]\n") :].splitlines()]
    keep, tables = [], {"[promotion]", "[[promotion.policy]]", "[promotion.policy.keepalived]"}
    on = False
    for line in lines:
        if line.startswith("["):
            on = line.split("#")[0].strip() in tables
        if on:
            keep.append(line)
    cfg = load(tmp_path, "\n".join(keep) + "\n")
    [policy] = cfg.promotion.policies
    assert policy.spec.action == "keepalived" and policy.options["engaged"] == -254


def test_unknown_is_no_recovery_for_failback():
    """An engaged policy whose facts become unknown (a BMC stops answering) stays engaged:
    no failback_required, and the automatic failback's clear period does not run."""
    p = PolicySpec(
        "p",
        (parse_condition("group:power=degraded|failed"),),
        "keepalived",
        cooldown=0.0,
        failback=Failback.AUTO,
        failback_after=10.0,
    )
    e = Engine((p,))
    [d] = e.step({("group", "power"): "degraded"}, 0.0)
    e.finished("p", "engage", True, 0.0)
    for t in range(1, 30):
        assert e.step({("group", "power"): "unknown"}, float(t)) == []
    assert e.engaged() == ["p"]
    assert e.step({("group", "power"): "redundant"}, 30.0) == []  # the clear period starts
    [d] = e.step({("group", "power"): "redundant"}, 40.0)
    assert d.kind == Kind.RELEASE


def test_the_event_examples_in_the_docs_match_the_schema():
    from tests.schemas import validate

    text = (Path(__file__).parent.parent / "docs" / "promotion.md").read_text()
    blocks = [b.split("```", 1)[0] for b in text.split("```json\n")[1:]]
    events = [json.loads(b) for b in blocks if '"schema"' in b]
    assert {e["type"] for e in events} == {"promotion", "command"}
    for e in events:
        validate("event", e)


def test_policies_engaged_before_a_restart_stay_engaged(tmp_path):
    from agent.promotion.runtime import Runtime

    cfg = load(
        tmp_path,
        f"""
        [[promotion.policy]]
        name = "step-down"
        when = ["host=failed"]
        action = "keepalived"
        [promotion.policy.keepalived]
        track_file = "{tmp_path / "track"}"
        """,
    )
    saved: list[bytes] = []
    rt = Runtime(
        cfg.promotion,
        "dc1",
        "db-02",
        "hotspare/v1",
        saved.append,
        lambda: 1,
        lambda: 0.0,
        save=saved.append,
        saved=b'["step-down", "gone-policy"]',
    )
    assert rt.engine.engaged() == ["step-down"]
    [d] = rt.engine.command("failback", 10.0)
    assert d.kind == Kind.RELEASE

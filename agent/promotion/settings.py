"""``[promotion]`` and ``[[promotion.policy]]``: parsed as strictly as the rest of the config.

``agent.config.load`` hands every file's ``promotion`` table to ``collect`` and calls
``build`` at the end; errors are ``ConfigError(file, key, message)`` like everywhere else.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from collectors.base import Option

from .policy import Failback, Intent, PolicySpec, parse_condition

ACTIONS = ("keepalived", "pacemaker", "bond", "hook", "peer")
FENCES = ("ipmi", "witness")

PROMOTION_OPTIONS: dict[str, Option] = {
    "signing_key": Option(
        str,
        "",
        "Ed25519 private key (PEM, mode 0600) this agent signs the commands it sends with "
        "(peer actions). `hotspare keygen` writes one. Empty: this agent sends no commands.",
    ),
    "trusted_keys": Option(
        str,
        "",
        "Directory of <sender>.pub public keys whose signed commands this agent accepts on "
        "its cmd/ topics (writable by root only). Empty: every command is rejected.",
    ),
    "max_skew": Option(
        float,
        30.0,
        "Seconds a command's timestamp may differ from this host's clock; older is stale.",
    ),
    "role": Option(
        str,
        "none",
        "This host's role at start, reported in health: an engaged promote policy makes it "
        "primary, an engaged step_down policy standby.",
        choices=("none", "primary", "standby"),
    ),
}

POLICY_OPTIONS: dict[str, Option] = {
    "name": Option(str, None, "Policy name, unique per agent.", required=True, example="step-down"),
    "when": Option(
        list,
        None,
        "Conditions, any of which triggers: SCOPE[:ID]=STATE[|STATE]. Scopes: group, "
        "component, host (ids may use * and ?), peer (a host name; states redundant, "
        "degraded, failed, offline), broker (connected, lost). Never unknown.",
        required=True,
        example=["group:*=failed", "group:power=degraded"],
    ),
    "action": Option(
        str,
        None,
        "The executor; its settings go in the [promotion.policy.<action>] table.",
        required=True,
        choices=ACTIONS,
        example="keepalived",
    ),
    "intent": Option(
        str,
        "step_down",
        "What the action means: step_down (`hotspare demote` engages it), promote "
        "(`hotspare promote`), reroute (a path moves, no role change).",
        choices=tuple(i.value for i in Intent),
    ),
    "hold_down": Option(float, 0.0, "Seconds a condition must persist before the action runs."),
    "cooldown": Option(float, 60.0, "Seconds between two automatic actions of this policy."),
    "failback": Option(
        str,
        "manual",
        "manual: undo only on `hotspare failback`; auto: undo after failback_after seconds clear.",
        choices=tuple(f.value for f in Failback),
    ),
    "failback_after": Option(
        float, 300.0, "Seconds the condition must stay clear before an automatic failback."
    ),
    "dry_run": Option(bool, False, "Decide and report (events), but execute nothing."),
}

ACTION_OPTIONS: dict[str, dict[str, Option]] = {
    "keepalived": {
        "track_file": Option(
            str,
            None,
            "The file a keepalived track_file block reads.",
            required=True,
            example="/run/hotspare/vrrp-track",
        ),
        "engaged": Option(
            int,
            -254,
            "Value written on engage (x weight is added to the VRRP priority; with weight 0 "
            "any non-zero value means FAULT). Negative steps down, positive takes over.",
        ),
        "released": Option(int, 0, "Value written on release (failback)."),
    },
    "pacemaker": {
        "attribute": Option(
            str, "", "Attribute suffix after #health-. Empty: the triggering group's id."
        ),
        "command": Option(str, "attrd_updater", "The attrd_updater command."),
        "timeout": Option(float, 10.0, "Seconds attrd_updater may take."),
    },
    "bond": {
        "bond": Option(str, None, "The bond device.", required=True, example="bond0"),
        "engaged_slave": Option(
            str, None, "Slave to make active on engage.", required=True, example="eth1"
        ),
        "released_slave": Option(
            str, None, "Slave to make active on release.", required=True, example="eth0"
        ),
        "sysfs_root": Option(str, "/sys", "Where sysfs is mounted."),
    },
    "hook": {
        "argv": Option(
            list,
            None,
            "Command and arguments (no shell); the decision is in HOTSPARE_* variables.",
            required=True,
            example=["/usr/local/sbin/failover"],
        ),
        "timeout": Option(float, 30.0, "Seconds before the command is killed (a failure)."),
    },
    "peer": {
        "target": Option(str, None, "The agent (host) to command.", required=True, example="db-02"),
        "engage_verb": Option(
            str,
            "promote",
            "Verb sent on engage.",
            choices=("promote", "demote", "failback", "declare_dead"),
        ),
        "release_verb": Option(
            str, "failback", "Verb sent on release.", choices=("promote", "demote", "failback")
        ),
        "policy": Option(str, "", "The target's policy to act on. Empty: the first that fits."),
    },
}

SIGNED_INTS = ("engaged", "released")  # may be negative: checked here, not by agent.config

FENCE_OPTIONS: dict[str, Option] = {
    "method": Option(str, None, "ipmi or witness.", required=True, choices=FENCES, example="ipmi"),
    "peer": Option(str, None, "The host to fence.", required=True, example="db-01"),
    "address": Option(str, "", "ipmi: the peer's BMC address."),
    "port": Option(int, 623, "ipmi: the BMC's port."),
    "username": Option(str, "", "ipmi: BMC user (needs operator privilege for power control)."),
    "password_file": Option(str, "", "ipmi: file with the BMC password (mode 0600)."),
    "verify_timeout": Option(float, 20.0, "ipmi: seconds to wait for the power state to read off."),
    "witness": Option(str, "", "witness: the host whose declare_dead command counts."),
    "max_age": Option(float, 30.0, "witness: seconds a declaration stays valid."),
    "wait": Option(float, 10.0, "witness: seconds to wait for a declaration at promotion time."),
    "primary_demotes_after": Option(
        float,
        0.0,
        "witness: the hold_down of the primary's broker=lost step-down policy; hold_down "
        "here must exceed it plus twice [mqtt] keepalive plus 1 s (see docs/promotion.md).",
    ),
}


@dataclass(frozen=True, slots=True)
class FenceSettings:
    method: str
    peer: str
    options: Mapping[str, Any]
    password: str = field(default="", repr=False)


@dataclass(frozen=True, slots=True)
class PolicySettings:
    spec: PolicySpec
    options: Mapping[str, Any]  # the action's table
    fence: FenceSettings | None = None


@dataclass(frozen=True, slots=True)
class PromotionSettings:
    signing_key: str = ""
    trusted_keys: str = ""
    max_skew: float = 30.0
    policies: tuple[PolicySettings, ...] = ()
    role: str = "none"

    @property
    def peers(self) -> tuple[str, ...]:
        return tuple(
            sorted({c.pattern for p in self.policies for c in p.spec.when if c.scope == "peer"})
        )

    @property
    def active(self) -> bool:
        return bool(self.policies or self.trusted_keys or self.role != "none")


def build(parts: list[tuple[Path, Any]], main: Path, keepalive: float) -> PromotionSettings:
    """The merged ``[promotion]`` of every file: keys override, policies add up."""
    from ..config import ConfigError, _array, _complete, _table, _validate

    top: dict[str, Any] = {}
    origin: dict[str, Path] = {}
    raw: list[tuple[Path, int, dict[str, Any]]] = []
    for file, value in parts:
        table = dict(_table(file, "promotion", value))
        entries = table.pop("policy", [])
        top.update(_validate(file, "promotion", table, PROMOTION_OPTIONS))
        origin.update({k: file for k in table})
        for entry in _array(file, "promotion.policy", entries):
            raw.append((file, len(raw), entry))
    v = _complete(main, "promotion", top, PROMOTION_OPTIONS)
    names: dict[str, Path] = {}
    policies = []
    for file, i, entry in raw:
        where = f"promotion.policy[{i}]"
        entry = dict(entry)
        action_table = {a: entry.pop(a) for a in ACTIONS if a in entry}
        fence_table = entry.pop("fence", None)
        p = _complete(file, where, _validate(file, where, entry, POLICY_OPTIONS), POLICY_OPTIONS)
        if p["name"] in names:
            raise ConfigError(
                file,
                f"{where}.name",
                f"duplicate policy {p['name']!r} (also in {names[p['name']]})",
            )
        names[p["name"]] = file
        if not p["when"]:
            raise ConfigError(file, f"{where}.when", "expected at least one condition")
        conditions = []
        for j, text in enumerate(p["when"]):
            try:
                c = parse_condition(text)
            except ValueError as e:
                raise ConfigError(file, f"{where}.when[{j}]", str(e)) from None
            if c.scope == "peer" and any(ch in c.pattern for ch in "*?["):
                raise ConfigError(
                    file, f"{where}.when[{j}]", "a peer condition names one host, no wildcards"
                )
            conditions.append(c)
        extra = set(action_table) - {p["action"]}
        if extra:
            raise ConfigError(
                file,
                f"{where}.{sorted(extra)[0]}",
                f"settings for action {sorted(extra)[0]!r}, but the action is {p['action']!r}",
            )
        akey = f"{where}.{p['action']}"
        options = ACTION_OPTIONS[p["action"]]
        a_table = dict(_table(file, akey, action_table.get(p["action"], {})))
        signed = {k: a_table.pop(k) for k in SIGNED_INTS if k in a_table}
        a = _complete(file, akey, _validate(file, akey, a_table, options), options)
        for key, value in signed.items():
            if not isinstance(value, int) or isinstance(value, bool) or not -254 <= value <= 254:
                raise ConfigError(
                    file, f"{akey}.{key}", f"expected an integer from -254 to 254, got {value!r}"
                )
            a[key] = value
        if p["action"] == "hook" and not a["argv"]:
            raise ConfigError(file, f"{akey}.argv", "expected a command")
        fence = None
        if fence_table is not None:
            fence = _fence(file, f"{where}.fence", _table(file, f"{where}.fence", fence_table))
        spec = PolicySpec(
            name=p["name"],
            when=tuple(conditions),
            action=p["action"],
            intent=Intent(p["intent"]),
            hold_down=p["hold_down"],
            cooldown=p["cooldown"],
            failback=Failback(p["failback"]),
            failback_after=p["failback_after"],
            dry_run=p["dry_run"],
            fence=fence.method if fence else "none",
        )
        peers = {c.pattern for c in conditions if c.scope == "peer"}
        if spec.intent == Intent.PROMOTE and peers and fence is None:
            raise ConfigError(
                file,
                f"{where}.fence",
                "a promote policy triggered by a peer needs a [promotion.policy.fence] table: "
                "no fencing, no promotion",
            )
        if fence is not None and fence.method == "witness":
            # the isolated primary has begun stepping down by D + 2K + 1 s (docs/promotion.md)
            need = fence.options["primary_demotes_after"] + 2 * keepalive + 1.0
            if fence.options["primary_demotes_after"] <= 0 or spec.hold_down <= need:
                raise ConfigError(
                    file,
                    f"{where}.hold_down",
                    f"with a witness fence, hold_down ({spec.hold_down:g} s) must exceed "
                    f"fence.primary_demotes_after (> 0) + 2 x [mqtt] keepalive + 1 s ({need:g} s), "
                    "so an isolated primary has stepped down before this host takes over",
                )
        policies.append(PolicySettings(spec, a, fence))
    return PromotionSettings(
        v["signing_key"], v["trusted_keys"], v["max_skew"], tuple(policies), v["role"]
    )


def _fence(file: Path, where: str, table: Mapping[str, Any]) -> FenceSettings:
    from collectors.base import read_secret

    from ..config import ConfigError, _complete, _validate

    f = _complete(file, where, _validate(file, where, table, FENCE_OPTIONS), FENCE_OPTIONS)
    password = ""
    if f["method"] == "ipmi":
        if not f["address"]:
            raise ConfigError(file, f"{where}.address", "the ipmi fence needs the BMC's address")
        try:
            password = read_secret(f["password_file"])
        except OSError as e:
            raise ConfigError(file, f"{where}.password_file", e.strerror or str(e)) from None
    elif not f["witness"]:
        raise ConfigError(file, f"{where}.witness", "the witness fence needs the witness host")
    return FenceSettings(f["method"], f["peer"], f, password)

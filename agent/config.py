"""The agent's configuration: TOML, strictly validated, with errors that name file and key.

``/etc/hotspare/agent.toml`` is read first, then ``agent.d/*.toml`` beside it in name
order. Keys of ``[agent]``, ``[mqtt]`` and ``[prometheus]`` in a later file override
earlier ones; ``[[collectors.<type>]]`` and ``[[groups]]`` entries add up. Unknown keys
are rejected. Every key is declared once, in the tables below, and the sample config
is generated from the same tables, so the two cannot drift apart.
"""

from __future__ import annotations

import importlib
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

from collectors.base import GroupKind, GroupSpec, Option, read_secret

from .mqtturl import MqttEndpoint
from .tomlfile import ConfigError, typed
from .tomlfile import describe as _describe
from .tomlfile import read as _read
from .tomlfile import table as _table

DEFAULT_PATH = "/etc/hotspare/agent.toml"
EXIT_CONFIG = 78  # EX_CONFIG from sysexits.h

# Collector type -> module. Modules are imported only when a config names the type,
# so a library that no configured collector needs is never loaded.
COLLECTOR_MODULES = {
    "mdstat": "collectors.mdstat",
    "ipmi": "collectors.ipmi",
    "bond": "collectors.bond",
    "nic": "collectors.nic",
    "hwmon": "collectors.hwmon",
    "raidctl": "collectors.raidctl",
    "smart": "collectors.smart",
    "zfs": "collectors.zfs",
    "snmp": "collectors.snmp",
}


AGENT_OPTIONS: dict[str, Option] = {
    "site": Option(
        str,
        None,
        "The site (datacenter) this host belongs to; part of every MQTT topic.",
        required=True,
        example="dc1",
    ),
    "host": Option(
        str, "", "This host's name in topics and payloads. Empty: the machine's hostname."
    ),
    "interval": Option(float, 5.0, "Seconds between polls: the default for every collector."),
    "timeout": Option(float, 10.0, "Seconds a poll may take before its components become unknown."),
    "jitter": Option(
        float, 1.0, "Upper bound, in seconds, of the random delay before a collector's first poll."
    ),
    "heartbeat": Option(
        float, 30.0, "Seconds between re-publications of the health document when nothing changes."
    ),
    "stale_after": Option(
        float,
        0.0,
        "Seconds without a reading after which a component is unknown. 0: three times the slowest collector's interval plus the longest timeout.",
    ),
    "rise": Option(int, 1, "Consecutive OK observations before a recovery is reported."),
    "fall": Option(int, 1, "Consecutive observations of a worse state before it is reported."),
    "dwell": Option(float, 0.0, "Seconds a new state must also have lasted before it is reported."),
    "state_dir": Option(
        str, "/var/lib/hotspare", "Where the outbox and the sequence counter live."
    ),
    "log_level": Option(str, "info", "Log level.", choices=("debug", "info", "warning", "error")),
    "event_socket": Option(
        str,
        "",
        "Unix datagram socket on which hotspare mdadm-event (mdadm's PROGRAM) asks for an "
        "immediate re-poll. Empty: event.sock in state_dir.",
    ),
}

MQTT_OPTIONS: dict[str, Option] = {
    "url": Option(
        str,
        "mqtt://127.0.0.1:1883",
        "The broker: mqtt://HOST[:PORT] or mqtts://HOST[:PORT] for TLS.",
    ),
    "protocol": Option(str, "5", "MQTT protocol version.", choices=("5", "3.1.1")),
    "client_id": Option(str, "", "Client id. Empty: hotspare-<site>-<host>."),
    "topic_prefix": Option(str, "hotspare/v1", "The first levels of every topic."),
    "keepalive": Option(
        int, 30, "Keepalive in seconds; the broker publishes the Last Will after 1.5 times this."
    ),
    "username": Option(str, "", "User name. Empty: connect anonymously."),
    "password_file": Option(
        str, "", "A file holding the password (first line), readable by the agent only."
    ),
    "ca_file": Option(
        str, "", "CA bundle to verify the broker with (mqtts://). Empty: the system's CAs."
    ),
    "cert_file": Option(str, "", "Client certificate for mutual TLS."),
    "key_file": Option(str, "", "Private key of the client certificate."),
    "tls_insecure": Option(bool, False, "Skip the broker's host name check. For tests only."),
    "outbox_max": Option(
        int,
        10000,
        "Events kept on disk while the broker is unreachable; the oldest go first beyond this.",
    ),
}

PROMETHEUS_OPTIONS: dict[str, Option] = {
    "listen": Option(
        str, "", "Serve Prometheus metrics on this HOST:PORT, e.g. 127.0.0.1:9877. Empty: off."
    ),
}

COLLECTOR_COMMON: dict[str, Option] = {
    "name": Option(
        str,
        "",
        "Instance name, unique per agent. Empty: the collector type, numbered from the second on.",
    ),
    "interval": Option(float, 0.0, "Seconds between polls. 0: [agent] interval."),
    "timeout": Option(float, 0.0, "Seconds a poll may take. 0: [agent] timeout."),
}

TRAPS_OPTIONS: dict[str, Option] = {
    "targets": Option(
        list,
        [],
        'Send every transition as an SNMPv2c notification (HOTSPARE-MIB, mibs/) to these HOST:PORT receivers, e.g. ["192.0.2.50:162"]. Empty: no traps.',
    ),
    "community": Option(str, "", "Community of the notifications. Prefer community_file."),
    "community_file": Option(
        str, "", "A file holding the community (first line), readable by the agent's user only."
    ),
    "inform": Option(
        bool,
        False,
        "Send InformRequests instead of traps: each receiver acknowledges every notification, and an unacknowledged one is resent (inform_timeout, inform_retries).",
    ),
    "inform_timeout": Option(
        float, 2.0, "Seconds to wait for a receiver's acknowledgement before resending an inform."
    ),
    "inform_retries": Option(
        int, 2, "Resends of an unacknowledged inform; then it is given up and logged."
    ),
}

GROUP_OPTIONS: dict[str, Option] = {
    "id": Option(
        str,
        None,
        "Group id. An id a collector discovered (e.g. md/md0) overrides that group.",
        required=True,
        example="md/md0",
    ),
    "required": Option(int, None, "How many members must be serving.", required=True, example=1),
    "members": Option(list, [], "Component ids. Empty: keep the discovered group's members."),
    "kind": Option(str, "custom", "Group kind.", choices=tuple(k.value for k in GroupKind)),
}


@dataclass(frozen=True, slots=True)
class AgentSettings:
    site: str
    host: str
    interval: float
    timeout: float
    jitter: float
    heartbeat: float
    stale_after: float
    rise: int
    fall: int
    dwell: float
    state_dir: str
    log_level: str
    event_socket: str

    @property
    def event_socket_path(self) -> str:
        return self.event_socket or os.path.join(self.state_dir, "event.sock")


@dataclass(frozen=True, slots=True)
class MqttSettings(MqttEndpoint):
    url: str
    protocol: str
    client_id: str
    topic_prefix: str
    keepalive: int
    username: str
    password: str = field(repr=False)  # read from password_file; never logged
    ca_file: str
    cert_file: str
    key_file: str
    tls_insecure: bool
    outbox_max: int


@dataclass(frozen=True, slots=True)
class CollectorSettings:
    type: str
    name: str
    interval: float
    timeout: float
    options: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Config:
    agent: AgentSettings
    mqtt: MqttSettings
    prometheus_listen: str
    collectors: tuple[CollectorSettings, ...]
    groups: tuple[GroupSpec, ...]
    files: tuple[str, ...]
    traps: Mapping[str, Any] = field(default_factory=dict, repr=False)  # [traps]: has a secret
    promotion: Any = None  # agent.promotion.settings.PromotionSettings (parsed there)


def collector_module(kind: str) -> ModuleType:
    return importlib.import_module(COLLECTOR_MODULES[kind])


def load(path: str | os.PathLike[str] = DEFAULT_PATH) -> Config:
    """Read and validate the config at ``path`` and its ``agent.d/*.toml`` drop-ins."""
    main = Path(path)
    files = [main, *sorted((main.parent / "agent.d").glob("*.toml"))]
    merged: dict[str, dict[str, Any]] = {"agent": {}, "mqtt": {}, "prometheus": {}, "traps": {}}
    origin: dict[str, Path] = {}  # "section.key" -> file, for errors after the merge
    collectors: list[tuple[Path, str, int, dict[str, Any]]] = []
    groups: list[GroupSpec] = []
    promotion: list[tuple[Path, Any]] = []
    for file in files:
        doc = _read(file)
        for section, value in doc.items():
            if section in merged:
                table = _table(file, section, value)
                options = _SECTIONS[section]
                merged[section].update(_validate(file, section, table, options))
                origin.update({f"{section}.{k}": file for k in table})
            elif section == "collectors":
                for kind, entries in _table(file, section, value).items():
                    if kind not in COLLECTOR_MODULES:
                        known = ", ".join(sorted(COLLECTOR_MODULES))
                        raise ConfigError(
                            file, f"collectors.{kind}", f"unknown collector type; known: {known}"
                        )
                    for i, entry in enumerate(_array(file, f"collectors.{kind}", entries)):
                        collectors.append((file, kind, i, entry))
            elif section == "groups":
                for i, entry in enumerate(_array(file, "groups", value)):
                    groups.append(_group(file, f"groups[{i}]", entry))
            elif section == "promotion":
                promotion.append((file, value))
            else:
                raise ConfigError(
                    file,
                    section,
                    "unknown section; expected agent, mqtt, prometheus, traps, collectors, "
                    "groups or promotion",
                )
    agent = _agent(main, merged["agent"], origin)
    mqtt = _mqtt(merged["mqtt"], origin, main)
    listen = merged["prometheus"].get("listen", "")
    if listen:
        _host_port(origin.get("prometheus.listen", main), "prometheus.listen", listen)
    built = _collectors(collectors, agent)
    traps = _traps(merged["traps"], origin, main)
    from .promotion.settings import build as build_promotion

    promo = build_promotion(promotion, main, mqtt.keepalive)
    return Config(
        agent,
        mqtt,
        listen,
        built,
        tuple(groups),
        tuple(str(f) for f in files),
        traps=traps,
        promotion=promo,
    )


_SECTIONS = {
    "agent": AGENT_OPTIONS,
    "mqtt": MQTT_OPTIONS,
    "prometheus": PROMETHEUS_OPTIONS,
    "traps": TRAPS_OPTIONS,
}


def _traps(values: Mapping[str, Any], origin: Mapping[str, Path], main: Path) -> dict[str, Any]:
    """[traps]: receivers checked, the community read from its file (mode-checked)."""
    v = _complete(main, "traps", values, TRAPS_OPTIONS)
    if not v["targets"]:
        return {}
    where = origin.get("traps.targets", main)
    targets = tuple(_host_port(where, "traps.targets", t) for t in v["targets"])
    community = v["community"]
    if v["community_file"]:
        try:
            community = read_secret(v["community_file"])
        except OSError as e:
            raise ConfigError(
                origin.get("traps.community_file", main),
                "traps.community_file",
                str(e.strerror or e),
            ) from None
    if not community:
        raise ConfigError(where, "traps.community", "set community or community_file")
    if v["inform_timeout"] <= 0:
        raise ConfigError(
            origin.get("traps.inform_timeout", main),
            "traps.inform_timeout",
            "expected a number > 0",
        )
    if v["inform_retries"] < 0:
        raise ConfigError(
            origin.get("traps.inform_retries", main), "traps.inform_retries", "expected 0 or more"
        )
    return {
        "targets": targets,
        "community": community,
        "inform": v["inform"],
        "inform_timeout": v["inform_timeout"],
        "inform_retries": v["inform_retries"],
    }


def _array(file: Path, key: str, value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise ConfigError(
            file, key, f"expected an array of tables ([[{key}]]), got {_describe(value)}"
        )
    return value


def _validate(
    file: Path, prefix: str, table: Mapping[str, Any], options: Mapping[str, Option]
) -> dict[str, Any]:
    """Type-check the keys present in ``table`` (defaults and required keys come later)."""
    out: dict[str, Any] = {}
    for key, value in table.items():
        where = f"{prefix}.{key}"
        opt = options.get(key)
        if opt is None:
            known = ", ".join(options)
            raise ConfigError(file, where, f"unknown key; expected one of: {known}")
        out[key] = _check(file, where, opt, value)
    return out


def _check(file: Path, where: str, opt: Option, value: Any) -> Any:
    t = opt.type
    value = typed(file, where, t, value)
    if opt.choices and value not in opt.choices:
        raise ConfigError(
            file, where, f"expected one of {', '.join(map(repr, opt.choices))}, got {value!r}"
        )
    return tuple(value) if t is list else value


def _complete(
    file: Path, prefix: str, values: Mapping[str, Any], options: Mapping[str, Option]
) -> dict[str, Any]:
    out = {}
    for key, opt in options.items():
        if key in values:
            out[key] = values[key]
        elif opt.required:
            raise ConfigError(file, f"{prefix}.{key}", f"required key missing ({opt.help})")
        else:
            out[key] = opt.default
    return out


def _positive(file: Path, where: str, value: float) -> None:
    if value <= 0:
        raise ConfigError(file, where, f"expected a number > 0, got {value!r}")


def _agent(main: Path, values: Mapping[str, Any], origin: Mapping[str, Path]) -> AgentSettings:
    v = _complete(main, "agent", values, AGENT_OPTIONS)
    for key in ("interval", "timeout", "heartbeat"):
        _positive(origin.get(f"agent.{key}", main), f"agent.{key}", v[key])
    for key in ("rise", "fall"):
        if v[key] < 1:
            raise ConfigError(
                origin.get(f"agent.{key}", main),
                f"agent.{key}",
                f"expected an integer >= 1, got {v[key]}",
            )
    for key in ("site", "host"):
        bad = set(v[key]) & set("/+#\0 ")
        if bad or (key == "site" and not v[key]):
            raise ConfigError(
                origin.get(f"agent.{key}", main),
                f"agent.{key}",
                f"expected a non-empty name without '/', '+', '#' or spaces, got {v[key]!r}",
            )
    if not v["host"]:
        v["host"] = socket.gethostname().split(".")[0]
    return AgentSettings(**v)


def _mqtt(values: Mapping[str, Any], origin: Mapping[str, Path], main: Path) -> MqttSettings:
    v = _complete(main, "mqtt", values, MQTT_OPTIONS)
    url_file = origin.get("mqtt.url", main)
    parts = urlsplit(v["url"])
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
        raise ConfigError(
            url_file,
            "mqtt.url",
            f"expected mqtt://HOST[:PORT] or mqtts://HOST[:PORT], got {v['url']!r}",
        )
    if parts.username or parts.password:
        raise ConfigError(
            url_file,
            "mqtt.url",
            "credentials do not belong in the URL; use username and password_file",
        )
    try:
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        raise ConfigError(url_file, "mqtt.url", f"bad port in {v['url']!r}") from None
    password = ""
    if v["password_file"]:
        pw_file = origin.get("mqtt.password_file", main)
        try:
            password = read_secret(v["password_file"])
        except OSError as e:
            # read_secret's own refusal names the file and its mode; the OS's errors do not
            why = e.strerror if e.filename is None else f"cannot read {e.filename}: {e.strerror}"
            raise ConfigError(pw_file, "mqtt.password_file", why) from None
    for key in ("ca_file", "cert_file", "key_file"):
        if v[key] and not Path(v[key]).is_file():
            raise ConfigError(
                origin.get(f"mqtt.{key}", main), f"mqtt.{key}", f"no such file: {v[key]}"
            )
    if v["outbox_max"] < 1:
        raise ConfigError(
            origin.get("mqtt.outbox_max", main), "mqtt.outbox_max", "expected an integer >= 1"
        )
    del v["password_file"]
    return MqttSettings(password=password, **v)


def _host_port(file: Path, key: str, value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(file, key, f"expected HOST:PORT, got {value!r}")
    if ":" in host and not (host.startswith("[") and host.endswith("]")):
        raise ConfigError(
            file,
            key,
            f"expected HOST:PORT with an IPv6 address in brackets ([::1]:162), got {value!r}",
        )
    return host.strip("[]"), int(port)


def _group(file: Path, where: str, entry: Mapping[str, Any]) -> GroupSpec:
    v = _complete(file, where, _validate(file, where, entry, GROUP_OPTIONS), GROUP_OPTIONS)
    if not v["id"].strip("/") or any(not m for m in v["members"]):
        key = f"{where}.id" if not v["id"].strip("/") else f"{where}.members"
        raise ConfigError(file, key, "expected non-empty ids")
    if v["members"] and v["required"] > len(v["members"]):
        raise ConfigError(
            file,
            f"{where}.required",
            f"expected at most {len(v['members'])} (the number of members), got {v['required']}",
        )
    return GroupSpec(
        id=v["id"], kind=GroupKind(v["kind"]), required=v["required"], members=tuple(v["members"])
    )


def _collectors(
    entries: list[tuple[Path, str, int, dict[str, Any]]], agent: AgentSettings
) -> tuple[CollectorSettings, ...]:
    out: list[CollectorSettings] = []
    names: dict[str, Path] = {}
    uniques: dict[tuple[Any, ...], str] = {}
    counts: dict[str, int] = {}
    for file, kind, i, entry in entries:
        where = f"collectors.{kind}[{i}]"
        module = collector_module(kind)
        options: Mapping[str, Option] = {**COLLECTOR_COMMON, **module.OPTIONS}
        v = _complete(file, where, _validate(file, where, entry, options), options)
        counts[kind] = counts.get(kind, 0) + 1
        name = v.pop("name") or (kind if counts[kind] == 1 else f"{kind}{counts[kind]}")
        if name in names:
            raise ConfigError(
                file, f"{where}.name", f"duplicate collector name {name!r} (also in {names[name]})"
            )
        names[name] = file
        key = (kind, *(v[k] for k in getattr(module, "UNIQUE_ACROSS_INSTANCES", ())))
        if len(key) > 1 and key in uniques:
            keys = ", ".join(module.UNIQUE_ACROSS_INSTANCES)
            raise ConfigError(
                file,
                f"{where}.{keys}",
                f"same as collector {uniques[key]!r}: both would report the same "
                f"component ids; give each a different {keys}",
            )
        uniques[key] = name
        interval = v.pop("interval") or agent.interval
        timeout = v.pop("timeout") or agent.timeout
        out.append(CollectorSettings(kind, name, interval, timeout, v))
    return tuple(out)

"""The central service's configuration: TOML, strictly validated, errors naming file and key.

``/etc/hotspare/central.toml``: ``[central]`` (web, history, heartbeat timeout, SLA target),
``[mqtt]`` (the broker and the shared-subscription group), ``[[maintenance]]`` windows and
``[alerts]`` (alert routing, parsed by ``central.alerts.config`` through SECTION_PARSERS) and
``[commands]`` (the key signing promote/demote/failback, parsed by ``central.commands``).
Unknown keys are rejected. Every key is declared once, in the tables below, with the
sentence the sample configuration (``docs/central.sample.toml``) shows for it.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import socket
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from agent.mqtturl import MqttEndpoint
from agent.tomlfile import ConfigError, describe, typed
from agent.tomlfile import read as _read
from agent.tomlfile import table as _table

DEFAULT_PATH = "/etc/hotspare/central.toml"

# Sections that other parts of the service own (alert routing: e.g. "alerts", "receivers"):
# section name -> parser(file, value) that validates it (raising ConfigError with file and key)
# and returns its settings, found in Config.sections[name]. A section in neither this table
# nor the built-in ones is rejected as unknown.
SECTION_PARSERS: dict[str, Callable[[Path, Any], Any]] = {}
EXIT_CONFIG = 78  # EX_CONFIG from sysexits.h


@dataclass(frozen=True, slots=True)
class Option:
    type: type
    default: Any
    help: str
    choices: tuple[str, ...] = ()


CENTRAL_OPTIONS: dict[str, Option] = {
    "listen": Option(
        str,
        "127.0.0.1:8470",
        "Serve the dashboard and the JSON API on this HOST:PORT.",
    ),
    "database": Option(
        str,
        "/var/lib/hotspare/central.db",
        "History: a SQLite file (a path, or sqlite:////abs/path), or postgresql://USER@HOST[:PORT]/DB.",
    ),
    "database_password_file": Option(
        str,
        "",
        "A file holding the PostgreSQL password (first line), readable by the service only.",
    ),
    "retention_days": Option(
        float,
        400.0,
        "Days of history to keep (events, transitions, alerts); the last state of every host "
        "and group is always kept. 0: keep everything.",
    ),
    "token_file": Option(
        str,
        "",
        "A file holding the bearer token for changes through the API (maintenance windows), "
        "readable by the service only. Empty: the API is read-only.",
    ),
    "public_read": Option(
        bool,
        False,
        "Serve the read-only API and pages without the token on a non-loopback listen address.",
    ),
    "heartbeat_timeout": Option(
        float,
        90.0,
        "Seconds without any message from an agent after which its host counts as offline "
        "(missed heartbeats). At least twice the agents' [agent] heartbeat.",
    ),
    "sla_target": Option(
        float, 99.95, "Availability target in percent for the error budget (99.95: 21.9 min/month)."
    ),
    "max_payload": Option(
        int, 1048576, "Largest accepted MQTT payload in bytes; larger ones are rejected."
    ),
    "log_level": Option(str, "info", "Log level.", ("debug", "info", "warning", "error")),
}

MQTT_OPTIONS: dict[str, Option] = {
    "url": Option(
        str, "mqtt://127.0.0.1:1883", "The broker: mqtt://HOST[:PORT] or mqtts://HOST[:PORT]."
    ),
    "topic_prefix": Option(str, "hotspare/v1", "The first levels of every agent topic."),
    "shared_group": Option(
        str,
        "",
        "MQTT 5 shared subscription group: instances with the same group split the messages "
        "($share/<group>/...). Empty: an ordinary subscription.",
    ),
    "client_id": Option(str, "", "Client id. Empty: hotspare-central-<hostname>."),
    "keepalive": Option(
        int, 30, "Keepalive in seconds, 0 to 65535 (0: none); a broker may ask for less."
    ),
    "username": Option(str, "", "User name. Empty: connect anonymously."),
    "password_file": Option(
        str, "", "A file holding the password (first line), readable by the service only."
    ),
    "ca_file": Option(str, "", "CA bundle to verify the broker with (mqtts://)."),
    "cert_file": Option(str, "", "Client certificate for mutual TLS."),
    "key_file": Option(str, "", "Private key of the client certificate."),
}

MAINTENANCE_OPTIONS: dict[str, Option] = {
    "site": Option(str, "", "Site the window applies to. Empty: every site."),
    "host": Option(str, "", "Host the window applies to. Empty: every host (of the site)."),
    "group": Option(str, "", "Group the window applies to. Empty: the host and all its groups."),
    "start": Option(dt.datetime, None, "Start, an RFC 3339 date-time with offset."),
    "end": Option(dt.datetime, None, "End, an RFC 3339 date-time with offset, after start."),
    "reason": Option(str, "", "Why, for the people reading the availability report."),
}


@dataclass(frozen=True, slots=True)
class MqttSettings(MqttEndpoint):
    url: str
    topic_prefix: str
    shared_group: str
    client_id: str
    keepalive: int
    username: str
    password: str = field(repr=False)
    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""
    tls_insecure: bool = False  # central always verifies the broker's name

    @property
    def subscription(self) -> str:
        topic = f"{self.topic_prefix}/#"
        return f"$share/{self.shared_group}/{topic}" if self.shared_group else topic


@dataclass(frozen=True, slots=True)
class MaintenanceWindow:
    site: str
    host: str
    group: str
    start: float
    end: float
    reason: str


@dataclass(frozen=True, slots=True)
class Config:
    listen_host: str
    listen_port: int
    database: str
    database_password: str = field(repr=False)
    token: str = field(repr=False)  # "" : no changes through the API
    retention_days: float = 400.0
    public_read: bool = False
    heartbeat_timeout: float = 90.0
    sla_target: float = 99.95
    max_payload: int = 1048576
    log_level: str = "info"
    mqtt: MqttSettings | None = None
    maintenance: tuple[MaintenanceWindow, ...] = ()
    file: str = ""
    sections: Mapping[str, Any] = field(default_factory=dict)  # from SECTION_PARSERS

    @property
    def loopback(self) -> bool:
        try:
            return ipaddress.ip_address(self.listen_host).is_loopback
        except ValueError:
            return self.listen_host == "localhost"

    @property
    def open_reads(self) -> bool:
        """Read-only API and pages without a token: on loopback, or when declared public."""
        return self.loopback or self.public_read


def load(path: str | os.PathLike[str] = DEFAULT_PATH) -> Config:
    file = Path(path)
    doc = _read(file)
    sections = {"central": {}, "mqtt": {}}
    windows: list[MaintenanceWindow] = []
    extra: dict[str, Any] = {}
    for section, value in doc.items():
        if section in sections:
            table = _table(file, section, value)
            options = CENTRAL_OPTIONS if section == "central" else MQTT_OPTIONS
            sections[section] = _complete(file, section, table, options)
        elif section == "maintenance":
            if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
                raise ConfigError(
                    file, section, f"expected an array of tables ([[maintenance]]), got {value!r}"
                )
            for i, entry in enumerate(value):
                windows.append(_window(file, f"maintenance[{i}]", entry))
        elif section in SECTION_PARSERS:
            extra[section] = SECTION_PARSERS[section](file, value)
        else:
            known = ", ".join(["central", "mqtt", "maintenance", *SECTION_PARSERS])
            raise ConfigError(file, section, f"unknown section; expected {known}")
    c = sections["central"] or _complete(file, "central", {}, CENTRAL_OPTIONS)
    m = sections["mqtt"] or _complete(file, "mqtt", {}, MQTT_OPTIONS)
    host, port = _host_port(file, "central.listen", c["listen"])
    _database(file, c["database"])
    for key in ("heartbeat_timeout",):
        if c[key] <= 0:
            raise ConfigError(file, f"central.{key}", f"expected a number > 0, got {c[key]!r}")
    if not 0 < c["sla_target"] < 100:
        raise ConfigError(
            file,
            "central.sla_target",
            f"expected a percentage between 0 and 100, got {c['sla_target']!r}",
        )
    if c["max_payload"] < 1024:
        raise ConfigError(
            file, "central.max_payload", f"expected at least 1024, got {c['max_payload']}"
        )
    return Config(
        listen_host=host,
        listen_port=port,
        database=c["database"],
        database_password=read_secret_file(
            file, "central.database_password_file", c["database_password_file"]
        ),
        token=read_secret_file(file, "central.token_file", c["token_file"]),
        retention_days=c["retention_days"],
        public_read=c["public_read"],
        heartbeat_timeout=c["heartbeat_timeout"],
        sla_target=c["sla_target"],
        max_payload=c["max_payload"],
        log_level=c["log_level"],
        mqtt=_mqtt(file, m),
        maintenance=tuple(windows),
        file=str(file),
        sections=extra,
    )


def _check(file: Path, where: str, opt: Option, value: Any) -> Any:
    if opt.type is not dt.datetime:
        value = typed(file, where, opt.type, value)
    elif not isinstance(value, dt.datetime) or value.tzinfo is None:
        raise ConfigError(
            file,
            where,
            f"expected a date-time with offset (e.g. 2026-12-01T22:00:00Z), got {describe(value)}",
        )
    if opt.choices and value not in opt.choices:
        raise ConfigError(
            file, where, f"expected one of {', '.join(map(repr, opt.choices))}, got {value!r}"
        )
    return value


def _complete(
    file: Path, prefix: str, table: Mapping[str, Any], options: Mapping[str, Option]
) -> dict[str, Any]:
    for key in table:
        if key not in options:
            raise ConfigError(
                file, f"{prefix}.{key}", f"unknown key; expected one of: {', '.join(options)}"
            )
    out = {}
    for key, opt in options.items():
        if key in table:
            out[key] = _check(file, f"{prefix}.{key}", opt, table[key])
        elif opt.default is None:
            raise ConfigError(file, f"{prefix}.{key}", f"required key missing ({opt.help})")
        else:
            out[key] = opt.default
    return out


def _host_port(file: Path, key: str, value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit() or not 0 <= int(port) < 65536:  # 0: any free port
        raise ConfigError(file, key, f"expected HOST:PORT, got {value!r}")
    return host.strip("[]"), int(port)


def _database(file: Path, url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme in ("postgresql", "postgres"):
        if parts.password:
            raise ConfigError(
                file,
                "central.database",
                "a password does not belong in the URL; use database_password_file",
            )
        return
    if parts.scheme not in ("", "sqlite") or not url.strip():
        raise ConfigError(
            file,
            "central.database",
            f"expected a file path, sqlite:///PATH or postgresql://USER@HOST/DB, got {url!r}",
        )


def read_secret_file(file: Path, key: str, path: str) -> str:
    """The first line of a secret file that only its owner may read (mode checked)."""
    if not path:
        return ""
    try:
        st = os.stat(path)
        text = Path(path).read_text()
    except OSError as e:
        raise ConfigError(file, key, f"cannot read {path}: {e.strerror}") from None
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(
            file,
            key,
            f"{path} is readable by others (mode {stat.S_IMODE(st.st_mode):04o}); "
            "chmod 600 it (or 400), owned by the service user",
        )
    secret = next(iter(text.splitlines()), "").strip()
    if not secret:
        raise ConfigError(file, key, f"{path} is empty")
    return secret


def _mqtt(file: Path, v: dict[str, Any]) -> MqttSettings:
    parts = urlsplit(v["url"])
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
        raise ConfigError(
            file,
            "mqtt.url",
            f"expected mqtt://HOST[:PORT] or mqtts://HOST[:PORT], got {v['url']!r}",
        )
    if parts.username or parts.password:
        raise ConfigError(
            file, "mqtt.url", "credentials do not belong in the URL; use username and password_file"
        )
    try:
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        raise ConfigError(file, "mqtt.url", f"bad port in {v['url']!r}") from None
    if set(v["shared_group"]) & set("/+#$ "):
        raise ConfigError(
            file,
            "mqtt.shared_group",
            f"expected a name without '/', '+', '#', '$' or spaces, got {v['shared_group']!r}",
        )
    if not v["topic_prefix"] or set(v["topic_prefix"]) & set("+#"):
        raise ConfigError(
            file,
            "mqtt.topic_prefix",
            f"expected a topic without wildcards, got {v['topic_prefix']!r}",
        )
    if not 0 <= v["keepalive"] <= 65535:
        raise ConfigError(
            file, "mqtt.keepalive", f"expected 0 to 65535 seconds, got {v['keepalive']}"
        )
    for key in ("ca_file", "cert_file", "key_file"):
        if v[key] and not Path(v[key]).is_file():
            raise ConfigError(file, f"mqtt.{key}", f"no such file: {v[key]}")
    password = read_secret_file(file, "mqtt.password_file", v["password_file"])
    client_id = v["client_id"] or f"hotspare-central-{socket.gethostname().split('.')[0]}"
    return MqttSettings(
        url=v["url"],
        topic_prefix=v["topic_prefix"].rstrip("/"),
        shared_group=v["shared_group"],
        client_id=client_id,
        keepalive=v["keepalive"],
        username=v["username"],
        password=password,
        ca_file=v["ca_file"],
        cert_file=v["cert_file"],
        key_file=v["key_file"],
    )


def _window(file: Path, where: str, entry: Mapping[str, Any]) -> MaintenanceWindow:
    v = _complete(file, where, entry, MAINTENANCE_OPTIONS)
    if v["end"] <= v["start"]:
        raise ConfigError(file, f"{where}.end", f"expected a time after start ({v['start']})")
    if not (v["site"] or v["host"]):
        raise ConfigError(
            file, f"{where}.host", "a window needs a site or a host (or both); none was given"
        )
    return MaintenanceWindow(
        v["site"], v["host"], v["group"], v["start"].timestamp(), v["end"].timestamp(), v["reason"]
    )


def _alerts_section(file: Path, value: Any) -> Any:
    """``[alerts]``: alert routing and receivers (docs/alerts.md); imported when used."""
    from .alerts.config import parse

    return parse(value, file)


def _commands_section(file: Path, value: Any) -> Any:
    """``[commands]``: the key that signs promote/demote/failback (central/commands.py)."""
    from .commands import parse

    return parse(file, value)


SECTION_PARSERS["alerts"] = _alerts_section
SECTION_PARSERS["commands"] = _commands_section


def sample() -> str:
    """The commented sample configuration (docs/central.sample.toml), from the tables above."""
    out = [
        "# hotspare central service configuration (/etc/hotspare/central.toml).",
        "# Generated by `hotspare central --sample-config`; every value shown is the default.",
        "",
    ]
    for name, options in (("central", CENTRAL_OPTIONS), ("mqtt", MQTT_OPTIONS)):
        out.append(f"[{name}]")
        for key, opt in options.items():
            out.append(f"# {opt.help}")
            out.append(f"#{key} = {_toml(opt.default)}")
        out.append("")
    out.append("# Maintenance windows: time inside one counts neither as up nor as down.")
    out.append("# Windows can also be declared through the API (POST /api/maintenance).")
    out.append("#[[maintenance]]")
    examples = {"site": "dc1", "host": "web-01", "group": "", "reason": "PSU swap"}
    for key, opt in MAINTENANCE_OPTIONS.items():
        out.append(f"# {opt.help}")
        if key == "start":
            out.append("#start = 2026-12-01T22:00:00Z")
        elif key == "end":
            out.append("#end = 2026-12-01T23:30:00Z")
        else:
            out.append(f"#{key} = {_toml(examples[key])}")
    out.append("")
    out += _commands_sample()
    out += _alerts_sample()
    return "\n".join(out) + "\n"


def _commands_sample() -> list[str]:
    """The [commands] section, from its own table (central/commands.py)."""
    from .commands import OPTIONS

    out = [
        "# Signed promote/demote/failback from the dashboard and the API (docs/central.md,",
        "# Commands): without a [commands] section the service sends none.",
        "#[commands]",
    ]
    for key, (_type, default, help_text) in OPTIONS.items():
        out.append(f"# {help_text}")
        example = "/etc/hotspare/keys/central.key" if key == "signing_key" else default
        out.append(f"#{key} = {_toml(example)}")
    return [*out, ""]


def _alerts_sample() -> list[str]:
    """The [alerts] section: its keys from the alert routing's own table, and an example."""
    from .alerts.config import TOP

    out = [
        "# Alert routing (docs/alerts.md): without an [alerts] section nothing is sent.",
        "# Maintenance windows above silence the alerts they cover as well.",
        "#[alerts]",
    ]
    for key, spec in TOP.items():
        out.append(f"# {spec.help}")
        out.append(f"#{key} = {_toml(spec.default)}")
    out += [
        "",
        "# Routes are tried in order; the first that matches wins (continue = true: go on).",
        "#[[alerts.routes]]",
        '#severity = ["critical", "warning"]',
        '#receivers = ["ops"]',
        "",
        "# Receivers: alertmanager, webhook, slack, pagerduty, email (keys: docs/alerts.md).",
        "#[alerts.receivers.ops]",
        '#type = "alertmanager"',
        '#url = "http://127.0.0.1:9093"',
    ]
    return out


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return repr(value)

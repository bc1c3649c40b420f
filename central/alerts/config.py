"""The ``[alerts]`` section of the central service's configuration, strictly validated.

``parse(section, file)`` takes the section as read from TOML (a dict) and the file it
came from, and returns an ``AlertsConfig`` or raises ``ConfigError(file, key, message)``
naming the key (``alerts.receivers.pager.routing_key_file``). Secrets (routing keys,
webhook secrets, Slack URLs, SMTP passwords) are read here from files that must be
readable by their owner only; they live in fields left out of ``repr``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from agent.tomlfile import describe as _describe
from agent.tomlfile import typed
from central.alerts.model import LABELS, matches
from central.config import ConfigError, read_secret_file

MATCH_KEYS = ("site", "host", "group", "kind", "severity")
RECEIVER_TYPES = ("alertmanager", "webhook", "slack", "pagerduty", "email")
PAGERDUTY_URL = "https://events.pagerduty.com/v2/enqueue"


@dataclass(frozen=True, slots=True)
class Key:
    """One configuration key: type, default (None: required), and its help sentence."""

    type: type
    default: Any
    help: str


TOP: dict[str, Key] = {
    "default_receivers": Key(list, [], "Receivers for alerts that match no route."),
    "group_by": Key(list, ["site", "host"], "Labels whose values form one notification group."),
    "group_wait": Key(float, 30.0, "Seconds a new group waits before its first notification."),
    "group_interval": Key(float, 300.0, "Seconds between notifications of a changing group."),
    "repeat_interval": Key(float, 14400.0, "Seconds before an unchanged firing group is re-sent."),
    "flap_threshold": Key(int, 5, "More state changes than this within flap_window: flapping."),
    "flap_window": Key(float, 600.0, "Seconds over which state changes are counted."),
    "flap_quiet": Key(float, 600.0, "Seconds without a change after which flapping ends."),
    "queue_size": Key(int, 1000, "Notifications queued per receiver; beyond: dropped, logged."),
    "retry_attempts": Key(int, 10, "Attempts per notification before it is given up (logged)."),
    "retry_initial": Key(float, 1.0, "Seconds before the first retry; doubles on each retry."),
    "retry_max": Key(float, 300.0, "Upper bound of the delay between retries, in seconds."),
    "timeout": Key(float, 10.0, "Seconds one delivery attempt may take."),
    "external_url": Key(str, "", "The dashboard's URL, for links in notifications."),
}

ROUTE: dict[str, Key] = {
    **{
        k: Key(list, ["*"], f"Globs the alert's {k} must match (a string or an array).")
        for k in MATCH_KEYS
    },
    "receivers": Key(list, None, "Receiver names that get the matching alerts."),
    "continue": Key(bool, False, "Also try the routes after this one when it matches."),
    "group_by": Key(list, None, "Override of [alerts] group_by."),
    "group_wait": Key(float, None, "Override of [alerts] group_wait."),
    "group_interval": Key(float, None, "Override of [alerts] group_interval."),
    "repeat_interval": Key(float, None, "Override of [alerts] repeat_interval."),
}
ROUTE_OVERRIDES = ("group_by", "group_wait", "group_interval", "repeat_interval")

RECEIVER_COMMON: dict[str, Key] = {
    "type": Key(str, None, "One of " + ", ".join(RECEIVER_TYPES) + "."),
    "send_resolved": Key(bool, True, "Also notify when an alert resolves."),
    "timeout": Key(float, 0.0, "Seconds one attempt may take. 0: [alerts] timeout."),
}

RECEIVER_KEYS: dict[str, dict[str, Key]] = {
    "alertmanager": {
        "url": Key(str, None, "Alertmanager's base URL, e.g. http://127.0.0.1:9093."),
        "ca_file": Key(str, "", "CA bundle for an https:// URL. Empty: the system's CAs."),
        "resend_interval": Key(
            float, 60.0, "Seconds between re-posts of firing alerts (endsAt = 4 times this later)."
        ),
    },
    "webhook": {
        "url": Key(str, None, "Where the JSON is POSTed."),
        "secret_file": Key(str, None, "File with the HMAC-SHA256 key (first line), owner-only."),
        "ca_file": Key(str, "", "CA bundle for an https:// URL. Empty: the system's CAs."),
    },
    "slack": {
        "url_file": Key(str, None, "File holding the incoming-webhook URL (a secret), owner-only."),
        "ca_file": Key(str, "", "CA bundle. Empty: the system's CAs."),
    },
    "pagerduty": {
        "routing_key_file": Key(str, None, "File with the integration's routing key, owner-only."),
        "url": Key(str, PAGERDUTY_URL, "The Events API v2 endpoint."),
        "ca_file": Key(str, "", "CA bundle. Empty: the system's CAs."),
    },
    "email": {
        "smarthost": Key(str, None, "The SMTP server, HOST:PORT (submission: port 587)."),
        "from": Key(str, None, "The sender address."),
        "to": Key(list, None, "Recipient addresses."),
        "username": Key(str, "", "SMTP user. Empty: no authentication."),
        "password_file": Key(str, "", "File with the SMTP password (first line), owner-only."),
        "starttls": Key(bool, True, "Require STARTTLS before authenticating and sending."),
        "ca_file": Key(str, "", "CA bundle to verify the server. Empty: the system's CAs."),
    },
}


@dataclass(frozen=True, slots=True)
class Route:
    matchers: Mapping[str, tuple[str, ...]]
    receivers: tuple[str, ...]
    continue_: bool
    group_by: tuple[str, ...]
    group_wait: float
    group_interval: float
    repeat_interval: float

    def matches(self, labels: Mapping[str, str]) -> bool:
        return matches(self.matchers, labels)


@dataclass(frozen=True, slots=True)
class ReceiverConfig:
    name: str
    type: str
    send_resolved: bool
    timeout: float
    options: Mapping[str, Any]  # the type's keys, secret files' contents excluded
    secret: str = field(default="", repr=False)  # routing key, HMAC key, Slack URL, password


@dataclass(frozen=True, slots=True)
class AlertsConfig:
    routes: tuple[Route, ...] = ()
    receivers: Mapping[str, ReceiverConfig] = field(default_factory=dict)
    default_receivers: tuple[str, ...] = ()
    group_by: tuple[str, ...] = ("site", "host")
    group_wait: float = 30.0
    group_interval: float = 300.0
    repeat_interval: float = 14400.0
    flap_threshold: int = 5
    flap_window: float = 600.0
    flap_quiet: float = 600.0
    queue_size: int = 1000
    retry_attempts: int = 10
    retry_initial: float = 1.0
    retry_max: float = 300.0
    timeout: float = 10.0
    external_url: str = ""

    @property
    def default_route(self) -> Route:
        """The route of alerts no rule matches."""
        return Route(
            {},
            self.default_receivers,
            False,
            self.group_by,
            self.group_wait,
            self.group_interval,
            self.repeat_interval,
        )


def parse(section: Mapping[str, Any], file: str | os.PathLike[str]) -> AlertsConfig:
    """Validate the ``[alerts]`` table read from ``file``."""
    path = Path(file)
    if not isinstance(section, Mapping):
        raise ConfigError(path, "alerts", f"expected a table, got {_describe(section)}")
    if "maintenance" in section:
        raise ConfigError(
            path,
            "alerts.maintenance",
            "maintenance windows are declared once, as [[maintenance]] (site, host, group, "
            "start, end, reason): they exclude the time from availability and silence alerts",
        )
    top = {k: v for k, v in section.items() if k not in ("routes", "receivers")}
    v = _complete(path, "alerts", top, TOP)
    for key in ("group_interval", "repeat_interval", "flap_window", "timeout", "retry_max"):
        _positive(path, f"alerts.{key}", v[key])
    for key in ("queue_size", "retry_attempts", "flap_threshold"):
        if v[key] < 1:
            raise ConfigError(path, f"alerts.{key}", f"expected an integer >= 1, got {v[key]}")
    _labels(path, "alerts.group_by", v["group_by"])
    if v["external_url"]:
        _url(path, "alerts.external_url", v["external_url"])

    receivers_table = section.get("receivers", {})
    if not isinstance(receivers_table, Mapping):
        raise ConfigError(
            path,
            "alerts.receivers",
            f"expected tables [alerts.receivers.NAME], got {_describe(receivers_table)}",
        )
    receivers = {
        name: _receiver(path, f"alerts.receivers.{name}", name, entry, v["timeout"])
        for name, entry in receivers_table.items()
    }
    _known(path, "alerts.default_receivers", v["default_receivers"], receivers)

    routes = []
    for i, entry in enumerate(_array(path, "alerts.routes", section.get("routes", []))):
        routes.append(_route(path, f"alerts.routes[{i}]", entry, v, receivers))

    return AlertsConfig(
        routes=tuple(routes),
        receivers=receivers,
        default_receivers=tuple(v["default_receivers"]),
        group_by=tuple(v["group_by"]),
        group_wait=v["group_wait"],
        group_interval=v["group_interval"],
        repeat_interval=v["repeat_interval"],
        flap_threshold=v["flap_threshold"],
        flap_window=v["flap_window"],
        flap_quiet=v["flap_quiet"],
        queue_size=v["queue_size"],
        retry_attempts=v["retry_attempts"],
        retry_initial=v["retry_initial"],
        retry_max=v["retry_max"],
        timeout=v["timeout"],
        external_url=v["external_url"].rstrip("/"),
    )


def _route(
    path: Path,
    where: str,
    entry: Mapping[str, Any],
    top: Mapping[str, Any],
    receivers: Mapping[str, Any],
) -> Route:
    v = _complete(path, where, entry, ROUTE, optional=ROUTE_OVERRIDES)
    if not v["receivers"]:
        raise ConfigError(path, f"{where}.receivers", "expected at least one receiver name")
    _known(path, f"{where}.receivers", v["receivers"], receivers)
    for key in ROUTE_OVERRIDES:
        if v.get(key) is None:
            v[key] = top[key]
    _labels(path, f"{where}.group_by", v["group_by"])
    for key in ("group_interval", "repeat_interval"):
        _positive(path, f"{where}.{key}", v[key])
    return Route(
        matchers={k: tuple(v[k]) for k in MATCH_KEYS if tuple(v[k]) != ("*",)},
        receivers=tuple(v["receivers"]),
        continue_=v["continue"],
        group_by=tuple(v["group_by"]),
        group_wait=v["group_wait"],
        group_interval=v["group_interval"],
        repeat_interval=v["repeat_interval"],
    )


def _receiver(
    path: Path, where: str, name: str, entry: Any, default_timeout: float
) -> ReceiverConfig:
    if not isinstance(entry, Mapping):
        raise ConfigError(path, where, f"expected a table, got {_describe(entry)}")
    kind = entry.get("type")
    if kind not in RECEIVER_KEYS:
        raise ConfigError(
            path, f"{where}.type", f"expected one of {', '.join(RECEIVER_TYPES)}, got {kind!r}"
        )
    keys = {**RECEIVER_COMMON, **RECEIVER_KEYS[kind]}
    v = _complete(path, where, entry, keys)
    options = {k: v[k] for k in RECEIVER_KEYS[kind]}
    secret = ""
    if "url" in options:
        _url(path, f"{where}.url", options["url"])
    if options.get("ca_file") and not Path(options["ca_file"]).is_file():
        raise ConfigError(path, f"{where}.ca_file", f"no such file: {options['ca_file']}")
    if kind == "webhook":
        secret = read_secret_file(path, f"{where}.secret_file", options["secret_file"])
    elif kind == "slack":
        secret = read_secret_file(path, f"{where}.url_file", options["url_file"])
        parts = urlsplit(secret)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            # the URL is a secret: say what is wrong without showing it
            raise ConfigError(path, f"{where}.url_file", "the file does not hold an http(s) URL")
    elif kind == "pagerduty":
        secret = read_secret_file(path, f"{where}.routing_key_file", options["routing_key_file"])
    elif kind == "email":
        _host_port(path, f"{where}.smarthost", options["smarthost"])
        if not options["to"] or not all("@" in a for a in options["to"]):
            raise ConfigError(path, f"{where}.to", "expected at least one address (user@domain)")
        if "@" not in options["from"]:
            raise ConfigError(
                path, f"{where}.from", f"expected user@domain, got {options['from']!r}"
            )
        if options["password_file"]:
            if not options["username"]:
                raise ConfigError(path, f"{where}.username", "password_file given without username")
            secret = read_secret_file(path, f"{where}.password_file", options["password_file"])
        if options["username"] and not options["starttls"]:
            raise ConfigError(
                path,
                f"{where}.starttls",
                "authentication without STARTTLS would send the password in clear",
            )
    elif kind == "alertmanager":
        _positive(path, f"{where}.resend_interval", options["resend_interval"])
    return ReceiverConfig(
        name=name,
        type=kind,
        send_resolved=v["send_resolved"],
        timeout=v["timeout"] or default_timeout,
        options=options,
        secret=secret,
    )


# ---- checks ---------------------------------------------------------------------------


def _array(path: Path, key: str, value: Any) -> list[Mapping[str, Any]]:
    if not isinstance(value, list) or not all(isinstance(v, Mapping) for v in value):
        raise ConfigError(
            path, key, f"expected an array of tables ([[{key}]]), got {_describe(value)}"
        )
    return value


def _complete(
    path: Path,
    where: str,
    table: Mapping[str, Any],
    keys: Mapping[str, Key],
    optional: tuple[str, ...] = (),
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in table.items():
        if key not in keys:
            raise ConfigError(
                path, f"{where}.{key}", f"unknown key; expected one of: {', '.join(keys)}"
            )
        out[key] = _check(path, f"{where}.{key}", keys[key].type, value)
    for key, spec in keys.items():
        if key in out:
            continue
        if spec.default is None and key not in optional:
            raise ConfigError(path, f"{where}.{key}", f"required key missing ({spec.help})")
        out[key] = list(spec.default) if isinstance(spec.default, list) else spec.default
    return out


def _check(path: Path, where: str, t: type, value: Any) -> Any:
    if t is object:
        return value
    if t is list and isinstance(value, str):
        value = [value]  # a single glob or name
    return typed(path, where, t, value, arrays="a string or an array of strings")


def _positive(path: Path, where: str, value: float) -> None:
    if value <= 0:
        raise ConfigError(path, where, f"expected a number > 0, got {value!r}")


def _labels(path: Path, where: str, names: list[str]) -> None:
    bad = [n for n in names if n not in LABELS]
    if bad:
        raise ConfigError(
            path, where, f"unknown label {bad[0]!r}; expected some of: {', '.join(LABELS)}"
        )


def _known(path: Path, where: str, names: list[str], receivers: Mapping[str, Any]) -> None:
    for name in names:
        if name not in receivers:
            known = ", ".join(sorted(receivers)) or "none defined"
            raise ConfigError(
                path, where, f"no receiver named {name!r} ([alerts.receivers.*]: {known})"
            )


def _url(path: Path, where: str, url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(path, where, f"expected an http:// or https:// URL, got {url!r}")
    if parts.username or parts.password:
        raise ConfigError(path, where, "credentials do not belong in the URL")


def _host_port(path: Path, where: str, value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(path, where, f"expected HOST:PORT, got {value!r}")
    return host.strip("[]"), int(port)

"""The [alerts] section: the documented example loads; every mistake names file and key."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

from central.alerts.config import PAGERDUTY_URL, parse
from central.config import ConfigError

DOC = Path(__file__).resolve().parent.parent / "docs" / "alerts.md"
SECRETS = ("pagerduty.key", "slack.url", "smtp.password", "webhook.secret")


def documented_example(tmp_path: Path) -> dict[str, Any]:
    """The TOML after ``<!-- example: alerts -->`` in docs/alerts.md, secrets in tmp_path."""
    text = DOC.read_text()
    block = re.search(r"<!-- example: alerts -->\n```toml\n(.*?)```", text, re.S)
    assert block, "docs/alerts.md lost its example"
    for name in SECRETS:
        path = tmp_path / name
        path.write_text(
            "https://hooks.example.org/services/T/B/x\n" if name == "slack.url" else "s3cret\n"
        )
        path.chmod(0o600)
    return tomllib.loads(block.group(1).replace("/etc/hotspare/", f"{tmp_path}/"))


def test_the_documented_example_loads(tmp_path: Path) -> None:
    cfg = parse(documented_example(tmp_path)["alerts"], tmp_path / "central.toml")
    assert set(cfg.receivers) == {"pager", "chat", "alertmanager", "dba-mail", "audit"}
    assert [r.receivers for r in cfg.routes] == [
        ("pager",),
        ("dba-mail",),
        ("chat", "alertmanager"),
    ]
    assert cfg.routes[0].matchers == {"severity": ("critical",)} and cfg.routes[0].continue_
    assert cfg.routes[1].matchers == {"host": ("db-*", "pg-*"), "kind": ("raid",)}
    assert cfg.routes[1].group_by == ("site",) and cfg.routes[2].group_by == ("site", "host")
    assert cfg.receivers["pager"].options["url"] == PAGERDUTY_URL
    assert cfg.receivers["pager"].secret == "s3cret"
    assert cfg.receivers["chat"].secret.startswith("https://hooks.example.org/")


def test_secrets_stay_out_of_repr(tmp_path: Path) -> None:
    cfg = parse(documented_example(tmp_path)["alerts"], tmp_path / "central.toml")
    assert "s3cret" not in repr(cfg) and "hooks.example.org" not in repr(cfg)


def test_defaults_for_an_empty_section(tmp_path: Path) -> None:
    cfg = parse({}, tmp_path / "c.toml")
    assert (cfg.group_wait, cfg.group_interval, cfg.repeat_interval) == (30.0, 300.0, 14400.0)
    assert cfg.routes == () and cfg.receivers == {} and cfg.group_by == ("site", "host")


def hook(tmp_path: Path, **extra: Any) -> dict[str, Any]:
    secret = tmp_path / "hook.secret"
    if not secret.exists():
        secret.write_text("k\n")
        secret.chmod(0o600)
    return {"type": "webhook", "url": "http://127.0.0.1:9/x", "secret_file": str(secret), **extra}


ERRORS = [
    ({"group_wait": "30s"}, "alerts.group_wait", "expected a number, got a string ('30s')"),
    ({"group_interval": 0}, "alerts.group_interval", "expected a number > 0"),
    ({"flap_threshold": -1}, "alerts.flap_threshold", "expected an integer >= 0"),
    ({"queue_size": 0}, "alerts.queue_size", "expected an integer >= 1"),
    ({"flap_threshold": 0}, "alerts.flap_threshold", "expected an integer >= 1"),
    ({"grup_by": ["host"]}, "alerts.grup_by", "unknown key; expected one of: default_receivers"),
    ({"group_by": ["hostname"]}, "alerts.group_by", "unknown label 'hostname'"),
    (
        {"external_url": "hotspare:8080"},
        "alerts.external_url",
        "expected an http:// or https:// URL",
    ),
    ({"default_receivers": ["nope"]}, "alerts.default_receivers", "no receiver named 'nope'"),
    ({"routes": {"receivers": ["x"]}}, "alerts.routes", "expected an array of tables"),
    ({"routes": [{}]}, "alerts.routes[0].receivers", "required key missing"),
    ({"routes": [{"receivers": []}]}, "alerts.routes[0].receivers", "expected at least one"),
    (
        {"routes": [{"receivers": ["pagr"]}]},
        "alerts.routes[0].receivers",
        "no receiver named 'pagr'",
    ),
    ({"routes": [{"receivers": ["h"], "hots": "x"}]}, "alerts.routes[0].hots", "unknown key"),
    (
        {"routes": [{"receivers": ["h"], "host": 3}]},
        "alerts.routes[0].host",
        "a string or an array of strings",
    ),
    (
        {"receivers": {"x": {"type": "sms"}}},
        "alerts.receivers.x.type",
        "expected one of alertmanager",
    ),
    ({"receivers": {"x": "slack"}}, "alerts.receivers.x", "expected a table"),
    (
        {"receivers": {"x": {"type": "alertmanager"}}},
        "alerts.receivers.x.url",
        "required key missing",
    ),
    (
        {"receivers": {"x": {"type": "alertmanager", "url": "am:9093"}}},
        "alerts.receivers.x.url",
        "expected an http://",
    ),
    (
        {"receivers": {"x": {"type": "alertmanager", "url": "http://u:p@am:9093"}}},
        "alerts.receivers.x.url",
        "credentials do not belong in the URL",
    ),
    (
        {"receivers": {"x": {"type": "webhook", "url": "http://h/"}}},
        "alerts.receivers.x.secret_file",
        "required",
    ),
    (
        {"receivers": {"x": {"type": "pagerduty", "routing_key_file": "/nonexistent/k"}}},
        "alerts.receivers.x.routing_key_file",
        "cannot read /nonexistent/k",
    ),
    (
        {"receivers": {"x": {"type": "email", "smarthost": "smtp", "from": "a@b", "to": ["c@d"]}}},
        "alerts.receivers.x.smarthost",
        "expected HOST:PORT",
    ),
    (
        {"receivers": {"x": {"type": "email", "smarthost": "smtp:25", "from": "a@b", "to": []}}},
        "alerts.receivers.x.to",
        "at least one address",
    ),
    (
        {
            "receivers": {
                "x": {
                    "type": "email",
                    "smarthost": "smtp:25",
                    "from": "a@b",
                    "to": "c@d",
                    "username": "u",
                    "starttls": False,
                }
            }
        },
        "alerts.receivers.x.starttls",
        "password in clear",
    ),
    (
        {"maintenance": [{"name": "w", "start": 10, "end": 5}]},
        "alerts.maintenance",
        "declared once, as [[maintenance]]",
    ),
]


@pytest.mark.parametrize(
    ("section", "key", "message"), ERRORS, ids=[e[1] + ":" + e[2][:20] for e in ERRORS]
)
def test_errors_name_file_and_key(tmp_path: Path, section: dict, key: str, message: str) -> None:
    section = {**section}
    routes = section.get("routes")
    if isinstance(routes, list) and any(r.get("receivers") == ["h"] for r in routes):
        section["receivers"] = {"h": hook(tmp_path)}  # a valid receiver for the route to name
    with pytest.raises(ConfigError) as err:
        parse(section, tmp_path / "central.toml")
    assert err.value.file == str(tmp_path / "central.toml")
    assert err.value.key == key
    assert message in err.value.message


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604])
def test_a_secret_file_readable_by_others_is_refused(tmp_path: Path, mode: int) -> None:
    key = tmp_path / "pd.key"
    key.write_text("TOPSECRETKEY\n")
    key.chmod(mode)
    section = {"receivers": {"pd": {"type": "pagerduty", "routing_key_file": str(key)}}}
    with pytest.raises(ConfigError) as err:
        parse(section, tmp_path / "c.toml")
    assert err.value.key == "alerts.receivers.pd.routing_key_file"
    assert f"mode {mode:04o}" in err.value.message and "TOPSECRETKEY" not in str(err.value)


def test_an_empty_secret_file_is_refused(tmp_path: Path) -> None:
    key = tmp_path / "hook.secret"
    key.write_text("\n")
    key.chmod(0o600)
    with pytest.raises(ConfigError, match="is empty"):
        parse({"receivers": {"h": hook(tmp_path)}}, tmp_path / "c.toml")


def test_a_slack_file_without_a_url_does_not_show_its_content(tmp_path: Path) -> None:
    f = tmp_path / "slack.url"
    f.write_text("xoxb-not-a-url\n")
    f.chmod(0o600)
    with pytest.raises(ConfigError) as err:
        parse({"receivers": {"s": {"type": "slack", "url_file": str(f)}}}, tmp_path / "c.toml")
    assert err.value.key == "alerts.receivers.s.url_file" and "xoxb" not in str(err.value)


def test_route_overrides_and_a_single_glob_string(tmp_path: Path) -> None:
    section = {
        "group_wait": 5,
        "receivers": {"h": hook(tmp_path)},
        "routes": [{"receivers": "h", "site": "dc*", "group_wait": 0, "repeat_interval": 60}],
    }
    [route] = parse(section, tmp_path / "c.toml").routes
    assert route.receivers == ("h",) and route.matchers == {"site": ("dc*",)}
    assert (route.group_wait, route.group_interval, route.repeat_interval) == (0.0, 300.0, 60.0)

"""Configuration: strict validation, located errors, drop-ins, the sample config."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from agent import cli, config
from agent.config import ConfigError
from agent.sample import render

MINIMAL = """\
[agent]
site = "dc1"                    # required
host = "web-01"                 # default: the machine's hostname
interval = 5                    # seconds between polls, default for every collector
[mqtt]
url = "mqtt://127.0.0.1:1883"   # mqtts:// for TLS; username/password/CA/client cert keys beside it
[[collectors.mdstat]]
path = "/proc/mdstat"           # the file to read
"""


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def load_text(tmp_path: Path, text: str) -> config.Config:
    return config.load(write(tmp_path / "agent.toml", text))


def error(tmp_path: Path, text: str) -> ConfigError:
    with pytest.raises(ConfigError) as e:
        load_text(tmp_path, text)
    return e.value


def test_the_public_minimum_works_exactly_so(tmp_path):
    cfg = load_text(tmp_path, MINIMAL)
    assert (cfg.agent.site, cfg.agent.host, cfg.agent.interval) == ("dc1", "web-01", 5.0)
    assert (cfg.mqtt.hostname, cfg.mqtt.port, cfg.mqtt.tls) == ("127.0.0.1", 1883, False)
    (c,) = cfg.collectors
    assert (c.type, c.name, c.interval, c.options) == (
        "mdstat",
        "mdstat",
        5.0,
        {"path": "/proc/mdstat"},
    )


def test_defaults(tmp_path, monkeypatch):
    monkeypatch.setattr("socket.gethostname", lambda: "box7.example.org")
    cfg = load_text(tmp_path, '[agent]\nsite = "dc1"\n')
    assert cfg.agent.host == "box7"
    assert cfg.mqtt.url == "mqtt://127.0.0.1:1883" and cfg.mqtt.protocol == "5"
    assert cfg.collectors == () and cfg.prometheus_listen == ""


def test_sample_config_loads_through_the_real_parser_and_shows_defaults(tmp_path):
    text = render()
    cfg = load_text(tmp_path, text)
    assert cfg.agent.site == "dc1"
    assert [c.type for c in cfg.collectors] == ["mdstat"]  # the others need an address
    # every commented "# key = value" line is the default: uncommenting them all changes nothing
    uncommented = "\n".join(
        line[2:] if line.startswith("# ") and " = " in line and not line.startswith("# [") else line
        for line in text.splitlines()
        if not line.startswith("# [[groups]]")
    )
    groups_start = uncommented.index("# [[collectors.")  # the commented-out tables follow
    doc = tomllib.loads(uncommented[:groups_start])
    assert doc["agent"]["interval"] == config.AGENT_OPTIONS["interval"].default
    cfg2 = load_text(tmp_path, uncommented[:groups_start])
    assert cfg2.agent == cfg.agent
    assert cfg2.mqtt == cfg.mqtt and cfg2.collectors == cfg.collectors


def test_every_option_is_in_the_sample():
    text = render()
    for table in (
        config.AGENT_OPTIONS,
        config.MQTT_OPTIONS,
        config.PROMETHEUS_OPTIONS,
        config.GROUP_OPTIONS,
    ):
        for key in table:
            assert f" {key} = " in text or f"\n{key} = " in text, key


@pytest.mark.parametrize(
    ("text", "key", "words"),
    [
        ('[agent]\nsite = "dc1"\ncolour = "red"\n', "agent.colour", "unknown key"),
        ('[agent]\nsite = "dc1"\ninterval = "fast"\n', "agent.interval", "expected a number"),
        ('[agent]\nsite = "dc1"\ninterval = 0\n', "agent.interval", "> 0"),
        ('[agent]\nsite = "dc1"\nrise = 0\n', "agent.rise", ">= 1"),
        ('[agent]\nhost = "x"\n', "agent.site", "required key missing"),
        ('[agent]\nsite = "dc/1"\n', "agent.site", "without '/'"),
        ('[agent]\nsite = "dc1"\nlog_level = "loud"\n', "agent.log_level", "expected one of"),
        ('[agent]\nsite = "dc1"\n[mqtt]\nurl = "http://x"\n', "mqtt.url", "mqtt://HOST"),
        ('[agent]\nsite = "dc1"\n[mqtt]\nurl = "mqtt://u:p@x"\n', "mqtt.url", "credentials"),
        ('[agent]\nsite = "dc1"\n[mqtt]\nprotocol = "4"\n', "mqtt.protocol", "expected one of"),
        (
            '[agent]\nsite = "dc1"\n[mqtt]\nca_file = "/nonexistent/ca.pem"\n',
            "mqtt.ca_file",
            "no such file",
        ),
        (
            '[agent]\nsite = "dc1"\n[prometheus]\nlisten = "9100"\n',
            "prometheus.listen",
            "HOST:PORT",
        ),
        (
            '[agent]\nsite = "dc1"\n[[collectors.mdstat]]\npth = "/x"\n',
            "collectors.mdstat[0].pth",
            "unknown key",
        ),
        (
            '[agent]\nsite = "dc1"\n[[collectors.mdstat]]\npath = 5\n',
            "collectors.mdstat[0].path",
            "expected a string",
        ),
        (
            '[agent]\nsite = "dc1"\n[[collectors.teapot]]\n',
            "collectors.teapot",
            "unknown collector type",
        ),
        (
            '[agent]\nsite = "dc1"\n[collectors]\nmdstat = 1\n',
            "collectors.mdstat",
            "array of tables",
        ),
        (
            '[agent]\nsite = "dc1"\n[[collectors.mdstat]]\n[[collectors.mdstat]]\nname = "mdstat"\n',
            "collectors.mdstat[1].name",
            "duplicate",
        ),
        (
            '[agent]\nsite = "dc1"\n[[groups]]\nid = "g"\nrequired = 3\nmembers = ["a", "b"]\n',
            "groups[0].required",
            "at most 2",
        ),
        (
            '[agent]\nsite = "dc1"\n[[groups]]\nid = "g"\n',
            "groups[0].required",
            "required key missing",
        ),
        ('[agent]\nsite = "dc1"\n[alerts]\nx = 1\n', "alerts", "unknown section"),
    ],
)
def test_bad_configs_name_file_key_and_expectation(tmp_path, text, key, words):
    e = error(tmp_path, text)
    assert e.file == str(tmp_path / "agent.toml")
    assert e.key == key
    assert words in e.message
    assert str(e).startswith(f"{tmp_path / 'agent.toml'}: {key}: ")


def test_toml_syntax_and_missing_file(tmp_path):
    e = error(tmp_path, '[agent]\nsite = "dc1\n')
    assert "not valid TOML" in e.message and "line 2" in e.message
    with pytest.raises(ConfigError, match="no such file"):
        config.load(tmp_path / "absent.toml")


def test_drop_ins_override_keys_and_add_collectors(tmp_path):
    main = write(tmp_path / "agent.toml", MINIMAL)
    write(tmp_path / "agent.d" / "10-fast.toml", "[agent]\ninterval = 1\n")
    write(
        tmp_path / "agent.d" / "20-more.toml",
        '[[collectors.mdstat]]\nname = "other"\npath = "/srv/mdstat"\n',
    )
    write(tmp_path / "agent.d" / "ignored.conf", "not toml at all")
    cfg = config.load(main)
    assert cfg.agent.interval == 1.0 and cfg.agent.site == "dc1"
    assert [(c.name, c.options["path"], c.interval) for c in cfg.collectors] == [
        ("mdstat", "/proc/mdstat", 1.0),
        ("other", "/srv/mdstat", 1.0),
    ]
    assert len(cfg.files) == 3


def test_an_error_in_a_drop_in_names_the_drop_in(tmp_path):
    main = write(tmp_path / "agent.toml", MINIMAL)
    bad = write(tmp_path / "agent.d" / "50-bad.toml", "[agent]\ninterval = -2\n")
    with pytest.raises(ConfigError) as e:
        config.load(main)
    assert (e.value.file, e.value.key) == (str(bad), "agent.interval")


def test_password_comes_from_a_file_and_never_shows(tmp_path):
    pw = write(tmp_path / "mqtt.pw", "s3cret-Value\n")
    e = error(tmp_path, f'[agent]\nsite = "dc1"\n[mqtt]\npassword_file = "{pw}"\n')
    assert e.key == "mqtt.password_file" and "readable by others" in e.message
    assert "s3cret" not in str(e)
    pw.chmod(0o600)
    cfg = load_text(
        tmp_path, f'[agent]\nsite = "dc1"\n[mqtt]\nusername = "agent"\npassword_file = "{pw}"\n'
    )
    assert cfg.mqtt.password == "s3cret-Value"
    assert "s3cret" not in repr(cfg)
    e = error(tmp_path, '[agent]\nsite = "dc1"\n[mqtt]\npassword_file = "/nonexistent/pw"\n')
    assert e.key == "mqtt.password_file"


def test_config_check_command(tmp_path, capsys):
    good = write(tmp_path / "good" / "agent.toml", MINIMAL)
    assert cli.main(["config", "check", str(good)]) == 0
    assert "OK" in capsys.readouterr().out
    bad = write(tmp_path / "bad" / "agent.toml", MINIMAL.replace("interval = 5", "interval = []"))
    assert cli.main(["config", "check", str(bad)]) == config.EXIT_CONFIG
    err = capsys.readouterr().err
    assert str(bad) in err and "agent.interval" in err
    assert cli.main(["config", "check", "--json", str(bad)]) == config.EXIT_CONFIG
    doc = json.loads(capsys.readouterr().out)
    assert doc == {
        "ok": False,
        "file": str(bad),
        "key": "agent.interval",
        "error": "expected a number, got an array ([])",
    }


def test_sample_config_command(capsys):
    assert cli.main(["sample-config"]) == 0
    assert capsys.readouterr().out == render()


def test_the_sample_in_docs_is_current():
    path = Path(__file__).parent.parent / "docs" / "agent.sample.toml"
    assert path.read_text() == render(), (
        "regenerate: hotspare sample-config > docs/agent.sample.toml"
    )


def test_group_ids_must_not_be_empty(tmp_path):
    e = error(tmp_path, '[agent]\nsite = "dc1"\n[[groups]]\nid = ""\nrequired = 1\n')
    assert e.key == "groups[0].id"
    e = error(
        tmp_path, '[agent]\nsite = "dc1"\n[[groups]]\nid = "g"\nrequired = 1\nmembers = ["a", ""]\n'
    )
    assert e.key == "groups[0].members"


def test_two_bmcs_in_one_agent_need_distinct_id_prefixes(tmp_path):
    pw = tmp_path / "pw"
    pw.write_text("x\n")
    bmc = f'[[collectors.ipmi]]\naddress = "192.0.2.20"\npassword_file = "{pw}"\n'
    e = error(tmp_path, '[agent]\nsite = "dc1"\n' + bmc + bmc.replace("20", "21"))
    assert e.key == "collectors.ipmi[1].id_prefix" and "same component ids" in e.message
    cfg = load_text(
        tmp_path,
        '[agent]\nsite = "dc1"\n' + bmc + bmc.replace("20", "21") + 'id_prefix = "node2"\n',
    )
    assert [c.options["id_prefix"] for c in cfg.collectors] == ["", "node2"]

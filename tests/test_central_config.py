"""The central service's configuration, its command, and its dependency rule."""

from __future__ import annotations

import ast
import json
import os
import re
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

import agent.promotion.signing as signing
from agent.localbroker import free_port
from central import config
from tests.central_peer import wait_for
from tests.conftest import ROOT, hotspare

SAMPLE = ROOT / "docs" / "central.sample.toml"


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "central.toml"
    p.write_text(text)
    return p


def test_an_empty_file_gives_the_defaults(tmp_path):
    cfg = config.load(write(tmp_path, ""))
    assert (cfg.listen_host, cfg.listen_port) == ("127.0.0.1", 8470)
    assert cfg.open_reads and not cfg.token
    assert cfg.mqtt.subscription == "hotspare/v1/#"
    assert cfg.heartbeat_timeout == 90 and cfg.sla_target == 99.95


def test_the_sample_is_generated_and_loads_with_every_key_set(tmp_path):
    assert SAMPLE.read_text() == config.sample(), "regenerate: hotspare central --sample-config"
    assert config.load(SAMPLE).listen_port == 8470
    uncommented = re.sub(r"^#(?=[\w\[])", "", SAMPLE.read_text(), flags=re.M)
    key = tmp_path / "central.key"
    signing.generate(key)
    uncommented = uncommented.replace("/etc/hotspare/keys/central.key", str(key))
    cfg = config.load(write(tmp_path, uncommented))
    assert cfg.sections["commands"].sender == "central"
    assert cfg.maintenance[0].host == "web-01"
    assert cfg.maintenance[0].end - cfg.maintenance[0].start == 5400


def test_shared_subscription_and_maintenance_windows(tmp_path):
    cfg = config.load(
        write(
            tmp_path,
            '[mqtt]\nshared_group = "central"\ntopic_prefix = "x/v1"\n'
            '[[maintenance]]\nsite = "dc1"\nstart = 2026-12-01T22:00:00Z\n'
            "end = 2026-12-02T00:30:00+01:00\n",
        )
    )
    assert cfg.mqtt.subscription == "$share/central/x/v1/#"
    (w,) = cfg.maintenance
    assert (w.site, w.host, w.end - w.start) == ("dc1", "", 5400.0)  # offsets honoured


@pytest.mark.parametrize(
    ("text", "key", "message"),
    [
        ("[central]\nlisten = 8470\n", "central.listen", "expected a string"),
        ('[central]\nlisten = "nope"\n', "central.listen", "expected HOST:PORT"),
        ('[central]\nlistn = "x"\n', "central.listn", "unknown key"),
        ("[central]\nsla_target = 100\n", "central.sla_target", "between 0 and 100"),
        ("[central]\nheartbeat_timeout = 0\n", "central.heartbeat_timeout", "> 0"),
        ('[central]\ndatabase = "postgresql://u:pw@db/h"\n', "central.database", "password"),
        ('[central]\ndatabase = "mysql://db/h"\n', "central.database", "expected a file path"),
        ('[mqtt]\nurl = "http://x"\n', "mqtt.url", "expected mqtt://"),
        ('[mqtt]\nshared_group = "a/b"\n', "mqtt.shared_group", "without '/'"),
        ('[mqtt]\ntopic_prefix = "a/#"\n', "mqtt.topic_prefix", "without wildcards"),
        ("[mqtt]\nkeepalive = 70000\n", "mqtt.keepalive", "expected 0 to 65535 seconds"),
        ("[alerts]\nx = 1\n", "alerts.x", "unknown key"),
        ("[routing]\nx = 1\n", "routing", "unknown section"),
        (
            '[alerts]\ndefault_receivers = ["nope"]\n',
            "alerts.default_receivers",
            "no receiver named 'nope'",
        ),
        (
            '[[maintenance]]\nhost = "h"\nstart = 2026-12-01T22:00:00Z\nend = 2026-12-01T21:00:00Z\n',
            "maintenance[0].end",
            "after start",
        ),
        (
            '[[maintenance]]\nhost = "h"\nstart = 2026-12-01T22:00:00\nend = 2026-12-01T23:00:00Z\n',
            "maintenance[0].start",
            "with offset",
        ),
        (
            "[[maintenance]]\nstart = 2026-12-01T22:00:00Z\nend = 2026-12-01T23:00:00Z\n",
            "maintenance[0].host",
            "site or a host",
        ),
        ('[[maintenance]]\nhost = "h"\n', "maintenance[0].start", "required key missing"),
        ("[central\n", "", "not valid TOML"),
    ],
)
def test_errors_name_the_file_and_the_key(tmp_path, text, key, message):
    path = write(tmp_path, text)
    with pytest.raises(config.ConfigError) as e:
        config.load(path)
    assert (e.value.file, e.value.key) == (str(path), key)
    assert message in e.value.message
    assert str(e.value).startswith(str(path))


def test_secret_files_must_be_private(tmp_path):
    token = tmp_path / "token"
    token.write_text("abc\n")
    os.chmod(token, 0o644)
    path = write(tmp_path, f'[central]\ntoken_file = "{token}"\n')
    with pytest.raises(config.ConfigError) as e:
        config.load(path)
    assert e.value.key == "central.token_file" and "0644" in e.value.message
    assert "abc" not in str(e.value)
    os.chmod(token, 0o600)
    cfg = config.load(path)
    assert cfg.token == "abc" and "abc" not in repr(cfg)


def test_command_check_and_errors(tmp_path):
    path = write(tmp_path, '[mqtt]\nshared_group = "g"\n')
    r = hotspare("central", "--config", str(path), "--check", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["subscription"] == "$share/g/hotspare/v1/#"
    bad = write(tmp_path, "[central]\nlisten = 1\n")
    r = hotspare("central", "--config", str(bad))
    assert r.returncode == config.EXIT_CONFIG
    assert f"{bad}: central.listen: expected a string" in r.stderr
    r = hotspare("central", "--config", str(bad), "--check", "--json")
    assert json.loads(r.stdout) == {
        "ok": False,
        "file": str(bad),
        "key": "central.listen",
        "error": "expected a string, got an integer (1)",
    }


def test_command_serves_the_dashboard_and_stops_on_sigterm(tmp_path, broker):
    port = free_port()
    path = write(
        tmp_path,
        f'[central]\nlisten = "127.0.0.1:{port}"\ndatabase = "{tmp_path / "c.db"}"\n'
        f'[mqtt]\nurl = "{broker.url}"\n',
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "agent.cli", "central", "--config", str(path)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:

        def fleet():
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/fleet", timeout=2) as r:
                    return json.loads(r.read())
            except OSError:
                return None

        assert wait_for(fleet, timeout=30, what="the API")["total"] == 0
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
        err = proc.stderr.read()
        assert f"dashboard on http://127.0.0.1:{port}/" in err and "stopped" in err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_the_schemas_are_the_contracts_own():
    for doc in (ROOT / "docs" / "schemas").glob("*.json"):
        assert (ROOT / "central" / "schemas" / doc.name).read_bytes() == doc.read_bytes(), doc.name
    assert {p.name for p in (ROOT / "central" / "schemas").glob("*.json")} == {
        p.name for p in (ROOT / "docs" / "schemas").glob("*.json")
    }


def test_central_imports_only_the_contract():
    """DESIGN.md: central never imports collectors or the agent's daemon: only the version
    and the config-file primitives both sides share (agent/tomlfile.py, agent/mqtturl.py,
    stdlib only) and the signed-command format (agent/promotion/signing.py)."""
    shared = {"agent", "agent.tomlfile", "agent.mqtturl", "agent.promotion.signing"}
    for path in (ROOT / "central").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            for name in names:
                top = name.split(".")[0]
                assert top != "collectors", f"{path.name} imports {name}"
                assert top != "agent" or name in shared, f"{path.name} imports {name}"


def test_other_parts_of_the_service_can_own_a_section(tmp_path, monkeypatch):
    def parse(file, value):
        if not isinstance(value, dict) or "route" not in value:
            raise config.ConfigError(file, "alerts.route", "required key missing")
        return value["route"]

    monkeypatch.setitem(config.SECTION_PARSERS, "alerts", parse)
    assert config.load(write(tmp_path, '[alerts]\nroute = "pager"\n')).sections == {
        "alerts": "pager"
    }
    with pytest.raises(config.ConfigError) as e:
        config.load(write(tmp_path, "[alerts]\n"))
    assert e.value.key == "alerts.route"
    with pytest.raises(config.ConfigError, match="expected central, mqtt, maintenance, alerts"):
        config.load(write(tmp_path, "[silences]\n"))

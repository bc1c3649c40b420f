"""Signed promote/demote/failback from central's API to a real agent, through mosquitto."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.tomlfile import ConfigError
from central import config as central_config
from tests.central_peer import CentralThread, get, send, wait_for, write_config
from tests.test_promotion_agent import start_standby

ARTIFACTS = Path(__file__).parent / "artifacts"
TOKEN = "s3cret-token-for-commands"


@pytest.fixture
def standby(broker, subscribe, run_agent, tmp_path, keys, monkeypatch):
    """An agent in the standby role whose manual promotion runs a recording hook."""
    _, _, record = start_standby(broker, subscribe, run_agent, tmp_path, keys, monkeypatch)
    return record


def start_central(broker, tmp_path, key: str, sender: str) -> CentralThread:
    commands = f'[commands]\nsigning_key = "{key}"\nsender = "{sender}"\nwait = 20.0\n'
    path = write_config(
        tmp_path / "central.toml",
        broker.port,
        str(tmp_path / "central.db"),
        mqtt_extra=f"\n{commands}",
        token=TOKEN,
    )
    central = CentralThread(path).start()
    return central


def wait_known(central: CentralThread) -> None:
    wait_for(lambda: get(f"{central.url}/api/hosts/dc1/web-01", TOKEN)[0] == 200, 20, "host known")


def test_a_promote_from_the_api_is_signed_accepted_and_engaged(broker, tmp_path, keys, standby):
    central = start_central(broker, tmp_path, str(keys / "ops.key"), sender="ops")
    try:
        wait_known(central)
        url = f"{central.url}/api/hosts/dc1/web-01/commands"
        status, body = send(url, "POST", {"verb": "promote"})
        assert status == 401, body  # a change needs the token
        status, body = send(url, "POST", {"verb": "reboot"}, TOKEN)
        assert status == 400 and "verb" in body["error"], body
        status, body = send(url, "POST", {"verb": "promote", "force": True}, TOKEN)
        assert status == 400 and "force" in body["error"], body
        status, body = send(
            f"{central.url}/api/hosts/dc1/nohost/commands", "POST", {"verb": "promote"}, TOKEN
        )
        assert status == 404, body

        status, out = send(url, "POST", {"verb": "promote"}, TOKEN)
        print(json.dumps(out, indent=1))
        assert status == 200, out
        assert out["command"]["decision"] == "accepted"
        assert out["command"]["sender"] == "ops"
        assert out["command"]["nonce"] == out["nonce"]
        assert out["promotion"][-1]["decision"] == "engaged", out
        assert out["error"] == ""
        call = json.loads(standby.read_text().splitlines()[0])
        assert call["argv"] == ["takeover"]
    finally:
        central.stop()


def test_a_key_the_agent_does_not_trust_is_refused_and_said_so(broker, tmp_path, keys, standby):
    central = start_central(broker, tmp_path, str(keys / "mallory.key"), sender="mallory")
    try:
        wait_known(central)
        status, out = send(
            f"{central.url}/api/hosts/dc1/web-01/commands", "POST", {"verb": "promote"}, TOKEN
        )
        assert status == 200, out
        assert (out["command"]["decision"], out["command"]["reason"]) == (
            "rejected",
            "unknown_sender",
        )
        assert out["promotion"] == []
        assert not standby.exists()
    finally:
        central.stop()


def test_without_a_commands_section_the_api_says_commands_are_off(broker, tmp_path, standby):
    path = write_config(
        tmp_path / "central.toml", broker.port, str(tmp_path / "central.db"), token=TOKEN
    )
    central = CentralThread(path).start()
    try:
        wait_known(central)
        status, body = send(
            f"{central.url}/api/hosts/dc1/web-01/commands", "POST", {"verb": "promote"}, TOKEN
        )
        assert status == 409 and "[commands]" in body["error"], body
    finally:
        central.stop()


def config_error(tmp_path, commands: str) -> ConfigError:
    path = tmp_path / "c.toml"
    path.write_text(f'[central]\ndatabase = "{tmp_path / "db"}"\n[commands]\n{commands}')
    with pytest.raises(ConfigError) as e:
        central_config.load(path)
    return e.value


def test_commands_config_errors_name_the_key_and_never_show_the_key(tmp_path, keys):
    assert config_error(tmp_path, 'sender = "x"\n').key == "commands.signing_key"
    loose = keys / "ops.key"
    loose.chmod(0o644)
    e = config_error(tmp_path, f'signing_key = "{loose}"\n')
    assert e.key == "commands.signing_key" and "0644" in str(e)
    assert "PRIVATE KEY" not in str(e)
    loose.chmod(0o600)
    e = config_error(tmp_path, f'signing_key = "{loose}"\nsender = "a/b"\n')
    assert e.key == "commands.sender"
    e = config_error(tmp_path, f'signing_key = "{loose}"\nwait = 0\n')
    assert e.key == "commands.wait"
    e = config_error(tmp_path, f'signing_key = "{loose}"\nverbs = []\n')
    assert e.key == "commands.verbs"
    assert config_error(tmp_path, f'signing_key = "{tmp_path / "none.key"}"\n').key == (
        "commands.signing_key"
    )


def test_the_host_page_sends_a_promote_and_shows_the_outcome(
    broker, tmp_path, keys, standby, browser
):
    central = start_central(broker, tmp_path, str(keys / "ops.key"), sender="ops")
    try:
        wait_known(central)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        asked: list[str] = []

        def confirm(dialog):
            asked.append(dialog.message)
            dialog.accept()

        page.on("dialog", confirm)
        page.goto(f"{central.url}/#/host/dc1/web-01")
        form = page.locator("#cf")
        form.locator("select[name=verb]").select_option("promote")
        form.locator("input[name=token]").fill(TOKEN)
        form.locator("button").click()
        # the host re-renders live as its role changes; the outcome stays on the page
        page.locator('#cmsg li[data-decision="engaged"]').wait_for(timeout=30_000)
        assert page.locator('#cmsg p[data-decision="accepted"]').count() == 1
        assert asked == ["Send promote to dc1/web-01?"]
        page.screenshot(path=str(ARTIFACTS / "host-command.png"), full_page=True)
        assert json.loads(standby.read_text().splitlines()[0])["argv"] == ["takeover"]
        assert not errors, errors
    finally:
        central.stop()

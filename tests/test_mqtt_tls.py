"""TLS and username/password against a real mosquitto; the password never leaks."""

from __future__ import annotations

import json
import ssl
import subprocess
import threading
import time

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from agent.localbroker import LocalBroker
from tests.conftest import DEGRADED, tls_files, write_mdstat
from tests.schemas import validate

PASSWORD = "Tr0ub4dor-and-3"


def test_agent_over_tls_with_a_password(tmp_path, run_agent):
    ca_file, chain, key = tls_files(tmp_path)
    passwd = tmp_path / "passwd"
    subprocess.run(["mosquitto_passwd", "-c", "-b", str(passwd), "agent", PASSWORD], check=True)
    listener = (
        f"allow_anonymous false\npassword_file {passwd}\n"
        f"certfile {chain}\nkeyfile {key}\ncafile {ca_file}\n"
    )
    pw_file = tmp_path / "mqtt.password"
    pw_file.write_text(PASSWORD + "\n")
    pw_file.chmod(0o600)
    mdstat = tmp_path / "mdstat"
    write_mdstat(mdstat, DEGRADED)

    with LocalBroker(listener=listener) as broker:
        got: list[dict] = []
        arrived = threading.Event()
        sub = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        sub.tls_set(ca_certs=str(ca_file), cert_reqs=ssl.CERT_REQUIRED)
        sub.username_pw_set("agent", PASSWORD)
        sub.on_connect = lambda c, *a: c.subscribe("hotspare/v1/dc1/tls-01/health", 1)

        def on_message(c, u, msg):
            got.append(json.loads(msg.payload))
            arrived.set()

        sub.on_message = on_message
        sub.connect("localhost", broker.port)
        sub.loop_start()
        try:
            agent = run_agent(
                f'[agent]\nsite = "dc1"\nhost = "tls-01"\ninterval = 0.5\njitter = 0\n'
                f'state_dir = "{tmp_path / "state"}"\n'
                f'[mqtt]\nurl = "mqtts://localhost:{broker.port}"\nca_file = "{ca_file}"\n'
                f'username = "agent"\npassword_file = "{pw_file}"\n'
                f'[[collectors.mdstat]]\npath = "{mdstat}"\n'
            )
            assert arrived.wait(20), agent.output()
        finally:
            sub.disconnect()
            sub.loop_stop()
        validate("health", got[0])
        assert got[0]["state"] == "degraded"
        agent.stop()
        assert PASSWORD not in agent.output()
        assert "connected to localhost" in agent.output()


def test_wrong_password_is_refused_and_logged_once_without_the_password(tmp_path, run_agent):
    passwd = tmp_path / "passwd"
    subprocess.run(["mosquitto_passwd", "-c", "-b", str(passwd), "agent", PASSWORD], check=True)
    pw_file = tmp_path / "wrong.password"
    pw_file.write_text("not-the-password-42\n")
    pw_file.chmod(0o600)
    mdstat = tmp_path / "mdstat"
    write_mdstat(mdstat, DEGRADED)
    with LocalBroker(listener=f"allow_anonymous false\npassword_file {passwd}\n") as broker:
        agent = run_agent(
            f'[agent]\nsite = "dc1"\nhost = "x"\ninterval = 0.5\njitter = 0\nstate_dir = "{tmp_path / "s"}"\n'
            f'[mqtt]\nurl = "mqtt://127.0.0.1:{broker.port}"\nusername = "agent"\npassword_file = "{pw_file}"\n'
            f'[[collectors.mdstat]]\npath = "{mdstat}"\n'
        )
        deadline = time.monotonic() + 15
        while "refused the connection" not in agent.output():
            assert time.monotonic() < deadline, agent.output()
            time.sleep(0.1)
        time.sleep(3)  # several retries happen meanwhile
        agent.stop()
    out = agent.output()
    assert out.count("refused the connection") == 1
    assert "not-the-password-42" not in out and PASSWORD not in out

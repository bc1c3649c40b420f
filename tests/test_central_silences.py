"""Silences and maintenance windows made through the API survive a restart of the central
service (kept in the history: SQLite and PostgreSQL alike); an expired silence is not loaded
again. Real peers: mosquitto, simulated agents, a recording webhook receiver."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from central.alerting import Alerting
from central.alerts import AlertEngine, AlertsConfig
from central.history import History
from tests.alerts_peer import Recorder
from tests.central_peer import CentralThread, SimAgent, get, send, wait_for, write_config
from tests.test_central_alerting import notified

TOKEN = "silences-test-token"


def config(tmp_path: Path, port: int, database: str, hook: str) -> Path:
    secret = tmp_path / "hook.secret"
    secret.write_text("k\n")
    secret.chmod(0o600)
    alerts = (
        '\n[alerts]\ndefault_receivers = ["hook"]\n'
        "group_wait = 0.2\ngroup_interval = 0.5\nrepeat_interval = 3600\n"
        f'[alerts.receivers.hook]\ntype = "webhook"\nurl = "{hook}/hook"\n'
        f'secret_file = "{secret}"\n'
    )
    return write_config(
        tmp_path / "central.toml",
        port,
        database,
        mqtt_extra=alerts,
        token=TOKEN,
    )


def silences(c: CentralThread, every: bool = False) -> dict[str, dict]:
    return {
        s["id"]: s for s in get(f"{c.url}/api/silences{'?all=1' if every else ''}")[1]["silences"]
    }


def test_silences_and_maintenance_from_the_api_survive_a_restart(broker, tmp_path, database_url):
    agents = [
        SimAgent(broker.port, "dc1", host, {"power": "redundant"})
        for host in ("web-01", "web-02", "web-03")
    ]
    web1, web2, web3 = agents
    c = None
    with Recorder() as hook:
        cfg = config(tmp_path, broker.port, database_url, hook.url)
        try:
            c = CentralThread(cfg).start()
            body = {
                "matchers": {"host": "web-01"},
                "end": time.time() + 3600,
                "comment": "disk swap",
                "created_by": "alice",
            }
            assert send(f"{c.url}/api/silences", "POST", body)[0] == 401
            status, s = send(f"{c.url}/api/silences", "POST", body, token=TOKEN)
            assert status == 201 and s["active"]
            window = {"site": "dc1", "host": "web-02", "start": time.time() - 1}
            window["end"] = time.time() + 3600
            status, m = send(f"{c.url}/api/maintenance", "POST", window, token=TOKEN)
            assert status == 201
            c.stop()

            # a new service on the same history: both are back, and they still suppress
            c = CentralThread(cfg).start()
            wait_for(lambda: get(f"{c.url}/api/fleet")[1]["total"] == 3, what="three hosts")
            kept = silences(c)
            assert set(kept) == {s["id"], f"maintenance:{m['id']}"}
            again = kept[s["id"]]
            assert again["active"] and again["matchers"] == {"host": ["web-01"]}
            assert (again["createdBy"], again["comment"]) == ("alice", "disk swap")
            assert (again["startsAt"], again["endsAt"]) == (s["startsAt"], s["endsAt"])
            assert [w["id"] for w in get(f"{c.url}/api/maintenance")[1]["maintenance"]] == [m["id"]]
            web1.publish({"power": "degraded"})  # silenced
            web2.publish({"power": "degraded"})  # in maintenance
            web3.publish({"power": "degraded"})  # neither: proves delivery goes on
            wait_for(lambda: notified(hook, "web-03", "power", "firing"), what="web-03 firing")
            listed = wait_for(
                lambda: {
                    a["labels"]["host"]: a
                    for a in get(f"{c.url}/api/alerts")[1]["alerts"]
                    if a["labels"]["host"] in ("web-01", "web-02")
                },
                what="web-01 and web-02 listed",
            )
            assert listed["web-01"]["silencedBy"] == [s["id"]]
            assert listed["web-02"]["silencedBy"] == [f"maintenance:{m['id']}"]
            assert notified(hook, "web-01", "power", "firing") == []
            assert notified(hook, "web-02", "power", "firing") == []

            # expiring it through the API: the alert goes out, and the end is kept
            assert send(f"{c.url}/api/silences/{s['id']}", "DELETE")[0] == 401
            assert send(f"{c.url}/api/silences/{s['id']}", "DELETE", token=TOKEN)[0] == 200
            wait_for(lambda: notified(hook, "web-01", "power", "firing"), what="web-01 firing")
            c.stop()

            c = CentralThread(cfg).start()
            assert s["id"] not in silences(c, every=True)  # ended: not loaded again
            assert f"maintenance:{m['id']}" in silences(c)
            assert send(f"{c.url}/api/silences/{s['id']}", "DELETE", token=TOKEN)[0] == 404
        finally:
            if c is not None:
                c.stop()
            for a in agents:
                a.close()


def test_a_silence_the_history_cannot_keep_is_refused_and_not_in_force(tmp_path):
    class Refusing(History):
        def add_silence(self, *args, **kwargs):
            raise OSError(28, "No space left on device")

    history = Refusing.open(str(tmp_path / "c.db"))
    now = [1000.0]
    engine = AlertEngine(AlertsConfig(), clock=lambda: now[0], receivers={})
    alerting = Alerting(engine, history, lambda: now[0])
    with pytest.raises(OSError):
        alerting.add_silence({"host": "web-01"}, 2000.0, None, "alice", "")
    assert engine.silences() == []  # expired at once: nothing silenced by it
    history.close()

"""Alert routing inside the central service.

The adapters (the ingest's transitions and agent events -> the alert engine's records,
maintenance windows -> silences, notifications -> history rows) are pure and tested
with hand-built records. The end-to-end test runs real peers: mosquitto, simulated agents,
the central service, a recording HTTP server as the webhook and a private Alertmanager.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from pathlib import Path

import pytest

from central import config as central_config
from central.alerting import (
    from_event,
    from_transition,
    history_rows,
    maintenance_silence,
)
from central.alerts import Subject
from central.alerts.model import Alert, AlertKey, Notification, Severity, SilenceKind, Status
from central.history import Maintenance
from central.state import Transition
from tests.alerts_peer import Recorder, alertmanager, alertmanager_alerts
from tests.central_peer import CentralThread, SimAgent, get, send, wait_for, write_config

TOKEN = "alerting-test-token"
SECRET = "hook-key"


def tr(scope: str, id: str, frm, to, cause="state", reason="", kind="") -> Transition:
    return Transition(100.0, "dc1", "web-01", scope, id, frm, to, reason, cause, kind)


# ---- the adapters ----------------------------------------------------------------------


def test_a_group_transition_becomes_a_group_record() -> None:
    r = from_transition(
        tr("group", "md/md0", "redundant", "degraded", reason="sdb failed", kind="raid")
    )
    assert r is not None
    assert (r.subject, r.site, r.host, r.group, r.group_kind) == (
        Subject.GROUP,
        "dc1",
        "web-01",
        "md/md0",
        "raid",
    )
    assert (r.from_state, r.to_state, r.ts, r.detail) == (
        "redundant",
        "degraded",
        100.0,
        "sdb failed",
    )
    assert r.severity is Severity.WARNING and r.kind == "raid"
    gone = from_transition(tr("group", "power", "degraded", None, cause="gone", reason="gone"))
    assert gone is not None and gone.to_state is None and gone.severity is Severity.NONE


@pytest.mark.parametrize(
    ("frm", "to", "cause", "expected"),
    [
        ("degraded", "offline", "last_will", ("online", "offline", Severity.CRITICAL)),
        (None, "offline", "retained_offline", ("online", "offline", Severity.CRITICAL)),
        ("offline", "redundant", "online", ("offline", "online", Severity.NONE)),
        ("offline", None, "gone", ("offline", None, Severity.NONE)),
        ("redundant", "degraded", "state", None),  # the worst group changed: groups tell
        (None, "redundant", "state", None),
        ("offline", "offline", "state", None),
    ],
)
def test_host_transitions_are_offline_and_back_only(frm, to, cause, expected) -> None:
    r = from_transition(tr("host", "web-01", frm, to, cause=cause))
    if expected is None:
        assert r is None
        return
    assert r is not None and r.subject is Subject.HOST and r.group == ""
    assert (r.from_state, r.to_state, r.severity) == expected


def test_offline_detail_says_why() -> None:
    r = from_transition(tr("host", "web-01", "redundant", "offline", cause="missed_heartbeats"))
    assert r is not None and r.detail == "no message within the heartbeat timeout"
    r = from_transition(
        tr("host", "web-01", "redundant", "offline", cause="last_will", reason="its Last Will")
    )
    assert r is not None and r.detail == "its Last Will"


def promotion(decision: str) -> dict:
    return {
        "schema": 1,
        "ts": 50.0,
        "seq": 7,
        "type": "promotion",
        "site": "dc1",
        "host": "db-02",
        "id": "step-down",
        "decision": decision,
        "direction": "engage",
        "action": "keepalived",
        "intent": "step_down",
        "trigger": "group power failed",
        "message": "keepalived priority lowered",
        "dry_run": False,
        "manual": False,
    }


@pytest.mark.parametrize(
    ("decision", "to", "severity"),
    [
        ("engaged", "succeeded", Severity.INFO),
        ("released", "succeeded", Severity.INFO),
        ("failed", "failed", Severity.CRITICAL),
        ("pending", None, None),
        ("dry_run", None, None),
        ("suppressed", None, None),
    ],
)
def test_promotion_results_become_action_records(decision, to, severity) -> None:
    r = from_event(promotion(decision))
    if to is None:
        assert r is None
        return
    assert r is not None and r.subject is Subject.ACTION
    assert (r.site, r.host, r.group, r.to_state, r.ts) == ("dc1", "db-02", "step-down", to, 50.0)
    assert r.severity is severity and r.kind == "action"
    assert "keepalived priority lowered" in r.detail


def test_a_refused_command_is_an_action_warning_and_other_events_are_not() -> None:
    cmd = {"type": "command", "site": "dc1", "host": "db-02", "id": "promote", "ts": 1.0}
    r = from_event({**cmd, "decision": "rejected", "reason": "replayed", "message": ""})
    assert r is not None and r.to_state == "refused" and r.severity is Severity.WARNING
    assert "replayed" in r.detail
    assert from_event({**cmd, "decision": "accepted", "message": "ok"}) is None
    assert from_event({"type": "transition", "site": "dc1", "host": "h", "ts": 1.0}) is None
    assert from_event({"type": "started", "site": "dc1", "host": "h", "ts": 1.0}) is None


def labels(host: str, group: str = "", site: str = "dc1") -> dict[str, str]:
    return {"site": site, "host": host, "group": group, "kind": "power", "severity": "warning"}


def test_maintenance_windows_silence_what_they_exclude_from_availability() -> None:
    host_window = maintenance_silence(Maintenance(3, "dc1", "web-01", "", 10.0, 20.0, "PSU", "api"))
    assert host_window.id == "maintenance:3" and host_window.kind is SilenceKind.MAINTENANCE
    assert host_window.comment == "PSU" and host_window.created_by == "api"
    assert host_window.covers(labels("web-01"), 15.0)  # the host's offline alert
    assert host_window.covers(labels("web-01", "power"), 15.0)  # and each of its groups
    assert not host_window.covers(labels("web-01", "power"), 20.0)  # ends are exclusive
    assert not host_window.covers(labels("web-02", "power"), 15.0)
    assert not host_window.covers(labels("web-01", "power", site="dc2"), 15.0)

    group_window = maintenance_silence(
        Maintenance(4, "", "web-01", "power", 0.0, 9.0, "", "config")
    )
    assert group_window.covers(labels("web-01", "power", site="any"), 1.0)
    assert not group_window.covers(labels("web-01", "fans"), 1.0)
    assert not group_window.covers(labels("web-01"), 1.0)  # not the host as a whole

    site_window = maintenance_silence(Maintenance(5, "dc2", "", "", 0.0, 9.0, "", "config"))
    assert site_window.covers(labels("anything", "x", site="dc2"), 1.0)
    assert not site_window.covers(labels("anything", "x"), 1.0)

    # names are matched literally, not as globs
    odd = maintenance_silence(Maintenance(6, "", "web-[1]*", "", 0.0, 9.0, "", "api"))
    assert odd.covers(labels("web-[1]*"), 1.0) and not odd.covers(labels("web-1x"), 1.0)


def test_a_notification_becomes_one_history_row_per_alert() -> None:
    key = AlertKey("dc1", "web-01", "group/power")
    alert = Alert(
        key,
        Subject.GROUP,
        Status.FIRING,
        {**labels("web-01", "power"), "state": "degraded"},
        "degraded",
        10.0,
        None,
        "1 of 2 serving",
    )
    n = Notification("hook", 0, {"site": "dc1", "host": "web-01"}, (alert,), 12.0)
    assert history_rows(n) == [
        (
            12.0,
            "dc1",
            "web-01",
            "group/power",
            "firing",
            "hook",
            "web-01 (dc1): power degraded: 1 of 2 serving",
        )
    ]


# ---- configuration ---------------------------------------------------------------------


def test_the_alerts_section_is_parsed_by_the_central_configuration(tmp_path: Path) -> None:
    secret = tmp_path / "hook.secret"
    secret.write_text(SECRET + "\n")
    secret.chmod(0o600)
    cfg = write_config(
        tmp_path / "central.toml",
        1883,
        str(tmp_path / "c.db"),
        mqtt_extra=(
            '\n[alerts]\ndefault_receivers = ["hook"]\n'
            f'[alerts.receivers.hook]\ntype = "webhook"\nurl = "http://127.0.0.1:9/x"\n'
            f'secret_file = "{secret}"\n'
        ),
    )
    loaded = central_config.load(cfg)
    assert loaded.sections["alerts"].default_receivers == ("hook",)
    cfg.write_text(cfg.read_text().replace("secret_file", "secretfile"))
    with pytest.raises(central_config.ConfigError) as e:
        central_config.load(cfg)
    assert e.value.key.startswith("alerts.receivers.hook.")
    assert e.value.file == str(cfg)


# ---- end to end with real peers --------------------------------------------------------


def alerts_config(tmp_path: Path, hook: str, am: str) -> str:
    secret = tmp_path / "hook.secret"
    secret.write_text(SECRET + "\n")
    secret.chmod(0o600)
    return (
        "\n[alerts]\n"
        'default_receivers = ["hook", "am"]\n'
        "group_wait = 0.2\ngroup_interval = 0.5\nrepeat_interval = 3600\n"
        'external_url = "http://dashboard.example:8470"\n'
        "[alerts.receivers.hook]\n"
        f'type = "webhook"\nurl = "{hook}/hook"\nsecret_file = "{secret}"\n'
        "[alerts.receivers.am]\n"
        f'type = "alertmanager"\nurl = "{am}"\nresend_interval = 5\n'
    )


def notified(hook: Recorder, host: str, group: str, status: str) -> list[dict]:
    """Every alert the webhook was told about for (host, group) with ``status``."""
    out = []
    for r in list(hook.requests):
        for a in r.json()["alerts"]:
            if (a["labels"]["host"], a["labels"]["group"], a["status"]) == (host, group, status):
                out.append(a)
    return out


def test_end_to_end_webhook_alertmanager_silence_and_maintenance(broker, tmp_path: Path) -> None:
    agents: list[SimAgent] = []
    with Recorder() as hook, alertmanager() as am:
        cfg = write_config(
            tmp_path / "central.toml",
            broker.port,
            str(tmp_path / "c.db"),
            mqtt_extra=alerts_config(tmp_path, hook.url, am),
            token=TOKEN,
        )
        c = CentralThread(cfg).start()
        try:
            api = c.url
            for host in ("web-01", "web-02", "web-03"):
                agents.append(SimAgent(broker.port, "dc1", host, {"power": "redundant"}))
            web1, web2, web3 = agents
            wait_for(lambda: len(get(f"{api}/api/fleet")[1]["hosts"]) == 3, what="three hosts")

            # 1. a group turns degraded: the signed webhook and Alertmanager hear of it
            web1.publish({"power": "degraded"})
            [fired] = wait_for(lambda: notified(hook, "web-01", "power", "firing"), what="webhook")
            request = next(r for r in hook.requests if b'"web-01"' in r.body)
            expected = (
                "sha256=" + hmac.new(SECRET.encode(), request.body, hashlib.sha256).hexdigest()
            )
            assert request.headers["X-Hotspare-Signature"] == expected
            assert (
                fired["labels"]["state"] == "degraded" and fired["labels"]["severity"] == "warning"
            )
            assert fired["url"] == "http://dashboard.example:8470/#/host/dc1/web-01"

            def am_power(host: str) -> list[dict]:
                return [
                    a
                    for a in alertmanager_alerts(am)
                    if a["labels"].get("host") == host and a["labels"].get("group") == "power"
                ]

            [in_am] = wait_for(lambda: am_power("web-01"), what="the alert in Alertmanager")
            assert in_am["labels"]["alertname"] == "HotspareGroupState"
            assert in_am["generatorURL"] == "http://dashboard.example:8470/#/host/dc1/web-01"
            status, body = get(f"{api}/api/alerts")
            assert status == 200 and body["enabled"]
            assert [a["key"] for a in body["alerts"]] == ["dc1/web-01/group/power"]
            # what was sent is kept in the history
            sent = wait_for(lambda: get(f"{api}/api/alerts")[1]["sent"], what="history rows")
            assert {(s["host"], s["id"], s["status"]) for s in sent} >= {
                ("web-01", "group/power", "firing")
            }
            assert {s["receiver"] for s in sent} == {"hook", "am"}

            # 2. recovery: the resolution reaches both
            web1.publish({"power": "redundant"})
            wait_for(lambda: notified(hook, "web-01", "power", "resolved"), what="resolution")
            wait_for(lambda: not am_power("web-01"), what="resolved in Alertmanager")
            assert get(f"{api}/api/alerts")[1]["alerts"] == []

            # 3. a silence added through the API (with the token) keeps the next one quiet
            silence = {"matchers": {"host": "web-01"}, "end": time.time() + 3600, "comment": "t"}
            assert send(f"{api}/api/silences", "POST", silence)[0] == 401
            status, s = send(f"{api}/api/silences", "POST", silence, token=TOKEN)
            assert status == 201 and s["kind"] == "silence" and s["active"]
            assert s["matchers"] == {"host": ["web-01"]}
            web1.publish({"power": "failed"})
            web2.publish({"power": "degraded"})  # not silenced: proves delivery goes on
            wait_for(lambda: notified(hook, "web-02", "power", "firing"), what="web-02 firing")
            firing_web1 = [a for a in notified(hook, "web-01", "power", "firing")]
            assert [a["labels"]["state"] for a in firing_web1] == ["degraded"]  # only the first
            listed = wait_for(
                lambda: [
                    a
                    for a in get(f"{api}/api/alerts")[1]["alerts"]
                    if a["labels"]["host"] == "web-01"
                ],
                what="web-01 listed",
            )
            assert listed[0]["silencedBy"] == [s["id"]]
            assert s["id"] in [x["id"] for x in get(f"{api}/api/silences")[1]["silences"]]

            # 4. a maintenance window declared through the API silences too, and is
            # left out of the availability figures
            window = {
                "site": "dc1",
                "host": "web-03",
                "start": time.time() - 1,
                "end": time.time() + 3600,
                "reason": "PSU swap",
            }
            status, m = send(f"{api}/api/maintenance", "POST", window, token=TOKEN)
            assert status == 201
            silences = get(f"{api}/api/silences")[1]["silences"]
            assert f"maintenance:{m['id']}" in [x["id"] for x in silences]
            web3.publish({"power": "failed"})
            web2.publish({"power": "failed"})  # the sync point again
            wait_for(
                lambda: [
                    a
                    for a in notified(hook, "web-02", "power", "firing")
                    if a["labels"]["state"] == "failed"
                ],
                what="web-02 escalation",
            )
            assert notified(hook, "web-03", "power", "firing") == []
            assert am_power("web-03") == []
            status, av = get(f"{api}/api/availability?site=dc1&host=web-03&window=1h")
            assert status == 200 and av["maintenance_s"] > 0
            assert av["down_s"] == 0 and av["exposure_s"] == 0
            assert av["groups"]["power"]["down_s"] == 0
            assert av["groups"]["power"]["maintenance_s"] > 0

            # a maintenance window is deleted through its own endpoint, not as a silence
            status, _ = send(f"{api}/api/silences/maintenance:{m['id']}", "DELETE", token=TOKEN)
            assert status == 409
            # ending the silence: what is still true about web-01 is sent
            status, _ = send(f"{api}/api/silences/{s['id']}", "DELETE", token=TOKEN)
            assert status == 200
            wait_for(
                lambda: [
                    a
                    for a in notified(hook, "web-01", "power", "firing")
                    if a["labels"]["state"] == "failed"
                ],
                what="web-01 failed after the silence",
            )
            assert send(f"{api}/api/silences/nope", "DELETE", token=TOKEN)[0] == 404

            # 5. a host that vanishes (Last Will) is one offline alert
            web2.die()
            [offline] = wait_for(lambda: notified(hook, "web-02", "", "firing"), what="offline")
            assert (
                offline["labels"]["kind"] == "host" and offline["labels"]["severity"] == "critical"
            )
            # its group alert stays listed, held back: the offline alert covers it
            listed = {a["key"]: a for a in get(f"{api}/api/alerts")[1]["alerts"]}
            assert listed["dc1/web-02/group/power"]["hostOffline"] is True
            assert listed["dc1/web-02/host"]["hostOffline"] is False
        finally:
            for a in agents:
                a.close()
            c.stop()


def test_without_an_alerts_section_the_api_says_so(broker, tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "central.toml", broker.port, str(tmp_path / "c.db"), token=TOKEN)
    c = CentralThread(cfg).start()
    try:
        assert get(f"{c.url}/api/alerts") == (
            200,
            {"enabled": False, "alerts": [], "stats": {}, "sent": []},
        )
        assert get(f"{c.url}/api/silences") == (200, {"enabled": False, "silences": []})
        status, body = send(
            f"{c.url}/api/silences", "POST", {"matchers": {"host": "x"}, "end": 9e9}, token=TOKEN
        )
        assert status == 409 and "[alerts]" in body["error"]
    finally:
        c.stop()


def test_the_documented_example_is_a_loadable_central_configuration(tmp_path: Path) -> None:
    """docs/alerts.md's example, as a whole central.toml: alerts and maintenance together."""
    from tests.test_alerts_config import DOC, SECRETS

    text = DOC.read_text()
    start = text.index("<!-- example: alerts -->\n```toml\n") + len(
        "<!-- example: alerts -->\n```toml\n"
    )
    example = text[start : text.index("```", start)]
    for name in SECRETS:
        path = tmp_path / name
        path.write_text("https://hooks.example.org/x\n" if name == "slack.url" else "s3cret\n")
        path.chmod(0o600)
    cfg_path = tmp_path / "central.toml"
    cfg_path.write_text(example.replace("/etc/hotspare/", f"{tmp_path}/"))
    cfg = central_config.load(cfg_path)
    assert set(cfg.sections["alerts"].receivers) == {
        "pager",
        "chat",
        "alertmanager",
        "dba-mail",
        "audit",
    }
    (window,) = cfg.maintenance
    assert (window.site, window.host, window.group, window.end - window.start) == (
        "dc2",
        "",
        "",
        4 * 3600,
    )
    silence = maintenance_silence(
        Maintenance(
            1,
            window.site,
            window.host,
            window.group,
            window.start,
            window.end,
            window.reason,
            "config",
        )
    )
    assert silence.covers(labels("db-07", "md/md0", site="dc2"), window.start)


def test_the_central_documentation_example_loads(tmp_path: Path) -> None:
    text = (Path(__file__).resolve().parent.parent / "docs" / "central.md").read_text()
    marker = "<!-- example: central -->\n```toml\n"
    start = text.index(marker) + len(marker)
    example = text[start : text.index("```", start)]
    for name in ("central.token", "pagerduty.key", "ca.pem"):
        (tmp_path / name).write_text("x\n")
        (tmp_path / name).chmod(0o600)
    path = tmp_path / "central.toml"
    path.write_text(example.replace("/etc/hotspare/", f"{tmp_path}/"))
    cfg = central_config.load(path)
    alerts = cfg.sections["alerts"]
    assert alerts.external_url == "https://hotspare.example.org"
    assert [r.receivers for r in alerts.routes] == [("ops", "pager")]
    assert len(cfg.maintenance) == 1 and cfg.token == "x"


def test_check_names_the_alert_receivers_and_their_errors(tmp_path: Path) -> None:
    import json

    from tests.conftest import hotspare

    secret = tmp_path / "hook.secret"
    secret.write_text("k\n")
    secret.chmod(0o600)
    path = tmp_path / "central.toml"
    path.write_text(
        '[alerts]\ndefault_receivers = ["hook"]\n[alerts.receivers.hook]\ntype = "webhook"\n'
        f'url = "http://127.0.0.1:9/h"\nsecret_file = "{secret}"\n'
    )
    r = hotspare("central", "--config", str(path), "--check", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["alert_receivers"] == ["hook"]
    secret.chmod(0o644)
    r = hotspare("central", "--config", str(path), "--check", "--json")
    assert r.returncode == central_config.EXIT_CONFIG
    out = json.loads(r.stdout)
    assert out["key"] == "alerts.receivers.hook.secret_file" and "chmod 600" in out["error"]
    assert "k\n" not in r.stdout


def test_after_a_restart_what_still_holds_is_alerted_again(tmp_path: Path) -> None:
    from central.alerting import Alerting
    from central.alerts import AlertEngine, AlertsConfig
    from central.history import History

    history = History.open(str(tmp_path / "c.db"), "")
    history.add_transitions(
        [
            tr("group", "power", None, "redundant", kind="power"),
            tr("group", "power", "redundant", "degraded", kind="power", reason="psu2 failed"),
            tr("group", "fans", None, "redundant", kind="cooling"),
            Transition(
                90.0, "dc1", "web-02", "host", "web-02", "redundant", "offline", "", "last_will"
            ),
        ]
    )
    history.add_maintenance("dc1", "web-09", "", 0.0, 2e9, "rack move", "api", 1.0)
    history.commit()
    now = [1000.0]
    engine = AlertEngine(AlertsConfig(), clock=lambda: now[0], receivers={})
    alerting = Alerting(engine, history, lambda: now[0])
    alerting.seed(history.last_transitions())
    assert [(str(a.key), a.state, a.starts_at, a.detail) for a in engine.alerts()] == [
        ("dc1/web-01/group/power", "degraded", 100.0, "psu2 failed"),
        (
            "dc1/web-02/host",
            "offline",
            90.0,
            "its Last Will arrived: the connection broke without a goodbye",
        ),
    ]
    # the history's maintenance windows are the engine's, from the start
    assert [(s.id, s.comment) for s in engine.silences()] == [("maintenance:1", "rack move")]
    history.close()

"""The receivers against real peers: Alertmanager, aiosmtpd with STARTTLS, HTTP servers.

The engine runs for real (real clock, asyncio, threads for I/O); group_wait is 0 and
group_interval short so a test waits for deliveries, never for fixed times.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import ssl
import time
from collections.abc import Awaitable, Callable
from email import message_from_bytes
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from jsonschema import Draft202012Validator, FormatChecker

from agent.localbroker import free_port
from central.alerts import AlertEngine, Subject, Transition, parse
from central.alerts.dispatch import Dispatcher
from central.alerts.model import Alert, AlertKey, Notification, Status
from central.alerts.receivers import alertmanager as am_receiver
from central.alerts.receivers import pagerduty, slack
from tests.alerts_peer import Recorder, alertmanager, alertmanager_alerts

FIXTURES = Path(__file__).parent / "fixtures" / "alerts"
SECRET = "s3cr3t-hmac-key-never-logged"
ROUTING_KEY = "R0UT1NGKEYR0UT1NGKEYR0UT1NGKEY12"


def schema(name: str) -> Draft202012Validator:
    doc = json.loads((FIXTURES / name).read_text())
    return Draft202012Validator(doc, format_checker=FormatChecker())


def secret_file(tmp_path: Path, name: str, content: str) -> str:
    path = tmp_path / name
    path.write_text(content + "\n")
    path.chmod(0o600)
    return str(path)


def group(host: str, to: str | None, group: str = "power", kind: str = "power") -> Transition:
    return Transition(Subject.GROUP, "dc1", host, group, kind, None, to, time.time(), f"now {to}")


def config(tmp_path: Path, receivers: dict[str, Any], **top: Any):
    section = {
        "group_wait": 0.0,
        "group_interval": 0.3,
        "retry_initial": 0.05,
        "retry_max": 0.2,
        "external_url": "http://hotspare.example:8080",
        **top,
        "receivers": receivers,
        "routes": [{"receivers": list(receivers)}],
    }
    return parse(section, tmp_path / "central.toml")


async def with_engine(engine: AlertEngine, body: Callable[[AlertEngine], Awaitable[None]]) -> None:
    task = asyncio.create_task(engine.run())
    try:
        await body(engine)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


def run_engine(engine: AlertEngine, body: Callable[[AlertEngine], Awaitable[None]]) -> None:
    asyncio.run(with_engine(engine, body))


async def until(predicate: Callable[[], Any], timeout: float = 20) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.05)
    return value


# ---- Alertmanager ------------------------------------------------------------------------


def test_alertmanager_receives_alerts_and_resolution(tmp_path: Path) -> None:
    with Recorder() as hook, alertmanager(hook.url + "/am-webhook") as am:
        cfg = config(tmp_path, {"am": {"type": "alertmanager", "url": am}})
        engine = AlertEngine(cfg)

        async def body(engine: AlertEngine) -> None:
            engine.on_transition(group("web-01", "degraded"))
            engine.on_transition(group("web-01", "failed", "md/md0", "raid"))
            engine.on_transition(
                Transition(Subject.HOST, "dc1", "web-02", "", "", "online", "offline", time.time())
            )
            alerts = await until(
                lambda: len(alertmanager_alerts(am)) == 3 and alertmanager_alerts(am)
            )
            by_host_group = {(a["labels"]["host"], a["labels"].get("group", "")): a for a in alerts}
            power = by_host_group[("web-01", "power")]
            assert power["labels"] == {
                "alertname": "HotspareGroupState",
                "site": "dc1",
                "host": "web-01",
                "group": "power",
                "kind": "power",
                "severity": "warning",
            }
            assert power["annotations"]["state"] == "degraded"
            assert power["annotations"]["summary"] == "web-01 (dc1): power degraded"
            assert power["generatorURL"] == "http://hotspare.example:8080/#/host/dc1/web-01"
            assert power["status"]["state"] == "active"
            assert by_host_group[("web-02", "")]["labels"]["alertname"] == "HotspareHostOffline"
            assert by_host_group[("web-01", "md/md0")]["labels"]["severity"] == "critical"

            engine.on_transition(group("web-01", "redundant"))
            resolved_at = time.time()
            # Alertmanager no longer lists it once endsAt has passed...
            await until(lambda: len(alertmanager_alerts(am)) == 2)

            # ...and its own webhook tells the resolution with our endsAt
            def resolved():
                for r in hook.requests:
                    for a in r.json()["alerts"]:
                        if a["status"] == "resolved" and a["labels"].get("group") == "power":
                            return a
                return None

            a = await until(resolved)
            ends = a["endsAt"]
            assert ends.endswith("Z")
            from datetime import datetime

            ends_ts = datetime.fromisoformat(ends.replace("Z", "+00:00")).timestamp()
            assert resolved_at - 5 < ends_ts <= resolved_at + 1
            assert engine.stats()["receivers"]["am"]["sent"] >= 2

        run_engine(engine, body)


def test_alertmanager_payload_matches_its_api_schema() -> None:
    validator = schema("alertmanager-postable-alerts.schema.json")
    now = 1764095400.0
    firing = Alert(
        AlertKey("dc1", "web-01", "group/md/md0"),
        Subject.GROUP,
        Status.FIRING,
        {
            "site": "dc1",
            "host": "web-01",
            "group": "md/md0",
            "kind": "raid",
            "severity": "critical",
            "state": "failed",
        },
        "failed",
        now - 10,
        None,
        "raid5 [3/1] [U__]",
        flapping=True,
    )
    resolved = Alert(
        AlertKey("dc1", "web-02", "host"),
        Subject.HOST,
        Status.RESOLVED,
        {
            "site": "dc1",
            "host": "web-02",
            "group": "",
            "kind": "host",
            "severity": "critical",
            "state": "online",
        },
        "online",
        now - 100,
        now - 5,
    )
    body = [
        am_receiver.alert_payload(firing, now, 240, "http://h:8080"),
        am_receiver.alert_payload(resolved, now, 240, ""),
    ]
    validator.validate(json.loads(json.dumps(body)))
    assert body[0]["endsAt"] == "2025-11-25T18:34:00.000Z"  # now + 240 s: still firing then
    assert body[0]["annotations"]["flapping"] == "true"
    assert "state" not in body[0]["labels"] and body[0]["annotations"]["state"] == "failed"
    assert body[1]["endsAt"] == "2025-11-25T18:29:55.000Z"  # when it resolved
    assert "group" not in body[1]["labels"]  # empty values are left out
    bad = [{"labels": {"bad-name": "x"}}]
    assert not validator.is_valid(bad)  # the schema can fail


# ---- webhook, Slack, PagerDuty --------------------------------------------------------------


def test_webhook_is_signed_and_carries_the_alerts(tmp_path: Path) -> None:
    with Recorder() as hook:
        receivers = {
            "hook": {
                "type": "webhook",
                "url": hook.url + "/hotspare",
                "secret_file": secret_file(tmp_path, "hook.secret", SECRET),
            }
        }
        engine = AlertEngine(config(tmp_path, receivers))

        async def body(engine: AlertEngine) -> None:
            engine.on_transition(group("web-01", "degraded"))
            await asyncio.to_thread(hook.wait, 1)
            engine.on_transition(group("web-01", "redundant"))
            await asyncio.to_thread(hook.wait, 2)

        run_engine(engine, body)
        first, second = hook.requests[:2]
        for r in (first, second):
            expected = "sha256=" + hmac.new(SECRET.encode(), r.body, hashlib.sha256).hexdigest()
            assert hmac.compare_digest(r.headers["X-Hotspare-Signature"], expected)
            assert r.headers["Content-Type"] == "application/json"
            assert r.path == "/hotspare"
        # a body changed in flight no longer matches
        tampered = first.body.replace(b"degraded", b"redundant")
        forged = "sha256=" + hmac.new(SECRET.encode(), tampered, hashlib.sha256).hexdigest()
        assert forged != first.headers["X-Hotspare-Signature"]
        doc = first.json()
        assert doc["version"] == 1 and doc["status"] == "firing" and doc["receiver"] == "hook"
        assert doc["groupLabels"] == {"site": "dc1", "host": "web-01"}
        [alert] = doc["alerts"]
        assert alert["labels"]["state"] == "degraded" and alert["status"] == "firing"
        assert alert["id"] == AlertKey("dc1", "web-01", "group/power").fingerprint
        assert alert["url"] == "http://hotspare.example:8080/#/host/dc1/web-01"
        assert second.json()["status"] == "resolved"
        assert second.json()["alerts"][0]["endsAt"] is not None
        assert SECRET not in first.body.decode()


def test_slack_incoming_webhook_text_and_blocks(tmp_path: Path) -> None:
    with Recorder() as hook:
        url = hook.url + "/services/T000/B000/XXXXSECRETPATH"
        receivers = {"chat": {"type": "slack", "url_file": secret_file(tmp_path, "slack.url", url)}}
        engine = AlertEngine(config(tmp_path, receivers))

        async def body(engine: AlertEngine) -> None:
            engine.on_transition(group("web-01", "failed"))
            engine.on_transition(group("web-01", "degraded", "fans", "cooling"))
            await asyncio.to_thread(hook.wait, 1)

        run_engine(engine, body)
        r = hook.requests[0]
        assert r.path == "/services/T000/B000/XXXXSECRETPATH"
        doc = r.json()
        # incoming webhooks: "text" is required as the notification fallback when blocks are sent
        assert set(doc) == {"text", "blocks"} and doc["text"].startswith("[hotspare FIRING]")
        assert 1 <= len(doc["blocks"]) <= 50
        header, *sections = doc["blocks"]
        assert header == {"type": "header", "text": {"type": "plain_text", "text": doc["text"]}}
        assert len(header["text"]["text"]) <= 150
        assert [s["type"] for s in sections] == ["section", "section"]
        texts = [s["text"]["text"] for s in sections]
        assert all(
            s["text"]["type"] == "mrkdwn" and len(t) <= 3000
            for s, t in zip(sections, texts, strict=True)
        )
        assert any(":red_circle:" in t and "power failed" in t for t in texts)


def test_slack_caps_the_number_of_blocks() -> None:
    alerts = tuple(
        Alert(
            AlertKey("dc1", f"h{i}", "host"),
            Subject.HOST,
            Status.FIRING,
            {
                "site": "dc1",
                "host": f"h{i}",
                "group": "",
                "kind": "host",
                "severity": "critical",
                "state": "offline",
            },
            "offline",
            0.0,
            None,
        )
        for i in range(80)
    )
    doc = slack.payload(Notification("chat", 0, {"site": "dc1"}, alerts, 0.0))
    assert len(doc["blocks"]) == 1 + slack.MAX_ALERTS + 1 <= 50
    assert doc["blocks"][-1]["elements"][0]["text"] == "and 60 more"


def test_pagerduty_trigger_and_resolve_with_stable_dedup_key(tmp_path: Path) -> None:
    validator = schema("pagerduty-events-v2.schema.json")
    with Recorder(default=202) as pd:
        receivers = {
            "pager": {
                "type": "pagerduty",
                "url": pd.url + "/v2/enqueue",
                "routing_key_file": secret_file(tmp_path, "pd.key", ROUTING_KEY),
            }
        }
        engine = AlertEngine(config(tmp_path, receivers))

        async def body(engine: AlertEngine) -> None:
            engine.on_transition(group("db-01", "failed", "md/md0", "raid"))
            await asyncio.to_thread(pd.wait, 1)
            engine.on_transition(group("db-01", "redundant", "md/md0", "raid"))
            await asyncio.to_thread(pd.wait, 2)

        run_engine(engine, body)
        trigger, resolve = (r.json() for r in pd.requests[:2])
        for doc in (trigger, resolve):
            validator.validate(doc)
            assert doc["routing_key"] == ROUTING_KEY
        assert pd.requests[0].path == "/v2/enqueue"
        assert trigger["event_action"] == "trigger"
        assert trigger["payload"]["severity"] == "critical"
        assert trigger["payload"]["source"] == "db-01"
        assert trigger["payload"]["component"] == "md/md0"
        assert trigger["payload"]["class"] == "raid"
        assert resolve == {
            "routing_key": ROUTING_KEY,
            "event_action": "resolve",
            "dedup_key": trigger["dedup_key"],
        }
        # stable: the same (site, host, group) gives the same key in a new process
        assert trigger["dedup_key"] == AlertKey("dc1", "db-01", "group/md/md0").fingerprint
        assert not validator.is_valid({"routing_key": "k", "event_action": "trigger"})


def test_pagerduty_events_for_every_severity_validate() -> None:
    validator = schema("pagerduty-events-v2.schema.json")
    for state, subject in [
        ("failed", Subject.GROUP),
        ("degraded", Subject.GROUP),
        ("unknown", Subject.GROUP),
        ("offline", Subject.HOST),
        ("succeeded", Subject.ACTION),
    ]:
        t = Transition(subject, "dc1", "h", "g", "power", None, state, 1764095400.0, "x" * 2000)
        alert = Alert(
            t.key,
            subject,
            Status.FIRING,
            {
                "site": "dc1",
                "host": "h",
                "group": "g",
                "kind": t.kind,
                "severity": t.severity.value,
                "state": state,
            },
            state,
            t.ts,
            None,
            t.detail,
        )
        validator.validate(pagerduty.event(alert, "k", "http://h"))


# ---- retries, failures, overflow ---------------------------------------------------------


def test_a_receiver_failing_twice_gets_it_on_the_third_try(tmp_path: Path) -> None:
    with Recorder(statuses=[500, 500]) as hook:
        receivers = {
            "hook": {
                "type": "webhook",
                "url": hook.url,
                "secret_file": secret_file(tmp_path, "s", SECRET),
            }
        }
        engine = AlertEngine(config(tmp_path, receivers))

        async def body(engine: AlertEngine) -> None:
            engine.on_transition(group("web-01", "degraded"))
            await asyncio.to_thread(hook.wait, 3)
            await until(lambda: engine.stats()["receivers"]["hook"]["sent"] == 1)

        run_engine(engine, body)
        assert len({r.body for r in hook.requests}) == 1  # the same notification three times
        stats = engine.stats()["receivers"]["hook"]
        assert (stats["sent"], stats["retries"], stats["failed"]) == (1, 2, 0)
        assert stats["last_error"].startswith("HTTP 500")


def test_a_receiver_that_keeps_failing_is_logged_and_counted_without_secrets(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with Recorder(default=503) as hook:
        url = hook.url + "/services/T0/B0/SLACKPATHSECRET"
        receivers = {"chat": {"type": "slack", "url_file": secret_file(tmp_path, "u", url)}}
        engine = AlertEngine(config(tmp_path, receivers, retry_attempts=3))

        async def body(engine: AlertEngine) -> None:
            engine.on_transition(group("web-01", "degraded"))
            await until(lambda: engine.stats()["receivers"]["chat"]["failed"] == 1)

        with caplog.at_level(logging.INFO):
            run_engine(engine, body)
        assert len(hook.requests) == 3
        stats = engine.stats()["receivers"]["chat"]
        assert (stats["sent"], stats["retries"], stats["failed"]) == (0, 2, 1)
        assert "receiver chat: giving up after 3 attempts: HTTP 503" in caplog.text
        assert "SLACKPATHSECRET" not in caplog.text and "SLACKPATHSECRET" not in repr(
            engine.receivers
        )


def test_a_full_queue_drops_loudly() -> None:
    class Stuck:
        name, send_resolved = "stuck", True

        async def send(self, n: Notification) -> None:
            await asyncio.Event().wait()

    async def main() -> Dispatcher:
        d = Dispatcher({"stuck": Stuck()}, queue_size=2)
        n = Notification("stuck", 0, {}, (), 0.0)
        results = [d.submit(n) for _ in range(4)]
        assert results == [True, True, False, False]
        return d

    d = asyncio.run(main())
    assert d.stats["stuck"].dropped == 2 and d.stats["stuck"].queued == 2


def test_backoff_doubles_up_to_the_maximum() -> None:
    from central.alerts.dispatch import backoff

    assert [backoff(i, 1.0, 10.0) for i in range(1, 7)] == [1, 2, 4, 8, 10, 10]


# ---- e-mail over SMTP with STARTTLS --------------------------------------------------------


class Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], bytes, bool]] = []

    async def handle_DATA(self, server, session, envelope) -> str:
        tls = session.ssl is not None
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content, tls))
        return "250 OK"


def smtp_server(tmp_path: Path, inbox: Inbox, *, tls: bool = True) -> tuple[Controller, str]:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(ctx)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))

    def authenticator(server, session, envelope, mechanism, data) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
            b"alerts",
            b"smtp-pw-secret",
        )
        return AuthResult(success=ok, handled=False)

    kwargs: dict[str, Any] = {"authenticator": authenticator, "auth_require_tls": True}
    if tls:
        kwargs.update(tls_context=ctx, require_starttls=True, auth_required=True)
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port(), **kwargs)
    controller.start()
    return controller, str(ca_file)


def email_receiver(
    tmp_path: Path, port: int, ca_file: str, password: str = "smtp-pw-secret"
) -> dict[str, Any]:
    return {
        "type": "email",
        "smarthost": f"127.0.0.1:{port}",
        "from": "hotspare@example.org",
        "to": ["ops@example.org", "oncall@example.org"],
        "username": "alerts",
        "password_file": secret_file(tmp_path, "smtp.pw", password),
        "ca_file": ca_file,
    }


def test_email_over_starttls_with_authentication(tmp_path: Path) -> None:
    inbox = Inbox()
    controller, ca_file = smtp_server(tmp_path, inbox)
    try:
        cfg = config(tmp_path, {"mail": email_receiver(tmp_path, controller.port, ca_file)})
        engine = AlertEngine(cfg)

        async def body(engine: AlertEngine) -> None:
            engine.on_transition(group("web-01", "failed", "md/md0", "raid"))
            await until(lambda: inbox.messages)

        run_engine(engine, body)
    finally:
        controller.stop()
    sender, rcpts, content, tls = inbox.messages[0]
    assert tls, "the mail must travel after STARTTLS"
    assert sender == "hotspare@example.org"
    assert rcpts == ["ops@example.org", "oncall@example.org"]
    msg = message_from_bytes(content)
    assert msg["Subject"] == "[hotspare FIRING] site=dc1, host=web-01: 1 firing"
    text = msg.get_payload(decode=True).decode()
    assert "[FIRING] web-01 (dc1): md/md0 failed" in text
    assert "link:   http://hotspare.example:8080/#/host/dc1/web-01" in text
    assert "smtp-pw-secret" not in content.decode()


def test_email_wrong_password_fails_without_showing_it(tmp_path: Path, caplog) -> None:
    inbox = Inbox()
    controller, ca_file = smtp_server(tmp_path, inbox)
    try:
        rc = email_receiver(tmp_path, controller.port, ca_file, password="wrong-pw-xyz")
        engine = AlertEngine(config(tmp_path, {"mail": rc}, retry_attempts=2))

        async def body(engine: AlertEngine) -> None:
            engine.on_transition(group("web-01", "failed"))
            await until(lambda: engine.stats()["receivers"]["mail"]["failed"] == 1)

        with caplog.at_level(logging.WARNING):
            run_engine(engine, body)
    finally:
        controller.stop()
    assert not inbox.messages
    assert "authentication failed: 535" in engine.stats()["receivers"]["mail"]["last_error"]
    assert "wrong-pw-xyz" not in caplog.text


def test_email_refuses_a_server_without_starttls(tmp_path: Path) -> None:
    inbox = Inbox()
    controller, ca_file = smtp_server(tmp_path, inbox, tls=False)
    try:
        rc = email_receiver(tmp_path, controller.port, ca_file)
        engine = AlertEngine(config(tmp_path, {"mail": rc}, retry_attempts=1))

        async def body(engine: AlertEngine) -> None:
            engine.on_transition(group("web-01", "failed"))
            await until(lambda: engine.stats()["receivers"]["mail"]["failed"] == 1)

        run_engine(engine, body)
    finally:
        controller.stop()
    assert not inbox.messages
    assert engine.stats()["receivers"]["mail"]["last_error"] == "the server does not offer STARTTLS"


def test_alertmanager_escalation_replaces_the_alert_and_firing_alerts_are_reposted(
    tmp_path: Path,
) -> None:
    with alertmanager() as am:
        receivers = {"am": {"type": "alertmanager", "url": am, "resend_interval": 0.5}}
        engine = AlertEngine(config(tmp_path, receivers))

        def power() -> list[dict]:
            return [a for a in alertmanager_alerts(am) if a["labels"].get("group") == "power"]

        async def body(engine: AlertEngine) -> None:
            engine.on_transition(group("web-01", "degraded"))
            [first] = await until(power)
            assert first["labels"]["severity"] == "warning"
            # re-posted while firing: Alertmanager's endsAt keeps moving ahead
            await until(lambda: power() and power()[0]["endsAt"] > first["endsAt"])
            engine.on_transition(group("web-01", "failed"))
            # the warning (old labels) is resolved in the same post; only the critical is left
            [now] = await until(
                lambda: [a["labels"]["severity"] for a in power()] == ["critical"] and power()
            )
            assert now["annotations"]["state"] == "failed"

        run_engine(engine, body)


def test_webhook_over_https_verifies_the_server(tmp_path: Path) -> None:
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_ctx)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    other_ca = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other_ca))
    with Recorder(tls=server_ctx) as hook:
        assert hook.url.startswith("https://")
        secret = secret_file(tmp_path, "s", SECRET)
        receivers = {
            "good": {
                "type": "webhook",
                "url": hook.url,
                "secret_file": secret,
                "ca_file": str(ca_file),
            },
            "bad": {
                "type": "webhook",
                "url": hook.url,
                "secret_file": secret,
                "ca_file": str(other_ca),
            },
        }
        engine = AlertEngine(config(tmp_path, receivers, retry_attempts=1))

        async def body(engine: AlertEngine) -> None:
            engine.on_transition(group("web-01", "failed"))
            await until(lambda: engine.stats()["receivers"]["good"]["sent"] == 1)
            await until(lambda: engine.stats()["receivers"]["bad"]["failed"] == 1)

        run_engine(engine, body)
        assert len(hook.requests) == 1
        assert "CERTIFICATE_VERIFY_FAILED" in engine.stats()["receivers"]["bad"]["last_error"]

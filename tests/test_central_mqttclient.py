"""The ingest's MQTT 5 client (central/mqttclient.py) against a real mosquitto: messages in
order and acknowledged, packets split across reads and many in one read, large payloads,
TLS, a refused password, the broker's own keep-alive, a broker gone silent, a session taken
over, a connection cut in the middle of a packet, and (from a fake broker, since mosquitto
sends none) malformed bytes."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from agent.localbroker import LocalBroker, free_port
from central import mqttclient
from central.config import MqttSettings
from central.mqttclient import MqttClient
from tests.central_peer import CentralThread, Proxy, SimAgent, wait_for, write_config
from tests.conftest import tls_files

PASSWORD = "c3ntral-Secret-77"


def settings(port: int, **kw: Any) -> MqttSettings:
    values: dict[str, Any] = {
        "url": f"mqtt://127.0.0.1:{port}",
        "topic_prefix": "t",
        "shared_group": "",
        "client_id": "central-test",
        "keepalive": 30,
        "username": "",
        "password": "",
    }
    return MqttSettings(**(values | kw))


class Subscriber:
    """An MqttClient in an event loop of its own (a thread), subscribed to ``t/#`` at QoS 1 on
    every connect, collecting (topic, payload, retained) in arrival order."""

    def __init__(self, s: MqttSettings, on_message: Callable | None = None) -> None:
        self.got: list[tuple[str, bytes, bool]] = []
        self.connects = 0
        self.disconnects: list[str] = []
        self.suback: list[tuple[int, ...]] = []
        self.lock = threading.Lock()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self._extra = on_message
        self.client: MqttClient = self.call(
            lambda: MqttClient(s, self._message, self._connect, self.disconnects.append)
        )
        self.call(self.client.start)

    def call(self, fn: Callable[[], Any]) -> Any:
        async def run() -> Any:
            return fn()

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(10)

    def _connect(self) -> None:
        self.connects += 1
        self.client.subscribe([("t/#", 1)], self.suback.append)

    def _message(self, topic: str, payload: bytes, retained: bool) -> None:
        if self._extra is not None:
            self._extra(topic, payload, retained)
        with self.lock:
            self.got.append((topic, payload, retained))

    def messages(self) -> list[tuple[str, bytes, bool]]:
        with self.lock:
            return list(self.got)

    def wait(self, n: int, timeout: float = 30) -> list[tuple[str, bytes, bool]]:
        return wait_for(lambda: len(self.messages()) >= n and self.messages(), timeout, f"{n}")

    def stop(self) -> None:
        self.call(self.client.stop)
        time.sleep(0.1)  # the DISCONNECT written, the task ended
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


def publish(
    port: int, messages: dict[str, bytes], retain: bool = False, password: str = ""
) -> None:
    pub = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    if password:
        pub.username_pw_set("central", password)
    pub.connect("127.0.0.1", port)
    pub.loop_start()
    try:
        infos = [pub.publish(t, p, qos=1, retain=retain) for t, p in messages.items()]
        for info in infos:
            info.wait_for_publish(20)
    finally:
        pub.disconnect()
        pub.loop_stop()


def payloads(n: int, size: int, prefix: str = "t") -> dict[str, bytes]:
    return {f"{prefix}/{i:04d}": json.dumps({"i": i, "pad": "x" * size}).encode() for i in range(n)}


def broker_log(b: LocalBroker) -> str:
    return (b.dir / "mosquitto.log").read_text(errors="replace")


@pytest.fixture
def verbose_broker():
    """mosquitto logging every packet it receives (``log_type all``)."""
    with LocalBroker(listener="allow_anonymous true\nlog_type all") as b:
        yield b


def test_live_messages_arrive_in_order_and_each_is_acknowledged(verbose_broker):
    sub = Subscriber(settings(verbose_broker.port))
    try:
        wait_for(lambda: sub.suback, what="SUBACK")
        assert sub.suback == [(1,)]  # granted QoS 1
        sent = payloads(500, 100)
        publish(verbose_broker.port, sent)
        got = sub.wait(500)
    finally:
        sub.stop()
    assert [(t, p) for t, p, _ in got] == list(sent.items())
    assert not any(r for _, _, r in got)
    # the broker saw a PUBACK for every one (it logs each packet it receives)
    assert broker_log(verbose_broker).count("Received PUBACK from central-test") == 500


def test_retained_messages_come_flagged_and_large_payloads_whole(broker):
    big = {f"t/big{i}": json.dumps({"i": i, "pad": "y" * 300_000}).encode() for i in range(3)}
    sent = payloads(300, 30) | big
    publish(broker.port, sent, retain=True)
    sub = Subscriber(settings(broker.port))
    try:
        got = sub.wait(len(sent))
    finally:
        sub.stop()
    assert {t: p for t, p, _ in got} == sent
    assert all(r for _, _, r in got)


def test_packets_dribbled_one_byte_at_a_time(broker):
    sent = payloads(20, 30)
    publish(broker.port, sent, retain=True)
    proxy = Proxy(broker.port, dribble=True)
    sub = Subscriber(settings(proxy.port))
    try:
        got = sub.wait(20)
    finally:
        sub.stop()
        proxy.close()
    assert {t: p for t, p, _ in got} == sent


def test_a_connection_cut_in_the_middle_of_a_packet_reconnects_without_garbage(broker):
    sent = payloads(50, 200)
    publish(broker.port, sent, retain=True)
    # CONNACK and SUBACK are a few dozen bytes; 3 000 bytes end inside a retained PUBLISH
    proxy = Proxy(broker.port, cut_after=3000)
    sub = Subscriber(settings(proxy.port))
    try:
        wait_for(lambda: sub.connects >= 2 and len(set(sub.messages())) >= 50, 30, "reconnect")
    finally:
        sub.stop()
        proxy.close()
    assert sub.disconnects == ["the broker closed the connection"]
    assert {(t, p) for t, p, _ in sub.messages()} == set(sent.items())  # nothing made up


def test_tls_with_a_password_and_the_password_never_logged(tmp_path, caplog):
    caplog.set_level(logging.DEBUG, logger="hotspare.central")
    ca_file, chain, key = tls_files(tmp_path)
    passwd = tmp_path / "passwd"
    subprocess.run(["mosquitto_passwd", "-c", "-b", str(passwd), "central", PASSWORD], check=True)
    tls_port = free_port()
    listener = (
        f"allow_anonymous false\npassword_file {passwd}\nlistener {tls_port} 127.0.0.1\n"
        f"certfile {chain}\nkeyfile {key}\ncafile {ca_file}\n"
    )
    with LocalBroker(listener=listener) as broker:
        sent = payloads(200, 30) | {"t/big": b"z" * 200_000}
        publish(broker.port, sent, retain=True, password=PASSWORD)
        s = settings(
            tls_port,
            url=f"mqtts://localhost:{tls_port}",
            ca_file=str(ca_file),
            username="central",
            password=PASSWORD,
        )
        sub = Subscriber(s)
        try:
            got = sub.wait(len(sent))
            assert sub.call(lambda: sub.client._link.transport.get_extra_info("sslcontext"))
        finally:
            sub.stop()
        assert {t: p for t, p, _ in got} == sent
        # and a wrong one: refused, said why, tried again later; never the password itself
        wrong = Subscriber(
            settings(
                tls_port,
                url=s.url,
                ca_file=s.ca_file,
                username="central",
                password="n0t-it-either",
            )
        )
        try:
            wait_for(lambda: "not authorized" in caplog.text, 15, "the refusal")
            time.sleep(3.5)  # tried again twice meanwhile
            assert wrong.connects == 0
        finally:
            wrong.stop()
    # mosquitto answers a wrong password with "not authorized"; said once at WARNING
    refusals = [r for r in caplog.records if "refused: not authorized (0x87)" in r.getMessage()]
    assert len(refusals) >= 2 and [r.levelname for r in refusals][:2] == ["WARNING", "DEBUG"]
    assert PASSWORD not in caplog.text and "n0t-it-either" not in caplog.text


def test_a_broker_certificate_for_another_name_is_refused(tmp_path, caplog):
    import trustme

    caplog.set_level(logging.WARNING, logger="hotspare.central")
    ca = trustme.CA()
    cert = ca.issue_cert("broker.example.org")
    ca_file, chain, key = tmp_path / "ca.pem", tmp_path / "server.pem", tmp_path / "server.key"
    ca.cert_pem.write_to_path(ca_file)
    cert.private_key_pem.write_to_path(key)
    chain.write_bytes(b"".join(blob.bytes() for blob in cert.cert_chain_pems))
    tls_port = free_port()
    listener = (
        f"allow_anonymous true\nlistener {tls_port} 127.0.0.1\ncertfile {chain}\nkeyfile {key}\n"
    )
    with LocalBroker(listener=listener):
        url = f"mqtts://localhost:{tls_port}"
        sub = Subscriber(settings(tls_port, url=url, ca_file=str(ca_file)))
        try:
            wait_for(lambda: "Hostname mismatch" in caplog.text, 15, "the refusal")
            assert sub.connects == 0
        finally:
            sub.stop()
    assert "CERTIFICATE_VERIFY_FAILED" in caplog.text


def test_the_brokers_server_keep_alive_wins_and_is_kept():
    # max_keepalive: mosquitto answers a longer keep-alive with its own in the CONNACK (this
    # mosquitto takes 10 s at least); with the client's 60 s, a PINGREQ would come after 60 s
    with LocalBroker(listener="allow_anonymous true\nlog_type all\nmax_keepalive 10") as b:
        sub = Subscriber(settings(b.port, keepalive=60))
        try:
            wait_for(lambda: sub.connects, what="connected")
            assert sub.call(lambda: sub.client.server.get("server_keep_alive")) == 10
            wait_for(lambda: "PINGREQ from central-test" in broker_log(b), 20, "a PINGREQ")
            assert sub.connects == 1 and sub.disconnects == []
        finally:
            sub.stop()


def test_a_broker_gone_silent_is_noticed_by_the_keep_alive_and_reconnected(broker, monkeypatch):
    monkeypatch.setattr(mqttclient, "CONNECT_TIMEOUT", 2.0)
    sub = Subscriber(settings(broker.port, keepalive=1))
    try:
        wait_for(lambda: sub.connects, what="connected")
        assert broker.proc is not None
        os.kill(broker.proc.pid, signal.SIGSTOP)
        try:
            wait_for(lambda: sub.disconnects, 15, "the silence noticed")
        finally:
            os.kill(broker.proc.pid, signal.SIGCONT)
        assert sub.disconnects[0] == "no answer from the broker for 1 s (keep-alive)"
        wait_for(lambda: sub.connects >= 2, 30, "reconnected")
        publish(broker.port, {"t/after": b"1"})
        wait_for(lambda: ("t/after", b"1", False) in sub.messages(), what="subscribed again")
    finally:
        sub.stop()


def test_a_handler_that_raises_is_logged_and_the_rest_still_arrive(broker, caplog):
    caplog.set_level(logging.ERROR, logger="hotspare.central")

    def fussy(topic: str, payload: bytes, retained: bool) -> None:
        if topic == "t/0003":
            raise RuntimeError("not this one")

    sub = Subscriber(settings(broker.port), on_message=fussy)
    try:
        wait_for(lambda: sub.suback, what="subscribed")
        publish(broker.port, payloads(10, 5))
        got = sub.wait(9)
    finally:
        sub.stop()
    assert len(got) == 9 and "t/0003" not in {t for t, _, _ in got}
    assert "handling a message on t/0003 failed" in caplog.text
    assert "not this one" in caplog.text


def test_publish_at_qos_1_reaches_a_subscriber_and_is_refused_while_disconnected(broker):
    got: list[tuple[str, bytes, int]] = []
    listener = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    listener.on_message = lambda c, u, m: got.append((m.topic, m.payload, m.qos))
    subscribed = threading.Event()
    listener.on_subscribe = lambda *a: subscribed.set()
    listener.connect("127.0.0.1", broker.port)
    listener.loop_start()
    listener.subscribe("cmd/#", qos=1)
    assert subscribed.wait(10)
    sub = Subscriber(settings(broker.port))
    try:
        wait_for(lambda: sub.connects, what="connected")
        assert sub.call(lambda: sub.client.publish("cmd/x", b"do it"))
        wait_for(lambda: got, what="the command")
        assert got == [("cmd/x", b"do it", 1)]
        wait_for(lambda: sub.call(lambda: not sub.client._pending), what="its PUBACK")
    finally:
        sub.stop()
        listener.disconnect()
        listener.loop_stop()
    never = MqttClient(settings(broker.port), lambda *a: None)
    assert never.publish("cmd/y", b"no") is False  # not connected: nothing queued


def test_a_message_larger_than_the_broker_takes_is_not_sent_and_said(caplog):
    caplog.set_level(logging.WARNING, logger="hotspare.central")
    with LocalBroker(listener="allow_anonymous true\nmax_packet_size 1000") as b:
        sub = Subscriber(settings(b.port))
        try:
            wait_for(lambda: sub.suback, what="subscribed")
            assert sub.call(lambda: sub.client.server.get("maximum_packet_size")) == 1000
            assert sub.call(lambda: sub.client.publish("t/small", b"s" * 100))
            assert not sub.call(lambda: sub.client.publish("t/large", b"l" * 2000))
            assert not sub.call(lambda: sub.client.publish("t/+", b"wildcard"))
            wait_for(lambda: ("t/small", b"s" * 100, False) in sub.messages(), what="the small")
            assert sub.connects == 1 and sub.disconnects == []
        finally:
            sub.stop()
    assert (
        "not sent: a message of 2000 bytes on t/large is larger than the broker takes (1000)"
        in caplog.text
    )


class FakeBroker:
    """A TCP server that answers CONNECT with a CONNACK and the SUBSCRIBE that follows with
    ``then``: what mosquitto never sends, to see the client refuse it."""

    def __init__(self, then: bytes) -> None:
        self.then = then
        self.connections = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            with conn, contextlib.suppress(OSError):  # the client may go at any point
                conn.recv(1024)  # the CONNECT
                conn.sendall(b"\x20\x03\x00\x00\x00")
                conn.recv(1024)  # the SUBSCRIBE
                conn.sendall(self.then)
                while conn.recv(1024):
                    pass

    def close(self) -> None:
        self.listener.close()


@pytest.mark.parametrize(
    "then, why",
    [
        (b"\x34\x06\x00\x01t\x00\x01\x00", "a PUBLISH at QoS 2"),
        (b"\x30\xff\xff\xff\xff\xff", "longer than four bytes"),
        (b"\x10\x00", "unexpected packet type 1"),
        (b"\x30\x05\x00\x02\xff\xfe\x00", "not UTF-8"),
        (b"\x90\x04\x00\x07\x00\x00", "unsent"),
    ],
)
def test_malformed_bytes_from_the_broker_close_the_connection_and_say_why(then, why):
    fake = FakeBroker(then)
    sub = Subscriber(settings(fake.port))
    try:
        wait_for(lambda: sub.disconnects, what="the connection dropped")
        assert sub.messages() == []
        wait_for(lambda: fake.connections >= 2, 15, "a new connection")
    finally:
        sub.stop()
        fake.close()
    assert sub.disconnects[0].startswith("the broker sent something malformed: ")
    assert why in sub.disconnects[0]


def test_a_disconnect_from_the_broker_is_said_with_its_reason_and_reconnected():
    # mosquitto 2.0 closes the connection without a DISCONNECT when it ends one (a session
    # taken over, its shutdown: see the broker restart test); a broker may send one (3.14)
    reason_string = b"\x1f\x00\x0bmaintenance"
    fake = FakeBroker(
        b"\xe0"
        + bytes((2 + len(reason_string),))
        + b"\x8b"
        + bytes((len(reason_string),))
        + reason_string
    )
    sub = Subscriber(settings(fake.port))
    try:
        wait_for(lambda: sub.disconnects, what="the DISCONNECT")
        wait_for(lambda: fake.connections >= 2, 15, "a new connection")
    finally:
        sub.stop()
        fake.close()
    assert (
        sub.disconnects[0] == "the broker disconnected: server shutting down (0x8b), 'maintenance'"
    )


def test_central_ingests_over_tls(tmp_path):
    ca_file, chain, key = tls_files(tmp_path)
    tls_port = free_port()
    listener = (
        f"allow_anonymous true\nlistener {tls_port} 127.0.0.1\n"
        f"certfile {chain}\nkeyfile {key}\ncafile {ca_file}\n"
    )
    with LocalBroker(listener=listener) as broker:
        agent = SimAgent(broker.port, "dc1", "tls-01", {"power": "redundant"})
        cfg = write_config(tmp_path / "c.toml", tls_port, str(tmp_path / "h.db"))
        cfg.write_text(
            cfg.read_text()
            .replace(f"mqtt://127.0.0.1:{tls_port}", f"mqtts://localhost:{tls_port}")
            .replace("keepalive = 5\n", f'keepalive = 5\nca_file = "{ca_file}"\n')
        )
        seen = threading.Event()
        changes = []

        def on_transition(record):
            changes.append(record)
            if record.scope == "group" and record.to_state == "degraded":
                seen.set()

        c = CentralThread(cfg, subscribers=[on_transition]).start()
        try:
            agent.publish({"power": "degraded"})
            assert seen.wait(20), changes
            assert c.central.ingest.rejected == {}
        finally:
            c.stop()
            agent.client.disconnect()
            agent.client.loop_stop()

"""The ingest's buffered MQTT socket (central/mqttsocket.py) against a real mosquitto: packets
split across reads, many packets in one read, packets larger than the buffer, a connection cut
in the middle of a packet, and TLS."""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import ssl
import threading
import time

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from agent.localbroker import LocalBroker, free_port
from central import mqttsocket
from central.mqttsocket import BufferedClient, BufferedSocket
from tests.central_peer import CentralThread, SimAgent, write_config
from tests.conftest import tls_files


class Proxy:
    """A TCP relay between the client and the broker that can hand the broker's bytes to the
    client one byte per segment (``dribble``) or cut the connection after ``cut_after`` bytes
    from the broker (once; later connections are relayed whole)."""

    def __init__(self, broker_port: int, dribble: bool = False, cut_after: int = 0) -> None:
        self.broker_port = broker_port
        self.dribble = dribble
        self.cut_after = cut_after
        self.connections = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self._stop = False
        self._socks: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while not self._stop:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            upstream = socket.create_connection(("127.0.0.1", self.broker_port))
            for s in (client, upstream):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._socks += [client, upstream]
            cut = self.cut_after if self.connections == 1 else 0
            threading.Thread(target=self._pump, args=(client, upstream, 0), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, cut), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, cut: int) -> None:
        sent = 0
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if cut and sent + len(data) >= cut:
                    dst.sendall(data[: cut - sent])
                    break
                if self.dribble and src.getpeername()[1] == self.broker_port:
                    for i in range(len(data)):
                        dst.sendall(data[i : i + 1])
                        time.sleep(0.0002)
                else:
                    dst.sendall(data)
                sent += len(data)
        except OSError:
            pass
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def close(self) -> None:
        self._stop = True
        self.listener.close()
        for s in self._socks:
            with contextlib.suppress(OSError):
                s.close()


class Counting:
    """Counts the reads that reach the real socket under a BufferedSocket."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.reads = 0

    def recv(self, n: int) -> bytes:
        self.reads += 1
        return self.sock.recv(n)

    def __getattr__(self, name):
        return getattr(self.sock, name)


def publish_retained(port: int, messages: dict[str, bytes]) -> None:
    pub = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    pub.connect("127.0.0.1", port)
    pub.loop_start()
    try:
        for topic, payload in messages.items():
            pub.publish(topic, payload, qos=1, retain=True).wait_for_publish(10)
    finally:
        pub.disconnect()
        pub.loop_stop()


class Subscriber:
    """A BufferedClient subscribed to ``t/#``, collecting (topic, payload) in arrival order."""

    def __init__(self, port: int, read_size: int = mqttsocket.READ_SIZE, **tls) -> None:
        self.got: list[tuple[str, bytes]] = []
        self.changed = threading.Condition()
        self.connects = 0
        self.disconnects: list[str] = []
        self.client = BufferedClient(
            CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5, read_size=read_size
        )
        if tls:
            self.client.tls_set(**tls)
        self.client.reconnect_delay_set(min_delay=1, max_delay=1)
        self.client.on_connect = self._connect
        self.client.on_disconnect = self._disconnect
        self.client.on_message = self._message
        self.client.connect("localhost" if tls else "127.0.0.1", port, keepalive=30)
        self.client.loop_start()

    def _connect(self, client, userdata, flags, rc, props=None) -> None:
        self.connects += 1
        client.subscribe("t/#", qos=1)

    def _disconnect(self, client, userdata, flags, rc, props=None) -> None:
        self.disconnects.append(str(rc))

    def _message(self, client, userdata, msg) -> None:
        with self.changed:
            self.got.append((msg.topic, msg.payload))
            self.changed.notify_all()

    def wait(self, predicate, timeout: float = 30) -> bool:
        with self.changed:
            return self.changed.wait_for(lambda: predicate(self.got), timeout)

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def payloads(n: int, size: int) -> dict[str, bytes]:
    return {f"t/{i:04d}": json.dumps({"i": i, "pad": "x" * size}).encode() for i in range(n)}


@pytest.fixture
def broker():
    with LocalBroker() as b:
        yield b


def test_recv_serves_short_reads_from_one_read_and_keeps_the_rest():
    a, b = socket.socketpair()
    try:
        inner = Counting(a)
        s = BufferedSocket(inner, size=16)  # type: ignore[arg-type]
        b.sendall(b"0123456789abcdefXYZ")
        assert s.recv(1) == b"0"
        assert s.buffered() == 15 and s.pending() == 15
        assert s.recv(4) == b"1234"
        assert s.recv(100) == b"56789abcdef"  # what is buffered, not more: as a socket would
        assert inner.reads == 1
        assert s.recv(100) == b"XYZ"  # a read of the buffer's size or more goes straight
        a.setblocking(False)
        with pytest.raises(BlockingIOError):
            s.recv(1)
        b.close()
        assert s.recv(1) == b""  # the peer closed
    finally:
        a.close()
        b.close()


def test_many_packets_in_one_read_arrive_whole_and_in_order(broker):
    sent = payloads(200, 40)
    publish_retained(broker.port, sent)
    sub = Subscriber(broker.port)
    try:
        assert sub.wait(lambda got: len(got) >= 200)
        sock = sub.client.socket()
        assert isinstance(sock, BufferedSocket)
    finally:
        sub.stop()
    assert sorted(sub.got) == sorted(sent.items())
    assert len(sub.got) == 200


def test_fewer_reads_than_packets(broker):
    """The point of the buffer: one read of the socket serves several packets."""
    sent = payloads(300, 20)
    publish_retained(broker.port, sent)
    counted: list[Counting] = []
    real_create = mqttsocket.BufferedSocket.__init__

    def counting_init(self, sock, size=mqttsocket.READ_SIZE):
        counted.append(Counting(sock))
        real_create(self, counted[-1], size)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(mqttsocket.BufferedSocket, "__init__", counting_init)
        sub = Subscriber(broker.port)
        try:
            assert sub.wait(lambda got: len(got) >= 300)
        finally:
            sub.stop()
    assert dict(sub.got) == sent
    assert counted and counted[0].reads < 300, counted[0].reads


def test_packets_larger_than_the_buffer_and_split_across_reads(broker):
    big = {f"t/big{i}": json.dumps({"i": i, "pad": "x" * 100_000}).encode() for i in range(5)}
    sent = payloads(30, 10) | big
    publish_retained(broker.port, sent)
    sub = Subscriber(broker.port, read_size=64)  # every packet is split across reads
    try:
        assert sub.wait(lambda got: len(got) >= len(sent))
    finally:
        sub.stop()
    assert dict(sub.got) == sent
    assert len(sub.got) == len(sent)


def test_packets_dribbled_one_byte_at_a_time(broker):
    sent = payloads(20, 30)
    publish_retained(broker.port, sent)
    proxy = Proxy(broker.port, dribble=True)
    sub = Subscriber(proxy.port)
    try:
        assert sub.wait(lambda got: len(got) >= 20)
    finally:
        sub.stop()
        proxy.close()
    assert dict(sub.got) == sent


def test_a_connection_cut_in_the_middle_of_a_packet_reconnects_without_garbage(broker):
    sent = payloads(50, 200)
    publish_retained(broker.port, sent)
    # CONNACK and SUBACK are a few dozen bytes; 3 000 bytes end inside a retained PUBLISH
    proxy = Proxy(broker.port, cut_after=3000)
    sub = Subscriber(proxy.port)
    try:
        assert sub.wait(lambda got: sub.connects >= 2 and len(set(got)) >= 50)
    finally:
        sub.stop()
        proxy.close()
    assert sub.disconnects, "the cut was not noticed"
    assert set(sub.got) == set(sent.items())  # everything intact, nothing made up


def test_tls_many_and_large_packets(tmp_path):
    ca_file, chain, key = tls_files(tmp_path)
    tls_port = free_port()
    listener = (
        f"allow_anonymous true\nlistener {tls_port} 127.0.0.1\n"
        f"certfile {chain}\nkeyfile {key}\ncafile {ca_file}\n"
    )
    with LocalBroker(listener=listener) as broker:
        big = {f"t/big{i}": json.dumps({"i": i, "pad": "y" * 70_000}).encode() for i in range(3)}
        sent = payloads(200, 30) | big
        publish_retained(broker.port, sent)
        sub = Subscriber(tls_port, ca_certs=str(ca_file), cert_reqs=ssl.CERT_REQUIRED)
        try:
            assert sub.wait(lambda got: len(got) >= len(sent))
            sock = sub.client.socket()
            assert isinstance(sock, BufferedSocket)
            assert isinstance(sock._sock, ssl.SSLSocket)
        finally:
            sub.stop()
        assert dict(sub.got) == sent


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
            assert isinstance(c.central.source.client.socket(), BufferedSocket)
            agent.publish({"power": "degraded"})
            assert seen.wait(20), changes
            assert c.central.ingest.rejected == {}
        finally:
            c.stop()
            agent.client.disconnect()
            agent.client.loop_stop()


def test_an_unexpected_paho_falls_back_to_unbuffered_reads_and_says_so(broker, caplog):
    sent = payloads(10, 10)
    publish_retained(broker.port, sent)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(mqttsocket, "UNSUPPORTED", "its Client._loop does not ask for pending bytes")
        with caplog.at_level(logging.WARNING, logger="hotspare.central.ingest"):
            sub = Subscriber(broker.port)
        try:
            assert sub.wait(lambda got: len(got) >= 10)
            assert not isinstance(sub.client.socket(), BufferedSocket)
        finally:
            sub.stop()
    assert dict(sub.got) == sent
    assert "reading it unbuffered" in caplog.text

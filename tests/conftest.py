"""Shared fixtures: a real mosquitto, an MQTT subscriber, and agents run as real processes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from agent.demo import write_atomically
from agent.localbroker import LocalBroker, stop_process
from agent.promotion import signing

FIXTURES = Path(__file__).parent / "fixtures"
ROOT = Path(__file__).parent.parent

CLEAN = FIXTURES / "mdstat" / "pymdstat__mdstat.01.txt"  # raid1 md0/md1 style, all clean
DEGRADED = FIXTURES / "mdstat" / "check_raid__mdstat-failed.txt"  # raid5 md0 [3/2] [U_U], sdc1(F)


@pytest.fixture
def broker() -> Iterator[LocalBroker]:
    with LocalBroker() as b:
        yield b


@dataclass
class Message:
    topic: str
    payload: bytes
    retain: bool
    at: float

    def json(self):
        return json.loads(self.payload)


class Subscriber:
    """Collects every message on ``topics``; ``wait`` for one that matches."""

    def __init__(
        self, url_port: int, topics: list[str], client_id: str = "", persistent: bool = False
    ):
        self.messages: list[Message] = []
        self.cond = threading.Condition()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5
        )
        self.client.on_message = self._on_message
        self.subscribed = threading.Event()

        def on_connect(client, userdata, flags, rc, props=None):
            if not flags.session_present:
                client.subscribe([(t, 1) for t in topics])
            else:
                self.subscribed.set()

        self.client.on_connect = on_connect
        self.client.on_subscribe = lambda *a: self.subscribed.set()
        props = None
        if persistent:
            from paho.mqtt.packettypes import PacketTypes
            from paho.mqtt.properties import Properties

            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = 3600
        self.client.connect("127.0.0.1", url_port, clean_start=not persistent, properties=props)
        self.client.loop_start()
        assert self.subscribed.wait(10), "subscription not acknowledged"

    def _on_message(self, client, userdata, msg):
        with self.cond:
            self.messages.append(
                Message(msg.topic, msg.payload, bool(msg.retain), time.monotonic())
            )
            self.cond.notify_all()

    def wait(self, pred: Callable[[Message], bool], timeout: float = 15, what: str = "") -> Message:
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for m in self.messages:
                    if pred(m):
                        return m
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = "\n".join(
                        f"  {m.topic} {m.payload[:200]!r}" for m in self.messages[-20:]
                    )
                    raise AssertionError(
                        f"no message {what} within {timeout} s; last seen:\n{seen}"
                    )
                self.cond.wait(left)

    def json_on(self, suffix: str) -> list[dict]:
        with self.cond:
            return [m.json() for m in self.messages if m.topic.endswith(suffix) and m.payload]

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


# headless Chromium: Debian's package, driven by Playwright (no browser download)
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


def tls_files(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A new CA and a server certificate for localhost and 127.0.0.1, written to tmp_path:
    (CA file, certificate chain, private key), as mosquitto's cafile/certfile/keyfile."""
    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1")
    ca_file, chain, key = tmp_path / "ca.pem", tmp_path / "server.pem", tmp_path / "server.key"
    ca.cert_pem.write_to_path(ca_file)
    cert.private_key_pem.write_to_path(key)
    chain.write_bytes(b"".join(blob.bytes() for blob in cert.cert_chain_pems))
    return ca_file, chain, key


@pytest.fixture
def keys(tmp_path):
    """Signing keys in tmp_path: ops.key (its public key in trusted/ as ops.pub) and
    mallory.key (trusted by no one)."""
    trusted = tmp_path / "trusted"
    trusted.mkdir(mode=0o755)
    pub = signing.generate(tmp_path / "ops.key")
    (trusted / "ops.pub").write_bytes(pub.read_bytes())
    signing.generate(tmp_path / "mallory.key")
    return tmp_path


@pytest.fixture
def subscribe(broker) -> Iterator[Callable[..., Subscriber]]:
    subs: list[Subscriber] = []

    def make(topics=("hotspare/v1/#",), port=None, **kw) -> Subscriber:
        s = Subscriber(port or broker.port, list(topics), **kw)
        subs.append(s)
        return s

    yield make
    for s in subs:
        s.close()


def hotspare(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run this checkout's ``hotspare`` command once, its output captured as text."""
    return subprocess.run(
        [sys.executable, "-m", "agent.cli", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=timeout,
    )


def write_mdstat(path: Path, source: Path | str) -> None:
    write_atomically(path, source.read_text() if isinstance(source, Path) else source)


class AgentProcess:
    def __init__(self, workdir: Path, config_text: str):
        self.workdir = workdir
        self.config = workdir / "agent.toml"
        self.config.write_text(config_text)
        self.log = workdir / "agent.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> AgentProcess:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                self.argv(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                env=env,
                cwd=ROOT,
            )
        return self

    def argv(self) -> list[str]:
        return [sys.executable, "-m", "agent.cli", "agent", "--config", str(self.config)]

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def wait(self, timeout: float = 15) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def stop(self) -> None:
        stop_process(self.proc, 10)

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def agent_config(
    broker_port: int, mdstat: Path, state_dir: Path, extra: str = "", agent_extra: str = ""
) -> str:
    return (
        f'[agent]\nsite = "dc1"\nhost = "web-01"\ninterval = 0.5\njitter = 0\nstate_dir = "{state_dir}"\n'
        f"{agent_extra}"
        f'[mqtt]\nurl = "mqtt://127.0.0.1:{broker_port}"\nkeepalive = 5\n'
        f'[[collectors.mdstat]]\npath = "{mdstat}"\n{extra}'
    )


@pytest.fixture
def run_agent(tmp_path) -> Iterator[Callable[..., AgentProcess]]:
    agents: list[AgentProcess] = []

    def make(config_text: str, name: str = "a") -> AgentProcess:
        d = tmp_path / name
        d.mkdir(exist_ok=True)
        a = AgentProcess(d, config_text)
        agents.append(a)
        return a.start()

    yield make
    for a in agents:
        a.stop()


@pytest.fixture(scope="session")
def postgres():
    """A private PostgreSQL cluster for the session (tests/pg_peer.py); ``new_database()``."""
    from tests.pg_peer import LocalPostgres

    pg = LocalPostgres()
    try:
        yield pg.start()
    finally:
        pg.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path) -> str:
    """A fresh, empty history database of each backend: a SQLite file, a PostgreSQL database."""
    if request.param == "sqlite":
        return str(tmp_path / "central.db")
    return request.getfixturevalue("postgres").new_database()


@pytest.fixture(scope="module")
def snmpd6():
    """net-snmp's snmpd on ``[::1]`` (v2c and v3), one per test module that asks for it."""
    from tests.snmp_peer import Snmpd

    d = Snmpd(host="::1").start()
    yield d
    d.stop()

"""Helpers for the central service's tests: simulated agents publishing real contract
payloads (built by agent/wire.py) and the central service run in a thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode

from agent import wire
from agent.evaluate import Transition as AgentTransition
from agent.model import ComponentHealth, GroupState, GroupStatus, HostHealth, Role
from central import config as central_config
from central.service import Central
from collectors.base import GroupKind, Kind, State

PREFIX = "hotspare/v1"
NOW = time.time

# (healthy, state of psu/2) of a 1+1 PSU pair for each group state
_PAIR = {
    "redundant": (2, State.OK),
    "degraded": (1, State.FAILED),
    "failed": (0, State.FAILED),
    "unknown": (1, State.UNKNOWN),
}


def psu_pair(state: str, gid: str = "power") -> tuple[GroupStatus, list[ComponentHealth]]:
    healthy, second = _PAIR[state]
    now = NOW()
    first = State.OK if state != "failed" else State.FAILED
    comps = [
        ComponentHealth(f"{gid}/psu1", Kind.PSU, first, now - 100, now, "", 231.0, "V", "ipmi"),
        ComponentHealth(f"{gid}/psu2", Kind.PSU, second, now - 100, now, "", None, None, "ipmi"),
    ]
    group = GroupStatus(
        id=gid,
        kind=GroupKind.POWER,
        state=GroupState(state),
        required=1,
        total=2,
        healthy=healthy,
        unknown=1 if state == "unknown" else 0,
        members=(f"{gid}/psu1", f"{gid}/psu2"),
        reason=f"{healthy} of 2 serving, 1 required",
    )
    return group, comps


class SimAgent:
    """An MQTT client that behaves like an agent on the wire: birth and Last Will, retained
    status/health/groups/components, events; payloads from agent.wire."""

    def __init__(self, port: int, site: str, host: str, groups: dict[str, str]) -> None:
        self.port, self.site, self.host = port, site, host
        self.base = wire.base_topic(PREFIX, site, host)
        self.seq = itertools.count(1000)
        self.groups = dict(groups)
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"sim-{site}-{host}", protocol=mqtt.MQTTv5
        )
        will = wire.encode(wire.status("offline", next(self.seq), NOW()))
        self.client.will_set(f"{self.base}/status", will, qos=1, retain=True)
        connected = threading.Event()
        self.client.on_connect = lambda *a: connected.set()
        self.client.connect("127.0.0.1", port, keepalive=5)
        self.client.loop_start()
        assert connected.wait(10), "simulated agent could not connect"
        self._pub("status", wire.status("online", next(self.seq), NOW()))
        self.publish()

    def _pub(self, suffix: str, payload: dict[str, Any] | bytes, retain: bool = True) -> None:
        data = payload if isinstance(payload, bytes) else wire.encode(payload)
        self.client.publish(f"{self.base}/{suffix}", data, qos=1, retain=retain).wait_for_publish(
            10
        )

    def health(self) -> HostHealth:
        groups, comps = [], []
        for gid, state in sorted(self.groups.items()):
            g, c = psu_pair(state, gid)
            groups.append(g)
            comps += c
        worst = max((g.state for g in groups), key=lambda s: s.severity, default=None)
        return HostHealth(
            site=self.site,
            host=self.host,
            state=worst or GroupState.REDUNDANT,
            role=Role.NONE,
            generated_at=NOW(),
            groups=tuple(groups),
            components=tuple(sorted(comps, key=lambda c: c.id)),
        )

    def publish(self, changes: dict[str, str] | None = None) -> None:
        """Set group states and publish as the agent does: groups, components, events, health."""
        old = dict(self.groups)
        self.groups.update(changes or {})
        h = self.health()
        for g in h.groups:
            self._pub(
                f"groups/{wire.id_topic(g.id)}",
                wire.state_message(h, wire.group(g), next(self.seq), NOW()),
            )
        for c in h.components:
            self._pub(
                f"components/{wire.id_topic(c.id)}",
                wire.state_message(h, wire.component(c), next(self.seq), NOW()),
            )
        for gid, state in (changes or {}).items():
            if old.get(gid) != state:
                t = AgentTransition("group", gid, old.get(gid), state, "simulated")
                self._pub(
                    "events",
                    wire.transition_event(self.site, self.host, t, next(self.seq), NOW()),
                    retain=False,
                )
        self._pub("health", wire.health(h, next(self.seq), NOW()))

    def raw(self, suffix: str, payload: bytes, retain: bool = False) -> None:
        self._pub(suffix, payload, retain)

    def die(self) -> None:
        """Vanish without a goodbye: the broker publishes the Last Will."""
        rc = ReasonCode(PacketTypes.DISCONNECT, "Disconnect with will message")
        self.client.disconnect(reasoncode=rc)
        self.client.loop_stop()

    def stop(self) -> None:
        """A clean stop: offline with a fresh seq, then disconnect."""
        self._pub("status", wire.status("offline", next(self.seq), NOW()))
        self.client.disconnect()
        self.client.loop_stop()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def write_config(
    path: Path,
    broker_port: int,
    database: str,
    extra: str = "",
    mqtt_extra: str = "",
    token: str = "",
) -> Path:
    """A central config on a loopback port; with ``token``, a token file (mode 0600) beside
    it, so that the API takes changes with that token."""
    if token:
        token_file = path.with_suffix(".token")
        token_file.write_text(token + "\n")
        token_file.chmod(0o600)
        extra = f'token_file = "{token_file}"\n{extra}'
    path.write_text(
        f'[central]\nlisten = "127.0.0.1:0"\ndatabase = "{database}"\n{extra}'
        f'[mqtt]\nurl = "mqtt://127.0.0.1:{broker_port}"\nkeepalive = 5\n{mqtt_extra}'
    )
    return path


class CentralThread:
    """The central service in a thread of its own (its own event loop), for one test."""

    def __init__(self, config_path: Path, subscribers: list[Callable] | None = None) -> None:
        self.cfg = central_config.load(config_path)
        self.subscribers = subscribers or []
        self.central: Central | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.stop_event: asyncio.Event | None = None
        self.started = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._main, daemon=True)

    def _main(self) -> None:
        async def main() -> None:
            self.loop = asyncio.get_running_loop()
            self.stop_event = asyncio.Event()
            self.central = Central(self.cfg, self.subscribers)
            task = asyncio.create_task(self.central.run(self.stop_event))
            while self.central.port is None and not task.done():
                await asyncio.sleep(0.02)
            await self.central.source.subscribed.wait() if self.central.source else None
            self.started.set()
            await task

        try:
            asyncio.run(main())
        except BaseException as e:  # surfaced by start()
            self.error = e
            self.started.set()

    def start(self) -> CentralThread:
        self.thread.start()
        assert self.started.wait(20), "central service did not start"
        if self.error:
            raise self.error
        return self

    @property
    def url(self) -> str:
        assert self.central is not None and self.central.port
        return f"http://127.0.0.1:{self.central.port}"

    def call(self, fn: Callable[[], Any], timeout: float = 10) -> Any:
        """Run ``fn`` in the service's loop and return its result."""
        assert self.loop is not None
        fut = asyncio.run_coroutine_threadsafe(_wrap(fn), self.loop)
        return fut.result(timeout)

    def stop(self) -> None:
        if self.loop is not None and self.stop_event is not None and self.thread.is_alive():
            self.loop.call_soon_threadsafe(self.stop_event.set)
        self.thread.join(15)


async def _wrap(fn: Callable[[], Any]) -> Any:
    return fn()


def get(url: str, token: str = "") -> tuple[int, Any]:
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def send(url: str, method: str, body: Any = None, token: str = "") -> tuple[int, Any]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def wait_for(pred: Callable[[], Any], timeout: float = 15, what: str = "") -> Any:
    """Poll ``pred`` until it returns something truthy; fail with ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = pred()
        if last:
            return last
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}")


class Proxy:
    """A TCP relay between a client and the broker that can hand the broker's bytes to the
    client one byte per segment (``dribble``), cut the connection after ``cut_after`` bytes
    from the broker (once; later connections are relayed whole), or be down (``down()``:
    every connection cut, new ones closed at once, until ``up()``)."""

    def __init__(self, broker_port: int, dribble: bool = False, cut_after: int = 0) -> None:
        self.broker_port = broker_port
        self.dribble = dribble
        self.cut_after = cut_after
        self.connections = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self._socks: list[socket.socket] = []
        self._down = False
        threading.Thread(target=self._accept, daemon=True).start()

    def down(self) -> None:
        self._down = True
        self._cut_all()

    def up(self) -> None:
        self._down = False

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self._down:
                client.close()
                continue
            self.connections += 1
            upstream = socket.create_connection(("127.0.0.1", self.broker_port))
            for s in (client, upstream):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._socks += [client, upstream]
            cut = self.cut_after if self.connections == 1 else 0
            threading.Thread(target=self._pump, args=(client, upstream, 0, False)).start()
            threading.Thread(target=self._pump, args=(upstream, client, cut, True)).start()

    def _pump(self, src: socket.socket, dst: socket.socket, cut: int, down: bool) -> None:
        sent = 0
        try:
            while data := src.recv(65536):
                if cut and sent + len(data) >= cut:
                    dst.sendall(data[: cut - sent])
                    break
                if self.dribble and down:
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

    def _cut_all(self) -> None:
        for s in self._socks:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                s.close()
        self._socks = []

    def close(self) -> None:
        self.listener.close()
        self._cut_all()

"""The ingest's MQTT 5 client: one connection to the broker, read in the service's event loop.

Why not paho-mqtt here (the agent uses it): a subscriber's work per message is mostly the
client's, not the ingest's. paho reads every packet with three or more ``recv`` calls,
builds a ``Properties`` object and a message object for each, writes each PUBACK with a
``send`` of its own, and runs in a thread of its own that hands every message over to the
event loop. This client reads what the socket holds in one go (asyncio's transport),
cuts it into packets with ``mqtt5.Decoder``, hands each PUBLISH to ``on_message`` right
there, and acknowledges all of a read's QoS 1 messages with one write once they were
handled. bench/RESULTS.md ("central service") has the figures.

What it does: CONNECT with clean start and no session (the fleet state comes back from the
retained messages on every connect); user name and password; TLS with the settings'
context; SUBSCRIBE and UNSUBSCRIBE with a callback for the broker's answer; QoS 0 and 1
PUBLISH out (a command; one in flight when the connection drops is not sent again: the
command's sender sees no answer and says so); PINGREQ when nothing was sent for a keep-alive
period, and the connection counts as lost when nothing comes back for one more (the
broker's Server Keep Alive wins over ours, 3.2.2.3.14); reconnection with back-off from 1 to
30 s; DISCONNECT at ``stop()``. Every way a connection ends is logged once, with why.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import Callable
from typing import Any, Protocol

from . import mqtt5
from .mqtt5 import Ack, Packet, ProtocolError, Publish

log = logging.getLogger("hotspare.central.ingest")

CONNECT_TIMEOUT = 10.0  # TCP, TLS and the CONNACK
BACKOFF = (1.0, 30.0)  # first and longest wait before connecting again


class Settings(Protocol):
    url: str
    client_id: str
    keepalive: int
    username: str
    password: str

    @property
    def hostname(self) -> str: ...
    @property
    def port(self) -> int: ...
    @property
    def tls(self) -> bool: ...
    def ssl_context(self) -> ssl.SSLContext: ...


OnMessage = Callable[[str, bytes, bool], Any]
OnAck = Callable[[tuple[int, ...]], None]


class Refused(Exception):
    """The broker answered CONNECT with a failure."""


class _Link(asyncio.Protocol):
    """One TCP (or TLS) connection: frames what comes in, writes what goes out."""

    def __init__(self, client: MqttClient, loop: asyncio.AbstractEventLoop) -> None:
        self.client = client
        self.loop = loop
        self.decoder = mqtt5.Decoder()
        self.transport: asyncio.Transport | None = None
        self.connack: asyncio.Future[Ack | None] = loop.create_future()  # None: closed first
        self.closed: asyncio.Future[str] = loop.create_future()
        self.why = ""  # why this side closed it
        self.last_in = self.last_out = loop.time()
        self.ping_sent = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)
            self.last_out = self.loop.time()

    def close(self, why: str) -> None:
        if not self.why:
            self.why = why
        if self.transport is not None:
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        self.last_in = self.loop.time()
        self.ping_sent = 0.0
        try:
            packets = self.decoder.feed(data)
        except ProtocolError as e:
            self.close(f"the broker sent something malformed: {e}")
            return
        acks: list[bytes] = []
        on_message = self.client.on_message
        for p in packets:
            if type(p) is Publish:
                if not self.connack.done():
                    self.close("the broker sent a PUBLISH before its CONNACK")
                    return
                try:
                    on_message(p.topic, p.payload, p.retain)
                except Exception:
                    log.exception("handling a message on %s failed", p.topic[:200])
                if p.qos:
                    acks.append(mqtt5.puback(p.packet_id))
            else:
                try:
                    self.client.control(self, p)
                except ProtocolError as e:
                    self.close(f"the broker sent something malformed: {e}")
                    return
        if acks:
            self.write(b"".join(acks))

    def eof_received(self) -> bool:
        if not self.why:
            self.why = "the broker closed the connection"
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            why = self.why or (f"{type(exc).__name__}: {exc}" if exc else "connection closed")
            self.closed.set_result(why)
        if not self.connack.done():
            self.connack.set_result(None)


class MqttClient:
    """One broker connection kept up from ``start()`` to ``stop()`` (call both in the loop).

    ``on_message(topic, payload, retained)`` runs in the loop for every PUBLISH received, in
    order; ``on_connect()`` after each CONNACK that accepts (subscribe there: a clean start
    has none); ``on_disconnect(why)`` when an accepted connection ends. ``server`` holds the
    last CONNACK's properties (``shared_subscription_available``, ...).
    """

    def __init__(
        self,
        settings: Settings,
        on_message: OnMessage,
        on_connect: Callable[[], None] = lambda: None,
        on_disconnect: Callable[[str], None] = lambda why: None,
    ) -> None:
        self.settings = settings
        self.on_message = on_message
        self.on_connect = on_connect
        self.on_disconnect = on_disconnect
        self.connected = asyncio.Event()
        self.server: dict[str, object] = {}
        self.connects = 0  # connections the broker accepted
        self.since: float | None = None  # wall clock of the last connect or loss
        self.last_error: tuple[float, str] | None = None  # (when, why) of the last failure
        self._link: _Link | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._next_id = 0
        self._pending: dict[int, tuple[int, Callable[[Ack], None]]] = {}  # packet id: (type, ...)
        self._ssl = settings.ssl_context() if settings.tls else None  # file errors: at start

    # ---- the loop's side ------------------------------------------------------------------

    def start(self) -> None:
        self._closing = False
        self._task = asyncio.get_running_loop().create_task(self._run(), name="mqtt")

    def stop(self) -> None:
        """A DISCONNECT to the broker, the connection closed, no reconnecting."""
        self._closing = True
        link = self._link
        if link is not None:
            link.write(mqtt5.DISCONNECT_PACKET)
            link.close("stopped")
        if self._task is not None:
            self._task.cancel()

    @property
    def is_connected(self) -> bool:
        return self._link is not None  # set and cleared with ``connected``

    def status(self) -> dict[str, object]:
        """Connected or not since when, connections so far, the last failure and why."""
        error = self.last_error
        return {
            "connected": self.is_connected,
            "since": self.since,
            "connects": self.connects,
            "last_error": {"at": error[0], "why": error[1]} if error else None,
        }

    def subscribe(self, filters: list[tuple[str, int]], done: OnAck | None = None) -> bool:
        """SUBSCRIBE; ``done(reason codes)`` when the SUBACK comes. False if not connected."""
        return self._request(mqtt5.SUBACK, lambda pid: mqtt5.subscribe(pid, filters), done)

    def unsubscribe(self, filters: list[str], done: OnAck | None = None) -> bool:
        return self._request(mqtt5.UNSUBACK, lambda pid: mqtt5.unsubscribe(pid, filters), done)

    def publish(self, topic: str, payload: bytes, qos: int = 1) -> bool:
        """PUBLISH at QoS 1 (or 0); a refusal in the PUBACK is logged. False, and logged,
        if not connected (nothing is queued for later), if the topic cannot be sent (empty,
        wildcards) or the packet is larger than the broker's Maximum Packet Size (3.2.2.3.6)."""
        if qos and self.server.get("maximum_qos", 2) == 0:
            qos = 0  # the broker takes QoS 0 only (3.2.2.3.4)
        pid = self._packet_id() if qos else 0  # reserved in _pending only once written
        try:
            data = mqtt5.publish(topic, payload, qos, pid)
        except ValueError as e:
            log.warning("not sent: a message on %r: %s", topic[:200], e)
            return False
        limit = self.server.get("maximum_packet_size")
        if isinstance(limit, int) and len(data) > limit:
            log.warning(
                "not sent: a message of %d bytes on %s is larger than the broker takes (%d)",
                len(payload),
                topic,
                limit,
            )
            return False
        link = self._link
        if link is None:
            return False
        if qos:

            def acked(ack: Ack) -> None:
                if ack.codes and ack.codes[0] >= 0x80:
                    why = mqtt5.reason(ack.codes[0])
                    log.warning("the broker refused a message on %s: %s", topic, why)

            self._pending[pid] = (mqtt5.PUBACK, acked)
        link.write(data)
        return True

    def _request(self, answer: int, build: Callable[[int], bytes], done: OnAck | None) -> bool:
        """SUBSCRIBE or UNSUBSCRIBE: written with a packet identifier of its own, ``done`` called
        with the reason codes of the answer."""
        link = self._link
        if link is None:
            return False
        pid = self._packet_id()
        data = build(pid)  # the encoders' ValueError before anything is pending
        self._pending[pid] = (answer, (lambda ack: done(ack.codes)) if done else (lambda ack: None))
        link.write(data)
        return True

    def _packet_id(self) -> int:
        for _ in range(65535):
            self._next_id = self._next_id % 65535 + 1
            if self._next_id not in self._pending:
                return self._next_id
        raise RuntimeError("65535 requests without an answer from the broker")

    # ---- packets other than PUBLISH, from _Link.data_received -----------------------------

    def control(self, link: _Link, p: Packet) -> None:
        if p.type == mqtt5.PINGRESP:
            return
        if p.type == mqtt5.CONNACK:
            if link.connack.done():
                raise ProtocolError("a second CONNACK")
            link.connack.set_result(mqtt5.parse_ack(p))
            return
        if not link.connack.done():
            raise ProtocolError(f"packet type {p.type} before the CONNACK")
        if p.type == mqtt5.DISCONNECT:
            ack = mqtt5.parse_ack(p)
            text = ack.properties.get("reason_string")
            link.close(
                f"the broker disconnected: {mqtt5.reason(ack.codes[0])}"
                + (f", {text!r}" if text else "")
            )
            return
        if p.type == mqtt5.AUTH:
            raise ProtocolError("an AUTH packet; no authentication method was asked for")
        ack = mqtt5.parse_ack(p)
        pending = self._pending.get(ack.packet_id)
        if pending is None or pending[0] != ack.type:
            raise ProtocolError(f"an answer (type {ack.type}) to packet {ack.packet_id}, unsent")
        del self._pending[ack.packet_id]
        pending[1](ack)

    # ---- connecting and staying connected ------------------------------------------------

    async def _run(self) -> None:
        """Connect, and again after each end, with back-off. A failure to connect is logged
        at WARNING when it differs from the one before (the same again: DEBUG)."""
        delay, last = BACKOFF[0], ""
        while not self._closing:
            try:
                was_up = await self._session()
            except asyncio.CancelledError:
                raise
            except (TimeoutError, OSError, EOFError, Refused, ProtocolError) as e:
                why = _describe(e)
                self.last_error = (time.time(), f"cannot connect: {why}")
                log.log(
                    logging.DEBUG if why == last else logging.WARNING,
                    "MQTT broker %s: cannot connect (%s); trying again in %.0f s",
                    self.settings.url,
                    why,
                    delay,
                )
                was_up, last = False, why
            if self._closing:
                return
            if was_up:
                delay, last = BACKOFF[0], ""
            await asyncio.sleep(delay)
            if not was_up:
                delay = min(delay * 2, BACKOFF[1])

    async def _session(self) -> bool:
        """One connection, from TCP to its end; True if the broker accepted it."""
        s = self.settings
        loop = asyncio.get_running_loop()
        link = _Link(self, loop)
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT):
                await loop.create_connection(
                    lambda: link,
                    s.hostname,
                    s.port,
                    ssl=self._ssl,
                    server_hostname=s.hostname if self._ssl else None,
                )
                link.write(mqtt5.connect(s.client_id, s.keepalive, s.username, s.password))
                ack = await link.connack
                if ack is None:
                    raise ConnectionError(link.closed.result())
        except BaseException:
            link.close("not connected")
            raise
        if ack.codes[1] >= 0x80:
            link.close("refused")
            text = ack.properties.get("reason_string")
            raise Refused(mqtt5.reason(ack.codes[1]) + (f", {text!r}" if text else ""))
        self.server = ack.properties
        keepalive = int(ack.properties.get("server_keep_alive", s.keepalive))  # type: ignore[call-overload]
        self._link = link
        self._pending.clear()
        self.connects += 1
        self.since = time.time()
        self.connected.set()
        pinger = loop.create_task(self._keepalive(link, keepalive)) if keepalive else None
        try:
            self.on_connect()
        except Exception:
            log.exception("the MQTT on_connect callback failed")
        try:
            why = await link.closed
        finally:
            if pinger is not None:
                pinger.cancel()
            self._link = None
            self._pending.clear()
            self.connected.clear()
            self.since = time.time()
            link.close("stopped")
        if not self._closing:
            self.last_error = (self.since, f"lost: {why}")
            self.on_disconnect(why)
        return True

    @staticmethod
    async def _keepalive(link: _Link, keepalive: float) -> None:
        """PINGREQ after ``keepalive`` seconds with nothing sent; the connection is lost when
        nothing came back ``keepalive`` seconds after a PINGREQ."""
        loop = asyncio.get_running_loop()
        step = min(1.0, keepalive / 4)
        while True:
            await asyncio.sleep(step)
            now = loop.time()
            if link.ping_sent and now - link.ping_sent >= keepalive:
                link.close(f"no answer from the broker for {keepalive:g} s (keep-alive)")
                return
            if now - link.last_out >= keepalive:
                link.write(mqtt5.PINGREQ_PACKET)
                if not link.ping_sent:
                    link.ping_sent = now


def _describe(e: BaseException) -> str:
    if isinstance(e, TimeoutError):
        return f"no answer in {CONNECT_TIMEOUT:g} s"
    if isinstance(e, Refused):
        return f"refused: {e}"
    return f"{type(e).__name__}: {e}" if str(e) else type(e).__name__

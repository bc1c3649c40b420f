"""MQTT ingest: every message is decoded, validated, applied to the fleet, recorded, fanned out.

``Ingest.handle()`` is synchronous and runs in the service's event loop (``MqttSource``
runs paho's client there, and calls it for each message it reads). A payload that is not JSON, too large,
does not match its schema or names another host than its topic is **rejected**: counted by
reason, logged (the first of each reason and topic at WARNING, the rest at DEBUG), and
dropped; nothing a publisher sends can stop the ingest.

**The seam for alert routing**: every state change becomes a ``state.Transition`` record,
which is stored in the history and then passed to each callable in ``subscribers``
(``on_transition(record)``), in order. A subscriber must return quickly (queue the work
for a task of its own); one that raises is logged and the others still run.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from .config import MqttSettings
from .contract import Kind, Rejected, decode, parse_topic
from .history import History
from .mqttsocket import BufferedClient
from .state import Fleet, Transition

log = logging.getLogger("hotspare.central.ingest")

Subscriber = Callable[[Transition], None]


class Ingest:
    def __init__(
        self,
        fleet: Fleet,
        history: History,
        prefix: str,
        max_payload: int,
        subscribers: list[Subscriber] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.fleet = fleet
        self.history = history
        self.prefix = prefix
        self.max_payload = max_payload
        self.subscribers: list[Subscriber] = list(subscribers or [])
        # agent events (``…/events``, each once, after de-duplication): ``on_event(doc)``
        self.event_subscribers: list[Callable[[dict[str, Any]], None]] = []
        self.clock = clock
        self.counters: Counter[str] = Counter()
        self.rejected: Counter[str] = Counter()
        self.last_rejection: dict[str, Any] | None = None
        self._logged: set[tuple[str, str]] = set()
        self.changed_hosts: set[tuple[str, str]] = set()  # for the live view, drained by it
        self.recent: list[Transition] = []  # drained by the live view
        self.event_seq = history.last_event_seqs()

    def handle(self, topic: str, payload: bytes, retained: bool = False) -> list[Transition]:
        """Take one MQTT message; returns the transitions it caused (also recorded and sent)."""
        now = self.clock()
        self.counters["received"] += 1
        t = parse_topic(self.prefix, topic)
        if t is None:
            return self._reject("topic", topic, "not a hotspare agent topic")
        if t.kind == Kind.COMMAND:
            self.counters["ignored"] += 1
            return []
        if not payload and t.kind in (Kind.GROUP, Kind.COMPONENT):
            doc = None  # a cleared retained message: the group or component is gone
        else:
            try:
                doc = decode(t.kind, t, payload, self.max_payload)
            except Rejected as e:
                return self._reject(e.reason, topic, str(e))
        self.counters["accepted"] += 1
        if t.kind == Kind.EVENT:
            assert doc is not None
            self._event(t.site, t.host, doc, now)
        records = self.fleet.apply(t.site, t.host, t.kind, doc, now, retained, t.item)
        self.changed_hosts.add((t.site, t.host))
        self.publish(records)
        return records

    def tick(self) -> list[Transition]:
        """Look for hosts that missed their heartbeats; called about once a second."""
        records = self.fleet.tick(self.clock())
        self.changed_hosts.update((r.site, r.host) for r in records)
        self.publish(records)
        return records

    def publish(self, records: list[Transition]) -> None:
        if not records:
            return
        try:
            self.history.add_transitions(records)
        except Exception as e:
            self._history_failed(e, len(records))
        self.counters["transitions"] += len(records)
        self.recent.extend(records)
        for record in records:
            for subscriber in self.subscribers:
                try:
                    subscriber(record)
                except Exception:
                    log.exception("transition subscriber %r failed", subscriber)

    def _event(self, site: str, host: str, doc: dict[str, Any], now: float) -> None:
        # delivery is at least once: skip what was already stored from this agent
        last = self.event_seq.get((site, host), -1)
        if doc["seq"] <= last:
            self.counters["duplicate_events"] += 1
            return
        self.event_seq[(site, host)] = doc["seq"]
        for subscriber in self.event_subscribers:
            try:
                subscriber(doc)
            except Exception:
                log.exception("event subscriber %r failed", subscriber)
        try:
            self.history.add_event(doc, now)
        except Exception as e:
            self._history_failed(e, 1)
            return
        self.counters["events"] += 1

    def _history_failed(self, e: Exception, lost: int) -> None:
        """The database refused or is unreachable: count and log; the live state, the
        dashboard and the subscribers (alerts) go on without it."""
        self.counters["history_errors"] += lost
        if self.counters["history_errors"] == lost or self.counters["history_errors"] % 1000 < lost:
            log.error(
                "history write failed (%d record(s) not stored so far): %s: %s",
                self.counters["history_errors"],
                type(e).__name__,
                e,
            )

    def _reject(self, reason: str, topic: str, message: str) -> list[Transition]:
        self.rejected[reason] += 1
        self.counters["rejected"] += 1
        message = message if len(message) <= 300 else message[:297] + "..."
        self.last_rejection = {
            "ts": self.clock(),
            "topic": topic,
            "reason": reason,
            "error": message,
        }
        level = logging.DEBUG if (reason, topic) in self._logged else logging.WARNING
        if len(self._logged) < 10000:
            self._logged.add((reason, topic))
        log.log(level, "rejected a message on %s (%s): %s", topic[:200], reason, message)
        return []

    def stats(self) -> dict[str, Any]:
        counters = dict(self.counters)
        if self.history.dropped:  # buffered records the database refused when written
            counters["history_errors"] = counters.get("history_errors", 0) + self.history.dropped
        return {
            "counters": counters,
            "rejected": dict(self.rejected),
            "last_rejection": self.last_rejection,
            "hosts": len(self.fleet.hosts),
        }


class MqttSource:
    """paho-mqtt 2 over MQTT 5 inside the service's event loop: subscribes on every connect,
    hands each message to ``on_message`` as it is read.

    paho runs without a network thread of its own, through its external-loop interface: the
    socket's readability calls ``loop_read()``, a queued packet (a PUBACK, a SUBSCRIBE)
    registers the socket for writing until ``loop_write()`` has sent it, and ``loop_misc()``
    (keepalive) runs every ``MISC_INTERVAL`` seconds. Every message is therefore decoded and
    applied in the thread that read it, without a hand-over between threads. The socket is a
    ``BufferedSocket``: bytes already read into its buffer (or decrypted inside TLS) make the
    file descriptor no more readable, so a read that leaves complete packets there schedules
    another at once. Only connecting (TCP and the TLS handshake, which block) runs in a worker
    thread; paho's socket callbacks from there are passed to the loop. A lost connection, or
    one that cannot be made, is retried after 1 s, doubling to 30 s, back to 1 s once the
    broker accepted a connection.

    ``clean_start`` with no session: the fleet state comes back from the retained messages
    on every (re)connect, so nothing is lost by not keeping a session.

    A broker sends no retained messages for a shared subscription (MQTT 5, 4.8.2), so with
    ``shared_group`` set the source also subscribes to the plain topic on every connect, to
    read the retained state once, and drops that subscription when no retained message has
    come for ``REBUILD_QUIET`` seconds. Messages that arrive through both meanwhile are
    applied twice, which changes nothing (state is idempotent, events are de-duplicated by
    their ``seq``).
    """

    REBUILD_QUIET = 2.0
    MISC_INTERVAL = 1.0  # paho's keepalive bookkeeping
    MIN_DELAY = 1.0  # reconnect back-off, doubled up to MAX_DELAY
    MAX_DELAY = 30.0

    def __init__(
        self,
        settings: MqttSettings,
        on_message: Callable[[str, bytes, bool], Any],
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self.settings = settings
        self.loop = loop
        self._on_message = on_message
        self.connected = asyncio.Event()
        self.subscribed = asyncio.Event()
        self.rebuilding = False  # the plain subscription of a shared-group source is on
        self._rebuild_timer: asyncio.TimerHandle | None = None
        self._loop_thread: int | None = None  # set by start()
        self._tasks: list[asyncio.Task[None]] = []
        self._down = asyncio.Event()  # the connection ended (set by on_disconnect)
        self._connecting = False  # paho's connect runs in a worker thread: hands off
        self._deferred: list[tuple[Callable[..., None], tuple[Any, ...]]] = []  # its callbacks
        self._stopping = False
        self._delay = self.MIN_DELAY
        self._reader: int | None = None  # the file descriptors registered with the loop
        self._writer: int | None = None
        self._read_due: asyncio.Handle | None = None  # a read of what the socket buffered
        s = settings
        client = BufferedClient(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=s.client_id,
            protocol=mqtt.MQTTv5,
        )
        client.enable_logger(logging.getLogger("hotspare.central.paho"))
        logging.getLogger("hotspare.central.paho").setLevel(logging.WARNING)
        if s.username:
            client.username_pw_set(s.username, s.password or None)
        if s.tls:
            client.tls_set(
                ca_certs=s.ca_file or None,
                certfile=s.cert_file or None,
                keyfile=s.key_file or None,
                cert_reqs=ssl.CERT_REQUIRED,
            )
        client.on_connect = self._connect
        client.on_disconnect = self._disconnect
        client.on_subscribe = self._subscribe
        client.on_message = self._message
        client.on_socket_open = self._socket_open
        client.on_socket_close = self._socket_close
        client.on_socket_register_write = self._register_write
        client.on_socket_unregister_write = self._unregister_write
        self.client = client

    def start(self) -> None:
        """Connect (and keep connecting) from the running loop; returns at once."""
        s = self.settings
        self._loop_thread = threading.get_ident()
        self.client.connect_async(s.hostname, s.port, keepalive=s.keepalive, clean_start=True)
        self._tasks = [
            self.loop.create_task(self._maintain(), name="mqtt-connection"),
            self.loop.create_task(self._misc(), name="mqtt-keepalive"),
        ]

    def stop(self) -> None:
        """Disconnect cleanly (the DISCONNECT is sent before this returns, if the socket
        takes it) and take the socket off the loop."""
        self._stopping = True
        for task in self._tasks:
            task.cancel()
        self._cancel_rebuild()
        connected = not self._connecting and self.client.socket() is not None
        if connected and self.client.disconnect() == mqtt.MQTTErrorCode.MQTT_ERR_SUCCESS:
            self.client.loop_write()  # sends DISCONNECT; paho then closes the socket
        # else a connect is under way in its worker thread: ``_maintain`` cannot see it end
        # (cancelled), ``_abandon`` closes what it made
        self._unwatch()
        self.connected.clear()

    # the connection, in the loop
    async def _maintain(self) -> None:
        client = self.client
        while not self._stopping:
            self._down.clear()
            self._connecting = True
            attempt = self.loop.run_in_executor(None, client.reconnect)
            attempt.add_done_callback(self._attempted)
            try:
                await asyncio.shield(attempt)
            except asyncio.CancelledError:
                raise
            except Exception as e:  # OSError, ssl's errors, a name that does not resolve
                log.warning(
                    "MQTT broker %s unreachable (%s: %s); retrying in %g s",
                    self.settings.url,
                    type(e).__name__,
                    e,
                    self._delay,
                )
            else:
                await self._down.wait()
            finally:
                self._connecting = False
            await asyncio.sleep(self._delay)
            self._delay = min(self._delay * 2, self.MAX_DELAY)

    def _attempted(self, attempt: asyncio.Future[Any]) -> None:
        """The connect returned (in the loop, before anything else looks at the client):
        the socket callbacks paho made meanwhile take effect, so the loop reads and writes
        the socket from now on. A connect that completes after ``stop()`` is closed."""
        self._connecting = False
        deferred, self._deferred = self._deferred, []
        for fn, args in deferred:
            fn(*args)
        if self._stopping and not attempt.cancelled() and attempt.exception() is None:
            self.client.disconnect()
            self.client.loop_write()
            self._unwatch()

    async def _misc(self) -> None:
        client = self.client
        while True:
            await asyncio.sleep(self.MISC_INTERVAL)
            if not self._connecting and client.socket() is not None:
                client.loop_misc()

    # the socket, in the loop
    def _readable(self) -> None:
        if self._read_due is not None:  # this read, or one the descriptor made redundant
            self._read_due.cancel()
            self._read_due = None
        client = self.client
        if client.loop_read():
            return  # paho closed the connection and said so (``_disconnect``)
        if client.want_write() and client.loop_write():
            return  # the PUBACKs for what was read, now: the broker's window stays open
        sock = client.socket()
        pending = getattr(sock, "pending", None)
        if pending is not None and pending():
            # bytes in the buffer (or inside TLS): the descriptor will not say so
            self._read_due = self.loop.call_soon(self._readable)

    def _writable(self) -> None:
        self.client.loop_write()

    def _in_loop(self, fn: Callable[..., None], *args: Any) -> None:
        if threading.get_ident() == self._loop_thread:
            fn(*args)
        else:  # from paho's connect, in its worker thread: once it returned
            self._deferred.append((fn, args))

    def _socket_open(self, client, userdata, sock) -> None:
        self._in_loop(self._watch, sock.fileno())

    def _socket_close(self, client, userdata, sock) -> None:
        self._in_loop(self._unwatch)

    def _register_write(self, client, userdata, sock) -> None:
        self._in_loop(self._watch_writes, sock.fileno())

    def _unregister_write(self, client, userdata, sock) -> None:
        self._in_loop(self._unwatch_writes)

    def _watch(self, fd: int) -> None:
        self._unwatch()
        self._reader = fd
        self.loop.add_reader(fd, self._readable)

    def _unwatch(self) -> None:
        self._unwatch_writes()
        if self._read_due is not None:
            self._read_due.cancel()
            self._read_due = None
        if self._reader is not None:
            self.loop.remove_reader(self._reader)
            self._reader = None

    def _watch_writes(self, fd: int) -> None:
        if self._writer is None and fd == self._reader:
            self._writer = fd
            self.loop.add_writer(fd, self._writable)

    def _unwatch_writes(self) -> None:
        if self._writer is not None:
            self.loop.remove_writer(self._writer)
            self._writer = None

    # paho's callbacks, in the loop
    def _connect(self, client, userdata, flags, reason_code, properties=None) -> None:
        if reason_code.is_failure:
            log.warning("MQTT broker %s refused the connection: %s", self.settings.url, reason_code)
            return
        self._delay = self.MIN_DELAY
        log.info(
            "MQTT connected to %s; subscribing to %s", self.settings.url, self.settings.subscription
        )
        topics = [(self.settings.subscription, 1)]
        if self.settings.shared_group:
            topics.append((self._plain, 1))
            self._rebuild_started()
        client.subscribe(topics)
        self.connected.set()

    def _disconnect(self, client, userdata, flags, reason_code, properties=None) -> None:
        self.connected.clear()
        self._cancel_rebuild()
        if self._stopping:
            log.info("MQTT disconnected from %s", self.settings.url)
        else:
            log.warning(
                "MQTT connection to %s lost (%s); reconnecting in %g s",
                self.settings.url,
                reason_code,
                self._delay,
            )
        self._down.set()

    def _subscribe(self, client, userdata, mid, reason_codes, properties=None) -> None:
        if any(rc.is_failure for rc in reason_codes):
            log.error(
                "MQTT broker refused the subscription %s: %s",
                self.settings.subscription,
                reason_codes,
            )
            return
        self.subscribed.set()

    def _message(self, client, userdata, msg) -> None:
        retained = bool(msg.retain)
        if retained and self.rebuilding:
            self._rearm()
        try:
            self._on_message(msg.topic, msg.payload, retained)
        except Exception:  # paho would leave its packet half-handled
            log.exception("handling a message on %s failed", msg.topic[:200])

    @property
    def _plain(self) -> str:
        return f"{self.settings.topic_prefix}/#"

    # the retained-state read of a shared-group source
    def _rebuild_started(self) -> None:
        self.rebuilding = True
        self._rearm()

    def _rearm(self) -> None:
        if self._rebuild_timer is not None:
            self._rebuild_timer.cancel()
        self._rebuild_timer = self.loop.call_later(self.REBUILD_QUIET, self._rebuild_done)

    def _cancel_rebuild(self) -> None:
        if self._rebuild_timer is not None:
            self._rebuild_timer.cancel()
            self._rebuild_timer = None

    def _rebuild_done(self) -> None:
        self._rebuild_timer = None
        if self.rebuilding:
            self.rebuilding = False
            self.client.unsubscribe(self._plain)
            log.info("retained state read; now on the shared subscription only")

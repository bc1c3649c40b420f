"""MQTT ingest: every message is decoded, validated, applied to the fleet, recorded, fanned out.

``Ingest.handle()`` is synchronous and runs in the service's event loop (``MqttSource``
hands paho's messages over from its network thread). A payload that is not JSON, too large,
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
import collections
import logging
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
    """paho-mqtt 2 over MQTT 5: subscribes on every connect, hands messages to the loop.

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
    BATCH = 2000  # messages per turn of the event loop
    # while messages keep coming, the loop looks for more this often instead of being woken
    # for each one (each wake-up is a hand-over of Python's GIL between the two threads)
    POLL = 0.005

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
        self._inbox: collections.deque[tuple[str, bytes, bool]] = collections.deque()
        self._scheduled = False  # a drain is due: the loop needs no wake-up
        self._lock = threading.Lock()  # between _scheduled and the inbox, across the threads
        self._rebuild_timer: asyncio.TimerHandle | None = None
        s = settings
        client = BufferedClient(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=s.client_id,
            protocol=mqtt.MQTTv5,
            reconnect_on_failure=True,
        )
        client.enable_logger(logging.getLogger("hotspare.central.paho"))
        logging.getLogger("hotspare.central.paho").setLevel(logging.WARNING)
        s.authenticate(client)
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        client.on_connect = self._connect
        client.on_disconnect = self._disconnect
        client.on_subscribe = self._subscribe
        client.on_message = self._message
        self.client = client

    def start(self) -> None:
        s = self.settings
        self.client.connect_async(s.hostname, s.port, keepalive=s.keepalive, clean_start=True)
        self.client.loop_start()

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    # paho's thread
    def _connect(self, client, userdata, flags, reason_code, properties=None) -> None:
        if reason_code.is_failure:
            log.warning("MQTT broker %s refused the connection: %s", self.settings.url, reason_code)
            return
        log.info(
            "MQTT connected to %s; subscribing to %s", self.settings.url, self.settings.subscription
        )
        topics = [(self.settings.subscription, 1)]
        if self.settings.shared_group:
            topics.append((self._plain, 1))
            self.loop.call_soon_threadsafe(self._rebuild_started)
        client.subscribe(topics)
        self.loop.call_soon_threadsafe(self.connected.set)

    @property
    def _plain(self) -> str:
        return f"{self.settings.topic_prefix}/#"

    # loop side: the retained-state read of a shared-group source
    def _rebuild_started(self) -> None:
        self.rebuilding = True
        self._rearm()

    def _rearm(self) -> None:
        if self._rebuild_timer is not None:
            self._rebuild_timer.cancel()
        self._rebuild_timer = self.loop.call_later(self.REBUILD_QUIET, self._rebuild_done)

    def _rebuild_done(self) -> None:
        self._rebuild_timer = None
        if self.rebuilding:
            self.rebuilding = False
            self.client.unsubscribe(self._plain)
            log.info("retained state read; now on the shared subscription only")

    def _deliver(self, topic: str, payload: bytes, retained: bool) -> None:
        if retained and self.rebuilding:
            self._rearm()
        self._on_message(topic, payload, retained)

    def _disconnect(self, client, userdata, flags, reason_code, properties=None) -> None:
        log.warning("MQTT connection to %s lost (%s); reconnecting", self.settings.url, reason_code)
        self.loop.call_soon_threadsafe(self.connected.clear)

    def _subscribe(self, client, userdata, mid, reason_codes, properties=None) -> None:
        if any(rc.is_failure for rc in reason_codes):
            log.error(
                "MQTT broker refused the subscription %s: %s",
                self.settings.subscription,
                reason_codes,
            )
            return
        self.loop.call_soon_threadsafe(self.subscribed.set)

    def _message(self, client, userdata, msg) -> None:
        # an idle loop is woken by the first message; a busy one polls (``_drain``)
        item = (msg.topic, msg.payload, bool(msg.retain))
        with self._lock:
            self._inbox.append(item)
            if self._scheduled:
                return
            self._scheduled = True
        self.loop.call_soon_threadsafe(self._drain)

    # loop side
    def _drain(self) -> None:
        """Take what arrived, up to ``BATCH`` messages a turn (HTTP and timers run between
        turns). After a turn that found something, look again in ``POLL`` seconds without
        being woken; a turn that finds nothing lets the next message wake the loop."""
        inbox = self._inbox
        took = 0
        while took < self.BATCH and inbox:
            topic, payload, retained = inbox.popleft()
            took += 1
            self._deliver(topic, payload, retained)
        if inbox:
            self.loop.call_soon(self._drain)
        elif took:
            self.loop.call_later(self.POLL, self._drain)
        else:
            with self._lock:
                if not inbox:
                    self._scheduled = False
                    return
            self.loop.call_soon(self._drain)

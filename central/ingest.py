"""MQTT ingest: every message is decoded, validated, applied to the fleet, recorded, fanned out.

``Ingest.handle()`` is synchronous and runs in the service's event loop, called by
``MqttSource`` for each message as it is read. A payload that is not JSON, too large,
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
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from . import mqtt5
from .config import MqttSettings
from .contract import Kind, Rejected, decode, parse_topic
from .history import History
from .mqttclient import MqttClient
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
    """The ingest's subscription: ``<prefix>/#`` at QoS 1 on every connect, each message
    handed to ``on_message`` in the event loop (``central/mqttclient.py``).

    Clean start with no session: the fleet state comes back from the retained messages on
    every (re)connect, so nothing is lost by not keeping a session.

    A broker sends no retained messages for a shared subscription (MQTT 5, 4.8.2), so with
    ``shared_group`` set the source also subscribes to the plain topic on every connect, to
    read the retained state once, and drops that subscription when no retained message has
    come for ``REBUILD_QUIET`` seconds. Messages that arrive through both meanwhile are
    applied twice, which changes nothing (state is idempotent, events are de-duplicated by
    their ``seq``).
    """

    REBUILD_QUIET = 2.0

    def __init__(
        self,
        settings: MqttSettings,
        on_message: Callable[[str, bytes, bool], Any],
        on_change: Callable[[bool], None] = lambda connected: None,
    ) -> None:
        self.settings = settings
        self._on_message = on_message
        self._on_change = on_change  # True at a connect (the SUBSCRIBE sent), False at a loss
        self.subscribed = asyncio.Event()
        self.rebuilding = False  # the plain subscription of a shared-group source is on
        self._rebuild_timer: asyncio.TimerHandle | None = None
        self.client = MqttClient(settings, self._deliver, self._connect, self._disconnect)
        self.connected = self.client.connected

    def start(self) -> None:
        self.client.start()

    def stop(self) -> None:
        if self._rebuild_timer is not None:
            self._rebuild_timer.cancel()
        self.client.stop()

    def status(self) -> dict[str, Any]:
        """The broker connection, for the API and the dashboard (no credentials in it)."""
        return {"url": self.settings.url, **self.client.status()}

    def publish(self, topic: str, payload: bytes) -> bool:
        """At QoS 1 on this connection; False while disconnected."""
        return self.client.publish(topic, payload, qos=1)

    def _connect(self) -> None:
        s = self.settings
        log.info("MQTT connected to %s; subscribing to %s", s.url, s.subscription)
        topics = [(s.subscription, 1)]
        if s.shared_group:
            if self.client.server.get("shared_subscription_available", 1) == 0:
                log.error(
                    "MQTT broker %s does not support shared subscriptions (mqtt.shared_group)",
                    s.url,
                )
            topics.append((self._plain, 1))
            self.rebuilding = True
            self._rearm()
        self.client.subscribe(topics, self._subscribed)
        self._on_change(True)

    def _subscribed(self, codes: tuple[int, ...]) -> None:
        if any(code >= 0x80 for code in codes):
            log.error(
                "MQTT broker refused the subscription %s: %s",
                self.settings.subscription,
                ", ".join(mqtt5.reason(code) for code in codes),
            )
            return
        self.subscribed.set()

    def _disconnect(self, why: str) -> None:
        log.warning("MQTT connection to %s lost (%s); reconnecting", self.settings.url, why)
        self._on_change(False)

    @property
    def _plain(self) -> str:
        return f"{self.settings.topic_prefix}/#"

    # the retained-state read of a shared-group source
    def _rearm(self) -> None:
        if self._rebuild_timer is not None:
            self._rebuild_timer.cancel()
        loop = asyncio.get_running_loop()
        self._rebuild_timer = loop.call_later(self.REBUILD_QUIET, self._rebuild_done)

    def _rebuild_done(self) -> None:
        self._rebuild_timer = None
        if self.rebuilding:
            self.rebuilding = False
            self.client.unsubscribe([self._plain])
            log.info("retained state read; now on the shared subscription only")

    def _deliver(self, topic: str, payload: bytes, retained: bool) -> None:
        if retained and self.rebuilding:
            self._rearm()
        self._on_message(topic, payload, retained)

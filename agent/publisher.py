"""MQTT publishing over paho-mqtt 2: birth and Last Will, retained state, the outbox drain.

paho runs its network loop in its own thread and reconnects with backoff by itself;
this class bridges its callbacks into the asyncio loop. Retained state is published
only while connected (``on_connect`` republishes all of it after every reconnect);
events go through the on-disk outbox and are removed once the broker acknowledged them.

paho replays unacknowledged QoS 1 publishes after a reconnect, after ``on_connect`` has
run. For the agent every such message is stale: retained state is republished in full on
connect, and events are redelivered from the outbox. A replay arriving after the fresh
state would put old state back on the broker (a cleared group retained again), so the
replay queue is emptied as each connection is made, and events waiting for an
acknowledgement are resent from the outbox instead.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from .config import MqttSettings
from .outbox import Outbox

log = logging.getLogger("hotspare.mqtt")

ACK_TIMEOUT = 60.0  # republish an event whose acknowledgement never came


class ConnectionLost(Exception):
    """The connection ended before the broker acknowledged a publish."""


def forget_unacknowledged(client: mqtt.Client) -> bool:
    """Empty paho's queue of publishes it would replay on this connection (see above).

    Called from ``on_connect``, in paho's thread, before paho replays the queue. False when
    paho's internals do not have the expected shape (nothing is changed then).
    """
    mutex = getattr(client, "_out_message_mutex", None)
    messages = getattr(client, "_out_messages", None)
    if mutex is None or not hasattr(messages, "clear") or not hasattr(client, "_inflight_messages"):
        return False
    with mutex:
        messages.clear()
        client._inflight_messages = 0
    return True


class Publisher:
    def __init__(
        self,
        settings: MqttSettings,
        client_id: str,
        status_topic: str,
        will_payload: bytes,
        outbox: Outbox,
        on_connect: Callable[[], None],
    ) -> None:
        self.settings = settings
        self.status_topic = status_topic
        self.outbox = outbox
        self._on_connect_cb = on_connect
        self._loop = asyncio.get_running_loop()
        self.connected = asyncio.Event()
        self._outbox_changed = asyncio.Event()
        self._pending: dict[int, asyncio.Future[bool]] = {}
        self._was_connected = False
        self._replays_checked = False
        self._failures = 0
        self._stopping = False
        self.client = self._build(client_id, will_payload)

    def _build(self, client_id: str, will_payload: bytes) -> mqtt.Client:
        s = self.settings
        protocol = mqtt.MQTTv5 if s.protocol == "5" else mqtt.MQTTv311
        client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=protocol,
            reconnect_on_failure=True,
        )
        client.enable_logger(logging.getLogger("hotspare.paho"))
        logging.getLogger("hotspare.paho").setLevel(logging.WARNING)
        s.authenticate(client)
        client.will_set(self.status_topic, will_payload, qos=1, retain=True)
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        client.on_connect = self._paho_connect
        client.on_disconnect = self._paho_disconnect
        client.on_publish = self._paho_publish
        return client

    # --- paho thread -> asyncio loop --------------------------------------------------
    def _paho_connect(self, client, userdata, flags, reason_code, properties=None) -> None:
        if reason_code.is_failure:
            self._loop.call_soon_threadsafe(self._connect_failed, str(reason_code))
            return
        if not forget_unacknowledged(client) and not self._replays_checked:
            log.warning(
                "this paho-mqtt does not expose its replay queue: after a reconnect it may"
                " replay stale retained state before the current state"
            )
        self._replays_checked = True
        self._loop.call_soon_threadsafe(self._connected)

    def _paho_disconnect(self, client, userdata, flags, reason_code, properties=None) -> None:
        self._loop.call_soon_threadsafe(self._disconnected, str(reason_code))

    def _paho_publish(self, client, userdata, mid, reason_code, properties=None) -> None:
        self._loop.call_soon_threadsafe(self._acked, mid, not reason_code.is_failure)

    # --- asyncio side -----------------------------------------------------------------
    # Acknowledgements arrive through call_soon_threadsafe, so they run only after the
    # publishing coroutine registered its future: no lock is needed (and none may be
    # held around client.publish, which paho also locks while it calls on_publish).
    def _acked(self, mid: int, ok: bool) -> None:
        fut = self._pending.pop(mid, None)
        if fut is not None and not fut.done():
            fut.set_result(ok)

    async def _publish_acked(
        self, topic: str, payload: bytes, retain: bool, timeout: float
    ) -> bool:
        """Publish at QoS 1; True once acknowledged, False if the broker refused it.

        Raises TimeoutError when no acknowledgement came within ``timeout``, ConnectionLost
        when the connection ended first.
        """
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        fut: asyncio.Future[bool] = self._loop.create_future()
        self._pending[info.mid] = fut
        try:
            return await asyncio.wait_for(fut, timeout)
        finally:
            self._pending.pop(info.mid, None)

    def _connected(self) -> None:
        what = "reconnected to" if self._was_connected or self._failures else "connected to"
        log.info("MQTT %s %s:%s", what, self.settings.hostname, self.settings.port)
        self._was_connected, self._failures = True, 0
        self.connected.set()
        self._on_connect_cb()

    def _connect_failed(self, reason: str) -> None:
        self._failures += 1
        if self._failures == 1:
            log.warning(
                "MQTT broker %s:%s refused the connection: %s; retrying",
                self.settings.hostname,
                self.settings.port,
                reason,
            )

    def _disconnected(self, reason: str) -> None:
        if self.connected.is_set() and not self._stopping:
            log.warning(
                "MQTT connection to %s:%s lost (%s); reconnecting with backoff",
                self.settings.hostname,
                self.settings.port,
                reason,
            )
        self.connected.clear()
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(ConnectionLost())
        self._pending.clear()

    def start(self) -> None:
        s = self.settings
        self.client.connect_async(s.hostname, s.port, keepalive=s.keepalive)
        self.client.loop_start()

    def publish(
        self, topic: str, payload: bytes, retain: bool = True, qos: int = 1
    ) -> mqtt.MQTTMessageInfo | None:
        """Publish current state; None (nothing sent) while disconnected.

        The message info says whether the broker has acknowledged it (``is_published()``):
        a message handed to a connection that is dying unnoticed never will be.
        """
        if not self.connected.is_set():
            return None
        return self.client.publish(topic, payload, qos=qos, retain=retain)

    def enqueue(self, topic: str, payload: bytes) -> None:
        """Put an event in the outbox; the drain task delivers it."""
        dropped = self.outbox.put(topic, payload)
        if dropped:
            log.warning(
                "outbox full (%d events): dropped the %d oldest", self.outbox.max_items, dropped
            )
        self._outbox_changed.set()

    async def drain(self) -> None:
        """Deliver outbox events in order, one at a time, each removed once acknowledged."""
        while True:
            await self.connected.wait()
            items = self.outbox.peek()
            if not items:
                self._outbox_changed.clear()
                await self._outbox_changed.wait()
                continue
            for item in items:
                if not await self._deliver(item.topic, item.payload):
                    break
                self.outbox.ack(item.id)

    async def _deliver(self, topic: str, payload: bytes) -> bool:
        """Publish one event at QoS 1 and wait for its acknowledgement."""
        await self.connected.wait()
        try:
            ok = await self._publish_acked(topic, payload, retain=False, timeout=ACK_TIMEOUT)
        except ConnectionLost:
            return False  # resent from the outbox once connected again
        except TimeoutError:
            log.warning(
                "no acknowledgement for an event on %s after %.0f s; resending", topic, ACK_TIMEOUT
            )
            return False
        if not ok:
            log.error("broker rejected the event on %s; dropping it", topic)
        return True

    async def stop(self, offline_payload: bytes) -> None:
        """Say goodbye: publish ``offline`` (retained), then disconnect cleanly."""
        self._stopping = True
        if self.connected.is_set():
            try:
                await self._publish_acked(self.status_topic, offline_payload, True, timeout=2.0)
            except (TimeoutError, ConnectionLost):
                log.warning("could not publish offline status before stopping")
        # paho's loop may log "not connected" once after a deliberate disconnect
        logging.getLogger("hotspare.paho").setLevel(logging.CRITICAL)
        self.client.disconnect()
        await asyncio.to_thread(self.client.loop_stop)

"""paho's replay of unacknowledged publishes is emptied at connect (agent/publisher.py).

A real mosquitto and a real paho client: paho keeps QoS 1 publishes made while it is
not connected and replays them after on_connect, exactly as it replays those a dying
connection never acknowledged.
"""

from __future__ import annotations

import threading
import time

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from agent.publisher import forget_unacknowledged

TOPIC = "hotspare/v1/dc1/web-01/groups/md/md1"


def connect_and_collect(broker, subscribe, forget: bool) -> set[str]:
    """Queue a stale retained publish, connect (forgetting or not), publish a marker."""
    client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="replayer")
    connected = threading.Event()

    def on_connect(c, userdata, flags, reason_code, properties=None):
        if forget:
            assert forget_unacknowledged(c)
        connected.set()

    client.on_connect = on_connect
    client.publish(TOPIC, b'{"state":"redundant"}', qos=1, retain=True)
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    try:
        assert connected.wait(10)
        deadline = time.monotonic() + 10
        while not client.is_connected() and time.monotonic() < deadline:
            time.sleep(0.01)
        marker = client.publish("hotspare/v1/marker", b"x", qos=1)
        marker.wait_for_publish(10)  # acknowledged after any replay on this connection
    finally:
        client.disconnect()
        client.loop_stop()
    late = subscribe()
    late.client.publish("hotspare/v1/sentinel", b"x", qos=1)
    late.wait(lambda m: m.topic == "hotspare/v1/sentinel", what="sentinel")
    return {m.topic for m in late.messages if m.retain}


def test_paho_replays_what_was_never_acknowledged(broker, subscribe):
    """The behaviour the agent guards against, so that the next test can fail."""
    assert TOPIC in connect_and_collect(broker, subscribe, forget=False)


def test_the_replay_queue_is_emptied_at_connect(broker, subscribe):
    assert TOPIC not in connect_and_collect(broker, subscribe, forget=True)


def test_an_unexpected_client_is_left_alone():
    assert forget_unacknowledged(object()) is False

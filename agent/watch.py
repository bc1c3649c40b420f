"""``hotspare watch``: live host health read from the broker, redrawn on every change."""

from __future__ import annotations

import json
import sys
import threading
import time
from collections import deque
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from . import render


def _event_line(event: dict, colour: bool) -> str:
    when = time.strftime("%H:%M:%S", time.localtime(event.get("ts", 0)))
    who = f"{event.get('host', '?')}"
    if event.get("type") == "transition":
        to = event.get("to") or "gone"
        state = render.paint(to, to, colour)
        reason = f"  {event['reason']}" if event.get("reason") else ""
        return f"{when} {who} {event['scope']} {event['id']}: {event.get('from') or 'new'} -> {state}{reason}"
    if event.get("type") == "promotion":
        trigger = f" ({event['trigger']})" if event.get("trigger") else ""
        dry = " [dry run]" if event.get("dry_run") else ""
        return (
            f"{when} {who} policy {event.get('id')}: {event.get('decision')}{trigger}{dry}"
            f"  {event.get('message', '')}"
        )
    if event.get("type") == "command":
        return (
            f"{when} {who} command {event.get('id')} from {event.get('sender') or '?'}: "
            f"{event.get('decision')} ({event.get('reason')})"
        )
    return f"{when} {who} {event.get('type')}: {event.get('message', '')}"


class View:
    def __init__(self, colour: bool) -> None:
        self.colour = colour
        self.health: dict[str, dict] = {}
        self.status: dict[str, str] = {}
        self.events: deque[str] = deque(maxlen=10)
        self.changed = threading.Event()
        self.lock = threading.Lock()

    def on_message(self, client, userdata, msg) -> None:
        parts = msg.topic.split("/")
        try:
            payload = json.loads(msg.payload) if msg.payload else None
        except ValueError:
            return
        with self.lock:
            host = "/".join(parts[2:4])
            if parts[4:] == ["health"] and payload:
                self.health[host] = payload
            elif parts[4:] == ["status"] and payload:
                self.status[host] = payload.get("state", "?")
            elif parts[4:] == ["events"] and payload:
                self.events.append(_event_line(payload, self.colour))
        self.changed.set()

    def render(self) -> str:
        with self.lock:
            out = []
            for host in sorted(set(self.health) | set(self.status)):
                state = self.status.get(host, "?")
                out.append(f"[{host}] agent {render.paint(state, state, self.colour)}")
                if host in self.health:
                    out.append(render.table(self.health[host], self.colour))
                out.append("")
            if not out:
                out.append("waiting for agents...")
            out += ["recent events:", *(self.events or ["(none yet)"])]
            return "\n".join(out)


def watch(url: str, prefix: str, duration: float = 0, out=sys.stdout, footer=None) -> int:
    """Show live health until ``duration`` seconds passed (0: until Ctrl-C).

    ``footer``, a callable, adds a line under the view (the demo's scenario step).
    """
    parts = urlsplit(url)
    tty = out.isatty()
    view = View(colour=tty)
    client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    if parts.scheme == "mqtts":
        client.tls_set()
    client.on_message = view.on_message
    client.on_connect = lambda c, *_: c.subscribe(
        [(f"{prefix}/+/+/{t}", 1) for t in ("health", "status", "events")]
    )
    client.connect_async(parts.hostname or "127.0.0.1", parts.port or 1883)
    client.loop_start()
    deadline = time.monotonic() + duration if duration else None
    try:
        while deadline is None or time.monotonic() < deadline:
            if view.changed.wait(0.5):
                view.changed.clear()
                time.sleep(0.05)  # let a burst of messages settle into one redraw
                text = view.render() + (f"\n\n{footer()}" if footer else "")
                out.write(("\x1b[H\x1b[2J" + text + "\n") if tty else (text + "\n\n"))
                out.flush()
    except KeyboardInterrupt:
        pass
    finally:
        client.disconnect()
        client.loop_stop()
    return 0

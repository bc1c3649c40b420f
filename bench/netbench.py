"""Link-loss latency: a veth link cut inside a network namespace -> the MQTT ``health`` message.

A namespace with two veth pairs, a private mosquitto and an agent (one ``[[collectors.nic]]``
group over the two watched ends, interval 3600 s so that only the netlink link event can
explain a change) all inside it; the subscriber's socket is opened inside it too. Each
repetition sets the peer end of the first pair down at a random phase and measures from
just before ``ip link set`` is started to the arrival of the retained ``health`` message
showing the group degraded, then the same for the link coming back (redundant).

Used by ``bench/run.py --only net``.
"""

from __future__ import annotations

import dataclasses
import json
import random
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import harness as h
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.net_peer import (  # noqa: E402
    Netns,
    NetnsAgent,
    NetnsBroker,
    inside,
    netns_available,
    nic_agent_config,
)

BASE = "hotspare/v1/dc1/web-01"
GROUP = "nic/uplinks"
TARGET = 0.500  # seconds, p99


@dataclass(frozen=True)
class NetPlan:
    mode: str
    runs: int


NET_PLANS = {"full": NetPlan("full", 200), "quick": NetPlan("quick", 30)}


@dataclass
class NetResults:
    plan: NetPlan
    down: h.Dist
    up: h.Dist
    ip_cmd: h.Dist  # how long `ip link set` itself took (part of every sample)
    elapsed: float
    agent_log_tail: str = ""


class HealthWatch:
    """Records (arrival time, group state) from every ``health`` message."""

    def __init__(self, port: int) -> None:
        self.changes = h.Changes()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self.client.on_message = self._on_message
        self.subscribed = threading.Event()
        self.client.on_connect = lambda c, *a: c.subscribe(f"{BASE}/health", 1)
        self.client.on_subscribe = lambda *a: self.subscribed.set()
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        if not self.subscribed.wait(10):
            raise RuntimeError("subscription not acknowledged")

    def _on_message(self, client, userdata, msg) -> None:
        t = time.monotonic()
        if not msg.payload:
            return
        for g in json.loads(msg.payload)["groups"]:
            if g["id"] == GROUP:
                self.changes.record("health", t, g["state"])

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def run(plan: NetPlan, rng: random.Random, progress=lambda text: None) -> NetResults:
    if not netns_available():
        raise SystemExit("bench: the net part needs root and iproute2 (ip netns)")
    down, up, ip_cmd = h.Dist(), h.Dist(), h.Dist()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="hotspare-bench-net-") as tmp_name:
        tmp = Path(tmp_name)
        with Netns() as ns, NetnsBroker(ns) as broker:
            (a0, b0), (a1, _b1) = ns.veth(), ns.veth()
            with inside(ns.name):
                watch = HealthWatch(broker.port)
            config = nic_agent_config(broker.port, tmp / "state", [a0, a1], interval=3600)
            try:
                with NetnsAgent(ns, tmp, config) as agent:
                    seen = watch.changes.wait(["health"], 0.0, "redundant", 30)
                    if seen["health"] is None:
                        raise RuntimeError(f"agent never reported redundant:\n{agent.output()}")
                    progress(f"net: {plan.runs} link cuts")
                    for i in range(plan.runs):
                        for state, updown, dist in (
                            ("degraded", "down", down),
                            ("redundant", "up", up),
                        ):
                            time.sleep(rng.uniform(0.05, 0.3))  # a random phase
                            t0 = time.monotonic()
                            ns.link(b0, updown)
                            ip_cmd.samples.append(time.monotonic() - t0)
                            got = watch.changes.wait(["health"], t0, state, 10)["health"]
                            if got is None:
                                dist.missed += 1
                                watch.changes.wait(["health"], t0, state, 30)
                            else:
                                dist.samples.append(got - t0)
                        if (i + 1) % 50 == 0:
                            progress(f"net: {i + 1}/{plan.runs}")
                    tail = agent.output()[-1500:]
            finally:
                watch.close()
    return NetResults(plan, down, up, ip_cmd, time.monotonic() - started, tail)


def ms(x: float) -> str:
    return f"{x * 1e3:.1f}"


def dist_cell(d: h.Dist) -> str:
    if not d.samples:
        return f"no samples ({d.missed} missed)"
    figures = (d.pct(50), d.pct(95), d.pct(99), max(d.samples))
    cell = (
        " / ".join(ms(x) for x in figures) + f" ms (n={len(d.samples)}, min {ms(min(d.samples))})"
    )
    return cell + (f", **{d.missed} missed** (none within 10 s)" if d.missed else "")


def target_cell(d: h.Dist) -> str:
    if not d.samples or d.missed:
        return f"p99 <= {TARGET * 1e3:.0f} ms: **missed**"
    ok = d.pct(99) <= TARGET
    return f"p99 <= {TARGET * 1e3:.0f} ms: {'met' if ok else '**missed**'}"


def build_rows(r: NetResults) -> list[tuple[str, str, str]]:
    return [
        (
            "veth peer set down -> retained `health` shows the group degraded "
            "(p50 / p95 / p99 / max)",
            dist_cell(r.down),
            target_cell(r.down),
        ),
        (
            "veth peer set up -> retained `health` shows the group redundant (p50 / p95 / p99 / max)",
            dist_cell(r.up),
            target_cell(r.up),
        ),
        (
            "of which `ip link set` itself (process start to exit; included in the rows above)",
            dist_cell(r.ip_cmd),
            "—",
        ),
    ]


def markdown(r: NetResults) -> str:
    lines = [
        "### Link loss (veth in a network namespace, netlink, agent interval 3600 s)",
        "",
        "| figure | hotspare | target |",
        "| --- | --- | --- |",
    ]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in build_rows(r)]
    return "\n".join(lines) + "\n"


def describe(plan: NetPlan) -> str:
    return f"net: {plan.runs} link cuts and restores"


def with_runs(plan: NetPlan, runs: int | None) -> NetPlan:
    return plan if runs is None else dataclasses.replace(plan, runs=runs)

"""Promotion benchmark: failover time from an injected PSU failure to the VIP answering on
the standby, beside keepalived's own node-death failover, in the same lab and the same run.

The lab is ``tests/promotion_peer.py``: two network namespaces on a bridge, keepalived
(VRRP v3) in each, an agent in each, mosquitto, the primary's BMC simulated by ipmi_sim
behind a UDP relay. Per run:

* **PSU failure**: PSU 1's failure bit is set on the simulator console at a random phase
  of the agent's poll; the clock stops when a TCP connection to the VIP is answered by the
  standby's server (tried every 10 ms). The primary's policy (``group:power=degraded`` ->
  keepalived track file -100, automatic failback 1 s after the power group is redundant
  again) steps it down; VRRP moves the VIP. Also recorded: injection -> the agent's
  ``engage`` decision (its event's ``ts``; same clock), which is the agent's share.
  Then the bit is cleared, the failback brings the VIP back, and the next run starts.
* **keepalived node death**: the primary's keepalived (both processes) is SIGKILLed and its
  link taken down at once (a dead node answers nothing); the clock stops when the standby
  answers. Then the primary comes back and takes the VIP over again.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))

import harness as h  # noqa: E402
import paho.mqtt.client as mqtt  # noqa: E402
from paho.mqtt.enums import CallbackAPIVersion  # noqa: E402

from tests import promotion_peer as lab  # noqa: E402
from tests.ipmisim import DELL, PSU_FAILURE  # noqa: E402

BENCH_POLICIES = """
[promotion]
[[promotion.policy]]
name = "step-down"
when = ["group:*=failed", "group:power=degraded"]
action = "keepalived"
cooldown = 0.0
failback = "auto"
failback_after = 1.0
[promotion.policy.keepalived]
track_file = "{track}"
engaged = -100
"""


@dataclass
class Series:
    name: str
    advert: float
    interval: float
    failover: h.Dist = field(default_factory=h.Dist)
    decision: h.Dist = field(default_factory=h.Dist)
    detection: h.Dist = field(default_factory=h.Dist)  # injection -> power degraded transition
    engine: h.Dist = field(default_factory=h.Dist)  # that transition -> the action done
    node_death: h.Dist = field(default_factory=h.Dist)
    split: int = 0  # samples in which both hosts held the VIP on an up link


class Events:
    """The primary's promotion events, as they arrive."""

    def __init__(self, port: int) -> None:
        self.items: list[dict] = []
        self.cond = threading.Condition()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.subscribe(f"hotspare/v1/{lab.SITE}/pri/events", qos=1)
        self.client.loop_start()

    def _on_message(self, _c, _u, msg) -> None:
        event = json.loads(msg.payload)
        if event.get("type") == "transition" and event.get("id") == "power":
            event = {**event, "decision": f"power {event.get('to')}"}
        if "decision" in event:
            with self.cond:
                self.items.append(event)
                self.cond.notify_all()

    def wait(self, decision: str, after: int, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for e in self.items[after:]:
                    if e["decision"] == decision:
                        return e
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no {decision} event within {timeout} s")
                self.cond.wait(left)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def vip_on(host: str, timeout: float) -> float:
    """Monotonic time at which ``host`` answered on the VIP; TimeoutError after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if lab.who_answers(lab.VIP_PORT, 0.2) == host:
            return time.monotonic()
        time.sleep(0.01)
    raise TimeoutError(f"the VIP did not answer from {host} within {timeout} s")


def kill_keepalived(host: lab.Host) -> None:
    """Node death: every keepalived process of the host SIGKILLed, its link down."""
    pids = []
    for name in ("keepalived.pid", "vrrp.pid"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            pids.append(int((host.workdir / name).read_text().split()[0]))
    lab.sh("ip", "-n", host.ns, "link", "set", "eth0", "down")
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def revive(host: lab.Host, advert: float) -> None:
    lab.sh("ip", "-n", host.ns, "addr", "del", f"{lab.VIP}/24", "dev", "eth0", check=False)
    lab.sh("ip", "-n", host.ns, "link", "set", "eth0", "up")
    for p in list(host.procs):
        if p.args[4:5] == ["keepalived"] and p.poll() is None:
            p.kill()
        if p.args[4:5] == ["keepalived"]:
            p.wait(5)
            host.procs.remove(p)
    for name in ("keepalived.pid", "vrrp.pid"):  # a killed child may linger as a zombie
        (host.workdir / name).unlink(missing_ok=True)
    host.start_keepalived(advert)


def measure(series: Series, runs: int, rng: random.Random, tmp: Path, port: int) -> None:
    # the standby runs without its promote policy: a node death of a few seconds would
    # otherwise (rightly) make it fence the primary, and the next run would have no primary
    pair = lab.Pair(tmp, port, series.advert, series.interval, BENCH_POLICIES, "")
    events = Events(port)
    try:
        pair.start()
        vip_on("pri", 30)
        # wait for the primary's first poll (its health) before injecting
        time.sleep(3 * series.interval + 2)
        for i in range(runs):
            time.sleep(0.1 + rng.random() * series.interval)
            seen = len(events.items)
            wall, t0 = time.time(), time.monotonic()
            pair.bmc.sim.set_bit(DELL.psus[0], PSU_FAILURE, True)
            t1 = None
            try:
                t1 = vip_on("sby", 20)
                series.failover.samples.append(t1 - t0)
                if pair.pri.has_vip() and pair.sby.has_vip():
                    series.split += 1
                engage = events.wait("engage", seen, 10)
                engaged = events.wait("engaged", seen, 10)
                degraded = events.wait("power degraded", seen, 10)
                series.decision.samples.append(engage["ts"] - wall)
                series.detection.samples.append(degraded["ts"] - wall)
                series.engine.samples.append(engaged["ts"] - degraded["ts"])
                what = f"VIP {(t1 - t0) * 1e3:.0f} ms, engage {(engage['ts'] - wall) * 1e3:.0f} ms"
            except TimeoutError as e:
                series.failover.missed += t1 is None
                what = f"missed ({e})"
            print(f"  {series.name} PSU run {i + 1}/{runs}: {what}", flush=True)
            seen = len(events.items)
            pair.bmc.sim.set_bit(DELL.psus[0], PSU_FAILURE, False)
            events.wait("released", seen, 20)
            vip_on("pri", 20)
        for i in range(runs):
            time.sleep(0.1 + rng.random() * series.advert)
            t0 = time.monotonic()
            kill_keepalived(pair.pri)
            try:
                series.node_death.samples.append(vip_on("sby", 20) - t0)
            except TimeoutError:
                series.node_death.missed += 1
            revive(pair.pri, series.advert)
            vip_on("pri", 30)
            print(
                f"  {series.name} node death run {i + 1}/{runs}: "
                f"{series.node_death.samples[-1] * 1e3:.0f} ms",
                flush=True,
            )
    finally:
        events.close()
        pair.close()


def row(name: str, d: h.Dist, target: str, ok: bool | None) -> str:
    verdict = "" if ok is None else (" — met" if ok else " — ***missed***")
    return f"| {name} | {d.summary_ms()} | {target}{verdict} |"


def run(runs: int = 20, quick: bool = False, seed: int | None = None) -> str:
    why = lab.available()
    if why:
        raise SystemExit(f"bench: the promotion part {why}")
    seed = seed if seed is not None else random.randrange(2**32)
    rng = random.Random(seed)
    info = {"machine": ", ".join(f"{k} {v}" for k, v in h.machine().items())}
    load_start = h.loadavg()
    series = [Series("advert_int 0.1, poll 0.5 s", 0.1, 0.5)]
    if not quick:
        series.append(Series("advert_int 1, poll 1 s", 1.0, 1.0))
    started = time.monotonic()
    with (
        tempfile.TemporaryDirectory(prefix="hotspare-bench-promotion-") as tmp,
        lab.Network(),
        lab.broker() as broker,
    ):
        for i, s in enumerate(series):
            d = Path(tmp) / f"s{i}"
            d.mkdir()
            measure(s, runs, rng, d, broker.port)
    elapsed = time.monotonic() - started
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    lines = [
        f"## {stamp} — promotion run{' (quick)' if quick else ''} ({runs} runs per series)",
        "",
        "| measure | median / p90 / p99 / max | target |",
        "|---|---|---|",
    ]
    for s in series:
        target = s.interval + 0.5
        fast = s.advert < 0.5  # the target is stated for sub-second adverts
        lines.append(
            row(
                f"{s.name}: PSU failure -> VIP answering on the standby",
                s.failover,
                f"p99 <= poll + 0.5 s = {target * 1e3:.0f} ms"
                if fast
                else "(none: VRRP's master-down timer alone is about 3.6 s)",
                (bool(s.failover.samples) and s.failover.pct(99) <= target) if fast else None,
            )
        )
        for label, dist in (
            ("injection -> power degraded transition (detection)", s.detection),
            ("that transition -> action done (engine + executor)", s.engine),
            ("injection -> the agent's engage decision", s.decision),
        ):
            lines.append(row(f"{s.name}: of which {label}", dist, "", None))
        lines.append(
            row(f"{s.name}: keepalived node death (SIGKILL + link down)", s.node_death, "", None)
        )
        lines.append(
            f"| {s.name}: samples with the VIP on both hosts | {s.split} of "
            f"{len(s.failover.samples)} | 0 — {'met' if s.split == 0 else '***missed***'} |"
        )
    lines.append("")
    info["load average (1/5/15 min) at start / end"] = f"{load_start} / {h.loadavg()}"
    info["run"] = f"{elapsed:.0f} s, seed {seed}"
    medians = [statistics.median(s.failover.samples) for s in series if s.failover.samples]
    if medians:
        info["notes"] = (
            "keepalived 2.2.7 (Debian), VRRP v3, priorities 150/100, track_file weight 1; "
            "the primary writes -100 on power degraded"
        )
    lines += [f"- {k}: {v}" for k, v in info.items()]
    return "\n".join(lines) + "\n"


def main(quick: bool, runs: int | None, seed: int | None, record: bool, results: Path) -> int:
    text = run(runs or (5 if quick else 20), quick, seed)
    print()
    print(text)
    if record:
        with results.open("a") as f:
            f.write("\n" + text)
        print(f"bench: appended to {results}", file=sys.stderr)
    return 0

#!/usr/bin/env python3
"""The central service's benchmark: ingest throughput beside a bare paho subscriber, memory per
1 000 hosts, the fleet API at 10 000 hosts, and state-change-to-browser latency.

    .venv/bin/python bench/centralbench.py            # about 2 minutes
    .venv/bin/python bench/centralbench.py --hosts 2000 --no-record

A benchmark, not a test: nothing is asserted; targets are labelled met or missed and the table
is appended, with the date and the machine, to bench/RESULTS.md. What each figure means:
bench/README.md ("Central service").
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing as mp
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))

import harness as h  # noqa: E402
import paho.mqtt.client as mqtt  # noqa: E402
from paho.mqtt.enums import CallbackAPIVersion  # noqa: E402

from agent import wire  # noqa: E402
from agent.localbroker import LocalBroker  # noqa: E402
from agent.model import GroupState, HostHealth, Role  # noqa: E402
from tests.central_peer import CentralThread, psu_pair, write_config  # noqa: E402

RESULTS = BENCH / "RESULTS.md"
GROUPS = 8
STATES = ("redundant", "degraded")
KEEPALIVE = 60  # both rate subscribers (paho's default)


def group_messages(hosts: int, rounds: int) -> list[tuple[str, bytes]]:
    """``rounds`` state changes of every group of every host, as the agents send them."""
    out = []
    seq = 0
    now = time.time()
    for r in range(rounds):
        for i in range(hosts):
            host = f"h{i:05d}"
            for gno in range(GROUPS):
                g, _ = psu_pair(STATES[(r + gno + i) % 2], f"g{gno}")
                seq += 1
                doc = {"schema": 1, "ts": now, "seq": seq, "site": "bench", "host": host}
                out.append(
                    (
                        f"hotspare/v1/bench/{host}/groups/g{gno}",
                        wire.encode({**doc, **wire.group(g)}),
                    )
                )
    return out


def health_payload(i: int, degraded: bool = False) -> tuple[str, bytes]:
    gs, cs = [], []
    for gno in range(GROUPS):
        g, c = psu_pair("degraded" if degraded and gno == 0 else "redundant", f"g{gno}")
        gs.append(g)
        cs += c
    state = GroupState.DEGRADED if degraded else GroupState.REDUNDANT
    hh = HostHealth("bench", f"h{i:05d}", state, Role.NONE, time.time(), tuple(gs), tuple(cs))
    return f"hotspare/v1/bench/h{i:05d}/health", wire.encode(wire.health(hh, i + 1, time.time()))


def publish(port: int, messages: list[tuple[str, bytes]], ready) -> None:
    """A QoS 1 publisher in its own process (so it does not share the subscriber's GIL)."""
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-pub", protocol=mqtt.MQTTv5)
    c.max_queued_messages_set(0)
    c.connect("127.0.0.1", port)
    c.loop_start()
    ready.wait()
    infos = [c.publish(t, p, qos=1) for t, p in messages]
    for info in infos[-100:]:
        info.wait_for_publish(120)
    c.disconnect()
    c.loop_stop()


class Arrivals:
    """A callback that times the first and the last of ``n`` arrivals (paho's on_message, or
    the ingest's transition subscriber): no polling from another thread."""

    def __init__(self, n: int) -> None:
        self.n, self.count, self.first, self.last = n, 0, 0.0, 0.0
        self.done = threading.Event()

    def __call__(self, *_: object) -> None:
        now = time.perf_counter()
        if self.count == 0:
            self.first = now
        self.count += 1
        self.last = now
        if self.count >= self.n:
            self.done.set()

    def rate(self) -> float:
        return (self.count - 1) / (self.last - self.first)


def bare_rate(port: int, messages: list[tuple[str, bytes]]) -> tuple[float, float]:
    """Messages a second, and the subscribing process's CPU seconds per message."""
    n = len(messages)
    arrivals = Arrivals(n)

    sub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-bare", protocol=mqtt.MQTTv5)
    sub.on_message = arrivals
    subscribed = threading.Event()
    sub.on_subscribe = lambda *a: subscribed.set()
    sub.connect("127.0.0.1", port, keepalive=KEEPALIVE)
    sub.loop_start()
    sub.subscribe("hotspare/v1/#", qos=1)
    subscribed.wait(10)
    ready = mp.Event()
    p = mp.Process(target=publish, args=(port, messages, ready))
    p.start()
    cpu = time.process_time()
    ready.set()
    arrivals.done.wait(300)
    cpu = time.process_time() - cpu
    p.join(60)
    sub.disconnect()
    sub.loop_stop()
    return arrivals.rate(), cpu / n


def central_rate(
    port: int, messages: list[tuple[str, bytes]], tmp: Path
) -> tuple[float, float, int]:
    """Each message here is a state change, so the transitions the ingest hands to its
    subscribers (after decoding, validating, updating the state and queueing the history
    write) are timed as the bare subscriber's messages are: in the callback, no polling."""
    n = len(messages)
    arrivals = Arrivals(n)

    tmp.mkdir(exist_ok=True)
    cfg = write_config(tmp / "rate.toml", port, str(tmp / "rate.db"))
    # the bare subscriber's keepalive (paho's default), not the tests' 5 s: under load a 5 s
    # keepalive ends connections mid-run and the clean session loses what was in flight
    cfg.write_text(cfg.read_text().replace("keepalive = 5\n", f"keepalive = {KEEPALIVE}\n"))
    c = CentralThread(cfg, subscribers=[arrivals]).start()
    try:
        ready = mp.Event()
        p = mp.Process(target=publish, args=(port, messages, ready))
        p.start()
        cpu = time.process_time()
        ready.set()
        arrivals.done.wait(300)
        cpu = time.process_time() - cpu
        p.join(60)
        return arrivals.rate(), cpu / n, c.central.ingest.counters["transitions"]
    finally:
        c.stop()


def memory_child(hosts: int, out) -> None:
    """RSS of a fresh Fleet + Ingest (SQLite) before and after ``hosts`` hosts' state."""
    from central.history import History
    from central.ingest import Ingest
    from central.state import Fleet

    tmp = Path(tempfile.mkdtemp(prefix="hotspare-bench-"))
    history = History.open(str(tmp / "m.db"))
    ingest = Ingest(Fleet(90), history, "hotspare/v1", 1 << 20)
    payloads = [health_payload(i) for i in range(200)]  # built first: not counted below
    before = h.status_kb(os.getpid())["VmRSS"]
    for i in range(hosts):
        topic, payload = payloads[i % 200]
        topic = topic.replace(f"h{i % 200:05d}", f"h{i:05d}")
        doc = json.loads(payload)
        doc["host"] = f"h{i:05d}"
        ingest.handle(topic, wire.encode(doc), retained=True)
    history.commit()
    after = h.status_kb(os.getpid())["VmRSS"]
    history.close()
    shutil.rmtree(tmp, ignore_errors=True)
    out.put((before / 1024, after / 1024))


def fleet_api(port: int, tmp: Path, hosts: int) -> tuple[dict[str, float], CentralThread]:
    # the simulated hosts send no heartbeats: a timeout longer than the bench keeps them online
    cfg = write_config(tmp / "api.toml", port, str(tmp / "api.db"), "heartbeat_timeout = 3600\n")
    c = CentralThread(cfg).start()
    payloads = [health_payload(i, degraded=i % 50 == 0) for i in range(hosts)]

    def load(chunk):
        for topic, payload in chunk:
            c.central.ingest.handle(topic, payload, retained=True)

    t0 = time.perf_counter()
    for i in range(0, len(payloads), 200):  # in slices, so the service's loop keeps turning
        c.call(lambda i=i: load(payloads[i : i + 200]), timeout=120)
    out = {"load": time.perf_counter() - t0}
    urls = {
        "summary": "/api/summary",
        "fleet page of 50 (the first page)": "/api/fleet?limit=50",
        "fleet page of 100": "/api/fleet?limit=100",
        "fleet page of 1000": "/api/fleet?limit=1000",
        "degraded, worst first": "/api/fleet?state=degraded&sort=state&limit=100",
        "host detail": "/api/hosts/bench/h00050",
    }
    for name, path in urls.items():
        samples = []
        for _ in range(15):
            t0 = time.perf_counter()
            with urllib.request.urlopen(c.url + path, timeout=30) as r:
                r.read()
            samples.append(time.perf_counter() - t0)
        out[name] = statistics.median(samples)
    return out, c


PAGE_MARKS = """() => {
    const m = Object.fromEntries(performance.getEntriesByType("mark").map((e) => [e.name, e.startTime]));
    return [m["fleet:request"], m["fleet:data"], m["fleet:shown"], m["fleet:painted"]];
}"""


def page_load(browser, url: str, rows: int) -> tuple[float, list[float]]:
    """One cold navigation (a new browser context: nothing cached) to ``url`` until the
    summary and ``rows`` rows of the matrix are in the DOM (checked at each animation frame).
    Returns the wall time and the page's own marks (ms since its navigation started): the
    request sent, the JSON parsed, the DOM built, the frame after it (style, layout, paint)."""
    ctx = browser.new_context(viewport={"width": 1400, "height": 900})
    try:
        page = ctx.new_page()
        t0 = time.perf_counter()
        page.goto(url)
        page.wait_for_function(
            "n => document.querySelector('#summary table') !== null"
            " && document.querySelectorAll('#matrix tbody tr').length === n",
            arg=rows,
        )
        wall = time.perf_counter() - t0
        return wall, page.evaluate(PAGE_MARKS)
    finally:
        ctx.close()


def browser_figures(
    c: CentralThread, port: int, changes: int, runs: int
) -> tuple[dict[str, tuple[list[float], list[list[float]]]], list[float]]:
    from playwright.sync_api import sync_playwright

    from tests.conftest import CHROMIUM, LAUNCH_ARGS

    pages = {
        # what an operator opens: the summary and the first page (sized for the screen: 50 rows)
        "first": (f"{c.url}/#/", 50),
        "1000": (f"{c.url}/#/?limit=1000", 1000),
    }
    loads: dict[str, tuple[list[float], list[list[float]]]] = {}
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS, headless=True)
        page_load(b, *pages["first"])  # warm-up: Chromium's own first start of a renderer
        for name, (url, rows) in pages.items():
            walls, marks = [], []
            for _ in range(runs):
                wall, m = page_load(b, url, rows)
                walls.append(wall)
                marks.append(m)
            loads[name] = (walls, marks)
        page = b.new_page(viewport={"width": 1400, "height": 900})
        page.goto(f"{c.url}/#/?limit=1000")
        page.wait_for_function(
            "() => document.querySelectorAll('#matrix tbody tr').length === 1000"
        )
        page.locator("#live.on").wait_for()
        page.evaluate(
            """() => { window.__seen = {}; new MutationObserver(() => {
                const td = document.querySelector('tr[data-host="bench/h00001"] td[data-group="g1"]');
                if (td && !window.__seen[td.dataset.state + td.title])
                    window.__seen[td.dataset.state + td.title] = Date.now() / 1000;
            }).observe(document.getElementById('matrix'),
                       {subtree: true, childList: true, attributes: true, characterData: true}); }"""
        )
        lat = []
        seq = 10_000_000
        for k in range(changes):
            state = "degraded" if k % 2 == 0 else "redundant"
            g, _ = psu_pair(state, "g1")
            g = g.__class__(**{**{f: getattr(g, f) for f in g.__slots__}, "reason": f"change {k}"})
            seq += 1
            doc = {"schema": 1, "ts": time.time(), "seq": seq, "site": "bench", "host": "h00001"}
            payload = wire.encode({**doc, **wire.group(g)})
            pub = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
            pub.connect("127.0.0.1", port)
            pub.loop_start()
            sent = time.time()
            pub.publish("hotspare/v1/bench/h00001/groups/g1", payload, qos=1).wait_for_publish(10)
            key = f"{state}g1: {state}"
            page.wait_for_function(f"() => window.__seen[{json.dumps(key)}] !== undefined")
            seen = page.evaluate(f"() => window.__seen[{json.dumps(key)}]")
            page.evaluate(f"() => delete window.__seen[{json.dumps(key)}]")
            lat.append(seen - sent)
            pub.disconnect()
            pub.loop_stop()
            time.sleep(0.3)
        b.close()
    return loads, lat


def load_rows(hosts: int, loads: dict, runs: int) -> list[tuple[str, str, str, str]]:
    """The figure is the page's own: from its navigation start to the frame after the summary
    and the rows went into the DOM (what the operator waits for). The wall time around
    Playwright's ``goto`` and ``wait_for_function`` adds the driver's round trips and is shown
    beside it."""
    rows = []
    what = {
        "first": f"fleet page in Chromium: summary of {hosts:,} hosts + first page (50 rows)",
        "1000": f"fleet page in Chromium: summary + 1 000 of {hosts:,} hosts",
    }
    for name, (walls, marks) in loads.items():
        shown = [m[3] / 1000 for m in marks]
        req, data, built = (statistics.median(m[i] for m in marks) for i in range(3))
        rows.append(
            (
                what[name],
                f"median {statistics.median(shown) * 1000:.0f} ms, max {max(shown) * 1000:.0f} ms",
                f"{runs} cold navigations (new browser context each); navigation start to the"
                f" frame after the summary and the rows went into the DOM; medians inside the"
                f" page: request sent {req:.0f} ms, JSON parsed {data:.0f} ms, DOM built"
                f" {built:.0f} ms; with the driver's round trips (goto to the rows seen):"
                f" median {statistics.median(walls) * 1000:.0f} ms, max {max(walls) * 1000:.0f} ms",
                "met" if max(shown) < 1 else "**missed** (< 1 s)",
            )
        )
    return rows


def pct(xs: list[float], p: float) -> float:
    return h.Dist(samples=list(xs)).pct(p)


def rate_rows(port: int, tmp: Path, args: argparse.Namespace) -> list[tuple[str, ...]]:
    """Bare paho vs the central ingest, ``--pairs`` times (the median pair is shown)."""
    messages = group_messages(args.rate_hosts, 2)
    pairs = []
    for k in range(args.pairs):
        bare, bare_cpu = bare_rate(port, messages)
        rate, cpu, transitions = central_rate(port, messages, tmp / f"p{k}")
        pairs.append((rate / bare, bare, rate, transitions, bare_cpu, cpu))
        print(
            f"pair {k + 1}: bare {bare:,.0f} msg/s ({bare_cpu * 1e6:.0f} us CPU a message), "
            f"central {rate:,.0f} msg/s ({cpu * 1e6:.0f} us), {100 * rate / bare:.0f} %, "
            f"load {h.loadavg()}",
            flush=True,
        )
    _, bare, rate, transitions, bare_cpu, cpu = sorted(pairs)[len(pairs) // 2]
    share = 100 * rate / bare
    shares = ", ".join(f"{100 * r[0]:.0f} %" for r in pairs)
    return [
        (
            "bare paho subscriber, QoS 1 (stock paho-mqtt)",
            f"{bare:,.0f} msg/s",
            f"{len(messages):,} group messages; {bare_cpu * 1e6:.0f} us CPU a message",
            "",
        ),
        (
            "central ingest (decode, validate, state, SQLite history)",
            f"{rate:,.0f} msg/s",
            f"{share:.0f} % of bare (median of {len(pairs)} pair(s): {shares}); "
            f"{transitions:,} transitions recorded; {cpu * 1e6:.0f} us CPU a message",
            "met" if share >= 80 else "**missed** (>= 80 %)",
        ),
    ]


def memory_rows(args: argparse.Namespace) -> list[tuple[str, ...]]:
    q: mp.Queue = mp.Queue()
    child = mp.Process(target=memory_child, args=(args.hosts, q))
    child.start()
    before, after = q.get(timeout=600)
    child.join(60)
    per_k = (after - before) / (args.hosts / 1000)
    return [
        (
            f"memory, {args.hosts:,} hosts x {GROUPS} groups, 16 components",
            f"{per_k:.1f} MB / 1 000 hosts",
            f"RSS {before:.0f} -> {after:.0f} MB",
            "met" if per_k <= 50 else "**missed** (<= 50 MB)",
        )
    ]


def page_rows(args: argparse.Namespace, port: int, tmp: Path) -> list[tuple[str, ...]]:
    """The API at ``--hosts`` hosts, the page in Chromium, state change to browser."""
    api, c = fleet_api(port, tmp, args.hosts)
    load = api.pop("load")
    rows: list[tuple[str, ...]] = [
        (
            f"{args.hosts:,} hosts' first health through the ingest",
            f"{args.hosts / load:,.0f} health documents/s",
            f"{load:.1f} s; each a first sight: {GROUPS + 1} transitions written",
            "",
        )
    ]
    try:
        for name, secs in api.items():
            rows.append(
                (
                    f"API at {args.hosts:,} hosts: {name}",
                    f"{secs * 1000:.1f} ms",
                    "median of 15",
                    "",
                )
            )
        loads, lat = browser_figures(c, port, args.changes, args.runs)
    finally:
        c.stop()
    rows += load_rows(args.hosts, loads, args.runs)
    rows.append(
        (
            "state change to browser (publish to DOM change)",
            f"median {statistics.median(lat) * 1000:.0f} ms, p99 {pct(lat, 99) * 1000:.0f} ms",
            f"n = {len(lat)}, max {max(lat) * 1000:.0f} ms",
            "met" if pct(lat, 99) <= 1 else "**missed** (p99 <= 1 s)",
        )
    )
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--hosts", type=int, default=10_000, help="hosts for the API and memory figures"
    )
    ap.add_argument("--rate-hosts", type=int, default=2_500, help="hosts x 8 groups for the rate")
    ap.add_argument("--changes", type=int, default=30, help="state changes for the browser latency")
    ap.add_argument("--runs", type=int, default=9, help="cold navigations per page figure")
    ap.add_argument(
        "--pairs", type=int, default=1, help="rate: bare/central pairs (the median pair is shown)"
    )
    only = ap.add_mutually_exclusive_group()
    only.add_argument("--rate-only", action="store_true", help="the rate figures alone")
    only.add_argument(
        "--page-only",
        action="store_true",
        help="only the API, page and latency figures (no rate, no memory)",
    )
    ap.add_argument("--no-record", action="store_true", help="print only")
    args = ap.parse_args(argv)
    load_start = h.loadavg()
    tmp = Path(tempfile.mkdtemp(prefix="hotspare-bench-central-"))
    rows = []
    try:
        with LocalBroker(listener="allow_anonymous true\nmax_queued_messages 0") as broker:
            if not args.page_only:
                rows += rate_rows(broker.port, tmp, args)
            if not (args.page_only or args.rate_only):
                rows += memory_rows(args)
            if not args.rate_only:
                rows += page_rows(args, broker.port, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    table = "| figure | value | detail | target |\n|---|---|---|---|\n" + "".join(
        f"| {' | '.join(r)} |\n" for r in rows
    )
    info = {**h.machine(), "load average at start": load_start, "at the end": h.loadavg()}
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    part = (
        " (API, page and latency only)"
        if args.page_only
        else " (ingest rate only)"
        if args.rate_only
        else ""
    )
    text = f"## {stamp} — central service{part}\n\n"
    text += "".join(f"- {k}: {v}\n" for k, v in info.items())
    text += "\n" + table
    print(text)
    if not args.no_record:
        with RESULTS.open("a") as f:
            f.write("\n" + text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

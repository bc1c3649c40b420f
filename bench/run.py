#!/usr/bin/env python3
"""hotspare benchmarks: md and IPMI detection latency, footprint, sweep time, with the peers.

    python3 bench/run.py                # full run (md and IPMI), about 18 minutes
    python3 bench/run.py --quick        # short run, about 5 minutes
    python3 bench/run.py --only ipmi    # one part alone: md (node_exporter) or ipmi
    python3 bench/run.py --only net     # link-loss latency (veth in a namespace), about 2 minutes
    python3 bench/run.py --only snmp    # the SNMP sweep and trap latency (bench/snmpbench.py)
    python3 bench/run.py --only central # the central service (bench/centralbench.py)

Prints a table and appends it, with the date and the machine, to bench/RESULTS.md.
A benchmark, not a test: nothing is asserted on time; targets are labelled met or missed.
What each figure means: bench/README.md.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import dataclasses
import importlib.util
import json
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import harness as h
import ipmibench as ib
import netbench as nb
import paho.mqtt

import agent
from agent.localbroker import LocalBroker, free_port, mosquitto_binary

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "RESULTS.md"
SITE = "bench"
TARGET_LATENCY_SLACK = 0.250  # p99 <= interval + 250 ms
TARGET_RSS_MB = 40.0


@dataclass(frozen=True)
class Plan:
    mode: str
    runs: int  # full runs (degrade + recover) at interval 1 s
    runs_half: int  # full runs at interval 0.5 s (0: skipped)
    settle: float  # seconds after the first health message before an idle window
    window: float  # seconds of an idle window
    scrapes: int = 50
    status_runs: int = 10


PLANS = {
    "full": Plan("full", runs=60, runs_half=60, settle=5.0, window=30.0),
    "quick": Plan("quick", runs=10, runs_half=10, settle=2.0, window=10.0),
}


@dataclass
class Ctx:
    tmp: Path
    procs: h.Procs
    broker: LocalBroker
    mdstat: Path
    rng: random.Random
    node_exporter: str | None
    notes: list[str] = field(default_factory=list)

    def progress(self, text: str) -> None:
        print(f"bench: {text}", file=sys.stderr, flush=True)


# --- the agent ------------------------------------------------------------------------------


@dataclass
class RunningAgent:
    proc: subprocess.Popen[bytes]
    base: str
    log: Path
    config: Path


def start_agent(ctx: Ctx, name: str, interval: float, importtime: bool = False) -> RunningAgent:
    d = ctx.tmp / name
    d.mkdir()
    cfg = d / "agent.toml"
    cfg.write_text(
        f'[agent]\nsite = "{SITE}"\nhost = "{name}"\ninterval = {interval!r}\njitter = 0.0\n'
        f'state_dir = "{d / "state"}"\n'
        f'[mqtt]\nurl = "{ctx.broker.url}"\n'
        f'[[collectors.mdstat]]\npath = "{ctx.mdstat}"\n'
    )
    argv = [sys.executable, *(["-X", "importtime"] if importtime else [])]
    argv += ["-m", "agent.cli", "agent", "--config", str(cfg)]
    log = d / "agent.log"
    proc = ctx.procs.start(argv, log, cwd=d)
    return RunningAgent(proc, f"hotspare/v1/{SITE}/{name}", log, cfg)


def wait_ready(agent_: RunningAgent, changes: h.Changes, timeout: float = 30.0) -> None:
    """Until the agent's retained health shows md0 (it polled and published)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if agent_.proc.poll() is not None:
            break
        if changes.wait(["health"], 0.0, "redundant", 0.2)["health"] is not None:
            return
    tail = agent_.log.read_text(errors="replace")[-2000:]
    raise RuntimeError(f"the agent did not publish its health within {timeout:g} s:\n{tail}")


def imported_modules(log: Path) -> set[str]:
    """Module names from the ``-X importtime`` lines of an agent's log."""
    names = set()
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("import time:") and line.count("|") == 2:
            names.add(line.rsplit("|", 1)[1].strip())
    names.discard("imported package")
    return names


# --- 1. detection latency -------------------------------------------------------------------


@dataclass
class Latency:
    interval: float
    dists: dict[tuple[str, str], h.Dist]  # (source, state) -> latencies
    modules: set[str]
    rss_after: dict[str, int]
    pipeline: dict[str, h.Dist]  # "events" / "health": from the agent's evaluation to arrival
    scrape_errors: int = 0


def latency(ctx: Ctx, interval: float, runs: int, scrape: bool) -> Latency:
    name = f"latency-{interval:g}s".replace(".", "_")
    changes = h.Changes()
    h.write_atomically(ctx.mdstat, h.MDSTAT["redundant"])
    agent_ = start_agent(ctx, name, interval, importtime=True)
    sub = scraper = None
    sources = ["events", "health"]
    ne_proc = None
    try:
        sub = h.Subscriber("127.0.0.1", ctx.broker.port, agent_.base, changes)
        if scrape and ctx.node_exporter:
            port = free_port()
            argv, note = h.node_exporter_argv(ctx.node_exporter, ctx.mdstat.parent, port)
            if argv is None:
                ctx.notes.append(note)
            else:
                ne_proc = ctx.procs.start(argv, ctx.tmp / f"node_exporter-{name}.log")
                h.wait_http(port)
                scraper = h.Scraper(port, 1.0, changes)
                scraper.start()
                sources.append("scrape")
        wait_ready(agent_, changes)
        if scraper is not None:
            changes.wait(["scrape"], 0.0, "redundant", 10)
        # A random phase needs a random wait at least one period wide (agent and scraper).
        period = max(interval, 1.0 if scraper else 0.0)
        timeout = 3 * period + 5
        dists = {(s, st): h.Dist() for s in sources for st in ("degraded", "redundant")}
        for run in range(runs):
            for state in ("degraded", "redundant"):
                time.sleep(ctx.rng.uniform(0.1, 0.1 + period))
                t_w = h.write_atomically(ctx.mdstat, h.MDSTAT[state])
                h.record_change(dists, changes, sources, t_w, state, timeout)
            if (run + 1) % 10 == 0 or run + 1 == runs:
                ctx.progress(f"latency at interval {interval:g} s: {run + 1}/{runs} runs")
        rss_after = h.status_kb(agent_.proc.pid)
        pipeline = sub.pipeline
        errors = scraper.errors if scraper else 0
    finally:
        if scraper is not None:
            scraper.stop()
        if sub is not None:
            sub.stop()
        ctx.procs.stop(agent_.proc)
        if ne_proc is not None:
            ctx.procs.stop(ne_proc)
    modules = imported_modules(agent_.log)
    return Latency(interval, dists, modules, rss_after, pipeline, errors)


# --- 2. idle footprint ----------------------------------------------------------------------


def idle_agent(ctx: Ctx, interval: float, plan: Plan) -> h.Usage:
    h.write_atomically(ctx.mdstat, h.MDSTAT["redundant"])
    agent_ = start_agent(ctx, f"idle-{interval:g}s".replace(".", "_"), interval)
    try:
        changes = h.Changes()
        sub = h.Subscriber("127.0.0.1", ctx.broker.port, agent_.base, changes)
        try:
            wait_ready(agent_, changes)
        finally:
            sub.stop()
        ctx.progress(f"idle agent at interval {interval:g} s: {plan.settle + plan.window:g} s")
        time.sleep(plan.settle)
        return h.measure_usage(agent_.proc.pid, plan.window)
    finally:
        ctx.procs.stop(agent_.proc)


def idle_node_exporter(ctx: Ctx, scrape_every: float, plan: Plan) -> h.Usage | None:
    """A fresh node_exporter, scraped every ``scrape_every`` seconds (0: never) in the window."""
    assert ctx.node_exporter is not None
    h.write_atomically(ctx.mdstat, h.MDSTAT["redundant"])
    port = free_port()
    argv, note = h.node_exporter_argv(ctx.node_exporter, ctx.mdstat.parent, port)
    if argv is None:
        ctx.notes.append(note)
        return None
    tag = f"every {scrape_every:g} s" if scrape_every else "never"
    ctx.progress(f"idle node_exporter scraped {tag}: {plan.settle + plan.window:g} s")
    proc = ctx.procs.start(argv, ctx.tmp / f"node_exporter-idle-{scrape_every:g}.log")
    scraper = None
    try:
        h.wait_http(port)  # one scrape, as the ready check; then it settles
        if scrape_every:
            scraper = h.Scraper(port, scrape_every, None)
            scraper.start()
        time.sleep(plan.settle)
        return h.measure_usage(proc.pid, plan.window)
    finally:
        if scraper is not None:
            scraper.stop()
        ctx.procs.stop(proc)


def module_check() -> tuple[list[str], dict[str, bool]]:
    """Heavy optional libraries imported by the agent's modules, and whether each is installed."""
    code = (
        "import agent.daemon, agent.publisher, collectors.mdstat, sys; "
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {h.HEAVY_MODULES!r}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    loaded = ast.literal_eval(out.stdout.strip())
    installed = {m: importlib.util.find_spec(m) is not None for m in h.HEAVY_MODULES}
    return loaded, installed


# --- 3. one-shot --------------------------------------------------------------------------


def time_command(argv: list[str], n: int) -> tuple[float, str]:
    times = []
    out = ""
    for _ in range(n):
        t0 = time.perf_counter()
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        times.append(time.perf_counter() - t0)
        if done.returncode != 0:
            raise RuntimeError(f"{argv} exited with {done.returncode}: {done.stderr[-500:]}")
        out = done.stdout
    return statistics.median(times), out


@dataclass
class OneShot:
    status: float  # median wall time of `hotspare status --json`
    status_sees: str | None
    python_startup: float  # `python3 -c pass`
    python_bare_startup: float  # `python3 -S -c pass`
    scrape: float | None = None  # median time of one /metrics scrape
    scrape_bytes: int = 0
    scrape_sees: str | None = None


def one_shot(ctx: Ctx, plan: Plan) -> OneShot:
    h.write_atomically(ctx.mdstat, h.MDSTAT["degraded"])
    cfg = ctx.tmp / "status.toml"
    cfg.write_text(f'[agent]\nsite = "{SITE}"\n[[collectors.mdstat]]\npath = "{ctx.mdstat}"\n')
    script, note = h.which_hotspare()
    if note:
        ctx.notes.append(note)
    ctx.progress(f"one-shot: hotspare status --json x{plan.status_runs}, {plan.scrapes} scrapes")
    wall, out = time_command([*script, "status", "--json", "--config", str(cfg)], plan.status_runs)
    groups = {g["id"]: g["state"] for g in json.loads(out)["groups"]}
    res = OneShot(
        status=wall,
        status_sees=groups.get(h.GROUP),
        python_startup=time_command([sys.executable, "-c", "pass"], plan.status_runs)[0],
        python_bare_startup=time_command([sys.executable, "-S", "-c", "pass"], 5)[0],
    )
    if ctx.node_exporter:
        port = free_port()
        argv, _note = h.node_exporter_argv(ctx.node_exporter, ctx.mdstat.parent, port)
        if argv is not None:
            proc = ctx.procs.start(argv, ctx.tmp / "node_exporter-scrape.log")
            try:
                h.wait_http(port)
                scrape = h.Scrape(port)
                try:
                    text = scrape.get()  # warm the kept-alive connection
                    times = []
                    for _ in range(plan.scrapes):
                        t0 = time.perf_counter()
                        text = scrape.get()
                        times.append(time.perf_counter() - t0)
                finally:
                    scrape.close()
                res.scrape = statistics.median(times)
                res.scrape_bytes = len(text)
                res.scrape_sees = h.md0_state_from_metrics(text)
            finally:
                ctx.procs.stop(proc)
    h.write_atomically(ctx.mdstat, h.MDSTAT["redundant"])
    return res


@dataclass
class Results:
    modules: list[str]  # heavy modules imported by the agent's modules
    installed: dict[str, bool]
    latency: list[Latency]
    live_modules: list[str]  # heavy modules imported by the running agents
    idle: dict[float, h.Usage]  # interval -> usage
    peer_idle: dict[float, h.Usage | None]  # scrape period (0: never) -> usage; {}: no peer
    one_shot: OneShot


# --- the report -----------------------------------------------------------------------------


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:.0f} ms" if seconds >= 0.01 else f"{seconds * 1e3:.1f} ms"


def met(ok: bool) -> str:
    return "met" if ok else "**missed**"


def latency_rows(lat: Latency, with_peer: bool) -> list[tuple[str, str, str, str]]:
    limit = lat.interval + TARGET_LATENCY_SLACK
    rows = []
    for state, what in (("degraded", "detection"), ("redundant", "recovery")):
        d = lat.dists["events", state]
        peer = "—"
        if with_peer and ("scrape", state) in lat.dists:
            peer = lat.dists["scrape", state].summary_ms() + " (scrape every 1 s)"
        target = f"p99 <= {limit * 1e3:.0f} ms"
        if d.samples:
            target += f": {met(d.pct(99) <= limit and not d.missed)}"
        rows.append(
            (
                f"{what} latency, interval {lat.interval:g} s: `events` (median / p90 / p99 / max)",
                d.summary_ms(),
                peer,
                target,
            )
        )
    for state in ("degraded", "redundant"):
        d = lat.dists["health", state]
        rows.append(
            (
                f"retained `health` shows md0 {state}, interval {lat.interval:g} s",
                d.summary_ms(),
                "—",
                "—",
            )
        )
    rows.append(
        (
            f"of which after the poll, interval {lat.interval:g} s: from the agent's evaluation "
            "(the payload's `ts`) to arrival",
            f"`events` {lat.pipeline['events'].summary_ms(1)}; "
            f"`health` {lat.pipeline['health'].summary_ms(1)}",
            "—",
            "—",
        )
    )
    return rows


def usage_cell(u: h.Usage | None, what: str) -> str:
    if u is None:
        return "skipped"
    if what == "rss":
        return f"{u.rss_mb:.1f} MB (peak in window {u.rss_max_mb:.1f}, VmHWM {u.hwm_mb:.1f})"
    return f"{u.cpu_percent:.2f} % of a core ({u.window:.0f} s, {u.threads} threads)"


def build_table(r: Results) -> list[tuple[str, str, str, str]]:
    rows: list[tuple[str, str, str, str]] = []
    for lat in r.latency:
        rows += latency_rows(lat, with_peer=True)
    for interval, u in sorted(r.idle.items()):
        p = r.peer_idle.get(interval)
        tag = f", scraped every {interval:g} s" if r.peer_idle else ""
        peer_cell = usage_cell if r.peer_idle else (lambda u, what: "skipped")
        rows.append(
            (
                f"RSS at idle, interval {interval:g} s (peer{tag})",
                usage_cell(u, "rss"),
                peer_cell(p, "rss"),
                f"<= {TARGET_RSS_MB:g} MB: {met(max(u.rss_max_mb, u.hwm_mb) <= TARGET_RSS_MB)}",
            )
        )
        rows.append(
            (
                f"CPU at idle, interval {interval:g} s (peer{tag})",
                usage_cell(u, "cpu"),
                peer_cell(p, "cpu"),
                "—",
            )
        )
    never = r.peer_idle.get(0.0)
    if never is not None:
        rows.append(
            (
                "peer never scraped: RSS / CPU",
                "—",
                f"{never.rss_mb:.1f} MB (VmHWM {never.hwm_mb:.1f}), "
                f"{never.cpu_percent:.2f} % of a core",
                "—",
            )
        )
    o = r.one_shot
    rows.append(
        (
            "one-shot read: `hotspare status --json` wall time (median of 10) "
            "vs one `/metrics` scrape (median of 50)",
            f"{ms(o.status)} (of which Python's own start {ms(o.python_startup)})",
            f"{ms(o.scrape)} ({o.scrape_bytes} bytes)" if o.scrape is not None else "skipped",
            "—",
        )
    )
    absent = [m for m in h.HEAVY_MODULES if not r.installed[m]]
    cell = f"imported by its modules: {', '.join(r.modules) or 'none'}; "
    cell += f"by the running agent: {', '.join(r.live_modules) or 'none'}"
    if absent:
        cell += f" ({', '.join(absent)} not installed here)"
    rows.append(
        (
            "pysnmp / pyghmi / prometheus_client / jsonschema in the agent",
            cell,
            "n/a (a Go binary)",
            f"none: {met(not r.modules and not r.live_modules)}",
        )
    )
    return rows


def markdown_table(rows: list[tuple[str, str, str, str]]) -> str:
    head = "| figure | hotspare | peer (node_exporter) | target |\n| --- | --- | --- | --- |\n"
    return head + "".join(f"| {a} | {b} | {c} | {d} |\n" for a, b, c, d in rows)


HEADER = """\
# hotspare benchmark results

Appended by `python3 bench/run.py` (one section per run; `--quick` runs say so). A benchmark, not a
test: nothing fails on time, the targets are labelled met or missed. How to run it and how to read
it: `bench/README.md`. All figures come from one machine at a time; compare runs on the same machine.

What each figure is:

- **detection latency** (`events`): from the moment the watched md status file shows a degraded md0
  (written to a temporary file and renamed over it; the clock is read right after the rename) to the
  arrival of the MQTT `events` message `type` transition, `scope` group, `id` md/md0, `to` degraded at
  a paho-mqtt subscriber on the same loopback mosquitto. Each change is written at a random phase of
  the agent's poll schedule. median / p90 / p99 / max over n changes. **Target: p99 <= interval +
  250 ms.**
- **recovery latency**: the same for the flip back to a clean array (`to` redundant).
- **retained `health`**: to the arrival of the retained `health` message whose md/md0 group shows the
  new state (published in the same evaluation as the event, without the outbox round trip).
- **peer latency** (node_exporter column): a scraper polls node_exporter's `/metrics` every 1 s, as
  Prometheus would with `scrape_interval: 1s`; from the rename to the end of the first scrape whose
  `node_md_disks` (failed > 0 or active < `node_md_disks_required`) shows the change. Real Prometheus
  setups scrape every 15-60 s and add rule evaluation, `for:` and Alertmanager's `group_wait`.
- **RSS at idle**: VmRSS of the process at the end of the window (after it settled), with the largest
  VmRSS sampled each second in the window and VmHWM (the peak since start, i.e. including imports).
  **Target: <= 40 MB** (the larger of peak and VmHWM is compared).
- **CPU at idle**: (utime + stime) over the window from /proc/<pid>/stat, as % of one core. The peer
  is scraped as often as the agent polls (the scraper's own CPU is not counted).
- **one-shot read**: median wall time of `hotspare status --json` (a new Python process that polls
  once and prints the health document) vs one scrape of a running node_exporter.
- **heavy modules**: `pysnmp`, `pyghmi`, `prometheus_client` and `jsonschema` must not be imported by an
  agent with only the mdstat collector, both by its modules and by the running agent (`-X importtime`).
  **Target: none.**

IPMI figures (`--only ipmi` runs them alone; a `### IPMI` table in the run's section), all against
OpenIPMI's `ipmi_sim` on 127.0.0.1 with the `dell_like` profile (14 sensors, unique PSU names):

- **first poll**: the collector's first `collect` in a fresh process (session, SDR, sensors, SEL),
  with the IPMI commands it sent. Peer: `ipmitool -I lanplus -C 3 ... sdr elist`, a new process each
  run (it reads the SDR every time).
- **cached sweep**: `collect` again on the kept session (16 IPMI commands on this profile):
  median / p90 / p99 / max, and the **stalls** (sweeps > 300 ms). Peer: FreeIPMI `ipmi-sensors
  -W opensesspriv` with a warm SDR cache, a new process each run. **Targets: median <= `ipmi-sensors`
  warm median; p99 <= 50 ms.**
- **cached sweep through a UDP relay**: the same through a relay adding 1 ms each way (the row gives
  the measured round trip), beside `ipmi-sensors` warm through the same relay; the targets are
  repeated for reference.
- **why sweeps stall**: `bench/ipmi_stalls.py` traces every IPMI command slower than 100 ms in
  the same number of cached sweeps, with the collector's fix for pyghmi's lost wake-up
  (`collectors/pyghmi_wakeup.py`) and without it, and counts them by cause.
- **PSU detection / recovery latency**: an agent (interval 1 s, jitter 0) polls the simulator; PSU 2's
  failure bit is set (cleared) on the simulator console at a random phase; to the `events` transition
  of group `power` to degraded (redundant) and to the retained `health` showing it. Configurations:
  the failure logged in the SEL (default), no SEL event (pure polling), no SEL event through the 1 ms
  relay (control), and interval 5 s with SEL events (where the collector's SEL probe, every 1 s
  for one BMC, can act). **Target: p99 <= interval + 250 ms.**
- **scale**: one agent with 50 `[[collectors.ipmi]]` entries (50 simulators) at interval 10 s;
  after every collector polled ok and it settled, CPU as % of one core and RSS over a 60 s window
  (quick: 20 s), with the SEL probe on (default: at most 10 probes a second per agent, so every
  5 s per BMC) and with `sel = false`; beside it, the simulators' own CPU. **Target: under 10 % of one core** (SEL on). Fewer simulators than 50 are said in bold.
"""


def record(
    plan: Plan,
    rows: list[tuple[str, str, str, str]] | None,
    info: dict[str, str],
    ipmi: ib.IpmiResults | None = None,
) -> str:
    """One section of RESULTS.md: the md table (unless ``--only ipmi``), then the IPMI one."""
    stamp = h.stamp()
    what = []
    if rows is not None:
        what.append(
            f"{plan.runs} runs at interval 1 s, {plan.runs_half} at 0.5 s, "
            f"{plan.window:g} s idle windows"
        )
    if ipmi is not None:
        what.append(ib.describe(ipmi.plan))
    only = (
        ""
        if rows is not None and ipmi is not None
        else (" md only" if ipmi is None else " IPMI only")
    )
    lines = [f"## {stamp} — {plan.mode} run{only} ({'; '.join(what)})", ""]
    lines += [f"- {k}: {v}" for k, v in info.items()]
    text = "\n".join(lines) + "\n"
    if rows is not None:
        text += "\n" + markdown_table(rows)
    if ipmi is not None:
        text += "\n### IPMI (ipmi_sim, dell_like profile, 127.0.0.1)\n\n"
        text += ib.markdown_table(ib.build_rows(ipmi))
    return text


def git_describe() -> str:
    try:
        rev = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    return f"{rev or '?'}{' with uncommitted changes' if dirty else ''}"


# --- main -----------------------------------------------------------------------------------


def benchmark(ctx: Ctx, plan: Plan) -> Results:
    modules, installed = module_check()
    lats = [latency(ctx, 1.0, plan.runs, scrape=True)]
    if plan.runs_half:
        lats.append(latency(ctx, 0.5, plan.runs_half, scrape=False))
    live = {m for lat in lats for m in lat.modules if m.split(".")[0] in h.HEAVY_MODULES}
    idle = {iv: idle_agent(ctx, iv, plan) for iv in (1.0, 5.0)}
    peer_idle = {}
    if ctx.node_exporter:
        peer_idle = {s: idle_node_exporter(ctx, s, plan) for s in (1.0, 5.0, 0.0)}
    return Results(modules, installed, lats, sorted(live), idle, peer_idle, one_shot(ctx, plan))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="a short run (fewer runs, short windows)")
    p.add_argument(
        "--only",
        choices=("md", "ipmi", "net", "snmp", "promotion", "central"),
        help="run one part alone (default: md, then IPMI; net, snmp and promotion run only alone)",
    )
    p.add_argument(
        "--runs",
        type=int,
        help="md: full runs (degrade + recover) per interval; net: link cuts; promotion: runs",
    )
    p.add_argument("--window", type=float, help="md: seconds of each idle window")
    p.add_argument("--no-half", action="store_true", help="md: skip the interval 0.5 s latency run")
    p.add_argument("--bmcs", type=int, help="IPMI: simulated BMCs in the scale run (default 50)")
    p.add_argument("--no-record", action="store_true", help=f"do not append to {RESULTS.name}")
    p.add_argument("--seed", type=int, help="seed of the random write and injection phases")
    args = p.parse_args(argv)
    if args.only == "snmp":
        import snmpbench

        quick = ["--polls", "3", "--traps", "20"] if args.quick else []
        return snmpbench.main(quick + (["--no-record"] if args.no_record else []))
    if args.only == "central":  # --runs: bare/central rate pairs; --quick: the rate alone
        import centralbench

        quick = ["--rate-only"] if args.quick else []
        pairs = ["--pairs", str(args.runs or 3)]
        return centralbench.main(quick + pairs + (["--no-record"] if args.no_record else []))
    if args.only == "promotion":  # network namespaces + keepalived: see bench/promotionbench.py
        import promotionbench

        return promotionbench.main(args.quick, args.runs, args.seed, not args.no_record, RESULTS)
    plan = PLANS["quick" if args.quick else "full"]
    if args.runs is not None:
        plan = Plan(plan.mode, args.runs, args.runs, plan.settle, plan.window)
    if args.window is not None:
        plan = Plan(plan.mode, plan.runs, plan.runs_half, plan.settle, args.window)
    if args.no_half:
        plan = Plan(plan.mode, plan.runs, 0, plan.settle, plan.window)
    iplan = ib.IPMI_PLANS[plan.mode]
    if args.bmcs is not None:
        iplan = dataclasses.replace(iplan, bmcs=args.bmcs)
    parts = ("md", "ipmi") if args.only is None else (args.only,)
    seed = args.seed if args.seed is not None else random.randrange(2**32)
    if parts == ("net",):
        return net_only(args, plan.mode, seed)

    # SIGTERM and SIGHUP unwind like Ctrl-C, so every finally below runs.
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda signum, frame: sys.exit(128 + signum))

    info = {"machine": ", ".join(f"{k} {v}" for k, v in h.machine().items())}
    load_start = h.loadavg()
    procs = h.Procs()
    tmp = Path(tempfile.mkdtemp(prefix="hotspare-bench-"))
    broker = LocalBroker()
    binary = None
    results: Results | None = None
    ipmi: ib.IpmiResults | None = None
    elapsed = 0.0
    try:
        note = ""
        if "md" in parts:
            binary, note = h.ensure_node_exporter()
        (tmp / "proc").mkdir()
        ctx = Ctx(tmp, procs, broker, tmp / "proc" / "mdstat", random.Random(seed), binary)
        if note:
            ctx.notes.append(note)
        broker.start()
        if "md" in parts:
            started = time.monotonic()
            results = benchmark(ctx, plan)
            elapsed = time.monotonic() - started
        if "ipmi" in parts:
            missing = [b for b in ("ipmi_sim", "sdrcomp") if shutil.which(b) is None]
            if missing:
                why = f"{', '.join(missing)} not installed (apt-get install openipmi)"
                if results is None:
                    raise SystemExit(f"bench: the IPMI part needs {why}")
                ctx.notes.append(f"IPMI part skipped: {why}")
            else:
                try:
                    ipmi = ib.run(ctx, iplan)
                except Exception as e:  # keep the md figures of this run
                    if results is None:
                        raise
                    ctx.notes.append(f"IPMI part failed: {type(e).__name__}: {e}"[:500])
    finally:
        procs.stop_all()
        broker.stop()
        shutil.rmtree(broker.dir, ignore_errors=True)
        shutil.rmtree(tmp, ignore_errors=True)

    versions = [
        f"hotspare {agent.__version__} (git {git_describe()})",
        f"paho-mqtt {paho.mqtt.__version__}",
        h.first_line([mosquitto_binary(), "-h"]),
    ]
    if binary:
        versions.append(h.first_line([binary, "--version"]))
    if ipmi is not None:
        versions += ipmi.versions
    info["versions"] = "; ".join(versions)
    info["load average (1/5/15 min) at start / end"] = f"{load_start} / {h.loadavg()}"
    if results is not None:
        lat1, o = results.latency[0], results.one_shot
        info["run"] = (
            f"{elapsed:.0f} s, seed {seed}; the latency agent (interval 1 s) imported "
            f"{len(lat1.modules)} modules and had VmRSS {lat1.rss_after['VmRSS'] / 1024:.1f} MB "
            f"(VmHWM {lat1.rss_after['VmHWM'] / 1024:.1f}) after its {2 * plan.runs} transitions; "
            f"`python3 -S -c pass` {ms(o.python_bare_startup)}; "
            f"`status` saw md0 {o.status_sees}, the scrape saw {o.scrape_sees or '—'}"
        )
        if lat1.scrape_errors:
            ctx.notes.append(f"{lat1.scrape_errors} scrapes failed during the latency run")
    if ipmi is not None:
        info["IPMI run"] = f"{ipmi.elapsed:.0f} s, seed {seed}"
    if ctx.notes:
        info["notes"] = "; ".join(dict.fromkeys(ctx.notes))

    text = record(plan, build_table(results) if results is not None else None, info, ipmi)
    print()
    print(text)
    if not args.no_record:
        h.append_results(RESULTS, text, HEADER)
    return 0


def net_only(args: argparse.Namespace, mode: str, seed: int) -> int:
    """``--only net``: the link-loss latency alone, in a section of its own."""
    nplan = nb.with_runs(nb.NET_PLANS[mode], args.runs)
    info = {"machine": ", ".join(f"{k} {v}" for k, v in h.machine().items())}
    load_start = h.loadavg()
    result = nb.run(
        nplan, random.Random(seed), lambda text: print(f"bench: {text}", file=sys.stderr)
    )
    info["versions"] = "; ".join(
        [
            f"hotspare {agent.__version__} (git {git_describe()})",
            f"paho-mqtt {paho.mqtt.__version__}",
            h.first_line([mosquitto_binary(), "-h"]),
            h.first_line(["ip", "-V"]),
        ]
    )
    info["load average (1/5/15 min) at start / end"] = f"{load_start} / {h.loadavg()}"
    info["net run"] = f"{result.elapsed:.0f} s, seed {seed}"
    stamp = h.stamp()
    lines = [f"## {stamp} — {mode} run net only ({nb.describe(nplan)})", ""]
    lines += [f"- {k}: {v}" for k, v in info.items()]
    text = "\n".join(lines) + "\n\n" + nb.markdown(result)
    print()
    print(text)
    if not args.no_record:
        h.append_results(RESULTS, text, HEADER)
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
    sys.exit(130)

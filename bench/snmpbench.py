#!/usr/bin/env python3
"""SNMP benchmark: the collector polling N simulated switches vs net-snmp's snmpbulkwalk.

    python3 bench/snmpbench.py [--sizes 1,10,100] [--polls 5] [--no-record]
    python3 bench/run.py --only snmp      # the same, from the benchmark runner

The "switches": one net-snmp snmpd in a network namespace (``hss-bench``) with 48 veth
"ports" (a few of them down), listening on N UDP ports of the namespace's 127.0.0.1, so
every switch has a realistic 50-row ifTable. The same columns are read both ways: the
collector's standards-only profile (five ENTITY columns, empty on snmpd) plus ifDescr,
ifName, ifAdminStatus, ifOperStatus. The collector polls all N at once from one process
and one engine (bench/snmp_sweep.py); net-snmp runs one ``snmpbulkwalk -Cr50`` per column
per switch, up to 16 at a time. CPU is user + system time of the collector process / of
the snmpbulkwalk children; "per OID" divides by the rows read. An snmpbulkwalk's process
start is a large share of its CPU: it is measured on its own (a walk of an empty subtree)
and the marginal cost per OID is shown too. Appends a section to bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import harness as h

from agent.localbroker import stop_process

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "RESULTS.md"
NS = "hss-bench"
PORTS = 48
FIRST_PORT = 21001
COMMUNITY = "hs-bench"
COLUMNS = (
    "1.3.6.1.2.1.47.1.1.1.1.5",
    "1.3.6.1.2.1.47.1.1.1.1.7",
    "1.3.6.1.2.1.47.1.1.1.1.4",
    "1.3.6.1.2.1.131.1.1.1.3",
    "1.3.6.1.2.1.99.1.1.1.5",
    "1.3.6.1.2.1.2.2.1.2",
    "1.3.6.1.2.1.31.1.1.1.1",
    "1.3.6.1.2.1.2.2.1.7",
    "1.3.6.1.2.1.2.2.1.8",
)
TARGET_RATIO = 5.0
TARGET_WALL_100 = 2.0


def sh(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, check=check, capture_output=True, text=True)


def in_ns(*args: str) -> list[str]:
    return ["ip", "netns", "exec", NS, *args]


class Switches:
    """snmpd in its own namespace, answering on ``n`` ports, with 48 veth ports."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.dir = Path(tempfile.mkdtemp(prefix="hss-bench-snmpd-"))
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Switches:
        sh("ip", "netns", "del", NS, check=False)
        sh("ip", "netns", "add", NS)
        sh(*in_ns("ip", "link", "set", "lo", "up"))
        for j in range(PORTS):
            sh(
                *in_ns(
                    "ip", "link", "add", f"hss-v{j}", "type", "veth", "peer", "name", f"hss-v{j}p"
                )
            )
            sh(*in_ns("ip", "link", "set", f"hss-v{j}", "up"))
            if j % 8:  # every eighth port's far end stays down: oper down
                sh(*in_ns("ip", "link", "set", f"hss-v{j}p", "up"))
        endpoints = ",".join(f"udp:127.0.0.1:{FIRST_PORT + i}" for i in range(self.n))
        conf = self.dir / "snmpd.conf"
        conf.write_text(f"agentAddress {endpoints}\nrocommunity {COMMUNITY} 127.0.0.1\n")
        env = {**os.environ, "SNMP_PERSISTENT_DIR": str(self.dir), "MIBS": ""}
        self.proc = subprocess.Popen(
            in_ns("snmpd", "-f", "-C", "-c", str(conf), "-Lf", str(self.dir / "log")),
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while True:
            r = sh(*in_ns(*walk_cmd(FIRST_PORT + self.n - 1, "1.3.6.1.2.1.2.2.1.8")), check=False)
            if r.returncode == 0 and r.stdout.count("\n") >= PORTS:
                return self
            if time.monotonic() > deadline:
                raise SystemExit(f"bench: snmpd did not come up: {r.stderr.strip()}")
            time.sleep(0.3)

    def __exit__(self, *exc: object) -> None:
        stop_process(self.proc, 10)  # killed if it outlives the 10 s
        sh("ip", "netns", "del", NS, check=False)
        subprocess.run(["rm", "-rf", str(self.dir)], check=False)


def walk_cmd(port: int, column: str) -> list[str]:
    return [
        "snmpbulkwalk",
        "-v2c",
        "-c",
        COMMUNITY,
        "-Cr50",
        "-On",
        "-Oq",
        f"127.0.0.1:{port}",
        column,
    ]


def children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def netsnmp_round(n: int) -> dict[str, float]:
    """One poll of every column of every switch with snmpbulkwalk, 16 processes at a time."""
    jobs = [(FIRST_PORT + i, c) for i in range(n) for c in COLUMNS]

    def one(job: tuple[int, str]) -> int:
        r = subprocess.run(in_ns(*walk_cmd(*job)), capture_output=True, text=True, check=True)
        return sum(1 for line in r.stdout.splitlines() if line.startswith("."))

    # `ip netns exec` itself costs CPU: measured alone and taken off below
    c0, w0 = children_cpu(), time.perf_counter()
    with ThreadPoolExecutor(16) as pool:
        oids = sum(pool.map(one, jobs))
    return {
        "wall": time.perf_counter() - w0,
        "cpu": children_cpu() - c0,
        "oids": oids,
        "procs": len(jobs),
    }


def process_overhead(samples: int = 30) -> dict[str, float]:
    """Per-process CPU (`ip netns exec` + an snmpbulkwalk of an empty subtree), and the
    marginal CPU per OID: one snmpbulkwalk of all of mib-2 (thousands of OIDs) minus that."""
    c0 = children_cpu()
    for _ in range(samples):
        sh(*in_ns(*walk_cmd(FIRST_PORT, "1.3.6.1.2.1.47.1.1.1.1.5")), check=False)
    exec_c0 = children_cpu()
    for _ in range(samples):
        sh(*in_ns("true"))
    exec_only = (children_cpu() - exec_c0) / samples
    walk_process = (exec_c0 - c0) / samples
    per_oid = []
    for _ in range(5):
        c1 = children_cpu()
        r = sh(*in_ns(*walk_cmd(FIRST_PORT, "1.3.6.1.2.1")))
        n = sum(1 for line in r.stdout.splitlines() if line.startswith("."))
        per_oid.append((children_cpu() - c1 - walk_process) / n)
    return {
        "walk_process": walk_process,
        "ns_exec": exec_only,
        "per_oid": statistics.median(per_oid),
        "big_walk_oids": n,
    }


def collector_run(n: int, polls: int, codec: str = "builtin") -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run(
        in_ns(
            sys.executable,
            str(BENCH / "snmp_sweep.py"),
            COMMUNITY,
            str(FIRST_PORT),
            str(n),
            str(polls),
        ),
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if r.returncode != 0:
        raise SystemExit(f"bench: snmp_sweep failed: {r.stderr.strip()[-800:]}")
    return json.loads(r.stdout)


def trap_latency(traps: int) -> tuple[list[float], str]:
    """Trap sent (net-snmp snmptrap) -> the failed or repaired PSU group on MQTT.

    A real agent polls one switch (snmpsim serving the IronWare recording) every 60 s and
    listens for traps. Each round flips PSU 1 in the recording (failure / normal: the power
    group goes failed / degraded), then sends a trap; the clock stops when the group's new
    state arrives at an MQTT subscriber.
    """
    import threading

    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    sys.path.insert(0, str(ROOT))
    from agent.localbroker import LocalBroker, free_port
    from tests.snmp_peer import SNMPREC, SnmpSim

    work = Path(tempfile.mkdtemp(prefix="hss-bench-traps-"))
    trap_port = free_port()
    sim = SnmpSim([SNMPREC / "ironware.snmprec"]).start()
    broker = LocalBroker().start()
    (work / "state").mkdir()
    cfg = work / "agent.toml"
    cfg.write_text(
        f'[agent]\nsite = "bench"\nhost = "h"\ninterval = 60\njitter = 0\nstate_dir = "{work / "state"}"\n'
        f'[mqtt]\nurl = "mqtt://127.0.0.1:{broker.port}"\n'
        f'[[collectors.snmp]]\nname = "sw"\naddress = "127.0.0.1"\nport = {sim.port}\n'
        f'community = "ironware"\ntrap_listen = "127.0.0.1:{trap_port}"\n'
    )
    agent = subprocess.Popen(
        [sys.executable, "-m", "agent.cli", "agent", "--config", str(cfg)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=(work / "agent.log").open("wb"),
    )
    states: list[tuple[float, str]] = []
    cond = threading.Condition()

    def on_message(_c, _u, msg):
        if msg.payload:
            with cond:
                states.append((time.perf_counter(), json.loads(msg.payload)["state"]))
                cond.notify_all()

    client = mqtt.Client(CallbackAPIVersion.VERSION2)
    client.on_message = on_message
    client.connect("127.0.0.1", broker.port)
    client.subscribe("hotspare/v1/bench/h/groups/switch/sw/psu", 1)
    client.loop_start()
    samples: list[float] = []
    psu1 = "1.3.6.1.4.1.1991.1.1.1.2.1.1.3.1"
    try:
        with cond:
            if not cond.wait_for(lambda: states, 30):
                log = (work / "agent.log").read_text()[-500:]
                raise SystemExit(f"bench: the agent published nothing: {log}")
        for i in range(traps):
            want = "failed" if i % 2 == 0 else "degraded"
            sim.edit("ironware", psu1, "3" if want == "failed" else "2")
            time.sleep(0.3)  # let snmpsim see the new recording before the trap
            with cond:
                seen = len(states)
            sent = time.perf_counter()
            subprocess.run(
                [
                    *("snmptrap", "-v2c", "-c", "ironware", f"127.0.0.1:{trap_port}", ""),
                    *("1.3.6.1.6.3.1.1.5.3", "1.3.6.1.2.1.2.2.1.1.1", "i", "1"),
                ],
                check=True,
                capture_output=True,
            )

            def arrived(seen: int = seen, want: str = want) -> bool:
                return any(s == want for _, s in states[seen:])

            with cond:
                if cond.wait_for(arrived, 10):
                    samples.append(next(t for t, s in states[seen:] if s == want) - sent)
    finally:
        client.loop_stop()
        client.disconnect()
        stop_process(agent, 10)
        sim.stop()
        broker.stop()
        subprocess.run(["rm", "-rf", str(work), str(broker.dir)], check=False)
    note = (
        f"{len(samples)} of {traps} traps answered by the new group state on MQTT (agent interval "
        "60 s, so only the trap re-polls); the clock starts before `snmptrap` is started "
        "(its process start, a few ms, is included); device: snmpsim (IronWare recording)"
    )
    return samples, note


def pct(values: list[float], p: float) -> float:
    v = sorted(values)
    return v[min(len(v) - 1, max(0, round(p / 100 * (len(v) - 1))))]


def us(seconds: float) -> str:
    return f"{seconds * 1e6:.1f} µs"


def run(sizes: list[int], polls: int) -> tuple[list[str], dict[str, str]]:
    rows = [
        "| switches | OIDs per poll | collector wall (median) | collector CPU per OID | snmpbulkwalk wall | snmpbulkwalk CPU per OID (all / marginal) | CPU ratio (all / marginal) | targets |",
        "|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    notes: dict[str, str] = {}
    with Switches(max(sizes)):
        overhead = process_overhead()
        notes["snmpbulkwalk process"] = (
            f"{overhead['walk_process'] * 1000:.2f} ms CPU per `ip netns exec snmpbulkwalk` of an "
            f"empty subtree, of which `ip netns exec true` {overhead['ns_exec'] * 1000:.2f} ms; "
            f"marginal {us(overhead['per_oid'])} per OID (one walk of mib-2, "
            f"{overhead['big_walk_oids']} OIDs, less the per-process CPU; median of 5)"
        )
        runs = [(n, "builtin") for n in sizes]
        if 10 in sizes:
            runs.append((10, "pysnmp"))  # the same poll through pysnmp's own codec, for scale
        for n, codec in runs:
            col = collector_run(n, polls, codec)
            ps = col["polls"]
            wall = statistics.median(p["wall"] for p in ps)
            cpu = statistics.median(p["cpu"] for p in ps)
            oids = ps[0]["oids"]
            net = [netsnmp_round(n) for _ in range(max(1, min(polls, 3)))]
            nwall = statistics.median(x["wall"] for x in net)
            ncpu = statistics.median(x["cpu"] for x in net) - net[0]["procs"] * overhead["ns_exec"]
            noids = net[0]["oids"]
            per, nper, nmarg = cpu / oids, ncpu / noids, overhead["per_oid"]
            ratio = per / nper
            ratio_m = per / nmarg
            met = [
                f"CPU/OID {'met' if ratio_m <= TARGET_RATIO else 'missed'} ({ratio_m:.1f}x marginal)"
            ]
            if n >= 100:
                met.append(f"100 switches < 2 s: {'met' if wall < TARGET_WALL_100 else 'missed'}")
            label = str(n) if codec == "builtin" else f"{n} (codec pysnmp)"
            rows.append(
                f"| {label} | {oids} | {wall * 1000:.0f} ms | {us(per)} | {nwall * 1000:.0f} ms "
                f"| {us(nper)} / {us(nmarg)} | {ratio:.2f}x / {ratio_m:.1f}x | {'; '.join(met)} |"
            )
            notes[f"collector N={label}"] = (
                f"{len(ps)} polls after a warm-up, {col['requests']} GETBULK requests per poll, "
                f"import {col['import_s'] * 1000:.0f} ms, RSS {col['rss_start_mb']:.1f} MB at start, "
                f"{col['rss_after_warmup_mb']:.1f} MB after the first poll, {col['rss_end_mb']:.1f} MB at the end"
            )
            print(rows[-1], file=sys.stderr, flush=True)
    return rows, notes


def machine() -> str:
    return ", ".join(v for v in h.machine().values() if v)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--sizes", default="1,10,100", help="numbers of switches (default 1,10,100)")
    p.add_argument("--polls", type=int, default=5, help="measured polls per size")
    p.add_argument("--traps", type=int, default=50, help="traps for the latency run (0: skip)")
    p.add_argument("--no-record", action="store_true", help=f"do not append to {RESULTS.name}")
    args = p.parse_args(argv)
    sizes = [int(x) for x in args.sizes.split(",")]
    rows, notes = run(sizes, args.polls)
    if args.traps:
        samples, note = trap_latency(args.traps)
        if samples:
            p99 = pct(samples, 99)
            rows += [
                "",
                "| trap to MQTT | n | median | p90 | p99 | max | target p99 <= 500 ms |",
                "|---|---:|---:|---:|---:|---:|---|",
                f"| linkDown trap -> new PSU group state on MQTT | {len(samples)} | {statistics.median(samples) * 1000:.0f} ms "
                f"| {pct(samples, 90) * 1000:.0f} ms | {p99 * 1000:.0f} ms | {max(samples) * 1000:.0f} ms "
                f"| {'met' if p99 <= 0.5 else 'missed'} |",
            ]
        notes["trap latency"] = note
    stamp = h.stamp()
    version = sh("snmpd", "-v", check=False).stdout.strip().splitlines()
    text = "\n".join(
        [
            f"## {stamp} — SNMP sweep (collector vs snmpbulkwalk)",
            "",
            *rows,
            "",
            f"- machine: {machine()}; load average at the end {h.loadavg()}",
            f"- peers: {' '.join(v for v in version if 'version' in v.lower())[:80]} in namespace {NS}, "
            f"{PORTS} veth ports, one snmpd answering every switch",
            *(f"- {k}: {v}" for k, v in notes.items()),
            "",
        ]
    )
    print(text)
    if not args.no_record:
        h.append_results(RESULTS, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

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
import contextlib
import datetime as dt
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
            sh(*in_ns("ip", "link", "add", f"hss-v{j}", "type", "veth", "peer", "name", f"hss-v{j}p"))
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
        if self.proc is not None:
            self.proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(10)
        sh("ip", "netns", "del", NS, check=False)
        subprocess.run(["rm", "-rf", str(self.dir)], check=False)


def walk_cmd(port: int, column: str) -> list[str]:
    return ["snmpbulkwalk", "-v2c", "-c", COMMUNITY, "-Cr50", "-On", "-Oq", f"127.0.0.1:{port}", column]


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
    return {"wall": time.perf_counter() - w0, "cpu": children_cpu() - c0, "oids": oids, "procs": len(jobs)}


def process_overhead(samples: int = 30) -> dict[str, float]:
    """CPU of `ip netns exec` + an snmpbulkwalk of an empty subtree: the per-process cost."""
    c0 = children_cpu()
    for _ in range(samples):
        sh(*in_ns(*walk_cmd(FIRST_PORT, "1.3.6.1.2.1.47.1.1.1.1.5")), check=False)
    exec_c0 = children_cpu()
    for _ in range(samples):
        sh(*in_ns("true"))
    exec_only = (children_cpu() - exec_c0) / samples
    return {"walk_process": (exec_c0 - c0) / samples, "ns_exec": exec_only}


def collector_run(n: int, polls: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run(
        in_ns(sys.executable, str(BENCH / "snmp_sweep.py"), COMMUNITY, str(FIRST_PORT), str(n), str(polls)),
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if r.returncode != 0:
        raise SystemExit(f"bench: snmp_sweep failed: {r.stderr.strip()[-800:]}")
    return json.loads(r.stdout)


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
            f"empty subtree, of which `ip netns exec true` {overhead['ns_exec'] * 1000:.2f} ms"
        )
        for n in sizes:
            col = collector_run(n, polls)
            ps = col["polls"]
            wall = statistics.median(p["wall"] for p in ps)
            cpu = statistics.median(p["cpu"] for p in ps)
            oids = ps[0]["oids"]
            net = [netsnmp_round(n) for _ in range(max(1, min(polls, 3)))]
            nwall = statistics.median(x["wall"] for x in net)
            ncpu = statistics.median(x["cpu"] for x in net) - net[0]["procs"] * overhead["ns_exec"]
            noids = net[0]["oids"]
            marginal = ncpu - net[0]["procs"] * (overhead["walk_process"] - overhead["ns_exec"])
            per, nper, nmarg = cpu / oids, ncpu / noids, max(marginal, 1e-9) / noids
            ratio = per / nper
            ratio_m = per / nmarg
            met = [f"CPU/OID {'met' if ratio_m <= TARGET_RATIO else 'missed'} ({ratio_m:.1f}x marginal)"]
            if n >= 100:
                met.append(f"100 switches < 2 s: {'met' if wall < TARGET_WALL_100 else 'missed'}")
            rows.append(
                f"| {n} | {oids} | {wall * 1000:.0f} ms | {us(per)} | {nwall * 1000:.0f} ms "
                f"| {us(nper)} / {us(nmarg)} | {ratio:.2f}x / {ratio_m:.1f}x | {'; '.join(met)} |"
            )
            notes[f"collector N={n}"] = (
                f"{len(ps)} polls after a warm-up, {col['requests']} GETBULK requests per poll, "
                f"import {col['import_s'] * 1000:.0f} ms, RSS {col['rss_start_mb']:.1f} MB at start, "
                f"{col['rss_after_warmup_mb']:.1f} MB after the first poll, {col['rss_end_mb']:.1f} MB at the end"
            )
            print(rows[-1], file=sys.stderr, flush=True)
    return rows, notes


def machine() -> str:
    cpu = ""
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as fh:
        for line in fh:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return f"{os.uname().nodename}, {cpu}, {os.cpu_count()} CPUs, Linux {os.uname().release}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--sizes", default="1,10,100", help="numbers of switches (default 1,10,100)")
    p.add_argument("--polls", type=int, default=5, help="measured polls per size")
    p.add_argument("--no-record", action="store_true", help=f"do not append to {RESULTS.name}")
    args = p.parse_args(argv)
    sizes = [int(x) for x in args.sizes.split(",")]
    rows, notes = run(sizes, args.polls)
    load = Path("/proc/loadavg").read_text().split()[:3]
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    version = sh("snmpd", "-v", check=False).stdout.strip().splitlines()
    text = "\n".join(
        [
            f"## {stamp} — SNMP sweep (collector vs snmpbulkwalk)",
            "",
            *rows,
            "",
            f"- machine: {machine()}; load average at the end {' '.join(load)}",
            f"- peers: {' '.join(v for v in version if 'version' in v.lower())[:80]} in namespace {NS}, "
            f"{PORTS} veth ports, one snmpd answering every switch",
            *(f"- {k}: {v}" for k, v in notes.items()),
            "",
        ]
    )
    print(text)
    if not args.no_record:
        with RESULTS.open("a") as f:
            f.write("\n" + text)
        print(f"bench: appended to {RESULTS}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

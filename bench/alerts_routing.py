"""Alert routing at fleet scale: how fast the state machine takes records, and its memory.

A simulated fleet of HOSTS hosts x 8 groups: every group degrades (one record each), the
groups are flushed after group_wait, every group recovers, and the resolutions are
flushed. Measures records/s through ``Router.observe``, the time of each ``flush`` and the
memory the router holds per 1 000 firing alerts (tracemalloc). No I/O: receivers are not
involved (their tests run against real peers). Appends a section to RESULTS.md unless
``--no-record``.

    python3 bench/alerts_routing.py [--hosts 10000] [--no-record]
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import time
import tracemalloc
from pathlib import Path

import harness

from central.alerts.config import AlertsConfig, Route
from central.alerts.model import Subject, Transition
from central.alerts.routing import Router

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
GROUPS = (
    ("power", "power"),
    ("fans", "cooling"),
    ("md/md0", "raid"),
    ("md/md1", "raid"),
    ("bond0", "bond"),
    ("bond1", "bond"),
    ("tor", "switches"),
    ("custom", "custom"),
)
CONFIG = AlertsConfig(
    routes=(
        Route({"severity": ("critical",)}, ("pager",), True, ("site", "host"), 30, 300, 14400),
        Route({"host": ("db-*",), "kind": ("raid",)}, ("dba",), True, ("site",), 30, 300, 14400),
        Route({}, ("chat",), False, ("site", "host"), 30, 300, 14400),
    )
)


def records(hosts: int, to: str, ts: float) -> list[Transition]:
    out = []
    for i in range(hosts):
        host = f"db-{i:05d}" if i % 10 == 0 else f"web-{i:05d}"
        site = f"dc{i % 4}"
        for n, (group, kind) in enumerate(GROUPS):
            state = "failed" if (to != "redundant" and n == 0 and i % 3 == 0) else to
            out.append(Transition(Subject.GROUP, site, host, group, kind, None, state, ts))
    return out


def memory(hosts: int) -> float:
    """Bytes the router holds per firing alert (a separate pass: tracemalloc slows it)."""
    router = Router(CONFIG)
    down = records(hosts, "degraded", 0.0)
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    for r in down:
        router.observe(r, 0.0)
    held = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    return held / len(down)


def run(hosts: int) -> dict[str, float]:
    router = Router(CONFIG)
    down, up = records(hosts, "degraded", 0.0), records(hosts, "redundant", 100.0)
    gc.collect()
    t0 = time.perf_counter()
    for r in down:
        router.observe(r, 0.0)
    t1 = time.perf_counter()
    fired = router.flush(30.0)
    t2 = time.perf_counter()
    # one group escalates: only its new (pager) group is due, at 31 + group_wait
    router.observe(
        Transition(Subject.GROUP, "dc1", "web-00001", "power", "power", None, "failed", 31.0), 31.0
    )
    s0 = time.perf_counter()
    idle = router.flush(50.0)  # nothing due: one comparison
    s1 = time.perf_counter()
    one = router.flush(61.0)
    s2 = time.perf_counter()
    assert idle == [] and len(one) >= 1
    t2 = time.perf_counter()
    for r in up:
        router.observe(r, 400.0)
    t3 = time.perf_counter()
    resolved = router.flush(800.0)
    t4 = time.perf_counter()
    return {
        "records": len(down),
        "observe_down": len(down) / (t1 - t0),
        "observe_up": len(up) / (t3 - t2),
        "flush_fire_s": t2 - t1,
        "flush_idle_s": s1 - s0,
        "flush_one_s": s2 - s1,
        "notifications_one": len(one),
        "flush_resolve_s": t4 - t3,
        "notifications_fire": len(fired),
        "notifications_resolve": len(resolved),
        "mb_per_1000_alerts": memory(hosts) * 1000 / 1e6,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--hosts", type=int, default=10000)
    p.add_argument("--no-record", action="store_true")
    args = p.parse_args(argv)
    r = run(args.hosts)
    m = harness.machine()
    lines = [
        f"## alert routing, {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"Machine: {m['cpu']}, {m['cores']}, {m['memory']}, kernel {m['kernel']}, {m['python']}; "
        f"load average {harness.loadavg()}. `python3 bench/alerts_routing.py --hosts {args.hosts}`: "
        f"{args.hosts} hosts x {len(GROUPS)} groups, 3 routes (one with continue).",
        "",
        "| figure | value |",
        "|---|---|",
        f"| records in (degrade, new alerts) | {r['records']} at {r['observe_down']:,.0f} records/s |",
        f"| records in (recover, resolutions) | {r['observe_up']:,.0f} records/s |",
        f"| flush of the firing groups | {r['flush_fire_s'] * 1000:.0f} ms, "
        f"{r['notifications_fire']} notifications |",
        f"| flush with nothing due | {r['flush_idle_s'] * 1e6:.0f} µs |",
        f"| flush with one group due (of {r['notifications_fire']}) | "
        f"{r['flush_one_s'] * 1000:.1f} ms, {r['notifications_one']} notification(s) |",
        f"| flush of the resolutions | {r['flush_resolve_s'] * 1000:.0f} ms, "
        f"{r['notifications_resolve']} notifications |",
        f"| router memory per 1 000 firing alerts | {r['mb_per_1000_alerts']:.2f} MB (tracemalloc) |",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if not args.no_record:
        with RESULTS.open("a") as fh:
            fh.write("\n" + text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

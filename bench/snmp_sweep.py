#!/usr/bin/env python3
"""Time the SNMP collector polling N switches at once, in a process of its own.

    python3 bench/snmp_sweep.py COMMUNITY FIRST_PORT N POLLS [CODEC]

N collectors (127.0.0.1, ports FIRST_PORT .. FIRST_PORT+N-1), one shared engine, the
standards-only profile plus four IF-MIB columns of every port. Prints one JSON object:
import time, RSS before and after, then per poll (after one warm-up poll) the wall time,
the process CPU time and the number of rows (OIDs) walked. Run by ``bench/snmpbench.py``.
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import time


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def main(argv: list[str]) -> int:
    community, first, n, polls = argv[0], int(argv[1]), int(argv[2]), int(argv[3])
    codec = argv[4] if len(argv) > 4 else "builtin"
    rss0 = rss_mb()
    t0 = time.perf_counter()
    from collectors.snmp import OPTIONS, create

    import_s = time.perf_counter() - t0
    options = {k: v.default for k, v in OPTIONS.items()}
    collectors = []
    for i in range(n):
        o = dict(options, address="127.0.0.1", port=first + i, community=community)
        o.update(profile="entity", ports=[f"hss-v{j}" for j in range(48)], request_timeout=5.0)
        o.update(codec=codec)
        collectors.append(create(f"sw{i}", o))

    async def poll() -> int:
        snaps = await asyncio.gather(*(c.collect(time.time()) for c in collectors))
        bad = [s.readings[0].detail for s in snaps if s.readings[0].state.value != "ok"]
        if bad:
            raise SystemExit(f"a switch did not answer: {bad[0]}")
        return sum(c.last_oids for c in collectors)

    async def run() -> dict:
        await poll()  # warm-up: targets configured, profile chosen, code paths hot
        rss_engine = rss_mb()
        out = []
        for _ in range(polls):
            c0, w0 = time.process_time(), time.perf_counter()
            oids = await poll()
            out.append(
                {"wall": time.perf_counter() - w0, "cpu": time.process_time() - c0, "oids": oids}
            )
        return {"polls": out, "rss_after_warmup_mb": rss_engine}

    result = asyncio.run(run())
    result.update(
        import_s=import_s,
        rss_start_mb=rss0,
        rss_end_mb=rss_mb(),
        maxrss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        requests=sum(c.last_requests for c in collectors),
    )
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

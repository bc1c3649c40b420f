#!/usr/bin/env python3
"""Time the IPMI collector's sweeps against one BMC, in a process of its own.

    python3 bench/ipmi_sweep.py PORT PASSWORD_FILE SWEEPS

Prints one JSON object: the time to import pyghmi, the first poll (``collect``: session,
SDR, sensors, SEL), then SWEEPS cached polls (``collect`` again and again on the same
collector), the process CPU time they took, and the IPMI commands sent, by name. Run by
``bench/ipmibench.py``; a fresh process, so that the first poll really is the first (pyghmi
caches SDRs process-wide) and the benchmark's own threads do not share its GIL.
"""

from __future__ import annotations

import collections
import json
import sys
import time

COMMANDS = {
    (0x04, 0x2D): "Get Sensor Reading",
    (0x0A, 0x20): "Get SDR Repository Info",
    (0x0A, 0x22): "Reserve SDR Repository",
    (0x0A, 0x23): "Get SDR",
    (0x0A, 0x40): "Get SEL Info",
    (0x0A, 0x43): "Get SEL Entry",
    (0x06, 0x01): "Get Device ID",
    (0x06, 0x3B): "Set Session Privilege Level",
    (0x06, 0x3C): "Close Session",
}


def main(argv: list[str]) -> int:
    port, password_file, sweeps = int(argv[0]), argv[1], int(argv[2])
    from collectors.base import read_secret
    from collectors.ipmi import IpmiCollector

    t0 = time.perf_counter()
    import pyghmi.ipmi.command
    import pyghmi.ipmi.sdr  # noqa: F401  (what the first poll would import)
    from pyghmi.ipmi.private import session

    import_s = time.perf_counter() - t0

    sent: collections.Counter[str] = collections.Counter()
    raw_command = session.Session.raw_command

    def counting(self, *args, **kwargs):
        netfn = kwargs["netfn"] if "netfn" in kwargs else args[0]
        cmd = kwargs["command"] if "command" in kwargs else args[1 - ("netfn" in kwargs)]
        sent[COMMANDS.get((netfn, cmd), f"netfn {netfn:#04x} cmd {cmd:#04x}")] += 1
        return raw_command(self, *args, **kwargs)

    session.Session.raw_command = counting

    c = IpmiCollector("bmc", "127.0.0.1", port, "admin", read_secret(password_file))
    try:
        t0 = time.perf_counter()
        snap = c.collect(time.time())
        first_s = time.perf_counter() - t0
        first_commands = dict(sent)
        sent.clear()
        times = []
        cpu0 = time.process_time()
        for _ in range(sweeps):
            t0 = time.perf_counter()
            snap = c.collect(time.time())
            times.append(time.perf_counter() - t0)
        cpu_s = time.process_time() - cpu0
        commands = dict(sent)  # before the logout
    finally:
        c.close()
    groups = {g.id: len(g.members) for g in snap.groups}
    json.dump(
        {
            "import_s": import_s,
            "first_s": first_s,
            "first_commands": first_commands,
            "sweeps": times,
            "cpu_s": cpu_s,
            "commands": commands,
            "readings": len(snap.readings),
            "groups": groups,
        },
        sys.stdout,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

#!/usr/bin/env python3
"""Why does a cached IPMI sweep stall? Trace pyghmi's I/O per command, against one simulator.

    python3 bench/ipmi_stalls.py [SWEEPS] [--without-fix]

Starts one ``ipmi_sim`` (the ``dell_like`` profile), runs SWEEPS cached ``collect`` calls
(default 1000) and wraps, for measurement only, four functions of pyghmi's session module:
``_io_sendto`` (each datagram sent), ``_io_graball`` (each datagram the I/O thread reads),
``_io_wait`` (when a caller registers its wait and when it wakes) and ``Session.raw_command``
(one IPMI command). For every command slower than 100 ms it prints what happened:

* ``retransmitted``: pyghmi sent the request again (the BMC did not answer in time);
* ``reply before wait``: the reply was read by the I/O thread *before* the calling thread
  registered its wait, and the caller then slept until its retry deadline although the
  reply was already queued for it;
* ``slow reply``: the first datagram from the BMC was read more than 50 ms after the send
  (the simulator, or the I/O thread, did not get the CPU in time);
* ``late wake-up``: the reply was read promptly, after the caller had registered its wait,
  but the caller ran again more than 50 ms later (the scheduler, on a busy machine);
* ``other``.

Prints a JSON summary at the end. Nothing here changes what pyghmi does, except that
``--without-fix`` keeps the collector from installing ``collectors/pyghmi_wakeup.py`` (to
show the stalls that module removes).
"""

from __future__ import annotations

import collections
import json
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.ipmisim import IpmiSim, dell_like

SLOW = 0.1  # seconds: a command slower than this is traced
LATE_MS = 50.0


def main(argv: list[str]) -> int:
    sweeps = int(argv[0]) if argv and argv[0].isdigit() else 1000
    from pyghmi.ipmi.private import session as S

    from collectors import pyghmi_wakeup
    from collectors.ipmi import IpmiCollector

    if "--without-fix" in argv:
        pyghmi_wakeup._state["checked"] = True  # as if already decided: not installed

    events: list[tuple[float, str, object]] = []  # (time, what, detail) of the current command
    tracing = threading.local()
    lock = threading.Lock()

    def note(what: str, detail: object = None) -> None:
        with lock:
            events.append((time.perf_counter(), what, detail))

    sendto, graball, io_wait = S._io_sendto, S._io_graball, S._io_wait

    def traced_sendto(sock, packet, addr):
        note("send", len(packet))
        return sendto(sock, packet, addr)

    def traced_graball(socks, waiters):
        addrs = graball(socks, waiters)
        if addrs:
            note("read", len(addrs))
        return addrs

    def traced_wait(timeout, myaddr=None, evq=None):
        if getattr(tracing, "on", False):
            note("wait", round(timeout, 3))
        try:
            return io_wait(timeout, myaddr, evq)
        finally:
            if getattr(tracing, "on", False):
                note("woke")

    S._io_sendto, S._io_graball, S._io_wait = traced_sendto, traced_graball, traced_wait
    raw_command = S.Session.raw_command
    slow: list[dict] = []
    kinds: collections.Counter[str] = collections.Counter()
    durations: list[float] = []

    def traced_command(self, *args, **kwargs):
        with lock:
            events.clear()
        tracing.on = True
        t0 = time.perf_counter()
        try:
            return raw_command(self, *args, **kwargs)
        finally:
            tracing.on = False
            took = time.perf_counter() - t0
            durations.append(took)
            if took > SLOW:
                with lock:
                    trace = [(round((t - t0) * 1000, 2), w, d) for t, w, d in events]
                sends = [t for t, w, _ in trace if w == "send"]
                reads = [t for t, w, _ in trace if w == "read"]
                waits = [t for t, w, _ in trace if w == "wait"]
                woke = [t for t, w, _ in trace if w == "woke"]
                if len(sends) > 1:
                    kind = "retransmitted"
                elif reads and waits and reads[0] < waits[0]:
                    kind = "reply before wait"
                elif sends and reads and reads[0] - sends[0] > LATE_MS:
                    kind = "slow reply"
                elif reads and woke and woke[-1] - reads[0] > LATE_MS:
                    kind = "late wake-up"
                else:
                    kind = "other"
                kinds[kind] += 1
                slow.append({"ms": round(took * 1000, 1), "kind": kind, "trace": trace})
                print(f"{took * 1000:7.1f} ms  {kind:18s} {trace}", file=sys.stderr)

    S.Session.raw_command = traced_command

    with tempfile.TemporaryDirectory() as tmp:
        sim = IpmiSim(dell_like(("PS1 Status", "PS2 Status")), Path(tmp) / "sim").start()
        try:
            c = IpmiCollector("bmc", "127.0.0.1", sim.port, sim.user, sim.password)
            c.collect(time.time())
            durations.clear()
            sweep_times = []
            for _ in range(sweeps):
                t0 = time.perf_counter()
                c.collect(time.time())
                sweep_times.append(time.perf_counter() - t0)
            c.close()
        finally:
            sim.stop()
    sweep_times.sort()
    durations.sort()
    json.dump(
        {
            "sweeps": sweeps,
            "fix_installed": pyghmi_wakeup.installed(),
            "commands": len(durations),
            "slow_commands": len(slow),
            "kinds": dict(kinds),
            "sweep_ms_median": round(sweep_times[len(sweep_times) // 2] * 1000, 2),
            "sweep_ms_p99": round(sweep_times[int(len(sweep_times) * 0.99)] * 1000, 2),
            "sweep_ms_max": round(sweep_times[-1] * 1000, 2),
            "command_ms_median": round(durations[len(durations) // 2] * 1000, 3),
        },
        sys.stdout,
    )
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

"""Pieces of the benchmark: processes, /proc sampling, MQTT and scrape observers, the peer.

Nothing here measures on its own; ``run.py`` composes these into the benchmark. Every
process started here is registered with a ``Procs`` and ended by it; every server binds
127.0.0.1 on a port picked at run time.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import http.client
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from agent import demo
from agent.demo import mdstat_text
from agent.localbroker import stop_process

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
HEAVY_MODULES = ("pysnmp", "pyghmi", "prometheus_client", "jsonschema")
NODE_EXPORTER = "/usr/bin/prometheus-node-exporter"

# md0 (raid1) clean or with one of its two disks failed; md1 (raid6) stays clean.
MDSTAT = {"redundant": mdstat_text("clean", "clean"), "degraded": mdstat_text("failed", "clean")}
GROUP = "md/md0"


def write_atomically(path: Path, text: str) -> float:
    """Write ``text`` to ``path`` by a rename; the monotonic time right after the rename."""
    demo.write_atomically(path, text)
    return time.monotonic()


# --- processes ------------------------------------------------------------------------------


class Procs:
    """Every process the benchmark starts; ``stop_all`` ends each one by its own pid."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, argv: list[str], log: Path, cwd: Path | None = None) -> subprocess.Popen[bytes]:
        with log.open("ab") as out:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out, cwd=cwd)
        self.procs.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
        stop_process(proc, timeout)
        with contextlib.suppress(ValueError):
            self.procs.remove(proc)

    def stop_all(self) -> None:
        for proc in list(self.procs):
            self.stop(proc)


# --- /proc ----------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """utime + stime of the whole process (all threads), in seconds."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text.rsplit(")", 1)[1].split()  # the command name may contain spaces
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # fields 14 and 15 of stat(5)


def status_kb(pid: int) -> dict[str, int]:
    """The kB figures of /proc/<pid>/status (VmRSS, VmHWM, RssAnon, ...)."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if value.strip().endswith(" kB"):
            out[key] = int(value.split()[0])
    return out


@dataclass
class Usage:
    """RSS and CPU of one process over a measurement window."""

    window: float
    cpu_percent: float  # of one core
    rss_mb: float  # VmRSS at the end of the window
    rss_max_mb: float  # largest VmRSS sampled during the window
    hwm_mb: float  # VmHWM at the end: the peak since the process started
    anon_mb: float  # RssAnon at the end: the private part of VmRSS
    threads: int


def measure_usage(pid: int, window: float) -> Usage:
    """Sample a running process for ``window`` seconds, once a second."""
    t0, c0 = time.monotonic(), cpu_seconds(pid)
    rss_max = 0
    end = t0 + window
    while True:
        rss_max = max(rss_max, status_kb(pid)["VmRSS"])
        left = end - time.monotonic()
        if left <= 0:
            break
        time.sleep(min(1.0, left))
    t1, c1 = time.monotonic(), cpu_seconds(pid)
    st = status_kb(pid)
    threads = int(
        next(
            line.split()[1]
            for line in Path(f"/proc/{pid}/status").read_text().splitlines()
            if line.startswith("Threads:")
        )
    )
    return Usage(
        window=t1 - t0,
        cpu_percent=100.0 * (c1 - c0) / (t1 - t0),
        rss_mb=st["VmRSS"] / 1024,
        rss_max_mb=max(rss_max, st["VmRSS"]) / 1024,
        hwm_mb=st["VmHWM"] / 1024,
        anon_mb=st.get("RssAnon", 0) / 1024,
        threads=threads,
    )


# --- the machine ----------------------------------------------------------------------------


def machine() -> dict[str, str]:
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem = ""
    with contextlib.suppress(OSError, StopIteration):
        kb = next(
            int(line.split()[1])
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal:")
        )
        mem = f"{kb / 1024 / 1024:.1f} GiB"
    return {
        "cpu": model,
        "cores": f"{os.cpu_count()} logical, {len(os.sched_getaffinity(0))} usable",
        "memory": mem,
        "kernel": platform.release(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
    }


def loadavg() -> str:
    with contextlib.suppress(OSError):
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    return "?"


def first_line(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    text = (out.stdout or out.stderr).strip()
    return text.splitlines()[0] if text else "?"


def stamp() -> str:
    """Now, as the heading of a RESULTS.md section gives it."""
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def append_results(path: Path, text: str, header: str = "") -> None:
    """Append a section to ``path`` (``header`` first when the file is new) and say so."""
    fresh = not path.exists()
    with path.open("a") as f:
        if fresh:
            f.write(header)
        f.write("\n" + text)
    print(f"bench: appended to {path}", file=sys.stderr)


# --- statistics -----------------------------------------------------------------------------


@dataclass
class Dist:
    samples: list[float] = field(default_factory=list)  # seconds
    missed: int = 0

    def pct(self, p: float) -> float:
        """The p-th percentile, linear between closest ranks (p in 0..100)."""
        xs = sorted(self.samples)
        if len(xs) == 1:
            return xs[0]
        k = (len(xs) - 1) * p / 100
        lo = int(k)
        hi = min(lo + 1, len(xs) - 1)
        return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    def summary_ms(self, digits: int = 0) -> str:
        """median / p90 / p99 / max in ms, the sample count and any misses."""
        if not self.samples:
            return f"no samples ({self.missed} missed)"
        figures = (self.median, self.pct(90), self.pct(99), max(self.samples))
        s = " / ".join(f"{x * 1e3:.{digits}f}" for x in figures)
        s += f" ms (n={len(self.samples)})"
        return s + (f", {self.missed} missed" if self.missed else "")


# --- observers ------------------------------------------------------------------------------


class Changes:
    """When each source (events, health, scrape) saw md0 change state, by monotonic time."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.seen: dict[str, list[tuple[float, str]]] = {}
        self.last: dict[str, str] = {}

    def record(self, source: str, t: float, state: str, dedupe: bool = True) -> bool:
        """Note that ``source`` saw ``state`` at ``t``; False if that is no change (dedupe)."""
        with self.cond:
            if dedupe and self.last.get(source) == state:
                return False
            self.last[source] = state
            self.seen.setdefault(source, []).append((t, state))
            self.cond.notify_all()
            return True

    def first(self, source: str, since: float, state: str) -> float | None:
        for t, s in self.seen.get(source, ()):
            if t >= since and s == state:
                return t
        return None

    def wait(
        self, sources: list[str], since: float, state: str, timeout: float
    ) -> dict[str, float | None]:
        """For each source, the first time at or after ``since`` it saw ``state`` (or None)."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                found = {s: self.first(s, since, state) for s in sources}
                left = deadline - time.monotonic()
                if all(v is not None for v in found.values()) or left <= 0:
                    return found
                self.cond.wait(left)


class Subscriber:
    """A paho-mqtt subscriber to one agent's ``events`` and ``health`` topics."""

    def __init__(
        self, host: str, port: int, base: str, changes: Changes, group: str = GROUP
    ) -> None:
        self.base = base
        self.changes = changes
        self.group = group  # the group whose transitions are recorded
        self.last_health: dict | None = None  # the latest health document received
        # From the agent's evaluation (the payload's ``ts``) to the arrival here, wall clock.
        self.pipeline = {"events": Dist(), "health": Dist()}
        self.connected = threading.Event()
        self.client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=f"hotspare-bench-{os.getpid()}-{base.rsplit('/', 1)[-1]}",
        )
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe
        self.client.connect(host, port, keepalive=30)
        self.client.loop_start()
        if not self.connected.wait(10):
            self.stop()
            raise RuntimeError("the benchmark's MQTT subscriber could not subscribe")

    def _on_connect(self, client, userdata, flags, reason_code, properties=None) -> None:
        client.subscribe([(f"{self.base}/events", 1), (f"{self.base}/health", 1)])

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties=None) -> None:
        self.connected.set()

    def _on_message(self, client, userdata, msg) -> None:
        t, wall = time.monotonic(), time.time()  # first thing: the arrival time
        try:
            body = json.loads(msg.payload)
        except ValueError:
            return
        if msg.topic.endswith("/events"):
            if (
                body.get("type") == "transition"
                and body.get("scope") == "group"
                and body.get("id") == self.group
                and body.get("to")
            ):
                self.changes.record("events", t, body["to"], dedupe=False)
                self.pipeline["events"].samples.append(wall - body["ts"])
        elif msg.topic.endswith("/health"):
            self.last_health = body
            for g in body.get("groups", ()):
                if g["id"] != self.group:
                    continue
                before = self.changes.last.get("health")
                changed = self.changes.record("health", t, g["state"])
                if changed and before is not None and not msg.retain:
                    self.pipeline["health"].samples.append(wall - body["ts"])

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


# --- the peer: Prometheus node_exporter ------------------------------------------------------

_MD_LINE = re.compile(r'^(node_md_disks(?:_required)?)\{device="md0"(?:,state="(\w+)")?\} (\S+)$')


def md0_state_from_metrics(text: str) -> str | None:
    """'degraded' when node_exporter shows md0 with a failed disk or fewer active than required."""
    values: dict[str, float] = {}
    for line in text.splitlines():
        m = _MD_LINE.match(line)
        if m:
            values[m.group(2) or "required"] = float(m.group(3))
    if "active" not in values or "required" not in values:
        return None
    broken = values.get("failed", 0) > 0 or values["active"] < values["required"]
    return "degraded" if broken else "redundant"


def ensure_node_exporter() -> tuple[str | None, str]:
    """The node_exporter binary, installing Debian's package if it is missing; else a note."""
    if Path(NODE_EXPORTER).exists():
        return NODE_EXPORTER, ""
    if os.geteuid() != 0:
        return None, f"{NODE_EXPORTER} is missing and installing it needs root: peer skipped"
    if Path("/run/systemd/system").exists():
        # The package's postinst would start a system-wide node_exporter on *:9100.
        return None, (
            f"{NODE_EXPORTER} is missing; not installed by the benchmark on a host booted with "
            "systemd (the package starts a service listening on *:9100). Install "
            "prometheus-node-exporter yourself to include the peer: peer skipped"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    cmd = ["apt-get", "install", "-y", "-q", "prometheus-node-exporter"]
    print("bench: installing prometheus-node-exporter (apt-get install)", file=sys.stderr)
    for attempt in range(2):
        try:
            done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
        except (OSError, subprocess.TimeoutExpired) as e:
            return None, f"apt-get install prometheus-node-exporter failed ({e}): peer skipped"
        if done.returncode == 0 and Path(NODE_EXPORTER).exists():
            return NODE_EXPORTER, "prometheus-node-exporter was installed by this run"
        if attempt == 0:  # stale package lists are the usual cause: refresh once
            subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, timeout=600)
    tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["?"]
    return None, f"apt-get install prometheus-node-exporter failed ({tail[0]}): peer skipped"


def node_exporter_argv(binary: str, procfs: Path, port: int) -> tuple[list[str] | None, str]:
    """The command line for a node_exporter with only the mdadm collector, from its --help."""
    done = subprocess.run([binary, "--help"], capture_output=True, text=True, timeout=10)
    helptext = done.stdout + done.stderr  # kingpin prints its help on stderr
    needed = ("--collector.disable-defaults", "--collector.mdadm", "--path.procfs")
    missing = [f for f in needed if f not in helptext]
    if missing:
        return None, f"this node_exporter lacks {', '.join(missing)}: peer skipped"
    listen = "--web.listen-address" if "--web.listen-address" in helptext else None
    if listen is None:
        return None, "this node_exporter lacks --web.listen-address: peer skipped"
    return [
        binary,
        f"--path.procfs={procfs}",
        "--collector.disable-defaults",
        "--collector.mdadm",
        f"{listen}=127.0.0.1:{port}",
    ], ""


class Scrape:
    """GET /metrics over one kept-alive connection, as Prometheus does."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.conn: http.client.HTTPConnection | None = None

    def get(self) -> str:
        for attempt in range(2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
            try:
                self.conn.request("GET", "/metrics")
                resp = self.conn.getresponse()
                body = resp.read().decode()
                if resp.status != 200:
                    raise OSError(f"/metrics answered {resp.status}")
                return body
            except (OSError, http.client.HTTPException):
                self.close()
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


class Scraper(threading.Thread):
    """Scrapes node_exporter every ``period`` seconds on a fixed schedule, like Prometheus."""

    def __init__(self, port: int, period: float, changes: Changes | None) -> None:
        super().__init__(daemon=True, name="scraper")
        self.scrape = Scrape(port)
        self.period = period
        self.changes = changes
        self.halt = threading.Event()
        self.scrapes = 0
        self.errors = 0

    def run(self) -> None:
        next_at = time.monotonic()
        try:
            while not self.halt.is_set():
                try:
                    text = self.scrape.get()
                except OSError:
                    self.errors += 1
                else:
                    t = time.monotonic()  # the scrape is complete: the change is seen now
                    self.scrapes += 1
                    state = md0_state_from_metrics(text)
                    if state and self.changes is not None:
                        self.changes.record("scrape", t, state)
                next_at += self.period
                self.halt.wait(max(0.0, next_at - time.monotonic()))
        finally:
            self.scrape.close()

    def stop(self) -> None:
        self.halt.set()
        self.join(10)


def wait_http(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    scrape = Scrape(port)
    try:
        while True:
            try:
                scrape.get()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
    finally:
        scrape.close()


def which_hotspare() -> tuple[list[str], str]:
    """The ``hotspare`` console script beside this Python (what a package installs), and a note."""
    beside = Path(sys.executable).parent / "hotspare"
    on_path = shutil.which("hotspare")
    if beside.exists():
        note = ""
        if on_path and Path(on_path).resolve() != beside.resolve():
            note = f"`hotspare` on PATH is {on_path}, a wrapper; timed the script {beside} itself"
        return [str(beside)], note
    if on_path:
        return [on_path], ""
    return [
        sys.executable,
        "-m",
        "agent.cli",
    ], "no hotspare script found: timed python -m agent.cli"


def record_change(dists, changes, sources, t_w: float, state: str, timeout: float) -> None:
    """Wait for every source to show ``state`` after the change made at ``t_w``; file the delays.

    A source that missed it is counted, and given time to catch up before the next change.
    """
    found = changes.wait(sources, t_w, state, timeout)
    for source, t in found.items():
        if t is None:
            dists[source, state].missed += 1
        else:
            dists[source, state].samples.append(t - t_w)
    if None in found.values():
        changes.wait(sources, t_w, state, 15)

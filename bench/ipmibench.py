"""The IPMI part of the benchmark: sweep time, detection latency and scale, against ipmi_sim.

Run through ``bench/run.py`` (``--only ipmi`` for this part alone). Every BMC is OpenIPMI's
``ipmi_sim`` on 127.0.0.1, started through ``tests/ipmisim.py`` with the ``dell_like`` profile
(unique PSU names "PS1 Status" / "PS2 Status"); the peers are ``ipmitool`` and FreeIPMI's
``ipmi-sensors`` on the same simulator. Every simulator, agent and relay started here is
stopped in a ``finally``. What each figure means: bench/README.md.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import json
import secrets
import shutil
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import harness as h
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from collectors.ipmi import IpmiCollector

if TYPE_CHECKING:
    from run import Ctx

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
SITE = "bench"
PSU_NAMES = ("PS1 Status", "PS2 Status")
STALL = 0.300  # a sweep slower than this is a stall
TARGET_SWEEP_P99 = 0.050
TARGET_LATENCY_SLACK = 0.250  # p99 <= interval + 250 ms
TARGET_SCALE_CPU = 10.0  # % of one core
RELAY_DELAY = 0.001  # seconds added each way by bench/udprelay.py
SCALE_INTERVAL = 10.0


@dataclass(frozen=True)
class IpmiPlan:
    sweeps: int  # cached sweeps, direct and through the relay
    first_polls: int  # fresh processes timing the first poll
    peer_runs: int  # runs of ipmitool and of ipmi-sensors (warm)
    runs: int  # full runs (fail + restore) per latency configuration at interval 1 s
    runs_slow: int  # full runs at interval 5 s with SEL events (the SEL probe at work)
    bmcs: int  # simulated BMCs for the scale run
    settle: float  # seconds after every BMC was polled before the scale window
    window: float  # seconds of the scale window


IPMI_PLANS = {
    "full": IpmiPlan(
        sweeps=1000, first_polls=10, peer_runs=50, runs=30, runs_slow=15, bmcs=50, settle=15.0,
        window=60.0,
    ),
    "quick": IpmiPlan(
        sweeps=200, first_polls=3, peer_runs=10, runs=8, runs_slow=4, bmcs=50, settle=12.0,
        window=20.0,
    ),
}  # fmt: skip


def load_ipmisim() -> ModuleType:
    """tests/ipmisim.py, imported by path (``tests`` is not an installed package)."""
    name = "hotspare_bench_ipmisim"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, ROOT / "tests" / "ipmisim.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod  # dataclasses look their module up while the class is built
    spec.loader.exec_module(mod)
    return mod


# --- simulators -------------------------------------------------------------------------------


class Sims:
    """Every ipmi_sim the IPMI part starts; ``stop_all`` ends each one (by its own pid)."""

    def __init__(self, base: Path, password: str) -> None:
        self.sim = load_ipmisim()
        self.base = base
        self.password = password
        self.running: list[Any] = []

    def start(self, name: str) -> Any:
        s = self.sim.IpmiSim(
            self.sim.dell_like(PSU_NAMES), self.base / name, password=self.password, name=name
        )
        self.running.append(s)  # before start(): a half-started one is stopped too
        s.start()
        return s

    def stop(self, s: Any) -> None:
        with contextlib.suppress(Exception):
            s.stop()
        with contextlib.suppress(ValueError):
            self.running.remove(s)

    def stop_all(self) -> None:
        for s in list(self.running):
            self.stop(s)


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_relay(ctx: Ctx, target_port: int) -> tuple[subprocess.Popen[bytes], int]:
    """bench/udprelay.py in front of ``target_port``; answers the simulator's probe through it."""
    sim = load_ipmisim()
    for _ in range(3):
        port = free_udp_port()
        argv = [sys.executable, str(BENCH / "udprelay.py"), str(port), str(target_port)]
        argv += ["--delay", str(RELAY_DELAY)]
        proc = ctx.procs.start(argv, ctx.tmp / f"udprelay-{port}.log")
        deadline = time.monotonic() + 10
        while proc.poll() is None and time.monotonic() < deadline:
            if sim._probe(port, timeout=0.2):
                return proc, port
        ctx.procs.stop(proc)
    raise RuntimeError("the UDP relay did not start (see udprelay-*.log)")


def probe_rtt(port: int, n: int = 50) -> float:
    """Median round trip of a session-less Get Channel Authentication Capabilities."""
    sim = load_ipmisim()
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        if sim._probe(port, timeout=0.5):
            times.append(time.perf_counter() - t0)
    return h.Dist(times).median if times else float("nan")


# --- 1. sweep time ----------------------------------------------------------------------------


@dataclass
class Sweep:
    first: h.Dist  # first poll in a fresh process (after pyghmi is imported)
    import_s: float  # median time to import pyghmi in those processes
    cached: h.Dist
    relay: h.Dist | None
    cpu_per_sweep: float  # process CPU seconds per cached sweep (direct)
    commands: dict[str, float]  # IPMI commands per cached sweep, by name
    first_commands: dict[str, int]
    readings: int
    groups: dict[str, int]
    rtt_direct: float = 0.0  # median round trip of one datagram exchange, direct
    rtt_relay: float = 0.0  # the same through the relay
    ipmitool: h.Dist | None = None
    ipmi_sensors_cold: float | None = None
    ipmi_sensors: h.Dist | None = None
    ipmi_sensors_relay: h.Dist | None = None  # warm, through the same relay
    slow_first: list[tuple[float, int]] = field(default_factory=list)  # (s, commands) if > 1 s
    # bench/ipmi_stalls.py's summaries: with the collector's fix, and without it
    trace: dict[str, Any] | None = None
    trace_without: dict[str, Any] | None = None


def run_worker(port: int, pwfile: Path, sweeps: int) -> dict[str, Any]:
    argv = [sys.executable, str(BENCH / "ipmi_sweep.py"), str(port), str(pwfile), str(sweeps)]
    done = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, timeout=900)
    if done.returncode != 0:
        raise RuntimeError(f"bench/ipmi_sweep.py exited with {done.returncode}: {done.stderr}")
    return json.loads(done.stdout)


def trace_stalls(sweeps: int, without_fix: bool) -> dict[str, Any]:
    """bench/ipmi_stalls.py (its own simulator): every slow IPMI command, classified."""
    argv = [sys.executable, str(BENCH / "ipmi_stalls.py"), str(sweeps)]
    if without_fix:
        argv.append("--without-fix")
    done = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, timeout=1800)
    if done.returncode != 0:
        raise RuntimeError(f"bench/ipmi_stalls.py exited with {done.returncode}: {done.stderr}")
    return json.loads(done.stdout)


def time_runs(argv: list[str], n: int, expect: str) -> h.Dist:
    """Wall time of ``n`` runs of ``argv`` (a new process each); each must print ``expect``."""
    d = h.Dist()
    for _ in range(n):
        t0 = time.perf_counter()
        done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
        t = time.perf_counter() - t0
        if done.returncode != 0 or expect not in done.stdout:
            raise RuntimeError(
                f"{argv[0]} exited with {done.returncode}: {(done.stderr or done.stdout)[-500:]}"
            )
        d.samples.append(t)
    return d


def ipmi_sensors_argv(port: int, password: str, cache: Path) -> list[str]:
    """FreeIPMI: ``--hostname=HOST:PORT`` (man ipmi-sensors), lanplus, ``-W opensesspriv``."""
    return [
        "ipmi-sensors",
        f"--hostname=127.0.0.1:{port}",
        "--username=admin",
        f"--password={password}",
        "--driver-type=LAN_2_0",
        "--cipher-suite-id=3",
        "--workaround-flags=opensesspriv",
        f"--sdr-cache-directory={cache}",
        "--quiet-cache",
    ]


def sweep(ctx: Ctx, plan: IpmiPlan, sim: Any, pwfile: Path) -> Sweep:
    ctx.progress(f"ipmi sweep: first poll x{plan.first_polls}, {plan.sweeps} cached sweeps")
    main = run_worker(sim.port, pwfile, plan.sweeps)
    workers = [main] + [run_worker(sim.port, pwfile, 0) for _ in range(plan.first_polls - 1)]
    n = max(1, plan.sweeps)
    res = Sweep(
        first=h.Dist([w["first_s"] for w in workers]),
        import_s=h.Dist([w["import_s"] for w in workers]).median,
        cached=h.Dist(main["sweeps"]),
        relay=None,
        cpu_per_sweep=main["cpu_s"] / n,
        commands={k: v / n for k, v in main["commands"].items()},
        first_commands=main["first_commands"],
        readings=main["readings"],
        groups=main["groups"],
        slow_first=[
            (w["first_s"], sum(w["first_commands"].values())) for w in workers if w["first_s"] > 1
        ],
    )
    ctx.progress(f"ipmi stall trace: {plan.sweeps} sweeps with the wake-up fix, then without")
    res.trace = trace_stalls(plan.sweeps, without_fix=False)
    res.trace_without = trace_stalls(plan.sweeps, without_fix=True)
    freeipmi = shutil.which("ipmi-sensors") is not None
    cache = ctx.tmp / "freeipmi-sdr-cache"
    cache.mkdir(mode=0o700)  # FreeIPMI refuses a cache directory others can write

    def ipmi_sensors(port: int) -> tuple[float, h.Dist]:
        """Cold (building the SDR cache) once, then ``peer_runs`` warm runs."""
        argv = ipmi_sensors_argv(port, sim.password, cache)
        cold = time_runs([*argv, "--sdr-cache-recreate"], 1, PSU_NAMES[1]).median
        return cold, time_runs(argv, plan.peer_runs, PSU_NAMES[1])

    relay = None
    ctx.progress(f"ipmi sweep through a {RELAY_DELAY * 1e3:g} ms UDP relay: {plan.sweeps} sweeps")
    try:
        relay, relay_port = start_relay(ctx, sim.port)
        res.rtt_direct, res.rtt_relay = probe_rtt(sim.port), probe_rtt(relay_port)
        res.relay = h.Dist(run_worker(relay_port, pwfile, plan.sweeps)["sweeps"])
        if freeipmi:
            ctx.progress(f"ipmi peers: ipmi-sensors through the relay x{plan.peer_runs}")
            res.ipmi_sensors_relay = ipmi_sensors(relay_port)[1]
    finally:
        if relay is not None:
            ctx.procs.stop(relay)

    if shutil.which("ipmitool"):
        ctx.progress(f"ipmi peers: ipmitool sdr elist x{plan.peer_runs}")
        argv = [*sim.ipmitool_args(), "sdr", "elist"]
        time_runs(argv, 1, PSU_NAMES[1])  # the binary and its libraries into the page cache
        res.ipmitool = time_runs(argv, plan.peer_runs, PSU_NAMES[1])
    else:
        ctx.notes.append("ipmitool is not installed: its column is skipped")
    if freeipmi:
        ctx.progress(f"ipmi peers: ipmi-sensors (warm SDR cache) x{plan.peer_runs}")
        res.ipmi_sensors_cold, res.ipmi_sensors = ipmi_sensors(sim.port)
    else:
        ctx.notes.append("FreeIPMI's ipmi-sensors is not installed: its column is skipped")
    return res


# --- 2. detection latency ---------------------------------------------------------------------


@dataclass
class Latency:
    label: str  # what the configuration is, for the table
    interval: float
    events: bool  # the failure is logged in the SEL (set_bit(..., generate_event=True))
    dists: dict[tuple[str, str], h.Dist]  # (source, state) -> latencies
    pipeline: dict[str, h.Dist]
    rss_kb: int = 0
    poll_failures: int = 0


def write_agent_config(
    d: Path, name: str, interval: float, broker_url: str, entries: str, jitter: float | None
) -> Path:
    """An agent configuration; ``jitter`` None keeps the agent's default (1 s)."""
    cfg = d / "agent.toml"
    cfg.write_text(
        f'[agent]\nsite = "{SITE}"\nhost = "{name}"\ninterval = {interval!r}\n'
        + ("" if jitter is None else f"jitter = {jitter!r}\n")
        + f'state_dir = "{d / "state"}"\n'
        f'[mqtt]\nurl = "{broker_url}"\n{entries}'
    )
    return cfg


def ipmi_entry(name: str, port: int, pwfile: Path, extra: str = "") -> str:
    return (
        f'[[collectors.ipmi]]\nname = "{name}"\naddress = "127.0.0.1"\nport = {port}\n'
        f'username = "admin"\npassword_file = "{pwfile}"\n{extra}'
    )


def start_agent(ctx: Ctx, name: str, cfg: Path) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "agent.cli", "agent", "--config", str(cfg)]
    return ctx.procs.start(argv, cfg.parent / "agent.log", cwd=cfg.parent)


def poll_failures(log: Path) -> int:
    """Lines in which the agent says a collector failed (logged once per run of failures)."""
    with contextlib.suppress(OSError):
        return sum("failed:" in line for line in log.read_text(errors="replace").splitlines())
    return 0


def latency(
    ctx: Ctx,
    sim: Any,
    pwfile: Path,
    interval: float,
    runs: int,
    events: bool,
    label: str,
    relay: bool = False,
) -> Latency:
    """Fail and restore PSU 2 ``runs`` times; the agent polls the simulator (or the relay)."""
    relay_proc = None
    try:
        port = sim.port
        if relay:
            relay_proc, port = start_relay(ctx, sim.port)
        return _latency(ctx, sim, port, pwfile, interval, runs, events, label)
    finally:
        if relay_proc is not None:
            ctx.procs.stop(relay_proc)


def _latency(
    ctx: Ctx,
    sim: Any,
    port: int,
    pwfile: Path,
    interval: float,
    runs: int,
    events: bool,
    label: str,
) -> Latency:
    mod = load_ipmisim()
    psu, bit = mod.DELL.psus[1], mod.PSU_FAILURE
    sim.set_bit(psu, bit, False, generate_event=False)  # a clean start whatever came before
    name = f"ipmi-{interval:g}s-{'sel' if events else 'poll'}".replace(".", "_")
    name += "-relay" if port != sim.port else ""
    d = ctx.tmp / name
    d.mkdir()
    # jitter 0: the random phase comes from the benchmark's own waits, as in the md part
    entry = ipmi_entry("bmc", port, pwfile)
    cfg = write_agent_config(d, name, interval, ctx.broker.url, entry, jitter=0.0)
    base = f"hotspare/v1/{SITE}/{name}"
    changes = h.Changes()
    proc = start_agent(ctx, name, cfg)
    sub = None
    sources = ["events", "health"]
    try:
        sub = h.Subscriber("127.0.0.1", ctx.broker.port, base, changes, group="power")
        deadline = time.monotonic() + 60
        while changes.wait(["health"], 0.0, "redundant", 0.2)["health"] is None:
            if proc.poll() is not None or time.monotonic() > deadline:
                tail = (d / "agent.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"the IPMI agent did not publish power redundant:\n{tail}")
        timeout = 3 * interval + 5
        dists = {(s, st): h.Dist() for s in sources for st in ("degraded", "redundant")}
        for run in range(runs):
            for state, value in (("degraded", True), ("redundant", False)):
                time.sleep(ctx.rng.uniform(0.1, 0.1 + interval))
                t_w = time.monotonic()  # before the console command: includes its round trip
                sim.set_bit(psu, bit, value, generate_event=events)
                h.record_change(dists, changes, sources, t_w, state, timeout)
            if (run + 1) % 10 == 0 or run + 1 == runs:
                ctx.progress(f"ipmi latency, {label}: {run + 1}/{runs} runs")
        rss = h.status_kb(proc.pid).get("VmRSS", 0)
        pipeline = sub.pipeline
    finally:
        if sub is not None:
            sub.stop()
        ctx.procs.stop(proc)
        with contextlib.suppress(Exception):
            sim.set_bit(psu, bit, False, generate_event=False)
    return Latency(label, interval, events, dists, pipeline, rss, poll_failures(d / "agent.log"))


# --- 3. scale ---------------------------------------------------------------------------------


class MessageCounter:
    """Counts every message an agent publishes under its base topic (retained state, events)."""

    def __init__(self, port: int, base: str) -> None:
        self.count = 0
        self.subscribed = threading.Event()
        self.client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=f"hotspare-bench-count-{base.rsplit('/', 1)[-1]}",
        )
        self.client.on_connect = lambda c, *a: c.subscribe(f"{base}/#", 1)
        self.client.on_subscribe = lambda *a: self.subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port, keepalive=30)
        self.client.loop_start()
        if not self.subscribed.wait(10):
            self.stop()
            raise RuntimeError("the benchmark's MQTT message counter could not subscribe")

    def _on_message(self, client, userdata, msg) -> None:
        if not msg.retain:  # the retained copies sent on subscribing are not publications
            self.count += 1

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@dataclass
class Scale:
    bmcs: int
    sel: bool  # the SEL probe and reads on (the default)
    usage: h.Usage | None = None
    sims_cpu_percent: float = 0.0  # all simulators together, same window
    collectors_ok: int = 0  # collectors the last health document says are ok
    groups: int = 0
    components: int = 0
    poll_failures: int = 0
    ready_s: float = 0.0  # from the agent's start to every collector having polled once
    messages_per_s: float = 0.0  # MQTT messages the agent published, in the window
    note: str = ""


def scale(ctx: Ctx, plan: IpmiPlan, sims: list[Any], pwfile: Path, sel: bool) -> Scale:
    n = len(sims)
    name = f"ipmi-scale-{n}-{'sel' if sel else 'nosel'}"
    d = ctx.tmp / name
    d.mkdir()
    extra = "" if sel else "sel = false\n"
    entries = "".join(
        # one agent, many BMCs: each needs its own id prefix (bmc01/psu/1, bmc01/power, ...)
        ipmi_entry(f"bmc{i + 1:02d}", s.port, pwfile, f'{extra}id_prefix = "bmc{i + 1:02d}"\n')
        for i, s in enumerate(sims)
    )
    cfg = write_agent_config(d, name, SCALE_INTERVAL, ctx.broker.url, entries, jitter=None)
    base = f"hotspare/v1/{SITE}/{name}"
    res = Scale(n, sel)
    t0 = time.monotonic()
    proc = start_agent(ctx, name, cfg)
    sub = counter = None
    try:
        sub = h.Subscriber("127.0.0.1", ctx.broker.port, base, h.Changes(), group="bmc01/power")
        counter = MessageCounter(ctx.broker.port, base)
        deadline = t0 + 3 * SCALE_INTERVAL + 30
        while True:
            doc = sub.last_health
            ok = [c for c in (doc or {}).get("collectors", ()) if c.get("ok")]
            if len(ok) == n:
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                tail = (d / "agent.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"{len(ok)} of {n} IPMI collectors polled ok:\n{tail}")
            time.sleep(0.2)
        res.ready_s = time.monotonic() - t0
        what = "SEL on" if sel else "sel = false"
        ctx.progress(f"ipmi scale, {n} BMCs, {what}: {plan.settle + plan.window:g} s")
        time.sleep(plan.settle)
        pids = [s.proc.pid for s in sims if s.proc is not None]
        c0, w0, m0 = sum(h.cpu_seconds(p) for p in pids), time.monotonic(), counter.count
        res.usage = h.measure_usage(proc.pid, plan.window)
        c1, w1, m1 = sum(h.cpu_seconds(p) for p in pids), time.monotonic(), counter.count
        res.sims_cpu_percent = 100.0 * (c1 - c0) / (w1 - w0)
        res.messages_per_s = (m1 - m0) / (w1 - w0)
        doc = sub.last_health or {}
        res.collectors_ok = sum(1 for c in doc.get("collectors", ()) if c.get("ok"))
        res.groups = len(doc.get("groups", ()))
        res.components = len(doc.get("components", ()))
    finally:
        for client in (sub, counter):
            if client is not None:
                client.stop()
        ctx.procs.stop(proc)
    res.poll_failures = poll_failures(d / "agent.log")
    return res


# --- the whole part ---------------------------------------------------------------------------


@dataclass
class IpmiResults:
    plan: IpmiPlan
    sweep: Sweep
    latency: list[Latency]
    scale: list[Scale]
    scale_note: str = ""
    versions: list[str] = field(default_factory=list)
    elapsed: float = 0.0


def run(ctx: Ctx, plan: IpmiPlan) -> IpmiResults:
    started = time.monotonic()
    password = "bench-" + secrets.token_hex(4)
    pwfile = ctx.tmp / "bmc.pass"
    pwfile.write_text(password + "\n")
    pwfile.chmod(0o600)
    sims = Sims(ctx.tmp / "sims", password)
    try:
        sim = sims.start("bmc")
        sw = sweep(ctx, plan, sim, pwfile)
        lats = [
            latency(ctx, sim, pwfile, 1.0, plan.runs, True, "interval 1 s, failure logged in SEL"),
            latency(ctx, sim, pwfile, 1.0, plan.runs, False, "interval 1 s, no SEL event"),
            latency(
                ctx,
                sim,
                pwfile,
                1.0,
                plan.runs,
                False,
                f"interval 1 s, no SEL event, through the {RELAY_DELAY * 1e3:g} ms relay (control)",
                relay=True,
            ),
        ]
        if plan.runs_slow:
            label = "interval 5 s, failure logged in SEL"
            lats.append(latency(ctx, sim, pwfile, 5.0, plan.runs_slow, True, label))
        sims.stop(sim)

        ctx.progress(f"ipmi scale: starting {plan.bmcs} simulators")
        many, note = [], ""
        for i in range(plan.bmcs):
            try:
                many.append(sims.start(f"scale{i + 1:02d}"))
            except Exception as e:  # too heavy for this machine: measure what is possible
                note = f"only {len(many)} of {plan.bmcs} simulators started ({e})"
                ctx.notes.append(note)
                break
        scales = []
        if many:
            scales.append(scale(ctx, plan, many, pwfile, sel=True))
            scales.append(scale(ctx, plan, many, pwfile, sel=False))
    finally:
        sims.stop_all()
    res = IpmiResults(plan, sw, lats, scales, note)
    res.versions = versions()
    res.elapsed = time.monotonic() - started
    return res


def versions() -> list[str]:
    out = []
    with contextlib.suppress(importlib.metadata.PackageNotFoundError):
        out.append(f"pyghmi {importlib.metadata.version('pyghmi')}")
    for pkg in ("openipmi", "ipmitool", "freeipmi-tools"):
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            v = subprocess.run(
                ["dpkg-query", "-W", "-f", "${Version}", pkg],
                capture_output=True,
                text=True,
                timeout=10,
            ).stdout.strip()
            if v:
                out.append(f"{pkg} {v}")
    return out


# --- the report -------------------------------------------------------------------------------


def met(ok: bool) -> str:
    return "met" if ok else "**missed**"


def stalls(d: h.Dist) -> str:
    n = sum(1 for x in d.samples if x > STALL)
    if not n:
        return f"no stalls (none > {STALL * 1e3:.0f} ms)"
    worst = max(d.samples)
    return f"**{n} stall(s) > {STALL * 1e3:.0f} ms** (worst {worst * 1e3:.0f} ms)"


def sweep_target(d: h.Dist, peer: h.Dist | None) -> str:
    parts = []
    if peer is not None and peer.samples:
        parts.append(
            f"median <= `ipmi-sensors` warm ({peer.median * 1e3:.0f} ms): "
            f"{met(d.median <= peer.median)}"
        )
    else:
        parts.append("median <= `ipmi-sensors` warm: no peer")
    parts.append(f"p99 <= {TARGET_SWEEP_P99 * 1e3:.0f} ms: {met(d.pct(99) <= TARGET_SWEEP_P99)}")
    return "; ".join(parts)


def commands_text(commands: dict[str, float] | dict[str, int]) -> str:
    return ", ".join(f"{v:g} {k}" for k, v in sorted(commands.items(), key=lambda x: -x[1]))


def build_rows(r: IpmiResults) -> list[tuple[str, str, str, str]]:
    s = r.sweep
    rows: list[tuple[str, str, str, str]] = []
    tool = (
        f"`ipmitool -I lanplus -C 3 ... sdr elist` (new process each; reads the SDR every time): "
        f"{s.ipmitool.summary_ms()}"
        if s.ipmitool
        else "skipped"
    )
    rows.append(
        (
            "first poll: session + SDR + sensors + SEL (fresh process; pyghmi already imported) "
            "(median / p90 / p99 / max)",
            f"{s.first.summary_ms()}; importing pyghmi took {s.import_s * 1e3:.0f} ms more; "
            f"{sum(s.first_commands.values())} IPMI commands ({commands_text(s.first_commands)})"
            + (
                "; **slower than 1 s: "
                + ", ".join(f"{t * 1e3:.0f} ms ({c} commands)" for t, c in s.slow_first)
                + "**"
                if s.slow_first
                else ""
            ),
            tool,
            "—",
        )
    )
    peer = (
        f"`ipmi-sensors -W opensesspriv` with a warm SDR cache (new process each): "
        f"{s.ipmi_sensors.summary_ms()}; cold (building the cache) {s.ipmi_sensors_cold * 1e3:.0f} ms"
        if s.ipmi_sensors and s.ipmi_sensors_cold is not None
        else "skipped"
    )
    rows.append(
        (
            "cached sweep, direct to the simulator: `collect` on a kept session "
            "(median / p90 / p99 / max)",
            f"{s.cached.summary_ms(1)}; {stalls(s.cached)}",
            peer,
            sweep_target(s.cached, s.ipmi_sensors),
        )
    )
    if s.relay is not None:
        rows.append(
            (
                f"cached sweep through a UDP relay adding {RELAY_DELAY * 1e3:g} ms each way "
                f"(one round trip: {s.rtt_relay * 1e3:.2f} ms vs {s.rtt_direct * 1e3:.2f} ms "
                "direct) (median / p90 / p99 / max)",
                f"{s.relay.summary_ms(1)}; {stalls(s.relay)}",
                f"`ipmi-sensors` warm, through the same relay: {s.ipmi_sensors_relay.summary_ms()}"
                if s.ipmi_sensors_relay
                else "skipped",
                "for reference: " + sweep_target(s.relay, s.ipmi_sensors_relay),
            )
        )
    if s.trace is not None and s.trace_without is not None:

        def traced(t: dict[str, Any]) -> str:
            kinds = ", ".join(f"{n} {k}" for k, n in sorted(t["kinds"].items())) or "none"
            return (
                f"{t['slow_commands']} of {t['commands']} commands > 100 ms ({kinds}); sweeps "
                f"{t['sweep_ms_median']:.1f} / {t['sweep_ms_p99']:.1f} / {t['sweep_ms_max']:.1f} "
                "ms (median / p99 / max)"
            )

        rows.append(
            (
                f"why sweeps stall: every IPMI command > 100 ms traced in {s.trace['sweeps']} "
                "cached sweeps (`bench/ipmi_stalls.py`; 'reply before wait': pyghmi's I/O thread "
                "had read the reply before the caller registered its wait)",
                f"with `collectors/pyghmi_wakeup.py` (as the collector runs): {traced(s.trace)}; "
                f"without it: {traced(s.trace_without)}",
                "—",
                "—",
            )
        )
    total = sum(s.commands.values())
    by_name = commands_text(s.commands)
    rows.append(
        (
            "IPMI commands per cached sweep; CPU per sweep",
            f"{total:g} ({by_name}); {s.cpu_per_sweep * 1e3:.1f} ms CPU per sweep "
            f"({s.readings} readings, groups {s.groups})",
            "—",
            "—",
        )
    )
    for lat in r.latency:
        limit = lat.interval + TARGET_LATENCY_SLACK
        for state, what in (("degraded", "detection"), ("redundant", "recovery")):
            d = lat.dists["events", state]
            target = f"p99 <= {limit * 1e3:.0f} ms"
            if d.samples:
                target += f": {met(d.pct(99) <= limit and not d.missed)}"
            cell = d.summary_ms()
            probe = IpmiCollector.probe_every
            if lat.events and lat.interval > probe and d.samples:
                fast = sum(1 for x in d.samples if x <= probe + TARGET_LATENCY_SLACK)
                cell += (
                    f"; {fast} of {len(d.samples)} within {(probe + TARGET_LATENCY_SLACK) * 1e3:.0f}"
                    f" ms (the SEL probe's period {probe:g} s + 250 ms)"
                )
            rows.append(
                (
                    f"PSU {what} latency, {lat.label}: `events` power -> {state} "
                    "(median / p90 / p99 / max)",
                    cell,
                    "—",
                    target,
                )
            )
        for state in ("degraded", "redundant"):
            rows.append(
                (
                    f"retained `health` shows power {state}, {lat.label}",
                    lat.dists["health", state].summary_ms(),
                    "—",
                    "—",
                )
            )
        extra = f"; {lat.poll_failures} poll failure(s) logged" if lat.poll_failures else ""
        rows.append(
            (
                f"of which after the poll, {lat.label}: from the agent's evaluation to arrival",
                f"`events` {lat.pipeline['events'].summary_ms(1)}; "
                f"`health` {lat.pipeline['health'].summary_ms(1)}; "
                f"agent VmRSS {lat.rss_kb / 1024:.1f} MB{extra}",
                "—",
                "—",
            )
        )
    for sc in r.scale:
        u = sc.usage
        what = "SEL probe on (default)" if sc.sel else "`sel = false` (no SEL probe)"
        label = (
            f"scale: {sc.bmcs} simulated BMCs in one agent, interval {SCALE_INTERVAL:g} s, {what}"
        )
        if sc.bmcs < r.plan.bmcs:
            label += f" (**{sc.bmcs}, not {r.plan.bmcs}**)"
        if u is None:
            rows.append((label, "not measured", "—", "—"))
            continue
        cell = (
            f"CPU {u.cpu_percent:.2f} % of a core ({u.window:.0f} s, {u.threads} threads); "
            f"VmRSS {u.rss_mb:.1f} MB (peak {u.rss_max_mb:.1f}, VmHWM {u.hwm_mb:.1f}); "
            f"{sc.collectors_ok}/{sc.bmcs} collectors ok, {sc.groups} groups and "
            f"{sc.components} components in `health`; all polled {sc.ready_s:.1f} s after start; "
            f"{sc.messages_per_s:.1f} MQTT messages/s published"
        )
        if sc.poll_failures:
            cell += f"; {sc.poll_failures} poll failure(s) logged"
        rows.append(
            (
                label,
                cell,
                f"(the {sc.bmcs} simulators together: {sc.sims_cpu_percent:.1f} % of a core)",
                f"< {TARGET_SCALE_CPU:g} % of a core: {met(u.cpu_percent < TARGET_SCALE_CPU)}"
                if sc.sel
                else "—",
            )
        )
    return rows


def markdown_table(rows: list[tuple[str, str, str, str]]) -> str:
    head = (
        "| figure | hotspare | peer (ipmitool / FreeIPMI ipmi-sensors) | target |\n"
        "| --- | --- | --- | --- |\n"
    )
    return head + "".join(f"| {a} | {b} | {c} | {d} |\n" for a, b, c, d in rows)


def describe(plan: IpmiPlan) -> str:
    return (
        f"IPMI: {plan.sweeps} cached sweeps, {plan.peer_runs} peer runs, {plan.runs} latency runs "
        f"per configuration at 1 s and {plan.runs_slow} at 5 s, {plan.bmcs} BMCs with "
        f"{plan.window:g} s windows"
    )

"""A two-host lab for the promotion tests and the benchmark: network namespaces, a bridge,
real keepalived doing VRRP (version 3), mosquitto, simulated BMCs with power control.

Layout (every name starts with ``hsv``; nothing else on the machine is touched)::

    root namespace                                   hsv-a ("pri")       hsv-b ("sby")
    hsvbr0  10.213.77.254  mosquitto (agents)        eth0 10.213.77.1    eth0 10.213.77.2
            10.213.77.253  UDP relays to the BMCs    keepalived prio 150 keepalived prio 100
            127.0.0.1      mosquitto (the test)      agent, VIP server   agent, VIP server
    VIP 10.213.77.100 (VRRP, vrid 77, advert_int 0.1)

The BMCs are ``tests.ipmisim.IpmiSim`` (ipmi_sim on 127.0.0.1) with a ``chassis_control``
program: it keeps the chassis power state in a file, and powering the chassis off kills
every process in the host's namespace and takes its link down, as losing power would. A UDP relay on 10.213.77.253
makes each BMC reachable from the namespaces (the management network); ``block()`` makes it
unreachable. A partition between a host and the broker is a blackhole route in its
namespace: VRRP on the link keeps working.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import tests.ipmisim as ipmisim
from agent.localbroker import LocalBroker, free_port

ROOT = Path(__file__).parent.parent
BRIDGE = "hsvbr0"
PREFIX = "10.213.77"
BROKER_IP = f"{PREFIX}.254"
BMC_IP = f"{PREFIX}.253"
VIP = f"{PREFIX}.100"
HOSTS = {"pri": ("hsv-a", f"{PREFIX}.1", 150), "sby": ("hsv-b", f"{PREFIX}.2", 100)}
SITE = "lab"


def sh(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, check=check)


def available() -> str:
    """Why the lab cannot run here ('' when it can)."""
    if os.geteuid() != 0:
        return "needs root (network namespaces)"
    for tool in ("keepalived", "ip", "ipmi_sim", "ipmitool"):
        if not shutil.which(tool) and not Path(f"/usr/sbin/{tool}").exists():
            return f"{tool} is not installed (scripts/bootstrap installs it)"
    return ""


class Network:
    """The bridge, the two namespaces and their veth links."""

    def __enter__(self) -> Network:
        self.teardown()  # what a killed earlier run may have left
        try:
            self._setup()
        except BaseException:
            self.teardown()
            raise
        return self

    def _setup(self) -> None:
        sh("ip", "link", "add", BRIDGE, "type", "bridge", "mcast_snooping", "0")
        sh("ip", "addr", "add", f"{BROKER_IP}/24", "dev", BRIDGE)
        sh("ip", "addr", "add", f"{BMC_IP}/24", "dev", BRIDGE)
        sh("ip", "link", "set", BRIDGE, "up")
        for ns, addr, _ in HOSTS.values():
            port = f"hsv{ns[-1]}0"
            sh("ip", "netns", "add", ns)
            sh("ip", "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns)
            sh("ip", "link", "set", port, "master", BRIDGE, "up")
            sh("ip", "-n", ns, "addr", "add", f"{addr}/24", "dev", "eth0")
            sh("ip", "-n", ns, "link", "set", "eth0", "up")
            sh("ip", "-n", ns, "link", "set", "lo", "up")

    def __exit__(self, *exc: object) -> None:
        self.teardown()

    @staticmethod
    def teardown() -> None:
        for ns, _, _ in HOSTS.values():
            kill_namespace(ns)
            sh("ip", "link", "del", f"hsv{ns[-1]}0", check=False)
            sh("ip", "netns", "del", ns, check=False)
        sh("ip", "link", "del", BRIDGE, check=False)


def kill_namespace(ns: str) -> None:
    """SIGKILL every process in ``ns`` (all of them were started by the lab)."""
    pids = sh("ip", "netns", "pids", ns, check=False).stdout.split()
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid), signal.SIGKILL)


def partition(ns: str, on: bool) -> None:
    """Cut ``ns`` off the broker (a blackhole route to its address), or heal the cut."""
    verb = "add" if on else "del"
    sh("ip", "-n", ns, "route", verb, "blackhole", f"{BROKER_IP}/32", check=on)


class UdpRelay:
    """``BMC_IP:port`` -> ``127.0.0.1:target``: one upstream socket per client, a thread."""

    def __init__(self, target: int) -> None:
        self.target = ("127.0.0.1", target)
        self.front = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.front.bind((BMC_IP, 0))
        self.port = self.front.getsockname()[1]
        self.blocked = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"relay-{self.port}")
        self._thread.start()

    def _run(self) -> None:
        upstream: dict[tuple[str, int], socket.socket] = {}
        client_of: dict[socket.socket, tuple[str, int]] = {}
        while not self._stop.is_set():
            readable, _, _ = select.select([self.front, *client_of], [], [], 0.2)
            for sock in readable:
                data, addr = sock.recvfrom(65535)
                if self.blocked:
                    continue
                with contextlib.suppress(OSError):
                    if sock is self.front:
                        up = upstream.get(addr)
                        if up is None:
                            up = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                            up.bind(("127.0.0.1", 0))
                            upstream[addr], client_of[up] = up, addr
                        up.sendto(data, self.target)
                    else:
                        self.front.sendto(data, client_of[sock])
        for s in [self.front, *client_of]:
            s.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)


CHASSIS_CONTROL = """\
#!{python}
# chassis_control program of a simulated BMC: "<mc> get power" / "<mc> set power 0|1"
import os, signal, subprocess, sys
from pathlib import Path
state = Path({state!r})
args = sys.argv[2:]
if args and args[0] == "get":
    print("power:" + (state.read_text().strip() if state.exists() else "1"))
elif args and args[0] == "set":
    pairs = dict(zip(args[1::2], args[2::2]))
    if "power" in pairs:
        state.write_text(pairs["power"])
        link = "up" if pairs["power"] == "1" else "down"
        subprocess.run(["ip", "-n", {ns!r}, "link", "set", "eth0", link])
        if pairs["power"] == "0":  # the host loses power: everything in it stops
            pids = subprocess.run(["ip", "netns", "pids", {ns!r}], capture_output=True,
                                  text=True).stdout.split()
            for pid in pids:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
"""


@contextlib.contextmanager
def _with_chassis_control(program: Path) -> Iterator[None]:
    original = ipmisim.lan_conf_text

    def lan_conf(*args: object, **kw: object) -> str:
        return original(*args, **kw) + f'chassis_control "{program} 0x20"\n'  # type: ignore[arg-type]

    ipmisim.lan_conf_text = lan_conf  # type: ignore[assignment]
    try:
        yield
    finally:
        ipmisim.lan_conf_text = original


@dataclass
class Bmc:
    sim: ipmisim.IpmiSim
    relay: UdpRelay
    state: Path

    def power(self) -> str:
        """What ``ipmitool chassis power status`` says: 'on' or 'off'."""
        out = sh(*self.sim.ipmitool_args(), "chassis", "power", "status", check=False).stdout
        return out.strip().rsplit(" ", 1)[-1]

    def close(self) -> None:
        self.relay.close()
        self.sim.stop()


def start_bmc(workdir: Path, ns: str) -> Bmc:
    workdir.mkdir(parents=True, exist_ok=True)
    state = workdir / "power"
    state.write_text("1")
    program = workdir / "chassis_control"
    program.write_text(CHASSIS_CONTROL.format(python=sys.executable, state=str(state), ns=ns))
    program.chmod(0o755)
    with _with_chassis_control(program):
        sim = ipmisim.IpmiSim(ipmisim.dell_like(), workdir / "sim").start()
    return Bmc(sim, UdpRelay(sim.port), state)


KEEPALIVED = """\
global_defs {{
    router_id {name}
    vrrp_version 3
    script_user root
    enable_script_security
}}
track_file hotspare {{
    file {track}
}}
vrrp_instance hsv {{
    state BACKUP
    interface eth0
    virtual_router_id 77
    priority {priority}
    advert_int {advert}
    track_file {{
        hotspare weight 1
    }}
    virtual_ipaddress {{
        {vip}/24 dev eth0
    }}
}}
"""

VIP_SERVER = """\
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1])))
s.listen(16)
while True:
    c, _ = s.accept()
    c.sendall(sys.argv[2].encode())
    c.close()
"""


@dataclass
class Host:
    name: str
    ns: str
    addr: str
    priority: int
    workdir: Path
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def track(self) -> Path:
        return self.workdir / "vrrp-track"

    def spawn(self, argv: list[str], log: str, env: dict[str, str] | None = None) -> None:
        with (self.workdir / log).open("ab") as fh:
            self.procs.append(
                subprocess.Popen(
                    ["ip", "netns", "exec", self.ns, *argv],
                    stdin=subprocess.DEVNULL,
                    stdout=fh,
                    stderr=fh,
                    cwd=ROOT,
                    env=env,
                )
            )

    def start_keepalived(self, advert: float) -> None:
        self.track.write_text("0\n")
        conf = self.workdir / "keepalived.conf"
        conf.write_text(
            KEEPALIVED.format(
                name=self.name, track=self.track, priority=self.priority, advert=advert, vip=VIP
            )
        )
        d = self.workdir
        self.spawn(
            [
                "keepalived",
                "--dont-fork",
                "--log-console",
                "--vrrp",
                "--use-file",
                str(conf),
                "--pid",
                str(d / "keepalived.pid"),
                "--vrrp_pid",
                str(d / "vrrp.pid"),
            ],
            "keepalived.log",
        )

    def start_vip_server(self, port: int) -> None:
        self.spawn([sys.executable, "-c", VIP_SERVER, str(port), self.name], "server.log")

    def start_agent(self, config_text: str) -> None:
        conf = self.workdir / "agent.toml"
        conf.write_text(config_text)
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.spawn(
            [sys.executable, "-m", "agent.cli", "agent", "--config", str(conf)], "agent.log", env
        )

    def has_vip(self) -> bool:
        """The VIP is configured on a link that is up (a powered-off host's is down)."""
        out = sh("ip", "-n", self.ns, "-4", "addr", "show", "dev", "eth0", check=False).stdout
        return f" {VIP}/" in out and "state UP" in out

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        kill_namespace(self.ns)
        self.procs.clear()
        # what a killed keepalived or a powered-off host leaves behind
        sh("ip", "-n", self.ns, "addr", "del", f"{VIP}/24", "dev", "eth0", check=False)
        sh("ip", "-n", self.ns, "link", "set", "eth0", "up", check=False)
        sh("ip", "neigh", "flush", "to", VIP, check=False)

    def log(self, name: str = "agent.log") -> str:
        path = self.workdir / name
        return path.read_text(errors="replace") if path.exists() else ""


def who_answers(port: int, timeout: float = 0.3) -> str:
    """The name of the host serving the VIP ('' when nobody answers)."""
    try:
        with socket.create_connection((VIP, port), timeout=timeout) as s:
            s.settimeout(timeout)
            return s.recv(64).decode()
    except OSError:
        return ""


def wait_for(pred, timeout: float, step: float = 0.02, what: str = ""):
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or pred}")
        time.sleep(step)


def broker() -> LocalBroker:
    """mosquitto on 127.0.0.1 (for the test) and on the bridge address (for the agents)."""
    port = free_port()
    return LocalBroker(port, listener=f"allow_anonymous true\nlistener {port} {BROKER_IP}")


def password_file(workdir: Path, password: str = "password") -> Path:
    path = workdir / "bmc.pass"
    path.write_text(password + "\n")
    path.chmod(0o600)
    return path


def agent_config(
    host: str,
    state_dir: Path,
    broker_port: int,
    collectors: str,
    promotion: str,
    interval: float = 0.5,
) -> str:
    return (
        f'[agent]\nsite = "{SITE}"\nhost = "{host}"\ninterval = {interval}\ntimeout = 2.0\n'
        f'jitter = 0\nheartbeat = 5\nstate_dir = "{state_dir}"\n'
        f'[mqtt]\nurl = "mqtt://{BROKER_IP}:{broker_port}"\nkeepalive = 2\n'
        f"{collectors}\n{promotion}"
    )


def ipmi_collector(bmc: Bmc, pw: Path, interval: float = 0.5) -> str:
    return (
        f'[[collectors.ipmi]]\naddress = "{BMC_IP}"\nport = {bmc.relay.port}\n'
        f'username = "admin"\npassword_file = "{pw}"\ninterval = {interval}\n'
    )


def events(messages, host: str) -> list[dict]:
    out = []
    for m in messages:
        if m.topic == f"hotspare/v1/{SITE}/{host}/events" and m.payload:
            out.append(json.loads(m.payload))
    return out


PRIMARY_POLICIES = """
[promotion]
[[promotion.policy]]
name = "step-down"
when = ["group:*=failed", "group:power=degraded"]
action = "keepalived"
cooldown = 5.0
[promotion.policy.keepalived]
track_file = "{track}"
engaged = -100

[[promotion.policy]]
name = "isolated"
when = ["broker=lost"]
action = "keepalived"
hold_down = 3.0
cooldown = 5.0
[promotion.policy.keepalived]
track_file = "{track}"
engaged = -254
"""

STANDBY_POLICIES = """
[promotion]
[[promotion.policy]]
name = "promote-me"
when = ["peer:pri=offline|failed"]
intent = "promote"
action = "keepalived"
hold_down = 1.0
cooldown = 30.0
[promotion.policy.keepalived]
track_file = "{track}"
engaged = 100
[promotion.policy.fence]
method = "ipmi"
peer = "pri"
address = "{bmc_ip}"
port = {bmc_port}
username = "admin"
password_file = "{pw}"
verify_timeout = 5.0
"""

CLEAN_MDSTAT = Path(__file__).parent / "fixtures" / "mdstat" / "pymdstat__mdstat.01.txt"
VIP_PORT = 8077


class Pair:
    """A primary and a standby with keepalived, VIP servers, agents, and the primary's BMC."""

    def __init__(
        self,
        tmp: Path,
        broker_port: int,
        advert: float = 0.1,
        interval: float = 0.5,
        primary_policies: str = PRIMARY_POLICIES,
        standby_policies: str = STANDBY_POLICIES,
    ) -> None:
        self.advert, self.interval = advert, interval
        self.primary_policies, self.standby_policies = primary_policies, standby_policies
        self.hosts: dict[str, Host] = {}
        for name, (ns, addr, prio) in HOSTS.items():
            d = tmp / name
            d.mkdir()
            self.hosts[name] = Host(name, ns, addr, prio, d)
        self.pri, self.sby = self.hosts["pri"], self.hosts["sby"]
        self.bmc = start_bmc(tmp / "bmc-pri", self.pri.ns)
        self.pw = password_file(tmp)
        self.broker_port = broker_port

    def start(self) -> None:
        for h in self.hosts.values():
            h.start_keepalived(self.advert)
            h.start_vip_server(VIP_PORT)
        wait_for(lambda: who_answers(VIP_PORT) == "pri", 20, what="the VIP on pri")
        self.pri.start_agent(
            agent_config(
                "pri",
                self.pri.workdir / "state",
                self.broker_port,
                ipmi_collector(self.bmc, self.pw, self.interval),
                self.primary_policies.format(track=self.pri.track),
                self.interval,
            )
        )
        self.sby.start_agent(
            agent_config(
                "sby",
                self.sby.workdir / "state",
                self.broker_port,
                f'[[collectors.mdstat]]\npath = "{CLEAN_MDSTAT}"\n',
                self.standby_policies.format(
                    track=self.sby.track,
                    bmc_ip=BMC_IP,
                    bmc_port=self.bmc.relay.port,
                    pw=self.pw,
                ),
            )
        )

    def close(self) -> None:
        self.bmc.close()  # first: a simulator stopping may power the chassis off
        for h in self.hosts.values():
            h.stop()  # brings the link back up
            partition(h.ns, False)

    def diagnostics(self) -> str:
        return "\n".join(
            f"--- {h.name} {f}:\n{h.log(f)[-3000:]}"
            for h in self.hosts.values()
            for f in ("agent.log", "keepalived.log")
        )

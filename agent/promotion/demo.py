"""``hotspare demo --promotion``: a primary and a standby; PSU failures in the primary's
simulated BMC end with the standby promoted, the event trail on screen.

Everything runs on 127.0.0.1 from a temporary directory: a private mosquitto, the
primary's BMC (OpenIPMI's ``ipmi_sim`` through the test harness ``tests/ipmisim.py``, so
this demo runs from a source checkout), and two agents: ``db-01`` polls the BMC and steps
down (keepalived track file -100) when its power group is degraded; ``db-02`` watches
db-01 and, once db-01 is FAILED, fences it through that BMC (chassis power off, read back
as off) and promotes itself (track file +100). No keepalived runs here: the track files
stand for what keepalived would read (``tests/test_promotion_peer.py`` runs the real one).
"""

from __future__ import annotations

import contextlib
import importlib
import json
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

from ..demo import _start_dashboard
from ..localbroker import LocalBroker
from ..watch import _event_line as event_line
from ..watch import watch

CHECKOUT = Path(__file__).resolve().parents[2]

CHASSIS_CONTROL = """\
#!{python}
# chassis_control of the demo BMC: "<mc> get power" / "<mc> set power 0|1", kept in a file;
# power off also kills the primary's agent, as losing power would
import os, signal, sys
from pathlib import Path
state, pidfile = Path({state!r}), Path({pidfile!r})
args = sys.argv[2:]
if args and args[0] == "get":
    print("power:" + (state.read_text().strip() if state.exists() else "1"))
elif args and args[0] == "set":
    pairs = dict(zip(args[1::2], args[2::2]))
    if "power" in pairs:
        state.write_text(pairs["power"])
        if pairs["power"] == "0" and pidfile.exists():
            try:
                os.kill(int(pidfile.read_text()), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass
"""

PRIMARY = """
[[collectors.ipmi]]
address = "127.0.0.1"
port = {port}
username = "admin"
password_file = "{pw}"
interval = 0.5
[promotion]
[[promotion.policy]]
name = "step-down"
when = ["group:*=failed", "group:power=degraded"]
action = "keepalived"
[promotion.policy.keepalived]
track_file = "{track}"
engaged = -100
"""

STANDBY = """
[[collectors.mdstat]]
path = "{mdstat}"
[promotion]
[[promotion.policy]]
name = "promote-me"
when = ["peer:db-01=offline|failed"]
intent = "promote"
action = "keepalived"
hold_down = 1.0
[promotion.policy.keepalived]
track_file = "{track}"
engaged = 100
[promotion.policy.fence]
method = "ipmi"
peer = "db-01"
address = "127.0.0.1"
port = {port}
username = "admin"
password_file = "{pw}"
verify_timeout = 5.0
"""

MDSTAT = (
    "Personalities : [raid1]\nmd0 : active raid1 sdb1[1] sda1[0]\n"
    "      487104 blocks super 1.2 [2/2] [UU]\n\nunused devices: <none>\n"
)


def _ipmisim() -> ModuleType:
    if not (CHECKOUT / "tests" / "ipmisim.py").exists():
        raise FileNotFoundError("the promotion demo runs from a source checkout (tests/ipmisim.py)")
    if str(CHECKOUT) not in sys.path:
        sys.path.insert(0, str(CHECKOUT))
    return importlib.import_module("tests.ipmisim")


@contextlib.contextmanager
def _bmc(ipmisim: ModuleType, workdir: Path) -> Iterator[object]:
    workdir.mkdir(parents=True, exist_ok=True)
    program = workdir / "chassis_control"
    program.write_text(
        CHASSIS_CONTROL.format(
            python=sys.executable,
            state=str(workdir / "power"),
            pidfile=str(workdir.parent / "db-01.pid"),
        )
    )
    program.chmod(0o755)
    original = ipmisim.lan_conf_text
    ipmisim.lan_conf_text = lambda *a, **k: (
        original(*a, **k) + f'chassis_control "{program} 0x20"\n'
    )
    try:
        sim = ipmisim.IpmiSim(ipmisim.dell_like(), workdir / "sim").start()
    finally:
        ipmisim.lan_conf_text = original
    try:
        yield sim
    finally:
        sim.stop()


def _agent(tmp: Path, host: str, broker_url: str, body: str) -> subprocess.Popen[bytes]:
    cfg = tmp / f"{host}.toml"
    cfg.write_text(
        f'[agent]\nsite = "demo"\nhost = "{host}"\ninterval = 0.5\njitter = 0\ntimeout = 2\n'
        f'state_dir = "{tmp / host}"\n[mqtt]\nurl = "{broker_url}"\nkeepalive = 5\n{body}'
    )
    log = (tmp / f"{host}.log").open("wb")
    return subprocess.Popen(
        [sys.executable, "-m", "agent.cli", "agent", "--config", str(cfg)],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=log,
        cwd=CHECKOUT,
    )


class _Trail:
    """The promotion and command events of both agents, as one line each."""

    def __init__(self, port: int) -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        self.lines: list[str] = []
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self.client.on_message = self._on_message
        self.client.on_connect = lambda c, *a: c.subscribe("hotspare/v1/demo/+/events", qos=1)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _on_message(self, _c: object, _u: object, msg: object) -> None:
        event = json.loads(msg.payload)  # type: ignore[attr-defined]
        if event.get("type") in ("promotion", "command"):
            self.lines.append(event_line(event, colour=False))

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def run(duration: float = 0, pace: float = 8.0, dashboard: bool = False) -> int:
    try:
        ipmisim = _ipmisim()
    except (FileNotFoundError, ImportError) as e:
        print(f"hotspare demo: {e}", file=sys.stderr)
        return 69
    tmp = Path(tempfile.mkdtemp(prefix="hotspare-demo-"))
    stop = threading.Event()
    step = {"text": "starting"}
    agents: list[subprocess.Popen[bytes]] = []  # and the central service with --dashboard
    try:
        broker = LocalBroker().start()
    except (FileNotFoundError, RuntimeError) as e:
        print(f"hotspare demo: cannot start the private broker: {e}", file=sys.stderr)
        return 69
    try:
        with _bmc(ipmisim, tmp / "bmc") as sim:
            pw = tmp / "bmc.pass"
            pw.write_text(f"{sim.password}\n")  # type: ignore[attr-defined]
            pw.chmod(0o600)
            (tmp / "mdstat").write_text(MDSTAT)
            tracks = {h: tmp / f"{h}.track" for h in ("db-01", "db-02")}
            for t in tracks.values():
                t.write_text("0\n")
            port = sim.port  # type: ignore[attr-defined]
            agents.append(
                _agent(
                    tmp,
                    "db-01",
                    broker.url,
                    PRIMARY.format(port=port, pw=pw, track=tracks["db-01"]),
                )
            )
            (tmp / "db-01.pid").write_text(str(agents[0].pid))
            agents.append(
                _agent(
                    tmp,
                    "db-02",
                    broker.url,
                    STANDBY.format(port=port, pw=pw, track=tracks["db-02"], mdstat=tmp / "mdstat"),
                )
            )
            psus = ipmisim.DELL.psus

            def scenario() -> None:
                steps = (
                    ("db-01 primary, db-02 standby: every group redundant", None),
                    ("PSU 1 of db-01 fails: power degraded (redundancy lost): db-01 steps down", 0),
                    (
                        "PSU 2 of db-01 fails: db-01 FAILED: db-02 fences it via its BMC, promotes",
                        1,
                    ),
                )
                for text, psu in steps:
                    if stop.is_set():
                        return
                    if psu is not None:
                        sim.set_bit(psus[psu], ipmisim.PSU_FAILURE, True)  # type: ignore[attr-defined]
                    step["text"] = text
                    stop.wait(pace)

            where = ""
            if dashboard:
                central, url = _start_dashboard(tmp, broker.url)
                agents.append(central)
                where = f"; dashboard {url}"
            threading.Thread(target=scenario, daemon=True).start()

            trail = _Trail(broker.port)

            def footer() -> str:
                power = (
                    (tmp / "bmc" / "power").read_text().strip()
                    if (tmp / "bmc" / "power").exists()
                    else "1"
                )
                t = {h: p.read_text().strip() for h, p in tracks.items()}
                return (
                    "promotion trail:\n"
                    + "\n".join(trail.lines[-8:] or ["(none yet)"])
                    + f"\n\n{step['text']}\n"
                    f"track files (keepalived priority offsets): db-01 {t['db-01']}, "
                    f"db-02 {t['db-02']}; db-01 chassis power {'on' if power == '1' else 'off'}\n"
                    f"(broker {broker.url}{where}; logs in {tmp}; Ctrl-C stops the demo)"
                )

            print(f"hotspare demo: broker {broker.url}{where}, logs in {tmp}; Ctrl-C stops")
            try:
                watch(broker.url, "hotspare/v1", duration, footer=footer)
            finally:
                trail.close()
    finally:
        stop.set()
        for a in agents:
            a.terminate()
        for a in agents:
            try:
                a.wait(10)
            except subprocess.TimeoutExpired:
                a.kill()
        broker.stop()
        shutil.rmtree(broker.dir, ignore_errors=True)
        shutil.rmtree(tmp, ignore_errors=True)
    return 0

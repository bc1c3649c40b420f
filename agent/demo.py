"""``hotspare demo``: a private broker, an agent on demo md arrays, and the live view.

The demo arrays are made up for the demonstration (a raid1 and a raid6 whose disks fail
and are rebuilt); their text follows the kernel's /proc/mdstat format. Nothing here
touches the machine's real arrays or its network: the broker listens on a free port of
127.0.0.1 and everything lives in a temporary directory that is removed at the end.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from .localbroker import LocalBroker
from .watch import watch

_HEAD = "Personalities : [raid1] [raid6] [raid5] [raid4]\n"
_MD0 = {
    "clean": "md0 : active raid1 sdb1[1] sda1[0]\n      487104 blocks super 1.2 [2/2] [UU]\n",
    "failed": "md0 : active raid1 sdb1[1](F) sda1[0]\n      487104 blocks super 1.2 [2/1] [U_]\n",
    "rebuild35": "md0 : active raid1 sdi1[2] sda1[0]\n      487104 blocks super 1.2 [2/1] [U_]\n"
    "      [=======>.............]  recovery = 35.0% (170486/487104) finish=0.4min speed=12000K/sec\n",
    "rebuild80": "md0 : active raid1 sdi1[2] sda1[0]\n      487104 blocks super 1.2 [2/1] [U_]\n"
    "      [================>....]  recovery = 80.0% (389683/487104) finish=0.1min speed=12000K/sec\n",
    "rebuilt": "md0 : active raid1 sdi1[2] sda1[0]\n      487104 blocks super 1.2 [2/2] [UU]\n",
}
_MD1_DEVS = "sdh1[5] sdg1[4] sdf1[3] {e} sdd1[1] sdc1[0]"
_MD1_TAIL = "      7813771264 blocks super 1.2 level 6, 512k chunk, algorithm 2 [6/{n}] [{s}]\n"
_MD1 = {
    "clean": "md1 : active raid6 "
    + _MD1_DEVS.format(e="sde1[2]")
    + "\n"
    + _MD1_TAIL.format(n=6, s="UUUUUU"),
    "failed": "md1 : active raid6 "
    + _MD1_DEVS.format(e="sde1[2](F)")
    + "\n"
    + _MD1_TAIL.format(n=5, s="UU_UUU"),
}

# (seconds to hold, md0 state, md1 state, what happens)
SCENARIO = (
    (6, "clean", "clean", "both arrays clean: every group redundant"),
    (6, "clean", "failed", "md1 (raid6) loses sde1: degraded, margin 1 - still one disk to spare"),
    (
        6,
        "failed",
        "failed",
        "md0 (raid1) loses sdb1: degraded, margin 0 - redundancy lost, still serving",
    ),
    (
        4,
        "rebuild35",
        "failed",
        "sdi1 replaces sdb1 in md0: rebuilding (a spare adds no margin yet)",
    ),
    (4, "rebuild80", "failed", "md0 rebuild at 80 %"),
    (6, "rebuilt", "failed", "md0 rebuilt: redundant again"),
    (6, "rebuilt", "clean", "md1's disk replaced: everything redundant"),
)


def mdstat_text(md0: str, md1: str) -> str:
    return f"{_HEAD}{_MD0[md0]}\n{_MD1[md1]}\nunused devices: <none>\n"


def write_atomically(path: Path, text: str) -> None:
    """Replace ``path`` by a rename: a reader never sees half a state (nor does the kernel's file)."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


def _start_dashboard(tmp: Path, broker_url: str) -> tuple[subprocess.Popen[bytes], str]:
    """The central service on a free loopback port, as its own process; returns it and its URL."""
    from .localbroker import free_port

    port = free_port()
    cfg = tmp / "central.toml"
    cfg.write_text(
        f'[central]\nlisten = "127.0.0.1:{port}"\ndatabase = "{tmp / "central.db"}"\n'
        f'[mqtt]\nurl = "{broker_url}"\n'
    )
    log = (tmp / "central.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "agent.cli", "central", "--config", str(cfg)],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=log,
    )
    return proc, f"http://127.0.0.1:{port}/"


def run(duration: float = 0, dashboard: bool = False) -> int:
    tmp = Path(tempfile.mkdtemp(prefix="hotspare-demo-"))
    stop = threading.Event()
    step = {"text": "starting"}
    agent = None
    central = None
    try:
        broker = LocalBroker().start()
    except (FileNotFoundError, RuntimeError) as e:
        print(f"hotspare demo: cannot start the private broker: {e}", file=sys.stderr)
        return 69  # EX_UNAVAILABLE
    try:
        mdstat = tmp / "mdstat"
        write_atomically(mdstat, mdstat_text("clean", "clean"))
        cfg = tmp / "agent.toml"
        cfg.write_text(
            '[agent]\nsite = "demo"\nhost = "demo-01"\ninterval = 1\njitter = 0\n'
            f'state_dir = "{tmp / "state"}"\n[mqtt]\nurl = "{broker.url}"\n'
            f'[[collectors.mdstat]]\npath = "{mdstat}"\n'
        )
        log = (tmp / "agent.log").open("wb")
        agent = subprocess.Popen(
            [sys.executable, "-m", "agent.cli", "agent", "--config", str(cfg)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
        )

        def scenario() -> None:
            n = 0
            while not stop.is_set():
                hold, md0, md1, text = SCENARIO[n % len(SCENARIO)]
                write_atomically(mdstat, mdstat_text(md0, md1))
                step["text"] = f"demo step {n % len(SCENARIO) + 1}/{len(SCENARIO)}: {text}"
                n += 1
                stop.wait(hold)

        where = ""
        if dashboard:
            central, url = _start_dashboard(tmp, broker.url)
            where = f"; dashboard {url}"
        threading.Thread(target=scenario, daemon=True).start()
        print(
            f"hotspare demo: broker {broker.url}, agent log {tmp / 'agent.log'}{where}; Ctrl-C stops"
        )
        footer = lambda: f"{step['text']}\n(broker {broker.url}{where}; Ctrl-C stops the demo)"  # noqa: E731
        watch(broker.url, "hotspare/v1", duration, footer=footer)
    finally:
        stop.set()
        for proc in (agent, central):
            if proc is not None:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
        broker.stop()
        shutil.rmtree(broker.dir, ignore_errors=True)
        shutil.rmtree(tmp, ignore_errors=True)
    return 0

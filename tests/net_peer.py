"""Network namespaces for the link tests and the benchmark: veth pairs, a broker and an agent
inside a namespace, and a way for this process to open sockets in it.

Everything is named with the prefix ``hsn`` and the process id, and removed on exit.
"""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from agent.localbroker import mosquitto_binary

ROOT = Path(__file__).resolve().parent.parent
PREFIX = "hsn"
CLONE_NEWNET = 0x40000000
_counter = itertools.count()


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)


def netns_available() -> bool:
    return shutil.which("ip") is not None and os.geteuid() == 0


@contextlib.contextmanager
def inside(ns: str) -> Iterator[None]:
    """Run the body with this thread in namespace ``ns``: sockets created in it stay there."""
    libc = ctypes.CDLL(None, use_errno=True)
    with open("/proc/thread-self/ns/net") as home, open(f"/run/netns/{ns}") as target:
        if libc.setns(target.fileno(), CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns into {ns} failed")
        try:
            yield
        finally:
            if libc.setns(home.fileno(), CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns back home failed")


class Netns:
    """A namespace with loopback up; ``veth()`` adds pairs whose both ends live in it."""

    def __init__(self) -> None:
        self.name = f"{PREFIX}-{os.getpid()}-{next(_counter)}"
        self.n = 0

    def __enter__(self) -> Netns:
        ip("netns", "add", self.name)
        ip("-n", self.name, "link", "set", "lo", "up")
        return self

    def __exit__(self, *exc: object) -> None:
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True, timeout=10)

    def veth(self) -> tuple[str, str]:
        """A veth pair (watched end, peer end), both up. Names stay below 16 characters."""
        tag = f"{os.getpid() % 10000}{self.n}"
        self.n += 1
        a, b = f"{PREFIX}{tag}a", f"{PREFIX}{tag}b"
        ip("-n", self.name, "link", "add", a, "type", "veth", "peer", "name", b)
        ip("-n", self.name, "link", "set", a, "up")
        ip("-n", self.name, "link", "set", b, "up")
        return a, b

    def link(self, ifname: str, updown: str) -> None:
        ip("-n", self.name, "link", "set", ifname, updown)

    def delete(self, ifname: str) -> None:
        ip("-n", self.name, "link", "del", ifname)

    def exec_argv(self, argv: list[str]) -> list[str]:
        return ["ip", "netns", "exec", self.name, *argv]


def free_port_in(ns: str) -> int:
    with inside(ns), socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class NetnsBroker:
    """A private mosquitto on 127.0.0.1 inside namespace ``ns``."""

    def __init__(self, ns: Netns) -> None:
        self.ns = ns
        self.port = free_port_in(ns.name)
        self.dir = Path(tempfile.mkdtemp(prefix="hotspare-hsn-broker-"))
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> NetnsBroker:
        conf = self.dir / "mosquitto.conf"
        conf.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\nuser root\n"
            f"persistence false\nlog_dest file {self.dir / 'mosquitto.log'}\n"
        )
        self.proc = subprocess.Popen(
            self.ns.exec_argv([mosquitto_binary(), "-c", str(conf)]),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"mosquitto in {self.ns.name} exited with {self.proc.returncode}"
                )
            try:
                with inside(self.ns.name):
                    socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                time.sleep(0.02)
        self.__exit__()
        raise RuntimeError(f"mosquitto in {self.ns.name} did not listen within 10 s")

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def nic_agent_config(port: int, state_dir: Path, interfaces: list[str], interval: float) -> str:
    names = ", ".join(f'"{i}"' for i in interfaces)
    return (
        f'[agent]\nsite = "dc1"\nhost = "web-01"\ninterval = {interval}\njitter = 0\n'
        f'state_dir = "{state_dir}"\nheartbeat = 3600\n'
        f'[mqtt]\nurl = "mqtt://127.0.0.1:{port}"\nkeepalive = 5\n'
        f'[[collectors.nic]]\nname = "uplinks"\ninterfaces = [{names}]\nrequired = 1\n'
    )


class NetnsAgent:
    """``hotspare agent`` run inside the namespace (``ip netns exec``)."""

    def __init__(self, ns: Netns, workdir: Path, config_text: str) -> None:
        self.ns = ns
        self.config = workdir / "agent.toml"
        self.config.write_text(config_text)
        self.log = workdir / "agent.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> NetnsAgent:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        argv = [sys.executable, "-m", "agent.cli", "agent", "--config", str(self.config)]
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                self.ns.exec_argv(argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                env=env,
                cwd=ROOT,
            )
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def output(self) -> str:
        return self.log.read_text(errors="replace")

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
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

from agent.localbroker import LocalBroker
from tests.conftest import AgentProcess

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


class NetnsBroker(LocalBroker):
    """A private mosquitto on 127.0.0.1 inside namespace ``ns``."""

    def __init__(self, ns: Netns) -> None:
        self.ns = ns
        self.where = f" in {ns.name}"
        super().__init__(port=free_port_in(ns.name))

    def command(self, conf: Path) -> list[str]:
        return self.ns.exec_argv(super().command(conf))

    def probe(self) -> None:
        with inside(self.ns.name):
            super().probe()


def nic_agent_config(port: int, state_dir: Path, interfaces: list[str], interval: float) -> str:
    names = ", ".join(f'"{i}"' for i in interfaces)
    return (
        f'[agent]\nsite = "dc1"\nhost = "web-01"\ninterval = {interval}\njitter = 0\n'
        f'state_dir = "{state_dir}"\nheartbeat = 3600\n'
        f'[mqtt]\nurl = "mqtt://127.0.0.1:{port}"\nkeepalive = 5\n'
        f'[[collectors.nic]]\nname = "uplinks"\ninterfaces = [{names}]\nrequired = 1\n'
    )


class NetnsAgent(AgentProcess):
    """``hotspare agent`` run inside the namespace (``ip netns exec``)."""

    def __init__(self, ns: Netns, workdir: Path, config_text: str) -> None:
        self.ns = ns
        super().__init__(workdir, config_text)

    def argv(self) -> list[str]:
        return self.ns.exec_argv(super().argv())

    def __enter__(self) -> NetnsAgent:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

"""A Debian 12 root booted with systemd-nspawn, for the package tests.

The root is made once by debootstrap and cached outside the checkout, keyed by what it
holds (``/var/cache/hotspare-test/<suite>-<hash>/``); every container boots it with
``--volatile=overlay``, so the cached root is never changed and a test's changes vanish
when the container stops. Commands run inside with ``nsenter`` into the container's
systemd (it is PID 1 there). The container has its own network namespace with only a
loopback interface, and Debian's mosquitto listening on it.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

SUITE = "bookworm"
# systemd as PID 1, the interpreter the venv links to, a broker for the agent, Debian's rpm,
# ip(8)
ROOT_PACKAGES = (
    "systemd",
    "systemd-sysv",
    "dbus",
    "procps",  # /bin/kill, for ExecReload
    "python3.11",
    "mosquitto",
    "mosquitto-clients",
    "rpm",
    "iproute2",  # a veth pair inside the container for the NIC collector
)
CACHE = Path(os.environ.get("HOTSPARE_TEST_CACHE", "/var/cache/hotspare-test"))
DEFAULT_MIRROR = "http://deb.debian.org/debian"


def mirror() -> str:
    """The Debian mirror this machine's apt uses (HOTSPARE_DEBIAN_MIRROR overrides)."""
    if os.environ.get("HOTSPARE_DEBIAN_MIRROR"):
        return os.environ["HOTSPARE_DEBIAN_MIRROR"]
    sources = Path("/etc/apt/sources.list.d/debian.sources")
    if sources.exists():
        for line in sources.read_text().splitlines():
            m = re.match(r"URIs:\s*(\S+/debian)\s*$", line)
            if m:
                return m.group(1)
    return DEFAULT_MIRROR


def root_key() -> str:
    digest = hashlib.sha256(" ".join((SUITE, "minbase", *sorted(ROOT_PACKAGES))).encode())
    return f"{SUITE}-{digest.hexdigest()[:12]}"


def cached_root() -> Path:
    """The Debian root for the containers; made by debootstrap on first use (about a minute)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    root = CACHE / root_key()
    with open(CACHE / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another test run may be making it right now
        if (root / ".complete").exists():
            return root
        tmp = CACHE / f".{root.name}.{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(root, ignore_errors=True)
        started = time.monotonic()
        subprocess.run(
            [
                "debootstrap",
                "--variant=minbase",
                "--include=" + ",".join(ROOT_PACKAGES),
                SUITE,
                str(tmp),
                mirror(),
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        # apt's downloaded .debs are not needed in the root
        for deb in (tmp / "var/cache/apt/archives").glob("*.deb"):
            deb.unlink()
        (tmp / ".complete").write_text(f"debootstrap took {time.monotonic() - started:.0f} s\n")
        tmp.rename(root)
        return root


class Container:
    """A booted container: ``run`` executes a command inside, as root."""

    def __init__(self, root: Path, binds: dict[str, str]) -> None:
        self.root = root
        self.binds = binds  # host path -> path inside, read-only
        self.name = f"hsp-{secrets.token_hex(4)}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.pid1 = 0

    def start(self, timeout: float = 120) -> None:
        cmd = [
            "systemd-nspawn",
            "--quiet",
            "--boot",
            f"--directory={self.root}",
            f"--machine={self.name}",
            "--volatile=overlay",
            "--register=no",
            "--keep-unit",
            "--console=passive",
            "--private-network",
        ]
        cmd += [f"--bind-ro={host}:{inside}" for host, inside in self.binds.items()]
        self.proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while not self.pid1:
            if self.proc.poll() is not None:
                raise RuntimeError(f"systemd-nspawn exited with {self.proc.returncode}")
            if time.monotonic() > deadline:
                raise TimeoutError("the container's systemd did not start")
            self.pid1 = _find_init(self.proc.pid)
            time.sleep(0.1)
        # wait for the boot to finish (running, or degraded when some unit failed)
        while True:
            state = self.run("systemctl", "is-system-running", check=False).stdout.strip()
            if state in ("running", "degraded"):
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"the container did not finish booting: {state}")
            time.sleep(0.2)

    def run(
        self, *argv: str, check: bool = True, input: str | None = None, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            ["nsenter", "-t", str(self.pid1), "-a", "--", *argv],
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8", "TERM": "dumb"},
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"{' '.join(argv)} exited {result.returncode}\n"
                f"stdout: {result.stdout}\nstderr: {result.stderr}"
            )
        return result

    def sh(self, script: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.run("/bin/sh", "-c", script, check=check)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        # SIGTERM asks nspawn for an orderly shutdown of the container's systemd
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)


def _find_init(nspawn_pid: int) -> int:
    """The container's PID 1 (systemd), a descendant of the nspawn process."""
    todo = [nspawn_pid]
    while todo:
        pid = todo.pop()
        for task in Path(f"/proc/{pid}/task").glob("*"):
            with contextlib.suppress(OSError):
                todo += [int(c) for c in (task / "children").read_text().split()]
        if pid != nspawn_pid:
            with contextlib.suppress(OSError):
                if Path(f"/proc/{pid}/comm").read_text().strip() == "systemd":
                    return pid
    return 0


@contextlib.contextmanager
def booted(binds: dict[str, str]) -> Iterator[Container]:
    container = Container(cached_root(), binds)
    try:
        container.start()
        yield container
    finally:
        container.stop()

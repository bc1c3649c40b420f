"""Real SNMP peers for the tests: snmpsim serving recordings, and net-snmp's snmpd.

snmpsim refuses to run as root and drops to ``nobody``, who cannot read a Python under
/root: it runs from its own venv built on Debian's /usr/bin/python3 (scripts/bootstrap
makes it, ``SNMPSIM_VENV``), with its data and cache directories owned by nobody.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

from agent.localbroker import stop_process
from collectors.snmp import OPTIONS

SNMPSIM_VENV = Path(os.environ.get("HOTSPARE_SNMPSIM_VENV", "/var/tmp/hotspare-snmpsim"))
SNMPREC = Path(__file__).parent / "fixtures" / "snmprec"


def opts(**kw) -> dict:
    """The SNMP collector's options: every default, with ``kw`` over them."""
    o = {k: v.default for k, v in OPTIONS.items()}
    o.update(kw)
    return o


def secret(path: Path, text: str) -> str:
    """A secret file (community, v3 key) readable by its owner only; its path."""
    path.write_text(text + "\n")
    path.chmod(0o600)
    return str(path)


def free_udp_port(host: str = "127.0.0.1") -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def netsnmp_address(host: str, port: int) -> str:
    """net-snmp's transport address: udp6:[::1]:PORT for IPv6."""
    return f"udp6:[{host}]:{port}" if ":" in host else f"{host}:{port}"


def wait_for_snmp(
    port: int, community: str, timeout: float = 30.0, version: str = "2c", host: str = "127.0.0.1"
) -> None:
    """Until the agent answers a GET of sysObjectID (net-snmp's snmpget)."""
    deadline = time.monotonic() + timeout
    while True:
        r = subprocess.run(
            [
                *("snmpget", f"-v{version}", "-c", community, "-t", "0.5", "-r", "0", "-On"),
                *(netsnmp_address(host, port), "1.3.6.1.2.1.1.2.0"),
            ],
            capture_output=True,
            text=True,
        )
        if r.returncode == 0 and "OID" in r.stdout:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"SNMP agent on port {port} did not answer: {r.stderr.strip()}")
        time.sleep(0.3)


class _Peer:
    """A daemon run from a private directory (``dir``), its output in ``dir/log``."""

    dir: Path
    port: int
    host: str = "127.0.0.1"
    proc: subprocess.Popen[bytes] | None = None

    def _spawn(self, argv: list[str], community: str, **popen: object) -> None:
        """Start ``argv`` and wait until it answers ``community``; stopped again if it does not."""
        with (self.dir / "log").open("wb") as log:  # the child has its own copy of the fd
            self.proc = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, **popen
            )
        try:
            wait_for_snmp(self.port, community, host=self.host)
        except AssertionError as e:
            tail = "".join(
                p.read_text(errors="replace")[-2000:] for p in sorted(self.dir.glob("*log"))
            )
            self.stop()
            raise AssertionError(f"{e}\n{tail}") from None

    def stop(self) -> None:
        stop_process(self.proc, 10)
        shutil.rmtree(self.dir, ignore_errors=True)


class SnmpSim(_Peer):
    """snmpsim-command-responder on 127.0.0.1, one community per recording."""

    def __init__(self, recordings: Iterable[Path] | None = None) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="hss-snmpsim-"))
        self.data = self.dir / "data"
        self.data.mkdir()
        (self.dir / "cache").mkdir()
        for rec in recordings or sorted(SNMPREC.glob("*.snmprec")):
            shutil.copy(rec, self.data / rec.name)
        shutil.chown(self.dir, "nobody", "nogroup")
        for p in self.dir.rglob("*"):
            shutil.chown(p, "nobody", "nogroup")
        self.dir.chmod(0o755)
        self.port = free_udp_port()

    def start(self, community: str | None = None) -> SnmpSim:
        exe = SNMPSIM_VENV / "bin" / "snmpsim-command-responder"
        if not exe.exists():
            self.stop()
            raise AssertionError(f"{exe} missing: run scripts/bootstrap")
        first = community or next(iter(sorted(self.data.glob("*.snmprec")))).stem
        self._spawn(
            [
                str(exe),
                f"--data-dir={self.data}",
                f"--cache-dir={self.dir / 'cache'}",
                f"--agent-udpv4-endpoint=127.0.0.1:{self.port}",
                "--process-user=nobody",
                "--process-group=nogroup",
            ],
            first,
            cwd=self.dir,
        )
        return self

    def edit(self, name: str, oid: str, value: str) -> None:
        """Change one value of a recording (snmpsim re-reads a file whose mtime changed)."""
        path = self.data / f"{name}.snmprec"
        lines = path.read_text().splitlines()
        out = [
            f"{oid}|{ln.split('|')[1]}|{value}" if ln.startswith(oid + "|") else ln for ln in lines
        ]
        path.write_text("\n".join(out) + "\n")
        st = path.stat()
        os.utime(path, (st.st_atime, st.st_mtime + 2))


V3_USER = "hsuser"
V3_AUTH = "hs-auth-passphrase"
V3_PRIV = "hs-priv-passphrase"


class Snmpd(_Peer):
    """net-snmp's snmpd on 127.0.0.1 (or ``host``, e.g. ::1) with a v2c community and a v3
    authPriv (SHA-256/AES) user."""

    def __init__(self, community: str = "hs-public", host: str = "127.0.0.1") -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="hss-snmpd-"))
        self.host = host
        self.port = free_udp_port(host)
        self.community = community
        conf = self.dir / "snmpd.conf"
        ipv6 = ":" in host
        conf.write_text(
            f"agentAddress {netsnmp_address(host, self.port)}\n"
            f"rocommunity{'6' if ipv6 else ''} {community} {host}\n"
            f'createUser {V3_USER} SHA-256 "{V3_AUTH}" AES "{V3_PRIV}"\n'
            f"rouser {V3_USER} priv\n"
        )

    def start(self) -> Snmpd:
        env = {**os.environ, "SNMP_PERSISTENT_DIR": str(self.dir), "MIBS": ""}
        self._spawn(
            [
                *("snmpd", "-f", "-C", "-c", str(self.dir / "snmpd.conf")),
                *("-Lf", str(self.dir / "snmpd.log"), "-p", str(self.dir / "pid")),
            ],
            self.community,
            env=env,
        )
        return self


class Veth:
    """A veth pair in this namespace, named with the tests' prefix: a port we can take down."""

    def __init__(self, name: str) -> None:
        self.name, self.peer = name, f"{name}p"
        subprocess.run(["ip", "link", "del", name], capture_output=True)
        subprocess.run(
            ["ip", "link", "add", name, "type", "veth", "peer", "name", self.peer], check=True
        )
        self.up()

    def up(self) -> None:
        for n in (self.name, self.peer):
            subprocess.run(["ip", "link", "set", n, "up"], check=True)

    def down(self) -> None:
        subprocess.run(["ip", "link", "set", self.peer, "down"], check=True)

    def remove(self) -> None:
        subprocess.run(["ip", "link", "del", self.name], capture_output=True)


def notify(
    kind: str,
    host: str,
    port: int,
    *,
    community: str = "",
    v3: tuple[str, str, str] | None = None,
    engine_id: str = "",
    timeout: float = 1.0,
    retries: int = 2,
) -> subprocess.CompletedProcess[str]:
    """net-snmp's ``snmptrap`` or ``snmpinform`` (``kind``) of a linkDown to ``host``:``port``.

    ``v3`` = (user, auth passphrase, priv passphrase): SNMPv3 authPriv, SHA-256 and AES;
    a trap needs the sender's ``engine_id`` (hex), an inform discovers the receiver's.
    ``snmpinform`` exits 0 only when the receiver acknowledged the inform.
    """
    argv = [kind, "-t", str(timeout), "-r", str(retries)]
    if v3 is None:
        argv += ["-v2c", "-c", community]
    else:
        user, auth, priv = v3
        argv += ["-v3", "-u", user, "-l", "authPriv", "-a", "SHA-256", "-A", auth]
        argv += ["-x", "AES", "-X", priv]
        if engine_id:
            argv += ["-e", f"0x{engine_id}"]
    argv += [netsnmp_address(host, port), "", "1.3.6.1.6.3.1.1.5.3"]
    argv += ["1.3.6.1.2.1.2.2.1.1.1", "i", "1"]
    with tempfile.TemporaryDirectory(prefix="hss-notify-") as d:
        env = {**os.environ, "MIBS": "", "SNMP_PERSISTENT_DIR": d, "SNMPCONFPATH": d}
        return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60)


class SnmpTrapd:
    """net-snmp's snmptrapd on ``host`` (e.g. ::1): logs what it receives, acknowledges
    the informs that carry ``community``."""

    def __init__(self, community: str, host: str = "::1") -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="hss-snmptrapd-"))
        self.host, self.port, self.community = host, free_udp_port(host), community
        self.log = self.dir / "received.log"
        (self.dir / "snmptrapd.conf").write_text(f"authCommunity log {community}\n")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> SnmpTrapd:
        env = {**os.environ, "SNMP_PERSISTENT_DIR": str(self.dir), "MIBS": ""}
        self.proc = subprocess.Popen(
            [
                *("snmptrapd", "-f", "-C", "-c", str(self.dir / "snmptrapd.conf"), "-On"),
                *("-Lf", str(self.log), "-p", str(self.dir / "pid")),
                netsnmp_address(self.host, self.port),
            ],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        # ready once it answers an inform (snmpinform exits 0 only when acknowledged)
        deadline = time.monotonic() + 30
        while notify("snmpinform", self.host, self.port, community=self.community).returncode:
            if time.monotonic() > deadline or self.proc.poll() is not None:
                text = self.log.read_text(errors="replace") if self.log.exists() else ""
                self.stop()
                raise AssertionError(f"snmptrapd did not acknowledge an inform:\n{text[-2000:]}")
            time.sleep(0.2)
        return self

    def received(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self) -> None:
        stop_process(self.proc, 10)
        shutil.rmtree(self.dir, ignore_errors=True)

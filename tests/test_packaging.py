"""The .deb and .rpm, built by packaging/build, installed under a real systemd.

Two builds of the same tree (releases 1 and 2) give an upgrade to test. Each package is
installed into a Debian 12 root booted with systemd-nspawn (tests/packaging_peer.py):
the agent unit must come up active having sent READY, `hotspare check` must run, a
reload must apply a changed configuration, an upgrade must keep the operator's
configuration, and removal must leave nothing behind. The .deb goes in through apt,
the .rpm through Debian's rpm with --nodeps (the dependencies are there, installed by
dpkg, which rpm's own database does not know).
"""

from __future__ import annotations

import json
import re
import subprocess
import time
import tomllib
from collections.abc import Callable, Iterator
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from agent import __version__

from .packaging_peer import Container, booted

ROOT = Path(__file__).parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "mdstat"
CLEAN = "pymdstat__mdstat.04.txt"  # md0 to md3, all clean
CLEAN_GROUPS = {"md/md0", "md/md1", "md/md2", "md/md3"}
DEGRADED = "check_raid__mdstat-failed.txt"  # raid5 md0 [3/2] [U_U]
PKG = "/srv/hotspare-packages"
FIX = "/srv/hotspare-fixtures"
UNIT = "hotspare-agent.service"
CENTRAL = "hotspare-central.service"
# the extras the one package ships (the central unit runs from the same venv)
PACKAGED_EXTRAS = ("prometheus", "central")
HEALTH_TOPIC = "hotspare/v1/hsp/c1/health"

pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="module")
def packages(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Releases 1 and 2 of the same tree: the second upgrades the first."""
    out = tmp_path_factory.mktemp("packages")
    for release in ("1", "2"):
        subprocess.run(
            [str(ROOT / "packaging" / "build"), "--release", release, "--out", str(out)],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    return out


def deb(release: int) -> str:
    return f"{PKG}/hotspare_{__version__}-{release}_amd64.deb"


def rpm(release: int) -> str:
    return f"{PKG}/hotspare-{__version__}-{release}.x86_64.rpm"


@pytest.fixture
def container(packages: Path) -> Iterator[Container]:
    with booted({str(packages): PKG, str(FIXTURES): FIX}) as c:
        yield c


# --- helpers ---------------------------------------------------------------------------


def wait_for(what: str, probe: Callable[[], object], timeout: float = 90) -> object:
    """Poll ``probe`` until it returns something true; a deadline, not a timed assertion."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.3)


def unit(c: Container, name: str = UNIT) -> dict[str, str]:
    props = "ActiveState,SubState,StatusText,MainPID,NRestarts,Type,WatchdogUSec,UnitFileState"
    out = c.run("systemctl", "show", name, "-p", props).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def wait_active(c: Container, name: str = UNIT) -> dict[str, str]:
    """A unit settled: active (for the agent: READY received) or failed, never activating."""
    state = wait_for(
        f"{name} to leave activating",
        lambda: (u := unit(c, name))["ActiveState"] not in ("activating", "reloading") and u,
    )
    assert state["ActiveState"] == "active", (state, journal(c, name))
    return state


def watchdog_ping(c: Container, name: str = UNIT) -> int:
    """When systemd last heard WATCHDOG=1 from a unit (monotonic microseconds)."""
    out = c.run("systemctl", "show", name, "-p", "WatchdogTimestampMonotonic").stdout
    return int(out.strip().split("=", 1)[1])


IPMI_CRYPTO = """
import hashlib, hmac, os
import pyghmi.ipmi.command, pyghmi.ipmi.private.session
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
key = os.urandom(16)
enc = Cipher(algorithms.AES(key), modes.CBC(os.urandom(16))).encryptor()
print(len(enc.update(bytes(32)) + enc.finalize()))
hmac.new(key, b"x", hashlib.sha256).digest()
print("ok")
"""
# [Service] keys that make the process, not its sandbox
NOT_SANDBOX = ("Type", "Exec", "Watchdog", "Restart", "Timeout", "StateDirectory")


def sandboxed(
    c: Container, code: str, dropin: str = "", check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run Python code as the agent would run: the installed unit's sandbox, its user, and
    the [Service] settings of the drop-in file ``dropin`` (a path inside) on top."""
    unit_file = c.run("cat", f"/lib/systemd/system/{UNIT}").stdout
    service = unit_file.split("[Service]", 1)[1].split("[Install]", 1)[0]
    if dropin:
        service += c.run("cat", dropin).stdout.split("[Service]", 1)[1]
    props = [
        f"--property={line}"
        for line in service.splitlines()
        if "=" in line and not line.startswith("#") and not line.startswith(NOT_SANDBOX)
    ]
    return c.run(
        "systemd-run", "--wait", "--pipe", "--quiet", *props,
        "/opt/venvs/hotspare/bin/python", "-c", code, check=check,
    )  # fmt: skip


def journal(c: Container, name: str = UNIT) -> str:
    return c.run("journalctl", "-u", name, "--no-pager", "-o", "cat", check=False).stdout


HTTP_GET = """
import sys, urllib.request
try:
    with urllib.request.urlopen(sys.argv[1], timeout=5) as r:
        sys.stdout.write(r.read().decode())
except OSError as e:
    sys.exit(f"{sys.argv[1]}: {e}")
"""


def http_json(c: Container, url: str) -> dict | None:
    """GET a JSON document inside the container (the venv's Python; there is no curl)."""
    r = c.run("/opt/venvs/hotspare/bin/python", "-c", HTTP_GET, url, check=False)
    return json.loads(r.stdout) if r.returncode == 0 else None


def fleet_host(c: Container, site: str, host: str) -> dict | None:
    """One host's summary from the central service's /api/fleet, or None."""
    fleet = http_json(c, f"{CENTRAL_URL}/api/fleet")
    hosts = fleet["hosts"] if fleet else []
    return next((h for h in hosts if (h["site"], h["host"]) == (site, host)), None)


def write(c: Container, path: str, text: str, owner: str = "root:hotspare", mode: str = "0640"):
    c.run(
        "sh", "-c", f"cat > {path} && chown {owner} {path} && chmod {mode} {path}", input=text
    )  # fmt: skip


def security_score(c: Container, name: str) -> tuple[float, str]:
    out = c.run("systemd-analyze", "security", name, check=False).stdout
    return float(re.search(r"Overall exposure level for \S+: ([\d.]+)", out).group(1)), out


# the central service as an operator sets it up on one host: the broker on loopback, the
# dashboard on 127.0.0.1, the history in SQLite at its default place (/var/lib/hotspare)
CENTRAL_TOML = """[central]
listen = "127.0.0.1:8470"

[mqtt]
url = "mqtt://127.0.0.1:1883"
"""
CENTRAL_URL = "http://127.0.0.1:8470"
# the container's interfaces: lo, and a veth pair made inside its private network
NIC_TOML = """[[collectors.nic]]
name = "uplinks"
interval = 600.0
interfaces = ["lo", "hsp0"]
required = 1
"""
NIC_GROUPS = {"nic/uplinks"}
BIND_162 = """
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 162))
print("bound", s.getsockname()[1])
"""


def health(c: Container) -> dict | None:
    """The retained health document on the container's broker, or None."""
    r = c.run(
        "mosquitto_sub", "-h", "127.0.0.1", "-t", HEALTH_TOPIC, "-C", "1", "-W", "3", check=False
    )
    return json.loads(r.stdout) if r.returncode == 0 and r.stdout.strip() else None


def wait_health(c: Container, state: str, groups: set[str]) -> dict:
    return wait_for(
        f"health {state} with groups {groups}",
        lambda: (
            (h := health(c))
            and h["state"] == state
            and {g["id"] for g in h["groups"]} == groups
            and h
        ),
    )


def configure(c: Container, fixture: str) -> None:
    """What an operator does: edit the shipped agent.toml (site, host, a faster poll, the file)."""
    c.sh(
        "sed -i"
        ' -e \'s|^site = "dc1"$|site = "hsp"|\''
        ' -e \'s|^# host = ""$|host = "c1"|\''
        " -e 's|^# interval = 5.0$|interval = 1.0|'"
        f' -e \'s|^#\\? *path = ".*"$|path = "{FIX}/{fixture}"|\''
        " /etc/hotspare/agent.toml"
    )
    assert f'path = "{FIX}/{fixture}"' in c.run("cat", "/etc/hotspare/agent.toml").stdout


def check(c: Container) -> tuple[int, str]:
    r = c.run("hotspare", "check", check=False)
    return r.returncode, r.stdout.strip()


def file_list(c: Container) -> set[str]:
    out = c.sh(
        "find / -xdev \\( -path /proc -o -path /sys -o -path /dev -o -path /run -o -path /tmp"
        " -o -path /srv \\) -prune -o -print"
    ).stdout
    return set(out.splitlines())


# What package managers and the journal write on their own while a package comes and goes.
NOISE = re.compile(
    r"^/var/log/|^/var/cache/(apt|debconf|ldconfig)/|^/var/lib/apt/|"
    r"^/var/lib/dpkg/(status-old|available|diversions-old|statoverride-old|lock.*|triggers/.*)$|"
    r"^/var/lib/rpm(/|$)|^/root/\.rpmdb(/|$)|^/var/lib/systemd/(catalog|timers|random-seed|journal)|"
    r"^/etc/ld\.so\.cache$|^/var/tmp/systemd-private-|^/etc/machine-id$"
)


def leftovers(before: set[str], after: set[str]) -> set[str]:
    return {p for p in after - before if not NOISE.search(p)}


def stat(c: Container, path: str) -> str:
    return c.run("stat", "-c", "%U:%G %a", path).stdout.strip()


# --- the tests ---------------------------------------------------------------------------


def test_the_lock_covers_pyproject() -> None:
    """A dependency added to pyproject.toml without running packaging/lock fails here."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = [Requirement(r) for r in project["dependencies"]]
    for extra in PACKAGED_EXTRAS:
        wanted += [Requirement(r) for r in project["optional-dependencies"][extra]]
    # a requirement's own extras (psycopg[binary] -> psycopg-binary), as its metadata says
    for req in list(wanted):
        for extra in req.extras:
            for dep in map(Requirement, metadata.requires(req.name) or ()):
                if dep.marker is not None and dep.marker.evaluate({"extra": extra}):
                    wanted.append(dep)
    assert "psycopg-binary" in {canonicalize_name(r.name) for r in wanted}
    lock = (ROOT / "packaging" / "requirements.lock").read_text()
    locked = {
        canonicalize_name(name): Version(version)
        for name, version in re.findall(r"^([A-Za-z0-9_.-]+)==(\S+) ", lock, re.MULTILINE)
    }
    assert len(locked) == lock.count("--hash=sha256:"), "one hash per locked file"
    for req in wanted:
        name = canonicalize_name(req.name)
        assert name in locked, (
            f"{req.name} is not in packaging/requirements.lock: run packaging/lock"
        )
        assert locked[name] in req.specifier, f"{name} {locked[name]} does not satisfy {req}"


def test_lintian_clean(packages: Path) -> None:
    r = subprocess.run(
        ["lintian", "--fail-on", "error,warning", str(next(packages.glob("*-1_amd64.deb")))],
        capture_output=True,
        text=True,
    )
    tags = [line for line in r.stdout.splitlines() if re.match(r"^[EWI]: ", line)]
    assert r.returncode == 0 and not tags, r.stdout + r.stderr


def test_rpmlint_clean(packages: Path) -> None:
    r = subprocess.run(
        [
            "rpmlint",
            "-r",
            str(ROOT / "packaging" / "rpmlintrc"),
            str(next(packages.glob("*-1.x86_64.rpm"))),
        ],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "0 errors, 0 warnings" in r.stdout, r.stdout


def test_deb_install_reload_upgrade_purge(container: Container) -> None:
    c = container
    before = file_list(c)

    # install: the agent starts on the shipped sample configuration
    c.run("apt-get", "install", "-y", "-q", "--no-install-recommends", deb(1))
    state = wait_active(c)
    assert state["StatusText"].startswith("watching"), state  # READY=1 came with it
    assert state["Type"] == "notify" and state["WatchdogUSec"] == "30s", state
    assert state["UnitFileState"] == "enabled", state
    assert unit(c, "hotspare-central.service")["UnitFileState"] == "disabled"
    assert c.run("stat", "-c", "%U", f"/proc/{state['MainPID']}").stdout.strip() == "hotspare"
    for command in ("hotspare", "hotspare-mdadm-event"):
        link = c.run("readlink", f"/usr/bin/{command}").stdout.strip()
        assert link == f"/opt/venvs/hotspare/bin/{command}", link
    assert stat(c, "/etc/hotspare") == "root:hotspare 750"
    assert stat(c, "/etc/hotspare/agent.toml") == "root:hotspare 640"
    assert stat(c, "/etc/hotspare/secrets") == "hotspare:hotspare 700"
    assert stat(c, "/var/lib/hotspare") == "hotspare:hotspare 750"
    assert c.run("test", "-e", "/var/lib/hotspare/outbox.sqlite3", check=False).returncode == 0
    assert c.run("hotspare", "--version").stdout.strip() == f"hotspare {__version__}"

    # the units as installed: verify prints nothing; the agent's exposure is recorded
    for name in ("hotspare-agent.service", "hotspare-central.service"):
        r = c.run("systemd-analyze", "verify", f"/lib/systemd/system/{name}", check=False)
        assert r.returncode == 0 and not (r.stdout + r.stderr).strip(), r.stdout + r.stderr
    score, security = security_score(c, UNIT)
    assert score <= 2.0, security
    score, security = security_score(c, CENTRAL)
    assert score <= 2.0, security

    # the watchdog pings from the agent's main loop reach systemd through the sandbox
    first = watchdog_ping(c)
    wait_for("a later watchdog ping", lambda: watchdog_ping(c) > first)
    # the central unit does nothing until it is configured (no failure either)
    c.run("systemctl", "start", "hotspare-central.service")
    central = unit(c, "hotspare-central.service")
    assert central["ActiveState"] == "inactive", central

    # `hotspare check` runs; configure a fixture array and an MQTT password in a secrets
    # file only the service user can read, and reload: the agent applies both
    code, line = check(c)
    assert line.startswith("HOTSPARE") and code in (0, 3), line
    c.sh(
        "install -o hotspare -g hotspare -m 0600 /dev/null /etc/hotspare/secrets/mqtt.pass"
        " && echo s3cret > /etc/hotspare/secrets/mqtt.pass"
        ' && sed -i -e \'s|^# username = ""$|username = "agent"|\''
        ' -e \'s|^# password_file = ""$|password_file = "/etc/hotspare/secrets/mqtt.pass"|\''
        " /etc/hotspare/agent.toml"
    )
    configure(c, CLEAN)
    pid = state["MainPID"]
    c.run("systemctl", "reload", UNIT)
    wait_health(c, "redundant", CLEAN_GROUPS)
    state = wait_active(c)
    assert state["MainPID"] == pid, "a reload must not restart the agent"
    assert "configuration reloaded" in journal(c)
    assert check(c)[0] == 0

    configure(c, DEGRADED)
    c.run("systemctl", "reload", UNIT)
    wait_health(c, "degraded", {"md/md0"})
    code, line = check(c)
    assert code == 1 and "md/md0 degraded" in line, line
    # mdadm's PROGRAM (run as root by mdadm --monitor) reaches the agent's event socket
    r = c.run("hotspare-mdadm-event", "Fail", "/dev/md0", "/dev/sdb1", check=False)
    assert r.returncode == 0, r.stderr
    wait_for("the mdadm event in the journal", lambda: "mdadm event Fail on /dev/md0" in journal(c))
    modified = c.run("cat", "/etc/hotspare/agent.toml").stdout

    # what the IPMI collector does over the network (pyghmi's RMCP+ session: AES-CBC and
    # HMAC through the bundled cryptography wheel) works inside the unit's sandbox
    out = sandboxed(c, IPMI_CRYPTO).stdout.split()
    assert out == ["32", "ok"], out

    # the CAP_NET_ADMIN drop-in from the docs is accepted as written
    c.sh(
        "mkdir -p /etc/systemd/system/hotspare-agent.service.d && cp "
        "/usr/share/doc/hotspare/examples/bond-switching.conf /etc/systemd/system/hotspare-agent.service.d/"
        " && systemctl daemon-reload && systemctl restart hotspare-agent"
    )
    wait_active(c)
    caps = c.run("systemctl", "show", UNIT, "-p", "CapabilityBoundingSet").stdout
    assert caps.strip() == "CapabilityBoundingSet=cap_net_admin", caps
    c.sh(
        "rm -r /etc/systemd/system/hotspare-agent.service.d && systemctl daemon-reload"
        " && systemctl restart hotspare-agent"
    )
    pid = wait_active(c)["MainPID"]

    # SNMP traps on port 162: refused in the shipped sandbox, allowed by the example drop-in
    r = sandboxed(c, BIND_162, check=False)
    assert r.returncode != 0 and "PermissionError" in r.stderr, r.stdout + r.stderr
    r = sandboxed(c, BIND_162, "/usr/share/doc/hotspare/examples/snmp-traps.conf")
    assert r.stdout.split() == ["bound", "162"], r.stdout + r.stderr

    # the central unit, configured: active under its sandbox, API and dashboard on
    # 127.0.0.1, the agent's host in its fleet, the history in the shared state directory
    write(c, "/etc/hotspare/central.toml", CENTRAL_TOML)
    c.run("hotspare", "central", "--check", "--config", "/etc/hotspare/central.toml")
    c.run("systemctl", "enable", "--now", CENTRAL)
    central = wait_active(c, CENTRAL)
    assert central["Type"] == "notify" and central["WatchdogUSec"] == "30s", central
    assert central["StatusText"].startswith("dashboard on http://127.0.0.1:8470/"), central
    assert central["UnitFileState"] == "enabled", central
    assert c.run("stat", "-c", "%U", f"/proc/{central['MainPID']}").stdout.strip() == "hotspare"
    api = wait_for("the central API", lambda: http_json(c, f"{CENTRAL_URL}/api/openapi.json"))
    assert {"/api/fleet", "/api/stats"} <= set(api["paths"]), sorted(api["paths"])
    # (the host the agent first published as, before it was configured, stays offline)
    host = wait_for(
        "the agent's host in the central fleet, degraded",
        lambda: (h := fleet_host(c, "hsp", "c1")) and h["state"] == "degraded" and h,
    )
    assert host["online"] and host["groups"] == {"md/md0": "degraded"}, host
    assert stat(c, "/var/lib/hotspare/central.db") == "hotspare:hotspare 600"
    assert "Traceback" not in journal(c, CENTRAL), journal(c, CENTRAL)
    first = watchdog_ping(c, CENTRAL)
    wait_for("a later central watchdog ping", lambda: watchdog_ping(c, CENTRAL) > first)
    central_pid = central["MainPID"]

    # a NIC group on the container's own interfaces (lo and a veth made here): the agent
    # starts with it and reports it; its interval is 600 s, so a link going down shows up
    # at once only through the netlink link events (AF_NETLINK in the sandbox)
    c.sh("ip link add hsp0 type veth peer name hsp1 && ip link set hsp0 up && ip link set hsp1 up")
    wait_for("hsp0 up", lambda: c.run("cat", "/sys/class/net/hsp0/operstate").stdout == "up\n")
    write(c, "/etc/hotspare/agent.d/nic.toml", NIC_TOML)
    c.run("systemctl", "restart", UNIT)
    state = wait_active(c)
    assert state["StatusText"].startswith("watching"), state
    wait_health(c, "degraded", {"md/md0", *NIC_GROUPS})
    doc = health(c)
    nic = {g["id"]: g for g in doc["groups"]}["nic/uplinks"]
    assert nic["state"] == "redundant", nic
    c.run("ip", "link", "set", "hsp1", "down")
    wait_for(
        "nic/uplinks degraded through a link event",
        lambda: (
            (h := health(c))
            and {g["id"]: g["state"] for g in h["groups"]}.get("nic/uplinks") == "degraded"
        ),
    )
    assert "cannot watch netlink" not in journal(c), journal(c)
    c.run("rm", "/etc/hotspare/agent.d/nic.toml")
    c.run("systemctl", "restart", UNIT)
    pid = wait_active(c)["MainPID"]
    wait_health(c, "degraded", {"md/md0"})

    # upgrade to release 2: the operator's configuration stays, the agent is restarted on it
    c.run(
        "apt-get",
        "install",
        "-y",
        "-q",
        "-o",
        "Dpkg::Options::=--force-confdef",
        "-o",
        "Dpkg::Options::=--force-confold",
        deb(2),
    )
    version = c.run("dpkg-query", "-W", "-f", "${Version}", "hotspare").stdout
    assert version == f"{__version__}-2"
    assert c.run("cat", "/etc/hotspare/agent.toml").stdout == modified
    assert c.run("ls", "/etc/hotspare").stdout.split() == [
        "agent.d", "agent.toml", "central.toml", "secrets"
    ]  # fmt: skip
    state = wait_active(c)
    assert state["MainPID"] != pid, "the upgrade restarts the agent"
    assert wait_active(c, CENTRAL)["MainPID"] != central_pid, "and the central service"
    assert wait_for("the central API", lambda: http_json(c, f"{CENTRAL_URL}/api/fleet"))
    wait_health(c, "degraded", {"md/md0"})
    assert stat(c, "/etc/hotspare/agent.toml") == "root:hotspare 640"

    # remove keeps the configuration, the secrets, the state and the user; purge takes them
    c.run("apt-get", "remove", "-y", "-q", "hotspare")
    assert unit(c)["ActiveState"] == "inactive"
    assert c.run("cat", "/etc/hotspare/agent.toml").stdout == modified
    assert c.run("test", "-f", "/etc/hotspare/secrets/mqtt.pass", check=False).returncode == 0
    assert c.run("getent", "passwd", "hotspare", check=False).returncode == 0
    c.run("apt-get", "purge", "-y", "-q", "hotspare")
    assert c.run("getent", "passwd", "hotspare", check=False).returncode == 2
    assert c.run("getent", "group", "hotspare", check=False).returncode == 2
    assert "hotspare" not in c.run("dpkg-statoverride", "--list").stdout
    assert unit(c)["UnitFileState"] == "", "the unit is gone"
    assert leftovers(before, file_list(c)) == set()


def test_rpm_install_upgrade_erase(container: Container) -> None:
    c = container
    before = file_list(c)

    # install: enabled by the shipped preset, not started (the RPM convention)
    c.run("rpm", "--install", "--nodeps", "--force-debian", rpm(1))
    assert unit(c)["UnitFileState"] == "enabled"
    assert unit(c, "hotspare-central.service")["UnitFileState"] == "disabled"
    assert unit(c)["ActiveState"] == "inactive"
    assert stat(c, "/etc/hotspare") == "root:hotspare 750"
    assert stat(c, "/etc/hotspare/agent.toml") == "root:hotspare 640"
    assert stat(c, "/etc/hotspare/secrets") == "hotspare:hotspare 700"
    assert c.run("rpm", "--verify", "--nodeps", "hotspare").stdout == ""

    configure(c, CLEAN)
    c.run("systemctl", "start", UNIT)
    state = wait_active(c)
    assert state["StatusText"].startswith("watching 4 group"), state
    assert c.run("stat", "-c", "%U", f"/proc/{state['MainPID']}").stdout.strip() == "hotspare"
    wait_health(c, "redundant", CLEAN_GROUPS)
    code, line = check(c)
    assert code == 0 and line.startswith("HOTSPARE OK - c1: 4 group(s) redundant"), line

    configure(c, DEGRADED)
    c.run("systemctl", "reload", UNIT)
    wait_health(c, "degraded", {"md/md0"})
    modified = c.run("cat", "/etc/hotspare/agent.toml").stdout

    # upgrade: %config(noreplace) keeps the edited file, %postun restarts the agent
    c.run("rpm", "--upgrade", "--nodeps", "--force-debian", rpm(2))
    assert c.run("rpm", "-q", "hotspare").stdout.strip() == f"hotspare-{__version__}-2.x86_64"
    assert c.run("cat", "/etc/hotspare/agent.toml").stdout == modified
    assert c.run("ls", "/etc/hotspare").stdout.split() == ["agent.d", "agent.toml", "secrets"]
    assert state["MainPID"] != wait_active(c)["MainPID"]
    wait_health(c, "degraded", {"md/md0"})

    # erase: the edited configuration is kept as .rpmsave (RPM's rule), nothing else stays
    c.run("rpm", "--erase", "--nodeps", "hotspare")
    assert c.run("getent", "passwd", "hotspare", check=False).returncode == 2
    assert unit(c)["ActiveState"] == "inactive"
    # /usr/share/licenses belongs to the `filesystem` package on RPM systems; this Debian
    # root has none, so rpm made it for the package's licence directory and keeps it
    assert leftovers(before, file_list(c)) == {
        "/etc/hotspare",
        "/etc/hotspare/agent.toml.rpmsave",
        "/usr/share/licenses",
    }

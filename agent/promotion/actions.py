"""Executors: one small class per mechanism that performs a policy's action.

Each has ``run(ctx) -> Result`` (blocking: the runtime calls it in a thread) and undoes
itself when ``ctx.direction`` is ``"release"``. None of them raises: every failure is a
Result with ``ok=False`` and a message, which becomes an event.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from .policy import Trigger


@dataclass(frozen=True, slots=True)
class Context:
    policy: str
    intent: str
    direction: str  # "engage" | "release"
    site: str
    host: str
    trigger: Trigger | None = None
    reason: str = ""
    manual: bool = False


@dataclass(frozen=True, slots=True)
class Result:
    ok: bool
    message: str


def write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.chmod(tmp, 0o644)
    tmp.replace(path)


@dataclass(frozen=True, slots=True)
class Keepalived:
    """Write the number keepalived's ``track_file`` reads.

    With ``weight W`` in the track_file block keepalived adds value x W to the priority; with
    ``weight 0`` any non-zero value puts the instance in FAULT. ``engaged`` is written on
    engage (e.g. -100: step down; +100 on a standby: take over), ``released`` on release.
    """

    track_file: Path
    engaged: int = -254
    released: int = 0

    def run(self, ctx: Context) -> Result:
        value = self.engaged if ctx.direction == "engage" else self.released
        try:
            old = self.track_file.read_text().strip() if self.track_file.exists() else "(none)"
            write_atomically(self.track_file, f"{value}\n")
        except OSError as e:
            return Result(False, f"track file {self.track_file}: {e.strerror or e}")
        return Result(True, f"track file {self.track_file}: {old} -> {value}")


PACEMAKER_VALUES = {"failed": "red", "degraded": "yellow", "warning": "yellow"}


@dataclass
class Pacemaker:
    """``attrd_updater -n '#health-<group>' -U red|yellow|green`` for node-health-strategy.

    The attribute is ``#health-`` plus ``attribute`` or, when empty, the triggering id
    (slashes become dashes); red for a failed trigger, yellow for degraded, green on release.
    """

    attribute: str = ""
    command: str = "attrd_updater"
    timeout: float = 10.0
    _last: str = field(default="", repr=False)

    def run(self, ctx: Context) -> Result:
        if ctx.direction == "engage":
            trig_id = ctx.trigger.id if ctx.trigger else ctx.policy
            name = "#health-" + (self.attribute or trig_id).replace("/", "-")
            state = ctx.trigger.state if ctx.trigger else "failed"
            value = PACEMAKER_VALUES.get(state, "red")
            self._last = name
        else:
            name = self._last or "#health-" + (self.attribute or ctx.policy).replace("/", "-")
            value = "green"
        argv = [self.command, "-n", name, "-U", value]
        result = run_argv(argv, self.timeout, os.environ)
        return Result(result.ok, f"{' '.join(argv)}: {result.message}")


@dataclass(frozen=True, slots=True)
class Bond:
    """Set a bond's active slave through sysfs (``<root>/class/net/<bond>/bonding/active_slave``).

    For the case where the switch behind the active NIC fails while the NIC's link stays up:
    the kernel keeps using it, so the agent moves the bond to ``engaged_slave`` (and back to
    ``released_slave`` on release). The value is read back to confirm it.
    """

    bond: str
    engaged_slave: str
    released_slave: str
    sysfs_root: Path = Path("/sys")

    def run(self, ctx: Context) -> Result:
        base = self.sysfs_root / "class" / "net" / self.bond / "bonding"
        want = self.engaged_slave if ctx.direction == "engage" else self.released_slave
        try:
            slaves = (base / "slaves").read_text().split()
            if want not in slaves:
                return Result(False, f"{self.bond}: {want} is not a slave ({' '.join(slaves)})")
            active = base / "active_slave"
            before = active.read_text().strip()
            with active.open("w") as fh:  # sysfs: one write, no rename
                fh.write(f"{want}\n")
            after = active.read_text().strip()
        except OSError as e:
            return Result(False, f"{self.bond}: {e.strerror or e} ({e.filename or base})")
        if after != want:
            return Result(False, f"{self.bond}: wrote {want}, active slave reads {after}")
        return Result(True, f"{self.bond}: active slave {before or '(none)'} -> {after}")


@dataclass(frozen=True, slots=True)
class Hook:
    """Run ``argv`` (no shell) with the decision in its environment; exit 0 is success.

    Environment: HOTSPARE_POLICY, HOTSPARE_INTENT, HOTSPARE_DIRECTION (engage|release),
    HOTSPARE_SCOPE, HOTSPARE_ID, HOTSPARE_STATE, HOTSPARE_REASON, HOTSPARE_SITE,
    HOTSPARE_HOST, HOTSPARE_MANUAL (0|1).
    """

    argv: tuple[str, ...]
    timeout: float = 30.0

    def run(self, ctx: Context) -> Result:
        t = ctx.trigger
        env = {
            **os.environ,
            "HOTSPARE_POLICY": ctx.policy,
            "HOTSPARE_INTENT": ctx.intent,
            "HOTSPARE_DIRECTION": ctx.direction,
            "HOTSPARE_SCOPE": t.scope if t else "",
            "HOTSPARE_ID": t.id if t else "",
            "HOTSPARE_STATE": t.state if t else "",
            "HOTSPARE_REASON": ctx.reason,
            "HOTSPARE_SITE": ctx.site,
            "HOTSPARE_HOST": ctx.host,
            "HOTSPARE_MANUAL": "1" if ctx.manual else "0",
        }
        result = run_argv(list(self.argv), self.timeout, env)
        return Result(result.ok, f"{self.argv[0]}: {result.message}")


def run_argv(argv: Sequence[str], timeout: float, env: Mapping[str, str]) -> Result:
    try:
        proc = subprocess.run(
            list(argv),
            capture_output=True,
            text=True,
            timeout=timeout,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except FileNotFoundError:
        return Result(False, "command not found")
    except PermissionError:
        return Result(False, "permission denied")
    except subprocess.TimeoutExpired:
        return Result(False, f"killed after the timeout of {timeout:g} s")
    last = (proc.stderr.strip() or proc.stdout.strip()).splitlines()[-1:] or [""]
    tail = f" ({last[0][:200]})" if last[0] else ""
    if proc.returncode != 0:
        return Result(False, f"exit status {proc.returncode}{tail}")
    return Result(True, f"exit status 0{tail}")


@dataclass(frozen=True, slots=True)
class PeerCommand:
    """Publish a signed command to another agent's ``cmd/`` topic (engage_verb / release_verb)."""

    target: str
    engage_verb: str
    release_verb: str
    send: Callable[[str, str, Mapping[str, str]], Result]  # (verb, target, args) -> Result
    policy: str = ""  # the receiver's policy to engage; empty: the first that fits the verb

    def run(self, ctx: Context) -> Result:
        verb = self.engage_verb if ctx.direction == "engage" else self.release_verb
        args = {"policy": self.policy, "about": ctx.trigger.id if ctx.trigger else ""}
        return self.send(verb, self.target, args)


class Executor(Protocol):
    def run(self, ctx: Context) -> Result: ...

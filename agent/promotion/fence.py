"""Fencing: confirm the primary is down before the standby takes its place.

"No fencing, no promotion": a promote action behind a fence runs only when the fence
confirmed. Two fences:

* ``Ipmi``: chassis power off through the primary's BMC, then the power state read back
  until it says off (``collectors.ipmi.IpmiCollector.power_off`` / ``power_state``).
* ``Witness``: a configured witness host declared the primary dead with a signed
  ``declare_dead`` command received no longer than ``max_age`` seconds ago.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from .actions import Context, Result


@dataclass
class Ipmi:
    address: str
    port: int = 623
    username: str = ""
    password: str = field(default="", repr=False)
    verify_timeout: float = 20.0

    def confirm(self, peer: str) -> Result:
        from collectors.ipmi import IpmiCollector

        bmc = IpmiCollector("fence", self.address, self.port, self.username, self.password)
        where = f"BMC {self.address}:{self.port} of {peer}"
        try:
            if not bmc.power_off(self.verify_timeout):
                return Result(False, f"{where}: power off sent, but power did not read off")
            state = bmc.power_state()
        except Exception as e:
            text = bmc.redact(f"{type(e).__name__}: {e}" if str(e) else type(e).__name__)
            return Result(False, f"{where}: {text}")
        finally:
            with contextlib.suppress(Exception):
                bmc.close()
        if state != "off":
            return Result(False, f"{where}: power reads {state!r} after power off")
        return Result(True, f"{where}: powered off, power state reads off")


@dataclass
class Witness:
    """Declarations arrive through ``declare`` (from the runtime's command handler)."""

    witness: str
    max_age: float = 30.0
    wait: float = 10.0
    clock: Callable[[], float] = time.time
    _declared: dict[str, float] = field(default_factory=dict)
    _cond: threading.Condition = field(default_factory=threading.Condition)

    def declare(self, sender: str, peer: str, at: float) -> bool:
        if sender != self.witness:
            return False
        with self._cond:
            self._declared[peer] = at
            self._cond.notify_all()
        return True

    def confirm(self, peer: str) -> Result:
        deadline = time.monotonic() + self.wait
        with self._cond:
            while True:
                at = self._declared.get(peer)
                if at is not None and self.clock() - at <= self.max_age:
                    return Result(True, f"witness {self.witness} declared {peer} dead")
                left = deadline - time.monotonic()
                if left <= 0:
                    return Result(
                        False,
                        f"no declaration from witness {self.witness} that {peer} is dead "
                        f"(waited {self.wait:g} s)",
                    )
                self._cond.wait(left)


@dataclass
class Fenced:
    """An executor behind a fence: engage only after the fence confirmed ``peer`` is down."""

    fence: Ipmi | Witness
    peer: str
    inner: object  # an executor

    def run(self, ctx: Context) -> Result:
        if ctx.direction == "engage":
            fenced = self.fence.confirm(self.peer)
            if not fenced.ok:
                return Result(False, f"no fencing, no promotion: {fenced.message}")
            done = self.inner.run(ctx)  # type: ignore[attr-defined]
            return Result(done.ok, f"fenced ({fenced.message}); {done.message}")
        return self.inner.run(ctx)  # type: ignore[attr-defined]

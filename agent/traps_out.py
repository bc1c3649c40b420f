"""SNMP notifications of the agent's own transitions (HOTSPARE-MIB, mibs/HOTSPARE-MIB.txt).

For network management systems that only speak SNMP: every transition the agent reports
as an MQTT event (group, component, host) also goes out as an SNMPv2c trap to each
``[traps] targets`` receiver. Fire and forget over UDP, like any SNMPv2c trap: MQTT, with
its outbox, stays the reliable channel. The OIDs come from the generated
``agent.hotspare_mib``; the message from the SNMP collector's codec.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Mapping, Sequence
from typing import Any

from collectors import snmp_ber as ber

from . import hotspare_mib as mib

log = logging.getLogger("hotspare.traps")

NOTIFICATION_BY_SCOPE = {
    "group": "hsGroupStateChange",
    "component": "hsComponentStateChange",
    "host": "hsHostStateChange",
}
KINDS = {
    "hsSite": "octets",
    "hsHost": "octets",
    "hsSubject": "octets",
    "hsFromState": "int",
    "hsToState": "int",
    "hsReason": "octets",
    "hsSequence": "unsigned",
    "hsMargin": "int",
}


def trap_message(
    community: str,
    request_id: int,
    uptime_ticks: int,
    site: str,
    host: str,
    transition: Any,
    seq: int,
    margin: int | None,
) -> bytes:
    """The SNMPv2-Trap message for one transition (pure)."""
    name = NOTIFICATION_BY_SCOPE[transition.scope]
    values = {
        "hsSite": site,
        "hsHost": host,
        "hsSubject": transition.id,
        "hsFromState": mib.STATES.get(transition.old or "none", 0),
        "hsToState": mib.STATES.get(transition.new or "none", 0),
        "hsReason": transition.reason.encode()[:255],
        "hsSequence": seq,
        "hsMargin": margin or 0,
    }
    binds = [(mib.OBJECTS[o] + (0,), KINDS[o], values[o]) for o in mib.NOTIFICATION_OBJECTS[name]]
    return ber.encode_trap(
        request_id, community.encode(), uptime_ticks, mib.NOTIFICATIONS[name], binds
    )


class TrapSender:
    """Sends transitions to the configured receivers from one UDP socket."""

    def __init__(self, settings: Mapping[str, Any], site: str, host: str) -> None:
        self.targets: Sequence[tuple[str, int]] = settings["targets"]
        self._community = settings["community"]
        self.site, self.host = site, host
        self._socks: dict[int, socket.socket] = {}  # address family -> socket, on first use
        self._started = time.monotonic()
        self._next_id = int.from_bytes(os.urandom(3), "big")
        self.failures = 0
        self._failing: set[tuple[str, int]] = set()

    def send(self, transition: Any, seq: int, margin: int | None = None) -> None:
        self._next_id = (self._next_id + 1) & 0x7FFFFFFF
        ticks = int((time.monotonic() - self._started) * 100)
        message = trap_message(
            self._community, self._next_id, ticks, self.site, self.host, transition, seq, margin
        )
        for target in self.targets:
            try:
                self._socket(socket.AF_INET6 if ":" in target[0] else socket.AF_INET).sendto(
                    message, target
                )
            except OSError as e:
                self.failures += 1
                if target not in self._failing:  # said when it starts failing, not every time
                    self._failing.add(target)
                    log.warning("cannot send a trap to %s:%d: %s", *target, e)
            else:
                if target in self._failing:
                    self._failing.discard(target)
                    log.info("traps to %s:%d are sent again", *target)

    def _socket(self, family: int) -> socket.socket:
        sock = self._socks.get(family)
        if sock is None:
            sock = self._socks[family] = socket.socket(family, socket.SOCK_DGRAM)
            sock.setblocking(False)
        return sock

    def close(self) -> None:
        for sock in self._socks.values():
            sock.close()
        self._socks.clear()


def from_config(cfg: Any) -> TrapSender | None:
    if not cfg.traps:
        return None
    return TrapSender(cfg.traps, cfg.agent.site, cfg.agent.host)

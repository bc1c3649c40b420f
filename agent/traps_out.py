"""SNMP notifications of the agent's own transitions (HOTSPARE-MIB, mibs/HOTSPARE-MIB.txt).

For network management systems that only speak SNMP: every transition the agent reports
as an MQTT event (group, component, host) also goes out as an SNMPv2c trap to each
``[traps] targets`` receiver: fire and forget over UDP, or with ``inform = true`` as an
InformRequest resent until acknowledged (a bounded number of times). MQTT, with its
outbox, stays the reliable channel. The OIDs come from the generated
``agent.hotspare_mib``; the message from the SNMP collector's codec.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
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
    inform: bool = False,
) -> bytes:
    """The SNMPv2-Trap (or InformRequest) message for one transition (pure)."""
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
        request_id, community.encode(), uptime_ticks, mib.NOTIFICATIONS[name], binds, inform
    )


class TrapSender:
    """Sends transitions to the configured receivers, one UDP socket per address family.

    As SNMPv2-Traps (fire and forget) or, with ``inform``, as InformRequests: each one is
    resent every ``inform_timeout`` seconds until the receiver's Response-PDU with its
    request-id arrives, at most ``inform_retries`` times. Informs need the running event
    loop (the agent's); those still unacknowledged when the sender closes are dropped.
    """

    def __init__(self, settings: Mapping[str, Any], site: str, host: str) -> None:
        self.targets: Sequence[tuple[str, int]] = settings["targets"]
        self._community = settings["community"]
        self.inform = bool(settings.get("inform", False))
        self.inform_timeout = float(settings.get("inform_timeout", 2.0))
        self.inform_retries = int(settings.get("inform_retries", 2))
        self.site, self.host = site, host
        self._socks: dict[int, socket.socket] = {}  # address family -> socket, on first use
        self._started = time.monotonic()
        self._next_id = int.from_bytes(os.urandom(3), "big")
        self.failures = 0  # sends the kernel refused
        self.acknowledged = 0
        self.unacknowledged = 0  # informs that ran out of retries
        self._failing: set[tuple[str, int]] = set()
        self._silent: set[tuple[str, int]] = set()  # receivers whose last inform went unanswered
        self._pending: dict[int, _Pending] = {}  # request-id -> inform awaiting its Response
        self._loop: asyncio.AbstractEventLoop | None = None

    def send(self, transition: Any, seq: int, margin: int | None = None) -> None:
        ticks = int((time.monotonic() - self._started) * 100)
        for target in self.targets:
            self._next_id = (self._next_id + 1) & 0x7FFFFFFF
            rid = self._next_id
            message = trap_message(
                self._community,
                rid,
                ticks,
                self.site,
                self.host,
                transition,
                seq,
                margin,
                inform=self.inform,
            )
            if self._transmit(message, target) and self.inform:
                self._arm(_Pending(rid, message, target, self.inform_retries))

    def _transmit(self, message: bytes, target: tuple[str, int]) -> bool:
        try:
            self._socket(socket.AF_INET6 if ":" in target[0] else socket.AF_INET).sendto(
                message, target
            )
        except OSError as e:
            self.failures += 1
            if target not in self._failing:  # said when it starts failing, not every time
                self._failing.add(target)
                log.warning("cannot send a trap to %s: %s", where(target), e)
            return False
        if target in self._failing:
            self._failing.discard(target)
            log.info("traps to %s are sent again", where(target))
        return True

    def _arm(self, pending: _Pending) -> None:
        assert self._loop is not None
        pending.timer = self._loop.call_later(self.inform_timeout, self._expired, pending)
        self._pending[pending.rid] = pending

    def _expired(self, pending: _Pending) -> None:
        if self._pending.pop(pending.rid, None) is None:
            return
        if pending.left > 0:
            pending.left -= 1
            if self._transmit(pending.message, pending.target):
                self._arm(pending)
            return
        self.unacknowledged += 1
        if pending.target not in self._silent:  # said once per outage of the receiver
            self._silent.add(pending.target)
            log.warning(
                "%s did not acknowledge an inform after %d attempt(s) of %g s",
                where(pending.target),
                self.inform_retries + 1,
                self.inform_timeout,
            )

    def _readable(self, sock: socket.socket) -> None:
        while True:
            try:
                data, source = sock.recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # e.g. an ICMP port unreachable reported on the socket
                continue
            try:
                rid, community, _status, _index, _binds = ber.decode_response(data)
            except ber.BerError:
                continue
            pending = self._pending.get(rid)
            if (
                pending is None
                or community != self._community.encode()
                or source[1] != pending.target[1]
            ):
                continue
            del self._pending[rid]
            if pending.timer is not None:
                pending.timer.cancel()
            self.acknowledged += 1
            if pending.target in self._silent:
                self._silent.discard(pending.target)
                log.info("%s acknowledges informs again", where(pending.target))

    def _socket(self, family: int) -> socket.socket:
        sock = self._socks.get(family)
        if sock is None:
            sock = socket.socket(family, socket.SOCK_DGRAM)
            sock.setblocking(False)
            if self.inform:  # the acknowledgements come back to it
                self._loop = asyncio.get_running_loop()
                self._loop.add_reader(sock.fileno(), self._readable, sock)
            self._socks[family] = sock
        return sock

    def close(self) -> None:
        for pending in self._pending.values():
            if pending.timer is not None:
                pending.timer.cancel()
        self._pending.clear()
        for sock in self._socks.values():
            if self._loop is not None and not self._loop.is_closed():
                self._loop.remove_reader(sock.fileno())
            sock.close()
        self._socks.clear()


@dataclass
class _Pending:
    rid: int
    message: bytes
    target: tuple[str, int]
    left: int  # retransmissions still allowed
    timer: asyncio.TimerHandle | None = None


def where(target: tuple[str, int]) -> str:
    """HOST:PORT for the log, an IPv6 host in brackets."""
    host, port = target
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def from_config(cfg: Any) -> TrapSender | None:
    if not cfg.traps:
        return None
    return TrapSender(cfg.traps, cfg.agent.site, cfg.agent.host)

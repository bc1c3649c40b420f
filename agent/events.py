"""Event sources that make a collector poll at once instead of at its next interval.

* ``LinkMonitor``: a NETLINK_ROUTE socket subscribed to RTMGRP_LINK. The kernel sends
  RTM_NEWLINK/RTM_DELLINK when an interface appears, goes, or changes its flags or
  operational state (link lost, link back); no library is needed.
* ``EventSocket``: a unix datagram socket (``[agent] event_socket``) on which
  ``hotspare mdadm-event`` (mdadm's PROGRAM) reports mdadm's events.
* ``UdevMonitor``: pyudev's monitor of udev's events for network and block devices and
  power supplies (a disk or NIC added or removed, a PSU losing its input). Where udevd
  does not run (no ``/run/udev/control``) it says so once and the agent relies on polling
  and the netlink link events.

Which collector types an event concerns is the table ``TRIGGERS``; ``Router`` keeps the
pollers per event kind and calls their ``trigger()``. Several events in a burst cost one
poll: ``trigger()`` only sets a flag the poller's loop waits on.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import stat
import struct
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

log = logging.getLogger("hotspare.events")


class Triggerable(Protocol):
    name: str

    def trigger(self) -> None: ...


# event kind -> the collector types it concerns
TRIGGERS: Mapping[str, frozenset[str]] = {
    "link": frozenset({"bond", "nic"}),  # netlink RTM_NEWLINK / RTM_DELLINK
    "mdadm": frozenset({"mdstat"}),  # hotspare mdadm-event
    "udev:net": frozenset({"bond", "nic"}),
    "udev:block": frozenset({"mdstat"}),
    "udev:power_supply": frozenset({"hwmon"}),
    "udev:hwmon": frozenset({"hwmon"}),
}
UDEV_SUBSYSTEMS = ("net", "block", "power_supply", "hwmon")
LINK_SETTLE = 0.5  # seconds: a second poll after a link event (see Events._on_link)


class Router:
    """Event kind -> the pollers to trigger, rebuilt when the pollers change (reload)."""

    def __init__(self) -> None:
        self._by_kind: dict[str, list[Triggerable]] = {}

    def update(self, pollers: Iterable[tuple[str, Triggerable]]) -> None:
        """``pollers``: (collector type, poller) pairs."""
        by_kind: dict[str, list[Triggerable]] = {}
        for ctype, poller in pollers:
            for kind, types in TRIGGERS.items():
                if ctype in types:
                    by_kind.setdefault(kind, []).append(poller)
        self._by_kind = by_kind

    def wanted(self) -> set[str]:
        return set(self._by_kind)

    def fire(self, kind: str, why: str = "", device: str = "") -> int:
        """Trigger every poller ``kind`` concerns; returns how many.

        With a ``device`` name, a poller whose collector offers ``owns(device)`` is triggered
        only when it owns that device (a NIC group polls for its own interfaces, not for
        every container's veth); collectors without ``owns`` are triggered for any device.
        """
        pollers = [p for p in self._by_kind.get(kind, []) if _concerns(p, device)]
        for p in pollers:
            p.trigger()
        if pollers:
            log.debug(
                "%s event%s: re-polling %s",
                kind,
                f" ({why})" if why else "",
                ", ".join(p.name for p in pollers),
            )
        return len(pollers)


def _concerns(poller: Triggerable, device: str) -> bool:
    owns = getattr(getattr(poller, "collector", None), "owns", None)
    return not device or owns is None or bool(owns(device))


# --- netlink ---------------------------------------------------------------------------------

NETLINK_ROUTE = 0
RTMGRP_LINK = 1
RTM_NEWLINK = 16
RTM_DELLINK = 17
IFLA_IFNAME = 3
IFF_UP = 0x1
IFF_LOWER_UP = 0x10000
_NLMSGHDR = struct.Struct("=IHHII")  # len, type, flags, seq, pid
_IFINFOMSG = struct.Struct("=BxHiII")  # family, type, index, flags, change
_RTATTR = struct.Struct("=HH")  # len, type


@dataclass(frozen=True, slots=True)
class LinkEvent:
    kind: str  # new | del
    index: int
    name: str
    up: bool  # IFF_UP: administratively up
    lower_up: bool  # IFF_LOWER_UP: carrier


def _align(n: int) -> int:
    return (n + 3) & ~3


def parse_link_messages(data: bytes) -> list[LinkEvent]:
    """The RTM_NEWLINK/RTM_DELLINK messages in one netlink datagram; others are skipped."""
    events = []
    offset = 0
    while offset + _NLMSGHDR.size <= len(data):
        length, mtype, _flags, _seq, _pid = _NLMSGHDR.unpack_from(data, offset)
        if length < _NLMSGHDR.size or offset + length > len(data):
            break
        if mtype in (RTM_NEWLINK, RTM_DELLINK):
            body = offset + _NLMSGHDR.size
            _fam, _type, index, flags, _change = _IFINFOMSG.unpack_from(data, body)
            name = ""
            attr = body + _IFINFOMSG.size
            end = offset + length
            while attr + _RTATTR.size <= end:
                alen, atype = _RTATTR.unpack_from(data, attr)
                if alen < _RTATTR.size:
                    break
                if atype == IFLA_IFNAME:
                    raw = data[attr + _RTATTR.size : attr + alen]
                    name = raw.split(b"\0", 1)[0].decode(errors="replace")
                    break
                attr += _align(alen)
            events.append(
                LinkEvent(
                    "new" if mtype == RTM_NEWLINK else "del",
                    index,
                    name,
                    bool(flags & IFF_UP),
                    bool(flags & IFF_LOWER_UP),
                )
            )
        offset += _align(length)
    return events


class LinkMonitor:
    """Calls ``on_event(LinkEvent)`` for every link message the kernel multicasts."""

    def __init__(self, on_event: Callable[[LinkEvent], None]) -> None:
        self.on_event = on_event
        self.sock: socket.socket | None = None

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        sock = socket.socket(
            socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_NONBLOCK, NETLINK_ROUTE
        )
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
            sock.bind((0, RTMGRP_LINK))
        except OSError:
            sock.close()
            raise
        self.sock = sock
        loop.add_reader(sock.fileno(), self._readable)

    def _readable(self) -> None:
        assert self.sock is not None
        while True:
            try:
                data = self.sock.recv(65536)
            except BlockingIOError:
                return
            except OSError as e:  # ENOBUFS: messages were dropped; a poll catches up
                log.warning("netlink: %s; re-polling", e)
                self.on_event(LinkEvent("overrun", 0, "", False, False))
                return
            for event in parse_link_messages(data):
                self.on_event(event)

    def stop(self, loop: asyncio.AbstractEventLoop) -> None:
        if self.sock is not None:
            loop.remove_reader(self.sock.fileno())
            self.sock.close()
            self.sock = None


# --- the agent's event socket (mdadm PROGRAM) ------------------------------------------------

MAX_DATAGRAM = 4096

# mdadm's events (mdadm(8), "MONITOR MODE"): known ones are logged as such, others too
MDADM_EVENTS = frozenset(
    {
        "DeviceDisappeared",
        "RebuildStarted",
        "RebuildFinished",
        "Fail",
        "FailSpare",
        "SpareActive",
        "NewArray",
        "DegradedArray",
        "MoveSpare",
        "SparesMissing",
        "TestMessage",
    }
)


@dataclass(frozen=True, slots=True)
class AgentEvent:
    source: str  # mdadm
    event: str
    device: str
    component: str = ""


class EventError(ValueError):
    pass


def encode_event(event: AgentEvent) -> bytes:
    return json.dumps(
        {
            "source": event.source,
            "event": event.event,
            "device": event.device,
            "component": event.component,
        }
    ).encode()


def decode_event(data: bytes) -> AgentEvent:
    """A datagram -> AgentEvent; EventError for anything else (the socket is local, but
    anyone allowed to write to it must not be able to crash the agent)."""
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as e:
        raise EventError(f"not JSON: {e}") from None
    if not isinstance(doc, dict):
        raise EventError("expected a JSON object")
    fields = {}
    for key in ("source", "event", "device", "component"):
        value = doc.get(key, "")
        if not isinstance(value, str) or len(value) > 256:
            raise EventError(f"{key}: expected a short string")
        fields[key] = value
    if fields["source"] != "mdadm":
        raise EventError(f"source: unknown {fields['source']!r}")
    if not fields["event"]:
        raise EventError("event: missing")
    return AgentEvent(**fields)


class EventSocket:
    """A unix datagram socket the agent listens on; ``on_event(AgentEvent)`` per datagram."""

    def __init__(self, path: str, on_event: Callable[[AgentEvent], None]) -> None:
        self.path = path
        self.on_event = on_event
        self.sock: socket.socket | None = None

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        path = Path(self.path)
        with contextlib.suppress(FileNotFoundError):
            if stat.S_ISSOCK(path.lstat().st_mode):
                if _listening(self.path):
                    raise OSError(f"{self.path} is in use by another running agent")
                path.unlink()  # left by an earlier run that did not remove it
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_NONBLOCK)
        old = os.umask(0o177)  # the owner (and root) only
        try:
            sock.bind(self.path)
        except OSError:
            sock.close()
            raise
        finally:
            os.umask(old)
        self.sock = sock
        loop.add_reader(sock.fileno(), self._readable)

    def _readable(self) -> None:
        assert self.sock is not None
        while True:
            try:
                data = self.sock.recv(MAX_DATAGRAM)
            except BlockingIOError:
                return
            try:
                event = decode_event(data)
            except EventError as e:
                log.warning("event socket %s: ignored a datagram: %s", self.path, e)
                continue
            self.on_event(event)

    def stop(self, loop: asyncio.AbstractEventLoop) -> None:
        if self.sock is not None:
            loop.remove_reader(self.sock.fileno())
            self.sock.close()
            self.sock = None
            with contextlib.suppress(OSError):
                os.unlink(self.path)


def _listening(path: str) -> bool:
    """Something receives on the datagram socket at ``path`` (connect is refused otherwise)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(path)
        except OSError:
            return False
        return True


def send_event(path: str, event: AgentEvent, timeout: float = 2.0) -> None:
    """Send one event to a running agent. Raises OSError (FileNotFoundError,
    ConnectionRefusedError when nothing listens, TimeoutError when its queue is full)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        sock.sendto(encode_event(event), path)


# --- udev ------------------------------------------------------------------------------------

UDEV_CONTROL = "/run/udev/control"


def udev_running(control: str = UDEV_CONTROL) -> bool:
    """udevd's control socket exists: it runs and its events can be monitored."""
    try:
        return stat.S_ISSOCK(os.stat(control).st_mode)
    except OSError:
        return False


# (subsystem, action) -> event kind; other pairs are ignored (e.g. "bind", a NIC's "move")
UDEV_ACTIONS: Mapping[tuple[str, str], str] = {
    ("net", "add"): "udev:net",
    ("net", "remove"): "udev:net",
    ("net", "move"): "udev:net",  # renamed
    ("block", "add"): "udev:block",
    ("block", "remove"): "udev:block",
    ("block", "change"): "udev:block",  # md arrays change state with "change"
    ("power_supply", "change"): "udev:power_supply",
    ("power_supply", "add"): "udev:power_supply",
    ("power_supply", "remove"): "udev:power_supply",
    ("hwmon", "add"): "udev:hwmon",
    ("hwmon", "remove"): "udev:hwmon",
}


def udev_kind(subsystem: str | None, action: str | None) -> str | None:
    """Which event kind a udev event is, or None when it concerns no collector."""
    return UDEV_ACTIONS.get((subsystem or "", action or ""))


class UdevMonitor:
    """pyudev's monitor on the loop; ``on_event(kind, device name)`` for relevant events."""

    def __init__(
        self,
        on_event: Callable[[str, str], None],
        control: str = UDEV_CONTROL,
        source: str = "udev",
    ) -> None:
        self.on_event = on_event
        self.control = control
        self.source = source  # "udev": events after udevd processed them; "kernel": raw uevents
        self.monitor: Any = None

    def start(self, loop: asyncio.AbstractEventLoop) -> bool:
        """Start watching; False (logged once) when udevd is absent or pyudev unusable."""
        if not udev_running(self.control):
            log.info(
                "udevd is not running (no %s): hotplug events are not watched; "
                "relying on polling and netlink link events",
                self.control,
            )
            return False
        try:
            import pyudev

            context = pyudev.Context()
            monitor = pyudev.Monitor.from_netlink(context, source=self.source)
            for subsystem in UDEV_SUBSYSTEMS:
                monitor.filter_by(subsystem)
            monitor.start()
        except Exception as e:  # no libudev, no permission: polling still works
            log.warning("cannot watch udev events (%s): relying on polling", e)
            return False
        self.monitor = monitor
        loop.add_reader(monitor.fileno(), self._readable)
        log.info("watching udev events for %s", ", ".join(UDEV_SUBSYSTEMS))
        return True

    def _readable(self) -> None:
        while True:
            device = self.monitor.poll(timeout=0)
            if device is None:
                return
            kind = udev_kind(device.subsystem, device.action)
            if kind is not None:
                self.on_event(kind, f"{device.action} {device.sys_name}")

    def stop(self, loop: asyncio.AbstractEventLoop) -> None:
        if self.monitor is not None:
            loop.remove_reader(self.monitor.fileno())
            self.monitor = None


# --- all of them -----------------------------------------------------------------------------


class Events:
    """Starts the sources the configured collectors need; routes events to their pollers."""

    def __init__(self, socket_path: str, udev_control: str = UDEV_CONTROL) -> None:
        self.router = Router()
        self.socket_path = socket_path
        self.udev_control = udev_control
        self._link: LinkMonitor | None = None
        self._socket: EventSocket | None = None
        self._udev: UdevMonitor | None = None
        self._udev_tried = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._settle: asyncio.TimerHandle | None = None

    def update(self, loop: asyncio.AbstractEventLoop, pollers: Iterable[tuple[str, Any]]) -> None:
        """New pollers (start or reload): route to them, start the sources they need."""
        self._loop = loop
        self.router.update(pollers)
        wanted = self.router.wanted()
        if "link" in wanted and self._link is None:
            try:
                self._link = LinkMonitor(self._on_link)
                self._link.start(loop)
            except OSError as e:
                self._link = None
                log.warning("cannot watch netlink link events (%s): relying on polling", e)
        if "mdadm" in wanted and self._socket is None and self.socket_path:
            try:
                self._socket = EventSocket(self.socket_path, self._on_agent_event)
                self._socket.start(loop)
                log.info("listening for mdadm events on %s", self.socket_path)
            except OSError as e:
                self._socket = None
                log.warning(
                    "cannot listen for mdadm events on %s (%s): relying on polling",
                    self.socket_path,
                    e,
                )
        if any(k.startswith("udev:") for k in wanted) and not self._udev_tried:
            self._udev_tried = True  # "udevd absent" is said once, not on every reload
            udev = UdevMonitor(self._on_udev, self.udev_control)
            if udev.start(loop):
                self._udev = udev

    def _on_link(self, event: LinkEvent) -> None:
        self.router.fire("link", f"{event.kind} {event.name or event.index}", event.name)
        # The bonding driver sees a slave's carrier change only at its next MII check
        # (miimon, typically 100 ms): poll once more when that has surely happened.
        if self._settle is None and self._loop is not None:
            self._settle = self._loop.call_later(LINK_SETTLE, self._settled)

    def _settled(self) -> None:
        self._settle = None
        self.router.fire("link", "settle")

    def _on_udev(self, kind: str, what: str) -> None:
        self.router.fire(kind, what, what.rpartition(" ")[2])

    def _on_agent_event(self, event: AgentEvent) -> None:
        known = "" if event.event in MDADM_EVENTS else " (an event this version does not know)"
        n = self.router.fire("mdadm", event.event)
        log.info(
            "mdadm event %s on %s%s%s: re-polling %d collector(s)",
            event.event,
            event.device,
            f" ({event.component})" if event.component else "",
            known,
            n,
        )

    def stop(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._settle is not None:
            self._settle.cancel()
            self._settle = None
        for source in (self._link, self._socket, self._udev):
            if source is not None:
                source.stop(loop)
        self._link = self._socket = self._udev = None

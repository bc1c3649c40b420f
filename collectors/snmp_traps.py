"""SNMP trap receiver: a trap or inform from a watched device re-polls that device at once.

One listener per ``trap_listen`` address (HOST:PORT, IPv4 or [IPv6]), shared by every
SNMP collector entry that names it, each with its own pysnmp engine in the running event
loop, closed with its last entry or its loop. A device is recognised by the source
address (canonical; an IPv4 sender on a dual-stack [::] listener as its IPv4 address);
the notification must carry the community of that device's entry (SNMPv2c), or be
authenticated and encrypted with that entry's SNMPv3 user and keys (SNMPv3 traps: the
device is the authoritative engine, so its snmpEngineID, read once when it is first
polled, localises the keys; SNMPv3 informs: the listener is, with its own engine id);
anything else is dropped. An inform is acknowledged (RFC 3416 4.2.7) by pysnmp's
notification receiver before the callback runs. What
the trap says is not trusted beyond "something changed": the poll that follows reads
the device's state, so a forged or misread trap costs one poll, never a wrong verdict.
Common causes: linkDown / linkUp (IF-MIB), entity state changes (ENTITY-STATE-MIB) and
the vendors' PSU / fan traps.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("hotspare.snmp.traps")

SNMP_TRAP_OID = (1, 3, 6, 1, 6, 3, 1, 1, 4, 1, 0)
TRAP_NAMES = {  # SNMPv2-MIB / IF-MIB standard traps, for the log
    (1, 3, 6, 1, 6, 3, 1, 1, 5, 1): "coldStart",
    (1, 3, 6, 1, 6, 3, 1, 1, 5, 2): "warmStart",
    (1, 3, 6, 1, 6, 3, 1, 1, 5, 3): "linkDown",
    (1, 3, 6, 1, 6, 3, 1, 1, 5, 4): "linkUp",
}


def trap_name(var_binds: Any) -> str:
    """The trap's snmpTrapOID.0 value, named where it is a standard trap."""
    for oid, value in var_binds:
        if tuple(oid) == SNMP_TRAP_OID:
            arcs = tuple(value)
            return TRAP_NAMES.get(arcs, ".".join(map(str, arcs)))
    return "trap"


@dataclass
class Listener:
    """One UDP listener and the devices it re-polls, by source address."""

    host: str
    port: int
    devices: dict[str, dict[str, Callable[[str], None]]] = field(default_factory=dict)
    communities: dict[str, str] = field(default_factory=dict)
    received: int = 0
    ignored: int = 0
    guard: Any = None  # closes the listener at the loop's shutdown (collectors.loopscope)
    _v3: dict[tuple[str, bytes | None], Any] = field(default_factory=dict)

    def start(self) -> None:
        from pysnmp.carrier.asyncio.dgram import udp, udp6
        from pysnmp.entity import config, engine
        from pysnmp.entity.rfc3413 import ntfrcv
        from pysnmp.proto import rfc1902

        self._config = config
        self._octets = rfc1902.OctetString
        self.engine = engine.SnmpEngine()
        ipv6 = ":" in self.host
        # bind here, so a port in use is an error now, not a log line later
        sock = socket.socket(socket.AF_INET6 if ipv6 else socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.bind((self.host, self.port))
        except OSError:
            sock.close()
            raise
        sock.setblocking(False)
        self._sock = sock
        self.port = sock.getsockname()[1]
        transport = udp6.Udp6AsyncioTransport() if ipv6 else udp.UdpAsyncioTransport()
        domain = udp6.DOMAIN_NAME if ipv6 else udp.DOMAIN_NAME
        config.add_transport(self.engine, domain, transport.open_server_mode(sock=sock))
        # traps (unconfirmed) and informs (confirmed: pysnmp answers each with a Response
        # carrying its request-id and varbinds, RFC 3416 4.2.7) alike
        ntfrcv.NotificationReceiver(self.engine, self._on_trap)

    def add(self, address: str, name: str, callback: Callable[[str], None], community: str) -> None:
        self.devices.setdefault(source_host(address), {})[name] = callback
        if community and self.communities.get(name) != community:
            self._config.add_v1_system(self.engine, f"hs-trap-{name}", community)
            self.communities[name] = community

    def remove(self, name: str) -> None:
        """Stop re-polling ``name`` (its collector is gone, e.g. after a reload)."""
        for address in list(self.devices):
            self.devices[address].pop(name, None)
            if not self.devices[address]:
                del self.devices[address]

    def stop(self) -> None:
        """Close the UDP socket (also when its transport is not set up yet, or the loop
        is closed already)."""
        with contextlib.suppress(Exception):  # a closed loop refuses to schedule callbacks
            self.engine.close_dispatcher()
        self._sock.close()
        if self.guard is not None:
            self.guard.disarm()

    def add_v3(self, name: str, creds: Any, engine_id: bytes | None) -> None:
        """Accept SNMPv3 notifications of ``creds``'s user: traps sent by the engine
        ``engine_id`` (the device's), or with None informs, for which this listener is
        the authoritative engine (its own snmpEngineID localises the keys)."""
        from collectors.snmp import usm_protocols

        key = (creds.user, engine_id)
        keys = (
            creds.security_level,
            creds.auth_protocol,
            creds.auth_key,
            creds.priv_protocol,
            creds.priv_key,
        )
        known = self._v3.get(key)
        if known == keys:
            return
        if known is not None:  # as for polling: one set of keys per user name
            log.warning(
                "%s: SNMPv3 user %r has other passphrases or protocols in another entry: "
                "its notifications on this listener are checked with the first entry's",
                name,
                creds.user,
            )
            return
        auth, priv = usm_protocols(self._config, creds)
        extra = {} if engine_id is None else {"securityEngineId": self._octets(engine_id)}
        self._config.add_v3_user(
            self.engine,
            creds.user,
            auth,
            creds.auth_key or None,
            priv,
            creds.priv_key or None,
            **extra,
        )
        self._v3[key] = keys

    def _on_trap(self, snmp_engine, state_reference, _ctx_engine, _ctx_name, var_binds, _cb_ctx):
        self.received += 1
        try:
            _domain, source = snmp_engine.message_dispatcher.get_transport_info(state_reference)
            address = source_host(source[0])  # IPv6 sources are (host, port, flow, scope)
        except Exception:  # no transport information: nothing to match the trap with
            self.ignored += 1
            return
        devices = self.devices.get(address)
        if not devices:
            self.ignored += 1
            if self.ignored == 1:
                log.warning(
                    "trap from %s, which no [[collectors.snmp]] entry watches: ignored "
                    "(further ones are not logged)",
                    address,
                )
            return
        what = trap_name(var_binds)
        for callback in devices.values():
            callback(what)


_LISTENERS: dict[tuple[asyncio.AbstractEventLoop, str], Listener] = {}


def register(
    listen: str, address: str, name: str, callback: Callable[[str], None], creds: Any
) -> Listener:
    """Re-poll ``name`` when a trap arrives on ``listen`` from ``address``."""
    from collectors.loopscope import at_shutdown
    from collectors.snmp import ip_literal, split_listen

    loop = asyncio.get_running_loop()
    listener = _LISTENERS.get((loop, listen))
    if listener is None:
        for old_loop, old_listen in [k for k in _LISTENERS if k[0].is_closed()]:
            _LISTENERS.pop((old_loop, old_listen)).stop()  # a loop closed without shutdown
        host, port, _ = split_listen(listen)  # checked by the collector's create()
        listener = Listener(ip_literal(host) or host, int(port))
        listener.start()
        _LISTENERS[loop, listen] = listener
        listener.guard = at_shutdown(lambda: _drop(listener))
        log.info("receiving SNMP traps on %s", listen)
    community = creds.community if getattr(creds, "version", "") == "2c" else ""
    if getattr(creds, "version", "") == "3":
        listener.add_v3(name, creds, None)  # informs: known before the device's first poll

    def add(sources: list[str]) -> None:
        for source in sources:
            listener.add(source, name, callback, community)

    if _is_ip(address):
        add([address])
    else:  # a name: resolved off the loop (a slow DNS must not stall the other collectors)
        pending = loop.run_in_executor(None, _addresses, address)
        pending.add_done_callback(lambda done: add(done.result()))
    return listener


def unregister(listener: Listener, name: str) -> None:
    """Undo ``register`` for ``name``; the last device gone closes the listener and its port."""
    listener.remove(name)
    if not listener.devices:
        _drop(listener)


def _drop(listener: Listener) -> None:
    """Close ``listener`` and forget it (its last device is gone, or its loop shuts down)."""
    for key, known in list(_LISTENERS.items()):
        if known is listener:
            del _LISTENERS[key]
            listener.stop()
            log.info("no longer receiving SNMP traps on %s", key[1])


def source_host(address: str) -> str:
    """An address as the listener sees a datagram's source: canonical, and an IPv4
    address mapped into IPv6 (a dual-stack [::] listener) as the IPv4 one."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ip)


def _is_ip(address: str) -> bool:
    try:
        ipaddress.ip_address(address)
    except ValueError:
        return False
    return True


def _addresses(address: str) -> list[str]:
    """Every IPv4 and IPv6 address of a host name: its traps may come from any of them."""
    try:
        infos = socket.getaddrinfo(address, None, type=socket.SOCK_DGRAM)
    except OSError:
        log.warning("cannot resolve %s: its traps are matched by that name alone", address)
        return [address]
    found = [str(i[4][0]) for i in infos if i[0] in (socket.AF_INET, socket.AF_INET6)]
    return list(dict.fromkeys(found)) or [address]

"""SNMP trap receiver: a trap from a watched device re-polls that device at once.

One listener per ``trap_listen`` address (HOST:PORT), shared by every SNMP collector
entry that names it, each with its own pysnmp engine in the running event loop. A
device is recognised by the trap's source address; the trap must carry the community
of that device's entry (SNMPv2c), or be authenticated and encrypted with that entry's SNMPv3 user and keys
(SNMPv3: the device is the authoritative engine of its traps, so its snmpEngineID,
read once when it is first polled, localises the keys); anything else is dropped. What
the trap says is not trusted beyond "something changed": the poll that follows reads
the device's state, so a forged or misread trap costs one poll, never a wrong verdict.
Common causes: linkDown / linkUp (IF-MIB), entity state changes (ENTITY-STATE-MIB) and
the vendors' PSU / fan traps.
"""

from __future__ import annotations

import asyncio
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

    def start(self) -> None:
        from pysnmp.carrier.asyncio.dgram import udp
        from pysnmp.entity import config, engine
        from pysnmp.entity.rfc3413 import ntfrcv
        from pysnmp.proto import rfc1902

        self._config = config
        self._octets = rfc1902.OctetString
        self.engine = engine.SnmpEngine()
        # bind here, so a port in use is an error now, not a log line later
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.bind((self.host, self.port))
        except OSError:
            sock.close()
            raise
        sock.setblocking(False)
        self._sock = sock
        self.port = sock.getsockname()[1]
        config.add_transport(
            self.engine, udp.DOMAIN_NAME, udp.UdpAsyncioTransport().open_server_mode(sock=sock)
        )
        ntfrcv.NotificationReceiver(self.engine, self._on_trap)

    def add(self, address: str, name: str, callback: Callable[[str], None], community: str) -> None:
        self.devices.setdefault(address, {})[name] = callback
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
        """Close the UDP socket (also when its transport is not set up yet)."""
        self.engine.close_dispatcher()
        self._sock.close()

    def add_v3(self, name: str, creds: Any, engine_id: bytes) -> None:
        """Accept SNMPv3 traps of ``creds``'s user, sent by the engine ``engine_id``."""
        from collectors.snmp import usm_protocols

        auth, priv = usm_protocols(self._config, creds)
        self._config.add_v3_user(
            self.engine,
            creds.user,
            auth,
            creds.auth_key or None,
            priv,
            creds.priv_key or None,
            securityEngineId=self._octets(engine_id),
        )

    def _on_trap(self, snmp_engine, state_reference, _ctx_engine, _ctx_name, var_binds, _cb_ctx):
        self.received += 1
        try:
            _domain, (address, _port) = snmp_engine.message_dispatcher.get_transport_info(
                state_reference
            )
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
    loop = asyncio.get_running_loop()
    listener = _LISTENERS.get((loop, listen))
    if listener is None:
        host, _, port = listen.rpartition(":")
        listener = Listener(host.strip("[]"), int(port))
        listener.start()
        _LISTENERS[loop, listen] = listener
        log.info("receiving SNMP traps on %s", listen)
    community = creds.community if getattr(creds, "version", "") == "2c" else ""

    def add(source: str) -> None:
        listener.add(source, name, callback, community)

    if _is_ipv4(address):
        add(address)
    else:  # a name: resolved off the loop (a slow DNS must not stall the other collectors)
        pending = loop.run_in_executor(None, _address, address)
        pending.add_done_callback(lambda done: add(done.result()))
    return listener


def unregister(listener: Listener, name: str) -> None:
    """Undo ``register`` for ``name``; the last device gone closes the listener and its port."""
    listener.remove(name)
    if listener.devices:
        return
    for key, known in list(_LISTENERS.items()):
        if known is listener:
            del _LISTENERS[key]
            listener.stop()
            log.info("no longer receiving SNMP traps on %s:%s", listener.host, key[1])


def _is_ipv4(address: str) -> bool:
    try:
        ipaddress.IPv4Address(address)
    except ValueError:
        return False
    return True


def _address(address: str) -> str:
    try:
        return socket.gethostbyname(address)
    except OSError:
        log.warning("cannot resolve %s: its traps are matched by that name alone", address)
        return address

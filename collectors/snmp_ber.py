"""A small SNMPv2c codec: GET / GETBULK requests out, responses in (RFC 3416 over BER).

Pure functions, no I/O. The collector's hot path: a general ASN.1 library costs tens of
microseconds per variable binding, this about a microsecond or two, which is what lets a
poll cost within a few times of net-snmp's own C client. Only what a manager needs is
here: definite lengths, the SNMPv2 application types, the three exception values.
SNMPv3 messages go through pysnmp.
"""

from __future__ import annotations

from typing import Any

SEQUENCE = 0x30
INTEGER = 0x02
OCTET_STRING = 0x04
NULL = 0x05
OBJECT_IDENTIFIER = 0x06
IP_ADDRESS = 0x40
COUNTER32 = 0x41
GAUGE32 = 0x42
TIMETICKS = 0x43
OPAQUE = 0x44
COUNTER64 = 0x46
NO_SUCH_OBJECT = 0x80
NO_SUCH_INSTANCE = 0x81
END_OF_MIB_VIEW = 0x82
GET_REQUEST = 0xA0
GET_BULK_REQUEST = 0xA5
RESPONSE = 0xA2
INFORM_REQUEST = 0xA6
SNMPV2_TRAP = 0xA7
SYS_UPTIME_0 = (1, 3, 6, 1, 2, 1, 1, 3, 0)
SNMP_TRAP_OID_0 = (1, 3, 6, 1, 6, 3, 1, 1, 4, 1, 0)
VERSION_2C = 1


class BerError(ValueError):
    """A message that is not a well-formed SNMPv2c response."""


class End:
    """noSuchObject / noSuchInstance / endOfMibView: no value at this OID."""

    __slots__ = ("tag",)

    def __init__(self, tag: int) -> None:
        self.tag = tag

    def __repr__(self) -> str:
        return {0x80: "noSuchObject", 0x81: "noSuchInstance", 0x82: "endOfMibView"}[self.tag]


_ENDS = {t: End(t) for t in (NO_SUCH_OBJECT, NO_SUCH_INSTANCE, END_OF_MIB_VIEW)}


# --- encoding --------------------------------------------------------------------------


def _length(n: int) -> bytes:
    if n < 0x80:
        return bytes((n,))
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(body),)) + body


def _tlv(tag: int, body: bytes) -> bytes:
    return bytes((tag,)) + _length(len(body)) + body


def _integer(n: int) -> bytes:
    return _tlv(INTEGER, n.to_bytes(max(1, (n.bit_length() + 8) // 8), "big", signed=True))


def encode_oid(oid: tuple[int, ...]) -> bytes:
    """The BER body of an OBJECT IDENTIFIER (no tag or length)."""
    if len(oid) < 2:
        raise ValueError(f"an OID has at least two arcs: {oid!r}")
    out = bytearray()
    for arc in (oid[0] * 40 + oid[1], *oid[2:]):
        if arc < 0x80:
            out.append(arc)
            continue
        chunk = []
        while arc:
            chunk.append(arc & 0x7F)
            arc >>= 7
        chunk.reverse()
        out.extend(b | 0x80 for b in chunk[:-1])
        out.append(chunk[-1])
    return bytes(out)


def encode_varbinds(oids: list[bytes]) -> bytes:
    """Varbinds with NULL values from OID bodies encoded once (``encode_oid``)."""
    null = b"\x05\x00"
    return _tlv(SEQUENCE, b"".join(_tlv(SEQUENCE, _tlv(OBJECT_IDENTIFIER, o) + null) for o in oids))


def encode_request(
    request_id: int,
    community: bytes,
    oids: list[bytes],
    non_repeaters: int = 0,
    max_repetitions: int = 0,
    bulk: bool = True,
) -> bytes:
    """A GETBULK (or GET) request message."""
    if bulk:
        head = _integer(request_id) + _integer(non_repeaters) + _integer(max_repetitions)
        pdu = _tlv(GET_BULK_REQUEST, head + encode_varbinds(oids))
    else:
        pdu = _tlv(
            GET_REQUEST, _integer(request_id) + _integer(0) + _integer(0) + encode_varbinds(oids)
        )
    return _tlv(SEQUENCE, _integer(VERSION_2C) + _tlv(OCTET_STRING, community) + pdu)


def _unsigned(tag: int, n: int) -> bytes:
    body = n.to_bytes(max(1, (n.bit_length() + 8) // 8), "big")  # a leading 0 keeps it positive
    return _tlv(tag, body)


def encode_value(kind: str, value: Any) -> bytes:
    """One value: "int" (INTEGER / Integer32), "octets", "oid", "unsigned" (Unsigned32 /
    Gauge32) or "ticks" (TimeTicks)."""
    if kind == "int":
        return _integer(value)
    if kind == "octets":
        return _tlv(OCTET_STRING, value if isinstance(value, bytes) else str(value).encode())
    if kind == "oid":
        return _tlv(OBJECT_IDENTIFIER, encode_oid(value))
    if kind == "unsigned":
        return _unsigned(GAUGE32, value & 0xFFFFFFFF)
    if kind == "ticks":
        return _unsigned(TIMETICKS, value & 0xFFFFFFFF)
    raise ValueError(f"unknown value kind {kind!r}")


def encode_trap(
    request_id: int,
    community: bytes,
    uptime_ticks: int,
    trap_oid: tuple[int, ...],
    var_binds: list[tuple[tuple[int, ...], str, Any]],
    inform: bool = False,
) -> bytes:
    """An SNMPv2-Trap-PDU message (or with ``inform`` an InformRequest-PDU, which the
    receiver acknowledges): sysUpTime.0, snmpTrapOID.0, then ``var_binds`` given as
    (OID, kind, value) (RFC 3416 sections 4.2.6 and 4.2.7)."""
    binds = [
        (SYS_UPTIME_0, "ticks", uptime_ticks),
        (SNMP_TRAP_OID_0, "oid", trap_oid),
        *var_binds,
    ]
    body = b"".join(
        _tlv(SEQUENCE, _tlv(OBJECT_IDENTIFIER, encode_oid(o)) + encode_value(k, v))
        for o, k, v in binds
    )
    tag = INFORM_REQUEST if inform else SNMPV2_TRAP
    pdu = _tlv(tag, _integer(request_id) + _integer(0) + _integer(0) + _tlv(SEQUENCE, body))
    return _tlv(SEQUENCE, _integer(VERSION_2C) + _tlv(OCTET_STRING, community) + pdu)


# --- decoding --------------------------------------------------------------------------


def _header(data: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, start of the body, end of the body) of the TLV at ``pos``."""
    tag = data[pos]
    n = data[pos + 1]
    pos += 2
    if n & 0x80:
        k = n & 0x7F
        if not 0 < k <= 4:
            raise BerError(f"unsupported length form at {pos - 1}")
        n = int.from_bytes(data[pos : pos + k], "big")
        pos += k
    end = pos + n
    if end > len(data):
        raise BerError("truncated message")
    return tag, pos, end


def decode_oid(body: bytes) -> tuple[int, ...]:
    arcs: list[int] = []
    value = 0
    for b in body:
        value = (value << 7) | (b & 0x7F)
        if not b & 0x80:
            arcs.append(value)
            value = 0
    if not arcs:
        raise BerError("empty OID")
    first = arcs[0]
    head = (0, first) if first < 40 else (1, first - 40) if first < 80 else (2, first - 80)
    return (*head, *arcs[1:])


def _value(tag: int, body: bytes) -> Any:
    if tag == INTEGER:
        return int.from_bytes(body, "big", signed=True)
    if tag in (COUNTER32, GAUGE32, TIMETICKS, COUNTER64):
        return int.from_bytes(body, "big")
    if tag in (OCTET_STRING, OPAQUE):
        return bytes(body)
    if tag == OBJECT_IDENTIFIER:
        return decode_oid(body)
    if tag == IP_ADDRESS:
        return ".".join(map(str, body))
    if tag in _ENDS:
        return _ENDS[tag]
    if tag == NULL:
        return None
    raise BerError(f"unexpected value type 0x{tag:02x}")


def decode_response(data: bytes) -> tuple[int, bytes, int, int, list[tuple[tuple[int, ...], Any]]]:
    """(request id, community, error status, error index, varbinds) of a Response-PDU.

    OCTET STRING values come back as bytes, OIDs as tuples, numbers as ints, the
    exception values as ``End`` instances.
    """
    try:
        tag, pos, end = _header(data, 0)
        if tag != SEQUENCE:
            raise BerError("not a SEQUENCE")
        tag, p, pos = _header(data, pos)
        if tag != INTEGER or int.from_bytes(data[p:pos], "big") != VERSION_2C:
            raise BerError("not an SNMPv2c message")
        tag, p, pos = _header(data, pos)
        community = data[p:pos]
        tag, pos, end = _header(data, pos)
        if tag != RESPONSE:
            raise BerError(f"not a Response-PDU (0x{tag:02x})")
        numbers = []
        for _ in range(3):
            tag, p, pos = _header(data, pos)
            numbers.append(int.from_bytes(data[p:pos], "big", signed=True))
        tag, pos, end = _header(data, pos)
        out = []
        mv = memoryview(data)
        while pos < end:
            _, p, pos = _header(data, pos)  # VarBind SEQUENCE
            tag, q, p = _header(data, p)
            oid = decode_oid(mv[q:p])
            tag, q, p = _header(data, p)
            out.append((oid, _value(tag, mv[q:p])))
        return numbers[0], bytes(community), numbers[1], numbers[2], out
    except IndexError:
        raise BerError("truncated message") from None

"""MQTT 5 packets for the ingest's client: encoding what it sends, framing what it reads.

Pure: bytes in, packets out. The client (``central/mqttclient.py``) does the I/O. Only what
a subscriber that also publishes an occasional QoS 1 command needs is here: CONNECT,
SUBSCRIBE, UNSUBSCRIBE, PUBLISH (QoS 0 and 1), PUBACK, PINGREQ and DISCONNECT out;
CONNACK, PUBLISH (QoS 0 and 1), PUBACK, SUBACK, UNSUBACK, PINGRESP and DISCONNECT in.
Formats, property identifiers and reason codes are those of the OASIS standard "MQTT Version
5.0" (7 March 2019), sections 1.5 (data representation), 2 (packet format, 2.2.2.2 the
property identifiers, 2.4 the reason codes) and 3 (the packets).

The broker never sends QoS 2 to this client (every subscription asks for QoS 1 at most, and
a server downgrades to the subscription's QoS, 3.8.4) and never a Topic Alias (the client
announces no Topic Alias Maximum, so it is 0, 3.1.2.11.5): either is a ``ProtocolError``, as
is anything malformed. A connection that hits one is closed and made again.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

# packet types (2.1.2)
CONNECT, CONNACK, PUBLISH, PUBACK = 1, 2, 3, 4
SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK = 8, 9, 10, 11
PINGREQ, PINGRESP, DISCONNECT, AUTH = 12, 13, 14, 15

PINGREQ_PACKET = b"\xc0\x00"
DISCONNECT_PACKET = b"\xe0\x00"  # normal disconnection: reason code 0 and no properties
MAX_REMAINING = 268_435_455  # the largest Remaining Length (1.5.5)

# property identifiers of the packets this client reads or sends (2.2.2.2) and their types
BYTE, TWO, FOUR, VARINT, UTF8, BINARY, PAIR = range(7)
PROPERTIES: dict[int, tuple[str, int]] = {
    0x01: ("payload_format", BYTE),
    0x02: ("message_expiry", FOUR),
    0x03: ("content_type", UTF8),
    0x08: ("response_topic", UTF8),
    0x09: ("correlation_data", BINARY),
    0x0B: ("subscription_identifier", VARINT),
    0x11: ("session_expiry", FOUR),
    0x12: ("assigned_client_id", UTF8),
    0x13: ("server_keep_alive", TWO),
    0x15: ("authentication_method", UTF8),
    0x16: ("authentication_data", BINARY),
    0x1A: ("response_information", UTF8),
    0x1C: ("server_reference", UTF8),
    0x1F: ("reason_string", UTF8),
    0x21: ("receive_maximum", TWO),
    0x22: ("topic_alias_maximum", TWO),
    0x23: ("topic_alias", TWO),
    0x24: ("maximum_qos", BYTE),
    0x25: ("retain_available", BYTE),
    0x26: ("user_property", PAIR),
    0x27: ("maximum_packet_size", FOUR),
    0x28: ("wildcard_subscription_available", BYTE),
    0x29: ("subscription_identifier_available", BYTE),
    0x2A: ("shared_subscription_available", BYTE),
}

# reason codes (2.4), for the logs
REASONS: dict[int, str] = {
    0x00: "success",
    0x01: "granted QoS 1",
    0x02: "granted QoS 2",
    0x04: "disconnect with will message",
    0x10: "no matching subscribers",
    0x11: "no subscription existed",
    0x80: "unspecified error",
    0x81: "malformed packet",
    0x82: "protocol error",
    0x83: "implementation specific error",
    0x84: "unsupported protocol version",
    0x85: "client identifier not valid",
    0x86: "bad user name or password",
    0x87: "not authorized",
    0x88: "server unavailable",
    0x89: "server busy",
    0x8A: "banned",
    0x8B: "server shutting down",
    0x8C: "bad authentication method",
    0x8D: "keep alive timeout",
    0x8E: "session taken over",
    0x8F: "topic filter invalid",
    0x90: "topic name invalid",
    0x91: "packet identifier in use",
    0x92: "packet identifier not found",
    0x93: "receive maximum exceeded",
    0x94: "topic alias invalid",
    0x95: "packet too large",
    0x96: "message rate too high",
    0x97: "quota exceeded",
    0x98: "administrative action",
    0x99: "payload format invalid",
    0x9A: "retain not supported",
    0x9B: "QoS not supported",
    0x9C: "use another server",
    0x9D: "server moved",
    0x9E: "shared subscriptions not supported",
    0x9F: "connection rate exceeded",
    0xA0: "maximum connect time",
    0xA1: "subscription identifiers not supported",
    0xA2: "wildcard subscriptions not supported",
}


class ProtocolError(Exception):
    """What the broker sent is malformed or not allowed here; the connection must go."""


def reason(code: int) -> str:
    """``"not authorized (0x87)"``."""
    return f"{REASONS.get(code, 'unknown reason')} (0x{code:02x})"


class Publish(NamedTuple):
    topic: str
    payload: bytes
    qos: int
    retain: bool
    packet_id: int  # 0 at QoS 0


class Packet(NamedTuple):
    """Any other packet: its type, the four flag bits of its first byte, and its body."""

    type: int
    flags: int
    body: bytes


class Ack(NamedTuple):
    """CONNACK, PUBACK, SUBACK, UNSUBACK or DISCONNECT, decoded by ``parse_ack``."""

    type: int
    packet_id: int  # 0 for CONNACK and DISCONNECT
    codes: tuple[int, ...]  # CONNACK: (session present, reason); SUBACK/UNSUBACK: one a filter
    properties: dict[str, object]


# ---- encoding ---------------------------------------------------------------------------


def varint(n: int) -> bytes:
    """A Variable Byte Integer (1.5.5)."""
    if not 0 <= n <= MAX_REMAINING:
        raise ValueError(f"{n} does not fit a variable byte integer")
    out = bytearray()
    while True:
        n, digit = divmod(n, 128)
        out.append(digit | (0x80 if n else 0))
        if not n:
            return bytes(out)


def utf8(s: str) -> bytes:
    """A UTF-8 Encoded String (1.5.4): no U+0000, at most 65535 bytes."""
    if "\x00" in s:
        raise ValueError("a string with U+0000")
    data = s.encode("utf-8")
    if len(data) > 0xFFFF:
        raise ValueError("a string longer than 65535 bytes")
    return struct.pack("!H", len(data)) + data


def binary(data: bytes) -> bytes:
    if len(data) > 0xFFFF:
        raise ValueError("binary data longer than 65535 bytes")
    return struct.pack("!H", len(data)) + data


def packet(first: int, body: bytes) -> bytes:
    return bytes((first,)) + varint(len(body)) + body


def _packet_id(n: int) -> bytes:
    """A Packet Identifier: non-zero, two bytes (2.2.1)."""
    if not 0 < n <= 0xFFFF:
        raise ValueError(f"packet identifier {n}: expected 1 to 65535")
    return n.to_bytes(2, "big")


def connect(
    client_id: str, keepalive: int, username: str = "", password: str = "", clean_start: bool = True
) -> bytes:
    """CONNECT (3.1): no will, no session kept after the connection (Session Expiry 0)."""
    flags = (0x02 if clean_start else 0) | (0x80 if username else 0) | (0x40 if password else 0)
    body = b"\x00\x04MQTT\x05" + struct.pack("!BH", flags, keepalive) + b"\x00" + utf8(client_id)
    if username:
        body += utf8(username)
    if password:
        body += binary(password.encode("utf-8"))
    return packet(CONNECT << 4, body)


def subscribe(packet_id: int, filters: list[tuple[str, int]]) -> bytes:
    """SUBSCRIBE (3.8): each filter with its maximum QoS; retained messages sent at subscribe."""
    if not filters:
        raise ValueError("a SUBSCRIBE needs a topic filter")
    body = _packet_id(packet_id) + b"\x00"
    for topic, qos in filters:
        if qos not in (0, 1, 2):
            raise ValueError(f"subscription QoS {qos}: expected 0, 1 or 2")
        body += utf8(topic) + bytes((qos,))
    return packet(SUBSCRIBE << 4 | 0x2, body)


def unsubscribe(packet_id: int, filters: list[str]) -> bytes:
    if not filters:
        raise ValueError("an UNSUBSCRIBE needs a topic filter")
    body = _packet_id(packet_id) + b"\x00" + b"".join(utf8(t) for t in filters)
    return packet(UNSUBSCRIBE << 4 | 0x2, body)


def publish(
    topic: str, payload: bytes, qos: int = 0, packet_id: int = 0, retain: bool = False
) -> bytes:
    if qos not in (0, 1):
        raise ValueError("this client publishes at QoS 0 or 1")
    if not topic or "+" in topic or "#" in topic:
        raise ValueError(f"topic name {topic[:200]!r}: not empty and without wildcards")
    body = utf8(topic) + (_packet_id(packet_id) if qos else b"") + b"\x00" + payload
    return packet(PUBLISH << 4 | qos << 1 | int(retain), body)


def puback(packet_id: int) -> bytes:
    return b"\x40\x02" + packet_id.to_bytes(2, "big")


# ---- decoding -----------------------------------------------------------------------------


def _varint_at(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    """A Variable Byte Integer at ``pos``: (value, position after it); ProtocolError if it is
    longer than four bytes or runs past ``end``."""
    value, shift = 0, 0
    while True:
        if pos >= end:
            raise ProtocolError("a variable byte integer runs past the packet")
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, pos
        shift += 7
        if shift > 21:
            raise ProtocolError("a variable byte integer longer than four bytes")


def _take(buf: bytes, pos: int, n: int, end: int) -> int:
    if pos + n > end:
        raise ProtocolError("a field runs past the packet")
    return pos + n


def _string(buf: bytes, pos: int, end: int) -> tuple[str, int]:
    n = int.from_bytes(buf[pos : _take(buf, pos, 2, end)], "big")
    start = pos + 2
    stop = _take(buf, start, n, end)
    return _text(buf[start:stop], "a string"), stop


def _text(raw: bytes, what: str) -> str:
    """A UTF-8 Encoded String's characters (1.5.4): valid UTF-8 without U+0000."""
    try:
        s = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ProtocolError(f"{what} that is not UTF-8: {e}") from None
    if "\x00" in s:
        raise ProtocolError(f"{what} with U+0000")
    return s


def properties(buf: bytes, pos: int, end: int) -> tuple[dict[str, object], int]:
    """The property list at ``pos`` (2.2.2): ({name: value}, position after it). A User
    Property may repeat and comes as a list of (name, value); an unknown identifier or a
    repeated other one is a ProtocolError."""
    length, pos = _varint_at(buf, pos, end)
    stop = _take(buf, pos, length, end)
    out: dict[str, object] = {}
    while pos < stop:
        ident, pos = _varint_at(buf, pos, stop)
        known = PROPERTIES.get(ident)
        if known is None:
            raise ProtocolError(f"unknown property identifier 0x{ident:02x}")
        name, kind = known
        value: object
        if kind == BYTE:
            pos = _take(buf, pos, 1, stop)
            value = buf[pos - 1]
        elif kind == TWO:
            value = int.from_bytes(buf[pos : _take(buf, pos, 2, stop)], "big")
            pos += 2
        elif kind == FOUR:
            value = int.from_bytes(buf[pos : _take(buf, pos, 4, stop)], "big")
            pos += 4
        elif kind == VARINT:
            value, pos = _varint_at(buf, pos, stop)
        elif kind == UTF8:
            value, pos = _string(buf, pos, stop)
        elif kind == BINARY:
            n = int.from_bytes(buf[pos : _take(buf, pos, 2, stop)], "big")
            value = bytes(buf[pos + 2 : _take(buf, pos + 2, n, stop)])
            pos += 2 + n
        else:  # PAIR
            key, pos = _string(buf, pos, stop)
            val, pos = _string(buf, pos, stop)
            pairs = out.setdefault(name, [])
            assert isinstance(pairs, list)
            pairs.append((key, val))
            continue
        if name in out:
            raise ProtocolError(f"property {name} given twice")
        out[name] = value
    return out, stop


def parse_ack(p: Packet) -> Ack:
    """CONNACK, PUBACK, SUBACK, UNSUBACK or DISCONNECT from the broker (3.2, 3.4, 3.9, 3.11,
    3.14). A PUBACK or DISCONNECT may leave out its reason code (then 0) and properties."""
    body, end = p.body, len(p.body)
    if p.type == CONNACK:
        if end < 2:
            raise ProtocolError("a CONNACK shorter than 2 bytes")
        if body[0] & 0xFE:
            raise ProtocolError("a CONNACK with reserved acknowledge flags set")
        props, pos = properties(body, 2, end)
        if pos != end:
            raise ProtocolError("a CONNACK with bytes after its properties")
        return Ack(CONNACK, 0, (body[0] & 1, body[1]), props)
    if p.type == DISCONNECT:
        if end == 0:
            return Ack(DISCONNECT, 0, (0,), {})
        props, pos = properties(body, 1, end) if end > 1 else ({}, end)
        if pos != end:
            raise ProtocolError("a DISCONNECT with bytes after its properties")
        return Ack(DISCONNECT, 0, (body[0],), props)
    if p.type not in (PUBACK, SUBACK, UNSUBACK):
        raise ProtocolError(f"packet type {p.type} is not an acknowledgement")
    if end < 2:
        raise ProtocolError(f"packet type {p.type} shorter than 2 bytes")
    packet_id = int.from_bytes(body[:2], "big")
    if p.type == PUBACK:
        if end == 2:
            return Ack(PUBACK, packet_id, (0,), {})
        props, pos = properties(body, 3, end) if end > 3 else ({}, end)
        if pos != end:
            raise ProtocolError("a PUBACK with bytes after its properties")
        return Ack(PUBACK, packet_id, (body[2],), props)
    props, pos = properties(body, 2, end)
    if pos == end:
        raise ProtocolError(f"packet type {p.type} without reason codes")
    return Ack(p.type, packet_id, tuple(body[pos:end]), props)


# the first byte's flags each type must carry (2.1.3); PUBLISH's are its own
_FLAGS = {CONNACK: 0, PUBACK: 0, SUBACK: 0, UNSUBACK: 0, PINGRESP: 0, DISCONNECT: 0, AUTH: 0}


class Decoder:
    """Cuts the byte stream from the broker into packets, whatever the read boundaries.

    ``feed(data)`` returns the packets completed by ``data``: ``Publish`` for PUBLISH (the
    hot path, decoded inline), ``Packet`` for the rest. A packet not complete yet is kept;
    while its length is known its pieces are only collected, so a large payload arriving in
    many reads is joined once.
    """

    __slots__ = ("_chunks", "_have", "_need")

    def __init__(self) -> None:
        self._chunks: list[bytes] = []
        self._have = 0
        self._need = 0  # bytes needed to complete the kept packet, 0 if not known yet

    def buffered(self) -> int:
        return self._have

    def feed(self, data: bytes) -> list[Publish | Packet]:
        if self._chunks:
            self._chunks.append(data)
            self._have += len(data)
            if self._have < self._need:
                return []
            buf = b"".join(self._chunks)
            self._chunks = []
            self._have = self._need = 0
        else:
            buf = data
        out: list[Publish | Packet] = []
        pos, n = 0, len(buf)
        while pos < n:
            first = buf[pos]
            # the Remaining Length, inline (the common one- and two-byte cases are cheap)
            i, length, shift = pos + 1, 0, 0
            while True:
                if i >= n:
                    length = -1
                    break
                b = buf[i]
                i += 1
                length |= (b & 0x7F) << shift
                if b < 0x80:
                    break
                shift += 7
                if shift > 21:
                    raise ProtocolError("a remaining length longer than four bytes")
            end = i + length
            if length < 0 or end > n:
                rest = buf[pos:] if pos else buf
                self._chunks = [rest]
                self._have = len(rest)
                self._need = end - pos if length >= 0 else 0
                return out
            kind = first >> 4
            if kind == PUBLISH:
                out.append(_publish(buf, first, i, end))
            else:
                if _FLAGS.get(kind, -1) != first & 0x0F:
                    raise ProtocolError(f"unexpected packet type {kind} (flags {first & 15:#x})")
                out.append(Packet(kind, first & 0x0F, buf[i:end]))
            pos = end
        return out


def _publish(buf: bytes, first: int, pos: int, end: int) -> Publish:
    qos = (first >> 1) & 3
    if qos > 1:
        raise ProtocolError(f"a PUBLISH at QoS {qos}; the subscriptions allow 1 at most")
    if pos + 2 > end:
        raise ProtocolError("a PUBLISH without a topic")
    tlen = (buf[pos] << 8) | buf[pos + 1]
    start = pos + 2
    pos = tend = start + tlen
    if tlen == 0:
        raise ProtocolError("a PUBLISH with an empty topic (a topic alias was not allowed)")
    packet_id = 0
    if qos:
        if pos + 2 > end:
            raise ProtocolError("a PUBLISH without its packet identifier")
        packet_id = (buf[pos] << 8) | buf[pos + 1]
        pos += 2
        if not packet_id:
            raise ProtocolError("a QoS 1 PUBLISH with packet identifier 0")
    if pos >= end:
        raise ProtocolError("a PUBLISH without its properties")
    plen = buf[pos]
    if plen:  # the properties (message expiry, content type, ...): none is used here
        props, pos = properties(buf, pos, end)
        if "topic_alias" in props:
            raise ProtocolError("a PUBLISH with a topic alias, which was not allowed")
    else:
        pos += 1
    if pos > end:
        raise ProtocolError("a PUBLISH whose properties run past it")
    topic = _text(buf[start:tend], "a PUBLISH topic")
    return Publish(topic, buf[pos:end], qos, bool(first & 1), packet_id)

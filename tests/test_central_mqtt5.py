"""The ingest's MQTT 5 codec (central/mqtt5.py), without a broker: what it encodes against
bytes written out by hand from the layouts of the OASIS standard "MQTT Version 5.0" (section
numbers in the comments), what it decodes from such bytes, framing across arbitrary read
boundaries, and that nothing a broker could send raises anything but ``ProtocolError``."""

from __future__ import annotations

import contextlib
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from central import mqtt5
from central.mqtt5 import (
    CONNACK,
    DISCONNECT,
    PINGRESP,
    PUBACK,
    SUBACK,
    UNSUBACK,
    Ack,
    Decoder,
    Packet,
    ProtocolError,
    Publish,
)


def decode(data: bytes) -> list[Publish | Packet]:
    d = Decoder()
    out = d.feed(data)
    assert d.buffered() == 0
    return out


def decode_one(data: bytes) -> Publish | Packet:
    (p,) = decode(data)
    return p


# ---- encoding ---------------------------------------------------------------------------


def test_connect_without_user_name_and_password_is_the_spec_layout():
    # 3.1.2: protocol name "MQTT", version 5, flags (clean start = bit 1), keep alive,
    # property length 0; 3.1.3: the client identifier
    assert mqtt5.connect("c1", 60) == (
        b"\x10\x0f"  # CONNECT, remaining length 15 (3.1.1)
        b"\x00\x04MQTT\x05"
        b"\x02"  # clean start
        b"\x00\x3c"  # keep alive 60 s
        b"\x00"  # no properties
        b"\x00\x02c1"
    )


def test_connect_with_user_name_and_password_is_the_spec_layout():
    # 3.1.2.8/3.1.2.9: user name flag bit 7, password flag bit 6; 3.1.3.5: the user name is
    # a UTF-8 string, 3.1.3.6: the password Binary Data, both after the client identifier
    assert mqtt5.connect("c1", 60, "u", "pw") == (
        b"\x10\x16\x00\x04MQTT\x05\xc2\x00\x3c\x00\x00\x02c1\x00\x01u\x00\x02pw"
    )
    # user name alone, no clean start, keep alive 0
    assert mqtt5.connect("c1", 0, "u", clean_start=False) == (
        b"\x10\x12\x00\x04MQTT\x05\x80\x00\x00\x00\x00\x02c1\x00\x01u"
    )
    # 3.1.2.9: in MQTT 5 a password may come without a user name
    assert mqtt5.connect("c1", 1, password="pw") == (
        b"\x10\x13\x00\x04MQTT\x05\x42\x00\x01\x00\x00\x02c1\x00\x02pw"
    )


def test_subscribe_with_two_filters_is_the_spec_layout():
    # 3.8.1: fixed header 0x82 (reserved flags 0010); 3.8.2: packet id, property length;
    # 3.8.3: each filter followed by its subscription options (maximum QoS in bits 0-1)
    assert mqtt5.subscribe(10, [("a/#", 1), ("b", 0)]) == (
        b"\x82\x0d\x00\x0a\x00\x00\x03a/#\x01\x00\x01b\x00"
    )


def test_unsubscribe_is_the_spec_layout():
    # 3.10.1: fixed header 0xa2; 3.10.2: packet id, property length; 3.10.3: the filters
    assert mqtt5.unsubscribe(11, ["a/#", "b"]) == b"\xa2\x0b\x00\x0b\x00\x00\x03a/#\x00\x01b"


def test_publish_at_qos_0_and_1_with_retain_is_the_spec_layout():
    # 3.3.1: QoS in bits 1-2, RETAIN bit 0; 3.3.2: topic name, packet id only when QoS > 0,
    # property length; 3.3.3: the payload, without a length of its own
    assert mqtt5.publish("t/1", b"hi", retain=True) == b"\x31\x08\x00\x03t/1\x00hi"
    assert mqtt5.publish("t/1", b"hi", 1, 0x1234, True) == b"\x33\x0a\x00\x03t/1\x12\x34\x00hi"
    assert mqtt5.publish("t/1", b"", 1, 7) == b"\x32\x08\x00\x03t/1\x00\x07\x00"


def test_puback_pingreq_and_disconnect_are_the_short_forms():
    # 3.4.2.1: reason code and properties left out for Success; remaining length 2
    assert mqtt5.puback(0x1234) == b"\x40\x02\x12\x34"
    # 3.12: PINGREQ; 3.14.2.1: DISCONNECT with remaining length 0 is normal disconnection
    assert mqtt5.PINGREQ_PACKET == b"\xc0\x00"
    assert mqtt5.DISCONNECT_PACKET == b"\xe0\x00"


def test_a_publish_large_enough_for_a_three_byte_remaining_length_has_one():
    data = mqtt5.publish("t", b"x" * 16_380)  # body: 3 + 1 + 16380 = 16384
    assert data[:4] == b"\x30\x80\x80\x01"
    assert decode_one(data) == Publish("t", b"x" * 16_380, 0, False, 0)


@pytest.mark.parametrize(
    "call",
    [
        lambda: mqtt5.publish("t", b"", 2),
        lambda: mqtt5.publish("t", b"", 1, 0),  # 2.2.1: a packet id is non-zero
        lambda: mqtt5.publish("", b""),  # 3.3.2.1: no topic alias here, a topic is needed
        lambda: mqtt5.publish("a/+", b""),  # 3.3.2.1: no wildcards in a topic name
        lambda: mqtt5.publish("a/#", b""),
        lambda: mqtt5.publish("a\x00b", b""),  # 1.5.4: no U+0000 in a UTF-8 string
        lambda: mqtt5.publish("x" * 65_536, b""),  # 1.5.4: at most 65535 bytes
        lambda: mqtt5.subscribe(0, [("a", 0)]),
        lambda: mqtt5.subscribe(1, []),  # 3.8.3: at least one filter
        lambda: mqtt5.subscribe(1, [("a", 3)]),  # 3.8.3.1: QoS 3 is a protocol error
        lambda: mqtt5.unsubscribe(0, ["a"]),
        lambda: mqtt5.unsubscribe(1, []),  # 3.10.3: at least one filter
        lambda: mqtt5.connect("c\x00", 60),
        lambda: mqtt5.connect("c", 60, password="p" * 65_536),
    ],
)
def test_the_encoders_refuse_what_the_spec_forbids_a_sender(call):
    with pytest.raises(ValueError):
        call()


# ---- variable byte integers (1.5.5) -------------------------------------------------------

# the boundaries of table 1-1 (1.5.5) and their encodings
VARINTS = [
    (0, b"\x00"),
    (127, b"\x7f"),
    (128, b"\x80\x01"),
    (16_383, b"\xff\x7f"),
    (16_384, b"\x80\x80\x01"),
    (2_097_151, b"\xff\xff\x7f"),
    (2_097_152, b"\x80\x80\x80\x01"),
    (268_435_455, b"\xff\xff\xff\x7f"),
]


@pytest.mark.parametrize(("value", "encoded"), VARINTS)
def test_variable_byte_integers_at_the_boundaries_encode_and_decode(value, encoded):
    assert mqtt5.varint(value) == encoded
    # decoded as a Subscription Identifier (0x0b, a Variable Byte Integer property, 2.2.2.2)
    props = bytes((1 + len(encoded),)) + b"\x0b" + encoded
    assert mqtt5.properties(props, 0, len(props)) == (
        {"subscription_identifier": value},
        len(props),
    )


@pytest.mark.parametrize("value", [-1, 268_435_456, 2**40])
def test_a_value_outside_the_variable_byte_integer_range_is_a_value_error(value):
    with pytest.raises(ValueError):
        mqtt5.varint(value)


@pytest.mark.parametrize(
    "data",
    [
        b"\x30\xff\xff\xff\xff\x01" + b"\x00" * 16,  # remaining length of five bytes
        b"\xd0\x80\x80\x80\x80",  # even before the fifth byte is there
    ],
)
def test_a_five_byte_remaining_length_in_the_stream_is_a_protocol_error(data):
    with pytest.raises(ProtocolError, match="four bytes"):
        Decoder().feed(data)


def test_a_five_byte_variable_byte_integer_in_the_properties_is_a_protocol_error():
    props = b"\x06\x0b\xff\xff\xff\xff\x01"
    with pytest.raises(ProtocolError, match="four bytes"):
        mqtt5.properties(props, 0, len(props))


# ---- framing -----------------------------------------------------------------------------

topics = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00+#"),
    min_size=1,
    max_size=40,
)
# payload sizes around the points where the remaining length grows a byte (1.5.5)
sizes = st.one_of(
    st.integers(0, 300),
    st.sampled_from([0, 120, 127, 128, 16_370, 16_383, 16_384, 65_535, 65_536, 70_000]),
    st.integers(0, 70_000),
)


@st.composite
def publishes(draw) -> tuple[bytes, Publish]:
    topic = draw(topics)
    payload = random.Random(draw(st.integers(0, 2**32))).randbytes(draw(sizes))
    qos = draw(st.sampled_from([0, 1]))
    packet_id = draw(st.integers(1, 0xFFFF)) if qos else 0
    retain = draw(st.booleans())
    return mqtt5.publish(topic, payload, qos, packet_id, retain), Publish(
        topic, payload, qos, retain, packet_id
    )


@st.composite
def subacks(draw) -> tuple[bytes, Packet]:
    packet_id = draw(st.integers(1, 0xFFFF))
    codes = bytes(draw(st.lists(st.sampled_from([0, 1, 2, 0x80, 0x87, 0x8F]), min_size=1)))
    text = draw(st.text(max_size=10).filter(lambda s: "\x00" not in s))
    props = b"\x1f" + mqtt5.utf8(text) if draw(st.booleans()) else b""
    body = packet_id.to_bytes(2, "big") + mqtt5.varint(len(props)) + props + codes
    return bytes((0x90,)) + mqtt5.varint(len(body)) + body, Packet(SUBACK, 0, body)


@st.composite
def pubacks(draw) -> tuple[bytes, Packet]:
    body = draw(st.integers(1, 0xFFFF)).to_bytes(2, "big")
    body += draw(st.sampled_from([b"", b"\x10", b"\x97\x00", b"\x00\x04\x1f\x00\x01x"]))
    return bytes((0x40, len(body))) + body, Packet(PUBACK, 0, body)


pingresps = st.just((b"\xd0\x00", Packet(PINGRESP, 0, b"")))
streams = st.lists(st.one_of(publishes(), subacks(), pubacks(), pingresps), max_size=8)
cuts = st.lists(st.integers(0, 2**31), max_size=12)


def pieces(data: bytes, at: list[int]) -> list[bytes]:
    points = sorted({a % (len(data) + 1) for a in at})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]


@settings(max_examples=200, deadline=None)
@given(streams, cuts)
def test_a_stream_cut_anywhere_gives_the_same_packets_as_fed_whole(stream, at):
    data = b"".join(encoded for encoded, _ in stream)
    expected = [packet for _, packet in stream]
    whole = Decoder()
    assert whole.feed(data) == expected
    assert whole.buffered() == 0
    cut = Decoder()
    got: list[Publish | Packet] = []
    for piece in pieces(data, at):
        got += cut.feed(piece)
    assert got == expected
    assert cut.buffered() == 0


def test_a_stream_fed_byte_by_byte_gives_every_packet_once():
    stream = [
        mqtt5.publish("a/b", b"x" * 200, 1, 5),
        b"\xd0\x00",
        mqtt5.publish("\u00e9t\u00e9", b"", 0),
        b"\x40\x02\x00\x05",
    ]
    ends = [sum(len(s) for s in stream[: k + 1]) for k in range(len(stream))]
    d = Decoder()
    got: list[Publish | Packet] = []
    for i, byte in enumerate(b"".join(stream)):
        got += d.feed(bytes((byte,)))
        done = [e for e in ends if e <= i + 1]
        assert len(got) == len(done)
        assert d.buffered() == i + 1 - (done[-1] if done else 0)
    assert got == [
        Publish("a/b", b"x" * 200, 1, False, 5),
        Packet(PINGRESP, 0, b""),
        Publish("\u00e9t\u00e9", b"", 0, False, 0),
        Packet(PUBACK, 0, b"\x00\x05"),
    ]
    assert d.buffered() == 0


def test_an_incomplete_packet_is_kept_and_counted_until_its_last_byte():
    data = mqtt5.publish("t", b"abc")
    d = Decoder()
    assert d.feed(data[:1]) == []
    assert d.buffered() == 1
    assert d.feed(data[1:-1]) == []
    assert d.buffered() == len(data) - 1
    assert d.feed(data[-1:] + b"\xd0") == [Publish("t", b"abc", 0, False, 0)]
    assert d.buffered() == 1
    assert d.feed(b"\x00") == [Packet(PINGRESP, 0, b"")]
    assert d.buffered() == 0


# ---- nothing but ProtocolError ------------------------------------------------------------

FIRST_BYTES = [0x20, 0x30, 0x31, 0x32, 0x33, 0x34, 0x38, 0x40, 0x90, 0xB0, 0xD0, 0xE0, 0xF0]


@st.composite
def property_noise(draw) -> bytes:
    """A property list of known (and one unknown) identifiers with values of any length,
    its length right or not."""
    ids = st.sampled_from([*mqtt5.PROPERTIES, 0x7F])
    props = b"".join(
        bytes((draw(ids),)) + draw(st.binary(max_size=5)) for _ in range(draw(st.integers(0, 3)))
    )
    length = draw(st.one_of(st.just(len(props)), st.integers(0, len(props) + 3)))
    return mqtt5.varint(length) + props


@st.composite
def framed(draw) -> bytes:
    """A packet with a correct remaining length and a body that is mostly noise: a plausible
    start (a topic or a packet id, a reason code), then properties, then anything."""
    first = draw(st.one_of(st.sampled_from(FIRST_BYTES), st.integers(0, 255)))
    start = draw(st.sampled_from([b"", b"\x00\x01t", b"\x00\x01", b"\x00\x01t\x00\x01", b"\x00"]))
    props = draw(st.one_of(st.just(b""), property_noise()))
    body = start + props + draw(st.binary(max_size=20))
    return bytes((first,)) + mqtt5.varint(len(body)) + body


@st.composite
def mangled(draw) -> bytes:
    """A valid packet with a few bytes overwritten, or cut short with a fitting length."""
    data = bytearray(draw(st.one_of(publishes(), subacks(), pubacks()))[0][:200])
    for _ in range(draw(st.integers(1, 4))):
        data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    return bytes(data)


noise = st.lists(st.one_of(st.binary(max_size=30), framed(), mangled()), min_size=1, max_size=6)


def consume(pieces_: list[bytes]) -> tuple[list[Publish | Packet], int] | None:
    """Feeds the pieces and parses what comes out as the client would: the packets and what
    is left buffered, or None for a ProtocolError (a Packet that is no acknowledgement is
    one in parse_ack). Any other exception fails the test."""
    d = Decoder()
    got: list[Publish | Packet] = []
    try:
        for piece in pieces_:
            for p in d.feed(piece):
                if type(p) is Packet:
                    assert type(mqtt5.parse_ack(p)) is Ack
                else:
                    assert type(p) is Publish
                got.append(p)
    except ProtocolError:
        return None
    return got, d.buffered()


@settings(max_examples=200, deadline=None)
@given(noise, cuts)
def test_arbitrary_bytes_give_packets_or_a_protocol_error_and_nothing_else(chunks, at):
    data = b"".join(chunks)
    # cut or not, the same packets come out, or both end in a ProtocolError
    assert consume(pieces(data, at)) == consume([data])


ack_bodies = st.tuples(
    st.sampled_from([CONNACK, PUBACK, SUBACK, UNSUBACK, DISCONNECT]),
    st.sampled_from([b"", b"\x00", b"\x00\x01", b"\x00\x01\x00"]),
    property_noise(),
    st.binary(max_size=4),
)


@settings(max_examples=200, deadline=None)
@given(ack_bodies)
def test_arbitrary_acknowledgement_bodies_give_an_ack_or_a_protocol_error(parts):
    kind, start, props, tail = parts
    for body in (start + props + tail, start + props, start + props[:-1]):
        with contextlib.suppress(ProtocolError):
            assert type(mqtt5.parse_ack(Packet(kind, 0, body))) is Ack
        with contextlib.suppress(ProtocolError):
            mqtt5.properties(props, 0, len(props))


# ---- what is refused ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"\x34\x06\x00\x01t\x00\x01\x00", "QoS 2"),  # 3.3.1.2: QoS 2, never asked for
        (b"\x36\x06\x00\x01t\x00\x01\x00", "QoS 3"),  # 3.3.1.2: QoS 3 is malformed
        (b"\x30\x03\x00\x00\x00", "empty topic"),  # 3.3.2.1: a topic alias would be needed
        (b"\x30\x08\x00\x01t\x03\x23\x00\x01x", "topic alias"),  # 3.3.2.3.4: none allowed
        (b"\x32\x06\x00\x01t\x00\x00\x00", "identifier 0"),  # 2.2.1: non-zero at QoS 1
        (b"\x30\x04\x00\x01\xff\x00", "UTF-8"),  # 1.5.4: ill-formed UTF-8
        (b"\x30\x06\x00\x03\xed\xa0\x80\x00", "UTF-8"),  # 1.5.4: an encoded surrogate
        (b"\x30\x05\x00\x02t\x00\x00", "U\\+0000"),  # 1.5.4: the null character
        (b"\x30\x01\x00", "without a topic"),
        (b"\x30\x03\x00\x05t", "properties"),  # topic longer than the packet
        (b"\x32\x04\x00\x01t\x00", "packet identifier"),
        (b"\x30\x03\x00\x01t", "properties"),
        (b"\x30\x05\x00\x01t\x05\x01", "past"),  # properties longer than the packet
    ],
)
def test_malformed_or_unexpected_publish_packets_are_protocol_errors(data, match):
    with pytest.raises(ProtocolError, match=match):
        Decoder().feed(data)


@pytest.mark.parametrize(
    "data",
    [
        b"\x92\x04\x00\x01\x00\x00",  # SUBACK with flags 0010 (2.1.3: reserved, 0000)
        b"\xd1\x00",  # PINGRESP with flags 0001
        b"\x41\x02\x00\x01",  # PUBACK with flags 0001
        b"\xe8\x00",  # DISCONNECT with flags 1000
        mqtt5.connect("c", 60),  # 2.1.2: client-to-server types
        mqtt5.subscribe(1, [("a", 0)]),
        mqtt5.unsubscribe(1, ["a"]),
        mqtt5.PINGREQ_PACKET,
        b"\x00\x00",  # type 0 is reserved
        b"\x50\x02\x00\x01",  # PUBREC, PUBREL, PUBCOMP: QoS 2 flow, never asked for
        b"\x62\x02\x00\x01",
        b"\x70\x02\x00\x01",
    ],
)
def test_wrong_flags_and_packets_a_server_does_not_send_here_are_protocol_errors(data):
    with pytest.raises(ProtocolError, match="unexpected packet type"):
        Decoder().feed(b"\xd0\x00" + data)


def test_an_unknown_property_identifier_is_a_protocol_error():
    for props in (b"\x02\x7f\x00", b"\x01\x04", b"\x02\x17\x01"):  # 0x17: CONNECT only
        with pytest.raises(ProtocolError, match="unknown property"):
            mqtt5.properties(props, 0, len(props))
    with pytest.raises(ProtocolError, match="unknown property"):
        Decoder().feed(b"\x30\x07\x00\x01t\x02\x7f\x00x")


def test_a_property_given_twice_is_a_protocol_error_but_user_properties_collect():
    twice = b"\x04\x01\x00\x01\x01"
    with pytest.raises(ProtocolError, match="payload_format given twice"):
        mqtt5.properties(twice, 0, len(twice))
    # 3.3.2.3.7: a User Property may appear more than once; order is kept
    users = b"\x10\x26\x00\x01a\x00\x01b\x01\x01\x26\x00\x01a\x00\x01c"
    assert mqtt5.properties(users, 0, len(users)) == (
        {"user_property": [("a", "b"), ("a", "c")], "payload_format": 1},
        len(users),
    )


@pytest.mark.parametrize(
    "props",
    [
        b"\x01\x01",  # a Byte property without its byte, at the end of the buffer
        b"\x02\x13\x00",  # a Two Byte Integer cut short
        b"\x04\x02\x00\x00\x00",  # a Four Byte Integer cut short
        b"\x03\x09\x00\x02",  # Binary Data longer than the property list
        b"\x03\x1f\x00\x05",  # a UTF-8 string longer than the property list
        b"\x05\x26\x00\x01ab",  # a string pair without its second string
        b"\x02\x0b\x80",  # a Variable Byte Integer cut short
        b"\x05\x1f\x00\x02a\x00",  # 1.5.4: U+0000 in a string
        b"\x05\x03\x00\x02\xc3\x28",  # 1.5.4: ill-formed UTF-8
        b"\x09",  # a property length longer than the buffer
    ],
)
def test_a_property_cut_short_or_malformed_is_a_protocol_error(props):
    with pytest.raises(ProtocolError):
        mqtt5.properties(props, 0, len(props))


def test_publish_properties_are_skipped_and_the_payload_follows_them():
    # 3.3.2.3: message expiry, content type, a user property; then the payload
    props = b"\x02\x00\x00\x00\x3c\x03\x00\x04json\x26\x00\x01k\x00\x01v"
    body = b"\x00\x01t\x00\x09" + bytes((len(props),)) + props + b"{}"
    assert decode_one(b"\x32" + bytes((len(body),)) + body) == Publish("t", b"{}", 1, False, 9)


# ---- acknowledgements (parse_ack) ---------------------------------------------------------


def test_connack_with_session_present_and_properties():
    # 3.2.2.1: acknowledge flags (session present = bit 0), 3.2.2.2: reason code,
    # 3.2.2.3: properties: Server Keep Alive (0x13), Shared Subscription Available (0x2a),
    # Reason String (0x1f)
    p = decode_one(b"\x20\x0c\x01\x00\x09\x13\x00\x3c\x2a\x00\x1f\x00\x01k")
    assert p == Packet(CONNACK, 0, b"\x01\x00\x09\x13\x00\x3c\x2a\x00\x1f\x00\x01k")
    assert mqtt5.parse_ack(p) == Ack(
        CONNACK,
        0,
        (1, 0),
        {"server_keep_alive": 60, "shared_subscription_available": 0, "reason_string": "k"},
    )


def test_connack_refusing_without_properties():
    ack = mqtt5.parse_ack(decode_one(b"\x20\x03\x00\x87\x00"))
    assert ack == Ack(CONNACK, 0, (0, 0x87), {})
    assert mqtt5.reason(ack.codes[1]) == "not authorized (0x87)"


@pytest.mark.parametrize(
    "data",
    [
        b"\x20\x02\x00\x00",  # 3.2.2.3.1: the property length is not optional in a CONNACK
        b"\x20\x01\x00",
        b"\x20\x04\x00\x00\x00\x00",  # 3.2.3: a CONNACK has no payload
        b"\x20\x03\x02\x00\x00",  # 3.2.2.1: bits 7-1 of the acknowledge flags are reserved
    ],
)
def test_a_malformed_connack_is_a_protocol_error(data):
    with pytest.raises(ProtocolError):
        mqtt5.parse_ack(decode_one(data))


@pytest.mark.parametrize(
    ("data", "codes", "props"),
    [
        (b"\x40\x02\x12\x34", (0,), {}),  # 3.4.2.1: remaining length 2, success
        (b"\x40\x03\x12\x34\x10", (0x10,), {}),  # 3.4.2.2: < 4, no property length
        (b"\x40\x04\x12\x34\x97\x00", (0x97,), {}),
        (b"\x40\x08\x12\x34\x87\x04\x1f\x00\x01x", (0x87,), {"reason_string": "x"}),
    ],
)
def test_puback_in_its_short_and_full_forms(data, codes, props):
    assert mqtt5.parse_ack(decode_one(data)) == Ack(PUBACK, 0x1234, codes, props)


def test_suback_with_several_reason_codes_and_unsuback():
    # 3.9.2: packet id, properties; 3.9.3: one reason code per filter, in order
    suback = decode_one(b"\x90\x06\x00\x0a\x00\x00\x01\x80")
    assert mqtt5.parse_ack(suback) == Ack(SUBACK, 10, (0, 1, 0x80), {})
    suback = decode_one(b"\x90\x09\x00\x0a\x03\x1f\x00\x00\x02\x9e\x8f")
    assert mqtt5.parse_ack(suback) == Ack(SUBACK, 10, (2, 0x9E, 0x8F), {"reason_string": ""})
    # 3.11.2, 3.11.3: the same layout
    unsuback = decode_one(b"\xb0\x05\x00\x0b\x00\x00\x11")
    assert mqtt5.parse_ack(unsuback) == Ack(UNSUBACK, 11, (0, 0x11), {})


@pytest.mark.parametrize(
    "data",
    [
        b"\x90\x03\x00\x0a\x00",  # 3.9.3: the payload holds at least one reason code
        b"\xb0\x03\x00\x0b\x00",  # 3.11.3: likewise
        b"\x90\x02\x00\x0a",  # 3.9.2.1: the property length is not optional
        b"\x90\x01\x00",
        b"\x40\x01\x00",
    ],
)
def test_an_acknowledgement_without_its_required_fields_is_a_protocol_error(data):
    with pytest.raises(ProtocolError):
        mqtt5.parse_ack(decode_one(data))


@pytest.mark.parametrize(
    ("data", "code", "props"),
    [
        (b"\xe0\x00", 0, {}),  # 3.14.2.1: remaining length 0 is normal disconnection
        (b"\xe0\x01\x8b", 0x8B, {}),  # 3.14.2.2: < 2, no property length
        (b"\xe0\x07\x8b\x05\x1f\x00\x02by", 0x8B, {"reason_string": "by"}),
        (b"\xe0\x07\x9c\x05\x1c\x00\x02h2", 0x9C, {"server_reference": "h2"}),
    ],
)
def test_disconnect_empty_with_a_reason_code_and_with_a_reason_string(data, code, props):
    assert mqtt5.parse_ack(decode_one(data)) == Ack(DISCONNECT, 0, (code,), props)


@pytest.mark.parametrize(
    "data",
    [
        b"\xe0\x03\x8b\x00\x00",  # 3.14.3: a DISCONNECT has no payload
        b"\x40\x05\x12\x34\x00\x00\x00",  # 3.4.3: nor has a PUBACK
        b"\xe0\x02\x8b\x05",  # properties longer than the packet
    ],
)
def test_bytes_after_the_properties_of_a_disconnect_or_puback_are_a_protocol_error(data):
    with pytest.raises(ProtocolError):
        mqtt5.parse_ack(decode_one(data))


@pytest.mark.parametrize("data", [b"\xd0\x00", b"\xf0\x00"])
def test_parse_ack_refuses_packets_that_are_no_acknowledgement(data):
    with pytest.raises(ProtocolError, match="not an acknowledgement"):
        mqtt5.parse_ack(decode_one(data))


def test_reason_names_known_and_unknown_codes():
    assert mqtt5.reason(0x9E) == "shared subscriptions not supported (0x9e)"
    assert mqtt5.reason(0x03) == "unknown reason (0x03)"

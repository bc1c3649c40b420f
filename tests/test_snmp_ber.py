"""The built-in SNMPv2c codec against pysnmp's own encoder and decoder (both directions)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pyasn1.codec.ber import decoder, encoder
from pysnmp.proto import api

from collectors import snmp_ber as ber

V2C = api.PROTOCOL_MODULES[api.SNMP_VERSION_2C]

oids = st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=20).map(lambda t: (1, 3, *t))


def pysnmp_response(request_id, community, var_binds, status=0, index=0) -> bytes:
    pdu = V2C.ResponsePDU()
    V2C.apiPDU.set_defaults(pdu)
    V2C.apiPDU.set_request_id(pdu, request_id)
    V2C.apiPDU.set_error_status(pdu, status)
    V2C.apiPDU.set_error_index(pdu, index)
    V2C.apiPDU.set_varbinds(pdu, var_binds)
    msg = V2C.Message()
    V2C.apiMessage.set_defaults(msg)
    V2C.apiMessage.set_community(msg, community)
    V2C.apiMessage.set_pdu(msg, pdu)
    return encoder.encode(msg)


@given(
    st.lists(oids, min_size=1, max_size=30),
    st.integers(0, 2**31 - 1),
    st.integers(0, 5),
    st.integers(0, 5000),
)
def test_getbulk_request_decodes_with_pysnmp(request_oids, request_id, non_repeaters, reps):
    data = ber.encode_request(
        request_id, b"s3cret", [ber.encode_oid(o) for o in request_oids], non_repeaters, reps
    )
    msg, rest = decoder.decode(data, asn1Spec=V2C.Message())
    assert not rest
    pdu = V2C.apiMessage.get_pdu(msg)
    assert bytes(V2C.apiMessage.get_community(msg)) == b"s3cret"
    assert int(V2C.apiBulkPDU.get_request_id(pdu)) == request_id
    assert int(V2C.apiBulkPDU.get_non_repeaters(pdu)) == non_repeaters
    assert int(V2C.apiBulkPDU.get_max_repetitions(pdu)) == reps
    assert [tuple(o) for o, _ in V2C.apiBulkPDU.get_varbinds(pdu)] == request_oids


def test_get_request_decodes_with_pysnmp():
    data = ber.encode_request(
        7, b"public", [ber.encode_oid((1, 3, 6, 1, 2, 1, 1, 2, 0))], bulk=False
    )
    msg, _ = decoder.decode(data, asn1Spec=V2C.Message())
    pdu = V2C.apiMessage.get_pdu(msg)
    assert pdu.tagSet == V2C.GetRequestPDU.tagSet
    assert [tuple(o) for o, _ in V2C.apiPDU.get_varbinds(pdu)] == [(1, 3, 6, 1, 2, 1, 1, 2, 0)]


@given(
    st.lists(
        st.tuples(
            oids,
            st.one_of(
                st.integers(-(2**31), 2**31 - 1).map(lambda v: ("int", v)),
                st.binary(max_size=300).map(lambda v: ("octets", v)),
                oids.map(lambda v: ("oid", v)),
                st.integers(0, 2**32 - 1).map(lambda v: ("gauge", v)),
                st.integers(0, 2**64 - 1).map(lambda v: ("counter64", v)),
                st.just(("end", None)),
            ),
        ),
        max_size=60,
    ),
    st.integers(0, 2**31 - 1),
)
def test_pysnmp_responses_decode_with_the_builtin_codec(rows, request_id):
    make = {
        "int": V2C.Integer,
        "octets": V2C.OctetString,
        "oid": V2C.ObjectIdentifier,
        "gauge": V2C.Gauge32,
        "counter64": V2C.Counter64,
        "end": lambda _v: V2C.EndOfMibView(),
    }
    var_binds = [(V2C.ObjectIdentifier(o), make[k](v)) for o, (k, v) in rows]
    rid, community, status, index, got = ber.decode_response(
        pysnmp_response(request_id, b"c", var_binds)
    )
    assert (rid, community, status, index) == (request_id, b"c", 0, 0)
    assert [o for o, _ in got] == [o for o, _ in rows]
    for (_, (kind, value)), (_, decoded) in zip(rows, got, strict=True):
        if kind == "end":
            assert isinstance(decoded, ber.End)
        else:
            assert decoded == value


def test_error_status_and_ip_address():
    data = pysnmp_response(
        5, b"c", [(V2C.ObjectIdentifier((1, 3, 6)), V2C.IpAddress("192.0.2.7"))], 5, 1
    )
    assert ber.decode_response(data) == (5, b"c", 5, 1, [((1, 3, 6), "192.0.2.7")])


@pytest.mark.parametrize(
    "data",
    [b"", b"\x30", b"\x30\x05\x02\x01\x01\x04", b"\x02\x01\x00", b"\x30\x03\x02\x01\x00"],
)
def test_garbage_is_a_ber_error(data):
    with pytest.raises(ber.BerError):
        ber.decode_response(data)

"""collectors/pyghmi_wakeup.py: a wait registered after its reply was read is woken at once.

These drive pyghmi's own queue with a stand-in session at an address nothing sends from
(192.0.2.0/24, documentation range), so they are exact and take no time. That the stall is
gone against a real BMC is measured in bench/ (``bench/ipmi_stalls.py``).
"""

from __future__ import annotations

import collections
import contextlib
import threading
import time
import types

from pyghmi.ipmi.private import session as pyghmi_session

from collectors import pyghmi_wakeup

ADDR = ("192.0.2.99", 62300)


class StandIn:
    """Just what the check looks at: a session's queue of received packets."""

    def __init__(self, packets: int) -> None:
        self.pktqueue = collections.deque([b"\x06\x00\xff\x07"] * packets)


@contextlib.contextmanager
def handler_at(addr: tuple[str, int], packets: int):
    handlers = pyghmi_session.Session.bmc_handlers
    handlers[addr] = {0: StandIn(packets)}
    try:
        yield
    finally:
        handlers.pop(addr, None)


def register_wait(addr: tuple[str, int] | None) -> threading.Event:
    """What pyghmi's ``_io_wait`` does first: put (deadline, event, address) on ``ioqueue``."""
    event = threading.Event()
    item = (time.monotonic() + 600, event, addr)
    pyghmi_session.ioqueue.append(item)
    with contextlib.suppress(ValueError):  # pyghmi's I/O thread may have taken it already
        pyghmi_session.ioqueue.remove(item)
    return event


def test_installs_into_this_pyghmi():
    assert pyghmi_wakeup.compatible(pyghmi_session)
    assert pyghmi_wakeup.install() is True
    assert pyghmi_wakeup.install() is True  # once; a second call changes nothing
    assert type(pyghmi_session.ioqueue).__name__ == "WakeIfQueued"
    assert pyghmi_wakeup.installed()


def test_wait_for_an_address_with_a_queued_reply_is_woken_at_once():
    pyghmi_wakeup.install()
    with handler_at(ADDR, packets=1):
        assert register_wait(ADDR).is_set()


def test_wait_for_an_address_with_nothing_queued_still_sleeps():
    pyghmi_wakeup.install()
    with handler_at(ADDR, packets=0):
        assert not register_wait(ADDR).is_set()
    assert not register_wait(("192.0.2.98", 623)).is_set()  # no session there at all


def test_wait_for_any_address_is_woken_when_any_session_has_packets():
    pyghmi_wakeup.install()
    queue = pyghmi_session.sessionqueue
    stand_in = StandIn(1)
    queue.append(stand_in)
    try:
        assert register_wait(None).is_set()
    finally:
        with contextlib.suppress(ValueError):
            queue.remove(stand_in)
    if not queue:
        assert not register_wait(None).is_set()


def test_a_module_of_another_shape_is_left_alone():
    other = types.SimpleNamespace(ioqueue=[])  # a list, not a deque: some other pyghmi
    assert not pyghmi_wakeup.compatible(other)


def test_a_waiter_it_cannot_read_does_not_break_the_queue():
    queue = pyghmi_wakeup._make_queue(pyghmi_session, ())  # a private one, not pyghmi's
    queue.append(("not", "a waiter"))  # no exception
    assert list(queue) == [("not", "a waiter")]

"""Close pyghmi's lost wake-up: a reply read before its caller waits no longer costs 0.5-1 s.

pyghmi (1.6) does all socket reads in one I/O thread. A thread that sent an IPMI request
then registers a wait: it puts ``(deadline, event, bmc address)`` on the module's queue
``ioqueue`` and sleeps on the event. The I/O thread, after each read, wakes the waiters of
the addresses it has just read from. When the reply arrives *before* the caller has put
its wait on the queue (on loopback, or whenever the calling thread is descheduled for a
moment after its send), the I/O thread has already handed the datagram to the session's
``pktqueue`` and woken nobody; the caller's wait is then registered for an address that
has nothing more to say, and it sleeps until its retry deadline (0.5-1 s) although the
reply is already queued for it. ``bench/ipmi_stalls.py`` traces this: every cached sweep
slower than 100 ms on the simulator was this case, none a retransmission.

The remedy is where the wait is registered: :func:`install` gives pyghmi's session module
an ``ioqueue`` whose ``append`` sets the new waiter's event at once when a packet from its
address is already queued for a session (or, for a wait on any address, when any session
has packets waiting). The caller then wakes, processes the queued reply and returns. Waking
early is always safe: pyghmi's callers loop until their response matched.

Why there is no window left: the I/O thread queues a packet on ``pktqueue`` *before* it
looks at ``ioqueue``. A wait appended before that look is woken by the I/O thread; one
appended after it sees the packet on ``pktqueue`` here.

Installed once per process, before the first session, and only when pyghmi's module has the
shape this relies on (checked; otherwise nothing is changed and the stall stays possible).
Nothing in pyghmi's files is changed.
"""

from __future__ import annotations

import collections
import threading
from typing import Any

_lock = threading.Lock()
_state = {"installed": False, "checked": False}


def _packets_waiting(session_mod: Any, addr: Any) -> bool:
    if addr is None:  # a wait for any address (pyghmi's event loop iteration)
        return bool(session_mod.sessionqueue)
    handlers = session_mod.Session.bmc_handlers.get(addr)
    if not handlers:
        return False
    return any(getattr(s, "pktqueue", None) for s in list(handlers.values()))


def _make_queue(session_mod: Any, items: Any) -> collections.deque:
    class WakeIfQueued(collections.deque):
        """pyghmi's ``ioqueue``; a waiter whose reply is already queued is woken at once."""

        def append(self, item: Any) -> None:
            super().append(item)
            try:
                _deadline, event, addr = item
                if _packets_waiting(session_mod, addr):
                    event.set()
            except Exception:  # never break pyghmi's own path
                pass

    return WakeIfQueued(items)


def compatible(session_mod: Any) -> bool:
    """Does pyghmi's session module look as this fix expects?"""
    return (
        isinstance(getattr(session_mod, "ioqueue", None), collections.deque)
        and isinstance(getattr(session_mod, "sessionqueue", None), collections.deque)
        and isinstance(getattr(getattr(session_mod, "Session", None), "bmc_handlers", None), dict)
        and callable(getattr(session_mod, "_io_wait", None))
    )


def install() -> bool:
    """Install the fix into pyghmi's session module (once); True when it is in place."""
    with _lock:
        if _state["checked"]:
            return _state["installed"]
        from pyghmi.ipmi.private import session as session_mod

        _state["checked"] = True
        if compatible(session_mod):
            session_mod.ioqueue = _make_queue(session_mod, session_mod.ioqueue)
            _state["installed"] = True
        return _state["installed"]


def installed() -> bool:
    return _state["installed"]

"""A read buffer in front of the ingest's MQTT socket: one ``recv`` for many packets.

paho-mqtt reads each packet with at least three ``recv`` calls on its socket: the command
byte, each byte of the remaining length, then the body. Every call is a system call that
lets go of Python's GIL and takes it back, which at thousands of messages a second is a
large part of what a subscriber costs (bench/RESULTS.md, "central service").
``BufferedSocket`` reads up to ``size`` bytes at once and serves paho's small reads from
memory; ``pending()`` says how many bytes are buffered, which paho's loop already asks of
its socket (for the records a TLS socket has decrypted) and then reads again without
waiting in ``select``.

``BufferedClient`` is a paho ``Client`` whose connections are buffered so. It relies on
two internals of paho-mqtt 2 (``Client._create_socket`` makes the socket; ``Client._loop``
asks the socket's ``pending()``) and checks both when it is built: without them it falls
back to paho's own unbuffered reads and logs why, because buffered bytes nobody asks for
would stall the ingest until the next packet arrived.
"""

from __future__ import annotations

import logging
import socket
import threading
from typing import Any

import paho.mqtt
import paho.mqtt.client as mqtt

log = logging.getLogger("hotspare.central.ingest")

READ_SIZE = 65536
DRAIN = 64


class _Waker:
    """paho's wake-up socket, which it writes a byte to for every packet it queues, to end
    its thread's ``select``: from that thread itself there is nothing to wake."""

    __slots__ = ("_sock", "_thread")

    def __init__(self, sock: socket.socket, thread: threading.Thread) -> None:
        self._sock = sock
        self._thread = thread

    def send(self, data: bytes) -> int:
        if threading.current_thread() is self._thread:
            return len(data)
        return self._sock.send(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


class BufferedSocket:
    """A connected, non-blocking stream socket (plain or TLS) whose reads are buffered.

    ``recv(n)`` returns at most ``n`` bytes: from the buffer while it holds any (possibly
    fewer than ``n``, as a socket may), else from one read of ``size`` bytes of which the
    rest is kept. A read of ``size`` bytes or more goes to the socket directly. ``b""``
    (the peer closed) and the socket's exceptions (``BlockingIOError``, TLS's
    ``SSLWantReadError``, ``OSError``) reach the caller as they would without the buffer,
    with nothing buffered lost. Everything else (``send``, ``fileno``, ``close``,
    ``setblocking``, ...) is the socket's own.
    """

    __slots__ = ("_buf", "_inner_pending", "_pos", "_size", "_sock")

    def __init__(self, sock: socket.socket, size: int = READ_SIZE) -> None:
        self._sock = sock
        self._size = size
        self._buf = b""
        self._pos = 0
        self._inner_pending = getattr(sock, "pending", None)  # a TLS socket's decrypted bytes

    def recv(self, bufsize: int) -> bytes:
        buf, pos = self._buf, self._pos
        if pos < len(buf):
            end = pos + bufsize
            if end >= len(buf):
                self._buf, self._pos = b"", 0
                return buf[pos:] if pos else buf
            self._pos = end
            return buf[pos:end]
        if bufsize >= self._size:
            return self._sock.recv(bufsize)
        data = self._sock.recv(self._size)
        if len(data) <= bufsize:
            return data
        self._buf, self._pos = data, bufsize
        return data[:bufsize]

    def buffered(self) -> int:
        """Bytes read from the socket that ``recv`` has not returned yet."""
        return len(self._buf) - self._pos

    def pending(self) -> int:
        """Bytes ``recv`` can return without waiting: buffered here, or inside TLS."""
        inner = self._inner_pending() if self._inner_pending is not None else 0
        return len(self._buf) - self._pos + inner

    def send(self, data: bytes) -> int:
        return self._sock.send(data)

    def fileno(self) -> int:
        return self._sock.fileno()

    def close(self) -> None:
        self._buf, self._pos = b"", 0
        self._sock.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)

    def __repr__(self) -> str:
        return f"<BufferedSocket {self.buffered()} bytes buffered {self._sock!r}>"


def _unsupported() -> str:
    """Why this paho-mqtt cannot take a buffered socket; "" when it can."""
    if not callable(getattr(mqtt.Client, "_create_socket", None)):
        return "it has no Client._create_socket"
    code = getattr(getattr(mqtt.Client, "_loop", None), "__code__", None)
    if code is None or "pending" not in code.co_names:
        return "its Client._loop does not ask the socket for pending bytes"
    return ""


UNSUPPORTED = _unsupported()


class BufferedClient(mqtt.Client):
    """paho's ``Client`` with buffered reads on TCP and TLS connections (see the module)."""

    def __init__(self, *args: Any, read_size: int = READ_SIZE, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.read_size = read_size
        self.buffered = not UNSUPPORTED
        if UNSUPPORTED:
            log.warning(
                "paho-mqtt %s cannot take a buffered socket (%s); reading it unbuffered",
                getattr(paho.mqtt, "__version__", "?"),
                UNSUPPORTED,
            )

    def loop_start(self) -> mqtt.MQTTErrorCode:
        rc = super().loop_start()
        waker, thread = getattr(self, "_sockpairW", None), getattr(self, "_thread", None)
        if self.buffered and isinstance(waker, socket.socket) and thread is not None:
            self._sockpairW = _Waker(waker, thread)
        return rc

    def loop_read(self, max_packets: int = 1) -> mqtt.MQTTErrorCode:
        rc = super().loop_read(max_packets)
        sock = self._sock
        for _ in range(DRAIN):
            if rc or self._sock is not sock or not isinstance(sock, BufferedSocket):
                break
            if not sock.buffered():
                break
            rc = super().loop_read(max_packets)
        return rc

    def _create_socket(self) -> Any:
        sock = super()._create_socket()
        if self.buffered and isinstance(sock, socket.socket):  # TCP, Unix or TLS; not websockets
            return BufferedSocket(sock, self.read_size)
        return sock

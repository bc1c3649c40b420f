#!/usr/bin/env python3
"""A tiny UDP relay on 127.0.0.1 that delays every datagram by a fixed time, each way.

    python3 bench/udprelay.py LISTEN_PORT TARGET_PORT [--delay 0.001]

Used by the IPMI benchmark in front of ipmi_sim: with about 1 ms each way, a BMC on
loopback answers no faster than a BMC on a LAN, and pyghmi's stalls on loopback go away
(see bench/README.md). Each client address gets an upstream socket of its own, so the
simulator sees one peer per client, as without the relay. Single-threaded: one select()
loop and a heap of datagrams due. Binds 127.0.0.1 only. Ends on SIGTERM.
"""

from __future__ import annotations

import argparse
import contextlib
import heapq
import itertools
import select
import socket
import time


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("listen_port", type=int)
    p.add_argument("target_port", type=int)
    p.add_argument("--delay", type=float, default=0.001, help="seconds added each way")
    args = p.parse_args()

    front = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    front.bind(("127.0.0.1", args.listen_port))
    front.setblocking(False)
    target = ("127.0.0.1", args.target_port)
    upstream: dict[tuple[str, int], socket.socket] = {}  # client -> its socket to the target
    client_of: dict[socket.socket, tuple[str, int]] = {}
    due: list[tuple[float, int, socket.socket, bytes, tuple[str, int]]] = []
    order = itertools.count()  # ties in the heap: first in, first out

    while True:
        timeout = None if not due else max(0.0, due[0][0] - time.monotonic())
        readable, _, _ = select.select([front, *client_of], [], [], timeout)
        now = time.monotonic()
        for sock in readable:
            while True:
                try:
                    data, addr = sock.recvfrom(65535)
                except BlockingIOError:
                    break
                if sock is front:
                    up = upstream.get(addr)
                    if up is None:
                        up = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                        up.bind(("127.0.0.1", 0))
                        up.setblocking(False)
                        upstream[addr], client_of[up] = up, addr
                    heapq.heappush(due, (now + args.delay, next(order), up, data, target))
                else:
                    heapq.heappush(
                        due, (now + args.delay, next(order), front, data, client_of[sock])
                    )
        now = time.monotonic()
        while due and due[0][0] <= now:
            _, _, sock, data, dest = heapq.heappop(due)
            with contextlib.suppress(OSError):  # UDP: a refused datagram is lost, as on a LAN
                sock.sendto(data, dest)


if __name__ == "__main__":
    raise SystemExit(main())

"""The central service under systemd's notify protocol (hotspare-central.service, Type=notify).

The real command runs with a NOTIFY_SOCKET of the test's own (a unix datagram socket, as
systemd gives it) and WATCHDOG_USEC: it must say READY=1 with its dashboard's address once
it serves, ping the watchdog from its loop, and say STOPPING=1 on SIGTERM. The package
test (tests/test_packaging.py) checks the same against systemd itself.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

from .central_peer import write_config

ROOT = Path(__file__).parent.parent


def receive(sock: socket.socket, want: str, limit: int = 200) -> list[str]:
    """Datagrams (as lines) until one contains ``want``; each recv waits at most 30 s."""
    seen: list[str] = []
    for _ in range(limit):
        lines = sock.recv(4096).decode().splitlines()
        seen += lines
        if want in lines:
            return seen
    raise AssertionError(f"no {want} in {seen}")


def test_ready_watchdog_stopping(tmp_path, broker):
    cfg = write_config(tmp_path / "central.toml", broker.port, str(tmp_path / "central.db"))
    notify = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(notify))
        sock.settimeout(30)
        env = dict(os.environ, NOTIFY_SOCKET=str(notify), WATCHDOG_USEC="200000")
        env.pop("WATCHDOG_PID", None)
        proc = subprocess.Popen(
            [sys.executable, "-m", "agent.cli", "central", "--config", str(cfg)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            ready = receive(sock, "READY=1")
            status = next(line for line in ready if line.startswith("STATUS="))
            assert status.startswith("STATUS=dashboard on http://127.0.0.1:"), ready
            assert f"broker {broker.url}" in status, status
            # it serves when it says so
            url = status.split(" ")[2].rstrip(",")
            with urllib.request.urlopen(url + "api/stats", timeout=10) as r:
                assert r.status == 200
            receive(sock, "WATCHDOG=1")
            receive(sock, "WATCHDOG=1")  # more than once: from the loop, not at start only
            proc.send_signal(signal.SIGTERM)
            receive(sock, "STOPPING=1")
            assert proc.wait(timeout=30) == 0, proc.stderr.read()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            proc.stderr.close()


def test_runs_without_systemd(tmp_path, broker):
    """Outside systemd (no NOTIFY_SOCKET, no WATCHDOG_USEC) the service starts and stops cleanly."""
    cfg = write_config(tmp_path / "central.toml", broker.port, str(tmp_path / "central.db"))
    env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "agent.cli", "central", "--config", str(cfg)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        for line in proc.stderr:
            if "dashboard on http://" in line:
                break
        else:
            raise AssertionError("the service did not start")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()

"""Runtime: poller isolation and timeouts, systemd notifications, a hung source in a real agent."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import threading
import time

from agent.poller import Poller
from collectors.base import Snapshot
from tests.conftest import agent_config, write_mdstat
from tests.test_agent_mqtt import BASE, CLEAN_TEXT, DEGRADED_TEXT, is_event


class Hanging:
    name = "hung"

    def __init__(self) -> None:
        self.release = threading.Event()
        self.calls = 0

    def collect(self, now: float) -> Snapshot:
        self.calls += 1
        self.release.wait(30)
        return Snapshot()


class Quick:
    name = "quick"

    def __init__(self) -> None:
        self.times: list[float] = []

    def collect(self, now: float) -> Snapshot:
        self.times.append(time.monotonic())
        return Snapshot()


def test_a_hung_source_never_delays_another():
    hung, quick = Hanging(), Quick()
    results: list[tuple[str, str | None]] = []

    def on_result(name, snapshot, error, now):
        results.append((name, error))

    async def scenario():
        pollers = [
            Poller("hung", hung, 0.1, 0.3, 0, on_result),
            Poller("quick", quick, 0.1, 0.3, 0, on_result),
        ]
        tasks = [asyncio.create_task(p.run()) for p in pollers]
        await asyncio.sleep(1.2)
        for t in tasks:
            t.cancel()
        for p in pollers:
            p.close()
        return pollers

    pollers = asyncio.run(scenario())
    hung.release.set()
    # while the hung call never returned, the other collector kept polling
    assert len(quick.times) >= 3
    hung_errors = [e for n, e in results if n == "hung"]
    assert hung_errors[0] == "timed out after 0.3 s"
    assert all(e.startswith("timed out after 0.3 s and still hung") for e in hung_errors[1:])
    assert len(hung_errors) >= 2
    assert hung.calls == 1  # never a second thread piling up on a hung source
    assert pollers[0].stats.consecutive_failures == len(hung_errors)
    assert all(e is None for n, e in results if n == "quick")


def test_failures_are_logged_on_transitions_only(caplog):
    class Flaky:
        name = "flaky"

        def __init__(self):
            self.answers = (
                [RuntimeError("bmc said no")] * 3 + [Snapshot()] * 2 + [RuntimeError("again")]
            )

        def collect(self, now):
            a = self.answers.pop(0)
            if isinstance(a, Exception):
                raise a
            return a

    async def scenario():
        p = Poller("flaky", Flaky(), 1, 1, 0, lambda *a: None)
        for _ in range(6):
            await p.poll_once()
        p.close()

    caplog.set_level("INFO", logger="hotspare.poller")
    asyncio.run(scenario())
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "collector flaky failed: RuntimeError: bmc said no (further failures are not logged until it recovers)",
        "collector flaky recovered after 3 failed poll(s)",
        "collector flaky failed: RuntimeError: again (further failures are not logged until it recovers)",
    ]


def test_systemd_notifications_and_watchdog(tmp_path, broker, run_agent, monkeypatch):
    sock_path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(sock_path))
    sock.settimeout(15)
    monkeypatch.setenv("NOTIFY_SOCKET", str(sock_path))
    monkeypatch.setenv("WATCHDOG_USEC", "1000000")  # WatchdogSec=1: pings every 0.5 s
    mdstat = tmp_path / "mdstat"
    write_mdstat(mdstat, CLEAN_TEXT)
    try:
        agent = run_agent(agent_config(broker.port, mdstat, tmp_path / "state"))

        def until(text):
            seen = []
            while True:
                msg = sock.recv(4096).decode()
                seen.append(msg)
                if text in msg:
                    return seen

        until("READY=1")
        assert sum("WATCHDOG=1" in m for m in until("WATCHDOG=1") + until("WATCHDOG=1")) >= 2
        agent.signal(signal.SIGHUP)
        seen = until("RELOADING=1")
        assert "MONOTONIC_USEC=" in seen[-1]
        until("READY=1")
        agent.signal(signal.SIGTERM)
        until("STOPPING=1")
        assert agent.wait() == 0
    finally:
        sock.close()


def test_a_hung_file_in_a_real_agent_is_unknown_and_isolated(
    tmp_path, broker, subscribe, run_agent
):
    fifo = tmp_path / "hung-mdstat"
    os.mkfifo(fifo)  # opening it blocks until a writer comes: a source that never answers
    mdstat = tmp_path / "mdstat"
    write_mdstat(mdstat, CLEAN_TEXT)
    sub = subscribe()
    cfg = agent_config(broker.port, mdstat, tmp_path / "state") + (
        f'[[collectors.mdstat]]\nname = "stuck"\npath = "{fifo}"\ntimeout = 0.5\n'
    )
    agent = run_agent(cfg)
    health = sub.wait(lambda m: m.topic == f"{BASE}/health", what="health").json()
    stuck = next(c for c in health["collectors"] if c["name"] == "stuck")
    assert stuck["ok"] is False and stuck["error"].startswith("timed out after 0.5 s")
    write_mdstat(mdstat, DEGRADED_TEXT)
    sub.wait(is_event("degraded"), what="a transition of the healthy collector")
    agent.stop()  # SIGTERM; a hung read must not keep the agent from exiting (else: SIGKILL, -9)
    assert agent.proc.returncode == 0
    assert agent.output().count("collector stuck failed") == 1

"""The engine as the ingest and the dashboard use it: records in, silences, listings, stats.

The clock is a variable the test moves; ``flush()`` is called after each move, and the
notifications land in an in-process receiver (the real receivers have their own tests).
"""

from __future__ import annotations

import asyncio

import pytest

from central.alerts import AlertEngine, SilenceKind, Subject, Transition
from central.alerts.config import AlertsConfig, Route
from central.alerts.model import Notification


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


class Inbox:
    name, send_resolved = "ops", True

    def __init__(self) -> None:
        self.got: list[Notification] = []

    async def send(self, n: Notification) -> None:
        self.got.append(n)


CONFIG = AlertsConfig(
    routes=(Route({"site": ("dc1",)}, ("ops",), False, ("host",), 10.0, 60.0, 3600.0),),
)


def record(clock: Clock, host: str, to: str, site: str = "dc1") -> Transition:
    return Transition(Subject.GROUP, site, host, "power", "power", None, to, clock.now, "r")


async def step(engine: AlertEngine, clock: Clock, seconds: float) -> None:
    clock.now += seconds
    engine.flush()
    await engine.dispatcher.drain()


def scenario(body) -> None:
    async def main() -> None:
        clock, inbox = Clock(), Inbox()
        engine = AlertEngine(CONFIG, clock, receivers={"ops": inbox})
        task = asyncio.create_task(engine.run())
        try:
            await body(engine, clock, inbox)
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

    asyncio.run(main())


def hosts(n: Notification) -> list[str]:
    return [f"{a.labels['host']}={a.status.value}" for a in n.alerts]


def test_silence_through_the_engine_then_expire() -> None:
    async def body(engine: AlertEngine, clock: Clock, inbox: Inbox) -> None:
        s = engine.add_silence(
            {"host": "web-*"}, clock.now + 3600, created_by="alice", comment="PSU swap"
        )
        engine.on_transition(record(clock, "web-01", "degraded"))
        engine.on_transition(record(clock, "db-01", "failed"))
        await step(engine, clock, 10)
        assert [hosts(n) for n in inbox.got] == [["db-01=firing"]]
        listed = {a["labels"]["host"]: a["silencedBy"] for a in engine.alerts_json()}
        assert listed == {"web-01": [s.id], "db-01": []}
        assert [(x.id, x.created_by, x.matchers) for x in engine.silences()] == [
            (s.id, "alice", {"host": ("web-*",)})
        ]
        [listed_silence] = engine.silences_json()
        assert listed_silence["matchers"] == {"host": ["web-*"]} and listed_silence["active"]
        assert listed_silence["kind"] == "silence" and listed_silence["comment"] == "PSU swap"
        engine.expire_silence(s.id)
        assert engine.silences() == [] and engine.silences(include_expired=True)[0].id == s.id
        await step(engine, clock, 1)
        assert [hosts(n) for n in inbox.got] == [["db-01=firing"], ["web-01=firing"]]

    scenario(body)


def test_maintenance_window_added_at_run_time() -> None:
    async def body(engine: AlertEngine, clock: Clock, inbox: Inbox) -> None:
        start = clock.now + 100
        w = engine.add_silence(
            {"site": ["dc1", "dc2"]}, start + 600, start, kind=SilenceKind.MAINTENANCE
        )
        assert w.kind is SilenceKind.MAINTENANCE
        await step(engine, clock, 100)  # the window has begun
        engine.on_transition(record(clock, "web-01", "failed"))
        await step(engine, clock, 10)
        assert inbox.got == []
        engine.on_transition(record(clock, "web-01", "redundant"))
        await step(engine, clock, 600)  # window over, alert resolved inside it
        assert inbox.got == [] and engine.alerts() == []

    scenario(body)


def test_add_silence_checks_its_arguments() -> None:
    engine = AlertEngine(CONFIG, Clock(), receivers={"ops": Inbox()})
    with pytest.raises(ValueError, match="unknown label 'hostname'"):
        engine.add_silence({"hostname": "x"}, engine.clock() + 10)
    with pytest.raises(ValueError, match="ends_at must be after starts_at"):
        engine.add_silence({"host": "x"}, engine.clock() - 10)
    with pytest.raises(ValueError, match="non-empty globs"):
        engine.add_silence({"host": []}, engine.clock() + 10)
    with pytest.raises(KeyError):
        engine.expire_silence("no-such-id")


def test_records_before_run_and_unrouted_alerts_are_counted() -> None:
    clock, inbox = Clock(), Inbox()
    engine = AlertEngine(CONFIG, clock, receivers={"ops": inbox})
    engine.on_transition(record(clock, "web-01", "failed", site="dc9"))  # no route for dc9
    engine.on_transition(record(clock, "web-02", "degraded"))
    stats = engine.stats()
    assert stats["unrouted"] == 1 and stats["alerts"] == 2
    assert stats["receivers"]["ops"] == {
        "queued": 0,
        "sent": 0,
        "retries": 0,
        "failed": 0,
        "dropped": 0,
        "last_error": "",
    }

    async def main() -> None:
        task = asyncio.create_task(engine.run())
        await step(engine, clock, 10)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert [hosts(n) for n in inbox.got] == [["web-02=firing"]]
    assert engine.stats()["receivers"]["ops"]["sent"] == 1


def test_send_resolved_false_keeps_resolutions_back() -> None:
    class Quiet(Inbox):
        send_resolved = False

    async def main() -> list[Notification]:
        clock, inbox = Clock(), Quiet()
        engine = AlertEngine(CONFIG, clock, receivers={"ops": inbox})
        task = asyncio.create_task(engine.run())
        engine.on_transition(record(clock, "web-01", "degraded"))
        await step(engine, clock, 10)
        engine.on_transition(record(clock, "web-01", "redundant"))
        await step(engine, clock, 60)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return inbox.got

    got = asyncio.run(main())
    assert [hosts(n) for n in got] == [["web-01=firing"]]


def test_a_receiver_that_raises_unexpectedly_is_counted_and_the_others_go_on() -> None:
    class Broken(Inbox):
        name = "broken"

        async def send(self, n: Notification) -> None:
            raise KeyError("bug")

    config = AlertsConfig(
        routes=(Route({}, ("broken", "ops"), False, ("host",), 0.0, 60.0, 3600.0),),
        retry_attempts=2,
        retry_initial=0.01,
    )

    async def main() -> tuple[AlertEngine, Inbox]:
        clock, inbox = Clock(), Inbox()
        engine = AlertEngine(config, clock, receivers={"broken": Broken(), "ops": inbox})
        task = asyncio.create_task(engine.run())
        engine.on_transition(record(clock, "web-01", "failed"))
        await step(engine, clock, 1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return engine, inbox

    engine, inbox = asyncio.run(main())
    assert len(inbox.got) == 1
    broken = engine.stats()["receivers"]["broken"]
    assert (broken["failed"], broken["retries"], broken["last_error"]) == (1, 1, "KeyError: 'bug'")

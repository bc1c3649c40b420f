"""The poller's worker thread (one per poller, not one per call) and the agent-wide probe budget."""

from __future__ import annotations

import asyncio
import threading

from agent.poller import PROBES_PER_SECOND, Poller, spread_probes
from collectors.base import Snapshot


class Recording:
    """A blocking collector with a change probe that records the thread of every call."""

    name = "rec"
    probe_every = 1.0

    def __init__(self) -> None:
        self.threads: list[str] = []
        self.idents: set[int] = set()

    def _note(self) -> None:
        self.threads.append(threading.current_thread().name)
        self.idents.add(threading.get_ident())

    def collect(self, now: float) -> Snapshot:
        self._note()
        return Snapshot()

    def changed(self) -> bool:
        self._note()
        return False


def test_polls_and_probes_of_one_poller_run_in_one_long_lived_thread():
    rec = Recording()

    async def scenario():
        p = Poller("rec", rec, 60, 5, 0, lambda *a: None)
        for _ in range(3):
            await p.poll_once()
            assert await p._changed() is False
        p.close()

    asyncio.run(scenario())
    assert len(rec.threads) == 6
    assert set(rec.threads) == {"poll-rec"}
    assert len(rec.idents) == 1
    assert threading.get_ident() not in rec.idents  # never the event loop's thread


def test_a_closed_pollers_thread_ends():
    rec = Recording()

    async def scenario():
        p = Poller("rec", rec, 60, 5, 0, lambda *a: None)
        await p.poll_once()
        p.close()

    asyncio.run(scenario())
    for t in threading.enumerate():
        if t.name == "poll-rec":
            t.join(10)
    assert not any(t.name == "poll-rec" for t in threading.enumerate())


def test_an_error_in_the_thread_is_the_polls_error_and_the_thread_goes_on():
    class Failing(Recording):
        def collect(self, now: float) -> Snapshot:
            self._note()
            raise OSError("the device vanished")

    failing = Failing()
    errors: list[str | None] = []

    async def scenario():
        p = Poller("rec", failing, 60, 5, 0, lambda n, s, e, t: errors.append(e))
        await p.poll_once()
        await p.poll_once()
        p.close()

    asyncio.run(scenario())
    assert errors == ["OSError: the device vanished"] * 2
    assert len(failing.idents) == 1


def test_probes_are_spread_so_an_agent_sends_at_most_its_budget():
    def pollers(n: int) -> list[Poller]:
        return [Poller(f"p{i}", Recording(), 10, 5, 0, lambda *a: None) for i in range(n)]

    few = pollers(5)
    spread_probes(few)
    assert [p.probe_every for p in few] == [1.0] * 5  # within budget: as the collector asks

    many = pollers(50)
    spread_probes(many)
    assert {p.probe_every for p in many} == {50 / PROBES_PER_SECOND}
    assert sum(1 / p.probe_every for p in many) <= PROBES_PER_SECOND

    class NoProbe:
        name = "plain"

        def collect(self, now: float) -> Snapshot:
            return Snapshot()

    mixed = [
        *pollers(10),
        *[Poller(f"q{i}", NoProbe(), 10, 5, 0, lambda *a: None) for i in range(40)],
    ]
    spread_probes(mixed)
    assert {p.probe_every for p in mixed[:10]} == {1.0}  # only probing pollers count

"""One poller per collector instance: its own interval, start jitter, hard timeout and thread.

A blocking collector runs in a long-lived daemon thread of its own (one per poller, its
calls one at a time), so a source that hangs holds only that thread: the poll times out,
the next ones are skipped while the hung call is still running, no other collector is
delayed, and the agent can still exit (a worker pool's threads would be joined at exit, and
a hung read would hold the agent forever). One thread per poller rather than one per call:
an agent with 50 BMCs probing each every second would otherwise start 55 threads a second.
Failures are logged on transitions only: the first failure, and the recovery.

A collector may offer a cheap ``changed()`` probe (and ``probe_every`` seconds): between
polls the poller asks it, and polls at once when it says something changed, so an event
(a new entry in a BMC's event log) does not wait for the next interval. An agent sends at
most ``PROBES_PER_SECOND`` probes a second in all (``spread_probes``): with many sources
each is probed less often, so that probing does not cost more than polling.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import queue
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from collectors.base import Collector, Snapshot

log = logging.getLogger("hotspare.poller")

# (collector name, snapshot or None, error or None, wall-clock time of the poll)
ResultHandler = Callable[[str, Snapshot | None, str | None, float], None]


# Change probes per second, all pollers of an agent together: 10 BMCs are each probed every
# second, 50 every 5 s (each probe is one IPMI command, about 0.5 ms of CPU, plus the
# wake-ups of the poller).
PROBES_PER_SECOND = 10.0


class PollSkipped(Exception):
    """A poll was not started because the previous one has not returned."""


class PollCancelled(Exception):
    """A poll's call ended cancelled although nobody stopped the poller."""


@dataclass(slots=True)
class PollStats:
    successes: int = 0
    failures: int = 0
    consecutive_failures: int = 0
    last_success: float = 0.0
    last_error: str = ""
    last_duration: float = 0.0


class Poller:
    def __init__(
        self,
        name: str,
        collector: Collector,
        interval: float,
        timeout: float,
        jitter: float,
        on_result: ResultHandler,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.name = name
        self.collector = collector
        self.interval = interval
        self.timeout = timeout
        self.jitter = jitter
        self.on_result = on_result
        self.clock = clock
        self.stats = PollStats()
        self.polled_once = asyncio.Event()
        self._wake = asyncio.Event()
        self._is_async = inspect.iscoroutinefunction(collector.collect)
        self._running: asyncio.Future[Snapshot] | None = None
        # an optional cheap probe between polls: True means "something changed, poll now"
        self._probe = getattr(collector, "changed", None)
        self._probing: asyncio.Future[Any] | None = None
        self.probe_every = float(getattr(collector, "probe_every", 1.0))
        self._running_since = 0.0
        self._worker = None if self._is_async else _Worker(f"poll-{name}")

    def trigger(self) -> None:
        """Poll now (an event source saw a change)."""
        self._wake.set()

    async def run(self) -> None:
        await asyncio.sleep(random.uniform(0, min(self.jitter, self.interval)))
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            self._wake.clear()  # a trigger during the poll causes one more poll at once
            try:
                await self.poll_once()
            except Exception:  # a result handler's bug: log it, never end polling silently
                log.exception("collector %s: handling a poll's result failed", self.name)
            while (delay := self.interval - (loop.time() - started)) > 0:
                step = min(delay, self.probe_every) if self._probe else delay
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), step)
                if self._wake.is_set() or (step < delay and await self._changed()):
                    break

    async def _changed(self) -> bool:
        """Ask the collector's cheap change probe (e.g. "the event log grew"); False on doubt."""
        if _busy(self._probing) or _busy(self._running):
            return False  # the last probe or poll has not returned: do not queue behind it
        assert self._worker is not None  # a probe is offered by blocking collectors only
        self._probing = self._worker.submit(lambda _now: self._probe(), 0.0)
        try:
            return bool(await asyncio.wait_for(asyncio.shield(self._probing), self.probe_every))
        except Exception:
            return False

    async def poll_once(self) -> None:
        now = self.clock()
        started = time.monotonic()
        try:
            snapshot = await self._collect(now)
        except Exception as e:  # a collector's failure must never stop the agent
            self._failed(now, _describe(e, self.timeout), time.monotonic() - started)
        else:
            self._succeeded(now, snapshot, time.monotonic() - started)
        finally:
            self.polled_once.set()

    async def _collect(self, now: float) -> Snapshot:
        if self._running is not None and not self._running.done():
            hung = time.monotonic() - self._running_since
            raise PollSkipped(
                f"timed out after {self.timeout:g} s and still hung ({hung:.1f} s): "
                "not polled again until it returns"
            )
        self._running_since = time.monotonic()
        if self._is_async:
            self._running = asyncio.ensure_future(self.collector.collect(now))
        else:
            assert self._worker is not None
            self._running = self._worker.submit(self.collector.collect, now)
        # shield: on timeout a thread cannot be killed; keep the future to see it finish.
        try:
            return await asyncio.wait_for(asyncio.shield(self._running), self.timeout)
        except asyncio.CancelledError:
            if _stopping():
                raise  # the poller itself is being stopped
            # The collect was cancelled from inside (a cancellation escaped a collector's
            # own timeout handling): a failed poll, not the end of this poller.
            raise PollCancelled("the collector's call was cancelled") from None

    def _succeeded(self, now: float, snapshot: Snapshot, duration: float) -> None:
        s = self.stats
        if s.consecutive_failures:
            log.info(
                "collector %s recovered after %d failed poll(s)", self.name, s.consecutive_failures
            )
        s.successes += 1
        s.consecutive_failures = 0
        s.last_success, s.last_duration, s.last_error = now, duration, ""
        self.on_result(self.name, snapshot, None, now)

    def _failed(self, now: float, error: str, duration: float) -> None:
        s = self.stats
        if not s.consecutive_failures:
            log.warning(
                "collector %s failed: %s (further failures are not logged until it recovers)",
                self.name,
                error,
            )
        s.failures += 1
        s.consecutive_failures += 1
        s.last_error, s.last_duration = error, duration
        self.on_result(self.name, None, error, now)

    def close(self) -> None:
        """Stop polling and let the collector release what it holds (sessions, listeners)."""
        if self._running is not None and not self._running.done():
            self._running.cancel()
        if self._worker is not None:
            self._worker.stop()
        release = getattr(self.collector, "close", None)
        if release is None:
            return
        if self._is_async:  # an asyncio collector's sockets belong to this loop
            _release(self.name, release)
        else:  # a blocking one may still be inside a call holding its lock: never wait for it
            threading.Thread(
                target=_release, args=(self.name, release), name=f"close-{self.name}", daemon=True
            ).start()


def _release(name: str, release: Callable[[], Any]) -> None:
    try:
        release()
    except Exception as e:  # closing is best effort; the collector is being dropped anyway
        log.warning("collector %s: closing it failed: %s", name, e)


def spread_probes(pollers: list[Poller], rate: float = PROBES_PER_SECOND) -> None:
    """Lengthen the probe periods so that all pollers together probe at most ``rate`` times a second."""
    probing = [p for p in pollers if p._probe is not None]
    floor = len(probing) / rate
    for p in probing:
        p.probe_every = max(p.probe_every, floor)


def _stopping() -> bool:
    """Whether the running task (a poller) has been asked to stop."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def _busy(fut: asyncio.Future[Any] | None) -> bool:
    return fut is not None and not fut.done()


Job = tuple[asyncio.AbstractEventLoop, asyncio.Future[Any], Callable[[float], Any], float]


class _Worker:
    """One daemon thread that runs a poller's blocking calls, one after the other.

    Started on the first call; ``stop`` lets it end after the call it is in (a hung call
    keeps it, and only it, until that call returns: it is a daemon thread).
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._jobs: queue.SimpleQueue[Job | None] | None = None  # the running thread's queue

    def submit(self, fn: Callable[[float], Any], now: float) -> asyncio.Future[Any]:
        """Run ``fn(now)`` in the thread; the future resolves in the calling loop."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Any] = loop.create_future()
        if self._jobs is None:
            self._jobs = queue.SimpleQueue()
            threading.Thread(target=_serve, args=(self._jobs,), name=self.name, daemon=True).start()
        self._jobs.put((loop, fut, fn, now))
        return fut

    def stop(self) -> None:
        """The thread ends after what it has been given; a later ``submit`` starts a new one."""
        if self._jobs is not None:
            self._jobs.put(None)
            self._jobs = None


def _serve(jobs: queue.SimpleQueue[Job | None]) -> None:
    while (job := jobs.get()) is not None:
        loop, fut, fn, now = job
        try:
            result, error = fn(now), None
        except BaseException as e:  # handed to the loop, which decides
            result, error = None, e
        with contextlib.suppress(RuntimeError):  # the loop is closed: the agent is gone
            loop.call_soon_threadsafe(_settle, fut, result, error)


def _settle(fut: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if fut.done():  # cancelled meanwhile
        return
    if error is not None:
        fut.set_exception(error)
    else:
        fut.set_result(result)


def _describe(e: BaseException, timeout: float) -> str:
    if isinstance(e, TimeoutError):
        return f"timed out after {timeout:g} s"
    if isinstance(e, PollSkipped | PollCancelled):
        return str(e)
    return f"{type(e).__name__}: {e}" if str(e) else type(e).__name__

"""One poller per collector instance: its own interval, start jitter, hard timeout and thread.

A blocking collector runs in a daemon thread of its own, so a source that hangs holds
only that thread: the poll times out, the next ones are skipped while the hung call is
still running, no other collector is delayed, and the agent can still exit (a worker
pool's threads would be joined at exit, and a hung read would hold the agent forever). Failures are logged on transitions only:
the first failure, and the recovery.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from collectors.base import Collector, Snapshot

log = logging.getLogger("hotspare.poller")

# (collector name, snapshot or None, error or None, wall-clock time of the poll)
ResultHandler = Callable[[str, Snapshot | None, str | None, float], None]


class PollSkipped(Exception):
    """A poll was not started because the previous one has not returned."""


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
        self._running_since = 0.0

    def trigger(self) -> None:
        """Poll now (an event source saw a change)."""
        self._wake.set()

    async def run(self) -> None:
        await asyncio.sleep(random.uniform(0, min(self.jitter, self.interval)))
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            self._wake.clear()  # a trigger during the poll causes one more poll at once
            await self.poll_once()
            delay = self.interval - (loop.time() - started)
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), delay)

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
            self._running = _in_thread(f"poll-{self.name}", self.collector.collect, now)
        # shield: on timeout a thread cannot be killed; keep the future to see it finish.
        return await asyncio.wait_for(asyncio.shield(self._running), self.timeout)

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
        if self._running is not None and not self._running.done():
            self._running.cancel()


def _in_thread(name: str, fn: Callable[[float], Snapshot], now: float) -> asyncio.Future[Snapshot]:
    """Run ``fn(now)`` in a new daemon thread; the future resolves in the calling loop."""
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[Snapshot] = loop.create_future()

    def settle(result: Snapshot | None, error: BaseException | None) -> None:
        if fut.done():  # cancelled meanwhile
            return
        if error is not None:
            fut.set_exception(error)
        else:
            fut.set_result(result)  # type: ignore[arg-type]

    def work() -> None:
        try:
            result, error = fn(now), None
        except BaseException as e:  # handed to the loop, which decides
            result, error = None, e
        with contextlib.suppress(RuntimeError):  # the loop is closed: the agent is gone
            loop.call_soon_threadsafe(settle, result, error)

    threading.Thread(target=work, name=name, daemon=True).start()
    return fut


def _describe(e: BaseException, timeout: float) -> str:
    if isinstance(e, TimeoutError):
        return f"timed out after {timeout:g} s"
    if isinstance(e, PollSkipped):
        return str(e)
    return f"{type(e).__name__}: {e}" if str(e) else type(e).__name__

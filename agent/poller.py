"""One poller per collector instance: its own interval, start jitter, hard timeout and thread.

A blocking collector runs in a thread of its own, so a source that hangs holds only
that thread: the poll times out, the next one is skipped while the hung call is still
running, and no other collector is delayed. Failures are logged on transitions only:
the first failure, and the recovery.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import random
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from collectors.base import Collector, Snapshot

log = logging.getLogger("hotspare.poller")

# (collector name, snapshot or None, error or None, wall-clock time of the poll)
ResultHandler = Callable[[str, Snapshot | None, str | None, float], None]


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
        self._executor = None if self._is_async else ThreadPoolExecutor(1, f"poll-{name}")
        self._running: asyncio.Future[Snapshot] | None = None

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
            raise RuntimeError("the previous poll is still running (hung source)")
        if self._is_async:
            self._running = asyncio.ensure_future(self.collector.collect(now))
        else:
            loop = asyncio.get_running_loop()
            self._running = loop.run_in_executor(self._executor, self.collector.collect, now)
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
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)


def _describe(e: BaseException, timeout: float) -> str:
    if isinstance(e, TimeoutError):
        return f"timed out after {timeout:g} s"
    return f"{type(e).__name__}: {e}" if str(e) else type(e).__name__

"""One poller per collector instance: its own interval, start jitter, hard timeout and thread.

A blocking collector runs in a daemon thread of its own, so a source that hangs holds
only that thread: the poll times out, the next ones are skipped while the hung call is
still running, no other collector is delayed, and the agent can still exit (a worker
pool's threads would be joined at exit, and a hung read would hold the agent forever). Failures are logged on transitions only:
the first failure, and the recovery.

A collector may offer a cheap ``changed()`` probe (and ``probe_every`` seconds): between
polls the poller asks it, and polls at once when it says something changed, so an event
(a new entry in a BMC's event log) does not wait for the next interval.
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
from typing import Any

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
        # an optional cheap probe between polls: True means "something changed, poll now"
        self._probe = getattr(collector, "changed", None)
        self._probing: asyncio.Future[Any] | None = None
        self.probe_every = float(getattr(collector, "probe_every", 1.0))
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
            while (delay := self.interval - (loop.time() - started)) > 0:
                step = min(delay, self.probe_every) if self._probe else delay
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), step)
                if self._wake.is_set() or (step < delay and await self._changed()):
                    break

    async def _changed(self) -> bool:
        """Ask the collector's cheap change probe (e.g. "the event log grew"); False on doubt."""
        if self._probing is not None and not self._probing.done():
            return False  # the last probe has not returned: do not pile up threads
        self._probing = _in_thread(f"probe-{self.name}", lambda _now: self._probe(), 0.0)
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


def _in_thread(name: str, fn: Callable[[float], Any], now: float) -> asyncio.Future[Any]:
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

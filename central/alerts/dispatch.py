"""Delivery: one bounded queue and one worker per receiver, retries with backoff.

Nothing is dropped silently: a notification that does not fit in a full queue is
logged and counted (``dropped``); one whose every attempt failed is logged and counted
(``failed``); every retry is counted (``retries``) and the last error kept for the
dashboard. A slow or failing receiver holds up only its own queue.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, replace

from central.alerts.model import Notification, Status
from central.alerts.receivers import Receiver
from central.alerts.receivers.http import DeliveryError

log = logging.getLogger(__name__)


@dataclass(slots=True)
class ReceiverStats:
    queued: int = 0  # waiting now
    sent: int = 0  # notifications delivered
    retries: int = 0  # attempts that failed and were tried again
    failed: int = 0  # notifications given up after retry_attempts
    dropped: int = 0  # notifications that did not fit in the queue
    last_error: str = ""

    def as_dict(self) -> dict[str, int | str]:
        return asdict(self)


def backoff(attempt: int, initial: float, maximum: float) -> float:
    """Delay before retry number ``attempt`` (1-based): initial, 2x, 4x, ... up to maximum."""
    return min(maximum, initial * 2 ** (attempt - 1))


class Dispatcher:
    def __init__(
        self,
        receivers: dict[str, Receiver],
        *,
        queue_size: int = 1000,
        attempts: int = 10,
        initial: float = 1.0,
        maximum: float = 300.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.receivers = receivers
        self.attempts, self.initial, self.maximum, self.sleep = attempts, initial, maximum, sleep
        self.queue_size = queue_size
        self.stats = {name: ReceiverStats() for name in receivers}
        self._queues: dict[str, asyncio.Queue[Notification]] = {}

    def _queue(self, name: str) -> asyncio.Queue[Notification]:
        if name not in self._queues:
            self._queues[name] = asyncio.Queue(self.queue_size)
        return self._queues[name]

    def submit(self, notification: Notification) -> bool:
        """Queue for its receiver; False (logged, counted) when there is no room."""
        name = notification.receiver
        receiver = self.receivers[name]
        if not receiver.send_resolved:
            alerts = tuple(a for a in notification.alerts if a.status is Status.FIRING)
            if not alerts:
                return True
            notification = replace(notification, alerts=alerts)
        stats = self.stats[name]
        try:
            self._queue(name).put_nowait(notification)
        except asyncio.QueueFull:
            stats.dropped += 1
            log.error(
                "receiver %s: queue full (%d), notification dropped: %s",
                name,
                self.queue_size,
                notification.title,
            )
            return False
        stats.queued = self._queue(name).qsize()
        return True

    async def run(self) -> None:
        """One worker per receiver, until cancelled."""
        async with asyncio.TaskGroup() as tasks:
            for name in self.receivers:
                tasks.create_task(self._worker(name), name=f"alerts-receiver-{name}")

    async def _worker(self, name: str) -> None:
        queue, receiver, stats = self._queue(name), self.receivers[name], self.stats[name]
        while True:
            notification = await queue.get()
            stats.queued = queue.qsize()
            await self._deliver(receiver, stats, notification)
            queue.task_done()

    async def _deliver(self, receiver: Receiver, stats: ReceiverStats, n: Notification) -> None:
        for attempt in range(1, self.attempts + 1):
            try:
                await receiver.send(n)
            except DeliveryError as e:
                error = str(e)
            except Exception as e:  # a receiver's bug must not stop the others
                error = f"{type(e).__name__}: {e}"
                log.exception("receiver %s: unexpected error", receiver.name)
            else:
                stats.sent += 1
                return
            stats.last_error = error
            if attempt == self.attempts:
                stats.failed += 1
                log.error(
                    "receiver %s: giving up after %d attempts: %s (%s)",
                    receiver.name,
                    attempt,
                    error,
                    n.title,
                )
                return
            delay = backoff(attempt, self.initial, self.maximum)
            stats.retries += 1
            log.warning(
                "receiver %s: attempt %d failed: %s; retrying in %.3g s",
                receiver.name,
                attempt,
                error,
                delay,
            )
            await self.sleep(delay)

    async def drain(self) -> None:
        """Wait until every queued notification was delivered or given up."""
        for queue in self._queues.values():
            await queue.join()

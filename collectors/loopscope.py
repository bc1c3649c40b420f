"""Per-event-loop resources (sockets, engines) released when their loop shuts down.

An asyncio loop has no "on close" callback, but its orderly shutdown
(``loop.shutdown_asyncgens()``, which ``asyncio.run`` and ``asyncio.Runner`` call
before closing the loop) closes every asynchronous generator still suspended in it.
``at_shutdown`` parks one such generator in the running loop, with the release in its
``finally``: the release runs while the loop can still close transports properly.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, Callable


class Guard:
    """Runs ``release`` once: at the loop's shutdown, or earlier through ``disarm``."""

    def __init__(self, release: Callable[[], None]) -> None:
        self._release = release
        self._gen: AsyncGenerator[None, None] | None = self._parked()
        step = self._gen.__anext__()  # the first step registers it with the running loop
        with contextlib.suppress(StopIteration):
            step.send(None)  # runs it up to its yield: no await before it, so synchronously

    async def _parked(self) -> AsyncGenerator[None, None]:
        try:
            yield
        finally:
            self._gen = None
            self._release()

    def disarm(self) -> None:
        """Finish the parked generator now, without waiting for the loop's shutdown.

        The release runs (it must be idempotent: it is usually what called this), and a
        finished generator is not handed to the loop again when it is collected.
        """
        gen = self._gen
        if gen is None:  # released already (or releasing: the loop is shutting down)
            return
        with contextlib.suppress(StopIteration, RuntimeError):
            gen.aclose().send(None)


def at_shutdown(release: Callable[[], None]) -> Guard:
    """Run ``release`` when the running loop shuts down; keep the returned Guard alive."""
    return Guard(release)

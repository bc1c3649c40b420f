"""Availability and exposure over a window: pure functions over a state timeline.

A timeline is the state at the window's start plus the changes inside it. Per piece of time:

- **down**: ``failed`` or ``offline`` (for a group: its own state, or its host offline);
- **exposure**: ``degraded`` — serving, but without (full) redundancy;
- **unknown**: ``unknown`` — counted as up (nothing proves it down), shown separately;
- **no data**: before the first record or after the item is gone — not counted at all;
- **maintenance**: time inside a maintenance window is excluded from everything above.

``uptime % = 100 × (counted − down) / counted`` where counted = window − maintenance − no data.
The error budget of an SLA target is ``(1 − target/100) × counted``; a month is 365.25/12 days,
so 99.95 % allows 21.9 minutes a month and 99.99 % allows 4.4.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

MONTH = 365.25 / 12 * 86400.0
DOWN = frozenset({"failed", "offline"})
EXPOSED = frozenset({"degraded"})


@dataclass(frozen=True, slots=True)
class Segment:
    start: float
    end: float
    state: str | None  # None: no data
    maintenance: bool = False

    @property
    def seconds(self) -> float:
        return self.end - self.start


@dataclass(frozen=True, slots=True)
class Availability:
    start: float
    end: float
    target: float  # SLA target in percent, e.g. 99.95
    counted: float  # seconds that count: window - maintenance - no data
    maintenance: float
    no_data: float
    down: float
    exposure: float
    unknown: float
    outages: int  # down periods that began or continued in the counted time
    segments: tuple[Segment, ...]

    @property
    def uptime_pct(self) -> float | None:
        return None if self.counted <= 0 else 100.0 * (self.counted - self.down) / self.counted

    @property
    def exposure_pct(self) -> float | None:
        return None if self.counted <= 0 else 100.0 * self.exposure / self.counted

    @property
    def budget(self) -> float:
        """Seconds of downtime the SLA target allows over the counted time."""
        return (1.0 - self.target / 100.0) * self.counted

    @property
    def budget_left(self) -> float:
        return self.budget - self.down

    def as_dict(self) -> dict:
        return {
            "start": self.start,
            "end": self.end,
            "target_pct": self.target,
            "uptime_pct": self.uptime_pct,
            "exposure_pct": self.exposure_pct,
            "counted_s": self.counted,
            "maintenance_s": self.maintenance,
            "no_data_s": self.no_data,
            "down_s": self.down,
            "outage_minutes": self.down / 60.0,
            "exposure_s": self.exposure,
            "exposure_minutes": self.exposure / 60.0,
            "unknown_s": self.unknown,
            "outages": self.outages,
            "budget_minutes": self.budget / 60.0,
            "budget_left_minutes": self.budget_left / 60.0,
            "segments": [
                {"start": s.start, "end": s.end, "state": s.state, "maintenance": s.maintenance}
                for s in self.segments
            ],
        }


def budget_minutes(target: float, seconds: float = MONTH) -> float:
    """Minutes of downtime ``target`` percent allows over ``seconds`` (default: a month)."""
    return (1.0 - target / 100.0) * seconds / 60.0


def timeline(
    initial: str | None, changes: Iterable[tuple[float, str | None]], start: float, end: float
) -> list[Segment]:
    """Segments covering [start, end): ``initial`` at start, then each (ts, state) change."""
    out: list[Segment] = []
    t, state = start, initial
    for ts, new in sorted(changes, key=lambda c: c[0]):
        ts = min(max(ts, start), end)
        if ts > t:
            out.append(Segment(t, ts, state))
            t = ts
        state = new
    if end > t:
        out.append(Segment(t, end, state))
    return _merge(out)


def overlay_offline(group: Sequence[Segment], host: Sequence[Segment]) -> list[Segment]:
    """A group's timeline with its host's offline time laid over it (offline wins)."""
    cuts = sorted({s.start for s in group} | {s.end for s in group} | {s.start for s in host})
    out: list[Segment] = []
    for a, b in itertools.pairwise(cuts):
        g = _at(group, a)
        h = _at(host, a)
        out.append(Segment(a, b, "offline" if h == "offline" and g is not None else g))
    return _merge(out)


def _at(segments: Sequence[Segment], t: float) -> str | None:
    for s in segments:
        if s.start <= t < s.end:
            return s.state
    return None


def with_maintenance(
    segments: Sequence[Segment], windows: Iterable[tuple[float, float]]
) -> list[Segment]:
    """Split ``segments`` at the maintenance windows' edges and flag the pieces inside one."""
    windows = sorted((a, b) for a, b in windows if b > a)
    out: list[Segment] = []
    for s in segments:
        cuts = {s.start, s.end}
        for a, b in windows:
            cuts |= {t for t in (a, b) if s.start < t < s.end}
        edges = sorted(cuts)
        for a, b in itertools.pairwise(edges):
            inside = any(wa <= a and b <= wb for wa, wb in windows)
            out.append(Segment(a, b, s.state, inside))
    return _merge(out)


def _merge(segments: Sequence[Segment]) -> list[Segment]:
    out: list[Segment] = []
    for s in segments:
        if s.end <= s.start:
            continue
        last = out[-1] if out else None
        if (
            last
            and last.state == s.state
            and last.maintenance == s.maintenance
            and last.end == s.start
        ):
            out[-1] = Segment(last.start, s.end, s.state, s.maintenance)
        else:
            out.append(s)
    return out


def evaluate(
    segments: Sequence[Segment],
    start: float,
    end: float,
    target: float,
    maintenance: Iterable[tuple[float, float]] = (),
) -> Availability:
    """Sum a timeline over [start, end) against an SLA ``target`` (percent)."""
    pieces = with_maintenance(segments, maintenance)
    totals = {"maintenance": 0.0, "no_data": 0.0, "down": 0.0, "exposure": 0.0, "unknown": 0.0}
    outages = 0
    previous_down = False
    for s in pieces:
        if s.maintenance:
            totals["maintenance"] += s.seconds
            continue
        if s.state is None:
            totals["no_data"] += s.seconds
            previous_down = False
            continue
        down = s.state in DOWN
        if down:
            totals["down"] += s.seconds
            outages += not previous_down
        elif s.state in EXPOSED:
            totals["exposure"] += s.seconds
        elif s.state == "unknown":
            totals["unknown"] += s.seconds
        previous_down = down
    counted = (end - start) - totals["maintenance"] - totals["no_data"]
    return Availability(
        start=start,
        end=end,
        target=target,
        counted=counted,
        outages=outages,
        segments=tuple(pieces),
        **totals,
    )

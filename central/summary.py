"""The fleet's summary: how many hosts, and how many of each redundancy group, are in each
state, per site and across the fleet; kept up to date host by host, never recounted.

``Summary.update(host)`` is called by the fleet after every change to a host: it takes back
what the host counted for before and adds what it counts for now, so the dashboard's summary
of 10 000 hosts costs a few dictionary lookups per message and nothing per request.

What a host counts for: its state (the worst of its groups, ``offline`` while its agent is
not heard, ``none`` before its first health), and each of its groups' states as the fleet
matrix shows them (a group of an offline host counts as ``offline``).
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Protocol

from .contract import OFFLINE

NONE = "none"  # a host heard of (status only) without a health yet

Contribution = tuple[str, tuple[tuple[str, str], ...]]  # (host state, ((group, state), ...))


class _Host(Protocol):
    site: str
    host: str
    online: bool | None
    groups: dict[str, dict[str, Any]]

    @property
    def state(self) -> str | None: ...


def contribution(h: _Host) -> Contribution:
    """What one host counts for in the summary (pure)."""
    offline = h.online is False
    return (
        h.state or NONE,
        tuple((gid, OFFLINE if offline else g["state"]) for gid, g in h.groups.items()),
    )


class _Counts:
    __slots__ = ("groups", "hosts")

    def __init__(self) -> None:
        self.hosts: Counter[str] = Counter()
        self.groups: dict[str, Counter[str]] = {}

    def add(self, c: Contribution, n: int) -> None:
        self.hosts[c[0]] += n
        for gid, state in c[1]:
            counts = self.groups.get(gid)
            if counts is None:
                counts = self.groups[gid] = Counter()
            counts[state] += n

    def as_dict(self) -> dict[str, Any]:
        return {
            "hosts": sum(self.hosts.values()),
            "states": {s: n for s, n in sorted(self.hosts.items()) if n},
            "groups": {
                gid: {s: n for s, n in sorted(c.items()) if n}
                for gid, c in sorted(self.groups.items())
                if any(c.values())
            },
        }


class Summary:
    """Counts per state of hosts and of groups, for the whole fleet and per site."""

    def __init__(self) -> None:
        self._by_host: dict[tuple[str, str], Contribution] = {}
        self._fleet = _Counts()
        self._sites: dict[str, _Counts] = {}
        self.version = 0  # bumped by every change of a count
        self.changed_sites: set[str] = set()  # since the caller last cleared it

    def update(self, h: _Host) -> None:
        key = (h.site, h.host)
        now = contribution(h)
        before = self._by_host.get(key)
        if before == now:
            return
        site = self._sites.get(h.site)
        if site is None:
            site = self._sites[h.site] = _Counts()
        if before is not None:
            self._fleet.add(before, -1)
            site.add(before, -1)
        self._fleet.add(now, 1)
        site.add(now, 1)
        self._by_host[key] = now
        self.version += 1
        self.changed_sites.add(h.site)

    def sites(self) -> list[str]:
        return sorted(self._sites)

    def as_dict(self, site: str = "") -> dict[str, Any]:
        """The fleet's summary, or one site's (an unknown site: all zero)."""
        if not site:
            return self._fleet.as_dict()
        return self._sites.get(site, _Counts()).as_dict()

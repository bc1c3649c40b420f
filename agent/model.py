"""The agent's data model above the Readings: ComponentHealth, GroupStatus, HostHealth.

Readings (what a source said) come from ``collectors.base``; this module holds our
conclusions. HostHealth is the wire contract: ``agent.wire`` turns it into the MQTT
``health`` payload, and the central service reads that payload back.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from collectors.base import GroupKind, Kind, State

SCHEMA_VERSION = 1


class GroupState(enum.StrEnum):
    REDUNDANT = "redundant"  # every slot serving
    DEGRADED = "degraded"  # a member lost, still serving (margin >= 0)
    FAILED = "failed"  # fewer serving than required (margin < 0)
    UNKNOWN = "unknown"  # unknown members could change the verdict

    @property
    def severity(self) -> int:
        """Rank used for "the worst of": failed > degraded > unknown > redundant.

        A known loss of redundancy outranks an unknown, as in the monitoring-plugin
        convention (CRITICAL > WARNING > UNKNOWN > OK).
        """
        return _SEVERITY[self]


_SEVERITY = {
    GroupState.REDUNDANT: 0,
    GroupState.UNKNOWN: 1,
    GroupState.DEGRADED: 2,
    GroupState.FAILED: 3,
}


_STATED_MARGIN = {GroupState.DEGRADED: 0, GroupState.FAILED: -1}


class Role(enum.StrEnum):
    PRIMARY = "primary"
    STANDBY = "standby"
    NONE = "none"


@dataclass(frozen=True, slots=True)
class ComponentHealth:
    """Our conclusion about one component after debounce and staleness."""

    id: str
    kind: Kind
    state: State
    since: float  # when the reported state began
    observed_at: float  # when the source last said anything about it
    detail: str = ""
    value: float | None = None
    unit: str | None = None
    source: str = ""  # the collector instance that reported it


@dataclass(frozen=True, slots=True)
class GroupStatus:
    id: str
    kind: GroupKind
    state: GroupState
    required: int
    total: int
    healthy: int
    unknown: int
    members: tuple[str, ...]
    spares: tuple[str, ...] = ()
    detail: str = ""
    reason: str = ""  # why this state, in one sentence
    stated: GroupState | None = None  # the device's own verdict, when it states one

    @property
    def margin(self) -> int:
        """How many more members the group can lose and still serve (0: no redundancy left).

        When the device itself states the group degraded (or failed), the margin is at
        most 0 (or -1) whatever the counts say.
        """
        counted = self.healthy - self.required
        return min(counted, _STATED_MARGIN.get(self.stated, counted))


@dataclass(frozen=True, slots=True)
class CollectorStatus:
    """Whether a collector's last poll worked: a failed source explains unknown components."""

    name: str
    ok: bool
    error: str = ""


@dataclass(frozen=True, slots=True)
class HostHealth:
    site: str
    host: str
    state: GroupState
    role: Role
    generated_at: float
    groups: tuple[GroupStatus, ...]
    components: tuple[ComponentHealth, ...]
    collectors: tuple[CollectorStatus, ...] = ()
    schema: int = SCHEMA_VERSION

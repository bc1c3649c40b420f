"""The device's own statement of its PSU / fan redundancy, as the group's stated verdict.

Pure. Some devices say themselves whether their power supplies or fans are redundant
(HPE iLO: cpqHeFltTolPowerSupplyRedundant, cpqHeFltTolFanRedundant and the power
subsystem's condition; Dell iDRAC: powerUnitRedundancyStatus, coolingUnitRedundancyStatus).
A profile lists those columns as ``statements`` (collectors.snmp_profiles); here the
walked values become the ``stated`` verdict of the ``psu`` / ``fan`` group, with the
device's words as ``stated_reason``. agent/evaluate.py lets the worse of the stated
verdict and the members' count win, so a device that says "not redundant" while every
member reads OK gives a DEGRADED group whose reason quotes the device.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

from collectors.base import GroupSpec, Verdict
from collectors.snmp_profiles import Profile, RedundancyStatement, Role

Index = tuple[int, ...]
Walked = Mapping[str, Mapping[Index, Any]]

_RANK = {Verdict.REDUNDANT: 0, Verdict.DEGRADED: 1, Verdict.FAILED: 2}
GROUP_ROLE = {"psu": Role.PSU, "fan": Role.FAN}


def _int(value: Any) -> int | None:
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return None


def _name(st: RedundancyStatement, index: Index, walked: Walked) -> str:
    if st.name is not None:
        text = walked.get(st.name, {}).get(index)
        if text not in (None, ""):
            return str(text).strip()
    if st.name_template:
        return st.name_template.format(index=".".join(map(str, index)), last=index[-1])
    return ".".join(map(str, index))


def said(st: RedundancyStatement, walked: Walked) -> list[tuple[Verdict, str, str]]:
    """(verdict, row name, the device's word) for each row of ``st`` that states one."""
    present = walked.get(st.present, {}) if st.present else {}
    out = []
    for index, value in sorted(walked.get(st.column_oid, {}).items()):
        if st.present is not None and _int(present.get(index)) in st.absent_values:
            continue  # an empty bay states nothing about the group
        raw = _int(value)
        verdict, word = st.verdicts.get(raw, (None, "")) if raw is not None else (None, "")
        if verdict is not None:
            out.append((verdict, _name(st, index, walked), word))
    return out


def statements(profile: Profile, walked: Walked) -> dict[Role, tuple[Verdict, str]]:
    """{role: (worst stated verdict, its reason)} over the profile's statement columns."""
    found: dict[Role, list[tuple[Verdict, str, str, str]]] = {}
    for st in profile.statements:
        for verdict, name, word in said(st, walked):
            found.setdefault(st.role, []).append((verdict, name, word, st.object))
    out = {}
    for role, rows in found.items():
        worst = max(_RANK[v] for v, *_ in rows)
        chosen = [r for r in rows if _RANK[r[0]] == worst]
        by_word: dict[tuple[str, str], list[str]] = {}
        for _, name, word, obj in chosen:
            by_word.setdefault((word, obj), []).append(name)
        reason = "; ".join(
            f"{', '.join(names)}: {word} ({obj})" for (word, obj), names in by_word.items()
        )
        out[role] = (chosen[0][0], reason)
    return out


def with_statements(
    groups: Iterable[GroupSpec], profile: Profile, walked: Walked
) -> list[GroupSpec]:
    """``groups`` with the device's stated verdict where the profile's device states one."""
    stated = statements(profile, walked) if profile.statements else {}
    out = []
    for g in groups:
        role = GROUP_ROLE.get(g.id)
        if role in stated:
            verdict, reason = stated[role]
            g = replace(g, stated=verdict, stated_reason=reason)
        out.append(g)
    return out

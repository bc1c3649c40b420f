"""The compiled schema checks agree with jsonschema on every payload kind: valid payloads
built by agent/wire.py, systematic mutations of them, and arbitrary JSON values."""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent import wire
from agent.evaluate import Transition
from agent.model import GroupState, HostHealth, Role
from central.contract import SCHEMA_DIR
from central.schemacheck import Compiler
from tests.central_peer import psu_pair
from tests.schemas import validator

CHECKS = Compiler(SCHEMA_DIR)
WRONG = [None, "", "x", -1, 0, 1.5, 2.0, True, False, [], ["x"], {}, {"a": 1}, "redundant", "ok"]


def samples() -> dict[str, list[dict[str, Any]]]:
    now = time.time()
    groups, comps = [], []
    for gid, state in (("power", "degraded"), ("md/md0", "redundant"), ("fans", "unknown")):
        g, c = psu_pair(state, gid)
        groups.append(g)
        comps += c
    h = HostHealth(
        "dc1", "web-01", GroupState.DEGRADED, Role.PRIMARY, now, tuple(groups), tuple(comps)
    )
    # one group and one component: mutations change the first item of each list anyway
    small = HostHealth("dc1", "web-01", h.state, h.role, now, (groups[0],), (comps[1],))
    health = wire.health(small, 10, now)
    health["collectors"] = [
        {"name": "ipmi", "ok": False, "error": "timeout"},
        {"name": "md", "ok": True, "error": ""},
    ]
    return {
        "status": [wire.status("online", 1, now), wire.status("offline", 2, now)],
        "health": [health],
        "group": [wire.state_message(h, wire.group(g), 3, now) for g in groups[::2]],
        "component": [wire.state_message(h, wire.component(c), 4, now) for c in comps[:2]],
        "event": [
            wire.transition_event(
                "dc1", "web-01", Transition("group", "power", "redundant", "degraded", "r"), 5, now
            ),
            wire.transition_event(
                "dc1", "web-01", Transition("component", "psu/2", "ok", None, "gone"), 6, now
            ),
            wire.transition_event(
                "dc1", "web-01", Transition("host", "web-01", None, "failed"), 7, now
            ),
            wire.agent_event("dc1", "web-01", "config_rejected", "bad key", 8, now),
        ],
    }


def mutations(doc: Any) -> Iterator[Any]:
    """The document with one thing changed: a key removed, added or given a wrong value,
    recursively."""
    if isinstance(doc, dict):
        yield {**doc, "unexpected": 1}
        for key in doc:
            yield {k: v for k, v in doc.items() if k != key}
            for wrong in WRONG:
                yield {**doc, key: wrong}
            for sub in mutations(doc[key]):
                yield {**doc, key: sub}
    elif isinstance(doc, list) and doc:
        yield [*doc, copy.deepcopy(doc[0])]
        yield [*doc, None]
        for sub in mutations(doc[0]):
            yield [sub, *doc[1:]]


@pytest.mark.parametrize("name", ["status", "health", "group", "component", "event"])
def test_verdicts_match_jsonschema_on_valid_and_mutated_payloads(name):
    check = CHECKS.checker(name)
    reference = validator(name)
    n = 0
    for doc in samples()[name]:
        assert check(doc, "") is None and reference.is_valid(doc)
        for bad in mutations(doc):
            n += 1
            mine = check(bad, "") is None
            assert mine == reference.is_valid(bad), (json.dumps(bad)[:400], check(bad, ""))
    assert n > 50


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-3, 3)
    | st.floats(-2, 2, allow_nan=False)
    | st.sampled_from(["", "x", "ok", "degraded", "transition", "group", "online"]),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                ["schema", "ts", "seq", "type", "state", "id", "scope", "from", "to", "x"]
            ),
            inner,
            max_size=5,
        )
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(value=json_values, name=st.sampled_from(["status", "health", "group", "component", "event"]))
def test_verdicts_match_jsonschema_on_arbitrary_json(value, name):
    assert (CHECKS.checker(name)(value, "") is None) == validator(name).is_valid(value)


def test_an_unsupported_keyword_fails_at_compile_time(tmp_path):
    (tmp_path / "x.schema.json").write_text('{"type": "string", "pattern": "^a"}')
    with pytest.raises(ValueError, match="pattern"):
        Compiler(tmp_path).checker("x")


def test_errors_say_where():
    doc = samples()["health"][0]
    doc["groups"].append(dict(doc["groups"][0], state="on fire"))
    error = CHECKS.checker("health")(doc, "")
    assert error.startswith("/groups/1/state: 'on fire' is not one of")

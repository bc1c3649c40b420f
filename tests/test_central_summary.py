"""The fleet summary (central/summary.py), kept host by host by the fleet: a hand-checked
scenario, then a long random stream of messages after which the kept counts must equal a
count from scratch, for the fleet and for every site."""

from __future__ import annotations

import random
from collections import Counter

from agent import wire
from agent.model import GroupState, HostHealth, Role
from central.contract import Kind
from central.state import Fleet
from tests.central_peer import psu_pair


def health_doc(site: str, host: str, groups: dict[str, str], seq: int, ts: float) -> dict:
    gs, cs = [], []
    for gid, state in sorted(groups.items()):
        g, c = psu_pair(state, gid)
        gs.append(g)
        cs += c
    worst = max((g.state for g in gs), key=lambda s: s.severity, default=GroupState.REDUNDANT)
    h = HostHealth(site, host, worst, Role.NONE, ts, tuple(gs), tuple(cs))
    return wire.health(h, seq, ts)


def status_doc(state: str, seq: int, ts: float) -> dict:
    return {**wire.status(state, seq, ts), "site": "x", "host": "x"}


def group_doc(site: str, host: str, gid: str, state: str, seq: int, ts: float) -> dict:
    g, _ = psu_pair(state, gid)
    return {"schema": 1, "ts": ts, "seq": seq, "site": site, "host": host, **wire.group(g)}


def recount(fleet: Fleet, site: str = "") -> dict:
    """The summary counted from scratch, written apart from central/summary.py."""
    states: Counter[str] = Counter()
    groups: dict[str, Counter[str]] = {}
    n = 0
    for h in fleet.hosts.values():
        if site and h.site != site:
            continue
        n += 1
        states[h.state or "none"] += 1
        for gid, g in h.groups.items():
            shown = "offline" if h.online is False else g["state"]
            groups.setdefault(gid, Counter())[shown] += 1
    return {
        "hosts": n,
        "states": dict(sorted(states.items())),
        "groups": {gid: dict(sorted(c.items())) for gid, c in sorted(groups.items())},
    }


def test_counts_follow_states_offline_hosts_and_sites():
    f = Fleet(heartbeat_timeout=30)
    f.apply("dc1", "a", Kind.HEALTH, health_doc("dc1", "a", {"power": "redundant"}, 1, 10), 10)
    f.apply(
        "dc1",
        "b",
        Kind.HEALTH,
        health_doc("dc1", "b", {"power": "redundant", "raid": "redundant"}, 1, 10),
        10,
    )
    f.apply("dc2", "c", Kind.HEALTH, health_doc("dc2", "c", {"power": "failed"}, 1, 10), 10)
    assert f.summary.as_dict() == {
        "hosts": 3,
        "states": {"failed": 1, "redundant": 2},
        "groups": {"power": {"failed": 1, "redundant": 2}, "raid": {"redundant": 1}},
    }
    v = f.summary.version
    # b's power degrades: one group and one host move from redundant to degraded
    f.apply("dc1", "b", Kind.GROUP, group_doc("dc1", "b", "power", "degraded", 2, 11), 11)
    f.apply(
        "dc1",
        "b",
        Kind.HEALTH,
        health_doc("dc1", "b", {"power": "degraded", "raid": "redundant"}, 3, 11),
        11,
    )
    assert f.summary.version > v
    assert f.summary.as_dict("dc1") == {
        "hosts": 2,
        "states": {"degraded": 1, "redundant": 1},
        "groups": {"power": {"degraded": 1, "redundant": 1}, "raid": {"redundant": 1}},
    }
    # a stops being heard: it and its group count as offline
    f.apply("dc1", "b", Kind.GROUP, group_doc("dc1", "b", "raid", "redundant", 4, 35), 35)
    f.apply("dc2", "c", Kind.GROUP, group_doc("dc2", "c", "power", "failed", 2, 35), 35)
    f.tick(45)
    assert f.summary.as_dict()["states"] == {"degraded": 1, "failed": 1, "offline": 1}
    assert f.summary.as_dict()["groups"]["power"] == {"degraded": 1, "failed": 1, "offline": 1}
    assert f.summary.changed_sites == {"dc1", "dc2"}
    assert f.summary.sites() == ["dc1", "dc2"]
    assert f.summary.as_dict("nowhere") == {"hosts": 0, "states": {}, "groups": {}}
    # nothing changed, nothing counted again
    v = f.summary.version
    f.apply("dc1", "b", Kind.GROUP, group_doc("dc1", "b", "raid", "redundant", 5, 46), 46)
    assert f.summary.version == v


def test_kept_counts_equal_a_recount_after_a_random_stream():
    rng = random.Random(7)
    f = Fleet(heartbeat_timeout=20)
    hosts = [(rng.choice(["dc1", "dc2", "dc3"]), f"h{i:02d}") for i in range(40)]
    gids = ["power", "cooling", "md/md0", "bond0"]
    states = ["redundant", "degraded", "failed", "unknown"]
    now = 0.0
    for seq in range(1, 3001):
        now += rng.random()
        site, host = rng.choice(hosts)
        r = rng.random()
        if r < 0.35:
            groups = {g: rng.choice(states) for g in rng.sample(gids, rng.randint(0, 4))}
            f.apply(site, host, Kind.HEALTH, health_doc(site, host, groups, seq, now), now)
        elif r < 0.7:
            gid = rng.choice(gids)
            doc = group_doc(site, host, gid, rng.choice(states), seq, now)
            f.apply(site, host, Kind.GROUP, doc, now)
        elif r < 0.8:
            f.apply(site, host, Kind.GROUP, None, now, topic_id=wire.id_topic(rng.choice(gids)))
        elif r < 0.9:
            state = rng.choice(["online", "offline"])
            f.apply(site, host, Kind.STATUS, status_doc(state, seq, now), now, rng.random() < 0.2)
        else:
            f.tick(now + rng.choice([0, 30]))
    assert sum(1 for h in f.hosts.values() if h.online is False) > 0  # the stream had them
    assert f.summary.as_dict() == recount(f)
    for site in ("dc1", "dc2", "dc3"):
        assert f.summary.as_dict(site) == recount(f, site)

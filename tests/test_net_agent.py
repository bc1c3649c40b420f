"""Link loss for real: veth pairs in a namespace, the agent and the broker inside it.

The interval is an hour, so only the netlink link event can explain a change seen in
the health message.
"""

from __future__ import annotations

import pytest

from tests.conftest import Subscriber
from tests.net_peer import Netns, NetnsAgent, NetnsBroker, inside, netns_available, nic_agent_config

BASE = "hotspare/v1/dc1/web-01"

pytestmark = pytest.mark.skipif(not netns_available(), reason="needs root and iproute2")


def group_is(gid: str, state: str, failed: str | None = None):
    def pred(m):
        if m.topic != f"{BASE}/health" or not m.payload:
            return False
        h = m.json()
        groups = {g["id"]: g for g in h["groups"]}
        comps = {c["id"]: c["state"] for c in h["components"]}
        if gid not in groups or groups[gid]["state"] != state:
            return False
        return failed is None or comps.get(failed) == "failed"

    return pred


def test_veth_link_cut_reaches_the_health_message_through_netlink(tmp_path):
    with Netns() as ns, NetnsBroker(ns) as broker:
        (a0, b0), (a1, _b1) = ns.veth(), ns.veth()
        with inside(ns.name):
            sub = Subscriber(broker.port, [f"{BASE}/#"])
        try:
            config = nic_agent_config(broker.port, tmp_path / "state", [a0, a1], interval=3600)
            with NetnsAgent(ns, tmp_path, config) as agent:
                try:
                    h = sub.wait(group_is("nic/uplinks", "redundant"), what="redundant").json()
                    assert h["state"] == "redundant"
                    ns.link(b0, "down")  # the peer goes down: a0 loses its carrier
                    h = sub.wait(
                        group_is("nic/uplinks", "degraded", f"nic/{a0}"), what="degraded"
                    ).json()
                    (g,) = [g for g in h["groups"] if g["id"] == "nic/uplinks"]
                    assert g["margin"] == 0 and g["healthy"] == 1
                    del sub.messages[:]
                    ns.link(b0, "up")
                    sub.wait(group_is("nic/uplinks", "redundant"), what="redundant again")
                    # a NIC removed altogether (RTM_DELLINK): absent, the group degraded
                    del sub.messages[:]
                    ns.delete(a1)
                    h = sub.wait(group_is("nic/uplinks", "degraded"), what="NIC removed").json()
                    comps = {c["id"]: c for c in h["components"]}
                    assert comps[f"nic/{a1}"]["state"] == "absent"
                    assert comps[f"nic/{a1}"]["detail"] == "no such interface"
                except AssertionError:
                    print(agent.output())
                    raise
        finally:
            sub.close()

"""Storage collectors in the real agent against the real mosquitto: a vendor CLI replaying a
recorded real output, smartctl replaying a failing drive's real output, missing tools."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import FIXTURES, agent_config
from tests.schemas import validate

BASE = "hotspare/v1/dc1/web-01"
REPLAY = Path(__file__).parent / "replay_tool.py"
RAID5 = FIXTURES / "mdstat" / "pymdstat__mdstat.02.txt"  # md_d0 raid5 [5/5], sdc1 a member


def health_where(pred):
    def match(m):
        return m.topic == f"{BASE}/health" and m.payload and pred(m.json())

    return match


def group(health: dict, gid: str) -> dict | None:
    return next((g for g in health["groups"] if g["id"] == gid), None)


def test_replayed_cli_degraded_vd_and_failing_disk_in_the_health_message(
    tmp_path, broker, subscribe, run_agent, monkeypatch
):
    monkeypatch.setenv(
        "HOTSPARE_REPLAY",
        json.dumps(
            {
                "GETCONFIG": str(FIXTURES / "raidctl/arcconf/check_raid__issue47_getconfig2"),
                "GETSTATUS": str(FIXTURES / "raidctl/arcconf/check_raid__issue47_getstatus2"),
                "-a": str(FIXTURES / "smart/scrutiny__smart-fail2.json"),  # /dev/sdc, FAILED
            }
        ),
    )
    extra = (
        f'[[collectors.raidctl]]\ntool = "arcconf"\npath = "{REPLAY}"\n'
        f'[[collectors.smart]]\npath = "{REPLAY}"\ndevices = ["/dev/sdc"]\n'
        f'[[collectors.zfs]]\npath = "{tmp_path}/no-such/zpool"\ninterval = 0.2\n'
    )
    sub = subscribe()
    config = agent_config(broker.port, RAID5, tmp_path / "state", extra, "heartbeat = 0.5\n")
    agent = run_agent(config)

    def ready(h):
        return group(h, "raid/c1/vd0") is not None and group(h, "md/md_d0") is not None

    health = sub.wait(health_where(ready), what="health with the RAID and md groups").json()
    validate("health", health)
    vd = group(health, "raid/c1/vd0")
    assert (vd["state"], vd["required"], vd["healthy"], vd["total"], vd["margin"]) == (
        "degraded",
        3,
        3,
        4,
        0,
    )
    assert "rebuild 1%" in vd["detail"] and "raid/c1/pd/0:3" in vd["spares"]
    # the SMART-failing sdc makes the md member on it count as lost
    md = group(health, "md/md_d0")
    assert md["state"] == "degraded" and md["healthy"] == 4, md
    comps = {c["id"]: c for c in health["components"]}
    assert comps["smart/sdc"]["state"] == "failed"
    assert comps["md/md_d0/sdc1"]["state"] == "failed"
    assert "smart/sdc on the same disk" in comps["md/md_d0/sdc1"]["detail"]
    assert health["state"] == "degraded"
    # the missing zpool: not applicable, not an error, said once however often it is polled
    statuses = {c["name"]: c for c in health["collectors"]}
    assert statuses["zfs"]["ok"] is True and statuses["raidctl"]["ok"] is True
    # three heartbeats later (>= 1.5 s): the 0.2 s zfs poller has run several more times
    later = health
    for _ in range(3):
        seq = later["seq"]
        later = sub.wait(health_where(lambda h, s=seq: h["seq"] > s), what="a heartbeat").json()
    assert {c["name"]: c["ok"] for c in later["collectors"]}["zfs"] is True
    log = agent.output()
    assert log.count("not applicable") == 1, log
    assert "collector zfs failed" not in log
    assert "collector zfs:" in log and "no-such/zpool: not installed" in log

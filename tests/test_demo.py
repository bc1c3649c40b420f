"""The README's demo command: it must show a transition live."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import hotspare


def test_demo_shows_transitions_live_and_cleans_up():
    r = hotspare("demo", "--duration", "15", timeout=60)
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "group md/md1: redundant -> degraded" in out
    assert "group md/md0: redundant -> degraded" in out
    assert "md/md0  raid  degraded  1/2" in out
    tmp = out.split("agent log ")[1].split("/agent.log")[0]
    assert tmp.startswith("/tmp/hotspare-demo-") and not Path(tmp).exists()  # removed at the end

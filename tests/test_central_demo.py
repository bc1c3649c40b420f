"""``hotspare demo --dashboard``: the demo's agent shows on the central dashboard's API."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

from tests.central_peer import wait_for
from tests.conftest import ROOT


def test_demo_with_dashboard_serves_the_demo_host_and_cleans_up():
    proc = subprocess.Popen(
        [sys.executable, "-m", "agent.cli", "demo", "--duration", "14", "--dashboard"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        first = proc.stdout.readline()
        m = re.search(r"dashboard (http://127\.0\.0\.1:\d+/)", first)
        assert m, first
        url = m.group(1)

        def demo_host():
            try:
                with urllib.request.urlopen(f"{url}api/hosts/demo/demo-01", timeout=2) as r:
                    return json.loads(r.read())
            except OSError:
                return None

        host = wait_for(lambda: (h := demo_host()) and h["groups"] and h, timeout=30, what="host")
        assert {g["id"] for g in host["groups"]} == {"md/md0", "md/md1"}
        with urllib.request.urlopen(url, timeout=5) as r:
            assert b"/static/app.js" in r.read()
        _out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        tmp = first.split("agent log ")[1].split("/agent.log")[0]
        assert not Path(tmp).exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


DEMO_ARGS = ("--promotion", "--dashboard", "--pace", "4", "--duration", "120")


def test_promotion_demo_with_dashboard_shows_both_hosts_and_the_promotion():
    """The README's full demo: primary and standby on the dashboard; the standby ends primary."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "agent.cli", "demo", *DEMO_ARGS],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        first = proc.stdout.readline()
        m = re.search(r"dashboard (http://127\.0\.0\.1:\d+/)", first)
        assert m, first
        url = m.group(1)

        def host(name):
            try:
                with urllib.request.urlopen(f"{url}api/hosts/demo/{name}", timeout=2) as r:
                    return json.loads(r.read())
            except OSError:
                return None

        primary = wait_for(lambda: (h := host("db-01")) and h["groups"] and h, 60, "db-01")
        assert {g["id"] for g in primary["groups"]} >= {"power"}
        promoted = wait_for(
            lambda: (h := host("db-02")) and h.get("role") == "primary" and h, 60, "db-02 promoted"
        )
        assert promoted["host"] == "db-02"
        proc.send_signal(signal.SIGINT)  # Ctrl-C: the demo stops and cleans up
        _out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        tmp = first.split("logs in ")[1].split(";")[0]
        assert tmp.startswith("/tmp/hotspare-demo-") and not Path(tmp).exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

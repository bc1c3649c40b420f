"""The JSON API: OpenAPI coverage, server-side filters and paging, host details,
availability over recorded history, maintenance with the bearer token, live updates (SSE)."""

from __future__ import annotations

import time
import urllib.request

import pytest

from agent import wire
from central.openapi import document
from central.state import Transition
from tests.central_peer import CentralThread, SimAgent, get, psu_pair, send, write_config

TOKEN = "s3cret-token-for-tests"


@pytest.fixture
def central(broker, tmp_path):
    cfg = write_config(tmp_path / "central.toml", broker.port, str(tmp_path / "c.db"), token=TOKEN)
    c = CentralThread(cfg).start()
    yield c
    c.stop()


def feed(c: CentralThread, site: str, host: str, groups: dict[str, str]) -> None:
    """Hand real contract payloads to the running ingest (as if from the broker)."""
    gs, comps = [], []
    for gid, state in sorted(groups.items()):
        g, cs = psu_pair(state, gid)
        gs.append(g)
        comps += cs
    from agent.model import GroupState, HostHealth, Role

    worst = max((g.state for g in gs), key=lambda s: s.severity)
    h = HostHealth(site, host, worst, Role.NONE, time.time(), tuple(gs), tuple(comps))
    payload = wire.encode(wire.health(h, 1, time.time()))
    status = wire.encode(wire.status("online", 2, time.time()))
    base = f"hotspare/v1/{site}/{host}"
    c.call(lambda: c.central.ingest.handle(f"{base}/status", status))
    c.call(lambda: c.central.ingest.handle(f"{base}/health", payload))
    assert GroupState


def test_openapi_describes_exactly_the_api_routes(central):
    status, doc = get(f"{central.url}/api/openapi.json")
    assert status == 200 and doc == document()
    served = set()
    for route in central.central.api.app().router.routes():
        path = route.resource.canonical if route.resource else ""
        if path.startswith("/api/") and route.method != "HEAD":
            served.add((path, route.method.lower()))
    described = {(p, m) for p, ops in doc["paths"].items() for m in ops}
    assert served == described
    assert doc["openapi"].startswith("3.1")


def test_fleet_is_filtered_and_paged_on_the_server(central):
    for i in range(25):
        site = "dc1" if i < 15 else "dc2"
        state = "degraded" if i % 5 == 0 else "redundant"
        feed(central, site, f"h{i:02d}", {"power": state, "cooling": "redundant"})
    _, page = get(f"{central.url}/api/fleet?limit=10&offset=10")
    assert page["total"] == 25 and len(page["hosts"]) == 10
    assert [h["host"] for h in page["hosts"]][:2] == ["h10", "h11"]
    assert page["groups"] == ["cooling", "power"]
    assert page["counts"] == {"degraded": 5, "redundant": 20}
    _, dc2 = get(f"{central.url}/api/fleet?site=dc2&state=degraded")
    assert [h["host"] for h in dc2["hosts"]] == ["h15", "h20"]
    _, q = get(f"{central.url}/api/fleet?q=H2")
    assert [h["host"] for h in q["hosts"]] == ["h20", "h21", "h22", "h23", "h24"]
    _, worst = get(f"{central.url}/api/fleet?sort=state&limit=1")
    assert worst["hosts"][0]["state"] == "degraded"
    _, groups = get(f"{central.url}/api/groups?state=degraded&site=dc1")
    assert groups["total"] == 3 and {g["host"] for g in groups["groups"]} == {"h00", "h05", "h10"}
    assert get(f"{central.url}/api/fleet?limit=0")[0] == 400
    assert get(f"{central.url}/api/fleet?offset=x")[0] == 400


def test_host_shows_groups_with_their_members_readings(central):
    feed(central, "dc1", "web-01", {"power": "degraded"})
    status, h = get(f"{central.url}/api/hosts/dc1/web-01")
    assert status == 200
    (g,) = h["groups"]
    assert (g["id"], g["state"], g["margin"]) == ("power", "degraded", 0)
    assert [(m["id"], m["state"], m["value"], m["unit"]) for m in g["member_details"]] == [
        ("power/psu1", "ok", 231.0, "V"),
        ("power/psu2", "failed", None, None),
    ]
    assert [t["to"] for t in h["transitions"]][:2] == ["degraded", "degraded"]
    assert get(f"{central.url}/api/hosts/dc1/nope")[0] == 404


def test_availability_over_recorded_history_with_a_maintenance_window(central):
    # a hand-made history: group degraded 1000-3000, failed 3000-3600; host offline 8000-8600
    rec = [
        Transition(0, "dc1", "web-01", "host", "web-01", None, "redundant"),
        Transition(0, "dc1", "web-01", "group", "power", None, "redundant"),
        Transition(1000, "dc1", "web-01", "group", "power", "redundant", "degraded"),
        Transition(3000, "dc1", "web-01", "group", "power", "degraded", "failed"),
        Transition(3600, "dc1", "web-01", "group", "power", "failed", "redundant"),
        Transition(8000, "dc1", "web-01", "host", "web-01", "redundant", "offline"),
        Transition(8600, "dc1", "web-01", "host", "web-01", "offline", "redundant"),
    ]
    central.call(lambda: central.central.history.add_transitions(rec))
    url = f"{central.url}/api/availability?site=dc1&host=web-01&start=0&end=10000&target=99.9"
    _, a = get(url)
    assert a["down_s"] == 600 and a["uptime_pct"] == pytest.approx(94.0)
    p = a["groups"]["power"]
    assert p["down_s"] == 600 + 600 and p["exposure_s"] == 2000 and p["outages"] == 2
    assert p["budget_minutes"] == pytest.approx(10.0 / 60)
    # declare the first outage as maintenance through the API
    body = {"site": "dc1", "host": "web-01", "start": 2900, "end": "1970-01-01T01:01:40Z"}
    assert send(f"{central.url}/api/maintenance", "POST", body)[0] == 401
    assert send(f"{central.url}/api/maintenance", "POST", body, token="wrong")[0] == 401
    status, m = send(f"{central.url}/api/maintenance", "POST", body, token=TOKEN)
    assert status == 201 and (m["start"], m["end"], m["source"]) == (2900, 3700, "api")
    _, a = get(url)
    p = a["groups"]["power"]
    assert p["maintenance_s"] == 800 and p["down_s"] == 600 and p["exposure_s"] == 1900
    assert [s["state"] for s in p["segments"] if s["maintenance"]] == [
        "degraded",
        "failed",
        "redundant",
    ]
    _, fleet = get(f"{central.url}/api/availability?start=0&end=10000")
    assert fleet["hosts"][0]["host"] == "web-01" and "segments" not in fleet["hosts"][0]
    assert get(f"{central.url}/api/maintenance?all=1")[1]["maintenance"][0]["id"] == m["id"]
    assert send(f"{central.url}/api/maintenance/{m['id']}", "DELETE")[0] == 401
    assert send(f"{central.url}/api/maintenance/{m['id']}", "DELETE", token=TOKEN)[0] == 200
    assert send(f"{central.url}/api/maintenance/{m['id']}", "DELETE", token=TOKEN)[0] == 404
    bad = {"site": "dc1", "start": 10, "end": 5}
    assert send(f"{central.url}/api/maintenance", "POST", bad, token=TOKEN)[0] == 400
    assert (
        send(f"{central.url}/api/maintenance", "POST", {"start": 1, "end": 2, "x": 1}, token=TOKEN)[
            0
        ]
        == 400
    )
    assert get(f"{central.url}/api/availability?window=2y")[0] == 400


def test_reads_need_the_token_when_not_open(central):
    central.call(lambda: setattr(central.central.api, "open_reads", False))
    assert get(f"{central.url}/api/fleet")[0] == 401
    assert get(f"{central.url}/api/fleet", token=TOKEN)[0] == 200
    assert get(f"{central.url}/api/openapi.json")[0] == 200  # the description stays readable


def test_without_a_token_file_changes_are_off(broker, tmp_path):
    cfg = write_config(tmp_path / "c.toml", broker.port, str(tmp_path / "c.db"))
    c = CentralThread(cfg).start()
    try:
        status, body = send(f"{c.url}/api/maintenance", "POST", {"host": "x", "start": 1, "end": 2})
        assert status == 403 and "token_file" in body["error"]
    finally:
        c.stop()


def test_live_updates_arrive_as_server_sent_events(central, broker):
    stream = urllib.request.urlopen(f"{central.url}/api/stream", timeout=15)
    try:
        assert stream.readline() == b"retry: 2000\n"
        agent = SimAgent(broker.port, "dc1", "web-01", {"power": "redundant"})
        agent.publish({"power": "degraded"})
        seen = []
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            line = stream.readline().decode()
            seen.append(line)
            if line.startswith("data:") and '"power":"degraded"' in line:
                break
        else:
            raise AssertionError(f"no live update with power degraded: {seen[-10:]}")
        assert "event: hosts\n" in seen
        agent.close()
    finally:
        stream.close()


def test_the_dashboard_and_its_assets_are_served_locally(central):
    with urllib.request.urlopen(f"{central.url}/", timeout=10) as r:
        html = r.read().decode()
    assert "/static/app.js" in html and "http://" not in html and "https://" not in html
    for asset in ("app.js", "style.css"):
        with urllib.request.urlopen(f"{central.url}/static/{asset}", timeout=10) as r:
            text = r.read().decode()
        assert "http://" not in text and "https://" not in text, asset


def test_the_summary_counts_the_whole_fleet_per_site(central):
    for i in range(12):
        site = "dc1" if i < 8 else "dc2"
        feed(central, site, f"h{i:02d}", {"power": "degraded" if i % 4 == 0 else "redundant"})
    _, s = get(f"{central.url}/api/summary")
    assert (s["hosts"], s["site"], s["sites"]) == (12, None, ["dc1", "dc2"])
    assert s["states"] == {"degraded": 3, "redundant": 9}
    assert s["groups"] == {"power": {"degraded": 3, "redundant": 9}}
    _, dc2 = get(f"{central.url}/api/summary?site=dc2")
    assert (dc2["hosts"], dc2["states"]) == (4, {"degraded": 1, "redundant": 3})
    # a page of the fleet carries the summary of every host (of the site), not of the page
    _, page = get(f"{central.url}/api/fleet?site=dc1&limit=2")
    assert page["summary"]["hosts"] == 8 and page["counts"] == {"degraded": 2, "redundant": 6}
    feed(central, "dc2", "h09", {"power": "failed"})
    _, dc2 = get(f"{central.url}/api/summary?site=dc2")
    assert dc2["states"] == {"degraded": 1, "failed": 1, "redundant": 2}

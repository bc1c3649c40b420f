"""When the service loses the broker: no host is marked offline for the silence the service
could not hear, each host gets a full heartbeat timeout after the reconnect, and the API and
the open dashboard say that the service is not connected."""

from __future__ import annotations

import time

from central.contract import Kind
from central.state import MISSED_HEARTBEATS, Fleet
from tests.central_peer import CentralThread, Proxy, SimAgent, get, wait_for, write_config
from tests.test_central_summary import health_doc


def test_a_reconnect_gives_every_host_a_full_heartbeat_timeout_and_a_first_connect_does_not():
    f = Fleet(heartbeat_timeout=90)
    f.apply("dc1", "a", Kind.HEALTH, health_doc("dc1", "a", {"power": "redundant"}, 1, 100), 100)
    assert f.tick(180) == []
    # the broker was lost at 150 and is back at 400: nothing was heard in between
    f.resume(400)
    assert f.tick(400) == [] and f.tick(489) == []
    (t,) = [r for r in f.tick(491) if r.scope == "host"]
    assert (t.host, t.to_state, t.cause) == ("a", "offline", MISSED_HEARTBEATS)
    # a message after the reconnect counts from when it came
    f.apply("dc1", "a", Kind.HEALTH, health_doc("dc1", "a", {"power": "redundant"}, 2, 500), 500)
    assert f.tick(589) == [] and f.tick(591) != []
    # without a resume (the first connect), a retained health 200 s old is stale at once
    g = Fleet(heartbeat_timeout=90)
    doc = health_doc("dc1", "b", {"power": "redundant"}, 1, 800)
    g.apply("dc1", "b", Kind.HEALTH, doc, 1000, retained=True)
    assert [r.cause for r in g.tick(1001) if r.scope == "host"] == [MISSED_HEARTBEATS]


def stats(c: CentralThread) -> dict:
    return get(f"{c.url}/api/stats")[1]


def test_a_lost_broker_marks_no_host_offline_and_is_said_on_the_page(broker, tmp_path, browser):
    # the service reaches the broker through a relay that can be cut; the agent does not:
    # the fleet is fine, only the service is deaf
    proxy = Proxy(broker.port)
    cfg = write_config(
        tmp_path / "c.toml", proxy.port, str(tmp_path / "c.db"), extra="heartbeat_timeout = 3\n"
    )
    agent = SimAgent(broker.port, "dc1", "web-01", {"power": "redundant"})
    c = CentralThread(cfg).start()
    page = browser.new_page(viewport={"width": 1280, "height": 720})
    try:
        wait_for(lambda: get(f"{c.url}/api/hosts/dc1/web-01")[0] == 200, what="the host")
        page.goto(c.url + "/#/")
        page.locator("#live.on").wait_for()
        assert page.locator("#broker").is_hidden()
        up = stats(c)["broker"]
        assert up["connected"] is True and up["connects"] == 1 and up["last_error"] is None

        agent.publish()  # heard just before the loss
        proxy.down()
        banner = page.locator("#broker")
        banner.wait_for(state="visible", timeout=15_000)
        assert "Not connected to the MQTT broker mqtt://127.0.0.1:" in banner.inner_text()
        down = stats(c)["broker"]
        assert down["connected"] is False
        # the loss, or the first try to connect again (a second later)
        assert down["last_error"]["why"].startswith(("lost: ", "cannot connect: ")), down
        time.sleep(4)  # more than the heartbeat timeout, unheard
        host = get(f"{c.url}/api/hosts/dc1/web-01")[1]
        assert host["online"] is True and host["state"] == "redundant", host["offline_cause"]

        proxy.up()
        banner.wait_for(state="hidden", timeout=30_000)
        assert stats(c)["broker"]["connects"] == 2
        assert c.call(lambda: c.central.fleet.resumed_at) > 0
        # the agent says nothing more: missed for real, a heartbeat timeout after the reconnect
        host = wait_for(
            lambda: (h := get(f"{c.url}/api/hosts/dc1/web-01")[1])["online"] is False and h,
            timeout=20,
            what="the silent host offline after the reconnect",
        )
        assert host["offline_cause"] == MISSED_HEARTBEATS
    finally:
        page.close()
        c.stop()
        agent.close()
        proxy.close()

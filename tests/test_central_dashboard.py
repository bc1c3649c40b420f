"""The dashboard in headless Chromium (Debian's package, driven by Playwright): a real agent
and simulated agents publish through mosquitto; a group turning degraded turns red on the
open page without a reload. Screenshots go to tests/artifacts/ (not versioned)."""

from __future__ import annotations

from pathlib import Path

from agent.demo import mdstat_text
from tests.central_peer import CentralThread, SimAgent, get, wait_for, write_config
from tests.conftest import agent_config, write_mdstat

ARTIFACTS = Path(__file__).parent / "artifacts"
RED = "rgb(211, 47, 47)"  # --degraded in style.css
GREEN = "rgb(46, 125, 50)"  # --redundant


def cell(page, host: str, group: str):
    return page.locator(f'tr[data-host="dc1/{host}"] td[data-group="{group}"]')


def test_a_group_turning_degraded_turns_red_without_reload(broker, run_agent, tmp_path, browser):
    ARTIFACTS.mkdir(exist_ok=True)
    mdstat = tmp_path / "mdstat"
    write_mdstat(mdstat, mdstat_text("clean", "clean"))  # raid1 md0, raid6 md1
    agent = run_agent(agent_config(broker.port, mdstat, tmp_path / "state"))
    sims = [
        SimAgent(broker.port, "dc1", "db-01", {"power": "redundant", "cooling": "redundant"}),
        SimAgent(broker.port, "dc2", "db-02", {"power": "failed"}),
    ]
    c = CentralThread(
        write_config(
            tmp_path / "central.toml",
            broker.port,
            str(tmp_path / "c.db"),
            token="dashboard-test-token",
        )
    ).start()
    try:
        wait_for(
            lambda: get(f"{c.url}/api/hosts/dc1/web-01")[1].get("groups"),
            timeout=30,
            what=f"the real agent's groups; agent log:\n{agent.output()}",
        )
        page = browser.new_page(viewport={"width": 1280, "height": 720})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(f"{c.url}/#/")
        md0 = cell(page, "web-01", "md/md0")
        md0.wait_for()
        assert md0.get_attribute("data-state") == "redundant"
        assert md0.evaluate("e => getComputedStyle(e).backgroundColor") == GREEN
        page.locator("#live.on").wait_for()
        page.evaluate("window.__noReload = 42")  # survives only if the page is never reloaded
        page.screenshot(path=str(ARTIFACTS / "central-fleet-redundant.png"), full_page=True)

        write_mdstat(mdstat, mdstat_text("failed", "clean"))  # the real agent: md0 loses sdb1
        page.wait_for_function(
            """() => {
                const td = document.querySelector('tr[data-host="dc1/web-01"] td[data-group="md/md0"]');
                return td && td.dataset.state === "degraded";
            }""",
            timeout=30_000,
        )
        assert md0.evaluate("e => getComputedStyle(e).backgroundColor") == RED
        assert page.evaluate("window.__noReload") == 42
        host_cell = page.locator('tr[data-host="dc1/web-01"] td.host')
        assert host_cell.get_attribute("data-state") == "degraded"
        page.wait_for_selector('#counts [data-count="degraded"]')  # the counts follow too
        page.screenshot(path=str(ARTIFACTS / "central-fleet-degraded.png"), full_page=True)

        # a simulated agent dies: its host turns offline live too
        sims[0].die()
        page.wait_for_selector('tr[data-host="dc1/db-01"] td.host[data-state="offline"]')

        # filter by state on the server: only degraded hosts
        page.select_option("select[name=state]", "degraded")
        page.click("#filters button")
        page.wait_for_function("() => document.querySelectorAll('#matrix tbody tr').length === 1")
        assert page.locator("#matrix tbody tr").get_attribute("data-host") == "dc1/web-01"
        # a host turning degraded joins the filtered page by itself
        sims[1].publish({"power": "degraded"})
        page.wait_for_selector('tr[data-host="dc2/db-02"] td.host[data-state="degraded"]')
        assert page.evaluate("window.__noReload") == 42

        # the host page: groups, members with readings, the timeline
        page.goto(f"{c.url}/#/host/dc1/web-01")
        page.locator('h2[data-group="md/md0"]').wait_for()
        assert "md/md0/sdb1" in page.locator("main").inner_text()
        assert page.locator(".timeline tbody tr").count() >= 2
        page.screenshot(path=str(ARTIFACTS / "central-host.png"), full_page=True)

        # the availability view with its chart
        page.goto(f"{c.url}/#/availability?site=dc1&host=web-01&window=1h")
        page.locator("#chart rect[fill='#d32f2f']").first.wait_for()  # degraded time
        assert page.locator("#chart rect[fill='#2e7d32']").count() >= 1  # redundant time
        page.screenshot(path=str(ARTIFACTS / "central-availability.png"), full_page=True)

        # maintenance: a wrong token is refused, the right one declares the window
        page.goto(f"{c.url}/#/maintenance")
        form = page.locator("#mf")
        form.locator("[name=host]").fill("web-01")
        form.locator("[name=start]").fill("2026-12-01T22:00")
        form.locator("[name=end]").fill("2026-12-01T23:30")
        form.locator("[name=reason]").fill("PSU swap")
        form.locator("[name=token]").fill("wrong")
        form.locator("button").click()
        page.wait_for_selector("#mmsg .error")
        form.locator("[name=token]").fill("dashboard-test-token")
        form.locator("button").click()
        page.wait_for_selector("text=PSU swap")
        (window,) = get(f"{c.url}/api/maintenance?all=1")[1]["maintenance"]
        assert (window["host"], window["end"] - window["start"]) == ("web-01", 5400)
        page.screenshot(path=str(ARTIFACTS / "central-maintenance.png"), full_page=True)
        assert errors == []
    finally:
        for s in sims:
            s.close()
        c.stop()


def test_alerts_page_lists_alerts_live_and_adds_a_silence(broker, tmp_path, browser):
    from tests.alerts_peer import Recorder

    ARTIFACTS.mkdir(exist_ok=True)
    secret = tmp_path / "hook.secret"
    secret.write_text("k\n")
    secret.chmod(0o600)
    with Recorder() as hook:
        alerts = (
            '\n[alerts]\ndefault_receivers = ["hook"]\ngroup_wait = 0.2\n'
            f'[alerts.receivers.hook]\ntype = "webhook"\nurl = "{hook.url}/h"\n'
            f'secret_file = "{secret}"\n'
        )
        sim = SimAgent(broker.port, "dc1", "db-01", {"power": "redundant"})
        c = CentralThread(
            write_config(
                tmp_path / "central.toml",
                broker.port,
                str(tmp_path / "c.db"),
                mqtt_extra=alerts,
                token="dashboard-test-token",
            )
        ).start()
        try:
            wait_for(lambda: get(f"{c.url}/api/fleet")[1]["hosts"], what="db-01")
            page = browser.new_page(viewport={"width": 1280, "height": 720})
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(f"{c.url}/#/alerts")
            page.wait_for_selector("text=no active alerts")
            page.wait_for_selector("#live.on")
            sim.publish({"power": "degraded"})
            row = page.locator('tr[data-alert="dc1/db-01/group/power"]')
            row.wait_for()  # arrived through the live stream, no reload
            assert "degraded" in row.inner_text() and "warning" in row.inner_text()
            form = page.locator("#sf")
            form.locator("[name=host]").fill("db-*")
            form.locator("[name=comment]").fill("disk swap")
            form.locator("[name=token]").fill("dashboard-test-token")
            form.locator("button").click()
            page.wait_for_selector("#silences >> text=disk swap")
            (silence,) = get(f"{c.url}/api/silences")[1]["silences"]
            assert silence["matchers"] == {"host": ["db-*"]} and silence["createdBy"] == "dashboard"
            page.wait_for_selector(
                f'tr[data-alert="dc1/db-01/group/power"] >> text={silence["id"]}'
            )
            page.screenshot(path=str(ARTIFACTS / "central-alerts.png"), full_page=True)
            page.locator(f'[data-expire="{silence["id"]}"]').click()
            wait_for(lambda: not get(f"{c.url}/api/silences")[1]["silences"], what="expired")
            assert errors == []
        finally:
            sim.close()
            c.stop()


def summary_count(page, group: str, state: str) -> str:
    return page.locator(f'#summary td[data-group="{group}"][data-state="{state}"]').inner_text()


def test_the_fleet_summary_counts_every_host_and_follows_changes_live(broker, tmp_path, browser):
    ARTIFACTS.mkdir(exist_ok=True)
    sims = [
        SimAgent(broker.port, "dc1", f"web-{i:02d}", {"power": "redundant", "cooling": "redundant"})
        for i in range(3)
    ] + [SimAgent(broker.port, "dc2", "db-01", {"power": "failed"})]
    c = CentralThread(write_config(tmp_path / "central.toml", broker.port, str(tmp_path / "c.db")))
    c.start()
    try:
        wait_for(lambda: get(f"{c.url}/api/summary")[1]["hosts"] == 4, what="four hosts")
        page = browser.new_page(viewport={"width": 1280, "height": 720})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        # one host per page: the summary still counts all four
        page.goto(f"{c.url}/#/?limit=50&q=web-00")
        page.locator("#summary table").wait_for()
        assert page.locator("#matrix tbody tr").count() == 1
        assert summary_count(page, "", "redundant") == "3"
        assert summary_count(page, "", "failed") == "1"
        assert summary_count(page, "power", "redundant") == "3"
        assert summary_count(page, "power", "failed") == "1"
        assert summary_count(page, "cooling", "redundant") == "3"
        page.locator("#live.on").wait_for()
        page.evaluate("window.__noReload = 42")

        sims[2].publish({"power": "degraded"})  # a host not on this page turns degraded
        page.wait_for_function(
            """() => document.querySelector(
                '#summary td[data-group="power"][data-state="degraded"]')?.textContent === "1" """
        )
        assert summary_count(page, "power", "redundant") == "2"
        assert summary_count(page, "", "degraded") == "1"
        assert summary_count(page, "", "redundant") == "2"
        assert summary_count(page, "cooling", "redundant") == "3"
        page.screenshot(path=str(ARTIFACTS / "central-fleet-summary.png"), full_page=True)

        sims[0].die()  # offline: the host and its groups count as offline
        page.wait_for_function(
            """() => document.querySelector(
                '#summary td[data-group="cooling"][data-state="offline"]')?.textContent === "1" """
        )
        assert summary_count(page, "", "offline") == "1"
        assert page.evaluate("window.__noReload") == 42

        # one site's summary, live too
        page.goto(f"{c.url}/#/?site=dc2")
        page.wait_for_function(
            "() => document.querySelector('#summary thead th')?.textContent === 'dc2'"
        )
        assert summary_count(page, "", "failed") == "1"
        assert summary_count(page, "", "redundant") == "0"  # dc1's hosts are not counted
        assert page.locator('#summary td[data-state="unknown"]').count() == 0  # none anywhere
        sims[3].publish({"power": "redundant"})
        page.wait_for_function(
            """() => document.querySelector(
                '#summary td[data-group="power"][data-state="redundant"]')?.textContent === "1" """
        )
        assert summary_count(page, "power", "failed") == "0"
        assert errors == []
    finally:
        for s in sims:
            s.close()
        c.stop()

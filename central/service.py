"""The central service's composition root: history, fleet, ingest, MQTT, web, timers.

``Central(cfg).run()`` runs until SIGTERM/SIGINT (or ``stop``): the MQTT source hands each
message to the ingest in the event loop, a one-second tick looks for missed heartbeats, a
fast tick commits the history and sends live updates to the browsers.

To plug in alert routing, pass callables in ``subscribers``: each receives every
``state.Transition`` record (see docs/central.md, "Alert routing seam").
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Callable

from aiohttp import web

import hotspare_systemd as systemd

from .alerting import Alerting
from .alerts import AlertEngine
from .commands import Commander
from .config import Config
from .history import History, describe_url
from .ingest import Ingest, MqttSource, Subscriber
from .state import Fleet
from .web import Api, Hub

log = logging.getLogger("hotspare.central")

FLUSH_INTERVAL = 0.25  # live updates and history commits
PRUNE_INTERVAL = 6 * 3600.0  # history retention, also once at start


class Central:
    def __init__(
        self,
        cfg: Config,
        subscribers: list[Subscriber] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.cfg = cfg
        self.clock = clock
        self.history = History.open(cfg.database, cfg.database_password)
        self.history.replace_config_maintenance(
            ((w.site, w.host, w.group, w.start, w.end, w.reason) for w in cfg.maintenance),
            clock(),
        )
        self.fleet = Fleet(cfg.heartbeat_timeout, known=self.history.last_states())
        assert cfg.mqtt is not None
        self.ingest = Ingest(
            self.fleet, self.history, cfg.mqtt.topic_prefix, cfg.max_payload, subscribers, clock
        )
        self.hub = Hub()
        self.api = Api(
            self.fleet,
            self.history,
            self.ingest,
            self.hub,
            cfg.token,
            cfg.open_reads,
            cfg.sla_target,
            clock,
        )
        self.alerting = self._alerting()
        self.commander = self._commander()
        self.source: MqttSource | None = None
        self._sent: dict[tuple[str, str], tuple] = {}  # what the browsers last got per host
        self.port: int | None = None  # the bound port, once listening
        self._alerts_sent: dict | None = None  # what the browsers last got of the alerts
        self._summary_sent = -1  # the fleet summary's version the browsers last got

    def _alerting(self) -> Alerting | None:
        """Alert routing, when the configuration has an ``[alerts]`` section."""
        settings = self.cfg.sections.get("alerts")
        if settings is None:
            return None
        alerting = Alerting(AlertEngine(settings, clock=self.clock), self.history, self.clock)
        alerting.seed(self.history.last_transitions())
        self.ingest.subscribers.append(alerting.on_transition)
        self.ingest.event_subscribers.append(alerting.on_event)
        self.api.alerting = alerting
        return alerting

    def _commander(self) -> Commander | None:
        """Signed commands from the API, when the configuration has a ``[commands]`` section."""
        settings = self.cfg.sections.get("commands")
        if settings is None:
            return None
        assert self.cfg.mqtt is not None
        commander = Commander(settings, self.cfg.mqtt.topic_prefix, self._publish, self.clock)
        self.ingest.event_subscribers.append(commander.on_event)
        self.api.commander = commander
        return commander

    def _publish(self, topic: str, payload: bytes) -> bool:
        """Publish at QoS 1 on the service's broker connection; False while disconnected."""
        source = self.source
        if source is None or not source.connected.is_set():
            return False
        return source.publish(topic, payload)

    async def run(self, stop: asyncio.Event | None = None) -> int:
        loop = asyncio.get_running_loop()
        stop = stop or asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, stop.set)
        runner = web.AppRunner(self.api.app(), access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, self.cfg.listen_host, self.cfg.listen_port)
        await site.start()
        self.port = runner.addresses[0][1]
        log.info(
            "dashboard on http://%s:%d/ (reads %s, changes %s); history %s",
            self.cfg.listen_host,
            self.port,
            "open" if self.cfg.open_reads else "need the token",
            "need the token" if self.cfg.token else "off",
            describe_url(self.cfg.database),
        )
        assert self.cfg.mqtt is not None
        self.source = MqttSource(self.cfg.mqtt, self.ingest.handle, self._broker_changed)
        self.api.broker = self.source.status
        self.source.start()
        tasks = [
            asyncio.create_task(self._heartbeats()),
            asyncio.create_task(self._flush()),
            asyncio.create_task(self._prune()),
            asyncio.create_task(self._watchdog()),
        ]
        if self.alerting is not None:
            tasks.append(asyncio.create_task(self.alerting.engine.run(), name="alerts"))
        # under systemd (Type=notify): ready once the dashboard listens and the broker
        # client runs (it connects, and reconnects, on its own)
        systemd.notify(
            "READY=1",
            f"STATUS=dashboard on http://{self.cfg.listen_host}:{self.port}/, "
            f"broker {self.cfg.mqtt.url}",
        )
        try:
            await stop.wait()
        finally:
            systemd.notify("STOPPING=1")
            for t in tasks:
                t.cancel()
            self.source.stop()
            self.hub.close()
            await runner.cleanup()
            self._flush_once()
            self.history.close()
            log.info("stopped")
        return 0

    async def _watchdog(self) -> None:
        """WATCHDOG=1 from the event loop (WatchdogSec=): a hung loop gets the unit restarted."""
        interval = systemd.watchdog_interval()
        if interval is None:
            return
        while True:
            systemd.notify("WATCHDOG=1")
            await asyncio.sleep(interval)

    async def _heartbeats(self) -> None:
        """Missed heartbeats are looked for only while the broker is connected: a service
        that cannot listen hears no host, which says nothing about the hosts."""
        while True:
            await asyncio.sleep(1.0)
            if self.source is not None and self.source.connected.is_set():
                self.ingest.tick()

    def _broker_changed(self, connected: bool) -> None:
        assert self.source is not None
        if connected and self.source.client.connects > 1:
            self.fleet.resume(self.clock())
        self.hub.send("broker", self.source.status())

    async def _prune(self) -> None:
        if not self.cfg.retention_days:
            return
        while True:
            cutoff = self.clock() - self.cfg.retention_days * 86400
            try:
                self.history.commit()
                removed = self.history.prune(cutoff)
                if any(removed.values()):
                    log.info(
                        "history older than %g days removed: %s", self.cfg.retention_days, removed
                    )
            except Exception:
                log.exception("pruning the history failed")
            await asyncio.sleep(PRUNE_INTERVAL)

    async def _flush(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_INTERVAL)
            try:
                self._flush_once()
            except Exception:
                log.exception("flushing the history or the live updates failed")

    def _flush_once(self) -> None:
        self.history.commit()
        changed, self.ingest.changed_hosts = self.ingest.changed_hosts, set()
        recent, self.ingest.recent = self.ingest.recent, []
        summaries = []
        for key in sorted(changed):
            host = self.fleet.hosts.get(key)
            if host is None:
                continue
            summary = host.summary()
            # a heartbeat changes only last_heard: not worth a message to every browser
            seen = (
                summary["state"],
                summary["online"],
                summary["role"],
                tuple(summary["groups"].items()),
            )
            if self._sent.get(key) != seen:
                self._sent[key] = seen
                summaries.append(summary)
        if summaries:
            self.hub.send("hosts", summaries)
        summary = self.fleet.summary
        if summary.version != self._summary_sent:
            # the whole fleet's counts and those of each site that changed: a few hundred
            # bytes, so every page patches its summary without asking again
            self._summary_sent = summary.version
            sites, summary.changed_sites = summary.changed_sites, set()
            if self.hub.clients:
                self.hub.send(
                    "summary",
                    {
                        "fleet": summary.as_dict(),
                        "sites": {s: summary.as_dict(s) for s in sorted(sites)},
                    },
                )
        for r in recent:
            self.hub.send("transition", r.as_dict())
        if self.alerting is not None and self.hub.clients:
            view = self.alerting.view_if_changed()
            if view is not None and view != self._alerts_sent:
                self._alerts_sent = view
                self.hub.send("alerts", view)

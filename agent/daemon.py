"""The agent daemon: the one composition root.

Pollers feed the Evaluator; every poll result and a one-second tick re-evaluate the
host; what changed goes out as retained state and as events (through the outbox);
systemd hears READY, RELOADING, STOPPING and watchdog pings from the main loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt

import hotspare_systemd as systemd
from collectors.base import Snapshot

from . import config as config_mod
from . import traps_out, wire
from .config import Config, ConfigError
from .evaluate import Evaluator, Policy, StateMap, state_map, transitions
from .events import Events
from .model import ComponentHealth, HostHealth, Role
from .outbox import Outbox
from .poller import Poller, spread_probes

log = logging.getLogger("hotspare.agent")

EXIT_UNAVAILABLE = 69  # sysexits.h: a service the agent must provide cannot start
EXIT_CANTCREAT = 73  # sysexits.h: the state directory cannot be written
TICK = 1.0  # seconds between re-evaluations without a poll (staleness, heartbeat, watchdog)


def policy_for(cfg: Config) -> Policy:
    a = cfg.agent
    slowest = max((c.interval for c in cfg.collectors), default=a.interval)
    longest = max((c.timeout for c in cfg.collectors), default=a.timeout)
    # later than a timed-out poll can report (interval + timeout): staleness is the backstop
    stale = a.stale_after or 3 * slowest + longest
    return Policy(rise=a.rise, fall=a.fall, dwell=a.dwell, stale_after=stale)


def build_pollers(
    cfg: Config, on_result: Callable[..., None], clock: Callable[[], float]
) -> list[Poller]:
    """One poller per configured collector instance (collector modules imported here)."""
    pollers = []
    for c in cfg.collectors:
        collector = config_mod.collector_module(c.type).create(c.name, c.options)
        pollers.append(
            Poller(c.name, collector, c.interval, c.timeout, cfg.agent.jitter, on_result, clock)
        )
    spread_probes(pollers)
    return pollers


async def poll_all_once(cfg: Config, clock: Callable[[], float] = time.time) -> HostHealth:
    """Poll every collector once, concurrently, and evaluate: ``hotspare status`` and ``check``."""
    evaluator = Evaluator(policy_for(cfg), cfg.groups)

    def on_result(name: str, snapshot: Snapshot | None, error: str | None, now: float) -> None:
        if snapshot is not None:
            evaluator.observe(name, snapshot, now)
        else:
            evaluator.fail(name, error or "failed", now)
            log.warning("collector %s: %s", name, error)

    pollers = build_pollers(cfg, on_result, clock)
    try:
        await asyncio.gather(*(p.poll_once() for p in pollers))
    finally:
        for p in pollers:
            p.close()
    return evaluator.evaluate(cfg.agent.site, cfg.agent.host, clock())


class Agent:
    def __init__(
        self, cfg: Config, config_path: str, clock: Callable[[], float] = time.time
    ) -> None:
        self.cfg = cfg
        self.config_path = config_path
        self.clock = clock
        self.evaluator = Evaluator(policy_for(cfg), cfg.groups)
        self.health: HostHealth | None = None
        self._reported: StateMap | None = None  # states last reported, kept across restarts
        self.pollers: list[Poller] = []
        self._poller_tasks: list[asyncio.Task[None]] = []
        self._retained: dict[str, Any] = {}  # topic -> key of what was last published there
        self._topics: dict[tuple[str, str], str] = {}
        # retained topics of gone groups/components to empty -> the last attempt, if any
        self._to_clear: dict[str, mqtt.MQTTMessageInfo | None] = {}
        self._health_summary: tuple[Any, ...] | None = None
        self._last_health_publish = 0.0
        self._ready = False
        self._stop = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._drain: asyncio.Task[None] | None = None
        self.outbox: Outbox | None = None
        self.events = Events(cfg.agent.event_socket_path)
        self.publisher = None
        self.metrics = None
        self.traps = traps_out.from_config(cfg)  # SNMP notifications of transitions
        self.promotion: Any = None  # agent.promotion.runtime.Runtime when [promotion] is used

    # --- topics ---------------------------------------------------------------------
    @property
    def base(self) -> str:
        return wire.base_topic(self.cfg.mqtt.topic_prefix, self.cfg.agent.site, self.cfg.agent.host)

    def _seq(self) -> int:
        assert self.outbox is not None
        return self.outbox.next_seq()

    # --- lifecycle ------------------------------------------------------------------
    async def run(self) -> int:
        state_dir = Path(self.cfg.agent.state_dir)
        try:
            self.outbox = Outbox(state_dir / "outbox.sqlite3", self.cfg.mqtt.outbox_max)
        except Exception as e:
            log.error("cannot open the outbox in %s: %s", state_dir, e)
            return EXIT_CANTCREAT
        self._reported = _load_reported(self.outbox.load("reported"))
        loop = asyncio.get_running_loop()
        for sig, handler in (
            (signal.SIGTERM, self.stop),
            (signal.SIGINT, self.stop),
            (signal.SIGHUP, self.reload),
        ):
            loop.add_signal_handler(sig, handler)
        try:
            pollers = build_pollers(self.cfg, self._on_result, self.clock)
        except (ValueError, OSError) as e:
            log.error("%s: cannot set up collectors: %s", self.config_path, e)
            return config_mod.EXIT_CONFIG
        try:
            self._serve_metrics()
        except OSError as e:
            log.error("cannot serve metrics on %s: %s", self.cfg.prometheus_listen, e)
            return EXIT_UNAVAILABLE
        try:
            self._start_promotion()
        except ValueError as e:
            log.error("%s: promotion: %s", self.config_path, e)
            return config_mod.EXIT_CONFIG
        self._start_publisher()
        self._start_pollers(pollers)
        self._event("started", f"hotspare agent started with {len(self.pollers)} collector(s)")
        main = asyncio.create_task(self._main_loop())
        await self._stop.wait()
        systemd.notify("STOPPING=1")
        log.info("stopping")
        main.cancel()
        self.events.stop(loop)
        self._stop_pollers()
        if self.promotion is not None:
            self.promotion.close()
        assert self.publisher is not None and self._drain is not None
        self._drain.cancel()
        await self.publisher.stop(self._status_payload("offline"))
        if self.metrics is not None:
            self.metrics.shutdown()
        self.outbox.close()
        return 0

    def stop(self) -> None:
        self._stop.set()

    def _serve_metrics(self) -> None:
        """(Re)start the Prometheus endpoint as configured; the library loads only when used."""
        if self.metrics is not None:
            self.metrics.shutdown()
            self.metrics = None
        if self.cfg.prometheus_listen:
            from .metrics import serve

            self.metrics = serve(self, self.cfg.prometheus_listen)

    def _start_promotion(self) -> None:
        """The promotion engine, when [promotion] is configured (key files are read here)."""
        settings = self.cfg.promotion
        if settings is None or not settings.active:
            return
        from .promotion.runtime import Runtime

        assert self.outbox is not None
        outbox = self.outbox
        a = self.cfg.agent
        self.promotion = Runtime(
            settings,
            a.site,
            a.host,
            self.cfg.mqtt.topic_prefix,
            self._enqueue,
            self._seq,
            self.clock,
            save=lambda blob: outbox.save("promotion", blob),
            saved=outbox.load("promotion"),
        )

    def _start_publisher(self) -> None:
        """Connect (a new client after a reload changed the broker) and drain the outbox."""
        from .publisher import Publisher

        assert self.outbox is not None
        client_id = (
            self.cfg.mqtt.client_id or f"hotspare-{self.cfg.agent.site}-{self.cfg.agent.host}"
        )
        self.publisher = Publisher(
            self.cfg.mqtt,
            client_id,
            f"{self.base}/status",
            self._status_payload("offline"),
            self.outbox,
            self._on_connect,
        )
        self.publisher.start()
        if self._drain is not None:
            self._drain.cancel()
        self._drain = asyncio.create_task(self.publisher.drain())

    def _start_pollers(self, pollers: list[Poller]) -> None:
        self.pollers = pollers
        # event sources (netlink, udev, mdadm) trigger the pollers of the types they concern
        types = [c.type for c in self.cfg.collectors]
        self.events.update(asyncio.get_running_loop(), zip(types, pollers, strict=True))
        for p in pollers:  # event sources (SNMP traps) re-poll their collector at once
            bind = getattr(p.collector, "bind_trigger", None)
            if bind is not None:
                try:
                    bind(p.trigger)
                except OSError as e:
                    log.error("collector %s: cannot listen for its events: %s", p.name, e)
        self._poller_tasks = [
            asyncio.create_task(p.run(), name=f"poll-{p.name}") for p in self.pollers
        ]
        self._ready = False
        self._spawn(self._become_ready(self.pollers))

    def _spawn(self, coro: Any) -> None:
        """Run a background task, keeping a reference until it is done."""
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _stop_pollers(self) -> None:
        for t in self._poller_tasks:
            t.cancel()
        for p in self.pollers:
            p.close()

    async def _become_ready(self, pollers: list[Poller]) -> None:
        """Publish the first health once every collector polled once (or the wait ran out)."""
        if pollers:
            wait = max(p.timeout for p in pollers) + self.cfg.agent.jitter + 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    asyncio.gather(*(p.polled_once.wait() for p in pollers)), wait
                )
        if pollers is not self.pollers:
            return  # a reload replaced them meanwhile
        self._ready = True
        self.refresh()
        systemd.notify(
            "READY=1", f"STATUS=watching {len(self.health.groups) if self.health else 0} group(s)"
        )

    async def _main_loop(self) -> None:
        watchdog = systemd.watchdog_interval()
        tick = min(TICK, watchdog) if watchdog else TICK
        while True:
            await asyncio.sleep(tick)
            if watchdog:
                systemd.notify("WATCHDOG=1")
            if self._ready:
                self.refresh()

    # --- config reload --------------------------------------------------------------
    def reload(self) -> None:
        systemd.reloading()
        try:
            new = config_mod.load(self.config_path)
            pollers = build_pollers(new, self._on_result, self.clock)
        except (ConfigError, ValueError, OSError) as e:
            log.error("reload rejected, keeping the running configuration: %s", e)
            self._event("config_rejected", f"reload rejected, running configuration kept: {e}")
            systemd.notify("READY=1", "STATUS=reload rejected: running configuration kept")
            return
        if new.promotion != self.cfg.promotion:
            log.warning("[promotion] changed: the change takes effect when the agent restarts")
            self._event("config_reloaded", "[promotion] changed: takes effect at the next restart")
            new = dataclasses.replace(new, promotion=self.cfg.promotion)
        old, self.cfg = self.cfg, new
        if self.traps is not None:
            self.traps.close()
        self.traps = traps_out.from_config(new)
        log.info("configuration reloaded from %s", ", ".join(new.files))
        self.evaluator.policy = policy_for(new)
        self.evaluator.configured_groups = new.groups
        self._stop_pollers()
        gone = {c.name for c in old.collectors} - {c.name for c in new.collectors}
        for name in gone:
            self.evaluator.forget(name)
        if (old.mqtt, old.agent.site, old.agent.host) != (new.mqtt, new.agent.site, new.agent.host):
            previous = self.publisher
            assert previous is not None
            self._retained.clear()
            self._topics.clear()  # the base topic may have changed
            self._health_summary = None
            self._start_publisher()
            self._spawn(previous.stop(self._status_payload("offline")))
        if old.prometheus_listen != new.prometheus_listen:
            try:
                self._serve_metrics()
            except OSError as e:
                log.error("cannot serve metrics on %s: %s", new.prometheus_listen, e)
        self._start_pollers(pollers)
        self._event(
            "config_reloaded", f"configuration reloaded: {len(new.collectors)} collector(s)"
        )
        systemd.notify("READY=1", "STATUS=configuration reloaded")

    # --- evaluation and publishing --------------------------------------------------
    def _on_result(
        self, name: str, snapshot: Snapshot | None, error: str | None, now: float
    ) -> None:
        if snapshot is not None:
            self.evaluator.observe(name, snapshot, now)
        else:
            self.evaluator.fail(name, error or "failed", now)
        if self._ready:
            self.refresh()

    def refresh(self) -> None:
        """Re-evaluate; send events for transitions and retained state for what changed."""
        now = self.clock()
        a = self.cfg.agent
        role = Role(self.promotion.role()) if self.promotion is not None else Role.NONE
        health = self.evaluator.evaluate(a.site, a.host, now, role)
        reported = state_map(health)
        for t in transitions(self._reported, health, reported):
            log.info(
                "%s %s: %s -> %s %s",
                t.scope,
                t.id,
                t.old or "(new)",
                t.new or "(gone)",
                f"({t.reason})" if t.reason else "",
            )
            event = wire.transition_event(a.site, a.host, t, self._seq(), now)
            self._enqueue(event)
            if self.traps is not None:
                margins = {g.id: g.healthy - g.required for g in health.groups}
                self.traps.send(t, event["seq"], margins.get(t.id) if t.scope == "group" else None)
            if t.new is None and t.scope in ("group", "component"):
                self._to_clear.setdefault(f"{self.base}/{t.scope}s/{wire.id_topic(t.id)}", None)
        self.health = health
        if self.promotion is not None:
            assert self.publisher is not None
            self.promotion.update(reported, self.publisher.connected.is_set())
        if reported != self._reported:
            self._reported = reported
            assert self.outbox is not None
            self.outbox.save(
                "reported", json.dumps(sorted([*k, v] for k, v in reported.items())).encode()
            )
        self._publish_state(health, now)

    def _enqueue(self, event: dict[str, Any]) -> None:
        assert self.publisher is not None
        self.publisher.enqueue(f"{self.base}/events", wire.encode(event))

    def _event(self, kind: str, message: str) -> None:
        a = self.cfg.agent
        self._enqueue(wire.agent_event(a.site, a.host, kind, message, self._seq(), self.clock()))

    def _publish_state(self, health: HostHealth, now: float, force: bool = False) -> None:
        """Publish retained topics whose content changed (all of them when ``force``).

        Runs after every poll, so it compares cheap keys (the frozen GroupStatus, a tuple of a
        component's fields without its observation time) and builds payloads only for what
        changed.
        """
        current: dict[str, Any] = {}
        for g in health.groups:
            topic = self._topic("groups", g.id)
            current[topic] = g
            if force or self._retained.get(topic) != g:
                self._publish(topic, wire.state_message(health, wire.group(g), self._seq(), now))
        for c in health.components:
            topic, key = self._topic("components", c.id), _component_key(c)
            current[topic] = key
            if force or self._retained.get(topic) != key:
                self._publish(
                    topic, wire.state_message(health, wire.component(c), self._seq(), now)
                )
        for t in self._retained:
            if t not in current:
                self._to_clear.setdefault(t, None)
        self._retained = current
        # An empty retained message clears a gone group or component. It is kept until the
        # broker acknowledges it and sent again on every (re)connection, so a group that
        # vanished during an outage, between two runs, or just as the connection died
        # unnoticed is cleared too.
        for topic, sent in list(self._to_clear.items()):
            if topic in current or (sent is not None and sent.is_published()):
                del self._to_clear[topic]
            elif sent is None or force:
                self._to_clear[topic] = self._publish_raw(topic, b"")
        summary = (
            health.state,
            health.role,
            health.groups,
            tuple(current.values()),
            health.collectors,
        )
        heartbeat_due = now - self._last_health_publish >= self.cfg.agent.heartbeat
        if force or heartbeat_due or summary != self._health_summary:
            self._health_summary = summary
            self._last_health_publish = now
            self._publish(f"{self.base}/health", wire.health(health, self._seq(), now))

    def _topic(self, kind: str, cid: str) -> str:
        topic = self._topics.get((kind, cid))
        if topic is None:
            topic = self._topics[kind, cid] = f"{self.base}/{kind}/{wire.id_topic(cid)}"
        return topic

    def _publish(self, topic: str, payload: dict[str, Any]) -> None:
        self._publish_raw(topic, wire.encode(payload))

    def _publish_raw(self, topic: str, payload: bytes) -> mqtt.MQTTMessageInfo | None:
        assert self.publisher is not None
        return self.publisher.publish(topic, payload, retain=True, qos=1)

    def _status_payload(self, state: str) -> bytes:
        return wire.encode(wire.status(state, self._seq(), self.clock()))

    def _on_connect(self) -> None:
        """Birth message, then every retained topic again (the broker may have lost them)."""
        self._publish_raw(f"{self.base}/status", self._status_payload("online"))
        if self.promotion is not None:
            assert self.publisher is not None
            self.promotion.on_connect(self.publisher.client)
        if self.health is not None:
            self._publish_state(self.health, self.clock(), force=True)


def _load_reported(blob: bytes | None) -> StateMap | None:
    """The states a previous run reported last; None when there was none (or it is unreadable)."""
    if not blob:
        return None
    try:
        return {(scope, cid): state for scope, cid, state in json.loads(blob)}
    except (ValueError, TypeError):
        log.warning("the states reported before the restart are unreadable; starting afresh")
        return None


def _component_key(c: ComponentHealth) -> tuple[Any, ...]:
    """What a component's retained message says, without its observation time."""
    return (c.kind, c.state, c.since, c.detail, c.value, c.unit, c.source)

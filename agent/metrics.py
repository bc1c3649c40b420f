"""Optional Prometheus endpoint: group states and margins, collector success and duration.

Values are read from the running agent at scrape time; nothing is kept twice.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client import start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector, CollectorRegistry

from collectors.base import State

from .model import GroupState

if TYPE_CHECKING:
    from .daemon import Agent


class AgentCollector(Collector):
    def __init__(self, agent: Agent) -> None:
        self.agent = agent

    def collect(self):
        health = self.agent.health
        state = GaugeMetricFamily(
            "hotspare_group_state",
            "1 for the group's current state.",
            labels=["group", "kind", "state"],
        )
        margin = GaugeMetricFamily(
            "hotspare_group_margin",
            "Members the group can still lose and serve (0: no redundancy left; negative: failed).",
            labels=["group"],
        )
        healthy = GaugeMetricFamily("hotspare_group_healthy", "Members serving.", labels=["group"])
        required = GaugeMetricFamily(
            "hotspare_group_required", "Members required.", labels=["group"]
        )
        comp = GaugeMetricFamily(
            "hotspare_component_state",
            "1 for the component's current state.",
            labels=["component", "kind", "state"],
        )
        for g in health.groups if health else ():
            for s in GroupState:
                state.add_metric([g.id, g.kind.value, s.value], 1.0 if g.state == s else 0.0)
            margin.add_metric([g.id], g.margin)
            healthy.add_metric([g.id], g.healthy)
            required.add_metric([g.id], g.required)
        for c in health.components if health else ():
            for s in State:
                comp.add_metric([c.id, c.kind.value, s.value], 1.0 if c.state == s else 0.0)
        yield from (state, margin, healthy, required, comp)

        up = GaugeMetricFamily(
            "hotspare_collector_up",
            "1 when the collector's last poll succeeded.",
            labels=["collector"],
        )
        duration = GaugeMetricFamily(
            "hotspare_collector_duration_seconds",
            "Duration of the last poll.",
            labels=["collector"],
        )
        polls = CounterMetricFamily(
            "hotspare_collector_polls", "Polls by result.", labels=["collector", "result"]
        )
        for p in self.agent.pollers:
            up.add_metric([p.name], 0.0 if p.stats.consecutive_failures else 1.0)
            duration.add_metric([p.name], p.stats.last_duration)
            polls.add_metric([p.name, "success"], p.stats.successes)
            polls.add_metric([p.name, "failure"], p.stats.failures)
        yield from (up, duration, polls)

        outbox = GaugeMetricFamily("hotspare_outbox_events", "Events waiting for the broker.")
        outbox.add_metric([], len(self.agent.outbox) if self.agent.outbox else 0)
        connected = GaugeMetricFamily("hotspare_mqtt_connected", "1 while connected to the broker.")
        pub = self.agent.publisher
        connected.add_metric([], 1.0 if pub is not None and pub.connected.is_set() else 0.0)
        yield from (outbox, connected)


def serve(agent: Agent, listen: str):
    """Start the HTTP endpoint; returns the server (``shutdown()`` stops it)."""
    host, _, port = listen.rpartition(":")
    registry = CollectorRegistry()
    registry.register(AgentCollector(agent))
    server, _thread = start_http_server(int(port), addr=host.strip("[]"), registry=registry)
    return server

"""Alertmanager API v2: POST /api/v2/alerts, so an existing Alertmanager routes on.

Alertmanager resolves an alert by itself once its ``endsAt`` has passed, so firing
alerts are posted with ``endsAt`` four ``resend_interval``s ahead and re-posted every
``resend_interval`` while they fire: if the central service stops, Alertmanager resolves
them after a while instead of keeping stale alerts forever. A resolution is posted with
``endsAt`` = when the alert resolved.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from central.alerts.config import ReceiverConfig
from central.alerts.model import Alert, AlertKey, Notification, Status, Subject, host_url
from central.alerts.receivers.http import DeliveryError, post, rfc3339

log = logging.getLogger(__name__)

ALERTNAMES = {
    Subject.GROUP: "HotspareGroupState",
    Subject.HOST: "HotspareHostOffline",
    Subject.ACTION: "HotspareActionResult",
}


def identity(alert: Alert) -> dict[str, str]:
    """The labels Alertmanager identifies the alert by: what stays while it fires.

    The state and flapping go into annotations: a label that changes would make
    Alertmanager see a new alert and keep the old one firing. Empty values are left out.
    """
    labels = {"alertname": ALERTNAMES[alert.subject]}
    labels.update({k: v for k, v in alert.labels.items() if v and k != "state"})
    return labels


def alert_payload(alert: Alert, now: float, ttl: float, external_url: str) -> dict[str, Any]:
    """One element of the POST body (the ``postableAlert`` of Alertmanager's OpenAPI)."""
    annotations = {"summary": alert.summary, "state": alert.state or "gone"}
    if alert.flapping:
        annotations["flapping"] = "true"
    if alert.detail:
        annotations["description"] = alert.detail
    if alert.status is Status.RESOLVED:
        ends = alert.ends_at if alert.ends_at is not None else now
    elif alert.one_shot:
        ends = alert.starts_at + ttl
    else:
        ends = now + ttl
    out: dict[str, Any] = {
        "labels": identity(alert),
        "annotations": annotations,
        "startsAt": rfc3339(alert.starts_at),
        "endsAt": rfc3339(max(ends, alert.starts_at)),
    }
    if external_url:
        out["generatorURL"] = host_url(external_url, alert.labels)
    return out


class AlertmanagerReceiver:
    def __init__(
        self,
        name: str,
        url: str,
        *,
        send_resolved: bool = True,
        resend_interval: float = 60.0,
        timeout: float = 10.0,
        ca_file: str = "",
        external_url: str = "",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.name, self.send_resolved = name, send_resolved
        self.endpoint = url.rstrip("/") + "/api/v2/alerts"
        self.resend_interval, self.timeout, self.ca_file = resend_interval, timeout, ca_file
        self.external_url, self.clock = external_url, clock
        self._firing: dict[AlertKey, Alert] = {}

    async def send(self, notification: Notification) -> None:
        alerts = list(notification.alerts)
        now = self.clock()
        for alert in notification.alerts:
            previous = self._firing.pop(alert.key, None)
            if previous is not None and identity(previous) != identity(alert):
                # the severity changed: Alertmanager knows the old labels as another alert
                alerts.append(replace(previous, status=Status.RESOLVED, ends_at=now))
            if alert.status is Status.FIRING and not alert.one_shot:
                self._firing[alert.key] = alert
        await self._post(alerts)

    async def _post(self, alerts: tuple[Alert, ...] | list[Alert]) -> None:
        if not alerts:
            return
        now = self.clock()
        ttl = 4 * self.resend_interval
        body = json.dumps([alert_payload(a, now, ttl, self.external_url) for a in alerts])
        status, _ = await post(
            self.endpoint,
            body.encode(),
            {"Content-Type": "application/json"},
            self.timeout,
            self.ca_file,
        )
        if status != 200:
            raise DeliveryError(f"HTTP {status} (expected 200)")

    async def background(self) -> None:
        """Re-post the firing alerts every ``resend_interval`` so they do not expire."""
        while True:
            await asyncio.sleep(self.resend_interval)
            try:
                await self._post(list(self._firing.values()))
            except DeliveryError as e:
                log.warning("receiver %s: re-posting firing alerts failed: %s", self.name, e)


def create(rc: ReceiverConfig, external_url: str) -> AlertmanagerReceiver:
    return AlertmanagerReceiver(
        rc.name,
        rc.options["url"],
        send_resolved=rc.send_resolved,
        resend_interval=rc.options["resend_interval"],
        timeout=rc.timeout,
        ca_file=rc.options["ca_file"],
        external_url=external_url,
    )

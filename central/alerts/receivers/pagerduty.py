"""PagerDuty Events API v2: one trigger or resolve event per alert.

``dedup_key`` is the alert's fingerprint (a hash of site, host and group), stable over
restarts, so a re-sent trigger updates the open incident and the resolve closes it.
The endpoint answers 202 Accepted.
"""

from __future__ import annotations

import json
from typing import Any

from central.alerts.config import ReceiverConfig
from central.alerts.model import Alert, Notification, Severity, Status, host_url
from central.alerts.receivers.http import DeliveryError, post, rfc3339

CLIENT = "hotspare"
PD_SEVERITY = {
    Severity.CRITICAL: "critical",
    Severity.WARNING: "warning",
    Severity.INFO: "info",
    Severity.NONE: "info",
}


def event(alert: Alert, routing_key: str, external_url: str = "") -> dict[str, Any]:
    if alert.status is Status.RESOLVED:
        return {
            "routing_key": routing_key,
            "event_action": "resolve",
            "dedup_key": alert.key.fingerprint,
        }
    out: dict[str, Any] = {
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": alert.key.fingerprint,
        "payload": {
            "summary": alert.summary[:1024],
            "source": alert.labels["host"],
            "severity": PD_SEVERITY[alert.severity],
            "timestamp": rfc3339(alert.starts_at),
            "component": alert.labels["group"] or alert.labels["host"],
            "group": alert.labels["site"],
            "class": alert.labels["kind"],
            "custom_details": {
                "state": alert.state,
                "detail": alert.detail,
                "flapping": alert.flapping,
                "key": str(alert.key),
            },
        },
        "client": CLIENT,
    }
    if external_url:
        out["client_url"] = host_url(external_url, alert.labels)
    return out


class PagerDutyReceiver:
    def __init__(
        self,
        name: str,
        routing_key: str,
        *,
        url: str,
        send_resolved: bool = True,
        timeout: float = 10.0,
        ca_file: str = "",
        external_url: str = "",
    ) -> None:
        self.name, self._routing_key, self.url = name, routing_key, url
        self.send_resolved, self.timeout, self.ca_file = send_resolved, timeout, ca_file
        self.external_url = external_url

    def __repr__(self) -> str:
        return f"PagerDutyReceiver({self.name!r})"

    async def send(self, notification: Notification) -> None:
        for alert in notification.alerts:
            body = json.dumps(event(alert, self._routing_key, self.external_url)).encode()
            status, _ = await post(
                self.url, body, {"Content-Type": "application/json"}, self.timeout, self.ca_file
            )
            if status not in (200, 202):
                raise DeliveryError(f"HTTP {status} (expected 202)")


def create(rc: ReceiverConfig, external_url: str) -> PagerDutyReceiver:
    return PagerDutyReceiver(
        rc.name,
        rc.secret,
        url=rc.options["url"],
        send_resolved=rc.send_resolved,
        timeout=rc.timeout,
        ca_file=rc.options["ca_file"],
        external_url=external_url,
    )

"""Receivers: each turns a Notification into one peer's format and delivers it.

A receiver has ``name``, ``send_resolved`` and ``async send(notification)``, which
raises ``DeliveryError`` when the peer did not take it (the dispatcher retries). The
payload builders are pure functions beside them, tested against the peers' documented
formats. ``build(config)`` makes one receiver per ``[alerts.receivers.NAME]``.
"""

from __future__ import annotations

from typing import Protocol

from central.alerts.config import AlertsConfig
from central.alerts.model import Notification


class Receiver(Protocol):
    name: str
    send_resolved: bool

    async def send(self, notification: Notification) -> None: ...


def build(config: AlertsConfig) -> dict[str, Receiver]:
    from central.alerts.receivers import alertmanager, email, pagerduty, slack, webhook

    modules = {
        "alertmanager": alertmanager,
        "webhook": webhook,
        "slack": slack,
        "pagerduty": pagerduty,
        "email": email,
    }
    return {
        name: modules[rc.type].create(rc, config.external_url)
        for name, rc in config.receivers.items()
    }

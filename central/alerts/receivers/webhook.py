"""Generic webhook: the notification as JSON, signed with HMAC-SHA256.

The header ``X-Hotspare-Signature: sha256=<hex>`` is the HMAC-SHA256 of the exact body
bytes with the shared secret; a receiver recomputes it and compares in constant time
(``hmac.compare_digest``). The body's ``ts`` lets it reject replays.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from central.alerts.config import ReceiverConfig
from central.alerts.model import Alert, Notification, host_url
from central.alerts.receivers.http import post, rfc3339

VERSION = 1
SIGNATURE_HEADER = "X-Hotspare-Signature"


def alert_dict(alert: Alert, external_url: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": alert.key.fingerprint,
        "key": str(alert.key),
        "status": alert.status.value,
        "labels": dict(alert.labels),
        "summary": alert.summary,
        "detail": alert.detail,
        "startsAt": rfc3339(alert.starts_at),
        "endsAt": rfc3339(alert.ends_at) if alert.ends_at is not None else None,
        "flapping": alert.flapping,
        "oneShot": alert.one_shot,
    }
    if external_url:
        out["url"] = host_url(external_url, alert.labels)
    return out


def payload(n: Notification, external_url: str = "") -> dict[str, Any]:
    return {
        "version": VERSION,
        "receiver": n.receiver,
        "status": "firing" if n.firing else "resolved",
        "title": n.title,
        "groupKey": n.group_key,
        "groupLabels": dict(n.group_labels),
        "repeat": n.repeat,
        "ts": n.ts,
        "alerts": [alert_dict(a, external_url) for a in n.alerts],
    }


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class WebhookReceiver:
    def __init__(
        self,
        name: str,
        url: str,
        secret: str,
        *,
        send_resolved: bool = True,
        timeout: float = 10.0,
        ca_file: str = "",
        external_url: str = "",
    ) -> None:
        self.name, self.url, self._secret = name, url, secret
        self.send_resolved, self.timeout, self.ca_file = send_resolved, timeout, ca_file
        self.external_url = external_url

    def __repr__(self) -> str:
        return f"WebhookReceiver({self.name!r})"

    async def send(self, notification: Notification) -> None:
        body = json.dumps(payload(notification, self.external_url)).encode()
        headers = {"Content-Type": "application/json", SIGNATURE_HEADER: sign(self._secret, body)}
        await post(self.url, body, headers, self.timeout, self.ca_file)


def create(rc: ReceiverConfig, external_url: str) -> WebhookReceiver:
    return WebhookReceiver(
        rc.name,
        rc.options["url"],
        rc.secret,
        send_resolved=rc.send_resolved,
        timeout=rc.timeout,
        ca_file=rc.options["ca_file"],
        external_url=external_url,
    )

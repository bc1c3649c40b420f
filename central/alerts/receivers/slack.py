"""Slack incoming webhook: ``text`` (the fallback for notifications) plus Block Kit blocks.

The webhook URL is the credential, so it is read from ``url_file`` and never logged.
A message holds at most 50 blocks; beyond ``MAX_ALERTS`` alerts a last block says how
many more there are.
"""

from __future__ import annotations

import json
from typing import Any

from central.alerts.config import ReceiverConfig
from central.alerts.model import Alert, Notification, Severity, Status, host_url
from central.alerts.receivers.http import post

MAX_ALERTS = 20
EMOJI = {
    Severity.CRITICAL: ":red_circle:",
    Severity.WARNING: ":large_orange_circle:",
    Severity.INFO: ":large_blue_circle:",
    Severity.NONE: ":white_circle:",
}


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _line(alert: Alert, external_url: str) -> str:
    mark = ":white_check_mark:" if alert.status is Status.RESOLVED else EMOJI[alert.severity]
    text = f"{mark} *{_escape(alert.summary)}*"
    if alert.detail:
        text += f"\n{_escape(alert.detail)}"
    if external_url:
        url = host_url(external_url, alert.labels)
        text += f"\n<{url}|open in hotspare>"
    return text[:3000]  # a section's text limit


def payload(n: Notification, external_url: str = "") -> dict[str, Any]:
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": n.title[:150]}}
    ]
    for alert in n.alerts[:MAX_ALERTS]:
        blocks.append(
            {"type": "section", "text": {"type": "mrkdwn", "text": _line(alert, external_url)}}
        )
    if len(n.alerts) > MAX_ALERTS:
        more = len(n.alerts) - MAX_ALERTS
        blocks.append(
            {"type": "context", "elements": [{"type": "mrkdwn", "text": f"and {more} more"}]}
        )
    return {"text": n.title, "blocks": blocks}


class SlackReceiver:
    def __init__(
        self,
        name: str,
        url: str,
        *,
        send_resolved: bool = True,
        timeout: float = 10.0,
        ca_file: str = "",
        external_url: str = "",
    ) -> None:
        self.name, self._url = name, url
        self.send_resolved, self.timeout, self.ca_file = send_resolved, timeout, ca_file
        self.external_url = external_url

    def __repr__(self) -> str:
        return f"SlackReceiver({self.name!r})"

    async def send(self, notification: Notification) -> None:
        body = json.dumps(payload(notification, self.external_url)).encode()
        await post(
            self._url, body, {"Content-Type": "application/json"}, self.timeout, self.ca_file
        )


def create(rc: ReceiverConfig, external_url: str) -> SlackReceiver:
    return SlackReceiver(
        rc.name,
        rc.secret,
        send_resolved=rc.send_resolved,
        timeout=rc.timeout,
        ca_file=rc.options["ca_file"],
        external_url=external_url,
    )

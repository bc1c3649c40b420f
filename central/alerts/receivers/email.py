"""E-mail over SMTP: STARTTLS (required unless switched off), then AUTH, then the mail.

smtplib runs in a worker thread. The password comes from ``password_file`` and never
appears in an error: smtplib's exceptions carry the server's reply, not what was sent.
"""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from central.alerts.config import ReceiverConfig
from central.alerts.model import Notification, host_url
from central.alerts.receivers.http import DeliveryError, rfc3339


def message(
    n: Notification, sender: str, to: tuple[str, ...], external_url: str = ""
) -> EmailMessage:
    msg = EmailMessage()
    msg["Subject"] = n.title
    msg["From"] = sender
    msg["To"] = ", ".join(to)
    msg["Date"] = formatdate(n.ts, usegmt=True)
    msg["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    msg["X-Hotspare-Group"] = n.group_key
    lines = [n.title, ""]
    for alert in n.alerts:
        lines.append(f"[{alert.status.value.upper()}] {alert.summary}")
        labels = ", ".join(f"{k}={v}" for k, v in alert.labels.items() if v)
        lines.append(f"  labels: {labels}")
        if alert.detail:
            lines.append(f"  detail: {alert.detail}")
        lines.append(f"  since:  {rfc3339(alert.starts_at)}")
        if alert.ends_at is not None:
            lines.append(f"  ended:  {rfc3339(alert.ends_at)}")
        if external_url:
            lines.append(f"  link:   {host_url(external_url, alert.labels)}")
        lines.append("")
    msg.set_content("\n".join(lines))
    return msg


class EmailReceiver:
    def __init__(
        self,
        name: str,
        host: str,
        port: int,
        sender: str,
        to: tuple[str, ...],
        *,
        username: str = "",
        password: str = "",
        starttls: bool = True,
        ca_file: str = "",
        send_resolved: bool = True,
        timeout: float = 10.0,
        external_url: str = "",
    ) -> None:
        self.name, self.host, self.port, self.sender, self.to = name, host, port, sender, to
        self.username, self._password, self.starttls = username, password, starttls
        self.ca_file, self.send_resolved, self.timeout = ca_file, send_resolved, timeout
        self.external_url = external_url

    def __repr__(self) -> str:
        return f"EmailReceiver({self.name!r})"

    def _send_sync(self, msg: EmailMessage) -> None:
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
                smtp.ehlo()
                if self.starttls:
                    if not smtp.has_extn("starttls"):
                        raise DeliveryError("the server does not offer STARTTLS")
                    smtp.starttls(context=ssl.create_default_context(cafile=self.ca_file or None))
                    smtp.ehlo()
                if self.username:
                    smtp.login(self.username, self._password)
                refused = smtp.send_message(msg)
                if refused:
                    raise DeliveryError(f"recipients refused: {', '.join(sorted(refused))}")
        except smtplib.SMTPAuthenticationError as e:
            raise DeliveryError(f"authentication failed: {e.smtp_code}") from None
        except smtplib.SMTPResponseException as e:
            raise DeliveryError(
                f"SMTP {e.smtp_code}: {e.smtp_error.decode(errors='replace')}"
            ) from None
        except (smtplib.SMTPException, OSError) as e:
            raise DeliveryError(f"{type(e).__name__}: {e}") from None

    async def send(self, notification: Notification) -> None:
        msg = message(notification, self.sender, self.to, self.external_url)
        await asyncio.to_thread(self._send_sync, msg)


def create(rc: ReceiverConfig, external_url: str) -> EmailReceiver:
    host, _, port = rc.options["smarthost"].rpartition(":")
    return EmailReceiver(
        rc.name,
        host.strip("[]"),
        int(port),
        rc.options["from"],
        tuple(rc.options["to"]),
        username=rc.options["username"],
        password=rc.secret,
        starttls=rc.options["starttls"],
        ca_file=rc.options["ca_file"],
        send_resolved=rc.send_resolved,
        timeout=rc.timeout,
        external_url=external_url,
    )

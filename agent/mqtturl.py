"""The broker a settings object names (URL, credentials, TLS): shared by the agent and central.

Stdlib only, so that central may use it without importing the agent.
"""

from __future__ import annotations

import ssl
from typing import Any
from urllib.parse import urlsplit


class MqttEndpoint:
    """``tls``, ``hostname`` and ``port`` of the broker URL in ``self.url``, and the
    credentials and TLS files of the settings on a paho client (``authenticate``)."""

    __slots__ = ()
    url: str
    username: str
    password: str
    ca_file: str
    cert_file: str
    key_file: str
    tls_insecure: bool

    @property
    def tls(self) -> bool:
        return urlsplit(self.url).scheme == "mqtts"

    @property
    def hostname(self) -> str:
        return urlsplit(self.url).hostname or "127.0.0.1"

    @property
    def port(self) -> int:
        return urlsplit(self.url).port or (8883 if self.tls else 1883)

    def authenticate(self, client: Any) -> None:
        """The user, password and TLS of these settings on a paho client."""
        if self.username:
            client.username_pw_set(self.username, self.password or None)
        if self.tls:
            client.tls_set(
                ca_certs=self.ca_file or None,
                certfile=self.cert_file or None,
                keyfile=self.key_file or None,
                cert_reqs=ssl.CERT_REQUIRED,
            )
            client.tls_insecure_set(self.tls_insecure)

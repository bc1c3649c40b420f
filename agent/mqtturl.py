"""The broker a settings object names (URL, credentials, TLS): shared by the agent and central.

Stdlib only, so that central may use it without importing the agent.
"""

from __future__ import annotations

import ssl
from typing import Any
from urllib.parse import urlsplit


class MqttEndpoint:
    """``tls``, ``hostname`` and ``port`` of the broker URL in ``self.url``, and the
    credentials and TLS files of the settings: as an SSL context (``ssl_context``) and on a
    paho client (``authenticate``)."""

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

    def ssl_context(self) -> ssl.SSLContext:
        """The TLS context of these settings: the broker's certificate verified against
        ``ca_file`` (else the system's CAs), its name checked unless ``tls_insecure``, and
        ``cert_file``/``key_file`` as the client's certificate when given."""
        ctx = ssl.create_default_context(cafile=self.ca_file or None)
        if self.cert_file:
            ctx.load_cert_chain(self.cert_file, self.key_file or None)
        ctx.check_hostname = not self.tls_insecure
        return ctx

    def authenticate(self, client: Any) -> None:
        """The user, password and TLS of these settings on a paho client."""
        if self.username:
            client.username_pw_set(self.username, self.password or None)
        if self.tls:
            client.tls_set_context(self.ssl_context())
            client.tls_insecure_set(self.tls_insecure)

"""Where an ``mqtt://`` or ``mqtts://`` URL points: shared by the agent's and central's settings.

Stdlib only, so that central may use it without importing the agent.
"""

from __future__ import annotations

from urllib.parse import urlsplit


class MqttEndpoint:
    """``tls``, ``hostname`` and ``port`` of the broker URL in ``self.url``."""

    __slots__ = ()
    url: str

    @property
    def tls(self) -> bool:
        return urlsplit(self.url).scheme == "mqtts"

    @property
    def hostname(self) -> str:
        return urlsplit(self.url).hostname or "127.0.0.1"

    @property
    def port(self) -> int:
        return urlsplit(self.url).port or (8883 if self.tls else 1883)

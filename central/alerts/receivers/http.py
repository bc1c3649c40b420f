"""POST a body over HTTP(S) from a worker thread; errors that never show the URL.

Some URLs are secrets (a Slack incoming webhook's path is its credential), so a
``DeliveryError`` says what went wrong (status, a short piece of the reply, the OS
error) and names the receiver, never the URL or the body.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import http.client
import ssl
import urllib.error
import urllib.request
from collections.abc import Mapping


class DeliveryError(Exception):
    """A peer did not take a notification; the message is safe to log."""


def rfc3339(ts: float) -> str:
    return (
        dt.datetime.fromtimestamp(ts, dt.UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


def _context(ca_file: str) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=ca_file or None)


def post_sync(
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    timeout: float,
    ca_file: str = "",
) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, method="POST", headers=dict(headers))
    context = _context(ca_file) if url.startswith("https:") else None
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=context) as response:
            return response.status, response.read(65536)
    except urllib.error.HTTPError as e:
        snippet = e.read(200).decode("utf-8", "replace").strip().replace("\n", " ")
        raise DeliveryError(f"HTTP {e.code} {e.reason}: {snippet}") from None
    except urllib.error.URLError as e:
        raise DeliveryError(f"cannot connect: {e.reason}") from None
    except (TimeoutError, OSError, http.client.HTTPException) as e:
        raise DeliveryError(f"{type(e).__name__}: {e}") from None


async def post(
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    timeout: float,
    ca_file: str = "",
) -> tuple[int, bytes]:
    return await asyncio.to_thread(post_sync, url, body, headers, timeout, ca_file)

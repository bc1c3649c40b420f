"""Real peers for the alert receivers' tests: a recording HTTP server, Alertmanager, SMTP.

Every server binds 127.0.0.1 on a port the test picks and is stopped (and its files
removed) by the context manager that started it.
"""

from __future__ import annotations

import json
import shutil
import ssl
import subprocess
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from agent.localbroker import free_port

ALERTMANAGER = "/usr/bin/prometheus-alertmanager"


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self):
        return json.loads(self.body)


class Recorder:
    """An HTTP server that records every POST and answers with scripted status codes."""

    def __init__(
        self,
        statuses: list[int] | None = None,
        default: int = 200,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.requests: list[Request] = []
        self.statuses = list(statuses or [])
        self.default = default
        self.cond = threading.Condition()
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with recorder.cond:
                    status = recorder.statuses.pop(0) if recorder.statuses else recorder.default
                    recorder.requests.append(Request(self.path, dict(self.headers), body))
                    recorder.cond.notify_all()
                reply = b'{"status":"success"}' if status < 300 else b'{"error":"scripted"}'
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.scheme = "http"
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
            self.scheme = "https"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.server.server_address[1]}"

    def wait(self, count: int, timeout: float = 20) -> list[Request]:
        with self.cond:
            assert self.cond.wait_for(lambda: len(self.requests) >= count, timeout), (
                f"expected {count} request(s), got {len(self.requests)}"
            )
            return list(self.requests)

    def __enter__(self) -> Recorder:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


def _get_json(url: str):
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.loads(r.read())


@contextmanager
def alertmanager(webhook: str = "") -> Iterator[str]:
    """A private Alertmanager (the Debian package's binary); yields its base URL.

    With ``webhook``, Alertmanager notifies that URL (resolutions included) at once.
    """
    tmp = Path(tempfile.mkdtemp(prefix="hotspare-am-"))
    (tmp / "data").mkdir()
    receiver = "  - name: out\n"
    if webhook:
        receiver += f"    webhook_configs:\n      - url: {webhook}\n        send_resolved: true\n"
    (tmp / "alertmanager.yml").write_text(
        "route:\n  receiver: out\n  group_wait: 0s\n  group_interval: 1s\n"
        "  group_by: [host]\nreceivers:\n" + receiver
    )
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [
            ALERTMANAGER,
            f"--config.file={tmp / 'alertmanager.yml'}",
            f"--storage.path={tmp / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
            "--log.level=warn",
        ],
        stdout=subprocess.DEVNULL,
        stderr=(tmp / "stderr").open("wb"),
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{url}/-/ready", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"alertmanager did not start: {(tmp / 'stderr').read_text()}")
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)


def alertmanager_alerts(url: str) -> list[dict]:
    """GET /api/v2/alerts, resolved ones included."""
    return _get_json(
        f"{url}/api/v2/alerts?active=true&silenced=true&inhibited=true&unprocessed=true"
    )

"""A private mosquitto on a free loopback port, for the demo, the tests and the benchmarks."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_process(proc: subprocess.Popen[bytes] | None, timeout: float = 10.0) -> None:
    """SIGTERM, ``timeout`` seconds for it to exit, then SIGKILL; reaped either way."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def mosquitto_binary() -> str:
    for candidate in (shutil.which("mosquitto"), "/usr/sbin/mosquitto"):
        if candidate and Path(candidate).exists():
            return candidate
    raise FileNotFoundError("mosquitto is not installed (Debian: apt-get install mosquitto)")


class LocalBroker:
    """``with LocalBroker() as b: b.url`` — stopped and cleaned up on exit; restartable.

    ``user root`` keeps a broker started by root from dropping to the mosquitto user, who
    could not write the private directory (it has no effect for other users).
    """

    def __init__(
        self, port: int | None = None, persistent: bool = False, listener: str = ""
    ) -> None:
        self.port = port or free_port()
        self.listener = listener  # lines for the listener: TLS files, password_file...
        self.persistent = persistent  # keep sessions and queued messages across restarts
        self.dir = Path(tempfile.mkdtemp(prefix="hotspare-broker-"))
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> LocalBroker:
        conf = self.dir / "mosquitto.conf"
        persistence = (
            f"persistence true\npersistence_location {self.dir}/\n"
            if self.persistent
            else "persistence false\n"
        )
        conf.write_text(
            f"listener {self.port} 127.0.0.1\n{self.listener or 'allow_anonymous true'}\nuser root\n{persistence}"
            f"log_dest file {self.dir / 'mosquitto.log'}\n"
        )
        self.proc = subprocess.Popen(
            self.command(conf),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"mosquitto{self.where} exited with {self.proc.returncode}: {self.log_tail()}"
                )
            try:
                self.probe()
                return self
            except OSError:
                time.sleep(0.02)
        self.stop()
        raise RuntimeError(
            f"mosquitto{self.where} did not listen on 127.0.0.1:{self.port} within 10 s"
        )

    # what a broker elsewhere (a network namespace) overrides

    where = ""  # " in <place>", for messages

    def command(self, conf: Path) -> list[str]:
        return [mosquitto_binary(), "-c", str(conf)]

    def probe(self) -> None:
        """Returns when the listener accepts a connection; OSError while it does not."""
        socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()

    def log_tail(self) -> str:
        try:
            return (self.dir / "mosquitto.log").read_text(errors="replace")[-2000:]
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        stop_process(self.proc, 5)
        self.proc = None

    def __enter__(self) -> LocalBroker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

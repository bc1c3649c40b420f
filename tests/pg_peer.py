"""A private PostgreSQL cluster on a loopback port for the history tests (Debian's postgresql).

``initdb`` refuses to run as root, so as root the cluster is created and run as the
``postgres`` user (the Debian package creates it) in a temporary directory owned by it.
Authentication is ``trust`` on 127.0.0.1 only: the cluster lives for one test session.
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from agent.localbroker import free_port


def pg_bindir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        raise FileNotFoundError("PostgreSQL is not installed (Debian: apt-get install postgresql)")
    return Path(found[-1]).parent


class LocalPostgres:
    def __init__(self) -> None:
        self.bindir = pg_bindir()
        self.port = free_port()
        self.root = os.geteuid() == 0
        self.dir = Path(tempfile.mkdtemp(prefix="hotspare-pg-"))
        self.data = self.dir / "data"
        self._names = itertools.count(1)
        if self.root:
            shutil.chown(self.dir, "postgres", "postgres")
        self.user = "postgres" if self.root else os.environ.get("USER", "postgres")

    def _run(self, *argv: str) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.bindir / argv[0]), *argv[1:]]
        if self.root:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=self.dir)
        if result.returncode != 0:
            log = self.dir / "postgres.log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(f"{argv[0]} failed: {result.stderr or result.stdout}\n{tail}")
        return result

    def start(self) -> LocalPostgres:
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            self.user,
            "--auth=trust",
            "--no-sync",
            "-E",
            "UTF8",
        )
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-l",
            str(self.dir / "postgres.log"),
            "-w",
            "-o",
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off",
            "start",
        )
        return self

    def url(self, db: str = "postgres") -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{db}"

    def new_database(self) -> str:
        """A fresh, empty database; returns its URL."""
        import psycopg

        name = f"t{next(self._names)}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def stop(self) -> None:
        if self.data.exists():
            with contextlib.suppress(RuntimeError):
                self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.dir, ignore_errors=True)

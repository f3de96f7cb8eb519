"""A throwaway PostgreSQL cluster for the tests: Debian's ``postgresql`` binaries, ``initdb`` in a
temporary folder, run by an unprivileged user when the tests run as root (PostgreSQL refuses
root), on a free port, with a password login (so a wrong one can be tried)."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from tests.support.servers import free_port

USER = "assistant"
PASSWORD = "s3cret-Pa55"  # the tests check it never shows in a message
RUN_AS = "nobody"  # when root


def binaries() -> Path | None:
    """The folder of ``initdb`` and ``pg_ctl`` (the newest Debian version), or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


class Cluster:
    """A running cluster; ``url(db)`` is a URL with the password, ``create_database`` makes one."""

    def __init__(self):
        self.bin = binaries()
        if self.bin is None:
            raise FileNotFoundError("PostgreSQL is not installed (Debian: apt-get install postgresql)")
        self.dir = Path(tempfile.mkdtemp(prefix="assistant-pg-"))  # under /tmp: reachable by RUN_AS
        self.port = free_port()
        self.root = os.geteuid() == 0
        os.chmod(self.dir, 0o777 if self.root else 0o700)
        (self.dir / "pw").write_text(PASSWORD + "\n")
        os.chmod(self.dir / "pw", 0o644)
        self._run(["initdb", "-D", str(self.dir / "data"), "-U", USER, "--pwfile", str(self.dir / "pw"),
                   "--auth", "scram-sha-256", "-E", "UTF8", "--locale", "C.UTF-8"])
        self.start()

    def _run(self, args: list[str], check: bool = True) -> subprocess.CompletedProcess:
        cmd = [str(self.bin / args[0]), *args[1:]]
        if self.root:
            cmd = ["runuser", "-u", RUN_AS, "--", *cmd]
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=self.dir)
        if check and result.returncode != 0:
            raise RuntimeError(f"{args[0]} failed: {result.stdout[-2000:]} {result.stderr[-2000:]}")
        return result

    def start(self) -> None:
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300"
        self._run(["pg_ctl", "-D", str(self.dir / "data"), "-l", str(self.dir / "log"), "-o", options,
                   "-w", "-t", "60", "start"])

    def stop(self, mode: str = "fast") -> None:
        self._run(["pg_ctl", "-D", str(self.dir / "data"), "-m", mode, "-w", "stop"], check=False)

    def restart(self) -> None:
        self.stop()
        self.start()

    def url(self, database: str = "postgres", password: str | None = PASSWORD) -> str:
        secret = f":{password}" if password is not None else ""
        return f"postgresql://{USER}{secret}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """A new empty database; returns its URL."""
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as db:
            db.execute(f'DROP DATABASE IF EXISTS "{name}"')
            db.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def close(self) -> None:
        self.stop("immediate")
        time.sleep(0.2)
        shutil.rmtree(self.dir, ignore_errors=True)

"""A throwaway PostgreSQL cluster: ``initdb`` + ``pg_ctl`` in a temporary directory, on a free
loopback port, with durability switched off (it only ever holds test or benchmark data).

Used by the test fixtures (``tests/conftest.py``) and by ``make bench``. As root, the server
runs as the ``postgres`` user (``initdb`` refuses root).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

__all__ = ["PgServer", "free_port", "pg_bindir", "start_cluster", "stop_cluster"]


def pg_bindir() -> Path | None:
    """The newest installed PostgreSQL's bin directory with initdb and pg_ctl, or None."""
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: p.parent.name, reverse=True)
    for c in candidates:
        if (c / "initdb").exists() and (c / "pg_ctl").exists():
            return c
    found = shutil.which("pg_ctl")
    return Path(found).parent if found and shutil.which("initdb") else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class PgServer:
    host: str
    port: int
    user: str
    base: Path | None = None
    bindir: Path | None = None

    def url(self, database: str) -> str:
        return f"postgresql+asyncpg://{self.user}@{self.host}:{self.port}/{database}"


def _as_pg_user(cmd: list[str]) -> list[str]:
    if os.geteuid() == 0:  # initdb refuses to run as root
        return ["runuser", "-u", "postgres", "--", *cmd]
    return cmd


def start_cluster(bindir: Path, *, max_connections: int = 200, extra_options: str = "",
                  timeout: float = 60.0) -> PgServer:
    """initdb a fresh cluster and start it; raises ``subprocess.CalledProcessError`` (or
    ``TimeoutExpired``) when that fails, after removing what was made."""
    base = Path(tempfile.mkdtemp(prefix="shopdesk-pg-"))
    datadir = base / "data"
    if os.geteuid() == 0:
        shutil.chown(base, "postgres", "postgres")
        os.chmod(base, 0o700)
    user = "postgres" if os.geteuid() == 0 else os.environ.get("USER", "postgres")
    try:
        subprocess.run(
            _as_pg_user([str(bindir / "initdb"), "-D", str(datadir), "-U", user, "-A", "trust", "-E", "UTF8",
                         "--no-sync"]),
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=timeout,
        )
        port = free_port()
        opts = (f"-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories={base} -c fsync=off "
                f"-c full_page_writes=off -c synchronous_commit=off -c max_connections={max_connections}"
                + (f" {extra_options}" if extra_options else ""))
        subprocess.run(
            _as_pg_user([str(bindir / "pg_ctl"), "-D", str(datadir), "-o", opts, "-l", str(base / "log"), "-w",
                         "start"]),
            check=True, stdout=subprocess.DEVNULL, timeout=timeout,
        )
    except BaseException:
        shutil.rmtree(base, ignore_errors=True)
        raise
    return PgServer("127.0.0.1", port, user, base=base, bindir=bindir)


def stop_cluster(server: PgServer) -> None:
    """Stop the cluster at once and delete its files."""
    if server.base is None or server.bindir is None:
        return
    subprocess.run(
        _as_pg_user([str(server.bindir / "pg_ctl"), "-D", str(server.base / "data"), "-m", "immediate", "stop"]),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60,
    )
    shutil.rmtree(server.base, ignore_errors=True)

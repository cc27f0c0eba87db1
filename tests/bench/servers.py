"""The server under test, in its own process: ``shopdesk serve`` or the bare server.

The parent waits for ``/healthz`` (bounded), reads the child's resident memory, and stops it
(SIGTERM, then SIGKILL). The child's output goes to a log file whose tail is quoted when it
does not start.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from tests.pg_cluster import free_port

__all__ = ["ServerProcess", "ServerFailed", "rss_mb", "start_bare", "start_shopdesk"]

WEBHOOK_SECRET = "bench-webhook-secret_0123456789"


class ServerFailed(Exception):
    """The server did not become ready; the message quotes its log."""


def rss_mb(pid: int) -> float | None:
    """Resident memory of ``pid`` in MB (psutil when installed, else /proc), or None."""
    try:
        import psutil

        return float(psutil.Process(pid).memory_info().rss) / 2**20
    except ImportError:
        pass
    except Exception:
        return None
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


@dataclass
class ServerProcess:
    name: str
    proc: subprocess.Popen[bytes]
    port: int
    log: Path
    started_in: float = 0.0
    memory: dict[str, float | None] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def urls(self) -> list[str]:
        return [self.url]

    def rss(self, label: str) -> float | None:
        value = rss_mb(self.proc.pid)
        self.memory[label] = None if value is None else round(value, 1)
        return value

    def log_tail(self, lines: int = 12) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    async def wait_ready(self, timeout: float) -> None:
        started = time.perf_counter()
        deadline = started + timeout
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as http:
            while time.perf_counter() < deadline:
                if self.proc.poll() is not None:
                    raise ServerFailed(f"{self.name} exited with {self.proc.returncode}:\n{self.log_tail()}")
                try:
                    async with http.get(f"{self.url}/healthz") as resp:
                        if resp.status == 200:
                            self.started_in = time.perf_counter() - started
                            return
                except (TimeoutError, aiohttp.ClientError):
                    pass
                await asyncio.sleep(0.05)
        raise ServerFailed(f"{self.name} not ready after {timeout:.0f}s:\n{self.log_tail()}")

    def stop(self, timeout: float = 10.0) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def _spawn(name: str, cmd: list[str], env: dict[str, str], port: int, workdir: Path) -> ServerProcess:
    log = workdir / f"{name.replace(' ', '_').replace('/', '_')}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                cwd=workdir)
    return ServerProcess(name=name, proc=proc, port=port, log=log)


def shopdesk_env(database_url: str, data_dir: Path, api_url: str, *, token: str) -> dict[str, str]:
    """The settings of the server under test: its database, the fake Bot API, Telegram's flood
    limits and the widget's per-socket limit switched off (the benchmark measures the server,
    not Telegram's allowance)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHOPDESK_")}
    env.update({
        "SHOPDESK_CONFIG": os.devnull,
        "SHOPDESK_DATABASE_URL": database_url,
        "SHOPDESK_DATA_DIR": str(data_dir),
        "SHOPDESK_SECRET_KEY": "bench-secret-key-0123456789abcdef0123456789",
        "SHOPDESK_TELEGRAM_TOKEN": token,
        "SHOPDESK_TELEGRAM_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "SHOPDESK_TELEGRAM_API_URL": api_url,
        "SHOPDESK_TELEGRAM_PER_CHAT_PER_SECOND": "0",
        "SHOPDESK_TELEGRAM_OVERALL_PER_SECOND": "0",
        "SHOPDESK_WIDGET_PER_SECOND": "0",
        # the outbox's send window, out of the way like the flood limits: under load a send's round
        # trip includes the server's own loop turns, and 16 sends in flight (the default, which
        # bounds the replies a crash may repeat) cap the Telegram path near 800 messages/s here
        "SHOPDESK_OUTBOX_CONCURRENCY": "64",
        "PTB_TIMEDELTA": "1",
    })
    # settings to try in a measurement (the caller's own SHOPDESK_ variables are not passed on, so
    # that a developer's shell never changes what is measured): BENCH_SHOPDESK_ENV="KEY=value,..."
    for item in filter(None, os.environ.get("BENCH_SHOPDESK_ENV", "").split(",")):
        key, sep, value = item.partition("=")
        if not sep or not key.strip().startswith("SHOPDESK_"):
            raise SystemExit(f"BENCH_SHOPDESK_ENV: expected SHOPDESK_NAME=value items, got {item!r}")
        env[key.strip()] = value.strip()
    return env


async def start_shopdesk(name: str, database_url: str, workdir: Path, api_url: str, *, token: str,
                         timeout: float = 90.0, extra_env: dict[str, str] | None = None) -> ServerProcess:
    """``shopdesk serve`` on a free loopback port, ready (models loaded) when this returns;
    ``extra_env``: more settings (``SHOPDESK_…``) for this measurement only."""
    port = free_port()
    data_dir = workdir / f"data-{port}"
    env = shopdesk_env(database_url, data_dir, api_url, token=token)
    env.update(extra_env or {})
    cmd = [sys.executable, "-m", "shopdesk.cli", "serve", "--host", "127.0.0.1", "--port", str(port)]
    server = _spawn(name, cmd, env, port, workdir)
    try:
        await server.wait_ready(timeout)
    except BaseException:
        server.stop()
        raise
    return server


async def start_bare(workdir: Path, api_url: str, timeout: float = 30.0) -> ServerProcess:
    port = free_port()
    cmd = [sys.executable, "-m", "tests.bench.bare", "--port", str(port), "--api", api_url,
           "--secret", WEBHOOK_SECRET]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).resolve().parents[2]), env.get("PYTHONPATH", "")])
    server = _spawn("bare aiohttp", cmd, env, port, workdir)
    try:
        await server.wait_ready(timeout)
    except BaseException:
        server.stop()
        raise
    return server


@dataclass
class ServerGroup:
    """Several ``shopdesk serve`` processes on one PostgreSQL database, measured as one server:
    the customers are spread over them (as a load balancer would), memory is their sum."""

    name: str
    servers: list[ServerProcess]
    memory: dict[str, float | None] = field(default_factory=dict)

    @property
    def started_in(self) -> float:
        return max(s.started_in for s in self.servers)

    @property
    def url(self) -> str:
        return self.servers[0].url

    @property
    def urls(self) -> list[str]:
        return [s.url for s in self.servers]

    def rss(self, label: str) -> float | None:
        values = [rss_mb(s.proc.pid) for s in self.servers]
        total = None if any(v is None for v in values) else sum(v for v in values if v is not None)
        self.memory[label] = None if total is None else round(total, 1)
        return total

    def log_tail(self, lines: int = 12) -> str:
        return "\n".join(s.log_tail(lines) for s in self.servers)

    def stop(self, timeout: float = 10.0) -> None:
        for server in self.servers:
            server.stop(timeout)


async def start_shopdesk_group(name: str, database_url: str, workdir: Path, api_url: str, *, token: str,
                               processes: int, timeout: float = 90.0) -> ServerGroup:
    """``processes`` servers on one database: the first one migrates it, then the others start."""
    servers: list[ServerProcess] = []
    try:
        servers.append(await start_shopdesk(f"{name} #1", database_url, workdir, api_url, token=token,
                                            timeout=timeout))
        servers += await asyncio.gather(*(start_shopdesk(f"{name} #{i + 1}", database_url, workdir, api_url,
                                                         token=token, timeout=timeout)
                                          for i in range(1, processes)))
    except BaseException:
        for server in servers:
            server.stop()
        raise
    return ServerGroup(name, servers)

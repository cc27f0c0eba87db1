"""``python -m tests.bench.memory_profile widget|telegram [--database sqlite|postgresql] [--trace]``:
where one ``shopdesk serve`` process's resident memory goes, at rest and under the benchmark's
load (600 customers, 200 of them chatting in a closed loop, as in ``make bench``).

Prints RSS and ``/proc/<pid>/smaps_rollup`` (anonymous, file-backed) at: ready (``/healthz``), the
first answer (models loaded), after a warm-up, after the closed loop, and after the load has
stopped and the server idled ``--idle`` seconds. With ``--trace`` the server runs under
tracemalloc (``trace_memory/sitecustomize.py``; its RSS is then inflated by the tracing) and the
Python allocations that grew from the first answer to the end are listed by source line.
Loopback only, bounded in time. Linux only (/proc)."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

from tests.bench.__main__ import FakeApiServer
from tests.bench.databases import Databases
from tests.bench.load import Router, TelegramTarget, WidgetTarget, closed_loop, first_answer, open_loop
from tests.bench.servers import WEBHOOK_SECRET, ServerProcess, start_shopdesk
from tests.fakes.telegram import DEFAULT_TOKEN

FIELDS = ("Rss", "Anonymous", "Private_Dirty", "Shared_Clean", "Private_Clean")


def rollup(pid: int) -> dict[str, float]:
    """Megabytes of the ``smaps_rollup`` fields in :data:`FIELDS`."""
    values: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in FIELDS:
            values[name] = int(rest.split()[0]) / 1024
    return values


def threads(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/task"))


class Probe:
    def __init__(self, server: ServerProcess, trace: Path | None) -> None:
        self.server = server
        self.trace = trace
        self.dumps: dict[str, Path] = {}
        print(f"{'point':<22}{'RSS':>8}{'anon':>8}{'file':>8}{'threads':>9}")

    async def point(self, label: str) -> None:
        pid = self.server.proc.pid
        r = rollup(pid)
        file_backed = r.get("Shared_Clean", 0) + r.get("Private_Clean", 0)
        print(f"{label:<22}{r['Rss']:8.1f}{r.get('Anonymous', 0):8.1f}{file_backed:8.1f}{threads(pid):9d}", flush=True)
        if self.trace is not None:
            number = len(self.dumps) + 1
            os.kill(pid, signal.SIGUSR1)
            path = Path(f"{self.trace}.{pid}.{number}")
            for _ in range(300):
                await asyncio.sleep(0.1)
                if path.exists() and path.stat().st_size and time.time() - path.stat().st_mtime > 0.3:
                    break
            self.dumps[label] = path


def growth(first: Path, last: Path, limit: int) -> None:
    before, after = tracemalloc.Snapshot.load(str(first)), tracemalloc.Snapshot.load(str(last))
    print(f"\ntraced Python heap {sum(s.size for s in before.statistics('filename')) / 2**20:.1f} → "
          f"{sum(s.size for s in after.statistics('filename')) / 2**20:.1f} MB; largest growth by line:")
    for stat in after.compare_to(before, "lineno")[:limit]:
        frame = stat.traceback[0]
        print(f"{stat.size_diff / 2**20:+8.2f} MB {stat.count_diff:+8d} blocks  {frame.filename}:{frame.lineno}")
    print("\nlargest at the end by file:")
    for stat in after.statistics("filename")[:limit]:
        print(f"{stat.size / 2**20:8.2f} MB  {stat.traceback[0].filename}")


async def main(args: argparse.Namespace) -> None:
    work = Path(tempfile.mkdtemp(prefix="shopdesk-memory-"))
    trace = work / "trace" if args.trace else None
    if trace is not None or args.trim:
        hook = str(Path(__file__).parent / "trace_memory")
        os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (hook, os.environ.get("PYTHONPATH", "")) if p)
    if trace is not None:
        os.environ["BENCH_TRACE_MEMORY"] = str(trace)
    if args.trim:
        os.environ["BENCH_MALLOC_TRIM"] = "1"
    dbs = Databases(work)
    if args.database == "postgresql" and not await dbs.start_pg():
        raise SystemExit(f"PostgreSQL: {dbs.pg_error}")
    fake = FakeApiServer()
    await fake.start()
    target: Any = None
    server: ServerProcess | None = None
    try:
        url = await dbs.url(args.database, f"memory_{args.path}")
        server = await start_shopdesk(f"memory {args.path}", url, work, fake.base, token=DEFAULT_TOKEN,
                                      timeout=300 if args.trace else 90)
        print(f"{args.path} on {args.database}: ready in {server.started_in:.2f}s")
        probe = Probe(server, trace)
        await probe.point("ready")
        router = Router()
        fake.router = router
        target = (WidgetTarget(server.urls, router) if args.path == "widget"
                  else TelegramTarget(server.urls, router, WEBHOOK_SECRET, customers=args.customers))
        await target.open(args.customers, timeout=60)
        if await first_answer(target, router, bound=90) is None:
            raise SystemExit("no answer to a first message within 90 s")
        await asyncio.sleep(1)
        await probe.point("first answer")
        await closed_loop(target, router, clients=20, duration=3, bound=30, grace=10, phase="warm-up")
        await router.settle(10)
        await probe.point("after warm-up")
        stats = await closed_loop(target, router, clients=args.clients, duration=args.seconds, bound=30, grace=10)
        await router.settle(10)
        await probe.point(f"after {stats.answered} answers")
        if args.open:
            for rate in (50, 200, 500):  # as make bench: 5 s each, 10 s to drain
                await open_loop(target, router, rate=rate, duration=5, drain=10, customers=args.customers)
                await router.settle(10)
            await probe.point("after open 50-500/s")
        await asyncio.sleep(args.idle)
        await probe.point(f"idle {args.idle:g}s")
        if args.trim:
            os.kill(server.proc.pid, signal.SIGUSR2)
            await asyncio.sleep(1)
            await probe.point("after malloc_trim")
        if trace is not None:
            paths = list(probe.dumps.values())
            growth(paths[1], paths[-1], args.top)
    finally:
        if target is not None:
            await target.close()
        if server is not None:
            server.stop()
        await fake.stop()
        dbs.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("path", choices=["widget", "telegram"])
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--customers", type=int, default=600)
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--idle", type=float, default=5.0)
    parser.add_argument("--trace", action="store_true", help="tracemalloc in the server; list the growth by line")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--open", action="store_true", help="then the open-loop rates of make bench (50, 200, 500/s)")
    parser.add_argument("--trim", action="store_true", help="at the end, malloc_trim(0) in the server (SIGUSR2)")
    asyncio.run(main(parser.parse_args()))

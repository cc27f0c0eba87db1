"""``python -m tests.bench.per_message widget|telegram [--seconds 10] [--clients 60]``: the server's
CPU time and SQL statements per answered message (one ``shopdesk serve`` on SQLite), for
before/after comparisons on a loaded machine where messages per second are noise.

300 customers, a first answer, a 4 s closed-loop warm-up, then ``--seconds`` of closed loop with
``--clients`` customers; the server's CPU is utime+stime from /proc over that window and the
statements are counted inside it (``count_statements/sitecustomize.py`` on its PYTHONPATH).
Prints one line. Loopback only, bounded in time. Linux only (/proc). ``--py-spy PATH`` samples the
server process with that py-spy over the measured window (raw stacks, path printed); ``--cprofile``
profiles its loop thread in CPU time instead of counting statements (pstats file printed)."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import tempfile
from pathlib import Path

from tests.bench.__main__ import FakeApiServer
from tests.bench.databases import Databases
from tests.bench.load import Router, TelegramTarget, WidgetTarget, closed_loop, first_answer
from tests.bench.servers import WEBHOOK_SECRET, start_shopdesk
from tests.fakes.telegram import DEFAULT_TOKEN

CUSTOMERS = 300


def cpu_times(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds of the process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def cpu_seconds(pid: int) -> float:
    return sum(cpu_times(pid))


async def main(path: str, seconds: float, clients: int, spy: str | None = None, cprofile: bool = False) -> None:
    work = Path(tempfile.mkdtemp(prefix="shopdesk-per-message-"))
    counts = work / "statements"
    hook = str(Path(__file__).parent / ("cprofile_hook" if cprofile else "count_statements"))
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (hook, os.environ.get("PYTHONPATH", "")) if p)
    if cprofile:  # the same signals start and stop a cProfile (CPU time) of the loop thread instead
        os.environ["BENCH_CPROFILE"] = str(work / "cprofile")
    else:
        os.environ["BENCH_COUNT_STATEMENTS"] = str(counts)
    url = await Databases(work).url("sqlite", "per-message")
    fake = FakeApiServer()
    await fake.start()
    server = await start_shopdesk("per-message", url, work, fake.base, token=DEFAULT_TOKEN)
    router = Router()
    fake.router = router
    target: WidgetTarget | TelegramTarget | None = None
    sampler: subprocess.Popen[bytes] | None = None
    try:
        target = (WidgetTarget(server.urls, router) if path == "widget"
                  else TelegramTarget(server.urls, router, WEBHOOK_SECRET, customers=CUSTOMERS))
        await target.open(CUSTOMERS, timeout=60)
        if await first_answer(target, router, bound=90) is None:
            raise SystemExit("no answer to a first message within 90 s")
        await closed_loop(target, router, clients=clients, duration=4, bound=10, grace=2, phase="warm-up")
        await router.settle(5)
        pid = server.proc.pid
        if spy:
            sampler = subprocess.Popen([spy, "record", "-p", str(pid), "-r", "250", "-f", "raw",
                                        "-o", str(work / f"{path}.raw"), "--nonblocking"],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            await asyncio.sleep(1.0)
        os.kill(pid, signal.SIGUSR2)
        user0, sys0 = cpu_times(pid)
        stats = await closed_loop(target, router, clients=clients, duration=seconds, bound=10, grace=3)
        await router.settle(3)
        user1, sys1 = cpu_times(pid)
        used = (user1 - user0) + (sys1 - sys0)
        if sampler is not None:
            sampler.send_signal(signal.SIGINT)
            sampler.wait(30)
            sampler = None
        os.kill(pid, signal.SIGUSR1)
        await asyncio.sleep(0.5)
        answered = max(1, stats.answered)
        if cprofile:
            print(f"{path}: answered={stats.answered} server_cpu={used:.2f}s (profiled) cprofile={work / 'cprofile'}.{pid}")
            return
        statements = sum(int(line.split("\t", 1)[0]) for line in Path(f"{counts}.{pid}").read_text().splitlines())
        print(f"{path}: answered={stats.answered} server_cpu={used:.2f}s cpu_ms_per_message={1000 * used / answered:.2f}"
              f" (user {1000 * (user1 - user0) / answered:.2f}, system {1000 * (sys1 - sys0) / answered:.2f})"
              f" statements_per_message={statements / answered:.2f} statements={counts}.{pid}"
              + (f" py-spy={work / (path + '.raw')}" if spy else ""))
    finally:
        if sampler is not None:
            sampler.send_signal(signal.SIGINT)
            sampler.wait(30)
        if target is not None:
            await target.close()
        server.stop()
        await fake.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("path", choices=["widget", "telegram"])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=60)
    parser.add_argument("--py-spy", metavar="PATH", help="sample the server with this py-spy (raw stacks)")
    parser.add_argument("--cprofile", action="store_true",
                        help="profile the server's loop thread (cProfile, CPU time) instead of counting statements")
    args = parser.parse_args()
    asyncio.run(main(args.path, args.seconds, args.clients, args.py_spy, args.cprofile))

"""``python -m tests.bench.fixed_cost [--paths widget,telegram] [--rates 50,200] [--seconds 10]
[--idle 10] [--py-spy PATH]``: the server's CPU per answered message at fixed open-loop rates and
its CPU while idle (issue 11's fixed cost of a message alone; one ``shopdesk serve`` on SQLite).

Unlike ``tests.bench.stages`` the server runs without the stage trace, so the figures are the
production code's. For each path: 300 customers connected (widget sockets open; Telegram has
no connection) and a first answer; then the server's CPU (utime+stime from /proc) per message
sent one at a time (each recorded alone and answered alone), for ``--alone`` customers' first
messages (a new contact and conversation) and, after every customer has written once, for
messages into an open conversation; its CPU over ``--idle`` seconds with every customer
connected and silent; and for each rate the CPU over the open-loop run and its drain, divided by
the answers. ``--py-spy``: sample the
server during each rate (raw folded stacks in the work directory, 500 Hz); ``--cprofile``: profile
its loop thread with cProfile instead (CPU figures then include cProfile's cost). Loopback only,
bounded in time. Linux only (/proc)."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import tempfile
from pathlib import Path

from tests.bench.__main__ import FakeApiServer
from tests.bench.databases import Databases
from tests.bench.load import Router, Stats, TelegramTarget, WidgetTarget, closed_loop, first_answer, now, open_loop
from tests.bench.servers import WEBHOOK_SECRET, start_shopdesk
from tests.bench.stages import cpu_seconds
from tests.fakes.telegram import DEFAULT_TOKEN

CUSTOMERS = 300


async def one_at_a_time(target: WidgetTarget | TelegramTarget, router: Router, keys: list[int],
                        pid: int) -> tuple[float, int]:
    """Each key sends one message and waits for its answer before the next key sends: every
    message is recorded alone and answered alone. (server CPU seconds, answers)."""
    stats = Stats("one at a time")
    loop = asyncio.get_running_loop()
    before = cpu_seconds(pid)
    for key in keys:
        done: asyncio.Future[None] = loop.create_future()
        entry = router.expect(key, now(), stats, done)
        if await target.send(key, entry):
            try:
                await asyncio.wait_for(done, 10)
            except TimeoutError:
                break
    used = cpu_seconds(pid) - before
    stats.close()
    return used, stats.answered


async def saved_profile(pid: int, work: Path, name: str) -> None:
    """Stop the server's cProfile (``--cprofile``) and keep it as ``cprofile-<name>``."""
    os.kill(pid, signal.SIGUSR1)
    await asyncio.sleep(1)
    os.replace(work / f"cprofile.{pid}", work / f"cprofile-{name}")
    print(f"    cProfile of the loop's thread: {work / f'cprofile-{name}'}", flush=True)


async def run_path(path: str, args: argparse.Namespace, work: Path, fake: FakeApiServer) -> None:
    url = await Databases(work).url("sqlite", f"fixed-{path}")
    extra: dict[str, str] = {}
    if args.cprofile:
        hook = str(Path(__file__).parent / "cprofile_hook")
        extra = {"PYTHONPATH": os.pathsep.join(p for p in (hook, os.environ.get("PYTHONPATH", "")) if p),
                 "BENCH_CPROFILE": str(work / "cprofile")}
    server = await start_shopdesk(f"fixed {path}", url, work, fake.base, token=DEFAULT_TOKEN, extra_env=extra)
    router = Router()
    fake.router = router
    target: WidgetTarget | TelegramTarget | None = None
    pid = server.proc.pid
    try:
        target = (WidgetTarget(server.urls, router) if path == "widget"
                  else TelegramTarget(server.urls, router, WEBHOOK_SECRET, customers=CUSTOMERS))
        await target.open(CUSTOMERS, timeout=60)
        if await first_answer(target, router, bound=90) is None:
            raise SystemExit("no answer to a first message within 90 s")
        # a customer's first message (new contact and conversation), one at a time
        keys = list(target.keys)
        firsts = keys[1:1 + args.alone]
        used, answered = await one_at_a_time(target, router, firsts, pid)
        print(f"{path}: first message of a customer, alone: {1000 * used / max(1, answered):.2f} ms CPU/message "
              f"({answered})", flush=True)
        await closed_loop(target, router, clients=20, duration=3, bound=10, grace=2, phase="warm-up")
        await one_at_a_time(target, router, keys, pid)  # every customer has an open conversation now
        await router.settle(5)
        if args.cprofile:
            os.kill(pid, signal.SIGUSR2)
        used, answered = await one_at_a_time(target, router, keys[:args.alone], pid)
        if args.cprofile:
            await saved_profile(pid, work, f"{path}-alone")
        print(f"{path}: message into an open conversation, alone: {1000 * used / max(1, answered):.2f} ms "
              f"CPU/message ({answered})", flush=True)
        await asyncio.sleep(1)
        if args.idle > 0:
            before = cpu_seconds(pid)
            await asyncio.sleep(args.idle)
            idle = cpu_seconds(pid) - before
            print(f"{path}: idle with {CUSTOMERS} customers: {1000 * idle / args.idle:.1f} ms CPU per second",
                  flush=True)
        for rate in [int(r) for r in args.rates.split(",")]:
            spy = None
            if args.py_spy:
                spy = await asyncio.create_subprocess_exec(
                    args.py_spy, "record", "-p", str(pid), "-f", "raw", "-r", "500", "-d", str(int(args.seconds)),
                    "-o", str(work / f"profile-{path}-{rate}.txt"),
                    stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
            if args.cprofile:
                os.kill(pid, signal.SIGUSR2)
            before = cpu_seconds(pid)
            stats = await open_loop(target, router, rate=rate, duration=args.seconds, drain=5,
                                    customers=CUSTOMERS, phase=f"open {rate}/s")
            used = cpu_seconds(pid) - before
            summary = stats.summary()
            if args.cprofile:
                await saved_profile(pid, work, f"{path}-{rate}")
            print(f"{path} {rate}/s: answered {summary['answered']}/{summary['sent']}, e2e p50 "
                  f"{summary['p50_ms']} ms p99 {summary['p99_ms']} ms; server CPU "
                  f"{1000 * used / max(1, stats.answered):.2f} ms/message; load {os.getloadavg()[0]:.2f}", flush=True)
            if spy is not None:
                await spy.wait()
                print(f"    py-spy: {work / f'profile-{path}-{rate}.txt'}", flush=True)
            await router.settle(5)
            await asyncio.sleep(1)
    finally:
        if target is not None:
            await target.close()
        server.stop()
        fake.router = None


async def main(args: argparse.Namespace) -> None:
    work = Path(tempfile.mkdtemp(prefix="shopdesk-fixed-cost-"))
    fake = FakeApiServer()
    await fake.start()
    try:
        for path in args.paths.split(","):
            await run_path(path, args, work, fake)
    finally:
        await fake.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--paths", default="widget,telegram")
    parser.add_argument("--rates", default="50,200")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--idle", type=float, default=10.0)
    parser.add_argument("--alone", type=int, default=100, help="messages sent one at a time in each alone phase")
    parser.add_argument("--py-spy", default="", metavar="PATH")
    parser.add_argument("--cprofile", action="store_true",
                        help="cProfile the server's loop thread during each rate (pstats files in the work dir)")
    asyncio.run(main(parser.parse_args()))

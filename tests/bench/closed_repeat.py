"""``python -m tests.bench.closed_repeat [--path widget] [--rounds 6] [--seconds 15] [--clients 200]
[--set SHOPDESK_NAME=value ...]``: the closed loop, round after round, on ONE SQLite server, with
every round's p50/p99, slowest answer and answers over 5 s. A tail that comes once in a while
(a stall of the outbox, a starved claim) shows here, where one ``make bench`` run may miss it.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path

from tests.bench.__main__ import FULL, FakeApiServer, prepare
from tests.bench.databases import Databases
from tests.bench.load import closed_loop
from tests.bench.servers import ServerProcess, start_shopdesk
from tests.fakes.telegram import DEFAULT_TOKEN


async def main(args: argparse.Namespace) -> None:
    extra = dict(item.split("=", 1) for item in args.set)
    work = Path(tempfile.mkdtemp(prefix="shopdesk-repeat-"))
    dbs = Databases(work)
    fake = FakeApiServer()
    await fake.start()

    async def start() -> ServerProcess:
        url = await dbs.url("sqlite", f"repeat_{args.path}")
        return await start_shopdesk(f"{args.path} sqlite", url, work, fake.base, token=DEFAULT_TOKEN, extra_env=extra)

    prep = await prepare("repeat", args.path, start, FULL, fake)
    try:
        if "error" in prep.run:
            raise SystemExit(prep.run["error"])
        assert prep.target is not None
        print(f"work directory {work}; settings {extra or 'defaults'}")
        await closed_loop(prep.target, prep.router, clients=20, duration=3, bound=30, grace=10, phase="warm-up")
        for index in range(args.rounds):
            stats = await closed_loop(prep.target, prep.router, clients=args.clients, duration=args.seconds,
                                      bound=30, grace=20, phase=f"round {index}")
            summary = stats.summary()
            slowest = max(stats.latencies, default=0.0)
            print(f"round {index}: {summary['answered_per_s']} msg/s, p50 {summary['p50_ms']} ms, "
                  f"p99 {summary['p99_ms']} ms, slowest {round(1000 * slowest)} ms, "
                  f"over 5 s {sum(1 for x in stats.latencies if x > 5)}, lost {summary['lost']} {summary['note']}",
                  flush=True)
            await prep.router.settle(30)
    finally:
        await prep.close()
        await fake.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--path", choices=("widget", "telegram"), default="widget")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--set", action="append", default=[], metavar="SHOPDESK_NAME=value",
                        help="a setting of the server under test (repeatable)")
    asyncio.run(main(parser.parse_args()))

"""Where an inbox page's time goes, on a seeded database (a tool, not a test):

    python -m tests.bench.inbox_profile DATABASE_URL [URL ...] [--repeat N] [--explain] [--profile]

Signs in as the bench admin (``tests/bench/pages.py``; seed with ``python -m tests.bench
--inbox-cache DIR``, whose kept SQLite file can be used directly), then requests each inbox URL
``--repeat`` times through the real web app in this process, and prints per URL: the wall time,
the SQL statements of one request with their times (and, with ``--explain``, their plans:
``EXPLAIN QUERY PLAN`` on SQLite, ``EXPLAIN ANALYZE`` on PostgreSQL), and with ``--profile``
the functions that took the most time over all requests (cProfile)."""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import pstats
import statistics
import time
from typing import Any

from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import event

DEFAULT_URLS = ("/inbox", "/inbox?status=any", "/inbox?status=any&q=return",
                *(f"/inbox?view={v}" for v in ("human", "bot", "mine", "unassigned", "waiting", "snoozed", "resolved")),
                "/inbox/triage/state", "/inbox/notifications/count")


async def _explain(engine: Any, statement: str, params: Any) -> list[str]:
    dialect = engine.dialect.name
    prefix = "EXPLAIN QUERY PLAN " if dialect == "sqlite" else "EXPLAIN (ANALYZE, BUFFERS) "
    async with engine.connect() as conn:
        raw = await conn.get_raw_connection()
        driver = raw.driver_connection
        if dialect == "sqlite":
            cursor = await driver.execute(prefix + statement, params or ())
            return [" " * (3 * (r[1] > 0)) + str(r[3]) for r in await cursor.fetchall()]
        rows = await driver.fetch(prefix + statement, *(params or ()))
        return [str(r[0]) for r in rows]


async def main_async(args: argparse.Namespace) -> None:
    from shopdesk.db import create_engine, session_maker
    from tests.bench.pages import ADMIN_EMAIL, ADMIN_PASSWORD, _csrf
    from tests.web_helpers import build_web_app

    engine = create_engine(args.database)
    current: list[tuple[str, Any, float]] | None = None
    started: dict[int, float] = {}

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def _before(conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool) -> None:
        started[id(cursor)] = time.perf_counter()

    @event.listens_for(engine.sync_engine, "after_cursor_execute")
    def _after(conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool) -> None:
        if current is not None:
            current.append((statement, params, time.perf_counter() - started.pop(id(cursor), time.perf_counter())))

    web = build_web_app(session_maker(engine))
    client = TestClient(TestServer(web.app))
    await client.start_server()
    profiler = cProfile.Profile() if args.profile else None
    try:
        page = await client.get("/login")
        token = _csrf(await page.text())
        resp = await client.post("/login", data={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD, "csrf_token": token},
                                 allow_redirects=False)
        if resp.status != 303:
            raise SystemExit(f"login answered {resp.status}: seed with the bench first")
        for url in args.urls or DEFAULT_URLS:
            headers = {"HX-Request": "true", "HX-Boosted": "true"} if "view=" in url else None
            times: list[float] = []
            statements: list[tuple[str, Any, float]] = []
            for n in range(args.repeat + 1):
                current = []
                if profiler is not None and n:
                    profiler.enable()
                t0 = time.perf_counter()
                resp = await client.get(url, headers=headers)
                body = await resp.read()
                elapsed = time.perf_counter() - t0
                if profiler is not None:
                    profiler.disable()
                if n:
                    times.append(elapsed)
                    statements = current
                current = None
            sql = sum(s[2] for s in statements)
            print(f"\n{url}  status {resp.status}, {len(body) // 1024} KB: median {statistics.median(times) * 1000:.1f} ms, "
                  f"max {max(times) * 1000:.1f} ms; last request {len(statements)} statements, SQL {sql * 1000:.1f} ms")
            for statement, params, seconds in statements:
                one_line = " ".join(statement.split())
                print(f"  {seconds * 1000:7.2f} ms  {one_line[:args.width]}")
                if args.explain and seconds * 1000 >= args.explain_over and one_line.upper().startswith(("SELECT", "WITH")):
                    for line in await _explain(engine, statement, params):
                        print(f"             | {line}")
        if profiler is not None:
            out = io.StringIO()
            stats = pstats.Stats(profiler, stream=out)
            stats.sort_stats(args.sort).print_stats(args.top)
            if args.callers:
                stats.print_callers(args.callers)
            print(out.getvalue())
    finally:
        await client.close()
        await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.inbox_profile", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("database", help="e.g. sqlite+aiosqlite:////tmp/seed.db or postgresql+asyncpg://…")
    parser.add_argument("urls", nargs="*", help="inbox URLs (default: the list, search, each view, the counts)")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--explain", action="store_true", help="print the plan of each SELECT")
    parser.add_argument("--explain-over", type=float, default=0.0, metavar="MS", help="only of statements this slow")
    parser.add_argument("--profile", action="store_true", help="cProfile over all the requests")
    parser.add_argument("--sort", default="tottime", help="cProfile order (tottime, cumulative)")
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--callers", default="", metavar="NAME", help="also who called the functions matching NAME")
    parser.add_argument("--width", type=int, default=160, help="characters of each statement shown")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()

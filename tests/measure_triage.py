"""Measure the triage views at 100,000 conversations (a measurement, not a test of speed).

Run explicitly (not collected with the suite: the name does not start with ``test_``):

    .venv/bin/python -m pytest tests/measure_triage.py -s -q            # both databases
    .venv/bin/python -m pytest tests/measure_triage.py -s -q -k sqlite

Seeds the benchmark's inbox (``tests/bench/seed.py``: 100,000 conversations, 25 % open,
10 % pending, 5 % snoozed, 60 % resolved, a third handed to agents; 150,000 messages), then,
through the real web app signed in as an admin, times ``GET /inbox?view=<each triage view>``
(the whole page: list, filter counts, triage counts) and ``GET /inbox/triage/state`` (what every
tab re-reads after a live event), after one warm-up each, and prints p50 / p95 in ms.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlmodel import col, select

from inbox.models import Conversation
from inbox.queries.triage import TRIAGE_VIEWS
from tests.web_helpers import add_agent, build_web_app, fast_hashing, login  # noqa: F401

CONVERSATIONS = 100_000
MESSAGES = 150_000
REQUESTS = 20


async def _seed(db_url: str) -> dict[str, Any]:
    from tests.bench.seed import seed_postgresql, seed_sqlite

    url = make_url(db_url)
    if url.get_backend_name() == "sqlite":
        return seed_sqlite(str(url.database), CONVERSATIONS, MESSAGES)
    return await seed_postgresql(str(url.host), int(url.port or 5432), str(url.username), str(url.database),
                                 CONVERSATIONS, MESSAGES)


def _ms(values: list[float]) -> str:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
    return f"p50 {statistics.median(ordered) * 1000:6.1f} ms   p95 {p95 * 1000:6.1f} ms"


async def test_measure_triage_views(db_url: str, sessions: Any, aiohttp_client: Any) -> None:
    seeded = await _seed(db_url)
    await add_agent(sessions, "measure@shop.test", name="Measure", admin=True)
    client = await aiohttp_client(build_web_app(sessions).app)
    await login(client, "measure@shop.test")
    print(f"\n{make_url(db_url).get_backend_name()}: seeded {CONVERSATIONS:,} conversations in {seeded}")
    # "/inbox" (the default list, not triage code) is the yardstick on a shared, busy machine
    urls = ["/inbox", *(f"/inbox?view={v}" for v in TRIAGE_VIEWS), "/inbox/triage/state"]
    for url in urls:
        times: list[float] = []
        for i in range(REQUESTS + 1):
            started = time.perf_counter()
            resp = await client.get(url)
            await resp.read()
            assert resp.status == 200, url
            if i:  # the first one warms caches
                times.append(time.perf_counter() - started)
        print(f"  {url:28s} {_ms(times)}")
    # the queries alone (no HTTP, no template): the counts, and one page of each queue
    from inbox.models import Agent
    from inbox.queries.conversations import list_conversations
    from inbox.queries.triage import triage_counts

    async with sessions() as db:
        admin = (await db.exec(select(Agent).where(col(Agent.email) == "measure@shop.test"))).one()
    jobs: list[tuple[str, Any]] = [("triage_counts", lambda db: triage_counts(db, admin))]
    jobs += [(f"list {v}", lambda db, v=v: list_conversations(db, admin, view=v, limit=50)) for v in TRIAGE_VIEWS]
    for label, job in jobs:
        times = []
        for i in range(REQUESTS + 1):
            async with sessions() as db:
                started = time.perf_counter()
                await job(db)
                if i:
                    times.append(time.perf_counter() - started)
        print(f"  {label:28s} {_ms(times)}")
    if make_url(db_url).get_backend_name() == "postgresql":  # the server's own execution times
        from inbox.queries.access import access_condition
        from inbox.queries.triage import triage_condition, triage_order

        async with sessions() as db:
            for view in TRIAGE_VIEWS:
                stmt = (sa.select(sa.func.count()).select_from(Conversation.__table__)  # type: ignore[attr-defined]
                        .where(triage_condition(view, admin, counting=True), access_condition(admin)))
                sql = str(stmt.compile(dialect=db.get_bind().dialect, compile_kwargs={"literal_binds": True}))
                plan = [str(r[0]) for r in (await db.exec(sa.text(f"EXPLAIN ANALYZE {sql}"))).all()]  # type: ignore[call-overload]
                print(f"  count {view:22s} {plan[-1].strip()}  ({plan[1].strip()[:60]})")
            for view in ("human", "unassigned", "waiting"):  # a page's ids in the queue order
                stmt = (sa.select(col(Conversation.id)).where(triage_condition(view, admin, counting=True))
                        .order_by(*triage_order()).limit(50))
                sql = str(stmt.compile(dialect=db.get_bind().dialect, compile_kwargs={"literal_binds": True}))
                plan = [str(r[0]) for r in (await db.exec(sa.text(f"EXPLAIN ANALYZE {sql}"))).all()]  # type: ignore[call-overload]
                print(f"  page {view:23s} {plan[-1].strip()}  ({' / '.join(p.strip()[:50] for p in plan[:4])})")


pytestmark = pytest.mark.filterwarnings("ignore")

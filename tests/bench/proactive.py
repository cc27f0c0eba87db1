"""The proactive-updates scenario (issue 13's target): N shipments change status at once.

``python -m tests.bench --only proactive`` (``make bench BENCH_ARGS="--only proactive"``), or
``python -m tests.bench.proactive [--shipments 10000]`` alone.

The real app (``shopdesk.app.build_app``: the Shopify webhook endpoint with its HMAC, the durable
``shipment_update`` rows, the proactive job, the outbox dispatcher, the real Telegram sender with
its limiter) on a migrated SQLite file, in this process, with the slim loopback Bot API. Seeded:
N orders, each with a verified Telegram customer and a shipment in transit. Then N
``fulfillment_events/create`` webhooks (out for delivery) are posted, 50 at a time, and for every
shipment we record when its webhook's transaction committed (``shipment_update.created_at``), when
its message was committed to the outbox (``message.created_at``) and when the Bot API received it
(all wall clock, server side; the client's "answered" time is only used for the webhook rate). Run twice: with Telegram's limits (30 messages/s
overall, 1/s per chat: the defaults) and with the limiter out of the way, so "within 5 s" can be
judged for the pipeline itself; at 30 msgs/s, 10,000 messages take at least 333 s whatever we do.
``--paid`` adds a run with the default limits and the merchant's paid broadcasts switched on
(``allow_paid_broadcast``: up to 1,000 messages/s, 1/s per chat still).
Then the alert rules are evaluated over 100,000 orders (``tests/measure_alerts.py``, both databases).

The load generator and the server share one event loop; the fake Bot API runs on its own loop in
a thread (Telegram is not on our loop), all in this process on this machine: the numbers are an
upper bound of the pipeline's own cost. Reported too: the platform's floor (n / its rate: 30/s
free, 1,000/s paid) next to the measured time for all sent, how late the server's loop runs a
10 ms timer during the burst, and the process's CPU per shipment (server, load generator and
fake API together).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import os
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from aiohttp.test_utils import TestClient, TestServer
from pydantic import SecretStr

from tests.bench.fake_api import FakeBotApi, FakeBotApiThread
from tests.fakes.telegram import DEFAULT_TOKEN
from tests.pg_cluster import free_port

__all__ = ["run_proactive"]

SECRET = "shpss_bench_0123456789"
CONCURRENCY = 50


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 3)


async def _seed(sessions: Any, n: int) -> None:
    from inbox.models import Channel, Contact, Conversation, ConversationStatus
    from ordersvc.models import Customer, FinancialStatus, FulfillmentStatus, Order, Shipment
    from ordersvc.tracking import ShipmentStatus

    now = datetime.now(UTC)
    async with sessions() as db:
        for start in range(0, n, 2000):
            ids = range(start, min(n, start + 2000))
            customers = [Customer(external_id=f"c{i}", email=f"c{i}@bench.test") for i in ids]
            db.add_all(customers)
            await db.flush()
            orders = [Order(external_id=str(10_000_000 + i), name=f"#{100000 + i}", customer_id=c.id,
                            subtotal_price=0, total_discounts=0, total_price=0, currency="USD",
                            shipping_address={"country_code": "GB"}, placed_at=now - timedelta(days=2),
                            financial_status=FinancialStatus.paid, fulfillment_status=FulfillmentStatus.fulfilled)
                      for i, c in zip(ids, customers, strict=True)]
            contacts = [Contact(channel=Channel.telegram, external_id=str(1_000_000 + i), display_name=f"C{i}",
                                language="en", customer_id=c.id, verified_at=now)
                        for i, c in zip(ids, customers, strict=True)]
            db.add_all(orders + contacts)
            await db.flush()
            db.add_all([Shipment(order_id=o.id, external_id=str(20_000_000 + i), carrier="UPS",
                                 tracking_url="https://www.ups.com/track?tracknum=1Z", status=ShipmentStatus.IN_TRANSIT,
                                 eta=now + timedelta(days=5))
                        for i, o in zip(ids, orders, strict=True)])
            db.add_all([Conversation(contact_id=c.id, channel=Channel.telegram, language="en",
                                     status=ConversationStatus.resolved, resolved_at=now) for c in contacts])
            await db.commit()


async def _one_run(n: int, mode: str, workdir: Path, concurrency: int | None = None,
                   databases: Any = None) -> dict[str, Any]:
    """``mode``: "unlimited" (the limiter off: a self-hosted Bot API), "limited" (Telegram's
    default limits) or "paid" (the default limits, the merchant opted in to paid broadcasts)."""
    from inbox.proactive import PAID_BROADCAST, SETTINGS_KEY, update_settings
    from ordersvc.service import put_setting
    from shopdesk.app import RUNTIME, build_app
    from shopdesk.db import create_engine, migrate, session_maker
    from shopdesk.settings import Settings

    limited = mode != "unlimited"
    # PostgreSQL: a migrated database on a throwaway cluster (tests/bench/databases.py)
    url = await databases.url("postgresql", f"proactive_{mode}") if databases is not None \
        else f"sqlite+aiosqlite:///{workdir / f'{mode}.db'}"
    engine = create_engine(url)
    await migrate(engine)
    sessions = session_maker(engine)
    t0 = time.perf_counter()
    await _seed(sessions, n)
    if mode == "paid":
        async with sessions() as db:
            await put_setting(db, SETTINGS_KEY, {**await update_settings(db), PAID_BROADCAST: True})
            await db.commit()
    seeded_s = time.perf_counter() - t0

    sent: dict[int, float] = {}
    calls = [0]

    def on_reply(chat: int, at: float) -> None:
        calls[0] += 1
        sent.setdefault(chat, time.time())  # wall clock, comparable with the rows' timestamps

    api = FakeBotApi(on_reply)
    extra: dict[str, Any] = {}
    if concurrency is not None:
        extra = {"outbox_concurrency": concurrency, "telegram_connection_pool_size": max(64, concurrency)}
    api_port = free_port()
    api_thread = FakeBotApiThread(api, api_port)  # the platform: not on the server's event loop
    await asyncio.to_thread(api_thread.start)
    settings = Settings(database_url=url, data_dir=workdir, telegram_token=SecretStr(DEFAULT_TOKEN),
                        telegram_webhook_secret=SecretStr("tg-bench-secret_0123456789"),
                        telegram_api_url=f"http://127.0.0.1:{api_port}/bot", public_url="https://shop.example",
                        shopify_webhook_secret=SecretStr(SECRET), shop_timezone="UTC",
                        telegram_per_chat_per_second=1.0 if limited else 0.0,
                        telegram_overall_per_second=30.0 if limited else 0.0,
                        telegram_paid_per_second=1000.0 if limited else 0.0, **extra)
    app = build_app(settings, engine=engine, migrate_on_start=False)
    client = TestClient(TestServer(app))
    await client.start_server()
    runtime = app[RUNTIME]
    # the language models load (or train, in a fresh data dir) in a thread at start: not part of the burst
    await asyncio.wait_for(runtime.bot_ready.wait(), 600)
    today = datetime.now(UTC)  # daytime for the job: quiet hours must not decide the benchmark
    runtime.proactive.clock = lambda: datetime(today.year, today.month, today.day, 12, tzinfo=UTC) + timedelta(days=1)

    answered: dict[int, float] = {}
    failures: list[int] = []
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(n):
        queue.put_nowait(i)

    async def worker() -> None:
        while not queue.empty():
            i = queue.get_nowait()
            body = json.dumps({"id": 30_000_000 + i, "fulfillment_id": 20_000_000 + i, "order_id": 10_000_000 + i,
                               "status": "out_for_delivery", "happened_at": datetime.now(UTC).isoformat()}).encode()
            signature = base64.b64encode(hmac.new(SECRET.encode(), body, hashlib.sha256).digest()).decode()
            resp = await client.post("/webhooks/shopify", data=body, headers={
                "Content-Type": "application/json", "X-Shopify-Hmac-Sha256": signature,
                "X-Shopify-Topic": "fulfillment_events/create", "X-Shopify-Webhook-Id": f"bench-{i}"})
            await resp.read()
            if resp.status == 200:
                answered[1_000_000 + i] = time.perf_counter()
            else:
                failures.append(resp.status)

    lags: list[float] = []

    async def probe() -> None:  # how late the server's event loop runs a 10 ms timer
        while True:
            before = time.perf_counter()
            await asyncio.sleep(0.01)
            lags.append(time.perf_counter() - before - 0.01)

    cpu0 = time.process_time()
    start = time.perf_counter()
    prober = asyncio.create_task(probe())
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    webhooks_s = time.perf_counter() - start
    prober.cancel()
    webhooks_done_at = time.time()
    # wait for every message (bounded: limited runs need n / 30 s)
    deadline = time.perf_counter() + (n / 30.0 * 1.5 + 60 if mode == "limited" else 60 + n / 10)
    while len(sent) < len(answered) and time.perf_counter() < deadline:
        await asyncio.sleep(0.2)
    all_sent_s = time.perf_counter() - start

    # server-side times: the webhook's commit (the shipment_update row is written in its transaction),
    # the message's commit to the outbox, and the wall-clock arrival at the Bot API
    async with sessions() as db:
        rows = (await db.exec(sa.text(  # type: ignore[call-overload]
            "SELECT c.external_id, su.created_at, m.created_at FROM shipment_update su "
            "JOIN shop_order o ON o.id = su.order_id JOIN contact c ON c.customer_id = o.customer_id "
            "JOIN conversation v ON v.contact_id = c.id LEFT JOIN message m ON m.conversation_id = v.id "
            "AND m.author = 'bot'"))).all()
        outcomes = dict((await db.exec(sa.text(  # type: ignore[call-overload]
            "SELECT outcome, count(*) FROM shipment_update GROUP BY outcome"))).all())

    def _ts(value: Any) -> float | None:
        if value is None:
            return None
        moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
        return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()

    committed: dict[int, float] = {}
    enqueued: dict[int, float] = {}
    for chat, update_at, message_at in rows:
        if (start_ts := _ts(update_at)) is not None:
            committed[int(chat)] = start_ts
        if (queued_ts := _ts(message_at)) is not None:
            enqueued[int(chat)] = queued_ts
    to_outbox = [enqueued[c] - committed[c] for c in committed if c in enqueued]
    to_sent = [sent[c] - committed[c] for c in committed if c in sent]
    await client.close()
    await asyncio.to_thread(api_thread.stop)
    await engine.dispose()
    # the platform's floor: at Telegram's overall rate the last of n messages cannot go out sooner
    rate = {"unlimited": None, "limited": 30.0, "paid": 1000.0}[mode]
    return {
        "mode": mode, "database": url.split("+", 1)[0], "outbox_concurrency": settings.outbox_concurrency,
        "webhook_concurrency": settings.webhook_concurrency, "shipments": n,
        "platform_rate_per_s": rate, "platform_floor_all_sent_s": round(n / rate, 1) if rate else None,
        "paid_broadcasts": api.paid_broadcasts, "seed_s": round(seeded_s, 1), "webhook_failures": len(failures),
        "webhooks_s": round(webhooks_s, 2), "webhooks_per_s": round(n / webhooks_s, 1) if webhooks_s else None,
        "answered": len(answered), "enqueued": len(enqueued), "sent": len(sent),
        # a send the sender timed out on (a starved loop) is sent again: Telegram has no idempotency key
        "sent_twice": calls[0] - len(sent),
        "outcomes": {str(k): int(v) for k, v in outcomes.items()},
        "to_outbox_p50_s": _pct(to_outbox, 0.5), "to_outbox_p95_s": _pct(to_outbox, 0.95),
        "to_outbox_max_s": _pct(to_outbox, 1.0),
        "to_sent_p50_s": _pct(to_sent, 0.5), "to_sent_p95_s": _pct(to_sent, 0.95), "to_sent_max_s": _pct(to_sent, 1.0),
        "all_sent_after_s": round(all_sent_s, 1),
        # how far the sends kept up with the webhooks while these were still coming
        "sent_while_webhooks_came": sum(1 for at in sent.values() if at <= webhooks_done_at),
        "send_rate_per_s": round(len(sent) / max(1e-9, max(sent.values()) - min(sent.values())), 1) if len(sent) > 1 else None,
        "process_cpu_s": round(time.process_time() - cpu0, 1),
        "process_cpu_ms_per_shipment": round((time.process_time() - cpu0) * 1000 / max(1, n), 2),
        "loop_lag_p50_s": _pct(lags, 0.5), "loop_lag_p95_s": _pct(lags, 0.95),
    }


def _alerts() -> dict[str, Any]:
    """The alert rules over 100,000 orders: ``tests/measure_alerts.py`` (SQLite and PostgreSQL)."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "pytest", "tests/measure_alerts.py", "-n", "0", "-s", "-q",
                          "-p", "no:cacheprovider"], capture_output=True, text=True, timeout=1800)
    lines = [line for line in out.stdout.splitlines() if "evaluate():" in line]
    return {"orders": 100_000, "output": lines or out.stdout.strip().splitlines()[-6:]}


async def run_proactive(n: int = 10_000, *, limited_too: bool = True, alerts: bool = True,
                        unlimited: bool = True, paid: bool = False, concurrency: int | None = None,
                        postgres: bool = False) -> dict[str, Any]:
    from tests.bench.databases import Databases

    with tempfile.TemporaryDirectory(prefix="shopdesk-bench-proactive-") as tmp:
        work = Path(tmp)
        databases = Databases(work) if postgres else None
        result: dict[str, Any] = {"load_before": os.getloadavg()}
        try:
            for mode, wanted in (("unlimited", unlimited), ("limited", limited_too), ("paid", paid)):
                if wanted:
                    result[mode] = await _one_run(n, mode, work, concurrency, databases)
                    result[f"load_after_{mode}"] = os.getloadavg()
        finally:
            if databases is not None:
                databases.close()
        result["load_after"] = os.getloadavg()
    if alerts:
        result["alerts"] = await asyncio.to_thread(_alerts)
    return result


def print_report(result: dict[str, Any]) -> None:
    print(f"load average before {result['load_before']}, after {result['load_after']}")
    for key in ("unlimited", "limited", "paid"):
        run = result.get(key)
        if not run:
            continue
        print(f"\n{key}: {json.dumps(run, indent=1)}")
    if "alerts" in result:
        print("\nalert evaluation:", *result["alerts"]["output"], sep="\n  ")


def main() -> None:
    parser = argparse.ArgumentParser(description="Proactive updates: N shipments change status at once.")
    parser.add_argument("--shipments", type=int, default=10_000)
    parser.add_argument("--no-limited", action="store_true", help="skip the run with Telegram's limits")
    parser.add_argument("--no-unlimited", action="store_true", help="skip the run with the limiter out of the way")
    parser.add_argument("--no-alerts", action="store_true", help="skip the alert evaluation over 100,000 orders")
    parser.add_argument("--paid", action="store_true",
                        help="also run with Telegram's limits and the merchant's paid broadcasts on (1,000/s)")
    parser.add_argument("--concurrency", type=int, default=None,
                        help="SHOPDESK_OUTBOX_CONCURRENCY for the runs (default: the setting's default)")
    parser.add_argument("--postgres", action="store_true",
                        help="run on PostgreSQL (a throwaway cluster, tests/pg_cluster.py) instead of SQLite")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    result = asyncio.run(run_proactive(args.shipments, limited_too=not args.no_limited, alerts=not args.no_alerts,
                                       unlimited=not args.no_unlimited, paid=args.paid,
                                       concurrency=args.concurrency, postgres=args.postgres))
    print_report(result)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1, default=str))


if __name__ == "__main__":
    main()

"""Shopify deliveries are bounded (``SHOPDESK_SHOPIFY_WEBHOOK_CONCURRENCY``): a burst waits its
turn before the transaction instead of filling the event loop, and every delivery still lands
once. SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from typing import Any

from pydantic import SecretStr

from ordersvc.webhooks import ShopifyWebhooks, _Effect
from shopdesk.settings import Settings


async def test_a_burst_runs_at_most_the_bound_at_once_and_each_delivery_once(sessions) -> None:  # type: ignore[no-untyped-def]
    running = {"now": 0, "most": 0, "done": 0}
    postgres = sessions.kw["bind"].dialect.name == "postgresql"
    # on PostgreSQL a handler holds its transaction until `overlap` others run with it (or 2 s
    # pass), so the test sees what the gate allows, not how fast a loaded machine starts them
    overlap = {"want": 2}
    reached = asyncio.Event()

    async def handler(session: Any, payload: dict[str, Any]) -> _Effect:
        running["now"] += 1
        running["most"] = max(running["most"], running["now"])
        if postgres:
            if running["now"] >= overlap["want"]:
                reached.set()
            try:
                async with asyncio.timeout(2):
                    await reached.wait()
            except TimeoutError:
                pass
        else:
            await asyncio.sleep(0.01)  # SQLite's one connection: the others wait for it anyway
        running["now"] -= 1
        running["done"] += 1
        return _Effect(detail=f"handled {payload['n']}")

    hooks = ShopifyWebhooks(sessions, lambda: ["secret"], gate=asyncio.Semaphore(2))
    results = await asyncio.gather(*(hooks.deliver(f"burst-{n}", "orders/updated", handler, {"n": n})
                                     for n in range(10)))
    assert [r.detail if r else None for r in results] == [f"handled {n}" for n in range(10)]
    # SQLite's one connection serializes the transactions anyway; PostgreSQL's pool would not
    assert running == {"now": 0, "most": 2 if postgres else 1, "done": 10}
    # a replay of the same deliveries is a duplicate, bounded or not
    assert await hooks.deliver("burst-3", "orders/updated", handler, {"n": 3}) is None

    unbounded = ShopifyWebhooks(sessions, lambda: ["secret"])
    running["most"] = 0
    overlap["want"] = 3
    reached.clear()
    await asyncio.gather(*(unbounded.deliver(f"free-{n}", "orders/updated", handler, {"n": n}) for n in range(6)))
    assert running["most"] > 2 if postgres else running["most"] == 1


def test_the_bound_defaults_by_database_and_can_be_set(tmp_path) -> None:  # type: ignore[no-untyped-def]
    base: dict[str, Any] = {"data_dir": tmp_path, "secret_key": SecretStr("k" * 32)}
    assert Settings(database_url="sqlite+aiosqlite:///x.db", **base).webhook_concurrency == 4
    assert Settings(database_url="postgresql+asyncpg://u@h/db", **base).webhook_concurrency == 16
    assert Settings(database_url="sqlite+aiosqlite:///x.db", shopify_webhook_concurrency=32,
                    **base).webhook_concurrency == 32

"""Measure alert evaluation over 100,000 orders (a measurement, not a test of speed).

Run explicitly (it is not collected with the suite, its name does not start with ``test_``):

    .venv/bin/python -m pytest tests/measure_alerts.py -n 0 -s -q

On each database it bulk-loads 100,000 orders placed over the last 120 days (two lines each,
200 SKUs of 50 products, one shipment per order, a few late or in exception), 10,000 returns,
2,000 conversations with escalations and 400 stock levels, then times ``evaluate`` (every rule on)
five times at a fixed ``now`` and prints each rule's findings and the min / median seconds.
"""

from __future__ import annotations

import os
import random
import shutil
import statistics
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from inbox.alerts.config import AlertConfig
from inbox.alerts.rules import evaluate
from inbox.models import AuditEvent, Channel, Contact, Conversation
from ordersvc.models import (
    InventoryLevel,
    Order,
    OrderLine,
    ProductVariant,
    ReturnAuthorization,
    ReturnLine,
    Shipment,
    Warehouse,
)

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
ORDERS = 100_000
RETURNS = 10_000
REASONS = ["too_small", "too_large", "damaged", "defective", "not_as_described", "wrong_item", "changed_mind", "other"]


async def _load(sessions: Any) -> None:
    rnd = random.Random(13)
    skus = [f"SKU-{i:03d}" for i in range(200)]
    async with sessions() as s:
        await s.exec(sa.insert(Warehouse), params=[{"id": 1, "code": "MAIN", "name": "Main", "is_default": True},
                                                    {"id": 2, "code": "EAST", "name": "East", "is_default": False}])
        await s.exec(sa.insert(ProductVariant), params=[
            {"sku": sku, "product_key": f"product-{i // 4}", "product_title": f"Product {i // 4}", "price": "20",
             "currency": "USD", "final_sale": False} for i, sku in enumerate(skus)])
        await s.exec(sa.insert(InventoryLevel), params=[
            {"warehouse_id": w, "sku": sku, "on_hand": rnd.randint(0, 60), "reserved": rnd.randint(0, 10),
             "safety_stock": 5, "updated_at": NOW} for w in (1, 2) for sku in skus])
        orders, lines, shipments = [], [], []
        for i in range(1, ORDERS + 1):
            placed = NOW - timedelta(minutes=rnd.randint(0, 120 * 24 * 60))
            orders.append({"id": i, "source": "online_store", "external_id": str(i), "name": f"#{i}", "currency": "USD",
                           "subtotal_price": "40", "total_tax": "0", "total_shipping": "0", "total_discounts": "0",
                           "total_price": "40", "financial_status": "paid", "fulfillment_status": "fulfilled",
                           "placed_at": placed, "tags": [], "stock_reserved": False, "created_at": placed,
                           "updated_at": placed})
            for j in range(2):
                lines.append({"id": 2 * i - 1 + j, "order_id": i, "sku": rnd.choice(skus), "title": "Item",
                              "quantity": rnd.randint(1, 3), "unit_price": "20", "total_discount": "0",
                              "returnable": True, "final_sale": False, "fulfilled_quantity": 1})
            shipped = placed + timedelta(days=1)
            status = "delivered" if shipped < NOW - timedelta(days=6) else rnd.choice(["in_transit", "in_transit", "exception"])
            shipments.append({"id": i, "order_id": i, "external_id": str(i), "carrier": "UPS",
                              "tracking_number": f"1Z{i:016d}", "status": status, "shipped_at": shipped,
                              "eta": shipped + timedelta(days=rnd.randint(2, 8)), "created_at": shipped,
                              "updated_at": shipped, "last_event_at": shipped})
        for start in range(0, ORDERS, 20_000):
            await s.exec(sa.insert(Order), params=orders[start:start + 20_000])
        for start in range(0, len(lines), 20_000):
            await s.exec(sa.insert(OrderLine), params=lines[start:start + 20_000])
        for start in range(0, ORDERS, 20_000):
            await s.exec(sa.insert(Shipment), params=shipments[start:start + 20_000])
        rmas, rlines = [], []
        for k in range(1, RETURNS + 1):
            line = rnd.choice(lines)
            at = NOW - timedelta(minutes=rnd.randint(0, 90 * 24 * 60))
            rmas.append({"id": k, "rma_number": f"R{k}", "order_id": line["order_id"], "status": "requested",
                         "resolution": "refund", "method": "mail", "currency": "USD", "refund_amount": "0",
                         "credit_amount": "0", "created_by": "bot", "requested_at": at, "created_at": at, "updated_at": at})
            rlines.append({"rma_id": k, "order_line_id": line["id"], "quantity": 1, "reason": rnd.choice(REASONS),
                           "condition": "unopened", "reason_note": "fits oddly" if k % 5 == 0 else None})
        await s.exec(sa.insert(ReturnAuthorization), params=rmas)
        await s.exec(sa.insert(ReturnLine), params=rlines)
        await s.exec(sa.insert(Contact), params=[
            {"id": c, "channel": "telegram", "external_id": str(c), "created_at": NOW, "last_seen_at": NOW}
            for c in range(1, 2001)])
        await s.exec(sa.insert(Conversation), params=[
            {"id": c, "contact_id": c, "channel": Channel.telegram.value, "status": "open", "priority": "normal",
             "owner": "agent" if c % 3 == 0 else "bot", "labels": [], "bot_state": {},
             "last_message_at": NOW - timedelta(hours=c % 48), "created_at": NOW - timedelta(hours=c % 48),
             "updated_at": NOW} for c in range(1, 2001)])
        await s.exec(sa.insert(AuditEvent), params=[
            {"conversation_id": c, "actor": "bot", "action": "conversation.escalated", "detail": {"reason": "handoff"},
             "created_at": NOW - timedelta(hours=c % 48)} for c in range(3, 2001, 3)])
        await s.commit()


async def test_measure_alert_evaluation(sessions: Any, db_url: str) -> None:
    started = time.perf_counter()
    await _load(sessions)
    loaded = time.perf_counter() - started
    if db_url.startswith("postgresql"):
        async with sessions() as s:  # autovacuum would do this a minute later
            await s.exec(sa.text("ANALYZE"))
            await s.commit()
    config = AlertConfig.defaults()
    from inbox.alerts.config import RuleConfig

    rule_times: dict[str, float] = {}
    for rule in config.rules:
        only = AlertConfig({name: RuleConfig(name == rule, c.params) for name, c in config.rules.items()})
        async with sessions() as s:
            t0 = time.perf_counter()
            await evaluate(s, NOW, only, timezone="Europe/Berlin")
            rule_times[rule] = round(time.perf_counter() - t0, 3)
    timings: list[float] = []
    found: list[Any] = []
    for _ in range(5):
        async with sessions() as s:
            t0 = time.perf_counter()
            found = await evaluate(s, NOW, config, timezone="Europe/Berlin")
            timings.append(time.perf_counter() - t0)
    per_rule: dict[str, int] = {}
    for f in found:
        per_rule[f.rule] = per_rule.get(f.rule, 0) + 1
    kind = db_url.split(":", 1)[0]
    keep = os.environ.get("MEASURE_KEEP_SQLITE")
    if keep and db_url.startswith("sqlite"):
        shutil.copyfile(db_url.split("///", 1)[1], keep)
    print(f"\n[{kind}] loaded {ORDERS:,} orders in {loaded:.1f}s; evaluate(): min {min(timings):.3f}s, "
          f"median {statistics.median(timings):.3f}s over {len(timings)} runs; findings {per_rule}; "
          f"per rule alone (s) {rule_times}")

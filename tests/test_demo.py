"""The demo shop: deterministic, idempotent, and covering every situation the bot must handle."""

from __future__ import annotations

import re
import shutil
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlmodel import select

from ordersvc.models import (
    Customer,
    FinancialStatus,
    FulfillmentStatus,
    InventoryLevel,
    Order,
    OrderLine,
    ProductVariant,
    Refund,
    ReturnAuthorization,
    ReturnLine,
    RmaStatus,
    Shipment,
    ShipmentLine,
    SourceChannel,
    StoreCredit,
    TrackingEvent,
    Warehouse,
)
from ordersvc.serialize import order_document, order_documents
from ordersvc.service import find_order, order_bundle, shipment_is_late, verify_customer
from ordersvc.tracking import (
    Carrier,
    ShipmentStatus,
    detect_carrier,
    find_tracking_numbers,
    status_from_carrier_text,
    tracking_url,
)
from shopdesk.db import create_engine, session_maker
from shopdesk.demo import DEMO_LOCALES, SHOWCASE, demo_anchor, seed_demo_orders

NOW = datetime(2026, 3, 18, 15, 42, tzinfo=UTC)
ANCHOR = demo_anchor(NOW)
TABLES = (Customer, ProductVariant, Warehouse, InventoryLevel, Order, OrderLine, Shipment, ShipmentLine,
          TrackingEvent, ReturnAuthorization, ReturnLine, Refund, StoreCredit)
CARRIERS = {"UPS": {Carrier.UPS}, "USPS": {Carrier.USPS, Carrier.S10}, "FedEx": {Carrier.FEDEX},
            "DHL Express": {Carrier.DHL}}


async def row_counts(sessions: Any) -> dict[str, int]:
    async with sessions() as session:
        return {
            t.__tablename__: (await session.exec(select(sa.func.count()).select_from(t))).one()  # type: ignore
            for t in TABLES
        }


def without_db_ids(value: Any) -> Any:
    """The document minus our own row ids (which differ between databases)."""
    if isinstance(value, dict):
        return {
            k: without_db_ids(v)
            for k, v in value.items()
            if k != "id" and not (k.endswith("_id") and k != "external_id")
        }
    if isinstance(value, list):
        return [without_db_ids(v) for v in value]
    return value


async def all_documents(sessions: Any) -> dict[tuple[str, str], Any]:
    async with sessions() as session:
        orders = list((await session.exec(select(Order).order_by(Order.id))).all())  # type: ignore[arg-type]
        docs = await order_documents(session, orders, now=NOW)
        # the batch loader and the one-order loader agree
        assert docs[0] == await order_document(session, orders[0], now=NOW)
        assert docs[-1] == await order_document(session, orders[-1], now=NOW)
        return {(d["source"], d["external_id"]): without_db_ids(d) for d in docs}


async def other_database(tmp_path: Path, template: Path, name: str) -> tuple[Any, Any]:
    path = tmp_path / f"{name}.db"
    shutil.copyfile(template, path)
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    return engine, session_maker(engine)


async def test_same_seed_same_shop_on_two_databases(sessions: Any, sqlite_template: Path, tmp_path: Path) -> None:
    first = await seed_demo_orders(sessions, seed=7, now=NOW)
    engine, other = await other_database(tmp_path, sqlite_template, "other")
    try:
        second = await seed_demo_orders(other, seed=7, now=NOW + timedelta(hours=5))  # same day: same anchor
        assert first.added == second.added and first.examples == second.examples
        docs_a, docs_b = await all_documents(sessions), await all_documents(other)
        assert len(docs_a) == first.orders >= 300
        assert docs_a == docs_b
        async with sessions() as sa_, other() as sb:
            for model, key in ((Customer, Customer.external_id), (InventoryLevel, InventoryLevel.sku),
                               (ProductVariant, ProductVariant.sku)):
                rows_a = [without_db_ids(r.model_dump()) for r in (await sa_.exec(select(model).order_by(key, model.id))).all()]
                rows_b = [without_db_ids(r.model_dump()) for r in (await sb.exec(select(model).order_by(key, model.id))).all()]
                assert rows_a == rows_b, model.__name__
    finally:
        await engine.dispose()


async def test_reseeding_adds_nothing(sessions: Any) -> None:
    first = await seed_demo_orders(sessions, seed=7, now=NOW)
    counts = await row_counts(sessions)
    assert sum(first.added.values()) == sum(counts.values())
    again = await seed_demo_orders(sessions, seed=7, now=NOW)
    assert set(again.added.values()) == {0}
    assert "nothing added" in again.text()
    # another day, even another seed: the natural keys are the same, so still nothing new
    later = await seed_demo_orders(sessions, seed=8, now=NOW + timedelta(days=3))
    assert set(later.added.values()) == {0}
    assert await row_counts(sessions) == counts
    assert later.examples == first.examples


async def test_another_seed_another_shop(sqlite_url: str, sqlite_template: Path, tmp_path: Path) -> None:
    shops = []
    for seed in (7, 8):
        engine, sessions = await other_database(tmp_path, sqlite_template, f"seed{seed}")
        try:
            await seed_demo_orders(sessions, seed=seed, now=NOW)
            async with sessions() as session:
                rows = (await session.exec(select(Customer).order_by(Customer.external_id))).all()  # type: ignore
                # the showcase personas are fixed; everybody else comes from the seed
                shops.append([(c.first_name, c.email) for c in rows if (c.external_id or "")[-1:].isdigit()])
        finally:
            await engine.dispose()
    assert len(shops[0]) == len(shops[1]) >= 100 and shops[0] != shops[1]


async def test_demo_covers_every_situation(sessions: Any) -> None:
    summary = await seed_demo_orders(sessions, seed=7, now=NOW)
    async with sessions() as session:
        orders = (await session.exec(select(Order))).all()
        customers = (await session.exec(select(Customer))).all()
        lines = (await session.exec(select(OrderLine))).all()
        shipments = (await session.exec(select(Shipment))).all()
        ship_lines = (await session.exec(select(ShipmentLine))).all()
        events = (await session.exec(select(TrackingEvent))).all()
        rmas = (await session.exec(select(ReturnAuthorization))).all()
        return_lines = (await session.exec(select(ReturnLine))).all()
        refunds = (await session.exec(select(Refund))).all()
        credits = (await session.exec(select(StoreCredit))).all()
        variants = (await session.exec(select(ProductVariant))).all()
        warehouses = (await session.exec(select(Warehouse))).all()
        levels = (await session.exec(select(InventoryLevel))).all()

    # size and people
    assert len(orders) >= 300 and summary.orders == len(orders)
    assert len(customers) >= 100 and summary.customers == len(customers)
    assert {c.locale for c in customers} >= set(DEMO_LOCALES)
    names = " ".join(f"{c.first_name} {c.last_name}" for c in customers)
    assert re.search(r"[А-Яа-я]", names)  # Cyrillic
    assert re.search(r"[ạ-ỹđĐ]|Nguyễn", names)  # Vietnamese
    assert re.search(r"[王张刘陈]", names) and re.search(r"[陳張劉黃]", names)  # simplified, traditional
    by_locale = defaultdict(list)
    for c in customers:
        by_locale[c.locale].append(f"{c.first_name}{c.last_name}")
    assert all(re.search(r"[А-Яа-я]", n) for n in by_locale["ru"])
    assert all(re.search(r"[\u4e00-\u9fff]", n) for n in by_locale["zh-CN"] + by_locale["zh-TW"])
    emails = [c.email for c in customers] + [o.email for o in orders if o.email]
    assert all(re.fullmatch(r"[a-z0-9.]+@([a-z]+\.)?example\.(com|org|net)", e) for e in emails), emails
    assert len({c.email for c in customers}) == len(customers)

    # order names and channels
    online = {o.name for o in orders if o.source == SourceChannel.online_store}
    assert {f"#{n}" for n in range(1001, 1001 + len(online))} == online
    by_source = Counter(o.source for o in orders)
    assert by_source[SourceChannel.amazon] and by_source[SourceChannel.ebay] and by_source[SourceChannel.pos]
    for o in orders:
        if o.source == SourceChannel.amazon:
            assert re.fullmatch(r"\d{3}-\d{7}-\d{7}", o.name)
        if o.source == SourceChannel.ebay:
            assert re.fullmatch(r"\d{2}-\d{5}-\d{5}", o.name)
        if o.source == SourceChannel.pos:
            assert o.name.startswith("POS-") and not any(s.order_id == o.id for s in shipments)
        assert o.placed_at < ANCHOR and o.updated_at >= o.placed_at

    # shipments: every status, late, stalled, exceptions, multi-shipment
    assert {s.status for s in shipments} == set(ShipmentStatus)
    late = [s for s in shipments if shipment_is_late(s, NOW)]
    assert late
    stalled = [s for s in shipments if s.status == ShipmentStatus("in_transit") and s.last_event_at
               and NOW - s.last_event_at >= timedelta(days=5)]
    assert stalled and all(s in late for s in stalled)
    per_order = Counter(s.order_id for s in shipments)
    assert any(n >= 2 for n in per_order.values())
    delivered = [s for s in shipments if s.status == ShipmentStatus("delivered")]
    assert any(NOW - s.delivered_at < timedelta(days=30) for s in delivered)  # type: ignore[operator]
    assert any(NOW - s.delivered_at > timedelta(days=30) for s in delivered)  # type: ignore[operator]
    assert all(s.delivered_at is not None for s in delivered)

    # tracking numbers are valid for their carrier, events read like the carrier's words
    events_of: dict[int, list[TrackingEvent]] = defaultdict(list)
    for ev in events:
        events_of[ev.shipment_id].append(ev)
    for s in shipments:
        if s.status == ShipmentStatus("pending"):
            assert not events_of[s.id] and s.tracking_number is None  # type: ignore[index]
            continue
        number = s.tracking_number or ""
        carrier = detect_carrier(number)
        assert carrier in CARRIERS[s.carrier or ""], (s.carrier, number)
        assert [m.number for m in find_tracking_numbers(f"where is my parcel {number} please?")] == [number]
        assert s.tracking_url == tracking_url(carrier, number)  # type: ignore[arg-type]
        evs = sorted(events_of[s.id], key=lambda e: e.occurred_at)  # type: ignore[index]
        assert evs and evs[-1].occurred_at == s.last_event_at
        assert all(e.occurred_at < ANCHOR for e in evs) and s.shipped_at <= evs[0].occurred_at  # type: ignore[operator]
        for e in evs:
            assert status_from_carrier_text(e.message) == e.status, e.message
            assert e.location
        if s.status not in {ShipmentStatus("expired"), ShipmentStatus("in_transit")}:
            assert evs[-1].status == s.status
    assert len(events) > 4 * len(shipments) // 2

    # lines, final sale, fulfilment bookkeeping
    assert any(ln.final_sale and ln.product_type == "Gift Cards" for ln in lines)
    assert any(ln.final_sale and ln.product_type == "Underwear" for ln in lines)
    assert all(ln.returnable != ln.final_sale for ln in lines)
    assert {v.product_type for v in variants} >= {"Shoes", "T-Shirts", "Jackets", "Accessories", "Gift Cards",
                                                    "Underwear"}
    assert all(v.final_sale == (v.product_type in {"Gift Cards", "Underwear"}) for v in variants)
    shipped_qty: Counter[int] = Counter()
    for sl in ship_lines:
        shipped_qty[sl.order_line_id] += sl.quantity
    assert all(shipped_qty[ln.id] == ln.fulfilled_quantity for ln in lines  # type: ignore[index]
               if ln.order_id not in {o.id for o in orders if o.source == SourceChannel.pos})

    # order states
    open_unfulfilled = [o for o in orders if o.fulfillment_status == FulfillmentStatus.unfulfilled
                        and o.cancelled_at is None]
    assert open_unfulfilled and all(o.stock_reserved for o in open_unfulfilled)
    assert any(o.fulfillment_status == FulfillmentStatus.partial and o.stock_reserved for o in orders)
    cancelled = [o for o in orders if o.cancelled_at is not None]
    assert cancelled and not any(o.stock_reserved for o in cancelled)
    assert any(o.financial_status == FinancialStatus.refunded for o in orders)
    refunded_total: Counter[int] = Counter()
    for r in refunds:
        refunded_total[r.order_id] += r.amount  # type: ignore[assignment]
    for o in orders:
        if o.financial_status == FinancialStatus.refunded:
            assert refunded_total[o.id] == o.total_price  # type: ignore[index]

    # returns in every status, with consistent money and timestamps
    assert {r.status for r in rmas} == set(RmaStatus)
    assert all(re.fullmatch(r"R\d+-\d+", r.rma_number) for r in rmas)
    assert {rl.rma_id for rl in return_lines} == {r.id for r in rmas}
    for r in rmas:
        stamp = getattr(r, f"{r.status.value}_at", r.requested_at) or r.requested_at
        assert stamp < ANCHOR and r.requested_at <= stamp
        if r.status == RmaStatus.credited:
            assert any(c.rma_id == r.id and c.amount == r.credit_amount for c in credits)
        if r.status == RmaStatus.refunded:
            assert any(f.rma_id == r.id and f.amount == r.refund_amount for f in refunds)
        if r.label_tracking_number:
            assert detect_carrier(r.label_tracking_number) == Carrier.UPS

    # stock: two warehouses, low levels, reservations that match the open orders and exchanges
    assert len(warehouses) == 2 and sum(w.is_default for w in warehouses) == 1
    default = next(w for w in warehouses if w.is_default)
    assert {lv.warehouse_id for lv in levels} == {w.id for w in warehouses}
    assert any(lv.available <= lv.safety_stock for lv in levels if lv.warehouse_id == default.id)
    wanted: Counter[str] = Counter()
    for o in orders:
        if o.stock_reserved:
            for ln in lines:
                if ln.order_id == o.id and ln.sku:
                    wanted[ln.sku] += ln.quantity - ln.fulfilled_quantity
    open_states = {RmaStatus.requested, RmaStatus.approved, RmaStatus.label_issued, RmaStatus.in_transit,
                   RmaStatus.received}
    open_rmas = {r.id for r in rmas if r.status in open_states}
    for rl in return_lines:
        if rl.rma_id in open_rmas and rl.exchange_sku:
            wanted[rl.exchange_sku] += rl.quantity
    held = {lv.sku: lv.reserved for lv in levels if lv.warehouse_id == default.id and lv.reserved}
    assert held == {sku: n for sku, n in wanted.items() if n} and held
    assert all(lv.reserved == 0 for lv in levels if lv.warehouse_id != default.id)
    assert all(lv.on_hand >= lv.reserved for lv in levels)


async def test_summary_examples_work(sessions: Any) -> None:
    summary = await seed_demo_orders(sessions, seed=7, now=NOW)
    listed = {scenario for _n, scenario, _d, shown in SHOWCASE if shown}
    assert {e.scenario for e in summary.examples} == listed >= {
        "in_transit", "delivered_returnable", "late", "exception", "unfulfilled", "multi_shipment", "final_sale",
    }
    text = summary.text()
    assert "#1001" in text and "ana@example.com" in text
    async with sessions() as session:
        for e in summary.examples:
            by_email = await verify_customer(session, e.order_name, e.email.upper())
            by_postal = await verify_customer(session, e.order_name, e.postal_code.lower())
            assert by_email is not None and by_postal is not None and by_email.id == by_postal.id
            assert await verify_customer(session, e.order_name, "someone.else@example.com") is None
            bundle = await order_bundle(session, by_email.id)  # type: ignore[arg-type]
            statuses = [sb.shipment.status.value for sb in bundle.shipments]
            if e.scenario == "in_transit":
                assert statuses == ["in_transit"] and not shipment_is_late(bundle.shipments[0].shipment, NOW)
            elif e.scenario == "delivered_returnable":
                shipment = bundle.shipments[0].shipment
                assert statuses == ["delivered"] and NOW - shipment.delivered_at < timedelta(days=30)  # type: ignore
                assert all(ln.returnable for ln in bundle.lines)
            elif e.scenario == "late":
                assert statuses == ["in_transit"] and shipment_is_late(bundle.shipments[0].shipment, NOW)
            elif e.scenario == "exception":
                assert statuses == ["exception"]
                assert "incorrect address" in e.description
                assert "incorrect address" in bundle.shipments[0].events[0].message.lower()  # what the summary says
            elif e.scenario == "unfulfilled":
                assert statuses == [] and bundle.order.stock_reserved and bundle.order.cancelled_at is None
                assert bundle.order.financial_status == FinancialStatus.paid
            elif e.scenario == "multi_shipment":
                assert statuses == ["delivered", "in_transit"]
            elif e.scenario == "final_sale":
                assert bundle.lines and all(ln.final_sale and not ln.returnable for ln in bundle.lines)
            elif e.scenario == "outside_window":
                shipment = bundle.shipments[0].shipment
                assert NOW - shipment.delivered_at > timedelta(days=30)  # type: ignore[operator]
        # the showcase orders hold what the table says
        for name, scenario, _d, _shown in SHOWCASE:
            order = await find_order(session, name)
            assert order is not None
            bundle = await order_bundle(session, order.id)  # type: ignore[arg-type]
            statuses = {sb.shipment.status.value for sb in bundle.shipments}
            rma_statuses = {rb.rma.status.value for rb in bundle.returns}
            if scenario in {s.value for s in ShipmentStatus}:
                assert statuses == {scenario}, name
            if scenario.startswith("rma_"):
                assert rma_statuses == {scenario[4:]}, name
            if scenario == "cancelled":
                assert order.cancelled_at is not None and not order.stock_reserved
            if scenario == "refunded":
                assert order.financial_status == FinancialStatus.refunded and rma_statuses == {"refunded"}
            if scenario == "partial":
                assert order.fulfillment_status == FulfillmentStatus.partial and order.stock_reserved

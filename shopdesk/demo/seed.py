"""Writing the planned demo shop into the database, idempotently, in one transaction."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, async_sessionmaker
from sqlmodel import SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from ordersvc.models import (
    Customer,
    InventoryLevel,
    Order,
    OrderLine,
    ProductVariant,
    Refund,
    ReturnAuthorization,
    ReturnLine,
    Shipment,
    ShipmentLine,
    SourceChannel,
    StoreCredit,
    TrackingEvent,
    Warehouse,
)
from shopdesk.demo.catalog import VARIANTS, WAREHOUSES
from shopdesk.demo.planner import Planner
from shopdesk.demo.rows import Row, demo_anchor, new_row
from shopdesk.demo.scenarios import build
from shopdesk.demo.summary import SHOWCASE, DemoExample, DemoSummary


async def _existing(session: AsyncSession, column: Any, values: Sequence[Any]) -> set[Any]:
    found: set[Any] = set()
    values = list(values)
    for start in range(0, len(values), 500):
        chunk = values[start : start + 500]
        found.update((await session.exec(select(column).where(column.in_(chunk)))).all())
    return found


async def _insert(
    conn: AsyncConnection, model: type[SQLModel], rows: Sequence[Row], key: tuple[str, ...] = ()
) -> None:
    """Bulk-insert ``rows`` in pages; with a ``key`` (columns unique within ``rows``), write the new
    ids back into the rows (RETURNING is batched on both databases, its order is not relied upon)."""
    if not rows:
        return
    table: sa.Table = model.__table__  # type: ignore[attr-defined]
    names = [c.name for c in table.columns if not (c.name == "id" and c.primary_key)]
    params = [{name: row[name] for name in names} for row in rows]
    if not key:
        await conn.execute(sa.insert(table), params)
        return
    stmt = sa.insert(table).returning(table.c.id, *(table.c[k] for k in key))
    ids = {tuple(r[1:]): r[0] for r in (await conn.execute(stmt, params)).all()}
    for row in rows:
        row["id"] = ids[tuple(row[k] for k in key)]


async def seed_demo_orders(
    sessionmaker: async_sessionmaker[AsyncSession], *, seed: int = 7, now: datetime | None = None
) -> DemoSummary:
    """Seed the demo shop (see the module docstring) and say what to try."""
    anchor = demo_anchor(now)
    planner = Planner(seed, anchor)
    build(planner)
    stock = planner.inventory()
    added: dict[str, int] = defaultdict(int)

    async with sessionmaker() as session:
        conn = await session.connection()
        # warehouses and catalogue
        have_wh = await _existing(session, col(Warehouse.code), [w[0] for w in WAREHOUSES])
        new_wh = [
            new_row(Warehouse, code=c, name=n, address=dict(addr), is_default=d)
            for c, n, addr, d in WAREHOUSES
            if c not in have_wh
        ]
        have_sku = await _existing(session, col(ProductVariant.sku), [v.sku for v in VARIANTS])
        new_variants = [
            new_row(
                ProductVariant, sku=v.sku, product_key=v.product.key, product_title=v.product.title,
                variant_title=v.variant_title, product_type=v.product.product_type, price=v.price, currency="USD",
                final_sale=v.product.final_sale,
            )
            for v in VARIANTS
            if v.sku not in have_sku
        ]
        # customers: those with an order
        used = {o.customer_key for o in planner.orders if o.customer_key}
        people = [p for p in planner.people if p.key in used]
        have_cust = await _existing(session, col(Customer.external_id), [p.key for p in people])
        new_customers = []
        for p in people:
            if p.key in have_cust:
                continue
            since = (p.since or anchor) - timedelta(days=3, hours=2)
            new_customers.append(
                new_row(Customer, external_id=p.key, email=p.email, phone=p.phone, first_name=p.first,
                     last_name=p.last, locale=p.locale, created_at=since, updated_at=since)
            )
        await _insert(conn, Warehouse, new_wh)
        await _insert(conn, ProductVariant, new_variants)
        await _insert(conn, Customer, new_customers)
        added["warehouses"] += len(new_wh)
        added["product_variants"] += len(new_variants)
        added["customers"] += len(new_customers)

        keys = [p.key for p in people]
        customer_ids: dict[str, int] = {}
        for start in range(0, len(keys), 500):
            customer_ids.update(
                (await session.exec(select(Customer.external_id, Customer.id).where(
                    col(Customer.external_id).in_(keys[start : start + 500])))).all()  # type: ignore[arg-type]
            )
        warehouse_ids: dict[str, int] = dict(
            (await session.exec(select(Warehouse.code, Warehouse.id).where(  # type: ignore[arg-type]
                col(Warehouse.code).in_([w[0] for w in WAREHOUSES])))).all()
        )

        # orders not there yet, by (source, external id)
        have_orders = {
            (SourceChannel(src), ext)
            for src, ext in (await session.exec(select(Order.source, Order.external_id).where(
                col(Order.external_id).in_([o.row.external_id for o in planner.orders])))).all()
        }
        fresh = [o for o in planner.orders if (SourceChannel(o.row.source), o.row.external_id) not in have_orders]
        for o in fresh:
            o.row.customer_id = customer_ids.get(o.customer_key) if o.customer_key else None
        await _insert(conn, Order, [o.row for o in fresh], key=("external_id",))

        for o in fresh:
            for ln in o.lines:
                ln.order_id = o.row.id
            for s in o.shipments:
                s.row.order_id = o.row.id
            for r in o.returns:
                r.row.order_id = o.row.id
                r.row.customer_id = o.row.customer_id
        await _insert(conn, OrderLine, [ln for o in fresh for ln in o.lines], key=("order_id", "external_id"))
        await _insert(conn, Shipment, [s.row for o in fresh for s in o.shipments], key=("order_id", "external_id"))
        await _insert(conn, ReturnAuthorization, [r.row for o in fresh for r in o.returns], key=("rma_number",))

        ship_lines: list[Row] = []
        events: list[Row] = []
        return_lines: list[Row] = []
        refunds: list[Row] = []
        credits: list[Row] = []
        for o in fresh:
            for s in o.shipments:
                for index, qty in s.items:
                    ship_lines.append(
                        new_row(ShipmentLine, shipment_id=s.row.id, order_line_id=o.lines[index].id, quantity=qty)
                    )
                for ev in s.events:
                    ev.shipment_id = s.row.id
                    events.append(ev)
            for r in o.returns:
                for index, rl in r.lines:
                    rl.rma_id = r.row.id
                    rl.order_line_id = o.lines[index].id
                    return_lines.append(rl)
                if r.refund is not None:
                    r.refund.order_id = o.row.id
                    r.refund.rma_id = r.row.id
                    refunds.append(r.refund)
                if r.credit is not None:
                    r.credit.rma_id = r.row.id
                    r.credit.customer_id = o.row.customer_id
                    credits.append(r.credit)
            for rf in o.refunds:
                rf.order_id = o.row.id
                refunds.append(rf)
        await _insert(conn, ShipmentLine, ship_lines)
        await _insert(conn, TrackingEvent, events)
        await _insert(conn, ReturnLine, return_lines)
        await _insert(conn, Refund, refunds)
        await _insert(conn, StoreCredit, credits)

        # stock
        have_levels = set(
            (await session.exec(select(InventoryLevel.warehouse_id, InventoryLevel.sku).where(
                col(InventoryLevel.sku).in_([v.sku for v in VARIANTS])))).all()
        )
        stamp = anchor - timedelta(hours=1)
        levels = [
            new_row(InventoryLevel, warehouse_id=warehouse_ids[code], sku=sku, on_hand=on_hand, reserved=reserved,
                 safety_stock=safety, updated_at=stamp)
            for code, sku, on_hand, reserved, safety in stock
            if (warehouse_ids[code], sku) not in have_levels
        ]
        await _insert(conn, InventoryLevel, levels)
        await session.commit()

        for table, count in (
            ("orders", len(fresh)),
            ("order_lines", sum(len(o.lines) for o in fresh)),
            ("shipments", sum(len(o.shipments) for o in fresh)),
            ("shipment_lines", len(ship_lines)),
            ("tracking_events", len(events)),
            ("return_lines", len(return_lines)),
            ("returns", sum(len(o.returns) for o in fresh)),
            ("refunds", len(refunds)),
            ("store_credits", len(credits)),
            ("inventory_levels", len(levels)),
        ):
            added[table] += count
        total_orders = (await session.exec(select(sa.func.count()).select_from(Order))).one()
        total_customers = (await session.exec(select(sa.func.count()).select_from(Customer))).one()
        examples = await _examples(session)

    return DemoSummary(
        seed=seed,
        anchor=anchor,
        added=dict(sorted(added.items())),
        orders=int(total_orders),
        customers=int(total_customers),
        examples=examples,
    )


async def _examples(session: AsyncSession) -> tuple[DemoExample, ...]:
    """The showcase orders to list, read back from the database (so a re-run reports the truth)."""
    names = [name for name, _s, _d, listed in SHOWCASE if listed]
    rows = (
        await session.exec(
            select(Order).where(Order.source == SourceChannel.online_store, col(Order.name).in_(names))
        )
    ).all()
    by_name = {o.name: o for o in rows}
    out = []
    for name, scenario, description, listed in SHOWCASE:
        order = by_name.get(name)
        if not listed or order is None or not order.email:
            continue
        address = order.shipping_address or {}
        postal = str(address.get("zip") or order.shipping_postal_code or "")
        out.append(DemoExample(scenario, description, name, order.email, postal))
    return tuple(out)

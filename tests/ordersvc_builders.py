"""Row builders for order-store tests: customers, orders with lines, shipments, stock.

Each builder adds rows to the given session and flushes so ids are known; the test
commits when it wants the rows visible to other sessions.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from itertools import count
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from ordersvc.models import (
    Customer,
    FinancialStatus,
    FulfillmentStatus,
    InventoryLevel,
    Order,
    OrderLine,
    ProductVariant,
    Shipment,
    ShipmentLine,
    Warehouse,
)
from ordersvc.tracking import ShipmentStatus

_ids = count(1)

T0 = datetime(2025, 5, 1, 14, 0, tzinfo=UTC)

ADDRESS = {
    "first_name": "Lan",
    "last_name": "Nguyễn",
    "address1": "12 Elm Street",
    "city": "Springfield",
    "zip": "62704",
    "province_code": "IL",
    "country": "United States",
    "country_code": "US",
}


async def make_customer(session: AsyncSession, **fields: Any) -> Customer:
    customer = Customer(
        first_name=fields.pop("first_name", "Lan"),
        last_name=fields.pop("last_name", "Nguyễn"),
        email=fields.pop("email", f"c{next(_ids)}@example.com"),
        **fields,
    )
    session.add(customer)
    await session.flush()
    return customer


async def make_order(
    session: AsyncSession,
    lines: Sequence[dict[str, Any]] = ({"sku": "TEE-M", "quantity": 1, "unit_price": "20.00"},),
    *,
    name: str = "#1001",
    customer: Customer | None = None,
    **fields: Any,
) -> tuple[Order, list[OrderLine]]:
    """An order with ``lines`` (OrderLine field dicts); totals follow the lines."""
    subtotal = sum(
        (Decimal(str(ln.get("unit_price", "0"))) * int(ln.get("quantity", 1)) for ln in lines), Decimal("0")
    )
    discounts = sum((Decimal(str(ln.get("total_discount", "0"))) for ln in lines), Decimal("0"))
    order = Order(
        external_id=fields.pop("external_id", str(next(_ids))),
        name=name,
        customer_id=customer.id if customer else None,
        subtotal_price=subtotal,
        total_discounts=discounts,
        total_price=fields.pop("total_price", subtotal - discounts),
        shipping_address=fields.pop("shipping_address", dict(ADDRESS)),
        shipping_postal_code=fields.pop("shipping_postal_code", ADDRESS["zip"]),
        placed_at=fields.pop("placed_at", T0),
        financial_status=fields.pop("financial_status", FinancialStatus.paid),
        fulfillment_status=fields.pop("fulfillment_status", FulfillmentStatus.unfulfilled),
        **fields,
    )
    session.add(order)
    await session.flush()
    assert order.id is not None
    rows = []
    for spec in lines:
        data = dict(spec)
        data.setdefault("title", f"Item {data.get('sku')}")
        for money in ("unit_price", "total_discount"):
            if money in data:
                data[money] = Decimal(str(data[money]))
        rows.append(OrderLine(order_id=order.id, **data))
    session.add_all(rows)
    await session.flush()
    return order, rows


async def make_shipment(
    session: AsyncSession,
    order: Order,
    *,
    lines: Sequence[tuple[OrderLine, int]] = (),
    delivered_at: datetime | None = None,
    shipped_at: datetime | None = None,
    status: ShipmentStatus | None = None,
) -> Shipment:
    assert order.id is not None
    shipment = Shipment(
        order_id=order.id,
        external_id=str(next(_ids)),
        carrier="UPS",
        tracking_number="1Z5R89390357567127",
        shipped_at=shipped_at,
        delivered_at=delivered_at,
        status=status or (ShipmentStatus("delivered") if delivered_at else ShipmentStatus("in_transit")),
    )
    session.add(shipment)
    await session.flush()
    assert shipment.id is not None
    for line, quantity in lines:
        assert line.id is not None
        session.add(ShipmentLine(shipment_id=shipment.id, order_line_id=line.id, quantity=quantity))
    await session.flush()
    return shipment


async def make_warehouse(
    session: AsyncSession, code: str = "MAIN", *, is_default: bool = True, address: dict[str, Any] | None = None
) -> Warehouse:
    warehouse = Warehouse(code=code, name=f"Warehouse {code}", is_default=is_default, address=address)
    session.add(warehouse)
    await session.flush()
    return warehouse


async def make_level(
    session: AsyncSession, warehouse: Warehouse, sku: str, on_hand: int, *, reserved: int = 0, safety_stock: int = 0
) -> InventoryLevel:
    assert warehouse.id is not None
    level = InventoryLevel(
        warehouse_id=warehouse.id, sku=sku, on_hand=on_hand, reserved=reserved, safety_stock=safety_stock
    )
    session.add(level)
    await session.flush()
    return level


async def make_variants(session: AsyncSession, product_key: str, skus: Sequence[str], price: str = "20.00") -> list[ProductVariant]:
    variants = [
        ProductVariant(sku=sku, product_key=product_key, product_title=product_key, variant_title=sku, price=Decimal(price))
        for sku in skus
    ]
    session.add_all(variants)
    await session.flush()
    return variants

"""Stock levels: reservations for open orders and exchanges, restocks, low-stock report.

``InventoryLevel.reserved`` counts units promised to unfulfilled orders and to pending
exchanges; ``available = on_hand - reserved``. Every function here changes rows in the
caller's session and flushes nothing it does not need to: the caller commits.

Rows are read with ``SELECT … FOR UPDATE`` so that two transactions on PostgreSQL cannot
both promise the same unit; SQLite ignores the clause and serialises writers itself.

Where stock lives: an order line reserves in the default warehouse when that warehouse
has a row for the SKU, otherwise in the first warehouse (lowest id) that has one. SKUs
with no inventory row anywhere are untracked and never reserved. A release walks the
rows of the SKU (default warehouse first) and never drives ``reserved`` below zero, so a
release after stock was moved cannot corrupt the counts. Fulfilment is expected to
consume an order's reservation (see ``ship_sku``), so ``release_order`` releases only the
quantity that is still unfulfilled.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from ordersvc.models import InventoryLevel, Order, Warehouse
from ordersvc.service import order_lines
from shopbase.clock import utcnow
from shopbase.rows import locked as locked_row

__all__ = [
    "InventoryError",
    "OutOfStock",
    "reserve_order",
    "release_order",
    "restock",
    "low_stock",
    "available",
    "available_by_sku",
    "locked_available",
    "reserve_sku",
    "release_sku",
    "ship_sku",
]


class InventoryError(ValueError):
    """A stock operation that cannot be carried out (unknown warehouse, bad quantity)."""


class OutOfStock(InventoryError):
    """Fewer units are available than were asked for."""

    def __init__(self, sku: str, wanted: int, available: int) -> None:
        super().__init__(f"SKU {sku!r}: {wanted} wanted, {available} available")
        self.sku = sku
        self.wanted = wanted
        self.available = available


async def _locked_levels(session: AsyncSession, sku: str) -> list[InventoryLevel]:
    """The SKU's rows, locked, default warehouse first, then by warehouse id."""
    stmt = (
        select(InventoryLevel)
        .join(Warehouse, col(Warehouse.id) == col(InventoryLevel.warehouse_id))
        .where(InventoryLevel.sku == sku)
        .order_by(col(Warehouse.is_default).desc(), col(Warehouse.id))
        .with_for_update(of=InventoryLevel)
        .execution_options(populate_existing=True)
    )
    return list((await session.exec(stmt)).all())


async def _unfulfilled_by_sku(session: AsyncSession, order: Order) -> dict[str, int]:
    lines = await order_lines(session, order.id)
    wanted: dict[str, int] = defaultdict(int)
    for line in lines:
        remaining = max(line.quantity - line.fulfilled_quantity, 0)
        if line.sku and remaining:
            wanted[line.sku] += remaining
    return dict(wanted)


def _take_reserved(levels: Sequence[InventoryLevel], quantity: int, *, ship: bool) -> None:
    """Lower ``reserved`` (and ``on_hand`` when shipping) across rows, never below zero."""
    now = utcnow()
    remaining = quantity
    for level in levels:
        if remaining <= 0:
            break
        step = min(level.reserved, remaining)
        if step <= 0:
            continue
        level.reserved -= step
        if ship:
            level.on_hand = max(level.on_hand - step, 0)
        level.updated_at = now
        remaining -= step
    if ship and remaining > 0 and levels:
        # shipped more than was reserved: the units still leave the first warehouse
        first = levels[0]
        first.on_hand = max(first.on_hand - remaining, 0)
        first.updated_at = now


async def reserve_order(session: AsyncSession, order: Order) -> bool:
    """Reserve the order's unfulfilled units; ``False`` when it was already reserved.

    Idempotent through ``Order.stock_reserved`` (re-read under a row lock). Over-selling
    is allowed here: the order exists already, so ``available`` may go negative and the
    row then shows up in ``low_stock``.
    """
    locked = await locked_row(session, Order, order.id)
    if locked.stock_reserved:
        return False
    now = utcnow()
    for sku, quantity in sorted((await _unfulfilled_by_sku(session, locked)).items()):
        levels = await _locked_levels(session, sku)
        if not levels:
            continue  # untracked SKU
        levels[0].reserved += quantity
        levels[0].updated_at = now
    locked.stock_reserved = True
    locked.updated_at = now
    session.add(locked)
    await session.flush()
    return True


async def release_order(session: AsyncSession, order: Order) -> bool:
    """Give back the order's still-unfulfilled reservation; ``False`` when none was held."""
    locked = await locked_row(session, Order, order.id)
    if not locked.stock_reserved:
        return False
    for sku, quantity in sorted((await _unfulfilled_by_sku(session, locked)).items()):
        _take_reserved(await _locked_levels(session, sku), quantity, ship=False)
    locked.stock_reserved = False
    locked.updated_at = utcnow()
    session.add(locked)
    await session.flush()
    return True


async def _warehouse_for(session: AsyncSession, code: str | None) -> Warehouse:
    if code is not None:
        found = (await session.exec(select(Warehouse).where(Warehouse.code == code))).first()
        if found is None:
            raise InventoryError(f"unknown warehouse {code!r}")
        return found
    stmt = select(Warehouse).order_by(col(Warehouse.is_default).desc(), col(Warehouse.id))
    found = (await session.exec(stmt)).first()
    if found is None:
        raise InventoryError("no warehouse is configured")
    return found


async def restock(
    session: AsyncSession, sku: str, quantity: int, warehouse_code: str | None = None
) -> InventoryLevel:
    """Add ``quantity`` units to ``on_hand``.

    Without ``warehouse_code`` the units go where the SKU is already stocked (default
    warehouse first); a SKU seen for the first time gets a row in the default warehouse.
    """
    if quantity <= 0:
        raise InventoryError(f"restock quantity must be positive, got {quantity}")
    levels = await _locked_levels(session, sku)
    target: InventoryLevel | None = None
    if warehouse_code is None and levels:
        target = levels[0]
    else:
        warehouse = await _warehouse_for(session, warehouse_code)
        target = next((lv for lv in levels if lv.warehouse_id == warehouse.id), None)
        if target is None:
            assert warehouse.id is not None
            target = InventoryLevel(warehouse_id=warehouse.id, sku=sku)
    target.on_hand += quantity
    target.updated_at = utcnow()
    session.add(target)
    await session.flush()
    return target


async def low_stock(session: AsyncSession) -> list[InventoryLevel]:
    """Rows whose available quantity is at or below their safety stock."""
    stmt = (
        select(InventoryLevel)
        .where(
            col(InventoryLevel.on_hand) - col(InventoryLevel.reserved)
            <= col(InventoryLevel.safety_stock)
        )
        .order_by(col(InventoryLevel.sku), col(InventoryLevel.warehouse_id))
    )
    return list((await session.exec(stmt)).all())


async def available(session: AsyncSession, sku: str) -> int:
    """Units of ``sku`` that can still be promised, summed over all warehouses."""
    return (await available_by_sku(session, [sku])).get(sku, 0)


async def available_by_sku(session: AsyncSession, skus: Sequence[str]) -> dict[str, int]:
    """``available`` for several SKUs in one query; SKUs without rows map to 0."""
    if not skus:
        return {}
    total = sa.func.coalesce(
        sa.func.sum(col(InventoryLevel.on_hand) - col(InventoryLevel.reserved)), 0
    )
    stmt = (
        select(col(InventoryLevel.sku), total)
        .where(col(InventoryLevel.sku).in_(list(skus)))
        .group_by(col(InventoryLevel.sku))
    )
    found = {sku: int(amount) for sku, amount in (await session.exec(stmt)).all()}
    return {sku: found.get(sku, 0) for sku in skus}


async def locked_available(session: AsyncSession, skus: Sequence[str]) -> dict[str, int]:
    """Lock the rows of ``skus`` and return what ``reserve_sku`` could take from each.

    Used to check a whole request before reserving anything, so that a refusal
    changes nothing; the locks hold until the transaction ends.
    """
    return {
        sku: sum(max(level.available, 0) for level in await _locked_levels(session, sku))
        for sku in sorted(set(skus))
    }


async def reserve_sku(session: AsyncSession, sku: str, quantity: int) -> None:
    """Promise ``quantity`` units of ``sku`` (an exchange); raises ``OutOfStock``.

    Units are taken from the default warehouse first and then from the others, so the
    request succeeds whenever the total available covers it. Nothing changes on refusal.
    """
    if quantity <= 0:
        raise InventoryError(f"reserve quantity must be positive, got {quantity}")
    levels = await _locked_levels(session, sku)
    total = sum(max(level.available, 0) for level in levels)
    if total < quantity:
        raise OutOfStock(sku, quantity, total)
    now = utcnow()
    remaining = quantity
    for level in levels:
        step = min(max(level.available, 0), remaining)
        if step > 0:
            level.reserved += step
            level.updated_at = now
            remaining -= step
    await session.flush()


async def release_sku(session: AsyncSession, sku: str, quantity: int) -> None:
    """Undo ``reserve_sku`` (an exchange was rejected or cancelled)."""
    if quantity > 0:
        _take_reserved(await _locked_levels(session, sku), quantity, ship=False)
        await session.flush()


async def ship_sku(session: AsyncSession, sku: str, quantity: int) -> None:
    """Reserved units leave the warehouse: ``reserved`` and ``on_hand`` both go down."""
    if quantity > 0:
        _take_reserved(await _locked_levels(session, sku), quantity, ship=True)
        await session.flush()

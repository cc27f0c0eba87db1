"""Stock reservations, restocks and the low-stock report on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from ordersvc_builders import make_level, make_order, make_warehouse
from sqlmodel import select

from ordersvc.inventory import (
    InventoryError,
    OutOfStock,
    available,
    low_stock,
    release_order,
    release_sku,
    reserve_order,
    reserve_sku,
    restock,
    ship_sku,
)
from ordersvc.models import InventoryLevel, Order


async def _levels(sessions, sku: str) -> dict[int, tuple[int, int]]:
    async with sessions() as s:
        rows = (await s.exec(select(InventoryLevel).where(InventoryLevel.sku == sku))).all()
        return {r.warehouse_id: (r.on_hand, r.reserved) for r in rows}


async def test_reserve_and_release_are_idempotent(sessions) -> None:
    async with sessions() as s:
        main = await make_warehouse(s, "MAIN")
        await make_level(s, main, "TEE-M", 10)
        await make_level(s, main, "CAP", 5)
        order, _ = await make_order(
            s,
            [
                {"sku": "TEE-M", "quantity": 3, "unit_price": "20"},
                {"sku": "CAP", "quantity": 2, "unit_price": "9", "fulfilled_quantity": 1},
                {"sku": None, "quantity": 1, "unit_price": "5", "title": "Gift wrap"},
            ],
        )
        await s.commit()

    async with sessions() as s:
        order = await s.get(Order, order.id)
        assert await reserve_order(s, order) is True
        assert await reserve_order(s, order) is False  # same transaction
        await s.commit()
    async with sessions() as s:
        order = await s.get(Order, order.id)
        assert order.stock_reserved is True
        assert await reserve_order(s, order) is False  # later transaction
        await s.commit()
    assert await _levels(sessions, "TEE-M") == {main.id: (10, 3)}
    assert await _levels(sessions, "CAP") == {main.id: (5, 1)}  # only the unfulfilled unit
    async with sessions() as s:
        assert await available(s, "TEE-M") == 7

    async with sessions() as s:
        order = await s.get(Order, order.id)
        assert await release_order(s, order) is True
        assert await release_order(s, order) is False
        await s.commit()
    assert await _levels(sessions, "TEE-M") == {main.id: (10, 0)}
    assert await _levels(sessions, "CAP") == {main.id: (5, 0)}
    async with sessions() as s:
        assert (await s.get(Order, order.id)).stock_reserved is False


async def test_reserve_prefers_default_warehouse_then_first_holding(sessions) -> None:
    async with sessions() as s:
        east = await make_warehouse(s, "EAST", is_default=False)
        west = await make_warehouse(s, "WEST", is_default=False)
        main = await make_warehouse(s, "MAIN", is_default=True)
        await make_level(s, east, "ONLY-EAST", 4)
        await make_level(s, west, "ONLY-EAST", 4)
        await make_level(s, east, "BOTH", 4)
        await make_level(s, main, "BOTH", 4)
        order, _ = await make_order(
            s, [{"sku": "ONLY-EAST", "quantity": 2, "unit_price": "1"}, {"sku": "BOTH", "quantity": 1, "unit_price": "1"}]
        )
        assert await reserve_order(s, order)
        await s.commit()
    assert await _levels(sessions, "ONLY-EAST") == {east.id: (4, 2), west.id: (4, 0)}
    assert await _levels(sessions, "BOTH") == {east.id: (4, 0), main.id: (4, 1)}


async def test_release_never_goes_below_zero(sessions) -> None:
    async with sessions() as s:
        main = await make_warehouse(s)
        level = await make_level(s, main, "TEE-M", 10)
        order, _ = await make_order(s, [{"sku": "TEE-M", "quantity": 3, "unit_price": "1"}])
        await reserve_order(s, order)
        level.reserved = 1  # someone corrected the count by hand
        await s.flush()
        assert await release_order(s, order)
        await s.commit()
    assert await _levels(sessions, "TEE-M") == {main.id: (10, 0)}


async def test_restock_targets(sessions) -> None:
    async with sessions() as s:
        main = await make_warehouse(s, "MAIN")
        east = await make_warehouse(s, "EAST", is_default=False)
        await make_level(s, east, "EAST-ONLY", 1)
        level = await restock(s, "EAST-ONLY", 2)
        assert (level.warehouse_id, level.on_hand) == (east.id, 3)
        new = await restock(s, "NEW-SKU", 5)
        assert (new.warehouse_id, new.on_hand) == (main.id, 5)
        explicit = await restock(s, "EAST-ONLY", 4, warehouse_code="MAIN")
        assert (explicit.warehouse_id, explicit.on_hand) == (main.id, 4)
        with pytest.raises(InventoryError, match="unknown warehouse"):
            await restock(s, "EAST-ONLY", 1, warehouse_code="NOPE")
        with pytest.raises(InventoryError, match="positive"):
            await restock(s, "EAST-ONLY", 0)
        await s.commit()
    assert await _levels(sessions, "EAST-ONLY") == {east.id: (3, 0), main.id: (4, 0)}
    async with sessions() as s:
        assert await available(s, "EAST-ONLY") == 7
        assert await available(s, "UNKNOWN") == 0


async def test_restock_without_any_warehouse_is_a_clear_error(sessions) -> None:
    async with sessions() as s:
        with pytest.raises(InventoryError, match="no warehouse"):
            await restock(s, "TEE-M", 1)


async def test_low_stock_lists_rows_at_or_below_safety_stock(sessions) -> None:
    async with sessions() as s:
        main = await make_warehouse(s)
        await make_level(s, main, "A-LOW", 5, reserved=3, safety_stock=2)  # available 2 == safety
        await make_level(s, main, "B-OK", 5, reserved=2, safety_stock=2)  # available 3
        await make_level(s, main, "C-OVERSOLD", 1, reserved=4)  # available -3
        await s.commit()
    async with sessions() as s:
        assert [lv.sku for lv in await low_stock(s)] == ["A-LOW", "C-OVERSOLD"]


async def test_sku_reservation_spans_warehouses_and_refuses_without_change(sessions) -> None:
    async with sessions() as s:
        main = await make_warehouse(s, "MAIN")
        east = await make_warehouse(s, "EAST", is_default=False)
        await make_level(s, main, "TEE-L", 2, reserved=1)
        await make_level(s, east, "TEE-L", 3)
        await s.commit()
    async with sessions() as s:
        with pytest.raises(OutOfStock) as err:
            await reserve_sku(s, "TEE-L", 5)
        assert err.value.available == 4
        await s.commit()
    assert await _levels(sessions, "TEE-L") == {main.id: (2, 1), east.id: (3, 0)}

    async with sessions() as s:
        await reserve_sku(s, "TEE-L", 3)
        await s.commit()
    assert await _levels(sessions, "TEE-L") == {main.id: (2, 2), east.id: (3, 2)}
    async with sessions() as s:
        await ship_sku(s, "TEE-L", 2)
        await release_sku(s, "TEE-L", 1)
        await s.commit()
    # shipping takes from the default warehouse first; the release from what is left
    assert await _levels(sessions, "TEE-L") == {main.id: (0, 0), east.id: (3, 1)}

"""Cancelling an order and changing its address, allowed and refused, on both databases."""

from __future__ import annotations

from decimal import Decimal

import pytest
from ordersvc_builders import ADDRESS, T0, make_level, make_order, make_shipment, make_warehouse
from sqlmodel import select

from ordersvc.actions import cancel_order, change_address, check_address
from ordersvc.inventory import reserve_order
from ordersvc.models import FinancialStatus, FulfillmentStatus, InventoryLevel, Order, Refund
from shopbase.refusal import Refused


async def _refunds(sessions, order_id: int) -> list[Refund]:
    async with sessions() as s:
        return list((await s.exec(select(Refund).where(Refund.order_id == order_id))).all())


async def test_cancel_paid_order_refunds_total_and_releases_stock(sessions) -> None:
    async with sessions() as s:
        main = await make_warehouse(s)
        await make_level(s, main, "TEE-M", 10)
        order, _ = await make_order(
            s, [{"sku": "TEE-M", "quantity": 2, "unit_price": "20.00"}], total_price=Decimal("43.50")
        )
        await reserve_order(s, order)
        await s.commit()

    async with sessions() as s:
        order = await s.get(Order, order.id)
        result = await cancel_order(s, order, reason="changed my mind", actor="bot")
        await s.commit()
    assert result.order.is_cancelled
    assert result.refund is not None and result.refund.amount == Decimal("43.50")

    async with sessions() as s:
        stored = await s.get(Order, order.id)
        assert stored.cancelled_at is not None and stored.is_cancelled
        assert stored.cancel_reason == "changed my mind"
        assert stored.financial_status == FinancialStatus.refunded
        assert stored.stock_reserved is False
        level = (await s.exec(select(InventoryLevel))).one()
        assert (level.on_hand, level.reserved) == (10, 0)
    refunds = await _refunds(sessions, order.id)
    assert [(r.amount, r.currency) for r in refunds] == [(Decimal("43.50"), "USD")]

    # a retry does not refund twice
    async with sessions() as s:
        with pytest.raises(Refused) as again:
            await cancel_order(s, await s.get(Order, order.id))
        await s.commit()
    assert (again.value.code, again.value.status) == ("already_cancelled", 409)
    assert len(await _refunds(sessions, order.id)) == 1


@pytest.mark.parametrize("status", [FinancialStatus.pending, FinancialStatus.authorized])
async def test_cancel_unpaid_order_voids_without_refund(sessions, status: FinancialStatus) -> None:
    async with sessions() as s:
        order, _ = await make_order(s, financial_status=status)
        result = await cancel_order(s, order, reason="customer")
        await s.commit()
    assert result.refund is None
    async with sessions() as s:
        assert (await s.get(Order, order.id)).financial_status == FinancialStatus.voided
    assert await _refunds(sessions, order.id) == []


async def test_cancel_partially_refunded_order_refunds_only_the_rest(sessions) -> None:
    async with sessions() as s:
        order, _ = await make_order(
            s, [{"sku": "A", "quantity": 1, "unit_price": "50"}], financial_status=FinancialStatus.partially_refunded
        )
        s.add(Refund(order_id=order.id, external_id="shopify-1", amount=Decimal("10"), currency="USD"))
        result = await cancel_order(s, order)
        await s.commit()
    assert result.refund is not None and result.refund.amount == Decimal("40")


@pytest.mark.parametrize(
    ("fulfillment", "cancelled", "expected"),
    [
        (FulfillmentStatus.fulfilled, False, "already_fulfilled"),
        (FulfillmentStatus.partial, False, "partially_fulfilled"),
        (FulfillmentStatus.unfulfilled, True, "already_cancelled"),
    ],
)
async def test_cancel_refused_writes_nothing(sessions, fulfillment, cancelled, expected) -> None:
    async with sessions() as s:
        order, _ = await make_order(
            s, fulfillment_status=fulfillment, cancelled_at=T0 if cancelled else None, updated_at=T0
        )
        await s.commit()
    async with sessions() as s:
        with pytest.raises(Refused) as refused:
            await cancel_order(s, await s.get(Order, order.id))
        await s.commit()
    assert refused.value.code == expected
    async with sessions() as s:
        stored = await s.get(Order, order.id)
        assert stored.updated_at == T0
        assert stored.financial_status == FinancialStatus.paid
        assert stored.cancel_reason is None
    assert await _refunds(sessions, order.id) == []


async def test_cancel_refused_once_a_shipment_exists(sessions) -> None:
    async with sessions() as s:
        order, lines = await make_order(s, [{"sku": "A", "quantity": 2, "unit_price": "5"}])
        await make_shipment(s, order)  # label bought, status still unfulfilled
        other, other_lines = await make_order(s, [{"sku": "A", "quantity": 2, "unit_price": "5"}], name="#1002")
        await make_shipment(s, other, lines=[(other_lines[0], 1)])
        await s.commit()
    async with sessions() as s:
        for target, code in ((order, "already_fulfilled"), (other, "partially_fulfilled")):
            with pytest.raises(Refused) as refused:
                await cancel_order(s, await s.get(Order, target.id))
            assert refused.value.code == code
        await s.commit()
    async with sessions() as s:
        assert (await s.get(Order, order.id)).cancelled_at is None


async def test_change_address_updates_shipping_address_and_keeps_recipient(sessions) -> None:
    async with sessions() as s:
        order, _ = await make_order(s)
        await s.commit()
    new = {"address1": "  5 <b>Rue</b> & Co  ", "city": "Lyon", "zip": "69001", "country_code": "fr"}
    async with sessions() as s:
        result = await change_address(s, await s.get(Order, order.id), new)
        await s.commit()
    assert result.id == order.id
    async with sessions() as s:
        stored = await s.get(Order, order.id)
    assert stored.shipping_postal_code == "69001"
    assert stored.shipping_address == {
        "first_name": ADDRESS["first_name"],
        "last_name": ADDRESS["last_name"],
        "address1": "5 <b>Rue</b> & Co",
        "city": "Lyon",
        "zip": "69001",
        "country_code": "FR",
        "country": "France",
    }


async def test_change_address_reports_errors_per_field_and_writes_nothing(sessions) -> None:
    async with sessions() as s:
        order, _ = await make_order(s)
        await s.commit()
    bad = {"address1": "   ", "zip": "1" * 17, "country_code": "XX", "latitude": "1", "city": 7}
    async with sessions() as s:
        with pytest.raises(Refused) as refused:
            await change_address(s, await s.get(Order, order.id), bad)
        await s.commit()
    assert (refused.value.code, refused.value.status) == ("invalid_address", 422)
    assert refused.value.fields == {
        "address1": "required",
        "zip": "too_long",
        "country_code": "invalid",
        "latitude": "unknown_field",
        "city": "invalid",
    }
    async with sessions() as s:
        stored = await s.get(Order, order.id)
        assert stored.shipping_address == ADDRESS
        assert stored.shipping_postal_code == ADDRESS["zip"]


def test_check_address_requires_the_four_fields() -> None:
    with pytest.raises(Refused) as refused:
        check_address({})
    assert refused.value.fields == {"address1": "required", "city": "required", "zip": "required", "country_code": "required"}


@pytest.mark.parametrize(
    ("fulfillment", "cancelled", "expected"),
    [
        (FulfillmentStatus.fulfilled, False, "already_fulfilled"),
        (FulfillmentStatus.partial, False, "partially_fulfilled"),
        (FulfillmentStatus.unfulfilled, True, "already_cancelled"),
    ],
)
async def test_change_address_refused_after_shipping_or_cancel(sessions, fulfillment, cancelled, expected) -> None:
    async with sessions() as s:
        order, _ = await make_order(s, fulfillment_status=fulfillment, cancelled_at=T0 if cancelled else None)
        await s.commit()
    good = {"address1": "1 Main St", "city": "Austin", "zip": "73301", "country_code": "US"}
    async with sessions() as s:
        with pytest.raises(Refused) as refused:
            await change_address(s, await s.get(Order, order.id), good)
        await s.commit()
    assert refused.value.code == expected
    async with sessions() as s:
        assert (await s.get(Order, order.id)).shipping_address == ADDRESS

"""The order store's read side (ordersvc.service, ordersvc.serialize) on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from ordersvc.models import (
    Customer,
    FinancialStatus,
    FulfillmentStatus,
    Order,
    OrderLine,
    Refund,
    Resolution,
    ReturnAuthorization,
    ReturnLine,
    RmaStatus,
    Shipment,
    ShipmentLine,
    SourceChannel,
    StoreCredit,
    TrackingEvent,
)
from ordersvc.serialize import money, order_document, timestamp
from ordersvc.service import (
    DEFAULT_SHIPPING_POLICY,
    add_business_days,
    expected_ship_date,
    find_customer_by_email,
    find_order,
    get_setting,
    order_bundle,
    order_ref_candidates,
    orders_for_customer,
    put_setting,
    shipment_is_late,
    shipping_policy,
    verify_customer,
)
from ordersvc.tracking import ShipmentStatus

NOW = datetime(2026, 5, 20, 12, 0, tzinfo=UTC)  # a Wednesday
S = ShipmentStatus


async def seed_shop(session: Any) -> dict[str, Any]:
    """A customer with two online orders (one with shipments, a return, a refund, a credit),
    an Amazon, an eBay and a POS order, and an unrelated customer."""
    ana = Customer(external_id="c-ana", email="Ana@Example.com", first_name="Ana", last_name="García", locale="es")
    bob = Customer(external_id="c-bob", email="bob@example.org", first_name="Bob", last_name="Stone")
    session.add_all([ana, bob])
    await session.flush()
    older = Order(
        source=SourceChannel.online_store, external_id="820982911946154508", name="#1001", customer_id=ana.id,
        email="Ana@Example.com", placed_at=NOW - timedelta(days=30), shipping_postal_code="K1A0B1",
        shipping_address={"zip": "K1A 0B1", "country_code": "CA"}, total_price=Decimal("404.95"),
        subtotal_price=Decimal("380.00"), total_tax=Decimal("19.00"), total_shipping=Decimal("5.95"),
        fulfillment_status=FulfillmentStatus.fulfilled, created_at=NOW, updated_at=NOW,
    )
    newer = Order(
        source=SourceChannel.online_store, external_id="820982911946154509", name="#1002", customer_id=ana.id,
        email="ana@example.com", placed_at=NOW - timedelta(days=1), shipping_postal_code=None,
        shipping_address={"zip": "28013", "country_code": "ES"}, created_at=NOW, updated_at=NOW,
    )
    amazon = Order(source=SourceChannel.amazon, external_id="113-1234567-1234567", name="113-1234567-1234567",
                   email="x1@marketplace.example.com", shipping_postal_code="94103", placed_at=NOW - timedelta(days=3))
    ebay = Order(source=SourceChannel.ebay, external_id="12-12345-12345", name="12-12345-12345",
                 email="y@members.example.org", shipping_postal_code="10001", placed_at=NOW - timedelta(days=3))
    pos = Order(source=SourceChannel.pos, external_id="830000000000000001", name="POS-1001", placed_at=NOW)
    other = Order(source=SourceChannel.online_store, external_id="555", name="#1003", customer_id=bob.id,
                  email="bob@example.org", shipping_postal_code="SW1A1AA", placed_at=NOW - timedelta(days=2))
    session.add_all([older, newer, amazon, ebay, pos, other])
    await session.flush()

    shoe = OrderLine(order_id=older.id, external_id="l1", sku="TR2-BLK-09", title="Trail Runner 2", quantity=1,
                     unit_price=Decimal("89.00"), fulfilled_quantity=1)
    tee = OrderLine(order_id=older.id, external_id="l2", sku="TEE-OLV-M", title="Organic Cotton Tee", quantity=2,
                    unit_price=Decimal("24.00"), total_discount=Decimal("4.80"), fulfilled_quantity=2)
    session.add_all([shoe, tee])
    await session.flush()
    first = Shipment(order_id=older.id, external_id="f1", name="#1001.1", carrier="UPS",
                     tracking_number="1Z5R89390357567127", status=S("delivered"),
                     shipped_at=NOW - timedelta(days=28), delivered_at=NOW - timedelta(days=25))
    second = Shipment(order_id=older.id, external_id="f2", name="#1001.2", carrier="USPS",
                      tracking_number="9400111206206406260787", status=S("in_transit"),
                      shipped_at=NOW - timedelta(days=3), last_event_at=NOW - timedelta(days=2))
    session.add_all([first, second])
    await session.flush()
    session.add_all(
        [
            ShipmentLine(shipment_id=first.id, order_line_id=shoe.id, quantity=1),
            ShipmentLine(shipment_id=second.id, order_line_id=tee.id, quantity=2),
            TrackingEvent(shipment_id=first.id, occurred_at=NOW - timedelta(days=27), status=S("in_transit"),
                          message="Departed from Facility", location="Louisville, KY, US"),
            TrackingEvent(shipment_id=first.id, occurred_at=NOW - timedelta(days=25), status=S("delivered"),
                          message="Delivered", location="Ottawa, ON, CA"),
            TrackingEvent(shipment_id=first.id, occurred_at=NOW - timedelta(days=28), status=S("info_received"),
                          message="Label created", location="Newark, NJ, US"),
            TrackingEvent(shipment_id=second.id, occurred_at=NOW - timedelta(days=2), status=S("in_transit"),
                          message="Arrived at USPS Regional Facility", location="Kearny, NJ, US"),
        ]
    )
    rma = ReturnAuthorization(rma_number="R1001-1", order_id=older.id, customer_id=ana.id,
                              status=RmaStatus.credited, resolution=Resolution.store_credit,
                              credit_amount=Decimal("97.90"), requested_at=NOW - timedelta(days=20),
                              approved_at=NOW - timedelta(days=20), received_at=NOW - timedelta(days=15),
                              credited_at=NOW - timedelta(days=14))
    session.add(rma)
    await session.flush()
    session.add_all(
        [
            ReturnLine(rma_id=rma.id, order_line_id=shoe.id, quantity=1),
            StoreCredit(customer_id=ana.id, rma_id=rma.id, code="SC-TEST-0001", amount=Decimal("97.90"),
                        created_at=NOW - timedelta(days=14)),
            Refund(order_id=older.id, external_id="r1", amount=Decimal("5.95"), note="shipping",
                   processed_at=NOW - timedelta(days=10)),
        ]
    )
    await session.commit()
    return {"ana": ana, "bob": bob, "older": older, "newer": newer, "amazon": amazon, "ebay": ebay, "pos": pos,
            "other": other, "shoe": shoe, "tee": tee, "first": first, "second": second, "rma": rma}


# --------------------------------------------------------------------------- find_order


def test_ref_candidates_shapes() -> None:
    assert order_ref_candidates(" #1001 ")[:2] == ["#1001", "1001"]
    assert order_ref_candidates("№1001")[:2] == ["#1001", "1001"]
    assert order_ref_candidates("order no. 1001")[:2] == ["#1001", "1001"]
    assert order_ref_candidates("113 1234567 1234567")[0] == "113-1234567-1234567"
    assert order_ref_candidates("12 12345 12345")[0] == "12-12345-12345"
    assert "POS-1001" in order_ref_candidates("pos-1001")
    assert order_ref_candidates("") == [] and order_ref_candidates("   ") == []
    assert order_ref_candidates("9" * 500) == []


@pytest.mark.parametrize(
    ("ref", "key"),
    [
        ("#1001", "older"),
        ("1001", "older"),
        ("№1001", "older"),
        ("  # 1001\n", "older"),
        ("Order #1001", "older"),
        ("820982911946154508", "older"),
        ("113-1234567-1234567", "amazon"),
        (" 113 1234567 1234567 ", "amazon"),
        ("12-12345-12345", "ebay"),
        ("POS-1001", "pos"),
        ("pos-1001", "pos"),
        ("#1003", "other"),
    ],
)
async def test_find_order_shapes(sessions: Any, ref: str, key: str) -> None:
    async with sessions() as session:
        shop = await seed_shop(session)
        found = await find_order(session, ref)
        assert found is not None and found.id == shop[key].id


@pytest.mark.parametrize("ref", ["#9999", "", "   ", "1001; DROP TABLE shop_order", "x" * 300, "#", "\x00"])
async def test_find_order_misses(sessions: Any, ref: str) -> None:
    async with sessions() as session:
        await seed_shop(session)
        assert await find_order(session, ref) is None


async def test_orders_for_customer_newest_first(sessions: Any) -> None:
    async with sessions() as session:
        shop = await seed_shop(session)
        orders = await orders_for_customer(session, shop["ana"].id)
        assert [o.name for o in orders] == ["#1002", "#1001"]
        assert [o.name for o in await orders_for_customer(session, shop["ana"].id, limit=1)] == ["#1002"]
        assert await orders_for_customer(session, 999_999) == []


async def test_find_customer_by_email(sessions: Any) -> None:
    async with sessions() as session:
        shop = await seed_shop(session)
        found = await find_customer_by_email(session, "  ANA@example.COM ")
        assert found is not None and found.id == shop["ana"].id
        assert await find_customer_by_email(session, "nobody@example.com") is None
        assert await find_customer_by_email(session, "") is None


# --------------------------------------------------------------------------- verify_customer


@pytest.mark.parametrize(
    ("ref", "proof"),
    [
        ("#1001", "ana@example.com"),
        ("#1001", "  ANA@EXAMPLE.COM  "),
        ("1001", "K1A 0B1"),
        ("1001", "k1a0b1"),
        ("#1001", "k1a-0b1"),
        ("#1002", "28013"),  # no normalised column: read from the address
        ("113-1234567-1234567", "94103"),
    ],
)
async def test_verify_customer_accepts(sessions: Any, ref: str, proof: str) -> None:
    async with sessions() as session:
        await seed_shop(session)
        order = await verify_customer(session, ref, proof)
        assert order is not None
        assert order.name == (await find_order(session, ref)).name  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("ref", "proof"),
    [
        ("#1001", "bob@example.org"),  # another customer's email
        ("#1003", "ana@example.com"),  # Ana's email on Bob's order
        ("#1001", "SW1A 1AA"),  # Bob's postal code
        ("#1001", ""),
        ("#1001", "   "),
        ("#1001", "ana@example"),
        ("POS-1001", ""),  # an order without email or postal code matches nothing
        ("#9999", "ana@example.com"),  # no such order
        ("", "ana@example.com"),
    ],
)
async def test_verify_customer_refuses_alike(sessions: Any, ref: str, proof: str) -> None:
    async with sessions() as session:
        await seed_shop(session)
        assert await verify_customer(session, ref, proof) is None


async def test_verify_customer_wrong_pair_looks_like_missing(sessions: Any) -> None:
    async with sessions() as session:
        await seed_shop(session)
        wrong = await verify_customer(session, "#1001", "bob@example.org")
        missing = await verify_customer(session, "#424242", "bob@example.org")
        assert wrong is None and missing is None


# --------------------------------------------------------------------------- bundle and document


async def test_order_bundle_is_complete(sessions: Any) -> None:
    async with sessions() as session:
        shop = await seed_shop(session)
    async with sessions() as session:  # a fresh session: nothing cached, nothing lazy
        bundle = await order_bundle(session, shop["older"].id)
    assert bundle.customer is not None and bundle.customer.external_id == "c-ana"
    assert [ln.sku for ln in bundle.lines] == ["TR2-BLK-09", "TEE-OLV-M"]
    first, second = bundle.shipments
    assert [(i.line.sku, i.quantity) for i in first.lines] == [("TR2-BLK-09", 1)]
    assert [(i.line.sku, i.quantity) for i in second.lines] == [("TEE-OLV-M", 2)]
    assert [e.message for e in first.events] == ["Delivered", "Departed from Facility", "Label created"]
    (ret,) = bundle.returns
    assert ret.rma.rma_number == "R1001-1" and [rl.order_line_id for rl in ret.lines] == [shop["shoe"].id]
    assert [r.amount for r in bundle.refunds] == [Decimal("5.95")]
    assert [c.code for c in bundle.store_credits] == ["SC-TEST-0001"]
    with pytest.raises(LookupError):
        async with sessions() as session:
            await order_bundle(session, 987654)


async def test_order_document(sessions: Any) -> None:
    async with sessions() as session:
        shop = await seed_shop(session)
    async with sessions() as session:
        doc = await order_document(session, shop["older"], now=NOW)
    json.dumps(doc)  # JSON-ready as is
    assert doc["name"] == "#1001" and doc["external_id"] == "820982911946154508"
    assert doc["total_price"] == "404.95" and doc["currency"] == "USD"
    assert doc["placed_at"] == "2026-04-20T12:00:00Z"
    assert doc["customer"]["email"] == "Ana@Example.com"
    tee = doc["lines"][1]
    assert (tee["unit_price"], tee["total_discount"], tee["total"]) == ("24.00", "4.80", "43.20")
    delivered, moving = doc["shipments"]
    assert delivered["status"] == "delivered" and delivered["late"] is False
    assert delivered["events"][0]["status"] == "delivered"
    assert moving["tracking_number"] == "9400111206206406260787" and moving["late"] is False
    (ret,) = doc["returns"]
    assert ret["status"] == "credited" and ret["credit_amount"] == "97.90"
    assert ret["steps"]["credited"] == timestamp(NOW - timedelta(days=14)) and ret["steps"]["refunded"] is None
    assert ret["lines"][0]["sku"] == "TR2-BLK-09"
    assert doc["refunds"][0]["amount"] == "5.95"
    assert doc["store_credits"][0]["rma_number"] == "R1001-1"


def test_money_strings() -> None:
    assert money(Decimal("404.9")) == "404.90"
    assert money(Decimal("0")) == "0.00"
    assert money(Decimal("0.005")) == "0.005"
    assert money(None) is None


# --------------------------------------------------------------------------- shipping rules


def _shipment(**kw: Any) -> Shipment:
    base: dict[str, Any] = {"order_id": 1, "external_id": "x", "status": S("in_transit")}
    base.update(kw)
    return Shipment(**base)


@pytest.mark.parametrize(
    ("kw", "late"),
    [
        ({"shipped_at": NOW - timedelta(days=2), "last_event_at": NOW - timedelta(hours=3)}, False),
        ({"shipped_at": NOW - timedelta(days=9), "last_event_at": NOW - timedelta(days=6)}, True),  # stalled
        ({"shipped_at": NOW - timedelta(days=5, minutes=1)}, True),  # never scanned since shipping
        ({"shipped_at": NOW - timedelta(days=4)}, False),
        ({"eta": NOW - timedelta(hours=1), "shipped_at": NOW - timedelta(days=2),
          "last_event_at": NOW - timedelta(hours=2)}, True),
        ({"eta": NOW + timedelta(days=1), "shipped_at": NOW - timedelta(days=2)}, False),
        ({"status": S("exception"), "shipped_at": NOW - timedelta(days=1)}, True),
        ({"status": S("failed_attempt"), "shipped_at": NOW - timedelta(days=1)}, True),
        ({"status": S("expired")}, True),
        ({"status": S("delivered"), "eta": NOW - timedelta(days=9), "shipped_at": NOW - timedelta(days=20)}, False),
        ({"status": S("pending")}, False),
    ],
)
def test_shipment_is_late(kw: dict[str, Any], late: bool) -> None:
    assert shipment_is_late(_shipment(**kw), NOW) is late


def test_expected_ship_date_business_days() -> None:
    friday = datetime(2026, 5, 22, 15, 0, tzinfo=UTC)
    order = Order(external_id="1", name="#1", placed_at=friday)
    assert expected_ship_date(order) == datetime(2026, 5, 26, 15, 0, tzinfo=UTC)  # Tuesday
    assert expected_ship_date(order, {"handling_days": 0}) == friday
    assert expected_ship_date(order, {"handling_days": 3, "business_days_only": False}) == friday + timedelta(days=3)
    assert expected_ship_date(order, {"handling_days": "nonsense"}) == expected_ship_date(order)
    order.expected_ship_at = friday + timedelta(days=10)
    assert expected_ship_date(order) == friday + timedelta(days=10)
    assert add_business_days(friday, 1).weekday() == 0


async def test_settings_round_trip(sessions: Any) -> None:
    async with sessions() as session:
        assert await shipping_policy(session) == DEFAULT_SHIPPING_POLICY
        await put_setting(session, "shipping", {"handling_days": 4})
        await session.commit()
    async with sessions() as session:
        policy = await shipping_policy(session)
        assert policy["handling_days"] == 4 and policy["zones"] == DEFAULT_SHIPPING_POLICY["zones"]
        await put_setting(session, "shipping", {"handling_days": 1})
        await session.commit()
        assert (await get_setting(session, "shipping", {}))["handling_days"] == 1
        assert await get_setting(session, "missing", {"a": 1}) == {"a": 1}
    assert DEFAULT_SHIPPING_POLICY["handling_days"] == 2  # the default itself was not mutated


async def test_document_uses_shop_handling_days(sessions: Any) -> None:
    async with sessions() as session:
        shop = await seed_shop(session)
        await put_setting(session, "shipping", {"handling_days": 0})
        await session.commit()
    async with sessions() as session:
        doc = await order_document(session, shop["newer"], now=NOW)
    assert doc["expected_ship_at"] == doc["placed_at"]
    assert doc["financial_status"] == FinancialStatus.paid.value

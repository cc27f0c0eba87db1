"""Order import from files (Shopify JSON shapes, marketplace/POS CSV) on SQLite and PostgreSQL."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from ordersvc_builders import make_level, make_warehouse
from sqlmodel import select

from ordersvc.importer import ImportError_, ImportReport, import_file
from ordersvc.models import (
    Customer,
    FinancialStatus,
    FulfillmentStatus,
    InventoryLevel,
    Order,
    OrderLine,
    ProductVariant,
    Refund,
    Shipment,
    ShipmentLine,
    SourceChannel,
)
from ordersvc.shopify import Outcome, load_json, upsert_shopify_order
from ordersvc.tracking import ShipmentStatus

FIXTURES = Path(__file__).parent / "fixtures" / "shopify"
UTC = UTC


def fixture(name: str) -> Any:
    return load_json((FIXTURES / name).read_text())


def webhook_order(**changes: Any) -> dict[str, Any]:
    payload = copy.deepcopy(fixture("webhook_order_create.json"))
    payload.update(changes)
    return payload


def write(tmp_path: Path, name: str, content: Any) -> Path:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif isinstance(content, str):
        path.write_text(content)
    else:
        path.write_text(json.dumps(content, default=str))
    return path


async def row_counts(sessions: Any) -> dict[str, int]:
    counts = {}
    async with sessions() as s:
        for model in (Order, OrderLine, Shipment, ShipmentLine, Refund, Customer):
            counts[model.__name__] = (await s.exec(select(sa.func.count()).select_from(model))).one()
    return counts


async def order_by_name(sessions: Any, name: str) -> Order:
    async with sessions() as s:
        return (await s.exec(select(Order).where(Order.name == name))).one()


async def lines_of(sessions: Any, order: Order) -> dict[str, OrderLine]:
    async with sessions() as s:
        rows = (await s.exec(select(OrderLine).where(OrderLine.order_id == order.id))).all()
        return {line.sku or line.title: line for line in rows}


async def shipments_of(sessions: Any, order: Order) -> list[Shipment]:
    async with sessions() as s:
        return list((await s.exec(select(Shipment).where(Shipment.order_id == order.id))).all())


# --------------------------------------------------------------------------- JSON


async def test_rest_order_maps_every_field(sessions) -> None:
    report = await import_file(sessions, FIXTURES / "order_get.json")
    assert (report.created, report.updated, report.unchanged, report.rejected) == (1, 0, 0, [])

    order = await order_by_name(sessions, "#1001")
    assert order.source is SourceChannel.online_store
    assert order.external_id == "6107318599000123457"
    assert order.email == "mai.tran@example.com"
    assert order.phone == "+447700900123"
    assert order.currency == "GBP"
    assert (order.subtotal_price, order.total_tax, order.total_shipping, order.total_discounts, order.total_price) == (
        Decimal("52.48"), Decimal("4.20"), Decimal("5.00"), Decimal("0"), Decimal("61.68"),
    )  # fmt: skip
    assert order.financial_status is FinancialStatus.paid
    assert order.fulfillment_status is FulfillmentStatus.partial
    assert order.placed_at == datetime(2025, 3, 1, 9, 15, 2, tzinfo=UTC)
    assert order.source_updated_at == datetime(2025, 3, 2, 15, 0, tzinfo=UTC)
    assert order.cancelled_at is None and order.closed_at is None
    assert order.tags == ["vip", "gift"]
    assert order.note == "Leave with the concierge"
    assert order.shipping_postal_code == "SW1A1AA"
    assert order.shipping_address == {
        "name": "Mai Tran", "address1": "10 Downing Lane", "address2": "Flat 2", "city": "London",
        "province": "England", "province_code": "ENG", "zip": "sw1a 1aa", "country": "United Kingdom",
        "country_code": "GB", "phone": "+447700900123",
    }  # fmt: skip
    assert order.billing_address is not None
    assert order.billing_address["name"] == "Mai Tran"  # built from first + last name
    assert order.billing_address["address2"] is None

    async with sessions() as s:
        customer = (await s.exec(select(Customer).where(Customer.id == order.customer_id))).one()
    assert customer.external_id == "7001234567890123456"
    assert (customer.email, customer.first_name, customer.last_name) == ("mai.tran@example.com", "Mai", "Tran")
    assert customer.locale == "en-GB"

    lines = await lines_of(sessions, order)
    tee, mug = lines["TEE-BLK-M"], lines["MUG-WHT"]
    assert tee.external_id == "14001000000000000001"
    assert (tee.title, tee.variant_title) == ("Organic Tee", "Black / M")
    assert (tee.quantity, tee.unit_price) == (2, Decimal("19.99"))
    assert (tee.fulfilled_quantity, tee.final_sale, tee.returnable) == (2, False, True)
    assert (mug.fulfilled_quantity, mug.final_sale, mug.returnable) == (0, True, False)  # "_final_sale" property

    (shipment,) = await shipments_of(sessions, order)
    assert shipment.external_id == "5101000000000000001"
    assert (shipment.name, shipment.carrier, shipment.tracking_number) == ("#1001.1", "UPS", "1Z5R89390357567127")
    assert shipment.tracking_url is not None and "1Z5R89390357567127" in shipment.tracking_url  # fallback URL
    assert shipment.status is ShipmentStatus.IN_TRANSIT
    assert shipment.shipped_at == datetime(2025, 3, 2, 13, 0, tzinfo=UTC)
    assert shipment.delivered_at is None
    async with sessions() as s:
        (sline,) = (await s.exec(select(ShipmentLine).where(ShipmentLine.shipment_id == shipment.id))).all()
    assert (sline.order_line_id, sline.quantity) == (tee.id, 2)


def _variant(payload: dict[str, Any], number: int) -> dict[str, Any]:
    """A copy of ``payload`` as a different order (ids and names shifted)."""
    other = copy.deepcopy(payload)
    other["id"] = payload["id"] + number
    other["name"] = f"#{2000 + number}"
    for index, item in enumerate(other["line_items"]):
        item["id"] = 10**18 + number * 100 + index
    return other


@pytest.mark.parametrize("shape", ["orders", "order", "bare", "list"])
async def test_every_json_shape_imports(sessions, tmp_path: Path, shape: str) -> None:
    first, second = _variant(webhook_order(), 1), _variant(webhook_order(), 2)
    document: Any = {
        "orders": {"orders": [first, second]},
        "order": {"order": first},
        "bare": first,
        "list": [first, second],
    }[shape]
    expected = 1 if shape in ("order", "bare") else 2

    report = await import_file(sessions, write(tmp_path, "orders.json", document))

    assert (report.created, report.rejected) == (expected, [])
    assert (await row_counts(sessions))["Order"] == expected
    assert (await order_by_name(sessions, "#2001")).external_id == str(first["id"])


async def test_shape_is_sniffed_without_a_json_suffix(sessions, tmp_path: Path) -> None:
    report = await import_file(sessions, write(tmp_path, "export.txt", {"orders": [webhook_order()]}))
    assert report.created == 1


async def test_reimport_changes_nothing(sessions, tmp_path: Path) -> None:
    path = write(tmp_path, "orders.json", {"orders": [fixture("order_get.json")["order"], webhook_order()]})
    first = await import_file(sessions, path)
    before = await row_counts(sessions)
    order_before = await order_by_name(sessions, "#1004")

    again = await import_file(sessions, path)

    assert (first.created, again.created, again.updated, again.unchanged) == (2, 0, 0, 2)
    assert await row_counts(sessions) == before
    assert before["Shipment"] == 1 and before["OrderLine"] == 4 and before["Customer"] == 2
    assert (await order_by_name(sessions, "#1004")).updated_at == order_before.updated_at


async def test_ids_above_2_53_round_trip_exactly(sessions, tmp_path: Path) -> None:
    big = 2**53 + 1  # 9007199254740993: a float would turn it into ...992
    assert float(big) != big
    text = json.dumps(webhook_order(id=big))
    assert str(big) in text
    report = await import_file(sessions, write(tmp_path, "order.json", text))
    assert report.created == 1

    order = await order_by_name(sessions, "#1004")
    assert order.external_id == "9007199254740993"
    lines = await lines_of(sessions, order)
    assert lines["BOOT-FUR-42"].external_id == "487817672276298554"
    async with sessions() as s:
        customer = (await s.exec(select(Customer).where(Customer.id == order.customer_id))).one()
    assert customer.external_id == "7009999999999999001"

    # the 20-digit line ids of the REST fixture (> 2^63) survive as well
    await import_file(sessions, FIXTURES / "order_get.json")
    tee = (await lines_of(sessions, await order_by_name(sessions, "#1001")))["TEE-BLK-M"]
    assert tee.external_id == "14001000000000000001"


async def test_an_id_that_went_through_a_float_is_refused(sessions, tmp_path: Path) -> None:
    path = write(tmp_path, "order.json", '{"id": 9007199254740993.0, "name": "#1"}')
    report = await import_file(sessions, path)
    assert report.created == 0
    ((ref, reason),) = report.rejected
    assert reason.startswith("id:") and "fractional" in reason


async def test_money_is_exact(sessions, tmp_path: Path) -> None:
    payload = webhook_order(
        subtotal_price="0.30",
        total_tax="0.10",
        total_discounts="0.20",
        total_price="123456789012.3456",
        total_shipping_price_set={"shop_money": {"amount": "0.1", "currency_code": "USD"}},
    )
    payload["line_items"][0]["price"] = "0.10"
    payload["line_items"][1]["price"] = 0.2  # a JSON number: parsed as Decimal, never float
    await import_file(sessions, write(tmp_path, "order.json", json.dumps(payload)))

    order = await order_by_name(sessions, "#1004")
    assert order.subtotal_price == Decimal("0.30") and isinstance(order.subtotal_price, Decimal)
    assert order.total_price == Decimal("123456789012.3456")
    assert order.total_shipping == Decimal("0.1")
    lines = await lines_of(sessions, order)
    total = lines["BOOT-FUR-42"].unit_price + lines["SOCK-WOOL"].unit_price
    assert total == Decimal("0.3")  # 0.1 + 0.2 as binary floats is 0.30000000000000004
    assert order.total_tax + order.total_discounts == Decimal("0.30")


async def test_newer_update_applies_and_older_never_rolls_back(sessions) -> None:
    original = webhook_order()
    newer = webhook_order(updated_at="2025-04-12T00:00:00Z", financial_status="refunded", tags="vip")
    same_time_other_content = webhook_order(updated_at="2025-04-12T00:00:00Z", financial_status="voided")

    async with sessions() as s, s.begin():
        assert (await upsert_shopify_order(s, original)).status is Outcome.created
    async with sessions() as s, s.begin():
        result = await upsert_shopify_order(s, newer)
        assert result.status is Outcome.updated and "order.updated" in result.events
    for stale in (original, same_time_other_content, webhook_order(updated_at=None, financial_status="pending")):
        async with sessions() as s, s.begin():
            assert (await upsert_shopify_order(s, stale)).status is Outcome.unchanged

    order = await order_by_name(sessions, "#1004")
    assert order.financial_status is FinancialStatus.refunded
    assert order.tags == ["vip"]
    assert order.source_updated_at == datetime(2025, 4, 12, tzinfo=UTC)


async def test_hostile_strings_are_cleaned_and_bounded(sessions, tmp_path: Path) -> None:
    payload = webhook_order(note="ok\u0000" + "n" * 50_000, cancel_reason="r" * 500, tags="a\u0000b, " + "t" * 1000)
    payload["line_items"][0]["title"] = "<script>alert(1)</script>\u0000" + "x" * 100_000
    payload["shipping_address"]["city"] = "Spring\u0000field\u202e"
    payload["customer"]["first_name"] = "J" * 10_000
    report = await import_file(sessions, write(tmp_path, "order.json", payload))
    assert report.created == 1, report.summary()

    order = await order_by_name(sessions, "#1004")
    assert order.note is not None and "\x00" not in order.note and len(order.note) == 10_000
    assert order.cancel_reason == "r" * 64
    assert order.tags == ["ab", "t" * 255]
    assert order.shipping_address is not None and order.shipping_address["city"] == "Springfield\u202e"
    title = (await lines_of(sessions, order))["BOOT-FUR-42"].title
    assert title.startswith("<script>") and len(title) == 255  # stored as text; escaping is the views' job
    async with sessions() as s:
        customer = (await s.exec(select(Customer))).one()
    assert customer.first_name == "J" * 120

    too_long_sku = webhook_order(id=5, name="#5")
    too_long_sku["line_items"][0]["sku"] = "S" * 65
    report = await import_file(sessions, write(tmp_path, "order.json", too_long_sku))
    assert report.rejected == [("#5", "line_items.0.sku: Value error, is longer than 64 characters")]


async def test_new_open_order_reserves_stock_once(sessions, tmp_path: Path) -> None:
    async with sessions() as s, s.begin():
        main = await make_warehouse(s, "MAIN")
        await make_level(s, main, "BOOT-FUR-42", 10)
        await make_level(s, main, "SOCK-WOOL", 10)
    path = write(tmp_path, "order.json", webhook_order())
    await import_file(sessions, path)
    await import_file(sessions, path)

    async with sessions() as s:
        levels = {lv.sku: lv.reserved for lv in (await s.exec(select(InventoryLevel))).all()}
    assert levels == {"BOOT-FUR-42": 1, "SOCK-WOOL": 2}
    assert (await order_by_name(sessions, "#1004")).stock_reserved is True


async def test_final_sale_from_order_tag_and_catalogue(sessions, tmp_path: Path) -> None:
    async with sessions() as s, s.begin():
        s.add(ProductVariant(sku="BOOT-FUR-42", product_key="boot", final_sale=True))
    tagged = webhook_order(tags="final-sale:SOCK-WOOL")
    await import_file(sessions, write(tmp_path, "order.json", tagged))

    lines = await lines_of(sessions, await order_by_name(sessions, "#1004"))
    assert lines["BOOT-FUR-42"].final_sale is True  # catalogue says so
    assert lines["SOCK-WOOL"].final_sale is True  # order tag names the SKU
    assert not lines["SOCK-WOOL"].returnable


async def test_default_source_applies_to_json(sessions, tmp_path: Path) -> None:
    await import_file(sessions, write(tmp_path, "order.json", webhook_order()), default_source="pos")
    assert (await order_by_name(sessions, "#1004")).source is SourceChannel.pos
    with pytest.raises(ImportError_, match="unknown source 'shopfiy'"):
        await import_file(sessions, write(tmp_path, "order.json", webhook_order()), default_source="shopfiy")


async def test_bad_orders_are_rejected_with_a_reason_and_others_land(sessions, tmp_path: Path) -> None:
    bad_quantity = _variant(webhook_order(), 3)
    bad_quantity["line_items"][1]["quantity"] = "many"
    unknown_fulfilled_line = _variant(webhook_order(), 4)  # fails after the order row was flushed
    unknown_fulfilled_line["fulfillments"] = [
        {"id": 5, "status": "success", "line_items": [{"id": 424242, "quantity": 1}]}
    ]
    document = {
        "orders": [
            webhook_order(),
            {"name": "#9", "line_items": []},
            {"id": "abc", "name": "#10"},
            bad_quantity,
            webhook_order(id=77, name="#77", total_price={"amount": "1"}),
            webhook_order(id=78, name="#78", email=["a"]),
            webhook_order(id=79, name="#79", created_at="yesterday"),
            unknown_fulfilled_line,
            5,
        ]
    }
    report = await import_file(sessions, write(tmp_path, "orders.json", document))

    assert report.created == 1
    reasons = dict(report.rejected)
    assert reasons["#9"] == "id: Field required"
    assert reasons["#10"].startswith("id: ")
    assert reasons["#2003"].startswith("line_items.1.quantity: ")
    assert reasons["#77"].startswith("total_price: ")
    assert reasons["#78"].startswith("email: ")
    assert reasons["#79"].startswith("created_at: ")
    assert "424242" in reasons["#2004"]
    assert reasons["order 9"] == "order payload must be a JSON object"
    assert all("\n" not in reason for reason in reasons.values())
    counts = await row_counts(sessions)
    assert (counts["Order"], counts["OrderLine"], counts["Shipment"]) == (1, 2, 0)

    summary = report.summary()
    assert summary.splitlines()[0] == "9 order(s): 1 created, 0 updated, 0 unchanged, 8 rejected"
    assert "rejected #2003: line_items.1.quantity" in summary
    assert "Traceback" not in summary


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("orders.json", "{oops", "not valid JSON"),
        ("orders.json", "", "is empty"),
        ("orders.json", "   \n", "is empty"),
        ("orders.json", b"\xff\xfe{\x00", "not UTF-8"),
        ("orders.json", '{"products": []}', "not a known shape"),
        ("orders.json", '{"orders": {"id": 1}}', '"orders" is not a list'),
        ("orders.json", '{"order": [1]}', '"order" is not an object'),
        ("orders.json", "42", "not a known shape"),
        ("orders.json", "[" * 100_000, "not valid JSON"),
        ("orders.csv", "name,price\nx,1\n", "missing column(s) order_number"),
        ("orders.csv", "source,order_number,placed_at,quantity,unit_price\n", "sku or title"),
        ("orders.dat", "hello world", "missing column(s)"),
    ],
)
async def test_unusable_files_raise_one_line_import_errors(
    sessions, tmp_path: Path, name: str, content: Any, message: str
) -> None:
    with pytest.raises(ImportError_) as caught:
        await import_file(sessions, write(tmp_path, name, content))
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


async def test_missing_file_and_directory_raise_import_errors(sessions, tmp_path: Path) -> None:
    with pytest.raises(ImportError_, match="cannot read"):
        await import_file(sessions, tmp_path / "nope.json")
    with pytest.raises(ImportError_, match="is a directory"):
        await import_file(sessions, tmp_path)


async def test_empty_order_list_is_an_empty_report(sessions, tmp_path: Path) -> None:
    report = await import_file(sessions, write(tmp_path, "orders.json", {"orders": []}))
    assert report == ImportReport()
    assert report.summary() == "0 order(s): 0 created, 0 updated, 0 unchanged, 0 rejected"


async def test_progress_bar_run_for_many_orders(sessions, tmp_path: Path, capsys) -> None:
    orders = [_variant(webhook_order(), n) for n in range(1, 52)]  # just over the threshold
    report = await import_file(sessions, write(tmp_path, "orders.json", orders), progress=True)
    assert report.created == 51
    assert capsys.readouterr().out == ""  # the bar goes to stderr only


# --------------------------------------------------------------------------- CSV


async def test_csv_marketplace_and_pos_orders(sessions) -> None:
    report = await import_file(sessions, FIXTURES / "marketplace_orders.csv")
    assert (report.created, report.rejected) == (3, [])

    amazon = await order_by_name(sessions, "113-1234567-1234567")
    assert (amazon.source, amazon.external_id, amazon.currency) == (SourceChannel.amazon, "113-1234567-1234567", "USD")
    assert amazon.placed_at == datetime(2025, 5, 2, 10, 30, tzinfo=UTC)
    assert amazon.email == "ana.lima@example.com"
    assert amazon.total_price == Decimal("52.48") and amazon.subtotal_price == Decimal("52.48")
    assert amazon.fulfillment_status is FulfillmentStatus.partial  # the mug has not shipped
    assert amazon.financial_status is FinancialStatus.paid
    assert amazon.shipping_postal_code == "97201"
    assert amazon.shipping_address is not None and amazon.shipping_address["country_code"] == "US"
    lines = await lines_of(sessions, amazon)
    tee, mug = lines["TEE-BLK-M"], lines["MUG-WHT"]
    assert (tee.quantity, tee.fulfilled_quantity, tee.variant_title) == (2, 2, "Black / M")
    assert (mug.final_sale, mug.product_type, mug.fulfilled_quantity) == (True, "Kitchen", 0)
    (ups,) = await shipments_of(sessions, amazon)
    assert (ups.carrier, ups.tracking_number, ups.status) == ("UPS", "1Z5R89390357567127", ShipmentStatus.IN_TRANSIT)
    async with sessions() as s:
        customer = (await s.exec(select(Customer).where(Customer.id == amazon.customer_id))).one()
    assert (customer.first_name, customer.last_name, customer.external_id) == ("Ana", "Lima", None)

    ebay = await order_by_name(sessions, "12-12345-12345")
    assert (ebay.source, ebay.currency, ebay.total_price) == (SourceChannel.ebay, "EUR", Decimal("45.00"))
    assert ebay.placed_at == datetime(2025, 5, 4, tzinfo=UTC)  # a date alone is midnight UTC
    assert ebay.fulfillment_status is FulfillmentStatus.fulfilled
    (fedex,) = await shipments_of(sessions, ebay)
    assert fedex.carrier == "FedEx"  # guessed from the number's check digit
    assert fedex.status is ShipmentStatus.DELIVERED and fedex.delivered_at is not None
    assert fedex.shipped_at == datetime(2025, 5, 5, 7, 0, tzinfo=UTC)

    pos = await order_by_name(sessions, "POS-0042")
    assert (pos.source, pos.customer_id, pos.email) == (SourceChannel.pos, None, None)
    assert pos.placed_at == datetime(2025, 5, 6, 23, 45, tzinfo=UTC)
    assert pos.total_price == Decimal("26.50")
    pos_lines = await lines_of(sessions, pos)
    assert {k: (v.quantity, v.fulfilled_quantity) for k, v in pos_lines.items()} == {
        "CANDLE-S": (3, 3),
        "Gift wrap": (1, 1),
    }

    before = await row_counts(sessions)
    again = await import_file(sessions, FIXTURES / "marketplace_orders.csv")
    assert (again.created, again.updated, again.unchanged) == (0, 0, 3)
    assert await row_counts(sessions) == before


async def test_csv_row_error_rejects_only_that_order(sessions) -> None:
    report = await import_file(sessions, FIXTURES / "marketplace_broken.csv")

    assert report.created == 2
    reasons = dict(report.rejected)
    assert reasons["ebay 12-54321-54321"] == "row 4: quantity 'two' is not a whole number"
    assert reasons["amazn 113-0000000-0000000"].startswith("row 6: source 'amazn' is not one of")
    async with sessions() as s:
        names = set((await s.exec(select(Order.name))).all())
    assert names == {"113-7654321-7654321", "POS-0043"}
    assert "row 4" in report.summary()


async def test_csv_default_source_and_conflicting_rows(sessions, tmp_path: Path) -> None:
    csv_text = (
        "Order_Number,Placed_At,Email,SKU,Quantity,Unit_Price\n"
        "A-1,2025-01-01T00:00:00Z,x@example.com,S1,1,1.00\n"
        "A-1,2025-01-01T00:00:00Z,y@example.com,S2,1,1.00\n"
        "A-2,2025-01-02T00:00:00Z,,S1,1,1.00\n"
        "A-2,2025-01-02T00:00:00Z,,S1,2,1.00\n"
        "A-3,2025-01-03T00:00:00Z,,S1,1,-1\n"
        ",2025-01-03T00:00:00Z,,S1,1,1\n"
    )
    path = write(tmp_path, "orders.csv", csv_text)
    with pytest.raises(ImportError_, match="source"):
        await import_file(sessions, path)

    report = await import_file(sessions, path, default_source="other")

    assert report.created == 1
    reasons = dict(report.rejected)
    assert reasons["other A-1"] == "row 3: email differs from row 2 of the same order"
    assert reasons["other A-3"] == "row 6: unit_price is negative"
    assert reasons["row 7"] == "row 7: order_number is empty"
    merged = await order_by_name(sessions, "A-2")
    assert merged.source is SourceChannel.other
    assert {k: v.quantity for k, v in (await lines_of(sessions, merged)).items()} == {"S1": 3}

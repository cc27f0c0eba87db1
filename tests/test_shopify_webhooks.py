"""``POST /webhooks/shopify`` against the real app on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import base64
import copy
import hashlib
import hmac
import io
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from aiohttp import web
from ordersvc_builders import make_level, make_warehouse
from sqlmodel import select

from ordersvc.models import (
    Customer,
    FinancialStatus,
    FulfillmentStatus,
    InventoryLevel,
    Order,
    OrderLine,
    Refund,
    Shipment,
    ShipmentLine,
)
from ordersvc.shopify import customer_data_report, load_json
from ordersvc.tracking import ShipmentStatus
from ordersvc.webhooks import MAX_BODY_BYTES, ORDER_EVENTS, TOPICS, ShopifyWebhooks, setup
from shopbase.dedupe import WebhookDelivery

FIXTURES = Path(__file__).parent / "fixtures" / "shopify"
SECRET = "shpss_current_0123456789"
PREVIOUS = "shpss_previous_9876543210"
ORDER_ID = 9007199254740993
UTC = UTC


def fixture(name: str, **changes: Any) -> dict[str, Any]:
    payload = copy.deepcopy(load_json((FIXTURES / name).read_text()))
    payload.update(changes)
    return payload


def sign(body: bytes, secret: str = SECRET) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


async def _chunks(body: bytes, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    """A streamed body: sent with chunked transfer encoding, so without Content-Length."""
    for start in range(0, len(body), size):
        yield body[start : start + size]


@dataclass
class Hook:
    client: Any
    sessions: Any
    secrets: list[str]
    events: list[tuple[str, int]] = field(default_factory=list)
    committed: list[bool] = field(default_factory=list)
    counter: int = 0

    async def post(
        self,
        topic: str | None,
        payload: Any,
        *,
        webhook_id: str | None = None,
        secret: str = SECRET,
        signature: str | None = None,
        chunked: bool = False,
    ) -> tuple[int, dict[str, Any]]:
        body = payload if isinstance(payload, bytes) else json.dumps(payload, default=str).encode()
        if webhook_id is None:
            self.counter += 1
            webhook_id = f"wh-{self.counter}"
        headers = {"Content-Type": "application/json", "X-Shopify-Hmac-Sha256": signature or sign(body, secret)}
        if topic is not None:
            headers["X-Shopify-Topic"] = topic
        if webhook_id:
            headers["X-Shopify-Webhook-Id"] = webhook_id
        data: Any = io.BytesIO(body) if len(body) > 512 * 1024 else body
        if chunked:
            data = _chunks(body)
        response = await self.client.post("/webhooks/shopify", data=data, headers=headers)
        return response.status, await response.json()

    async def order(self) -> Order | None:
        async with self.sessions() as s:
            return (await s.exec(select(Order).where(Order.external_id == str(ORDER_ID)))).first()

    async def count(self, model: Any) -> int:
        async with self.sessions() as s:
            return (await s.exec(select(sa.func.count()).select_from(model))).one()


@pytest.fixture
async def hook(sessions, aiohttp_client) -> Hook:
    secrets = [SECRET, PREVIOUS]
    state = Hook(client=None, sessions=sessions, secrets=secrets)

    async def on_change(event: str, order_id: int) -> None:
        async with sessions() as s:  # runs after the commit: a new session sees the change
            state.committed.append((await s.get(Order, order_id)) is not None)
        state.events.append((event, order_id))

    app = web.Application()
    setup(app, sessions, lambda: list(secrets), on_change=on_change)
    state.client = await aiohttp_client(app)
    return state


async def test_orders_create_stores_the_order_and_announces_after_commit(hook: Hook) -> None:
    status, body = await hook.post("orders/create", fixture("webhook_order_create.json"), webhook_id="a-1")

    assert (status, body) == (200, {"status": "ok"})
    order = await hook.order()
    assert order is not None and order.name == "#1004" and order.total_price == Decimal("99.97")
    assert hook.events == [("order.created", order.id)]
    assert hook.committed == [True]
    async with hook.sessions() as s:
        delivery = (await s.exec(select(WebhookDelivery))).one()
    assert (delivery.source, delivery.delivery_id, delivery.topic) == ("shopify", "a-1", "orders/create")
    assert {name for name, _ in hook.events} <= ORDER_EVENTS


async def test_every_topic_is_accepted_with_a_valid_signature(hook: Hook) -> None:
    steps = [
        ("orders/create", fixture("webhook_order_create.json")),
        ("orders/updated", fixture("webhook_order_create.json", updated_at="2025-04-11T00:00:00Z", note="ring twice")),
        ("fulfillments/create", fixture("webhook_fulfillment.json")),
        (
            "fulfillments/update",
            fixture("webhook_fulfillment.json", updated_at="2025-04-12T00:00:00Z", shipment_status="delivered"),
        ),
        ("refunds/create", fixture("webhook_refund.json")),
        ("customers/data_request", fixture("customers_data_request.json")),
        (
            "orders/cancelled",
            fixture("webhook_order_create.json", updated_at="2025-04-21T00:00:00Z", cancelled_at="2025-04-21T00:00Z"),
        ),
        ("customers/redact", fixture("customers_redact.json")),
        ("shop/redact", {"shop_id": 954889, "shop_domain": "shopdesk-test.myshopify.com"}),
    ]
    for topic, payload in steps:
        assert await hook.post(topic, payload) == (200, {"status": "ok"}), topic
    assert await hook.count(WebhookDelivery) == len(steps)
    assert [name for name, _ in hook.events] == [
        "order.created",
        "order.updated",
        "shipment.updated",
        "shipment.updated",
        "refund.created",
        "order.cancelled",
    ]


@pytest.mark.parametrize("case", ["wrong secret", "missing header", "garbage", "reserialised body"])
async def test_bad_signature_is_401_and_writes_nothing(hook: Hook, case: str) -> None:
    payload = fixture("webhook_order_create.json")
    body = json.dumps(payload).encode()
    signature = {
        "wrong secret": sign(body, "shpss_attacker"),
        "missing header": "",
        "garbage": "not-base64-é",
        "reserialised body": sign(json.dumps(payload, indent=2).encode()),
    }[case]
    if case == "missing header":
        response = await hook.client.post(
            "/webhooks/shopify", data=body, headers={"X-Shopify-Topic": "orders/create", "X-Shopify-Webhook-Id": "x"}
        )
        status, answer = response.status, await response.json()
    else:
        status, answer = await hook.post("orders/create", body, signature=signature)

    assert status == 401 and "error" in answer
    assert await hook.count(Order) == 0
    assert await hook.count(WebhookDelivery) == 0
    assert hook.events == []


async def test_bad_signature_is_401_even_for_unparsable_bodies(hook: Hook) -> None:
    status, _ = await hook.post("orders/create", b"{not json", signature=sign(b"something else"))
    assert status == 401


async def test_previous_secret_is_accepted_during_rotation(hook: Hook) -> None:
    status, _ = await hook.post("orders/create", fixture("webhook_order_create.json"), secret=PREVIOUS)
    assert status == 200 and await hook.order() is not None

    hook.secrets[:] = [SECRET]  # rotation finished: the old secret stops working
    status, _ = await hook.post("orders/create", fixture("webhook_order_create.json"), secret=PREVIOUS)
    assert status == 401


async def test_unconfigured_secrets_answer_503(hook: Hook) -> None:
    hook.secrets[:] = ["", ""]
    status, body = await hook.post("orders/create", fixture("webhook_order_create.json"))
    assert (status, body) == (503, {"error": "shopify webhooks are not configured"})
    assert await hook.count(WebhookDelivery) == 0


async def test_duplicate_webhook_id_has_no_second_effect(hook: Hook) -> None:
    assert await hook.post("orders/create", fixture("webhook_order_create.json"), webhook_id="same")
    newer = fixture("webhook_order_create.json", updated_at="2025-05-01T00:00:00Z", financial_status="refunded")

    status, body = await hook.post("orders/updated", newer, webhook_id="same")

    assert (status, body) == (200, {"status": "duplicate"})
    order = await hook.order()
    assert order is not None and order.financial_status is FinancialStatus.paid
    assert await hook.count(WebhookDelivery) == 1
    assert [name for name, _ in hook.events] == ["order.created"]


async def test_concurrent_duplicates_have_exactly_one_effect(hook: Hook) -> None:
    payload = fixture("webhook_order_create.json")
    results = await asyncio.gather(
        hook.post("orders/create", payload, webhook_id="race"),
        hook.post("orders/create", payload, webhook_id="race"),
    )
    assert sorted(body["status"] for _, body in results) == ["duplicate", "ok"]
    assert all(status == 200 for status, _ in results)
    assert await hook.count(WebhookDelivery) == 1
    assert await hook.count(Order) == 1
    assert await hook.count(OrderLine) == 2
    assert [name for name, _ in hook.events] == ["order.created"]


async def test_concurrent_deliveries_of_one_new_order_both_apply(hook: Hook) -> None:
    """orders/create and orders/updated racing on a new order: one row, both acknowledged."""
    created = fixture("webhook_order_create.json")
    updated = fixture("webhook_order_create.json", updated_at="2025-04-11T00:00:00Z", note="updated")
    results = await asyncio.gather(
        hook.post("orders/create", created, webhook_id="c"),
        hook.post("orders/updated", updated, webhook_id="u"),
    )
    assert [status for status, _ in results] == [200, 200]
    assert await hook.count(Order) == 1 and await hook.count(Customer) == 1
    order = await hook.order()
    assert order is not None and order.note == "updated"


async def test_older_updates_never_roll_back(hook: Hook) -> None:
    await hook.post("orders/create", fixture("webhook_order_create.json"))
    newest = fixture("webhook_order_create.json", updated_at="2025-04-15T00:00:00Z", financial_status="refunded")
    older = fixture("webhook_order_create.json", updated_at="2025-04-12T00:00:00Z", financial_status="paid")
    assert (await hook.post("orders/updated", newest))[0] == 200
    assert (await hook.post("orders/updated", older)) == (200, {"status": "ok"})  # acknowledged, ignored
    order = await hook.order()
    assert order is not None and order.financial_status is FinancialStatus.refunded

    delivered = fixture("webhook_fulfillment.json", updated_at="2025-04-14T00:00:00Z", shipment_status="delivered")
    in_transit = fixture("webhook_fulfillment.json", updated_at="2025-04-13T00:00:00Z", shipment_status="in_transit")
    await hook.post("fulfillments/update", delivered)
    await hook.post("fulfillments/update", in_transit)
    async with hook.sessions() as s:
        shipment = (await s.exec(select(Shipment))).one()
    assert shipment.status is ShipmentStatus.DELIVERED
    assert shipment.delivered_at == datetime(2025, 4, 14, tzinfo=UTC)
    # the older orders/updated also did not touch the shipment state
    assert (await hook.post("orders/updated", older))[0] == 200
    async with hook.sessions() as s:
        assert (await s.exec(select(Shipment))).one().status is ShipmentStatus.DELIVERED


async def test_unknown_topic_is_ignored_but_recorded(hook: Hook) -> None:
    status, body = await hook.post("collections/update", {"id": 1, "title": "Tees"}, webhook_id="p-1")
    assert (status, body) == (200, {"status": "ignored"})
    async with hook.sessions() as s:
        delivery = (await s.exec(select(WebhookDelivery))).one()
    assert delivery.topic == "collections/update"
    assert await hook.post("collections/update", {"id": 1}, webhook_id="p-1") == (200, {"status": "duplicate"})


async def test_body_over_one_mib_is_413(hook: Hook) -> None:
    body = b'{"id": 1, "note": "' + b"x" * MAX_BODY_BYTES + b'"}'
    for chunked in (False, True):  # with a Content-Length, and streamed without one
        status, answer = await hook.post("orders/create", body, chunked=chunked)
        assert status == 413 and "1 MiB" in answer["error"]
    assert await hook.count(WebhookDelivery) == 0

    at_limit = fixture("webhook_order_create.json")
    at_limit["note"] = ""
    size = len(json.dumps(at_limit).encode())
    at_limit["note"] = "y" * (MAX_BODY_BYTES - size)
    exact = json.dumps(at_limit).encode()
    assert len(exact) == MAX_BODY_BYTES
    assert (await hook.post("orders/create", exact, chunked=True))[0] == 200


async def test_malformed_json_is_400(hook: Hook) -> None:
    for body in (b"{oops", b"\xff\xfe", b"[" * 50_000):
        status, answer = await hook.post("orders/create", body)
        assert status == 400 and answer == {"error": "the body is not valid JSON"}
    assert await hook.count(WebhookDelivery) == 0


@pytest.mark.parametrize("missing", ["topic", "webhook id"])
async def test_missing_headers_are_400(hook: Hook, missing: str) -> None:
    payload = fixture("webhook_order_create.json")
    if missing == "topic":
        status, answer = await hook.post(None, payload)
    else:
        status, answer = await hook.post("orders/create", payload, webhook_id="")
    assert status == 400 and "X-Shopify" in answer["error"]
    assert await hook.count(Order) == 0


async def test_unusable_payloads_are_422_and_write_nothing(hook: Hook) -> None:
    no_id = fixture("webhook_order_create.json")
    del no_id["id"]
    bad_quantity = fixture("webhook_order_create.json")
    bad_quantity["line_items"][0]["quantity"] = -1
    cases = [
        ("orders/create", no_id, "id: Field required"),
        ("orders/create", bad_quantity, "line_items.0.quantity: "),
        ("orders/create", [1, 2], "payload must be a JSON object"),
        ("fulfillments/create", fixture("webhook_fulfillment.json"), "is not in the order store yet"),
        ("refunds/create", fixture("webhook_refund.json", order_id=None), "order_id: Field required"),
        ("customers/redact", {"shop_id": 1}, "customer: Field required"),
    ]
    for topic, payload, message in cases:
        status, answer = await hook.post(topic, payload, webhook_id="retry-me")
        assert status == 422, topic
        assert message in answer["error"]
    assert await hook.count(Order) == 0
    assert await hook.count(WebhookDelivery) == 0  # so Shopify's retry is processed
    # once the order exists, the retried fulfillment (same webhook id) lands
    await hook.post("orders/create", fixture("webhook_order_create.json"))
    status, body = await hook.post("fulfillments/create", fixture("webhook_fulfillment.json"), webhook_id="retry-me")
    assert (status, body) == (200, {"status": "ok"})


async def test_fulfillment_updates_move_the_shipment(hook: Hook) -> None:
    await hook.post("orders/create", fixture("webhook_order_create.json"))
    await hook.post("fulfillments/create", fixture("webhook_fulfillment.json"))
    async with hook.sessions() as s:
        shipment = (await s.exec(select(Shipment))).one()
        order = (await s.exec(select(Order))).one()
    assert shipment.external_id == "4567890123456789012"
    assert (shipment.carrier, shipment.tracking_number) == ("FedEx", "986578788855")
    assert shipment.tracking_url == "https://www.fedex.com/fedextrack/?trknbr=986578788855"
    assert shipment.status is ShipmentStatus.IN_TRANSIT and shipment.delivered_at is None
    assert order.fulfillment_status is FulfillmentStatus.fulfilled

    update = fixture("webhook_fulfillment.json", updated_at="2025-04-13T10:00:00-04:00", shipment_status="delivered")
    assert await hook.post("fulfillments/update", update) == (200, {"status": "ok"})
    async with hook.sessions() as s:
        shipment = (await s.exec(select(Shipment))).one()
        lines = (await s.exec(select(OrderLine))).all()
    assert shipment.status is ShipmentStatus.DELIVERED
    assert shipment.delivered_at == datetime(2025, 4, 13, 14, 0, tzinfo=UTC)
    assert {line.sku: line.fulfilled_quantity for line in lines} == {"BOOT-FUR-42": 1, "SOCK-WOOL": 2}
    assert hook.events[-2:] == [("shipment.updated", order.id), ("shipment.updated", order.id)]


async def test_cancelled_fulfillment_removes_its_shipment(hook: Hook) -> None:
    await hook.post("orders/create", fixture("webhook_order_create.json"))
    await hook.post("fulfillments/create", fixture("webhook_fulfillment.json"))
    assert await hook.count(Shipment) == 1

    cancelled = fixture("webhook_fulfillment.json", updated_at="2025-04-11T10:00:00-04:00", status="cancelled")
    assert await hook.post("fulfillments/update", cancelled) == (200, {"status": "ok"})

    assert await hook.count(Shipment) == 0
    async with hook.sessions() as s:
        assert (await s.exec(select(sa.func.count()).select_from(ShipmentLine))).one() == 0


async def test_refund_creates_a_refund_once(hook: Hook) -> None:
    await hook.post("orders/create", fixture("webhook_order_create.json"))
    assert await hook.post("refunds/create", fixture("webhook_refund.json")) == (200, {"status": "ok"})
    # a second delivery (new webhook id) of the same refund adds nothing
    assert await hook.post("refunds/create", fixture("webhook_refund.json")) == (200, {"status": "ok"})

    async with hook.sessions() as s:
        refund = (await s.exec(select(Refund))).one()
    assert refund.external_id == "3456789012345678901"
    assert refund.amount == Decimal("10.00")  # successful refund transactions only: 9.99 + 0.01
    assert (refund.currency, refund.note) == ("USD", "socks arrived torn")
    assert refund.processed_at == datetime(2025, 4, 20, 19, 0, 1, tzinfo=UTC)
    assert [name for name, _ in hook.events].count("refund.created") == 1


async def test_cancel_sets_cancelled_at_and_releases_stock(hook: Hook) -> None:
    async with hook.sessions() as s, s.begin():
        main = await make_warehouse(s, "MAIN")
        await make_level(s, main, "BOOT-FUR-42", 5)
        await make_level(s, main, "SOCK-WOOL", 5)

    async def reserved() -> dict[str, int]:
        async with hook.sessions() as s:
            return {lv.sku: lv.reserved for lv in (await s.exec(select(InventoryLevel))).all()}

    await hook.post("orders/create", fixture("webhook_order_create.json"))
    assert await reserved() == {"BOOT-FUR-42": 1, "SOCK-WOOL": 2}

    cancelled = fixture(
        "webhook_order_create.json",
        updated_at="2025-04-10T18:00:00Z",
        cancelled_at="2025-04-10T17:59:00Z",
        cancel_reason="customer",
        financial_status="voided",
    )
    assert await hook.post("orders/cancelled", cancelled) == (200, {"status": "ok"})

    order = await hook.order()
    assert order is not None
    assert order.cancelled_at == datetime(2025, 4, 10, 17, 59, tzinfo=UTC)
    assert (order.cancel_reason, order.financial_status) == ("customer", FinancialStatus.voided)
    assert order.stock_reserved is False
    assert await reserved() == {"BOOT-FUR-42": 0, "SOCK-WOOL": 0}
    assert hook.events[-1] == ("order.cancelled", order.id)

    # the same cancellation via orders/updated changes nothing more
    await hook.post("orders/updated", cancelled)
    assert await reserved() == {"BOOT-FUR-42": 0, "SOCK-WOOL": 0}


async def test_cancel_without_cancelled_at_still_cancels(hook: Hook) -> None:
    await hook.post("orders/create", fixture("webhook_order_create.json"))
    await hook.post("orders/cancelled", fixture("webhook_order_create.json", updated_at="2025-04-11T00:00:00Z"))
    order = await hook.order()
    assert order is not None and order.cancelled_at == datetime(2025, 4, 11, tzinfo=UTC)


async def test_redact_blanks_pii_and_keeps_bookkeeping(hook: Hook) -> None:
    await hook.post("orders/create", fixture("webhook_order_create.json"))
    assert await hook.post("customers/redact", fixture("customers_redact.json")) == (200, {"status": "ok"})

    order = await hook.order()
    assert order is not None
    assert (order.email, order.phone, order.shipping_address, order.billing_address) == (None, None, None, None)
    assert (order.shipping_postal_code, order.note) == (None, None)
    assert (order.name, order.total_price, order.currency) == ("#1004", Decimal("99.97"), "USD")
    assert await hook.count(OrderLine) == 2
    async with hook.sessions() as s:
        customer = (await s.exec(select(Customer))).one()
    assert (customer.email, customer.phone, customer.first_name, customer.last_name) == (None, None, "", "")
    assert customer.redacted_at is not None
    assert customer.external_id == "7009999999999999001"  # kept so later deliveries stay redacted

    # a later orders/updated for the same customer does not bring the PII back
    later = fixture("webhook_order_create.json", updated_at="2025-06-01T00:00:00Z")
    assert (await hook.post("orders/updated", later))[0] == 200
    order = await hook.order()
    assert order is not None and order.email is None and order.shipping_address is None
    async with hook.sessions() as s:
        assert (await s.exec(select(Customer))).one().email is None


async def test_data_request_is_acknowledged_and_report_lists_holdings(hook: Hook) -> None:
    await hook.post("orders/create", fixture("webhook_order_create.json"))
    before = await hook.order()
    assert await hook.post("customers/data_request", fixture("customers_data_request.json")) == (200, {"status": "ok"})
    after = await hook.order()
    assert before is not None and after is not None and after.updated_at == before.updated_at

    async with hook.sessions() as s:
        report = await customer_data_report(s, fixture("customers_data_request.json"))
    (customer,) = report["customers"]
    (order,) = report["orders"]
    assert customer["email"] == "jon.snow@example.com" and customer["external_id"] == "7009999999999999001"
    assert (order["name"], order["total_price"], order["source"]) == ("#1004", "99.97", "online_store")
    assert [line["sku"] for line in order["lines"]] == ["BOOT-FUR-42", "SOCK-WOOL"]
    json.dumps(report)  # JSON-ready


async def test_logs_carry_ids_but_no_secrets_bodies_or_emails(hook: Hook, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="ordersvc")
    await hook.post("orders/create", fixture("webhook_order_create.json"), webhook_id="log-1")
    await hook.post("orders/create", fixture("webhook_order_create.json"), webhook_id="log-1")
    await hook.post("orders/create", fixture("webhook_order_create.json"), secret="shpss_wrong")
    await hook.post("customers/data_request", fixture("customers_data_request.json"), webhook_id="log-2")
    bad = fixture("webhook_order_create.json", email="x" * 400 + "@example.com")
    await hook.post("orders/create", bad, webhook_id="log-3")

    text = caplog.text
    assert "log-1" in text and "orders/create" in text and str(ORDER_ID) in text
    assert "data_request=9999" in text
    assert "email: " in text  # the 422 reason names the field …
    for secret_or_pii in (SECRET, PREVIOUS, "@example.com", "jon.snow", "Jon", "40003", "1 Wall Road"):
        assert secret_or_pii not in text  # … but never the value


async def test_a_delivery_racing_an_open_transaction_is_a_duplicate(sessions) -> None:
    """The second copy inserts while the first one's transaction is still open."""
    hooks = ShopifyWebhooks(sessions, lambda: [SECRET])
    effects: list[str] = []
    first_inside = asyncio.Event()

    async def slow_effect(session: Any, payload: dict[str, Any]) -> Any:
        effects.append(payload["copy"])
        first_inside.set()
        await asyncio.sleep(0.3)  # hold the transaction (and the delivery row) open
        return await TOPICS["shop/redact"](session, payload)

    async def second() -> Any:
        await first_inside.wait()
        return await hooks.deliver("race-2", "shop/redact", slow_effect, {"copy": "second"})

    first_result, second_result = await asyncio.gather(
        hooks.deliver("race-2", "shop/redact", slow_effect, {"copy": "first"}), second()
    )
    assert first_result is not None and second_result is None  # None = duplicate
    assert effects == ["first"]
    async with sessions() as s:
        assert (await s.exec(select(sa.func.count()).select_from(WebhookDelivery))).one() == 1


async def test_a_failing_on_change_does_not_fail_the_delivery(sessions, aiohttp_client) -> None:
    async def broken(event: str, order_id: int) -> None:
        raise RuntimeError("alerting is down")

    app = web.Application()
    setup(app, sessions, lambda: [SECRET], on_change=broken)
    client = await aiohttp_client(app)
    body = json.dumps(fixture("webhook_order_create.json")).encode()
    headers = {"X-Shopify-Hmac-Sha256": sign(body), "X-Shopify-Topic": "orders/create", "X-Shopify-Webhook-Id": "oc"}
    response = await client.post("/webhooks/shopify", data=body, headers=headers)
    assert response.status == 200
    async with sessions() as s:
        assert (await s.exec(select(Order))).one().name == "#1004"

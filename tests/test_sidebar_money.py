"""The order sidebar explains an order's money (issue 14, item 8): how the total is made up
(items, discounts, shipping, tax; only when the stored parts add up), and refunds made outside
returns (a cancellation, a Shopify refund) with whether they gave back the shipping and the tax.
Both databases."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import pytest
from ordersvc_builders import make_customer, make_order

from inbox.actions.contact_link import contact_link
from inbox.models import Contact
from inbox.queries.sidebar_facts import order_money
from ordersvc.models import Order, Refund
from tests.web_helpers import (  # noqa: F401  (fast_hashing is an autouse fixture)
    add_agent,
    build_web_app,
    customer_says,
    fast_hashing,
    login,
)


@pytest.fixture
async def client(aiohttp_client: Any, sessions: Any) -> Any:
    return await aiohttp_client(build_web_app(sessions).app)


def _order(**money: str) -> Order:
    return Order(external_id="x", name="#1", **{k: Decimal(v) for k, v in money.items()})


def test_the_total_is_explained_only_when_its_parts_add_up() -> None:
    before = order_money(_order(subtotal_price="50.00", total_discounts="5.00", total_shipping="6.00",
                                total_tax="3.60", total_price="54.60"), [])
    assert (before.items, before.discounts, before.covers) == (Decimal("50.00"), Decimal("5.00"), "")
    # a subtotal already after discounts (Shopify's way) shows the items before them
    after = order_money(_order(subtotal_price="45.00", total_discounts="5.00", total_shipping="6.00",
                               total_tax="3.60", total_price="54.60"), [])
    assert after.items == Decimal("50.00")
    odd = order_money(_order(subtotal_price="10.00", total_shipping="1.00", total_tax="1.00", total_price="99.00"), [])
    assert odd.items is None  # parts that do not add up are not shown as if they did


def test_refunds_outside_returns_say_what_they_cover() -> None:
    order = _order(subtotal_price="40.00", total_shipping="5.00", total_tax="3.60", total_price="48.60")
    rma_refund = Refund(order_id=1, rma_id=7, amount=Decimal("20.00"))
    part = order_money(order, [Refund(order_id=1, amount=Decimal("10.00")), rma_refund])
    assert (part.refunded, part.covers, len(part.refunds)) == (Decimal("10.00"), "part", 1)  # the RMA's is its own
    whole = order_money(order, [Refund(order_id=1, amount=Decimal("48.60"))])
    assert (whole.refunded, whole.covers) == (Decimal("48.60"), "whole")


async def test_a_cancelled_order_shows_its_refund_with_shipping_and_tax(client: Any, sessions: Any) -> None:
    await add_agent(sessions)
    rec = await customer_says(sessions, "cancel please")
    async with sessions() as db:
        customer = await make_customer(db)
        order, _ = await make_order(db, [{"sku": "TEE-M", "quantity": 2, "unit_price": "20.00", "title": "Tee"}],
                                    customer=customer, name="#1001", total_shipping=Decimal("5.00"),
                                    total_tax=Decimal("3.60"), total_price=Decimal("48.60"))
        await contact_link(db, await db.get(Contact, rec.contact_id), customer.id)
        await db.commit()
    token = await login(client)
    side = f"/inbox/c/{rec.conversation_id}/fragments/sidebar"
    html = await (await client.get(side)).text()
    block = re.search(r'data-order-money="\d+">(.*?)</details>', html, re.S)
    assert block is not None and "How the total is made up" in block.group(1)
    assert re.sub(r"\s+", "", re.sub(r"<[^>]+>", "", block.group(1))).count("$48.60") == 1
    for part in ("$40.00", "$5.00", "$3.60"):
        assert part in block.group(1)

    resp = await client.post(f"/inbox/c/{rec.conversation_id}/orders/{order.id}/cancel",
                             data={"csrf_token": token}, allow_redirects=False)
    assert resp.status == 303
    html = await (await client.get(side)).text()
    block = re.search(r'data-order-money="\d+">(.*?)</details>', html, re.S)
    assert block is not None
    assert "Refunded in full: $48.60" in block.group(1)
    assert "the shipping ($5.00) and the tax ($3.60)" in block.group(1)
    assert 'class="order-refund"' in block.group(1)

    # in the agent's language
    await client.post("/inbox/account/language", data={"csrf_token": token, "language": "es"})
    html = await (await client.get(side)).text()
    assert "Reembolsado por completo" in html and "los impuestos" in html

"""Cancel, change the address and the invoice link, end to end through the real pipeline."""

from __future__ import annotations

from decimal import Decimal
from io import BytesIO
from typing import Any

import pytest
from aiohttp import web
from bot_chat import Chat, days_ago, path_of, url_in
from ordersvc_builders import (
    ADDRESS,
    make_customer,
    make_level,
    make_order,
    make_shipment,
    make_warehouse,
)
from pypdf import PdfReader
from sqlmodel import select

import bot.files
from bot.handlers.orders import find_country, parse_address
from inbox.models import Channel, Owner, Priority
from ordersvc.inventory import reserve_order
from ordersvc.models import (
    FinancialStatus,
    FulfillmentStatus,
    InventoryLevel,
    Order,
    Refund,
)
from ordersvc.tracking import ShipmentStatus

EMAIL = "lan@example.com"


async def _order(sessions: Any, *, name: str = "#1001", email: str = EMAIL, shipped: bool = False,
                 financial_status: FinancialStatus = FinancialStatus.paid, address: dict[str, Any] | None = None) -> Order:
    """An order of 2 linen tees (stock reserved) for a customer."""
    async with sessions() as session:
        warehouse = await make_warehouse(session, code=f"WH{name[1:]}")
        await make_level(session, warehouse, f"TEE{name[1:]}", 10)
        customer = await make_customer(session, email=email)
        order, lines = await make_order(
            session,
            [{"sku": f"TEE{name[1:]}", "title": "Linen tee", "variant_title": "M", "quantity": 2, "unit_price": "25.00"}],
            name=name,
            customer=customer,
            email=email,
            financial_status=financial_status,
            shipping_address=dict(address if address is not None else ADDRESS),
            fulfillment_status=FulfillmentStatus.fulfilled if shipped else FulfillmentStatus.unfulfilled,
        )
        await reserve_order(session, order)
        if shipped:
            await make_shipment(session, order, lines=[(lines[0], 2)], shipped_at=days_ago(1))
        await session.commit()
        return order


async def _reserved(sessions: Any, sku: str) -> int:
    async with sessions() as session:
        return (await session.exec(select(InventoryLevel).where(InventoryLevel.sku == sku))).one().reserved


async def _load(sessions: Any, order_id: int) -> Order:
    async with sessions() as session:
        order = await session.get(Order, order_id)
        assert order is not None
        return order


async def _verified(chat: Chat, intent: str, order_name: str = "#1001", email: str = EMAIL) -> None:
    await chat.send(intent, postback=f"intent:{intent}")
    await chat.send(order_name)
    await chat.send(email)


# --------------------------------------------------------------------------- cancel


async def test_cancel_an_unshipped_order_releases_stock_and_refunds(sessions, settings) -> None:  # type: ignore[no-untyped-def]
    order = await _order(sessions)
    assert await _reserved(sessions, "TEE1001") == 2
    chat = Chat(sessions, settings)
    await _verified(chat, "cancel_order")
    assert "Order #1001 hasn't shipped yet, so I can cancel it:" in chat.text
    assert "• 2 × Linen tee (M)" in chat.text and "full refund of $50.00" in chat.text
    assert chat.choices == [("Yes, cancel it", "yes"), ("No, keep it", "no")]
    await chat.send("hmm")  # not an answer: asked again
    assert "Please answer yes or no." in chat.text
    assert (await _load(sessions, order.id)).cancelled_at is None
    await chat.press("yes")
    assert "Order #1001 is cancelled. We've refunded $50.00" in chat.text

    cancelled = await _load(sessions, order.id)
    assert cancelled.cancelled_at is not None and cancelled.financial_status == FinancialStatus.refunded
    assert await _reserved(sessions, "TEE1001") == 0  # the reservation went back to stock
    async with sessions() as session:
        refunds = (await session.exec(select(Refund).where(Refund.order_id == order.id))).all()
    assert [r.amount for r in refunds] == [Decimal("50.00")]
    assert (await chat.state())["flow"] is None

    # asking again: already cancelled, nothing happens twice
    await chat.send("cancel", postback="intent:cancel_order")
    assert "was already cancelled on" in chat.text


async def test_no_keeps_the_order(sessions, settings) -> None:  # type: ignore[no-untyped-def]
    order = await _order(sessions, financial_status=FinancialStatus.authorized)
    chat = Chat(sessions, settings)
    await _verified(chat, "cancel_order")
    assert "You won't be charged." in chat.text
    await chat.press("no")
    assert "order #1001 stays as it is" in chat.text
    kept = await _load(sessions, order.id)
    assert kept.cancelled_at is None and await _reserved(sessions, "TEE1001") == 2


async def test_a_shipped_order_cannot_be_cancelled_but_can_be_returned(sessions, settings) -> None:  # type: ignore[no-untyped-def]
    order = await _order(sessions, shipped=True)
    chat = Chat(sessions, settings)
    await _verified(chat, "cancel_order")
    assert "order #1001 has already shipped, so I can't cancel it anymore" in chat.text
    assert chat.choices == [("Start a return", "return"), ("Talk to a person", "intent:human_agent")]
    assert (await _load(sessions, order.id)).cancelled_at is None
    await chat.press("return")  # the same order, no new verification
    assert "nothing in order #1001 can be returned right now" in chat.text
    assert "hasn't been delivered yet" in chat.text


async def test_shipped_order_offers_a_person(sessions, settings) -> None:  # type: ignore[no-untyped-def]
    await _order(sessions, shipped=True)
    chat = Chat(sessions, settings)
    await _verified(chat, "cancel_order")
    await chat.press("intent:human_agent")
    assert (await chat.conversation()).owner == Owner.agent


async def test_cancel_never_touches_someone_elses_order(sessions, settings) -> None:  # type: ignore[no-untyped-def]
    await _order(sessions)
    other = await _order(sessions, name="#2002", email="bob@example.com")
    chat = Chat(sessions, settings)
    await _verified(chat, "cancel_order")  # verified for #1001 (and linked to its customer)
    await chat.press("no")
    await chat.send("cancel", postback="intent:cancel_order")
    assert "#1001" in chat.text  # the linked customer's own order
    await chat.press("no")
    await chat.send("Cancel order", postback="intent:cancel_order")
    await chat.send("Please cancel #2002")
    await chat.send("#2002 lan@example.com")
    assert "couldn't find an order matching" in chat.text
    assert (await _load(sessions, other.id)).cancelled_at is None
    everything = await chat.all_bot_text()
    assert "bob@example.com" not in everything and "#2002 hasn't shipped" not in everything


# --------------------------------------------------------------------------- change address


async def test_change_address_in_one_message(sessions, settings) -> None:  # type: ignore[no-untyped-def]
    order = await _order(sessions)
    chat = Chat(sessions, settings)
    await _verified(chat, "change_address")
    assert "Please send the new shipping address for order #1001 in one message" in chat.text
    assert "Current address: 12 Elm Street, 62704 Springfield, IL, United States" in chat.text
    await chat.send("1600 Amphitheatre Pkwy, Apt 5, Mountain View, CA 94043, USA")
    assert "Is this the new shipping address?" in chat.text
    assert "1600 Amphitheatre Pkwy\nApt 5\n94043 Mountain View, CA\nUnited States" in chat.text
    await chat.press("yes")
    assert "Order #1001 will be shipped to:" in chat.text

    changed = await _load(sessions, order.id)
    address = changed.shipping_address or {}
    assert (address["address1"], address["address2"], address["city"], address["province_code"], address["zip"],
            address["country_code"]) == ("1600 Amphitheatre Pkwy", "Apt 5", "Mountain View", "CA", "94043", "US")
    assert (address["first_name"], address["last_name"]) == ("Lan", "Nguyễn")  # the recipient is kept
    assert changed.shipping_postal_code == "94043"
    assert (await chat.state())["flow"] is None


async def test_change_address_step_by_step_with_bad_answers(sessions, settings) -> None:  # type: ignore[no-untyped-def]
    no_country = {k: v for k, v in ADDRESS.items() if k not in {"country", "country_code"}}
    order = await _order(sessions, address=no_country)
    chat = Chat(sessions, settings)
    await _verified(chat, "change_address")
    await chat.send("10 Downing Street")
    assert "Which city or town?" in chat.text and "So far: 10 Downing Street" in chat.text
    await chat.send("London")
    assert "What's the postal code?" in chat.text
    await chat.send("!!!")
    assert "Sorry, that doesn't look right. What's the postal code?" in chat.text
    await chat.send("sw1a 2aa")
    assert "Which country?" in chat.text
    await chat.send("Atlantis")
    assert "Sorry, I don't recognise that country." in chat.text
    assert (await chat.state())["step"] == "country"
    await chat.send("United Kingdom")
    assert "10 Downing Street\nSW1A 2AA London\nUnited Kingdom" in chat.text
    await chat.send("no")  # something is wrong: start over
    assert "let's try again" in chat.text
    await chat.send("221B Baker Street, London NW1 6XE, UK")
    assert "221B Baker Street\nNW1 6XE London\nUnited Kingdom" in chat.text
    await chat.send("yes")
    assert "Order #1001 will be shipped to:" in chat.text
    address = (await _load(sessions, order.id)).shipping_address or {}
    assert (address["address1"], address["city"], address["zip"], address["country_code"]) == (
        "221B Baker Street", "London", "NW1 6XE", "GB")


async def test_change_address_keeps_the_country_when_left_out(sessions, settings) -> None:  # type: ignore[no-untyped-def]
    order = await _order(sessions)
    chat = Chat(sessions, settings)
    await _verified(chat, "change_address")
    await chat.send("5 Oak Avenue\nSpringfield\n62701")
    assert "5 Oak Avenue\n62701 Springfield\nUnited States" in chat.text
    assert "I kept the country from your current address." in chat.text
    await chat.send("never mind")
    assert "No problem, I've stopped that." in chat.text
    assert ((await _load(sessions, order.id)).shipping_address or {})["address1"] == "12 Elm Street"


async def test_address_of_a_shipped_order_cannot_change(sessions, settings) -> None:  # type: ignore[no-untyped-def]
    order = await _order(sessions, shipped=True)
    chat = Chat(sessions, settings)
    await _verified(chat, "change_address")
    assert "order #1001 has already shipped, so I can't change the address here" in chat.text
    assert chat.choices == [("Talk to a person", "intent:human_agent")]
    assert ((await _load(sessions, order.id)).shipping_address or {})["address1"] == "12 Elm Street"


@pytest.mark.parametrize(
    "text, expected",
    [
        ("221B Baker Street, London NW1 6XE, United Kingdom",
         {"address1": "221B Baker Street", "city": "London", "zip": "NW1 6XE", "country_code": "GB"}),
        ("ул. Тверская 7, кв 5, Москва, 125009, Россия",
         {"address1": "ул. Тверская 7", "address2": "кв 5", "city": "Москва", "zip": "125009", "country_code": "RU"}),
        ("12 Nguyễn Huệ, Quận 1, Hồ Chí Minh, 700000, Việt Nam",
         {"address1": "12 Nguyễn Huệ", "address2": "Quận 1", "city": "Hồ Chí Minh", "zip": "700000", "country_code": "VN"}),
        ("朝阳区建国路88号，北京，100022，中国", {"address1": "朝阳区建国路88号", "city": "北京", "zip": "100022", "country_code": "CN"}),
        ("Hauptstraße 5", {"address1": "Hauptstraße 5"}),
    ],
)
def test_parse_address(text: str, expected: dict[str, str]) -> None:
    assert parse_address(text) == expected


def test_find_country() -> None:
    assert [find_country(t) for t in ("us", "U.S.A.", "Deutschland", "Alemania", "Германия", "Đức", "德国", "德國", "Narnia")] == [
        "US", "US", None, "DE", "DE", "DE", "DE", "DE", None
    ]


# --------------------------------------------------------------------------- invoice


async def test_invoice_link_for_a_verified_customer_only(sessions, settings, aiohttp_client) -> None:  # type: ignore[no-untyped-def]
    await _order(sessions)
    stranger = Chat(sessions, settings, user="stranger")
    await stranger.send("invoice", postback="intent:invoice")
    assert "order number" in stranger.text and url_in(stranger.text) is None
    await stranger.send("#1001")
    await stranger.send("someone@example.com")
    assert url_in(await stranger.all_bot_text()) is None

    chat = Chat(sessions, settings)
    await _verified(chat, "invoice")
    assert "Here's the invoice for order #1001 (PDF):" in chat.text
    url = url_in(chat.text)
    assert url and "/files/invoices/" in url
    app = web.Application()
    bot.files.setup(app, sessions, settings.secret_key_bytes(), settings.shop_name)
    client = await aiohttp_client(app)
    response = await client.get(path_of(url))
    assert response.status == 200 and response.content_type == "application/pdf"
    text = "".join(page.extract_text() for page in PdfReader(BytesIO(await response.read())).pages)
    assert "#1001" in text and "Linen tee" in text
    assert (await client.get(path_of(url).replace("t=", "t=9"))).status == 404


# --------------------------------------------------------------------------- greeting


async def test_greeting_uses_a_real_name_never_the_widget_label(sessions, settings) -> None:  # type: ignore[no-untyped-def]
    await _order(sessions, shipped=True)
    web = Chat(sessions, settings, user="visitor-greet")  # webchat: the contact is "Test Customer", our label
    await web.send("hi")
    assert web.text.startswith("Hi! I'm the ") and "Test Customer" not in web.text
    await _verified(web, "track_order")
    await web.send("hello")
    assert web.text.startswith("Hi Lan! ")  # verified: the customer's first name
    telegram = Chat(sessions, settings, user="4242", channel=Channel.telegram)
    await telegram.send("hi")
    assert telegram.text.startswith("Hi Test Customer! ")  # the name the messenger gives


# --------------------------------------------------------------------------- where is my order


async def test_a_parcel_in_trouble_gets_an_apology_that_fits_and_a_person(sessions, settings) -> None:  # type: ignore[no-untyped-def]
    async with sessions() as session:
        customer = await make_customer(session, email=EMAIL)
        order, lines = await make_order(session, [{"sku": "TEE", "title": "Linen tee", "quantity": 1, "unit_price": "25.00"}],
                                        name="#1001", customer=customer, email=EMAIL,
                                        fulfillment_status=FulfillmentStatus.fulfilled)
        await make_shipment(session, order, lines=[(lines[0], 1)], shipped_at=days_ago(3),
                            status=ShipmentStatus("exception"))
        await session.commit()
    chat = Chat(sessions, settings)
    await _verified(chat, "track_order")
    assert "• Delayed: the carrier reported a problem (UPS, tracking 1Z5R89390357567127)" in chat.text
    assert "I'm sorry about the trouble with this delivery." in chat.text
    assert "taking longer than it should" not in chat.text
    conversation = await chat.conversation()
    assert conversation.owner == Owner.agent and conversation.priority == Priority.high


# --------------------------------------------------------------------------- language


async def test_gibberish_keeps_the_customers_language(sessions, settings) -> None:  # type: ignore[no-untyped-def]
    chat = Chat(sessions, settings, lang="en")
    await chat.send("asdkjh qwe zzz")  # the detector calls this Spanish
    assert chat.text.startswith("Sorry, I'm not sure I understood.")
    await chat.send("blorp fnord")
    assert chat.text == "I'm having trouble understanding, so I'm passing you to a member of our team."
    # a real Spanish request still switches the language
    spanish = Chat(sessions, settings, user="visitor-es", lang="en")
    await spanish.send("¿dónde está mi pedido?")
    assert "número de pedido" in spanish.text

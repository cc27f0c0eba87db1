"""Return dialogs end to end: inbound message → real pipeline → replies, dialog state and RMA rows.

Intents are chosen with quick-reply postbacks (``intent:start_return``) so that these tests do
not depend on the classifier; everything after that is typed text or pressed buttons.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal
from io import BytesIO
from typing import Any

from aiohttp import web
from babel.dates import format_date
from bot_chat import Chat, days_ago, path_of, url_in
from ordersvc_builders import (
    make_customer,
    make_level,
    make_order,
    make_shipment,
    make_variants,
    make_warehouse,
)
from pypdf import PdfReader
from sqlmodel import select

import bot.files
from inbox.models import Direction, Message, Owner
from ordersvc.models import (
    InventoryLevel,
    Order,
    OrderLine,
    Resolution,
    ReturnAuthorization,
    ReturnLine,
    ReturnMethod,
    RmaStatus,
    Shipment,
    Warehouse,
)
from ordersvc.returns import MethodOptions, ResolutionOptions, ReturnPolicy, save_policy
from shopdesk.db import create_engine, session_maker

EMAIL = "lan@example.com"


async def _shop(sessions: Any, *, name: str = "#1001", delivered_days: float = 3, lines: list[dict[str, Any]] | None = None,
                email: str = EMAIL, policy: ReturnPolicy | None = None) -> tuple[Order, list[OrderLine]]:
    """A delivered order with a linen tee (2 units) and a tote bag, plus a warehouse."""
    async with sessions() as session:
        if policy is not None:
            await save_policy(session, policy)
        if (await session.exec(select(Warehouse))).first() is None:
            await make_warehouse(session, address={"address1": "1 Dock Road", "city": "Reno", "zip": "89501", "country_code": "US"})
        customer = await make_customer(session, email=email)
        order, rows = await make_order(
            session,
            lines or [
                {"sku": "TEE-M", "title": "Linen tee", "variant_title": "M", "quantity": 2, "unit_price": "25.00"},
                {"sku": "TOTE", "title": "Canvas tote", "quantity": 1, "unit_price": "15.00"},
            ],
            name=name,
            customer=customer,
            email=email,
        )
        await make_shipment(session, order, lines=[(ln, ln.quantity) for ln in rows],
                            delivered_at=days_ago(delivered_days), shipped_at=days_ago(delivered_days + 3))
        await session.commit()
        return order, rows


async def _start(chat: Chat, order_name: str = "#1001", email: str = EMAIL) -> None:
    """Ask for a return and prove who we are."""
    await chat.send("Start a return", postback="intent:start_return")
    assert "order number" in chat.text
    await chat.send(order_name)
    assert "email address or the shipping postal code" in chat.text
    await chat.send(email)


async def _rmas(sessions: Any) -> list[tuple[ReturnAuthorization, list[ReturnLine]]]:
    async with sessions() as session:
        rmas = (await session.exec(select(ReturnAuthorization).order_by(ReturnAuthorization.id))).all()
        out = []
        for rma in rmas:
            out.append((rma, list((await session.exec(select(ReturnLine).where(ReturnLine.rma_id == rma.id))).all())))
        return out


async def test_refund_by_mail_with_a_working_label_link(sessions, settings, aiohttp_client) -> None:  # type: ignore[no-untyped-def]
    order, (tee, tote) = await _shop(sessions, policy=ReturnPolicy(return_shipping_fee=Decimal("5.95")))
    chat = Chat(sessions, settings)
    await _start(chat)
    assert "Which item from order #1001" in chat.text
    assert chat.choices == [("Linen tee – M", f"line:{tee.id}"), ("Canvas tote", f"line:{tote.id}")]

    await chat.press(f"line:{tee.id}")
    assert 'How many of "Linen tee – M"' in chat.text and "1 to 2" in chat.text
    await chat.send("2")
    assert 'Why are you returning "Linen tee – M"?' in chat.text
    assert [v for _, v in chat.choices][:2] == ["reason:too_small", "reason:too_large"] and len(chat.choices) == 8
    await chat.press("reason:too_small")
    assert "What condition" in chat.text
    await chat.press("condition:unopened")
    assert "anything else from order #1001" in chat.text
    assert chat.choices == [("Canvas tote", f"line:{tote.id}"), ("That's all", "done")]
    await chat.press("done")
    assert "How would you like us to make it right?" in chat.text and "10% bonus" in chat.text
    assert [v for _, v in chat.choices] == ["resolution:refund", "resolution:store_credit"]  # no variants: no exchange
    await chat.press("resolution:refund")
    # only mail is enabled by default: straight to the summary
    assert "2 × Linen tee – M (Too small)" in chat.text
    assert "Refund: $44.05 (after $5.95 in return fees)" in chat.text and "Prepaid label by mail" in chat.text
    assert await _rmas(sessions) == []  # nothing written before the customer confirms
    await chat.press("yes")

    [(rma, rma_lines)] = await _rmas(sessions)
    assert rma.status == RmaStatus.label_issued and rma.method == ReturnMethod.mail
    assert rma.resolution == Resolution.refund and rma.refund_amount == Decimal("44.05")
    assert [(rl.order_line_id, rl.quantity, rl.reason.value, rl.condition.value) for rl in rma_lines] == [
        (tee.id, 2, "too_small", "unopened")
    ]
    assert f"Your return {rma.rma_number} for order #1001 is approved." in chat.text
    assert rma.label_tracking_number and rma.label_tracking_number in chat.text
    assert "we'll refund $44.05" in chat.text
    state = await chat.state()
    assert state["flow"] is None and state["slots"] == {"order_id": order.id}

    url = url_in(chat.text)
    assert url and url.startswith(settings.public_url + f"/files/labels/{rma.rma_number}.pdf?t=")
    app = web.Application()
    bot.files.setup(app, sessions, settings.secret_key_bytes(), settings.shop_name)
    client = await aiohttp_client(app)
    response = await client.get(path_of(url))
    assert response.status == 200 and response.content_type == "application/pdf"
    pdf = PdfReader(BytesIO(await response.read()))
    assert rma.label_tracking_number in pdf.pages[0].extract_text()
    tampered = path_of(url)[:-3] + ("aaa" if not path_of(url).endswith("aaa") else "bbb")
    assert (await client.get(tampered)).status == 404


async def test_store_credit_with_drop_off(sessions, settings) -> None:  # type: ignore[no-untyped-def]
    policy = ReturnPolicy(
        methods=MethodOptions(mail=True, dropoff=True, dropoff_locations="Any UPS Access Point"),
        resolutions=ResolutionOptions(exchange=False, store_credit_bonus_percent=Decimal("10")),
    )
    _order, (_tee, tote) = await _shop(sessions, policy=policy)
    chat = Chat(sessions, settings)
    await _start(chat)
    await chat.press(f"line:{tote.id}")  # one unit: no quantity question
    assert 'Why are you returning "Canvas tote"?' in chat.text
    await chat.send("It arrived damaged :(")  # typed, matched to the reason's label
    # damaged accepts any condition: no condition question; the tee is still returnable
    assert "anything else" in chat.text
    await chat.send("no")
    await chat.press("resolution:store_credit")
    assert "How would you like to send the items back?" in chat.text and "Any UPS Access Point" in chat.text
    assert [v for _, v in chat.choices] == ["method:mail", "method:dropoff"]
    await chat.press("method:dropoff")
    assert "1 × Canvas tote (Arrived damaged)" in chat.text and "Store credit: $16.50" in chat.text
    await chat.press("yes")

    [(rma, [line])] = await _rmas(sessions)
    assert rma.resolution == Resolution.store_credit and rma.method == ReturnMethod.dropoff
    assert rma.status == RmaStatus.approved and rma.label_tracking_number is None
    assert rma.credit_amount == Decimal("16.50") and rma.refund_amount == Decimal("0")
    assert (line.reason.value, line.condition.value) == ("damaged", "damaged")
    assert "drop-off point (Any UPS Access Point)" in chat.text and "$16.50 in store credit" in chat.text
    assert url_in(chat.text) is None


async def test_exchange_for_a_size_in_stock(sessions, settings) -> None:  # type: ignore[no-untyped-def]
    _order, (tee, _tote) = await _shop(sessions)
    async with sessions() as session:
        warehouse = (await session.exec(select(Warehouse))).one()
        await make_variants(session, "linen-tee", ["TEE-L", "TEE-M", "TEE-S"], price="25.00")
        await make_level(session, warehouse, "TEE-L", 3)
        await make_level(session, warehouse, "TEE-S", 0)
        await session.commit()
    chat = Chat(sessions, settings)
    await _start(chat)
    await chat.press(f"line:{tee.id}")
    await chat.press("qty:1")
    await chat.press("reason:too_small")
    await chat.press("condition:like_new")
    await chat.press("done")
    assert "exchange sends you another size" in chat.text
    assert [v for _, v in chat.choices] == ["resolution:refund", "resolution:store_credit", "resolution:exchange"]
    await chat.press("resolution:exchange")
    assert 'Which one would you like instead of "Linen tee – M"?' in chat.text
    assert chat.choices == [("TEE-L", "sku:TEE-L")]  # TEE-S has no stock
    await chat.send("TEE-XL")  # not offered: asked again
    assert "Sorry, I didn't catch that" in chat.text and chat.choices == [("TEE-L", "sku:TEE-L")]
    await chat.send("1")
    assert "→ exchange for linen-tee – TEE-L" in chat.text and "Exchange, at no extra cost" in chat.text
    await chat.press("yes")

    [(rma, [line])] = await _rmas(sessions)
    assert rma.resolution == Resolution.exchange and line.exchange_sku == "TEE-L"
    assert rma.refund_amount == 0 and rma.credit_amount == 0
    async with sessions() as session:
        level = (await session.exec(select(InventoryLevel).where(InventoryLevel.sku == "TEE-L"))).one()
    assert level.reserved == 1
    assert "set your replacement aside" in chat.text


async def test_final_sale_items_are_explained(sessions, settings) -> None:  # type: ignore[no-untyped-def]
    await _shop(sessions, lines=[
        {"sku": "SCARF", "title": "Sale scarf", "quantity": 1, "unit_price": "9.00", "final_sale": True},
        {"sku": "SOCK", "title": "Wool socks", "quantity": 1, "unit_price": "12.00"},
    ])
    chat = Chat(sessions, settings)
    await _start(chat)
    assert "Some items from order #1001 can't be returned:" in chat.text
    assert "• Sale scarf: it was a final-sale item, so it can't be returned." in chat.text
    assert chat.replies[0].quick_replies == [("Talk to a person", "intent:human_agent")]
    # they may have meant the scarf: the one returnable line is offered, not assumed
    assert "Which item from order #1001 would you like to return?" in chat.replies[-1].text
    assert [label for label, _ in chat.replies[-1].quick_replies] == ["Wool socks"]
    assert "Why are you returning" not in chat.text
    await chat.press("Wool socks")
    assert 'Why are you returning "Wool socks"?' in chat.text


async def test_nothing_returnable_offers_a_person(sessions, settings) -> None:  # type: ignore[no-untyped-def]
    await _shop(sessions, lines=[{"sku": "SCARF", "title": "Sale scarf", "quantity": 1, "unit_price": "9.00", "final_sale": True}])
    chat = Chat(sessions, settings)
    await _start(chat)
    assert "nothing in order #1001 can be returned right now" in chat.text
    assert "Sale scarf: it was a final-sale item" in chat.text
    assert chat.choices == [("Talk to a person", "intent:human_agent")]
    assert (await chat.state())["flow"] is None
    await chat.press("intent:human_agent")
    assert (await chat.conversation()).owner == Owner.agent


async def test_closed_window_says_when_it_closed(sessions, settings) -> None:  # type: ignore[no-untyped-def]
    await _shop(sessions, delivered_days=60)
    chat = Chat(sessions, settings)
    await _start(chat)
    async with sessions() as session:
        delivered = (await session.exec(select(Shipment))).one().delivered_at
    assert delivered is not None
    closed = format_date(delivered.date() + timedelta(days=30), "medium", locale="en_US")
    assert f"• Linen tee – M: the return window closed on {closed}." in chat.text
    assert f"• Canvas tote: the return window closed on {closed}." in chat.text
    assert chat.choices == [("Talk to a person", "intent:human_agent")]
    assert await _rmas(sessions) == []


async def test_never_mind_clears_the_flow_and_a_new_return_needs_no_new_proof(sessions, settings) -> None:  # type: ignore[no-untyped-def]
    _order, (tee, _tote) = await _shop(sessions)
    chat = Chat(sessions, settings)
    await _start(chat)
    await chat.press(f"line:{tee.id}")
    await chat.send("1")
    assert "Why are you returning" in chat.text
    await chat.send("never mind")
    assert "No problem, I've stopped that." in chat.text
    state = await chat.state()
    assert state["flow"] is None and state["step"] is None
    assert await _rmas(sessions) == []
    # verified once: the contact is linked to the customer, so the order is known
    await chat.send("Start a return", postback="intent:start_return")
    assert "Which item from order #1001" in chat.text


async def test_nonsense_is_asked_again_with_a_hint(sessions, settings) -> None:  # type: ignore[no-untyped-def]
    _order, (tee, _tote) = await _shop(sessions)
    chat = Chat(sessions, settings)
    await _start(chat)
    await chat.send("the blue one please")
    assert "Sorry, I didn't catch that. Please pick an item" in chat.text and len(chat.choices) == 2
    await chat.press(f"line:{tee.id}")
    for nonsense in ("banana", "7", "0", "-1"):  # one miss per question: a second one brings a person
        await chat.send(nonsense)
        assert "Sorry, I didn't catch that. How many" in chat.text and "1 to 2" in chat.text
        assert (await chat.state())["step"] == "quantity"
        await chat.press("qty:1")
        assert (await chat.state())["step"] == "reason"
        await chat.send("start a return", postback="intent:start_return")
        await chat.press(f"line:{tee.id}")
    await chat.send("2")
    await chat.send("purple")
    assert "Sorry, I didn't catch that. Please choose one of the options below." in chat.text
    assert len(chat.choices) == 8 and (await chat.state())["step"] == "reason"
    await chat.press("reason:other")
    assert "what's wrong with" in chat.text
    await chat.send("The stitching came loose after one wash")
    await chat.send("maybe")
    assert "Sorry, I didn't catch that" in chat.text and (await chat.state())["step"] == "condition"
    await chat.press("condition:used")
    # "other" accepts only unopened or like-new items: explained, and the item is dropped
    assert 'we can only accept "Linen tee – M" in this condition: Unopened / Opened, like new' in chat.text
    assert ("Talk to a person", "intent:human_agent") in chat.choices
    assert "Which item from order #1001" in chat.text  # the tote can still be returned


async def test_the_flow_survives_a_restart(sessions, settings, db_url) -> None:  # type: ignore[no-untyped-def]
    _order, (tee, tote) = await _shop(sessions)
    chat = Chat(sessions, settings)
    await _start(chat)
    await chat.press(f"line:{tee.id}")
    await chat.send("1")
    assert (await chat.state())["step"] == "reason"

    engine = create_engine(db_url)  # a new process: new engine, new pipeline, state only in the DB
    try:
        chat.restart(session_maker(engine))
        await chat.press("reason:too_large")
        assert "What condition" in chat.text
        await chat.press("condition:unopened")
        await chat.press(f"line:{tote.id}")
        await chat.press("reason:defective")
        await chat.press("resolution:refund")
        assert "1 × Linen tee – M (Too large)" in chat.text and "1 × Canvas tote (Doesn't work)" in chat.text
        assert "Refund: $40.00" in chat.text
        await chat.press("yes")
    finally:
        await engine.dispose()
    [(_rma, rma_lines)] = await _rmas(sessions)
    assert sorted((rl.order_line_id, rl.quantity) for rl in rma_lines) == [(tee.id, 1), (tote.id, 1)]


async def test_manual_approval_alerts_the_merchant(sessions, settings) -> None:  # type: ignore[no-untyped-def]
    _order, (_tee, tote) = await _shop(sessions, policy=ReturnPolicy(approval="manual"))
    chat = Chat(sessions, settings)
    await _start(chat)
    await chat.press(f"line:{tote.id}")
    await chat.press("reason:wrong_item")
    await chat.press("done")
    await chat.press("resolution:refund")
    assert "Our team reviews each return before approving it." in chat.text
    await chat.press("yes")
    [(rma, _)] = await _rmas(sessions)
    assert rma.status == RmaStatus.requested and rma.label_tracking_number is None
    assert f"Your return request {rma.rma_number} for order #1001 is submitted." in chat.text
    assert url_in(chat.text) is None
    for _ in range(100):
        alerts = [e for e in chat.events if e.type == "alert"]
        if alerts:
            break
        await asyncio.sleep(0.02)
    assert [(a.data["kind"], a.data["rma_number"], a.data["items"][0]["reason"]) for a in alerts] == [
        ("return_approval", rma.rma_number, "wrong_item")
    ]


async def test_wrong_email_looks_like_a_missing_order_and_five_failures_lock(sessions, settings) -> None:  # type: ignore[no-untyped-def]
    await _shop(sessions)
    wrong = Chat(sessions, settings, user="guesser")
    await wrong.send("Start a return", postback="intent:start_return")
    await wrong.send("#1001")
    await wrong.send("someone@example.com")
    missing = Chat(sessions, settings, user="other")
    await missing.send("Start a return", postback="intent:start_return")
    await missing.send("#4040")
    await missing.send(EMAIL)
    # the same words, apart from the order number the customer gave (no way to tell which exists)
    assert wrong.text.replace("#1001", "#X") == missing.text.replace("#4040", "#X").replace("#1001", "#X")
    assert "couldn't find an order matching" in wrong.text
    assert "Linen" not in await wrong.all_bot_text()

    for n in range(2, 6):  # four more wrong tries: the fifth failure hands over and locks
        await wrong.send(f"#1001 guess{n}@example.com")
    assert "For your security" in wrong.text
    conversation = await wrong.conversation()
    assert conversation.owner == Owner.agent
    # the order is locked for everyone now, even with the right email
    late = Chat(sessions, settings, user="third")
    await late.send("Start a return", postback="intent:start_return")
    await late.send(f"#1001 {EMAIL}")
    assert "For your security" in late.text
    assert "Linen" not in await late.all_bot_text() and await _rmas(sessions) == []


async def test_someone_elses_order_is_never_disclosed(sessions, settings) -> None:  # type: ignore[no-untyped-def]
    await _shop(sessions)
    await _shop(sessions, name="#2002", email="bob@example.com",
                lines=[{"sku": "ROBE", "title": "Silk robe", "quantity": 1, "unit_price": "80.00"}])
    chat = Chat(sessions, settings)
    await _start(chat)
    assert "Which item from order #1001" in chat.text
    await chat.send("actually it's order #2002")  # another order number mid-flow: verify it first
    assert "email address or the shipping postal code used for order #2002" in chat.text
    await chat.send(EMAIL)  # our own email does not open someone else's order
    assert "couldn't find an order matching" in chat.text
    everything = await chat.all_bot_text()
    assert "Silk robe" not in everything and "bob@example.com" not in everything
    assert len(await _rmas(sessions)) == 0


async def test_a_new_request_naming_another_order_is_about_that_order(sessions, settings) -> None:  # type: ignore[no-untyped-def]
    await _shop(sessions)
    await _shop(sessions, name="#2002", email="bob@example.com",
                lines=[{"sku": "ROBE", "title": "Silk robe", "quantity": 1, "unit_price": "80.00"}])
    chat = Chat(sessions, settings)
    await chat.send("Track my order", postback="intent:track_order")
    await chat.send("#1001")
    await chat.send(EMAIL)
    assert "Here's the latest on order #1001" in chat.text
    assert (await chat.state())["slots"].get("order_id")  # the conversation remembers #1001
    # ...but the customer now names #2002: that order, verified first
    await chat.send("I want to return order 2002")
    assert "email address or the shipping postal code used for order #2002" in chat.text
    assert "#1001" not in chat.text and "Linen tee" not in chat.text
    await chat.send("bob@example.com")
    assert 'Why are you returning "Silk robe"?' in chat.text
    # naming the order already talked about needs no new proof
    await chat.send("never mind")
    await chat.send("I want to return order 2002")
    assert 'Why are you returning "Silk robe"?' in chat.text


async def test_answers_inside_the_flow_are_recorded_as_the_return(sessions, settings) -> None:  # type: ignore[no-untyped-def]
    _order, (tee, _tote) = await _shop(sessions)
    chat = Chat(sessions, settings)
    await _start(chat)  # "#1001" and an email address: the classifier calls them anything
    await chat.press(f"line:{tee.id}")
    await chat.send("1")
    await chat.press("reason:too_small")
    async with sessions() as session:
        intents = (await session.exec(
            select(Message.intent).where(Message.conversation_id == chat.conversation_id,
                                         Message.direction == Direction.inbound).order_by(Message.id))).all()
    assert intents == ["start_return"] * 6  # intent, number, email, item, quantity, reason
    assert (await chat.conversation()).last_intent == "start_return"


async def test_a_typed_reason_stays_an_answer_but_asking_for_a_person_hands_over(sessions, settings) -> None:  # type: ignore[no-untyped-def]
    _order, (tee, _tote) = await _shop(sessions)
    chat = Chat(sessions, settings)
    await _start(chat)
    await chat.press(f"line:{tee.id}")
    await chat.send("1")
    await chat.send("I want to talk to a person")
    assert "passed your conversation to our team" in chat.text
    conversation = await chat.conversation()
    assert conversation.owner == Owner.agent and (conversation.bot_state or {}).get("flow") is None
    assert await _rmas(sessions) == []

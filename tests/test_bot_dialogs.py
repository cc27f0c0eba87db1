"""Whole dialogs through the real pipeline: where is my order, refunds, policies, hand-offs.

Each test talks to the bot like a customer (free text first, then the answers the bot asks
for) and checks what the customer reads, what happened to the conversation (owner,
priority) and which events reached the bus (merchant alerts, escalations).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from babel.dates import format_date
from bot_chat import Chat, days_ago, url_in
from ordersvc_builders import T0, make_customer, make_order, make_shipment
from sqlmodel import select

from inbox.actions.conversation_handback import conversation_handback
from inbox.events import Event
from inbox.models import Conversation, Message, Owner, Priority
from ordersvc.models import FulfillmentStatus, Order, OrderLine, Refund, StoreCredit, TrackingEvent
from ordersvc.returns import MethodOptions, ResolutionOptions, ReturnPolicy, save_policy
from ordersvc.service import put_setting
from ordersvc.tracking import Carrier, ShipmentStatus, tracking_url

EMAIL = "lan@example.com"
UPS_NUMBER = "1Z5R89390357567127"  # what make_shipment gives every parcel
USPS_NUMBER = "9400111899223197428490"
TEE = {"sku": "TEE-M", "title": "Linen tee", "quantity": 1, "unit_price": "25.00"}


# --------------------------------------------------------------------------- helpers


def _chat(sessions: Any, settings: Any, **kwargs: Any) -> Chat:
    """A chat whose bus also sees the store's events (escalations), not only the bot's alerts."""
    chat = Chat(sessions, settings, **kwargs)
    chat.bus.bind(sessions)
    return chat


async def _events(chat: Chat, kind: str) -> list[Event]:
    await chat.bus.wait_idle()
    return [e for e in chat.events if e.type == kind]


async def _alerts(chat: Chat) -> list[dict[str, Any]]:
    return [e.data for e in await _events(chat, "alert")]


async def _order(sessions: Any, lines: Sequence[dict[str, Any]] = (TEE,), **fields: Any) -> tuple[Order, list[OrderLine]]:
    async with sessions() as session:
        customer = await make_customer(session, email=EMAIL)
        order, rows = await make_order(session, lines, name="#1001", customer=customer, email=EMAIL, **fields)
        await session.commit()
        return order, rows


async def _verify(chat: Chat, question: str, *, hidden: Sequence[str], name: str = "#1001", email: str = EMAIL) -> None:
    """Ask ``question``, then give the order number and the email; nothing in ``hidden`` may be
    said before the email proved who is asking."""
    await chat.send(question)
    await chat.send(name)
    before = await chat.all_bot_text()
    assert name in chat.text  # the bot asks for the proof for this order
    for secret in hidden:
        assert secret not in before, f"{secret!r} disclosed before verification"
    await chat.send(email)


def _en_day(moment: datetime) -> str:
    return format_date(moment.astimezone(UTC).date(), format="medium", locale="en_US")


async def _assert_left_to_the_bot(chat: Chat) -> None:
    conversation = await chat.conversation()
    assert (conversation.owner, conversation.priority) == (Owner.bot, Priority.normal)
    assert await _alerts(chat) == []
    assert await _events(chat, "conversation.escalated") == []


# --------------------------------------------------------------------------- where is my order


async def test_eta_passed_apologises_escalates_and_alerts_the_merchant(sessions, settings) -> None:  # type: ignore[no-untyped-def]
    order, lines = await _order(sessions, fulfillment_status=FulfillmentStatus.fulfilled)
    eta = days_ago(2)
    async with sessions() as session:
        shipment = await make_shipment(session, order, lines=[(lines[0], 1)], shipped_at=days_ago(4))
        shipment.eta, shipment.last_event_at = eta, days_ago(1)  # scanned yesterday: only the ETA is late
        session.add(shipment)
        session.add(TrackingEvent(shipment_id=shipment.id, occurred_at=days_ago(1), status=ShipmentStatus("in_transit"),
                                  message="Arrived at facility", location="Louisville, KY"))
        await session.commit()

    chat = _chat(sessions, settings)
    await _verify(chat, "where is my order?", hidden=[UPS_NUMBER, "Louisville", "On its way"])
    assert "Here's the latest on order #1001:" in chat.text
    assert f"• On its way (UPS, tracking {UPS_NUMBER})" in chat.text
    assert f"• Expected by {_en_day(eta)}" in chat.text
    assert "• Last scan: Arrived at facility, Louisville, KY" in chat.text
    assert ("I'm sorry, this delivery is taking longer than it should. I've flagged it to our team as a priority"
            in chat.text)
    assert "trouble" not in chat.text  # a late parcel, not a carrier problem

    conversation = await chat.conversation()
    assert (conversation.owner, conversation.priority) == (Owner.agent, Priority.high)
    assert conversation.summary is not None
    assert "reason: late_shipment" in conversation.summary and "order: #1001" in conversation.summary
    assert await _alerts(chat) == [{
        "kind": "late_shipment", "order_id": order.id, "order_name": "#1001",
        "shipments": [{"tracking_number": UPS_NUMBER, "status": "in_transit", "carrier": "UPS"}],
    }]
    [escalated] = await _events(chat, "conversation.escalated")
    assert escalated.conversation_id == conversation.id
    assert (escalated.data["reason"], escalated.data["owner"], escalated.data["priority"]) == ("late_shipment", "agent", "high")


async def test_a_parcel_without_a_scan_for_five_days_counts_as_late(sessions, settings) -> None:  # type: ignore[no-untyped-def]
    order, lines = await _order(sessions, fulfillment_status=FulfillmentStatus.fulfilled)
    async with sessions() as session:
        shipment = await make_shipment(session, order, lines=[(lines[0], 1)], shipped_at=days_ago(8))
        shipment.eta, shipment.last_event_at = days_ago(-3), days_ago(6)  # the ETA is still ahead
        session.add(shipment)
        session.add(TrackingEvent(shipment_id=shipment.id, occurred_at=days_ago(6), status=ShipmentStatus("in_transit"),
                                  message="Departed facility", location="Memphis, TN"))
        await session.commit()

    chat = _chat(sessions, settings)
    await _verify(chat, "where is my order?", hidden=[UPS_NUMBER, "Memphis"])
    assert f"• On its way (UPS, tracking {UPS_NUMBER})" in chat.text
    assert "• Last scan: Departed facility, Memphis, TN" in chat.text
    assert "I'm sorry, this delivery is taking longer than it should." in chat.text
    conversation = await chat.conversation()
    assert (conversation.owner, conversation.priority) == (Owner.agent, Priority.high)
    assert [(a["kind"], a["order_name"], a["shipments"][0]["tracking_number"]) for a in await _alerts(chat)] == [
        ("late_shipment", "#1001", UPS_NUMBER)
    ]
    # the hand-off context the inbox words for agents, and the SLA clock the hand-off started
    handoff = conversation.handoff or {}
    assert (handoff["reason"], handoff["intent"], handoff["order"]) == ("late_shipment", "track_order", "#1001")
    assert handoff["facts"]["days_since_scan"] == 6 and "wismo_sorry_late" in handoff["said"]
    assert conversation.sla_kind == "first" and conversation.sla_due_at is not None


async def test_a_parcel_scanned_recently_is_not_late(sessions, settings) -> None:  # type: ignore[no-untyped-def]
    order, lines = await _order(sessions, fulfillment_status=FulfillmentStatus.fulfilled)
    async with sessions() as session:
        shipment = await make_shipment(session, order, lines=[(lines[0], 1)], shipped_at=days_ago(8))
        shipment.eta, shipment.last_event_at = days_ago(-3), days_ago(2)
        session.add(shipment)
        session.add(TrackingEvent(shipment_id=shipment.id, occurred_at=days_ago(2), status=ShipmentStatus("in_transit"),
                                  message="Departed facility", location="Memphis, TN"))
        await session.commit()

    chat = _chat(sessions, settings)
    await _verify(chat, "where is my order?", hidden=[UPS_NUMBER])
    assert f"• On its way (UPS, tracking {UPS_NUMBER})" in chat.text
    assert "sorry" not in chat.text.lower()
    await _assert_left_to_the_bot(chat)


def _next_thursday() -> datetime:
    """A Thursday afternoon in the coming week: its ship-by dates are still ahead (not late)."""
    now = datetime.now(UTC)
    return (now + timedelta(days=(3 - now.weekday()) % 7 or 7)).replace(hour=14, minute=0, second=0, microsecond=0)


def _day(value: datetime, locale: str = "en") -> str:
    return format_date(value.date(), format="medium", locale=locale)


async def test_an_unshipped_order_gets_the_ship_date_from_the_shipping_policy(sessions, settings) -> None:  # type: ignore[no-untyped-def]
    placed = _next_thursday()
    await _order(sessions, placed_at=placed)
    chat = _chat(sessions, settings)
    monday, next_thursday = placed + timedelta(days=4), placed + timedelta(days=7)
    await _verify(chat, "where is my order?", hidden=[_day(monday)])
    # two business days after a Thursday: Friday, then Monday
    assert chat.text == (f"Order #1001 hasn't shipped yet. We expect to send it by {_day(monday)}, "
                         "and you'll get the tracking number as soon as it's on its way.")
    await _assert_left_to_the_bot(chat)

    async with sessions() as session:
        await put_setting(session, "shipping", {"handling_days": 5})
        await session.commit()
    await chat.send("where is my order?")  # the same, now verified customer
    assert f"We expect to send it by {_day(next_thursday)}," in chat.text
    await _assert_left_to_the_bot(chat)


async def test_an_order_not_shipped_by_its_date_is_late(sessions, settings) -> None:  # type: ignore[no-untyped-def]
    order, _ = await _order(sessions, placed_at=T0)  # Thursday, May 1, 2025: due to ship by May 5, 2025
    chat = _chat(sessions, settings)
    await _verify(chat, "where is my order?", hidden=["May 5, 2025"])
    assert "Order #1001 was due to ship by May 5, 2025 and has not left our warehouse yet." in chat.text
    assert "I'm sorry, this delivery is taking longer than it should." in chat.text
    conversation = await chat.conversation()
    assert (conversation.owner, conversation.priority) == (Owner.agent, Priority.high)
    [alert] = await _alerts(chat)
    assert (alert["kind"], alert["order_id"], alert["not_shipped"]) == ("late_shipment", order.id, True)
    [escalated] = await _events(chat, "conversation.escalated")
    assert escalated.data["reason"] == "late_shipment"


async def test_every_parcel_of_a_split_order_is_reported(sessions, settings) -> None:  # type: ignore[no-untyped-def]
    cap = {"sku": "CAP", "title": "Cap", "quantity": 1, "unit_price": "15.00"}
    tote = {"sku": "TOTE", "title": "Tote bag", "quantity": 2, "unit_price": "12.00"}
    order, (tee_line, tote_line, _cap_line) = await _order(
        sessions, [TEE, tote, cap], placed_at=_next_thursday(), fulfillment_status=FulfillmentStatus.partial
    )
    ups_url = tracking_url(Carrier.UPS, UPS_NUMBER)
    usps_url = tracking_url(Carrier.USPS, USPS_NUMBER)
    async with sessions() as session:
        first = await make_shipment(session, order, lines=[(tee_line, 1)], shipped_at=datetime(2025, 5, 2, 9, tzinfo=UTC),
                                    delivered_at=datetime(2025, 5, 4, 15, tzinfo=UTC))
        first.tracking_url = ups_url
        second = await make_shipment(session, order, lines=[(tote_line, 2)], shipped_at=days_ago(2))
        second.carrier, second.tracking_number, second.tracking_url = "USPS", USPS_NUMBER, usps_url
        second.last_event_at = days_ago(1)
        session.add_all([first, second])
        await session.commit()

    chat = _chat(sessions, settings)
    await _verify(chat, "where is my order?", hidden=[UPS_NUMBER, USPS_NUMBER, ups_url, usps_url])
    text = chat.text
    assert "Here's the latest on order #1001:" in text
    parcel_1 = text.index("Parcel 1 of 2 (1 × Linen tee):")
    parcel_2 = text.index("Parcel 2 of 2 (2 × Tote bag):")
    first_part, second_part = text[parcel_1:parcel_2], text[parcel_2:]
    assert f"• Delivered (UPS, tracking {UPS_NUMBER})" in first_part
    assert "• Delivered on May 4, 2025" in first_part
    assert f"• Track it: {ups_url}" in first_part
    assert f"• On its way (USPS, tracking {USPS_NUMBER})" in second_part
    assert f"• Track it: {usps_url}" in second_part
    assert "Delivered" not in second_part
    assert f"Still to ship: 1 × Cap, expected by {_day(order.placed_at + timedelta(days=4))}." in second_part
    await _assert_left_to_the_bot(chat)


async def test_a_cancelled_order_says_so_and_shows_no_tracking(sessions, settings) -> None:  # type: ignore[no-untyped-def]
    # cancelled at 02:00 UTC on May 2, which is still May 1 in the shop's time zone
    order, lines = await _order(sessions, cancelled_at=datetime(2025, 5, 2, 2, tzinfo=UTC), cancel_reason="customer")
    async with sessions() as session:  # a label had been printed before the cancellation
        await make_shipment(session, order, lines=[(lines[0], 1)], status=ShipmentStatus("info_received"))
        await session.commit()

    chat = _chat(sessions, settings.model_copy(update={"shop_timezone": "America/New_York"}))
    await _verify(chat, "where is my order?", hidden=[])
    assert chat.text == "Order #1001 was cancelled on May 1, 2025, so it won't be shipped."
    everything = await chat.all_bot_text()
    assert UPS_NUMBER not in everything and "tracking" not in everything.lower() and url_in(everything) is None
    await _assert_left_to_the_bot(chat)


# --------------------------------------------------------------------------- refunds


async def _refunded(sessions: Any) -> None:
    order, _lines = await _order(sessions)
    async with sessions() as session:
        session.add(Refund(order_id=order.id, external_id="r-1", amount=Decimal("1234.50"), currency="USD",
                           processed_at=datetime(2025, 5, 3, 10, tzinfo=UTC)))
        session.add(StoreCredit(customer_id=order.customer_id, code="SC-7Q2M", amount=Decimal("20.00"), currency="USD"))
        await session.commit()


async def test_refund_status_lists_the_refund_and_the_store_credit(sessions, settings) -> None:  # type: ignore[no-untyped-def]
    await _refunded(sessions)
    chat = _chat(sessions, settings)
    await _verify(chat, "where is my refund?", hidden=["1,234.50", "SC-7Q2M", "20.00"])
    assert "Here are your refunds and store credit:" in chat.text
    assert "• Refund of $1,234.50 for #1001, issued May 3, 2025 (allow 5–10 business days to appear)" in chat.text
    assert "• Store credit $20.00, code SC-7Q2M" in chat.text
    await _assert_left_to_the_bot(chat)


async def test_refund_status_in_spanish_formats_money_the_spanish_way(sessions, settings) -> None:  # type: ignore[no-untyped-def]
    await _refunded(sessions)
    chat = _chat(sessions, settings, lang="es")
    await _verify(chat, "¿Dónde está mi reembolso? Lo necesito ya", hidden=["1234", "SC-7Q2M"])
    assert "• Reembolso de 1.234,50\xa0US$ (del pedido #1001), emitido el 3 may 2025" in chat.text
    assert "• Saldo de tienda 20,00\xa0US$, código SC-7Q2M" in chat.text


async def test_refund_status_discloses_nothing_to_an_unverified_customer(sessions, settings) -> None:  # type: ignore[no-untyped-def]
    await _refunded(sessions)
    chat = _chat(sessions, settings, user="stranger")
    await chat.send("where is my refund?")
    assert chat.text == ("Sure! What is your order number? You'll find it in your confirmation email "
                         "(for example #1001).")
    await chat.send("#1001")
    assert "please tell me the email address or the shipping postal code used for order #1001" in chat.text
    await chat.send("someone@example.com")
    assert "I couldn't find an order matching those details." in chat.text
    everything = await chat.all_bot_text()
    for secret in ("1,234.50", "1234.50", "$20.00", "SC-7Q2M", "Refund of", "Store credit", "Lan"):
        assert secret not in everything
    assert (await chat.state())["flow"] == "verify"  # still waiting for a valid proof
    assert (await chat.contact()).customer_id is None


# --------------------------------------------------------------------------- policies


async def test_return_policy_is_read_from_the_merchants_settings(sessions, settings) -> None:  # type: ignore[no-untyped-def]
    chat = _chat(sessions, settings)
    await chat.send("what is your return policy?")
    assert "You can return most items within 30 days of delivery; final-sale items can't be returned." in chat.text
    assert ("You can choose a refund to your original payment, store credit with a 10% bonus, "
            "an exchange for another size or colour.") in chat.text
    assert "We email a prepaid return label." in chat.text

    async with sessions() as session:
        await save_policy(session, ReturnPolicy(
            window_days=45,
            final_sale_excluded=False,
            resolutions=ResolutionOptions(exchange=False, store_credit_bonus_percent=Decimal("15")),
            methods=MethodOptions(mail=False, dropoff=True, dropoff_locations="any InPost locker"),
        ))
        await session.commit()
    await chat.send("what is your return policy?")
    assert "You can return most items within 45 days of delivery." in chat.text
    assert "final-sale" not in chat.text and "30 days" not in chat.text
    assert "You can choose a refund to your original payment, store credit with a 15% bonus." in chat.text
    assert "exchange" not in chat.text and "prepaid return label" not in chat.text
    assert "Drop-off points: any InPost locker." in chat.text
    await _assert_left_to_the_bot(chat)


async def test_shipping_info_is_read_from_the_merchants_settings(sessions, settings) -> None:  # type: ignore[no-untyped-def]
    chat = _chat(sessions, settings)
    await chat.send("how long does shipping take?")
    assert "We ship orders within 2 business days with UPS, USPS, FedEx, DHL Express." in chat.text
    assert "• Rest of the world: 7–14 business days, $24.95; duties may apply on delivery" in chat.text

    async with sessions() as session:
        await put_setting(session, "shipping", {
            "handling_days": 4,
            "carriers": ["Royal Mail"],
            "zones": [{"code": "uk", "name": "United Kingdom", "countries": ["GB"], "days": "1–3 business days",
                       "price_text": "£3.50"}],
        })
        await session.commit()
    await chat.send("how long does shipping take?")
    assert "We ship orders within 4 business days with Royal Mail." in chat.text
    assert "• United Kingdom: 1–3 business days, £3.50" in chat.text
    assert "Rest of the world" not in chat.text and "UPS" not in chat.text
    await _assert_left_to_the_bot(chat)


# --------------------------------------------------------------------------- hand-offs


async def _silent_until_handed_back(chat: Chat) -> None:
    """An agent owns the conversation: the bot says nothing, yet the message counts as handled;
    handed back, the bot answers again."""
    await chat.send("hello? are you there?")
    assert chat.replies == []
    async with chat.sessions() as session:
        last = (await session.exec(select(Message).where(Message.conversation_id == chat.conversation_id)
                                   .order_by(Message.id.desc()))).first()  # type: ignore[union-attr]
        assert last is not None and last.text == "hello? are you there?" and last.processed
        conversation = await session.get(Conversation, chat.conversation_id)
        assert conversation is not None
        await conversation_handback(session, conversation, None, actor="test")
        await session.commit()
    await chat.send("where is my order?")
    assert "What is your order number?" in chat.text


async def test_payment_problem_goes_to_a_person_with_high_priority(sessions, settings) -> None:  # type: ignore[no-untyped-def]
    async with sessions() as session:  # the team is never in at the moment: it opens at 07:30 and closes at 07:30
        await put_setting(session, "business_hours", {"days": [0, 1, 2, 3, 4, 5, 6], "open": "07:30", "close": "07:30"})
        await session.commit()
    chat = _chat(sessions, settings)
    await chat.send("my payment failed and I was charged twice")
    text = chat.text.replace("\u202f", " ")
    assert text.startswith("I've passed your conversation to our team. We're closed right now; a person will reply from ")
    assert "7:30 AM" in text and "You don't need to repeat anything" in text
    assert "sorry" not in text.lower()
    conversation = await chat.conversation()
    assert (conversation.owner, conversation.priority, conversation.last_intent) == (Owner.agent, Priority.high, "payment_issue")
    [escalated] = await _events(chat, "conversation.escalated")
    assert (escalated.data["reason"], escalated.data["priority"]) == ("payment_issue", "high")
    await _silent_until_handed_back(chat)


async def test_complaint_goes_to_a_person_with_high_priority(sessions, settings) -> None:  # type: ignore[no-untyped-def]
    chat = _chat(sessions, settings)
    await chat.send("I would like to file a complaint about the quality")  # calm: the complaint handler, not the tone rule
    assert chat.text.startswith("I'm sorry about this experience. I've passed your conversation to our team")
    assert "a person will reply shortly" in chat.text or "We're closed right now" in chat.text
    conversation = await chat.conversation()
    assert (conversation.owner, conversation.priority, conversation.last_intent) == (Owner.agent, Priority.high, "complaint")
    [escalated] = await _events(chat, "conversation.escalated")
    assert (escalated.data["reason"], escalated.data["priority"]) == ("complaint", "high")
    await _silent_until_handed_back(chat)


@pytest.mark.parametrize("lang, text", [
    ("en", "where the hell is my order, you useless scammers"),
    ("ru", "Вы мошенники и воры, где мой заказ?!"),
    ("zh-Hans", "你们这些骗子，退钱！"),
])
async def test_abuse_goes_to_a_person_first_whatever_it_asks(sessions, settings, lang: str, text: str) -> None:  # type: ignore[no-untyped-def]
    chat = _chat(sessions, settings, lang=lang)
    await chat.send(text)
    assert len(chat.replies) == 1  # the hand-off only: no order question, no menu
    conversation = await chat.conversation()
    assert (conversation.owner, conversation.priority) == (Owner.agent, Priority.high)
    [escalated] = await _events(chat, "conversation.escalated")
    assert (escalated.data["reason"], escalated.data["priority"]) == ("negative", "high")
    assert conversation.summary and "reason: negative" in conversation.summary
    await _silent_until_handed_back(chat)


async def test_abuse_in_the_middle_of_a_flow_ends_it_and_hands_off(sessions, settings) -> None:  # type: ignore[no-untyped-def]
    await _order(sessions)
    chat = _chat(sessions, settings)
    await chat.send("where is my order?")
    assert "What is your order number?" in chat.text
    await chat.send("you are all idiots, I want a real person NOW")
    assert chat.text.startswith("I'm sorry about this experience. I've passed your conversation to our team")
    conversation = await chat.conversation()
    assert (conversation.owner, conversation.priority) == (Owner.agent, Priority.high)
    assert (conversation.bot_state or {}).get("flow") is None  # the verification flow is over


async def test_a_calm_message_about_a_problem_is_answered_by_the_bot(sessions, settings) -> None:  # type: ignore[no-untyped-def]
    chat = _chat(sessions, settings)
    await chat.send("my parcel is late, could you check where my order is?")
    assert "What is your order number?" in chat.text
    conversation = await chat.conversation()
    assert conversation.owner == Owner.bot and await _events(chat, "conversation.escalated") == []


# --------------------------------------------------------------------------- another language


async def test_where_is_my_order_in_spanish(sessions, settings) -> None:  # type: ignore[no-untyped-def]
    order, lines = await _order(sessions, fulfillment_status=FulfillmentStatus.fulfilled)
    async with sessions() as session:
        shipment = await make_shipment(session, order, lines=[(lines[0], 1)], shipped_at=days_ago(3))
        shipment.eta, shipment.last_event_at = datetime(2025, 5, 6, 12, tzinfo=UTC), days_ago(1)
        session.add(shipment)
        await session.commit()

    chat = _chat(sessions, settings, lang="es")
    await chat.send("¿dónde está mi pedido?")
    assert chat.text.startswith("¡Claro! ¿Cuál es tu número de pedido?")
    await chat.send("#1001")
    assert "Para proteger tu privacidad" in chat.text and UPS_NUMBER not in chat.text
    await chat.send(EMAIL)
    assert "Esto es lo último del pedido #1001:" in chat.text
    assert f"• En camino (UPS, seguimiento {UPS_NUMBER})" in chat.text
    assert "• Llegada prevista antes del 6 may 2025" in chat.text
    assert "Lo siento, esta entrega está tardando más de lo debido." in chat.text
    assert "Here's the latest" not in chat.text and "On its way" not in chat.text
    conversation = await chat.conversation()
    assert (conversation.language, conversation.owner, conversation.priority) == ("es", Owner.agent, Priority.high)
    assert [a["kind"] for a in await _alerts(chat)] == ["late_shipment"]


async def test_an_unshipped_order_in_spanish(sessions, settings) -> None:  # type: ignore[no-untyped-def]
    placed = _next_thursday()
    await _order(sessions, placed_at=placed)
    chat = _chat(sessions, settings, lang="es")
    await _verify(chat, "¿dónde está mi pedido?", hidden=[_day(placed + timedelta(days=4), "es")])
    assert chat.text.startswith(f"El pedido #1001 aún no se ha enviado. Esperamos enviarlo antes del {_day(placed + timedelta(days=4), 'es')}")


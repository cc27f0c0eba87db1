"""Proactive shipment updates (issue 13 item 1) on SQLite and PostgreSQL, with a controlled clock:
dedupe per status, quiet hours in the customer's time zone, the merchant's switches, "stop" /
"start" in several languages, the language of the message, the "where is my order?" answer
from the same data, and bad input (backwards moves, replayed or late tracking events, a
customer without a channel)."""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from bot_chat import Chat
from ordersvc_builders import make_customer, make_order, make_shipment
from sqlmodel import col, select

from inbox.actions.shipment_notify import shipment_notify, shipment_notify_many
from inbox.models import Channel, Contact, Conversation, ConversationStatus, OutboxMessage, Owner
from inbox.proactive import ProactiveJob, customer_timezone, quiet_until, set_update_kind
from inbox.replies import render_reply, reply_label
from ordersvc.models import Shipment, ShipmentUpdate
from ordersvc.shipment_updates import record_tracking_event
from ordersvc.tracking import ShipmentStatus
from tests.db_helpers import count, rows

S = ShipmentStatus
NOON = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)  # 13:00 in Berlin, 07:00 in New York
URL = "https://www.ups.com/track?tracknum=1Z5R89390357567127"


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Shop:
    sessions: Any
    clock: Clock
    job: ProactiveJob
    order_id: int
    shipment_id: int
    customer_id: int
    contact_id: int | None = None
    conversation_id: int | None = None

    async def scan(self, status: ShipmentStatus, at: datetime | None = None, message: str = "") -> bool:
        async with self.sessions() as session:
            changed = await record_tracking_event(session, self.shipment_id, occurred_at=at or self.clock.now,
                                                  status=status, message=message or status.value, now=self.clock.now)
            await session.commit()
            return changed

    async def sent(self) -> list[dict[str, Any]]:
        if self.conversation_id is None:
            return []
        return [r.payload for r in await rows(self.sessions, OutboxMessage,
                                              col(OutboxMessage.conversation_id) == self.conversation_id)]

    async def updates(self) -> list[ShipmentUpdate]:
        return await rows(self.sessions, ShipmentUpdate, col(ShipmentUpdate.shipment_id) == self.shipment_id)


async def make_shop(sessions: Any, *, channel: Channel | None = Channel.telegram, lang: str = "en",
                    country: str = "DE", shop_timezone: str = "UTC", allowed: bool = False,
                    conversation_status: ConversationStatus = ConversationStatus.resolved,
                    external_id: str = "4242", eta: datetime | None = None) -> Shop:
    clock = Clock(NOON)
    async with sessions() as session:
        customer = await make_customer(session)
        address = {"address1": "Hauptstr. 1", "city": "Berlin", "zip": "10115", "country_code": country}
        order, lines = await make_order(session, customer=customer, name="#2001", shipping_address=address)
        shipment = await make_shipment(session, order, lines=[(lines[0], 1)], shipped_at=NOON - timedelta(days=2))
        shipment.tracking_url = URL
        shipment.eta = eta
        shop = Shop(sessions, clock, ProactiveJob(sessions, functools.partial(shipment_notify, shop_timezone=shop_timezone),
                                                  clock=clock, notify_many=functools.partial(
                                                      shipment_notify_many, shop_timezone=shop_timezone)),
                    order.id, shipment.id, customer.id)
        if channel is not None:
            contact = Contact(channel=channel, external_id=external_id, display_name="Lan", language=lang,
                              customer_id=customer.id, verified_at=NOON - timedelta(days=3),
                              updates_allowed_at=NOON if allowed else None)
            session.add(contact)
            await session.flush()
            conversation = Conversation(contact_id=contact.id, channel=channel, status=conversation_status,
                                        language=lang, resolved_at=NOON - timedelta(days=3))
            session.add(conversation)
            await session.flush()
            shop.contact_id, shop.conversation_id = contact.id, conversation.id
        await session.commit()
    return shop


# --------------------------------------------------------------------------- the rules


async def test_one_message_per_shipment_and_status_in_the_customers_language(sessions) -> None:  # type: ignore[no-untyped-def]
    shop = await make_shop(sessions, lang="es")
    assert await shop.scan(S.OUT_FOR_DELIVERY)
    assert await shop.job.run_once() == {"sent": 1}
    [payload] = await shop.sent()
    assert "#2001" in payload["text"] and f"\nSíguelo aquí: {URL}\n" in payload["text"] and "en reparto" in payload["text"]
    assert payload["quick_replies"] == [{"label": reply_label("update_button_track", "es"), "value": "intent:track_order"}]

    # the same scan again, the same status from another scan, and another pass: nothing new
    assert not await shop.scan(S.OUT_FOR_DELIVERY)
    assert not await shop.scan(S.OUT_FOR_DELIVERY, at=NOON + timedelta(minutes=5), message="On vehicle")
    assert await shop.job.run_once() == {}
    assert len(await shop.sent()) == 1
    assert [u.status for u in await shop.updates()] == ["out_for_delivery"]

    shop.clock.now = NOON + timedelta(hours=3)
    assert await shop.scan(S.DELIVERED)
    assert await shop.job.run_once() == {"sent": 1}
    delivered = (await shop.sent())[-1]
    assert delivered["text"] == render_reply(
        "update_delivered", "es", order=await _order(sessions, shop), shipment=await _shipment(sessions, shop),
        tracking_url=URL, tz="Europe/Berlin")
    assert delivered["quick_replies"][0]["value"] == "intent:start_return"
    async with sessions() as session:
        conversation = await session.get(Conversation, shop.conversation_id)
        assert conversation.status == ConversationStatus.resolved  # an update does not open a support request


async def _order(sessions: Any, shop: Shop) -> Any:
    from ordersvc.models import Order

    async with sessions() as session:
        return await session.get(Order, shop.order_id)


async def _shipment(sessions: Any, shop: Shop) -> Shipment:
    async with sessions() as session:
        return await session.get(Shipment, shop.shipment_id)


@pytest.mark.parametrize("lang, word", [("ru", "Доставят"), ("vi", "đang được giao"), ("zh-Hant", "配送")])
async def test_language_of_the_update(sessions, lang: str, word: str) -> None:  # type: ignore[no-untyped-def]
    shop = await make_shop(sessions, lang=lang)
    await shop.scan(S.OUT_FOR_DELIVERY)
    await shop.job.run_once()
    [payload] = await shop.sent()
    assert word.lower() in payload["text"].lower()
    assert payload["quick_replies"][0]["label"] == reply_label("update_button_track", lang)


async def test_exception_offers_the_address_change_and_late_parcels_are_told_once(sessions) -> None:  # type: ignore[no-untyped-def]
    shop = await make_shop(sessions, eta=NOON - timedelta(hours=1))
    assert await shop.job.run_once() == {"sent": 1}  # late against its estimate
    assert await shop.job.run_once() == {}
    assert await shop.scan(S.EXCEPTION, message="Customs hold")
    assert await shop.job.run_once() == {"sent": 1}
    late, exception = await shop.sent()
    assert "#2001" in late["text"] and late["quick_replies"][0]["value"] == "intent:track_order"
    assert exception["quick_replies"][0]["value"] == "intent:change_address"
    assert sorted(u.status for u in await shop.updates()) == ["exception", "late"]


async def test_quiet_hours_hold_the_update_until_eight_in_the_customers_zone(sessions) -> None:  # type: ignore[no-untyped-def]
    shop = await make_shop(sessions, country="DE")
    shop.clock.now = datetime(2026, 12, 2, 20, 30, tzinfo=UTC)  # 21:30 in Berlin
    await shop.scan(S.FAILED_ATTEMPT)
    assert await shop.job.run_once() == {"postponed": 1}
    assert await shop.sent() == []
    [update] = await shop.updates()
    assert update.due_at == datetime(2026, 12, 3, 7, 0, tzinfo=UTC) and update.processed_at is None  # 08:00 Berlin
    shop.clock.now = datetime(2026, 12, 3, 6, 59, tzinfo=UTC)
    assert await shop.job.run_once() == {}
    shop.clock.now = datetime(2026, 12, 3, 7, 0, tzinfo=UTC)
    assert await shop.job.run_once() == {"sent": 1}
    assert len(await shop.sent()) == 1


async def test_a_country_with_several_zones_uses_the_shops_zone(sessions) -> None:  # type: ignore[no-untyped-def]
    shop = await make_shop(sessions, country="US", shop_timezone="America/New_York")
    await shop.scan(S.OUT_FOR_DELIVERY)  # 07:00 in New York
    assert await shop.job.run_once() == {"postponed": 1}
    [update] = await shop.updates()
    assert update.due_at == datetime(2026, 12, 2, 13, 0, tzinfo=UTC)


def test_timezone_and_quiet_hour_rules() -> None:
    assert str(customer_timezone({"country_code": "VN"}, "UTC", NOON)) == "Asia/Ho_Chi_Minh"
    assert str(customer_timezone({"country_code": "ES"}, "Europe/Paris", NOON)) == "Europe/Paris"  # Canaries
    assert str(customer_timezone(None, "Asia/Tokyo", NOON)) == "Asia/Tokyo"
    assert str(customer_timezone({"country_code": "??"}, "UTC", NOON)) == "UTC"
    berlin = customer_timezone({"country_code": "DE"}, "UTC", NOON)
    assert quiet_until(datetime(2026, 12, 2, 7, 0, tzinfo=UTC), berlin) is None  # 08:00
    assert quiet_until(datetime(2026, 12, 2, 19, 59, tzinfo=UTC), berlin) is None  # 20:59
    assert quiet_until(datetime(2026, 12, 2, 20, 0, tzinfo=UTC), berlin) == datetime(2026, 12, 3, 7, 0, tzinfo=UTC)
    assert quiet_until(datetime(2026, 12, 2, 1, 0, tzinfo=UTC), berlin) == datetime(2026, 12, 2, 7, 0, tzinfo=UTC)


async def test_the_merchant_switches_a_kind_off(sessions) -> None:  # type: ignore[no-untyped-def]
    shop = await make_shop(sessions)
    async with sessions() as session:
        await set_update_kind(session, "out_for_delivery", False)
        await session.commit()
    await shop.scan(S.OUT_FOR_DELIVERY)
    assert await shop.job.run_once() == {"disabled": 1}
    shop.clock.now = NOON + timedelta(hours=1)
    await shop.scan(S.DELIVERED)
    assert await shop.job.run_once() == {"sent": 1}
    assert len(await shop.sent()) == 1


async def test_an_update_that_waited_overnight_and_was_overtaken_is_not_sent(sessions) -> None:  # type: ignore[no-untyped-def]
    shop = await make_shop(sessions)
    shop.clock.now = datetime(2026, 12, 2, 22, 0, tzinfo=UTC)
    await shop.scan(S.OUT_FOR_DELIVERY)
    assert await shop.job.run_once() == {"postponed": 1}
    await shop.scan(S.DELIVERED, at=datetime(2026, 12, 2, 23, 0, tzinfo=UTC))
    shop.clock.now = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)
    assert await shop.job.run_once() == {"superseded": 1, "sent": 1}
    [payload] = await shop.sent()
    assert payload["quick_replies"][0]["value"] == "intent:start_return"


# --------------------------------------------------------------------------- who hears it


async def test_a_widget_visitor_hears_nothing_until_they_allow_it(sessions, settings) -> None:  # type: ignore[no-untyped-def]
    chat = Chat(sessions, settings, user="visitor-77", channel=Channel.webchat, lang="en")
    await chat.send("hi")
    shop = await make_shop(sessions, channel=None)
    await _link(sessions, chat, shop)
    await shop.scan(S.OUT_FOR_DELIVERY)
    assert await shop.job.run_once() == {"no_channel": 1}

    replies = await chat.send("notify me")
    assert replies[0].text == render_reply("updates_started", "en")
    shop.clock.now = NOON + timedelta(hours=2)
    await shop.scan(S.DELIVERED)
    assert await shop.job.run_once() == {"sent": 1}
    payload = (await shop.sent())[-1]
    assert "delivered" in payload["text"] and payload["quick_replies"][0]["value"] == "intent:start_return"


async def _link(sessions: Any, chat: Chat, shop: Shop) -> None:
    async with sessions() as session:
        conversation = await session.get(Conversation, chat.conversation_id)
        contact = await session.get(Contact, conversation.contact_id)
        contact.customer_id, contact.verified_at = shop.customer_id, NOON - timedelta(days=1)
        session.add(contact)
        await session.commit()
        shop.contact_id, shop.conversation_id = contact.id, conversation.id


@pytest.mark.parametrize("lang, stop, start", [
    ("en", "STOP", "start"),
    ("es", "parar", "activar"),
    ("ru", "стоп", "старт"),
    ("vi", "dừng", "bắt đầu"),
    ("zh-Hans", "停止", "开始"),
    ("zh-Hant", "退訂", "開始"),
])
async def test_stop_and_start_in_every_language(sessions, settings, lang: str, stop: str, start: str) -> None:  # type: ignore[no-untyped-def]
    chat = Chat(sessions, settings, user=f"tg-{lang}", channel=Channel.telegram, lang=lang)
    await chat.send({"en": "hello", "es": "hola", "ru": "привет", "vi": "xin chào", "zh-Hans": "你好",
                     "zh-Hant": "你好"}[lang])
    shop = await make_shop(sessions, channel=None)
    await _link(sessions, chat, shop)

    await shop.scan(S.OUT_FOR_DELIVERY)
    assert await shop.job.run_once() == {"sent": 1}
    replies = await chat.send(stop)  # right after the update
    assert [r.text for r in replies] == [render_reply("updates_stopped", lang)]
    shop.clock.now = NOON + timedelta(hours=1)
    await shop.scan(S.DELIVERED)
    assert await shop.job.run_once() == {"opted_out": 1}

    replies = await chat.send(start)
    assert [r.text for r in replies] == [render_reply("updates_started", lang)]
    shop.clock.now = NOON + timedelta(hours=2)
    async with sessions() as session:  # a new parcel of the same order
        order = await session.get(__import__("ordersvc.models", fromlist=["Order"]).Order, shop.order_id)
        second = await make_shipment(session, order)
        await session.commit()
        shop.shipment_id = second.id
    await shop.scan(S.EXCEPTION)
    assert await shop.job.run_once() == {"sent": 1}


async def test_stop_inside_an_open_flow_still_leaves_the_flow(sessions, settings) -> None:  # type: ignore[no-untyped-def]
    chat = Chat(sessions, settings, user="tg-flow", channel=Channel.telegram, lang="en")
    await chat.send("I want to cancel my order")
    replies = await chat.send("stop")
    assert replies[0].text == render_reply("flow_cancelled", "en")
    async with sessions() as session:
        contact = (await session.exec(select(Contact).where(Contact.external_id == "tg-flow"))).one()
        assert contact.updates_stopped_at is None


async def test_where_is_my_order_after_an_update_reads_the_same_status(sessions, settings) -> None:  # type: ignore[no-untyped-def]
    chat = Chat(sessions, settings, user="tg-wismo", channel=Channel.telegram, lang="en")
    await chat.send("hello")
    shop = await make_shop(sessions, channel=None)
    await _link(sessions, chat, shop)
    await shop.scan(S.OUT_FOR_DELIVERY)
    await shop.job.run_once()
    await chat.send("where is my order?")
    assert reply_label("status_out_for_delivery", "en") in chat.text
    assert "#2001" in chat.text and (await chat.conversation()).owner == Owner.bot  # nothing late, no hand-over


# --------------------------------------------------------------------------- bad input


async def test_backwards_and_out_of_order_tracking_events_change_nothing(sessions) -> None:  # type: ignore[no-untyped-def]
    shop = await make_shop(sessions)
    t = NOON - timedelta(hours=5)
    assert await shop.scan(S.OUT_FOR_DELIVERY, at=t)
    assert not await shop.scan(S.IN_TRANSIT, at=t - timedelta(hours=3), message="Departed facility")  # late arrival
    assert not await shop.scan(S.IN_TRANSIT, at=t + timedelta(minutes=1), message="Arrived at facility")  # backwards
    assert (await _shipment(sessions, shop)).status == S.OUT_FOR_DELIVERY
    assert await shop.scan(S.DELIVERED, at=t + timedelta(hours=2))
    assert not await shop.scan(S.OUT_FOR_DELIVERY, at=t + timedelta(hours=3), message="Out again?")
    assert not await shop.scan(S.EXCEPTION, at=t + timedelta(hours=4), message="Damaged")
    assert (await _shipment(sessions, shop)).status == S.DELIVERED
    assert await shop.job.run_once() == {"superseded": 1, "sent": 1}  # only "delivered" is still news
    assert await shop.job.run_once() == {}
    assert sorted(u.status for u in await shop.updates()) == ["delivered", "out_for_delivery"]


async def test_a_customer_without_a_channel_is_logged_once_and_nothing_is_sent(sessions, caplog) -> None:  # type: ignore[no-untyped-def]
    shop = await make_shop(sessions, channel=None)
    caplog.set_level(logging.INFO, logger="inbox.actions.shipment_notify")
    await shop.scan(S.OUT_FOR_DELIVERY)
    assert await shop.job.run_once() == {"no_channel": 1}
    await shop.scan(S.OUT_FOR_DELIVERY, message="duplicate from the carrier")
    assert await shop.job.run_once() == {}
    assert sum("no reachable channel" in r.getMessage() for r in caplog.records) == 1
    assert await count(sessions, OutboxMessage) == 0
    for record in caplog.records:
        assert "@" not in record.getMessage()  # no emails in logs


async def test_a_blocked_bot_or_a_stopped_contact_gets_nothing(sessions) -> None:  # type: ignore[no-untyped-def]
    shop = await make_shop(sessions)
    async with sessions() as session:
        contact = await session.get(Contact, shop.contact_id)
        contact.undeliverable_at = NOON
        session.add(contact)
        await session.commit()
    await shop.scan(S.OUT_FOR_DELIVERY)
    assert await shop.job.run_once() == {"no_channel": 1}
    assert await shop.sent() == []


async def test_cli_shows_and_switches_kinds(db_url, tmp_path, sessions) -> None:  # type: ignore[no-untyped-def]
    from inbox.proactive import update_settings
    from tests.test_cli import Cli, ok, one_line_error

    cli = Cli(tmp_path, {"SHOPDESK_DATABASE_URL": db_url})
    assert "delivered\ton" in ok(cli("updates", "show")).splitlines()
    assert "delivered\toff" in ok(cli("updates", "set", "delivered", "off")).splitlines()
    async with sessions() as session:
        assert (await update_settings(session))["delivered"] is False
    one_line_error(cli("updates", "set", "bogus", "off"), 2, "unknown kind")
    one_line_error(cli("updates", "set", "late", "maybe"), 2, "'on' or 'off'")


async def test_a_verified_widget_visitor_allows_updates_with_the_wismo_button(sessions, settings) -> None:  # type: ignore[no-untyped-def]
    chat = Chat(sessions, settings, user="visitor-btn", channel=Channel.webchat, lang="es")
    await chat.send("hola")
    shop = await make_shop(sessions, channel=None)
    await _link(sessions, chat, shop)
    await chat.send("¿dónde está mi pedido?")
    assert (reply_label("updates_allow", "es"), "updates:on") in chat.choices, chat.text
    replies = await chat.press("updates:on")
    assert [r.text for r in replies] == [render_reply("updates_started", "es")]
    await chat.send("¿dónde está mi pedido?")
    assert all(value != "updates:on" for _, value in chat.choices)  # asked once is enough
    await shop.scan(S.OUT_FOR_DELIVERY)
    assert await shop.job.run_once() == {"sent": 1}

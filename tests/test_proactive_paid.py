"""Telegram's paid broadcasts (Bot API 7.11 ``allow_paid_broadcast``) as the merchant's opt-in for
proactive updates: off by default; on, the update's payload is marked, the Telegram sender asks
for the paid broadcast (checked on the loopback Bot API with the real python-telegram-bot client)
and paces it on its own lane (up to 1,000 messages/s in all instead of 30, 1/s per chat still);
agents' replies are never paid broadcasts. Plus the outbox concurrency setting."""

from __future__ import annotations

import inspect
from typing import Any

import pytest
from telegram import Bot

from bot.connectors.telegram import SendPacer, TelegramSender, make_bot
from inbox.messages import OutboundPayload, QuickReply
from inbox.models import Channel, Contact
from inbox.proactive import PAID_BROADCAST, set_update_kind, update_settings
from ordersvc.tracking import ShipmentStatus
from tests.fakes.telegram import FakeTelegram
from tests.test_proactive import make_shop


def test_the_installed_python_telegram_bot_knows_paid_broadcasts() -> None:
    assert "allow_paid_broadcast" in inspect.signature(Bot.send_message).parameters


def test_paid_sends_have_their_own_faster_lane_and_the_chat_limit_still_holds() -> None:
    pacer = SendPacer(per_chat=1.0, overall=30.0, paid=1000.0, clock=lambda: 100.0)
    free = [pacer.reserve(chat) for chat in range(31)]
    assert free[30] == pytest.approx(1.0)  # 30 a second for free sends
    paid = [pacer.reserve(1000 + chat, paid=True) for chat in range(98)]
    assert paid[97] == pytest.approx(97 / 970)  # the paid lane: 1,000/s minus the free 30/s
    assert pacer.reserve(1000, paid=True) == pytest.approx(1.0)  # one chat: 1 a second, paid or not
    assert pacer.reserve(31) == pytest.approx(31 / 30)  # the free lane did not move for paid sends
    off = SendPacer(per_chat=0.0, overall=0.0, paid=0.0, clock=lambda: 100.0)
    assert not off.enabled and off.reserve(1, paid=True) == 0.0


def test_the_mark_survives_the_outbox_and_is_absent_when_off() -> None:
    marked = OutboundPayload(text="hi", paid_broadcast=True)
    assert OutboundPayload.from_json(marked.to_json()).paid_broadcast is True
    assert "paid_broadcast" not in OutboundPayload(text="hi").to_json()
    assert OutboundPayload.from_json({"text": "hi", "paid_broadcast": "yes"}).paid_broadcast is False


async def test_updates_are_paid_broadcasts_only_after_the_merchant_opts_in(sessions: Any) -> None:
    shop = await make_shop(sessions)
    async with sessions() as session:
        assert (await update_settings(session))[PAID_BROADCAST] is False  # off by default
    assert await shop.scan(ShipmentStatus.OUT_FOR_DELIVERY)
    await shop.job.run_once()
    async with sessions() as session:
        await set_update_kind(session, PAID_BROADCAST, True)
        await session.commit()
    assert await shop.scan(ShipmentStatus.DELIVERED)
    await shop.job.run_once()
    first, second = await shop.sent()
    assert "paid_broadcast" not in first and second.get("paid_broadcast") is True


async def test_the_sender_asks_telegram_for_a_paid_broadcast(telegram: FakeTelegram, lite_settings: Any) -> None:
    from pydantic import SecretStr

    settings = lite_settings.model_copy(update={"telegram_token": SecretStr(telegram.token),
                                                "telegram_api_url": telegram.ptb_base_url})
    bot = make_bot(settings)
    await bot.initialize()
    try:
        sender = TelegramSender(bot, SendPacer(0, 0, paid=0), public_url="https://shop.example", token=telegram.token)
        contact = Contact(channel=Channel.telegram, external_id="4711")
        button = (QuickReply(label="Track", value="intent:track_order"),)
        await sender.send(contact, OutboundPayload(text="Out for delivery", quick_replies=button, paid_broadcast=True))
        await sender.send(contact, OutboundPayload(text="An agent's reply"))
    finally:
        await bot.shutdown()
    paid, plain = telegram.calls_for("sendMessage")
    assert paid.params.get("allow_paid_broadcast") is True and paid.params["text"] == "Out for delivery"
    assert "allow_paid_broadcast" not in plain.params


def test_outbox_concurrency_is_a_setting_and_the_pool_must_fit_it(lite_settings: Any) -> None:
    from shopdesk.settings import load_settings

    assert lite_settings.outbox_concurrency == 16 and lite_settings.telegram_connection_pool_size >= 16
    with pytest.raises(Exception, match="SHOPDESK_TELEGRAM_CONNECTION_POOL_SIZE"):
        load_settings(database_url=lite_settings.database_url, outbox_concurrency=100,
                      telegram_connection_pool_size=50)

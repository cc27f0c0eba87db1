"""The Telegram sender reads only ``message_id`` of Telegram's answer (``Bot.do_api_request``
instead of ``Bot.send_message``, see ``bot.connectors.telegram.send``): the request, the keyboard
and every error keep the meaning they had through ``send_message``, on the loopback Bot API with
the real python-telegram-bot client and the aiohttp request backend."""

from __future__ import annotations

import json
import warnings
from typing import Any

import pytest
from pydantic import SecretStr
from telegram.warnings import PTBUserWarning

from bot.connectors.telegram import SendPacer, TelegramSender, make_bot
from bot.connectors.telegram.send import keyboard, keyboard_json, sent_message_id
from inbox.channels import HOLD_RECIPIENT, PermanentFailure, RetryLater
from inbox.messages import OutboundPayload, QuickReply
from inbox.models import Channel, Contact
from tests.fakes.telegram import FakeTelegram

CHAT = 4711


@pytest.fixture
async def sender(telegram: FakeTelegram, lite_settings: Any) -> Any:
    settings = lite_settings.model_copy(update={"telegram_token": SecretStr(telegram.token),
                                                "telegram_api_url": telegram.ptb_base_url})
    assert settings.telegram_http_client == "aiohttp"
    bot = make_bot(settings)
    await bot.initialize()  # as the connector does: do_api_request's 401/404 handling depends on it
    try:
        yield TelegramSender(bot, SendPacer(0, 0), public_url="https://shop.example", token=telegram.token)
    finally:
        await bot.shutdown()


CONTACT = Contact(channel=Channel.telegram, external_id=str(CHAT))


async def test_the_sent_message_id_and_keyboard_and_no_library_hint(sender: TelegramSender,
                                                                    telegram: FakeTelegram) -> None:
    buttons = (QuickReply(label="Track", value="intent:track_order"), QuickReply(label="Agent", value="intent:agent"))
    with warnings.catch_warnings(record=True) as caught:
        first = await sender.send(CONTACT, OutboundPayload(text="Где мой заказ? 📦", quick_replies=buttons))
        second = await sender.send(CONTACT, OutboundPayload(text="plain"))
    assert not [w for w in caught if issubclass(w.category, PTBUserWarning)]
    sent = telegram.sent_messages(CHAT)
    assert [first, second] == [str(m["message_id"]) for m in sent] and first != second
    assert sent[0]["text"] == "Где мой заказ? 📦"
    assert sent[0]["reply_markup"] == {"inline_keyboard": [[
        {"text": "Track", "callback_data": "intent:track_order"}, {"text": "Agent", "callback_data": "intent:agent"}]]}
    assert "reply_markup" not in sent[1] and "allow_paid_broadcast" not in telegram.calls_for("sendMessage")[1].params


async def test_an_answer_without_a_message_id_is_still_sent(sender: TelegramSender, telegram: FakeTelegram) -> None:
    telegram.stub("sendMessage", {"chat": {"id": CHAT, "type": "private"}})  # odd, but the message went out
    assert await sender.send(CONTACT, OutboundPayload(text="hi")) is None
    assert len(telegram.calls_for("sendMessage")) == 1
    assert [sent_message_id(r) for r in ({"message_id": 7}, {"message_id": True}, {"message_id": "7"}, True)] == \
        ["7", None, None, None]


async def test_errors_keep_their_meaning(sender: TelegramSender, telegram: FakeTelegram) -> None:
    telegram.fail_next("sendMessage", 429, retry_after=7)
    with pytest.raises(RetryLater) as flood:
        await sender.send(CONTACT, OutboundPayload(text="one"))
    assert flood.value.rate_limited and flood.value.seconds == 7 and flood.value.hold == HOLD_RECIPIENT
    sender.pacer = SendPacer(0, 0)  # the chat's hold forgotten

    telegram.fail_next("sendMessage", 401)  # the token was revoked after start
    with pytest.raises(RetryLater) as token:
        await sender.send(CONTACT, OutboundPayload(text="two"))
    assert token.value.seconds == 300 and "token" in (token.value.reason or "")
    assert telegram.token.split(":", 1)[1] not in (token.value.reason or "")

    telegram.fail_next("sendMessage", 400, "Bad Request: chat not found")
    with pytest.raises(PermanentFailure) as missing:
        await sender.send(CONTACT, OutboundPayload(text="three"))
    assert not missing.value.blocked and "chat not found" in (missing.value.reason or "").lower()

    telegram.block_chat(CHAT)
    with pytest.raises(PermanentFailure) as blocked:
        await sender.send(CONTACT, OutboundPayload(text="four"))
    assert blocked.value.blocked
    assert telegram.sent_messages(CHAT) == []


def test_the_keyboard_json_is_ptbs_serialisation_made_once() -> None:
    buttons = (QuickReply(label="Track my parcel please", value="intent:track_order"), QuickReply(label="x", value="y" * 80))
    text = keyboard_json(buttons)
    assert text is not None and json.loads(text) == keyboard(buttons).to_dict()  # type: ignore[union-attr]
    assert keyboard_json(tuple(buttons)) is text and keyboard_json(()) is None
    assert json.loads(text)["inline_keyboard"][1][0]["callback_data"].startswith("h:")  # over 64 bytes: hashed

"""A Shopify fulfillment webhook → a proactive update on Telegram, through the real app
(``shopdesk.app.build_app``: webhook endpoint, the durable ``shipment_update`` row, the
proactive job, the outbox dispatcher) and the loopback Telegram fake; a retried or
backwards webhook sends nothing more."""

from __future__ import annotations

import asyncio
import base64
import copy
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from sqlmodel import select

from inbox.models import Channel, Contact, Conversation, ConversationStatus
from ordersvc.models import Customer, Shipment, ShipmentUpdate
from ordersvc.shopify import load_json
from ordersvc.tracking import ShipmentStatus
from tests.db_helpers import eventually, rows
from tests.fakes.telegram import FakeTelegram

FIXTURES = Path(__file__).parent / "fixtures" / "shopify"
SHOPIFY_SECRET = "shpss_proactive_0123456789"
TG_SECRET = "tg-webhook-secret_0123456789"
CHAT = 4711


def _fixture(name: str, **changes: Any) -> dict[str, Any]:
    payload = copy.deepcopy(load_json((FIXTURES / name).read_text()))
    payload.update(changes)
    return payload


@pytest.fixture
async def fake(aiohttp_server: Any) -> FakeTelegram:
    tg = FakeTelegram()
    server = await aiohttp_server(tg.app)
    tg.base_url = str(server.make_url("")).rstrip("/")
    return tg


async def test_fulfillment_webhook_sends_one_update_on_telegram(aiohttp_client: Any, fake: FakeTelegram,
                                                                settings: Any, sessions: Any) -> None:
    from shopdesk.app import RUNTIME, build_app

    s = settings.model_copy(update={
        "telegram_token": SecretStr(fake.token), "telegram_webhook_secret": SecretStr(TG_SECRET),
        "telegram_api_url": fake.ptb_base_url, "telegram_per_chat_per_second": 1000.0,
        "telegram_overall_per_second": 1000.0, "public_url": "https://shop.example",
        "shopify_webhook_secret": SecretStr(SHOPIFY_SECRET), "shop_timezone": "UTC",
    })
    app = build_app(s, migrate_on_start=False)
    client = await aiohttp_client(app)
    # a daytime clock for the job (the real time of day must not decide the test: quiet hours)
    today = datetime.now(UTC)
    app[RUNTIME].proactive.clock = lambda: datetime(today.year, today.month, today.day, 12, tzinfo=UTC) + timedelta(days=1)
    counter = iter(range(1, 100))

    async def post(topic: str, payload: dict[str, Any]) -> int:
        body = json.dumps(payload, default=str).encode()
        signature = base64.b64encode(hmac.new(SHOPIFY_SECRET.encode(), body, hashlib.sha256).digest()).decode()
        response = await client.post("/webhooks/shopify", data=body, headers={
            "Content-Type": "application/json", "X-Shopify-Hmac-Sha256": signature, "X-Shopify-Topic": topic,
            "X-Shopify-Webhook-Id": f"wh-proactive-{next(counter)}"})
        return response.status

    order = _fixture("webhook_order_create.json")
    order["shipping_address"]["country_code"] = "GB"  # one zone: Europe/London
    assert await post("orders/create", order) == 200
    async with sessions() as session:  # the customer proved who they are to the bot on Telegram
        customer = (await session.exec(select(Customer))).one()
        contact = Contact(channel=Channel.telegram, external_id=str(CHAT), display_name="Jon", language="ru",
                          customer_id=customer.id, verified_at=datetime.now(UTC))
        session.add(contact)
        await session.flush()
        session.add(Conversation(contact_id=contact.id, channel=Channel.telegram, language="ru",
                                 status=ConversationStatus.resolved, resolved_at=datetime.now(UTC)))
        await session.commit()

    fulfillment = _fixture("webhook_fulfillment.json")
    assert await post("fulfillments/create", fulfillment) == 200  # in transit: no news
    out = dict(fulfillment, shipment_status="out_for_delivery", updated_at="2025-04-12T08:00:00-04:00")
    assert await post("fulfillments/update", out) == 200
    sent = await eventually(lambda: fake.sent_messages(CHAT), timeout=20)
    [message] = sent
    assert "#1004" in message["text"] or order["name"] in message["text"]
    assert "https://www.fedex.com/fedextrack/?trknbr=986578788855" in message["text"]
    assert "доставят" in message["text"]  # the customer's language
    buttons = message["reply_markup"]["inline_keyboard"]
    assert buttons[0][0]["callback_data"] == "intent:track_order"

    # retries and a move back: the same status again, an older payload, in transit after out for delivery
    assert await post("fulfillments/update", out) == 200
    back = dict(fulfillment, shipment_status="in_transit", updated_at="2025-04-12T09:00:00-04:00")
    assert await post("fulfillments/update", back) == 200
    again = dict(fulfillment, shipment_status="out_for_delivery", updated_at="2025-04-12T10:00:00-04:00")
    assert await post("fulfillments/update", again) == 200
    delivered = dict(fulfillment, shipment_status="delivered", updated_at="2025-04-12T15:00:00-04:00")
    assert await post("fulfillments/update", delivered) == 200
    await eventually(lambda: len(fake.sent_messages(CHAT)) == 2, timeout=20)
    late_back = dict(fulfillment, shipment_status="in_transit", updated_at="2025-04-13T15:00:00-04:00")
    assert await post("fulfillments/update", late_back) == 200
    app[RUNTIME].proactive.wake()
    await asyncio.sleep(0.5)  # give a wrong second message the chance to appear
    texts = [m["text"] for m in fake.sent_messages(CHAT)]
    assert len(texts) == 2 and "доставлен" in texts[1]
    assert fake.sent_messages(CHAT)[1]["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == "intent:start_return"
    [shipment] = await rows(sessions, Shipment)
    assert shipment.status == ShipmentStatus.DELIVERED  # a delivered parcel does not move back
    assert sorted(u.status for u in await rows(sessions, ShipmentUpdate)) == ["delivered", "out_for_delivery"]

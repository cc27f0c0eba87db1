"""``fulfillment_events/create``: Shopify's carrier tracking events through the real webhook
path (HMAC, dedupe, one transaction), onto the shipment's history and status, and (through
the real app) into a proactive update on Telegram; bad input changes nothing and sends nothing
twice. SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import web
from pydantic import SecretStr
from sqlmodel import select
from test_shopify_webhooks import PREVIOUS, SECRET, Hook, fixture, sign

from inbox.models import Channel, Contact, Conversation, ConversationStatus
from ordersvc.models import Customer, Shipment, ShipmentUpdate, TrackingEvent
from ordersvc.tracking import ShipmentStatus
from ordersvc.webhooks import setup
from tests.db_helpers import eventually, rows
from tests.fakes.telegram import FakeTelegram

TOPIC = "fulfillment_events/create"


@pytest.fixture
async def hook(sessions: Any, aiohttp_client: Any) -> Hook:
    state = Hook(client=None, sessions=sessions, secrets=[SECRET, PREVIOUS])

    async def on_change(event: str, order_id: int) -> None:
        state.events.append((event, order_id))

    app = web.Application()
    setup(app, sessions, lambda: list(state.secrets), on_change=on_change)
    state.client = await aiohttp_client(app)
    return state


def event(**changes: Any) -> dict[str, Any]:
    return fixture("webhook_fulfillment_event.json", **changes)


async def _shipped(hook: Hook) -> None:
    assert (await hook.post("orders/create", fixture("webhook_order_create.json")))[0] == 200
    assert (await hook.post("fulfillments/create", fixture("webhook_fulfillment.json")))[0] == 200


async def _shipment(hook: Hook) -> Shipment:
    [shipment] = await rows(hook.sessions, Shipment)
    return shipment


async def test_an_event_moves_the_shipment_and_writes_the_customers_update(hook: Hook) -> None:
    await _shipped(hook)
    hook.events.clear()
    assert await hook.post(TOPIC, event()) == (200, {"status": "ok"})

    shipment = await _shipment(hook)
    assert shipment.status == ShipmentStatus.OUT_FOR_DELIVERY
    assert shipment.eta == datetime(2025, 4, 12, 22, 0, tzinfo=UTC)
    [scan] = await rows(hook.sessions, TrackingEvent)
    assert (scan.external_id, scan.message, scan.location) == (
        "9007199254741101", "On vehicle for delivery", "Louisville, Kentucky, United States")
    assert scan.occurred_at == datetime(2025, 4, 12, 11, 45, tzinfo=UTC)
    [update] = await rows(hook.sessions, ShipmentUpdate)
    assert (update.shipment_id, update.status, update.processed_at) == (shipment.id, "out_for_delivery", None)
    assert hook.events == [("shipment.updated", shipment.order_id)]  # wakes the proactive job


async def test_the_rest_shape_and_graphql_spelling_are_accepted(hook: Hook) -> None:
    await _shipped(hook)
    body = {"fulfillment_event": event(status="ATTEMPTED_DELIVERY", message=None)}
    assert await hook.post(TOPIC, body) == (200, {"status": "ok"})
    assert (await _shipment(hook)).status == ShipmentStatus.FAILED_ATTEMPT
    [scan] = await rows(hook.sessions, TrackingEvent)
    assert scan.message == "ATTEMPTED_DELIVERY"  # no carrier words: Shopify's status is the history line


async def test_a_replayed_event_id_changes_nothing_and_is_logged_once(
        hook: Hook, caplog: pytest.LogCaptureFixture) -> None:
    await _shipped(hook)
    assert (await hook.post(TOPIC, event(), webhook_id="ev-1"))[0] == 200
    # Shopify's own retry (same webhook id) and the same event under another subscription (new webhook id)
    assert await hook.post(TOPIC, event(), webhook_id="ev-1") == (200, {"status": "duplicate"})
    hook.events.clear()
    with caplog.at_level(logging.INFO):
        assert await hook.post(TOPIC, event(message="text edited"), webhook_id="ev-2") == (200, {"status": "ok"})
    assert hook.events == []
    assert len(await rows(hook.sessions, TrackingEvent)) == 1
    assert len(await rows(hook.sessions, ShipmentUpdate)) == 1
    seen = [r for r in caplog.records if "seen before" in r.getMessage()]
    assert len(seen) == 1 and "9007199254741101" in seen[0].getMessage()


async def test_backwards_and_out_of_order_events_never_move_the_parcel_back(
        hook: Hook, caplog: pytest.LogCaptureFixture) -> None:
    await _shipped(hook)
    delivered = event(id=1001, status="delivered", message="Left at front door", happened_at="2025-04-12T14:00:00Z")
    assert (await hook.post(TOPIC, delivered))[0] == 200
    # an older scan arriving late (out of order) and a newer one that goes backwards
    older = event(id=1000, happened_at="2025-04-12T11:00:00Z")
    with caplog.at_level(logging.INFO):
        assert (await hook.post(TOPIC, older))[0] == 200
        backwards = event(id=1002, status="in_transit", message="Return scan", happened_at="2025-04-13T09:00:00Z")
        assert (await hook.post(TOPIC, backwards))[0] == 200
    shipment = await _shipment(hook)
    assert shipment.status == ShipmentStatus.DELIVERED
    assert shipment.delivered_at == datetime(2025, 4, 12, 14, 0, tzinfo=UTC)
    assert sorted(e.external_id for e in await rows(hook.sessions, TrackingEvent)) == ["1000", "1001", "1002"]
    assert [u.status for u in await rows(hook.sessions, ShipmentUpdate)] == ["delivered"]
    logged = [r.getMessage() for r in caplog.records if r.name == "ordersvc.shipment_updates"]
    assert len([m for m in logged if "older than the latest" in m]) == 1
    assert len([m for m in logged if "move back" in m]) == 1


async def test_unknown_fulfillments_change_nothing_and_bad_payloads_are_422(hook: Hook) -> None:
    await _shipped(hook)
    assert await hook.post(TOPIC, event(fulfillment_id=123456)) == (200, {"status": "ok"})
    assert await hook.post(TOPIC, event(order_id=999)) == (200, {"status": "ok"})
    bad_payloads = {"status": event(status=None), "id": event(id=None), "fulfillment_id": event(fulfillment_id=None),
                    "happened_at": event(happened_at="yesterday"), "id:": event(id=1.5), "JSON object": [event()]}
    for field_name, bad in bad_payloads.items():
        status, body = await hook.post(TOPIC, bad)
        assert status == 422 and field_name in body["error"], bad
    assert await rows(hook.sessions, TrackingEvent) == []
    assert (await _shipment(hook)).status == ShipmentStatus.IN_TRANSIT
    assert await rows(hook.sessions, ShipmentUpdate) == []


async def test_a_bad_signature_is_401_before_anything(hook: Hook) -> None:
    await _shipped(hook)
    status, _ = await hook.post(TOPIC, event(), signature=sign(b"{}"))
    assert status == 401
    assert await rows(hook.sessions, TrackingEvent) == []


# ------------------------------------------------------------------ through the real app


@pytest.fixture
async def fake(aiohttp_server: Any) -> FakeTelegram:
    tg = FakeTelegram()
    server = await aiohttp_server(tg.app)
    tg.base_url = str(server.make_url("")).rstrip("/")
    return tg


async def _app(aiohttp_client: Any, fake: FakeTelegram, settings: Any) -> tuple[Any, Any]:
    from shopdesk.app import RUNTIME, build_app

    s = settings.model_copy(update={
        "telegram_token": SecretStr(fake.token), "telegram_webhook_secret": SecretStr("tg-secret_0123456789"),
        "telegram_api_url": fake.ptb_base_url, "telegram_per_chat_per_second": 1000.0,
        "telegram_overall_per_second": 1000.0, "public_url": "https://shop.example",
        "shopify_webhook_secret": SecretStr(SECRET), "shop_timezone": "UTC",
    })
    app = build_app(s, migrate_on_start=False)
    client = await aiohttp_client(app)
    today = datetime.now(UTC)  # a daytime clock: the real time of day must not decide (quiet hours)
    app[RUNTIME].proactive.clock = lambda: datetime(today.year, today.month, today.day, 12, tzinfo=UTC) + timedelta(days=1)
    return app, Hook(client=client, sessions=app[RUNTIME].sessions, secrets=[SECRET])


async def _telegram_customer(sessions: Any, chat: int) -> None:
    async with sessions() as session:  # the customer proved who they are to the bot on Telegram
        customer = (await session.exec(select(Customer))).one()
        contact = Contact(channel=Channel.telegram, external_id=str(chat), display_name="Jon", language="es",
                          customer_id=customer.id, verified_at=datetime.now(UTC))
        session.add(contact)
        await session.flush()
        session.add(Conversation(contact_id=contact.id, channel=Channel.telegram, language="es",
                                 status=ConversationStatus.resolved, resolved_at=datetime.now(UTC)))
        await session.commit()


async def test_a_tracking_event_reaches_the_customer_once(aiohttp_client: Any, fake: FakeTelegram,
                                                          settings: Any) -> None:
    from shopdesk.app import RUNTIME

    app, hook = await _app(aiohttp_client, fake, settings)
    order = fixture("webhook_order_create.json")
    order["shipping_address"]["country_code"] = "PT"  # one zone: Europe/Lisbon
    assert (await hook.post("orders/create", order))[0] == 200
    await _telegram_customer(hook.sessions, 4712)
    assert (await hook.post("fulfillments/create", fixture("webhook_fulfillment.json")))[0] == 200
    eta = (datetime.now(UTC) + timedelta(days=30)).isoformat()  # not late: only the status is news
    assert (await hook.post(TOPIC, event(estimated_delivery_at=eta)))[0] == 200

    [message] = await eventually(lambda: fake.sent_messages(4712), timeout=20)
    assert "https://www.fedex.com/fedextrack/?trknbr=986578788855" in message["text"]
    assert message["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == "intent:track_order"

    # the same event again, an older scan, a step back: nothing more is sent
    assert (await hook.post(TOPIC, event(estimated_delivery_at=eta)))[0] == 200
    assert (await hook.post(TOPIC, event(id=77, status="in_transit", happened_at="2025-04-12T13:00:00Z",
                                                estimated_delivery_at=eta)))[0] == 200
    assert (await hook.post(TOPIC, event(id=78, happened_at="2025-04-11T13:00:00Z", estimated_delivery_at=eta)))[0] == 200
    app[RUNTIME].proactive.wake()
    await asyncio.sleep(0.5)  # give a wrong second message the chance to appear
    assert [m["text"] for m in fake.sent_messages(4712)] == [message["text"]]
    [update] = await rows(hook.sessions, ShipmentUpdate)
    assert update.outcome == "sent"


async def test_a_customer_without_a_channel_gets_nothing_and_it_is_closed(
        aiohttp_client: Any, fake: FakeTelegram, settings: Any, caplog: pytest.LogCaptureFixture) -> None:
    app, hook = await _app(aiohttp_client, fake, settings)
    assert (await hook.post("orders/create", fixture("webhook_order_create.json")))[0] == 200
    assert (await hook.post("fulfillments/create", fixture("webhook_fulfillment.json")))[0] == 200
    eta = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    with caplog.at_level(logging.INFO, logger="inbox.actions.shipment_notify"):
        assert (await hook.post(TOPIC, event(estimated_delivery_at=eta)))[0] == 200
        await eventually(lambda: _closed(hook.sessions), timeout=20)
    [update] = await rows(hook.sessions, ShipmentUpdate)
    assert update.outcome == "no_channel"
    assert len([r for r in caplog.records if "no reachable channel" in r.getMessage()]) == 1
    assert fake.sent_messages(4712) == []


async def _closed(sessions: Any) -> bool:
    return any(u.processed_at is not None for u in await rows(sessions, ShipmentUpdate))

"""GET /metrics: the Prometheus exposition of a real app, read back with prometheus_client's parser.

Counters must move after a widget message (inbound, a bot turn, an outbound send), a Telegram
update and rejected webhooks; the outbox backlog and undeliverable contacts are read from the
database at scrape time; the endpoint is loopback-only without a token and bearer-protected
with one; two apps in one process keep their own registries.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestServer
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from inbox.models import Channel, Contact, Conversation, OutboxMessage, OutboxStatus
from shopdesk.metrics import Metrics, rejection_reason, webhook_source
from tests.fakes.telegram import make_message_update
from tests.test_bad_input import (
    TELEGRAM_SECRET,
    app_settings,
    lift_widget_rate_limit,
    open_widget,
    shopify_headers,
)


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the exposition: (name, sorted labels) -> value."""
    found: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(found: dict[Any, float], name: str, **labels: str) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


async def start(aiohttp_client: Any, settings: Any) -> tuple[Any, Any]:
    from shopdesk.app import build_app

    app = build_app(settings, migrate_on_start=False)
    client = await aiohttp_client(TestServer(app))
    return client, app


async def scrape(client: Any, **headers: str) -> dict[Any, float]:
    resp = await client.get("/metrics", headers=headers)
    assert resp.status == 200, await resp.text()
    assert resp.headers["Content-Type"].startswith("text/plain; version=")
    return samples(await resp.text())


async def eventually(check: Any, timeout: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_counters_move_after_a_widget_message_a_telegram_update_and_rejected_webhooks(
        aiohttp_client: Any, settings: Any) -> None:
    client, app = await start(aiohttp_client, app_settings(settings))
    before = await scrape(client)
    assert value(before, "shopdesk_messages_inbound_total", channel="webchat") == 0
    assert ("shopdesk_outbox_backlog", (("channel", "telegram"),)) in before  # every channel is there from the start

    # a widget message: counted inbound, understood by the bot, answered through the webchat sender
    lift_widget_rate_limit(app)
    ws, _session = await open_widget(client)
    await ws.send_json({"type": "message", "text": "where is my order?", "client_id": "m-1"})

    async def answered() -> bool:
        now = samples(await (await client.get("/metrics")).text())
        return value(now, "shopdesk_messages_outbound_total", channel="webchat", result="sent") >= 1

    await eventually(answered)
    after = await scrape(client)
    assert value(after, "shopdesk_messages_inbound_total", channel="webchat") == 1
    turns = sum(v for (name, _labels), v in after.items() if name == "shopdesk_bot_turns_total")
    assert turns == 1
    assert value(after, "shopdesk_bot_understanding_seconds_count") == 1
    handled = sum(v for (name, _labels), v in after.items() if name == "shopdesk_bot_handler_seconds_count")
    assert handled == 1
    await ws.close()

    # a Telegram update (the Bot API is a closed port here: the reply waits for a retry)
    update = make_message_update(9001, 4242, "hello there", first_name="Ann")
    resp = await client.post("/webhooks/telegram", json=update,
                             headers={"X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET})
    assert resp.status == 200
    # the same update again: a duplicate, not counted twice
    resp = await client.post("/webhooks/telegram", json=update,
                             headers={"X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET})
    assert resp.status == 200
    # rejected webhooks: a wrong Telegram secret, a forged Shopify signature, a body that is not JSON
    resp = await client.post("/webhooks/telegram", json=update, headers={"X-Telegram-Bot-Api-Secret-Token": "nope"})
    assert resp.status == 403
    body = b'{"id": 1}'
    resp = await client.post("/webhooks/shopify", data=body, headers=shopify_headers(body, secret="forged"))
    assert resp.status == 401
    resp = await client.post("/webhooks/telegram", data=b"{not json",
                             headers={"X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET,
                                      "Content-Type": "application/json"})
    assert resp.status == 400

    last = await scrape(client)
    assert value(last, "shopdesk_messages_inbound_total", channel="telegram") == 1
    assert value(last, "shopdesk_webhook_rejections_total", source="telegram", reason="signature") == 1
    assert value(last, "shopdesk_webhook_rejections_total", source="shopify", reason="signature") == 1
    assert value(last, "shopdesk_webhook_rejections_total", source="telegram", reason="malformed") == 1


async def test_backlog_oldest_age_and_undeliverable_contacts_come_from_the_database(
        aiohttp_client: Any, settings: Any, sessions: Any) -> None:
    client, _app = await start(aiohttp_client, settings)
    now = datetime.now(UTC)
    async with sessions() as db:
        blocked = Contact(channel=Channel.telegram, external_id="77", undeliverable_at=now)
        fine = Contact(channel=Channel.telegram, external_id="78")
        db.add_all([blocked, fine])
        await db.flush()
        conversation = Conversation(contact_id=fine.id, channel=Channel.telegram)
        db.add(conversation)
        await db.flush()
        for minutes, status in ((30, OutboxStatus.pending), (5, OutboxStatus.pending), (90, OutboxStatus.sent)):
            db.add(OutboxMessage(conversation_id=conversation.id, contact_id=fine.id, channel=Channel.telegram,
                                 payload={"text": "x"}, status=status, created_at=now - timedelta(minutes=minutes),
                                 next_attempt_at=now + timedelta(hours=1)))
        await db.commit()

    found = await scrape(client)
    assert value(found, "shopdesk_outbox_backlog", channel="telegram") == 2
    age = value(found, "shopdesk_outbox_oldest_age_seconds", channel="telegram")
    assert 30 * 60 - 5 <= age <= 30 * 60 + 600  # the pending row of 30 minutes ago, not the sent one
    assert value(found, "shopdesk_outbox_backlog", channel="webchat") == 0
    assert value(found, "shopdesk_contacts_undeliverable", channel="telegram") == 1


async def test_without_a_token_only_direct_loopback_requests_are_answered(aiohttp_client: Any,
                                                                          settings: Any) -> None:
    client, _app = await start(aiohttp_client, settings)
    assert (await client.get("/metrics")).status == 200
    for header in ("X-Forwarded-For", "Forwarded", "X-Real-IP"):
        resp = await client.get("/metrics", headers={header: "203.0.113.9"})
        assert resp.status == 403, header
        assert "SHOPDESK_METRICS_TOKEN" in (await resp.json())["error"]


async def test_with_a_token_a_bearer_header_is_required(aiohttp_client: Any, settings: Any) -> None:
    token = "metrics-token-0123456789"
    client, _app = await start(aiohttp_client, settings.model_copy(update={"metrics_token": SecretStr(token)}))
    assert (await client.get("/metrics")).status == 401
    assert (await client.get("/metrics", headers={"Authorization": "Bearer wrong"})).status == 401
    assert (await client.get("/metrics", headers={"Authorization": token})).status == 401
    resp = await client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert resp.status == 200
    assert "shopdesk_messages_inbound_total" in await resp.text()
    # behind a proxy, with the token: fine
    resp = await client.get("/metrics", headers={"Authorization": f"Bearer {token}", "X-Forwarded-For": "203.0.113.9"})
    assert resp.status == 200


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_two_apps_keep_their_own_registries(aiohttp_client: Any, settings: Any) -> None:
    first, _ = await start(aiohttp_client, app_settings(settings))
    second, _ = await start(aiohttp_client, app_settings(settings))
    resp = await first.post("/webhooks/telegram", json={}, headers={"X-Telegram-Bot-Api-Secret-Token": "no"})
    assert resp.status == 403
    assert value(await scrape(first), "shopdesk_webhook_rejections_total", source="telegram", reason="signature") == 1
    assert value(await scrape(second), "shopdesk_webhook_rejections_total", source="telegram", reason="signature") == 0


def test_labels_are_bounded() -> None:
    assert webhook_source("/webhooks/telegram") == "telegram"
    assert webhook_source("/webhooks/telegram/") == "telegram"
    assert webhook_source("/inbox") is None
    assert [rejection_reason(s) for s in (400, 401, 403, 413, 422, 503, 418)] == [
        "malformed", "signature", "signature", "too_large", "invalid", "unavailable", "418"]
    metrics = Metrics()

    class Stats:
        intent = "x" * 500
        understanding_seconds = 0.01
        handler_seconds = 0.02
        outcome = "escalated"
        escalation_reason = "negative"

    metrics.on_turn(Stats())
    body, content_type = metrics.exposition("")
    assert content_type.startswith("text/plain")
    text = body.decode()
    assert 'intent="' + "x" * 32 + '"' in text and "x" * 33 not in text
    assert json.dumps(text)  # plain text


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_openmetrics_when_the_scraper_asks_for_it(aiohttp_client: Any, settings: Any) -> None:
    from prometheus_client.openmetrics.parser import text_string_to_metric_families as openmetrics_families

    client, _app = await start(aiohttp_client, settings)
    resp = await client.get("/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"})
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("application/openmetrics-text")
    text = await resp.text()
    assert text.rstrip().endswith("# EOF")
    names = {family.name for family in openmetrics_families(text)}
    assert {"shopdesk_messages_inbound", "shopdesk_outbox_backlog", "shopdesk_bot_handler_seconds"} <= names


def test_a_failed_turn_counts_as_failed_with_its_escalation() -> None:
    from bot.pipeline import TurnStats

    metrics = Metrics()
    metrics.on_turn(TurnStats(intent="wismo", understanding_seconds=None, handler_seconds=0.0, outcome="failed",
                              escalation_reason="bot_error"))
    metrics.on_turn(TurnStats(intent="wismo", understanding_seconds=0.002, handler_seconds=0.03, outcome="answered"))
    found = samples(metrics.exposition("")[0].decode())
    assert value(found, "shopdesk_bot_turns_total", intent="wismo", outcome="failed") == 1
    assert value(found, "shopdesk_bot_turns_total", intent="wismo", outcome="answered") == 1
    assert value(found, "shopdesk_escalations_total", intent="wismo", reason="bot_error") == 1
    assert value(found, "shopdesk_bot_handler_seconds_count", intent="wismo") == 1  # a failure has no handler time
    assert value(found, "shopdesk_bot_understanding_seconds_count") == 1

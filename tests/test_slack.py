"""The Slack connector against the loopback Web API fake, with properly signed requests.

Signed event, interactivity and slash-command bodies go through our aiohttp route into
slack-bolt; alerts go out through slack_sdk's AsyncWebClient to ``FakeSlack``. The inbox is
real (store, event bus, outbox), on SQLite and PostgreSQL; a thread reply is delivered all
the way to ``FakeTelegram`` by the real outbox dispatcher and the Telegram sender.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from aiohttp import web
from pydantic import SecretStr

from bot.connectors import build_connectors
from bot.connectors.slack import EVENTS_PATH, SlackConnector, link_slack_user
from bot.connectors.slack import blocks as sb
from bot.connectors.slack import connector as slack_connector
from bot.connectors.telegram import SendPacer, TelegramSender, make_bot
from inbox.actions.conversation_escalate import conversation_escalate
from inbox.actions.message_mark_processed import message_mark_processed
from inbox.actions.message_record import message_record
from inbox.actions.message_send import agent_reply
from inbox.channels import SenderRegistry
from inbox.events import Event, EventBus, collect
from inbox.messages import InboundMessage
from inbox.models import (
    Agent,
    AuditEvent,
    Author,
    Channel,
    Conversation,
    ConversationStatus,
    ExternalThread,
    Message,
    OutboxMessage,
    Priority,
)
from inbox.outbox import OutboxDispatcher
from ordersvc.models import ReturnAuthorization, ReturnLine, ReturnMethod, RmaStatus
from shopbase.dedupe import WebhookDelivery
from tests.db_helpers import count, eventually, rows
from tests.fakes import slack as fs
from tests.fakes.slack import FakeSlack
from tests.fakes.telegram import FakeTelegram
from tests.ordersvc_builders import make_customer, make_order, make_shipment

SIGNING_SECRET = "slack-signing-secret-for-tests"
ALERTS = "C0ALERTS"


# --------------------------------------------------------------------------- helpers





def slack_settings(settings: Any, fake: FakeSlack, **extra: Any) -> Any:
    values = {
        "slack_bot_token": SecretStr(fake.token),
        "slack_signing_secret": SecretStr(SIGNING_SECRET),
        "slack_alert_channel": ALERTS,
        "slack_api_url": fake.api_url,
        "public_url": "https://desk.example",
    }
    values.update(extra)
    return settings.model_copy(update=values)


@dataclass
class Env:
    fake: FakeSlack
    client: Any
    connector: SlackConnector
    sessions: Any
    bus: EventBus
    dispatcher: OutboxDispatcher

    async def post(self, body: bytes, *, secret: str = SIGNING_SECRET, timestamp: int | None = None,
                   extra_headers: dict[str, str] | None = None) -> Any:
        headers = fs.signed_headers(secret, body, timestamp)
        headers.update(extra_headers or {})
        return await self.client.post(EVENTS_PATH, data=body, headers=headers)

    async def idle(self) -> None:
        """Every committed event published and every Slack notice delivered or given up."""
        await self.bus.wait_idle()
        await self.dispatcher.wait_idle(Channel.slack)

    async def alert(self, conversation_id: int | None, data: dict[str, Any]) -> None:
        """Raise an alert the way the bot does: collected in a transaction, announced after commit."""
        async with self.sessions() as s:
            collect(s, Event("alert", conversation_id, data))
            await s.commit()

    def alerts(self) -> list[dict[str, Any]]:
        return [m for m in self.fake.posted_messages(ALERTS) if not m.get("thread_ts")]

    def thread(self, ts: str) -> list[dict[str, Any]]:
        return [m for m in self.fake.posted_messages(ALERTS) if m.get("thread_ts") == ts]


@pytest.fixture
async def lite_sessions(sqlite_url: str) -> Any:
    from shopdesk.db import create_engine, session_maker

    engine = create_engine(sqlite_url)
    yield session_maker(engine)
    await engine.dispose()


@pytest.fixture
async def fake(aiohttp_server: Any) -> FakeSlack:
    slack = FakeSlack(users={"ana@shop.test": "U0ANA", "bo@shop.test": "U0BO", "stranger@else.test": "U0STRANGER"})
    server = await aiohttp_server(slack.app)
    slack.base_url = str(server.make_url("")).rstrip("/")
    return slack


def slack_dispatcher(sessions: Any, bus: EventBus, connector: SlackConnector) -> OutboxDispatcher:
    """The outbox dispatcher as the app runs it, with the Slack alert sender registered."""
    senders = SenderRegistry()
    senders.register(connector.sender)
    return OutboxDispatcher(sessions, senders, bus, poll_interval=0.2)


async def make_env(aiohttp_client: Any, fake: FakeSlack, settings: Any, sessions: Any, **options: Any) -> Env:
    bus = EventBus()
    connector = SlackConnector(settings=settings, sessions=sessions, bus=bus, **options)
    dispatcher = slack_dispatcher(sessions, bus, connector)
    app = web.Application()
    connector.setup_routes(app)

    async def lifecycle(_app: web.Application) -> Any:
        await connector.start()
        dispatcher.start()
        yield
        await dispatcher.stop(timeout=5)
        await connector.stop()

    app.cleanup_ctx.append(lifecycle)
    client = await aiohttp_client(app)
    return Env(fake, client, connector, sessions, bus, dispatcher)


@pytest.fixture
async def env(aiohttp_client: Any, fake: FakeSlack, settings: Any, sessions: Any) -> Env:
    return await make_env(aiohttp_client, fake, slack_settings(settings, fake), sessions)


async def add_agent(sessions: Any, email: str, name: str, **fields: Any) -> Agent:
    async with sessions() as s:
        agent = Agent(email=email, name=name, password_hash="x", **fields)
        s.add(agent)
        await s.commit()
        return agent


async def customer_conversation(sessions: Any, *, channel: Channel = Channel.telegram, external_id: str = "42",
                                text: str = "my parcel never arrived", name: str = "Lan") -> int:
    result = await message_record(
        sessions, InboundMessage(channel=channel, dedupe_key=f"k-{external_id}-{time.monotonic_ns()}",
                                 contact_external_id=external_id, text=text, display_name=name))
    async with sessions() as s:
        await message_mark_processed(s, result.message_id)
        await s.commit()
    return result.conversation_id


async def escalate(env: Env, conversation_id: int, *, summary: str = "reason: complaint; parcel lost",
                   order_id: int | None = None, intent: str = "complaint") -> dict[str, Any]:
    async with env.sessions() as s:
        conversation = await s.get(Conversation, conversation_id)
        conversation.last_intent = intent
        if order_id is not None:
            conversation.bot_state = {"slots": {"order_id": order_id}}
        await conversation_escalate(s, conversation, priority=Priority.high, summary=summary, reason="complaint")
        await s.commit()
    await env.idle()
    [alert] = [a for a in env.alerts() if any(
        b.get("type") == "header" and f"#{conversation_id}" in b["text"]["text"] for b in a.get("blocks", []))]
    return alert


def buttons(message: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["action_id"]: e for b in message.get("blocks", []) if b["type"] == "actions" for e in b["elements"]}


def texts(message: dict[str, Any]) -> str:
    return json.dumps(message.get("blocks", []), ensure_ascii=False)


# --------------------------------------------------------------------------- alerts


async def test_escalation_posts_an_alert_with_order_card_and_buttons(env: Env) -> None:
    async with env.sessions() as s:
        customer = await make_customer(s, first_name="Lan", last_name="Nguyễn", email="lan@example.com")
        order, lines = await make_order(s, name="#1001", customer=customer)
        await make_shipment(s, order, lines=[(lines[0], 1)])
        await s.commit()
    conversation_id = await customer_conversation(env.sessions, name="Lan <!channel>")
    alert = await escalate(env, conversation_id, order_id=order.id)

    body = texts(alert)
    assert f"Needs a person: conversation #{conversation_id}" in body
    assert "Lan &lt;!channel&gt;" in body  # customer text cannot ping the channel
    assert "reason: complaint; parcel lost" in body and "complaint" in body
    assert "#1001" in body and "1Z5R89390357567127" in body and "Item TEE-M" in body
    assert "lan@example.com" not in body  # no customer email in Slack
    found = buttons(alert)
    assert set(found) == {sb.ACTION_CLAIM, sb.ACTION_RESOLVE, sb.ACTION_OPEN}
    assert found[sb.ACTION_OPEN]["url"] == f"https://desk.example/inbox/c/{conversation_id}"
    assert found[sb.ACTION_CLAIM]["value"] == str(conversation_id)
    [thread] = await rows(env.sessions, ExternalThread)
    assert (thread.kind, thread.channel_ref, thread.thread_ref, thread.conversation_id, thread.purpose) == (
        "slack", ALERTS, alert["ts"], conversation_id, "escalation")


async def test_second_escalation_goes_into_the_same_thread(env: Env) -> None:
    conversation_id = await customer_conversation(env.sessions)
    alert = await escalate(env, conversation_id)
    async with env.sessions() as s:
        conversation = await s.get(Conversation, conversation_id)
        await conversation_escalate(s, conversation, priority=Priority.urgent, summary="again", reason="bot_error")
        await s.commit()
    await env.idle()
    assert len(env.alerts()) == 1
    assert "Escalated again (bot_error)" in env.thread(alert["ts"])[0]["text"]
    assert await count(env.sessions, ExternalThread) == 1


async def test_shipment_and_other_alerts(env: Env) -> None:
    async with env.sessions() as s:
        order, _ = await make_order(s, name="#2002")
        await s.commit()
    for data in (
        {"kind": "late_shipment", "order_id": order.id, "order_name": "#2002",
         "shipments": [{"tracking_number": "1Z999", "status": "in_transit", "carrier": "UPS"}]},
        {"kind": "shipment_exception", "order_id": order.id, "order_name": "#2002",
         "shipments": [{"tracking_number": "1Z998", "status": "exception", "carrier": "UPS"}]},
        {"kind": "low_stock", "sku": "TEE-M", "available": 2},
        {"kind": "escalation"},  # announced by conversation.escalated, never twice
    ):
        await env.alert(None, data)
    await env.idle()
    posted = env.alerts()
    assert [m["text"] for m in posted] == ["Late shipment: #2002", "Shipment problem: #2002", "Low stock: TEE-M"]
    assert "1Z999" in texts(posted[0]) and "In transit" in texts(posted[0])
    assert "Available 2" in texts(posted[2])


async def test_alert_about_an_escalated_conversation_goes_into_its_thread(env: Env) -> None:
    conversation_id = await customer_conversation(env.sessions)
    alert = await escalate(env, conversation_id)
    await env.alert(conversation_id, {"kind": "late_shipment", "order_name": "#3", "shipments": []})
    await env.idle()
    assert len(env.alerts()) == 1
    assert env.thread(alert["ts"])[0]["text"] == "Late shipment: #3"


async def test_rate_limited_post_waits_retry_after(env: Env) -> None:
    env.fake.fail_next("chat.postMessage", 429, retry_after=1)
    conversation_id = await customer_conversation(env.sessions)
    started = time.monotonic()
    await escalate(env, conversation_id)
    assert time.monotonic() - started >= 0.9  # the client slept Retry-After before trying again
    assert [c.status for c in env.fake.calls_for("chat.postMessage")] == [429, 200]
    assert await count(env.sessions, ExternalThread) == 1


async def test_no_alert_channel_means_no_alerts(aiohttp_client: Any, fake: FakeSlack, settings: Any,
                                                sessions: Any) -> None:
    env = await make_env(aiohttp_client, fake, slack_settings(settings, fake, slack_alert_channel=None), sessions)
    conversation_id = await customer_conversation(sessions)
    async with sessions() as s:
        await conversation_escalate(s, await s.get(Conversation, conversation_id), priority="high", summary="x", reason="y")
        await s.commit()
    await env.idle()
    assert fake.calls_for("chat.postMessage") == []


# --------------------------------------------------------------------------- alerts while Slack is unavailable


def dead_api_url() -> str:
    """A Slack API base URL on a loopback port nobody listens on (connections are refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}/api/"


async def escalate_now(sessions: Any, conversation_id: int) -> None:
    """Escalate without waiting for the alert (Slack may be down)."""
    async with sessions() as s:
        conversation = await s.get(Conversation, conversation_id)
        await conversation_escalate(s, conversation, priority=Priority.high, summary="parcel lost", reason="complaint")
        await s.commit()


async def customer_writes(sessions: Any, external_id: str, text: str) -> None:
    await message_record(sessions, InboundMessage(channel=Channel.telegram, dedupe_key=f"later-{text}",
                                                        contact_external_id=external_id, text=text))


def slack_lines(caplog: Any, level: int = logging.WARNING) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name.startswith("shopdesk.slack") and r.levelno >= level]


def assert_quiet_logs(caplog: Any, fake: FakeSlack) -> None:
    """One line per record: no traceback anywhere, no token."""
    assert [r.getMessage() for r in caplog.records if r.exc_info or r.exc_text] == []
    assert "Traceback" not in caplog.text
    assert all("\n" not in line for line in slack_lines(caplog, logging.DEBUG))
    assert fake.token not in caplog.text


async def test_escalation_alert_waits_out_server_errors_and_keeps_its_thread_in_order(
        aiohttp_client: Any, fake: FakeSlack, lite_settings: Any, lite_sessions: Any, caplog: Any) -> None:
    caplog.set_level(logging.INFO)
    sessions = lite_sessions
    env = await make_env(aiohttp_client, fake, slack_settings(lite_settings, fake), sessions, retry_base=0.05)
    # four 503s: slack_sdk's own two retries give up, so the connector must keep the alert
    fake.fail_next("chat.postMessage", 503, times=4)
    conversation_id = await customer_conversation(sessions, external_id="88", name="Lan")
    await escalate_now(sessions, conversation_id)
    await customer_writes(sessions, "88", "Still waiting for my parcel")  # queued behind the alert
    await env.idle()

    [alert] = env.alerts()  # posted once the API answered again, exactly once
    assert f"conversation #{conversation_id}" in texts(alert)
    [mirrored] = env.thread(alert["ts"])  # the later update landed in its thread, after it
    assert "Still waiting for my parcel" in mirrored["text"]
    assert [c.status for c in fake.calls_for("chat.postMessage")] == [503, 503, 503, 503, 200, 200]
    [thread] = await rows(sessions, ExternalThread)
    assert thread.thread_ref == alert["ts"]
    assert any("unavailable" in line and "fatal_error (HTTP 503)" in line for line in slack_lines(caplog))
    assert slack_lines(caplog, logging.ERROR) == []
    assert_quiet_logs(caplog, fake)


async def test_escalation_alert_is_posted_once_refused_connections_stop(
        aiohttp_client: Any, fake: FakeSlack, lite_settings: Any, lite_sessions: Any, caplog: Any) -> None:
    caplog.set_level(logging.INFO)
    sessions = lite_sessions
    env = await make_env(aiohttp_client, fake, slack_settings(lite_settings, fake, slack_api_url=dead_api_url()),
                         sessions, retry_base=0.05)
    conversation_id = await customer_conversation(sessions, external_id="89")
    await escalate_now(sessions, conversation_id)
    await customer_writes(sessions, "89", "Hello? Anyone there?")
    await eventually(lambda: any("ClientConnectorError" in line for line in slack_lines(caplog)))
    assert fake.calls == []

    env.connector.client.base_url = fake.api_url  # Slack is reachable again
    env.connector.sender.client.base_url = fake.api_url  # (the outbox's client: no inline 429 waits)
    await env.idle()
    [alert] = env.alerts()
    assert f"conversation #{conversation_id}" in texts(alert)
    [mirrored] = env.thread(alert["ts"])
    assert "Hello? Anyone there?" in mirrored["text"]
    assert [c.status for c in fake.calls_for("chat.postMessage")] == [200, 200]
    assert await count(sessions, ExternalThread) == 1
    assert any("reachable again" in line for line in slack_lines(caplog, logging.INFO))
    assert_quiet_logs(caplog, fake)


async def test_alert_still_rate_limited_after_the_clients_retries_is_kept(
        aiohttp_client: Any, fake: FakeSlack, lite_settings: Any, lite_sessions: Any, caplog: Any) -> None:
    env = await make_env(aiohttp_client, fake, slack_settings(lite_settings, fake), lite_sessions, retry_base=0.01)
    fake.fail_next("chat.postMessage", 429, retry_after=0, times=4)  # the client waits out two of them
    await env.alert(None, {"kind": "low_stock", "sku": "TEE-M", "available": 2})
    await env.idle()
    assert [m["text"] for m in env.alerts()] == ["Low stock: TEE-M"]
    assert [c.status for c in fake.calls_for("chat.postMessage")] == [429, 429, 429, 429, 200]
    assert any("ratelimited (HTTP 429)" in line for line in slack_lines(caplog))
    assert_quiet_logs(caplog, fake)


@pytest.mark.parametrize("code", ["channel_not_found", "invalid_auth", "not_in_channel"])
async def test_permanent_slack_error_drops_the_alert_with_one_line(
        aiohttp_client: Any, fake: FakeSlack, lite_settings: Any, lite_sessions: Any, caplog: Any, code: str) -> None:
    caplog.set_level(logging.INFO)
    env = await make_env(aiohttp_client, fake, slack_settings(lite_settings, fake), lite_sessions, retry_base=0.01)
    fake.fail_next("chat.postMessage", error=code)  # only once: a retry would succeed and show up
    await env.alert(None, {"kind": "low_stock", "sku": "TEE-M", "available": 2})
    await env.idle()
    await asyncio.sleep(0.2)
    assert len(fake.calls_for("chat.postMessage")) == 1 and env.alerts() == []
    [line] = slack_lines(caplog)
    assert code in line and "dropped" in line

    await env.alert(None, {"kind": "low_stock", "sku": "TEE-L", "available": 1})
    await env.idle()  # the next alert goes out as usual
    assert [m["text"] for m in env.alerts()] == ["Low stock: TEE-L"]
    assert len(fake.calls_for("chat.postMessage")) == 2
    assert_quiet_logs(caplog, fake)


async def test_alert_is_given_up_with_one_error_when_slack_stays_down(
        aiohttp_client: Any, fake: FakeSlack, lite_settings: Any, lite_sessions: Any, caplog: Any) -> None:
    caplog.set_level(logging.INFO)
    env = await make_env(aiohttp_client, fake, slack_settings(lite_settings, fake), lite_sessions,
                         retry_base=0.01, retry_cap=0.2, retry_give_up=2.0)  # room for a retry on a loaded machine
    fake.fail_next("chat.postMessage", 502, times=10_000)
    await env.alert(None, {"kind": "low_stock", "sku": "TEE-M", "available": 2})
    await env.idle()
    attempts = len(fake.calls_for("chat.postMessage"))
    assert 2 <= attempts <= 60  # retried with backoff, not in a tight loop
    [error] = slack_lines(caplog, logging.ERROR)
    assert "gave up" in error and "HTTP 502" in error
    await asyncio.sleep(0.2)
    assert len(fake.calls_for("chat.postMessage")) == attempts  # and then left alone

    fake.clear_faults()
    await env.alert(None, {"kind": "low_stock", "sku": "TEE-L", "available": 1})
    await env.idle()
    assert [m["text"] for m in env.alerts()] == ["Low stock: TEE-L"]
    assert_quiet_logs(caplog, fake)


async def test_stop_does_not_wait_out_the_backoff(aiohttp_client: Any, fake: FakeSlack, lite_settings: Any,
                                                  lite_sessions: Any, caplog: Any) -> None:
    env = await make_env(aiohttp_client, fake, slack_settings(lite_settings, fake), lite_sessions, retry_base=600)
    fake.fail_next("chat.postMessage", 502, times=100)
    await env.alert(None, {"kind": "low_stock", "sku": "TEE-M", "available": 2})
    await eventually(lambda: any("retrying in 600 s" in line for line in slack_lines(caplog)))
    await asyncio.wait_for(env.dispatcher.stop(), timeout=30)  # well before the 600 s wait ends
    await asyncio.wait_for(env.connector.stop(), timeout=30)
    assert any("1 alert(s) not posted at shutdown" in line for line in slack_lines(caplog))
    assert len(fake.calls_for("chat.postMessage")) == 1
    [kept] = await rows(lite_sessions, OutboxMessage, OutboxMessage.channel == Channel.slack)
    assert (kept.status, kept.contact_id) == ("pending", None)  # kept in the database for the next start
    assert_quiet_logs(caplog, fake)


async def test_alert_raised_while_slack_is_down_is_posted_after_a_restart(
        aiohttp_client: Any, fake: FakeSlack, settings: Any, sessions: Any, caplog: Any) -> None:
    """The alert lives in the outbox, not in a process: a new dispatcher over the same database
    posts it once Slack is back, with the later thread update after it."""
    caplog.set_level(logging.INFO)
    first = await make_env(aiohttp_client, fake, slack_settings(settings, fake, slack_api_url=dead_api_url()),
                           sessions, retry_base=0.05)
    conversation_id = await customer_conversation(sessions, external_id="90")
    await escalate_now(sessions, conversation_id)
    await customer_writes(sessions, "90", "Is anyone reading this?")
    await eventually(lambda: any("unavailable" in line for line in slack_lines(caplog)))
    await first.dispatcher.stop()  # the process goes away with both notices undelivered
    await first.connector.stop()
    assert fake.calls == []
    kept = await rows(sessions, OutboxMessage, OutboxMessage.channel == Channel.slack)
    assert [(r.status, r.conversation_id, r.contact_id) for r in kept] == [("pending", conversation_id, None)] * 2

    # a new process: its own bus, connector and dispatcher; same database; Slack is reachable
    second = await make_env(aiohttp_client, fake, slack_settings(settings, fake), sessions, retry_base=0.05)
    await second.idle()
    [alert] = second.alerts()
    assert f"conversation #{conversation_id}" in texts(alert)
    [mirrored] = second.thread(alert["ts"])
    assert "Is anyone reading this?" in mirrored["text"]
    assert [c.status for c in fake.calls_for("chat.postMessage")] == [200, 200]  # each posted once
    [thread] = await rows(sessions, ExternalThread)
    assert thread.thread_ref == alert["ts"]
    assert [r.status for r in await rows(sessions, OutboxMessage, OutboxMessage.channel == Channel.slack)] == [
        "sent", "sent"]


async def test_an_update_posted_before_a_failure_is_not_posted_again(env: Env) -> None:
    """Escalated again: the thread line reaches Slack, the alert's refresh fails; the retry only refreshes."""
    conversation_id = await customer_conversation(env.sessions)
    alert = await escalate(env, conversation_id)
    env.fake.fail_next("chat.update", 503, times=3)  # more than the client's own retries
    async with env.sessions() as s:
        conversation = await s.get(Conversation, conversation_id)
        await conversation_escalate(s, conversation, priority=Priority.urgent, summary="again", reason="bot_error")
        await s.commit()
    await env.idle()
    assert [m["text"] for m in env.thread(alert["ts"])] == [":rotating_light: Escalated again (bot_error)."]
    assert [c.status for c in env.fake.calls_for("chat.update")][-1] == 200


# --------------------------------------------------------------------------- buttons


async def test_claim_assigns_the_linked_agent_and_updates_the_alert(env: Env) -> None:
    ana = await add_agent(env.sessions, "Ana@Shop.test", "Ana")
    conversation_id = await customer_conversation(env.sessions)
    alert = await escalate(env, conversation_id)
    body = fs.block_actions_body(sb.ACTION_CLAIM, str(conversation_id), "U0ANA", ALERTS, alert["ts"])
    resp = await env.post(body)
    assert resp.status == 200

    async def assigned() -> bool:
        async with env.sessions() as s:
            return (await s.get(Conversation, conversation_id)).assignee_id == ana.id
    await eventually(assigned)
    await env.idle()
    [linked] = await rows(env.sessions, Agent)
    assert linked.slack_user_id == "U0ANA"  # matched by email (users.info), case-insensitively
    updated = env.fake.posted_messages(ALERTS)[0]
    assert "Claimed (assigned to Ana (&lt;@U0ANA&gt;))" not in texts(updated)
    assert "Claimed (assigned to Ana (<@U0ANA>))" in texts(updated)

    # the very same click again (a replayed body) has no second effect
    assert (await env.post(body)).status == 200
    await asyncio.sleep(0.2)
    assert await count(env.sessions, AuditEvent, AuditEvent.action == "conversation.claimed") == 1
    assert await count(env.sessions, WebhookDelivery, WebhookDelivery.source == "slack") == 1


async def test_claim_by_a_second_agent_is_refused_politely(env: Env) -> None:
    ana = await add_agent(env.sessions, "ana@shop.test", "Ana", slack_user_id="U0ANA")
    await add_agent(env.sessions, "bo@shop.test", "Bo")
    conversation_id = await customer_conversation(env.sessions)
    alert = await escalate(env, conversation_id)
    await env.post(fs.block_actions_body(sb.ACTION_CLAIM, str(conversation_id), "U0ANA", ALERTS, alert["ts"]))
    await eventually(lambda: count(env.sessions, AuditEvent, AuditEvent.action == "conversation.claimed"))
    await env.post(fs.block_actions_body(sb.ACTION_CLAIM, str(conversation_id), "U0BO", ALERTS, alert["ts"]))
    await eventually(lambda: env.fake.ephemeral)
    assert env.fake.ephemeral[0]["user"] == "U0BO" and "Ana has this conversation already" in env.fake.ephemeral[0]["text"]
    async with env.sessions() as s:
        assert (await s.get(Conversation, conversation_id)).assignee_id == ana.id


async def test_unknown_slack_user_gets_a_link_hint_and_nothing_changes(env: Env) -> None:
    conversation_id = await customer_conversation(env.sessions)
    alert = await escalate(env, conversation_id)
    await env.post(fs.block_actions_body(sb.ACTION_CLAIM, str(conversation_id), "U0STRANGER", ALERTS, alert["ts"]))
    await eventually(lambda: env.fake.ephemeral)
    assert "link your Slack account" in env.fake.ephemeral[0]["text"]
    async with env.sessions() as s:
        assert (await s.get(Conversation, conversation_id)).assignee_id is None
    assert await count(env.sessions, WebhookDelivery) == 0


async def test_button_that_does_not_belong_to_its_alert_is_ignored(env: Env) -> None:
    await add_agent(env.sessions, "ana@shop.test", "Ana", slack_user_id="U0ANA")
    first = await customer_conversation(env.sessions, external_id="1")
    second = await customer_conversation(env.sessions, external_id="2")
    alert = await escalate(env, first)
    for value in (str(second), "abc", "", "-1"):
        resp = await env.post(fs.block_actions_body(sb.ACTION_CLAIM, value, "U0ANA", ALERTS, alert["ts"]))
        assert resp.status == 200
    resp = await env.post(fs.block_actions_body(sb.ACTION_RESOLVE, str(first), "U0ANA", ALERTS, "1.000"))
    assert resp.status == 200
    await asyncio.sleep(0.2)
    async with env.sessions() as s:
        assert (await s.get(Conversation, second)).assignee_id is None
        assert (await s.get(Conversation, first)).status != ConversationStatus.resolved
    assert await count(env.sessions, WebhookDelivery) == 0


async def test_resolve_button(env: Env) -> None:
    await add_agent(env.sessions, "ana@shop.test", "Ana", slack_user_id="U0ANA")
    conversation_id = await customer_conversation(env.sessions)
    alert = await escalate(env, conversation_id)
    await env.post(fs.block_actions_body(sb.ACTION_RESOLVE, str(conversation_id), "U0ANA", ALERTS, alert["ts"]))

    async def resolved() -> bool:
        async with env.sessions() as s:
            return (await s.get(Conversation, conversation_id)).status == ConversationStatus.resolved
    await eventually(resolved)
    await env.idle()
    updated = env.fake.posted_messages(ALERTS)[0]
    assert set(buttons(updated)) == {sb.ACTION_OPEN}
    assert "Resolved" in texts(updated)


async def test_open_in_inbox_click_is_acknowledged(env: Env) -> None:
    resp = await env.post(fs.block_actions_body(sb.ACTION_OPEN, "open", "U0ANA", ALERTS, "1.0"))
    assert resp.status == 200


# --------------------------------------------------------------------------- threads


async def test_thread_reply_reaches_the_customer_as_the_agents_reply(env: Env, telegram: FakeTelegram,
                                                                      settings: Any) -> None:
    ana = await add_agent(env.sessions, "ana@shop.test", "Ana")
    conversation_id = await customer_conversation(env.sessions, external_id="4242")
    alert = await escalate(env, conversation_id)
    event = fs.message_event(ALERTS, "U0ANA", "So sorry! A new parcel &amp; a <https://t.example/1|tracking link>",
                             "1700000500.000100", thread_ts=alert["ts"])
    body = fs.event_callback_body(event, event_id="Ev0REPLY")
    first = await asyncio.gather(*(env.post(body) for _ in range(3)))  # delivered three times at once
    assert [r.status for r in first] == [200, 200, 200]

    to_customer = OutboxMessage.channel == Channel.telegram  # (the Slack alert went through the outbox too)
    await eventually(lambda: count(env.sessions, OutboxMessage, to_customer))
    [row] = await rows(env.sessions, OutboxMessage, to_customer)
    assert row.channel == Channel.telegram and row.payload["text"] == (
        "So sorry! A new parcel & a tracking link (https://t.example/1)")
    [reply] = await rows(env.sessions, Message, Message.direction == "out")
    assert (reply.author, reply.agent_id, reply.is_internal) == (Author.agent, ana.id, False)
    async with env.sessions() as s:
        conversation = await s.get(Conversation, conversation_id)
        assert conversation.assignee_id == ana.id and conversation.first_response_at is not None

    # Slack's later retries of the same event change nothing either
    retry = {"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}
    for _ in range(2):
        assert (await env.post(body, extra_headers=retry)).status == 200
    await asyncio.sleep(0.3)
    assert await count(env.sessions, OutboxMessage, to_customer) == 1
    assert await count(env.sessions, AuditEvent, AuditEvent.action == "message.agent_reply") == 1

    # and the outbox delivers it through the real Telegram sender
    tg_settings = settings.model_copy(update={"telegram_token": SecretStr(telegram.token),
                                              "telegram_api_url": telegram.ptb_base_url})
    bot = make_bot(tg_settings)
    senders = SenderRegistry()
    senders.register(TelegramSender(bot, SendPacer(100, 100), public_url="https://desk.example", token=telegram.token))
    try:
        await OutboxDispatcher(env.sessions, senders, env.bus).run_once()
    finally:
        await bot.shutdown()
    assert [m["text"] for m in telegram.sent_messages(4242)] == [row.payload["text"]]


async def test_note_in_thread_stays_internal(env: Env) -> None:
    await add_agent(env.sessions, "ana@shop.test", "Ana", slack_user_id="U0ANA")
    conversation_id = await customer_conversation(env.sessions)
    alert = await escalate(env, conversation_id)
    event = fs.message_event(ALERTS, "U0ANA", "Note: she was rude, but refund anyway", "1700000600.000100",
                             thread_ts=alert["ts"])
    await env.post(fs.event_callback_body(event))
    await eventually(lambda: count(env.sessions, Message, Message.is_internal.is_(True)))
    [note] = await rows(env.sessions, Message, Message.is_internal.is_(True))
    assert note.text == "she was rude, but refund anyway"
    assert await count(env.sessions, OutboxMessage, OutboxMessage.channel != Channel.slack) == 0


async def test_thread_messages_that_are_not_replies_are_ignored(env: Env) -> None:
    await add_agent(env.sessions, "ana@shop.test", "Ana", slack_user_id="U0ANA")
    conversation_id = await customer_conversation(env.sessions)
    alert = await escalate(env, conversation_id)
    events = [
        fs.message_event(ALERTS, "U0ANA", "top-level chatter", "1700000700.000100"),
        fs.message_event(ALERTS, "U0ANA", "a thread we do not know", "1700000700.000200", thread_ts="1600000000.0001"),
        {**fs.message_event(ALERTS, "U0ANA", "edited", "1700000700.000300", thread_ts=alert["ts"]),
         "subtype": "message_changed"},
        {**fs.message_event(ALERTS, "U0OTHERBOT", "beep", "1700000700.000400", thread_ts=alert["ts"]), "bot_id": "B2"},
        {"type": "message", "channel": ALERTS, "ts": "1700000700.000500", "thread_ts": alert["ts"]},
    ]
    for event in events:
        assert (await env.post(fs.event_callback_body(event))).status == 200
    await asyncio.sleep(0.3)
    assert await count(env.sessions, Message, Message.direction == "out") == 0
    assert await count(env.sessions, WebhookDelivery) == 0


async def test_thread_reply_from_a_stranger_gets_a_hint(env: Env) -> None:
    conversation_id = await customer_conversation(env.sessions)
    alert = await escalate(env, conversation_id)
    event = fs.message_event(ALERTS, "U0STRANGER", "I can help!", "1700000800.000100", thread_ts=alert["ts"])
    body = fs.event_callback_body(event, event_id="Ev0STRANGER")
    await env.post(body)
    await eventually(lambda: env.fake.ephemeral)
    await env.post(body, extra_headers={"X-Slack-Retry-Num": "1"})
    await asyncio.sleep(0.2)
    assert len(env.fake.ephemeral) == 1  # a retry does not nag twice
    assert await count(env.sessions, OutboxMessage, OutboxMessage.channel != Channel.slack) == 0


async def test_oversized_thread_reply_is_refused_with_a_notice(aiohttp_client: Any, fake: FakeSlack, settings: Any,
                                                               sessions: Any) -> None:
    env = await make_env(aiohttp_client, fake, slack_settings(settings, fake, max_message_chars=20), sessions)
    await add_agent(sessions, "ana@shop.test", "Ana", slack_user_id="U0ANA")
    conversation_id = await customer_conversation(sessions, text="short")
    alert = await escalate(env, conversation_id)
    event = fs.message_event(ALERTS, "U0ANA", "x" * 21, "1700000900.000100", thread_ts=alert["ts"])
    await env.post(fs.event_callback_body(event))
    await eventually(lambda: fake.ephemeral)
    assert "too long" in fake.ephemeral[0]["text"]
    assert await count(sessions, Message, Message.direction == "out") == 0
    assert await count(sessions, WebhookDelivery) == 0


@pytest.mark.parametrize(("text", "reason"), [
    ("Your refund is on its way\x00", "NUL byte"),
    ("Your refund \ud83d is on its way", "lone surrogate"),
    ("   ", "empty"),
])
async def test_invalid_thread_reply_is_refused_with_a_notice(env: Env, text: str, reason: str) -> None:
    await add_agent(env.sessions, "ana@shop.test", "Ana", slack_user_id="U0ANA")
    conversation_id = await customer_conversation(env.sessions)
    alert = await escalate(env, conversation_id)
    event = fs.message_event(ALERTS, "U0ANA", text, "1700000950.000100", thread_ts=alert["ts"])
    assert (await env.post(fs.event_callback_body(event))).status == 200
    [notice] = await eventually(lambda: env.fake.ephemeral)
    assert (notice["user"], notice["thread_ts"]) == ("U0ANA", alert["ts"])
    assert notice["text"].startswith("Not sent:") and reason in notice["text"]
    assert await count(env.sessions, Message, Message.direction == "out") == 0  # nothing for the customer
    assert await count(env.sessions, OutboxMessage, OutboxMessage.channel != Channel.slack) == 0
    assert await count(env.sessions, WebhookDelivery) == 0


async def test_customer_messages_are_mirrored_into_the_thread(env: Env, caplog: Any) -> None:
    caplog.set_level("DEBUG")
    await add_agent(env.sessions, "ana@shop.test", "Ana", slack_user_id="U0ANA")
    conversation_id = await customer_conversation(env.sessions, external_id="77", name="Lan")
    alert = await escalate(env, conversation_id)
    await message_record(env.sessions, InboundMessage(
        channel=Channel.telegram, dedupe_key="later-1", contact_external_id="77", text="Any news? <@U0ANA>"))
    await env.idle()
    [mirrored] = env.thread(alert["ts"])
    assert mirrored["text"] == "*Lan*:\n> Any news? &lt;@U0ANA&gt;"

    # the agent's own reply from Slack is not echoed back into the thread
    await env.post(fs.event_callback_body(
        fs.message_event(ALERTS, "U0ANA", "On it", "1700001000.000100", thread_ts=alert["ts"])))
    await eventually(lambda: count(env.sessions, OutboxMessage, OutboxMessage.channel != Channel.slack))
    await env.idle()
    assert len(env.thread(alert["ts"])) == 1

    await message_record(env.sessions, InboundMessage(
        channel=Channel.telegram, dedupe_key="later-2", contact_external_id="77", text="write to lan@example.com"))
    await env.idle()
    assert "lan@example.com" in env.thread(alert["ts"])[-1]["text"]
    ours = "\n".join(r.getMessage() for r in caplog.records
                     if r.name.startswith(("shopdesk", "slack_sdk", "slack_bolt", "bot", "inbox")))
    assert "lan@example.com" not in ours and env.fake.token not in ours


# --------------------------------------------------------------------------- /order


async def test_order_command_answers_privately_with_the_card(env: Env) -> None:
    await add_agent(env.sessions, "ana@shop.test", "Ana", slack_user_id="U0ANA")
    async with env.sessions() as s:
        customer = await make_customer(s, email="lan@example.com")
        await make_order(s, name="#1001", customer=customer, placed_at=fs_time(1))
        await make_order(s, name="#1002", customer=customer, placed_at=fs_time(2))
        await s.commit()
    for text, expect in (("#1001", "#1001"), ("1001", "#1001"), ("LAN@example.com ", "#1002"),
                         ("<mailto:lan@example.com|lan@example.com>", "#1002")):
        body = fs.slash_command_body("/order", text, "U0ANA", ALERTS, env.fake.response_url("r1"))
        resp = await env.post(body)
        assert resp.status == 200
        answer = await resp.json()
        assert answer["response_type"] == "ephemeral"
        assert expect in json.dumps(answer["blocks"])
    assert "Other orders: #1001" in json.dumps(answer["blocks"])
    assert env.fake.calls_for("chat.postMessage") == []  # nothing public


async def test_order_command_refuses_strangers_and_handles_misses(env: Env) -> None:
    await add_agent(env.sessions, "ana@shop.test", "Ana", slack_user_id="U0ANA")
    url = env.fake.response_url("r2")
    stranger = await env.post(fs.slash_command_body("/order", "#1001", "U0STRANGER", ALERTS, url))
    assert "Only Shopdesk agents" in (await stranger.json())["text"]
    miss = await env.post(fs.slash_command_body("/order", "#9999 & <b", "U0ANA", ALERTS, url))
    assert (await miss.json())["text"] == "No order found for `#9999 &amp; &lt;b`."
    usage = await env.post(fs.slash_command_body("/order", "   ", "U0ANA", ALERTS, url))
    assert "Usage" in (await usage.json())["text"]


def fs_time(day: int) -> Any:
    from datetime import datetime

    return datetime(2025, 6, day, tzinfo=UTC)


# --------------------------------------------------------------------------- returns


async def make_rma(sessions: Any, *, method: ReturnMethod = ReturnMethod.mail) -> ReturnAuthorization:
    async with sessions() as s:
        order, lines = await make_order(s, name="#5005")
        rma = ReturnAuthorization(rma_number="R5005-1", order_id=order.id, method=method,
                                  refund_amount=Decimal("20.00"))
        s.add(rma)
        await s.flush()
        s.add(ReturnLine(rma_id=rma.id, order_line_id=lines[0].id, quantity=1, reason_note="arrived torn"))
        await s.commit()
        return rma


async def test_alert_amounts_and_dates_follow_the_shops_default_language(aiohttp_client: Any, fake: FakeSlack,
                                                                          settings: Any, sessions: Any) -> None:
    env = await make_env(aiohttp_client, fake, slack_settings(settings, fake, default_language="es",
                                                              shop_timezone="Europe/Madrid"), sessions)
    conversation_id = await customer_conversation(env.sessions)
    rma = await make_rma(env.sessions)
    await env.alert(conversation_id, {"kind": "return_approval", "rma_id": rma.id})
    async with env.sessions() as s:
        order, _ = await make_order(s, name="#1007", placed_at=datetime(2026, 12, 2, 23, 30, tzinfo=UTC))
        await s.commit()
    await env.alert(None, {"kind": "late_shipment", "order_id": order.id, "order_name": "#1007", "shipments": []})
    await env.idle()
    approval, late = env.alerts()
    assert "20,00\xa0US$" in texts(approval) and "$20.00" not in texts(approval)
    assert "3 dic 2026" in texts(late) and "20,00\xa0US$" in texts(late)  # placed on the 3rd in Madrid


async def test_return_approval_alert_and_approve(env: Env) -> None:
    await add_agent(env.sessions, "ana@shop.test", "Ana", slack_user_id="U0ANA")
    conversation_id = await customer_conversation(env.sessions)
    rma = await make_rma(env.sessions)
    await env.alert(conversation_id, {"kind": "return_approval", "rma_id": rma.id})
    await env.idle()
    [alert] = env.alerts()
    assert set(buttons(alert)) == {sb.ACTION_APPROVE_RETURN, sb.ACTION_REJECT_RETURN, sb.ACTION_OPEN}
    assert "R5005-1" in texts(alert) and "arrived torn" in texts(alert) and "$20.00" in texts(alert)

    body = fs.block_actions_body(sb.ACTION_APPROVE_RETURN, str(rma.id), "U0ANA", ALERTS, alert["ts"],
                                 message_blocks=alert["blocks"])
    await env.post(body)

    async def status() -> Any:
        async with env.sessions() as s:
            return (await s.get(ReturnAuthorization, rma.id)).status
    await eventually(lambda: _is(status, RmaStatus.label_issued))
    await eventually(lambda: env.fake.calls_for("chat.update"))
    updated = env.fake.posted_messages(ALERTS)[0]
    assert buttons(updated) == {} and "Approved by Ana" in texts(updated)
    [note] = await rows(env.sessions, Message, Message.is_internal.is_(True))
    assert "R5005-1 approved in Slack by Ana" in note.text

    await env.post(body)  # replayed: no second effect, no error
    reject = fs.block_actions_body(sb.ACTION_REJECT_RETURN, str(rma.id), "U0ANA", ALERTS, alert["ts"])
    await env.post(reject)  # too late: it is approved
    await eventually(lambda: env.fake.ephemeral)
    assert "Nothing changed" in env.fake.ephemeral[0]["text"]
    assert await status() == RmaStatus.label_issued


async def _is(getter: Callable[[], Any], expected: Any) -> bool:
    return (await getter()) == expected


async def test_return_button_for_another_rma_is_ignored(env: Env) -> None:
    await add_agent(env.sessions, "ana@shop.test", "Ana", slack_user_id="U0ANA")
    rma = await make_rma(env.sessions)
    await env.alert(None, {"kind": "return_approval", "rma_id": rma.id})
    await env.idle()
    [alert] = env.alerts()
    await env.post(fs.block_actions_body(sb.ACTION_APPROVE_RETURN, str(rma.id + 1), "U0ANA", ALERTS, alert["ts"]))
    await asyncio.sleep(0.2)
    async with env.sessions() as s:
        assert (await s.get(ReturnAuthorization, rma.id)).status == RmaStatus.requested


# --------------------------------------------------------------------------- authentication and bad input


async def test_bad_signature_or_stale_timestamp_is_401_with_no_side_effect(env: Env) -> None:
    await add_agent(env.sessions, "ana@shop.test", "Ana", slack_user_id="U0ANA")
    conversation_id = await customer_conversation(env.sessions)
    alert = await escalate(env, conversation_id)
    calls_before = len(env.fake.calls)
    reply = fs.event_callback_body(fs.message_event(ALERTS, "U0ANA", "hello", "1700001100.000100",
                                                    thread_ts=alert["ts"]))
    claim = fs.block_actions_body(sb.ACTION_CLAIM, str(conversation_id), "U0ANA", ALERTS, alert["ts"])
    for body in (reply, claim):
        assert (await env.post(body, secret="not-the-secret")).status == 401
        assert (await env.post(body, timestamp=int(time.time()) - 6 * 60)).status == 401
        assert (await env.post(body, timestamp=int(time.time()) + 6 * 60)).status == 401
    forged = [
        {"Content-Type": "application/json"},
        {"Content-Type": "application/json", "X-Slack-Request-Timestamp": "soon", "X-Slack-Signature": "v0=abc"},
        {"Content-Type": "application/json", "X-Slack-Request-Timestamp": str(int(time.time())),
         "X-Slack-Signature": ""},
        {"Content-Type": "application/json", "X-Slack-Request-Timestamp": "9" * 40, "X-Slack-Signature": "v0=1"},
    ]
    for headers in forged:
        assert (await env.client.post(EVENTS_PATH, data=reply, headers=headers)).status == 401
    # bytes that are not UTF-8 cannot be a Slack request (the signature base string is text)
    binary = b"\xff\xfe{}"
    assert (await env.client.post(EVENTS_PATH, data=binary, headers=fs.signed_headers(SIGNING_SECRET, binary))).status == 401
    # a signed body with one byte changed
    tampered_headers = fs.signed_headers(SIGNING_SECRET, reply)
    assert (await env.client.post(EVENTS_PATH, data=reply.replace(b"hello", b"HELLO"),
                                  headers=tampered_headers)).status == 401
    await asyncio.sleep(0.2)
    assert await count(env.sessions, OutboxMessage, OutboxMessage.channel != Channel.slack) == 0
    assert await count(env.sessions, WebhookDelivery) == 0
    async with env.sessions() as s:
        assert (await s.get(Conversation, conversation_id)).assignee_id is None
    assert len(env.fake.calls) == calls_before


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"{not json", "application/json"),
        (b"[1, 2]", "application/json"),
        (b"payload=%7Bbroken", "application/x-www-form-urlencoded"),
    ],
)
async def test_signed_but_malformed_bodies_are_400(env: Env, body: bytes, content_type: str) -> None:
    headers = fs.signed_headers(SIGNING_SECRET, body, content_type=content_type)
    resp = await env.client.post(EVENTS_PATH, data=body, headers=headers)
    assert resp.status == 400
    assert "error" in await resp.json()


ODD_SHAPES: list[tuple[bytes, str | None]] = [
    (b"{}", None),
    (json.dumps({"type": "event_callback", "event": "x", "event_id": "E1"}).encode(), None),
    (json.dumps({"type": "event_callback", "event": {"type": "message"}, "authorizations": "x"}).encode(), None),
    (json.dumps({"type": "event_callback", "event_id": "E2", "event": {
        "type": "message", "channel": 5, "user": [], "ts": {}, "thread_ts": None}}).encode(), None),
    (json.dumps({"type": "event_callback", "event_id": "E3", "event": {
        "type": "message", "channel": ALERTS, "user": "U1", "ts": "1.1", "thread_ts": "2.2", "text": 5}}).encode(), None),
    (b"payload=" + json.dumps({"type": "block_actions", "actions": "x"}).encode(), "application/x-www-form-urlencoded"),
    (b"payload=" + json.dumps({"type": "block_actions", "actions": [{"action_id": sb.ACTION_CLAIM}]}).encode(),
     "application/x-www-form-urlencoded"),
    (b"payload=" + json.dumps({"type": "block_actions", "user": "U0ANA", "actions": []}).encode(),
     "application/x-www-form-urlencoded"),
    (b"payload=" + json.dumps([1]).encode(), "application/x-www-form-urlencoded"),
    (b"command=%2Forder", "application/x-www-form-urlencoded"),
    (b"command=%2Funknown&text=x", "application/x-www-form-urlencoded"),
]


async def test_signed_bodies_of_odd_shapes_never_fail_loudly(env: Env, caplog: Any) -> None:
    for body, content_type in ODD_SHAPES:
        headers = fs.signed_headers(SIGNING_SECRET, body, content_type=content_type)
        resp = await env.client.post(EVENTS_PATH, data=body, headers=headers)
        assert resp.status in (200, 400, 404), (body, resp.status)
    await asyncio.sleep(0.2)
    assert [r.getMessage() for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")] == []
    assert await count(env.sessions, WebhookDelivery) == 0


async def test_url_verification(env: Env) -> None:
    resp = await env.post(fs.url_verification_body("challenge-123"))
    assert resp.status == 200 and await resp.json() == {"challenge": "challenge-123"}


# --------------------------------------------------------------------------- wiring


async def test_socket_mode_handler_is_built_from_the_app_token(fake: FakeSlack, lite_settings: Any,
                                                                lite_sessions: Any) -> None:
    from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler

    settings, sessions = lite_settings, lite_sessions
    s = slack_settings(settings, fake, slack_app_token=SecretStr("xapp-1-A1-123-abc"))
    connector = SlackConnector(settings=s, sessions=sessions, bus=EventBus())
    handler = connector.make_socket_handler()
    assert isinstance(handler, AsyncSocketModeHandler)
    assert handler.app is connector.bolt and handler.client.app_token == "xapp-1-A1-123-abc"
    await handler.close_async()


async def test_build_connectors_with_slack(fake: FakeSlack, lite_settings: Any, lite_sessions: Any) -> None:
    settings, sessions = lite_settings, lite_sessions
    async def on_inbound(_r: Any) -> None:
        return None

    app = web.Application()
    senders = SenderRegistry()
    connectors = build_connectors(app, settings=slack_settings(settings, fake), sessions=sessions, bus=EventBus(),
                                  senders=senders, on_inbound=on_inbound)
    assert [c.name for c in connectors] == ["slack"]
    assert list(senders) == [Channel.slack]  # not a customer channel: the outbox delivers its alerts
    assert EVENTS_PATH in {r.resource.canonical for r in app.router.routes() if r.resource is not None}
    half = settings.model_copy(update={"slack_bot_token": SecretStr("xoxb-x")})
    assert build_connectors(web.Application(), settings=half, sessions=sessions, bus=EventBus(),
                            senders=senders, on_inbound=on_inbound) == []


async def test_agent_found_by_lookup_by_email_when_users_info_shows_no_email(env: Env) -> None:
    bo = await add_agent(env.sessions, "bo@shop.test", "Bo")
    await add_agent(env.sessions, "nobody@shop.test", "Nobody")
    env.fake.fail_next("users.info", error="missing_scope")
    found = await env.connector.agent_for("U0BO")
    assert found is not None and found.id == bo.id
    assert [c.params["email"] for c in env.fake.calls_for("users.lookupByEmail")] == ["bo@shop.test"]
    [linked] = await rows(env.sessions, Agent, Agent.slack_user_id == "U0BO")
    assert linked.id == bo.id


async def test_admin_can_link_a_slack_user(env: Env) -> None:
    agent = await add_agent(env.sessions, "kim@elsewhere.test", "Kim")
    async with env.sessions() as s:
        await link_slack_user(s, await s.get(Agent, agent.id), "U0KIM")
        await s.commit()
    assert (await env.connector.agent_for("U0KIM")).id == agent.id
    assert await env.connector.agent_for("U0NOBODY") is None


def test_block_helpers() -> None:
    assert sb.escape("<!here> & <@U1>") == "&lt;!here&gt; &amp; &lt;@U1&gt;"
    assert sb.slack_to_plain("a &lt;b&gt; &amp; <https://x.test/a|the link> <mailto:a@b.c|a@b.c> <@U1> <!here>") == (
        "a <b> & the link (https://x.test/a) a@b.c @U1 @here")
    text, blocks = sb.escalation_alert(conversation_id=1, customer="x" * 500, channel="telegram", intent=None,
                                       priority="high", summary="s" * 5000, order=None, inbox_url="https://d/inbox/c/1")
    assert all(len(b["text"]["text"]) <= 3000 for b in blocks if b["type"] == "section" and "text" in b)
    assert all(len(f["text"]) <= 2000 for b in blocks if b["type"] == "section" for f in b.get("fields", []))


async def test_whole_story_through_the_composition_root(aiohttp_client: Any, fake: FakeSlack, telegram: FakeTelegram,
                                                        settings: Any, sessions: Any) -> None:
    """shopdesk.app.build_app with Telegram and Slack: a customer asks for a person on Telegram, the
    alert appears in Slack, an agent answers in the thread, and the customer gets the answer."""
    from shopdesk.app import RUNTIME, build_app
    from tests.fakes.telegram import make_message_update

    s = slack_settings(settings, fake).model_copy(update={
        "telegram_token": SecretStr(telegram.token), "telegram_webhook_secret": SecretStr("tg-secret"),
        "telegram_api_url": telegram.ptb_base_url, "telegram_per_chat_per_second": 100.0,
    })
    app = build_app(s, migrate_on_start=False)
    client = await aiohttp_client(app)
    # the server takes requests at once; the bot answers once its models are loaded (slow on a busy machine)
    await asyncio.wait_for(app[RUNTIME].bot_ready.wait(), 180)
    await add_agent(sessions, "ana@shop.test", "Ana")
    resp = await client.post("/webhooks/telegram", json=make_message_update(1, 555, "I want to talk to a human agent"),
                             headers={"X-Telegram-Bot-Api-Secret-Token": "tg-secret"})
    assert resp.status == 200
    alert = await eventually(lambda: [m for m in fake.posted_messages(ALERTS) if not m.get("thread_ts")], timeout=15)
    assert sb.ACTION_CLAIM in buttons(alert[0])
    await eventually(lambda: count(sessions, ExternalThread), timeout=15)  # saved right after the post

    event = fs.message_event(ALERTS, "U0ANA", "Hi, Ana here. How can I help?", "1700002000.000100",
                             thread_ts=alert[0]["ts"])
    body = fs.event_callback_body(event)
    resp = await client.post(EVENTS_PATH, data=body, headers=fs.signed_headers(SIGNING_SECRET, body))
    assert resp.status == 200
    await eventually(lambda: "Hi, Ana here. How can I help?" in [m["text"] for m in telegram.sent_messages(555)],
                     timeout=15)
    texts_sent = [m["text"] for m in telegram.sent_messages(555)]
    assert texts_sent.count("Hi, Ana here. How can I help?") == 1
    assert texts_sent[0] != "Hi, Ana here. How can I help?"  # the bot's handoff message came first


async def test_unreachable_slack_api_gives_a_clear_503_not_a_500(aiohttp_client: Any, fake: FakeSlack,
                                                                 lite_settings: Any, lite_sessions: Any) -> None:
    import socket

    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{probe.getsockname()[1]}/api/"
    env = await make_env(aiohttp_client, fake, slack_settings(lite_settings, fake, slack_api_url=dead), lite_sessions)
    resp = await env.post(fs.slash_command_body("/order", "#1001", "U0ANA", ALERTS, fake.response_url("r9")))
    assert resp.status == 503
    assert "Slack" in (await resp.json())["error"]


async def test_a_concurrent_delivery_linking_the_agent_first_is_not_mistaken_for_a_stranger(env: Env) -> None:
    """Slack sends the same event several times at once: while one delivery asks Slack for the
    user's email, another links the agent. The first must still find the agent (it used to get
    the stranger hint, and its claim of the event then dropped the agent's reply)."""
    from bot.connectors.slack import link_slack_user

    ana = await add_agent(env.sessions, "ana@shop.test", "Ana")
    real_email = env.connector.agents._slack_email

    async def email_after_someone_else_linked(slack_user_id: str) -> str | None:
        email = await real_email(slack_user_id)
        async with env.sessions() as s:  # the concurrent delivery wins the race to link
            await link_slack_user(s, await s.get(Agent, ana.id), slack_user_id)
            await s.commit()
        return email

    env.connector.agents._slack_email = email_after_someone_else_linked  # type: ignore[method-assign]
    agent = await env.connector.agent_for("U0ANA")
    assert agent is not None and agent.id == ana.id


async def test_a_thread_reply_that_fails_to_save_is_retried_by_slack_not_lost(env: Env, monkeypatch: Any) -> None:
    """Events are handled before Slack gets its answer: if storing the agent's reply fails,
    Slack is told to retry (5xx) and nothing half-written stays; the retry then lands once."""
    await add_agent(env.sessions, "ana@shop.test", "Ana", slack_user_id="U0ANA")
    conversation_id = await customer_conversation(env.sessions, external_id="5151")
    alert = await escalate(env, conversation_id)
    real_reply = agent_reply
    failures = [RuntimeError("database went away")]

    async def flaky_reply(*args: Any, **kwargs: Any) -> Any:
        if failures:
            raise failures.pop()
        return await real_reply(*args, **kwargs)

    monkeypatch.setattr(slack_connector, "agent_reply", flaky_reply)
    event = fs.message_event(ALERTS, "U0ANA", "On it, sorry!", "1700000600.000100", thread_ts=alert["ts"])
    body = fs.event_callback_body(event, event_id="Ev0FLAKY")
    first = await env.post(body)
    assert first.status == 503
    assert await count(env.sessions, OutboxMessage, OutboxMessage.channel != Channel.slack) == 0
    assert await count(env.sessions, WebhookDelivery, WebhookDelivery.delivery_id == "event:Ev0FLAKY") == 0
    retry = await env.post(body, extra_headers={"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_error"})
    assert retry.status == 200
    [row] = await rows(env.sessions, OutboxMessage, OutboxMessage.channel != Channel.slack)
    assert row.payload["text"] == "On it, sorry!"


async def test_return_decide_refuses_a_second_decision(sessions: Any) -> None:
    from inbox.actions.return_decide import return_decide
    from shopbase.refusal import Refused

    ana = await add_agent(sessions, "ana@shop.test", "Ana")
    conversation_id = await customer_conversation(sessions)
    rma = await make_rma(sessions)
    async with sessions() as s:
        decision = await return_decide(s, rma_id=rma.id, approve=True, agent=await s.get(Agent, ana.id),
                                       conversation_id=conversation_id)
        await s.commit()
    assert (decision.verb, decision.status) == ("approved", "label_issued")  # a mailed return gets its label

    async with sessions() as s:
        with pytest.raises(Refused) as second:
            await return_decide(s, rma_id=rma.id, approve=False, agent=await s.get(Agent, ana.id),
                                conversation_id=conversation_id)
        await s.commit()  # nothing to commit: the refusal wrote nothing
    assert second.value.code == "return_already_decided"
    assert "R5005-1 is already label issued" in second.value.message
    async with sessions() as s:
        assert (await s.get(ReturnAuthorization, rma.id)).status == RmaStatus.label_issued
    assert await count(sessions, AuditEvent, AuditEvent.action.like("return.%")) == 1
    assert await count(sessions, Message, Message.is_internal.is_(True)) == 1

    async with sessions() as s:
        with pytest.raises(Refused) as missing:
            await return_decide(s, rma_id=rma.id + 1000, approve=True, agent=await s.get(Agent, ana.id))
    assert (missing.value.code, missing.value.status) == ("return_not_found", 404)


def test_notice_for_picks_what_slack_shows_and_stores_it_as_json() -> None:
    from bot.connectors.slack import notice_for

    stock = notice_for(Event("alert", None, {"kind": "low_stock", "price": Decimal("9.50")}))
    assert stock is not None and not stock.follow_up
    assert stock.payload["event"]["data"]["price"] == "9.50"  # JSON-safe before it reaches the row
    assert notice_for(Event("alert", None, {"kind": "escalation"})) is None  # announced by the escalation
    mirrored = notice_for(Event("message.created", 1, {"author": "customer", "is_internal": False}))
    assert mirrored is not None and mirrored.follow_up  # only for conversations already in Slack
    assert notice_for(Event("message.created", 1, {"author": "bot"})) is None
    assert notice_for(Event("conversation.updated", 1, {"change": "priority"})) is None
    assert notice_for(Event("conversation.updated", 1, {"change": "status"})).follow_up


async def test_rule_and_shipment_alerts_speak_the_shops_default_language(aiohttp_client: Any, fake: FakeSlack,
                                                                          settings: Any, sessions: Any) -> None:
    env = await make_env(aiohttp_client, fake, slack_settings(settings, fake, default_language="ru"), sessions)
    async with env.sessions() as s:
        order, _ = await make_order(s, name="#2003")
        await s.commit()
    await env.alert(None, {"kind": "late_shipment", "order_id": order.id, "order_name": "#2003",
                           "shipments": [{"tracking_number": "1Z999", "status": "in_transit", "carrier": "UPS"}]})
    await env.alert(None, {"kind": "low_stock", "sku": "TEE-M", "available": 2})
    await env.idle()
    late, stock = env.alerts()
    assert late["text"] == "Задерживается отправление: #2003" and "В пути" in texts(late)
    assert stock["text"] == "Мало на складе: TEE-M" and "Доступно 2" in texts(stock)

"""The Telegram connector against the loopback Bot API fake, on SQLite and PostgreSQL.

Webhook requests go through our own aiohttp route; replies go through the real outbox
dispatcher and python-telegram-bot's ``Bot`` into ``FakeTelegram``. The "bot" in most tests
is a tiny echo processor run by the real ``InboundWorker``, so these tests pin the
connector's behaviour; ``test_real_bot_answers_hi_with_buttons`` runs the real pipeline.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import web
from pydantic import SecretStr
from sqlalchemy.exc import OperationalError

from bot.connectors import build_connectors
from bot.connectors import telegram as tgc
from bot.connectors.telegram import (
    SECRET_HEADER,
    WEBHOOK_PATH,
    SendPacer,
    TelegramConnector,
    TelegramSetupError,
    callback_data_for,
    render_text,
    set_webhook,
    translate_update,
    webhook_status,
    webhook_status_text,
)
from inbox.actions.message_mark_processed import message_mark_processed
from inbox.actions.message_send import message_send
from inbox.channels import SenderRegistry
from inbox.events import EventBus
from inbox.messages import Attachment, OutboundPayload, QuickReply
from inbox.models import (
    Agent,
    Author,
    Channel,
    Contact,
    Conversation,
    Message,
    OutboxMessage,
    OutboxStatus,
    Role,
)
from inbox.outbox import OutboxDispatcher
from inbox.web.state import AGENT
from inbox.worker import InboundWorker
from tests.db_helpers import count, eventually, rows
from tests.fakes.telegram import (
    FakeTelegram,
    make_callback_update,
    make_message_update,
    make_start_update,
)

SECRET = "tg-webhook-secret_0123456789"
CHAT = 42


# --------------------------------------------------------------------------- helpers





def tg_settings(settings: Any, fake: FakeTelegram, **extra: Any) -> Any:
    values = {
        "telegram_token": SecretStr(fake.token),
        "telegram_webhook_secret": SecretStr(SECRET),
        "telegram_api_url": fake.ptb_base_url,
        "telegram_per_chat_per_second": 1000.0,
        "telegram_overall_per_second": 1000.0,
        "public_url": "https://shop.example",
    }
    values.update(extra)
    return settings.model_copy(update=values)


QUICK = (QuickReply("Track", "intent:track_order"), QuickReply("Human", "intent:human_agent"))


def echo_processor(sessions: Any) -> Callable[[int], Awaitable[None]]:
    """A stand-in bot: answers every message once, with two quick replies."""

    async def process(message_id: int) -> None:
        async with sessions() as s:
            message = await s.get(Message, message_id)
            if message is None or message.processed:
                return
            conversation = await s.get(Conversation, message.conversation_id)
            said = message.postback or message.text
            message_send(s, conversation, OutboundPayload(text=f"echo: {said}", quick_replies=QUICK),
                               author=Author.bot)
            await message_mark_processed(s, message_id)
            await s.commit()

    return process


@dataclass
class Env:
    fake: FakeTelegram
    client: Any
    connector: TelegramConnector
    dispatcher: OutboxDispatcher
    worker: InboundWorker
    sessions: Any
    settings: Any
    inbound: list[Any] = field(default_factory=list)

    async def post(self, update: Any, secret: str | None = SECRET, **kw: Any) -> Any:
        headers = {SECRET_HEADER: secret} if secret is not None else {}
        if isinstance(update, (dict, list)):
            return await self.client.post(WEBHOOK_PATH, json=update, headers=headers, **kw)
        return await self.client.post(WEBHOOK_PATH, data=update, headers=headers, **kw)

    async def settle(self) -> None:
        """Let the bot answer everything received, then deliver the outbox."""
        await self.worker.join()
        await self.dispatcher.run_once()


@pytest.fixture
async def fake(aiohttp_server: Any) -> FakeTelegram:
    tg = FakeTelegram()
    server = await aiohttp_server(tg.app)
    tg.base_url = str(server.make_url("")).rstrip("/")
    return tg


async def make_env(aiohttp_client: Any, fake: FakeTelegram, settings: Any, sessions: Any, *,
                   processor: Callable[[int], Awaitable[None]] | None = None,
                   pacer: SendPacer | None = None, clock: Callable[[], datetime] | None = None,
                   polling: bool = False, agent: Agent | None = None, **dispatcher_options: Any) -> Env:
    bus = EventBus()
    senders = SenderRegistry()
    worker = InboundWorker(sessions, processor or echo_processor(sessions), sweep_interval=None)
    dispatcher = OutboxDispatcher(sessions, senders, bus, **({"clock": clock} if clock else {}), **dispatcher_options)
    env_ref: dict[str, Env] = {}

    async def on_inbound(result: Any) -> None:
        env_ref["env"].inbound.append(result)
        worker.submit(result.message_id)

    @web.middleware
    async def as_agent(request: web.Request, handler: Any) -> web.StreamResponse:
        if agent is not None:
            request[AGENT] = agent
        return await handler(request)

    app = web.Application(middlewares=[as_agent])
    connector = TelegramConnector(settings=settings, sessions=sessions, on_inbound=on_inbound, polling=polling,
                                  pacer=pacer, poll_timeout=1)
    connector.setup_routes(app)
    senders.register(connector.sender)

    async def lifecycle(_app: web.Application) -> Any:
        await connector.start()
        yield
        await worker.stop()
        await connector.stop()

    app.cleanup_ctx.append(lifecycle)
    client = await aiohttp_client(app)
    env = Env(fake, client, connector, dispatcher, worker, sessions, settings)
    env_ref["env"] = env
    return env


@pytest.fixture
async def env(aiohttp_client: Any, fake: FakeTelegram, settings: Any, sessions: Any) -> Env:
    return await make_env(aiohttp_client, fake, tg_settings(settings, fake), sessions)


# --------------------------------------------------------------------------- happy paths


async def test_message_is_recorded_and_answered(env: Env) -> None:
    update = make_message_update(1, CHAT, "Hi there", first_name="Ana", language_code="es", username="ana_p")
    resp = await env.post(update)
    assert resp.status == 200
    assert (await resp.json())["result"] == "recorded"

    [message] = await rows(env.sessions, Message, Message.direction == "in")  # the echo bot may answer already
    assert (message.text, message.channel, message.author) == ("Hi there", Channel.telegram, Author.customer)
    assert message.dedupe_key == f"{env.connector.bot_key}:1"
    assert message.channel_message_id == "1"
    [contact] = await rows(env.sessions, Contact)
    assert (contact.external_id, contact.display_name, contact.username, contact.language) == (
        str(CHAT), "Ana", "ana_p", "es")
    assert [r.message_id for r in env.inbound] == [message.id]

    await env.settle()
    [sent] = env.fake.sent_messages(CHAT)
    assert sent["text"] == "echo: Hi there"
    keyboard = sent["reply_markup"]["inline_keyboard"]
    assert [[b["callback_data"] for b in row] for row in keyboard] == [["intent:track_order", "intent:human_agent"]]
    [row] = await rows(env.sessions, OutboxMessage)
    assert row.status == OutboxStatus.sent and row.channel_message_id == str(sent["message_id"])


async def test_same_update_three_times_one_message_one_reply(env: Env) -> None:
    update = make_message_update(7, CHAT, "where is my order?")
    for _ in range(3):
        assert (await env.post(update)).status == 200
    concurrent = make_message_update(8, CHAT + 1, "hello?")
    statuses = await asyncio.gather(*(env.post(concurrent) for _ in range(3)))
    assert [r.status for r in statuses] == [200, 200, 200]
    assert sorted([(await r.json())["result"] for r in statuses]) == ["duplicate", "duplicate", "recorded"]

    assert await count(env.sessions, Message, Message.direction == "in") == 2
    assert len(env.inbound) == 2
    await env.settle()
    await env.settle()
    assert [m["text"] for m in env.fake.sent_messages(CHAT)] == ["echo: where is my order?"]
    assert [m["text"] for m in env.fake.sent_messages(CHAT + 1)] == ["echo: hello?"]


async def test_start_with_deep_link_and_language(env: Env) -> None:
    assert (await env.post(make_start_update(3, CHAT, "order-1001", language_code="pt-br"))).status == 200
    assert (await env.post(make_start_update(4, CHAT + 5))).status == 200
    assert (await env.post(make_start_update(5, CHAT + 6, "bad$payload"))).status == 200
    first, bare, bad = await rows(env.sessions, Message, Message.direction == "in")
    assert (first.start_payload, first.postback, first.text) == ("order-1001", tgc.START_POSTBACK, "/start order-1001")
    assert (bare.start_payload, bare.postback) == (None, tgc.START_POSTBACK)
    assert bad.start_payload is None  # only Telegram's deep-link alphabet is passed on
    contact = (await rows(env.sessions, Contact, Contact.external_id == str(CHAT)))[0]
    assert contact.language == "pt-br"


async def test_button_press_becomes_postback_and_is_answered(env: Env) -> None:
    await env.post(make_message_update(10, CHAT, "menu please"))
    await env.settle()
    [sent] = env.fake.sent_messages(CHAT)
    press = make_callback_update(11, CHAT, "intent:track_order", message_id=sent["message_id"],
                                 reply_markup=sent["reply_markup"])
    resp = await env.post(press)
    assert resp.status == 200 and (await resp.json())["result"] == "recorded"
    pressed = (await rows(env.sessions, Message, Message.dedupe_key == f"{env.connector.bot_key}:11"))[0]
    assert (pressed.postback, pressed.text) == ("intent:track_order", "Track")
    await eventually(lambda: env.fake.answered_callbacks)
    assert env.fake.answered_callbacks[0]["callback_query_id"] == press["callback_query"]["id"]
    await env.settle()
    assert env.fake.sent_messages(CHAT)[-1]["text"] == "echo: intent:track_order"


async def test_callback_that_is_not_ours_is_ignored(env: Env) -> None:
    await env.post(make_message_update(20, CHAT, "hi"))
    await env.post(make_message_update(21, CHAT + 1, "hi"))
    await env.settle()
    mine = env.fake.sent_messages(CHAT)[0]["message_id"]
    theirs = env.fake.sent_messages(CHAT + 1)[0]["message_id"]
    before = await count(env.sessions, Message)

    forged_value = make_callback_update(22, CHAT, "intent:refund_everything", message_id=mine)
    other_chat = make_callback_update(23, CHAT, "intent:track_order", message_id=theirs)
    unknown_message = make_callback_update(24, CHAT, "intent:track_order", message_id=9999)
    someone_else = make_callback_update(25, CHAT, "intent:track_order", message_id=mine, user_id=777)
    inline_mode = {"update_id": 26, "callback_query": {"id": "q1", "from": {"id": CHAT, "is_bot": False,
                   "first_name": "A"}, "inline_message_id": "AAA", "chat_instance": "1", "data": "x"}}
    for update in (forged_value, other_chat, unknown_message, someone_else, inline_mode):
        resp = await env.post(update)
        assert resp.status == 200 and (await resp.json())["result"] == "ignored"
    assert await count(env.sessions, Message) == before
    # the spinner still stops for the buttons on a message
    await eventually(lambda: len(env.fake.answered_callbacks) == 4)


async def test_long_quick_reply_value_round_trips(env: Env, sessions: Any) -> None:
    value = "order:" + "9" * 90
    data = callback_data_for(value)
    assert len(data.encode()) <= 64 and data != value

    async def process(message_id: int) -> None:
        async with sessions() as s:
            message = await s.get(Message, message_id)
            if message.processed:
                return
            conversation = await s.get(Conversation, message.conversation_id)
            if message.postback is None:
                message_send(s, conversation, OutboundPayload("Which one?", (QuickReply("The big one", value),)),
                                   author=Author.bot)
            await message_mark_processed(s, message_id)
            await s.commit()

    env.worker.processor = process
    await env.post(make_message_update(30, CHAT, "my order"))
    await env.settle()
    [sent] = env.fake.sent_messages(CHAT)
    assert sent["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == data
    await env.post(make_callback_update(31, CHAT, data, message_id=sent["message_id"]))
    pressed = (await rows(sessions, Message, Message.dedupe_key == f"{env.connector.bot_key}:31"))[0]
    assert pressed.postback == value


# --------------------------------------------------------------------------- bad input


async def test_wrong_or_missing_secret_is_403_and_stores_nothing(env: Env, caplog: Any) -> None:
    caplog.set_level(logging.DEBUG)
    update = make_message_update(40, CHAT, "hi")
    for secret in (None, "", "wrong", SECRET + "x", SECRET[:-1], SECRET.upper()):
        resp = await env.post(update, secret=secret)
        assert resp.status == 403, secret
        assert await resp.json() == {"error": "forbidden"}
    # a forged body that is not even JSON is refused before it is read
    assert (await env.post(b"\x00not json", secret="nope")).status == 403
    assert await count(env.sessions, Message) == 0
    assert await count(env.sessions, Contact) == 0
    assert env.inbound == []
    assert SECRET not in caplog.text


async def test_no_secret_configured_refuses_every_webhook(aiohttp_client: Any, fake: FakeTelegram, settings: Any,
                                                          sessions: Any) -> None:
    no_secret = tg_settings(settings, fake, telegram_webhook_secret=None)
    env = await make_env(aiohttp_client, fake, no_secret, sessions)
    assert (await env.post(make_message_update(1, CHAT, "hi"), secret="")).status == 403
    assert (await env.post(make_message_update(1, CHAT, "hi"), secret="anything")).status == 403
    assert await count(sessions, Message) == 0


MALFORMED = [
    b"{not json",
    b"\xff\xfe\xfd",
    b"[1, 2, 3]",
    b'"just a string"',
    b'{"update_id": "oops", "message": {}}',
    b'{"update_id": true}',
    b'{"message": {"text": "hi"}}',
]


async def test_malformed_bodies_are_400(env: Env) -> None:
    for body in MALFORMED:
        resp = await env.post(body)
        assert resp.status == 400, body
        assert "error" in await resp.json()
    assert await count(env.sessions, Message) == 0


async def test_oversized_body_is_413(env: Env) -> None:
    huge = json.dumps(make_message_update(50, CHAT, "x" * (tgc.MAX_UPDATE_BYTES + 10)))
    resp = await env.post(huge.encode())
    assert resp.status == 413
    assert await count(env.sessions, Message) == 0


def _with(update: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    node = update
    for key in path[:-1]:
        node = node[key]
    if value is _DELETE:
        node.pop(path[-1], None)
    else:
        node[path[-1]] = value
    return update


_DELETE = object()


UNUSABLE: list[Callable[[dict[str, Any]], dict[str, Any]]] = [
    lambda u: _with(u, ("message", "chat"), _DELETE),
    lambda u: _with(u, ("message", "chat"), "42"),
    lambda u: _with(u, ("message", "chat", "id"), "42"),
    lambda u: _with(u, ("message", "chat", "type"), "group"),
    lambda u: _with(u, ("message", "chat", "type"), "supergroup"),
    lambda u: _with(u, ("message", "text"), 12345),
    lambda u: _with(u, ("message", "text"), _DELETE),
    lambda u: _with(u, ("message", "text"), "   "),
    lambda u: _with(u, ("message", "text"), "bad \x00 byte"),
    lambda u: _with(u, ("message", "from"), {"id": 42, "is_bot": True, "first_name": "bot"}),
    lambda u: _with(u, ("message",), None),
    lambda u: _with(u, ("message",), [1, 2]),
    lambda u: {"update_id": u["update_id"], "edited_message": u["message"]},
    lambda u: {"update_id": u["update_id"], "channel_post": {**u["message"], "chat": {"id": -100, "type": "channel"}}},
    lambda u: {"update_id": u["update_id"], "my_chat_member": {"chat": {"id": 42, "type": "private"}}},
    lambda u: {"update_id": u["update_id"], "poll": {"id": "1", "question": "?"}},
    lambda u: {"update_id": u["update_id"], "some_future_update": {"x": 1}},
    lambda u: {"update_id": u["update_id"]},
    ]


async def test_unusable_updates_are_acknowledged_and_ignored(env: Env) -> None:
    for number, mutate in enumerate(UNUSABLE):
        update = mutate(make_message_update(60 + number, CHAT, "hello"))
        resp = await env.post(update)
        assert resp.status == 200, update  # a 4xx would make Telegram redeliver it and hold back the chat
        assert (await resp.json())["result"] == "ignored", update
    assert await count(env.sessions, Message) == 0
    assert await count(env.sessions, Contact) == 0
    assert env.inbound == []


async def test_oversized_text_is_ignored_whole(aiohttp_client: Any, fake: FakeTelegram, settings: Any,
                                               sessions: Any) -> None:
    env = await make_env(aiohttp_client, fake, tg_settings(settings, fake, max_message_chars=50), sessions)
    resp = await env.post(make_message_update(70, CHAT, "y" * 51))
    assert resp.status == 200 and (await resp.json())["result"] == "ignored"
    resp = await env.post(make_message_update(71, CHAT, "y" * 50))
    assert (await resp.json())["result"] == "recorded"
    [message] = await rows(sessions, Message, Message.direction == "in")  # the echo bot may answer already
    assert message.text == "y" * 50


async def test_photo_with_caption_keeps_a_file_reference_not_a_url(env: Env) -> None:
    update = make_message_update(80, CHAT, "see the damage")
    message = update["message"]
    message["caption"] = message.pop("text")
    message["photo"] = [
        {"file_id": "small", "file_unique_id": "s", "width": 90, "height": 90, "file_size": 1000},
        {"file_id": "AgACAgBIG", "file_unique_id": "b", "width": 800, "height": 800, "file_size": 90000},
    ]
    assert (await env.post(update)).status == 200
    [stored] = await rows(env.sessions, Message, Message.direction == "in")  # the echo bot may answer already
    assert stored.text == "see the damage"
    assert stored.attachments == [{"kind": "image", "filename": "photo.jpg", "url": "AgACAgBIG",
                                   "mime": "image/jpeg", "size": 90000}]
    assert env.fake.token not in json.dumps(stored.attachments)


async def test_database_trouble_answers_503_so_telegram_retries(env: Env, monkeypatch: Any) -> None:
    async def broken(*_a: Any, **_k: Any) -> Any:
        raise OperationalError("INSERT", {}, Exception("connection refused"))

    monkeypatch.setattr(tgc.connector, "message_record", broken)
    resp = await env.post(make_message_update(90, CHAT, "hi"))
    assert resp.status == 503
    assert resp.headers["Retry-After"] == "5"
    monkeypatch.undo()
    resp = await env.post(make_message_update(90, CHAT, "hi"))  # Telegram's redelivery
    assert (await resp.json())["result"] == "recorded"
    assert await count(env.sessions, Message, Message.direction == "in") == 1


def test_translate_update_edges() -> None:
    with pytest.raises(tgc.MalformedUpdate):
        translate_update({"update_id": 1.5})
    got = translate_update(make_message_update(5, 10, "hi"), bot_key="123")
    assert got.message is not None and got.message.dedupe_key == "123:5"
    assert got.message.sent_at is not None and got.message.sent_at.tzinfo is not None
    huge_id = translate_update(make_message_update(6, 2**62, "hi"))
    assert huge_id.message is not None and huge_id.message.contact_external_id == str(2**62)


# --------------------------------------------------------------------------- sending


async def _reply(sessions: Any, conversation_id: int, payload: OutboundPayload) -> None:
    async with sessions() as s:
        conversation = await s.get(Conversation, conversation_id)
        message_send(s, conversation, payload, author=Author.agent)
        await s.commit()


async def _conversation(env: Env, chat: int = CHAT, update_id: int = 100) -> int:
    async def silent(message_id: int) -> None:
        async with env.sessions() as s:
            await message_mark_processed(s, message_id)
            await s.commit()

    env.worker.processor = silent
    await env.post(make_message_update(update_id, chat, "hello"))
    await env.worker.join()
    return env.inbound[-1].conversation_id


async def test_429_waits_retry_after_through_the_outbox(aiohttp_client: Any, fake: FakeTelegram, settings: Any,
                                                        sessions: Any) -> None:
    now = [datetime.now(UTC)]
    pacer = SendPacer(1000.0, 1000.0, clock=lambda: now[0].timestamp())  # the chat's hold on the same clock
    env = await make_env(aiohttp_client, fake, tg_settings(settings, fake), sessions, clock=lambda: now[0],
                         pacer=pacer)
    conversation_id = await _conversation(env)
    await _reply(sessions, conversation_id, OutboundPayload("your parcel is on its way"))
    now[0] = datetime.now(UTC) + timedelta(seconds=1)  # the row is due
    fake.fail_next("sendMessage", 429, retry_after=7)

    assert await env.dispatcher.run_once() == 1
    [row] = await rows(sessions, OutboxMessage)
    assert row.status == OutboxStatus.pending and row.attempts == 0  # a 429 delays, it uses up no attempt
    assert row.next_attempt_at == now[0] + timedelta(seconds=7)
    assert "429" in (row.last_error or "")
    assert fake.sent_messages(CHAT) == []

    now[0] += timedelta(seconds=6)
    assert await env.dispatcher.run_once() == 0  # not before retry_after
    now[0] += timedelta(seconds=2)
    assert await env.dispatcher.run_once() == 1
    assert [m["text"] for m in fake.sent_messages(CHAT)] == ["your parcel is on its way"]


async def test_blocked_user_makes_contact_undeliverable(env: Env) -> None:
    conversation_id = await _conversation(env)
    await _reply(env.sessions, conversation_id, OutboundPayload("are you there?"))
    env.fake.block_chat(CHAT)
    await env.dispatcher.run_once()
    [row] = await rows(env.sessions, OutboxMessage)
    assert row.status == OutboxStatus.undeliverable
    assert "blocked" in (row.last_error or "")
    [contact] = await rows(env.sessions, Contact)
    assert contact.undeliverable_at is not None
    message = (await rows(env.sessions, Message, Message.direction == "out"))[0]
    assert message.delivery_status == "undeliverable"


async def test_chat_not_found_is_permanent_and_network_errors_retry(env: Env) -> None:
    conversation_id = await _conversation(env)
    await _reply(env.sessions, conversation_id, OutboundPayload("one"))
    env.fake.fail_next("sendMessage", 400)  # "Bad Request: chat not found"
    await env.dispatcher.run_once()
    [row] = await rows(env.sessions, OutboxMessage)
    assert row.status == OutboxStatus.undeliverable and "chat not found" in (row.last_error or "").lower()
    [contact] = await rows(env.sessions, Contact)
    assert contact.undeliverable_at is None  # not "blocked"

    other = await _conversation(env, chat=CHAT + 1, update_id=101)
    await _reply(env.sessions, other, OutboundPayload("two"))
    env.fake.fail_next("sendMessage", 502)
    await env.dispatcher.run_once()
    second = (await rows(env.sessions, OutboxMessage))[-1]
    assert second.status == OutboxStatus.pending and second.attempts == 1
    assert second.next_attempt_at > datetime.now(UTC)


async def test_attachments_become_links_and_long_texts_fit(env: Env) -> None:
    conversation_id = await _conversation(env)
    payload = OutboundPayload(
        "Here is your label " + "z" * 5000,
        attachments=(Attachment(kind="file", filename="label.pdf", url="/files/labels/R1-1.pdf?t=1.abc"),
                     Attachment(kind="file", filename="guide.pdf", url="https://cdn.example/guide.pdf")),
    )
    await _reply(env.sessions, conversation_id, payload)
    await env.dispatcher.run_once()
    [sent] = env.fake.sent_messages(CHAT)
    assert len(sent["text"]) <= 4096
    assert sent["text"].endswith("📎 label.pdf: https://shop.example/files/labels/R1-1.pdf?t=1.abc\n"
                                 "📎 guide.pdf: https://cdn.example/guide.pdf")
    assert render_text(OutboundPayload("", attachments=(Attachment("image", "p.jpg", url="AgAC"),)), "x") == "📎 p.jpg"


def test_pacer_spaces_sends_per_chat_and_overall() -> None:
    clock = [100.0]
    pacer = SendPacer(per_chat=1.0, overall=4.0, clock=lambda: clock[0])
    assert [pacer.reserve("a") for _ in range(3)] == [0.0, 1.0, 2.0]
    # other chats only wait for the overall rate (4/s → 0.25 s apart), after the bookings above
    assert pacer.reserve("b") == pytest.approx(2.25)
    clock[0] = 110.0
    assert [pacer.reserve(c) for c in ("c", "d", "e")] == pytest.approx([0.0, 0.25, 0.5])


async def test_sender_waits_for_its_slot(aiohttp_client: Any, fake: FakeTelegram, settings: Any,
                                         sessions: Any) -> None:
    waits: list[float] = []

    async def record_sleep(seconds: float) -> None:
        waits.append(seconds)

    pacer = SendPacer(per_chat=0.5, overall=30.0, clock=lambda: 0.0, sleep=record_sleep)
    env = await make_env(aiohttp_client, fake, tg_settings(settings, fake), sessions, pacer=pacer)
    conversation_id = await _conversation(env)
    for text in ("one", "two", "three"):
        await _reply(sessions, conversation_id, OutboundPayload(text))
    await env.dispatcher.run_once()
    assert [m["text"] for m in fake.sent_messages(CHAT)] == ["one", "two", "three"]
    assert waits == [2.0, 4.0]  # 0.5 messages per second to one chat


def test_default_limits_are_telegrams(lite_settings: Any) -> None:
    """Out of the box: 1 message per second to one chat, 30 per second in all (a frozen clock,
    so these are the slots the pacer books, not measured times)."""
    pacer = SendPacer.from_settings(lite_settings, clock=lambda: 50.0)
    assert [pacer.reserve("same") for _ in range(3)] == pytest.approx([0.0, 1.0, 2.0])
    pacer = SendPacer.from_settings(lite_settings, clock=lambda: 50.0)
    waits = [pacer.reserve(f"chat-{i}") for i in range(90)]
    assert sum(1 for w in waits if w < 1.0 - 1e-9) == 30  # 30 different chats share the first second
    assert waits[-1] == pytest.approx(89 / 30)


def test_a_zero_rate_switches_that_limit_off(lite_settings: Any) -> None:
    off = SendPacer.from_settings(lite_settings.model_copy(update={"telegram_per_chat_per_second": 0.0,
                                                                    "telegram_overall_per_second": 0.0}),
                                  clock=lambda: 50.0)
    assert not off.enabled
    assert {off.reserve("same") for _ in range(100)} == {0.0}
    # per chat off, overall kept: one chat is only held to the overall rate
    overall_only = SendPacer.from_settings(lite_settings.model_copy(update={"telegram_per_chat_per_second": 0.0}),
                                           clock=lambda: 50.0)
    assert [overall_only.reserve("same") for _ in range(3)] == pytest.approx([0.0, 1 / 30, 2 / 30])


def test_limit_and_connection_settings(monkeypatch: pytest.MonkeyPatch, lite_settings: Any) -> None:
    from bot.connectors.telegram.setup import http_limits
    from shopdesk.settings import SettingsError, load_settings

    with pytest.raises(SettingsError, match="SHOPDESK_TELEGRAM_PER_CHAT_PER_SECOND"):
        load_settings(telegram_per_chat_per_second=-1)
    monkeypatch.setenv("SHOPDESK_TELEGRAM_OVERALL_PER_SECOND", "0")
    monkeypatch.setenv("SHOPDESK_TELEGRAM_CONNECTION_POOL_SIZE", "4")
    monkeypatch.setenv("SHOPDESK_OUTBOX_CONCURRENCY", "4")  # the pool must hold every send in flight
    monkeypatch.setenv("SHOPDESK_TELEGRAM_KEEPALIVE_SECONDS", "0")
    s = load_settings()
    assert s.telegram_overall_per_second == 0 and s.telegram_per_chat_per_second == 1.0
    limits = http_limits(s)
    assert (limits.max_connections, limits.max_keepalive_connections) == (4, 0)
    with pytest.raises(SettingsError, match="SHOPDESK_TELEGRAM_CONNECTION_POOL_SIZE"):
        load_settings(telegram_connection_pool_size=0)
    default = http_limits(lite_settings)
    assert (default.max_connections, default.max_keepalive_connections, default.keepalive_expiry) == (64, 64, 30.0)
    httpx_bot = tgc.make_bot(lite_settings.model_copy(update={"telegram_token": SecretStr("1:abc"),
                                                               "telegram_http_client": "httpx"}))
    assert httpx_bot.request._client_kwargs["limits"] == default  # PTB's own client gets them
    bot = tgc.make_bot(lite_settings.model_copy(update={"telegram_token": SecretStr("1:abc")}))
    assert lite_settings.telegram_http_client == "aiohttp"  # the default backend gets the same pool
    assert (bot.request.pool_size, bot.request.keepalive_seconds, bot.request.read_timeout) == (64, 30.0, 60.0)


async def test_limits_off_send_without_waiting(aiohttp_client: Any, fake: FakeTelegram, settings: Any,
                                               sessions: Any) -> None:
    off = tg_settings(settings, fake, telegram_per_chat_per_second=0.0, telegram_overall_per_second=0.0)
    env = await make_env(aiohttp_client, fake, off, sessions)
    assert not env.connector.sender.pacer.enabled
    conversation_id = await _conversation(env)
    for i in range(5):
        await _reply(sessions, conversation_id, OutboundPayload(f"reply {i}"))
    await env.dispatcher.run_once()
    assert [m["text"] for m in fake.sent_messages(CHAT)] == [f"reply {i}" for i in range(5)]


# --------------------------------------------------------------------------- polling, CLI, admin page


async def test_long_polling_feeds_the_same_path(aiohttp_client: Any, fake: FakeTelegram, settings: Any,
                                                sessions: Any) -> None:
    fake.webhook = {"url": "https://old.example/webhooks/telegram"}
    env = await make_env(aiohttp_client, fake, tg_settings(settings, fake), sessions, polling=True)
    fake.queue_update(make_message_update(200, CHAT, "from polling"))
    fake.queue_update({"update_id": 201, "edited_message": make_message_update(1, CHAT, "x")["message"]})
    fake.queue_update(make_message_update(202, CHAT, "second"))
    await eventually(lambda: len(env.inbound) == 2)
    assert fake.webhook["url"] == ""  # polling removed the webhook (getUpdates is refused while one is set)
    # the same update arriving over the webhook too is a repeat
    resp = await env.post(make_message_update(200, CHAT, "from polling"))
    assert (await resp.json())["result"] == "duplicate"
    assert [m.text for m in await rows(sessions, Message, Message.direction == "in")] == ["from polling", "second"]
    await eventually(lambda: fake.pending_updates == [])  # the offset confirmed them


async def test_set_webhook_and_status(fake: FakeTelegram, lite_settings: Any) -> None:
    s = tg_settings(lite_settings, fake)
    out = await set_webhook(s, "https://shop.example/webhooks/telegram")
    assert "https://shop.example/webhooks/telegram" in out
    assert fake.webhook["url"] == "https://shop.example/webhooks/telegram"
    assert fake.webhook["secret_token"] == SECRET
    assert fake.webhook["allowed_updates"] == ["message", "callback_query"]

    fake.queue_update(make_message_update(1, CHAT, "waiting"))
    fake.set_webhook_error("Wrong response from the webhook: 503 Service Unavailable", date=1_700_000_000)
    status = await webhook_status(s)
    assert status.pending_update_count == 1
    assert status.last_error_message == "Wrong response from the webhook: 503 Service Unavailable"
    text = await webhook_status_text(s)
    assert "Pending updates:  1" in text and "2023-11-14 22:13:20+00:00" in text
    assert fake.token not in out + text


@pytest.mark.parametrize(
    ("url", "extra", "message"),
    [
        ("http://shop.example/webhooks/telegram", {}, "https://"),
        ("https://shop.example/hooks", {}, "/webhooks/telegram"),
        ("https://shop.example/webhooks/telegram", {"telegram_webhook_secret": None}, "WEBHOOK_SECRET"),
        ("https://shop.example/webhooks/telegram", {"telegram_token": None}, "TELEGRAM_TOKEN"),
    ],
)
async def test_set_webhook_refuses_bad_setup(fake: FakeTelegram, lite_settings: Any, url: str, extra: dict[str, Any],
                                             message: str) -> None:
    with pytest.raises(TelegramSetupError, match=message):
        await set_webhook(tg_settings(lite_settings, fake, **extra), url)
    assert fake.calls_for("setWebhook") == []


def our_logs(caplog: Any) -> str:
    """Everything logged except the fake server's own access log (its paths hold the token)."""
    return "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith("aiohttp.access"))


async def test_rejected_token_is_reported_without_the_token(fake: FakeTelegram, lite_settings: Any, caplog: Any) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "999:WrongTokenValue_abcdefghijklmnop"
    with pytest.raises(TelegramSetupError) as exc_info:
        await webhook_status(tg_settings(lite_settings, fake, telegram_token=SecretStr(wrong)))
    assert "rejected" in str(exc_info.value)
    assert "WrongTokenValue" not in str(exc_info.value)
    assert "WrongTokenValue" not in our_logs(caplog)


async def test_admin_page_shows_webhook_state(aiohttp_client: Any, fake: FakeTelegram, settings: Any,
                                              sessions: Any) -> None:
    fake.webhook = {"url": "https://shop.example/webhooks/telegram"}
    fake.set_webhook_error("Connection timed out")
    admin = Agent(id=1, email="a@x.test", name="A", password_hash="x", role=Role.admin)
    env = await make_env(aiohttp_client, fake, tg_settings(settings, fake), sessions, agent=admin)
    resp = await env.client.get(tgc.ADMIN_PATH, headers={"Accept": "application/json"})
    assert resp.status == 200
    body = await resp.json()
    assert body["url"] == "https://shop.example/webhooks/telegram"
    assert body["last_error_message"] == "Connection timed out"
    assert body["mode"] == "webhook"

    plain = Agent(id=2, email="b@x.test", name="B", password_hash="x", role=Role.agent)
    env2 = await make_env(aiohttp_client, fake, tg_settings(settings, fake), sessions, agent=plain)
    assert (await env2.client.get(tgc.ADMIN_PATH)).status == 404  # like every admin page
    env3 = await make_env(aiohttp_client, fake, tg_settings(settings, fake), sessions)
    assert (await env3.client.get(tgc.ADMIN_PATH)).status == 404


async def test_token_never_reaches_the_logs(aiohttp_client: Any, fake: FakeTelegram, settings: Any,
                                            sessions: Any, caplog: Any) -> None:
    caplog.set_level(logging.DEBUG)
    env = await make_env(aiohttp_client, fake, tg_settings(settings, fake), sessions)
    conversation_id = await _conversation(env)
    await _reply(sessions, conversation_id, OutboundPayload("hi"))
    fake.fail_next("sendMessage", 401)
    await env.dispatcher.run_once()
    [row] = await rows(sessions, OutboxMessage)
    assert row.status == OutboxStatus.pending and "token" in (row.last_error or "")
    secret_half = fake.token.split(":", 1)[1]
    assert secret_half not in our_logs(caplog)
    assert secret_half not in (row.last_error or "")


# --------------------------------------------------------------------------- composition


async def test_build_connectors_follows_settings(lite_settings: Any, fake: FakeTelegram) -> None:
    settings, sessions = lite_settings, None
    async def on_inbound(_result: Any) -> None:
        return None

    app = web.Application()
    senders = SenderRegistry()
    assert build_connectors(app, settings=settings, sessions=sessions, bus=EventBus(), senders=senders,
                            on_inbound=on_inbound) == []
    assert len(senders) == 0

    app = web.Application()
    connectors = build_connectors(app, settings=tg_settings(settings, fake), sessions=sessions, bus=EventBus(),
                                  senders=senders, on_inbound=on_inbound)
    assert [c.name for c in connectors] == ["telegram"]
    assert senders[Channel.telegram] is connectors[0].sender
    paths = {r.resource.canonical for r in app.router.routes() if r.resource is not None}
    assert WEBHOOK_PATH in paths and tgc.ADMIN_PATH in paths
    await connectors[0].bot.shutdown()


# --------------------------------------------------------------------------- the real bot


async def test_real_bot_answers_hi_with_buttons(aiohttp_client: Any, fake: FakeTelegram, settings: Any,
                                                sessions: Any) -> None:
    from bot.pipeline import Pipeline

    s = tg_settings(settings, fake)
    pipeline = Pipeline(sessions=sessions, bus=EventBus(), settings=s)
    env = await make_env(aiohttp_client, fake, s, sessions, processor=pipeline.process)
    update = make_message_update(300, CHAT, "hi", language_code="en")
    await asyncio.gather(*(env.post(update) for _ in range(3)))
    await env.settle()
    sent = fake.sent_messages(CHAT)
    assert len(sent) >= 1
    assert any("inline_keyboard" in (m.get("reply_markup") or {}) for m in sent)
    assert await count(sessions, Message, Message.direction == "in") == 1
    before = len(sent)
    await env.post(update)  # a late redelivery changes nothing
    await env.settle()
    assert len(fake.sent_messages(CHAT)) == before


async def test_composition_root_serves_the_webhook_and_the_admin_page(aiohttp_client: Any, fake: FakeTelegram,
                                                                      settings: Any, sessions: Any) -> None:
    """The real app (shopdesk.app.build_app): webhook → bot → outbox → Telegram, and the admin page."""
    import re

    from inbox.actions.agent_create import agent_create
    from shopdesk.app import RUNTIME, build_app

    s = tg_settings(settings, fake, public_url="http://127.0.0.1:8080")
    app = build_app(s, migrate_on_start=False)
    client = await aiohttp_client(app)
    # the server takes requests at once; the bot answers once its models are loaded (slow on a busy machine)
    await asyncio.wait_for(app[RUNTIME].bot_ready.wait(), 180)
    async with sessions() as db:
        await agent_create(db, "boss@shop.test", "correct horse battery", name="Boss", admin=True)
        await db.commit()

    resp = await client.post(WEBHOOK_PATH, json=make_message_update(500, CHAT, "hello"),
                             headers={SECRET_HEADER: SECRET})
    assert resp.status == 200
    await eventually(lambda: fake.sent_messages(CHAT), timeout=15)
    assert (await client.post(WEBHOOK_PATH, json=make_message_update(501, CHAT, "x"))).status == 403

    login_page = await (await client.get("/login")).text()
    token = re.search(r'name="csrf_token" value="([^"]+)"', login_page).group(1)
    resp = await client.post("/login", data={"email": "boss@shop.test", "password": "correct horse battery",
                                             "csrf_token": token, "next": "/inbox"}, allow_redirects=False)
    assert resp.status == 303
    page = await client.get(tgc.ADMIN_PATH)
    assert page.status == 200
    html = await page.text()
    assert "Pending updates" in html and "Telegram" in html and fake.token not in html

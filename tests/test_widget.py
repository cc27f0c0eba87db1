"""The web chat widget's socket, the webchat Sender and the storefront (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
from sqlmodel import col, select

from inbox.actions.message_note import message_note
from inbox.actions.message_send import agent_reply, message_send
from inbox.messages import OutboundPayload, QuickReply
from inbox.models import Author, Channel, Contact, Conversation, Message, OutboxMessage, OutboxStatus
from inbox.outbox import OutboxDispatcher
from inbox.web.webchat import TokenBucket, check_visitor_token, issue_visitor_token
from tests.db_helpers import count
from tests.web_helpers import (  # noqa: F401  (fast_hashing is an autouse fixture)
    WebApp,
    add_agent,
    build_web_app,
    fast_hashing,
    make_config,
)


@pytest.fixture
def web_app(sessions: Any) -> WebApp:
    return build_web_app(sessions, config=make_config(max_message_chars=200, widget_burst=8, widget_rate=2.0))


@pytest.fixture
async def client(aiohttp_client: Any, web_app: WebApp) -> Any:
    return await aiohttp_client(web_app.app)



async def receive(ws: Any, timeout: float = 30.0) -> dict[str, Any]:
    msg = await asyncio.wait_for(ws.receive(), timeout)
    return json.loads(msg.data)


async def receive_type(ws: Any, kind: str, timeout: float = 30.0) -> dict[str, Any]:
    async def loop() -> dict[str, Any]:
        while True:
            frame = await receive(ws, timeout)
            if frame["type"] == kind:
                return frame

    return await asyncio.wait_for(loop(), timeout)


async def connect(client: Any, visitor: str | None = None, token: str | None = None) -> tuple[Any, dict[str, Any], list[Any]]:
    ws = await client.ws_connect("/widget/ws")
    hello: dict[str, Any] = {"type": "hello", "lang": "en-US"}
    if visitor:
        hello.update(visitor=visitor, token=token)
    await ws.send_json(hello)
    session = await receive(ws)
    assert session["type"] == "session"
    history = await receive(ws)
    assert history["type"] == "history"
    return ws, session, history["messages"]


# --------------------------------------------------------------------------- identity


def test_visitor_tokens() -> None:
    key = b"k" * 32
    visitor = "abcdefghijklmnopqrstuvwx"
    token = issue_visitor_token(key, visitor, now=1_000_000)
    assert check_visitor_token(key, visitor, token, max_age_days=30, now=1_000_100)
    assert not check_visitor_token(key, "abcdefghijklmnopqrstuvwy", token, max_age_days=30, now=1_000_100)
    assert not check_visitor_token(b"x" * 32, visitor, token, max_age_days=30, now=1_000_100)
    assert not check_visitor_token(key, visitor, token, max_age_days=30, now=1_000_000 + 31 * 86400)
    issued, sig = token.split(".")
    assert not check_visitor_token(key, visitor, f"{int(issued) + 1}.{sig}", max_age_days=30, now=1_000_100)
    for bad in (None, "", "abc", "1.", ".x", 5):
        assert not check_visitor_token(key, visitor, bad, max_age_days=30)
    assert not check_visitor_token(key, "short", issue_visitor_token(key, "short"), max_age_days=30)


def test_token_bucket_refills() -> None:
    bucket = TokenBucket(2, 1000.0)
    assert bucket.take() and bucket.take()
    bucket.updated -= 0.01  # 10 ms at 1000/s refills the bucket
    assert bucket.take()


# --------------------------------------------------------------------------- messages


async def test_message_is_recorded_acknowledged_deduplicated_and_replayed(client: Any, sessions: Any, web_app: WebApp) -> None:
    ws, session, history = await connect(client)
    visitor = session["visitor"]
    assert history == [] and session["shop_name"] == "Test Shop"
    await ws.send_json({"type": "message", "text": "  Where is my order?  ", "client_id": "c-1"})
    ack = await receive(ws)
    assert ack["type"] == "message" and ack["author"] == "customer" and ack["client_id"] == "c-1"
    assert ack["text"] == "Where is my order?" and isinstance(ack["id"], int)
    # the same client_id again (a resend after a reconnect) never duplicates
    await ws.send_json({"type": "message", "text": "Where is my order?", "client_id": "c-1"})
    again = await receive(ws)
    assert again["id"] == ack["id"]
    assert await count(sessions, Message) == 1
    assert len(web_app.inbound) == 1 and web_app.inbound[0].message_id == ack["id"]
    async with sessions() as db:
        message = await db.get(Message, ack["id"])
        contact = (await db.exec(select(Contact))).one()
    assert message.dedupe_key == f"{visitor}:c-1" and message.channel == Channel.webchat
    assert contact.external_id == visitor and contact.language == "en-US"
    await ws.close()

    # after a reload: same identity, history replayed from the database
    ws2, session2, history2 = await connect(client, visitor, session["token"])
    assert session2["visitor"] == visitor
    assert [(m["id"], m["author"], m["text"]) for m in history2] == [(ack["id"], "customer", "Where is my order?")]
    await ws2.close()


async def test_forged_or_missing_token_gets_a_new_identity(client: Any, sessions: Any) -> None:
    ws, session, _ = await connect(client)
    await ws.send_json({"type": "message", "text": "my secret order", "client_id": "a1"})
    await receive(ws)
    await ws.close()
    for token in ("1700000000.deadbeef", "", None):
        other, session2, history = await connect(client, session["visitor"], token)
        assert session2["visitor"] != session["visitor"]
        assert history == []
        await other.close()


async def test_postback_is_stored_with_its_value(client: Any, sessions: Any) -> None:
    ws, _session, _ = await connect(client)
    await ws.send_json({"type": "postback", "value": "intent:track_order", "label": "Track my order", "client_id": "p-1"})
    ack = await receive(ws)
    assert ack["text"] == "Track my order" and ack["author"] == "customer"
    async with sessions() as db:
        message = await db.get(Message, ack["id"])
    assert message.postback == "intent:track_order" and message.text == "Track my order"
    await ws.close()


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("not json", "not valid JSON"),
        ("[1, 2]", "JSON object"),
        ('{"type": "shout", "text": "hi"}', "Unknown frame type"),
        ('{"type": "message", "text": "   ", "client_id": "e1"}', "empty"),
        ('{"type": "message", "text": "' + "x" * 201 + '", "client_id": "e2"}', "too long"),
        ('{"type": "message", "text": "nul \\u0000 byte", "client_id": "e3"}', "NUL"),
        ('{"type": "message", "text": 42, "client_id": "e4"}', "must be a string"),
        ('{"type": "message", "text": "hi"}', "client_id"),
        ('{"type": "message", "text": "hi", "client_id": "bad id with spaces"}', "client_id"),
        ('{"type": "postback", "value": "", "label": "x", "client_id": "e5"}', "button"),
        ('{"type": "message", "text": "\\ud800", "client_id": "e6"}', "could not be accepted"),
    ],
)
async def test_bad_frames_get_an_error_and_store_nothing(client: Any, sessions: Any, raw: str, expected: str) -> None:
    ws, _session, _ = await connect(client)
    await ws.send_str(raw)
    frame = await receive(ws)
    assert frame["type"] == "error"
    assert expected.lower() in frame["message"].lower()
    assert await count(sessions, Message) == 0
    # the connection is kept: a good message still works
    await ws.send_json({"type": "message", "text": "ok now", "client_id": "good"})
    assert (await receive(ws))["type"] == "message"
    await ws.close()


async def test_binary_frames_and_messages_before_hello_are_refused(client: Any, sessions: Any) -> None:
    ws = await client.ws_connect("/widget/ws")
    await ws.send_json({"type": "message", "text": "hi", "client_id": "early"})
    frame = await receive(ws)
    assert frame["type"] == "error" and "hello" in frame["message"]
    await ws.send_bytes(b"\xff\xfe invalid utf-8")
    frame = await receive(ws)
    assert frame["type"] == "error" and "Binary" in frame["message"]
    assert not ws.closed
    assert await count(sessions, Message) == 0
    await ws.close()


async def test_too_many_frames_per_second_are_refused(client: Any, sessions: Any) -> None:
    ws, _session, _ = await connect(client)  # hello used one token of the burst of 8
    for i in range(20):
        await ws.send_json({"type": "message", "text": f"spam {i}", "client_id": f"s{i}"})
    frames = [await receive(ws) for _ in range(20)]
    errors = [f for f in frames if f["type"] == "error"]
    assert errors and all("too fast" in f["message"] for f in errors)
    stored = await count(sessions, Message)
    assert 1 <= stored <= 9 and stored == 20 - len(errors)
    await ws.close()


async def test_oversized_frame_closes_only_that_socket(client: Any) -> None:
    ws, _session, _ = await connect(client)
    await ws.send_str(json.dumps({"type": "message", "text": "x" * 100_000, "client_id": "big"}))
    msg = await asyncio.wait_for(ws.receive(), 5)
    assert msg.type.name in ("CLOSE", "CLOSED", "CLOSING")
    ws2, _s, _h = await connect(client)
    await ws2.close()


# --------------------------------------------------------------------------- delivery to the widget


async def test_agent_reply_is_pushed_notes_never_are(client: Any, sessions: Any, web_app: WebApp) -> None:
    agent = await add_agent(sessions)
    ws, session, _ = await connect(client)
    other, other_session, _ = await connect(client)
    await ws.send_json({"type": "message", "text": "hello?", "client_id": "m1"})
    ack = await receive(ws)
    async with sessions() as db:
        conv = (await db.exec(select(Conversation))).one()
        await message_note(db, conv, agent, "internal: customer is a VIP")
        reply = await agent_reply(db, conv, agent, "Hi! <b>How</b> can I help?")
        bot = message_send(db, conv, OutboundPayload("Pick one", (QuickReply("Track", "track"),)), author=Author.bot)
        await db.commit()
    dispatcher = OutboxDispatcher(sessions, web_app.senders, web_app.bus)
    assert await dispatcher.run_once() == 2
    pushed = await receive_type(ws, "message")
    assert pushed == {"type": "message", "id": reply.id, "author": "agent", "author_name": "Ana",
                      "text": "Hi! <b>How</b> can I help?", "quick_replies": []}
    pushed = await receive_type(ws, "message")
    assert pushed["id"] == bot.id and pushed["quick_replies"] == [{"label": "Track", "value": "track"}]
    async with sessions() as db:
        rows = (await db.exec(select(OutboxMessage))).all()
    assert {r.status for r in rows} == {OutboxStatus.sent}
    assert all(r.channel_message_id.startswith("webchat:") for r in rows)

    # the other visitor got nothing
    with pytest.raises(asyncio.TimeoutError):
        await receive(other, timeout=0.3)
    # the replay never contains the internal note
    await ws.close()
    ws2, _s, history = await connect(client, session["visitor"], session["token"])
    texts = [m["text"] for m in history]
    assert texts == ["hello?", "Hi! <b>How</b> can I help?", "Pick one"]
    assert all("VIP" not in t for t in texts)
    assert history[-1]["quick_replies"] == [{"label": "Track", "value": "track"}]
    await ws2.close()
    await other.close()
    _ = (ack, other_session)


async def test_reply_with_no_open_socket_still_counts_as_delivered(client: Any, sessions: Any, web_app: WebApp) -> None:
    agent = await add_agent(sessions)
    ws, session, _ = await connect(client)
    await ws.send_json({"type": "message", "text": "hi", "client_id": "m1"})
    await receive(ws)
    await ws.close()
    await asyncio.sleep(0.05)
    async with sessions() as db:
        conv = (await db.exec(select(Conversation))).one()
        await agent_reply(db, conv, agent, "We answered while you were away")
        await db.commit()
    dispatcher = OutboxDispatcher(sessions, web_app.senders, web_app.bus)
    assert await dispatcher.run_once() == 1
    assert await count(sessions, OutboxMessage, OutboxMessage.status == OutboxStatus.sent) == 1
    ws2, _s, history = await connect(client, session["visitor"], session["token"])
    assert history[-1]["text"] == "We answered while you were away"
    await ws2.close()


# --------------------------------------------------------------------------- pages


async def test_shop_page_and_widget_script(client: Any) -> None:
    resp = await client.get("/shop")
    assert resp.status == 200
    body = await resp.text()
    assert "Test Shop" in body
    assert '<script src="/widget.js" defer' in body
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in body
    assert "<script>" not in body and " onload=" not in body and " style=" not in body
    assert resp.headers["Content-Security-Policy"].startswith("default-src 'self'; script-src 'self';")
    js = await client.get("/widget.js")
    assert js.status == 200 and js.headers["Content-Type"].startswith("application/javascript")
    source = await js.text()
    assert "innerHTML" not in source and "eval(" not in source and "textContent" in source
    css = await client.get("/static/web/widget.css")
    assert css.status == 200 and css.headers["Content-Type"].startswith("text/css")
    htmx = await client.get("/static/htmx/htmx.min.js")
    assert htmx.status == 200 and "htmx" in (await htmx.text())[:2000]


async def test_agent_list_updates_for_widget_messages(client: Any, sessions: Any, web_app: WebApp) -> None:
    """The widget's message reaches the event bus (what the agents' live list listens to)."""
    ws, _session, _ = await connect(client)
    start = time.monotonic()
    await ws.send_json({"type": "message", "text": "ping from the widget", "client_id": "live-1"})
    ack = await receive(ws)
    while not any(e.type == "message.created" and e.data.get("message_id") == ack["id"] for e in web_app.events):
        assert time.monotonic() - start < 5
        await asyncio.sleep(0.01)
    await ws.close()
    assert await count(sessions, Message, col(Message.channel) == Channel.webchat) == 1

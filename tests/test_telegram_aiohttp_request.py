"""python-telegram-bot on the aiohttp request backend (``bot.connectors.telegram.aiohttp_request``):
sends go through one kept-alive pool, and the failures keep the meaning the sender relies on (a
connect timeout: not sent, retried; a read timeout: outcome unknown; a refused connection: a
network error that names no URL, so no token)."""

from __future__ import annotations

import asyncio
import json
import socket
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import NetworkError, TimedOut

from bot.connectors.telegram.aiohttp_request import AiohttpRequest
from bot.connectors.telegram.send import SendPacer, TelegramSender
from inbox.channels import OutcomeUnknown, RetryLater
from inbox.messages import OutboundPayload
from inbox.models import Channel, Contact
from tests.fakes.telegram import DEFAULT_TOKEN


@pytest.fixture
async def api(aiohttp_server: Any) -> Any:
    """A Bot API that answers sendMessage at once, or after ``delay`` seconds; counts connections."""
    state: dict[str, Any] = {"delay": 0.0, "peers": set(), "texts": [], "types": [], "params": []}

    async def handle(request: web.Request) -> web.Response:
        state["peers"].add(request.transport.get_extra_info("peername") if request.transport else None)
        # the Bot API takes a JSON body or a form; the backend sends JSON unless there are files
        state["types"].append(request.content_type)
        form = await request.json() if request.content_type == "application/json" else await request.post()
        state["texts"].append(form.get("text"))
        state["params"].append(dict(form))
        if state["delay"]:
            await asyncio.sleep(state["delay"])
        return web.json_response({"ok": True, "result": {
            "message_id": len(state["texts"]), "date": 0, "chat": {"id": int(str(form["chat_id"])), "type": "private"},
            "text": form.get("text")}})

    app = web.Application()
    app.router.add_post("/bot{token}/{method}", handle)
    server = await aiohttp_server(app)
    state["base"] = f"http://127.0.0.1:{server.port}/bot"
    return state


def make(api: dict[str, Any], **kw: Any) -> tuple[Bot, AiohttpRequest]:
    options: dict[str, Any] = {"connection_pool_size": 4, "keepalive_seconds": 30.0, "read_timeout": 5.0} | kw
    request = AiohttpRequest(**options)
    return Bot(DEFAULT_TOKEN, base_url=api["base"], request=request), request


async def test_sends_reuse_the_pooled_connections(api: dict[str, Any]) -> None:
    bot, request = make(api)
    try:
        sent = await asyncio.gather(*(bot.send_message(chat_id=7, text=f"reply {i}") for i in range(20)))
        assert sorted(m.text for m in sent) == sorted(f"reply {i}" for i in range(20))
        assert len(api["peers"]) <= 4  # the pool's bound, connections kept alive between sends
    finally:
        await request.shutdown()


async def test_a_send_without_files_is_a_json_body_and_an_upload_a_multipart_form(api: dict[str, Any]) -> None:
    bot, request = make(api)
    markup = InlineKeyboardMarkup([[InlineKeyboardButton("Track", callback_data="intent:track")]])
    try:
        sent = await bot.send_message(chat_id=7, text="Где мой заказ? 📦", reply_markup=markup)
        assert sent.text == "Где мой заказ? 📦" and sent.chat.id == 7
        await bot.send_document(chat_id=7, document=b"%PDF-1.4 receipt", filename="receipt.pdf")
    finally:
        await request.shutdown()
    assert api["types"] == ["application/json", "multipart/form-data"]
    params = api["params"][0]
    assert int(params["chat_id"]) == 7 and params["text"] == "Где мой заказ? 📦"
    # PTB's json_payload: each value JSON-encoded as the Bot API reads form values too
    assert json.loads(params["reply_markup"]) == {"inline_keyboard": [[{"text": "Track", "callback_data": "intent:track"}]]}
    assert api["params"][1]["document"].filename == "receipt.pdf"


async def test_a_connect_timeout_was_not_sent_and_is_retried(api: dict[str, Any]) -> None:
    api["delay"] = 1.0
    bot, request = make(api, connection_pool_size=1, connect_timeout=0.05, pool_timeout=0.05)
    sender = TelegramSender(bot, SendPacer(0, 0), public_url="http://shop.example", token=DEFAULT_TOKEN)
    contact = Contact(channel=Channel.telegram, external_id="7")
    try:
        busy = asyncio.ensure_future(bot.send_message(chat_id=7, text="slow"))
        await asyncio.sleep(0.2)
        with pytest.raises(TimedOut) as caught:  # the one connection is busy: no connection in time
            await bot.send_message(chat_id=7, text="waits")
        assert isinstance(caught.value.__cause__, aiohttp.ConnectionTimeoutError)
        with pytest.raises(RetryLater):
            await sender.send(contact, OutboundPayload("waits too"))
        await busy
        assert api["texts"] == ["slow"]  # neither of the others reached the Bot API
    finally:
        await request.shutdown()


async def test_a_read_timeout_has_an_unknown_outcome(api: dict[str, Any]) -> None:
    api["delay"] = 1.0
    bot, request = make(api, read_timeout=0.1)
    sender = TelegramSender(bot, SendPacer(0, 0), public_url="http://shop.example", token=DEFAULT_TOKEN)
    try:
        with pytest.raises(OutcomeUnknown):
            await sender.send(Contact(channel=Channel.telegram, external_id="7"), OutboundPayload("maybe"))
        assert api["texts"] == ["maybe"]  # it did reach the Bot API: repeating it could send it twice
    finally:
        await request.shutdown()


async def test_a_refused_connection_is_a_network_error_without_the_token() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again: nothing listens there
    request = AiohttpRequest(connection_pool_size=2, keepalive_seconds=0, read_timeout=5.0)
    bot = Bot(DEFAULT_TOKEN, base_url=f"http://127.0.0.1:{port}/bot", request=request)
    try:
        with pytest.raises(NetworkError) as caught:
            await bot.send_message(chat_id=7, text="hello")
        assert not isinstance(caught.value, TimedOut)
        assert DEFAULT_TOKEN.split(":")[1] not in str(caught.value)
        assert str(caught.value).startswith("aiohttp.")
    finally:
        await request.shutdown()

"""The customer's chat socket at ``/widget/ws``: identity (``hello``), messages and button
presses in, errors out. The frames are read by :mod:`inbox.web.webchat.translate`; a message is
stored by the ``message_record`` action and announced to the bot after its commit."""

from __future__ import annotations

import json
import logging
import secrets
import time
from dataclasses import dataclass
from typing import Any

from aiohttp import WSMsgType, web

from inbox.actions.message_record import message_record
from inbox.messages import InvalidMessage
from inbox.web.state import STATE
from inbox.web.webchat.send import load_history
from inbox.web.webchat.setup import check_visitor_token, issue_visitor_token
from inbox.web.webchat.translate import FrameRefused, client_id, friendly, read_inbound
from shopbase import stagetrace
from shopbase.text import clean_line

__all__ = ["TokenBucket", "widget_socket"]

log = logging.getLogger("inbox.web.widget")

_HELLO_TIMEOUT = 30.0


class TokenBucket:
    """``burst`` frames at once, then ``rate`` per second; a ``rate`` of 0 limits nothing."""

    def __init__(self, burst: int, rate: float) -> None:
        self.capacity = float(burst)
        self.rate = rate
        self.tokens = float(burst)
        self.updated = time.monotonic()

    def take(self) -> bool:
        if not self.rate:
            return True
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


@dataclass
class _Conn:
    ws: web.WebSocketResponse
    bucket: TokenBucket
    visitor: str | None = None
    lang: str | None = None


async def _error(ws: web.WebSocketResponse, message: str, client_id: str | None = None) -> None:
    frame: dict[str, Any] = {"type": "error", "message": message}
    if client_id:
        frame["client_id"] = client_id
    await ws.send_str(json.dumps(frame))


async def _hello(request: web.Request, conn: _Conn, frame: dict[str, Any]) -> None:
    state = request.app[STATE]
    hub = state.visitors
    visitor = frame.get("visitor")
    if not check_visitor_token(
        state.visitor_key, visitor, frame.get("token"), max_age_days=state.config.visitor_token_days
    ):
        visitor = secrets.token_urlsafe(18)
    assert isinstance(visitor, str)
    lang = frame.get("lang")
    conn.lang = clean_line(lang, 16) or None if isinstance(lang, str) else None
    if conn.visitor is not None:
        hub.remove(conn.visitor, conn.ws)
    conn.visitor = visitor
    hub.add(visitor, conn.ws)
    await conn.ws.send_str(
        json.dumps(
            {
                "type": "session",
                "visitor": visitor,
                "token": issue_visitor_token(state.visitor_key, visitor),
                "shop_name": state.config.shop_name,
            }
        )
    )
    history = await load_history(state.sessions, visitor)
    await conn.ws.send_str(json.dumps({"type": "history", "messages": history}))


async def _inbound(request: web.Request, conn: _Conn, frame: dict[str, Any], kind: str) -> None:
    if stagetrace.ENABLED:
        stagetrace.arrived()
    state = request.app[STATE]
    assert conn.visitor is not None
    message = read_inbound(frame, kind, visitor=conn.visitor, lang=conn.lang,
                           max_chars=state.config.max_message_chars)
    if isinstance(message, FrameRefused):
        await _error(conn.ws, message.message, message.client_id)
        return
    cid = message.channel_message_id
    try:
        result = await message_record(
            state.sessions, message, reopen_days=state.config.reopen_days, max_chars=state.config.max_message_chars
        )
    except InvalidMessage as exc:
        await _error(conn.ws, friendly(exc.reason, state.config.max_message_chars), cid)
        return
    if stagetrace.ENABLED:
        stagetrace.recorded(result.message_id, result.conversation_id)
    await state.visitors.push(
        conn.visitor,
        {
            "type": "message",
            "id": result.message_id,
            "author": "customer",
            "author_name": None,
            "text": message.text,
            "quick_replies": [],
            "client_id": cid,
        },
    )
    if not result.duplicate and state.on_inbound is not None:
        try:
            await state.on_inbound(result)
        except Exception:
            log.exception("on_inbound failed for message %s", result.message_id)


async def widget_socket(request: web.Request) -> web.StreamResponse:
    """GET /widget/ws — the customer's chat socket (no cookies, no CSRF; identity is the token)."""
    state = request.app[STATE]
    max_bytes = state.config.max_message_chars * 12 + 4096
    ws = web.WebSocketResponse(heartbeat=25.0, max_msg_size=max_bytes)
    await ws.prepare(request)
    conn = _Conn(ws=ws, bucket=TokenBucket(state.config.widget_burst, state.config.widget_rate))
    try:
        while not ws.closed:
            try:
                msg = await ws.receive(timeout=None if conn.visitor else _HELLO_TIMEOUT)
            except TimeoutError:
                await ws.close(code=4408, message=b"hello expected")
                break
            if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
                break
            if not conn.bucket.take():
                await _error(ws, "You are sending messages too fast. Please wait a moment.")
                continue
            if msg.type == WSMsgType.BINARY:
                await _error(ws, "Binary frames are not supported; send JSON text.")
                continue
            if msg.type != WSMsgType.TEXT:
                continue
            try:
                frame = json.loads(msg.data)
            except (ValueError, RecursionError):  # RecursionError: nested deeper than the parser goes
                await _error(ws, "The frame is not valid JSON.")
                continue
            if not isinstance(frame, dict):
                await _error(ws, "The frame must be a JSON object.")
                continue
            kind = frame.get("type")
            if kind == "hello":
                await _hello(request, conn, frame)
            elif kind in ("message", "postback"):
                if conn.visitor is None:
                    await _error(ws, "Send a hello frame first.", client_id(frame))
                else:
                    await _inbound(request, conn, frame, str(kind))
            elif kind == "ping":
                await ws.send_str(json.dumps({"type": "pong"}))
            else:
                await _error(ws, "Unknown frame type.")
    finally:
        if conn.visitor is not None:
            state.visitors.remove(conn.visitor, ws)
    return ws

"""The web chat: the customer's WebSocket at ``/widget/ws``, the webchat Sender, ``/widget.js``, ``/shop``.

Identity. A visitor is anonymous: on the first ``hello`` the server mints a random visitor id
and a token ``<issued>.<HMAC(key, visitor, issued)>``; the widget keeps both in localStorage
and presents them in the next ``hello``, so the conversation resumes after a reload. The
token is the visitor's bearer credential; a bad or expired one simply gets a new identity
(never someone else's conversation). It is re-issued on every connect.

Frames (JSON text). Client → server::

    {"type": "hello", "visitor": "...", "token": "...", "lang": "en"}   (first)
    {"type": "message", "text": "...", "client_id": "..."}
    {"type": "postback", "value": "...", "label": "...", "client_id": "..."}

Server → client: ``session`` (identity), ``history`` (replayed from the database),
``message`` ``{id, author, author_name, text, quick_replies, client_id?}`` and ``error``
``{message, client_id?}``. A bad frame (not JSON, unknown type, empty, too long, NUL,
binary, too many per second) gets an error frame and stores nothing; the socket stays open.
``client_id`` is the dedupe key: a resend after a reconnect is acknowledged with the
stored message's id and never stored twice.

The widget never receives internal notes, system lines, or another visitor's messages:
history is read by this visitor's contact only and pushes go to this visitor's sockets only.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
import secrets
import time
import uuid
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from aiohttp import WSMsgType, web
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from inbox.channels import PermanentFailure
from inbox.messages import InboundMessage, InvalidMessage, OutboundPayload, check_text
from inbox.models import Agent, Author, Channel, Contact, Conversation, Message, OutboxMessage, OutboxStatus
from inbox.web.rendering import render
from inbox.web.state import STATE, sign
from shopbase.text import clean_line

__all__ = [
    "VisitorHub",
    "WebchatSender",
    "TokenBucket",
    "issue_visitor_token",
    "visitor_label",
    "check_visitor_token",
    "widget_socket",
    "widget_js",
    "shop_page",
    "HISTORY_LIMIT",
]

log = logging.getLogger("inbox.web.widget")

HISTORY_LIMIT = 100
_VISITOR_RE = re.compile(r"^[A-Za-z0-9_-]{16,48}$")
_CLIENT_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_MAX_POSTBACK = 256
_MAX_LABEL = 200
_SEND_TIMEOUT = 5.0
_HELLO_TIMEOUT = 30.0
_SHOWN_AUTHORS = (Author.customer, Author.bot, Author.agent)
STATIC_DIR = Path(__file__).parent / "static"


# --------------------------------------------------------------------------- identity


def issue_visitor_token(key: bytes, visitor: str, now: float | None = None) -> str:
    issued = int(time.time() if now is None else now)
    return f"{issued}.{sign(key, f'visitor:v1:{visitor}:{issued}')}"


def check_visitor_token(key: bytes, visitor: Any, token: Any, *, max_age_days: int, now: float | None = None) -> bool:
    if not isinstance(visitor, str) or not isinstance(token, str) or not _VISITOR_RE.match(visitor):
        return False
    issued_text, _, signature = token.partition(".")
    if not issued_text.isascii() or not issued_text.isdigit() or len(issued_text) > 12 or not signature:
        return False
    issued = int(issued_text)
    current = time.time() if now is None else now
    if issued > current + 300 or current - issued > max_age_days * 86400:
        return False
    return secrets.compare_digest(signature, sign(key, f"visitor:v1:{visitor}:{issued}"))


def visitor_label(visitor: str) -> str:
    """A short, stable, readable name for an anonymous visitor ("Web visitor 7F3A")."""
    return "Web visitor " + hashlib.sha256(visitor.encode()).hexdigest()[:4].upper()


class TokenBucket:
    """``burst`` frames at once, then ``rate`` per second."""

    def __init__(self, burst: int, rate: float) -> None:
        self.capacity = float(burst)
        self.rate = rate
        self.tokens = float(burst)
        self.updated = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


# --------------------------------------------------------------------------- sockets


class VisitorHub:
    """The open widget sockets, by visitor id."""

    def __init__(self) -> None:
        self._sockets: dict[str, set[web.WebSocketResponse]] = {}

    def add(self, visitor: str, ws: web.WebSocketResponse) -> None:
        self._sockets.setdefault(visitor, set()).add(ws)

    def remove(self, visitor: str, ws: web.WebSocketResponse) -> None:
        group = self._sockets.get(visitor)
        if group is not None:
            group.discard(ws)
            if not group:
                del self._sockets[visitor]

    def count(self, visitor: str) -> int:
        return len(self._sockets.get(visitor, ()))

    async def push(self, visitor: str, frame: dict[str, Any]) -> int:
        """Send to every open socket of ``visitor``; returns how many got it."""
        data = json.dumps(frame)
        delivered = 0
        for ws in list(self._sockets.get(visitor, ())):
            try:
                await asyncio.wait_for(ws.send_str(data), _SEND_TIMEOUT)
                delivered += 1
            except (TimeoutError, ConnectionError, RuntimeError):
                self.remove(visitor, ws)
        return delivered

    async def close_all(self) -> None:
        sockets = [ws for group in self._sockets.values() for ws in group]
        self._sockets.clear()
        closing = (ws.close(code=1001, message=b"server shutdown") for ws in sockets)
        await asyncio.gather(*closing, return_exceptions=True)


def _message_frame(message: Message, agent_names: dict[int, str]) -> dict[str, Any]:
    author = message.author.value if isinstance(message.author, Author) else str(message.author)
    name = None
    if author == "agent" and message.agent_id is not None:
        name = agent_names.get(message.agent_id)
    return {
        "type": "message",
        "id": message.id,
        "author": author,
        "author_name": name,
        "text": message.text,
        "quick_replies": [
            {"label": str(q.get("label", "")), "value": str(q.get("value", ""))}
            for q in (message.quick_replies or [])
            if isinstance(q, dict)
        ],
    }


async def _agent_names(db: AsyncSession, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    rows = (await db.exec(select(Agent.id, Agent.name).where(col(Agent.id).in_(ids)))).all()
    return {int(i): (n or "Support") for i, n in rows if i is not None}


async def load_history(sessions: async_sessionmaker[AsyncSession], visitor: str, limit: int = HISTORY_LIMIT) -> list[dict[str, Any]]:
    """This visitor's visible messages (customer, bot, agent; never internal), oldest first."""
    async with sessions() as db:
        contact_id = (
            await db.exec(select(Contact.id).where(Contact.channel == Channel.webchat, Contact.external_id == visitor))
        ).first()
        if contact_id is None:
            return []
        conversations = select(Conversation.id).where(Conversation.contact_id == contact_id)
        rows = list(
            (
                await db.exec(
                    select(Message)
                    .where(col(Message.conversation_id).in_(conversations))
                    .where(col(Message.is_internal).is_(False))
                    .where(col(Message.author).in_(_SHOWN_AUTHORS))
                    .order_by(col(Message.id).desc())
                    .limit(limit)
                )
            ).all()
        )
        rows.reverse()
        names = await _agent_names(db, {m.agent_id for m in rows if m.agent_id is not None})
    return [_message_frame(m, names) for m in rows]


class WebchatSender:
    """Delivers outbox rows of the webchat channel to the visitor's open sockets.

    With no socket open the message still counts as delivered: it is in the history the
    widget replays on its next connect. The returned id is synthetic.
    """

    channel = Channel.webchat

    def __init__(self, sessions: async_sessionmaker[AsyncSession], hub: VisitorHub) -> None:
        self._sessions = sessions
        self._hub = hub

    async def _in_flight(self, contact: Contact, payload: OutboundPayload) -> dict[str, Any] | None:
        """The frame of the message being sent: the outbox keeps one row in flight per conversation,
        the oldest pending one, so the stored message (and its id) can be found."""
        async with self._sessions() as db:
            rows = (
                await db.exec(
                    select(OutboxMessage)
                    .where(OutboxMessage.contact_id == contact.id, OutboxMessage.status == OutboxStatus.pending)
                    .order_by(col(OutboxMessage.id))
                    .limit(20)
                )
            ).all()
            for row in rows:
                if row.message_id is None or (row.payload or {}).get("text") != payload.text:
                    continue
                message = await db.get(Message, row.message_id)
                if message is not None and not message.is_internal:
                    names = await _agent_names(db, {message.agent_id} if message.agent_id else set())
                    return _message_frame(message, names)
        return None

    async def send(self, contact: Contact, payload: OutboundPayload) -> str | None:
        if contact.channel != Channel.webchat or not _VISITOR_RE.match(contact.external_id or ""):
            raise PermanentFailure("not a webchat visitor")
        frame = await self._in_flight(contact, payload) or {
            "type": "message",
            "id": f"live-{uuid.uuid4().hex}",
            "author": "bot",
            "author_name": None,
        }
        frame["text"] = payload.text
        frame["quick_replies"] = [{"label": q.label, "value": q.value} for q in payload.quick_replies]
        await self._hub.push(contact.external_id, frame)
        return f"webchat:{frame['id']}"


# --------------------------------------------------------------------------- the socket


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


def _client_id(frame: dict[str, Any]) -> str | None:
    value = frame.get("client_id")
    return value if isinstance(value, str) and _CLIENT_ID_RE.match(value) else None


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
    from inbox.actions.message_record import message_record

    state = request.app[STATE]
    max_chars = state.config.max_message_chars
    client_id = _client_id(frame)
    if client_id is None:
        await _error(conn.ws, "Every message needs a client_id of 1-64 letters, digits, '-' or '_'.")
        return
    postback: str | None = None
    if kind == "message":
        raw = frame.get("text")
    else:
        value = frame.get("value")
        if not isinstance(value, str) or not value.strip() or len(value) > _MAX_POSTBACK or "\x00" in value:
            await _error(conn.ws, "That button is not valid.", client_id)
            return
        postback = value.strip()
        raw = frame.get("label") if isinstance(frame.get("label"), str) and frame.get("label") else value
        max_chars = min(max_chars, _MAX_LABEL)
    if not isinstance(raw, str):
        await _error(conn.ws, "The message text must be a string.", client_id)
        return
    try:
        text = check_text(raw, max_chars=max_chars)
    except InvalidMessage as exc:
        await _error(conn.ws, _friendly(exc.reason, state.config.max_message_chars), client_id)
        return
    if not text:
        await _error(conn.ws, "The message is empty.", client_id)
        return
    assert conn.visitor is not None
    message = InboundMessage(
        channel=Channel.webchat,
        dedupe_key=f"{conn.visitor}:{client_id}",
        contact_external_id=conn.visitor,
        text=text,
        display_name=visitor_label(conn.visitor),
        language_hint=conn.lang,
        channel_message_id=client_id,
        postback=postback,
    )
    try:
        result = await message_record(
            state.sessions, message, reopen_days=state.config.reopen_days, max_chars=state.config.max_message_chars
        )
    except InvalidMessage as exc:
        await _error(conn.ws, _friendly(exc.reason, state.config.max_message_chars), client_id)
        return
    await state.visitors.push(
        conn.visitor,
        {
            "type": "message",
            "id": result.message_id,
            "author": "customer",
            "author_name": None,
            "text": text,
            "quick_replies": [],
            "client_id": client_id,
        },
    )
    if not result.duplicate and state.on_inbound is not None:
        try:
            await state.on_inbound(result)
        except Exception:
            log.exception("on_inbound failed for message %s", result.message_id)


def _friendly(reason: str, max_chars: int) -> str:
    if "too long" in reason:
        return f"The message is too long (at most {max_chars} characters)."
    if "NUL" in reason:
        return "The message contains a character we cannot accept (NUL)."
    if "empty" in reason:
        return "The message is empty."
    return "The message could not be accepted: " + reason


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
                    await _error(ws, "Send a hello frame first.", _client_id(frame))
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


# --------------------------------------------------------------------------- pages


async def widget_js(request: web.Request) -> web.StreamResponse:
    return web.FileResponse(
        STATIC_DIR / "widget.js",
        headers={"Content-Type": "application/javascript; charset=utf-8", "Cache-Control": "no-cache"},
    )


_DEMO_PRODUCTS = [
    ("Trail Runner 2", "Lightweight running shoe with a grippy outsole.", "89.00"),
    ("Merino Crew Socks", "Soft, breathable, three pairs.", "24.00"),
    ("Packable Rain Jacket", "Waterproof shell that folds into its pocket.", "129.00"),
    ("Everyday Backpack", "20 L, padded laptop sleeve, recycled fabric.", "74.00"),
]


async def shop_page(request: web.Request) -> web.Response:
    """GET /shop — a small demo storefront with the chat widget."""
    from ordersvc.models import ProductVariant

    state = request.app[STATE]
    products: list[dict[str, str]] = []
    async with state.sessions() as db:
        rows = (await db.exec(select(ProductVariant).order_by(col(ProductVariant.id)).limit(60))).all()
    seen: set[str] = set()
    for row in rows:
        if row.product_key in seen:
            continue
        seen.add(row.product_key)
        products.append(
            {
                "title": row.product_title or row.sku,
                "blurb": row.product_type or "",
                "price": f"{row.price:.2f} {row.currency}",
            }
        )
        if len(products) == 6:
            break
    if not products:
        products = [{"title": t, "blurb": b, "price": f"{p} USD"} for t, b, p in _DEMO_PRODUCTS]
    return render(request, "shop/index.html", {"products": products, "shop_name": state.config.shop_name})


def htmx_dir() -> Path:
    return Path(str(resources.files("js_lib_htmx"))) / "static" / "htmx"

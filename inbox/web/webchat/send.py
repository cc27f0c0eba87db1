"""Delivering to the web chat: the open widget sockets by visitor (``VisitorHub``), the outbox's
webchat ``Sender``, and the history a widget replays when it connects."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

from aiohttp import web
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from inbox.channels import PermanentFailure, Recipient
from inbox.events import Event, EventBus
from inbox.messages import OutboundPayload
from inbox.models import Agent, Author, Channel, Contact, Conversation, Message, OutboxMessage, OutboxStatus
from inbox.web.webchat.translate import VISITOR_RE, message_frame

__all__ = ["HISTORY_LIMIT", "WEBCHAT_FRAME", "VisitorHub", "WebchatSender", "load_history"]

HISTORY_LIMIT = 100
#: the event that carries a reply to the widget sockets of every process (several servers on
#: one PostgreSQL: the visitor's socket may be open on another process than the one sending)
WEBCHAT_FRAME = "webchat.frame"
#: longer texts are not carried in the event (PostgreSQL's NOTIFY payload is small): the
#: receiving process reads them from the stored message
_EVENT_TEXT_CHARS = 600
_SEND_TIMEOUT = 5.0
_SHOWN_AUTHORS = (Author.customer, Author.bot, Author.agent)


class VisitorHub:
    """The open widget sockets, by visitor id."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession] | None = None) -> None:
        self._sockets: dict[str, set[web.WebSocketResponse]] = {}
        self._sessions = sessions

    async def on_event(self, event: Event) -> None:
        """EventBus subscriber: push a ``webchat.frame`` to this process's sockets of the visitor."""
        if event.type != WEBCHAT_FRAME:
            return
        visitor = event.data.get("visitor")
        frame = event.data.get("frame")
        if not isinstance(visitor, str) or not isinstance(frame, dict) or visitor not in self._sockets:
            return
        frame = dict(frame)
        if not isinstance(frame.get("text"), str):
            text = None
            if isinstance(frame.get("id"), int) and self._sessions is not None:
                async with self._sessions() as db:
                    message = await db.get(Message, frame["id"])
                text = message.text if message is not None and not message.is_internal else None
            if text is None:
                return
            frame["text"] = text
        await self.push(visitor, frame)

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
                # asyncio.timeout, not wait_for: no task of its own, so a frame that goes straight
                # into the socket's buffer costs no loop turn (wait_for's task cost two per push)
                async with asyncio.timeout(_SEND_TIMEOUT):
                    await ws.send_str(data)
                delivered += 1
            except (TimeoutError, ConnectionError, RuntimeError):
                self.remove(visitor, ws)
        return delivered

    async def close_all(self) -> None:
        sockets = [ws for group in self._sockets.values() for ws in group]
        self._sockets.clear()
        closing = (ws.close(code=1001, message=b"server shutdown") for ws in sockets)
        await asyncio.gather(*closing, return_exceptions=True)


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
    return [message_frame(m, names) for m in rows]


class WebchatSender:
    """Delivers outbox rows of the webchat channel to the visitor's open sockets.

    With no socket open the message still counts as delivered: it is in the history the
    widget replays on its next connect. The returned id is synthetic.
    """

    channel = Channel.webchat

    def __init__(self, sessions: async_sessionmaker[AsyncSession], hub: VisitorHub, bus: EventBus | None = None) -> None:
        self._sessions = sessions
        self._hub = hub
        self._bus = bus

    async def _in_flight(self, contact: Recipient, payload: OutboundPayload) -> dict[str, Any] | None:
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
                    return message_frame(message, names)
        return None

    async def send(self, contact: Recipient, payload: OutboundPayload) -> str | None:
        if contact.channel != Channel.webchat or not VISITOR_RE.match(contact.external_id or ""):
            raise PermanentFailure("not a webchat visitor")
        frame: dict[str, Any] | None = None
        if payload.message_id is not None and payload.author is not None:
            frame = {"type": "message", "id": payload.message_id, "author": payload.author,
                     "author_name": payload.author_name if payload.author == Author.agent.value else None}
        frame = frame or await self._in_flight(contact, payload) or {
            "type": "message",
            "id": f"live-{uuid.uuid4().hex}",
            "author": "bot",
            "author_name": None,
        }
        frame["text"] = payload.text
        frame["quick_replies"] = [{"label": q.label, "value": q.value} for q in payload.quick_replies]
        if self._bus is None:
            await self._hub.push(contact.external_id, frame)
        else:  # the hub of this process (a subscriber) and of every other one
            carried = frame
            if len(payload.text) > _EVENT_TEXT_CHARS and isinstance(frame["id"], int):
                carried = {k: v for k, v in frame.items() if k != "text"}
            await self._bus.publish(Event(WEBCHAT_FRAME, None, {"visitor": contact.external_id, "frame": carried}))
        return f"webchat:{frame['id']}"

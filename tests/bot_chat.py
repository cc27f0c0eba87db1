"""Drive whole bot dialogs through the real pipeline, the way a connector does.

``Chat.send`` records an inbound message with ``inbox.actions.message_record`` (as the web
chat widget or the terminal connector would), runs ``Pipeline.process`` on it and returns
the bot's replies read back from the database (Message rows and their outbox payloads).
``Chat.press`` presses a quick reply of the last answer: the label as text, the value as
the postback, like a channel with buttons.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlmodel import col, select

from bot.pipeline import Pipeline
from inbox.actions.message_record import message_record
from inbox.events import Event, EventBus
from inbox.messages import InboundMessage
from inbox.models import (
    Channel,
    Contact,
    Conversation,
    Direction,
    Message,
    OutboxMessage,
)

__all__ = ["Reply", "Chat", "days_ago", "url_in", "path_of"]

_dedupe = itertools.count(1)


def days_ago(days: float) -> datetime:
    return datetime.now(UTC) - timedelta(days=days)


def url_in(text: str) -> str | None:
    for word in text.split():
        if word.startswith(("http://", "https://")):
            return word.rstrip(".,)")
    return None


def path_of(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + ("?" + parts.query if parts.query else "")


@dataclass
class Reply:
    text: str
    quick_replies: list[tuple[str, str]] = field(default_factory=list)

    @property
    def values(self) -> list[str]:
        return [value for _, value in self.quick_replies]


class Chat:
    """One customer on one channel talking to the bot."""

    def __init__(self, sessions: Any, settings: Any, *, user: str = "visitor-1",
                 channel: Channel = Channel.webchat, lang: str | None = "en", bus: EventBus | None = None) -> None:
        self.sessions = sessions
        self.settings = settings
        self.user = user
        self.channel = channel
        self.lang = lang
        self.bus = bus or EventBus()
        self.pipeline = Pipeline(sessions=sessions, bus=self.bus, settings=settings)
        self.replies: list[Reply] = []
        self.events: list[Event] = []
        self.bus.subscribe(self._on_event)
        self.conversation_id: int | None = None

    async def _on_event(self, event: Event) -> None:
        self.events.append(event)

    def restart(self, sessions: Any | None = None) -> None:
        """A new process: a fresh pipeline (and optionally a fresh engine's sessions)."""
        if sessions is not None:
            self.sessions = sessions
        self.pipeline = Pipeline(sessions=self.sessions, bus=self.bus, settings=self.settings)

    async def send(self, text: str = "", *, postback: str | None = None) -> list[Reply]:
        result = await message_record(
            self.sessions,
            InboundMessage(
                channel=self.channel,
                dedupe_key=f"{self.user}:{next(_dedupe)}",
                contact_external_id=self.user,
                text=text,
                display_name="Test Customer",
                language_hint=self.lang,
                postback=postback,
            ),
        )
        self.conversation_id = result.conversation_id
        await self.pipeline.process(result.message_id)
        async with self.sessions() as session:
            rows = (
                await session.exec(
                    select(Message, OutboxMessage)
                    .join(OutboxMessage, col(OutboxMessage.message_id) == col(Message.id))
                    .where(
                        Message.conversation_id == result.conversation_id,
                        Message.direction == Direction.outbound,
                        col(Message.id) > result.message_id,
                    )
                    .order_by(col(Message.id))
                )
            ).all()
        self.replies = [
            Reply(
                text=outbox.payload["text"],
                quick_replies=[(q["label"], q["value"]) for q in outbox.payload.get("quick_replies") or []],
            )
            for _message, outbox in rows
        ]
        return self.replies

    @property
    def text(self) -> str:
        """All of the last answer's texts, joined."""
        return "\n".join(r.text for r in self.replies)

    @property
    def choices(self) -> list[tuple[str, str]]:
        return [qr for r in self.replies for qr in r.quick_replies]

    async def press(self, wanted: str) -> list[Reply]:
        """Press the last answer's button whose value or label is ``wanted`` (or starts with it)."""
        for label, value in self.choices:
            if wanted in (label, value) or value.startswith(wanted):
                return await self.send(label, postback=value)
        raise AssertionError(f"no button {wanted!r} in {self.choices!r}; bot said: {self.text!r}")

    async def conversation(self) -> Conversation:
        assert self.conversation_id is not None
        async with self.sessions() as session:
            conversation = await session.get(Conversation, self.conversation_id)
            assert conversation is not None
            return conversation

    async def state(self) -> dict[str, Any]:
        return dict((await self.conversation()).bot_state or {})

    async def contact(self) -> Contact:
        conversation = await self.conversation()
        async with self.sessions() as session:
            contact = await session.get(Contact, conversation.contact_id)
            assert contact is not None
            return contact

    async def all_bot_text(self) -> str:
        """Every text the bot ever sent in this conversation (for "never disclosed" checks)."""
        async with self.sessions() as session:
            rows = (
                await session.exec(
                    select(OutboxMessage.payload).where(OutboxMessage.conversation_id == self.conversation_id)
                )
            ).all()
        return "\n".join(str(p.get("text", "")) for p in rows)

"""The bot answered an inbound message: its replies go to the outbox and the dialog state,
the language and the recognised intent are kept (on the conversation and the message), and the
message is marked processed, in the caller's transaction (the bot turn commits all of it at once)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from inbox.actions.message_send import message_send
from inbox.messages import OutboundPayload
from inbox.models import Author, Conversation, Message

__all__ = ["message_answer"]


def message_answer(
    session: AsyncSession,
    conversation: Conversation,
    message: Message,
    *,
    replies: Iterable[OutboundPayload],
    bot_state: dict[str, Any],
    language: str,
    intent: str,
) -> list[Message]:
    """Queue the replies and record the turn on the conversation and the message; returns
    the reply rows. ``unknown`` never replaces an intent the conversation already has."""
    sent = [message_send(session, conversation, payload, author=Author.bot) for payload in replies]
    conversation.bot_state = bot_state  # reassign: JSON columns track assignment only
    conversation.language = language
    if intent != "unknown" or conversation.last_intent is None:
        conversation.last_intent = intent
    message.intent = intent
    message.processed = True  # the turn's effects and the mark commit together (a replay finds it done)
    message.language = language
    session.add(conversation)
    session.add(message)
    return sent

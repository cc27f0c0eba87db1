"""The connector-facing delivery contract: a :class:`Sender` per channel, kept in a :class:`SenderRegistry`.

Connectors (``bot/connectors``) implement ``Sender``; the outbox dispatcher calls it. A sender
returns the platform's message id, raises :class:`RetryLater` for rate limits and transient
errors (``seconds`` is the platform's ``retry_after`` or the connector's own guess) and
:class:`PermanentFailure` when the message can never be delivered (``blocked=True`` when the
customer blocked the bot or deleted the chat: the contact becomes undeliverable).

A channel without a registered sender (e.g. Slack disabled) is simply not dispatched: its
outbox rows stay pending until a sender for it is registered.

A :class:`NoticeSender` delivers *notices*: outbox rows with no contact, for the shop's own
people (Slack alerts). It gets a :class:`Notice` and records the steps it completed in
``notice.progress``; the dispatcher keeps that across retries and restarts, so a step that
reached the platform is not repeated. It decides itself when to give up (``PermanentFailure``):
the dispatcher's ``max_attempts`` applies to customer messages only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from inbox.models import Channel

if TYPE_CHECKING:
    from inbox.messages import OutboundPayload
    from inbox.models import Contact

__all__ = ["Notice", "NoticeSender", "Sender", "SenderRegistry", "RetryLater", "PermanentFailure"]


class RetryLater(Exception):
    """Try again in ``seconds`` (not before); counts as one attempt."""

    def __init__(self, seconds: float, reason: str = "") -> None:
        super().__init__(reason or f"retry in {seconds:g}s")
        self.seconds = max(0.0, float(seconds))
        self.reason = reason


class PermanentFailure(Exception):
    """The message cannot be delivered, ever; ``blocked`` when the recipient blocked us."""

    def __init__(self, reason: str, blocked: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.blocked = blocked


@runtime_checkable
class Sender(Protocol):
    channel: Channel

    async def send(self, contact: Contact, payload: OutboundPayload) -> str | None:
        """Deliver ``payload`` to ``contact``; return the platform's message id (if any)."""
        ...


@dataclass
class Notice:
    """One notice row as its sender sees it; ``progress`` holds the steps already done."""

    id: int
    conversation_id: int | None
    payload: dict[str, Any]
    attempts: int
    created_at: datetime
    progress: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class NoticeSender(Protocol):
    channel: Channel

    async def send_notice(self, notice: Notice) -> str | None:
        """Deliver ``notice`` (recording finished steps in ``notice.progress``); the platform's id."""
        ...


class SenderRegistry(dict[Channel, "Sender | NoticeSender"]):
    """Channel -> Sender. ``register(sender)`` files a sender under its own channel."""

    def register(self, sender: Sender | NoticeSender) -> None:
        self[Channel(sender.channel)] = sender

    def unregister(self, channel: Channel) -> None:
        self.pop(Channel(channel), None)

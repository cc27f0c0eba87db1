"""The connector-facing delivery contract: a :class:`Sender` per channel, kept in a :class:`SenderRegistry`.

Connectors (``bot/connectors``) implement ``Sender``; the outbox dispatcher calls it. A sender
returns the platform's message id, raises :class:`RetryLater` for rate limits and transient
errors (``seconds`` is the platform's ``retry_after`` or the connector's own guess) and
:class:`PermanentFailure` when the message can never be delivered (``blocked=True`` when the
customer blocked the bot or deleted the chat: the contact becomes undeliverable).

A channel without a registered sender (e.g. Slack disabled) is simply not dispatched: its
outbox rows stay pending until a sender for it is registered.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

from inbox.models import Channel

if TYPE_CHECKING:
    from inbox.messages import OutboundPayload
    from inbox.models import Contact

__all__ = ["Sender", "SenderRegistry", "RetryLater", "PermanentFailure"]


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


class SenderRegistry(dict[Channel, Sender]):
    """Channel -> Sender. ``register(sender)`` files a sender under its own channel."""

    def register(self, sender: Sender) -> None:
        self[Channel(sender.channel)] = sender

    def unregister(self, channel: Channel) -> None:
        self.pop(Channel(channel), None)

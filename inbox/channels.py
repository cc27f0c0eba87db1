"""The connector-facing delivery contract: a :class:`Sender` per channel, kept in a :class:`SenderRegistry`.

Connectors (``bot/connectors``) implement ``Sender``; the outbox dispatcher calls it. A sender
returns the platform's message id, raises :class:`RetryLater` for rate limits and transient
errors (``seconds`` is the platform's ``retry_after`` or the connector's own guess) and
:class:`PermanentFailure` when the message can never be delivered (``blocked=True`` when the
customer blocked the bot or deleted the chat: the contact becomes undeliverable).

Rate limits are not failures: ``RetryLater(seconds, rate_limited=True)`` (a 429 with its
``retry_after``) delays the row without consuming one of its attempts, and ``hold`` asks the
dispatcher to hold back the recipient's other pending rows (``"recipient"``) or every pending
row of the channel (``"channel"``, a bulk flood wait) for as long. A send whose outcome is not
known (the request went out, the answer never came) raises :class:`OutcomeUnknown`: the
dispatcher does not send it again (no duplicate where the platform offers no duplicate check).

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
from typing import TYPE_CHECKING, Any, Protocol, TypeGuard, runtime_checkable

from inbox.models import Channel

if TYPE_CHECKING:
    from inbox.messages import OutboundPayload

__all__ = ["HOLD_CHANNEL", "HOLD_RECIPIENT", "Notice", "NoticeSender", "OutcomeUnknown", "PermanentFailure",
           "Recipient", "RetryLater", "Sender", "SenderRegistry", "is_notice_sender", "is_sender"]

#: ``RetryLater.hold``: the recipient's other pending rows wait too / every pending row of the channel waits
HOLD_RECIPIENT = "recipient"
HOLD_CHANNEL = "channel"


class RetryLater(Exception):
    """Try again in ``seconds`` (not before; None: the dispatcher's exponential backoff).

    Counts as one attempt, unless ``rate_limited``: the platform asked us to wait (429), which
    delays the row and never uses up its attempts. ``hold`` (``HOLD_RECIPIENT`` /
    ``HOLD_CHANNEL``) makes the same wait apply to the recipient's or the channel's other rows.
    """

    def __init__(self, seconds: float | None, reason: str = "", *, rate_limited: bool = False,
                 hold: str | None = None) -> None:
        super().__init__(reason or (f"retry in {seconds:g}s" if seconds is not None else "retry later"))
        self.seconds = max(0.0, float(seconds)) if seconds is not None else None
        self.reason = reason
        self.rate_limited = rate_limited
        self.hold = hold


class OutcomeUnknown(Exception):
    """The request reached (or may have reached) the platform but its answer never came (a read
    timeout): the message may or may not have been delivered. Not retried."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class PermanentFailure(Exception):
    """The message cannot be delivered, ever; ``blocked`` when the recipient blocked us."""

    def __init__(self, reason: str, blocked: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.blocked = blocked


class Recipient(Protocol):
    """Whom a :class:`Sender` delivers to: a :class:`~inbox.models.Contact`, or the outbox
    dispatcher's read-only copy of the contact's columns below (no ORM object per send)."""

    @property
    def id(self) -> int | None: ...

    @property
    def channel(self) -> Channel: ...

    @property
    def external_id(self) -> str: ...

    @property
    def display_name(self) -> str: ...

    @property
    def username(self) -> str | None: ...

    @property
    def language(self) -> str | None: ...


@runtime_checkable
class Sender(Protocol):
    channel: Channel

    async def send(self, contact: Recipient, payload: OutboundPayload) -> str | None:
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


#: (id of a sender object, protocol) -> (that object, isinstance's answer); see :func:`is_sender`
_KINDS: dict[tuple[int, type], tuple[object, bool]] = {}


def _is(obj: object, protocol: type) -> bool:
    key = (id(obj), protocol)
    known = _KINDS.get(key)
    if known is not None and known[0] is obj:
        return known[1]
    answer = isinstance(obj, protocol)
    if len(_KINDS) >= 64:  # senders are few and long-lived (a test suite makes many: bounded)
        _KINDS.clear()
    _KINDS[key] = (obj, answer)  # the object is kept: its id cannot be reused while it is here
    return answer


def is_sender(obj: object) -> TypeGuard[Sender]:
    """``isinstance(obj, Sender)``, remembered per sender object: a runtime-checkable protocol's
    ``isinstance`` walks the protocol's members each time (~12 µs on Python 3.11), and the outbox
    asks once per message sent. A sender is not expected to gain or lose ``send``/``channel``."""
    return _is(obj, Sender)


def is_notice_sender(obj: object) -> TypeGuard[NoticeSender]:
    """``isinstance(obj, NoticeSender)``, remembered per sender object (see :func:`is_sender`)."""
    return _is(obj, NoticeSender)


class SenderRegistry(dict[Channel, "Sender | NoticeSender"]):
    """Channel -> Sender. ``register(sender)`` files a sender under its own channel."""

    def register(self, sender: Sender | NoticeSender) -> None:
        self[Channel(sender.channel)] = sender

    def unregister(self, channel: Channel) -> None:
        self.pop(Channel(channel), None)

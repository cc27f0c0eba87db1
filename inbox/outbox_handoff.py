"""Replies born claimed (issue 11, helper preclaim): a bot turn inserts its customer replies
already leased by this process's outbox dispatcher and hands them to it after the commit, so
they are sent without a claim transaction.

A reply row is born claimed only when that is exactly what a claim would do at that moment:

* it is the head of its stream: no pending outbox row of its conversation on its channel exists
  (folded into the INSERT: ``claimed_until = CASE WHEN EXISTS (pending row) OR EXISTS (hold in
  force) THEN NULL ELSE :lease END``; all the rows of one multi-row INSERT see the table as it
  was before the statement, so the replies of one turn share the decision and go out in order,
  one after the other, as one chain);
* no stored :class:`~inbox.models.DeliveryHold` (a 429's wait) covers its recipient or channel;
* this process's dispatcher runs, sends that channel, has room among the rows it keeps on hand
  and is not behind (``OutboxDispatcher.accepting``: behind, replies queue in the database and
  are claimed in due order, so a new one never overtakes older ones by a hand-off).

The lease is the claim's (``claimed_until = now + lease_seconds``; the row names its process in
``outbox.node`` by the column's default, as every row this process writes). After the commit the
rows go to the dispatcher in memory (``OutboxDispatcher.hand_off``): the heartbeat renews their
lease while they wait and are sent, and their "sent" marks are group-committed as before. If the
process dies between the commit and the send, the lease runs out and any dispatcher claims the
row as a claimed row of a dead process (a SQLite server's restart releases it at once): nothing
is lost and nothing goes out twice beyond what a claim's crash window allows.

A turn's session carries one :class:`BornClaimed` in ``session.info[BORN_CLAIMED]`` (the bot
pipeline puts it there); ``inbox.actions.message_answer`` and ``AnswerGroup`` ask it for a lease
and tell it which rows were born claimed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

import sqlalchemy as sa

from inbox.channels import Recipient
from inbox.models import HOLD_ALL_CONTACTS, Channel, DeliveryHold, OutboxMessage

__all__ = ["BORN_CLAIMED", "BornClaimed", "BornRow", "HandOff", "RecipientRow", "born_claimed_value",
           "born_params"]

#: ``session.info`` key of the transaction's :class:`BornClaimed`
BORN_CLAIMED = "shopdesk_born_claimed"

_OUTBOX: sa.Table = OutboxMessage.__table__  # type: ignore[attr-defined]
_HOLD: sa.Table = DeliveryHold.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class RecipientRow:
    """The contact a row goes to, as its :class:`~inbox.channels.Sender` sees it
    (:class:`~inbox.channels.Recipient`): a read-only copy, no ORM object per send."""

    id: int
    channel: Channel
    external_id: str
    display_name: str
    username: str | None
    language: str | None

    @classmethod
    def of(cls, contact: Any) -> RecipientRow:
        return cls(int(contact.id), Channel(contact.channel), contact.external_id, contact.display_name,
                   contact.username, contact.language)


@dataclass(frozen=True, slots=True)
class BornRow:
    """An outbox row inserted already claimed (what the dispatcher needs to send it)."""

    id: int
    message_id: int
    conversation_id: int
    contact_id: int
    channel: Channel
    payload: dict[str, Any]
    created_at: datetime


class HandOff(Protocol):
    """The dispatcher's side (``inbox.outbox.OutboxDispatcher``)."""

    lease_seconds: float
    clock: Callable[[], datetime]

    @property
    def wake_count(self) -> int: ...

    def accepting(self, channel: Channel) -> bool: ...

    def hand_off(self, rows: list[tuple[BornRow, Recipient | None]], followers: set[int],
                 since: int | None = None) -> None: ...


@dataclass
class BornClaimed:
    """One transaction's replies born claimed, handed to the dispatcher after its commit."""

    dispatcher: HandOff
    rows: list[BornRow] = field(default_factory=list)
    #: conversations with a reply of this transaction that was NOT born claimed (it waits behind
    #: one that was: the dispatcher claims after that one is sent)
    followers: set[int] = field(default_factory=set)
    #: replies written that were not born claimed (the dispatcher must claim them as usual)
    unclaimed: int = 0
    #: something else of the transaction may have written outbox rows (an escalation, alerts)
    other_effects: bool = False
    recipients: dict[int, RecipientRow] = field(default_factory=dict)
    #: the dispatcher's wake count before the first row was written: a wake after it may be a
    #: later row of the same conversation (committed between this commit and the hand-off, when
    #: this one's session closes), which a claim finds once the rows born claimed are sent
    since: int | None = None

    def lease(self, channel: Channel) -> datetime | None:
        """The lease end for a reply on ``channel`` born claimed now, or None (claimed as usual)."""
        dispatcher = self.dispatcher
        if not dispatcher.accepting(channel):
            return None
        if self.since is None:
            self.since = dispatcher.wake_count
        return dispatcher.clock() + timedelta(seconds=dispatcher.lease_seconds)

    def know(self, contact: Any) -> None:
        """The turn's contact (the recipient of its replies)."""
        if contact.id is not None and contact.id not in self.recipients:
            self.recipients[int(contact.id)] = RecipientRow.of(contact)

    def add(self, row: BornRow | None, conversation_id: int) -> None:
        """A reply written: born claimed (``row``) or not (None)."""
        if row is None:
            self.unclaimed += 1
            self.followers.add(conversation_id)
        else:
            self.rows.append(row)

    @property
    def needs_claim(self) -> bool:
        return bool(self.unclaimed or self.other_effects)

    def deliver(self) -> None:
        """After the commit: the rows go to the dispatcher (in id order, so each conversation's
        replies keep theirs)."""
        if self.rows:
            rows = sorted(self.rows, key=lambda r: r.id)
            self.dispatcher.hand_off([(row, self.recipients.get(row.contact_id)) for row in rows],
                                     self.followers, self.since)


def born_claimed_value() -> Any:
    """``claimed_until`` of a reply row: the lease (``b_lease``) when the row is the head of its
    stream and no hold in force covers it, else NULL. Parameters per row: ``b_conversation``,
    ``b_channel``, ``b_hold_channel``, ``b_contact``, ``b_now``, ``b_lease`` (:func:`born_params`)."""
    earlier = _OUTBOX.alias("born_earlier")
    pending = sa.exists().where(
        earlier.c.conversation_id == sa.bindparam("b_conversation", type_=_OUTBOX.c.conversation_id.type),
        earlier.c.channel == sa.bindparam("b_channel", type_=_OUTBOX.c.channel.type),
        earlier.c.status == sa.literal_column("'pending'"),  # a literal: ix_outbox_pending_stream applies
    )
    held = sa.exists().where(
        _HOLD.c.channel == sa.bindparam("b_hold_channel", type_=_HOLD.c.channel.type),
        _HOLD.c.contact_id.in_([sa.bindparam("b_contact", type_=_HOLD.c.contact_id.type), HOLD_ALL_CONTACTS]),
        _HOLD.c.not_before > sa.bindparam("b_now", type_=_HOLD.c.not_before.type),
    )
    return sa.case((sa.or_(pending, held), sa.null()),
                   else_=sa.bindparam("b_lease", type_=_OUTBOX.c.claimed_until.type))


def born_params(conversation_id: int, channel: Channel, contact_id: int, now: datetime,
                lease: datetime | None) -> dict[str, Any]:
    """The parameters of :func:`born_claimed_value` for one row (``lease`` None: never claimed)."""
    return {"b_conversation": conversation_id, "b_channel": channel, "b_hold_channel": Channel(channel).value,
            "b_contact": contact_id, "b_now": now, "b_lease": lease}

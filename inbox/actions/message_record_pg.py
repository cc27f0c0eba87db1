"""The common inbound case on PostgreSQL in ONE statement and one round trip (issue 16).

``message_record``'s common case (a known customer writing into their open conversation, nothing
to change on the contact) is four statements: read the contact and conversation, mark the contact
seen, insert the message, touch the conversation. In a transaction of its own that is six round
trips (BEGIN and COMMIT too) and six statements PostgreSQL parses, binds and runs. Here the four
are one statement with data-modifying CTEs, run outside an explicit transaction (the session's
connection in ``AUTOCOMMIT``): PostgreSQL runs the statement in a transaction of its own and
commits it before answering, so the message is committed before the caller (the webhook) answers,
atomically (all four writes or none), and a unique-index violation (a repeated delivery) is the
``IntegrityError`` the caller retries as before.

The statement locks the contact before it inserts (so a customer's messages get their ids in
commit order, as before) and writes only when the row it reads is the common case — the same test as
``message_record._common_case`` with no contact changes — and returns the row either way (its
message id NULL when it wrote nothing), so anything else goes the usual way, unchanged, in a
transaction of its own. The written rows and the event are exactly those of
``message_record._write_into_open_conversation``.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from inbox.actions.base import NAMELESS_CHANNELS
from inbox.events import collect
from inbox.models import Author, Contact, Conversation, ConversationStatus, Direction, Message, Owner, search_text_of

if TYPE_CHECKING:
    from inbox.actions.message_record import RecordResult, _Inbound

__all__ = ["ONE_STATEMENT", "one_statement_enabled", "record_in_one_statement"]

_CONTACT = Contact.__table__  # type: ignore[attr-defined]
_CONVERSATION = Conversation.__table__  # type: ignore[attr-defined]
_MESSAGE = Message.__table__  # type: ignore[attr-defined]


def _param(name: str, column: sa.Column[Any]) -> Any:
    return sa.bindparam(name, type_=column.type)


#: the message's own columns (bound per call); ``conversation_id`` comes from the read
_MESSAGE_PARAMS = ("channel", "direction", "author", "is_internal", "text", "attachments", "quick_replies",
                   "dedupe_key", "channel_message_id", "postback", "start_payload", "processed", "created_at",
                   "search_text")


def _build() -> Any:
    ct, cv = _CONTACT, _CONVERSATION
    found = (
        sa.select(ct.c.id.label("contact_id"), ct.c.display_name, ct.c.username, ct.c.language, ct.c.customer_id,
                  ct.c.undeliverable_at, cv.c.id.label("conversation_id"), cv.c.status, cv.c.owner, cv.c.sla_due_at)
        .select_from(ct.join(cv, sa.and_(cv.c.contact_id == ct.c.id, cv.c.status != ConversationStatus.resolved)))
        .where(ct.c.channel == _param("b_channel", ct.c.channel),
               ct.c.external_id == _param("b_external_id", ct.c.external_id))
        .limit(1)
        # the contact locked FIRST (as the four statements' UPDATE did before their INSERT): a
        # customer's messages take their ids in the order they commit, so the worker never sees
        # a later one committed before an earlier one (per-conversation order). NO KEY: the
        # foreign-key checks of rows naming the contact (outbox) are not blocked.
        .with_for_update(of=ct, key_share=True)
        .cte("found")
    )
    name, username, language = (sa.bindparam(n, type_=sa.String) for n in ("b_name", "b_username", "b_language"))
    # ``_common_case`` with no contact changes (``_contact_changes`` empty), in SQL: the caller
    # passes only what would change something (None otherwise) and whether a name the customer
    # gave is kept (a verified web chat customer's)
    common = sa.and_(
        found.c.status == sa.bindparam("b_open", ConversationStatus.open, type_=cv.c.status.type),
        sa.not_(sa.and_(found.c.owner == sa.bindparam("b_agent", Owner.agent, type_=cv.c.owner.type),
                        found.c.sla_due_at.is_(None))),
        sa.or_(name.is_(None), found.c.display_name.is_not_distinct_from(name),
               sa.and_(sa.bindparam("b_nameless", type_=sa.Boolean), found.c.customer_id.is_not(None))),
        sa.or_(username.is_(None), found.c.username.is_not_distinct_from(username)),
        sa.or_(language.is_(None), found.c.language.is_not_distinct_from(language)),
        found.c.undeliverable_at.is_(None),
    )
    ok = sa.select(found.c.contact_id, found.c.conversation_id).where(common).cte("ok")
    now = _param("b_now", ct.c.last_seen_at)
    seen = (sa.update(ct).where(ct.c.id == ok.c.contact_id).values(last_seen_at=now)
            .returning(ct.c.id).cte("seen"))
    inserted = (
        sa.insert(_MESSAGE)
        .from_select(["conversation_id", *_MESSAGE_PARAMS],
                     sa.select(ok.c.conversation_id,
                               *(_param("m_" + c, _MESSAGE.c[c]) for c in _MESSAGE_PARAMS)))
        .returning(_MESSAGE.c.id)
        .cte("inserted")
    )
    touched = (sa.update(cv).where(cv.c.id == ok.c.conversation_id)
               .values(last_message_at=now, updated_at=now).returning(cv.c.id).cte("touched"))
    return (
        sa.select(found.c.contact_id, found.c.conversation_id,
                  sa.select(inserted.c.id).scalar_subquery().label("message_id"))
        .add_cte(seen, touched)
    )


#: built once (building a statement costs more than running it)
ONE_STATEMENT = _build()


def one_statement_enabled(sessions: async_sessionmaker[AsyncSession]) -> bool:
    """True when ``sessions`` talk to PostgreSQL (SQLite keeps its four statements: each is a
    function call on the loop's thread there, not a round trip)."""
    bind = sessions.kw.get("bind")
    return bind is not None and bind.dialect.name == "postgresql"


def _params(c: _Inbound, now: datetime) -> dict[str, Any]:
    return {
        "b_channel": c.channel, "b_external_id": c.external_id, "b_now": now,
        "b_name": c.display_name or None, "b_username": c.username, "b_language": c.language,
        "b_nameless": c.channel in NAMELESS_CHANNELS,
        "m_channel": c.channel, "m_direction": Direction.inbound, "m_author": Author.customer, "m_is_internal": False,
        "m_text": c.text, "m_attachments": c.attachments, "m_quick_replies": [], "m_dedupe_key": c.dedupe_key,
        "m_channel_message_id": c.channel_message_id, "m_postback": c.postback,
        "m_start_payload": c.start_payload, "m_processed": False, "m_created_at": now,
        "m_search_text": search_text_of(Message, {"text": c.text}),
    }


async def record_in_one_statement(sessions: async_sessionmaker[AsyncSession], c: _Inbound,
                                  now: datetime) -> RecordResult | None:
    """Record ``c`` (a checked ``message_record._Inbound``) in one committed statement when it is
    the common case: its ``RecordResult``, or None when nothing was written (go the usual way)."""
    from inbox.actions.message_record import RecordResult, _inbound_event

    async with sessions() as session:
        connection = await session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
        row = (await connection.execute(ONE_STATEMENT, _params(c, now))).first()
        if row is None or row.message_id is None:
            return None
        contact_id, conversation_id, message_id = int(row.contact_id), int(row.conversation_id), int(row.message_id)
        collect(session, _inbound_event(c, message_id, conversation_id))
        await session.commit()  # nothing to commit on the server (done): publishes the event
    return RecordResult(message_id, conversation_id, contact_id, duplicate=False, new_conversation=False)

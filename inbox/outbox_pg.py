"""The outbox's "sent" marks on PostgreSQL in ONE statement, outside an explicit transaction (issue 16).

A flush of sends that finished together (``OutboxDispatcher._write_sent``) was a transaction of
its own: BEGIN, the rows still pending locked in id order (``SELECT … FOR UPDATE``), one execution
per row of the outbox UPDATE and one per row of the message UPDATE (executemany: one round trip,
but each row a statement PostgreSQL binds, starts and ends), COMMIT. Here it is one statement with
data-modifying CTEs, the rows' values as arrays (``unnest``), run on the session's connection in
``AUTOCOMMIT``: PostgreSQL commits it before answering, all or nothing, so a caller of
``_mark_sent`` still returns only once its row is committed.

Same rows, same order of locks, same result: the CTE ``locked`` takes the rows still pending in
id order (``MATERIALIZED``: locked before anything is written, as the SELECT did); the outbox
UPDATE writes only those (still pending: a row given up or sent elsewhere meanwhile is left alone,
re-checked after a wait on its lock); their messages are marked delivered with the same reference;
the ids marked come back, for the events. SQLite keeps its statements (``_write_sent``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncConnection, async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from inbox.models import Contact, DeliveryHold, OutboxMessage, OutboxStatus

__all__ = ["MARK_SENT", "autocommit_connection", "claim_statement", "is_postgresql", "mark_sent"]

_OUTBOX = OutboxMessage.__table__  # type: ignore[attr-defined]
_CONTACT = Contact.__table__  # type: ignore[attr-defined]
_HOLD = DeliveryHold.__table__  # type: ignore[attr-defined]

MARK_SENT = sa.text(f"""
WITH locked AS MATERIALIZED (
    SELECT outbox.id FROM outbox
    WHERE outbox.id = ANY(:b_ids) AND outbox.status = '{OutboxStatus.pending.value}'
    ORDER BY outbox.id FOR UPDATE
), marked AS (
    UPDATE outbox
    SET status = '{OutboxStatus.sent.value}', sent_at = :b_now, channel_message_id = v.ref,
        claimed_until = NULL, attempts = v.attempts, last_error = NULL
    FROM locked JOIN unnest(CAST(:b_ids AS integer[]), CAST(:b_refs AS varchar[]), CAST(:b_attempts AS integer[]))
        AS v(id, ref, attempts) ON v.id = locked.id
    WHERE outbox.id = locked.id AND outbox.status = '{OutboxStatus.pending.value}'
    RETURNING outbox.id, outbox.message_id, outbox.channel_message_id
), delivered AS (
    UPDATE message SET delivery_status = 'sent', channel_message_id = marked.channel_message_id
    FROM marked WHERE message.id = marked.message_id
)
SELECT marked.id FROM marked
""").bindparams(
    sa.bindparam("b_ids", type_=postgresql.ARRAY(sa.Integer)),
    sa.bindparam("b_refs", type_=postgresql.ARRAY(sa.String)),
    sa.bindparam("b_attempts", type_=postgresql.ARRAY(sa.Integer)),
    sa.bindparam("b_now", type_=_OUTBOX.c.sent_at.type),
).columns(id=sa.Integer)


def is_postgresql(sessions: async_sessionmaker[AsyncSession]) -> bool:
    bind = sessions.kw.get("bind")
    return bind is not None and bind.dialect.name == "postgresql"


async def autocommit_connection(session: AsyncSession) -> AsyncConnection:
    """``session``'s connection with each statement committed by PostgreSQL as it runs."""
    return await session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})


async def mark_sent(connection: AsyncConnection, marks: list[tuple[int, str | None, int]], now: datetime) -> set[int]:
    """Mark the outbox rows ``marks`` — (id, platform reference, attempts) — sent, and their
    messages delivered, when they are still pending; the ids marked."""
    rows: Any = await connection.execute(MARK_SENT, {
        "b_ids": [m[0] for m in marks], "b_refs": [m[1] for m in marks], "b_attempts": [m[2] for m in marks],
        "b_now": now})
    return {int(r) for r in rows.scalars()}


def claim_statement(candidates: Any, claim_free: Any, candidate_columns: Any, recipient_columns: Any) -> Any:
    """The claim of ``OutboxDispatcher._claim`` as ONE statement: ``candidates`` (the due heads,
    ``FOR UPDATE SKIP LOCKED``) as a materialized CTE, the UPDATE that leases them (never a row in
    ``b_in_flight``, never one another dispatcher took meanwhile) and their recipients' columns
    (labelled ``r_<column>``), all only when no delivery hold is in force. One row at least:
    ``held`` tells that a hold is in force (then nothing was claimed, and the caller claims the
    usual way, holds applied); the other columns are NULL when nothing was claimed. Run in
    ``AUTOCOMMIT``: BEGIN, the candidates, the holds, the UPDATE, the contacts and COMMIT (six
    statements) become one."""
    def any_hold() -> Any:
        return sa.exists().where(_HOLD.c.not_before > sa.bindparam("b_now"))

    cand = candidates.cte("cand").prefix_with("MATERIALIZED")
    claimed = (
        sa.update(_OUTBOX)
        .where(_OUTBOX.c.id == cand.c.id, ~any_hold(),
               _OUTBOX.c.id != sa.func.all(sa.bindparam("b_in_flight", type_=postgresql.ARRAY(sa.Integer))),
               _OUTBOX.c.status == OutboxStatus.pending, claim_free)
        .values(claimed_until=sa.bindparam("b_lease"))
        .returning(*candidate_columns)
        .cte("claimed")
    )
    held = sa.select(any_hold().label("held")).subquery("held")
    return (
        sa.select(held.c.held, *(claimed.c[c.name] for c in candidate_columns),
                  *(c.label("r_" + c.name) for c in recipient_columns))
        .select_from(held.outerjoin(claimed.outerjoin(_CONTACT, _CONTACT.c.id == claimed.c.contact_id),
                                    sa.true()))
        .order_by(claimed.c.next_attempt_at, claimed.c.id)
    )

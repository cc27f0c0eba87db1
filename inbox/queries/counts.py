"""The one grouped count behind the inbox's numbers: the status chips, the "Mine" / "Unassigned"
/ "All" tabs (:func:`inbox.queries.conversations.count_conversations`) and the triage tabs
(:func:`inbox.queries.triage.triage_counts`) are all sums over the same groups of the
conversations an agent may see, (status, owner, assignee) → how many, so a list page reads them
once.

Without a filter besides the status (the tabs, the triage state every open tab re-reads after
each live event) the groups are the counts kept on write (:class:`inbox.models.ConversationCount`,
triggers of migration 0019): a few dozen rows, whatever the number of conversations, and the
access rule applied to each group (:func:`inbox.queries.access.may_see`). With a filter (channel,
priority, intent, label, search) they are counted from the conversations, in one grouped pass."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql.util import find_tables
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from inbox.models import Agent, Contact, Conversation, ConversationCount, ConversationStatus, Owner
from inbox.queries.access import access_condition, may_see
from inbox.queries.filters import ConversationFilters

__all__ = ["CountGroup", "count_groups", "fold_counts", "FOLD_AFTER"]

log = logging.getLogger("inbox.queries.counts")


@dataclass(frozen=True)
class CountGroup:
    status: ConversationStatus
    owner: Owner
    assignee_id: int | None
    n: int


async def count_groups(session: AsyncSession, agent: Agent, filters: ConversationFilters | None = None) -> list[CountGroup]:
    """The conversations ``agent`` may see under ``filters`` WITHOUT their status (every status is
    counted), grouped by (status, owner, assignee). ``filters`` should be resolved
    (:meth:`ConversationFilters.resolve`) when it has search text."""
    dialect = str(session.get_bind().dialect.name)
    flt = (filters or ConversationFilters()).without_status()
    if flt == ConversationFilters():
        return await _kept_groups(session, agent, dialect)
    conditions = [flt.secondary(dialect, access_condition(agent)), *flt.conditions(dialect)]
    # the contact is joined only when a condition reads it: counting 100,000 conversations then
    # needs no lookup per row, only the conversation indexes (a search is a list of ids)
    contact_table = Contact.__table__  # type: ignore[attr-defined]
    needs_contact = any(contact_table in find_tables(c, check_columns=True) for c in conditions)
    join: Any = (sa.join(Conversation, Contact, col(Contact.id) == Conversation.contact_id)
                 if needs_contact else Conversation.__table__)  # type: ignore[attr-defined]
    stmt = (
        sa.select(col(Conversation.status), col(Conversation.owner), col(Conversation.assignee_id), sa.func.count())
        .select_from(join)
        .where(*conditions)
        .group_by(col(Conversation.status), col(Conversation.owner), col(Conversation.assignee_id))
    )
    return [CountGroup(ConversationStatus(status), Owner(owner), assignee_id, int(n))
            for status, owner, assignee_id, n in (await session.exec(stmt)).all()]  # type: ignore[call-overload]


#: on PostgreSQL, the reader folds the kept counts' rows into one per group once there are this
#: many more rows than groups (each fold is one short statement; between folds a read sums them)
FOLD_AFTER = 500


async def _kept_groups(session: AsyncSession, agent: Agent, dialect: str) -> list[CountGroup]:
    """The groups from the counts kept on write, under the access rule."""
    kept: Any = ConversationCount.__table__  # type: ignore[attr-defined]
    key = (kept.c.status, kept.c.owner, kept.c.assignee_id, kept.c.team_id)
    stmt = sa.select(*key, sa.func.sum(kept.c.n), sa.func.count()).group_by(*key)
    rows = (await session.exec(stmt)).all()  # type: ignore[call-overload]
    totals: dict[tuple[str, str, int | None], int] = {}
    for status, owner, assignee_id, team_id, n, _ in rows:
        if n and may_see(agent, assignee_id, team_id):
            totals[(status, owner, assignee_id)] = totals.get((status, owner, assignee_id), 0) + int(n)
    if dialect == "postgresql" and sum(int(r[-1]) for r in rows) > len(rows) + FOLD_AFTER:
        await fold_counts(session)
    return [CountGroup(ConversationStatus(status), Owner(owner), assignee_id, n)
            for (status, owner, assignee_id), n in totals.items() if n]


async def fold_counts(session: AsyncSession) -> None:
    """PostgreSQL: replace the kept counts' rows by one per group (their sum), in a transaction of
    its own (the caller's session is left alone). The rows deleted are exactly the rows summed
    (``RETURNING``); rows of writers not yet committed are not seen and stay, so the sums never
    change, also with two folds at once."""
    bind = session.bind
    if bind is None or not isinstance(bind, AsyncEngine):
        return
    columns = "status, owner, assignee_id, team_id"
    try:
        async with bind.begin() as conn:
            await conn.execute(sa.text(
                f"WITH gone AS (DELETE FROM conversation_count RETURNING {columns}, n) "
                f"INSERT INTO conversation_count ({columns}, n) "
                f"SELECT {columns}, sum(n) FROM gone GROUP BY {columns} HAVING sum(n) <> 0"))
    except SQLAlchemyError as exc:  # a later read folds again; the counts are right either way
        log.warning("inbox counts: fold failed (%s)", type(exc).__name__)

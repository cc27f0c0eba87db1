"""The one grouped count behind the inbox's numbers: the status chips, the "Mine" / "Unassigned"
/ "All" tabs (:func:`inbox.queries.conversations.count_conversations`) and the triage tabs
(:func:`inbox.queries.triage.triage_counts`) are all sums over the same groups of the
conversations an agent may see, (status, owner, assignee) → how many, so a list page reads them
with ONE pass over ``ix_conversation_status_counts`` (about a dozen groups per agent) instead of
one pass per kind of number."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.util import find_tables
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from inbox.models import Agent, Contact, Conversation, ConversationStatus, Owner
from inbox.queries.access import access_condition
from inbox.queries.filters import ConversationFilters

__all__ = ["CountGroup", "count_groups"]


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

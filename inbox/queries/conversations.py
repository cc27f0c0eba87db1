"""Conversation lists and counts for the agents' inbox, and one conversation.

Access (:mod:`inbox.queries.access`) applies everywhere. ``get_conversation`` answers None
both for a missing conversation and for one outside the agent's access, so the two cannot be
told apart. Lists are keyset-paginated: pass a row's ``cursor`` as ``before`` to get the next
page. Filters are the one declared set, :class:`inbox.queries.filters.ConversationFilters`
(pass one as ``filters=`` or its fields as keywords).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.orm import load_only
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from inbox.models import (
    Agent,
    Channel,
    Contact,
    Conversation,
    ConversationStatus,
    Direction,
    Message,
    Owner,
    Priority,
)
from inbox.queries.access import access_condition, check_access
from inbox.queries.counts import CountGroup, count_groups
from inbox.queries.filters import ConversationFilters, InvalidQuery
from inbox.queries.triage import (
    TRIAGE_ORDERED,
    TRIAGE_VIEWS,
    state_token,
    triage_before,
    triage_condition,
    triage_cursor,
    triage_order,
)
from shopbase.rows import saved_id

__all__ = [
    "View",
    "VIEWS",
    "PREVIEW_CHARS",
    "ConversationRow",
    "list_conversations",
    "count_conversations",
    "counts_of_groups",
    "get_conversation",
    "active_conversation",
    "dialect_name",
    "known_intents",
]

View = Literal["mine", "unassigned", "all"]
VIEWS: tuple[View, ...] = ("mine", "unassigned", "all")
PREVIEW_CHARS = 140
MAX_LIMIT = 200


@dataclass(frozen=True)
class ConversationRow:
    id: int
    contact_id: int
    contact_name: str
    channel: Channel
    status: ConversationStatus
    priority: Priority
    owner: Owner
    assignee_id: int | None
    assignee_name: str | None
    team_id: int | None
    labels: tuple[str, ...]
    preview: str
    last_intent: str | None
    #: the last (non-internal) message is the customer's: someone owes them an answer
    unread: bool
    last_message_at: datetime
    created_at: datetime
    snoozed_until: datetime | None
    #: pass as ``before`` to list the rows after this one (in the same view)
    cursor: str
    #: the SLA clock (inbox.sla): due time, when it breached, business seconds left while paused
    sla_due_at: datetime | None = None
    sla_breached_at: datetime | None = None
    sla_paused_seconds: int | None = None
    #: what agents change on it, digested (inbox.queries.triage.state_token): a bulk action's check
    token: str = ""


def dialect_name(session: AsyncSession) -> str:
    return str(session.get_bind().dialect.name)


def _view_condition(view: str, agent: Agent) -> ColumnElement[bool]:
    if view == "mine":
        if agent.id is None:
            return sa.false()
        return col(Conversation.assignee_id) == agent.id
    if view == "unassigned":
        return sa.and_(col(Conversation.owner) == Owner.agent, col(Conversation.assignee_id).is_(None))
    if view == "all":
        return sa.true()
    if view in TRIAGE_VIEWS:  # the triage views (inbox.queries.triage)
        return triage_condition(view, agent)
    raise InvalidQuery(f"unknown view {view!r}; use one of: {', '.join((*VIEWS, *TRIAGE_VIEWS))}")


def _in_view(view: str, agent: Agent, owner: Owner, assignee_id: int | None) -> bool:
    """:func:`_view_condition` for one conversation's owner and assignee."""
    if view == "mine":
        return agent.id is not None and assignee_id == agent.id
    if view == "unassigned":
        return owner == Owner.agent and assignee_id is None
    return view == "all"


#: the columns a list row needs (ConversationRow, its cursor and its state token)
_LISTED = tuple(getattr(Conversation, name) for name in (
    "id", "contact_id", "channel", "status", "priority", "owner", "assignee_id", "team_id", "labels", "last_intent",
    "last_message_at", "created_at", "snoozed_until", "sla_due_at", "sla_breached_at", "sla_paused_seconds"))


def _cursor_of(conversation: Conversation, score: float | None = None) -> str:
    """The cursor of a search result (score, then activity) or of a list newest activity first
    ("all", "resolved"); the work queues use :func:`inbox.queries.triage.triage_cursor`."""
    if score is not None:
        return f"s|{score!r}|{conversation.last_message_at.isoformat()}|{conversation.id}"
    return f"0|{conversation.last_message_at.isoformat()}|{conversation.id}"


def _parse_cursor(before: str, *, search: bool) -> tuple[float, datetime, int]:
    """(rank or score, last activity, id) of a cursor; InvalidQuery if it is not one of this list's."""
    parts = str(before).split("|")
    try:
        if search != (parts[0] == "s") or len(parts) != (4 if search else 3):
            raise ValueError
        key, ts, last_id = float(parts[-3]), datetime.fromisoformat(parts[-2]), int(parts[-1])
    except ValueError:
        raise InvalidQuery("before is not a valid cursor") from None
    if ts.tzinfo is None or key != key:  # naive time, NaN
        raise InvalidQuery("before is not a valid cursor")
    return key, ts, last_id


def _before_condition(before: str | datetime) -> ColumnElement[bool]:
    """The rows after ``before`` newest activity first (the lists not in the triage order)."""
    if isinstance(before, datetime):
        if before.tzinfo is None:
            raise InvalidQuery("before must be timezone-aware")
        return col(Conversation.last_message_at) < before
    _, ts, last_id = _parse_cursor(before, search=False)
    return sa.or_(
        col(Conversation.last_message_at) < ts,
        sa.and_(col(Conversation.last_message_at) == ts, col(Conversation.id) < last_id),
    )


async def _search_page(
    session: AsyncSession,
    conds: list[ColumnElement[bool]],
    scores: Mapping[int, float],
    limit: int,
    before: str | datetime | None,
) -> list[int]:
    """Ids of one page of search results, best score first, then last activity: the matching
    conversations (at most a few thousand, see inbox.search) are ordered here."""
    rows = (await session.exec(select(col(Conversation.id), Conversation.last_message_at).where(*conds))).all()
    keys = sorted(((scores.get(cid, 0.0), ts, cid) for cid, ts in rows if cid is not None), reverse=True)
    if isinstance(before, datetime):
        if before.tzinfo is None:
            raise InvalidQuery("before must be timezone-aware")
        keys = [k for k in keys if k[1] < before]
    elif before is not None:
        after = _parse_cursor(before, search=True)
        keys = [k for k in keys if k < after]
    return [cid for _, _, cid in keys[:limit]]


async def list_conversations(
    session: AsyncSession,
    agent: Agent,
    *,
    view: View = "all",
    filters: ConversationFilters | None = None,
    limit: int = 50,
    before: str | datetime | None = None,
    **raw_filters: Any,
) -> list[ConversationRow]:
    """One page of conversations the agent may see, newest activity first.

    The work queues (``inbox.queries.triage.TRIAGE_ORDERED``: "unassigned", "mine", "human", …)
    are in :func:`inbox.queries.triage.triage_order` (priority, SLA due time, waiting time). With search
    text, every view is ordered by relevance (:mod:`inbox.search`), then last activity. Raises
    :class:`InvalidQuery` for an unknown view/status/channel/priority or a bad cursor.
    """
    dialect = dialect_name(session)
    try:
        limit = max(1, min(int(limit), MAX_LIMIT))
    except (TypeError, ValueError):
        raise InvalidQuery("limit must be a number") from None
    flt = filters if filters is not None else ConversationFilters.parse(**raw_filters)
    flt = await flt.resolve(session)
    conds = [*flt.conditions(dialect), flt.secondary(dialect, _view_condition(view, agent))]
    conds.append(flt.secondary(dialect, access_condition(agent)))
    stmt = (
        select(Conversation, Contact.display_name, Contact.username, Agent.name)
        .options(load_only(*_LISTED))  # not the dialog state, the hand-off, the summary: the list shows none
        .join(Contact, col(Contact.id) == Conversation.contact_id)
        .outerjoin(Agent, col(Agent.id) == Conversation.assignee_id)
    )
    page: list[int] | None = None
    if flt.scores is not None:
        page = await _search_page(session, conds, flt.scores, limit, before)
        stmt = stmt.where(col(Conversation.id).in_(page))
    else:
        if before is not None:
            conds.append(triage_before(before) if view in TRIAGE_ORDERED else _before_condition(before))
        order: list[Any] = [col(Conversation.last_message_at).desc(), col(Conversation.id).desc()]
        if view in TRIAGE_ORDERED:  # the work queues: priority, SLA due time, waiting time
            order = triage_order()
            # the page's ids first, sorted inside the covering ix_conversation_triage; then 50 rows
            page_ids = sa.select(col(Conversation.id)).where(*conds).order_by(*order).limit(limit)
            stmt = stmt.where(col(Conversation.id).in_(page_ids)).order_by(*order)
        else:
            stmt = stmt.where(*conds).order_by(*order).limit(limit)
    rows = list((await session.exec(stmt)).all()) if page != [] else []
    if page is not None:
        position = {cid: i for i, cid in enumerate(page)}
        rows.sort(key=lambda row: position[saved_id(row[0])])
    last = await _last_messages(session, [saved_id(conv) for conv, *_ in rows])
    out: list[ConversationRow] = []
    for conv, display_name, username, assignee_name in rows:
        preview, unread = last.get(saved_id(conv), ("", False))
        score = None if flt.scores is None else flt.scores.get(saved_id(conv), 0.0)
        out.append(
            ConversationRow(
                id=saved_id(conv),
                contact_id=conv.contact_id,
                contact_name=display_name or (f"@{username}" if username else f"Customer #{conv.contact_id}"),
                channel=conv.channel,
                status=conv.status,
                priority=conv.priority,
                owner=conv.owner,
                assignee_id=conv.assignee_id,
                assignee_name=assignee_name,
                team_id=conv.team_id,
                labels=tuple(conv.labels or ()),
                preview=preview,
                last_intent=conv.last_intent,
                unread=unread,
                last_message_at=conv.last_message_at,
                created_at=conv.created_at,
                snoozed_until=conv.snoozed_until,
                cursor=triage_cursor(conv) if view in TRIAGE_ORDERED and score is None else _cursor_of(conv, score),
                token=state_token(conv),
                sla_due_at=conv.sla_due_at,
                sla_breached_at=conv.sla_breached_at,
                sla_paused_seconds=conv.sla_paused_seconds,
            )
        )
    return out


async def _last_messages(session: AsyncSession, conversation_ids: list[int]) -> dict[int, tuple[str, bool]]:
    """conversation id -> (preview of the last non-internal message, it is the customer's); one query."""
    if not conversation_ids:
        return {}
    # per conversation, its newest non-internal message: the (conversation_id, id) index read
    # backwards from the end, a step or two each (a max() over a conversation with 50,000
    # messages would read all of them)
    latest = sa.alias(Message.__table__, "latest")  # type: ignore[attr-defined]
    last_ids = sa.select(
        sa.select(latest.c.id)
        .where(latest.c.conversation_id == Conversation.id, latest.c.is_internal.is_(False))
        .order_by(latest.c.id.desc())
        .limit(1)
        .scalar_subquery()
    ).where(col(Conversation.id).in_(conversation_ids))
    stmt = select(Message.conversation_id, sa.func.substr(Message.text, 1, PREVIEW_CHARS), Message.direction).where(
        col(Message.id).in_(last_ids)
    )
    return {
        int(cid): (preview or "", Direction(direction) == Direction.inbound)
        for cid, preview, direction in (await session.exec(stmt)).all()
    }


async def count_conversations(
    session: AsyncSession,
    agent: Agent,
    *,
    view: View = "all",
    filters: ConversationFilters | None = None,
    **raw_filters: Any,
) -> dict[str, int]:
    """Counts for the inbox's tabs and chips, in one query.

    Keys ``"mine"``, ``"unassigned"``, ``"all"``: conversations in each view under the given
    filters (``status`` included). Keys ``"open"``, ``"pending"``, ``"snoozed"``,
    ``"resolved"``: conversations of each status within ``view`` under the other filters.
    ONE pass, grouped by (status, owner, assignee): :func:`inbox.queries.counts.count_groups`.
    """
    flt = filters if filters is not None else ConversationFilters.parse(**raw_filters)
    _view_condition(view, agent)  # validate early
    flt = await flt.resolve(session)
    return counts_of_groups(await count_groups(session, agent, flt), agent, view=view, status=flt.status)


def counts_of_groups(groups: list[CountGroup], agent: Agent, *, view: str = "all",
                     status: ConversationStatus | None = None) -> dict[str, int]:
    """:func:`count_conversations`'s numbers from :func:`inbox.queries.counts.count_groups` (the
    view counts are the chosen status's groups, all groups without one; the status counts the
    chosen view's groups)."""
    counts: dict[str, int] = {v: 0 for v in VIEWS}
    counts.update({s.value: 0 for s in ConversationStatus})
    for group in groups:
        for v in VIEWS:
            if _in_view(v, agent, group.owner, group.assignee_id):
                if v == view:
                    counts[group.status.value] += group.n
                if status is None or group.status == status:
                    counts[v] += group.n
    return counts


async def active_conversation(session: AsyncSession, contact_id: int | None) -> Conversation | None:
    """The contact's one not-resolved conversation, if any (a partial unique index keeps it one)."""
    stmt = select(Conversation).where(
        col(Conversation.contact_id) == contact_id, col(Conversation.status) != ConversationStatus.resolved
    )
    return (await session.exec(stmt)).first()


async def get_conversation(session: AsyncSession, agent: Agent, conversation_id: int) -> Conversation | None:
    """The conversation, or None when it does not exist or ``agent`` may not see it."""
    try:
        conversation_id = int(conversation_id)
    except (TypeError, ValueError):
        return None
    if not 0 < conversation_id <= 2**31 - 1:  # an INTEGER id; PostgreSQL refuses larger values
        return None
    conversation = await session.get(Conversation, conversation_id)
    if conversation is None or not check_access(agent, conversation):
        return None
    return conversation


async def known_intents(session: AsyncSession, limit: int = 60) -> list[str]:
    """The distinct ``last_intent`` values (for the list's filter), in order: a loose index scan
    (each step the next value after the previous one, from ``ix_conversation_last_intent``), so
    100,000 conversations cost a few index lookups, also on PostgreSQL, which has no skip scan."""
    intent = col(Conversation.last_intent)
    found = sa.select(sa.func.min(intent).label("intent")).cte("intents", recursive=True)
    following = sa.select(sa.func.min(intent)).where(intent > found.c.intent).scalar_subquery()
    found = found.union_all(sa.select(following).where(found.c.intent.is_not(None)))
    stmt = sa.select(found.c.intent).where(found.c.intent.is_not(None)).order_by(found.c.intent).limit(limit)
    return [str(row[0]) for row in (await session.exec(stmt)).all()]  # type: ignore[call-overload]

"""Reads for the agents' inbox: conversation lists and counts, one conversation, a transcript.

Access rule (the same everywhere, also for search): an admin sees every conversation; any
other active agent sees conversations with no team, conversations of their own team, and
conversations assigned to them. Deactivated agents see nothing. ``get_conversation``
answers None both for a missing conversation and for one outside the agent's access, so
the two cannot be told apart.

Lists are keyset-paginated: pass a row's ``cursor`` as ``before`` to get the next page.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import select

from inbox.models import (
    PRIORITY_RANK,
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
from inbox.search import clean_query, matching_conversation_ids

__all__ = [
    "View",
    "VIEWS",
    "PREVIEW_CHARS",
    "ConversationRow",
    "InvalidQuery",
    "check_access",
    "access_condition",
    "list_conversations",
    "count_conversations",
    "get_conversation",
    "transcript",
    "dialect_name",
]

View = Literal["mine", "unassigned", "all"]
VIEWS: tuple[View, ...] = ("mine", "unassigned", "all")
PREVIEW_CHARS = 140
MAX_LIMIT = 200


class InvalidQuery(ValueError):
    """A filter or cursor that makes no sense; the message is fit for a 400 answer."""


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


def dialect_name(session: Any) -> str:
    return str(session.get_bind().dialect.name)


def check_access(agent: Agent, conversation: Conversation) -> bool:
    """May ``agent`` see ``conversation``? (see the module docstring)"""
    if not agent.is_active:
        return False
    if agent.is_admin:
        return True
    if conversation.assignee_id is not None and conversation.assignee_id == agent.id:
        return True
    return conversation.team_id is None or (agent.team_id is not None and conversation.team_id == agent.team_id)


def access_condition(agent: Agent) -> ColumnElement[bool]:
    """The SQL form of :func:`check_access` over ``Conversation``."""
    if not agent.is_active:
        return sa.false()
    if agent.is_admin:
        return sa.true()
    conds: list[ColumnElement[bool]] = [Conversation.team_id.is_(None)]  # type: ignore[union-attr]
    if agent.team_id is not None:
        conds.append(Conversation.team_id == agent.team_id)  # type: ignore[arg-type]
    if agent.id is not None:
        conds.append(Conversation.assignee_id == agent.id)  # type: ignore[arg-type]
    return sa.or_(*conds)


def _view_condition(view: str, agent: Agent) -> ColumnElement[bool]:
    if view == "mine":
        if agent.id is None:
            return sa.false()
        return Conversation.assignee_id == agent.id  # type: ignore[return-value]
    if view == "unassigned":
        return sa.and_(Conversation.owner == Owner.agent, Conversation.assignee_id.is_(None))  # type: ignore[union-attr]
    if view == "all":
        return sa.true()
    raise InvalidQuery(f"unknown view {view!r}; use one of: {', '.join(VIEWS)}")


def _enum(cls: Any, value: Any, what: str) -> Any:
    try:
        return cls(value)
    except ValueError:
        raise InvalidQuery(f"unknown {what} {value!r}") from None


_RANK = sa.case({p.value: rank for p, rank in PRIORITY_RANK.items()}, value=Conversation.priority, else_=1)


def _filters(
    dialect: str,
    *,
    status: Any = None,
    channel: Any = None,
    intent: str | None = None,
    priority: Any = None,
    label: str | None = None,
    q: str | None = None,
) -> list[ColumnElement[bool]]:
    conds: list[ColumnElement[bool]] = []
    if status is not None:
        conds.append(Conversation.status == _enum(ConversationStatus, status, "status"))  # type: ignore[arg-type]
    if channel is not None:
        conds.append(Conversation.channel == _enum(Channel, channel, "channel"))  # type: ignore[arg-type]
    if priority is not None:
        conds.append(Conversation.priority == _enum(Priority, priority, "priority"))  # type: ignore[arg-type]
    if intent:
        conds.append(Conversation.last_intent == str(intent)[:32])  # type: ignore[arg-type]
    if label:
        conds.append(_label_condition(dialect, str(label)[:64]))
    if q:
        conds.append(_search_condition(dialect, q))
    return conds


def _label_condition(dialect: str, label: str) -> ColumnElement[bool]:
    if dialect == "postgresql":
        return sa.type_coerce(Conversation.labels, JSONB).contains([label])
    each = sa.func.json_each(Conversation.labels).table_valued("value")
    return sa.exists(sa.select(sa.literal(1)).select_from(each).where(each.c.value == label))


def _search_condition(dialect: str, q: str) -> ColumnElement[bool]:
    text = clean_query(q)
    if not text:
        return sa.true()
    ids = matching_conversation_ids(dialect, text)
    pattern = "%" + text[:100].replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    name_match = sa.or_(
        Contact.display_name.ilike(pattern, escape="\\"),  # type: ignore[attr-defined]
        Contact.username.ilike(pattern, escape="\\"),  # type: ignore[union-attr]
    )
    if ids is None:
        return name_match
    return sa.or_(Conversation.id.in_(ids), name_match)  # type: ignore[union-attr]


def _cursor_of(view: str, conversation: Conversation) -> str:
    rank = PRIORITY_RANK.get(Priority(conversation.priority), 1) if view == "unassigned" else 0
    return f"{rank}|{conversation.last_message_at.isoformat()}|{conversation.id}"


def _before_condition(view: str, before: str | datetime) -> ColumnElement[bool]:
    if isinstance(before, datetime):
        if before.tzinfo is None:
            raise InvalidQuery("before must be timezone-aware")
        return Conversation.last_message_at < before  # type: ignore[return-value]
    try:
        rank_s, ts_s, id_s = str(before).split("|")
        rank, ts, last_id = int(rank_s), datetime.fromisoformat(ts_s), int(id_s)
    except ValueError:
        raise InvalidQuery("before is not a valid cursor") from None
    if ts.tzinfo is None:
        raise InvalidQuery("before is not a valid cursor")
    after = sa.or_(
        Conversation.last_message_at < ts,
        sa.and_(Conversation.last_message_at == ts, Conversation.id < last_id),  # type: ignore[operator]
    )
    if view != "unassigned":
        return after
    return sa.or_(_RANK < rank, sa.and_(_RANK == rank, after))


def _base(agent: Agent, dialect: str, **filters: Any) -> list[ColumnElement[bool]]:
    return [access_condition(agent), *_filters(dialect, **filters)]


async def list_conversations(
    session: Any,
    agent: Agent,
    *,
    view: View = "all",
    status: ConversationStatus | str | None = None,
    channel: Channel | str | None = None,
    intent: str | None = None,
    priority: Priority | str | None = None,
    label: str | None = None,
    q: str | None = None,
    limit: int = 50,
    before: str | datetime | None = None,
) -> list[ConversationRow]:
    """One page of conversations the agent may see, newest activity first.

    The unassigned queue is ordered by priority (urgent first), then last activity. Raises
    :class:`InvalidQuery` for an unknown view/status/channel/priority or a bad cursor.
    """
    dialect = dialect_name(session)
    try:
        limit = max(1, min(int(limit), MAX_LIMIT))
    except (TypeError, ValueError):
        raise InvalidQuery("limit must be a number") from None
    conds = _base(agent, dialect, status=status, channel=channel, intent=intent, priority=priority, label=label, q=q)
    conds.append(_view_condition(view, agent))
    if before is not None:
        conds.append(_before_condition(view, before))
    order: list[Any] = [Conversation.last_message_at.desc(), Conversation.id.desc()]  # type: ignore[attr-defined,union-attr]
    if view == "unassigned":
        order.insert(0, _RANK.desc())
    stmt = (
        select(Conversation, Contact.display_name, Contact.username, Agent.name)
        .join(Contact, Contact.id == Conversation.contact_id)  # type: ignore[arg-type]
        .outerjoin(Agent, Agent.id == Conversation.assignee_id)  # type: ignore[arg-type]
        .where(*conds)
        .order_by(*order)
        .limit(limit)
    )
    rows = (await session.exec(stmt)).all()
    last = await _last_messages(session, [conv.id for conv, *_ in rows])
    out: list[ConversationRow] = []
    for conv, display_name, username, assignee_name in rows:
        preview, unread = last.get(conv.id, ("", False))
        out.append(
            ConversationRow(
                id=conv.id,
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
                cursor=_cursor_of(view, conv),
            )
        )
    return out


async def _last_messages(session: Any, conversation_ids: list[int]) -> dict[int, tuple[str, bool]]:
    """conversation id -> (preview of the last non-internal message, it is the customer's); one query."""
    if not conversation_ids:
        return {}
    last_ids = (
        sa.select(sa.func.max(Message.id))
        .where(Message.conversation_id.in_(conversation_ids), Message.is_internal.is_(False))  # type: ignore[attr-defined]
        .group_by(Message.conversation_id)
    )
    stmt = select(Message.conversation_id, sa.func.substr(Message.text, 1, PREVIEW_CHARS), Message.direction).where(
        Message.id.in_(last_ids)  # type: ignore[union-attr]
    )
    return {
        int(cid): (preview or "", Direction(direction) == Direction.inbound)
        for cid, preview, direction in (await session.exec(stmt)).all()
    }


async def count_conversations(
    session: Any,
    agent: Agent,
    *,
    view: View = "all",
    status: ConversationStatus | str | None = None,
    channel: Channel | str | None = None,
    intent: str | None = None,
    priority: Priority | str | None = None,
    label: str | None = None,
    q: str | None = None,
) -> dict[str, int]:
    """Counts for the inbox's tabs and chips, in two queries.

    Keys ``"mine"``, ``"unassigned"``, ``"all"``: conversations in each view under the given
    filters (``status`` included). Keys ``"open"``, ``"pending"``, ``"snoozed"``,
    ``"resolved"``: conversations of each status within ``view`` under the other filters.
    """
    dialect = dialect_name(session)
    _view_condition(view, agent)  # validate early
    join = sa.join(Conversation, Contact, Contact.id == Conversation.contact_id)  # type: ignore[arg-type]

    def total(cond: ColumnElement[bool]) -> Any:
        return sa.func.coalesce(sa.func.sum(sa.case((cond, 1), else_=0)), 0)

    views_stmt = (
        sa.select(*(total(_view_condition(v, agent)).label(v) for v in VIEWS))
        .select_from(join)
        .where(*_base(agent, dialect, status=status, channel=channel, intent=intent, priority=priority, label=label, q=q))
    )
    counts: dict[str, int] = {v: int(n) for v, n in zip(VIEWS, (await session.exec(views_stmt)).one())}

    status_stmt = (
        sa.select(Conversation.status, sa.func.count())
        .select_from(join)
        .where(*_base(agent, dialect, channel=channel, intent=intent, priority=priority, label=label, q=q))
        .where(_view_condition(view, agent))
        .group_by(Conversation.status)
    )
    counts.update({s.value: 0 for s in ConversationStatus})
    for st, n in (await session.exec(status_stmt)).all():
        counts[ConversationStatus(st).value] = int(n)
    return counts


async def get_conversation(session: Any, agent: Agent, conversation_id: int) -> Conversation | None:
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


async def transcript(
    session: Any, conversation_id: int, limit: int = 200, *, include_internal: bool = True
) -> list[Message]:
    """The last ``limit`` messages of a conversation, oldest first (internal notes included
    unless ``include_internal=False``). Access is the caller's check (``get_conversation``)."""
    stmt = select(Message).where(Message.conversation_id == conversation_id)
    if not include_internal:
        stmt = stmt.where(Message.is_internal.is_(False))  # type: ignore[attr-defined]
    stmt = stmt.order_by(Message.id.desc()).limit(max(1, min(int(limit), 1000)))  # type: ignore[union-attr]
    messages = list((await session.exec(stmt)).all())
    messages.reverse()
    return messages

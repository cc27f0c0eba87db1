"""Triage: the inbox's work queues, their counts, their one order, and the token that tells a
bulk action whether a conversation changed since the agent saw it.

Views (``view=`` of the list; every one also under the access rule of :mod:`inbox.queries.access`):

========== ========================================== =========================================
name       shown as                                   condition
========== ========================================== =========================================
human      Needs a human                              agents own it, status open
bot        Bot is handling                            the bot owns it, status open
mine       Mine                                       assigned to me (status: the list's filter)
unassigned Unassigned                                 agents own it, nobody assigned
waiting    Waiting on customer                        status pending
snoozed    Snoozed                                    status snoozed
resolved   Resolved                                   status resolved
========== ========================================== =========================================

"human", "bot", "waiting", "snoozed" and "resolved" fix the status themselves (the list's
status filter does not apply to them); "mine" and "unassigned" keep the list's status filter,
whose default is "open", and their tab counts are of open conversations. The counts
(:func:`triage_counts`) are one grouped index-only pass (:mod:`inbox.queries.counts`), shared
with the list's other counts.
:func:`in_view` is the same rule in Python (the count test compares the two).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from inbox.models import PRIORITY_RANK, Agent, Conversation, ConversationStatus, Owner, Priority
from inbox.queries.access import check_access
from inbox.queries.counts import CountGroup, count_groups
from inbox.queries.filters import InvalidQuery

__all__ = [
    "TRIAGE_VIEWS",
    "FIXED_STATUS_VIEWS",
    "TRIAGE_ORDERED",
    "triage_condition",
    "in_view",
    "triage_counts",
    "triage_counts_of_groups",
    "triage_order",
    "triage_cursor",
    "triage_before",
    "state_token",
    "triage_list_context",
]

TRIAGE_VIEWS: tuple[str, ...] = ("human", "bot", "mine", "unassigned", "waiting", "snoozed", "resolved")
#: views whose condition fixes the status (the list's status filter is not applied to them)
FIXED_STATUS_VIEWS = frozenset({"human", "bot", "waiting", "snoozed", "resolved"})
#: views listed in :func:`triage_order` (the others, "resolved" and "all", newest activity first)
TRIAGE_ORDERED = frozenset({"human", "bot", "mine", "unassigned", "waiting", "snoozed"})

_OPEN = ConversationStatus.open
#: the status a tab count assumes for "mine" and "unassigned" (the list's default filter)
_COUNTED_STATUS = {"mine": _OPEN, "unassigned": _OPEN}
_STATUS_OF = {
    "human": _OPEN,
    "bot": _OPEN,
    "waiting": ConversationStatus.pending,
    "snoozed": ConversationStatus.snoozed,
    "resolved": ConversationStatus.resolved,
}
#: sorts after every real due time (SLA "nulls last", and a keyset cursor needs no NULL)
_NO_DUE = datetime(9999, 12, 31, tzinfo=UTC)


def triage_condition(view: str, agent: Agent, *, counting: bool = False) -> ColumnElement[bool]:
    """The SQL condition of ``view`` over ``Conversation`` (without the access rule). With
    ``counting``, "mine" and "unassigned" include the status their tab counts (open)."""
    conds: list[ColumnElement[bool]] = []
    status = _STATUS_OF.get(view) or (_COUNTED_STATUS.get(view) if counting else None)
    if status is not None:
        conds.append(col(Conversation.status) == status)
    if view == "human":
        conds.append(col(Conversation.owner) == Owner.agent)
    elif view == "bot":
        conds.append(col(Conversation.owner) == Owner.bot)
    elif view == "mine":
        conds.append(col(Conversation.assignee_id) == agent.id if agent.id is not None else sa.false())
    elif view == "unassigned":
        conds.extend([col(Conversation.owner) == Owner.agent, col(Conversation.assignee_id).is_(None)])
    elif view not in TRIAGE_VIEWS:
        raise InvalidQuery(f"unknown view {view!r}")
    return sa.and_(*conds)


def in_view(view: str, agent: Agent, conversation: Conversation) -> bool:
    """:func:`triage_condition` (counting) plus access, in Python."""
    if not check_access(agent, conversation):
        return False
    status = ConversationStatus(conversation.status)
    owner = Owner(conversation.owner)
    wanted = _STATUS_OF.get(view) or _COUNTED_STATUS.get(view)
    if status != wanted:
        return False
    if view == "human":
        return owner == Owner.agent
    if view == "bot":
        return owner == Owner.bot
    if view == "mine":
        return agent.id is not None and conversation.assignee_id == agent.id
    if view == "unassigned":
        return owner == Owner.agent and conversation.assignee_id is None
    return True


async def triage_counts(session: AsyncSession, agent: Agent) -> dict[str, int]:
    """view -> number of conversations in it that ``agent`` may see: one grouped pass
    (:func:`inbox.queries.counts.count_groups`, ``ix_conversation_status_counts``)."""
    return triage_counts_of_groups(await count_groups(session, agent), agent)


def triage_counts_of_groups(groups: Iterable[CountGroup], agent: Agent) -> dict[str, int]:
    """:func:`triage_counts` from the groups of every conversation ``agent`` may see (no filter)."""
    counts = {view: 0 for view in TRIAGE_VIEWS}
    for group in groups:
        for view in TRIAGE_VIEWS:
            if _group_in_view(view, agent, group):
                counts[view] += group.n
    return counts


def _group_in_view(view: str, agent: Agent, group: CountGroup) -> bool:
    """:func:`triage_condition` (counting) for one group (the access rule is the group's query's)."""
    if group.status != (_STATUS_OF.get(view) or _COUNTED_STATUS.get(view)):
        return False
    if view == "human":
        return group.owner == Owner.agent
    if view == "bot":
        return group.owner == Owner.bot
    if view == "mine":
        return agent.id is not None and group.assignee_id == agent.id
    if view == "unassigned":
        return group.owner == Owner.agent and group.assignee_id is None
    return True


_RANK = sa.case({p.value: rank for p, rank in PRIORITY_RANK.items()}, value=Conversation.priority, else_=1)


def _due() -> ColumnElement[Any]:
    return sa.func.coalesce(col(Conversation.sla_due_at), sa.literal(_NO_DUE, Conversation.__table__.c.sla_due_at.type))  # type: ignore[attr-defined]


def triage_order() -> list[ColumnElement[Any]]:
    """THE order of the work queues: most urgent priority first; then the SLA due time, soonest
    first and conversations without one last (``conversation.sla_due_at``, set by the SLA
    policies; ``_due`` maps NULL to the far future so that the keyset cursor needs no NULL);
    then waiting time, longest waiting (oldest activity) first; the id breaks ties.
    :func:`triage_cursor` / :func:`triage_before` page through exactly this order."""
    return [
        _RANK.desc(),
        _due().asc(),  # SLA due time (nulls last)
        col(Conversation.last_message_at).asc(),  # waiting time: longest first
        col(Conversation.id).asc(),
    ]


def triage_cursor(conversation: Conversation) -> str:
    """The ``before`` value that lists what comes after ``conversation`` in :func:`triage_order`."""
    rank = PRIORITY_RANK.get(Priority(conversation.priority), 1)
    due = conversation.sla_due_at or _NO_DUE
    return f"t|{rank}|{due.isoformat()}|{conversation.last_message_at.isoformat()}|{conversation.id}"


def triage_before(before: str | datetime) -> ColumnElement[bool]:
    """The rows after the cursor ``before`` in :func:`triage_order`; InvalidQuery if it is not one."""
    parts = str(before).split("|") if isinstance(before, str) else []
    try:
        if len(parts) != 5 or parts[0] != "t":
            raise ValueError
        rank, due, last, last_id = int(parts[1]), datetime.fromisoformat(parts[2]), datetime.fromisoformat(parts[3]), int(parts[4])
    except ValueError:
        raise InvalidQuery("before is not a valid cursor") from None
    if due.tzinfo is None or last.tzinfo is None:
        raise InvalidQuery("before is not a valid cursor")
    # (-rank, due, last, id) ascending, written out (row values compare differently across databases)
    key: list[tuple[Any, Any]] = [
        (-_RANK, -rank), (_due(), due), (col(Conversation.last_message_at), last), (col(Conversation.id), last_id)
    ]
    cond: ColumnElement[bool] = key[-1][0] > key[-1][1]
    for column, value in reversed(key[:-1]):
        cond = sa.or_(column > value, sa.and_(column == value, cond))
    return cond


def state_token(conversation: Conversation) -> str:
    """A short digest of what agents change on a conversation (status, priority, owner, assignee,
    team, labels, snooze). The list renders it with each row; a bulk action refuses when a
    selected conversation's token differs (someone changed it since the list was shown). A new
    customer message does not change it, so a busy conversation can still be acted on."""
    parts: Iterable[Any] = (
        ConversationStatus(conversation.status).value,
        Priority(conversation.priority).value,
        Owner(conversation.owner).value,
        conversation.assignee_id,
        conversation.team_id,
        ",".join(sorted(conversation.labels or [])),
        conversation.snoozed_until.isoformat() if conversation.snoozed_until else "",
    )
    return hashlib.sha256("|".join(str(p) for p in parts).encode()).hexdigest()[:16]


async def triage_list_context(session: AsyncSession, agent: Agent,
                              counts: dict[str, int] | None = None) -> dict[str, Any]:
    """What the list page's triage parts need: the tabs and their counts (``counts``, when the
    caller has them already), the agent's saved views, the agents a bulk action may assign to,
    the bulk snooze's default time."""
    from inbox.queries.saved_views import saved_views_of

    agents = (await session.exec(select(Agent).where(col(Agent.is_active).is_(True)).order_by(col(Agent.name)))).all()
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).replace(minute=0, second=0, microsecond=0)
    return {
        "triage_views": TRIAGE_VIEWS,
        "fixed_status_views": FIXED_STATUS_VIEWS,
        "triage_counts": counts if counts is not None else await triage_counts(session, agent),
        "saved_views": await saved_views_of(session, agent),
        "bulk_agents": list(agents),
        "bulk_snooze_default": tomorrow,
    }

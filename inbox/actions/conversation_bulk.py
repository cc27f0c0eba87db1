"""One change to many conversations at once (the inbox's bulk actions): assign, set the status
or the priority, add or remove a label, snooze, resolve.

All or nothing, in the caller's transaction: every selected conversation is read and locked
first (``FOR UPDATE`` on PostgreSQL, in id order), its access checked and its state compared
with the token the agent's list showed (``inbox.queries.triage.state_token``); if any one
changed since, the whole change is refused (code ``stale``, 409) before anything is written.
Then each conversation goes through the same action a single change uses
(``conversation_assign``, ``conversation_status``, ``conversation_priority``,
``conversation_labels``), so each gets its one audit row and its live event, and a refusal of
any one (say, re-opening a conversation whose customer has another active one) refuses all.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from inbox.actions.base import parse_priority, parse_status
from inbox.actions.conversation_assign import conversation_assign
from inbox.actions.conversation_labels import conversation_labels, normalize_labels
from inbox.actions.conversation_priority import conversation_priority
from inbox.actions.conversation_status import conversation_status
from inbox.models import Agent, Conversation, ConversationStatus
from inbox.queries.access import check_access
from inbox.queries.triage import state_token
from shopbase.clock import utcnow
from shopbase.refusal import Refused

__all__ = ["BULK_OPERATIONS", "MAX_BULK", "conversation_bulk"]

BULK_OPERATIONS = ("assign", "status", "priority", "label", "unlabel", "snooze", "resolve")
MAX_BULK = 200


async def conversation_bulk(
    session: AsyncSession,
    agent: Agent,
    selection: Mapping[int, str],
    operation: str,
    *,
    value: str = "",
    assignee: Agent | None = None,
    snoozed_until: datetime | None = None,
) -> list[int]:
    """Apply ``operation`` to the conversations of ``selection`` (id -> the state token the agent
    saw); returns their ids. ``value``: the status, priority or label; ``assignee``: for
    "assign" (None puts them back in the unassigned queue); ``snoozed_until``: for "snooze"."""
    if not agent.is_active or agent.id is None:
        raise Refused("no_access", "you cannot change conversations", status=403)
    if operation not in BULK_OPERATIONS:
        raise Refused("unknown_operation", "Choose what to do with the selected conversations.", status=400)
    if not selection:
        raise Refused("nothing_selected", "Select at least one conversation.", status=400)
    if len(selection) > MAX_BULK:
        raise Refused("too_many", "Select at most %(limit)s conversations at once.", status=400, limit=MAX_BULK)
    # check the input before reading anything
    label = ""
    if operation == "status":
        status = parse_status(value)
        if status == ConversationStatus.snoozed:
            operation = "snooze"
    elif operation == "priority":
        parse_priority(value)
    elif operation in ("label", "unlabel"):
        label = (normalize_labels(value) or [""])[0]
        if not label:
            raise Refused("label_required", "Choose a label.", status=400)
    if operation == "snooze" and (snoozed_until is None or snoozed_until.tzinfo is None or snoozed_until <= utcnow()):
        raise Refused("snooze_in_past", "snooze needs a future, timezone-aware time", status=400)

    ids = sorted(selection)
    stmt = (
        select(Conversation)
        .where(col(Conversation.id).in_(ids))
        .order_by(col(Conversation.id))
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    found = {c.id: c for c in (await session.exec(stmt)).all()}
    missing = [cid for cid in ids if cid not in found or not check_access(agent, found[cid])]
    if missing:
        raise Refused("not_found", "Conversation #%(id)s does not exist or you cannot see it.", status=404,
                      id=missing[0])
    stale = [cid for cid in ids if state_token(found[cid]) != selection[cid]]
    if stale:
        raise Refused(
            "stale",
            "Someone changed %(count)s of the selected conversations since your list was loaded (%(ids)s). "
            "Nothing was changed: look at the list again and retry.",
            status=409,
            count=len(stale),
            ids=", ".join(f"#{cid}" for cid in stale[:10]) + (" …" if len(stale) > 10 else ""),
        )

    for cid in ids:
        conversation = found[cid]
        if operation == "assign":
            await conversation_assign(session, conversation, assignee, by=agent)
        elif operation == "status":
            await conversation_status(session, conversation, value, by=agent, survey=True)
        elif operation == "resolve":
            await conversation_status(session, conversation, ConversationStatus.resolved, by=agent, survey=True)
        elif operation == "snooze":
            await conversation_status(session, conversation, ConversationStatus.snoozed, by=agent,
                                      snoozed_until=snoozed_until)
        elif operation == "priority":
            await conversation_priority(session, conversation, value, by=agent)
        elif operation == "label":
            if label not in (conversation.labels or []):
                await conversation_labels(session, conversation, [*(conversation.labels or []), label], by=agent)
        elif operation == "unlabel":
            if label in (conversation.labels or []):
                await conversation_labels(session, conversation, [x for x in conversation.labels if x != label],
                                          by=agent)
    await session.flush()
    return ids

"""An agent applies a macro to a conversation: its actions, in the caller's ONE transaction.

The reply goes first (it makes the conversation the agent's, like any answer), then labels,
priority, assignment, and the status last (resolving asks for a rating after the reply). Each
step is the ordinary action with its own audit row; one more row says which macro ran. Any
refusal (a deactivated assignee, another active conversation when reopening) refuses the whole
macro: the caller rolls back and nothing of it stays.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from inbox.actions.base import write_audit
from inbox.actions.conversation_assign import conversation_assign
from inbox.actions.conversation_labels import conversation_labels
from inbox.actions.conversation_priority import conversation_priority
from inbox.actions.conversation_status import conversation_status
from inbox.actions.message_send import agent_reply
from inbox.models import Agent, Conversation, ConversationStatus, Macro, Priority
from shopbase.clock import utcnow
from shopbase.refusal import Refused

__all__ = ["macro_apply"]


async def macro_apply(
    session: AsyncSession,
    conversation: Conversation,
    macro: Macro,
    *,
    by: Agent,
    reply_text: str | None = None,
    max_chars: int = 4096,
) -> list[str]:
    """Run ``macro`` (``reply_text``: its canned response, already rendered for this
    conversation by the caller); returns the steps done, in order."""
    done: list[str] = []
    if macro.canned_id is not None:
        if not (reply_text or "").strip():
            raise Refused("empty_reply", "the macro's canned response rendered empty for this conversation",
                          status=400)
        await agent_reply(session, conversation, by, reply_text or "", max_chars=max_chars)
        done.append("reply")
    if macro.add_labels:
        merged = list(conversation.labels or []) + [x for x in macro.add_labels if x not in (conversation.labels or [])]
        await conversation_labels(session, conversation, merged, by=by)
        done.append("labels")
    if macro.priority and Priority(macro.priority) != Priority(conversation.priority):
        await conversation_priority(session, conversation, macro.priority, by=by)
        done.append("priority")
    if macro.assign:
        assignee: Agent | None
        if macro.assign == "me":
            assignee = by
        elif macro.assign == "none":
            assignee = None
        else:
            assignee = await session.get(Agent, int(macro.assign))
            if assignee is None:
                raise Refused("no_such_agent", "the macro's agent no longer exists", status=400)
        await conversation_assign(session, conversation, assignee, by=by)
        done.append("assign")
    if macro.status:
        until = None
        if macro.status == ConversationStatus.snoozed.value:
            until = utcnow() + timedelta(hours=macro.snooze_hours or 24)
        await conversation_status(session, conversation, macro.status, by=by, snoozed_until=until, survey=True)
        done.append("status")
    detail: dict[str, Any] = {"macro_id": macro.id, "name": macro.name, "steps": done}
    write_audit(session, conversation.id, "macro.applied", agent=by, detail=detail)
    return done

"""An agent applies a macro to a conversation, in the caller's ONE transaction.

A macro's canned response is never sent by applying it: the caller renders it into the agent's
composer, where the agent edits it and sends it like any reply. The rule, the same for a click
and a keyboard shortcut:

* **at once** (:func:`macro_apply`): labels, priority and assignment; and the status too when the
  macro has no canned response (there is nothing to send, so nothing to wait for);
* **on send** (:func:`macro_on_send`): when the macro has a canned response, its status (resolve,
  pending, snooze…) is applied when the agent sends the reply, after it, in the reply's
  transaction (resolving then asks for a rating after the reply, as before). An agent who does
  not send leaves the status as it was.

Each step is the ordinary action with its own audit row; one more row says which macro ran
(``macro.applied``, and ``macro.sent`` when its deferred status was applied). Any refusal (a
deactivated assignee, another active conversation when reopening) refuses the whole step: the
caller rolls back and nothing of it stays.
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
from inbox.models import Agent, Conversation, ConversationStatus, Macro, Priority
from shopbase.clock import utcnow
from shopbase.refusal import Refused

__all__ = ["macro_apply", "macro_on_send", "status_waits_for_send"]


def status_waits_for_send(macro: Macro) -> bool:
    """True when the macro's status is applied only once its reply is sent."""
    return bool(macro.status) and macro.canned_id is not None


async def macro_apply(session: AsyncSession, conversation: Conversation, macro: Macro, *, by: Agent) -> list[str]:
    """Run the macro's immediate steps; returns the steps done, in order (``status`` is among
    them only when the macro has no canned response: see :func:`status_waits_for_send`)."""
    done: list[str] = []
    if macro.add_labels:
        current = list(conversation.labels or [])
        merged = current + [x for x in macro.add_labels if x not in current]
        if merged != current:
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
    if macro.status and not status_waits_for_send(macro):
        await _status(session, conversation, macro, by)
        done.append("status")
    detail: dict[str, Any] = {"macro_id": macro.id, "name": macro.name, "steps": done,
                              "on_send": ["status"] if status_waits_for_send(macro) else []}
    write_audit(session, conversation.id, "macro.applied", agent=by, detail=detail)
    return done


async def macro_on_send(session: AsyncSession, conversation: Conversation, macro: Macro, *, by: Agent) -> list[str]:
    """The agent has just sent (in this transaction) the reply ``macro`` put into the composer:
    apply what waited for it (the status). Returns the steps done."""
    if not status_waits_for_send(macro):
        return []
    await _status(session, conversation, macro, by)
    write_audit(session, conversation.id, "macro.sent", agent=by,
                detail={"macro_id": macro.id, "name": macro.name, "steps": ["status"]})
    return ["status"]


async def _status(session: AsyncSession, conversation: Conversation, macro: Macro, by: Agent) -> None:
    until = None
    if macro.status == ConversationStatus.snoozed.value:
        until = utcnow() + timedelta(hours=macro.snooze_hours or 24)
    await conversation_status(session, conversation, str(macro.status), by=by, snoozed_until=until, survey=True)

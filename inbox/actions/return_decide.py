"""Approve or reject a return that waits for a person (Slack's Approve / Reject buttons).

Approving a mailed return also issues its label. The decision is made once: a return that is
no longer ``requested`` (decided in Slack, in the inbox or by the bot) is refused, and so is a
return that does not exist. A refusal has written nothing; the caller commits on success.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from inbox.actions.base import write_audit
from inbox.actions.message_note import message_note
from inbox.models import Agent, Conversation
from ordersvc.models import ReturnAuthorization, ReturnMethod, RmaStatus
from ordersvc.returns import transition
from shopbase.refusal import Refused

__all__ = ["ReturnDecision", "return_decide"]


@dataclass(frozen=True)
class ReturnDecision:
    rma_id: int
    rma_number: str
    verb: str  # "approved" | "rejected"
    status: str  # the RMA's status now (approved mail returns: label_issued)


def _agent_name(agent: Agent) -> str:
    return agent.name or f"agent #{agent.id}"


async def return_decide(
    session: AsyncSession,
    *,
    rma_id: int,
    approve: bool,
    agent: Agent,
    conversation_id: int | None = None,
    via: str = "slack",
) -> ReturnDecision:
    """Decide return ``rma_id`` as ``agent``; note it in ``conversation_id`` and audit it.

    Raises :class:`~shopbase.refusal.Refused`: ``return_not_found`` (404), ``return_already_decided``
    (409), or the order store's own refusal of the transition. If the label step is refused
    after the approval, the caller's transaction holds the approval: it must roll back.
    """
    rma = (
        await session.exec(
            select(ReturnAuthorization).where(col(ReturnAuthorization.id) == rma_id)
            .with_for_update().execution_options(populate_existing=True)
        )
    ).first()
    if rma is None:
        raise Refused("return_not_found", "this return no longer exists", status=404, rma_id=rma_id)
    if rma.status != RmaStatus.requested:
        state = str(getattr(rma.status, "value", rma.status)).replace("_", " ")
        raise Refused("return_already_decided", f"return {rma.rma_number} is already {state}",
                      rma_id=rma_id, rma_status=str(getattr(rma.status, "value", rma.status)))
    verb = "approved" if approve else "rejected"
    note = f"{verb} in {via.capitalize()} by {_agent_name(agent)}" if via else f"{verb} by {_agent_name(agent)}"
    # the order store refuses a transition it does not allow with Refused (nothing written)
    rma = await transition(session, rma, RmaStatus.approved if approve else RmaStatus.rejected, note=note)
    if approve and rma.method == ReturnMethod.mail:
        rma = await transition(session, rma, RmaStatus.label_issued)
    if conversation_id is not None:
        conversation = await session.get(Conversation, conversation_id)
        if conversation is not None:
            await message_note(session, conversation, agent, f"Return {rma.rma_number} {note}.")
    write_audit(session, conversation_id, f"return.{verb}", agent=agent,
                detail={"rma_id": rma_id, "via": via})
    return ReturnDecision(rma_id=rma_id, rma_number=rma.rma_number, verb=verb,
                          status=str(getattr(rma.status, "value", rma.status)))

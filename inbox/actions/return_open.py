"""Open a return (RMA) for the conversation's customer: the bot's return flow after the
customer confirmed, or an agent's return form in the sidebar."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from inbox.actions.base import add_system_line, agent_name, order_for_conversation, write_audit
from inbox.models import Agent, Conversation
from ordersvc.models import Order, Resolution, ReturnMethod
from ordersvc.returns import NewRma, ReturnItem, ReturnPolicy, create_rma
from shopbase.refusal import Refused

__all__ = ["return_open"]


async def return_open(
    session: AsyncSession,
    conversation: Conversation,
    order: Order | int,
    items: Sequence[ReturnItem | Mapping[str, Any]],
    resolution: Resolution | str,
    method: ReturnMethod | str,
    *,
    agent: Agent | None = None,
    now: datetime | None = None,
    policy: ReturnPolicy | None = None,
) -> NewRma:
    """Validate against the return policy and record the RMA. Refused as ordersvc refuses
    (the first problem's ``code``, every :class:`ordersvc.returns.RmaProblem` in
    ``details["problems"]``), the message saying that the return was refused."""
    if isinstance(order, int):
        _contact, order = await order_for_conversation(session, conversation, order)
    if not items:
        raise Refused("no_items", "Pick at least one line and a quantity to return.", status=400)
    actor = "agent" if agent is not None else "bot"
    try:
        created = await create_rma(session, order, items, resolution, method, created_by=actor, now=now,
                                   policy=policy)
    except Refused as refusal:
        raise Refused(refusal.code, f"The return was refused: {refusal.message}.", status=refusal.status,
                      fields=refusal.fields, **refusal.details) from None
    rma = created.rma
    write_audit(session, conversation.id, "order.return_created", agent=agent, actor=actor,
                detail={"order_id": order.id, "rma_id": rma.id, "lines": len(created.lines)})
    if agent is not None:
        add_system_line(
            session,
            conversation,
            f"{agent_name(agent)} opened return {rma.rma_number} for order {order.name} "
            f"({Resolution(resolution).value.replace('_', ' ')}, {ReturnMethod(method).value.replace('_', ' ')}; "
            f"status {rma.status.value.replace('_', ' ')}).",
            agent=agent,
        )
    return created

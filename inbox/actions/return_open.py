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
from ordersvc.returns import OVERRIDABLE, NewRma, ReturnItem, ReturnPolicy, create_rma
from shopbase.refusal import Refused
from shopbase.text import clean_text

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
    override_reason: str | None = None,
) -> NewRma:
    """Validate against the return policy and record the RMA. Refused as ordersvc refuses
    (the first problem's ``code``, every :class:`ordersvc.returns.RmaProblem` in
    ``details["problems"]``), the message saying that the return was refused.

    ``override_reason``: an agent with the permission (admins, or ``Agent.can_override_returns``)
    accepts a return the policy refuses (final sale, not returnable, window closed; never a
    cancelled, undelivered or already returned line) and says why; the override is audited
    with the refusals it set aside. Without a refusal to set aside the return is an ordinary one."""
    if isinstance(order, int):
        _contact, order = await order_for_conversation(session, conversation, order)
    if not items:
        raise Refused("no_items", "Pick at least one line and a quantity to return.", status=400)
    actor = "agent" if agent is not None else "bot"
    reason = clean_text(override_reason or "", 500)
    if override_reason is not None:
        if agent is None or not (agent.is_admin or agent.can_override_returns):
            raise Refused("forbidden", "You are not allowed to override the return policy.", status=403)
        if not reason:
            raise Refused("override_reason", "Say why you override the return policy.", status=400)
    waived: list[str] = []
    try:
        created = await create_rma(session, order, items, resolution, method, created_by=actor, now=now,
                                   policy=policy)
    except Refused as refusal:
        problems = list(refusal.details.get("problems") or ())
        overridable = bool(problems) and all(getattr(p, "code", None) in OVERRIDABLE for p in problems)
        if not (reason and overridable):
            raise Refused(refusal.code, f"The return was refused: {refusal.message}.", status=refusal.status,
                          fields=refusal.fields, **refusal.details) from None
        waived = sorted({str(p.code) for p in problems})
        try:
            created = await create_rma(session, order, items, resolution, method, created_by=actor, now=now,
                                       policy=policy, waive=OVERRIDABLE)
        except Refused as again:
            raise Refused(again.code, f"The return was refused: {again.message}.", status=again.status,
                          fields=again.fields, **again.details) from None
    rma = created.rma
    write_audit(session, conversation.id, "order.return_created", agent=agent, actor=actor,
                detail={"order_id": order.id, "rma_id": rma.id, "lines": len(created.lines)})
    if waived:
        write_audit(session, conversation.id, "order.return_override", agent=agent, actor=actor,
                    detail={"order_id": order.id, "rma_id": rma.id, "waived": waived, "reason": reason})
        assert agent is not None
        add_system_line(session, conversation, f"{agent_name(agent)} overrode the return policy "
                        f"({', '.join(w.replace('_', ' ') for w in waived)}): {reason}", agent=agent)
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

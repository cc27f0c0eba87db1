"""Cancel an order for the conversation's customer (the bot after the customer confirmed, or
an agent from the sidebar): ordersvc cancels and refunds, the inbox keeps the audit entry and,
for an agent, an internal line in the transcript."""

from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession

from inbox.actions.base import add_system_line, agent_name, order_for_conversation, write_audit
from inbox.models import Agent, Conversation
from ordersvc.actions import Cancellation, cancel_order
from ordersvc.models import Order
from shopbase.formatting import format_money
from shopbase.refusal import Refused

__all__ = ["CANCEL_REFUSALS", "order_cancel"]

#: what an agent reads when ordersvc refuses (the bot answers with its own templates, by code)
CANCEL_REFUSALS = {
    "already_cancelled": "The order is already cancelled.",
    "already_fulfilled": "The order has shipped, so it cannot be cancelled. Offer a return instead.",
    "partially_fulfilled": "Part of the order has shipped, so it cannot be cancelled.",
}


async def order_cancel(
    session: AsyncSession,
    conversation: Conversation,
    order: Order | int,
    *,
    agent: Agent | None = None,
    reason: str | None = None,
) -> Cancellation:
    """Cancel ``order``. An order id is checked against the conversation's verified customer
    (an agent's request); an Order comes from the bot's own verification. Refused with the
    ordersvc reason as ``code`` (and the fresh order in ``details["order"]``)."""
    if isinstance(order, int):
        _contact, order = await order_for_conversation(session, conversation, order)
    actor = "agent" if agent is not None else "bot"
    try:
        result = await cancel_order(session, order, reason=reason or f"{'agent' if agent else 'customer'} request",
                                    actor=actor)
    except Refused as refusal:
        code = refusal.code
        raise Refused(code, CANCEL_REFUSALS.get(code, f"The order cannot be cancelled ({code})."),
                      status=refusal.status, order=refusal.details.get("order") or order) from None
    write_audit(session, conversation.id, "order.cancelled", agent=agent, actor=actor,
                detail={"order_id": order.id, "refund_id": result.refund.id if result.refund else None})
    if agent is not None:
        # the transcript's system lines are stored English sentences, so the amount is written the English way
        refund = (f" Refund {format_money(result.refund.amount, result.refund.currency, 'en')}."
                  if result.refund is not None else "")
        add_system_line(session, conversation, f"{agent_name(agent)} cancelled order {order.name}.{refund}",
                        agent=agent)
    return result

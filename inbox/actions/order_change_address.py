"""Change the shipping address of an order that has not shipped (the bot's address flow)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from inbox.actions.base import add_system_line, agent_name, order_for_conversation, write_audit
from inbox.models import Agent, Conversation
from ordersvc.actions import change_address
from ordersvc.models import Order
from shopbase.refusal import Refused

__all__ = ["order_change_address"]


async def order_change_address(
    session: AsyncSession,
    conversation: Conversation,
    order: Order | int,
    fields: Mapping[str, Any],
    *,
    agent: Agent | None = None,
) -> Order:
    """Apply the new address. Refused with the ordersvc reason as ``code``
    (``invalid_address`` carries the per-field problems in ``fields``; the fresh order is
    in ``details["order"]``)."""
    if isinstance(order, int):
        _contact, order = await order_for_conversation(session, conversation, order)
    try:
        changed = await change_address(session, order, fields)
    except Refused as refusal:
        code = refusal.code
        raise Refused(code, f"The address cannot be changed ({code.replace('_', ' ')}).",
                      fields=refusal.fields, status=refusal.status,
                      order=refusal.details.get("order") or order) from None
    actor = "agent" if agent is not None else "bot"
    write_audit(session, conversation.id, "order.address_changed", agent=agent, actor=actor,
                detail={"order_id": order.id})
    if agent is not None:
        add_system_line(session, conversation, f"{agent_name(agent)} changed the shipping address of order "
                        f"{order.name}.", agent=agent)
    return changed

"""Send the customer the tracking of one order again (an agent's sidebar button)."""

from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession

from inbox.actions.base import add_system_line, agent_name, order_for_conversation, write_audit
from inbox.actions.message_send import message_send
from inbox.messages import OutboundPayload
from inbox.models import Agent, Author, Conversation, Message
from inbox.replies import render_reply, reply_label
from ordersvc.service import order_bundle
from shopbase.refusal import Refused

__all__ = ["tracking_resend"]


async def tracking_resend(
    session: AsyncSession, conversation: Conversation, agent: Agent, order_id: int
) -> Message:
    """The tracking update goes through the outbox in the customer's language."""
    contact, order = await order_for_conversation(session, conversation, order_id)
    bundle = await order_bundle(session, order_id)
    if not bundle.shipments:
        raise Refused("no_shipments", "The order has no shipments yet, so there is no tracking to send.")
    lang = conversation.language or contact.language
    shipments = [
        {
            "name": sb.shipment.name,
            "status": sb.shipment.status.value,
            "status_text": reply_label("status_" + sb.shipment.status.value, lang),
            "carrier": sb.shipment.carrier,
            "tracking_number": sb.shipment.tracking_number,
            "tracking_url": sb.shipment.tracking_url
            if (sb.shipment.tracking_url or "").lower().startswith(("https://", "http://"))
            else None,
        }
        for sb in bundle.shipments
    ]
    text = render_reply("tracking_update", lang, order=order, shipments=shipments)
    message = message_send(session, conversation, OutboundPayload(text=text), author=Author.agent, agent_id=agent.id)
    await session.flush()
    write_audit(session, conversation.id, "order.tracking_resent", agent=agent,
                detail={"order_id": order.id, "message_id": message.id})
    add_system_line(session, conversation, f"{agent_name(agent)} re-sent the tracking of order {order.name}.",
                    agent=agent)
    return message

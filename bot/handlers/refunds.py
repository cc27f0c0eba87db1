"""refund_status: the verified customer's refunds and store credits."""

from __future__ import annotations

from bot.dialog.turn import Turn
from bot.dialog.verify import require_order
from ordersvc.returns import refunds_and_credits

__all__ = ["refund_status"]


async def refund_status(turn: Turn) -> None:
    customer_id = turn.contact.customer_id
    if customer_id is None:
        order = await require_order(turn, "refund_status")
        if order is None:
            return
        customer_id = order.customer_id
    if customer_id is None:
        turn.say("refunds_none")
        return
    items = await refunds_and_credits(turn.session, customer_id)
    if not items:
        turn.say("refunds_none")
        return
    turn.say("refunds_list", items=items)

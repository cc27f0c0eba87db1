"""return_policy and shipping_info, answered from the merchant's configured policies."""

from __future__ import annotations

from bot.dialog.turn import Turn
from ordersvc.returns import load_policy
from ordersvc.service import shipping_policy

__all__ = ["return_policy", "shipping_info"]


async def return_policy(turn: Turn) -> None:
    policy = await load_policy(turn.session)
    turn.say("return_policy", policy=policy)


async def shipping_info(turn: Turn) -> None:
    policy = await shipping_policy(turn.session)
    turn.say("shipping_info", policy=policy)

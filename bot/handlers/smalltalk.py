"""Greetings, thanks, goodbyes, and what to do when the bot did not understand."""

from __future__ import annotations

from bot.dialog.choices import offer, pick
from bot.dialog.turn import Turn
from inbox.models import Channel
from ordersvc.models import Customer

__all__ = ["greeting", "thanks", "goodbye", "unknown", "continue_menu", "MENU"]

MENU = ("track_order", "start_return", "cancel_order", "human_agent")


def _menu(turn: Turn) -> list[tuple[str, str]]:
    return [(turn.label("intent_" + name), f"intent:{name}") for name in MENU]


async def _name(turn: Turn) -> str | None:
    """What to call the customer: their first name once verified, the name their messenger
    gives, never the web widget's placeholder label ("Web visitor 7F3A")."""
    if turn.contact.customer_id is not None:
        customer = await turn.session.get(Customer, turn.contact.customer_id)
        if customer is not None and customer.first_name:
            return customer.first_name
    if turn.contact.channel == Channel.webchat:
        return None
    return turn.contact.display_name or None


async def greeting(turn: Turn) -> None:
    offer(turn, "greeting", _menu(turn), name=await _name(turn))
    turn.state.flow, turn.state.step = "menu", "choose"


async def thanks(turn: Turn) -> None:
    turn.say("thanks")


async def goodbye(turn: Turn) -> None:
    """The customer is done: say goodbye; with nothing left open the bot resolves the
    conversation and asks for a rating (``bot.handlers.csat``)."""
    from bot.handlers.csat import end_conversation

    turn.state.clear()
    turn.say("goodbye")
    await end_conversation(turn)


async def unknown(turn: Turn) -> None:
    offer(turn, "unknown", _menu(turn))
    turn.state.flow, turn.state.step = "menu", "choose"


async def continue_menu(turn: Turn) -> None:
    """Numbered-text channels answer the menu with "1".."4"; buttons arrive as intent postbacks."""
    from bot.dialog.engine import INTENT_HANDLERS, route_by_intent

    value = pick(turn)
    turn.state.clear()
    if value and value.startswith("intent:") and value[7:] in INTENT_HANDLERS:
        turn.intent, turn.confidence = value[7:], 1.0
        await INTENT_HANDLERS[turn.intent](turn)
        return
    await route_by_intent(turn)

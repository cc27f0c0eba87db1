"""The dialog: given one customer message, decide what the bot says and does.

Reading order: :func:`respond` hands strongly negative messages to a person, handles
"never mind", an open flow (verification, returns, cancellation…), then routes a fresh
message by intent through ``INTENT_HANDLERS`` — one visible table — with the confidence
rules: confident → act; unsure → ask which one; lost twice in a row → a person takes over.
Handlers and flow steps live in ``bot.handlers``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from bot.dialog.choices import is_cancel, offer, pick
from bot.dialog.turn import Turn
from bot.dialog.verify import continue_verification
from bot.handlers import handoff, info, orders, refunds, returns, smalltalk, wismo
from bot.nlu.intents import CLARIFY_BELOW, CONFIDENT
from inbox.models import Priority

__all__ = ["respond", "INTENT_HANDLERS", "FLOW_STEPS", "FLOW_INTENTS", "ACTION_INTENTS"]

Handler = Callable[[Turn], Awaitable[None]]

#: intent → handler; an intent with an action must never run on a low-confidence guess
INTENT_HANDLERS: dict[str, Handler] = {
    "track_order": wismo.track_order,
    "start_return": returns.start_return,
    "refund_status": refunds.refund_status,
    "return_policy": info.return_policy,
    "cancel_order": orders.cancel_order,
    "change_address": orders.change_address,
    "shipping_info": info.shipping_info,
    "human_agent": handoff.human_agent,
    "complaint": handoff.complaint,
    "payment_issue": handoff.payment_issue,
    "invoice": orders.invoice,
    "greeting": smalltalk.greeting,
    "thanks": smalltalk.thanks,
    "goodbye": smalltalk.goodbye,
    "unknown": smalltalk.unknown,
}

#: flow → step handlers for multi-turn conversations (``verify`` is handled here)
FLOW_STEPS: dict[str, Handler] = {
    "returns": returns.continue_return,
    "cancel": orders.continue_cancel,
    "address": orders.continue_change_address,
    "menu": smalltalk.continue_menu,
}

ACTION_INTENTS = frozenset({"start_return", "cancel_order", "change_address", "invoice"})
#: intents whose handler needs no order and may interrupt a flow when the customer is clear
INTERRUPTING = frozenset(INTENT_HANDLERS) - {"unknown", "greeting", "thanks"}


async def respond(turn: Turn) -> None:
    """Decide this turn's replies and effects (collected on ``turn``)."""
    if not turn.text.strip() and turn.postback is None:
        turn.say("empty_message")
        return

    if turn.hostile and turn.postback is None and not turn.state.slots.get("free_text"):
        # Strongly negative (insults, swearing, fury, threats): whatever it asks, a person
        # answers it, first in the queue. Whatever flow was open ends here. (An answer to an
        # open question, such as an address or a return note, is taken as the answer.)
        turn.state.clear()
        await handoff.hand_off(turn, "negative", priority=Priority.high)
        return

    if turn.state.flow and is_cancel(turn.text):
        turn.state.clear()
        turn.say("flow_cancelled")
        return

    if turn.postback and turn.postback.startswith("intent:"):
        intent = turn.postback.split(":", 1)[1]
        if intent in INTENT_HANDLERS:
            turn.state.clear()
            turn.intent, turn.confidence = intent, 1.0
            await INTENT_HANDLERS[intent](turn)
            return

    if turn.state.flow and not _switches_topic(turn):
        await _continue_flow(turn)
        return

    await route_by_intent(turn)


def _switches_topic(turn: Turn) -> bool:
    """A confident, different request in the middle of a flow starts that request instead."""
    if turn.postback is not None or turn.confidence < CONFIDENT or turn.intent not in INTERRUPTING:
        return False
    if turn.state.slots.get("free_text"):  # answering an open question (a note, an address): never a new topic
        return False
    if pick(turn) is not None:  # typed one of the offered choices ("2", "Other reason"): an answer, not a topic
        return False
    current = turn.state.pending_intent or turn.state.flow
    return turn.intent != current and not any(e.type in {"order_number", "email", "postal_code"} for e in turn.entities)


#: flow → the request it serves, recorded on answers given inside it
FLOW_INTENTS: dict[str, str] = {"returns": "start_return", "cancel": "cancel_order", "address": "change_address"}


async def _continue_flow(turn: Turn) -> None:
    flow = turn.state.flow
    classified = turn.intent
    if flow == "verify":
        purpose = turn.state.slots.get("purpose") or turn.state.pending_intent or "track_order"
        order = await continue_verification(turn)
        if order is not None and turn.escalation is None:
            turn.state.clear()
            turn.state.slots["order_id"] = order.id
            turn.intent = purpose
            await INTENT_HANDLERS[purpose](turn)
            return
        _record_flow_intent(turn, classified, purpose)
        return
    step = FLOW_STEPS.get(flow or "")
    if step is None:  # a flow from an older version: start over politely
        turn.state.clear()
        await route_by_intent(turn)
        return
    await step(turn)
    if flow in FLOW_INTENTS:
        _record_flow_intent(turn, classified, FLOW_INTENTS[flow])


def _record_flow_intent(turn: Turn, classified: str, intent: str) -> None:
    """An answer inside a flow ("Refund", "Unopened", an email address) is part of that
    request, whatever the classifier made of it: record the flow's intent on the message
    and the conversation, so the inbox does not label a return "Goodbye". A step that acted
    on another request (a person, a switch to a return) keeps its own."""
    if turn.intent == classified and not (classified == "human_agent" and turn.confidence >= CONFIDENT):
        turn.intent = intent


async def route_by_intent(turn: Turn) -> None:
    intent, confidence = turn.intent, turn.confidence
    if intent == "unknown" or confidence < CLARIFY_BELOW:
        await _lost(turn)
        return
    if confidence < CONFIDENT and intent in ACTION_INTENTS | {"track_order", "human_agent", "complaint", "payment_issue"}:
        turn.state.low_confidence_turns += 1
        if turn.state.low_confidence_turns >= 2:
            turn.say("handoff_unsure")
            turn.escalate("low_confidence")
            return
        offer(turn, "clarify", [(turn.label("intent_" + intent), f"intent:{intent}"),
                                (turn.label("intent_human_agent"), "intent:human_agent")])
        return
    turn.state.low_confidence_turns = 0
    await INTENT_HANDLERS[intent](turn)


async def _lost(turn: Turn) -> None:
    turn.state.low_confidence_turns += 1
    if turn.state.low_confidence_turns >= 2:
        turn.say("handoff_unsure")
        turn.escalate("low_confidence")
        return
    await smalltalk.unknown(turn)

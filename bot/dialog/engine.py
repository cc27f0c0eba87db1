"""The dialog: given one customer message, decide what the bot says and does.

Reading order: :func:`respond` hands strongly negative messages to a person, handles
"never mind", an open flow (verification, returns, cancellation…), then routes a fresh
message by intent through ``INTENT_HANDLERS`` — one visible table — with the confidence
rules: confident → act; unsure → ask which one; lost twice in a row → a person takes over.
Handlers and flow steps live in ``bot.handlers``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from bot.dialog.choices import amount, is_cancel, offer, pick, wants_all, yes_no
from bot.dialog.requests import split_requests
from bot.dialog.turn import Turn
from bot.dialog.verify import continue_verification
from bot.handlers import csat, handoff, info, orders, refunds, returns, smalltalk, updates, wismo
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
    "resume": lambda turn: continue_resume(turn),
}

ACTION_INTENTS = frozenset({"start_return", "cancel_order", "change_address", "invoice"})
#: intents whose handler needs no order and may interrupt a flow when the customer is clear
INTERRUPTING = frozenset(INTENT_HANDLERS) - {"unknown", "greeting", "thanks"}


#: flows that can be put aside for another request and offered again afterwards
RESUMABLE = frozenset({"returns", "cancel", "address"})
#: requests that may come second in one message ("… and can I return it?")
SECOND_REQUESTS = frozenset(INTENT_HANDLERS) - {"unknown", "greeting", "thanks", "goodbye"}


async def respond(turn: Turn) -> None:
    """Decide this turn's replies and effects (collected on ``turn``)."""
    if turn.state.flow == "csat" and await csat.continue_csat(turn):
        return  # an answer to the satisfaction survey (anything else reopened the conversation)

    updates_answer = updates.wanted(turn)
    if updates_answer is not None:
        await updates.set_updates(turn, updates_answer)
        return

    if not _readable(turn.text) and turn.postback is None:
        turn.say("empty_message")
        return

    if turn.hostile and turn.postback is None and not turn.state.slots.get("free_text") and not _plain_answer(turn):
        # Strongly negative (insults, swearing, fury, threats): whatever it asks, a person
        # answers it, first in the queue. Whatever flow was open ends here. (An answer to an
        # open question, such as an address or a return note, is taken as the answer.)
        problem = turn.state.problem
        turn.state.reset()
        turn.state.problem = problem  # what the bot could not do a moment ago, for the agent
        await handoff.hand_off(turn, "negative", priority=Priority.high)
        return

    if (turn.state.flow or turn.state.suspended) and is_cancel(turn.text, turn.lang):
        turn.state.reset()
        turn.say("flow_cancelled")
        return

    if turn.postback and turn.postback.startswith("intent:"):
        intent = turn.postback.split(":", 1)[1]
        if intent in INTENT_HANDLERS:
            turn.intent, turn.confidence = intent, 1.0
            _leave_flow(turn, pressed=True)
            await INTENT_HANDLERS[intent](turn)
            await _after(turn)
            return

    if turn.state.flow and not _switches_topic(turn):
        await _continue_flow(turn)
        await _after(turn)
        return

    if turn.state.flow:
        _leave_flow(turn)
    _split(turn)
    await route_by_intent(turn)
    await _after(turn)


#: a menu answer this short ("cái thứ nhất", "the first one") is an answer, whatever its tone score
_PLAIN_ANSWER_WORDS = 6
#: longer than this, a message to the greeting's menu is a request of its own ("the second one" is not)
_MENU_ANSWER_WORDS = 3


def _plain_answer(turn: Turn) -> bool:
    return bool(turn.state.flow) and len(turn.text.split()) <= _PLAIN_ANSWER_WORDS and answers_flow(turn)


def _readable(text: str) -> bool:
    """Something to read: not empty, not only spaces, control or format characters."""
    return any(ch.isprintable() and not ch.isspace() for ch in text)


def _leave_flow(turn: Turn, *, pressed: bool = False) -> None:
    """Another request while a flow is open: a return, a cancellation or an address change is
    put aside (offered again later), unless the new request starts it afresh (a new return
    replaces the open one); an unanswered menu is dropped; a verification in progress stays
    (the new request may need the same order, and the next answer may still be its proof)
    unless a button started something else."""
    if turn.state.flow in RESUMABLE and FLOW_INTENTS.get(turn.state.flow) != turn.intent:
        turn.state.suspend()
    elif turn.state.flow == "resume":  # the offer to go back was passed over: drop it
        turn.state.reset()
    elif turn.state.flow != "verify" or pressed:
        turn.state.clear()


def _switches_topic(turn: Turn) -> bool:
    """A confident, different request in the middle of a flow starts that request instead."""
    if turn.postback is None and turn.state.flow == "menu" and len(split_requests(turn.text, turn.lang)) > 1:
        return True  # "where is my order 1001 and can I return it?" to the greeting's menu: both requests
    if turn.postback is not None or turn.confidence < CONFIDENT or turn.intent not in INTERRUPTING:
        return False
    if turn.state.slots.get("free_text"):  # answering an open question (a note, an address): never a new topic
        return False
    if turn.state.flow == "menu" and len(turn.text.split()) > _MENU_ANSWER_WORDS:
        # the menu only lists requests: a whole sentence ("where is my order 1001 and can I
        # return it?") is read as the request(s) it makes, not as a pick of one button
        return True
    if answers_flow(turn):  # "2", "Other reason", "store credit", "yes please": an answer, not a topic
        return False
    current = turn.state.pending_intent or turn.state.flow
    return turn.intent != current and not any(e.type in {"order_number", "email", "postal_code"} for e in turn.entities)


def answers_flow(turn: Turn) -> bool:
    """The message answers the open flow: one of the offered choices, a yes/no to a
    confirmation, or words of the flow's own vocabulary ("store credit" while the return asks
    for the condition: noted and asked again, never a question about store credit)."""
    if pick(turn) is not None:
        return True
    if turn.state.step in {"quantity", "items"} and wants_all(turn.text, turn.lang):
        return True
    if turn.state.step == "quantity" and amount(turn.text, turn.lang) is not None:
        return True
    values = {value for _, value in turn.state.slots.get("choices") or []}
    if {"yes", "no"} & values and yes_no(turn.text, turn.lang) is not None:
        return True
    if turn.state.flow == "resume" and yes_no(turn.text, turn.lang) is not None:
        return True
    if turn.state.flow == "returns":
        return returns.flow_answer(turn) is not None
    return False


def _split(turn: Turn) -> None:
    """Two requests in one message ("where is my order 1001 and can I return it?"): answer the
    first now, queue the others (each runs once the one before it has finished)."""
    if turn.postback is not None or turn.state.queued:
        return
    requests = split_requests(turn.text, turn.lang)
    if len(requests) < 2:
        return
    first, *rest = requests
    if first.confidence >= CONFIDENT and (first.intent != turn.intent or first.confidence > turn.confidence):
        turn.intent, turn.confidence, turn.ranking = first.intent, first.confidence, first.ranking
    named_order = any(e.type in {"order_number", "tracking_number"} for e in turn.entities)
    for request in rest:
        if request.intent == turn.intent or request.intent not in SECOND_REQUESTS:
            continue
        turn.state.queued.append({"intent": request.intent, "confidence": request.confidence,
                                  "ranking": [list(r) for r in request.ranking], "order": named_order})


async def _after(turn: Turn) -> None:
    """Once a request is done (no flow open, nobody took over): the next queued request of the
    same message, then the offer to go back to a flow the customer put aside."""
    for _ in range(3):  # at most a few requests per message
        if turn.escalation is not None or turn.state.flow is not None or not turn.state.queued:
            break
        request = turn.state.queued.pop(0)
        turn.intent, turn.confidence = str(request["intent"]), float(request["confidence"])
        turn.ranking = tuple((str(i), float(c)) for i, c in request.get("ranking") or [])
        turn.state.low_confidence_turns = 0
        if request.get("order") or turn.state.slots.get("order_id"):
            _about_the_order(turn)
        await route_by_intent(turn)
    if turn.escalation is None and turn.state.flow is None and turn.state.suspended and not turn.state.queued:
        _offer_resume(turn)


def _offer_resume(turn: Turn) -> None:
    saved = turn.state.suspended or {}
    kind = str(saved.get("flow") or "")
    suspended, order_id = turn.state.suspended, turn.state.slots.get("order_id")
    turn.state.start("resume", "confirm")
    turn.state.suspended = suspended
    if order_id:
        turn.state.slots["order_id"] = order_id
    offer(turn, "resume_offer", [(turn.label("resume_yes_" + kind), "yes"), (turn.label("resume_no"), "no")], flow=kind)


async def continue_resume(turn: Turn) -> None:
    """"Shall we go back to your return?" yes → the question it was at; no → it is dropped;
    anything else is a new message (and the offer is not repeated)."""
    answer = pick(turn)
    order_id = turn.state.slots.get("order_id")
    if answer == "yes" and turn.state.restore():
        await _reask(turn)
        return
    turn.state.reset()
    if order_id:
        turn.state.slots["order_id"] = order_id
    if answer == "no":
        turn.say("resume_dropped")
        return
    await route_by_intent(turn)


async def _reask(turn: Turn) -> None:
    flow = turn.state.flow
    if flow == "returns":
        await returns.reask(turn)
    elif flow == "cancel":
        await orders.reask_cancel(turn)
    elif flow == "address":
        await orders.reask_address(turn)


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


#: a question about returns, asked about a named order, is answered by checking that order
_ABOUT_AN_ORDER = {"return_policy": "start_return", "start_return": "start_return"}
#: intents never offered as a clarifying choice
_NOT_CANDIDATES = frozenset({"unknown", "greeting", "thanks", "goodbye"})
_MAX_CANDIDATES = 3
_CANDIDATE_FLOOR = 0.1


def _about_the_order(turn: Turn) -> None:
    """"… and can I return it?" after naming order 1001 asks about that order: the answer is
    its return check (which explains what can and cannot go back), not the general policy."""
    wanted = _ABOUT_AN_ORDER.get(turn.intent)
    if wanted is None:
        return
    for name, score in turn.ranking[:3]:
        if name == wanted and score >= _CANDIDATE_FLOOR:
            turn.intent, turn.confidence = wanted, max(score, CONFIDENT)
            return


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
        _clarify(turn)
        return
    turn.state.low_confidence_turns = 0
    await INTENT_HANDLERS[intent](turn)


def _clarify(turn: Turn) -> None:
    """"Did you mean…": the top candidates by name, as buttons, and a person."""
    candidates = [turn.intent]
    for name, score in turn.ranking:
        if len(candidates) >= _MAX_CANDIDATES or score < _CANDIDATE_FLOOR:
            break
        if name not in candidates and name in INTENT_HANDLERS and name not in _NOT_CANDIDATES:
            candidates.append(name)
    if "human_agent" not in candidates:
        candidates.append("human_agent")
    choices = [(turn.label("intent_" + name), f"intent:{name}") for name in candidates]
    offer(turn, "clarify", choices, options=[label for label, _ in choices])
    turn.state.flow, turn.state.step = "menu", "choose"


async def _lost(turn: Turn) -> None:
    turn.state.low_confidence_turns += 1
    if turn.state.low_confidence_turns >= 2:
        turn.say("handoff_unsure")
        turn.escalate("low_confidence")
        return
    await smalltalk.unknown(turn)

"""The satisfaction survey after a conversation is resolved: a rating, then an optional comment.

The question is asked by ``inbox.actions.csat_request`` (a person resolved the conversation)
or by :func:`end_conversation` (the customer said goodbye to the bot). While the survey waits
(flow ``csat``), a reply stays in the resolved conversation (``message_record``);
:func:`continue_csat` takes "5", "★★★★", "great", "отлично", a button press; and the comment
after it. Anything that is not an answer (a new request, an order number, a hostile message)
reopens the conversation and is handled as a normal message.
"""

from __future__ import annotations

from bot.dialog.choices import offer, pick, stars, yes_no
from bot.dialog.turn import Turn
from bot.nlu.intents import CONFIDENT
from inbox.actions.conversation_status import conversation_status
from inbox.actions.csat_record import csat_comment, csat_rate
from inbox.actions.csat_request import csat_choices, csat_request
from inbox.models import ConversationStatus, Owner
from shopbase.refusal import Refused

__all__ = ["continue_csat", "end_conversation"]

#: confident requests that are never an answer to the survey
REQUESTS = frozenset({"track_order", "start_return", "refund_status", "cancel_order", "change_address",
                      "human_agent", "invoice", "payment_issue", "return_policy", "shipping_info"})
SKIP = "csat:skip"


def _new_request(turn: Turn) -> bool:
    if turn.postback is not None:
        return not turn.postback.startswith("csat:")
    if turn.hostile:
        return True
    if any(e.type in {"order_number", "tracking_number", "email"} for e in turn.entities):
        return True
    return turn.intent in REQUESTS and turn.confidence >= CONFIDENT


def _rating(turn: Turn) -> int | None:
    if turn.postback is not None:
        value = turn.postback
    else:
        found = stars(turn.text)
        if found is not None:
            return found
        value = pick(turn) or ""
    if value.startswith("csat:") and value[5:].isdigit() and 1 <= int(value[5:]) <= 5:
        return int(value[5:])
    return None


async def _reopen(turn: Turn) -> None:
    """Not an answer: the survey is over and the message is a new request."""
    turn.state.clear()
    if turn.conversation.status == ConversationStatus.resolved:
        try:
            await conversation_status(turn.session, turn.conversation, ConversationStatus.open, by=None,
                                      actor="customer")
        except Refused:  # another conversation of theirs is active: the message stays here
            pass


async def continue_csat(turn: Turn) -> bool:
    """Handle a reply while the survey waits; True when it was an answer (nothing else to do)."""
    if turn.state.step == "rating":
        rating = None if _new_request(turn) else _rating(turn)
        if rating is None:
            await _reopen(turn)
            return False
        await csat_rate(turn.session, turn.conversation, rating, turn.now)
        turn.intent, turn.confidence = "unknown", 0.0  # keeps the conversation's own intent
        turn.state.start("csat", "comment", free_text=True)
        offer(turn, "csat_ask_comment", [(turn.label("csat_skip"), SKIP)])
        return True
    if turn.state.step == "comment":
        if turn.postback == SKIP or (turn.postback is None and (pick(turn, positions=False) == SKIP
                                                                or yes_no(turn.text, turn.lang) == "no")):
            turn.intent, turn.confidence = "unknown", 0.0
            turn.state.clear()
            turn.say("csat_thanks")
            return True
        if _new_request(turn) or not turn.text.strip():
            await _reopen(turn)
            return False
        await csat_comment(turn.session, turn.conversation, turn.text, turn.now)
        turn.intent, turn.confidence = "unknown", 0.0
        turn.state.clear()
        turn.say("csat_thanks")
        return True
    await _reopen(turn)
    return False


async def end_conversation(turn: Turn) -> None:
    """The customer said goodbye and nothing is open: the bot resolves the conversation and
    asks for a rating (when one is due)."""
    conversation = turn.conversation
    if (conversation.status == ConversationStatus.resolved or conversation.owner != Owner.bot
            or turn.escalation is not None or turn.state.flow or turn.state.suspended or turn.state.queued):
        return
    await conversation_status(turn.session, conversation, ConversationStatus.resolved, by=None, actor="bot")
    question = await csat_request(turn.session, conversation, resolved_by="bot", lang=turn.lang, now=turn.now)
    if question is None:
        return
    turn.replies.append(question)
    turn.said.append("csat_ask")
    turn.state.start("csat", "rating", choices=[list(c) for c in csat_choices(turn.lang)])

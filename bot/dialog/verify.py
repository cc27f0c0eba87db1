"""Identity before disclosure: which order may this customer see?

An order is shown only to a verified customer: a contact already linked to the order's
customer, or someone who gave the order number together with the order's email or shipping
postal code. A wrong pair and a missing order get the same answer. At most
``MAX_FAILURES`` failed tries per conversation and per order in an hour; then a person takes
over.
"""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from sqlmodel import select

from bot.dialog.choices import offer, pick
from bot.dialog.turn import Turn
from inbox.models import Priority, VerificationAttempt
from inbox.actions.contact_link import contact_link
from inbox.actions.verification_record import verification_record
from ordersvc.models import Order
from ordersvc.service import find_order, orders_for_customer, verify_customer

__all__ = ["require_order", "continue_verification", "MAX_FAILURES", "normalize_ref"]

MAX_FAILURES = 5
WINDOW = timedelta(hours=1)


def normalize_ref(ref: str) -> str:
    return "".join(ch for ch in ref.upper() if ch.isalnum() or ch == "-").lstrip("#")[:64]


def _entity(turn: Turn, kind: str) -> str | None:
    for entity in turn.entities:
        if entity.type == kind:
            return str(entity.value)
    return None


def _proof_from_text(turn: Turn) -> str | None:
    email = _entity(turn, "email")
    if email:
        return email
    postal = _entity(turn, "postal_code")
    if postal:
        return postal
    text = turn.text.strip()
    # a bare answer to "what is the postal code?" such as "10115" or "SW1A 1AA"
    if 2 <= len(text) <= 12 and any(ch.isdigit() for ch in text) and all(ch.isalnum() or ch in " -" for ch in text):
        return text
    return None


async def _failures(turn: Turn, ref: str) -> tuple[int, int]:
    since = turn.now - WINDOW
    base = select(sa.func.count()).select_from(VerificationAttempt).where(
        VerificationAttempt.success.is_(False), VerificationAttempt.created_at >= since  # type: ignore[attr-defined]
    )
    per_conversation = (await turn.session.exec(base.where(VerificationAttempt.conversation_id == turn.conversation.id))).one()
    per_order = (await turn.session.exec(base.where(VerificationAttempt.order_ref == ref))).one()
    return int(per_conversation), int(per_order)


async def _attempt(turn: Turn, ref: str, proof: str) -> Order | None:
    """Try one (order, proof) pair; record the attempt; lock out after too many failures."""
    norm = normalize_ref(ref)
    per_conversation, per_order = await _failures(turn, norm)
    if per_conversation >= MAX_FAILURES or per_order >= MAX_FAILURES:
        turn.say("verify_locked")
        turn.escalate("verification_lockout", priority=Priority.high)
        return None
    order = await verify_customer(turn.session, ref, proof)
    verification_record(turn.session, turn.conversation, norm, success=order is not None, now=turn.now)
    if order is None:
        if per_conversation + 1 >= MAX_FAILURES or per_order + 1 >= MAX_FAILURES:
            turn.say("verify_locked")
            turn.escalate("verification_lockout", priority=Priority.high)
        return None
    if order.customer_id is not None and turn.contact.customer_id is None:
        await contact_link(turn.session, turn.contact, order.customer_id)
    if order.id not in turn.state.verified_order_ids:
        turn.state.verified_order_ids.append(order.id)  # type: ignore[arg-type]
    return order


async def _owned(turn: Turn, order: Order | None) -> bool:
    if order is None:
        return False
    if order.id in turn.state.verified_order_ids:
        return True
    return turn.contact.customer_id is not None and order.customer_id == turn.contact.customer_id


async def _names_another_order(turn: Turn, ref: str | None, remembered: Order | None) -> bool:
    """A fresh request that names another existing order ("return order 1008" after talking
    about #1007) is about that order, not the one the conversation remembers. Inside a flow,
    or once this turn has settled its order (just verified), the remembered order stands."""
    if not ref or remembered is None or turn.state.flow is not None or turn.order_ref is not None:
        return False
    named = await find_order(turn.session, ref)
    return named is not None and named.id != remembered.id


async def require_order(turn: Turn, purpose: str) -> Order | None:
    """The order this turn is about, if the customer may see it; otherwise ask for what is missing.

    When it returns None it has already said something and, unless it escalated, left the
    conversation in the ``verify`` flow with ``purpose`` to resume once verified.
    """
    slots = turn.state.slots if turn.state.flow == "verify" else {}
    if turn.state.step == "ask_proof" and slots.get("order_ref"):
        ref = slots["order_ref"]  # a bare postal code like 92683 also looks like an order number
    else:
        ref = _entity(turn, "order_number") or slots.get("order_ref")
    if turn.state.flow != "verify" and turn.state.slots.get("order_id"):
        order = await turn.session.get(Order, turn.state.slots["order_id"])
        if await _owned(turn, order) and not await _names_another_order(turn, ref, order):
            return order
    if ref:
        turn.order_ref = ref
        order = await find_order(turn.session, ref)
        if await _owned(turn, order):
            return order
        proof = _proof_from_text(turn) if turn.state.step == "ask_proof" or _entity(turn, "email") or _entity(turn, "postal_code") else None
        if proof:
            verified = await _attempt(turn, ref, proof)
            if verified is not None:
                turn.state.clear()
                return verified
            if turn.escalation is None:
                turn.say("verify_failed")
                turn.state.start("verify", "ask_order", purpose=purpose)
                turn.state.pending_intent = purpose
            return None
        turn.state.start("verify", "ask_proof", purpose=purpose, order_ref=ref)
        turn.state.pending_intent = purpose
        turn.say("verify_ask_proof", order_ref=ref)
        return None
    if turn.contact.customer_id is not None:
        orders = await orders_for_customer(turn.session, turn.contact.customer_id, limit=5)
        if len(orders) == 1:
            return orders[0]
        if orders:
            turn.state.start("verify", "choose_order", purpose=purpose)
            turn.state.pending_intent = purpose
            offer(turn, "choose_order", [(o.name, f"order:{o.id}") for o in orders])
            return None
    turn.state.start("verify", "ask_order", purpose=purpose)
    turn.state.pending_intent = purpose
    turn.say("verify_ask_order")
    return None


async def step_choose_order(turn: Turn) -> Order | None:
    value = pick(turn)
    if value and value.startswith("order:"):
        order = await turn.session.get(Order, int(value.split(":", 1)[1]))
        if await _owned(turn, order):
            return order
    if _entity(turn, "order_number"):
        return await require_order(turn, turn.state.slots.get("purpose", "track_order"))
    offer(turn, "choose_order_again", [(label, value) for label, value in turn.state.slots.get("choices", [])])
    return None


async def continue_verification(turn: Turn) -> Order | None:
    """The customer answered a verification question; the verified order, or None (asked again)."""
    if turn.state.step == "choose_order":
        return await step_choose_order(turn)
    return await require_order(turn, turn.state.slots.get("purpose") or "track_order")

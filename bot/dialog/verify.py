"""Identity before disclosure: which order may this customer see?

An order is shown only to a verified customer: a contact already linked to the order's
customer, or someone who gave the order number together with the order's email or shipping
postal code. A wrong pair and a missing order get the same answer (and the same question
first: a number that matches no order is asked for its proof like any other). At most
``MAX_FAILURES`` failed tries per conversation and per order in an hour; then a person takes
over.

While the bot waits for the proof, a bare number is the proof (a postal code such as 92683
looks like an order number); only a written-out order number ("#1001", "order 1001", an
Amazon number) or a correction ("sorry, it's 1001", "я имел в виду 1001") replaces the
order being verified. A wrong proof keeps that order and asks again.

A long number may be an order number or a parcel's tracking number: both are looked up.
"""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from sqlmodel import select

from bot.dialog.choices import has_correction, offer, pick
from bot.dialog.turn import Turn
from bot.nlu.entities import labelled_order_spans
from inbox.actions.contact_link import contact_link
from inbox.actions.verification_record import verification_record
from inbox.models import Priority, VerificationAttempt
from ordersvc.models import Order, Shipment
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


def _named_ref(turn: Turn) -> str | None:
    """The order the message names: an order number, else a tracking number (looked up as both)."""
    return _entity(turn, "order_number") or _entity(turn, "tracking_number")


def _corrected_ref(turn: Turn) -> str | None:
    """A new order number while the proof is awaited: written out as one ("#1001", "order 1001",
    "113-1234567-1234567") or announced as a correction ("sorry, it's 1001"). A bare number
    alone is never one: it is the postal code asked for."""
    labelled = labelled_order_spans(turn.text)
    for entity in turn.entities:
        if entity.type == "order_number" and (entity.start, entity.end) in labelled:
            return str(entity.value)
    if has_correction(turn.text, turn.lang):
        return _named_ref(turn)
    return None


async def _lookup(turn: Turn, ref: str) -> Order | None:
    """The order called ``ref``, or the order of the parcel whose tracking number is ``ref``."""
    order = await find_order(turn.session, ref)
    if order is not None:
        return order
    number = normalize_ref(ref).replace("-", "")
    if len(number) < 10 or len(number) > 40:
        return None
    shipment = (await turn.session.exec(select(Shipment).where(Shipment.tracking_number == number).limit(1))).first()
    return await turn.session.get(Order, shipment.order_id) if shipment is not None else None


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
    found = await _lookup(turn, ref)
    # verify against the order the reference resolves to (a tracking number names its order);
    # an unknown reference is still checked, at the same cost, and fails the same way
    order = await verify_customer(turn.session, found.name if found is not None else ref, proof)
    if order is not None and found is not None and order.id != found.id:
        order = None
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
    # decided without looking the number up: whether it exists must not change the answer
    return normalize_ref(ref) not in {normalize_ref(remembered.name), normalize_ref(remembered.external_id or "")}


async def require_order(turn: Turn, purpose: str) -> Order | None:
    """The order this turn is about, if the customer may see it; otherwise ask for what is missing.

    When it returns None it has already said something and, unless it escalated, left the
    conversation in the ``verify`` flow with ``purpose`` to resume once verified.
    """
    slots = turn.state.slots if turn.state.flow == "verify" else {}
    waiting_for_proof = turn.state.flow == "verify" and turn.state.step == "ask_proof" and bool(slots.get("order_ref"))
    if waiting_for_proof:
        ref = slots["order_ref"]  # a bare postal code like 92683 also looks like an order number
        corrected = _corrected_ref(turn)
        if corrected and normalize_ref(corrected) != normalize_ref(ref):
            ref = corrected  # "sorry, it's 1001": verify that one instead
            slots["order_ref"] = ref
            if not (_entity(turn, "email") or _entity(turn, "postal_code")):
                turn.order_ref = ref
                turn.say("verify_ask_proof", order_ref=ref)
                return None
    else:
        ref = _named_ref(turn) or slots.get("order_ref")
    if turn.state.flow != "verify" and turn.state.slots.get("order_id"):
        order = await turn.session.get(Order, turn.state.slots["order_id"])
        if await _owned(turn, order) and not await _names_another_order(turn, ref, order):
            return order
    if ref:
        turn.order_ref = ref
        order = await _lookup(turn, ref)
        if await _owned(turn, order):
            return order
        proof = _proof_from_text(turn) if waiting_for_proof or _entity(turn, "email") or _entity(turn, "postal_code") else None
        if proof:
            verified = await _attempt(turn, ref, proof)
            if verified is not None:
                turn.state.clear()
                return verified
            if turn.escalation is None:
                # the same words whether the order exists or not; the order stays the one asked about
                turn.say("verify_failed", order_ref=ref)
                turn.state.start("verify", "ask_proof", purpose=purpose, order_ref=ref)
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
    if _named_ref(turn):
        return await require_order(turn, turn.state.slots.get("purpose", "track_order"))
    offer(turn, "choose_order_again", [(label, value) for label, value in turn.state.slots.get("choices", [])])
    return None


async def continue_verification(turn: Turn) -> Order | None:
    """The customer answered a verification question; the verified order, or None (asked again)."""
    if turn.state.step == "choose_order":
        return await step_choose_order(turn)
    return await require_order(turn, turn.state.slots.get("purpose") or "track_order")

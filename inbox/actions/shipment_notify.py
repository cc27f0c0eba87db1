"""Tell a customer about their parcel before they ask (one ``ShipmentUpdate`` row of the
order store); the rules are in :mod:`inbox.proactive`."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from inbox.actions.base import write_audit
from inbox.actions.message_send import message_send
from inbox.messages import OutboundPayload, QuickReply
from inbox.models import Author, Channel, Contact, Conversation
from inbox.proactive import PAID_BROADCAST, customer_timezone, quiet_until, update_settings
from inbox.queries.conversations import active_conversation
from inbox.replies import render_reply, reply_label
from ordersvc.models import Customer, Order, Shipment, ShipmentUpdate
from ordersvc.shipment_updates import LATE, finish_update, postpone_update
from shopbase.formatting import language_from_header

__all__ = ["shipment_notify", "reachable_contact", "BUTTONS"]

log = logging.getLogger(__name__)

#: the one useful button of each kind of update: (label key, the bot's postback)
BUTTONS: dict[str, tuple[str, str]] = {
    "out_for_delivery": ("update_button_track", "intent:track_order"),
    "delivered": ("update_button_return", "intent:start_return"),
    "failed_attempt": ("update_button_address", "intent:change_address"),
    "exception": ("update_button_address", "intent:change_address"),
    LATE: ("update_button_track", "intent:track_order"),
}


async def reachable_contact(session: AsyncSession, customer_id: int) -> tuple[Contact | None, bool]:
    """(the customer's contact to write to, whether they said "stop" on every reachable one).

    Only contacts that proved to be this customer, on Telegram or on the widget with the
    visitor's permission, and not marked undeliverable; the most recently seen wins."""
    contacts = (
        await session.exec(
            select(Contact)
            .where(
                col(Contact.customer_id) == customer_id,
                col(Contact.verified_at).is_not(None),
                col(Contact.undeliverable_at).is_(None),
                col(Contact.channel).in_([Channel.telegram, Channel.webchat]),
            )
            .order_by(col(Contact.last_seen_at).desc(), col(Contact.id).desc())
        )
    ).all()
    reachable = [c for c in contacts if c.channel == Channel.telegram or c.updates_allowed_at is not None]
    willing = [c for c in reachable if c.updates_stopped_at is None]
    return (willing[0] if willing else None), bool(reachable) and not willing


async def _conversation_of(session: AsyncSession, contact: Contact) -> Conversation | None:
    active = await active_conversation(session, contact.id)
    if active is not None:
        return active
    stmt = select(Conversation).where(Conversation.contact_id == contact.id).order_by(col(Conversation.id).desc())
    return (await session.exec(stmt.limit(1))).first()


async def _language(session: AsyncSession, conversation: Conversation, contact: Contact, order: Order,
                    default: str) -> str:
    known = conversation.language or contact.language
    if known:
        return language_from_header(known.replace("_", "-"), default)
    customer = await session.get(Customer, order.customer_id) if order.customer_id else None
    locale = customer.locale if customer is not None else None
    return language_from_header(locale.replace("_", "-"), default) if locale else default


async def shipment_notify(
    session: AsyncSession,
    update: ShipmentUpdate,
    now: datetime,
    *,
    shop_timezone: str = "UTC",
    default_language: str = "en",
) -> str:
    """Send (or postpone, or close) one update in the caller's transaction; returns the
    outcome: ``sent``, ``postponed`` (quiet hours: the row waits until 08:00), or why nothing
    was sent (``disabled``, ``superseded``, ``no_channel``, ``opted_out``, ``gone``)."""

    def close(outcome: str) -> str:
        finish_update(session, update, outcome, now)
        return outcome

    kind = update.status
    shipment = await session.get(Shipment, update.shipment_id)
    order = await session.get(Order, update.order_id)
    if shipment is None or order is None:
        return close("gone")
    switches = await update_settings(session)
    if not switches.get(kind, True):
        return close("disabled")
    current = shipment.status.value
    if kind == LATE and current in {"delivered", "expired"}:
        return close("superseded")
    if kind != LATE and current != kind:
        return close("superseded")  # it moved on while the update waited (e.g. delivered overnight)
    if order.customer_id is None:
        log.info("shipment update %s: order %s has no customer; nothing sent", update.id, order.id)
        return close("no_channel")
    contact, stopped = await reachable_contact(session, order.customer_id)
    if contact is None:
        if stopped:
            return close("opted_out")
        log.info("shipment update %s: customer of order %s has no reachable channel; nothing sent",
                 update.id, order.id)
        return close("no_channel")
    tz = customer_timezone(order.shipping_address, shop_timezone, now)
    until = quiet_until(now, tz)
    if until is not None:
        postpone_update(session, update, until)
        return "postponed"
    conversation = await _conversation_of(session, contact)
    if conversation is None:
        log.info("shipment update %s: contact %s has no conversation; nothing sent", update.id, contact.id)
        return close("no_channel")

    lang = await _language(session, conversation, contact, order, default_language)
    url = shipment.tracking_url if (shipment.tracking_url or "").lower().startswith(("https://", "http://")) else None
    text = render_reply(f"update_{kind}", lang, order=order, shipment=shipment, tracking_url=url, tz=str(tz))
    label_key, value = BUTTONS[kind]
    payload = OutboundPayload(text=text, quick_replies=(QuickReply(label=reply_label(label_key, lang), value=value),),
                              paid_broadcast=switches.get(PAID_BROADCAST, False) and contact.channel == Channel.telegram)
    message = message_send(session, conversation, payload, author=Author.bot)
    # "stop" right after an update means the updates, even while a flow is open (bot.handlers.updates);
    # the dialog drops this mark with its next turn
    conversation.bot_state = {**(conversation.bot_state or {}), "after_update": True}
    await session.flush()
    write_audit(session, conversation.id, "shipment.update_sent", actor="system", now=now,
                detail={"shipment_id": shipment.id, "order_id": order.id, "status": kind, "message_id": message.id,
                        "language": lang})
    return close("sent")

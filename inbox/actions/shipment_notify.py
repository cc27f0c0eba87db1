"""Tell a customer about their parcel before they ask (one ``ShipmentUpdate`` row of the
order store); the rules are in :mod:`inbox.proactive`."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from inbox.actions.base import write_audit
from inbox.actions.message_send import message_send
from inbox.messages import OutboundPayload, QuickReply
from inbox.models import Author, Channel, Contact, Conversation, ConversationStatus, Message
from inbox.proactive import PAID_BROADCAST, customer_timezone, quiet_until, update_settings
from inbox.replies import render_reply, reply_label
from ordersvc.models import Customer, Order, Shipment, ShipmentUpdate
from ordersvc.shipment_updates import LATE, finish_update, postpone_update
from shopbase.formatting import language_from_header

__all__ = ["shipment_notify", "shipment_notify_many", "reachable_contact", "BUTTONS"]

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
    [outcome] = await shipment_notify_many(session, [update], now, shop_timezone=shop_timezone,
                                           default_language=default_language)
    return outcome


async def _reachable_contacts(session: AsyncSession, customer_ids: set[int]) -> dict[int, tuple[Contact | None, bool]]:
    """:func:`reachable_contact` for many customers in one statement (same order, same rules)."""
    if not customer_ids:
        return {}
    contacts = (
        await session.exec(
            select(Contact)
            .where(
                col(Contact.customer_id).in_(customer_ids),
                col(Contact.verified_at).is_not(None),
                col(Contact.undeliverable_at).is_(None),
                col(Contact.channel).in_([Channel.telegram, Channel.webchat]),
            )
            .order_by(col(Contact.customer_id), col(Contact.last_seen_at).desc(), col(Contact.id).desc())
        )
    ).all()
    by_customer: dict[int, list[Contact]] = {}
    for contact in contacts:
        if contact.customer_id is not None:
            by_customer.setdefault(contact.customer_id, []).append(contact)
    found: dict[int, tuple[Contact | None, bool]] = {}
    for customer_id in customer_ids:
        reachable = [c for c in by_customer.get(customer_id, ())
                     if c.channel == Channel.telegram or c.updates_allowed_at is not None]
        willing = [c for c in reachable if c.updates_stopped_at is None]
        found[customer_id] = (willing[0] if willing else None), bool(reachable) and not willing
    return found


async def _conversations_of(session: AsyncSession, contact_ids: set[int]) -> dict[int, Conversation]:
    """:func:`_conversation_of` for many contacts: the active conversation, else the latest one."""
    if not contact_ids:
        return {}
    found: dict[int, Conversation] = {}
    active = (await session.exec(select(Conversation).where(
        col(Conversation.contact_id).in_(contact_ids), col(Conversation.status) != ConversationStatus.resolved))).all()
    for conversation in active:
        found.setdefault(conversation.contact_id, conversation)
    rest = contact_ids - set(found)
    if rest:
        latest = sa.select(sa.func.max(col(Conversation.id))).where(
            col(Conversation.contact_id).in_(rest)).group_by(col(Conversation.contact_id))
        for conversation in (await session.exec(select(Conversation).where(col(Conversation.id).in_(latest)))).all():
            found[conversation.contact_id] = conversation
    return found


async def shipment_notify_many(
    session: AsyncSession,
    updates: Sequence[ShipmentUpdate],
    now: datetime,
    *,
    shop_timezone: str = "UTC",
    default_language: str = "en",
) -> list[str]:
    """:func:`shipment_notify` for a chunk of updates in the caller's transaction, one outcome
    each (in order). The same rules, but the rows it needs are read with a few statements for
    the whole chunk and the messages are written with one flush (a burst of 10,000 shipments
    changing status costs a few statements per chunk, not a dozen per shipment)."""
    if not updates:
        return []
    shipments = {s.id: s for s in (await session.exec(
        select(Shipment).where(col(Shipment.id).in_({u.shipment_id for u in updates})))).all()}
    orders = {o.id: o for o in (await session.exec(
        select(Order).where(col(Order.id).in_({u.order_id for u in updates})))).all()}
    switches = await update_settings(session)
    contacts = await _reachable_contacts(session, {o.customer_id for o in orders.values() if o.customer_id is not None})
    conversations = await _conversations_of(session, {c.id for c, _ in contacts.values()
                                                      if c is not None and c.id is not None})
    outcomes: list[str] = []
    written: list[tuple[ShipmentUpdate, Conversation, Message, Shipment, Order, str, str]] = []

    def close(update: ShipmentUpdate, outcome: str) -> str:
        finish_update(session, update, outcome, now)
        return outcome

    for update in updates:
        kind = update.status
        shipment = shipments.get(update.shipment_id)
        order = orders.get(update.order_id)
        if shipment is None or order is None:
            outcomes.append(close(update, "gone"))
            continue
        if not switches.get(kind, True):
            outcomes.append(close(update, "disabled"))
            continue
        current = shipment.status.value
        if (kind == LATE and current in {"delivered", "expired"}) or (kind != LATE and current != kind):
            # it moved on while the update waited (e.g. delivered overnight)
            outcomes.append(close(update, "superseded"))
            continue
        if order.customer_id is None:
            log.info("shipment update %s: order %s has no customer; nothing sent", update.id, order.id)
            outcomes.append(close(update, "no_channel"))
            continue
        contact, stopped = contacts.get(order.customer_id, (None, False))
        if contact is None:
            if stopped:
                outcomes.append(close(update, "opted_out"))
                continue
            log.info("shipment update %s: customer of order %s has no reachable channel; nothing sent",
                     update.id, order.id)
            outcomes.append(close(update, "no_channel"))
            continue
        tz = customer_timezone(order.shipping_address, shop_timezone, now)
        until = quiet_until(now, tz)
        if until is not None:
            postpone_update(session, update, until)
            outcomes.append("postponed")
            continue
        conversation = conversations.get(contact.id) if contact.id is not None else None
        if conversation is None:
            log.info("shipment update %s: contact %s has no conversation; nothing sent", update.id, contact.id)
            outcomes.append(close(update, "no_channel"))
            continue

        lang = await _language(session, conversation, contact, order, default_language)
        url = shipment.tracking_url if (shipment.tracking_url or "").lower().startswith(("https://", "http://")) \
            else None
        text = render_reply(f"update_{kind}", lang, order=order, shipment=shipment, tracking_url=url, tz=str(tz))
        label_key, value = BUTTONS[kind]
        payload = OutboundPayload(text=text,
                                  quick_replies=(QuickReply(label=reply_label(label_key, lang), value=value),),
                                  paid_broadcast=switches.get(PAID_BROADCAST, False)
                                  and contact.channel == Channel.telegram)
        message = message_send(session, conversation, payload, author=Author.bot)
        # "stop" right after an update means the updates, even while a flow is open (bot.handlers.updates);
        # the dialog drops this mark with its next turn
        conversation.bot_state = {**(conversation.bot_state or {}), "after_update": True}
        written.append((update, conversation, message, shipment, order, kind, lang))
        outcomes.append("sent")
    if written:
        await session.flush()  # one flush for the chunk's messages: their ids for the audit rows
    for update, conversation, message, shipment, order, kind, lang in written:
        write_audit(session, conversation.id, "shipment.update_sent", actor="system", now=now,
                    detail={"shipment_id": shipment.id, "order_id": order.id, "status": kind,
                            "message_id": message.id, "language": lang})
        close(update, "sent")
    return outcomes

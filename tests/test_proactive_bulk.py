"""Proactive updates handled a chunk at a time (``shipment_notify_many``, issue 13's burst of
10,000 shipments): the same rules as one at a time, in one chunk with mixed cases, and a few
statements per chunk instead of a dozen per shipment. SQLite and PostgreSQL."""

from __future__ import annotations

import functools
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from ordersvc_builders import make_customer, make_order, make_shipment
from sqlmodel import col

from inbox.actions.shipment_notify import shipment_notify, shipment_notify_many
from inbox.models import AuditEvent, Channel, Contact, Conversation, ConversationStatus, OutboxMessage
from inbox.proactive import ProactiveJob
from ordersvc.models import ShipmentUpdate
from ordersvc.shipment_updates import record_tracking_event
from ordersvc.tracking import ShipmentStatus
from tests.db_helpers import rows

S = ShipmentStatus
NOON = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)  # 13:00 in Berlin, 21:00 in Tokyo (quiet)
URL = "https://www.ups.com/track?tracknum=1Z5R89390357567127"


async def _customer(session: Any, *, country: str = "DE", lang: str = "en", channel: bool = True,
                    stopped: bool = False, shipments: int = 1) -> tuple[int | None, list[int]]:
    """A customer with ``shipments`` parcels in transit (orders ``#<customer id>-<n>``); returns
    (conversation id, shipment ids)."""
    customer = await make_customer(session)
    address = {"address1": "Hauptstr. 1", "city": "Berlin", "zip": "10115", "country_code": country}
    shipment_ids = []
    for n in range(shipments):
        order, lines = await make_order(session, customer=customer, name=f"#{customer.id}-{n}",
                                        shipping_address=address)
        shipment = await make_shipment(session, order, lines=[(lines[0], 1)], shipped_at=NOON - timedelta(days=2))
        shipment.tracking_url = URL
        await session.flush()
        shipment_ids.append(shipment.id)
    if not channel:
        return None, shipment_ids
    contact = Contact(channel=Channel.telegram, external_id=str(5000 + customer.id), display_name="Lan", language=lang,
                      customer_id=customer.id, verified_at=NOON - timedelta(days=3),
                      updates_stopped_at=NOON - timedelta(days=1) if stopped else None)
    session.add(contact)
    await session.flush()
    conversation = Conversation(contact_id=contact.id, channel=Channel.telegram, status=ConversationStatus.resolved,
                                language=lang, resolved_at=NOON - timedelta(days=3))
    session.add(conversation)
    await session.flush()
    return conversation.id, shipment_ids


async def _out_for_delivery(sessions: Any, shipment_ids: list[int]) -> None:
    async with sessions() as session:
        for shipment_id in shipment_ids:
            assert await record_tracking_event(session, shipment_id, occurred_at=NOON, status=S.OUT_FOR_DELIVERY,
                                               message="out", now=NOON)
        await session.commit()


async def test_one_chunk_with_every_case_keeps_the_rules_and_the_order(sessions) -> None:  # type: ignore[no-untyped-def]
    async with sessions() as session:
        two_parcels, (first, second) = await _customer(session, shipments=2)
        two_parcels_customer = (await session.get(Conversation, two_parcels)).contact_id  # type: ignore[union-attr]
        two_parcels_customer = (await session.get(Contact, two_parcels_customer)).customer_id  # type: ignore[union-attr]
        spanish, [es] = await _customer(session, lang="es")
        _, [stopped] = await _customer(session, stopped=True)
        _, [nobody] = await _customer(session, channel=False)
        tokyo, [quiet] = await _customer(session, country="JP")
        await session.commit()
    await _out_for_delivery(sessions, [first, es, stopped, nobody, quiet, second])

    job = ProactiveJob(sessions, shipment_notify, clock=lambda: NOON, chunk=100, notify_many=shipment_notify_many)
    assert await job.run_once(late=False) == {"sent": 3, "opted_out": 1, "no_channel": 1, "postponed": 1}

    outcomes = {u.shipment_id: (u.outcome, u.processed_at is not None) for u in await rows(sessions, ShipmentUpdate)}
    assert outcomes == {first: ("sent", True), second: ("sent", True), es: ("sent", True),
                        stopped: ("opted_out", True), nobody: ("no_channel", True), quiet: (None, False)}
    # two parcels of one customer: two messages, in the order their updates came, both marked
    sent = await rows(sessions, OutboxMessage, col(OutboxMessage.conversation_id) == two_parcels)
    first_text, second_text = (r.payload["text"] for r in sorted(sent, key=lambda r: r.id))
    assert f"#{two_parcels_customer}-0" in first_text and f"#{two_parcels_customer}-1" in second_text
    [es_message] = await rows(sessions, OutboxMessage, col(OutboxMessage.conversation_id) == spanish)
    assert "en reparto" in es_message.payload["text"]
    assert not await rows(sessions, OutboxMessage, col(OutboxMessage.conversation_id) == tokyo)
    conversations = {c.id: c for c in await rows(sessions, Conversation)}
    assert conversations[two_parcels].bot_state.get("after_update") is True
    audits = await rows(sessions, AuditEvent, col(AuditEvent.action) == "shipment.update_sent")
    assert sorted(a.detail["shipment_id"] for a in audits) == sorted([first, second, es])
    assert all(isinstance(a.detail["message_id"], int) for a in audits)

    # once per shipment and status: another pass sends nothing more
    assert await job.run_once(late=False) == {}


async def test_a_chunk_costs_a_few_statements_not_a_dozen_per_shipment(sessions, engine) -> None:  # type: ignore[no-untyped-def]
    async with sessions() as session:
        ids: list[int] = []
        for _ in range(12):
            ids += (await _customer(session))[1]
        await session.commit()
    await _out_for_delivery(sessions, ids)

    statements: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    sa.event.listen(engine.sync_engine, "before_cursor_execute", count)
    try:
        job = ProactiveJob(sessions, functools.partial(shipment_notify), clock=lambda: NOON, chunk=100,
                           notify_many=shipment_notify_many)
        assert await job.run_once(late=False) == {"sent": 12}
    finally:
        sa.event.remove(engine.sync_engine, "before_cursor_execute", count)
    # one at a time this read about six rows per shipment (72 SELECTs here) and updated each
    # shipment update and conversation on its own; in bulk each kind of row is read once for the
    # chunk and each kind of update is one (executemany) statement. The three INSERTs per message
    # (message, outbox, audit) are the ORM's: batched on PostgreSQL, one a row on SQLite.
    kinds = [s.lstrip().split(None, 1)[0].upper() for s in statements]
    assert kinds.count("SELECT") <= 8, statements
    assert kinds.count("UPDATE") <= 2, statements
    assert 3 <= kinds.count("INSERT") <= 3 * 12, statements

"""Overriding a return refusal (issue 14, sidebar): only with the permission and a reason, only
for policy refusals (final sale, not returnable, window closed), audited; and the sidebar's
explanation of refund / store-credit amounts adds up to what was stored. Both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from ordersvc_builders import make_customer, make_order, make_shipment
from sqlmodel import select

from inbox.actions.agent_update import agent_update
from inbox.actions.return_open import return_open
from inbox.models import Agent, AuditEvent, Channel, Contact, Conversation, Role
from inbox.queries.sidebar_facts import sidebar_facts
from ordersvc.models import ItemCondition, Resolution, ReturnAuthorization, ReturnMethod, ReturnReason
from ordersvc.returns import ReturnPolicy, compute_amounts, explain_amounts
from ordersvc.returns.rma import ReturnItem
from ordersvc.service import order_bundle
from shopbase.refusal import Refused

NOW = datetime.now(UTC)


async def _setup(s: Any, *, delivered_days_ago: int | None = 5, **line: Any) -> tuple[Conversation, Any, list[Any]]:
    customer = await make_customer(s)
    contact = Contact(channel=Channel.telegram, external_id=f"c{customer.id}", customer_id=customer.id,
                      verified_at=NOW)
    s.add(contact)
    await s.flush()
    conversation = Conversation(contact_id=contact.id, channel=Channel.telegram)
    s.add(conversation)
    order, lines = await make_order(s, [{"sku": "JKT", "quantity": 1, "unit_price": "80.00", **line}],
                                    customer=customer, placed_at=NOW - timedelta(days=60))
    if delivered_days_ago is not None:
        await make_shipment(s, order, lines=[(lines[0], 1)], delivered_at=NOW - timedelta(days=delivered_days_ago))
    await s.flush()
    return conversation, order, lines


def _items(lines: list[Any]) -> list[dict[str, Any]]:
    return [{"order_line_id": lines[0].id, "quantity": 1, "reason": "too_small", "condition": "unopened"}]


async def _people(s: Any) -> tuple[Agent, Agent]:
    admin = Agent(email="boss@shop.test", password_hash="x", role=Role.admin, name="Boss")
    agent = Agent(email="ana@shop.test", password_hash="x", name="Ana")
    s.add_all([admin, agent])
    await s.flush()
    return admin, agent


async def test_a_final_sale_refusal_is_overridden_only_with_permission_and_a_reason(sessions: Any) -> None:
    async with sessions() as s:
        admin, agent = await _people(s)
        conversation, order, lines = await _setup(s, final_sale=True, returnable=False)
        await s.commit()
        admin_id, agent_id, conversation_id, order_id = admin.id, agent.id, conversation.id, order.id
        items = _items(lines)
        with pytest.raises(Refused) as plain:
            await return_open(s, conversation, order.id, _items(lines), "refund", "mail", agent=agent)
        assert plain.value.code == "final_sale"
        with pytest.raises(Refused) as forbidden:
            await return_open(s, conversation, order.id, _items(lines), "refund", "mail", agent=agent,
                              override_reason="customer is right")
        assert forbidden.value.status == 403
        with pytest.raises(Refused) as no_reason:
            await return_open(s, conversation, order.id, _items(lines), "refund", "mail", agent=admin,
                              override_reason="   ")
        assert no_reason.value.code == "override_reason"
        await s.rollback()
        assert (await s.exec(select(ReturnAuthorization))).all() == []

        # an admin grants the permission; the agent overrides, with a reason
        agent = await s.get(Agent, agent_id)
        await agent_update(s, agent, "allow_overrides", by=await s.get(Agent, admin_id))
        await s.commit()
        agent = await s.get(Agent, agent_id)
        conversation = await s.get(Conversation, conversation_id)
        created = await return_open(s, conversation, order_id, items, "refund", "mail", agent=agent,
                                    override_reason="Zipper broke before delivery")
        await s.commit()
        assert created.rma.refund_amount == Decimal("80.00")
        override = (await s.exec(select(AuditEvent).where(AuditEvent.action == "order.return_override"))).one()
        assert override.agent_id == agent_id
        assert override.detail["waived"] == ["final_sale"] and override.detail["reason"] == "Zipper broke before delivery"


async def test_facts_are_never_overridden_and_a_needless_override_is_a_plain_return(sessions: Any) -> None:
    async with sessions() as s:
        admin, _ = await _people(s)
        conversation, order, lines = await _setup(s, delivered_days_ago=None)  # never delivered
        with pytest.raises(Refused) as refused:
            await return_open(s, conversation, order.id, _items(lines), "refund", "mail", agent=admin,
                              override_reason="please")
        assert refused.value.code == "not_delivered"
        # a window closed long ago is a policy rule: overridden
        conversation2, order2, lines2 = await _setup(s, delivered_days_ago=200)
        created = await return_open(s, conversation2, order2.id, _items(lines2), "refund", "mail", agent=admin,
                                    override_reason="loyal customer")
        assert created.rma.id is not None
        # an eligible return with an override reason is simply a return: nothing was set aside
        conversation3, order3, lines3 = await _setup(s)
        await return_open(s, conversation3, order3.id, _items(lines3), "refund", "mail", agent=admin,
                          override_reason="not needed")
        await s.commit()
        overrides = (await s.exec(select(AuditEvent).where(AuditEvent.action == "order.return_override"))).all()
        assert [o.detail["waived"] for o in overrides] == [["window_expired"]]


@pytest.mark.parametrize(("resolution", "method", "reason"), [
    (Resolution.refund, ReturnMethod.mail, ReturnReason.too_small),
    (Resolution.refund, ReturnMethod.dropoff, ReturnReason.defective),
    (Resolution.store_credit, ReturnMethod.mail, ReturnReason.changed_mind),
    (Resolution.store_credit, ReturnMethod.mail, ReturnReason.damaged),
])
def test_the_explanation_adds_up_to_the_computed_amount(resolution: Resolution, method: ReturnMethod,
                                                        reason: ReturnReason) -> None:
    from ordersvc.models import OrderLine

    policy = ReturnPolicy(restocking_fee_percent=Decimal("10"), return_shipping_fee=Decimal("5.95"))
    lines = [OrderLine(id=1, order_id=1, sku="A", title="A", quantity=3, unit_price=Decimal("19.99"),
                       total_discount=Decimal("3.00")),
             OrderLine(id=2, order_id=1, sku="B", title="B", quantity=1, unit_price=Decimal("45.50"))]
    items = [(ReturnItem(order_line_id=1, quantity=2, reason=reason, condition=ItemCondition.unopened), lines[0]),
             (ReturnItem(order_line_id=2, quantity=1, reason=reason, condition=ItemCondition.unopened), lines[1])]
    refund, credit = compute_amounts(items, resolution, method, policy, "USD")
    explained = explain_amounts([(i.reason, i.quantity, ln) for i, ln in items], resolution, method, policy, "USD")
    assert explained.total == (credit if resolution == Resolution.store_credit else refund)
    if not explained.shop_fault:
        assert explained.restocking_fee > 0
    assert explained.items - explained.restocking_fee - explained.return_shipping_fee + explained.bonus \
        == pytest.approx(explained.total, abs=Decimal("0.01"))


async def test_the_sidebar_explains_stored_amounts_and_flags_late_parcels(sessions: Any) -> None:
    async with sessions() as s:
        admin, _ = await _people(s)
        conversation, order, lines = await _setup(s)
        await return_open(s, conversation, order.id, _items(lines), "store_credit", "mail", agent=admin)
        late_order, late_lines = await make_order(s, [{"sku": "TEE", "quantity": 1, "unit_price": "10.00"}],
                                                  name="#2002", placed_at=NOW - timedelta(days=20))
        parcel = await make_shipment(s, late_order, lines=[(late_lines[0], 1)], shipped_at=NOW - timedelta(days=12))
        parcel.eta = NOW - timedelta(days=3)
        s.add(parcel)
        await s.commit()
        bundles = [await order_bundle(s, order.id), await order_bundle(s, late_order.id)]
        facts = await sidebar_facts(s, bundles, NOW)
    rma = bundles[0].returns[0].rma
    explained = facts.amounts[rma.id]
    assert explained is not None and explained.total == rma.credit_amount
    assert facts.late_shipments == {parcel.id}

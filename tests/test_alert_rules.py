"""Alert rules with hand-built data and a controlled clock, on SQLite and PostgreSQL: each rule
fires when its condition holds, once per (rule, subject, window), and not when switched off."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from itertools import count
from typing import Any

import pytest
from ordersvc_builders import make_customer, make_level, make_order, make_shipment, make_variants, make_warehouse
from sqlmodel import select

from inbox.actions.alert_fire import alert_fire
from inbox.actions.alert_rules_save import alert_rules_save
from inbox.alerts.config import AlertConfig, RuleConfig, load_config
from inbox.alerts.rules import evaluate
from inbox.alerts.runner import AlertRunner
from inbox.models import (
    Agent,
    AlertRule,
    AuditEvent,
    Channel,
    Contact,
    Conversation,
    FiredAlert,
    Owner,
    Role,
)
from ordersvc.models import ReturnAuthorization, ReturnLine, ReturnReason, RmaStatus
from ordersvc.tracking import ShipmentStatus
from shopbase.refusal import Refused

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
_n = count(1)


def only(*rules: str, **params: Any) -> AlertConfig:
    base = AlertConfig.defaults().rules
    return AlertConfig({name: RuleConfig(name in rules, cfg.params if name not in params else
                                         type(cfg.params)(**params[name])) for name, cfg in base.items()})


async def findings(sessions: Any, now: datetime, *rules: str, tz: str = "UTC", **params: Any) -> list[Any]:
    async with sessions() as s:
        return await evaluate(s, now, only(*rules, **params), timezone=tz)


async def fire(sessions: Any, now: datetime, *rules: str, tz: str = "UTC", **params: Any) -> list[int]:
    async with sessions() as s:
        ids = await alert_fire(s, await evaluate(s, now, only(*rules, **params), timezone=tz), now=now)
        await s.commit()
    return ids


async def conversation(s: Any, *, created: datetime, escalated: datetime | None = None, owner: Owner = Owner.agent,
                       first_response: datetime | None = None, customer_id: int | None = None) -> Conversation:
    contact = Contact(channel=Channel.telegram, external_id=f"u{next(_n)}", display_name="Ana",
                      customer_id=customer_id)
    s.add(contact)
    await s.flush()
    conv = Conversation(contact_id=contact.id, channel=Channel.telegram, owner=owner, created_at=created,
                        first_response_at=first_response, last_message_at=created)
    s.add(conv)
    await s.flush()
    if escalated is not None:
        s.add(AuditEvent(conversation_id=conv.id, action="conversation.escalated", actor="bot",
                         detail={"reason": "handoff", "priority": "high"}, created_at=escalated))
        await s.flush()
    return conv


async def returned(s: Any, line: Any, reason: ReturnReason, at: datetime, quantity: int = 1,
                   note: str | None = None, status: RmaStatus = RmaStatus.requested) -> None:
    rma = ReturnAuthorization(rma_number=f"R{next(_n)}", order_id=line.order_id, status=status, requested_at=at)
    s.add(rma)
    await s.flush()
    s.add(ReturnLine(rma_id=rma.id, order_line_id=line.id, quantity=quantity, reason=reason, reason_note=note))
    await s.flush()


async def test_escalation_fires_once_and_sla_after_the_breach(sessions) -> None:
    async with sessions() as s:
        waiting = await conversation(s, created=NOW - timedelta(hours=5), escalated=NOW - timedelta(minutes=30))
        waiting.sla_kind, waiting.sla_due_at = "first", NOW + timedelta(minutes=30)
        answered = await conversation(s, created=NOW - timedelta(hours=5), escalated=NOW - timedelta(hours=3),
                                      first_response=NOW - timedelta(hours=2))
        await conversation(s, created=NOW - timedelta(hours=5), owner=Owner.bot)  # the bot has it: no SLA
        await s.commit()
    early = await findings(sessions, NOW, "escalation", "sla_breach")
    assert [(f.rule, f.conversation_id) for f in early] == [("escalation", answered.id), ("escalation", waiting.id)]
    # the SLA job marks the clock breached once it is due; the rule announces that breach
    later = NOW + timedelta(minutes=31)
    assert await findings(sessions, later, "sla_breach") == []
    from inbox.sla import SlaJob

    assert await SlaJob(sessions).run_once(later) == [waiting.id]
    assert await SlaJob(sessions).run_once(later) == []  # once per clock
    late = [f for f in await findings(sessions, later, "sla_breach") if f.rule == "sla_breach"]
    assert [(f.conversation_id, f.detail["kind"]) for f in late] == [(waiting.id, "first")]

    runner = AlertRunner(sessions)
    first = await runner.run_once(later)
    assert len(first) == 4  # two escalations, one breach and the day's digest (after 09:00)
    assert await runner.run_once(later) == []  # the same conditions, the same windows: nothing twice
    assert await runner.run_once(later + timedelta(hours=1)) == []
    async with sessions() as s:
        keys = sorted((a.rule, a.subject) for a in (await s.exec(select(FiredAlert))).all() if a.rule != "daily_digest")
    assert keys == sorted([("escalation", str(waiting.id)), ("escalation", str(answered.id)),
                           ("sla_breach", str(waiting.id))])


async def test_shipment_late_then_exception_each_once(sessions) -> None:
    async with sessions() as s:
        customer = await make_customer(s)
        conv = await conversation(s, created=NOW - timedelta(days=1), customer_id=customer.id)
        order, _ = await make_order(s, name="#2001", customer=customer, placed_at=NOW - timedelta(days=6))
        late = await make_shipment(s, order, shipped_at=NOW - timedelta(days=5))
        late.eta = NOW - timedelta(days=1)
        on_time, _ = await make_order(s, name="#2002", placed_at=NOW - timedelta(days=2))
        fine = await make_shipment(s, on_time, shipped_at=NOW - timedelta(days=1))
        fine.eta = NOW + timedelta(days=2)
        delivered, _ = await make_order(s, name="#2003", placed_at=NOW - timedelta(days=9))
        await make_shipment(s, delivered, shipped_at=NOW - timedelta(days=8), delivered_at=NOW - timedelta(days=1))
        ancient, _ = await make_order(s, name="#1", placed_at=NOW - timedelta(days=400))
        await make_shipment(s, ancient, shipped_at=NOW - timedelta(days=399), status=ShipmentStatus.EXCEPTION)
        await s.commit()
    found = await findings(sessions, NOW, "shipment")
    assert [(f.kind, f.detail["order_name"], f.conversation_id) for f in found] == [("late_shipment", "#2001", conv.id)]
    assert len(await fire(sessions, NOW, "shipment")) == 1
    assert await fire(sessions, NOW + timedelta(hours=2), "shipment") == []
    async with sessions() as s:  # the parcel now has a problem: a new condition, a new alert
        shipment = await s.get(type(late), late.id)
        shipment.status = ShipmentStatus.EXCEPTION
        await s.commit()
    again = await findings(sessions, NOW + timedelta(hours=3), "shipment")
    assert [(f.kind, f.window) for f in again] == [("shipment_exception", "exception")]


async def test_return_reason_spike_per_product_and_window(sessions) -> None:
    async with sessions() as s:
        await make_variants(s, "linen-tee", ["TEE-S", "TEE-M"])
        order, lines = await make_order(s, [{"sku": "TEE-S", "quantity": 5, "title": "Linen tee"},
                                            {"sku": "TEE-M", "quantity": 5, "title": "Linen tee"},
                                            {"sku": "MUG", "quantity": 5, "title": "Mug"}],
                                        placed_at=NOW - timedelta(days=20))
        tee_s, tee_m, mug = lines
        # three "too small" across two variants of one product within 7 days
        await returned(s, tee_s, ReturnReason.too_small, NOW - timedelta(days=1))
        await returned(s, tee_m, ReturnReason.too_small, NOW - timedelta(days=3))
        await returned(s, tee_s, ReturnReason.too_small, NOW - timedelta(days=6, hours=23))
        await returned(s, tee_s, ReturnReason.too_small, NOW - timedelta(days=8))  # outside the 7 days
        await returned(s, tee_m, ReturnReason.too_small, NOW - timedelta(days=2), status=RmaStatus.cancelled)
        await returned(s, mug, ReturnReason.damaged, NOW - timedelta(days=1), quantity=2)
        await s.commit()
    found = [f for f in await findings(sessions, NOW, "return_spike") if "reason" in f.detail]
    assert [(f.detail["product_key"], f.detail["reason"], f.detail["units"]) for f in found] == \
        [("linen-tee", "too_small", 3)]
    assert await findings(sessions, NOW, "return_spike", return_spike={"reason_count": 4, "min_returns": 99}) == []
    assert len(await fire(sessions, NOW, "return_spike")) == 1
    assert await fire(sessions, NOW + timedelta(hours=5), "return_spike") == []


async def test_return_rate_twice_its_own_90_day_rate(sessions) -> None:
    async with sessions() as s:
        # 90 days: 100 sold, 4 returned before the last 30 days; last 30 days: 10 sold, 4 returned
        old, (old_line,) = await make_order(s, [{"sku": "BAG", "quantity": 100, "title": "Bag"}],
                                            placed_at=NOW - timedelta(days=80))
        new, (new_line,) = await make_order(s, [{"sku": "BAG", "quantity": 10, "title": "Bag"}],
                                            placed_at=NOW - timedelta(days=10))
        await returned(s, old_line, ReturnReason.changed_mind, NOW - timedelta(days=60), quantity=4)
        for reason in (ReturnReason.damaged, ReturnReason.defective, ReturnReason.other, ReturnReason.wrong_item):
            await returned(s, new_line, reason, NOW - timedelta(days=5))
        # a steady product: the same rate in both windows
        _, (cap,) = await make_order(s, [{"sku": "CAP", "quantity": 30, "title": "Cap"}], placed_at=NOW - timedelta(days=15))
        await returned(s, cap, ReturnReason.other, NOW - timedelta(days=3), quantity=3)
        await s.commit()
    found = [f for f in await findings(sessions, NOW, "return_spike") if "rate_30" in f.detail]
    assert [(f.detail["product_key"], f.detail["rate_30"], f.detail["returned_30"], f.detail["sold_30"])
            for f in found] == [("BAG", "0.4000", 4, 10)]
    assert found[0].detail["rate_90"] == "0.0727"  # 8 of 110
    assert [f for f in await findings(sessions, NOW, "return_spike", return_spike={"rate_factor": "6"})
            if "rate_30" in f.detail] == []


async def test_low_stock_per_sku_and_location_once_a_local_day(sessions) -> None:
    async with sessions() as s:
        main = await make_warehouse(s, "MAIN")
        east = await make_warehouse(s, "EAST", is_default=False)
        await make_level(s, main, "TEE-M", on_hand=5, reserved=3, safety_stock=2)  # 2 ≤ 2: low
        await make_level(s, east, "TEE-M", on_hand=50, reserved=3, safety_stock=2)
        await make_level(s, main, "MUG", on_hand=1, reserved=4)  # oversold: low
        await s.commit()
    found = await findings(sessions, NOW, "low_stock")
    assert sorted((f.detail["sku"], f.detail["warehouse"], f.detail["available"]) for f in found) == \
        [("MUG", "Warehouse MAIN", -3), ("TEE-M", "Warehouse MAIN", 2)]
    ny = "America/New_York"
    assert len(await fire(sessions, NOW, "low_stock", tz=ny)) == 2
    # 23:00 in New York (already the next day in UTC): the same local day, nothing again
    assert await fire(sessions, NOW + timedelta(hours=16), "low_stock", tz=ny) == []
    assert len(await fire(sessions, NOW + timedelta(hours=18), "low_stock", tz=ny)) == 2  # 01:00: the next local day


async def test_daily_digest_after_its_local_time_once_a_day(sessions) -> None:
    async with sessions() as s:
        await conversation(s, created=NOW - timedelta(hours=2), escalated=NOW - timedelta(hours=1))
        await s.commit()
    tz = "Asia/Ho_Chi_Minh"  # UTC+7: NOW is 19:00 there
    assert await findings(sessions, NOW, "daily_digest", tz=tz, daily_digest={"at": "19:30"}) == []
    found = await findings(sessions, NOW, "daily_digest", tz=tz, daily_digest={"at": "18:00"})
    assert [(f.window, f.detail["new_conversations"], f.detail["escalations"], f.detail["waiting_for_a_person"])
            for f in found] == [("2026-11-20", 1, 1, 1)]
    async with sessions() as s:
        admin = Agent(email="a@example.com", password_hash="x", role=Role.admin)
        s.add(admin)
        await s.flush()
        await alert_rules_save(s, {"daily_digest": (True, {"at": "18:00"})}, by=admin)
        await s.commit()
    runner = AlertRunner(sessions, timezone=tz)
    fired = await runner.run_once(NOW)
    assert len(fired) >= 1
    assert await runner.run_once(NOW + timedelta(hours=4)) == []  # 23:00 local: already sent today
    async with sessions() as s:
        digests = (await s.exec(select(FiredAlert).where(FiredAlert.rule == "daily_digest"))).all()
    assert [d.window for d in digests] == ["2026-11-20"]


async def test_rules_switch_off_and_bad_settings_change_nothing(sessions) -> None:
    async with sessions() as s:
        admin = Agent(email="admin@example.com", password_hash="x", role=Role.admin)
        agent = Agent(email="agent@example.com", password_hash="x")
        s.add_all([admin, agent])
        main = await make_warehouse(s, "MAIN")
        await make_level(s, main, "MUG", on_hand=0)
        await s.commit()
        with pytest.raises(Refused) as refused:
            await alert_rules_save(s, {"low_stock": (False, {}),
                                       "shipment": (True, {"lookback_days": "0"})}, by=admin)
        assert "lookback_days" in refused.value.message
        with pytest.raises(Refused):
            await alert_rules_save(s, {"low_stock": (False, {})}, by=agent)  # admins only
        await s.rollback()
        assert (await s.exec(select(AlertRule))).all() == []
        await alert_rules_save(s, {"low_stock": (False, {}), "return_spike": (True, {"rate_factor": "3"})}, by=admin)
        await s.commit()
        config = await load_config(s)
    assert not config.on("low_stock") and config.on("escalation")
    assert str(config.params("return_spike").rate_factor) == "3"
    await AlertRunner(sessions).run_once(NOW)
    async with sessions() as s:  # low stock is off: only the (default-on) digest fired
        assert [a.rule for a in (await s.exec(select(FiredAlert))).all()] == ["daily_digest"]


async def test_runner_runs_in_the_background_until_stopped(sessions) -> None:
    async with sessions() as s:
        main = await make_warehouse(s, "MAIN")
        await make_level(s, main, "MUG", on_hand=0)
        await s.commit()
    runner = AlertRunner(sessions, interval=0.05, clock=lambda: NOW)
    runner.start()
    try:
        for _ in range(200):
            async with sessions() as s:
                rules = {a.rule for a in (await s.exec(select(FiredAlert))).all()}
            if "low_stock" in rules:
                break
            await asyncio.sleep(0.05)
    finally:
        await runner.stop()
    assert "low_stock" in rules

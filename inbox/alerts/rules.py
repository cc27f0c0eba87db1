"""Alert rules: what is true of the shop at ``now`` that someone should hear about.

:func:`evaluate` is pure reading: it returns :class:`Finding` values (rule, subject, window,
conversation, detail) and writes nothing; the ``alert_fire`` action stores each one at most once
per (rule, subject, window) and announces it. Every rule reads with SQL aggregates bounded by
``now``, so the same data and the same ``now`` always give the same findings (tests pass their own
``now``; nothing here reads the clock).

Windows (what "once per condition per window" means for each rule):

* ``escalation``: each escalation (its audit row) once.
* ``sla_breach``: a conversation's SLA clock ran out (``inbox.sla``: the SLA job marked it
  breached within the last week): once per clock (its kind and due time).
* ``shipment``: a shipment late against its estimate or stalled (``ordersvc.service``'s one
  lateness rule), or in a problem status: once as *late* and once as *exception*.
* ``return_spike``: a product with ≥ ``reason_count`` units returned for one reason in the last
  ``reason_days`` days: once per product, reason and ``reason_days``-long period; or a 30-day
  return rate ≥ ``rate_factor`` × its own 90-day rate (with ≥ ``min_returns`` units in 30 days):
  once per product and 30-day period.
* ``low_stock``: on hand minus reserved at or below the safety stock, per SKU and warehouse:
  once per shop-local day while it stays low.
* ``daily_digest``: once per shop-local day, after ``at`` local time.

At most ``max_per_rule`` findings per rule come out of one evaluation (oldest first); the rest
are found again next time, so a storm of late parcels reaches Slack gradually instead of at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from inbox.alerts.config import AlertConfig
from inbox.models import AuditEvent, Contact, Conversation, ConversationStatus, FiredAlert, Owner
from ordersvc.insight import reason_counts, return_rates
from ordersvc.models import InventoryLevel, Order, ReturnAuthorization, Shipment, Warehouse
from ordersvc.service import PROBLEM_STATUSES, late_shipment_clause

__all__ = ["Finding", "evaluate", "period"]

ESCALATED = "conversation.escalated"
ESCALATION_LOOKBACK = timedelta(days=1)
DIGEST_SUBJECT = "shop"


@dataclass(frozen=True)
class Finding:
    rule: str
    subject: str
    window: str
    #: the event kind Slack and the notifications render (a rule may have several)
    kind: str
    conversation_id: int | None = None
    detail: dict[str, Any] = field(default_factory=dict)


def period(now: datetime, days: int) -> str:
    """The ``days``-long period ``now`` falls in (UTC days since 1970 // days), as a window key."""
    return f"{days}d{(now.astimezone(UTC).date().toordinal() - 719163) // days}"


def _not_fired(rule: str, subject: Any, window: Any) -> Any:
    """SQL: no alert of ``rule`` fired yet for this subject and window (so the per-rule cap
    never keeps returning the same old, already announced rows)."""
    return ~(
        sa.select(col(FiredAlert.id))
        .where(col(FiredAlert.rule) == rule, col(FiredAlert.subject) == subject, col(FiredAlert.window) == window)
        .exists()
    )


def _text(value: Any) -> Any:
    return sa.cast(value, sa.String)


async def _unfired(session: AsyncSession, found: list[Finding]) -> list[Finding]:
    """``found`` without the findings that fired already (one query)."""
    if not found:
        return []
    rules = {f.rule for f in found}
    subjects = {f.subject for f in found}
    fired = {
        tuple(row) for row in (await session.exec(  # type: ignore[call-overload]  # a Core select
            sa.select(col(FiredAlert.rule), col(FiredAlert.subject), col(FiredAlert.window))
            .where(col(FiredAlert.rule).in_(sorted(rules)), col(FiredAlert.subject).in_(sorted(subjects)))
        )).all()
    }
    return [f for f in found if (f.rule, f.subject, f.window) not in fired]


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat() if value is not None else None


def _ratio(value: Decimal | None) -> str | None:
    return str(value.quantize(Decimal("0.0001"))) if value is not None else None


async def _escalations(session: AsyncSession, now: datetime, limit: int) -> list[Finding]:
    rows = (
        await session.exec(  # type: ignore[call-overload]  # a Core select
            sa.select(col(AuditEvent.id), col(AuditEvent.conversation_id), col(AuditEvent.created_at),
                      col(AuditEvent.detail))
            .where(col(AuditEvent.action) == ESCALATED, col(AuditEvent.conversation_id).is_not(None),
                   col(AuditEvent.created_at) > now - ESCALATION_LOOKBACK, col(AuditEvent.created_at) <= now,
                   _not_fired("escalation", _text(col(AuditEvent.conversation_id)),
                              sa.literal("audit-") + _text(col(AuditEvent.id))))
            .order_by(col(AuditEvent.created_at), col(AuditEvent.id))
            .limit(limit)
        )
    ).all()
    return [Finding("escalation", str(cid), f"audit-{aid}", "escalation", cid,
                    {"conversation_id": cid, "at": _iso(at), "reason": str((detail or {}).get("reason") or ""),
                     "priority": str((detail or {}).get("priority") or "")})
            for aid, cid, at, detail in rows]


SLA_LOOKBACK = timedelta(days=7)


async def _sla(session: AsyncSession, now: datetime, limit: int) -> list[Finding]:
    rows = (
        await session.exec(  # type: ignore[call-overload]  # a Core select
            sa.select(col(Conversation.id), col(Conversation.sla_kind), col(Conversation.sla_due_at),
                      col(Conversation.sla_breached_at), col(Contact.display_name))
            .join(Contact, col(Contact.id) == col(Conversation.contact_id))
            .where(col(Conversation.sla_breached_at).is_not(None), col(Conversation.sla_due_at).is_not(None),
                   col(Conversation.sla_breached_at) <= now,
                   col(Conversation.sla_breached_at) > now - SLA_LOOKBACK)
            .order_by(col(Conversation.sla_breached_at), col(Conversation.id))
            .limit(limit * 4)
        )
    ).all()
    found = [Finding("sla_breach", str(cid), f"{kind or 'first'}-{_iso(due)}", "sla_breach", cid,
                     {"conversation_id": cid, "kind": kind or "first", "due_at": _iso(due),
                      "breached_at": _iso(breached), "customer": name or ""})
             for cid, kind, due, breached, name in rows]
    return (await _unfired(session, found))[:limit]


def _latest_conversation_of(customer_id: Any) -> Any:
    return (
        sa.select(col(Conversation.id))
        .join(Contact, col(Contact.id) == col(Conversation.contact_id))
        .where(col(Contact.customer_id) == customer_id)
        .order_by(col(Conversation.last_message_at).desc())
        .limit(1)
        .scalar_subquery()
    )


async def _shipments(session: AsyncSession, now: datetime, lookback_days: int, limit: int) -> list[Finding]:
    since = now - timedelta(days=lookback_days)
    problem = sorted(PROBLEM_STATUSES, key=lambda s: s.value)
    started = sa.func.coalesce(col(Shipment.shipped_at), col(Shipment.created_at))
    rows = (
        await session.exec(  # type: ignore[call-overload]  # a Core select
            sa.select(col(Shipment.id), col(Shipment.status), col(Shipment.carrier), col(Shipment.tracking_number),
                      col(Shipment.eta), col(Order.id), col(Order.name),
                      _latest_conversation_of(col(Order.customer_id)))
            .join(Order, col(Order.id) == col(Shipment.order_id))
            .where(late_shipment_clause(now), started >= since, started <= now, col(Order.cancelled_at).is_(None),
                   _not_fired("shipment", sa.literal("shipment-") + _text(col(Shipment.id)),
                              sa.case((col(Shipment.status).in_(problem), sa.literal("exception")),
                                      else_=sa.literal("late"))))
            .order_by(started, col(Shipment.id))
            .limit(limit)
        )
    ).all()
    found: list[Finding] = []
    for sid, status, carrier, number, eta, order_id, order_name, cid in rows:
        is_problem = status in PROBLEM_STATUSES
        found.append(Finding(
            "shipment", f"shipment-{sid}", "exception" if is_problem else "late",
            "shipment_exception" if is_problem else "late_shipment", cid,
            {"order_id": order_id, "order_name": order_name, "eta": _iso(eta),
             "shipments": [{"carrier": carrier, "tracking_number": number, "status": getattr(status, "value", status)}]},
        ))
    return found


async def _return_spikes(session: AsyncSession, now: datetime, params: Any, limit: int) -> list[Finding]:
    found: list[Finding] = []
    since = now - timedelta(days=params.reason_days)
    for rc in await reason_counts(session, since, now):
        if rc.units >= params.reason_count:
            found.append(Finding(
                "return_spike", f"product-{rc.product_key}"[:128], f"{rc.reason}-{period(now, params.reason_days)}",
                "return_spike", None,
                {"product_key": rc.product_key, "title": rc.title, "reason": rc.reason, "units": rc.units,
                 "days": params.reason_days}))
    rates = await return_rates(session, now, {"recent": now - timedelta(days=30), "base": now - timedelta(days=90)})
    for key, (title, counts) in sorted(rates.items()):
        (returned30, sold30), (returned90, sold90) = counts["recent"], counts["base"]
        if returned30 < params.min_returns or not sold30 or not sold90 or not returned90:
            continue
        rate30 = Decimal(returned30) / Decimal(sold30)
        rate90 = Decimal(returned90) / Decimal(sold90)
        if rate30 >= params.rate_factor * rate90:
            found.append(Finding(
                "return_spike", f"product-{key}"[:128], f"rate-{period(now, 30)}", "return_spike", None,
                {"product_key": key, "title": title, "rate_30": _ratio(rate30), "rate_90": _ratio(rate90),
                 "returned_30": returned30, "sold_30": sold30, "factor": str(params.rate_factor)}))
    return (await _unfired(session, found))[:limit]


async def _low_stock(session: AsyncSession, now: datetime, tz: ZoneInfo, limit: int) -> list[Finding]:
    available = col(InventoryLevel.on_hand) - col(InventoryLevel.reserved)
    day = now.astimezone(tz).date().isoformat()
    rows = (
        await session.exec(  # type: ignore[call-overload]  # a Core select
            sa.select(col(InventoryLevel.sku), col(Warehouse.id), col(Warehouse.code), col(Warehouse.name),
                      col(InventoryLevel.on_hand), col(InventoryLevel.reserved), col(InventoryLevel.safety_stock))
            .join(Warehouse, col(Warehouse.id) == col(InventoryLevel.warehouse_id))
            .where(available <= col(InventoryLevel.safety_stock),
                   _not_fired("low_stock", col(InventoryLevel.sku) + sa.literal("@") + _text(col(Warehouse.id)),
                              sa.literal(day)))
            .order_by(available - col(InventoryLevel.safety_stock), col(InventoryLevel.sku), col(Warehouse.id))
            .limit(limit)
        )
    ).all()
    return [Finding("low_stock", f"{sku}@{wid}"[:128], day, "low_stock", None,
                    {"sku": sku, "warehouse": name or code, "on_hand": on_hand, "reserved": reserved,
                     "available": on_hand - reserved, "safety_stock": safety})
            for sku, wid, code, name, on_hand, reserved, safety in rows]


async def _count(session: AsyncSession, stmt: Any) -> int:
    return int((await session.exec(stmt)).scalar() or 0)


async def _digest(session: AsyncSession, now: datetime, tz: ZoneInfo, params: Any) -> list[Finding]:
    local = now.astimezone(tz)
    if local.time() < params.time:
        return []
    day = local.date().isoformat()
    done = await _count(session, sa.select(sa.func.count()).select_from(FiredAlert).where(
        col(FiredAlert.rule) == "daily_digest", col(FiredAlert.subject) == DIGEST_SUBJECT, col(FiredAlert.window) == day))
    if done:
        return []
    since = now - timedelta(days=1)
    count = sa.func.count()
    detail = {
        "day": day,
        "new_conversations": await _count(session, sa.select(count).select_from(Conversation).where(
            col(Conversation.created_at) > since, col(Conversation.created_at) <= now)),
        "escalations": await _count(session, sa.select(count).select_from(AuditEvent).where(
            col(AuditEvent.action) == ESCALATED, col(AuditEvent.created_at) > since, col(AuditEvent.created_at) <= now)),
        "waiting_for_a_person": await _count(session, sa.select(count).select_from(Conversation).where(
            col(Conversation.status) == ConversationStatus.open, col(Conversation.owner) == Owner.agent)),
        "returns_requested": await _count(session, sa.select(count).select_from(ReturnAuthorization).where(
            col(ReturnAuthorization.requested_at) > since, col(ReturnAuthorization.requested_at) <= now)),
        "late_shipments": await _count(session, sa.select(count).select_from(Shipment).join(
            Order, col(Order.id) == col(Shipment.order_id)).where(late_shipment_clause(now),
                                                                   col(Order.cancelled_at).is_(None))),
        "low_stock": await _count(session, sa.select(count).select_from(InventoryLevel).where(
            col(InventoryLevel.on_hand) - col(InventoryLevel.reserved) <= col(InventoryLevel.safety_stock))),
        "alerts": await _count(session, sa.select(count).select_from(FiredAlert).where(
            col(FiredAlert.created_at) > since, col(FiredAlert.created_at) <= now)),
    }
    return [Finding("daily_digest", DIGEST_SUBJECT, day, "daily_digest", None, detail)]


async def evaluate(session: AsyncSession, now: datetime, config: AlertConfig, *, timezone: str = "UTC",
                   max_per_rule: int = 50) -> list[Finding]:
    """Every enabled rule's findings at ``now`` (timezone-aware), in rule order."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    tz = ZoneInfo(timezone)
    found: list[Finding] = []
    if config.on("escalation"):
        found += await _escalations(session, now, max_per_rule)
    if config.on("sla_breach"):
        found += await _sla(session, now, max_per_rule)
    if config.on("shipment"):
        found += await _shipments(session, now, config.params("shipment").lookback_days, max_per_rule)
    if config.on("return_spike"):
        found += await _return_spikes(session, now, config.params("return_spike"), max_per_rule)
    if config.on("low_stock"):
        found += await _low_stock(session, now, tz, max_per_rule)
    if config.on("daily_digest"):
        found += await _digest(session, now, tz, config.params("daily_digest"))
    return found

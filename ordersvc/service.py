"""The order store's read side: find orders, verify who is asking, load everything about one order.

Functions here take an open ``AsyncSession`` and never commit; the caller owns the
transaction. Nothing is lazy-loaded: every related row is fetched with an explicit query.

Verification (``verify_customer``) is the gate in front of every order detail the bot shows:
an order number alone proves nothing, so the caller must also bring the order's email or
its shipping postal code. A wrong pair and an unknown order give the same answer (``None``)
after the same amount of work, so the answer cannot be used to discover order numbers.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import unicodedata
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from ordersvc.models import (
    Customer,
    Order,
    OrderLine,
    Refund,
    ReturnAuthorization,
    ReturnLine,
    Shipment,
    ShipmentLine,
    ShopSetting,
    SourceChannel,
    StoreCredit,
    TrackingEvent,
)
from ordersvc.settings_read import stored_setting
from ordersvc.tracking import ShipmentStatus
from shopbase.clock import utcnow
from shopbase.text import postal_code_match_key

__all__ = [
    "DEFAULT_SHIPPING_POLICY",
    "SHIPPING_POLICY_KEY",
    "setting_over",
    "STALLED_AFTER",
    "PROBLEM_STATUSES",
    "OrderBundle",
    "ShipmentBundle",
    "ShippedLine",
    "ReturnBundle",
    "normalize_email",
    "order_ref_candidates",
    "find_order",
    "orders_for_customer",
    "order_lines",
    "order_bundle",
    "order_bundles",
    "shipment_bundles",
    "return_bundles",
    "verify_customer",
    "find_customer_by_email",
    "shipment_is_late",
    "late_shipment_clause",
    "expected_ship_date",
    "add_business_days",
    "get_setting",
    "put_setting",
    "shipping_policy",
]

SHIPPING_POLICY_KEY = "shipping"

DEFAULT_SHIPPING_POLICY: dict[str, Any] = {
    "handling_days": 2,
    "business_days_only": True,
    "carriers": ["UPS", "USPS", "FedEx", "DHL Express"],
    "currency": "USD",
    "free_shipping_over": "75.00",
    "zones": [
        {
            "code": "domestic",
            "name": "United States",
            "countries": ["US"],
            "min_days": 3,
            "max_days": 5,
            "days": "3–5 business days",
            "price": "5.95",
            "price_text": "$5.95, free over $75",
        },
        {
            "code": "domestic_express",
            "name": "United States (express)",
            "countries": ["US"],
            "min_days": 1,
            "max_days": 2,
            "days": "1–2 business days",
            "price": "19.95",
            "price_text": "$19.95",
        },
        {
            "code": "north_america",
            "name": "Canada and Mexico",
            "countries": ["CA", "MX"],
            "min_days": 5,
            "max_days": 8,
            "days": "5–8 business days",
            "price": "14.95",
            "price_text": "$14.95",
        },
        {
            "code": "international",
            "name": "Rest of the world",
            "countries": ["*"],
            "min_days": 7,
            "max_days": 14,
            "days": "7–14 business days",
            "price": "24.95",
            "price_text": "$24.95; duties may apply on delivery",
        },
    ],
}

#: A shipped parcel without a new scan for this long counts as stalled.
STALLED_AFTER = timedelta(days=5)

#: Statuses that always need attention, whatever the dates say.
PROBLEM_STATUSES = frozenset(ShipmentStatus(v) for v in ("exception", "failed_attempt", "expired"))
# by value: robust to how the enum spells its member names
_DELIVERED = ShipmentStatus("delivered")

_MAX_REF_LENGTH = 64
_MAX_PROOF_LENGTH = 320


# --------------------------------------------------------------------------- bundles


@dataclass(frozen=True)
class ShippedLine:
    """One order line inside one shipment, with the quantity that went in that parcel."""

    line: OrderLine
    quantity: int


@dataclass(frozen=True)
class ShipmentBundle:
    shipment: Shipment
    lines: tuple[ShippedLine, ...]
    #: newest first
    events: tuple[TrackingEvent, ...]


@dataclass(frozen=True)
class ReturnBundle:
    rma: ReturnAuthorization
    lines: tuple[ReturnLine, ...]


@dataclass(frozen=True)
class OrderBundle:
    """Everything about one order, loaded up front (shipments in the order they were created)."""

    order: Order
    customer: Customer | None
    lines: tuple[OrderLine, ...]
    shipments: tuple[ShipmentBundle, ...]
    returns: tuple[ReturnBundle, ...]
    refunds: tuple[Refund, ...]
    store_credits: tuple[StoreCredit, ...]

    def line(self, line_id: int) -> OrderLine | None:
        return next((ln for ln in self.lines if ln.id == line_id), None)


# --------------------------------------------------------------------------- normalising


def normalize_email(value: str) -> str:
    """Trimmed and case-folded; the form every email comparison uses."""
    return unicodedata.normalize("NFKC", value).strip().lower()


_REF_PREFIX = re.compile(
    r"^(?:(?:order|pedido|заказ|đơn hàng|đơn|订单|訂單)\s*[:：]?\s*)?"
    r"(?:(?:no|nr|n°|n\.º)\.?\s*(?=[#\d]))?#?\s*",
    re.IGNORECASE,
)
_AMAZON = re.compile(r"^(\d{3})[\s\-]*(\d{7})[\s\-]*(\d{7})$")
_EBAY = re.compile(r"^(\d{2})[\s\-]*(\d{5})[\s\-]*(\d{5})$")


def order_ref_candidates(ref: str) -> list[str]:
    """The spellings under which ``ref`` may be stored as an order name or external id.

    ``" # 1001 "``, ``"№1001"`` and ``"1001"`` all yield ``"#1001"`` and ``"1001"``;
    ``"113 1234567 1234567"`` yields the dashed Amazon form; POS names are also tried in
    upper case. Returns an empty list for text that cannot be an order reference.
    """
    text = unicodedata.normalize("NFKC", ref or "")
    text = " ".join(text.split())
    if not text or len(text) > _MAX_REF_LENGTH * 2 or not text.isprintable():
        return []  # NUL and other control characters are never part of an order number
    # NFKC turns "№" into "No"; strip "order", "no.", "#" and similar decorations
    core = _REF_PREFIX.sub("", text, count=1).strip()
    out: list[str] = []

    def add(value: str) -> None:
        if value and len(value) <= _MAX_REF_LENGTH and value not in out:
            out.append(value)

    for found in (_AMAZON.match(core), _EBAY.match(core)):
        if found:
            add("-".join(found.groups()))
    if core.isdigit():
        add(f"#{core}")
        add(core)
    else:
        add(core)
        add(core.upper())
        compact = core.replace(" ", "")
        add(compact)
        add(compact.upper())
        if not core.startswith("#"):
            add(f"#{core.upper()}")
    add(text)
    return out


# --------------------------------------------------------------------------- lookups


_SOURCE_RANK = {
    SourceChannel.online_store: 0,
    SourceChannel.pos: 1,
    SourceChannel.amazon: 2,
    SourceChannel.ebay: 3,
    SourceChannel.other: 4,
}


async def find_order(session: AsyncSession, ref: str) -> Order | None:
    """The order called ``ref``: a name (#1001, 1001, №1001, POS-1001), an external id, or an
    Amazon (3-7-7) / eBay (2-5-5) order number. Names win over external ids; among several
    names the online store's wins, then the lowest id. ``None`` when nothing matches."""
    candidates = order_ref_candidates(ref)
    if not candidates:
        return None
    stmt = (
        select(Order)
        .where(sa.or_(col(Order.name).in_(candidates), col(Order.external_id).in_(candidates)))
        .order_by(col(Order.id))
        .limit(20)
    )
    rows = list((await session.exec(stmt)).all())
    if not rows:
        return None

    def rank(order: Order) -> tuple[int, int, int, int]:
        by_name = order.name in candidates
        position = candidates.index(order.name if by_name else order.external_id)
        return (0 if by_name else 1, position, _SOURCE_RANK.get(order.source, 9), order.id or 0)

    return min(rows, key=rank)


async def orders_for_customer(session: AsyncSession, customer_id: int, limit: int = 20) -> list[Order]:
    """The customer's orders, newest first."""
    stmt = (
        select(Order)
        .where(Order.customer_id == customer_id)
        .order_by(col(Order.placed_at).desc(), col(Order.id).desc())
        .limit(max(1, min(limit, 500)))
    )
    return list((await session.exec(stmt)).all())


async def order_lines(session: AsyncSession, order_id: int | None) -> list[OrderLine]:
    """The lines of one order, in the order they were placed (by id)."""
    stmt = select(OrderLine).where(OrderLine.order_id == order_id).order_by(col(OrderLine.id))
    return list((await session.exec(stmt)).all())


async def find_customer_by_email(session: AsyncSession, email: str) -> Customer | None:
    """The customer with this email (trimmed, case-insensitive); the oldest one if several."""
    wanted = normalize_email(email or "")
    if not wanted or len(wanted) > _MAX_PROOF_LENGTH or not wanted.isprintable():
        return None
    stmt = (
        select(Customer)
        .where(sa.func.lower(Customer.email) == wanted)
        .where(col(Customer.redacted_at).is_(None))
        .order_by(col(Customer.id))
        .limit(1)
    )
    return (await session.exec(stmt)).first()


_CHUNK = 500


async def _rows_where_in(session: AsyncSession, model: Any, column: Any, values: Any) -> list[Any]:
    """Rows of ``model`` whose ``column`` is in ``values``, in chunks (SQLite caps bound parameters)."""
    wanted = sorted({v for v in values if v is not None})
    rows: list[Any] = []
    for start in range(0, len(wanted), _CHUNK):
        rows.extend((await session.exec(select(model).where(column.in_(wanted[start : start + _CHUNK])))).all())
    return rows


async def shipment_bundles(
    session: AsyncSession, shipments: Sequence[Shipment], lines: Sequence[OrderLine] | None = None
) -> list[ShipmentBundle]:
    """Each shipment with its items and its tracking events (newest first), in a few queries.

    ``lines`` may hold the order lines already loaded; missing ones are fetched.
    """
    ids = [s.id for s in shipments if s.id is not None]
    sl_rows: list[ShipmentLine] = await _rows_where_in(session, ShipmentLine, col(ShipmentLine.shipment_id), ids)
    sl_rows.sort(key=lambda sl: (sl.shipment_id, sl.order_line_id))
    by_line_id = {ln.id: ln for ln in lines or ()}
    missing = {sl.order_line_id for sl in sl_rows} - set(by_line_id)
    for ln in await _rows_where_in(session, OrderLine, col(OrderLine.id), missing):
        by_line_id[ln.id] = ln
    items: dict[int, list[ShippedLine]] = defaultdict(list)
    for sl in sl_rows:
        line = by_line_id.get(sl.order_line_id)
        if line is not None:
            items[sl.shipment_id].append(ShippedLine(line=line, quantity=sl.quantity))
    events: dict[int, list[TrackingEvent]] = defaultdict(list)
    ev_rows: list[TrackingEvent] = await _rows_where_in(session, TrackingEvent, col(TrackingEvent.shipment_id), ids)
    ev_rows.sort(key=lambda ev: (ev.occurred_at, ev.id or 0), reverse=True)
    for ev in ev_rows:
        events[ev.shipment_id].append(ev)
    return [
        ShipmentBundle(shipment=s, lines=tuple(items.get(s.id or 0, ())), events=tuple(events.get(s.id or 0, ())))
        for s in shipments
    ]


async def return_bundles(session: AsyncSession, rmas: Sequence[ReturnAuthorization]) -> list[ReturnBundle]:
    """Each RMA with its lines."""
    rows: list[ReturnLine] = await _rows_where_in(session, ReturnLine, col(ReturnLine.rma_id), [r.id for r in rmas])
    rows.sort(key=lambda rl: rl.id or 0)
    lines: dict[int, list[ReturnLine]] = defaultdict(list)
    for rl in rows:
        lines[rl.rma_id].append(rl)
    return [ReturnBundle(rma=r, lines=tuple(lines.get(r.id or 0, ()))) for r in rmas]


async def order_bundles(session: AsyncSession, orders: Sequence[Order]) -> list[OrderBundle]:
    """``order_bundle`` for many orders at once, with a fixed number of queries."""
    order_ids = [o.id for o in orders if o.id is not None]
    customers = {
        c.id: c for c in await _rows_where_in(session, Customer, col(Customer.id), [o.customer_id for o in orders])
    }
    lines: list[OrderLine] = await _rows_where_in(session, OrderLine, col(OrderLine.order_id), order_ids)
    lines.sort(key=lambda ln: ln.id or 0)
    shipments: list[Shipment] = await _rows_where_in(session, Shipment, col(Shipment.order_id), order_ids)
    shipments.sort(key=lambda s: s.id or 0)
    rmas: list[ReturnAuthorization] = await _rows_where_in(
        session, ReturnAuthorization, col(ReturnAuthorization.order_id), order_ids
    )
    rmas.sort(key=lambda r: (r.requested_at, r.id or 0))
    refunds: list[Refund] = await _rows_where_in(session, Refund, col(Refund.order_id), order_ids)
    refunds.sort(key=lambda r: (r.processed_at, r.id or 0))
    credits: list[StoreCredit] = await _rows_where_in(
        session, StoreCredit, col(StoreCredit.rma_id), [r.id for r in rmas]
    )
    credits.sort(key=lambda c: c.id or 0)
    ship_bundles = await shipment_bundles(session, shipments, lines)
    ret_bundles = await return_bundles(session, rmas)

    def grouped(items: Sequence[Any], key: Any) -> dict[int, list[Any]]:
        out: dict[int, list[Any]] = defaultdict(list)
        for item in items:
            out[key(item)].append(item)
        return out

    lines_of = grouped(lines, lambda ln: ln.order_id)
    ships_of = grouped(ship_bundles, lambda b: b.shipment.order_id)
    rets_of = grouped(ret_bundles, lambda b: b.rma.order_id)
    refunds_of = grouped(refunds, lambda r: r.order_id)
    order_of_rma = {r.id: r.order_id for r in rmas}
    credits_of = grouped(credits, lambda c: order_of_rma.get(c.rma_id, 0))
    return [
        OrderBundle(
            order=o,
            customer=customers.get(o.customer_id) if o.customer_id is not None else None,
            lines=tuple(lines_of.get(o.id or 0, ())),
            shipments=tuple(ships_of.get(o.id or 0, ())),
            returns=tuple(rets_of.get(o.id or 0, ())),
            refunds=tuple(refunds_of.get(o.id or 0, ())),
            store_credits=tuple(credits_of.get(o.id or 0, ())),
        )
        for o in orders
    ]


async def order_bundle(session: AsyncSession, order_id: int) -> OrderBundle:
    """Load one order with its customer, lines, shipments (lines, events), returns, refunds, credits.

    Raises ``LookupError`` when there is no such order.
    """
    order = await session.get(Order, order_id)
    if order is None:
        raise LookupError(f"no order with id {order_id}")
    (bundle,) = await order_bundles(session, [order])
    return bundle


# --------------------------------------------------------------------------- verification


def _order_postal_code(order: Order) -> str:
    if order.shipping_postal_code:
        return order.shipping_postal_code
    address = order.shipping_address or {}
    value = address.get("zip") or address.get("postal_code") or ""
    return value if isinstance(value, str) else ""


def _digest(value: str) -> bytes:
    # compare fixed-length digests, so the comparison time depends on neither value's length
    return hashlib.sha256(value.encode("utf-8")).digest()


_NO_MATCH = _digest("\x00no-order\x00")


async def verify_customer(session: AsyncSession, order_ref: str, proof: str) -> Order | None:
    """The order ``order_ref`` if ``proof`` is its email or its shipping postal code, else ``None``.

    Emails compare trimmed and case-insensitive; postal codes upper-cased without spaces or
    dashes. Both comparisons always run, with ``hmac.compare_digest`` over digests, and an
    unknown order is compared against a placeholder, so a missing order and a wrong proof
    cost the same and look the same.
    """
    proof = proof if isinstance(proof, str) else ""
    proof = proof[: _MAX_PROOF_LENGTH * 2]
    order = await find_order(session, order_ref) if isinstance(order_ref, str) else None

    given_email = normalize_email(proof)
    given_postal = postal_code_match_key(proof)
    stored_email = normalize_email(order.email or "") if order is not None else ""
    stored_postal = postal_code_match_key(_order_postal_code(order)) if order is not None else ""

    email_ok = hmac.compare_digest(_digest(given_email), _digest(stored_email) if stored_email else _NO_MATCH)
    postal_ok = hmac.compare_digest(_digest(given_postal), _digest(stored_postal) if stored_postal else _NO_MATCH)
    matched = (email_ok and bool(given_email)) or (postal_ok and bool(given_postal))
    return order if (order is not None and matched) else None


# --------------------------------------------------------------------------- shipping


def shipment_is_late(shipment: Shipment, now: datetime | None = None) -> bool:
    """True when a shipment needs attention.

    Not delivered and (its ETA has passed, or nothing was scanned for ``STALLED_AFTER`` since
    it shipped), or its status is exception / failed_attempt / expired.
    """
    now = now or utcnow()
    status = ShipmentStatus(shipment.status)
    if status in PROBLEM_STATUSES:
        return True
    if status == _DELIVERED:
        return False
    if shipment.eta is not None and shipment.eta < now:
        return True
    if shipment.shipped_at is not None:
        last_sign = max(shipment.shipped_at, shipment.last_event_at or shipment.shipped_at)
        return now - last_sign >= STALLED_AFTER
    return False


def late_shipment_clause(now: datetime) -> sa.ColumnElement[bool]:
    """``shipment_is_late`` as a SQL condition on the ``shipment`` table."""
    stalled_before = now - STALLED_AFTER
    last_sign = sa.func.coalesce(col(Shipment.last_event_at), col(Shipment.shipped_at))
    return sa.or_(
        col(Shipment.status).in_(sorted(PROBLEM_STATUSES, key=lambda s: s.value)),
        sa.and_(
            col(Shipment.status) != _DELIVERED,
            sa.or_(
                sa.and_(col(Shipment.eta).is_not(None), col(Shipment.eta) < now),
                sa.and_(
                    col(Shipment.shipped_at).is_not(None),
                    col(Shipment.shipped_at) <= stalled_before,
                    last_sign <= stalled_before,
                ),
            ),
        ),
    )


def add_business_days(start: datetime, days: int) -> datetime:
    """``start`` plus ``days`` working days (Saturday and Sunday skipped)."""
    current = start
    remaining = max(0, days)
    while remaining:
        current += timedelta(days=1)
        if current.weekday() < 5:
            remaining -= 1
    return current


def expected_ship_date(order: Order, policy: dict[str, Any] | None = None) -> datetime:
    """When the order should leave the warehouse: its own ``expected_ship_at`` if set, else
    ``placed_at`` plus the shipping policy's handling days (business days by default).

    Pass the merchant's policy (``await shipping_policy(session)``); without it the
    ``DEFAULT_SHIPPING_POLICY`` applies.
    """
    if order.expected_ship_at is not None:
        return order.expected_ship_at
    policy = policy or DEFAULT_SHIPPING_POLICY
    try:
        days = int(policy.get("handling_days", DEFAULT_SHIPPING_POLICY["handling_days"]))
    except (TypeError, ValueError):
        days = int(DEFAULT_SHIPPING_POLICY["handling_days"])
    days = max(0, min(days, 60))
    if policy.get("business_days_only", True):
        return add_business_days(order.placed_at, days)
    return order.placed_at + timedelta(days=days)


# --------------------------------------------------------------------------- settings


async def get_setting(session: AsyncSession, key: str, default: dict[str, Any]) -> dict[str, Any]:
    """The stored value of ``key`` laid over ``default`` (a fresh dict; missing keys keep defaults)."""
    return setting_over(await stored_setting(session, key), default)


def setting_over(value: Any, default: dict[str, Any]) -> dict[str, Any]:
    """A stored setting's ``value`` (``stored_setting``) laid over ``default``, as ``get_setting``."""
    merged = dict(default)
    if isinstance(value, dict):
        merged.update(value)
    return merged


async def put_setting(session: AsyncSession, key: str, value: dict[str, Any]) -> ShopSetting:
    """Insert or replace the setting ``key`` (flushed, not committed)."""
    if not isinstance(value, dict):
        raise TypeError("a setting value must be a dict")
    row = await session.get(ShopSetting, key)
    if row is None:
        row = ShopSetting(key=key, value=dict(value), updated_at=utcnow())
        session.add(row)
    else:
        row.value = dict(value)  # reassign: in-place JSON mutation is not tracked
        row.updated_at = utcnow()
    await session.flush()
    return row


async def shipping_policy(session: AsyncSession) -> dict[str, Any]:
    return await get_setting(session, SHIPPING_POLICY_KEY, DEFAULT_SHIPPING_POLICY)

"""Returns: the merchant's policy, eligibility per order line, RMAs and their lifecycle.

Policy decisions worth knowing:

* **Window.** ``window_days`` is counted in whole UTC calendar days from delivery: an item
  delivered on 1 May with a 30-day window can be returned until 31 May 23:59:59 UTC and
  not on 1 June. A shipment without a delivery time is *presumed* delivered
  ``presumed_delivery_days`` (default 7) after ``shipped_at`` — unless its tracking shows
  a problem (exception, failed attempt, waiting at a pickup point), in which case it is
  not delivered. Point-of-sale orders without shipments count as delivered when placed.
* **Which shipment.** When ``ShipmentLine`` rows say which shipment carried a line, only
  the delivered units of that line can be returned and its window starts at the latest
  of those deliveries. Without them every shipment of the order must be delivered and
  the window starts at the last delivery.
* **Money.** refund = Σ(unit price × qty − the line discount's share for qty) − restocking
  fee − return shipping fee, rounded to the currency's minor unit. The restocking fee and
  the return shipping fee are waived when any returned item's reason is a shop fault
  (``shop_fault_reasons``: damaged, defective, wrong item, not as described); the shipping
  fee applies to mailed returns only. Store credit = refund × (1 + bonus %). An exchange
  moves no money; price differences between variants are not charged. Taxes and the
  original shipping are not part of the refund.
* **Labels.** Return labels are simulated: the tracking number is a valid UPS ``1Z`` or
  USPS IMpb number built from the shop's account number in the policy and the RMA id, with
  a correct check digit, so carriers' and our own parsers recognise it.
* **Restocking.** When a return is received, items whose condition is in
  ``restock_conditions`` and whose reason is not damaged/defective go back to stock.

Every write function changes rows in the caller's session and never commits; on a
refusal it writes nothing, and if it raises the caller must roll back.
"""

from __future__ import annotations

import re
import secrets
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Literal

import sqlalchemy as sa
from babel.numbers import get_currency_precision
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from ordersvc.inventory import (
    available_by_sku,
    locked_available,
    release_sku,
    reserve_sku,
    restock,
    ship_sku,
)
from ordersvc.models import (
    FinancialStatus,
    ItemCondition,
    Order,
    OrderLine,
    ProductVariant,
    Refund,
    Resolution,
    ReturnAuthorization,
    ReturnLine,
    ReturnMethod,
    ReturnReason,
    RmaStatus,
    Shipment,
    ShipmentLine,
    ShopSetting,
    SourceChannel,
    StoreCredit,
    Warehouse,
    utcnow,
)
from ordersvc.tracking import Carrier, ShipmentStatus
from ordersvc.tracking.checksums import gs1_mod10_check_digit, ups_check_digit

__all__ = [
    "POLICY_SETTING_KEY",
    "ProductTypeRule",
    "ResolutionOptions",
    "MethodOptions",
    "LabelAccount",
    "ReturnPolicy",
    "DEFAULT_RETURN_POLICY",
    "load_policy",
    "save_policy",
    "LineEligibility",
    "check_eligibility",
    "check_order_eligibility",
    "exchange_options",
    "compute_amounts",
    "ReturnItem",
    "RmaError",
    "RmaResult",
    "create_rma",
    "InvalidTransition",
    "ALLOWED_TRANSITIONS",
    "check_transition",
    "transition",
    "load_rma_lines",
    "MoneyMovement",
    "refunds_and_credits",
    "issue_tracking_number",
]

POLICY_SETTING_KEY = "returns"

_ANY_CONDITION = list(ItemCondition)
_AS_NEW = [ItemCondition.unopened, ItemCondition.like_new]
_SHOP_FAULT = [
    ReturnReason.damaged,
    ReturnReason.defective,
    ReturnReason.wrong_item,
    ReturnReason.not_as_described,
]
# A shipment in one of these states has not reached the customer, whatever the calendar says.
_NOT_DELIVERED_STATES = {
    ShipmentStatus("exception"),
    ShipmentStatus("failed_attempt"),
    ShipmentStatus("available_for_pickup"),
}
_DELIVERED = ShipmentStatus("delivered")


# --------------------------------------------------------------------------- policy


class ProductTypeRule(BaseModel):
    """Overrides for one product type (matched case-insensitively)."""

    model_config = ConfigDict(extra="forbid")

    window_days: int | None = Field(default=None, ge=0, le=3650)
    returnable: bool = True


class ResolutionOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    refund: bool = True
    store_credit: bool = True
    store_credit_bonus_percent: Decimal = Field(default=Decimal("10"), ge=0, le=100)
    exchange: bool = True


class MethodOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mail: bool = True
    dropoff: bool = False
    dropoff_locations: str = Field(default="", max_length=2000)
    in_store: bool = False
    in_store_locations: str = Field(default="", max_length=2000)


class LabelAccount(BaseModel):
    """The shop's carrier account used for prepaid return labels."""

    model_config = ConfigDict(extra="forbid")

    carrier: Literal["ups", "usps"] = "ups"
    ups_shipper_number: str = Field(default="R7T4K9", pattern=r"^[0-9A-Z]{6}$")
    usps_mailer_id: str = Field(default="912345678", pattern=r"^9[0-9]{8}$")


class ReturnPolicy(BaseModel):
    """The merchant's return rules, stored as JSON in ``ShopSetting('returns')``."""

    model_config = ConfigDict(extra="forbid")

    window_days: int = Field(default=30, ge=0, le=3650)
    presumed_delivery_days: int = Field(default=7, ge=0, le=365)
    product_types: dict[str, ProductTypeRule] = Field(default_factory=dict)
    final_sale_excluded: bool = True
    # reasons missing from the mapping accept any condition
    allowed_conditions: dict[ReturnReason, list[ItemCondition]] = Field(
        default_factory=lambda: {
            ReturnReason.changed_mind: list(_AS_NEW),
            ReturnReason.too_small: list(_AS_NEW),
            ReturnReason.too_large: list(_AS_NEW),
            ReturnReason.other: list(_AS_NEW),
            ReturnReason.damaged: list(_ANY_CONDITION),
            ReturnReason.defective: list(_ANY_CONDITION),
            ReturnReason.wrong_item: list(_ANY_CONDITION),
            ReturnReason.not_as_described: list(_ANY_CONDITION),
        }
    )
    resolutions: ResolutionOptions = Field(default_factory=ResolutionOptions)
    methods: MethodOptions = Field(default_factory=MethodOptions)
    approval: Literal["automatic", "manual"] = "automatic"
    restocking_fee_percent: Decimal = Field(default=Decimal("0"), ge=0, le=100)
    return_shipping_fee: Decimal = Field(default=Decimal("0"), ge=0)
    shop_fault_reasons: list[ReturnReason] = Field(default_factory=lambda: list(_SHOP_FAULT))
    restock_conditions: list[ItemCondition] = Field(default_factory=lambda: list(_AS_NEW))
    label: LabelAccount = Field(default_factory=LabelAccount)

    @field_validator("product_types")
    @classmethod
    def _normalise_types(cls, value: dict[str, ProductTypeRule]) -> dict[str, ProductTypeRule]:
        return {key.strip().casefold(): rule for key, rule in value.items() if key.strip()}

    def rule_for(self, product_type: str | None) -> ProductTypeRule | None:
        if not product_type:
            return None
        return self.product_types.get(product_type.strip().casefold())

    def window_for(self, product_type: str | None) -> int:
        rule = self.rule_for(product_type)
        if rule is not None and rule.window_days is not None:
            return rule.window_days
        return self.window_days

    def accepts_condition(self, reason: ReturnReason, condition: ItemCondition) -> bool:
        allowed = self.allowed_conditions.get(reason)
        return allowed is None or condition in allowed

    def allows_resolution(self, resolution: Resolution) -> bool:
        return bool(getattr(self.resolutions, resolution.value))

    def allows_method(self, method: ReturnMethod) -> bool:
        return bool(getattr(self.methods, method.value))


DEFAULT_RETURN_POLICY = ReturnPolicy()


async def load_policy(session: AsyncSession) -> ReturnPolicy:
    """The stored policy, or ``DEFAULT_RETURN_POLICY`` when none was saved.

    A stored value that no longer validates raises ``ValueError``: silently falling back
    to the defaults could be more generous than the merchant's rules.
    """
    row = await session.get(ShopSetting, POLICY_SETTING_KEY)
    if row is None or not row.value:
        return DEFAULT_RETURN_POLICY.model_copy(deep=True)
    try:
        return ReturnPolicy.model_validate(row.value)
    except ValidationError as exc:
        raise ValueError(f"the stored return policy is invalid: {exc}") from exc


async def save_policy(session: AsyncSession, policy: ReturnPolicy) -> None:
    """Store ``policy`` (validated again) under ``ShopSetting('returns')``."""
    value = ReturnPolicy.model_validate(policy.model_dump()).model_dump(mode="json")
    row = await session.get(ShopSetting, POLICY_SETTING_KEY)
    if row is None:
        row = ShopSetting(key=POLICY_SETTING_KEY, value=value)
    else:
        row.value = value
        row.updated_at = utcnow()
    session.add(row)
    await session.flush()


# --------------------------------------------------------------------------- eligibility


@dataclass(frozen=True)
class LineEligibility:
    """Whether (and how many units of) one order line can be returned now.

    ``reason`` (when not eligible): ``order_cancelled``, ``final_sale``, ``not_returnable``,
    ``not_delivered``, ``window_expired`` (``deadline`` is when it closed) or
    ``already_returned``. ``returned_quantity`` counts units in RMAs that are not
    rejected or cancelled.
    """

    order_line_id: int
    sku: str | None
    title: str
    eligible: bool
    reason: str | None
    max_quantity: int
    deadline: datetime | None
    delivered_at: datetime | None = None
    returned_quantity: int = 0


_INACTIVE = {RmaStatus.rejected, RmaStatus.cancelled}


def _delivered_on(
    shipment: Shipment, policy: ReturnPolicy, now: datetime
) -> datetime | None:
    if shipment.delivered_at is not None:
        return shipment.delivered_at
    if shipment.status == _DELIVERED:
        return shipment.last_event_at or shipment.shipped_at or shipment.updated_at
    if shipment.shipped_at is None or shipment.status in _NOT_DELIVERED_STATES:
        return None
    presumed = shipment.shipped_at + timedelta(days=policy.presumed_delivery_days)
    return presumed if presumed <= now else None


def _window_close(delivered: datetime, days: int) -> datetime:
    last_day: date = delivered.astimezone(timezone.utc).date() + timedelta(days=days)
    return datetime.combine(last_day, time(23, 59, 59), tzinfo=timezone.utc)


def check_eligibility(
    order: Order,
    lines: Sequence[OrderLine],
    shipments: Sequence[Shipment],
    existing_returns: Sequence[tuple[ReturnAuthorization, Sequence[ReturnLine]]],
    policy: ReturnPolicy,
    now: datetime,
    *,
    shipment_lines: Sequence[ShipmentLine] = (),
) -> list[LineEligibility]:
    """Eligibility of every line of ``order``; pure, no database access."""
    returned: dict[int, int] = defaultdict(int)
    for rma, rma_lines in existing_returns:
        if rma.status in _INACTIVE:
            continue
        for rl in rma_lines:
            returned[rl.order_line_id] += rl.quantity

    delivered = {s.id: _delivered_on(s, policy, now) for s in shipments}
    by_line: dict[int, list[ShipmentLine]] = defaultdict(list)
    for sl in shipment_lines:
        by_line[sl.order_line_id].append(sl)
    whole_order_delivery: datetime | None = None
    if shipments and all(d is not None for d in delivered.values()):
        whole_order_delivery = max(d for d in delivered.values() if d is not None)
    elif not shipments and order.source == SourceChannel.pos:
        whole_order_delivery = order.placed_at

    result: list[LineEligibility] = []
    for line in lines:
        assert line.id is not None
        already = returned.get(line.id, 0)
        mapped = by_line.get(line.id)
        if mapped:
            dates = [delivered.get(sl.shipment_id) for sl in mapped]
            delivered_qty = sum(sl.quantity for sl, d in zip(mapped, dates) if d is not None)
            known = [d for d in dates if d is not None]
            delivered_at = max(known) if known else None
        else:
            delivered_at = whole_order_delivery
            delivered_qty = line.quantity if delivered_at is not None else 0
        delivered_qty = min(delivered_qty, line.quantity)
        deadline = (
            _window_close(delivered_at, policy.window_for(line.product_type))
            if delivered_at is not None
            else None
        )
        rule = policy.rule_for(line.product_type)
        reason: str | None = None
        if order.is_cancelled:
            reason = "order_cancelled"
        elif line.final_sale and policy.final_sale_excluded:
            reason = "final_sale"
        elif not line.returnable or (rule is not None and not rule.returnable):
            reason = "not_returnable"
        elif delivered_at is None or delivered_qty <= 0:
            reason = "not_delivered"
        elif deadline is not None and now > deadline:
            reason = "window_expired"
        elif delivered_qty - already <= 0:
            reason = "already_returned"
        max_quantity = 0 if reason else delivered_qty - already
        result.append(
            LineEligibility(
                order_line_id=line.id,
                sku=line.sku,
                title=line.title,
                eligible=reason is None,
                reason=reason,
                max_quantity=max_quantity,
                deadline=deadline,
                delivered_at=delivered_at,
                returned_quantity=already,
            )
        )
    return result


@dataclass
class _OrderFacts:
    lines: list[OrderLine]
    shipments: list[Shipment]
    shipment_lines: list[ShipmentLine]
    returns: list[tuple[ReturnAuthorization, list[ReturnLine]]]


async def _load_facts(session: AsyncSession, order: Order) -> _OrderFacts:
    lines = list(
        (
            await session.exec(
                select(OrderLine).where(OrderLine.order_id == order.id).order_by(col(OrderLine.id))
            )
        ).all()
    )
    shipments = list(
        (await session.exec(select(Shipment).where(Shipment.order_id == order.id))).all()
    )
    shipment_lines: list[ShipmentLine] = []
    if shipments:
        ids = [s.id for s in shipments]
        shipment_lines = list(
            (
                await session.exec(select(ShipmentLine).where(col(ShipmentLine.shipment_id).in_(ids)))
            ).all()
        )
    rmas = list(
        (
            await session.exec(
                select(ReturnAuthorization).where(ReturnAuthorization.order_id == order.id)
            )
        ).all()
    )
    returns: list[tuple[ReturnAuthorization, list[ReturnLine]]] = []
    if rmas:
        rma_lines = (
            await session.exec(
                select(ReturnLine).where(col(ReturnLine.rma_id).in_([r.id for r in rmas]))
            )
        ).all()
        grouped: dict[int, list[ReturnLine]] = defaultdict(list)
        for rl in rma_lines:
            grouped[rl.rma_id].append(rl)
        returns = [(r, grouped.get(r.id or 0, [])) for r in rmas]
    return _OrderFacts(lines, shipments, shipment_lines, returns)


async def check_order_eligibility(
    session: AsyncSession,
    order: Order,
    *,
    policy: ReturnPolicy | None = None,
    now: datetime | None = None,
) -> list[LineEligibility]:
    """``check_eligibility`` with everything loaded from the database."""
    policy = policy or await load_policy(session)
    facts = await _load_facts(session, order)
    return check_eligibility(
        order,
        facts.lines,
        facts.shipments,
        facts.returns,
        policy,
        now or utcnow(),
        shipment_lines=facts.shipment_lines,
    )


async def exchange_options(session: AsyncSession, order_line: OrderLine) -> list[ProductVariant]:
    """Other variants (same ``product_key``, another SKU) of the line's product in stock."""
    if not order_line.sku:
        return []
    current = (
        await session.exec(select(ProductVariant).where(ProductVariant.sku == order_line.sku))
    ).first()
    if current is None:
        return []
    siblings = list(
        (
            await session.exec(
                select(ProductVariant)
                .where(
                    ProductVariant.product_key == current.product_key,
                    ProductVariant.sku != current.sku,
                )
                .order_by(col(ProductVariant.sku))
            )
        ).all()
    )
    stock = await available_by_sku(session, [v.sku for v in siblings])
    return [v for v in siblings if stock.get(v.sku, 0) > 0]


# --------------------------------------------------------------------------- RMA creation


class ReturnItem(BaseModel):
    """One line of a return request, as the bot or an agent submits it."""

    model_config = ConfigDict(extra="forbid")

    order_line_id: int
    quantity: int = Field(ge=1, le=10_000)
    reason: ReturnReason
    reason_note: str | None = Field(default=None, max_length=500)
    condition: ItemCondition = ItemCondition.unopened
    exchange_sku: str | None = Field(default=None, min_length=1, max_length=64)

    @field_validator("reason_note")
    @classmethod
    def _clean_note(cls, value: str | None) -> str | None:
        return _clean_text(value) or None


@dataclass(frozen=True)
class RmaError:
    """One reason a return request was refused; ``code`` is machine-readable."""

    code: str
    order_line_id: int | None = None
    detail: str = ""


@dataclass
class RmaResult:
    ok: bool
    rma: ReturnAuthorization | None = None
    lines: list[ReturnLine] = field(default_factory=list)
    errors: list[RmaError] = field(default_factory=list)

    @property
    def reason(self) -> str | None:
        """The first error code (``None`` on success)."""
        return self.errors[0].code if self.errors else None


def _clean_text(value: str | None) -> str:
    """Customer or agent text without control characters (PostgreSQL refuses NUL)."""
    if not value:
        return ""
    return "".join(ch for ch in value if ch in "\n\t" or unicodedata.category(ch) != "Cc").strip()


def _quantum(currency: str) -> Decimal:
    try:
        digits = get_currency_precision(currency)
    except Exception:  # an unknown code: assume cents
        digits = 2
    return Decimal(1).scaleb(-digits)


def _round(amount: Decimal, currency: str) -> Decimal:
    return amount.quantize(_quantum(currency), rounding=ROUND_HALF_UP)


def _item_value(line: OrderLine, quantity: int) -> Decimal:
    value = line.unit_price * quantity
    if line.total_discount and line.quantity:
        value -= line.total_discount * quantity / line.quantity
    return max(value, Decimal("0"))


def compute_amounts(
    items: Sequence[tuple[ReturnItem, OrderLine]],
    resolution: Resolution,
    method: ReturnMethod,
    policy: ReturnPolicy,
    currency: str,
) -> tuple[Decimal, Decimal]:
    """``(refund_amount, credit_amount)`` for a request (see the module docstring)."""
    if resolution == Resolution.exchange:
        return Decimal("0"), Decimal("0")
    shop_fault = any(item.reason in policy.shop_fault_reasons for item, _ in items)
    value = sum((_item_value(line, item.quantity) for item, line in items), Decimal("0"))
    fees = Decimal("0")
    if not shop_fault:
        fees += value * policy.restocking_fee_percent / 100
        if method == ReturnMethod.mail:
            fees += policy.return_shipping_fee
    base = _round(max(value - fees, Decimal("0")), currency)
    if resolution == Resolution.store_credit:
        bonus = policy.resolutions.store_credit_bonus_percent
        return Decimal("0"), _round(base * (1 + bonus / 100), currency)
    return base, Decimal("0")


async def _next_rma_number(session: AsyncSession, order: Order) -> str:
    digits = re.sub(r"\D", "", order.name)[-24:] or str(order.id)
    prefix = f"R{digits}-"
    taken = (
        await session.exec(
            select(ReturnAuthorization.rma_number).where(
                col(ReturnAuthorization.rma_number).startswith(prefix, autoescape=True)
            )
        )
    ).all()
    seqs = [int(n[len(prefix) :]) for n in taken if n[len(prefix) :].isdigit()]
    return f"{prefix}{max(seqs, default=0) + 1}"


def issue_tracking_number(rma_id: int, account: LabelAccount) -> tuple[str, str]:
    """``(carrier, tracking_number)`` of a simulated prepaid label for RMA ``rma_id``.

    UPS: ``1Z`` + shipper number + service ``90`` + 7-digit package id + check digit.
    USPS: IMpb ``94`` + service ``055`` + 9-digit mailer id + 7-digit serial + check.
    """
    serial = f"{rma_id % 10_000_000:07d}"
    if account.carrier == "usps":
        payload = f"94055{account.usps_mailer_id}{serial}"
        return Carrier.USPS.value, f"{payload}{gs1_mod10_check_digit(payload)}"
    body = f"{account.ups_shipper_number}90{serial}"
    return Carrier.UPS.value, f"1Z{body}{ups_check_digit(body)}"


def _coerce_items(items: Iterable[ReturnItem | Mapping[str, Any]]) -> tuple[list[ReturnItem], list[RmaError]]:
    parsed: list[ReturnItem] = []
    errors: list[RmaError] = []
    for raw in items:
        try:
            parsed.append(raw if isinstance(raw, ReturnItem) else ReturnItem.model_validate(raw))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ()))
            errors.append(RmaError("invalid_item", None, f"{where}: {first.get('msg', 'invalid')}"))
    return parsed, errors


async def create_rma(
    session: AsyncSession,
    order: Order,
    items: Sequence[ReturnItem | Mapping[str, Any]],
    resolution: Resolution | str,
    method: ReturnMethod | str,
    *,
    created_by: str = "bot",
    now: datetime | None = None,
    policy: ReturnPolicy | None = None,
) -> RmaResult:
    """Validate a return request against the policy and record it (the caller commits).

    On refusal nothing is written and ``errors`` lists every problem found. On success
    the RMA is ``requested``; with automatic approval it is ``approved``, and a mailed
    return then gets its label (``label_issued``). An exchange reserves the replacement.
    """
    now = now or utcnow()
    policy = policy or await load_policy(session)
    parsed, errors = _coerce_items(items)
    try:
        resolution = Resolution(resolution)
    except ValueError:
        errors.append(RmaError("invalid_resolution", None, str(resolution)[:32]))
    try:
        method = ReturnMethod(method)
    except ValueError:
        errors.append(RmaError("invalid_method", None, str(method)[:32]))
    if not parsed and not errors:
        errors.append(RmaError("no_items"))
    if errors:
        return RmaResult(ok=False, errors=errors)
    assert isinstance(resolution, Resolution) and isinstance(method, ReturnMethod)

    if not policy.allows_resolution(resolution):
        errors.append(RmaError("resolution_not_allowed", None, resolution.value))
    if not policy.allows_method(method):
        errors.append(RmaError("method_not_enabled", None, method.value))

    # lock the order so two requests for the same order are checked one after the other
    locked = (
        await session.exec(
            select(Order)
            .where(Order.id == order.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    ).one()
    facts = await _load_facts(session, locked)
    lines_by_id = {line.id: line for line in facts.lines}
    eligibility = {
        e.order_line_id: e
        for e in check_eligibility(
            locked,
            facts.lines,
            facts.shipments,
            facts.returns,
            policy,
            now,
            shipment_lines=facts.shipment_lines,
        )
    }

    seen: set[int] = set()
    chosen: list[tuple[ReturnItem, OrderLine]] = []
    wanted_stock: dict[str, int] = defaultdict(int)
    for item in parsed:
        line_id = item.order_line_id
        if line_id in seen:
            errors.append(RmaError("duplicate_line", line_id))
            continue
        seen.add(line_id)
        line = lines_by_id.get(line_id)
        if line is None:
            errors.append(RmaError("unknown_line", line_id))
            continue
        verdict = eligibility[line_id]
        if not verdict.eligible:
            detail = verdict.deadline.date().isoformat() if verdict.reason == "window_expired" and verdict.deadline else ""
            errors.append(RmaError(verdict.reason or "not_eligible", line_id, detail))
            continue
        if item.quantity > verdict.max_quantity:
            errors.append(RmaError("quantity_exceeded", line_id, f"at most {verdict.max_quantity}"))
            continue
        if not policy.accepts_condition(item.reason, item.condition):
            errors.append(
                RmaError("condition_not_accepted", line_id, f"{item.reason.value}/{item.condition.value}")
            )
            continue
        if resolution == Resolution.exchange:
            if not item.exchange_sku:
                errors.append(RmaError("exchange_sku_required", line_id))
                continue
            options = {v.sku for v in await exchange_options(session, line)}
            if item.exchange_sku not in options:
                errors.append(RmaError("exchange_sku_invalid", line_id, item.exchange_sku))
                continue
            wanted_stock[item.exchange_sku] += item.quantity
        elif item.exchange_sku:
            errors.append(RmaError("exchange_sku_unexpected", line_id))
            continue
        chosen.append((item, line))

    if wanted_stock and not errors:
        stock = await locked_available(session, list(wanted_stock))
        for sku, quantity in sorted(wanted_stock.items()):
            if stock.get(sku, 0) < quantity:
                errors.append(RmaError("exchange_out_of_stock", None, sku))
    if errors:
        return RmaResult(ok=False, errors=errors)

    refund_amount, credit_amount = compute_amounts(chosen, resolution, method, policy, locked.currency)
    assert locked.id is not None
    rma = ReturnAuthorization(
        rma_number=await _next_rma_number(session, locked),
        order_id=locked.id,
        customer_id=locked.customer_id,
        status=RmaStatus.requested,
        resolution=resolution,
        method=method,
        currency=locked.currency,
        refund_amount=refund_amount,
        credit_amount=credit_amount,
        created_by=(created_by or "bot")[:32],
        requested_at=now,
        created_at=now,
        updated_at=now,
    )
    session.add(rma)
    await session.flush()
    assert rma.id is not None
    rma_lines = [
        ReturnLine(
            rma_id=rma.id,
            order_line_id=line.id or 0,
            quantity=item.quantity,
            reason=item.reason,
            reason_note=item.reason_note,
            condition=item.condition,
            exchange_sku=item.exchange_sku if resolution == Resolution.exchange else None,
        )
        for item, line in chosen
    ]
    session.add_all(rma_lines)
    for sku, quantity in sorted(wanted_stock.items()):
        await reserve_sku(session, sku, quantity)
    if policy.approval == "automatic":
        rma.status = RmaStatus.approved
        rma.approved_at = now
        if method == ReturnMethod.mail:
            _apply_label(rma, policy, now)
    await session.flush()
    return RmaResult(ok=True, rma=rma, lines=rma_lines)


def _apply_label(rma: ReturnAuthorization, policy: ReturnPolicy, now: datetime) -> None:
    if not rma.label_tracking_number:
        assert rma.id is not None
        rma.label_carrier, rma.label_tracking_number = issue_tracking_number(rma.id, policy.label)
    rma.status = RmaStatus.label_issued
    rma.label_issued_at = now


# --------------------------------------------------------------------------- lifecycle


class InvalidTransition(ValueError):
    """The RMA cannot move to the requested status."""


_TERMINAL_FOR = {
    Resolution.refund: RmaStatus.refunded,
    Resolution.exchange: RmaStatus.exchanged,
    Resolution.store_credit: RmaStatus.credited,
}
_STOPPABLE = {RmaStatus.requested, RmaStatus.approved, RmaStatus.label_issued}

# The general graph; ``transition`` also checks method and resolution (see there).
ALLOWED_TRANSITIONS: dict[RmaStatus, frozenset[RmaStatus]] = {
    RmaStatus.requested: frozenset({RmaStatus.approved, RmaStatus.rejected, RmaStatus.cancelled}),
    RmaStatus.approved: frozenset(
        {RmaStatus.label_issued, RmaStatus.in_transit, RmaStatus.received, RmaStatus.rejected, RmaStatus.cancelled}
    ),
    RmaStatus.label_issued: frozenset({RmaStatus.in_transit, RmaStatus.rejected, RmaStatus.cancelled}),
    RmaStatus.in_transit: frozenset({RmaStatus.received}),
    RmaStatus.received: frozenset({RmaStatus.refunded, RmaStatus.exchanged, RmaStatus.credited}),
    RmaStatus.refunded: frozenset(),
    RmaStatus.exchanged: frozenset(),
    RmaStatus.credited: frozenset(),
    RmaStatus.rejected: frozenset(),
    RmaStatus.cancelled: frozenset(),
}
_TIMESTAMP = {
    RmaStatus.approved: "approved_at",
    RmaStatus.label_issued: "label_issued_at",
    RmaStatus.in_transit: "in_transit_at",
    RmaStatus.received: "received_at",
    RmaStatus.refunded: "refunded_at",
    RmaStatus.exchanged: "exchanged_at",
    RmaStatus.credited: "credited_at",
    RmaStatus.rejected: "rejected_at",
    RmaStatus.cancelled: "cancelled_at",
}


def check_transition(rma: ReturnAuthorization, new_status: RmaStatus) -> None:
    """Raise ``InvalidTransition`` unless ``rma`` may move to ``new_status``.

    Mailed returns go approved → label_issued → in_transit; drop-off and in-store returns
    have no label and go approved → in_transit or straight to received. The final status
    must match the resolution (refund → refunded, store credit → credited, exchange →
    exchanged).
    """
    current = RmaStatus(rma.status)
    if new_status == current:
        raise InvalidTransition(f"return {rma.rma_number} is already {current.value}")
    if new_status not in ALLOWED_TRANSITIONS[current]:
        raise InvalidTransition(
            f"return {rma.rma_number} cannot go from {current.value} to {new_status.value}"
        )
    mailed = rma.method == ReturnMethod.mail
    if current == RmaStatus.approved:
        if new_status == RmaStatus.label_issued and not mailed:
            raise InvalidTransition(
                f"return {rma.rma_number} is a {ReturnMethod(rma.method).value} return and gets no label"
            )
        if new_status in {RmaStatus.in_transit, RmaStatus.received} and mailed:
            raise InvalidTransition(
                f"return {rma.rma_number} needs its label before it can be {new_status.value}"
            )
    if current == RmaStatus.received and new_status != _TERMINAL_FOR[Resolution(rma.resolution)]:
        raise InvalidTransition(
            f"return {rma.rma_number} was requested as {Resolution(rma.resolution).value}, "
            f"so it cannot be {new_status.value}"
        )


async def load_rma_lines(
    session: AsyncSession, rma: ReturnAuthorization
) -> list[tuple[ReturnLine, OrderLine]]:
    """The RMA's lines with the order lines they return, in order-line order."""
    stmt = (
        select(ReturnLine, OrderLine)
        .join(OrderLine, col(OrderLine.id) == col(ReturnLine.order_line_id))
        .where(ReturnLine.rma_id == rma.id)
        .order_by(col(OrderLine.id))
    )
    return [(rl, ol) for rl, ol in (await session.exec(stmt)).all()]


def _append_note(rma: ReturnAuthorization, text: str | None) -> None:
    if text:
        joined = f"{rma.note}\n{text}" if rma.note else text
        rma.note = joined[-1000:]


_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


def _credit_code() -> str:
    raw = "".join(secrets.choice(_CODE_ALPHABET) for _ in range(12))
    return f"SC-{raw[:4]}-{raw[4:8]}-{raw[8:]}"


async def transition(
    session: AsyncSession,
    rma: ReturnAuthorization,
    new_status: RmaStatus | str,
    *,
    now: datetime | None = None,
    note: str | None = None,
    policy: ReturnPolicy | None = None,
) -> ReturnAuthorization:
    """Move ``rma`` to ``new_status`` and carry out what that status means.

    received → returned items are restocked; refunded → a ``Refund`` row (and the order's
    financial status follows); credited → a ``StoreCredit`` with a unique code; exchanged →
    the reserved replacements leave stock (recorded in the note); rejected/cancelled → an
    exchange's reservation is released. Raises ``InvalidTransition`` for anything else.
    """
    try:
        target = RmaStatus(new_status)
    except ValueError as exc:
        raise InvalidTransition(f"unknown return status {str(new_status)[:32]!r}") from exc
    now = now or utcnow()
    locked = (
        await session.exec(
            select(ReturnAuthorization)
            .where(ReturnAuthorization.id == rma.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    ).one()
    check_transition(locked, target)
    pairs = await load_rma_lines(session, locked)
    notes: list[str] = []

    if target == RmaStatus.label_issued:
        _apply_label(locked, policy or await load_policy(session), now)
    elif target == RmaStatus.received:
        policy = policy or await load_policy(session)
        notes.extend(await _restock_returned(session, pairs, policy))
    elif target == RmaStatus.refunded:
        await _record_refund(session, locked, now)
    elif target == RmaStatus.credited:
        session.add(
            StoreCredit(
                customer_id=locked.customer_id,
                rma_id=locked.id,
                code=_credit_code(),
                amount=locked.credit_amount,
                currency=locked.currency,
                created_at=now,
            )
        )
    elif target == RmaStatus.exchanged:
        for sku, quantity in _exchange_quantities(pairs).items():
            await ship_sku(session, sku, quantity)
            notes.append(f"Replacement shipped: {sku} x {quantity}")
    elif target in {RmaStatus.rejected, RmaStatus.cancelled}:
        for sku, quantity in _exchange_quantities(pairs).items():
            await release_sku(session, sku, quantity)

    locked.status = target
    setattr(locked, _TIMESTAMP[target], now)
    locked.updated_at = now
    extra = _clean_text(note)[:500]
    _append_note(locked, "\n".join([*notes, *([extra] if extra else [])]))
    session.add(locked)
    await session.flush()
    return locked


def _exchange_quantities(pairs: Sequence[tuple[ReturnLine, OrderLine]]) -> dict[str, int]:
    wanted: dict[str, int] = defaultdict(int)
    for rl, _ in pairs:
        if rl.exchange_sku:
            wanted[rl.exchange_sku] += rl.quantity
    return dict(sorted(wanted.items()))


async def _restock_returned(
    session: AsyncSession, pairs: Sequence[tuple[ReturnLine, OrderLine]], policy: ReturnPolicy
) -> list[str]:
    has_warehouse = (await session.exec(select(Warehouse.id).limit(1))).first() is not None
    notes: list[str] = []
    for rl, line in pairs:
        if not line.sku:
            continue
        sellable = rl.condition in policy.restock_conditions and rl.reason not in {
            ReturnReason.damaged,
            ReturnReason.defective,
        }
        if not sellable:
            notes.append(f"Not restocked ({rl.condition.value}, {rl.reason.value}): {line.sku} x {rl.quantity}")
        elif not has_warehouse:
            notes.append(f"Not restocked (no warehouse): {line.sku} x {rl.quantity}")
        else:
            await restock(session, line.sku, rl.quantity)
    return notes


async def _record_refund(session: AsyncSession, rma: ReturnAuthorization, now: datetime) -> None:
    order = (
        await session.exec(
            select(Order)
            .where(Order.id == rma.order_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    ).one()
    if rma.refund_amount > 0:
        session.add(
            Refund(
                order_id=rma.order_id,
                rma_id=rma.id,
                external_id=f"shopdesk:rma:{rma.rma_number}",
                amount=rma.refund_amount,
                currency=rma.currency,
                note=f"return {rma.rma_number}",
                processed_at=now,
            )
        )
        await session.flush()
    total_stmt = select(sa.func.coalesce(sa.func.sum(Refund.amount), 0)).where(
        Refund.order_id == order.id
    )
    refunded = Decimal(str((await session.exec(total_stmt)).one()))
    if refunded > 0 and order.financial_status in {
        FinancialStatus.paid,
        FinancialStatus.partially_paid,
        FinancialStatus.partially_refunded,
    }:
        order.financial_status = (
            FinancialStatus.refunded if refunded >= order.total_price else FinancialStatus.partially_refunded
        )
        order.updated_at = now
        session.add(order)


# --------------------------------------------------------------------------- customer view


@dataclass(frozen=True)
class MoneyMovement:
    """A refund or store credit for the bot's "where is my refund" answer.

    ``kind``: ``refund`` and ``store_credit`` have happened; ``pending_refund`` and
    ``pending_store_credit`` belong to returns still open (``status`` says where they are).
    """

    kind: Literal["refund", "store_credit", "pending_refund", "pending_store_credit"]
    amount: Decimal
    currency: str
    at: datetime
    order_name: str | None = None
    rma_number: str | None = None
    status: str | None = None
    code: str | None = None


_OPEN_STATUSES = [
    RmaStatus.requested,
    RmaStatus.approved,
    RmaStatus.label_issued,
    RmaStatus.in_transit,
    RmaStatus.received,
]


async def refunds_and_credits(session: AsyncSession, customer_id: int) -> list[MoneyMovement]:
    """Refunds of the customer's orders, their store credits and pending ones, newest first."""
    out: list[MoneyMovement] = []
    refunds = await session.exec(
        select(Refund, Order.name, ReturnAuthorization.rma_number)
        .join(Order, col(Order.id) == col(Refund.order_id))
        .outerjoin(ReturnAuthorization, col(ReturnAuthorization.id) == col(Refund.rma_id))
        .where(Order.customer_id == customer_id)
    )
    for refund, order_name, rma_number in refunds.all():
        out.append(
            MoneyMovement("refund", refund.amount, refund.currency, refund.processed_at, order_name, rma_number)
        )
    credits = await session.exec(
        select(StoreCredit, ReturnAuthorization.rma_number, Order.name)
        .outerjoin(ReturnAuthorization, col(ReturnAuthorization.id) == col(StoreCredit.rma_id))
        .outerjoin(Order, col(Order.id) == col(ReturnAuthorization.order_id))
        .where(StoreCredit.customer_id == customer_id)
    )
    for credit, rma_number, order_name in credits.all():
        out.append(
            MoneyMovement(
                "store_credit", credit.amount, credit.currency, credit.created_at, order_name, rma_number, code=credit.code
            )
        )
    pending = await session.exec(
        select(ReturnAuthorization, Order.name)
        .join(Order, col(Order.id) == col(ReturnAuthorization.order_id))
        .where(
            Order.customer_id == customer_id,
            col(ReturnAuthorization.status).in_(_OPEN_STATUSES),
            col(ReturnAuthorization.resolution).in_([Resolution.refund, Resolution.store_credit]),
        )
    )
    for rma, order_name in pending.all():
        is_credit = rma.resolution == Resolution.store_credit
        out.append(
            MoneyMovement(
                "pending_store_credit" if is_credit else "pending_refund",
                rma.credit_amount if is_credit else rma.refund_amount,
                rma.currency,
                rma.updated_at,
                order_name,
                rma.rma_number,
                status=RmaStatus(rma.status).value,
            )
        )
    out.sort(key=lambda m: m.at, reverse=True)
    return out

"""Creating a return (RMA): the request's items, refund/credit amounts and the checks against the policy."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from babel.numbers import get_currency_precision
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from ordersvc.inventory import locked_available, reserve_sku
from ordersvc.models import (
    ItemCondition,
    Order,
    OrderLine,
    Resolution,
    ReturnAuthorization,
    ReturnLine,
    ReturnMethod,
    ReturnReason,
    RmaStatus,
)
from ordersvc.returns.eligibility import exchange_options, line_eligibility, load_order_facts
from ordersvc.returns.labels import apply_label
from ordersvc.returns.policy import ReturnPolicy, load_policy
from shopbase.clock import utcnow
from shopbase.refusal import Refused
from shopbase.rows import locked as locked_row
from shopbase.text import clean_text


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
        return clean_text(value) or None


@dataclass(frozen=True)
class RmaProblem:
    """One reason a return request was refused; ``code`` is machine-readable."""

    code: str
    order_line_id: int | None = None
    detail: str = ""

    def describe(self) -> str:
        """``code`` in words, with the detail: ``window expired (2025-05-31)``."""
        return self.code.replace("_", " ") + (f" ({self.detail})" if self.detail else "")


@dataclass(frozen=True)
class NewRma:
    """A recorded return request: the RMA and its lines."""

    rma: ReturnAuthorization
    lines: list[ReturnLine]


#: problems with the request itself (422); the others come from the order's state (409)
_REQUEST_PROBLEMS = frozenset(
    {
        "invalid_item",
        "invalid_resolution",
        "invalid_method",
        "no_items",
        "duplicate_line",
        "unknown_line",
        "exchange_sku_required",
        "exchange_sku_unexpected",
    }
)


def _refused(problems: Sequence[RmaProblem]) -> Refused:
    """The refusal of a request: the first problem's code, up to four problems in the message,
    every problem in ``details["problems"]``."""
    first = problems[0]
    return Refused(
        first.code,
        "; ".join(p.describe() for p in problems[:4]),
        status=422 if first.code in _REQUEST_PROBLEMS else 409,
        problems=tuple(problems),
    )


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


@dataclass(frozen=True)
class AmountExplanation:
    """How a return's refund or store credit is made up (the rules of :func:`compute_amounts`):
    the items' price after their discount, minus the restocking fee and the return shipping fee
    (both waived when the shop is at fault), plus the store-credit bonus. Tax and the order's
    original shipping are never part of it."""

    items: Decimal
    restocking_fee: Decimal
    return_shipping_fee: Decimal
    bonus: Decimal
    total: Decimal
    shop_fault: bool
    currency: str


def explain_amounts(
    items: Sequence[tuple[ReturnReason | str, int, OrderLine]],
    resolution: Resolution,
    method: ReturnMethod,
    policy: ReturnPolicy,
    currency: str,
) -> AmountExplanation:
    """The parts of the amount :func:`compute_amounts` gives for ``(reason, quantity, line)`` items."""
    shop_fault = any(ReturnReason(reason) in policy.shop_fault_reasons for reason, _, _ in items)
    value = sum((_item_value(line, quantity) for _, quantity, line in items), Decimal("0"))
    zero = Decimal("0")
    if resolution == Resolution.exchange:
        return AmountExplanation(_round(value, currency), zero, zero, zero, zero, shop_fault, currency)
    restocking = zero if shop_fault else value * policy.restocking_fee_percent / 100
    shipping = policy.return_shipping_fee if (not shop_fault and method == ReturnMethod.mail) else zero
    base = _round(max(value - restocking - shipping, zero), currency)
    bonus = zero
    total = base
    if resolution == Resolution.store_credit:
        total = _round(base * (1 + policy.resolutions.store_credit_bonus_percent / 100), currency)
        bonus = total - base
    return AmountExplanation(_round(value, currency), _round(restocking, currency), _round(shipping, currency),
                             bonus, total, shop_fault, currency)


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


def _coerce_items(items: Iterable[ReturnItem | Mapping[str, Any]]) -> tuple[list[ReturnItem], list[RmaProblem]]:
    parsed: list[ReturnItem] = []
    problems: list[RmaProblem] = []
    for raw in items:
        try:
            parsed.append(raw if isinstance(raw, ReturnItem) else ReturnItem.model_validate(raw))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ()))
            problems.append(RmaProblem("invalid_item", None, f"{where}: {first.get('msg', 'invalid')}"))
    return parsed, problems


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
    waive: frozenset[str] = frozenset(),
) -> NewRma:
    """Validate a return request against the policy and record it (the caller commits).

    Raises :class:`~shopbase.refusal.Refused` when the request breaks the policy; nothing
    is written then, ``code`` is the first problem and ``details["problems"]`` lists every
    problem found (:class:`RmaProblem`). ``waive``: policy refusals a person overrides
    (``eligibility.OVERRIDABLE``; the caller checks the permission and audits). On success
    the RMA is ``requested``; with automatic approval it is ``approved``, and a mailed
    return then gets its label (``label_issued``). An exchange reserves the replacement.
    """
    now = now or utcnow()
    policy = policy or await load_policy(session)
    parsed, problems = _coerce_items(items)
    try:
        resolution = Resolution(resolution)
    except ValueError:
        problems.append(RmaProblem("invalid_resolution", None, str(resolution)[:32]))
    try:
        method = ReturnMethod(method)
    except ValueError:
        problems.append(RmaProblem("invalid_method", None, str(method)[:32]))
    if not parsed and not problems:
        problems.append(RmaProblem("no_items"))
    if problems:
        raise _refused(problems)
    assert isinstance(resolution, Resolution) and isinstance(method, ReturnMethod)

    if not policy.allows_resolution(resolution):
        problems.append(RmaProblem("resolution_not_allowed", None, resolution.value))
    if not policy.allows_method(method):
        problems.append(RmaProblem("method_not_enabled", None, method.value))

    # lock the order so two requests for the same order are checked one after the other
    locked = await locked_row(session, Order, order.id)
    facts = await load_order_facts(session, locked)
    lines_by_id = {line.id: line for line in facts.lines}
    eligibility = {
        e.order_line_id: e
        for e in line_eligibility(
            locked,
            facts.lines,
            facts.shipments,
            facts.returns,
            policy,
            now,
            shipment_lines=facts.shipment_lines,
            waive=waive,
        )
    }

    seen: set[int] = set()
    chosen: list[tuple[ReturnItem, OrderLine]] = []
    wanted_stock: dict[str, int] = defaultdict(int)
    for item in parsed:
        line_id = item.order_line_id
        if line_id in seen:
            problems.append(RmaProblem("duplicate_line", line_id))
            continue
        seen.add(line_id)
        line = lines_by_id.get(line_id)
        if line is None:
            problems.append(RmaProblem("unknown_line", line_id))
            continue
        verdict = eligibility[line_id]
        if not verdict.eligible:
            detail = verdict.deadline.date().isoformat() if verdict.reason == "window_expired" and verdict.deadline else ""
            problems.append(RmaProblem(verdict.reason or "not_eligible", line_id, detail))
            continue
        if item.quantity > verdict.max_quantity:
            problems.append(RmaProblem("quantity_exceeded", line_id, f"at most {verdict.max_quantity}"))
            continue
        if not policy.accepts_condition(item.reason, item.condition):
            problems.append(
                RmaProblem("condition_not_accepted", line_id, f"{item.reason.value}/{item.condition.value}")
            )
            continue
        if resolution == Resolution.exchange:
            if not item.exchange_sku:
                problems.append(RmaProblem("exchange_sku_required", line_id))
                continue
            options = {v.sku for v in await exchange_options(session, line)}
            if item.exchange_sku not in options:
                problems.append(RmaProblem("exchange_sku_invalid", line_id, item.exchange_sku))
                continue
            wanted_stock[item.exchange_sku] += item.quantity
        elif item.exchange_sku:
            problems.append(RmaProblem("exchange_sku_unexpected", line_id))
            continue
        chosen.append((item, line))

    if wanted_stock and not problems:
        stock = await locked_available(session, list(wanted_stock))
        for sku, quantity in sorted(wanted_stock.items()):
            if stock.get(sku, 0) < quantity:
                problems.append(RmaProblem("exchange_out_of_stock", None, sku))
    if problems:
        raise _refused(problems)

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
            apply_label(rma, policy, now)
    await session.flush()
    return NewRma(rma=rma, lines=rma_lines)

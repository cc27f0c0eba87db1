"""Return policy, eligibility, RMA creation and lifecycle."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from ordersvc_builders import (
    T0,
    make_customer,
    make_level,
    make_order,
    make_shipment,
    make_variants,
    make_warehouse,
)
from pydantic import ValidationError
from sqlmodel import func, select

from ordersvc.models import (
    FinancialStatus,
    InventoryLevel,
    ItemCondition,
    Order,
    OrderLine,
    Refund,
    Resolution,
    ReturnAuthorization,
    ReturnLine,
    ReturnMethod,
    ReturnReason,
    RmaStatus,
    Shipment,
    ShipmentLine,
    SourceChannel,
    StoreCredit,
)
from ordersvc.returns import (
    DEFAULT_RETURN_POLICY,
    ProductTypeRule,
    ReturnItem,
    ReturnPolicy,
    create_rma,
    exchange_options,
    line_eligibility,
    load_policy,
    load_rma_lines,
    refunds_and_credits,
    save_policy,
    transition,
)
from ordersvc.tracking import Carrier, ShipmentStatus, find_tracking_numbers
from shopbase.refusal import Refused

UTC = UTC
DELIVERED = datetime(2025, 5, 1, 14, 0, tzinfo=UTC)

# --------------------------------------------------------------------------- eligibility (pure)


def _order(**fields) -> Order:
    return Order(id=1, external_id="1", name="#1001", **fields)


def _line(line_id: int = 10, **fields) -> OrderLine:
    fields.setdefault("quantity", 2)
    fields.setdefault("sku", f"SKU-{line_id}")
    return OrderLine(id=line_id, order_id=1, title=f"Line {line_id}", **fields)


def _shipment(shipment_id: int = 100, **fields) -> Shipment:
    fields.setdefault("status", ShipmentStatus("delivered") if fields.get("delivered_at") else ShipmentStatus("in_transit"))
    return Shipment(id=shipment_id, order_id=1, external_id=str(shipment_id), **fields)


def _one(lines, shipments, now, *, order=None, returns=(), policy=DEFAULT_RETURN_POLICY, shipment_lines=()):
    return line_eligibility(
        order or _order(), lines, shipments, returns, policy, now, shipment_lines=shipment_lines
    )


def test_window_counts_thirty_calendar_days_from_delivery() -> None:
    shipments = [_shipment(delivered_at=DELIVERED)]
    day30 = datetime(2025, 5, 31, 23, 59, 0, tzinfo=UTC)
    day31 = datetime(2025, 6, 1, 0, 0, 1, tzinfo=UTC)
    [ok] = _one([_line()], shipments, day30)
    assert (ok.eligible, ok.max_quantity) == (True, 2)
    assert ok.deadline == datetime(2025, 5, 31, 23, 59, 59, tzinfo=UTC)
    [late] = _one([_line()], shipments, day31)
    assert (late.eligible, late.reason, late.max_quantity) == (False, "window_expired", 0)
    assert late.deadline is not None and late.deadline.date().isoformat() == "2025-05-31"


def test_undelivered_shipment_is_presumed_delivered_a_week_after_shipping() -> None:
    shipped = datetime(2025, 5, 1, 9, 0, tzinfo=UTC)
    shipments = [_shipment(shipped_at=shipped)]
    [early] = _one([_line()], shipments, shipped + timedelta(days=3))
    assert (early.eligible, early.reason) == (False, "not_delivered")
    [later] = _one([_line()], shipments, shipped + timedelta(days=8))
    assert later.eligible
    assert later.deadline == datetime(2025, 6, 7, 23, 59, 59, tzinfo=UTC)  # 8 May + 30 days
    stuck = [_shipment(shipped_at=shipped, status=ShipmentStatus("exception"))]
    [problem] = _one([_line()], stuck, shipped + timedelta(days=20))
    assert problem.reason == "not_delivered"


def test_not_delivered_without_shipments_except_point_of_sale() -> None:
    now = T0 + timedelta(days=2)
    [online] = _one([_line()], [], now)
    assert online.reason == "not_delivered"
    [pos] = _one([_line()], [], now, order=_order(source=SourceChannel.pos, placed_at=T0))
    assert pos.eligible


def test_refusal_reasons() -> None:
    now = DELIVERED + timedelta(days=5)
    shipments = [_shipment(delivered_at=DELIVERED)]
    lines = [
        _line(1, final_sale=True),
        _line(2, returnable=False),
        _line(3, product_type="Gift Cards"),
        _line(4),
    ]
    policy = ReturnPolicy(product_types={"gift cards": ProductTypeRule(returnable=False)})
    verdicts = _one(lines, shipments, now, policy=policy)
    assert [(v.order_line_id, v.reason) for v in verdicts] == [
        (1, "final_sale"),
        (2, "not_returnable"),
        (3, "not_returnable"),
        (4, None),
    ]
    lenient = ReturnPolicy(final_sale_excluded=False)
    assert _one([_line(1, final_sale=True)], shipments, now, policy=lenient)[0].eligible
    cancelled = _one([_line(4)], shipments, now, order=_order(cancelled_at=T0))
    assert cancelled[0].reason == "order_cancelled"


def test_product_type_window_override() -> None:
    policy = ReturnPolicy(product_types={"Electronics": ProductTypeRule(window_days=14)})
    shipments = [_shipment(delivered_at=DELIVERED)]
    lines = [_line(1, product_type="electronics"), _line(2, product_type="Apparel")]
    verdicts = _one(lines, shipments, DELIVERED + timedelta(days=20), policy=policy)
    assert [(v.eligible, v.reason) for v in verdicts] == [(False, "window_expired"), (True, None)]
    assert verdicts[0].deadline == datetime(2025, 5, 15, 23, 59, 59, tzinfo=UTC)


def test_already_returned_counts_only_active_returns() -> None:
    shipments = [_shipment(delivered_at=DELIVERED)]
    now = DELIVERED + timedelta(days=3)

    def rma(status: RmaStatus, quantity: int):
        return (ReturnAuthorization(id=1, rma_number="R1-1", order_id=1, status=status), [
            ReturnLine(rma_id=1, order_line_id=10, quantity=quantity)
        ])

    [partly] = _one([_line(10)], shipments, now, returns=[rma(RmaStatus.approved, 1)])
    assert (partly.eligible, partly.max_quantity, partly.returned_quantity) == (True, 1, 1)
    [fully] = _one([_line(10)], shipments, now, returns=[rma(RmaStatus.received, 1), rma(RmaStatus.refunded, 1)])
    assert (fully.eligible, fully.reason) == (False, "already_returned")
    [ignored] = _one([_line(10)], shipments, now, returns=[rma(RmaStatus.rejected, 2), rma(RmaStatus.cancelled, 2)])
    assert ignored.max_quantity == 2


def test_shipment_lines_limit_returns_to_delivered_units() -> None:
    line = _line(10, quantity=3)
    shipments = [_shipment(100, delivered_at=DELIVERED), _shipment(101, shipped_at=DELIVERED)]
    mapping = [
        ShipmentLine(shipment_id=100, order_line_id=10, quantity=2),
        ShipmentLine(shipment_id=101, order_line_id=10, quantity=1),
    ]
    [verdict] = _one([line], shipments, DELIVERED + timedelta(days=1), shipment_lines=mapping)
    assert (verdict.eligible, verdict.max_quantity) == (True, 2)
    # without the mapping the order is not fully delivered yet
    [unknown] = _one([line], shipments, DELIVERED + timedelta(days=1))
    assert unknown.reason == "not_delivered"


def test_policy_validation() -> None:
    with pytest.raises(ValidationError):
        ReturnPolicy(window_days=-1)
    with pytest.raises(ValidationError):
        ReturnPolicy(approval="sometimes")
    with pytest.raises(ValidationError):
        ReturnPolicy.model_validate({"windowdays": 10})
    policy = ReturnPolicy(allowed_conditions={ReturnReason.changed_mind: [ItemCondition.unopened]})
    assert not policy.accepts_condition(ReturnReason.changed_mind, ItemCondition.like_new)
    assert policy.accepts_condition(ReturnReason.too_small, ItemCondition.used)  # not listed: any


# --------------------------------------------------------------------------- database helpers


NOW = DELIVERED + timedelta(days=5)


async def _delivered_order(s, lines=None, **fields):
    customer = await make_customer(s)
    order, rows = await make_order(
        s,
        lines or [{"sku": "TEE-M", "quantity": 2, "unit_price": "20.00", "total_discount": "4.00"}],
        customer=customer,
        **fields,
    )
    await make_shipment(s, order, delivered_at=DELIVERED)
    return customer, order, rows


def _item(line: OrderLine, quantity: int = 1, **fields) -> ReturnItem:
    fields.setdefault("reason", ReturnReason.too_small)
    fields.setdefault("condition", ItemCondition.unopened)
    return ReturnItem(order_line_id=line.id, quantity=quantity, **fields)


async def _count(sessions, model) -> int:
    async with sessions() as s:
        return (await s.exec(select(func.count()).select_from(model))).one()


# --------------------------------------------------------------------------- policy storage


async def test_policy_round_trips_through_shop_settings(sessions) -> None:
    async with sessions() as s:
        assert await load_policy(s) == DEFAULT_RETURN_POLICY
        policy = ReturnPolicy(
            window_days=45,
            approval="manual",
            restocking_fee_percent=Decimal("12.5"),
            product_types={"Swimwear": ProductTypeRule(returnable=False)},
        )
        await save_policy(s, policy)
        await s.commit()
    async with sessions() as s:
        loaded = await load_policy(s)
    assert loaded == policy
    assert loaded.restocking_fee_percent == Decimal("12.5")
    assert loaded.rule_for("SWIMWEAR") == ProductTypeRule(returnable=False)


async def test_a_policy_broken_after_it_was_built_is_refused_and_not_stored(sessions) -> None:
    policy = ReturnPolicy()
    policy.window_days = -5  # attribute assignment is not validated
    async with sessions() as s:
        with pytest.raises(Refused) as refused:
            await save_policy(s, policy)
        await s.commit()
    assert (refused.value.code, refused.value.status) == ("invalid_policy", 422)
    assert list(refused.value.fields) == ["window_days"]
    async with sessions() as s:
        assert await load_policy(s) == DEFAULT_RETURN_POLICY


# --------------------------------------------------------------------------- create_rma


async def test_refund_request_is_approved_and_gets_a_valid_label(sessions) -> None:
    policy = ReturnPolicy(restocking_fee_percent=Decimal("10"))
    async with sessions() as s:
        _, order, [line] = await _delivered_order(s)
        result = await create_rma(s, order, [_item(line, 2)], "refund", "mail", now=NOW, policy=policy)
        await s.commit()
    rma = result.rma
    assert rma.rma_number == "R1001-1"
    # 2 × 20.00 − 4.00 discount = 36.00, minus 10 % restocking fee = 32.40
    assert (rma.refund_amount, rma.credit_amount) == (Decimal("32.40"), Decimal("0"))
    assert rma.status == RmaStatus.label_issued
    assert rma.requested_at == rma.approved_at == rma.label_issued_at == NOW
    assert rma.label_carrier == "ups"
    found = find_tracking_numbers(f"your label: {rma.label_tracking_number}")
    assert [(m.carrier, m.number) for m in found] == [(Carrier.UPS, rma.label_tracking_number)]

    async with sessions() as s:
        stored = (await s.exec(select(ReturnAuthorization))).one()
        assert stored.refund_amount == Decimal("32.40")
        pairs = await load_rma_lines(s, stored)
        assert [(rl.quantity, rl.reason, ol.sku) for rl, ol in pairs] == [(2, ReturnReason.too_small, "TEE-M")]

    # the same line cannot be returned again; a second RMA on another line gets the next number
    async with sessions() as s:
        order = await s.get(Order, order.id)
        with pytest.raises(Refused) as refused:
            await create_rma(s, order, [_item(line, 1)], "refund", "mail", now=NOW, policy=policy)
    assert (refused.value.code, refused.value.status) == ("already_returned", 409)


async def test_rma_numbers_count_up_per_order(sessions) -> None:
    async with sessions() as s:
        _, order, lines = await _delivered_order(
            s,
            [{"sku": "A", "quantity": 1, "unit_price": "5"}, {"sku": "B", "quantity": 1, "unit_price": "5"}],
            name="SO-77",
        )
        first = await create_rma(s, order, [_item(lines[0])], "refund", "mail", now=NOW)
        second = await create_rma(s, order, [_item(lines[1])], "refund", "mail", now=NOW)
        await s.commit()
    assert (first.rma.rma_number, second.rma.rma_number) == ("R77-1", "R77-2")
    assert first.rma.label_tracking_number != second.rma.label_tracking_number


async def test_store_credit_gets_the_bonus_and_shop_fault_waives_fees(sessions) -> None:
    policy = ReturnPolicy(restocking_fee_percent=Decimal("10"), return_shipping_fee=Decimal("5"))
    async with sessions() as s:
        _, order, lines = await _delivered_order(
            s, [{"sku": "A", "quantity": 1, "unit_price": "50.00"}, {"sku": "B", "quantity": 1, "unit_price": "30.00"}]
        )
        plain = await create_rma(s, order, [_item(lines[0])], "store_credit", "mail", now=NOW, policy=policy)
        faulty = await create_rma(
            s, order, [_item(lines[1], reason=ReturnReason.defective, condition=ItemCondition.used)],
            Resolution.store_credit, ReturnMethod.mail, now=NOW, policy=policy,
        )
        await s.commit()
    # (50 − 10 % − 5 shipping) × 1.10 = 44.00; defective: 30 × 1.10 = 33.00
    assert (plain.rma.refund_amount, plain.rma.credit_amount) == (Decimal("0"), Decimal("44.00"))
    assert faulty.rma.credit_amount == Decimal("33.00")


async def test_exchange_reserves_the_replacement(sessions) -> None:
    async with sessions() as s:
        main = await make_warehouse(s)
        await make_variants(s, "tee", ["TEE-S", "TEE-M", "TEE-L"])
        await make_variants(s, "cap", ["CAP-1"])
        await make_level(s, main, "TEE-L", 3)
        await make_level(s, main, "TEE-S", 0)
        await make_level(s, main, "CAP-1", 9)
        _, order, [line] = await _delivered_order(s)
        assert [v.sku for v in await exchange_options(s, line)] == ["TEE-L"]
        result = await create_rma(
            s, order, [_item(line, 2, exchange_sku="TEE-L")], "exchange", "mail", now=NOW
        )
        await s.commit()
    assert (result.rma.refund_amount, result.rma.credit_amount) == (Decimal("0"), Decimal("0"))
    assert result.lines[0].exchange_sku == "TEE-L"
    async with sessions() as s:
        level = (await s.exec(select(InventoryLevel).where(InventoryLevel.sku == "TEE-L"))).one()
        assert (level.on_hand, level.reserved) == (3, 2)


@pytest.mark.parametrize(
    ("sku", "quantity", "code"),
    [
        ("TEE-S", 1, "exchange_sku_invalid"),  # out of stock: not an option
        ("TEE-L", 2, "exchange_out_of_stock"),  # only one left
        ("CAP-1", 1, "exchange_sku_invalid"),  # another product
        (None, 1, "exchange_sku_required"),
    ],
)
async def test_exchange_refusals_write_nothing(sessions, sku, quantity, code) -> None:
    async with sessions() as s:
        main = await make_warehouse(s)
        await make_variants(s, "tee", ["TEE-S", "TEE-M", "TEE-L"])
        await make_variants(s, "cap", ["CAP-1"])
        await make_level(s, main, "TEE-L", 1)
        await make_level(s, main, "TEE-S", 0)
        await make_level(s, main, "CAP-1", 9)
        _, order, [line] = await _delivered_order(s)
        await s.commit()
    async with sessions() as s:
        order = await s.get(Order, order.id)
        with pytest.raises(Refused) as refused:
            await create_rma(s, order, [_item(line, quantity, exchange_sku=sku)], "exchange", "mail", now=NOW)
        await s.commit()
    assert refused.value.code == code
    assert await _count(sessions, ReturnAuthorization) == 0
    async with sessions() as s:
        level = (await s.exec(select(InventoryLevel).where(InventoryLevel.sku == "TEE-L"))).one()
        assert level.reserved == 0


async def test_manual_approval_stays_requested_until_an_agent_approves(sessions) -> None:
    policy = ReturnPolicy(approval="manual")
    async with sessions() as s:
        await save_policy(s, policy)
        _, order, [line] = await _delivered_order(s)
        result = await create_rma(s, order, [_item(line)], "refund", "mail", now=NOW)
        await s.commit()
    rma = result.rma
    assert rma.status == RmaStatus.requested
    assert rma.approved_at is None and rma.label_tracking_number is None
    later = NOW + timedelta(hours=2)
    async with sessions() as s:
        rma = await transition(s, rma, RmaStatus.approved, now=later, note="looks fine")
        rma = await transition(s, rma, "label_issued", now=later + timedelta(minutes=1))
        await s.commit()
    assert rma.approved_at == later and rma.note == "looks fine"
    assert rma.status == RmaStatus.label_issued and rma.label_issued_at == later + timedelta(minutes=1)
    assert [m.number for m in find_tracking_numbers(rma.label_tracking_number)] == [rma.label_tracking_number]


async def test_usps_account_issues_usps_numbers(sessions) -> None:
    policy = ReturnPolicy.model_validate({"label": {"carrier": "usps"}})
    async with sessions() as s:
        _, order, [line] = await _delivered_order(s)
        result = await create_rma(s, order, [_item(line)], "refund", "mail", now=NOW, policy=policy)
    assert result.rma.label_carrier == "usps"
    assert [m.carrier for m in find_tracking_numbers(result.rma.label_tracking_number)] == [Carrier.USPS]


@pytest.mark.parametrize(
    ("items", "resolution", "method", "policy", "code"),
    [
        (lambda line: [_item(line, 3)], "refund", "mail", DEFAULT_RETURN_POLICY, "quantity_exceeded"),
        (lambda line: [_item(line, reason=ReturnReason.changed_mind, condition=ItemCondition.used)], "refund", "mail",
         DEFAULT_RETURN_POLICY, "condition_not_accepted"),
        (lambda line: [_item(line)], "refund", "dropoff", DEFAULT_RETURN_POLICY, "method_not_enabled"),
        (lambda line: [_item(line)], "store_credit", "mail",
         ReturnPolicy.model_validate({"resolutions": {"store_credit": False}}), "resolution_not_allowed"),
        (lambda line: [_item(line), _item(line)], "refund", "mail", DEFAULT_RETURN_POLICY, "duplicate_line"),
        (lambda line: [ReturnItem(order_line_id=999_999, quantity=1, reason="other")], "refund", "mail",
         DEFAULT_RETURN_POLICY, "unknown_line"),
        (lambda line: [_item(line, exchange_sku="TEE-L")], "refund", "mail", DEFAULT_RETURN_POLICY, "exchange_sku_unexpected"),
        (lambda line: [{"order_line_id": line.id, "quantity": 0, "reason": "other"}], "refund", "mail",
         DEFAULT_RETURN_POLICY, "invalid_item"),
        (lambda line: [], "refund", "mail", DEFAULT_RETURN_POLICY, "no_items"),
        (lambda line: [_item(line)], "cash", "mail", DEFAULT_RETURN_POLICY, "invalid_resolution"),
    ],
)
async def test_invalid_requests_are_refused_and_write_nothing(sessions, items, resolution, method, policy, code) -> None:
    async with sessions() as s:
        _, order, [line] = await _delivered_order(s)
        await s.commit()
    async with sessions() as s:
        order = await s.get(Order, order.id)
        with pytest.raises(Refused) as refused:
            await create_rma(s, order, items(line), resolution, method, now=NOW, policy=policy)
        await s.commit()  # a refusal wrote nothing, even when the caller commits
    assert code in [e.code for e in refused.value.details["problems"]]
    assert refused.value.status in {409, 422}
    assert await _count(sessions, ReturnAuthorization) == 0
    assert await _count(sessions, ReturnLine) == 0


async def test_expired_window_refusal_names_the_closing_date(sessions) -> None:
    async with sessions() as s:
        _, order, [line] = await _delivered_order(s)
        with pytest.raises(Refused) as refused:
            await create_rma(s, order, [_item(line)], "refund", "mail", now=DELIVERED + timedelta(days=31))
    assert [(e.code, e.detail) for e in refused.value.details["problems"]] == [("window_expired", "2025-05-31")]
    assert (refused.value.code, refused.value.message) == ("window_expired", "window expired (2025-05-31)")


# --------------------------------------------------------------------------- lifecycle


async def _issued(sessions, resolution="refund", *, item_fields=None, lines=None):
    async with sessions() as s:
        main = await make_warehouse(s)
        await make_level(s, main, "TEE-M", 4)
        await make_level(s, main, "TEE-L", 5)
        await make_variants(s, "tee", ["TEE-M", "TEE-L"])
        customer, order, rows = await _delivered_order(s, lines)
        fields = item_fields or {}
        if resolution == "exchange":
            fields.setdefault("exchange_sku", "TEE-L")
        result = await create_rma(s, order, [_item(rows[0], 2, **fields)], resolution, "mail", now=NOW)
        await s.commit()
    return customer, order, result.rma


async def _walk(sessions, rma, *statuses, start=NOW):
    async with sessions() as s:
        for i, status in enumerate(statuses, 1):
            rma = await transition(s, rma, status, now=start + timedelta(days=i))
        await s.commit()
    return rma


async def test_refund_lifecycle_sets_timestamps_restocks_and_refunds(sessions) -> None:
    customer, order, rma = await _issued(sessions)
    rma = await _walk(sessions, rma, "in_transit", "received", "refunded")
    assert rma.status == RmaStatus.refunded
    assert (rma.in_transit_at, rma.received_at, rma.refunded_at) == (
        NOW + timedelta(days=1), NOW + timedelta(days=2), NOW + timedelta(days=3),
    )
    async with sessions() as s:
        level = (await s.exec(select(InventoryLevel).where(InventoryLevel.sku == "TEE-M"))).one()
        assert level.on_hand == 6  # 4 + the 2 returned, unopened
        [refund] = (await s.exec(select(Refund))).all()
        assert (refund.amount, refund.rma_id) == (Decimal("36.00"), rma.id)
        assert (await s.get(Order, order.id)).financial_status == FinancialStatus.refunded
        movements = await refunds_and_credits(s, customer.id)
    assert [(m.kind, m.amount, m.rma_number, m.order_name) for m in movements] == [
        ("refund", Decimal("36.00"), rma.rma_number, "#1001")
    ]


async def test_damaged_items_are_not_restocked(sessions) -> None:
    _, _, rma = await _issued(sessions, item_fields={"reason": ReturnReason.damaged, "condition": ItemCondition.damaged})
    rma = await _walk(sessions, rma, "in_transit", "received")
    async with sessions() as s:
        level = (await s.exec(select(InventoryLevel).where(InventoryLevel.sku == "TEE-M"))).one()
        assert level.on_hand == 4
    assert "Not restocked" in (rma.note or "")


async def test_store_credit_lifecycle_creates_a_unique_credit(sessions) -> None:
    customer, _, rma = await _issued(sessions, "store_credit")
    async with sessions() as s:
        pending = await refunds_and_credits(s, customer.id)
    assert [(m.kind, m.amount, m.status) for m in pending] == [("pending_store_credit", Decimal("39.60"), "label_issued")]
    rma = await _walk(sessions, rma, "in_transit", "received", "credited")
    assert rma.credited_at == NOW + timedelta(days=3)
    async with sessions() as s:
        [credit] = (await s.exec(select(StoreCredit))).all()
        movements = await refunds_and_credits(s, customer.id)
    assert (credit.amount, credit.customer_id, credit.rma_id) == (Decimal("39.60"), customer.id, rma.id)
    assert credit.code.startswith("SC-") and len(credit.code) == 17
    assert [(m.kind, m.code) for m in movements] == [("store_credit", credit.code)]


async def test_exchange_lifecycle_ships_the_replacement(sessions) -> None:
    _, _, rma = await _issued(sessions, "exchange")
    rma = await _walk(sessions, rma, "in_transit", "received", "exchanged")
    assert rma.exchanged_at is not None and "Replacement shipped: TEE-L x 2" in rma.note
    async with sessions() as s:
        level = (await s.exec(select(InventoryLevel).where(InventoryLevel.sku == "TEE-L"))).one()
        assert (level.on_hand, level.reserved) == (3, 0)


async def test_cancelling_an_exchange_releases_the_replacement(sessions) -> None:
    _, _, rma = await _issued(sessions, "exchange")
    rma = await _walk(sessions, rma, "cancelled")
    assert rma.cancelled_at == NOW + timedelta(days=1)
    async with sessions() as s:
        level = (await s.exec(select(InventoryLevel).where(InventoryLevel.sku == "TEE-L"))).one()
        assert (level.on_hand, level.reserved) == (5, 0)
    # the items can be asked for again
    async with sessions() as s:
        order = await s.get(Order, rma.order_id)
        line = (await s.exec(select(OrderLine).where(OrderLine.order_id == order.id))).one()
        again = await create_rma(s, order, [_item(line, 2)], "refund", "mail", now=NOW)
    assert again.rma.rma_number.endswith("-2")


@pytest.mark.parametrize(
    ("path", "forbidden"),
    [
        ((), "received"),  # label_issued → received skips in_transit
        ((), "refunded"),
        ((), "approved"),  # already past approval
        ((), "label_issued"),  # same status
        (("in_transit",), "cancelled"),  # on its way: too late to cancel
        (("in_transit", "received"), "credited"),  # resolution is refund
        (("in_transit", "received", "refunded"), "received"),
        (("rejected",), "approved"),
        ((), "lost"),
    ],
)
async def test_forbidden_transitions_raise_and_change_nothing(sessions, path, forbidden) -> None:
    _, _, rma = await _issued(sessions)
    rma = await _walk(sessions, rma, *path)
    before = rma.status
    async with sessions() as s:
        with pytest.raises(Refused, match=rma.rma_number if forbidden != "lost" else "unknown"):
            await transition(s, rma, forbidden, now=NOW + timedelta(days=9))
    async with sessions() as s:
        stored = await s.get(ReturnAuthorization, rma.id)
        assert stored.status == before
    assert await _count(sessions, Refund) == (1 if "refunded" in path else 0)


async def test_drop_off_returns_skip_the_label(sessions) -> None:
    policy = ReturnPolicy.model_validate({"methods": {"dropoff": True, "dropoff_locations": "Any partner kiosk"}})
    async with sessions() as s:
        await save_policy(s, policy)
        _, order, [line] = await _delivered_order(s)
        result = await create_rma(s, order, [_item(line)], "refund", "dropoff", now=NOW)
        await s.commit()
    rma = result.rma
    assert rma.status == RmaStatus.approved and rma.label_tracking_number is None
    async with sessions() as s:
        with pytest.raises(Refused, match="no label"):
            await transition(s, rma, "label_issued")
    rma = await _walk(sessions, rma, "received", "refunded")
    assert rma.status == RmaStatus.refunded


async def test_concurrent_requests_for_the_same_items_create_one_rma(sessions, db_url) -> None:
    import asyncio

    async with sessions() as s:
        _, order, [line] = await _delivered_order(s)
        await s.commit()
    if db_url.startswith("sqlite"):
        await _sqlite_race_keeps_one_rma(sessions, order, line)
        return
    async with sessions() as first, sessions() as second:
        won = await create_rma(first, await first.get(Order, order.id), [_item(line, 2)], "refund", "mail", now=NOW)
        assert won.rma.id is not None
        racing = asyncio.ensure_future(
            create_rma(second, await second.get(Order, order.id), [_item(line, 2)], "refund", "mail", now=NOW)
        )
        await asyncio.sleep(0.2)
        assert not racing.done()  # waiting for the order row lock
        await first.commit()
        with pytest.raises(Refused) as refused:
            await racing
        await second.commit()
    assert refused.value.code == "already_returned"
    assert await _count(sessions, ReturnAuthorization) == 1


async def _sqlite_race_keeps_one_rma(sessions, order, line) -> None:  # type: ignore[no-untyped-def]
    """SQLite runs one connection per engine (shopdesk.sqlite_inline): a second request's
    transaction waits for the first one's commit, then sees its RMA and is refused."""
    import asyncio

    async def second_request() -> str | None:
        async with sessions() as second:
            try:
                await create_rma(second, await second.get(Order, order.id), [_item(line, 2)], "refund", "mail", now=NOW)
                await second.commit()
            except Refused as refused:
                return refused.code
        return None

    async with sessions() as first:
        won = await create_rma(first, await first.get(Order, order.id), [_item(line, 2)], "refund", "mail", now=NOW)
        assert won.rma.id is not None
        racing = asyncio.ensure_future(second_request())
        await asyncio.sleep(0.2)
        assert not racing.done()  # waiting for the connection, which the first transaction holds
        await first.commit()
    assert await racing == "already_returned"
    assert await _count(sessions, ReturnAuthorization) == 1
    assert await _count(sessions, ReturnLine) == 1


async def test_customer_and_agent_text_is_stored_without_control_characters(sessions) -> None:
    async with sessions() as s:
        _, order, [line] = await _delivered_order(s)
        result = await create_rma(
            s, order, [_item(line, reason_note="too\x00 small\n<b>really</b>")], "refund", "mail", now=NOW
        )
        rma = await transition(s, result.rma, "in_transit", note="\x00 parcel seen \x07")
        await s.commit()
    async with sessions() as s:
        stored_line = (await s.exec(select(ReturnLine))).one()
        stored = await s.get(ReturnAuthorization, rma.id)
    assert stored_line.reason_note == "too small\n<b>really</b>"
    assert stored.note == "parcel seen"

"""The in-memory planner: orders, shipments, cancellations, returns and stock as rows to insert."""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from ordersvc.models import (
    FinancialStatus,
    FulfillmentStatus,
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
    SourceChannel,
    StoreCredit,
)
from ordersvc.tracking import Carrier
from ordersvc.tracking.checksums import ups_check_digit
from shopdesk.demo.carriers import (
    DHL_VOICE,
    FEDEX_VOICE,
    UPS_VOICE,
    USPS_VOICE,
    Route,
    Voice,
    plan_story,
    tracking_pair,
)
from shopdesk.demo.catalog import BY_SKU, PRODUCTS, VARIANTS
from shopdesk.demo.customers import Person, plan_people
from shopdesk.demo.rows import PENDING, D, Row, money, new_row


@dataclass
class _PShipment:
    row: Row
    items: list[tuple[int, int]]  # (line index, quantity)
    events: list[Row]


@dataclass
class _PReturn:
    row: Row
    lines: list[tuple[int, Row]]  # (line index, row without ids)
    refund: Row | None = None
    credit: Row | None = None


@dataclass
class POrder:
    row: Row
    customer_key: str | None
    lines: list[Row]
    shipments: list[_PShipment] = field(default_factory=list)
    returns: list[_PReturn] = field(default_factory=list)
    refunds: list[Row] = field(default_factory=list)


_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
SHOPIFY_ORDER_ID_BASE = 820_982_911_946_150_000  # ids beyond 2^53, like Shopify's
_SHOPIFY_LINE_ID_BASE = 466_157_049_000_000_000
_SHOPIFY_FULFILLMENT_ID_BASE = 255_858_046_000_000_000


class Planner:
    """Builds every demo row in memory, deterministically, before anything touches the database."""

    def __init__(self, seed: int, anchor: datetime) -> None:
        self.seed = seed
        self.anchor = anchor
        self.people = plan_people(seed)
        self.by_key = {p.key: p for p in self.people}
        self.orders: list[POrder] = []

    # ---- helpers

    def rng(self, *parts: object) -> random.Random:
        return random.Random(":".join([str(self.seed), *map(str, parts)]))

    def ago(self, days: float, hours: float = 0.0) -> datetime:
        return self.anchor - timedelta(days=days, hours=hours)

    @staticmethod
    def voice_for(rng: random.Random, person: Person | None) -> tuple[Voice, bool]:
        """A carrier for a parcel to ``person``: (voice, use an S10 number)."""
        country = person.city.country_code if person else "US"
        if country == "US":
            return rng.choices((UPS_VOICE, USPS_VOICE, FEDEX_VOICE), weights=(5, 4, 3))[0], False
        if country in {"CA", "MX"}:
            return (UPS_VOICE, False) if rng.random() < 0.6 else (USPS_VOICE, True)
        return (DHL_VOICE, False) if rng.random() < 0.8 else (USPS_VOICE, True)

    @staticmethod
    def route_for(person: Person | None) -> Route:
        if person is None:
            return Route("Newark, NJ, US", "Newark, NJ, US", False)
        c = person.city
        west = c.country_code in {"CN", "TW", "VN"} or c.province_code in {"CA", "WA", "OR", "CO"}
        origin = "Reno, NV, US" if west else "Newark, NJ, US"
        if c.country_code == "US":
            dest = f"{c.city_en}, {c.province_code}, US"
        else:
            dest = f"{c.city_en}, {c.country_code}"
        return Route(origin, dest, c.country_code not in {"US"})

    def new_order(
        self,
        *,
        name: str,
        external_id: str,
        source: SourceChannel,
        person: Person | None,
        placed_at: datetime,
        items: Sequence[tuple[str, int]],
        rng: random.Random,
        discount: bool = False,
        email: str | None = None,
    ) -> POrder:
        lines: list[Row] = []
        number = int("".join(ch for ch in external_id if ch.isdigit())[-12:] or 0)
        for k, (sku, qty) in enumerate(items):
            v = BY_SKU[sku]
            gross = v.price * qty
            disc = money(gross * D("0.10")) if discount and not v.product.final_sale else D("0.00")
            lines.append(
                new_row(OrderLine,
                    order_id=0,
                    external_id=str(_SHOPIFY_LINE_ID_BASE + number * 10 + k),
                    sku=sku,
                    title=v.product.title,
                    variant_title=v.variant_title,
                    quantity=qty,
                    unit_price=v.price,
                    total_discount=disc,
                    product_type=v.product.product_type,
                    returnable=not v.product.final_sale,
                    final_sale=v.product.final_sale,
                    fulfilled_quantity=0,
                )
            )
        subtotal = sum((ln.unit_price * ln.quantity for ln in lines), D("0"))
        discounts = sum((ln.total_discount for ln in lines), D("0"))
        country = person.city.country_code if person else "US"
        if source == SourceChannel.pos:
            shipping = D("0.00")
        elif country == "US":
            shipping = D("0.00") if subtotal - discounts >= 75 else D("5.95")
        elif country in {"CA", "MX"}:
            shipping = D("14.95")
        else:
            shipping = D("24.95")
        tax = money((subtotal - discounts) * D("0.0825")) if country == "US" else D("0.00")
        address = person.address() if person and source != SourceChannel.pos else None
        postal = "".join(person.zip.split()).upper() if address and person else None
        row = new_row(Order,
            source=source,
            external_id=external_id,
            name=name,
            email=email if email is not None else (person.email if person else None),
            phone=person.phone if person else None,
            currency="USD",
            subtotal_price=money(subtotal),
            total_tax=tax,
            total_shipping=shipping,
            total_discounts=money(discounts),
            total_price=money(subtotal - discounts + shipping + tax),
            financial_status=FinancialStatus.paid,
            fulfillment_status=FulfillmentStatus.unfulfilled,
            placed_at=placed_at,
            shipping_address=address,
            billing_address=address,
            shipping_postal_code=postal,
            tags=["welcome10"] if discount else [],
            note=rng.choice((None, None, None, None, "Please leave the parcel with the concierge.",
                             "Gift: please no prices on the packing slip.")) if address else None,
            stock_reserved=False,
            created_at=placed_at,
            updated_at=placed_at,
        )
        order = POrder(row=row, customer_key=person.key if person else None, lines=lines)
        self.orders.append(order)
        if person is not None and (person.since is None or placed_at < person.since):
            person.since = placed_at
        return order

    def ship(
        self,
        order: POrder,
        rng: random.Random,
        plan: str,
        t0: datetime,
        end: datetime,
        items: Sequence[tuple[int, int]] | None = None,
        voice: Voice | None = None,
        s10: bool | None = None,
    ) -> _PShipment:
        person = self.by_key.get(order.customer_key or "")
        if voice is None:
            voice, chosen_s10 = self.voice_for(rng, person)
            s10 = chosen_s10 if s10 is None else s10
        s10 = bool(s10)
        story = plan_story(rng, voice, self.route_for(person), t0, end, plan, self.anchor)
        number, url = tracking_pair(rng, voice, s10=s10)
        k = len(order.shipments)
        items = list(items) if items is not None else [(i, ln.quantity) for i, ln in enumerate(order.lines)]
        numeric = int(order.row.external_id[-9:]) if order.row.external_id[-9:].isdigit() else len(self.orders)
        row = new_row(Shipment,
            order_id=0,
            external_id=str(_SHOPIFY_FULFILLMENT_ID_BASE + numeric * 10 + k),
            name=f"{order.row.name}.{k + 1}",
            carrier=voice.name,
            tracking_number=number if plan != PENDING.value else None,
            tracking_url=url if plan != PENDING.value else None,
            status=story.status,
            eta=story.eta,
            shipped_at=story.shipped_at,
            delivered_at=story.delivered_at,
            last_event_at=story.last_event_at,
            created_at=story.shipped_at,
            updated_at=story.last_event_at or story.shipped_at,
        )
        shipment = _PShipment(row=row, items=items, events=story.events)
        order.shipments.append(shipment)
        for index, qty in items:
            order.lines[index].fulfilled_quantity += qty
        self._refresh_fulfillment(order)
        self.touch(order, row.updated_at)
        return shipment

    @staticmethod
    def _refresh_fulfillment(order: POrder) -> None:
        shipped = sum(ln.fulfilled_quantity for ln in order.lines)
        wanted = sum(ln.quantity for ln in order.lines)
        if shipped == 0:
            order.row.fulfillment_status = FulfillmentStatus.unfulfilled
        elif shipped < wanted:
            order.row.fulfillment_status = FulfillmentStatus.partial
        else:
            order.row.fulfillment_status = FulfillmentStatus.fulfilled

    @staticmethod
    def touch(order: POrder, when: datetime | None) -> None:
        if when is not None and when > order.row.updated_at:
            order.row.updated_at = when

    def cancel(self, order: POrder, rng: random.Random, when: datetime, *, refund: bool) -> None:
        o = order.row
        o.cancelled_at = when
        o.closed_at = when
        o.cancel_reason = rng.choice(("customer", "customer", "inventory", "fraud"))
        if refund:
            o.financial_status = FinancialStatus.refunded
            order.refunds.append(
                new_row(Refund,
                    order_id=0,
                    external_id=f"demo-cancel-{o.external_id}",
                    amount=o.total_price,
                    currency=o.currency,
                    note="order cancelled",
                    processed_at=when,
                    created_at=when,
                )
            )
        else:
            o.financial_status = FinancialStatus.voided
        self.touch(order, when)

    def add_return(
        self,
        order: POrder,
        rng: random.Random,
        target: RmaStatus,
        requested_at: datetime,
        *,
        line_indexes: Sequence[int] | None = None,
        resolution: Resolution | None = None,
        method: ReturnMethod = ReturnMethod.mail,
        reason: ReturnReason | None = None,
        condition: ItemCondition | None = None,
    ) -> _PReturn | None:
        candidates = [i for i, ln in enumerate(order.lines) if ln.returnable and ln.fulfilled_quantity > 0]
        chosen = list(line_indexes) if line_indexes is not None else candidates[:1]
        if not chosen:
            return None
        if resolution is None:
            resolution = {
                RmaStatus.exchanged: Resolution.exchange,
                RmaStatus.credited: Resolution.store_credit,
                RmaStatus.refunded: Resolution.refund,
            }.get(target) or rng.choices(
                (Resolution.refund, Resolution.store_credit, Resolution.exchange), weights=(6, 2, 2)
            )[0]
        lines: list[tuple[int, Row]] = []
        value = D("0")
        for index in chosen:
            ln = order.lines[index]
            v = BY_SKU[ln.sku or ""]
            why = reason or rng.choice(
                (ReturnReason.too_small, ReturnReason.too_large, ReturnReason.changed_mind, ReturnReason.defective)
                if v.product.sizes != (None,)
                else (ReturnReason.changed_mind, ReturnReason.damaged, ReturnReason.not_as_described)
            )
            exchange_sku = None
            if resolution == Resolution.exchange:
                siblings = [
                    o.sku for o in VARIANTS if o.product is v.product and o.colour == v.colour and o.sku != v.sku
                ] or [o.sku for o in VARIANTS if o.product is v.product and o.sku != v.sku]
                exchange_sku = rng.choice(siblings) if siblings else None
                if exchange_sku is None:
                    resolution = Resolution.refund
            lines.append(
                (
                    index,
                    new_row(ReturnLine,
                        rma_id=0,
                        order_line_id=0,
                        quantity=ln.fulfilled_quantity,
                        reason=why,
                        reason_note={
                            ReturnReason.too_small: "Runs small, I need one size up.",
                            ReturnReason.too_large: "Too big.",
                            ReturnReason.defective: "The stitching came apart after one wash.",
                            ReturnReason.damaged: "Arrived with a torn seam.",
                        }.get(why),
                        condition=condition or rng.choice((ItemCondition.unopened, ItemCondition.like_new)),
                        exchange_sku=exchange_sku,
                    ),
                )
            )
            value += ln.unit_price * ln.fulfilled_quantity - ln.total_discount * ln.fulfilled_quantity / ln.quantity
        value = money(value)
        refund_amount = value if resolution == Resolution.refund else D("0.00")
        credit_amount = money(value * D("1.10")) if resolution == Resolution.store_credit else D("0.00")

        # the lifecycle, truncated before the anchor
        chain: list[tuple[RmaStatus, datetime]] = [(RmaStatus.requested, requested_at)]
        t = requested_at + timedelta(minutes=rng.randint(1, 20))
        chain.append((RmaStatus.approved, t))
        if method == ReturnMethod.mail:
            chain.append((RmaStatus.label_issued, t))
            t += timedelta(days=rng.uniform(0.5, 3))
            chain.append((RmaStatus.in_transit, t))
        else:
            t += timedelta(days=rng.uniform(1, 4))
        if target == RmaStatus.cancelled:
            chain = [c for c in chain if c[0] in {RmaStatus.requested, RmaStatus.approved, RmaStatus.label_issued}]
            chain.append((RmaStatus.cancelled, chain[-1][1] + timedelta(days=rng.uniform(0.5, 2))))
        else:
            t += timedelta(days=rng.uniform(2, 4))
            chain.append((RmaStatus.received, t))
            t += timedelta(hours=rng.uniform(4, 30))
            if target in {RmaStatus.refunded, RmaStatus.exchanged, RmaStatus.credited, RmaStatus.rejected}:
                chain.append((target, t))
        cut = [c for c in chain if c[1] < self.anchor]
        upto = next((i for i, c in enumerate(cut) if c[0] == target), len(cut) - 1)
        reached = cut[: upto + 1]
        rma_number = f"R{''.join(ch for ch in order.row.name if ch.isdigit())}-{len(order.returns) + 1}"
        row = new_row(ReturnAuthorization,
            rma_number=rma_number,
            order_id=0,
            customer_id=None,
            status=reached[-1][0],
            resolution=resolution,
            method=method,
            currency=order.row.currency,
            refund_amount=refund_amount,
            credit_amount=credit_amount,
            created_by=rng.choice(("bot", "bot", "bot", "agent")),
            requested_at=requested_at,
            created_at=requested_at,
            updated_at=reached[-1][1],
        )
        for status, when in reached[1:]:
            setattr(row, f"{status.value}_at", when)
        if row.label_issued_at is not None:
            serial = f"{rng.randint(0, 9_999_999):07d}"
            body = f"R7T4K990{serial}"
            row.label_carrier = Carrier.UPS.value
            row.label_tracking_number = f"1Z{body}{ups_check_digit(body)}"
        if row.status == RmaStatus.rejected:
            row.note = "Item shows signs of wear; not accepted under the return policy."
        ret = _PReturn(row=row, lines=lines)
        if row.status == RmaStatus.refunded and refund_amount > 0:
            ret.refund = new_row(Refund,
                order_id=0,
                external_id=f"shopdesk:rma:{rma_number}",
                amount=refund_amount,
                currency=order.row.currency,
                note=f"return {rma_number}",
                processed_at=row.refunded_at or row.updated_at,
                created_at=row.refunded_at or row.updated_at,
            )
            order.row.financial_status = FinancialStatus.partially_refunded
        if row.status == RmaStatus.credited:
            code = "".join(rng.choice(_CODE_ALPHABET) for _ in range(12))
            ret.credit = new_row(StoreCredit,
                code=f"SC-{code[:4]}-{code[4:8]}-{code[8:]}",
                amount=credit_amount,
                currency=order.row.currency,
                created_at=row.credited_at or row.updated_at,
            )
        order.returns.append(ret)
        self.touch(order, row.updated_at)
        return ret

    # ---- items

    def random_items(self, rng: random.Random, count: int | None = None) -> list[tuple[str, int]]:
        count = count or rng.choices((1, 2, 3), weights=(6, 3, 1))[0]
        products = rng.sample(list(PRODUCTS), k=count, counts=[p.weight for p in PRODUCTS]) if count else []
        items: list[tuple[str, int]] = []
        seen: set[str] = set()
        for p in products:
            sku = rng.choice([v.sku for v in VARIANTS if v.product is p])
            if sku in seen:
                continue
            seen.add(sku)
            items.append((sku, 2 if rng.random() < 0.1 and p.code != "GC" else 1))
        return items


    def finish(self) -> None:
        for order in self.orders:
            o = order.row
            o.stock_reserved = o.cancelled_at is None and o.fulfillment_status in {
                FulfillmentStatus.unfulfilled,
                FulfillmentStatus.partial,
            }


    # ---- stock

    def inventory(self) -> list[tuple[str, str, int, int, int]]:
        """``(warehouse code, sku, on_hand, reserved, safety_stock)`` for every SKU in both warehouses."""
        reserved: dict[str, int] = defaultdict(int)
        for order in self.orders:
            if order.row.stock_reserved:
                for ln in order.lines:
                    if ln.sku and ln.quantity > ln.fulfilled_quantity:
                        reserved[ln.sku] += ln.quantity - ln.fulfilled_quantity
            for ret in order.returns:
                if ret.row.status in {RmaStatus.requested, RmaStatus.approved, RmaStatus.label_issued,
                                      RmaStatus.in_transit, RmaStatus.received}:
                    for _, rl in ret.lines:
                        if rl.exchange_sku:
                            reserved[rl.exchange_sku] += rl.quantity
        rng = self.rng("inventory")
        skus = [v.sku for v in VARIANTS]
        low = set(rng.sample([s for s in skus if not s.startswith("GC-")], 9))
        out_of_stock = set(sorted(low)[:2])
        rows: list[tuple[str, str, int, int, int]] = []
        for sku in skus:
            gift = sku.startswith("GC-")
            safety = 20 if gift else rng.choice((2, 3, 5, 8))
            held = reserved.get(sku, 0)
            if gift:
                on_hand = 500 + held
            elif sku in out_of_stock:
                on_hand = held
            elif sku in low:
                on_hand = held + rng.randint(0, safety)
            else:
                on_hand = held + safety + rng.randint(4, 60)
            rows.append(("east", sku, on_hand, held, safety))
            west_on_hand = 0 if gift else rng.choice((0, 1, 2, 6, 12, 18, 25, 40))
            rows.append(("west", sku, west_on_hand, 0, 0 if gift else 2))
        return rows

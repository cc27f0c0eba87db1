"""What the demo shop contains: the showcase orders #1001–#1026 and everyone else's orders."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import datetime, timedelta

from ordersvc.models import (
    FinancialStatus,
    FulfillmentStatus,
    ItemCondition,
    Refund,
    Resolution,
    ReturnMethod,
    ReturnReason,
    RmaStatus,
    SourceChannel,
)
from shopdesk.demo.carriers import DHL_VOICE, FEDEX_VOICE, UPS_VOICE, USPS_VOICE
from shopdesk.demo.catalog import BY_SKU
from shopdesk.demo.customers import Person
from shopdesk.demo.planner import SHOPIFY_ORDER_ID_BASE, Planner, POrder
from shopdesk.demo.rows import (
    AMAZON_ORDERS,
    DELIVERED,
    EBAY_ORDERS,
    EXCEPTION,
    EXPIRED,
    FAILED,
    INFO,
    OFD,
    ONLINE_ORDERS,
    PENDING,
    PICKUP,
    POS_ORDERS,
    STALLED,
    TRANSIT,
    H,
    new_row,
)
from shopdesk.demo.summary import SHOWCASE


def plan_showcase(planner: Planner) -> None:
    """The showcase orders #1001–#1026, each in a fixed situation (see ``SHOWCASE``)."""
    a = planner.anchor

    def ext(n: int) -> str:
        return str(SHOPIFY_ORDER_ID_BASE + n)

    pool = [p for p in planner.people if p.key[-1].isdigit()]  # not the fixed personas
    us_pool = [p for p in pool if p.city.country_code == "US"]
    abroad_pool = [p for p in pool if p.city.country_code != "US"]

    def order(n: int, person: Person, days: float, items: list[tuple[str, int]], hours: float = 0) -> POrder:
        rng = planner.rng("showcase", n)
        return planner.new_order(
            name=f"#{n}", external_id=ext(n), source=SourceChannel.online_store, person=person,
            placed_at=planner.ago(days, hours), items=items, rng=rng,
        )

    P = planner.by_key
    # 1001 in transit with UPS
    o = order(1001, P["demo-customer-ana"], 2, [("TR2-BLK-09", 1), ("TEE-OLV-M", 1)], hours=-10)
    planner.ship(o, planner.rng("ship", 1001), TRANSIT.value, a - timedelta(hours=30), a - timedelta(hours=5),
              voice=UPS_VOICE, s10=False)
    # 1002 delivered 6 days ago, returnable
    o = order(1002, P["demo-customer-liam"], 10, [("PRJ-NVY-L", 1)], hours=-9)
    planner.ship(o, planner.rng("ship", 1002), DELIVERED.value, planner.ago(9, -13), planner.ago(6, -14.5), voice=FEDEX_VOICE)
    # 1003 stalled: in transit, silent for 7 days, ETA passed
    o = order(1003, P["demo-customer-dmitry"], 11, [("WOS-CHR-M", 1), ("MBN-RST", 1)], hours=-11)
    planner.ship(o, planner.rng("ship", 1003), STALLED, planner.ago(9, -15), planner.ago(7, -9), voice=USPS_VOICE, s10=False)
    # 1004 delivery exception: the incorrect address the summary promises, not a random one
    o = order(1004, P["demo-customer-lan"], 5, [("CLS-WHT-07", 1)], hours=-16)
    planner.ship(o, planner.rng("ship", 1004), EXCEPTION.value, planner.ago(4, -12), planner.ago(1, -10),
              voice=replace(FEDEX_VOICE, exception=FEDEX_VOICE.exception[:1]))
    # 1005 unfulfilled, cancellable
    o = order(1005, P["demo-customer-fang"], 0, [("TEE-WHT-M", 2), ("GTM-HGR-M", 1)], hours=9)
    # 1006 two shipments: one delivered, one in transit
    o = order(1006, P["demo-customer-yichun"], 9, [("TR2-SLT-08", 1), ("BLT-BRN-32", 1), ("TOT-NAT", 1)],
              hours=-8)
    planner.ship(o, planner.rng("ship", 1006, 1), DELIVERED.value, planner.ago(8, -10), planner.ago(3, -11),
              items=[(0, 1)], voice=DHL_VOICE, s10=False)
    planner.ship(o, planner.rng("ship", 1006, 2), TRANSIT.value, planner.ago(3, -15), a - timedelta(hours=7),
              items=[(1, 1), (2, 1)], voice=DHL_VOICE, s10=False)
    # 1007 final sale only
    o = order(1007, P["demo-customer-olivia"], 8, [("GC-50", 1), ("BXB-BLK-M", 1)], hours=-10)
    planner.ship(o, planner.rng("ship", 1007), DELIVERED.value, planner.ago(7, -12), planner.ago(4, -13), voice=UPS_VOICE,
              s10=False)
    # 1008 delivered long ago: outside the 30-day window
    o = order(1008, P["demo-customer-mateo"], 60, [("PRJ-YEL-M", 1)], hours=-12)
    planner.ship(o, planner.rng("ship", 1008), DELIVERED.value, planner.ago(58, -10), planner.ago(52, -12), voice=DHL_VOICE,
              s10=False)
    o.row.closed_at = planner.ago(52, -12)

    def us(n: int) -> Person:
        return random.Random(f"{planner.seed}:showcase-customer:{n}").choice(us_pool)

    def abroad(n: int) -> Person:
        return random.Random(f"{planner.seed}:showcase-customer:{n}").choice(abroad_pool)

    def rand_items(n: int, count: int = 1) -> list[tuple[str, int]]:
        rng = planner.rng("showcase-items", n)
        items = planner.random_items(rng, count)
        # keep the showcase returnable where it matters
        return [(s, q) for s, q in items if not BY_SKU[s].product.final_sale] or [("TEE-BLK-L", 1)]

    o = order(1009, us(9), 3, rand_items(1009), hours=-10)
    planner.ship(o, planner.rng("ship", 1009), OFD.value, planner.ago(2, -12), a - timedelta(hours=14), voice=USPS_VOICE,
              s10=False)
    o = order(1010, us(10), 5, rand_items(1010), hours=-9)
    planner.ship(o, planner.rng("ship", 1010), FAILED.value, planner.ago(4, -12), planner.ago(1, -14), voice=UPS_VOICE,
              s10=False)
    o = order(1011, us(11), 5, rand_items(1011), hours=-10)
    planner.ship(o, planner.rng("ship", 1011), PICKUP.value, planner.ago(4, -11), planner.ago(1, -11), voice=USPS_VOICE,
              s10=False)
    o = order(1012, us(12), 1, rand_items(1012), hours=-9)
    planner.ship(o, planner.rng("ship", 1012), INFO.value, a - timedelta(hours=8), a - timedelta(hours=8),
              voice=FEDEX_VOICE)
    o = order(1013, abroad(13), 70, rand_items(1013), hours=-10)
    planner.ship(o, planner.rng("ship", 1013), EXPIRED.value, planner.ago(68, -12), planner.ago(66, -8), voice=USPS_VOICE,
              s10=True)
    o = order(1014, us(14), 1, rand_items(1014), hours=-12)
    planner.ship(o, planner.rng("ship", 1014), PENDING.value, a - timedelta(hours=4), a - timedelta(hours=4),
              voice=UPS_VOICE, s10=False)
    o = order(1015, us(15), 4, rand_items(1015), hours=-10)
    planner.cancel(o, planner.rng("cancel", 1015), planner.ago(3, -9), refund=False)
    o.row.cancel_reason = "customer"

    # 1016 returned and fully refunded (the return covers the items; a goodwill refund the rest)
    o = order(1016, us(16), 30, rand_items(1016, 2), hours=-10)
    planner.ship(o, planner.rng("ship", 1016), DELIVERED.value, planner.ago(29, -10), planner.ago(26, -12))
    ret = planner.add_return(o, planner.rng("rma", 1016), RmaStatus.refunded, planner.ago(24, -10),
                          line_indexes=list(range(len(o.lines))), resolution=Resolution.refund,
                          reason=ReturnReason.defective, condition=ItemCondition.like_new)
    assert ret is not None and ret.refund is not None
    rest = o.row.total_price - ret.refund.amount
    if rest > 0:
        o.refunds.append(
            new_row(Refund, order_id=0, external_id=f"demo-goodwill-{o.row.external_id}", amount=rest,
                   currency=o.row.currency, note="shipping and tax refunded (goodwill)",
                   processed_at=ret.refund.processed_at, created_at=ret.refund.processed_at)
        )
    o.row.financial_status = FinancialStatus.refunded
    o.row.closed_at = ret.refund.processed_at

    rma_cases: tuple[tuple[int, RmaStatus, float, float, ReturnMethod], ...] = (
        # (order, target, delivered days ago, requested days ago, method)
        (1017, RmaStatus.requested, 4, 1, ReturnMethod.mail),
        (1018, RmaStatus.approved, 6, 2, ReturnMethod.dropoff),
        (1019, RmaStatus.label_issued, 8, 1.5, ReturnMethod.mail),
        (1020, RmaStatus.in_transit, 12, 4, ReturnMethod.mail),
        (1021, RmaStatus.received, 16, 9, ReturnMethod.mail),
        (1022, RmaStatus.exchanged, 25, 18, ReturnMethod.mail),
        (1023, RmaStatus.credited, 22, 15, ReturnMethod.mail),
        (1024, RmaStatus.rejected, 21, 14, ReturnMethod.mail),
        (1025, RmaStatus.cancelled, 14, 8, ReturnMethod.mail),
    )
    for n, target, delivered_ago, requested_ago, method in rma_cases:
        items = [("TR2-BLK-10", 1)] if target == RmaStatus.exchanged else rand_items(n)
        o = order(n, us(n), delivered_ago + 4, items, hours=-10)
        planner.ship(o, planner.rng("ship", n), DELIVERED.value, planner.ago(delivered_ago + 3, -11),
                  planner.ago(delivered_ago, -13))
        rng = planner.rng("rma", n)
        if target == RmaStatus.rejected:
            planner.add_return(o, rng, target, planner.ago(requested_ago, -10), reason=ReturnReason.changed_mind,
                            condition=ItemCondition.used, resolution=Resolution.refund, method=method)
        elif target == RmaStatus.exchanged:
            planner.add_return(o, rng, target, planner.ago(requested_ago, -10), reason=ReturnReason.too_small,
                            resolution=Resolution.exchange, method=method)
        else:
            planner.add_return(o, rng, target, planner.ago(requested_ago, -10), method=method,
                            resolution=Resolution.store_credit if target == RmaStatus.credited else None)
    # 1026 partly shipped, one item backordered
    o = order(1026, us(26), 3, [("PRJ-YEL-L", 1), ("MBN-OAT", 1)], hours=-9)
    planner.ship(o, planner.rng("ship", 1026), TRANSIT.value, planner.ago(2, -12), a - timedelta(hours=6),
              items=[(1, 1)], voice=UPS_VOICE, s10=False)
    o.row.expected_ship_at = a + timedelta(days=6, hours=17)

# ---- everyone else


def plan_shipping(planner: Planner, order: POrder, rng: random.Random) -> None:
    """Ship (or not) an order according to its age, with realistic odds."""
    placed = order.row.placed_at
    age_days = (planner.anchor - placed).total_seconds() / 86400
    if rng.random() < 0.04 and age_days < 60:
        when = min(placed + timedelta(hours=rng.uniform(1, 30)), planner.anchor - timedelta(minutes=30))
        planner.cancel(order, rng, when, refund=rng.random() < 0.5)
        return
    if age_days < 1.5 and rng.random() < 0.7:
        if rng.random() < 0.2:
            order.row.financial_status = FinancialStatus.authorized
        return  # not shipped yet
    t0 = placed + timedelta(hours=rng.uniform(6, min(50, max(7, age_days * 24 - 3))))
    t0 = min(t0, planner.anchor - timedelta(hours=2))
    since = (planner.anchor - t0).total_seconds() / 86400
    if since < 1:
        plan = rng.choices((PENDING.value, INFO.value, TRANSIT.value), weights=(1, 4, 5))[0]
    elif since < 4:
        plan = rng.choices(
            (TRANSIT.value, OFD.value, DELIVERED.value, FAILED.value, PICKUP.value, EXCEPTION.value),
            weights=(55, 6, 30, 3, 3, 3),
        )[0]
    elif since < 10:
        plan = rng.choices(
            (DELIVERED.value, STALLED, EXCEPTION.value, PICKUP.value, FAILED.value),
            weights=(80, 7, 5, 4, 4),
        )[0]
    else:
        plan = rng.choices(
            (DELIVERED.value, EXPIRED.value, EXCEPTION.value, STALLED),
            weights=(94, 2 if since > 35 else 0, 2, 2),
        )[0]
    delivery_days = rng.uniform(2.2, 4.5)
    if plan == DELIVERED.value:
        end = min(t0 + timedelta(days=delivery_days), planner.anchor - timedelta(hours=rng.uniform(1, 8)))
        if end - t0 < timedelta(hours=20):
            plan, end = TRANSIT.value, planner.anchor - timedelta(hours=rng.uniform(1, 8))
    elif plan in {TRANSIT.value, OFD.value}:
        end = max(planner.anchor - timedelta(hours=rng.uniform(1, 10)), t0 + H)
    elif plan in {INFO.value, PENDING.value}:
        end = t0
    elif plan == STALLED:
        end = max(t0 + timedelta(hours=rng.uniform(6, 30)), t0)
        end = min(end, planner.anchor - timedelta(days=5, hours=rng.uniform(3, 48)))
        if end <= t0:
            plan, end = DELIVERED.value, min(t0 + timedelta(days=3), planner.anchor - H)
    elif plan == EXPIRED.value:
        end = t0 + timedelta(days=rng.uniform(1, 2))
    else:  # failed attempt, pickup, exception: news within the last days
        end = min(t0 + timedelta(days=delivery_days), planner.anchor - timedelta(hours=rng.uniform(1, 20)))
        end = max(end, t0 + timedelta(hours=12))
        end = min(end, planner.anchor - timedelta(minutes=30))

    multi = len(order.lines) >= 2 and rng.random() < 0.15
    backorder = len(order.lines) >= 2 and not multi and rng.random() < 0.05 and since < 20
    if multi:
        split = rng.randint(1, len(order.lines) - 1)
        first = [(i, ln.quantity) for i, ln in enumerate(order.lines[:split])]
        second = [(i + split, ln.quantity) for i, ln in enumerate(order.lines[split:])]
        planner.ship(order, rng, plan, t0, end, items=first)
        t1 = min(t0 + timedelta(days=rng.uniform(0.5, 2)), planner.anchor - timedelta(hours=3))
        if plan == DELIVERED.value and planner.anchor - t1 > timedelta(days=4):
            end2 = min(t1 + timedelta(days=3), planner.anchor - H)
            planner.ship(order, rng, DELIVERED.value, t1, end2, items=second)
        elif plan in {DELIVERED.value, TRANSIT.value, OFD.value, INFO.value, PENDING.value}:
            planner.ship(order, rng, TRANSIT.value, t1, max(t1 + H, planner.anchor - timedelta(hours=4)),
                      items=second)
        else:  # both parcels left together and share their fate
            planner.ship(order, rng, plan, t0, end, items=second)
    elif backorder:
        items = [(i, ln.quantity) for i, ln in enumerate(order.lines[:-1])]
        planner.ship(order, rng, plan, t0, end, items=items)
    else:
        planner.ship(order, rng, plan, t0, end)

    # returns on some delivered orders, inside the window
    delivered = [s.row.delivered_at for s in order.shipments if s.row.delivered_at is not None]
    if delivered and len(delivered) == len(order.shipments) and rng.random() < 0.13:
        last = max(delivered)
        dsd = (planner.anchor - last).total_seconds() / 86400
        if 1 < dsd:
            requested = last + timedelta(days=rng.uniform(0.5, min(dsd - 0.2, 25)))
            since_req = (planner.anchor - requested).total_seconds() / 86400
            if since_req < 3:
                target = rng.choice((RmaStatus.requested, RmaStatus.label_issued))
            elif since_req < 9:
                target = rng.choice((RmaStatus.label_issued, RmaStatus.in_transit, RmaStatus.received))
            else:
                target = rng.choices(
                    (RmaStatus.refunded, RmaStatus.credited, RmaStatus.exchanged, RmaStatus.rejected,
                     RmaStatus.cancelled),
                    weights=(50, 20, 15, 8, 7),
                )[0]
            planner.add_return(
                order, rng, target, requested,
                condition=ItemCondition.used if target == RmaStatus.rejected else None,
                reason=ReturnReason.changed_mind if target == RmaStatus.rejected else None,
            )
    if delivered and not order.returns and (planner.anchor - max(delivered)) > timedelta(days=35):
        order.row.closed_at = max(delivered) + timedelta(days=30)


def plan_everyone_else(planner: Planner) -> None:
    """Random online, Amazon, eBay and point-of-sale orders of the regular customers."""
    regular = [p for p in planner.people if p.key[-1].isdigit()]
    # online orders: placed times first, then numbered in time order
    first_random = 1001 + len(SHOWCASE)
    plans: list[tuple[datetime, int]] = []
    for i in range(ONLINE_ORDERS - len(SHOWCASE)):
        rng = planner.rng("online", i)
        plans.append((planner.ago(rng.triangular(1, 120, 4)), i))
    plans.sort()
    for rank, (placed_at, i) in enumerate(plans):
        rng = planner.rng("online", i, "content")
        # the first few customers get the most orders; everybody orders at least once
        person = regular[rank % len(regular)] if rank < len(regular) else rng.choice(regular)
        n = first_random + rank
        order = planner.new_order(
            name=f"#{n}", external_id=str(SHOPIFY_ORDER_ID_BASE + n), source=SourceChannel.online_store,
            person=person, placed_at=min(placed_at, planner.anchor - timedelta(minutes=20)),
            items=planner.random_items(rng), rng=rng, discount=rng.random() < 0.15,
        )
        if rng.random() < 0.08:
            order.row.tags = [*order.row.tags, "vip"]
        plan_shipping(planner, order, rng)

    for i in range(AMAZON_ORDERS):
        ids = random.Random(f"amazon:{i}")
        number = f"{ids.choice(('111', '112', '113', '114'))}-{ids.randint(0, 9_999_999):07d}-{ids.randint(0, 9_999_999):07d}"
        rng = planner.rng("amazon", i)
        person = rng.choice([p for p in regular if p.city.country_code == "US"])
        handle = "".join(rng.choice("abcdefghjkmnpqrstvwxyz0123456789") for _ in range(14))
        order = planner.new_order(
            name=number, external_id=number, source=SourceChannel.amazon, person=person,
            placed_at=planner.ago(rng.triangular(1, 60, 3)), items=planner.random_items(rng, 1),
            rng=rng, email=f"{handle}@marketplace.example.com",
        )
        order.row.tags = ["amazon"]
        order.customer_key = None
        plan_shipping(planner, order, rng)

    for i in range(EBAY_ORDERS):
        ids = random.Random(f"ebay:{i}")
        number = f"{ids.randint(10, 29)}-{ids.randint(0, 99_999):05d}-{ids.randint(0, 99_999):05d}"
        rng = planner.rng("ebay", i)
        person = rng.choice([p for p in regular if p.city.country_code in {"US", "CA"}])
        order = planner.new_order(
            name=number, external_id=number, source=SourceChannel.ebay, person=person,
            placed_at=planner.ago(rng.triangular(1, 60, 3)), items=planner.random_items(rng, 1),
            rng=rng, email=f"{person.email.split('@')[0]}@members.example.org",
        )
        order.row.tags = ["ebay"]
        order.customer_key = None
        plan_shipping(planner, order, rng)

    for i in range(POS_ORDERS):
        rng = planner.rng("pos", i)
        shopper: Person | None = rng.choice(regular) if rng.random() < 0.6 else None
        # opening hours of a day in the past
        placed = planner.ago(int(rng.triangular(1, 90, 10)), -rng.uniform(14, 23))
        order = planner.new_order(
            name=f"POS-{1001 + i}", external_id=str(830_000_000_000_000_000 + i), source=SourceChannel.pos,
            person=shopper, placed_at=placed, items=planner.random_items(rng), rng=rng,
        )
        order.row.tags = ["pos", "newark-store"]
        order.row.closed_at = placed
        for ln in order.lines:
            ln.fulfilled_quantity = ln.quantity
        order.row.fulfillment_status = FulfillmentStatus.fulfilled


def build(planner: Planner) -> None:
    """Plan the whole demo shop into ``planner``."""
    plan_showcase(planner)
    plan_everyone_else(planner)
    planner.finish()

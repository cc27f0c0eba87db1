"""Demo carriers: valid tracking numbers and plausible scan histories per carrier."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from ordersvc.models import TrackingEvent
from ordersvc.tracking import Carrier, ShipmentStatus, tracking_url
from ordersvc.tracking.checksums import (
    dhl_mod7_check_digit,
    fedex12_check_digit,
    gs1_mod10_check_digit,
    s10_check_digit,
    ups_check_digit,
)
from shopdesk.demo.rows import (
    DELIVERED,
    EXCEPTION,
    EXPIRED,
    FAILED,
    INFO,
    OFD,
    PENDING,
    PICKUP,
    STALLED,
    TRANSIT,
    H,
    Row,
    new_row,
)


@dataclass(frozen=True)
class Voice:
    """How one carrier words its scans."""

    name: str  # stored in Shipment.carrier
    label: str
    pickup: str
    depart_origin: str
    arrive_hub: str
    depart_hub: str
    arrive_local: str
    out_for_delivery: str
    delivered: tuple[str, ...]
    failed: str
    pickup_ready: str
    exception: tuple[str, ...]
    hubs: tuple[str, ...]


UPS_VOICE = Voice(
    "UPS",
    "Label created: shipping information sent to UPS",
    "Pickup Scan",
    "Departed from Facility",
    "Arrived at Facility",
    "Departed from Facility",
    "Processing at UPS Facility",
    "Out For Delivery Today",
    ("Delivered", "DELIVERED, Front Door", "Delivered to front desk"),
    "The receiver was not available for delivery. We'll make a second attempt the next business day.",
    "Delivered to UPS Access Point. Ready for pickup",
    ("The address is incorrect. This may delay delivery.", "Damaged package reported. Delivery delayed"),
    ("Louisville, KY, US", "Hodgkins, IL, US", "Ontario, CA, US"),
)
USPS_VOICE = Voice(
    "USPS",
    "Shipping Label Created, USPS Awaiting Item",
    "Accepted at USPS Origin Facility",
    "Departed USPS Regional Facility",
    "Arrived at USPS Regional Facility",
    "In Transit to Next Facility",
    "Arrived at Post Office",
    "Out for Delivery",
    ("Delivered, In/At Mailbox", "Delivered, Front Door/Porch"),
    "Notice Left (No Authorized Recipient Available)",
    "Available for Pickup",
    ("Delivery Exception, Incorrect Address",),
    ("Kearny, NJ, US", "Chicago, IL, US", "Denver, CO, US"),
)
FEDEX_VOICE = Voice(
    "FedEx",
    "Shipment information sent to FedEx",
    "Picked up",
    "Left FedEx origin facility",
    "Arrived at FedEx hub",
    "Departed FedEx hub",
    "At local FedEx facility",
    "Out for delivery",
    ("Delivered",),
    "Delivery exception: Customer not available or business closed",
    "Ready for pickup at FedEx Office",
    ("Delivery exception: Incorrect address", "Delay: Weather delay"),
    ("Memphis, TN, US", "Indianapolis, IN, US"),
)
DHL_VOICE = Voice(
    "DHL Express",
    "Shipment information received",
    "Shipment picked up",
    "Departed from origin DHL facility",
    "Arrived at Sort Facility",
    "Shipment has departed from a DHL facility",
    "Arrived at destination DHL facility",
    "With delivery courier",
    ("Delivered - signed for by receiver",),
    "Delivery attempted - recipient not home",
    "Awaiting collection by recipient as requested",
    ("Clearance delay - Importer/Consignee contact information required",),
    ("Cincinnati, OH, US", "Leipzig, DE", "Hong Kong, HK"),
)
_CARRIER_OF = {"UPS": Carrier.UPS, "USPS": Carrier.USPS, "FedEx": Carrier.FEDEX, "DHL Express": Carrier.DHL}

_ALNUM = "0123456789ABCDEFGHJKLMNPRSTUVWXY"


def _ups_number(rng: random.Random) -> str:
    payload = "".join(rng.choice(_ALNUM) for _ in range(6)) + rng.choice(("03", "02", "01")) + (
        f"{rng.randint(1, 9_999_999):07d}"
    )
    return f"1Z{payload}{ups_check_digit(payload)}"


def _usps_number(rng: random.Random) -> str:
    payload = "9400" + "1" + "".join(str(rng.randint(0, 9)) for _ in range(16))
    return payload + str(gs1_mod10_check_digit(payload))


def _fedex_number(rng: random.Random) -> str:
    payload = str(rng.randint(1, 9)) + "".join(str(rng.randint(0, 9)) for _ in range(10))
    return payload + str(fedex12_check_digit(payload))


def _dhl_number(rng: random.Random) -> str:
    payload = str(rng.randint(1, 9)) + "".join(str(rng.randint(0, 9)) for _ in range(8))
    return payload + str(dhl_mod7_check_digit(payload))


def _s10_number(rng: random.Random) -> str:
    serial = "".join(str(rng.randint(0, 9)) for _ in range(8))
    return f"{rng.choice(('LZ', 'CP'))}{serial}{s10_check_digit(serial)}US"


def tracking_pair(rng: random.Random, voice: Voice, *, s10: bool = False) -> tuple[str, str]:
    """``(number, url)``: a number with a correct check digit and its public tracking page."""
    if s10:
        number = _s10_number(rng)
        return number, tracking_url(Carrier.S10, number)
    number = {
        "UPS": _ups_number,
        "USPS": _usps_number,
        "FedEx": _fedex_number,
        "DHL Express": _dhl_number,
    }[voice.name](rng)
    return number, tracking_url(_CARRIER_OF[voice.name], number)


@dataclass(frozen=True)
class Route:
    origin: str
    destination: str
    international: bool


@dataclass
class _Story:
    status: ShipmentStatus
    events: list[Row]
    shipped_at: datetime
    last_event_at: datetime | None
    delivered_at: datetime | None
    eta: datetime | None


def plan_story(
    rng: random.Random, voice: Voice, route: Route, t0: datetime, end: datetime, plan: str, anchor: datetime
) -> _Story:
    """The scans of one parcel handed over at ``t0`` whose last news is at ``end`` (< anchor).

    ``plan`` is a ShipmentStatus value or ``"stalled"`` (in transit, silent since ``end``).
    """
    hub = rng.choice(voice.hubs)

    def jitter() -> timedelta:
        return timedelta(minutes=rng.randint(0, 50))

    steps: list[tuple[float, ShipmentStatus, str, str]] = [
        (0.0, INFO, voice.label, route.origin),
        (rng.uniform(3, 6), TRANSIT, voice.pickup, route.origin),
        (rng.uniform(8, 11), TRANSIT, voice.depart_origin, route.origin),
        (rng.uniform(18, 22), TRANSIT, voice.arrive_hub, hub),
        (rng.uniform(24, 28), TRANSIT, voice.depart_hub, hub),
    ]
    if route.international:
        steps += [
            (rng.uniform(50, 56), TRANSIT, "Customs clearance in progress", route.destination),
            (rng.uniform(60, 66), TRANSIT, "Clearance processing complete", route.destination),
            (rng.uniform(70, 76), TRANSIT, voice.arrive_local, route.destination),
        ]
    else:
        steps.append((rng.uniform(40, 46), TRANSIT, voice.arrive_local, route.destination))
    transit_days = 8 if route.international else 4

    def event(at: datetime, status: ShipmentStatus, message: str, location: str) -> Row:
        return new_row(TrackingEvent, shipment_id=0, occurred_at=at, status=status, message=message, location=location)

    def prefix(upto: int, until: datetime) -> list[Row]:
        """Steps 0..upto, squeezed if needed so the last lies at least an hour before ``until``."""
        room = (until - t0 - H).total_seconds() / 3600
        scale = min(1.0, room / steps[upto][0]) if steps[upto][0] > 0 else 1.0
        scale = max(scale, 0.01)
        return [
            event(
                t0 + timedelta(hours=off * scale, seconds=i) + (jitter() if i else timedelta(0)) * scale,
                st, msg, loc,
            )
            for i, (off, st, msg, loc) in enumerate(steps[: upto + 1])
        ]

    last = len(steps) - 1
    events: list[Row]
    status: ShipmentStatus
    delivered_at = None
    if plan == PENDING.value:
        return _Story(PENDING, [], t0, None, None, None)
    if plan == INFO.value:
        events, status = [event(t0, INFO, voice.label, route.origin)], INFO
    elif plan in {TRANSIT.value, STALLED, EXPIRED.value}:
        span = (end - t0).total_seconds() / 3600
        upto = max([i for i, s in enumerate(steps) if s[0] <= span] + [1])
        if plan == EXPIRED.value:
            upto = min(upto, 4)
        events = prefix(upto, end + H)
        status = EXPIRED if plan == EXPIRED.value else TRANSIT
    elif plan == OFD.value:
        events = prefix(last, end) + [event(end, OFD, voice.out_for_delivery, route.destination)]
        status = OFD
    elif plan == DELIVERED.value:
        ofd_at = end - timedelta(hours=rng.uniform(2, 6))
        events = prefix(last, ofd_at) + [
            event(ofd_at, OFD, voice.out_for_delivery, route.destination),
            event(end, DELIVERED, rng.choice(voice.delivered), route.destination),
        ]
        status, delivered_at = DELIVERED, end
    elif plan == FAILED.value:
        ofd_at = end - timedelta(hours=rng.uniform(3, 6))
        events = prefix(last, ofd_at) + [
            event(ofd_at, OFD, voice.out_for_delivery, route.destination),
            event(end, FAILED, voice.failed, route.destination),
        ]
        status = FAILED
    elif plan == PICKUP.value:
        events = prefix(last, end) + [event(end, PICKUP, voice.pickup_ready, route.destination)]
        status = PICKUP
    elif plan == EXCEPTION.value:
        upto = rng.randint(3, last)
        events = prefix(upto, end) + [event(end, EXCEPTION, rng.choice(voice.exception), steps[upto][3])]
        status = EXCEPTION
    else:  # pragma: no cover - programming error
        raise ValueError(plan)
    last_event_at = max(e.occurred_at for e in events)
    eta = t0 + timedelta(days=transit_days)
    eta = eta.replace(hour=20, minute=0, second=0, microsecond=0)
    if plan in {INFO.value, TRANSIT.value, OFD.value, PICKUP.value} and eta <= anchor:
        eta = anchor + timedelta(days=1, hours=20)
    return _Story(status, events, t0, last_event_at, delivered_at, eta)

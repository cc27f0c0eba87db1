"""Normalised shipment status and mappings from Shopify and carrier scan text.

The nine states follow the AfterShip tag model, which most tracking providers
can be mapped onto without losing information a support agent cares about.
"""

from __future__ import annotations

import re
from enum import Enum

__all__ = [
    "FINAL_STATUSES",
    "ShipmentStatus",
    "status_from_carrier_text",
    "status_from_shopify",
]


class ShipmentStatus(str, Enum):
    """Where a shipment is, independent of the carrier or shop platform."""

    PENDING = "pending"
    """No carrier information yet."""
    INFO_RECEIVED = "info_received"
    """Label created / carrier notified, parcel not handed over yet."""
    IN_TRANSIT = "in_transit"
    OUT_FOR_DELIVERY = "out_for_delivery"
    FAILED_ATTEMPT = "failed_attempt"
    """Delivery tried and failed; the carrier usually retries."""
    AVAILABLE_FOR_PICKUP = "available_for_pickup"
    """Waiting at a post office, pickup point or locker."""
    DELIVERED = "delivered"
    EXCEPTION = "exception"
    """Delay, customs hold, damage, loss, refusal, return to sender …"""
    EXPIRED = "expired"
    """Tracking stopped producing events; treated as given up."""

    @property
    def is_final(self) -> bool:
        """True if no further carrier events are expected.

        Only ``delivered`` and ``expired`` are final. ``exception`` is not:
        customs holds and delays resolve, and even a return to sender is
        still moving (back to the shop).
        """
        return self in FINAL_STATUSES


FINAL_STATUSES: frozenset[ShipmentStatus] = frozenset(
    {ShipmentStatus.DELIVERED, ShipmentStatus.EXPIRED}
)


_SHOPIFY_STATUSES: dict[str, ShipmentStatus] = {
    # Classic REST ``fulfillment.shipment_status`` values.
    "label_printed": ShipmentStatus.INFO_RECEIVED,
    "label_purchased": ShipmentStatus.INFO_RECEIVED,
    "confirmed": ShipmentStatus.INFO_RECEIVED,
    "attempted_delivery": ShipmentStatus.FAILED_ATTEMPT,
    "ready_for_pickup": ShipmentStatus.AVAILABLE_FOR_PICKUP,
    "in_transit": ShipmentStatus.IN_TRANSIT,
    "out_for_delivery": ShipmentStatus.OUT_FOR_DELIVERY,
    "delivered": ShipmentStatus.DELIVERED,
    "failure": ShipmentStatus.EXCEPTION,
    # Newer GraphQL FulfillmentEventStatus values, lower-cased.
    "carrier_picked_up": ShipmentStatus.IN_TRANSIT,
    "picked_up": ShipmentStatus.DELIVERED,  # collected by the buyer
    "delayed": ShipmentStatus.EXCEPTION,
    "buyer_action_required": ShipmentStatus.EXCEPTION,
    "ready_for_recipient_pickup": ShipmentStatus.AVAILABLE_FOR_PICKUP,
    "returning_to_sender": ShipmentStatus.EXCEPTION,
}


def status_from_shopify(shipment_status: str | None) -> ShipmentStatus:
    """Map a Shopify fulfillment ``shipment_status`` to a ``ShipmentStatus``.

    Accepts the REST values (``in_transit``) and GraphQL enum spellings
    (``IN_TRANSIT``). ``None``/empty means no carrier event yet → ``pending``.
    Values Shopify may add later also map to ``pending``: claiming a state we
    cannot justify (e.g. ``exception``) would alarm customers for nothing,
    and the next known event will correct it.
    """
    if not shipment_status:
        return ShipmentStatus.PENDING
    key = shipment_status.strip().lower().replace("-", "_").replace(" ", "_")
    return _SHOPIFY_STATUSES.get(key, ShipmentStatus.PENDING)


# Carrier scan text → status. Rules are tried in order and the first hit wins,
# so the order encodes precedence: "not delivered" must be seen before
# "delivered", "picked up by customer" before "picked up", "held for pickup"
# before "held in customs", and so on. Patterns run on text that is
# case-folded, with every run of non-alphanumeric characters replaced by one
# space and a space added at both ends, so " word " means a whole word.
_S = ShipmentStatus
_CARRIER_TEXT_RULES: tuple[tuple[ShipmentStatus, tuple[str, ...]], ...] = (
    (
        _S.DELIVERED,
        (
            r" (picked up|collected) by (the )?(customer|recipient|receiver|consignee|addressee) ",
            r" (picked up|collected) (from|at) (the )?(pickup|pick up|parcel|collection|access|post office)",
        ),
    ),
    (
        _S.EXCEPTION,
        (
            r" return(ed|ing)? to (the )?(sender|shipper|origin) ",
            r" (rts|undeliverable|undelivered|refused|rejected|damaged|lost|missing|seized|destroyed) ",
            r" (cancelled|canceled|incorrect address|wrong address|insufficient address|unknown address) ",
            r" address (problem|issue|error|incomplete) ",
            r" customs (delay|hold|held|exception|inspection) ",
            r" held (by|in|at) customs ",
            r" (delay|delayed|clearance delay) ",
            r" (duties|payment) (required|due|unpaid) ",
            r" held for payment ",
        ),
    ),
    (
        _S.FAILED_ATTEMPT,
        (
            r" (delivery )?attempt(ed)?( delivery)? ",
            r" (first|second|third|final|1st|2nd|3rd) attempt ",
            r" (not|could ?n t be|could not be|cannot be|can t be) delivered ",
            r" unable to deliver ",
            r" missed delivery ",
            r" no access ",
            r" (notice|card) left ",
            r" (receiver|recipient|addressee|customer|consignee) (was )?(not available|not home|unavailable|absent) ",
            r" (nobody|no one|noone) (home|available|present) ",
            r" business closed ",
            r" closed on arrival ",
        ),
    ),
    (
        _S.AVAILABLE_FOR_PICKUP,
        (
            r" (ready|available|waiting|awaiting|held) for (pickup|pick up|collection) ",
            r" held at (the )?(post office|pickup|pick up|parcel|collection|service|access point)",
            r" (at|to|in) (a |the )?(pickup|pick up|parcel|collection|access) (point|location|locker|shop|station)",
            r" (parcel )?locker ",
            r" awaiting collection ",
        ),
    ),
    (
        _S.OUT_FOR_DELIVERY,
        (
            r" out for delivery ",
            r" on (the )?(vehicle|van|truck) for delivery ",
            r" with (the )?(delivery )?(courier|driver) for delivery ",
            r" loaded (on|onto) (the )?delivery (vehicle|van|truck) ",
            r" with delivery courier ",
        ),
    ),
    (
        _S.IN_TRANSIT,
        (
            # Announcements that merely mention delivery.
            r" (to be|will be|expected to be|scheduled to be) delivered ",
            r" (expected|estimated|scheduled) delivery ",
        ),
    ),
    (_S.DELIVERED, (r" delivered ",)),
    (
        _S.INFO_RECEIVED,
        (
            r" (shipment|shipping|order|electronic) (information|info|notification|data) (received|sent|transmitted) ",
            r" (shipping )?label (created|printed|purchased) ",
            r" pre ?(shipment|shipping|advice) ",
            r" (awaiting|waiting for) (item|parcel|package|shipment|pickup by carrier) ",
            r" (ready|prepared) for (ups|usps|fedex|dhl|shipment|dispatch) ",
        ),
    ),
    (_S.EXCEPTION, (r" (exception|problem|issue) ",)),
    (
        _S.IN_TRANSIT,
        (
            r" in transit ",
            r" (arrived|arrival|departed|departure|left|processed|processing|sorted|sorting) ",
            r" (accepted|acceptance|picked up|pickup scan|origin scan|dispatched|shipped) ",
            r" (on (its|the) way|en route|forwarded|transferred|in flight|export|import) ",
            r" (customs )?clearance ",
            r" (cleared|released by) customs ",
            r" received (at|by|in) ",
            r" (facility|hub|depot|sort center|sort centre|distribution center|distribution centre) ",
        ),
    ),
    (_S.EXPIRED, (r" (expired|no updates for) ",)),
    (
        _S.PENDING,
        (
            r" pending ",
            r" no (tracking )?(information|info|data|events) ",
            r" not yet (available|in system|scanned) ",
        ),
    ),
)

_COMPILED_RULES: tuple[tuple[ShipmentStatus, re.Pattern[str]], ...] = tuple(
    (status, re.compile("|".join(f"(?:{p})" for p in patterns)))
    for status, patterns in _CARRIER_TEXT_RULES
)
_NON_WORD_RE = re.compile(r"[\W_]+")


def status_from_carrier_text(text: str) -> ShipmentStatus | None:
    """Guess the status from a carrier's (English) scan description.

    Case, punctuation and spacing are ignored (``"DELIVERED, Front Door"``,
    ``"Delivery attempted - no access"``). Returns ``None`` when nothing in
    the text is recognisable, so callers can keep the previous status.
    """
    if not text:
        return None
    normalized = f" {_NON_WORD_RE.sub(' ', text.casefold()).strip()} "
    # Apostrophes become spaces: "couldn't" → "couldn t" (handled in rules).
    for status, pattern in _COMPILED_RULES:
        if pattern.search(normalized):
            return status
    return None

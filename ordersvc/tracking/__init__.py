"""Shipment tracking helpers: status normalisation and tracking-number recognition.

``ordersvc`` is a leaf package: nothing here imports other project packages.

* :class:`ShipmentStatus` with :func:`status_from_shopify` and
  :func:`status_from_carrier_text` turn platform/carrier vocabularies into one
  enum (see :mod:`ordersvc.tracking.status`).
* :func:`find_tracking_numbers`, :func:`detect_carrier` and
  :func:`tracking_url` recognise UPS, USPS, FedEx, DHL Express and UPU S10
  numbers by their check digits (see :mod:`ordersvc.tracking.numbers` for the
  exact rules and trade-offs, :mod:`ordersvc.tracking.checksums` for the
  algorithms).
"""

from __future__ import annotations

from .numbers import (
    Carrier,
    TrackingMatch,
    detect_carrier,
    find_tracking_numbers,
    normalize_tracking_number,
    tracking_url,
)
from .status import (
    FINAL_STATUSES,
    ShipmentStatus,
    status_from_carrier_text,
    status_from_shopify,
)

__all__ = [
    "FINAL_STATUSES",
    "Carrier",
    "ShipmentStatus",
    "TrackingMatch",
    "detect_carrier",
    "find_tracking_numbers",
    "normalize_tracking_number",
    "status_from_carrier_text",
    "status_from_shopify",
    "tracking_url",
]

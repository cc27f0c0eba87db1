"""Shared pieces of the demo seeder: status constants, sizes, cheap row dicts and the time anchor."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from pydantic_core import PydanticUndefined
from sqlmodel import SQLModel

from ordersvc.tracking import ShipmentStatus

#: Shopify-style locale codes of the demo customers
DEMO_LOCALES = ("en", "es", "ru", "vi", "zh-CN", "zh-TW")

D = Decimal
CENT = Decimal("0.01")
H = timedelta(hours=1)

# statuses by value, whatever the enum calls its members
PENDING = ShipmentStatus("pending")
INFO = ShipmentStatus("info_received")
TRANSIT = ShipmentStatus("in_transit")
OFD = ShipmentStatus("out_for_delivery")
FAILED = ShipmentStatus("failed_attempt")
PICKUP = ShipmentStatus("available_for_pickup")
DELIVERED = ShipmentStatus("delivered")
EXCEPTION = ShipmentStatus("exception")
EXPIRED = ShipmentStatus("expired")
STALLED = "stalled"  # in transit, no scan for 5+ days (a planning state, stored as in_transit)

ONLINE_ORDERS = 280
AMAZON_ORDERS = 15
EBAY_ORDERS = 12
POS_ORDERS = 15
RANDOM_CUSTOMERS = 120


def money(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


class Row(dict[str, Any]):
    """A row to insert: a dict with attribute access, much cheaper to build than model instances."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name: str, value: Any) -> None:
        self[name] = value


_DEFAULTS: dict[type[SQLModel], dict[str, Any]] = {}


def new_row(model: type[SQLModel], **values: Any) -> Row:
    """A row of ``model``'s table: its field defaults overlaid with ``values``."""
    defaults = _DEFAULTS.get(model)
    if defaults is None:
        defaults = {}
        for name, info in model.model_fields.items():
            if info.default_factory is not None:
                defaults[name] = None  # every demo timestamp is given explicitly
            elif info.default is not PydanticUndefined:
                defaults[name] = info.default
        _DEFAULTS[model] = defaults
    row = Row(defaults)
    for key in ("tags",):
        if key in row and row[key] is None:
            row[key] = []
    row.update(values)
    return row


def demo_anchor(now: datetime | None = None) -> datetime:
    """``now`` rounded down to midnight UTC: the point every demo time is relative to."""
    now = now or datetime.now(UTC)
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    return now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)

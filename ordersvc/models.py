"""The order store's tables: customers, orders, shipments, returns, refunds and stock.

Every write goes through ``ordersvc.service`` / ``ordersvc.shopify`` / ``ordersvc.returns``;
these classes only describe rows. Conventions:

* times are timezone-aware UTC (sqlmodel's ``UTCDateTime`` refuses naive values);
* money is ``Decimal`` in a ``MoneyType`` column with the order's currency beside it;
* platform ids (Shopify's exceed 2^53) are strings or ``BigInteger``, never floats;
* enums are stored by value as short strings, so adding a value needs no ``ALTER TYPE``.
"""

from __future__ import annotations

import enum
from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from ordersvc.tracking import ShipmentStatus
from shopbase.clock import utcnow
from shopbase.coltypes import JSONType, MoneyType, enum_column

__all__ = [
    "SourceChannel",
    "FinancialStatus",
    "FulfillmentStatus",
    "RmaStatus",
    "Resolution",
    "ReturnMethod",
    "ReturnReason",
    "ItemCondition",
    "Customer",
    "Order",
    "OrderLine",
    "Shipment",
    "ShipmentLine",
    "TrackingEvent",
    "ShipmentUpdate",
    "ReturnAuthorization",
    "ReturnLine",
    "Refund",
    "StoreCredit",
    "ProductVariant",
    "Warehouse",
    "InventoryLevel",
    "InventoryItem",
    "ApiToken",
    "ShopSetting",
]


class SourceChannel(str, enum.Enum):
    online_store = "online_store"
    amazon = "amazon"
    ebay = "ebay"
    pos = "pos"
    other = "other"


class FinancialStatus(str, enum.Enum):
    pending = "pending"
    authorized = "authorized"
    partially_paid = "partially_paid"
    paid = "paid"
    partially_refunded = "partially_refunded"
    refunded = "refunded"
    voided = "voided"


class FulfillmentStatus(str, enum.Enum):
    unfulfilled = "unfulfilled"
    partial = "partial"
    fulfilled = "fulfilled"
    restocked = "restocked"


class RmaStatus(str, enum.Enum):
    requested = "requested"
    approved = "approved"
    label_issued = "label_issued"
    in_transit = "in_transit"
    received = "received"
    refunded = "refunded"
    exchanged = "exchanged"
    credited = "credited"
    rejected = "rejected"
    cancelled = "cancelled"


class Resolution(str, enum.Enum):
    refund = "refund"
    store_credit = "store_credit"
    exchange = "exchange"


class ReturnMethod(str, enum.Enum):
    mail = "mail"
    dropoff = "dropoff"
    in_store = "in_store"


class ReturnReason(str, enum.Enum):
    too_small = "too_small"
    too_large = "too_large"
    damaged = "damaged"
    defective = "defective"
    not_as_described = "not_as_described"
    wrong_item = "wrong_item"
    changed_mind = "changed_mind"
    other = "other"


class ItemCondition(str, enum.Enum):
    unopened = "unopened"
    like_new = "like_new"
    used = "used"
    damaged = "damaged"


class Customer(SQLModel, table=True):
    __tablename__ = "customer"

    id: int | None = Field(default=None, primary_key=True)
    external_id: str | None = Field(default=None, max_length=64, unique=True, index=True)
    email: str | None = Field(default=None, max_length=320, index=True)
    phone: str | None = Field(default=None, max_length=32, index=True)
    first_name: str = Field(default="", max_length=120)
    last_name: str = Field(default="", max_length=120)
    locale: str | None = Field(default=None, max_length=16)
    redacted_at: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)

    @property
    def display_name(self) -> str:
        return " ".join(p for p in (self.first_name, self.last_name) if p) or "Customer"


class Order(SQLModel, table=True):
    __tablename__ = "shop_order"
    __table_args__ = (
        sa.UniqueConstraint("source", "external_id", name="uq_order_source_external"),
        sa.Index("ix_order_customer_placed", "customer_id", "placed_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    source: SourceChannel = Field(default=SourceChannel.online_store, sa_type=enum_column(SourceChannel))
    external_id: str = Field(max_length=64)
    name: str = Field(max_length=64, index=True)
    customer_id: int | None = Field(default=None, foreign_key="customer.id", index=True)
    email: str | None = Field(default=None, max_length=320, index=True)
    phone: str | None = Field(default=None, max_length=32)
    currency: str = Field(default="USD", max_length=3)
    subtotal_price: Decimal = Field(default=Decimal("0"), sa_type=MoneyType)
    total_tax: Decimal = Field(default=Decimal("0"), sa_type=MoneyType)
    total_shipping: Decimal = Field(default=Decimal("0"), sa_type=MoneyType)
    total_discounts: Decimal = Field(default=Decimal("0"), sa_type=MoneyType)
    total_price: Decimal = Field(default=Decimal("0"), sa_type=MoneyType)
    financial_status: FinancialStatus = Field(
        default=FinancialStatus.paid, sa_type=enum_column(FinancialStatus)
    )
    fulfillment_status: FulfillmentStatus = Field(
        default=FulfillmentStatus.unfulfilled, sa_type=enum_column(FulfillmentStatus)
    )
    placed_at: datetime = Field(default_factory=utcnow)
    cancelled_at: datetime | None = None
    cancel_reason: str | None = Field(default=None, max_length=64)
    closed_at: datetime | None = None
    expected_ship_at: datetime | None = None
    shipping_address: dict[str, Any] | None = Field(default=None, sa_type=JSONType)
    billing_address: dict[str, Any] | None = Field(default=None, sa_type=JSONType)
    shipping_postal_code: str | None = Field(default=None, max_length=16, index=True)
    tags: list[str] = Field(default_factory=list, sa_type=JSONType)
    note: str | None = None
    stock_reserved: bool = False
    source_updated_at: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)

    @property
    def is_cancelled(self) -> bool:
        return self.cancelled_at is not None


class OrderLine(SQLModel, table=True):
    __tablename__ = "order_line"

    id: int | None = Field(default=None, primary_key=True)
    order_id: int = Field(foreign_key="shop_order.id", index=True, ondelete="CASCADE")
    external_id: str | None = Field(default=None, max_length=64)
    sku: str | None = Field(default=None, max_length=64, index=True)
    title: str = Field(default="", max_length=255)
    variant_title: str | None = Field(default=None, max_length=255)
    quantity: int = 1
    unit_price: Decimal = Field(default=Decimal("0"), sa_type=MoneyType)
    total_discount: Decimal = Field(default=Decimal("0"), sa_type=MoneyType)
    product_type: str | None = Field(default=None, max_length=120)
    returnable: bool = True
    final_sale: bool = False
    fulfilled_quantity: int = 0


class Shipment(SQLModel, table=True):
    __tablename__ = "shipment"
    __table_args__ = (
        sa.UniqueConstraint("order_id", "external_id", name="uq_shipment_order_external"),
        sa.Index("ix_shipment_eta", "eta"),  # analytics: shipments due in a period (migration 0014)
    )

    id: int | None = Field(default=None, primary_key=True)
    order_id: int = Field(foreign_key="shop_order.id", index=True, ondelete="CASCADE")
    external_id: str = Field(max_length=64)
    name: str | None = Field(default=None, max_length=64)
    carrier: str | None = Field(default=None, max_length=64)
    tracking_number: str | None = Field(default=None, max_length=64, index=True)
    tracking_url: str | None = Field(default=None, max_length=1024)
    status: ShipmentStatus = Field(default=ShipmentStatus.PENDING, sa_type=enum_column(ShipmentStatus))
    eta: datetime | None = None
    shipped_at: datetime | None = None
    delivered_at: datetime | None = None
    last_event_at: datetime | None = None
    source_updated_at: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class ShipmentLine(SQLModel, table=True):
    __tablename__ = "shipment_line"

    shipment_id: int = Field(foreign_key="shipment.id", primary_key=True, ondelete="CASCADE")
    order_line_id: int = Field(foreign_key="order_line.id", primary_key=True, ondelete="CASCADE")
    quantity: int = 1


class TrackingEvent(SQLModel, table=True):
    __tablename__ = "tracking_event"
    __table_args__ = (
        sa.UniqueConstraint("shipment_id", "occurred_at", "message", name="uq_tracking_event"),
        # the source's own event id (a Shopify fulfillment event id): a replay is found by it
        sa.Index("uq_tracking_event_external", "shipment_id", "external_id", unique=True),
    )

    id: int | None = Field(default=None, primary_key=True)
    shipment_id: int = Field(foreign_key="shipment.id", index=True, ondelete="CASCADE")
    occurred_at: datetime
    status: ShipmentStatus = Field(sa_type=enum_column(ShipmentStatus))
    message: str = Field(default="", max_length=500)
    location: str | None = Field(default=None, max_length=255)
    external_id: str | None = Field(default=None, max_length=64)


class ShipmentUpdate(SQLModel, table=True):
    """A shipment reached a status worth telling the customer about (``ordersvc.shipment_updates``).

    Written in the transaction that changed the shipment (a durable outbox: nothing is lost on
    a crash), at most once per shipment and status (the unique constraint); ``status`` is a
    ``ShipmentStatus`` value or ``"late"``. A consumer (the inbox's proactive job) claims rows
    whose ``due_at`` has come and sets ``processed_at`` and ``outcome`` once it is done.
    """

    __tablename__ = "shipment_update"
    __table_args__ = (
        sa.UniqueConstraint("shipment_id", "status", name="uq_shipment_update_status"),
        sa.Index("ix_shipment_update_due", "processed_at", "due_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    shipment_id: int = Field(foreign_key="shipment.id", ondelete="CASCADE")
    order_id: int = Field(foreign_key="shop_order.id", index=True, ondelete="CASCADE")
    status: str = Field(max_length=32)
    created_at: datetime = Field(default_factory=utcnow)
    due_at: datetime = Field(default_factory=utcnow)
    processed_at: datetime | None = None
    outcome: str | None = Field(default=None, max_length=32)


class ReturnAuthorization(SQLModel, table=True):
    __tablename__ = "return_authorization"

    id: int | None = Field(default=None, primary_key=True)
    rma_number: str = Field(max_length=32, unique=True, index=True)
    order_id: int = Field(foreign_key="shop_order.id", index=True)
    customer_id: int | None = Field(default=None, foreign_key="customer.id", index=True)
    status: RmaStatus = Field(default=RmaStatus.requested, sa_type=enum_column(RmaStatus), index=True)
    resolution: Resolution = Field(default=Resolution.refund, sa_type=enum_column(Resolution))
    method: ReturnMethod = Field(default=ReturnMethod.mail, sa_type=enum_column(ReturnMethod))
    currency: str = Field(default="USD", max_length=3)
    refund_amount: Decimal = Field(default=Decimal("0"), sa_type=MoneyType)
    credit_amount: Decimal = Field(default=Decimal("0"), sa_type=MoneyType)
    label_carrier: str | None = Field(default=None, max_length=32)
    label_tracking_number: str | None = Field(default=None, max_length=64)
    note: str | None = Field(default=None, max_length=1000)
    created_by: str = Field(default="bot", max_length=32)
    requested_at: datetime = Field(default_factory=utcnow)
    approved_at: datetime | None = None
    label_issued_at: datetime | None = None
    in_transit_at: datetime | None = None
    received_at: datetime | None = None
    refunded_at: datetime | None = None
    exchanged_at: datetime | None = None
    credited_at: datetime | None = None
    rejected_at: datetime | None = None
    cancelled_at: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class ReturnLine(SQLModel, table=True):
    __tablename__ = "return_line"

    id: int | None = Field(default=None, primary_key=True)
    rma_id: int = Field(foreign_key="return_authorization.id", index=True, ondelete="CASCADE")
    order_line_id: int = Field(foreign_key="order_line.id", index=True)
    quantity: int = 1
    reason: ReturnReason = Field(default=ReturnReason.other, sa_type=enum_column(ReturnReason))
    reason_note: str | None = Field(default=None, max_length=500)
    condition: ItemCondition = Field(default=ItemCondition.unopened, sa_type=enum_column(ItemCondition))
    exchange_sku: str | None = Field(default=None, max_length=64)


class Refund(SQLModel, table=True):
    __tablename__ = "refund"
    __table_args__ = (sa.UniqueConstraint("order_id", "external_id", name="uq_refund_order_external"),)

    id: int | None = Field(default=None, primary_key=True)
    order_id: int = Field(foreign_key="shop_order.id", index=True)
    rma_id: int | None = Field(default=None, foreign_key="return_authorization.id", index=True)
    external_id: str | None = Field(default=None, max_length=64)
    amount: Decimal = Field(default=Decimal("0"), sa_type=MoneyType)
    currency: str = Field(default="USD", max_length=3)
    note: str | None = Field(default=None, max_length=500)
    processed_at: datetime = Field(default_factory=utcnow)
    created_at: datetime = Field(default_factory=utcnow)


class StoreCredit(SQLModel, table=True):
    __tablename__ = "store_credit"

    id: int | None = Field(default=None, primary_key=True)
    customer_id: int | None = Field(default=None, foreign_key="customer.id", index=True)
    rma_id: int | None = Field(default=None, foreign_key="return_authorization.id", index=True)
    code: str = Field(max_length=32, unique=True)
    amount: Decimal = Field(default=Decimal("0"), sa_type=MoneyType)
    currency: str = Field(default="USD", max_length=3)
    created_at: datetime = Field(default_factory=utcnow)


class ProductVariant(SQLModel, table=True):
    """The catalogue entries exchanges choose from; ``product_key`` groups variants of one product."""

    __tablename__ = "product_variant"

    id: int | None = Field(default=None, primary_key=True)
    sku: str = Field(max_length=64, unique=True, index=True)
    product_key: str = Field(max_length=120, index=True)
    product_title: str = Field(default="", max_length=255)
    variant_title: str | None = Field(default=None, max_length=255)
    product_type: str | None = Field(default=None, max_length=120)
    price: Decimal = Field(default=Decimal("0"), sa_type=MoneyType)
    currency: str = Field(default="USD", max_length=3)
    final_sale: bool = False


class Warehouse(SQLModel, table=True):
    __tablename__ = "warehouse"

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=32, unique=True)
    name: str = Field(default="", max_length=120)
    address: dict[str, Any] | None = Field(default=None, sa_type=JSONType)
    is_default: bool = False


class InventoryLevel(SQLModel, table=True):
    __tablename__ = "inventory_level"
    __table_args__ = (sa.UniqueConstraint("warehouse_id", "sku", name="uq_inventory_wh_sku"),)

    id: int | None = Field(default=None, primary_key=True)
    warehouse_id: int = Field(foreign_key="warehouse.id", index=True)
    sku: str = Field(max_length=64, index=True)
    on_hand: int = 0
    reserved: int = 0
    safety_stock: int = 0
    #: Shopify's ``updated_at`` of the last ``inventory_levels/update`` applied (older ones change nothing)
    source_updated_at: datetime | None = None
    updated_at: datetime = Field(default_factory=utcnow)

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved

    @property
    def is_low(self) -> bool:
        return self.available <= self.safety_stock


class InventoryItem(SQLModel, table=True):
    """Shopify's inventory item (one per variant): how its stock webhooks find our SKU."""

    __tablename__ = "inventory_item"

    id: int | None = Field(default=None, primary_key=True)
    external_id: str = Field(max_length=64, unique=True)
    sku: str | None = Field(default=None, max_length=64, index=True)
    tracked: bool = True
    source_updated_at: datetime | None = None
    updated_at: datetime = Field(default_factory=utcnow)


class ApiToken(SQLModel, table=True):
    __tablename__ = "api_token"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=120)
    prefix: str = Field(max_length=16, index=True)
    token_hash: str = Field(max_length=64, unique=True)
    created_at: datetime = Field(default_factory=utcnow)
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None


class ShopSetting(SQLModel, table=True):
    """Merchant-editable configuration (return policy, shipping policy, business hours) as JSON."""

    __tablename__ = "shop_setting"

    key: str = Field(primary_key=True, max_length=64)
    value: dict[str, Any] = Field(default_factory=dict, sa_type=JSONType)
    updated_at: datetime = Field(default_factory=utcnow)

"""The API's documents as pydantic models: what a request may send and what an answer holds.

The OpenAPI document is generated from these models (``ordersvc.api.openapi``), the query
models also say which parameters a route accepts (``Query``), and the tests validate real
answers against the response models, so the document cannot drift from the behaviour.
Answers themselves are built by ``ordersvc.serialize``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ordersvc.models import (
    FinancialStatus,
    FulfillmentStatus,
    ItemCondition,
    Resolution,
    ReturnMethod,
    ReturnReason,
    RmaStatus,
    SourceChannel,
)
from ordersvc.tracking import ShipmentStatus

__all__ = [
    "DEFAULT_LIMIT",
    "MAX_LIMIT",
    "QueryModel",
    "OrdersQuery",
    "ShipmentsQuery",
    "ReturnsQuery",
    "InventoryQuery",
    "InventoryUpdate",
    "Error",
    "OrderSummary",
    "Order",
    "OrderShipments",
    "Shipment",
    "Return",
    "InventoryLevel",
    "InventoryChange",
    "OrderList",
    "ShipmentList",
    "ReturnList",
    "InventoryList",
    "RESPONSE_MODELS",
]

MAX_LIMIT = 100
DEFAULT_LIMIT = 50

Money = Annotated[
    str, Field(pattern=r"^-?\d+\.\d{2,4}$", examples=["404.95"], description="Decimal string in the currency")
]
RowId = Annotated[int, Field(description="Row id in Shopdesk's database")]
Cursor = Annotated[str | None, Field(description="Opaque; null on the last page")]


class _Doc(BaseModel):
    """An answer document: every key is listed, no other key appears."""

    model_config = ConfigDict(extra="forbid")


# --------------------------------------------------------------------------- requests


class QueryModel(BaseModel):
    """The query parameters a route accepts; ``Query`` refuses any other."""

    model_config = ConfigDict(extra="forbid")


Limit = Annotated[int, Field(ge=1, le=MAX_LIMIT, description=f"Page size (default {DEFAULT_LIMIT})")]
PageCursor = Annotated[str | None, Field(description="Opaque; the next_cursor of the previous page")]


class OrdersQuery(QueryModel):
    email: str | None = Field(None, max_length=320, description="Case-insensitive")
    status: FinancialStatus | FulfillmentStatus | Literal["open", "cancelled"] | None = Field(
        None, description="A financial or fulfillment status, 'open' or 'cancelled'"
    )
    source: SourceChannel | None = None
    updated_since: datetime | None = Field(None, description="ISO 8601; without an offset it is UTC")
    limit: Limit = DEFAULT_LIMIT
    cursor: PageCursor = None


class ShipmentsQuery(QueryModel):
    status: ShipmentStatus | None = None
    late: bool | None = Field(None, description="true: only late or stalled shipments; false: only the others")
    carrier: str | None = Field(None, max_length=64, description="Case-insensitive")
    limit: Limit = DEFAULT_LIMIT
    cursor: PageCursor = None


class ReturnsQuery(QueryModel):
    status: RmaStatus | None = None
    limit: Limit = DEFAULT_LIMIT
    cursor: PageCursor = None


class InventoryQuery(QueryModel):
    sku: str | None = Field(None, description="One SKU or up to 50 comma-separated")
    warehouse: str | None = Field(None, max_length=32, description="Warehouse code")
    low: bool | None = Field(None, description="true: only levels at or below their safety stock")
    limit: Limit = DEFAULT_LIMIT
    cursor: PageCursor = None


class InventoryUpdate(BaseModel):
    """The body of ``PUT /inventory/{warehouse}/{sku}``: either field or both."""

    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra={"minProperties": 1})

    on_hand: int | None = Field(default=None, ge=0, le=1_000_000_000)
    safety_stock: int | None = Field(default=None, ge=0, le=1_000_000_000)


# --------------------------------------------------------------------------- answers


class Error(_Doc):
    """Every answer that is not a 2xx: the shape of a refusal."""

    error: str = Field(
        description="Machine-readable reason, e.g. order_not_found, invalid_parameter, invalid_token",
        examples=["order_not_found"],
    )
    message: str = Field(description="One line for people", examples=["no order '#9999'"])
    fields: dict[str, str] | None = Field(None, description="Problems by field of the body, when there are any")


class OrderRef(_Doc):
    id: RowId
    name: str


class OrderSummary(_Doc):
    """The order's own fields, without lines, shipments or returns."""

    id: RowId
    name: str = Field(examples=["#1001"])
    source: SourceChannel
    external_id: str = Field(description="The platform's id, as a string (may exceed 2^53)")
    customer_id: int | None
    email: str | None
    phone: str | None
    currency: str = Field(min_length=3, max_length=3)
    subtotal_price: Money
    total_tax: Money
    total_shipping: Money
    total_discounts: Money
    total_price: Money
    financial_status: FinancialStatus
    fulfillment_status: FulfillmentStatus
    cancelled: bool
    cancelled_at: datetime | None
    cancel_reason: str | None
    closed_at: datetime | None
    placed_at: datetime
    updated_at: datetime
    shipping_postal_code: str | None
    tags: list[str]


class Customer(_Doc):
    id: RowId
    external_id: str | None
    first_name: str
    last_name: str
    name: str
    email: str | None
    phone: str | None
    locale: str | None
    redacted: bool


class OrderLine(_Doc):
    id: RowId
    external_id: str | None
    sku: str | None
    title: str
    variant_title: str | None
    product_type: str | None
    quantity: int
    fulfilled_quantity: int
    unit_price: Money
    total_discount: Money
    total: Money
    returnable: bool
    final_sale: bool


class TrackingEvent(_Doc):
    occurred_at: datetime
    status: ShipmentStatus
    message: str
    location: str | None


class ShipmentItem(_Doc):
    line_id: RowId
    sku: str | None
    title: str
    quantity: int


class Shipment(_Doc):
    id: RowId
    external_id: str
    name: str | None
    status: ShipmentStatus
    late: bool = Field(
        description="Not delivered and past its ETA or without a scan for 5 days, or in exception / "
        "failed_attempt / expired"
    )
    carrier: str | None
    tracking_number: str | None
    tracking_url: str | None
    eta: datetime | None
    shipped_at: datetime | None
    delivered_at: datetime | None
    last_event_at: datetime | None
    lines: list[ShipmentItem]
    events: list[TrackingEvent] = Field(description="Newest first")
    order: OrderRef | None = Field(None, description="Present in listings")


class ReturnedItem(_Doc):
    order_line_id: RowId
    sku: str | None
    title: str | None
    quantity: int
    reason: ReturnReason
    reason_note: str | None
    condition: ItemCondition
    exchange_sku: str | None


class Return(_Doc):
    id: RowId
    rma_number: str
    status: RmaStatus
    resolution: Resolution
    method: ReturnMethod
    currency: str
    refund_amount: Money
    credit_amount: Money
    label_carrier: str | None
    label_tracking_number: str | None
    note: str | None
    created_by: str
    steps: dict[str, datetime | None] = Field(description="When the return reached each step (null if it has not)")
    lines: list[ReturnedItem]
    order: OrderRef | None = Field(None, description="Present in listings")


class Refund(_Doc):
    id: RowId
    external_id: str | None
    amount: Money
    currency: str
    note: str | None
    rma_number: str | None
    processed_at: datetime


class StoreCredit(_Doc):
    id: RowId
    code: str
    amount: Money
    currency: str
    rma_number: str | None
    created_at: datetime


class Order(OrderSummary):
    """An order with everything about it."""

    customer: Customer | None
    note: str | None
    expected_ship_at: datetime | None
    stock_reserved: bool
    shipping_address: dict[str, Any] | None
    billing_address: dict[str, Any] | None
    lines: list[OrderLine]
    shipments: list[Shipment]
    returns: list[Return]
    refunds: list[Refund]
    store_credits: list[StoreCredit]


class OrderShipments(_Doc):
    order: OrderRef
    shipments: list[Shipment]


class InventoryLevel(_Doc):
    id: RowId
    warehouse: str
    warehouse_id: RowId
    sku: str
    on_hand: int
    reserved: int
    available: int = Field(description="on_hand - reserved")
    safety_stock: int
    low: bool = Field(description="available <= safety_stock")
    updated_at: datetime


class InventoryChange(_Doc):
    inventory: InventoryLevel
    created: bool


class OrderList(_Doc):
    orders: list[OrderSummary]
    next_cursor: Cursor


class ShipmentList(_Doc):
    shipments: list[Shipment]
    next_cursor: Cursor


class ReturnList(_Doc):
    returns: list[Return]
    next_cursor: Cursor


class InventoryList(_Doc):
    inventory: list[InventoryLevel]
    next_cursor: Cursor


#: every model that appears in ``components.schemas``
RESPONSE_MODELS: tuple[type[BaseModel], ...] = (
    Error,
    OrderSummary,
    Order,
    OrderShipments,
    Shipment,
    Return,
    InventoryLevel,
    InventoryChange,
    InventoryUpdate,
    OrderList,
    ShipmentList,
    ReturnList,
    InventoryList,
)

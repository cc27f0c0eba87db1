"""Shopify payloads: the pydantic input models (not tables), their value types and ``load_json``.

Every string is scrubbed of NUL bytes and lone surrogates; a payload we cannot use raises
:class:`~shopbase.refusal.Refused` (``invalid_payload``, 422) naming the field, never its value.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, TypeVar

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
)

from ordersvc.models import FinancialStatus, FulfillmentStatus
from ordersvc.tracking import ShipmentStatus, status_from_shopify
from shopbase.coltypes import to_money
from shopbase.refusal import Refused
from shopbase.text import storable

MAX_MONEY = Decimal("100000000000000")  # numeric(18, 4) holds 14 integer digits
MAX_QUANTITY = 1_000_000
ADDRESS_KEYS = (
    "name",
    "address1",
    "address2",
    "city",
    "province",
    "province_code",
    "zip",
    "country",
    "country_code",
    "phone",
)
INACTIVE_FULFILLMENT = frozenset({"cancelled", "error", "failure"})
_ID_RE = re.compile(r"[0-9]{1,64}")
_CURRENCY_RE = re.compile(r"[A-Za-z]{3}")


def payload_refused(message: str, code: str = "invalid_payload") -> Refused:
    """The refusal of a payload we cannot use (422): ``message`` is one line naming the field,
    never its value."""
    return Refused(code, message, status=422)


def load_json(data: bytes | str) -> Any:
    """Parse JSON keeping big integers exact and floats as ``Decimal`` (never binary floats)."""
    return json.loads(data, parse_float=Decimal)


def _fit(limit: int, *, strict: bool = False) -> Any:
    """Optional text: NULs and surrounding blanks removed, empty → None, longer than
    ``limit`` → truncated (free text) or refused (``strict``: keys such as a SKU)."""

    def check(value: str | None) -> str | None:
        if value is None:
            return None
        text = str(storable(value)).strip()
        if not text:
            return None
        if len(text) > limit:
            if strict:
                raise ValueError(f"is longer than {limit} characters")
            text = text[:limit]
        return text

    return AfterValidator(check)


def _none_is_empty(value: Any) -> Any:
    return [] if value is None else value


def _parse_id(value: Any, info: ValidationInfo) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        if value <= 0:
            raise ValueError("must be a positive integer")
        return str(value)
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("gid://shopify/"):
            text = text.rsplit("/", 1)[-1]
        if _ID_RE.fullmatch(text):
            return text
        if info.context and info.context.get("free_ids") and 0 < len(text) <= 64 and text.isprintable():
            return text
    if isinstance(value, (float, Decimal)):
        raise ValueError("must be an integer or a string of digits, not a fractional number")
    raise ValueError("must be an integer or a string of digits")


def _parse_money(value: Any) -> Decimal:
    try:
        amount = to_money(value) if not isinstance(value, (dict, list)) else None
    except ValueError:
        amount = None
    if amount is None:
        raise ValueError('must be an amount such as "404.95"')
    if abs(amount) >= MAX_MONEY:
        raise ValueError("is too large")
    exponent = amount.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -4:  # the columns keep four decimals
        amount = amount.quantize(Decimal("0.0001"))
    return amount


def _parse_email(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError("must be a string")
    text = str(storable(value)).strip().lower()
    if not text:
        return None
    if len(text) > 320:
        raise ValueError("is longer than 320 characters")
    return text


def _parse_phone(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise ValueError("must be a string")
    text = str(storable(value)).strip()
    if not text:
        return None
    if len(text) > 32:
        raise ValueError("is longer than 32 characters")
    return text


def _to_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


def _status_text(value: Any) -> Any:
    """Enum-like text: blank → None, otherwise trimmed and lower-cased."""
    if isinstance(value, str):
        return value.strip().lower() or None
    return value


def _parse_currency(value: Any) -> str:
    if value is None or value == "":
        return "USD"
    if not isinstance(value, str) or not _CURRENCY_RE.fullmatch(value.strip()):
        raise ValueError("must be a three-letter currency code")
    return value.strip().upper()


def _parse_tags(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        parts: Iterable[Any] = value.split(",")
    elif isinstance(value, list):
        parts = value
    else:
        raise ValueError("must be a comma-separated string or a list of strings")
    tags: list[str] = []
    for part in parts:
        if not isinstance(part, str):
            raise ValueError("must contain only strings")
        tag = storable(part).strip()[:255]
        if tag and tag not in tags:
            tags.append(tag)
    return tags


def _parse_shipment_status(value: Any) -> ShipmentStatus:
    if isinstance(value, ShipmentStatus):
        return value
    if value is None or isinstance(value, str):
        return status_from_shopify(value)
    raise ValueError("must be a string")


ShopifyId = Annotated[str, BeforeValidator(_parse_id)]
Money = Annotated[Decimal, BeforeValidator(_parse_money)]
Email = Annotated[str | None, BeforeValidator(_parse_email)]
Phone = Annotated[str | None, BeforeValidator(_parse_phone)]
UtcDatetime = Annotated[AwareDatetime, AfterValidator(_to_utc)]
Currency = Annotated[str, BeforeValidator(_parse_currency)]
Tags = Annotated[list[str], BeforeValidator(_parse_tags)]
Quantity = Annotated[int, Field(ge=0, le=MAX_QUANTITY)]
Status = Annotated[str | None, BeforeValidator(_status_text)]
Key64 = Annotated[str | None, _fit(64, strict=True)]
Text255 = Annotated[str | None, _fit(255)]
Text120 = Annotated[str | None, _fit(120)]
Text64 = Annotated[str | None, _fit(64)]
Text16 = Annotated[str | None, _fit(16)]
Text500 = Annotated[str | None, _fit(500)]
Text2k = Annotated[str | None, _fit(2048)]
LongText = Annotated[str | None, _fit(10_000)]


class _In(BaseModel):
    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True, frozen=True)


_M = TypeVar("_M", bound=_In)


# --------------------------------------------------------------------------- payload models


class AddressIn(_In):
    name: Text255 = None
    first_name: Text120 = None
    last_name: Text120 = None
    address1: Text255 = None
    address2: Text255 = None
    city: Text255 = None
    province: Text255 = None
    province_code: Text16 = None
    zip: Text64 = None
    country: Text255 = None
    country_code: Text16 = None
    phone: Phone = None

    def to_json(self) -> dict[str, str | None] | None:
        values: dict[str, str | None] = {key: getattr(self, key, None) for key in ADDRESS_KEYS}
        if not values["name"]:
            values["name"] = " ".join(p for p in (self.first_name, self.last_name) if p) or None
        return values if any(values.values()) else None


class CustomerIn(_In):
    id: ShopifyId | None = None
    email: Email = None
    phone: Phone = None
    first_name: Text120 = None
    last_name: Text120 = None
    locale: Text16 = None


class PropertyIn(_In):
    name: Text255 = None
    value: Any = None


class LineItemIn(_In):
    id: ShopifyId
    sku: Key64 = None
    title: Text255 = None
    name: Text255 = None
    variant_title: Text255 = None
    quantity: Quantity = 1
    price: Money = Decimal("0")
    total_discount: Money = Decimal("0")
    product_type: Text120 = None
    gift_card: bool | None = None
    fulfillment_status: Status = None
    properties: Annotated[list[PropertyIn], BeforeValidator(_none_is_empty)] = []
    tags: Tags = []
    product_tags: Tags = []
    final_sale: bool | None = None


class FulfillmentLineIn(_In):
    id: ShopifyId
    quantity: Quantity = 1


class FulfillmentIn(_In):
    id: ShopifyId
    order_id: ShopifyId | None = None
    name: Text64 = None
    status: Status = None
    created_at: UtcDatetime | None = None
    updated_at: UtcDatetime | None = None
    tracking_company: Text64 = None
    tracking_number: Text2k = None
    tracking_numbers: Annotated[list[Text2k], BeforeValidator(_none_is_empty)] = []
    tracking_url: Text2k = None
    tracking_urls: Annotated[list[Text2k], BeforeValidator(_none_is_empty)] = []
    shipment_status: Annotated[ShipmentStatus, BeforeValidator(_parse_shipment_status)] = ShipmentStatus.PENDING
    line_items: Annotated[list[FulfillmentLineIn], BeforeValidator(_none_is_empty)] = []

    @property
    def active(self) -> bool:
        return self.status not in INACTIVE_FULFILLMENT


class TransactionIn(_In):
    kind: Status = None
    status: Status = None
    amount: Money = Decimal("0")
    currency: Annotated[str | None, BeforeValidator(lambda v: _parse_currency(v) if v else None)] = None


class RefundIn(_In):
    id: ShopifyId
    order_id: ShopifyId | None = None
    note: Text500 = None
    created_at: UtcDatetime | None = None
    processed_at: UtcDatetime | None = None
    transactions: Annotated[list[TransactionIn], BeforeValidator(_none_is_empty)] = []

    @property
    def amount(self) -> Decimal:
        """Money actually returned: successful ``refund`` transactions, summed."""
        return sum(
            (t.amount for t in self.transactions if t.kind == "refund" and t.status == "success"),
            Decimal("0"),
        )


class _AmountIn(_In):
    amount: Money = Decimal("0")


class MoneySetIn(_In):
    shop_money: _AmountIn | None = None


class ShippingLineIn(_In):
    price: Money = Decimal("0")


class OrderIn(_In):
    id: ShopifyId
    name: Key64 = None
    order_number: int | None = None
    email: Email = None
    contact_email: Email = None
    phone: Phone = None
    currency: Currency = "USD"
    subtotal_price: Money = Decimal("0")
    total_tax: Money = Decimal("0")
    total_discounts: Money = Decimal("0")
    total_price: Money = Decimal("0")
    total_shipping_price_set: MoneySetIn | None = None
    shipping_lines: Annotated[list[ShippingLineIn], BeforeValidator(_none_is_empty)] = []
    financial_status: Annotated[FinancialStatus | None, BeforeValidator(_status_text)] = None
    fulfillment_status: Annotated[FulfillmentStatus | None, BeforeValidator(_status_text)] = None
    created_at: UtcDatetime | None = None
    processed_at: UtcDatetime | None = None
    updated_at: UtcDatetime | None = None
    cancelled_at: UtcDatetime | None = None
    cancel_reason: Text64 = None
    closed_at: UtcDatetime | None = None
    shipping_address: AddressIn | None = None
    billing_address: AddressIn | None = None
    tags: Tags = []
    note: LongText = None
    customer: CustomerIn | None = None
    customer_locale: Text16 = None
    line_items: Annotated[list[LineItemIn], BeforeValidator(_none_is_empty)] = []
    fulfillments: Annotated[list[FulfillmentIn], BeforeValidator(_none_is_empty)] = []
    refunds: Annotated[list[RefundIn], BeforeValidator(_none_is_empty)] = []

    @property
    def total_shipping(self) -> Decimal:
        if self.total_shipping_price_set and self.total_shipping_price_set.shop_money:
            return self.total_shipping_price_set.shop_money.amount
        return sum((s.price for s in self.shipping_lines), Decimal("0"))

    @property
    def display_name(self) -> str:
        if self.name:
            return self.name
        if self.order_number is not None:
            return f"#{self.order_number}"
        return self.id


class RedactIn(_In):
    customer: CustomerIn
    orders_to_redact: Annotated[list[ShopifyId], BeforeValidator(_none_is_empty)] = []
    orders_requested: Annotated[list[ShopifyId], BeforeValidator(_none_is_empty)] = []


def _describe(exc: ValidationError) -> str:
    errors = exc.errors(include_input=False, include_url=False)
    first = errors[0]
    where = ".".join(str(part) for part in first["loc"]) or "payload"
    message = f"{where}: {first['msg']}"
    if len(errors) > 1:
        message += f" (and {len(errors) - 1} more)"
    return message


def validate_payload(model: type[_M], payload: Any, what: str, *, free_ids: bool = False) -> _M:
    if not isinstance(payload, dict):
        raise payload_refused(f"{what} payload must be a JSON object")
    try:
        payload = storable(payload)
    except RecursionError:
        raise payload_refused(f"{what} payload is nested too deeply") from None
    try:
        return model.model_validate(payload, context={"free_ids": free_ids})
    except ValidationError as exc:
        raise payload_refused(_describe(exc)) from None


def parse_order(payload: Any, *, free_ids: bool = False) -> OrderIn:
    """Validate an order payload; ``free_ids`` accepts non-numeric ids (marketplace numbers)."""
    return validate_payload(OrderIn, payload, "order", free_ids=free_ids)

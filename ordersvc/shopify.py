"""Shopify order ingest: Admin REST orders, fulfillments and refunds onto the order store.

Translate at the edge: a Shopify payload is validated by the pydantic models below
(:class:`OrderIn` and friends, none of them tables), turned into our own values, and
written into the caller's session. Nothing else in the project reads a Shopify payload.
The functions flush but never commit: the caller owns the transaction, so a payload that
fails half-way leaves nothing behind once the caller rolls back.

Rules
-----
* **Ids** (order, line item, fulfillment, refund, customer) exceed 2^53, so they arrive as
  JSON integers (or strings of digits, or ``gid://shopify/Order/123``) and are stored as
  strings. A float id means precision was already lost and is refused. Parse bodies with
  :func:`load_json`, which keeps integers exact and turns JSON floats into ``Decimal``.
* **Money** strings ("404.95") become ``Decimal``; the shop currency (``shop_money``) is used.
* **Stale updates never roll back**: a payload whose ``updated_at`` is older than or equal to
  the stored ``Order.source_updated_at`` changes nothing (``unchanged``); the same holds per
  shipment with the fulfillment's ``updated_at``. A payload *without* ``updated_at`` for a row
  that has one is treated as stale too (it cannot prove it is newer). Payloads without
  timestamps on rows without timestamps (CSV imports) are compared field by field, so
  importing the same data twice reports ``unchanged``.
* **Final sale**: a line is final sale when (first match wins) the line carries an explicit
  boolean ``final_sale``; a line property named ``final-sale`` / ``final_sale`` / ``Final sale``
  (a leading ``_`` for hidden properties is ignored) whose value is not false/no/0/off, or any
  property whose value is "final sale"; the line's ``tags``/``product_tags`` contain
  ``final-sale``; the catalogue's ``ProductVariant`` for the SKU is ``final_sale``; the order
  is tagged ``final-sale`` (every line) or ``final-sale:<SKU>`` (that SKU). Final-sale lines
  and gift cards are not ``returnable``.
* **Fulfillments** with status ``cancelled``, ``error`` or ``failure`` never shipped: their
  shipment (if one was recorded) is removed. Only the first tracking number and URL are kept
  (the model has one of each); a number longer than 64 characters is dropped, a URL that is
  not http(s) is replaced by the carrier's public tracking page.
* **Stock**: a newly created order that is neither cancelled nor fulfilled reserves its
  unfulfilled units (``inventory.reserve_order``); a cancellation releases them
  (``inventory.release_order``); units newly fulfilled on a reserved order consume the
  reservation (``inventory.ship_sku``).
* **Redaction** (``customers/redact``) blanks the customer's name, email, phone and locale
  and the email, phone, addresses and note of their orders; order rows, lines and money
  stay for bookkeeping. A redacted customer's later orders are stored without that PII.
"""

from __future__ import annotations

import enum
import json
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from typing import Annotated, Any, TypeVar

import sqlalchemy as sa
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
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from ordersvc.inventory import release_order, reserve_order, ship_sku
from ordersvc.models import (
    Customer,
    FinancialStatus,
    FulfillmentStatus,
    Order,
    OrderLine,
    ProductVariant,
    Refund,
    Shipment,
    ShipmentLine,
    SourceChannel,
    utcnow,
)
from ordersvc.tracking import Carrier, ShipmentStatus, detect_carrier, status_from_shopify, tracking_url
from ordersvc.types import to_money

__all__ = [
    "ShopifyPayloadError",
    "Outcome",
    "UpsertResult",
    "OrderIn",
    "LineItemIn",
    "FulfillmentIn",
    "RefundIn",
    "CustomerIn",
    "AddressIn",
    "load_json",
    "parse_order",
    "normalize_postal_code",
    "upsert_order",
    "upsert_shopify_order",
    "upsert_shopify_fulfillment",
    "apply_shopify_refund",
    "cancel_from_shopify",
    "redact_customer",
    "customer_data_report",
    "FINAL_SALE_TAG",
]

FINAL_SALE_TAG = "final-sale"
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
_COMPANY_PREFIXES = (("usps", Carrier.USPS), ("ups", Carrier.UPS), ("fedex", Carrier.FEDEX), ("dhl", Carrier.DHL))
_CARRIER_NAMES = {Carrier.UPS: "UPS", Carrier.USPS: "USPS", Carrier.FEDEX: "FedEx", Carrier.DHL: "DHL Express"}
_ID_RE = re.compile(r"[0-9]{1,64}")
_CURRENCY_RE = re.compile(r"[A-Za-z]{3}")
_FALSY = frozenset({"false", "no", "0", "off", "n"})


class ShopifyPayloadError(ValueError):
    """A payload we cannot use; ``str(exc)`` is one line naming the field (never its value)."""


class Outcome(str, enum.Enum):
    created = "created"
    updated = "updated"
    unchanged = "unchanged"


@dataclass(frozen=True)
class UpsertResult:
    """What an upsert did to one order; ``events`` name what changed (``order.updated`` …)."""

    status: Outcome
    order: Order
    events: tuple[str, ...] = ()


def load_json(data: bytes | str) -> Any:
    """Parse JSON keeping big integers exact and floats as ``Decimal`` (never binary floats)."""
    return json.loads(data, parse_float=Decimal)


# --------------------------------------------------------------------------- value types


def _clean(value: str) -> str:
    return value.replace("\x00", "").strip()


def _fit(limit: int, *, strict: bool = False) -> Any:
    """Optional text: NULs and surrounding blanks removed, empty → None, longer than
    ``limit`` → truncated (free text) or refused (``strict``: keys such as a SKU)."""

    def check(value: str | None) -> str | None:
        if value is None:
            return None
        text = _clean(value)
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


def _check_id(value: Any, info: ValidationInfo) -> str:
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


def _check_money(value: Any) -> Decimal:
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


def _check_email(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError("must be a string")
    text = _clean(value).lower()
    if not text:
        return None
    if len(text) > 320:
        raise ValueError("is longer than 320 characters")
    return text


def _check_phone(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise ValueError("must be a string")
    text = _clean(value)
    if not text:
        return None
    if len(text) > 32:
        raise ValueError("is longer than 32 characters")
    return text


def _to_utc(value: datetime) -> datetime:
    return value.astimezone(timezone.utc)


def _status_text(value: Any) -> Any:
    """Enum-like text: blank → None, otherwise trimmed and lower-cased."""
    if isinstance(value, str):
        return value.strip().lower() or None
    return value


def _check_currency(value: Any) -> str:
    if value is None or value == "":
        return "USD"
    if not isinstance(value, str) or not _CURRENCY_RE.fullmatch(value.strip()):
        raise ValueError("must be a three-letter currency code")
    return value.strip().upper()


def _check_tags(value: Any) -> list[str]:
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
        tag = _clean(part)[:255]
        if tag and tag not in tags:
            tags.append(tag)
    return tags


def _check_shipment_status(value: Any) -> ShipmentStatus:
    if isinstance(value, ShipmentStatus):
        return value
    if value is None or isinstance(value, str):
        return status_from_shopify(value)
    raise ValueError("must be a string")


ShopifyId = Annotated[str, BeforeValidator(_check_id)]
Money = Annotated[Decimal, BeforeValidator(_check_money)]
Email = Annotated[str | None, BeforeValidator(_check_email)]
Phone = Annotated[str | None, BeforeValidator(_check_phone)]
UtcDatetime = Annotated[AwareDatetime, AfterValidator(_to_utc)]
Currency = Annotated[str, BeforeValidator(_check_currency)]
Tags = Annotated[list[str], BeforeValidator(_check_tags)]
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
    shipment_status: Annotated[ShipmentStatus, BeforeValidator(_check_shipment_status)] = ShipmentStatus.PENDING
    line_items: Annotated[list[FulfillmentLineIn], BeforeValidator(_none_is_empty)] = []

    @property
    def active(self) -> bool:
        return self.status not in INACTIVE_FULFILLMENT


class TransactionIn(_In):
    kind: Status = None
    status: Status = None
    amount: Money = Decimal("0")
    currency: Annotated[str | None, BeforeValidator(lambda v: _check_currency(v) if v else None)] = None


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


class _RedactIn(_In):
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


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _scrub(value: Any) -> Any:
    """Every string in the payload made storable: lone surrogates (valid JSON escapes, but no
    encoder or database accepts them) become U+FFFD and NUL bytes are dropped."""
    if isinstance(value, str):
        if "\x00" in value:
            value = value.replace("\x00", "")
        return _LONE_SURROGATE.sub("\ufffd", value) if _LONE_SURROGATE.search(value) else value
    if isinstance(value, dict):
        return {_scrub(k): _scrub(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    return value


def _validate(model: type[_M], payload: Any, what: str, *, free_ids: bool = False) -> _M:
    if not isinstance(payload, dict):
        raise ShopifyPayloadError(f"{what} payload must be a JSON object")
    try:
        payload = _scrub(payload)
    except RecursionError:
        raise ShopifyPayloadError(f"{what} payload is nested too deeply") from None
    try:
        return model.model_validate(payload, context={"free_ids": free_ids})
    except ValidationError as exc:
        raise ShopifyPayloadError(_describe(exc)) from None


def parse_order(payload: Any, *, free_ids: bool = False) -> OrderIn:
    """Validate an order payload; ``free_ids`` accepts non-numeric ids (marketplace numbers)."""
    return _validate(OrderIn, payload, "order", free_ids=free_ids)


def normalize_postal_code(value: str | None) -> str | None:
    """Postal code as compared during verification: upper case, no whitespace."""
    if not value:
        return None
    code = "".join(value.split()).upper()[:16]
    return code or None


# --------------------------------------------------------------------------- helpers


def _assign(row: Any, values: dict[str, Any]) -> bool:
    """Set the attributes that differ; True when anything changed."""
    changed = False
    for key, value in values.items():
        if getattr(row, key) != value:
            setattr(row, key, value)
            changed = True
    return changed


def _is_stale(incoming: datetime | None, stored: datetime | None) -> bool:
    if stored is None:
        return False
    return incoming is None or incoming <= stored


def _slug(text: Any) -> str:
    return re.sub(r"[\s_]+", "-", str(text).strip().lower()).lstrip("-")


def _is_final_sale(
    item: LineItemIn, order_tags: Sequence[str], variant: ProductVariant | None
) -> bool:
    if item.final_sale is not None:
        return item.final_sale
    for prop in item.properties:
        if prop.name and _slug(prop.name) == FINAL_SALE_TAG:
            if prop.value is None or _slug(prop.value) not in _FALSY:
                return True
        if prop.value is not None and _slug(prop.value) == FINAL_SALE_TAG:
            return True
    if any(_slug(tag) == FINAL_SALE_TAG for tag in (*item.tags, *item.product_tags)):
        return True
    if variant is not None and variant.final_sale:
        return True
    for tag in order_tags:
        name, _, sku = tag.partition(":")
        if _slug(name) == FINAL_SALE_TAG and (not sku or (item.sku and sku.strip().lower() == item.sku.lower())):
            return True
    return False


def _carrier_from_company(company: str | None) -> Carrier | None:
    if not company:
        return None
    key = company.strip().lower()
    for prefix, carrier in _COMPANY_PREFIXES:
        if key.startswith(prefix):
            return carrier
    return None


def _web_url(value: str | None) -> str | None:
    if value and value.strip().lower().startswith(("https://", "http://")) and len(value.strip()) <= 1024:
        return value.strip()
    return None


async def _lines_of(session: AsyncSession, order: Order) -> list[OrderLine]:
    stmt = select(OrderLine).where(OrderLine.order_id == order.id).order_by(col(OrderLine.id))
    return list((await session.exec(stmt)).all())


async def _find_shopify_order(session: AsyncSession, external_id: str) -> Order | None:
    """A Shopify order by its id; the online store first if several sources hold the id."""
    stmt = (
        select(Order)
        .where(Order.external_id == external_id)
        .order_by(sa.case((col(Order.source) == SourceChannel.online_store, 0), else_=1), col(Order.id))
    )
    return (await session.exec(stmt)).first()


# --------------------------------------------------------------------------- customers


async def _upsert_customer(
    session: AsyncSession, data: CustomerIn | None, email: str | None, locale: str | None
) -> tuple[Customer | None, bool]:
    external_id = data.id if data else None
    email = (data.email if data else None) or email
    if external_id is None and email is None:
        return None, False
    customer: Customer | None = None
    if external_id is not None:
        stmt = select(Customer).where(Customer.external_id == external_id)
        customer = (await session.exec(stmt)).first()
    if customer is None and email is not None:
        same_account = sa.or_(col(Customer.external_id).is_(None), col(Customer.external_id) == external_id)
        stmt = select(Customer).where(Customer.email == email, same_account).order_by(col(Customer.id))
        customer = (await session.exec(stmt)).first()
    created = customer is None
    if customer is None:
        customer = Customer(external_id=external_id, email=email)
        session.add(customer)
    if customer.redacted_at is not None:
        return customer, False
    values: dict[str, Any] = {}
    if external_id is not None and customer.external_id is None:
        values["external_id"] = external_id
    if email:
        values["email"] = email
    if data is not None:
        for key in ("phone", "first_name", "last_name"):
            if getattr(data, key):
                values[key] = getattr(data, key)
    if (data and data.locale) or locale:
        values["locale"] = (data.locale if data and data.locale else locale)
    changed = _assign(customer, values)
    if changed and not created:
        customer.updated_at = utcnow()
    await session.flush()
    return customer, created or changed


# --------------------------------------------------------------------------- order parts


async def _upsert_lines(
    session: AsyncSession, order: Order, items: Sequence[LineItemIn], order_tags: Sequence[str]
) -> tuple[bool, dict[str, OrderLine]]:
    existing = {line.external_id: line for line in await _lines_of(session, order)}
    skus = sorted({item.sku for item in items if item.sku})
    variants: dict[str, ProductVariant] = {}
    if skus:
        found = await session.exec(select(ProductVariant).where(col(ProductVariant.sku).in_(skus)))
        variants = {v.sku: v for v in found.all()}
    seen: set[str] = set()
    changed = False
    for index, item in enumerate(items):
        if item.id in seen:
            raise ShopifyPayloadError(f"line_items.{index}.id: duplicate line item id")
        seen.add(item.id)
        variant = variants.get(item.sku) if item.sku else None
        final_sale = _is_final_sale(item, order_tags, variant)
        values: dict[str, Any] = {
            "sku": item.sku,
            "title": item.title or item.name or "",
            "variant_title": item.variant_title,
            "quantity": item.quantity,
            "unit_price": item.price,
            "total_discount": item.total_discount,
            "product_type": item.product_type or (variant.product_type if variant else None),
            "final_sale": final_sale,
            "returnable": not (final_sale or bool(item.gift_card)),
        }
        line = existing.get(item.id)
        if line is None:
            assert order.id is not None
            line = OrderLine(order_id=order.id, external_id=item.id, **values)
            session.add(line)
            existing[item.id] = line
            changed = True
        else:
            changed |= _assign(line, values)
    await session.flush()
    return changed, {key: line for key, line in existing.items() if key is not None}


async def _apply_fulfillment(
    session: AsyncSession, order: Order, data: FulfillmentIn, lines: dict[str, OrderLine]
) -> bool:
    """Create, update or remove the shipment of one fulfillment; True when anything changed."""
    assert order.id is not None
    stmt = select(Shipment).where(Shipment.order_id == order.id, Shipment.external_id == data.id)
    shipment = (await session.exec(stmt)).first()
    if shipment is not None and _is_stale(data.updated_at, shipment.source_updated_at):
        return False
    if not data.active:
        if shipment is None:
            return False
        await session.exec(sa.delete(ShipmentLine).where(col(ShipmentLine.shipment_id) == shipment.id))
        await session.delete(shipment)
        await session.flush()
        return True

    quantities: dict[int, int] = defaultdict(int)
    for index, item in enumerate(data.line_items):
        line = lines.get(item.id)
        if line is None or line.id is None:
            raise ShopifyPayloadError(
                f"fulfillments.line_items.{index}.id: line item {item.id} is not on order {order.name}"
            )
        quantities[line.id] += item.quantity

    numbers = [n for n in (data.tracking_number, *data.tracking_numbers) if n and n.strip()]
    number = _clean(numbers[0]) if numbers else None
    if number is not None and (len(number) > 64 or not number):
        number = None
    carrier_code = (detect_carrier(number) if number else None) or _carrier_from_company(data.tracking_company)
    url = _web_url(data.tracking_url) or next((u for u in map(_web_url, data.tracking_urls) if u), None)
    if url is None and number and carrier_code is not None:
        url = tracking_url(carrier_code, number)
    carrier = data.tracking_company or (_CARRIER_NAMES.get(carrier_code) if carrier_code else None)

    status = data.shipment_status
    delivered_at: datetime | None = None
    if status is ShipmentStatus.DELIVERED:
        delivered_at = (shipment.delivered_at if shipment else None) or data.updated_at or utcnow()
    values: dict[str, Any] = {
        "name": data.name,
        "carrier": carrier,
        "tracking_number": number,
        "tracking_url": url,
        "status": status,
        "delivered_at": delivered_at,
    }
    if data.created_at is not None or shipment is None:
        values["shipped_at"] = data.created_at
    changed = False
    if shipment is None:
        shipment = Shipment(order_id=order.id, external_id=data.id, **values)
        session.add(shipment)
        changed = True
    elif _assign(shipment, values):
        shipment.updated_at = utcnow()
        changed = True
    if data.updated_at is not None:
        shipment.source_updated_at = data.updated_at
    await session.flush()

    assert shipment.id is not None
    stmt_lines = select(ShipmentLine).where(ShipmentLine.shipment_id == shipment.id)
    current = {sl.order_line_id: sl for sl in (await session.exec(stmt_lines)).all()}
    for line_id, quantity in quantities.items():
        row = current.get(line_id)
        if row is None:
            session.add(ShipmentLine(shipment_id=shipment.id, order_line_id=line_id, quantity=quantity))
            changed = True
        elif row.quantity != quantity:
            row.quantity = quantity
            changed = True
    await session.flush()
    return changed


async def _sync_fulfilled_quantities(
    session: AsyncSession, order: Order, fully_fulfilled: set[str] | None = None
) -> bool:
    """``OrderLine.fulfilled_quantity`` from the shipments; newly shipped units consume stock."""
    stmt = (
        select(col(ShipmentLine.order_line_id), sa.func.sum(col(ShipmentLine.quantity)))
        .join(Shipment, col(Shipment.id) == col(ShipmentLine.shipment_id))
        .where(Shipment.order_id == order.id)
        .group_by(col(ShipmentLine.order_line_id))
    )
    shipped = {line_id: int(total or 0) for line_id, total in (await session.exec(stmt)).all()}
    everything = order.fulfillment_status is FulfillmentStatus.fulfilled
    changed = False
    for line in await _lines_of(session, order):
        full = everything or (fully_fulfilled is not None and line.external_id in fully_fulfilled)
        done = line.quantity if full else min(line.quantity, shipped.get(line.id, 0))
        if done != line.fulfilled_quantity:
            delta = done - line.fulfilled_quantity
            line.fulfilled_quantity = done
            changed = True
            if delta > 0 and order.stock_reserved and line.sku:
                await ship_sku(session, line.sku, delta)
    await session.flush()
    return changed


async def _apply_refund(session: AsyncSession, order: Order, data: RefundIn) -> bool:
    assert order.id is not None
    stmt = select(Refund).where(Refund.order_id == order.id, Refund.external_id == data.id)
    refund = (await session.exec(stmt)).first()
    currency = next((t.currency for t in data.transactions if t.currency), None) or order.currency
    values: dict[str, Any] = {"amount": data.amount, "currency": currency, "note": data.note}
    when = data.processed_at or data.created_at
    if when is not None:
        values["processed_at"] = when
    if refund is None:
        session.add(Refund(order_id=order.id, external_id=data.id, **values))
        await session.flush()
        return True
    changed = _assign(refund, values)
    await session.flush()
    return changed


def _order_values(data: OrderIn, customer: Customer | None) -> dict[str, Any]:
    shipping = data.shipping_address.to_json() if data.shipping_address else None
    billing = data.billing_address.to_json() if data.billing_address else None
    email = data.email or data.contact_email or (customer.email if customer else None)
    phone = data.phone or (customer.phone if customer else None)
    note = data.note
    if customer is not None and customer.redacted_at is not None:
        email = phone = note = None
        shipping = billing = None
    values: dict[str, Any] = {
        "name": data.display_name,
        "customer_id": customer.id if customer else None,
        "email": email,
        "phone": phone,
        "currency": data.currency,
        "subtotal_price": data.subtotal_price,
        "total_tax": data.total_tax,
        "total_shipping": data.total_shipping,
        "total_discounts": data.total_discounts,
        "total_price": data.total_price,
        "financial_status": data.financial_status or FinancialStatus.pending,
        "fulfillment_status": data.fulfillment_status or FulfillmentStatus.unfulfilled,
        "cancelled_at": data.cancelled_at,
        "cancel_reason": data.cancel_reason,
        "closed_at": data.closed_at,
        "shipping_address": shipping,
        "billing_address": billing,
        "shipping_postal_code": normalize_postal_code(shipping.get("zip") if shipping else None),
        "tags": list(data.tags),
        "note": note,
    }
    placed_at = data.processed_at or data.created_at
    if placed_at is not None:
        values["placed_at"] = placed_at
    return values


# --------------------------------------------------------------------------- public API


async def upsert_order(
    session: AsyncSession,
    data: OrderIn,
    *,
    source: SourceChannel | str = SourceChannel.online_store,
) -> UpsertResult:
    """Create or update one validated order with its lines, shipments, refunds and customer."""
    source = SourceChannel(source)
    stmt = select(Order).where(Order.source == source, Order.external_id == data.id)
    order = (await session.exec(stmt)).first()
    if order is not None and _is_stale(data.updated_at, order.source_updated_at):
        return UpsertResult(Outcome.unchanged, order)

    customer, customer_changed = await _upsert_customer(
        session, data.customer, data.email or data.contact_email, data.customer_locale
    )
    values = _order_values(data, customer)
    created = order is None
    was_cancelled = False
    if order is None:
        order = Order(source=source, external_id=data.id, source_updated_at=data.updated_at, **values)
        session.add(order)
        changed = True
    else:
        was_cancelled = order.is_cancelled
        changed = _assign(order, values)
        if data.updated_at is not None:
            order.source_updated_at = data.updated_at
    await session.flush()

    lines_changed, lines = await _upsert_lines(session, order, data.line_items, data.tags)
    shipments_changed = False
    seen_fulfillments: set[str] = set()
    for index, fulfillment in enumerate(data.fulfillments):
        if fulfillment.id in seen_fulfillments:
            raise ShopifyPayloadError(f"fulfillments.{index}.id: duplicate fulfillment id")
        seen_fulfillments.add(fulfillment.id)
        shipments_changed |= await _apply_fulfillment(session, order, fulfillment, lines)
    fully = {item.id for item in data.line_items if item.fulfillment_status == "fulfilled"}
    lines_changed |= await _sync_fulfilled_quantities(session, order, fully)
    refunds_created = False
    for refund in data.refunds:
        refunds_created |= await _apply_refund(session, order, refund)

    events: list[str] = []
    cancelled_now = order.is_cancelled and not was_cancelled and not created
    if created:
        events.append("order.created")
        open_order = order.fulfillment_status in (FulfillmentStatus.unfulfilled, FulfillmentStatus.partial)
        if not order.is_cancelled and open_order:
            await reserve_order(session, order)
    elif cancelled_now:
        await release_order(session, order)
        events.append("order.cancelled")
    elif changed or lines_changed or customer_changed or refunds_created:
        events.append("order.updated")
    if not created and (changed or lines_changed or customer_changed):
        order.updated_at = utcnow()
    if shipments_changed:
        events.append("shipment.updated")
    if refunds_created:
        events.append("refund.created")
    await session.flush()

    if created:
        status = Outcome.created
    elif events:
        status = Outcome.updated
    else:
        status = Outcome.unchanged
    return UpsertResult(status, order, tuple(events))


async def upsert_shopify_order(
    session: AsyncSession, payload: dict[str, Any], *, source: SourceChannel | str = SourceChannel.online_store
) -> UpsertResult:
    """Upsert a Shopify Admin REST order (``orders/create``, ``orders/updated``, an export)."""
    return await upsert_order(session, parse_order(payload), source=source)


async def upsert_shopify_fulfillment(session: AsyncSession, payload: dict[str, Any]) -> UpsertResult:
    """Apply a ``fulfillments/create`` or ``fulfillments/update`` payload to its order's shipment."""
    data = _validate(FulfillmentIn, payload, "fulfillment")
    if data.order_id is None:
        raise ShopifyPayloadError("order_id: Field required")
    order = await _find_shopify_order(session, data.order_id)
    if order is None:
        raise ShopifyPayloadError(f"order_id: order {data.order_id} is not in the order store yet")
    lines = {line.external_id: line for line in await _lines_of(session, order) if line.external_id}
    changed = await _apply_fulfillment(session, order, data, lines)
    if not changed:
        return UpsertResult(Outcome.unchanged, order)
    await _sync_fulfilled_quantities(session, order)
    lines_now = await _lines_of(session, order)
    if order.fulfillment_status in (FulfillmentStatus.unfulfilled, FulfillmentStatus.partial):
        total = sum(line.quantity for line in lines_now)
        done = sum(line.fulfilled_quantity for line in lines_now)
        if total and done >= total:
            order.fulfillment_status = FulfillmentStatus.fulfilled
        elif done:
            order.fulfillment_status = FulfillmentStatus.partial
    order.updated_at = utcnow()
    await session.flush()
    return UpsertResult(Outcome.updated, order, ("shipment.updated",))


async def apply_shopify_refund(session: AsyncSession, payload: dict[str, Any]) -> UpsertResult:
    """Record a ``refunds/create`` payload as a ``Refund`` of its order (idempotent)."""
    data = _validate(RefundIn, payload, "refund")
    if data.order_id is None:
        raise ShopifyPayloadError("order_id: Field required")
    order = await _find_shopify_order(session, data.order_id)
    if order is None:
        raise ShopifyPayloadError(f"order_id: order {data.order_id} is not in the order store yet")
    if not await _apply_refund(session, order, data):
        return UpsertResult(Outcome.unchanged, order)
    return UpsertResult(Outcome.updated, order, ("refund.created",))


async def cancel_from_shopify(session: AsyncSession, payload: dict[str, Any]) -> UpsertResult:
    """Apply an ``orders/cancelled`` payload (a full order): the order ends up cancelled."""
    data = parse_order(payload)
    if data.cancelled_at is None:
        data = data.model_copy(update={"cancelled_at": data.updated_at or utcnow()})
    return await upsert_order(session, data)


async def _customers_and_orders(
    session: AsyncSession, data: _RedactIn, order_ids: Sequence[str]
) -> tuple[list[Customer], list[Order]]:
    conditions = []
    if data.customer.id is not None:
        conditions.append(col(Customer.external_id) == data.customer.id)
    if data.customer.email is not None:
        same = sa.or_(col(Customer.external_id).is_(None), col(Customer.external_id) == data.customer.id)
        conditions.append(sa.and_(col(Customer.email) == data.customer.email, same))
    customers: list[Customer] = []
    if conditions:
        customers = list((await session.exec(select(Customer).where(sa.or_(*conditions)))).all())
    order_conditions = []
    customer_ids = [c.id for c in customers if c.id is not None]
    if customer_ids:
        order_conditions.append(col(Order.customer_id).in_(customer_ids))
    if order_ids:
        order_conditions.append(
            sa.and_(col(Order.source) == SourceChannel.online_store, col(Order.external_id).in_(list(order_ids)))
        )
    if data.customer.email is not None:
        order_conditions.append(col(Order.email) == data.customer.email)
    orders: list[Order] = []
    if order_conditions:
        stmt = select(Order).where(sa.or_(*order_conditions)).order_by(col(Order.placed_at), col(Order.id))
        orders = list((await session.exec(stmt)).all())
    return customers, orders


async def redact_customer(session: AsyncSession, payload: dict[str, Any]) -> dict[str, int]:
    """``customers/redact``: blank the customer's PII and their orders' contact details.

    Order rows, lines, refunds and money stay (bookkeeping). Returns counts only.
    """
    data = _validate(_RedactIn, payload, "customers/redact")
    if data.customer.id is None and data.customer.email is None:
        raise ShopifyPayloadError("customer.id: Field required")
    customers, orders = await _customers_and_orders(session, data, data.orders_to_redact)
    now = utcnow()
    for customer in customers:
        _assign(customer, {"email": None, "phone": None, "first_name": "", "last_name": "", "locale": None})
        customer.redacted_at = customer.redacted_at or now
        customer.updated_at = now
    for order in orders:
        blank = {
            "email": None,
            "phone": None,
            "shipping_address": None,
            "billing_address": None,
            "shipping_postal_code": None,
            "note": None,
        }
        if _assign(order, blank):
            order.updated_at = now
    await session.flush()
    return {"customers": len(customers), "orders": len(orders)}


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    return value


async def customer_data_report(session: AsyncSession, payload: dict[str, Any]) -> dict[str, Any]:
    """``customers/data_request``: everything the order store holds on the customer, JSON-ready."""
    data = _validate(_RedactIn, payload, "customers/data_request")
    if data.customer.id is None and data.customer.email is None:
        raise ShopifyPayloadError("customer.id: Field required")
    customers, orders = await _customers_and_orders(session, data, data.orders_requested)
    customer_fields = (
        "id", "external_id", "email", "phone", "first_name", "last_name", "locale", "created_at", "redacted_at",
    )  # fmt: skip
    order_fields = (
        "id", "source", "external_id", "name", "email", "phone", "currency", "total_price",
        "financial_status", "fulfillment_status", "placed_at", "cancelled_at", "shipping_address",
        "billing_address", "tags", "note",
    )  # fmt: skip
    report_orders = []
    for order in orders:
        entry = {key: _plain(getattr(order, key)) for key in order_fields}
        entry["lines"] = [
            {"sku": line.sku, "title": line.title, "quantity": line.quantity, "unit_price": str(line.unit_price)}
            for line in await _lines_of(session, order)
        ]
        report_orders.append(entry)
    return {
        "customers": [{key: _plain(getattr(c, key)) for key in customer_fields} for c in customers],
        "orders": report_orders,
    }


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

Modules: ``payloads`` (the input models and their value types), ``upsert`` (orders,
fulfillments, refunds, cancellations) and ``privacy`` (``customers/redact`` and the data
report). This package re-exports their public names.
"""

from __future__ import annotations

from ordersvc.shopify.payloads import (
    AddressIn,
    CustomerIn,
    FulfillmentIn,
    LineItemIn,
    OrderIn,
    RefundIn,
    load_json,
    parse_order,
)
from ordersvc.shopify.privacy import customer_data_report, redact_customer
from ordersvc.shopify.upsert import (
    FINAL_SALE_TAG,
    Outcome,
    UpsertResult,
    apply_shopify_refund,
    cancel_from_shopify,
    upsert_order,
    upsert_shopify_fulfillment,
    upsert_shopify_order,
)

__all__ = [
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
    "upsert_order",
    "upsert_shopify_order",
    "upsert_shopify_fulfillment",
    "apply_shopify_refund",
    "cancel_from_shopify",
    "redact_customer",
    "customer_data_report",
    "FINAL_SALE_TAG",
]

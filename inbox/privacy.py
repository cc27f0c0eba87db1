"""Shopify's GDPR webhooks, answered by erasing everything (``inbox.actions.customer_erase``),
not just the order store: the app passes :func:`shopify_privacy_handlers` to
``ordersvc.webhooks.setup``. Each runs inside the delivery's transaction (the webhook's
dedupe row and the erasure commit together); the files go right after that commit."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from inbox.actions.customer_erase import customer_erase
from ordersvc.models import Customer
from ordersvc.shopify import redact_customer
from ordersvc.shopify.payloads import RedactIn, payload_refused, validate_payload

__all__ = ["shopify_privacy_handlers"]

Handler = Callable[[AsyncSession, dict[str, Any]], Awaitable[str]]


def shopify_privacy_handlers(files_dir: Path | None) -> dict[str, Handler]:
    """``customers/redact`` erases the customer (by email, and by Shopify id for the email we
    hold); ``shop/redact`` (48 hours after the shop uninstalled the app) erases every customer."""

    async def customers_redact(session: AsyncSession, payload: dict[str, Any]) -> str:
        data = validate_payload(RedactIn, payload, "customers/redact")
        if data.customer.id is None and data.customer.email is None:
            raise payload_refused("customer.id: Field required")
        emails = {data.customer.email} if data.customer.email else set()
        if data.customer.id is not None:
            stored = (await session.exec(select(Customer.email).where(
                col(Customer.external_id) == data.customer.id))).all()
            emails.update(e for e in stored if e)
        totals: dict[str, int] = {}
        for email in sorted(emails):
            erasure = await customer_erase(session, email, files_dir=files_dir, actor="shopify")
            for key, value in erasure.counts().items():
                totals[key] = totals.get(key, 0) + value
        orders = await redact_customer(session, payload)  # orders_to_redact and an email-less customer
        totals["orders"] = max(totals.get("orders", 0), orders["orders"])
        return "erased " + " ".join(f"{k}={v}" for k, v in sorted(totals.items()))

    async def shop_redact(session: AsyncSession, payload: dict[str, Any]) -> str:
        erasure = await customer_erase(session, None, everyone=True, files_dir=files_dir, actor="shopify")
        return "erased " + " ".join(f"{k}={v}" for k, v in sorted(erasure.counts().items()))

    return {"customers/redact": customers_redact, "shop/redact": shop_redact}

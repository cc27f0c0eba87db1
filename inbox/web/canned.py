"""Canned responses: admin-written Jinja templates rendered for one conversation.

The body is template source written by an admin; everything about the customer is passed
in as data (plain dicts of strings), so a customer who names themselves ``{{ 7*7 }}`` gets
those characters back, not 49. Rendering happens in a ``SandboxedEnvironment`` (no attribute
tricks, no access to Python internals), as plain text (the reply is text; the page escapes it).
Missing values render empty: ``{{ order.name }}`` without an order is ``""``.
"""

from __future__ import annotations

from typing import Any

from jinja2 import ChainableUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment
from sqlmodel.ext.asyncio.session import AsyncSession

from inbox.models import Contact, Conversation
from inbox.web.customer import verified_customer_id
from inbox.web.rendering import safe_url
from ordersvc.models import Customer
from ordersvc.service import order_bundle, orders_for_customer

__all__ = ["CannedError", "render_canned", "canned_context", "check_canned_body", "MAX_CANNED_CHARS"]

MAX_CANNED_CHARS = 4000

_env = SandboxedEnvironment(autoescape=False, undefined=ChainableUndefined, keep_trailing_newline=False)


class CannedError(ValueError):
    """The canned response's template is broken; ``str(exc)`` says where."""


def check_canned_body(body: str) -> str:
    """The body, if it is a valid template of a sane size; else CannedError."""
    text = (body or "").replace("\r\n", "\n").strip()
    if not text:
        raise CannedError("the body is empty")
    if len(text) > MAX_CANNED_CHARS or "\x00" in text:
        raise CannedError(f"the body must be at most {MAX_CANNED_CHARS} characters, without NUL")
    try:
        _env.parse(text)
    except TemplateError as exc:
        raise CannedError(f"template error: {exc}") from None
    return text


def render_canned(body: str, context: dict[str, Any]) -> str:
    try:
        return _env.from_string(body).render(**context).strip()
    except TemplateError as exc:
        raise CannedError(f"template error: {exc}") from None
    except (ArithmeticError, TypeError, ValueError) as exc:
        raise CannedError(f"template error: {type(exc).__name__}") from None


async def canned_context(db: AsyncSession, conversation: Conversation) -> dict[str, Any]:
    """{customer, order, tracking_link} for the conversation's verified customer (else empty)."""
    contact = await db.get(Contact, conversation.contact_id)
    context: dict[str, Any] = {"customer": {}, "order": {}, "tracking_link": ""}
    if contact is None:
        return context
    customer_id = verified_customer_id(contact)
    if customer_id is None:
        first = (contact.display_name or "").split(" ")[0]
        context["customer"] = {"first_name": "", "name": "", "display_name": first}
        return context
    customer = await db.get(Customer, customer_id)
    if customer is not None:
        context["customer"] = {
            "first_name": customer.first_name,
            "last_name": customer.last_name,
            "name": customer.display_name,
            "email": customer.email or "",
        }
    orders = await orders_for_customer(db, customer_id, limit=1)
    if orders and orders[0].id is not None:
        bundle = await order_bundle(db, orders[0].id)
        order = bundle.order
        context["order"] = {
            "name": order.name,
            "total": f"{order.total_price:.2f}",
            "currency": order.currency,
            "financial_status": order.financial_status.value,
            "fulfillment_status": order.fulfillment_status.value,
            "placed_at": order.placed_at.date().isoformat(),
            "cancelled": order.cancelled_at is not None,
        }
        for sb in reversed(bundle.shipments):
            link = safe_url(sb.shipment.tracking_url, ("http", "https"))
            if link:
                context["tracking_link"] = link
                break
    return context

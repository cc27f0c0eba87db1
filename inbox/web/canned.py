"""Canned responses: admin-written Jinja templates rendered for one conversation.

The body is template source written by an admin; everything about the customer is passed
in as data (plain dicts of strings), so a customer who names themselves ``{{ 7*7 }}`` gets
those characters back, not 49. Rendering happens in a ``SandboxedEnvironment`` (no attribute
tricks, no access to Python internals), as plain text (the reply is text; the page escapes it).
Missing values render empty: ``{{ order.name }}`` without an order is ``""``.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from jinja2 import ChainableUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment
from sqlmodel.ext.asyncio.session import AsyncSession

from inbox.models import Contact, Conversation
from inbox.queries.customers import verified_customer_id
from inbox.web.rendering import safe_url
from ordersvc.models import Customer
from ordersvc.service import order_bundle, orders_for_customer
from shopbase.formatting import format_date, format_money, install_filters

__all__ = [
    "CannedError",
    "CannedChoice",
    "render_canned",
    "canned_context",
    "check_canned_body",
    "pick_body",
    "MAX_CANNED_CHARS",
]

MAX_CANNED_CHARS = 4000

_MAX_RESULT_CHARS = 4_000
_RANGE_BUDGET = 1_000  # loop steps from range() per rendering


class _CannedEnvironment(SandboxedEnvironment):
    """The sandbox, plus a cap on arithmetic: ``{{ 9**9**9**9 }}`` or ``{{ "x" * 10**9 }}`` in a
    canned body must not hang or exhaust the server (intercepted operators are also never
    constant-folded at compile time)."""

    intercepted_binops = frozenset(["**", "*"])

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**":
            if not all(isinstance(v, int | float) for v in (left, right)) or abs(right) > 64 or abs(left) > 10**6:
                raise CannedError("template error: exponent too large")
            return left**right
        if isinstance(left, str | list | tuple) or isinstance(right, str | list | tuple):
            count = right if isinstance(left, str | list | tuple) else left
            seq = left if isinstance(left, str | list | tuple) else right
            if isinstance(count, int) and len(seq) * count > _MAX_RESULT_CHARS:
                raise CannedError("template error: repeated text too long")
        elif isinstance(left, int) and isinstance(right, int) and max(abs(left), abs(right)) > 10**30:
            raise CannedError("template error: number too large")
        return left * right


_env = _CannedEnvironment(autoescape=False, undefined=ChainableUndefined, keep_trailing_newline=False)
install_filters(_env)  # money, day, moment ... in the conversation's language (the context's `locale`)
_budget: ContextVar[list[int]] = ContextVar("canned_range_budget")


def _bounded_range(*args: int) -> range:
    steps = range(*args)
    left = _budget.get([0])
    left[0] -= len(steps)
    if left[0] < 0:
        raise CannedError("template error: loops too long")
    return steps


_env.globals["range"] = _bounded_range


class CannedError(ValueError):
    """The canned response's template is broken; ``str(exc)`` says where."""


@dataclass(frozen=True)
class CannedChoice:
    """The body picked for a conversation: ``language`` it is written in; ``wanted`` the
    conversation's language (``fallback`` when they differ)."""

    body: str
    language: str
    wanted: str

    @property
    def fallback(self) -> bool:
        return self.language != self.wanted


def pick_body(bodies: dict[str, str], wanted: str | None, default: str) -> CannedChoice:
    """The body in the conversation's language, else the shop's default language, else the first
    one there is (in the order of the six languages). CannedError when there is none at all."""
    from inbox.replies import SUPPORTED_LANGUAGES

    target = wanted if wanted in SUPPORTED_LANGUAGES else default
    for language in (target, default, *SUPPORTED_LANGUAGES):
        body = (bodies or {}).get(language or "")
        if body:
            return CannedChoice(body=body, language=str(language), wanted=str(target))
    raise CannedError("the canned response has no body")


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
    token = _budget.set([_RANGE_BUDGET])
    try:
        out: list[str] = []
        size = 0
        for chunk in _env.from_string(body).generate(**context):
            size += len(chunk)
            if size > _MAX_RESULT_CHARS * 4:
                raise CannedError("template error: the text is too long")
            out.append(chunk)
        return "".join(out).strip()
    except CannedError:
        raise
    except TemplateError as exc:
        raise CannedError(f"template error: {exc}") from None
    except (ArithmeticError, TypeError, ValueError) as exc:
        raise CannedError(f"template error: {type(exc).__name__}") from None
    finally:
        _budget.reset(token)


async def canned_context(db: AsyncSession, conversation: Conversation, *, default_language: str = "en",
                         timezone: str = "UTC", language: str | None = None) -> dict[str, Any]:
    """{customer, order, tracking_link} for the conversation's verified customer (else empty).

    Amounts and dates are written for the customer: in the conversation's language (else
    ``default_language``) and the shop's ``timezone``; ``order.total`` is "$1,234.56" or
    "1.234,56 €", ``order.placed_at`` "Dec 2, 2026" or "2 дек. 2026 г.". The same ``locale``
    and ``timezone`` serve the formatting filters a body may use (``{{ x|money('EUR') }}``).
    """
    locale = language or conversation.language or default_language  # language: the body's, when it differs
    contact = await db.get(Contact, conversation.contact_id)
    context: dict[str, Any] = {"customer": {}, "order": {}, "tracking_link": "", "locale": locale,
                               "timezone": timezone}
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
            "total": format_money(order.total_price, order.currency, locale),
            "currency": order.currency,
            "financial_status": order.financial_status.value,
            "fulfillment_status": order.fulfillment_status.value,
            "placed_at": format_date(order.placed_at, locale, timezone),
            "cancelled": order.cancelled_at is not None,
        }
        for sb in reversed(bundle.shipments):
            link = safe_url(sb.shipment.tracking_url, ("http", "https"))
            if link:
                context["tracking_link"] = link
                break
    return context

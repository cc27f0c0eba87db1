"""Returns insight: return rates and reasons per product, computed in SQL with aggregates.

A *product* is the catalogue's ``ProductVariant.product_key`` of the line's SKU, else the SKU,
else the line's title; its name is the catalogue's product title, else the line's title.
Units *sold* in a period are the quantities of order lines of orders placed in it (cancelled
orders excluded); units *returned* are the quantities of return lines of RMAs requested in it
(cancelled RMAs excluded). The rate is returned / sold (None when nothing was sold).

Every function reads only; the alert rules and the returns pages share them, so an alert and
the page it links to always count the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from ordersvc.models import Order, OrderLine, ProductVariant, ReturnAuthorization, ReturnLine, RmaStatus

__all__ = [
    "ProductReturns",
    "ReasonCount",
    "ReturnComment",
    "find_products",
    "product_returns",
    "reason_counts",
    "return_comments",
    "return_rates",
]

_KEY = sa.func.coalesce(col(ProductVariant.product_key), col(OrderLine.sku), col(OrderLine.title))
_TITLE = sa.func.coalesce(sa.func.max(sa.func.nullif(col(ProductVariant.product_title), "")),
                          sa.func.max(col(OrderLine.title)))


def _lines() -> Any:
    """order_line LEFT JOIN product_variant (by SKU), the FROM of every query here."""
    return sa.select().select_from(OrderLine).outerjoin(ProductVariant, col(ProductVariant.sku) == col(OrderLine.sku))


def _rate(returned: int, sold: int) -> Decimal | None:
    return (Decimal(returned) / Decimal(sold)) if sold else None


@dataclass(frozen=True)
class ReasonCount:
    product_key: str
    title: str
    reason: str
    units: int
    returns: int  # return lines (one per customer request)


async def reason_counts(session: AsyncSession, since: datetime, until: datetime, *,
                        product_key: str | None = None) -> list[ReasonCount]:
    """Returned units per product and reason for RMAs requested in [since, until), most first."""
    stmt = (
        _lines()
        .add_columns(_KEY.label("key"), _TITLE.label("title"), col(ReturnLine.reason),
                     sa.func.sum(col(ReturnLine.quantity)), sa.func.count(col(ReturnLine.id)))
        .join(ReturnLine, col(ReturnLine.order_line_id) == col(OrderLine.id))
        .join(ReturnAuthorization, col(ReturnAuthorization.id) == col(ReturnLine.rma_id))
        .where(col(ReturnAuthorization.requested_at) >= since, col(ReturnAuthorization.requested_at) < until,
               col(ReturnAuthorization.status) != RmaStatus.cancelled)
        .group_by(_KEY, col(ReturnLine.reason))
    )
    if product_key is not None:
        stmt = stmt.where(_KEY == product_key)
    rows = (await session.exec(stmt)).all()
    found = [ReasonCount(str(key), str(title or key), getattr(reason, "value", str(reason)), int(units or 0), int(n))
             for key, title, reason, units, n in rows]
    return sorted(found, key=lambda r: (-r.units, r.product_key, r.reason))


def _by_product(inner: Any, names: list[str]) -> Any:
    """Second level of the aggregate: per-SKU sums (``inner``: sku, title, one column per name)
    grouped by product. Joining the catalogue after the first GROUP BY keeps the lookup to one per
    SKU instead of one per order line (what makes this fast on SQLite)."""
    key = sa.func.coalesce(col(ProductVariant.product_key), inner.c.sku, inner.c.title)
    title = sa.func.coalesce(sa.func.max(sa.func.nullif(col(ProductVariant.product_title), "")),
                             sa.func.max(inner.c.title))
    return (
        sa.select(key.label("key"), title.label("title"), *[sa.func.sum(inner.c[name]) for name in names])
        .select_from(inner)
        .outerjoin(ProductVariant, col(ProductVariant.sku) == inner.c.sku)
        .group_by(key)
    )


async def _sums(session: AsyncSession, inner: Any, windows: dict[str, datetime],
                product_key: str | None) -> dict[str, tuple[str, dict[str, int]]]:
    stmt = _by_product(inner, list(windows))
    found = {str(row[0]): (str(row[1] or row[0]), {name: int(row[2 + i] or 0) for i, name in enumerate(windows)})
             for row in (await session.exec(stmt)).all()}
    if product_key is not None:
        return {key: value for key, value in found.items() if key == product_key}
    return found


async def _sold(session: AsyncSession, windows: dict[str, datetime], until: datetime,
                product_key: str | None = None) -> dict[str, tuple[str, dict[str, int]]]:
    earliest = min(windows.values())
    sums = [sa.func.sum(sa.case((col(Order.placed_at) >= start, col(OrderLine.quantity)), else_=0)).label(name)
            for name, start in windows.items()]
    # ``sku || ''`` (NULL stays NULL): grouping by the bare column made SQLite walk order_line in
    # SKU-index order and fetch every order at random, about three times slower over 100k orders
    sku = col(OrderLine.sku).concat("")
    inner = (
        sa.select(sku.label("sku"), col(OrderLine.title).label("title"), *sums)
        .select_from(Order)
        .join(OrderLine, col(Order.id) == col(OrderLine.order_id))
        .where(col(Order.placed_at) >= earliest, col(Order.placed_at) < until, col(Order.cancelled_at).is_(None))
        .group_by(sku, col(OrderLine.title))
        .subquery()
    )
    return await _sums(session, inner, windows, product_key)


async def _returned(session: AsyncSession, windows: dict[str, datetime], until: datetime,
                    product_key: str | None = None) -> dict[str, tuple[str, dict[str, int]]]:
    earliest = min(windows.values())
    requested = col(ReturnAuthorization.requested_at)
    sums = [sa.func.sum(sa.case((requested >= start, col(ReturnLine.quantity)), else_=0)).label(name)
            for name, start in windows.items()]
    inner = (
        sa.select(col(OrderLine.sku).label("sku"), col(OrderLine.title).label("title"), *sums)
        .select_from(ReturnLine)
        .join(OrderLine, col(ReturnLine.order_line_id) == col(OrderLine.id))
        .join(ReturnAuthorization, col(ReturnAuthorization.id) == col(ReturnLine.rma_id))
        .where(requested >= earliest, requested < until, col(ReturnAuthorization.status) != RmaStatus.cancelled)
        .group_by(col(OrderLine.sku), col(OrderLine.title))
        .subquery()
    )
    return await _sums(session, inner, windows, product_key)


@dataclass(frozen=True)
class ProductReturns:
    product_key: str
    title: str
    sold: int
    returned: int
    reasons: list[tuple[str, int]] = field(default_factory=list)  # (reason, units), most first

    @property
    def rate(self) -> Decimal | None:
        return _rate(self.returned, self.sold)


async def return_rates(session: AsyncSession, until: datetime, windows: dict[str, datetime], *,
                       product_key: str | None = None) -> dict[str, tuple[str, dict[str, tuple[int, int]]]]:
    """Per product: its title and, per named window start, (units returned, units sold) in [start, until)."""
    sold = await _sold(session, windows, until, product_key)
    returned = await _returned(session, windows, until, product_key)
    out: dict[str, tuple[str, dict[str, tuple[int, int]]]] = {}
    for key in set(sold) | set(returned):
        title = (returned.get(key) or sold.get(key) or (key, {}))[0]
        r = returned.get(key, (title, {}))[1]
        s = sold.get(key, (title, {}))[1]
        out[key] = (title, {name: (r.get(name, 0), s.get(name, 0)) for name in windows})
    return out


async def product_returns(session: AsyncSession, since: datetime, until: datetime, *,
                          product_key: str | None = None, top_reasons: int = 3) -> list[ProductReturns]:
    """Each product with returns in [since, until): units sold and returned then, and its top reasons;
    highest return rate first (products that sold nothing then, by returned units)."""
    rates = await return_rates(session, until, {"period": since}, product_key=product_key)
    reasons: dict[str, list[tuple[str, int]]] = {}
    for rc in await reason_counts(session, since, until, product_key=product_key):
        reasons.setdefault(rc.product_key, []).append((rc.reason, rc.units))
    found = [ProductReturns(key, title, sold=counts["period"][1], returned=counts["period"][0],
                            reasons=reasons.get(key, [])[:top_reasons])
             for key, (title, counts) in rates.items() if counts["period"][0] > 0]
    return sorted(found, key=lambda p: (-(p.rate if p.rate is not None else Decimal(10**9 + p.returned)),
                                        p.product_key))


@dataclass(frozen=True)
class ReturnComment:
    rma_number: str
    requested_at: datetime
    reason: str
    text: str  # the customer's own words: untrusted, escape wherever shown


async def return_comments(session: AsyncSession, product_key: str, since: datetime, until: datetime, *,
                          limit: int = 20) -> list[ReturnComment]:
    """Customers' notes on their return lines of one product in [since, until), newest first."""
    stmt = (
        _lines()
        .add_columns(col(ReturnAuthorization.rma_number), col(ReturnAuthorization.requested_at),
                     col(ReturnLine.reason), col(ReturnLine.reason_note))
        .join(ReturnLine, col(ReturnLine.order_line_id) == col(OrderLine.id))
        .join(ReturnAuthorization, col(ReturnAuthorization.id) == col(ReturnLine.rma_id))
        .where(_KEY == product_key, col(ReturnLine.reason_note).is_not(None), col(ReturnLine.reason_note) != "",
               col(ReturnAuthorization.requested_at) >= since, col(ReturnAuthorization.requested_at) < until)
        .order_by(col(ReturnAuthorization.requested_at).desc(), col(ReturnLine.id).desc())
        .limit(limit)
    )
    return [ReturnComment(number, at, getattr(reason, "value", str(reason)), str(note))
            for number, at, reason, note in (await session.exec(stmt)).all()]


async def find_products(session: AsyncSession, query: str, *, limit: int = 5) -> list[tuple[str, str]]:
    """(product key, title) of products whose SKU or key is ``query`` or whose title contains it."""
    text = query.strip()
    if not text:
        return []
    exact = (
        _lines().add_columns(_KEY, _TITLE)
        .where(sa.or_(sa.func.lower(col(OrderLine.sku)) == text.lower(), sa.func.lower(_KEY) == text.lower()))
        .group_by(_KEY).limit(limit)
    )
    rows = (await session.exec(exact)).all()
    if not rows:
        pattern = "%" + text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        title = sa.func.lower(sa.func.coalesce(sa.func.nullif(col(ProductVariant.product_title), ""),
                                               col(OrderLine.title)))
        fuzzy = (_lines().add_columns(_KEY, _TITLE).where(title.like(pattern, escape="\\"))
                 .group_by(_KEY).order_by(_KEY).limit(limit))
        rows = (await session.exec(fuzzy)).all()
    return [(str(key), str(title or key)) for key, title in rows]

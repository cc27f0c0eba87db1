"""The REST API under ``/api/v1``: orders, shipments, returns and stock for the merchant's systems.

``setup(app, sessionmaker)`` mounts a sub-application with its own middlewares, so the
bearer-token check and the JSON error bodies apply to these routes only. Every route needs
``Authorization: Bearer <token>`` (see ``ordersvc.api_tokens``) except ``openapi.json``.

Errors are ``{"error": "..."}`` with a 4xx status: unknown or repeated query parameters and
bad values give 400, a missing order 404, a body over 64 KiB 413. Listings are paginated by
an opaque ``cursor`` (``next_cursor`` in the answer, ``null`` on the last page).

The route table is ``ROUTES``; ``OPENAPI`` documents every one of them (a test checks that).
"""

from __future__ import annotations

import json
import logging
import re
import unicodedata
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from enum import Enum
from functools import partial
from typing import Any

import sqlalchemy as sa
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from ordersvc.api_tokens import authenticate
from ordersvc.models import (
    FinancialStatus,
    FulfillmentStatus,
    InventoryLevel,
    Order,
    OrderLine,
    ReturnAuthorization,
    RmaStatus,
    Shipment,
    SourceChannel,
    Warehouse,
    utcnow,
)
from ordersvc.serialize import (
    inventory_document,
    order_document,
    order_summary,
    return_document,
    shipment_document,
)
from ordersvc.service import (
    ReturnBundle,
    find_order,
    late_shipment_clause,
    normalize_email,
    return_bundles,
    shipment_bundles,
)
from ordersvc.tracking import ShipmentStatus

__all__ = [
    "API_PREFIX",
    "API_APP",
    "SESSIONS",
    "MAX_BODY_BYTES",
    "MAX_LIMIT",
    "ROUTES",
    "OPENAPI",
    "ApiError",
    "setup",
]

log = logging.getLogger(__name__)

API_PREFIX = "/api/v1"
MAX_BODY_BYTES = 64 * 1024
MAX_LIMIT = 100
DEFAULT_LIMIT = 50

SESSIONS = web.AppKey("ordersvc_api_sessions", async_sessionmaker)
#: the mounted sub-application (on the parent app), e.g. to list its routes
API_APP = web.AppKey("ordersvc_api_app", web.Application)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ApiError(Exception):
    """An error answered as ``{"error": message}`` with ``status``."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


_dumps = partial(json.dumps, ensure_ascii=False, separators=(",", ":"))


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(data, status=status, headers=headers, dumps=_dumps)


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return _json({"error": message}, status=status, headers=headers)


def _shorten(value: str, limit: int = 60) -> str:
    value = "".join(ch if ch.isprintable() else "?" for ch in value)
    return value if len(value) <= limit else value[: limit - 1] + "…"


# --------------------------------------------------------------------------- middlewares


@web.middleware
async def _errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as exc:
        return _error(exc.status, exc.message, exc.headers)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        headers = {k: v for k, v in exc.headers.items() if k.lower() in {"allow", "www-authenticate", "retry-after"}}
        return _error(exc.status, (exc.reason or "error").lower(), headers)
    except Exception:
        # the path only: query strings may carry a customer's email
        log.exception("api: unexpected error on %s %s", request.method, request.path)
        return _error(500, "internal error")


_BEARER_CHALLENGE = 'Bearer realm="shopdesk"'


@web.middleware
async def _auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.match_info.route.name == "openapi":
        return await handler(request)
    header = request.headers.get("Authorization", "")
    scheme, _, raw = header.strip().partition(" ")
    raw = raw.strip()
    if scheme.lower() != "bearer" or not raw:
        raise ApiError(
            401,
            "missing bearer token: send 'Authorization: Bearer <token>'",
            {"WWW-Authenticate": _BEARER_CHALLENGE},
        )
    async with request.config_dict[SESSIONS]() as session:
        token = await authenticate(session, raw)
        if token is not None:
            await session.commit()
    if token is None:
        raise ApiError(
            401,
            "invalid or revoked token",
            {"WWW-Authenticate": f'{_BEARER_CHALLENGE}, error="invalid_token"'},
        )
    return await handler(request)


# --------------------------------------------------------------------------- input


class Query:
    """The request's query parameters, checked against the names a route accepts."""

    def __init__(self, request: web.Request, allowed: set[str]) -> None:
        self._query = request.query
        seen: set[str] = set()
        for key, _value in self._query.items():
            if key not in allowed:
                names = ", ".join(sorted(allowed)) or "none"
                raise ApiError(400, f"unknown query parameter '{_shorten(key, 40)}' (accepted: {names})")
            if key in seen:
                raise ApiError(400, f"query parameter '{key}' given more than once")
            seen.add(key)

    def text(self, name: str, max_length: int = 320) -> str | None:
        value = self._query.get(name)
        if value is None:
            return None
        value = value.strip()
        if not value:
            raise ApiError(400, f"'{name}' must not be empty")
        if len(value) > max_length:
            raise ApiError(400, f"'{name}' is longer than {max_length} characters")
        if any(unicodedata.category(ch) == "Cc" for ch in value):
            raise ApiError(400, f"'{name}' contains control characters")
        return value

    def integer(self, name: str, default: int, low: int, high: int) -> int:
        value = self.text(name, 20)
        if value is None:
            return default
        if not re.fullmatch(r"[0-9]+", value):
            raise ApiError(400, f"'{name}' must be a whole number between {low} and {high}")
        number = int(value)
        if not low <= number <= high:
            raise ApiError(400, f"'{name}' must be between {low} and {high}")
        return number

    def boolean(self, name: str) -> bool | None:
        value = self.text(name, 10)
        if value is None:
            return None
        lowered = value.lower()
        if lowered in {"true", "1", "yes"}:
            return True
        if lowered in {"false", "0", "no"}:
            return False
        raise ApiError(400, f"'{name}' must be true or false")

    def choice(self, name: str, *enums: type[Enum], extra: tuple[str, ...] = ()) -> str | None:
        value = self.text(name, 40)
        if value is None:
            return None
        options = [m.value for e in enums for m in e] + list(extra)
        if value not in options:
            raise ApiError(400, f"'{name}' must be one of: {', '.join(options)}")
        return value

    def timestamp(self, name: str) -> datetime | None:
        value = self.text(name, 40)
        if value is None:
            return None
        # an unencoded "+00:00" arrives as " 00:00"
        value = re.sub(r" (\d{2}:?\d{2})$", r"+\1", value)
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise ApiError(400, f"'{name}' must be an ISO 8601 date-time, e.g. 2024-05-01T12:00:00Z") from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=timezone.utc)
        return parsed.astimezone(timezone.utc)

    def cursor(self) -> int | None:
        value = self.text("cursor", 20)
        if value is None:
            return None
        # ids are INTEGER columns: a larger cursor was never issued (and PostgreSQL refuses to compare it)
        if not re.fullmatch(r"[1-9][0-9]{0,9}", value) or int(value) > 2**31 - 1:
            raise ApiError(400, "'cursor' is not valid; use the next_cursor of a previous page")
        return int(value)


def _page(rows: list[Any], limit: int) -> tuple[list[Any], str | None]:
    """Cut the ``limit + 1`` rows fetched to a page and the cursor of the next one."""
    if len(rows) > limit:
        rows = rows[:limit]
        return rows, str(rows[-1].id)
    return rows, None


async def _read_json(request: web.Request) -> Any:
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise ApiError(413, f"the body is larger than {MAX_BODY_BYTES // 1024} KiB")
    body = bytearray()
    async for chunk in request.content.iter_any():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise ApiError(413, f"the body is larger than {MAX_BODY_BYTES // 1024} KiB")
    if not body.strip():
        raise ApiError(400, "a JSON body is required")
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise ApiError(400, "the body is not valid JSON") from None


def _check_path_text(name: str, value: str, max_length: int = 64) -> str:
    value = value.strip()
    if not value or len(value) > max_length or any(not ch.isprintable() for ch in value):
        raise ApiError(400, f"'{name}' must be 1–{max_length} printable characters")
    return value


def _sessions(request: web.Request) -> async_sessionmaker[AsyncSession]:
    return request.config_dict[SESSIONS]


# --------------------------------------------------------------------------- handlers


async def list_orders(request: web.Request) -> web.Response:
    q = Query(request, {"email", "status", "source", "updated_since", "limit", "cursor"})
    email = q.text("email")
    status = q.choice("status", FinancialStatus, FulfillmentStatus, extra=("open", "cancelled"))
    source = q.choice("source", SourceChannel)
    updated_since = q.timestamp("updated_since")
    limit = q.integer("limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    cursor = q.cursor()

    stmt = select(Order).order_by(col(Order.id).desc()).limit(limit + 1)
    if email is not None:
        stmt = stmt.where(sa.func.lower(Order.email) == normalize_email(email))
    if status in {s.value for s in FinancialStatus}:
        stmt = stmt.where(Order.financial_status == FinancialStatus(status))
    elif status in {s.value for s in FulfillmentStatus}:
        stmt = stmt.where(Order.fulfillment_status == FulfillmentStatus(status))
    elif status == "cancelled":
        stmt = stmt.where(col(Order.cancelled_at).is_not(None))
    elif status == "open":
        stmt = stmt.where(col(Order.cancelled_at).is_(None), col(Order.closed_at).is_(None))
    if source is not None:
        stmt = stmt.where(Order.source == SourceChannel(source))
    if updated_since is not None:
        stmt = stmt.where(col(Order.updated_at) >= updated_since)
    if cursor is not None:
        stmt = stmt.where(col(Order.id) < cursor)
    async with _sessions(request)() as session:
        rows, next_cursor = _page(list((await session.exec(stmt)).all()), limit)
    return _json({"orders": [order_summary(o) for o in rows], "next_cursor": next_cursor})


async def _order_or_404(session: AsyncSession, request: web.Request) -> Order:
    ref = request.match_info["ref"]
    order = await find_order(session, ref)
    if order is None:
        raise ApiError(404, f"no order '{_shorten(ref)}'")
    return order


async def get_order(request: web.Request) -> web.Response:
    Query(request, set())
    async with _sessions(request)() as session:
        order = await _order_or_404(session, request)
        return _json(await order_document(session, order))


async def get_order_shipments(request: web.Request) -> web.Response:
    Query(request, set())
    now = utcnow()
    async with _sessions(request)() as session:
        order = await _order_or_404(session, request)
        shipments = (
            await session.exec(select(Shipment).where(Shipment.order_id == order.id).order_by(col(Shipment.id)))
        ).all()
        bundles = await shipment_bundles(session, shipments)
    return _json(
        {
            "order": {"id": order.id, "name": order.name},
            "shipments": [shipment_document(b, now=now) for b in bundles],
        }
    )


async def list_shipments(request: web.Request) -> web.Response:
    q = Query(request, {"status", "late", "carrier", "limit", "cursor"})
    status = q.choice("status", ShipmentStatus)
    late = q.boolean("late")
    carrier = q.text("carrier", 64)
    limit = q.integer("limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    cursor = q.cursor()
    now = utcnow()

    stmt = select(Shipment).order_by(col(Shipment.id).desc()).limit(limit + 1)
    if status is not None:
        stmt = stmt.where(Shipment.status == ShipmentStatus(status))
    if late is True:
        stmt = stmt.where(late_shipment_clause(now))
    elif late is False:
        stmt = stmt.where(sa.not_(late_shipment_clause(now)))
    if carrier is not None:
        stmt = stmt.where(sa.func.lower(Shipment.carrier) == carrier.lower())
    if cursor is not None:
        stmt = stmt.where(col(Shipment.id) < cursor)
    async with _sessions(request)() as session:
        rows, next_cursor = _page(list((await session.exec(stmt)).all()), limit)
        bundles = await shipment_bundles(session, rows)
        orders = await _orders_by_id(session, {s.order_id for s in rows})
    return _json(
        {
            "shipments": [shipment_document(b, now=now, order=orders.get(b.shipment.order_id)) for b in bundles],
            "next_cursor": next_cursor,
        }
    )


async def _orders_by_id(session: AsyncSession, ids: set[int]) -> dict[int, Order]:
    if not ids:
        return {}
    rows = (await session.exec(select(Order).where(col(Order.id).in_(ids)))).all()
    return {o.id: o for o in rows if o.id is not None}


async def _lines_by_id(session: AsyncSession, bundles: list[ReturnBundle]) -> dict[int, OrderLine]:
    ids = {rl.order_line_id for b in bundles for rl in b.lines}
    if not ids:
        return {}
    rows = (await session.exec(select(OrderLine).where(col(OrderLine.id).in_(ids)))).all()
    return {ln.id: ln for ln in rows if ln.id is not None}


async def list_returns(request: web.Request) -> web.Response:
    q = Query(request, {"status", "limit", "cursor"})
    status = q.choice("status", RmaStatus)
    limit = q.integer("limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    cursor = q.cursor()
    stmt = select(ReturnAuthorization).order_by(col(ReturnAuthorization.id).desc()).limit(limit + 1)
    if status is not None:
        stmt = stmt.where(ReturnAuthorization.status == RmaStatus(status))
    if cursor is not None:
        stmt = stmt.where(col(ReturnAuthorization.id) < cursor)
    async with _sessions(request)() as session:
        rows, next_cursor = _page(list((await session.exec(stmt)).all()), limit)
        bundles = await return_bundles(session, rows)
        orders = await _orders_by_id(session, {r.order_id for r in rows})
        lines = await _lines_by_id(session, bundles)
    return _json(
        {
            "returns": [
                return_document(b, lines_by_id=lines, order=orders.get(b.rma.order_id)) for b in bundles
            ],
            "next_cursor": next_cursor,
        }
    )


async def get_return(request: web.Request) -> web.Response:
    Query(request, set())
    number = request.match_info["rma_number"].strip()
    async with _sessions(request)() as session:
        rma = None
        if 0 < len(number) <= 32 and number.isprintable():
            rma = (
                await session.exec(
                    select(ReturnAuthorization).where(
                        sa.func.upper(ReturnAuthorization.rma_number) == number.upper()
                    )
                )
            ).first()
        if rma is None:
            raise ApiError(404, f"no return '{_shorten(number)}'")
        (bundle,) = await return_bundles(session, [rma])
        orders = await _orders_by_id(session, {rma.order_id})
        lines = await _lines_by_id(session, [bundle])
    return _json(return_document(bundle, lines_by_id=lines, order=orders.get(rma.order_id)))


async def list_inventory(request: web.Request) -> web.Response:
    q = Query(request, {"sku", "warehouse", "low", "limit", "cursor"})
    sku_text = q.text("sku", 64 * 50)
    warehouse = q.text("warehouse", 32)
    low = q.boolean("low")
    limit = q.integer("limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    cursor = q.cursor()

    stmt = (
        select(InventoryLevel, Warehouse)
        .join(Warehouse, col(Warehouse.id) == col(InventoryLevel.warehouse_id))
        .order_by(col(InventoryLevel.id).desc())
        .limit(limit + 1)
    )
    if sku_text is not None:
        skus = [s.strip() for s in sku_text.split(",") if s.strip()]
        if not skus or len(skus) > 50:
            raise ApiError(400, "'sku' takes 1 to 50 comma-separated SKUs")
        stmt = stmt.where(col(InventoryLevel.sku).in_(skus))
    if warehouse is not None:
        stmt = stmt.where(Warehouse.code == warehouse)
    if low is True:
        stmt = stmt.where(col(InventoryLevel.on_hand) - col(InventoryLevel.reserved) <= col(InventoryLevel.safety_stock))
    elif low is False:
        stmt = stmt.where(col(InventoryLevel.on_hand) - col(InventoryLevel.reserved) > col(InventoryLevel.safety_stock))
    if cursor is not None:
        stmt = stmt.where(col(InventoryLevel.id) < cursor)
    async with _sessions(request)() as session:
        rows = list((await session.exec(stmt)).all())
    next_cursor = str(rows[limit - 1][0].id) if len(rows) > limit else None
    docs = [inventory_document(level, wh) for level, wh in rows[:limit]]
    return _json({"inventory": docs, "next_cursor": next_cursor})


class InventoryUpdate(BaseModel):
    """The body of ``PUT /inventory/{warehouse}/{sku}``: either field or both."""

    model_config = ConfigDict(extra="forbid", strict=True)

    on_hand: int | None = Field(default=None, ge=0, le=1_000_000_000)
    safety_stock: int | None = Field(default=None, ge=0, le=1_000_000_000)


def _validation_message(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err.get("loc", ())) or "body"
        parts.append(f"{_shorten(where, 40)}: {err.get('msg', 'invalid')}")
    return "; ".join(parts)


async def put_inventory(request: web.Request) -> web.Response:
    Query(request, set())
    code = _check_path_text("warehouse", request.match_info["warehouse"], 32)
    sku = _check_path_text("sku", request.match_info["sku"], 64)
    data = await _read_json(request)
    if not isinstance(data, dict):
        raise ApiError(400, "the body must be a JSON object like {\"on_hand\": 12, \"safety_stock\": 3}")
    try:
        update = InventoryUpdate.model_validate(data)
    except ValidationError as exc:
        raise ApiError(400, _validation_message(exc)) from None
    if update.on_hand is None and update.safety_stock is None:
        raise ApiError(400, "give on_hand, safety_stock or both")

    async with _sessions(request)() as session:
        for attempt in range(2):
            wh = (await session.exec(select(Warehouse).where(Warehouse.code == code))).first()
            if wh is None or wh.id is None:
                raise ApiError(404, f"no warehouse '{_shorten(code)}'")
            level = (
                await session.exec(
                    select(InventoryLevel).where(InventoryLevel.warehouse_id == wh.id, InventoryLevel.sku == sku)
                )
            ).first()
            created = level is None
            if level is None:
                level = InventoryLevel(warehouse_id=wh.id, sku=sku)
                session.add(level)
            if update.on_hand is not None:
                level.on_hand = update.on_hand
            if update.safety_stock is not None:
                level.safety_stock = update.safety_stock
            level.updated_at = utcnow()
            try:
                await session.commit()
                break
            except IntegrityError:
                # a concurrent PUT created the row first: update that one instead
                await session.rollback()
                if attempt:
                    raise ApiError(409, "the inventory level changed concurrently; retry") from None
        doc = inventory_document(level, wh)
    return _json({"inventory": doc, "created": created}, status=201 if created else 200)


async def get_openapi(request: web.Request) -> web.Response:
    return _json(OPENAPI)


async def fallback(request: web.Request) -> web.Response:
    """Unknown paths under /api/v1 get a JSON 404, known paths with a wrong method a 405."""
    allowed: set[str] = set()
    for resource in request.app.router.resources():
        if resource.name == "fallback":
            continue
        _match, methods = await resource.resolve(request)
        allowed |= set(methods)
    if allowed:
        raise ApiError(405, f"method {request.method} is not allowed here", {"Allow": ", ".join(sorted(allowed))})
    raise ApiError(404, "no such API route (see /api/v1/openapi.json)")


#: every route of the API, relative to ``/api/v1``
ROUTES: list[web.RouteDef] = [
    web.get("/openapi.json", get_openapi, name="openapi", allow_head=False),
    web.get("/orders", list_orders, name="orders", allow_head=False),
    web.get("/orders/{ref}", get_order, name="order", allow_head=False),
    web.get("/orders/{ref}/shipments", get_order_shipments, name="order_shipments", allow_head=False),
    web.get("/shipments", list_shipments, name="shipments", allow_head=False),
    web.get("/returns", list_returns, name="returns", allow_head=False),
    web.get("/returns/{rma_number}", get_return, name="rma", allow_head=False),
    web.get("/inventory", list_inventory, name="inventory", allow_head=False),
    web.put("/inventory/{warehouse}/{sku}", put_inventory, name="inventory_level"),
]


def setup(app: web.Application, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    """Mount the API on ``app`` under ``/api/v1``."""
    api = web.Application(middlewares=[_errors_middleware, _auth_middleware])
    api[SESSIONS] = sessionmaker
    api.router.add_routes(ROUTES)
    api.router.add_route("*", "/{tail:.*}", fallback, name="fallback")
    app.add_subapp(API_PREFIX, api)
    app[API_APP] = api


# --------------------------------------------------------------------------- OpenAPI 3.1


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(schema_type: str, **extra: Any) -> dict[str, Any]:
    return {"type": [schema_type, "null"], **extra}


_MONEY = {"type": "string", "pattern": r"^-?\d+\.\d{2,4}$", "examples": ["404.95"]}
_MONEY_OR_NULL = {"type": ["string", "null"], "pattern": r"^-?\d+\.\d{2,4}$"}
_TIME = {"type": "string", "format": "date-time"}
_TIME_OR_NULL = {"type": ["string", "null"], "format": "date-time"}
_ID = {"type": "integer", "description": "Row id in Shopdesk's database"}


def _enum_values(*enums: type[Enum]) -> list[str]:
    return [m.value for e in enums for m in e]


def _error_response(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref("Error")}}}


def _ok(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_COMMON_ERRORS = {
    "400": _error_response("Bad query parameter or body"),
    "401": {
        "description": "Missing, invalid or revoked token",
        "headers": {"WWW-Authenticate": {"schema": {"type": "string"}, "description": "Bearer challenge"}},
        "content": {"application/json": {"schema": _ref("Error")}},
    },
}

_LIMIT = {
    "name": "limit",
    "in": "query",
    "description": f"Page size (default {DEFAULT_LIMIT})",
    "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
}
_CURSOR = {
    "name": "cursor",
    "in": "query",
    "description": "Opaque; the next_cursor of the previous page",
    "schema": {"type": "string"},
}
_REF_PARAM = {
    "name": "ref",
    "in": "path",
    "required": True,
    "description": "Order name (#1001, URL-encoded as %231001), number (1001), external id, "
    "Amazon (113-1234567-1234567) or eBay (12-12345-12345) order number, POS name",
    "schema": {"type": "string", "maxLength": 128},
}


def _list_of(key: str, item: str) -> dict[str, Any]:
    return {
        "type": "object",
        "required": [key, "next_cursor"],
        "properties": {key: {"type": "array", "items": _ref(item)}, "next_cursor": {"type": ["string", "null"]}},
    }


_ORDER_SUMMARY_PROPS: dict[str, Any] = {
    "id": _ID,
    "name": {"type": "string", "examples": ["#1001"]},
    "source": {"type": "string", "enum": _enum_values(SourceChannel)},
    "external_id": {"type": "string", "description": "The platform's id, as a string (may exceed 2^53)"},
    "customer_id": _nullable("integer"),
    "email": _nullable("string"),
    "phone": _nullable("string"),
    "currency": {"type": "string", "minLength": 3, "maxLength": 3},
    "subtotal_price": _MONEY,
    "total_tax": _MONEY,
    "total_shipping": _MONEY,
    "total_discounts": _MONEY,
    "total_price": _MONEY,
    "financial_status": {"type": "string", "enum": _enum_values(FinancialStatus)},
    "fulfillment_status": {"type": "string", "enum": _enum_values(FulfillmentStatus)},
    "cancelled": {"type": "boolean"},
    "cancelled_at": _TIME_OR_NULL,
    "cancel_reason": _nullable("string"),
    "closed_at": _TIME_OR_NULL,
    "placed_at": _TIME,
    "updated_at": _TIME,
    "shipping_postal_code": _nullable("string"),
    "tags": {"type": "array", "items": {"type": "string"}},
}

_SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {"error": {"type": "string"}},
    },
    "OrderSummary": {
        "type": "object",
        "required": ["id", "name", "source", "currency", "total_price", "financial_status", "fulfillment_status"],
        "properties": _ORDER_SUMMARY_PROPS,
    },
    "Customer": {
        "type": ["object", "null"],
        "properties": {
            "id": _ID,
            "external_id": _nullable("string"),
            "first_name": {"type": "string"},
            "last_name": {"type": "string"},
            "name": {"type": "string"},
            "email": _nullable("string"),
            "phone": _nullable("string"),
            "locale": _nullable("string"),
            "redacted": {"type": "boolean"},
        },
    },
    "OrderLine": {
        "type": "object",
        "properties": {
            "id": _ID,
            "external_id": _nullable("string"),
            "sku": _nullable("string"),
            "title": {"type": "string"},
            "variant_title": _nullable("string"),
            "product_type": _nullable("string"),
            "quantity": {"type": "integer"},
            "fulfilled_quantity": {"type": "integer"},
            "unit_price": _MONEY,
            "total_discount": _MONEY,
            "total": _MONEY,
            "returnable": {"type": "boolean"},
            "final_sale": {"type": "boolean"},
        },
    },
    "TrackingEvent": {
        "type": "object",
        "properties": {
            "occurred_at": _TIME,
            "status": {"type": "string", "enum": _enum_values(ShipmentStatus)},
            "message": {"type": "string"},
            "location": _nullable("string"),
        },
    },
    "Shipment": {
        "type": "object",
        "properties": {
            "id": _ID,
            "external_id": {"type": "string"},
            "name": _nullable("string"),
            "status": {"type": "string", "enum": _enum_values(ShipmentStatus)},
            "late": {
                "type": "boolean",
                "description": "Not delivered and past its ETA or without a scan for 5 days, "
                "or in exception / failed_attempt / expired",
            },
            "carrier": _nullable("string"),
            "tracking_number": _nullable("string"),
            "tracking_url": _nullable("string"),
            "eta": _TIME_OR_NULL,
            "shipped_at": _TIME_OR_NULL,
            "delivered_at": _TIME_OR_NULL,
            "last_event_at": _TIME_OR_NULL,
            "lines": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "line_id": _ID,
                        "sku": _nullable("string"),
                        "title": {"type": "string"},
                        "quantity": {"type": "integer"},
                    },
                },
            },
            "events": {"type": "array", "items": _ref("TrackingEvent"), "description": "Newest first"},
            "order": {
                "type": "object",
                "description": "Present in listings",
                "properties": {"id": _ID, "name": {"type": "string"}},
            },
        },
    },
    "Return": {
        "type": "object",
        "properties": {
            "id": _ID,
            "rma_number": {"type": "string"},
            "status": {"type": "string", "enum": _enum_values(RmaStatus)},
            "resolution": {"type": "string", "enum": ["refund", "store_credit", "exchange"]},
            "method": {"type": "string", "enum": ["mail", "dropoff", "in_store"]},
            "currency": {"type": "string"},
            "refund_amount": _MONEY,
            "credit_amount": _MONEY,
            "label_carrier": _nullable("string"),
            "label_tracking_number": _nullable("string"),
            "note": _nullable("string"),
            "created_by": {"type": "string"},
            "steps": {
                "type": "object",
                "description": "When the return reached each step (null if it has not)",
                "additionalProperties": _TIME_OR_NULL,
            },
            "lines": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "order_line_id": _ID,
                        "sku": _nullable("string"),
                        "title": _nullable("string"),
                        "quantity": {"type": "integer"},
                        "reason": {"type": "string"},
                        "reason_note": _nullable("string"),
                        "condition": {"type": "string"},
                        "exchange_sku": _nullable("string"),
                    },
                },
            },
            "order": {"type": "object", "properties": {"id": _ID, "name": {"type": "string"}}},
        },
    },
    "Refund": {
        "type": "object",
        "properties": {
            "id": _ID,
            "external_id": _nullable("string"),
            "amount": _MONEY,
            "currency": {"type": "string"},
            "note": _nullable("string"),
            "rma_number": _nullable("string"),
            "processed_at": _TIME,
        },
    },
    "StoreCredit": {
        "type": "object",
        "properties": {
            "id": _ID,
            "code": {"type": "string"},
            "amount": _MONEY,
            "currency": {"type": "string"},
            "rma_number": _nullable("string"),
            "created_at": _TIME,
        },
    },
    "Order": {
        "type": "object",
        "description": "An order with everything about it",
        "properties": {
            **_ORDER_SUMMARY_PROPS,
            "customer": _ref("Customer"),
            "note": _nullable("string"),
            "expected_ship_at": _TIME,
            "stock_reserved": {"type": "boolean"},
            "shipping_address": {"type": ["object", "null"]},
            "billing_address": {"type": ["object", "null"]},
            "lines": {"type": "array", "items": _ref("OrderLine")},
            "shipments": {"type": "array", "items": _ref("Shipment")},
            "returns": {"type": "array", "items": _ref("Return")},
            "refunds": {"type": "array", "items": _ref("Refund")},
            "store_credits": {"type": "array", "items": _ref("StoreCredit")},
        },
    },
    "InventoryLevel": {
        "type": "object",
        "properties": {
            "id": _ID,
            "warehouse": {"type": "string"},
            "warehouse_id": _ID,
            "sku": {"type": "string"},
            "on_hand": {"type": "integer"},
            "reserved": {"type": "integer"},
            "available": {"type": "integer", "description": "on_hand - reserved"},
            "safety_stock": {"type": "integer"},
            "low": {"type": "boolean", "description": "available <= safety_stock"},
            "updated_at": _TIME,
        },
    },
    "InventoryUpdate": {
        "type": "object",
        "additionalProperties": False,
        "minProperties": 1,
        "properties": {
            "on_hand": {"type": "integer", "minimum": 0, "maximum": 1_000_000_000},
            "safety_stock": {"type": "integer", "minimum": 0, "maximum": 1_000_000_000},
        },
    },
    "OrderList": _list_of("orders", "OrderSummary"),
    "ShipmentList": _list_of("shipments", "Shipment"),
    "ReturnList": _list_of("returns", "Return"),
    "InventoryList": _list_of("inventory", "InventoryLevel"),
}

OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "Shopdesk order store API",
        "version": "1.0.0",
        "description": "Orders, shipments, returns and stock of the shop. Every route except this "
        "document needs 'Authorization: Bearer <token>' (create one with 'shopdesk tokens create NAME'). "
        "Money is a decimal string next to its currency; times are ISO 8601 UTC; listings are newest "
        "first and paginated with an opaque cursor.",
    },
    "servers": [{"url": "/"}],
    "security": [{"bearerAuth": []}],
    "components": {
        "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "sdk_…"}},
        "schemas": _SCHEMAS,
    },
    "paths": {
        f"{API_PREFIX}/openapi.json": {
            "get": {
                "operationId": "getOpenApi",
                "summary": "This document",
                "security": [],
                "responses": {"200": {"description": "OpenAPI 3.1 document", "content": {"application/json": {}}}},
            }
        },
        f"{API_PREFIX}/orders": {
            "get": {
                "operationId": "listOrders",
                "summary": "List orders, newest first",
                "parameters": [
                    {"name": "email", "in": "query", "schema": {"type": "string"}, "description": "Case-insensitive"},
                    {
                        "name": "status",
                        "in": "query",
                        "description": "A financial or fulfillment status, 'open' or 'cancelled'",
                        "schema": {
                            "type": "string",
                            "enum": _enum_values(FinancialStatus, FulfillmentStatus) + ["open", "cancelled"],
                        },
                    },
                    {"name": "source", "in": "query", "schema": {"type": "string", "enum": _enum_values(SourceChannel)}},
                    {
                        "name": "updated_since",
                        "in": "query",
                        "description": "ISO 8601; without an offset it is UTC",
                        "schema": {"type": "string", "format": "date-time"},
                    },
                    _LIMIT,
                    _CURSOR,
                ],
                "responses": {"200": _ok("A page of orders", _ref("OrderList")), **_COMMON_ERRORS},
            }
        },
        f"{API_PREFIX}/orders/{{ref}}": {
            "get": {
                "operationId": "getOrder",
                "summary": "One order with lines, shipments, returns, refunds and store credits",
                "parameters": [_REF_PARAM],
                "responses": {
                    "200": _ok("The order", _ref("Order")),
                    **_COMMON_ERRORS,
                    "404": _error_response("No such order"),
                },
            }
        },
        f"{API_PREFIX}/orders/{{ref}}/shipments": {
            "get": {
                "operationId": "getOrderShipments",
                "summary": "The shipments of one order with their tracking events",
                "parameters": [_REF_PARAM],
                "responses": {
                    "200": _ok(
                        "The order's shipments",
                        {
                            "type": "object",
                            "properties": {
                                "order": {"type": "object", "properties": {"id": _ID, "name": {"type": "string"}}},
                                "shipments": {"type": "array", "items": _ref("Shipment")},
                            },
                        },
                    ),
                    **_COMMON_ERRORS,
                    "404": _error_response("No such order"),
                },
            }
        },
        f"{API_PREFIX}/shipments": {
            "get": {
                "operationId": "listShipments",
                "summary": "List shipments, newest first",
                "parameters": [
                    {"name": "status", "in": "query", "schema": {"type": "string", "enum": _enum_values(ShipmentStatus)}},
                    {
                        "name": "late",
                        "in": "query",
                        "description": "true: only late or stalled shipments; false: only the others",
                        "schema": {"type": "boolean"},
                    },
                    {"name": "carrier", "in": "query", "schema": {"type": "string"}, "description": "Case-insensitive"},
                    _LIMIT,
                    _CURSOR,
                ],
                "responses": {"200": _ok("A page of shipments", _ref("ShipmentList")), **_COMMON_ERRORS},
            }
        },
        f"{API_PREFIX}/returns": {
            "get": {
                "operationId": "listReturns",
                "summary": "List returns (RMAs), newest first",
                "parameters": [
                    {"name": "status", "in": "query", "schema": {"type": "string", "enum": _enum_values(RmaStatus)}},
                    _LIMIT,
                    _CURSOR,
                ],
                "responses": {"200": _ok("A page of returns", _ref("ReturnList")), **_COMMON_ERRORS},
            }
        },
        f"{API_PREFIX}/returns/{{rma_number}}": {
            "get": {
                "operationId": "getReturn",
                "summary": "One return by its RMA number",
                "parameters": [
                    {"name": "rma_number", "in": "path", "required": True, "schema": {"type": "string", "maxLength": 32}}
                ],
                "responses": {
                    "200": _ok("The return", _ref("Return")),
                    **_COMMON_ERRORS,
                    "404": _error_response("No such return"),
                },
            }
        },
        f"{API_PREFIX}/inventory": {
            "get": {
                "operationId": "listInventory",
                "summary": "Stock levels per warehouse and SKU",
                "parameters": [
                    {
                        "name": "sku",
                        "in": "query",
                        "description": "One SKU or up to 50 comma-separated",
                        "schema": {"type": "string"},
                    },
                    {"name": "warehouse", "in": "query", "description": "Warehouse code", "schema": {"type": "string"}},
                    {
                        "name": "low",
                        "in": "query",
                        "description": "true: only levels at or below their safety stock",
                        "schema": {"type": "boolean"},
                    },
                    _LIMIT,
                    _CURSOR,
                ],
                "responses": {"200": _ok("A page of stock levels", _ref("InventoryList")), **_COMMON_ERRORS},
            }
        },
        f"{API_PREFIX}/inventory/{{warehouse}}/{{sku}}": {
            "put": {
                "operationId": "putInventoryLevel",
                "summary": "Set on-hand and/or safety stock of one SKU in one warehouse (created if missing)",
                "parameters": [
                    {"name": "warehouse", "in": "path", "required": True, "schema": {"type": "string", "maxLength": 32}},
                    {"name": "sku", "in": "path", "required": True, "schema": {"type": "string", "maxLength": 64}},
                ],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("InventoryUpdate")}},
                },
                "responses": {
                    "200": _ok(
                        "Updated",
                        {
                            "type": "object",
                            "properties": {"inventory": _ref("InventoryLevel"), "created": {"type": "boolean"}},
                        },
                    ),
                    "201": _ok(
                        "Created",
                        {
                            "type": "object",
                            "properties": {"inventory": _ref("InventoryLevel"), "created": {"type": "boolean"}},
                        },
                    ),
                    **_COMMON_ERRORS,
                    "404": _error_response("No such warehouse"),
                    "409": _error_response("Concurrent update; retry"),
                    "413": _error_response("Body larger than 64 KiB"),
                },
            }
        },
    },
}

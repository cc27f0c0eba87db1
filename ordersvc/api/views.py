"""The API's handlers, its route table ``ROUTES`` and ``setup``."""

from __future__ import annotations

import sqlalchemy as sa
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from ordersvc.api.http import (
    API_APP,
    API_PREFIX,
    DEFAULT_LIMIT,
    MAX_LIMIT,
    SESSIONS,
    ApiError,
    Query,
    auth_middleware,
    errors_middleware,
    page,
    path_text,
    read_json,
    reply,
    sessions_of,
    shorten,
)
from ordersvc.api.openapi import OPENAPI
from ordersvc.api.queries import lines_by_id, order_or_404, orders_by_id
from ordersvc.models import (
    FinancialStatus,
    FulfillmentStatus,
    InventoryLevel,
    Order,
    ReturnAuthorization,
    RmaStatus,
    Shipment,
    SourceChannel,
    Warehouse,
    utcnow,
)
from ordersvc.serialize import inventory_document, order_document, order_summary, return_document, shipment_document
from ordersvc.service import late_shipment_clause, normalize_email, return_bundles, shipment_bundles
from ordersvc.tracking import ShipmentStatus


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
    async with sessions_of(request)() as session:
        rows, next_cursor = page(list((await session.exec(stmt)).all()), limit)
    return reply({"orders": [order_summary(o) for o in rows], "next_cursor": next_cursor})


async def get_order(request: web.Request) -> web.Response:
    Query(request, set())
    async with sessions_of(request)() as session:
        order = await order_or_404(session, request)
        return reply(await order_document(session, order))


async def get_order_shipments(request: web.Request) -> web.Response:
    Query(request, set())
    now = utcnow()
    async with sessions_of(request)() as session:
        order = await order_or_404(session, request)
        shipments = (
            await session.exec(select(Shipment).where(Shipment.order_id == order.id).order_by(col(Shipment.id)))
        ).all()
        bundles = await shipment_bundles(session, shipments)
    return reply(
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
    async with sessions_of(request)() as session:
        rows, next_cursor = page(list((await session.exec(stmt)).all()), limit)
        bundles = await shipment_bundles(session, rows)
        orders = await orders_by_id(session, {s.order_id for s in rows})
    return reply(
        {
            "shipments": [shipment_document(b, now=now, order=orders.get(b.shipment.order_id)) for b in bundles],
            "next_cursor": next_cursor,
        }
    )


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
    async with sessions_of(request)() as session:
        rows, next_cursor = page(list((await session.exec(stmt)).all()), limit)
        bundles = await return_bundles(session, rows)
        orders = await orders_by_id(session, {r.order_id for r in rows})
        lines = await lines_by_id(session, bundles)
    return reply(
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
    async with sessions_of(request)() as session:
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
            raise ApiError(404, f"no return '{shorten(number)}'")
        (bundle,) = await return_bundles(session, [rma])
        orders = await orders_by_id(session, {rma.order_id})
        lines = await lines_by_id(session, [bundle])
    return reply(return_document(bundle, lines_by_id=lines, order=orders.get(rma.order_id)))


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
    async with sessions_of(request)() as session:
        rows = list((await session.exec(stmt)).all())
    next_cursor = str(rows[limit - 1][0].id) if len(rows) > limit else None
    docs = [inventory_document(level, wh) for level, wh in rows[:limit]]
    return reply({"inventory": docs, "next_cursor": next_cursor})


class InventoryUpdate(BaseModel):
    """The body of ``PUT /inventory/{warehouse}/{sku}``: either field or both."""

    model_config = ConfigDict(extra="forbid", strict=True)

    on_hand: int | None = Field(default=None, ge=0, le=1_000_000_000)
    safety_stock: int | None = Field(default=None, ge=0, le=1_000_000_000)


def _validation_message(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err.get("loc", ())) or "body"
        parts.append(f"{shorten(where, 40)}: {err.get('msg', 'invalid')}")
    return "; ".join(parts)


async def put_inventory(request: web.Request) -> web.Response:
    Query(request, set())
    code = path_text("warehouse", request.match_info["warehouse"], 32)
    sku = path_text("sku", request.match_info["sku"], 64)
    data = await read_json(request)
    if not isinstance(data, dict):
        raise ApiError(400, "the body must be a JSON object like {\"on_hand\": 12, \"safety_stock\": 3}")
    try:
        update = InventoryUpdate.model_validate(data)
    except ValidationError as exc:
        raise ApiError(400, _validation_message(exc)) from None
    if update.on_hand is None and update.safety_stock is None:
        raise ApiError(400, "give on_hand, safety_stock or both")

    async with sessions_of(request)() as session:
        for attempt in range(2):
            wh = (await session.exec(select(Warehouse).where(Warehouse.code == code))).first()
            if wh is None or wh.id is None:
                raise ApiError(404, f"no warehouse '{shorten(code)}'")
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
    return reply({"inventory": doc, "created": created}, status=201 if created else 200)


async def get_openapi(request: web.Request) -> web.Response:
    return reply(OPENAPI)


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
    api = web.Application(middlewares=[errors_middleware, auth_middleware])
    api[SESSIONS] = sessionmaker
    api.router.add_routes(ROUTES)
    api.router.add_route("*", "/{tail:.*}", fallback, name="fallback")
    app.add_subapp(API_PREFIX, api)
    app[API_APP] = api

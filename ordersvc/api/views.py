"""The API's handlers, its operation table ``OPERATIONS`` (routes and their documentation) and ``setup``."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from aiohttp import web
from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from ordersvc.api import schemas
from ordersvc.api.http import (
    API_APP,
    API_PREFIX,
    SESSIONS,
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
from ordersvc.api.openapi import Answer, Operation, PathParam, build_document
from ordersvc.api.queries import lines_by_id, order_or_404, orders_by_id
from ordersvc.api.schemas import DEFAULT_LIMIT, MAX_LIMIT
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
)
from ordersvc.serialize import inventory_document, order_document, order_summary, return_document, shipment_document
from ordersvc.service import late_shipment_clause, normalize_email, return_bundles, shipment_bundles
from ordersvc.tracking import ShipmentStatus
from shopbase.clock import utcnow
from shopbase.refusal import Refused


async def list_orders(request: web.Request) -> web.Response:
    q = Query(request, schemas.OrdersQuery)
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
    Query(request, None)
    async with sessions_of(request)() as session:
        order = await order_or_404(session, request)
        return reply(await order_document(session, order))


async def get_order_shipments(request: web.Request) -> web.Response:
    Query(request, None)
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
    q = Query(request, schemas.ShipmentsQuery)
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
    q = Query(request, schemas.ReturnsQuery)
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
    Query(request, None)
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
            raise Refused("return_not_found", f"no return '{shorten(number)}'", status=404)
        (bundle,) = await return_bundles(session, [rma])
        orders = await orders_by_id(session, {rma.order_id})
        lines = await lines_by_id(session, [bundle])
    return reply(return_document(bundle, lines_by_id=lines, order=orders.get(rma.order_id)))


async def list_inventory(request: web.Request) -> web.Response:
    q = Query(request, schemas.InventoryQuery)
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
            raise Refused("invalid_parameter", "'sku' takes 1 to 50 comma-separated SKUs", status=400)
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


def _field_problems(exc: ValidationError) -> dict[str, str]:
    """Up to five problems of a body, by field (``on_hand``: ``Input should be …``)."""
    problems: dict[str, str] = {}
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err.get("loc", ())) or "body"
        problems.setdefault(shorten(where, 40), str(err.get("msg", "invalid")))
    return problems


async def put_inventory(request: web.Request) -> web.Response:
    Query(request, None)
    code = path_text("warehouse", request.match_info["warehouse"], 32)
    sku = path_text("sku", request.match_info["sku"], 64)
    data = await read_json(request)
    if not isinstance(data, dict):
        example = '{"on_hand": 12, "safety_stock": 3}'
        raise Refused("invalid_body", f"the body must be a JSON object like {example}", status=400)
    try:
        update = schemas.InventoryUpdate.model_validate(data)
    except ValidationError as exc:
        fields = _field_problems(exc)
        message = "; ".join(f"{where}: {problem}" for where, problem in fields.items())
        raise Refused("invalid_body", message, status=400, fields=fields) from None
    if update.on_hand is None and update.safety_stock is None:
        raise Refused("invalid_body", "give on_hand, safety_stock or both", status=400)

    async with sessions_of(request)() as session:
        for attempt in range(2):
            wh = (await session.exec(select(Warehouse).where(Warehouse.code == code))).first()
            if wh is None or wh.id is None:
                raise Refused("warehouse_not_found", f"no warehouse '{shorten(code)}'", status=404)
            found = (
                await session.exec(
                    select(InventoryLevel).where(InventoryLevel.warehouse_id == wh.id, InventoryLevel.sku == sku)
                )
            ).first()
            created = found is None
            level = InventoryLevel(warehouse_id=wh.id, sku=sku) if found is None else found
            if created:
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
                    message = "the inventory level changed concurrently; retry"
                    raise Refused("concurrent_update", message, status=409) from None
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
        raise Refused(
            "method_not_allowed",
            f"method {request.method} is not allowed here",
            status=405,
            headers={"Allow": ", ".join(sorted(allowed))},
        )
    raise Refused("no_such_route", "no such API route (see /api/v1/openapi.json)", status=404)


_ORDER_REF = PathParam(
    "ref",
    128,
    "Order name (#1001, URL-encoded as %231001), number (1001), external id, "
    "Amazon (113-1234567-1234567) or eBay (12-12345-12345) order number, POS name",
)

#: every route of the API (paths relative to ``/api/v1``) with what the document says about it
OPERATIONS: tuple[Operation, ...] = (
    Operation(
        "GET", "/openapi.json", get_openapi, "openapi", "getOpenApi", "This document",
        {200: Answer("OpenAPI 3.1 document")}, secured=False,
    ),
    Operation(
        "GET", "/orders", list_orders, "orders", "listOrders", "List orders, newest first",
        {200: Answer("A page of orders", schemas.OrderList)}, query=schemas.OrdersQuery,
    ),
    Operation(
        "GET", "/orders/{ref}", get_order, "order", "getOrder",
        "One order with lines, shipments, returns, refunds and store credits",
        {200: Answer("The order", schemas.Order)}, path_params=(_ORDER_REF,), errors={404: "No such order"},
    ),
    Operation(
        "GET", "/orders/{ref}/shipments", get_order_shipments, "order_shipments", "getOrderShipments",
        "The shipments of one order with their tracking events",
        {200: Answer("The order's shipments", schemas.OrderShipments)},
        path_params=(_ORDER_REF,), errors={404: "No such order"},
    ),
    Operation(
        "GET", "/shipments", list_shipments, "shipments", "listShipments", "List shipments, newest first",
        {200: Answer("A page of shipments", schemas.ShipmentList)}, query=schemas.ShipmentsQuery,
    ),
    Operation(
        "GET", "/returns", list_returns, "returns", "listReturns", "List returns (RMAs), newest first",
        {200: Answer("A page of returns", schemas.ReturnList)}, query=schemas.ReturnsQuery,
    ),
    Operation(
        "GET", "/returns/{rma_number}", get_return, "rma", "getReturn", "One return by its RMA number",
        {200: Answer("The return", schemas.Return)},
        path_params=(PathParam("rma_number", 32),), errors={404: "No such return"},
    ),
    Operation(
        "GET", "/inventory", list_inventory, "inventory", "listInventory", "Stock levels per warehouse and SKU",
        {200: Answer("A page of stock levels", schemas.InventoryList)}, query=schemas.InventoryQuery,
    ),
    Operation(
        "PUT", "/inventory/{warehouse}/{sku}", put_inventory, "inventory_level", "putInventoryLevel",
        "Set on-hand and/or safety stock of one SKU in one warehouse (created if missing)",
        {200: Answer("Updated", schemas.InventoryChange), 201: Answer("Created", schemas.InventoryChange)},
        path_params=(PathParam("warehouse", 32), PathParam("sku", 64)), body=schemas.InventoryUpdate,
        errors={404: "No such warehouse", 409: "Concurrent update; retry", 413: "Body larger than 64 KiB"},
    ),
)  # fmt: skip

#: the aiohttp routes of ``OPERATIONS``
ROUTES: list[web.RouteDef] = [op.route() for op in OPERATIONS]
#: the OpenAPI document of ``OPERATIONS``
OPENAPI: dict[str, Any] = build_document(OPERATIONS)


def setup(app: web.Application, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    """Mount the API on ``app`` under ``/api/v1``."""
    api = web.Application(middlewares=[errors_middleware, auth_middleware])
    api[SESSIONS] = sessionmaker
    api.router.add_routes(ROUTES)
    api.router.add_route("*", "/{tail:.*}", fallback, name="fallback")
    app.add_subapp(API_PREFIX, api)
    app[API_APP] = api

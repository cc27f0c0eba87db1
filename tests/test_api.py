"""The REST API under /api/v1 against the real app factory pieces, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import pytest
from aiohttp import web

from ordersvc import api
from ordersvc.api import schemas
from ordersvc.api_tokens import authenticate, create_token, list_tokens, revoke_token
from ordersvc.models import (
    ApiToken,
    Customer,
    FinancialStatus,
    FulfillmentStatus,
    InventoryLevel,
    Order,
    OrderLine,
    ReturnAuthorization,
    ReturnLine,
    RmaStatus,
    Shipment,
    ShipmentLine,
    SourceChannel,
    TrackingEvent,
    Warehouse,
)
from ordersvc.service import shipment_is_late
from ordersvc.tracking import ShipmentStatus
from shopbase.clock import utcnow
from shopdesk.demo import seed_demo_orders

S = ShipmentStatus


async def seed(session: Any) -> None:
    now = utcnow()
    ana = Customer(external_id="c1", email="ana@example.com", first_name="Ana")
    session.add(ana)
    await session.flush()
    orders = []
    for i in range(5):
        orders.append(
            Order(
                source=SourceChannel.online_store, external_id=str(820982911946154500 + i), name=f"#{1001 + i}",
                customer_id=ana.id, email="Ana@Example.com" if i % 2 == 0 else "bob@example.org",
                placed_at=now - timedelta(days=10 - i), updated_at=now - timedelta(days=10 - i),
                total_price=Decimal("19.90") * (i + 1), shipping_postal_code="78704",
                fulfillment_status=FulfillmentStatus.fulfilled if i < 3 else FulfillmentStatus.unfulfilled,
                financial_status=FinancialStatus.paid if i != 4 else FinancialStatus.voided,
                cancelled_at=now - timedelta(days=1) if i == 4 else None,
            )
        )
    orders.append(Order(source=SourceChannel.amazon, external_id="113-1234567-1234567",
                        name="113-1234567-1234567", placed_at=now - timedelta(days=2)))
    session.add_all(orders)
    await session.flush()
    line = OrderLine(order_id=orders[0].id, sku="TR2-BLK-09", title="Trail Runner 2", unit_price=Decimal("89"),
                     fulfilled_quantity=1)
    session.add(line)
    await session.flush()
    moving = Shipment(order_id=orders[0].id, external_id="f1", carrier="UPS", status=S("in_transit"),
                      tracking_number="1Z5R89390357567127", shipped_at=now - timedelta(days=1),
                      last_event_at=now - timedelta(hours=2), eta=now + timedelta(days=2))
    stalled = Shipment(order_id=orders[1].id, external_id="f2", carrier="USPS", status=S("in_transit"),
                       shipped_at=now - timedelta(days=9), last_event_at=now - timedelta(days=7))
    broken = Shipment(order_id=orders[2].id, external_id="f3", carrier="FedEx", status=S("exception"),
                      shipped_at=now - timedelta(days=2), last_event_at=now - timedelta(days=1))
    done = Shipment(order_id=orders[2].id, external_id="f4", carrier="FedEx", status=S("delivered"),
                    shipped_at=now - timedelta(days=20), delivered_at=now - timedelta(days=17),
                    eta=now - timedelta(days=18))
    session.add_all([moving, stalled, broken, done])
    await session.flush()
    session.add_all([
        ShipmentLine(shipment_id=moving.id, order_line_id=line.id, quantity=1),
        TrackingEvent(shipment_id=moving.id, occurred_at=now - timedelta(hours=2), status=S("in_transit"),
                      message="Arrived at Facility", location="Louisville, KY, US"),
    ])
    for n, status in enumerate([RmaStatus.requested, RmaStatus.refunded, RmaStatus.requested]):
        rma = ReturnAuthorization(rma_number=f"R100{n + 1}-1", order_id=orders[n].id, status=status)
        session.add(rma)
        await session.flush()
        session.add(ReturnLine(rma_id=rma.id, order_line_id=line.id))
    east = Warehouse(code="east", name="East", is_default=True)
    session.add(east)
    await session.flush()
    session.add_all([
        InventoryLevel(warehouse_id=east.id, sku="TR2-BLK-09", on_hand=10, reserved=1, safety_stock=3),
        InventoryLevel(warehouse_id=east.id, sku="TEE-OLV-M", on_hand=4, reserved=2, safety_stock=3),
    ])
    await session.commit()


@pytest.fixture
async def client(aiohttp_client: Any, sessions: Any) -> Any:
    app = web.Application()
    api.setup(app, sessions)
    async with sessions() as session:
        await seed(session)
    return await aiohttp_client(app)


@pytest.fixture
async def token(sessions: Any) -> str:
    async with sessions() as session:
        raw = await create_token(session, "erp-sync")
        await session.commit()
    return raw


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def get_json(client: Any, path: str, token: str, status: int = 200) -> Any:
    resp = await client.get(path, headers=auth(token))
    body = await resp.json()
    assert resp.status == status, body
    return body


# --------------------------------------------------------------------------- tokens and auth


async def test_tokens_are_hashed_and_revocable(sessions: Any) -> None:
    async with sessions() as session:
        raw = await create_token(session, "  erp   sync ")
        await session.commit()
        assert raw.startswith("sdk_") and len(raw) >= 40
        (tok,) = await list_tokens(session)
        assert tok.name == "erp sync" and tok.prefix == raw[:8] and raw not in tok.token_hash
        first = await authenticate(session, raw)
        assert first is not None and first.last_used_at is not None
        stamp = first.last_used_at
        await session.commit()
        again = await authenticate(session, raw, now=stamp + timedelta(seconds=30))
        assert again is not None and again.last_used_at == stamp  # at most once a minute
        later = await authenticate(session, raw, now=stamp + timedelta(minutes=2))
        assert later is not None and later.last_used_at == stamp + timedelta(minutes=2)
        assert await authenticate(session, raw + "x") is None
        assert await authenticate(session, "not-a-token") is None
        assert await revoke_token(session, tok.id) is True  # type: ignore[arg-type]
        assert await revoke_token(session, 424242) is False
        await session.commit()
        assert await authenticate(session, raw) is None
        with pytest.raises(ValueError):
            await create_token(session, "   ")


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer sdk_wrong"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer " + "x" * 5000},
    ],
)
async def test_401_without_a_valid_token(client: Any, token: str, headers: dict[str, str]) -> None:
    for path in ("/api/v1/orders", "/api/v1/orders/%231001", "/api/v1/nowhere"):
        resp = await client.get(path, headers=headers)
        assert resp.status == 401
        assert resp.headers["WWW-Authenticate"].startswith("Bearer")
        body = await resp.json()
        assert body["error"] in {"missing_token", "invalid_token"} and body["message"]
    resp = await client.put("/api/v1/inventory/east/TR2-BLK-09", json={"on_hand": 1}, headers=headers)
    assert resp.status == 401


async def test_revoked_token_is_refused(client: Any, sessions: Any, token: str) -> None:
    await get_json(client, "/api/v1/orders", token)
    async with sessions() as session:
        (tok,) = await list_tokens(session)
        await revoke_token(session, tok.id)  # type: ignore[arg-type]
        await session.commit()
    resp = await client.get("/api/v1/orders", headers=auth(token))
    assert resp.status == 401 and 'error="invalid_token"' in resp.headers["WWW-Authenticate"]


async def test_token_marks_last_use(client: Any, sessions: Any, token: str) -> None:
    await get_json(client, "/api/v1/orders", token)
    async with sessions() as session:
        (tok,) = (await session.exec(ApiToken.__table__.select())).all()  # type: ignore[attr-defined]
        assert tok.last_used_at is not None


# --------------------------------------------------------------------------- orders


async def test_get_order_by_every_shape(client: Any, token: str) -> None:
    for ref in ("%231001", "1001", quote("№1001"), "820982911946154500"):
        doc = await get_json(client, f"/api/v1/orders/{ref}", token)
        assert doc["name"] == "#1001" and doc["external_id"] == "820982911946154500"
    doc = await get_json(client, "/api/v1/orders/113-1234567-1234567", token)
    assert doc["source"] == "amazon"
    doc = await get_json(client, "/api/v1/orders/%231001", token)
    assert doc["total_price"] == "19.90" and doc["lines"][0]["sku"] == "TR2-BLK-09"
    assert doc["shipments"][0]["events"][0]["message"] == "Arrived at Facility"
    assert doc["returns"][0]["rma_number"] == "R1001-1"


@pytest.mark.parametrize("ref", ["%239999", "nope", "%00", quote("😀" * 40), "1" * 200])
async def test_unknown_order_is_404(client: Any, token: str, ref: str) -> None:
    body = await get_json(client, f"/api/v1/orders/{ref}", token, status=404)
    assert body["error"] == "order_not_found" and "no order" in body["message"]
    await get_json(client, f"/api/v1/orders/{ref}/shipments", token, status=404)


async def test_order_shipments(client: Any, token: str) -> None:
    body = await get_json(client, "/api/v1/orders/%231003/shipments", token)
    assert body["order"]["name"] == "#1003"
    assert sorted(s["status"] for s in body["shipments"]) == ["delivered", "exception"]
    assert {s["late"] for s in body["shipments"]} == {True, False}


async def test_list_orders_filters(client: Any, token: str) -> None:
    body = await get_json(client, "/api/v1/orders", token)
    assert [o["name"] for o in body["orders"]] == ["113-1234567-1234567", "#1005", "#1004", "#1003", "#1002",
                                                    "#1001"]
    assert body["next_cursor"] is None
    cases = {
        "email=ANA%40example.com": ["#1005", "#1003", "#1001"],
        "status=unfulfilled": ["113-1234567-1234567", "#1005", "#1004"],
        "status=fulfilled": ["#1003", "#1002", "#1001"],
        "status=voided": ["#1005"],
        "status=cancelled": ["#1005"],
        "source=amazon": ["113-1234567-1234567"],
        "source=pos": [],
    }
    for query, expected in cases.items():
        got = await get_json(client, f"/api/v1/orders?{query}", token)
        assert [o["name"] for o in got["orders"]] == expected, query
    since = (utcnow() - timedelta(days=7, hours=12)).isoformat()
    got = await get_json(client, f"/api/v1/orders?updated_since={quote(since)}&source=online_store", token)
    assert [o["name"] for o in got["orders"]] == ["#1005", "#1004"]
    # an unencoded "+00:00" arrives as " 00:00" and is still understood
    got = await get_json(client, f"/api/v1/orders?updated_since={since.replace('+', '%20')}&source=online_store",
                         token)
    assert len(got["orders"]) == 2


async def test_list_orders_pagination(client: Any, token: str) -> None:
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        path = "/api/v1/orders?limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = await get_json(client, path, token)
        assert len(page["orders"]) <= 2
        seen += [o["name"] for o in page["orders"]]
        cursor = page["next_cursor"]
        pages += 1
        if cursor is None:
            break
    assert pages == 3 and len(seen) == len(set(seen)) == 6


@pytest.mark.parametrize(
    "query",
    [
        "limit=0", "limit=101", "limit=abc", "limit=-1", "limit=1e3", "limit=",
        "status=bogus", "source=shopify", "updated_since=yesterday", "updated_since=2024-13-01",
        "cursor=abc", "cursor=0", "cursor=-5", "cursor=" + "9" * 40,
        "colour=red", "limit=1&limit=2", "email=" + "a" * 400, "email=%00",
    ],
)
async def test_list_orders_bad_params(client: Any, token: str, query: str) -> None:
    body = await get_json(client, f"/api/v1/orders?{query}", token, status=400)
    assert body["error"] in {"invalid_parameter", "unknown_parameter", "repeated_parameter", "invalid_cursor"}
    assert isinstance(body["message"], str) and body["message"]


# --------------------------------------------------------------------------- shipments, returns


async def test_shipments_listing_and_late(client: Any, token: str) -> None:
    every = await get_json(client, "/api/v1/shipments", token)
    assert len(every["shipments"]) == 4 and all("order" in s for s in every["shipments"])
    late = await get_json(client, "/api/v1/shipments?late=true", token)
    assert sorted(s["external_id"] for s in late["shipments"]) == ["f2", "f3"]
    assert all(s["late"] for s in late["shipments"])
    fine = await get_json(client, "/api/v1/shipments?late=false", token)
    assert sorted(s["external_id"] for s in fine["shipments"]) == ["f1", "f4"]
    moving = await get_json(client, "/api/v1/shipments?status=in_transit&late=false", token)
    assert [s["external_id"] for s in moving["shipments"]] == ["f1"]
    assert moving["shipments"][0]["order"]["name"] == "#1001"
    ups = await get_json(client, "/api/v1/shipments?carrier=ups", token)
    assert [s["carrier"] for s in ups["shipments"]] == ["UPS"]
    page = await get_json(client, "/api/v1/shipments?limit=3", token)
    rest = await get_json(client, f"/api/v1/shipments?limit=3&cursor={page['next_cursor']}", token)
    assert len(page["shipments"]) == 3 and len(rest["shipments"]) == 1 and rest["next_cursor"] is None
    for bad in ("status=lost", "late=maybe", "late=", "limit=500"):
        await get_json(client, f"/api/v1/shipments?{bad}", token, status=400)


async def test_returns(client: Any, token: str) -> None:
    every = await get_json(client, "/api/v1/returns", token)
    assert [r["rma_number"] for r in every["returns"]] == ["R1003-1", "R1002-1", "R1001-1"]
    requested = await get_json(client, "/api/v1/returns?status=requested", token)
    assert [r["rma_number"] for r in requested["returns"]] == ["R1003-1", "R1001-1"]
    one = await get_json(client, "/api/v1/returns/r1002-1", token)
    assert one["status"] == "refunded" and one["order"]["name"] == "#1002"
    assert one["lines"][0]["sku"] == "TR2-BLK-09" and "steps" in one
    await get_json(client, "/api/v1/returns/R9999-1", token, status=404)
    await get_json(client, "/api/v1/returns/" + "R" * 100, token, status=404)
    await get_json(client, "/api/v1/returns?status=lost", token, status=400)


# --------------------------------------------------------------------------- inventory


async def test_inventory_listing(client: Any, token: str) -> None:
    every = await get_json(client, "/api/v1/inventory", token)
    assert {(i["sku"], i["available"], i["low"]) for i in every["inventory"]} == {
        ("TR2-BLK-09", 9, False),
        ("TEE-OLV-M", 2, True),
    }
    low = await get_json(client, "/api/v1/inventory?low=true", token)
    assert [i["sku"] for i in low["inventory"]] == ["TEE-OLV-M"]
    one = await get_json(client, "/api/v1/inventory?sku=TR2-BLK-09&warehouse=east", token)
    assert [i["warehouse"] for i in one["inventory"]] == ["east"]
    two = await get_json(client, "/api/v1/inventory?sku=TR2-BLK-09,TEE-OLV-M", token)
    assert len(two["inventory"]) == 2
    none = await get_json(client, "/api/v1/inventory?warehouse=west", token)
    assert none["inventory"] == []
    await get_json(client, "/api/v1/inventory?sku=,,,", token, status=400)


async def test_put_inventory(client: Any, token: str) -> None:
    resp = await client.put("/api/v1/inventory/east/TR2-BLK-09", json={"on_hand": 2}, headers=auth(token))
    body = await resp.json()
    assert resp.status == 200 and body["created"] is False
    assert body["inventory"]["on_hand"] == 2 and body["inventory"]["safety_stock"] == 3
    assert body["inventory"]["low"] is True
    resp = await client.put("/api/v1/inventory/east/NEW-SKU-1", json={"on_hand": 7, "safety_stock": 1},
                            headers=auth(token))
    body = await resp.json()
    assert resp.status == 201 and body["created"] is True and body["inventory"]["available"] == 7
    again = await client.put("/api/v1/inventory/east/NEW-SKU-1", json={"safety_stock": 9}, headers=auth(token))
    assert again.status == 200 and (await again.json())["inventory"]["on_hand"] == 7
    listed = await get_json(client, "/api/v1/inventory?sku=NEW-SKU-1", token)
    assert [(i["on_hand"], i["safety_stock"]) for i in listed["inventory"]] == [(7, 9)]


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b'{"on_hand": -1}', 400),
        (b'{"on_hand": "5"}', 400),
        (b'{"on_hand": true}', 400),
        (b'{"on_hand": 5.0}', 400),
        (b'{"on_hand": 1e400}', 400),
        (b'{"on_hand": 10000000000}', 400),
        (b'{"on_hand": 1, "colour": "red"}', 400),
        (b"{}", 400),
        (b"[1, 2]", 400),
        (b"", 400),
        (b"not json", 400),
        (b"\xff\xfe", 400),
        (b"[" * 60000, 400),
        (b'{"on_hand": ' + b"9" * 5000 + b"}", 400),
        (b'{"pad": "' + b"x" * (70 * 1024) + b'"}', 413),
    ],
)
async def test_put_inventory_rejects_bad_bodies(client: Any, token: str, body: bytes, status: int) -> None:
    headers = {**auth(token), "Content-Type": "application/json"}
    resp = await client.put("/api/v1/inventory/east/TR2-BLK-09", data=body, headers=headers)
    assert resp.status == status
    problem = await resp.json()
    assert problem["error"] in {"invalid_body", "body_required", "invalid_json", "body_too_large"}
    assert problem["message"]
    # nothing changed
    listed = await get_json(client, "/api/v1/inventory?sku=TR2-BLK-09", token)
    assert listed["inventory"][0]["on_hand"] == 10


async def test_put_inventory_names_the_fields_at_fault(client: Any, token: str) -> None:
    resp = await client.put("/api/v1/inventory/east/TR2-BLK-09", json={"on_hand": -1, "colour": "red"},
                            headers=auth(token))
    assert resp.status == 400
    body = await resp.json()
    assert body["error"] == "invalid_body"
    assert set(body["fields"]) == {"on_hand", "colour"}
    assert "on_hand" in body["message"] and "colour" in body["message"]


async def test_put_inventory_chunked_body_over_limit(client: Any, token: str) -> None:
    async def chunks() -> Any:
        for _ in range(80):
            yield b" " * 1024

    resp = await client.put("/api/v1/inventory/east/TR2-BLK-09", data=chunks(), headers=auth(token))
    assert resp.status == 413


async def test_put_inventory_unknown_warehouse_and_bad_sku(client: Any, token: str) -> None:
    resp = await client.put("/api/v1/inventory/north/TR2-BLK-09", json={"on_hand": 1}, headers=auth(token))
    assert resp.status == 404 and (await resp.json())["error"] == "warehouse_not_found"
    resp = await client.put("/api/v1/inventory/east/" + "X" * 80, json={"on_hand": 1}, headers=auth(token))
    assert resp.status == 400
    resp = await client.put("/api/v1/inventory/east/A%00B", json={"on_hand": 1}, headers=auth(token))
    assert resp.status == 400


# --------------------------------------------------------------------------- routing and the document


async def test_unknown_route_and_method(client: Any, token: str) -> None:
    body = await get_json(client, "/api/v1/widgets", token, status=404)
    assert body["error"] == "no_such_route" and "openapi.json" in body["message"]
    resp = await client.delete("/api/v1/orders", headers=auth(token))
    assert resp.status == 405 and resp.headers["Allow"] == "GET"
    assert (await resp.json())["error"] == "method_not_allowed"
    resp = await client.post("/api/v1/inventory/east/TR2-BLK-09", json={}, headers=auth(token))
    assert resp.status == 405 and resp.headers["Allow"] == "PUT"


async def test_openapi_document_lists_every_route(client: Any) -> None:
    resp = await client.get("/api/v1/openapi.json")  # no token needed
    assert resp.status == 200
    doc = json.loads(await resp.text())
    assert doc["openapi"].startswith("3.1")
    assert doc["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http", "scheme": "bearer", "bearerFormat": "sdk_…",
    }
    api_app = client.app[api.API_APP]
    registered: dict[str, set[str]] = {}
    for resource in api_app.router.resources():
        if resource.name == "fallback":
            continue
        for route in resource:
            registered.setdefault(resource.canonical, set()).add(route.method.lower())
    documented = {path: set(ops) for path, ops in doc["paths"].items()}
    assert documented == registered
    for path, ops in doc["paths"].items():
        placeholders = set(re.findall(r"{(\w+)}", path))
        for op in ops.values():
            assert op["responses"] and op["operationId"]
            in_path = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
            assert in_path == placeholders, path
    # every $ref resolves
    refs = set(re.findall(r'"\$ref": "#/components/schemas/(\w+)"', json.dumps(doc)))
    assert refs <= set(doc["components"]["schemas"])


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/orders/%FF%FE",
        "/api/v1/orders/" + quote("\u202e1001"),
        "/api/v1/orders/%2e%2e%2f%2e%2e",
        "/api/v1/orders?email=" + quote("' OR 1=1 --"),
        "/api/v1/shipments?status=" + quote("in_transit' --"),
        "/api/v1/returns/" + quote("R1001-1' --"),
        "/api/v1/inventory?sku=" + quote("%' OR '1'='1"),
    ],
)
async def test_odd_input_never_500(client: Any, token: str, path: str) -> None:
    resp = await client.get(path, headers=auth(token))
    assert resp.status < 500
    assert resp.content_type == "application/json"


# --------------------------------------------------------------------------- the demo shop through the API


async def test_demo_shop_pages_and_late_shipments(aiohttp_client: Any, sessions: Any, token: str) -> None:
    now = datetime.now(UTC)
    summary = await seed_demo_orders(sessions, seed=7, now=now)
    app = web.Application()
    api.setup(app, sessions)
    client = await aiohttp_client(app)
    names: list[str] = []
    cursor = None
    while True:
        page = await get_json(client, "/api/v1/orders?limit=100" + (f"&cursor={cursor}" if cursor else ""), token)
        names += [o["name"] for o in page["orders"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(names) == len(set(names)) == summary.orders

    late_ids: set[str] = set()
    cursor = None
    while True:
        page = await get_json(client, "/api/v1/shipments?late=true&limit=100"
                              + (f"&cursor={cursor}" if cursor else ""), token)
        late_ids |= {s["id"] for s in page["shipments"]}
        cursor = page["next_cursor"]
        if cursor is None:
            break
    async with sessions() as session:
        every = (await session.exec(Shipment.__table__.select())).all()  # type: ignore[attr-defined]
        check = datetime.now(UTC)
        expected = {row.id for row in every if shipment_is_late(Shipment.model_validate(dict(row._mapping)), check)}
    assert late_ids == expected and late_ids
    low = await get_json(client, "/api/v1/inventory?low=true&limit=100", token)
    assert low["inventory"] and all(i["available"] <= i["safety_stock"] for i in low["inventory"])
    doc = await get_json(client, "/api/v1/orders/%231001", token)
    assert doc["shipments"][0]["status"] == "in_transit"

    # every answer of the demo shop matches the models the OpenAPI document is generated from
    # (extra="forbid": an undocumented key fails; a documented key that is missing fails too)
    for page_path, model in (
        ("/api/v1/orders?limit=100", schemas.OrderList),
        ("/api/v1/shipments?limit=100", schemas.ShipmentList),
        ("/api/v1/returns?limit=100", schemas.ReturnList),
        ("/api/v1/inventory?limit=100", schemas.InventoryList),
    ):
        model.model_validate(await get_json(client, page_path, token))
    for n in range(1001, 1027):  # the showcase: every shipment and return status, refunds, credits
        order = schemas.Order.model_validate(await get_json(client, f"/api/v1/orders/%23{n}", token))
        schemas.OrderShipments.model_validate(await get_json(client, f"/api/v1/orders/%23{n}/shipments", token))
        for rma in order.returns:
            schemas.Return.model_validate(await get_json(client, f"/api/v1/returns/{rma.rma_number}", token))
    statuses = {r.status for n in range(1016, 1026)
                for r in schemas.Order.model_validate(await get_json(client, f"/api/v1/orders/%23{n}", token)).returns}
    assert len(statuses) >= 8
    resp = await client.put("/api/v1/inventory/east/DEMO-NEW-1", json={"on_hand": 3}, headers=auth(token))
    assert resp.status == 201
    schemas.InventoryChange.model_validate(await resp.json())
    for status, path in ((404, "/api/v1/orders/%239999"), (400, "/api/v1/orders?limit=0"), (404, "/api/v1/nowhere")):
        schemas.Error.model_validate(await get_json(client, path, token, status=status))


def test_openapi_document_is_generated_from_the_models() -> None:
    doc = api.OPENAPI
    schemas_doc = doc["components"]["schemas"]
    # the answer models and the enums they use are components; the query models are parameters
    assert {"Order", "OrderSummary", "Shipment", "Return", "InventoryLevel", "InventoryUpdate", "Error"} <= set(
        schemas_doc
    )
    assert "OrdersQuery" not in schemas_doc
    assert set(schemas_doc["Order"]["required"]) >= {"id", "name", "lines", "shipments", "returns"}
    assert schemas_doc["Order"]["additionalProperties"] is False
    assert schemas_doc["FinancialStatus"]["enum"] == [s.value for s in FinancialStatus]
    # a route's query parameters are exactly the fields of its query model, in the same order
    listed = doc["paths"]["/api/v1/orders"]["get"]["parameters"]
    assert [p["name"] for p in listed] == list(schemas.OrdersQuery.model_fields)
    assert all(p["in"] == "query" and "null" not in json.dumps(p["schema"]) for p in listed)
    put = doc["paths"]["/api/v1/inventory/{warehouse}/{sku}"]["put"]
    assert put["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/InventoryUpdate"
    }
    assert set(put["responses"]) == {"200", "201", "400", "401", "404", "409", "413"}
    assert doc["paths"]["/api/v1/openapi.json"]["get"]["security"] == []

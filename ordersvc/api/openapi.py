"""The OpenAPI 3.1 document of the API (``OPENAPI``); a test checks it against ``ROUTES``."""

from __future__ import annotations

from enum import Enum
from typing import Any

from ordersvc.api.http import API_PREFIX, DEFAULT_LIMIT, MAX_LIMIT
from ordersvc.models import FinancialStatus, FulfillmentStatus, RmaStatus, SourceChannel
from ordersvc.tracking import ShipmentStatus


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

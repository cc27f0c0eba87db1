"""The OpenAPI 3.1 document of the API, generated from the route table and the pydantic models.

``OPERATIONS`` (in ``views``) says for every route its method, path, handler, query model,
body model and answers; ``schemas`` holds the models. ``build_document`` turns both into the
document: ``components.schemas`` from the models' JSON schemas, ``paths`` from the operations.
Nothing here is written by hand twice, so a route cannot be served undocumented.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, models_json_schema

from ordersvc.api.http import API_PREFIX
from ordersvc.api.schemas import RESPONSE_MODELS, QueryModel

__all__ = ["Answer", "PathParam", "Operation", "build_document"]

_REF_TEMPLATE = "#/components/schemas/{model}"

_DESCRIPTION = (
    "Orders, shipments, returns and stock of the shop. Every route except this document needs "
    "'Authorization: Bearer <token>' (create one with 'shopdesk tokens create NAME'). Money is a decimal "
    "string next to its currency; times are ISO 8601 UTC; listings are newest first and paginated with an "
    "opaque cursor. Errors are {\"error\": code, \"message\": text}."
)


@dataclass(frozen=True)
class Answer:
    """One documented answer: ``model`` is the JSON body (``None``: any JSON)."""

    description: str
    model: type[BaseModel] | None = None


@dataclass(frozen=True)
class PathParam:
    name: str
    max_length: int
    description: str = ""


@dataclass(frozen=True)
class Operation:
    """One route of the API and what the document says about it."""

    method: str
    path: str  #: relative to ``API_PREFIX``
    handler: Any  #: the aiohttp handler
    name: str  #: the route name
    operation_id: str
    summary: str
    answers: Mapping[int, Answer]
    query: type[QueryModel] | None = None
    path_params: tuple[PathParam, ...] = ()
    body: type[BaseModel] | None = None
    #: False for the one route that needs no token
    secured: bool = True
    errors: Mapping[int, str] = field(default_factory=dict)

    def route(self) -> web.RouteDef:
        if self.method == "GET":
            return web.get(self.path, self.handler, name=self.name, allow_head=False)
        return web.route(self.method, self.path, self.handler, name=self.name)


class _NoFieldTitles(GenerateJsonSchema):
    """Field titles only repeat the field names; models keep theirs."""

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False


def _error_answer(description: str) -> dict[str, Any]:
    schema = {"$ref": _REF_TEMPLATE.format(model="Error")}
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _answer(answer: Answer) -> dict[str, Any]:
    schema: dict[str, Any] = {"$ref": _REF_TEMPLATE.format(model=answer.model.__name__)} if answer.model else {}
    return {"description": answer.description, "content": {"application/json": {"schema": schema}}}


def _without_null(schema: dict[str, Any]) -> dict[str, Any]:
    """A query parameter's schema without pydantic's ``| None`` (absent, not null) and its default."""
    if schema.get("default", ...) is None:
        schema = {k: v for k, v in schema.items() if k != "default"}
    options = schema.get("anyOf")
    if options and {"type": "null"} in options:
        rest = [s for s in options if s != {"type": "null"}]
        base = {k: v for k, v in schema.items() if k != "anyOf"}
        schema = {**base, **rest[0]} if len(rest) == 1 else {**base, "anyOf": rest}
    return schema


def _parameters(op: Operation, defs: Mapping[str, Any]) -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = [
        {
            "name": p.name,
            "in": "path",
            "required": True,
            **({"description": p.description} if p.description else {}),
            "schema": {"type": "string", "maxLength": p.max_length},
        }
        for p in op.path_params
    ]
    if op.query is not None:
        for name, prop in defs[op.query.__name__]["properties"].items():
            schema = _without_null({k: v for k, v in prop.items() if k != "description"})
            param: dict[str, Any] = {"name": name, "in": "query"}
            if "description" in prop:
                param["description"] = prop["description"]
            params.append({**param, "schema": schema})
    return params


def _operation(op: Operation, defs: Mapping[str, Any]) -> dict[str, Any]:
    doc: dict[str, Any] = {"operationId": op.operation_id, "summary": op.summary}
    if not op.secured:
        doc["security"] = []
    params = _parameters(op, defs)
    if params:
        doc["parameters"] = params
    if op.body is not None:
        doc["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": _REF_TEMPLATE.format(model=op.body.__name__)}}},
        }
    responses: dict[str, Any] = {str(status): _answer(a) for status, a in sorted(op.answers.items())}
    if op.query is not None or op.body is not None or op.path_params:
        responses["400"] = _error_answer("Bad query parameter or body")
    if op.secured:
        responses["401"] = {
            "description": "Missing, invalid or revoked token",
            "headers": {"WWW-Authenticate": {"schema": {"type": "string"}, "description": "Bearer challenge"}},
            "content": {"application/json": {"schema": {"$ref": _REF_TEMPLATE.format(model="Error")}}},
        }
    for status, description in sorted(op.errors.items()):
        responses[str(status)] = _error_answer(description)
    doc["responses"] = responses
    return doc


def build_document(operations: Sequence[Operation]) -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``operations``."""
    queries = [op.query for op in operations if op.query is not None]
    models: list[type[BaseModel]] = [*RESPONSE_MODELS, *dict.fromkeys(queries)]
    _, top = models_json_schema(
        [(m, "validation") for m in models], ref_template=_REF_TEMPLATE, schema_generator=_NoFieldTitles
    )
    defs: dict[str, Any] = top.get("$defs", {})
    paths: dict[str, dict[str, Any]] = {}
    for op in operations:
        paths.setdefault(f"{API_PREFIX}{op.path}", {})[op.method.lower()] = _operation(op, defs)
    # query models only describe parameters; the bodies and answers stay components
    schemas = {name: schema for name, schema in sorted(defs.items()) if name not in {q.__name__ for q in queries}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "Shopdesk order store API", "version": "1.0.0", "description": _DESCRIPTION},
        "servers": [{"url": "/"}],
        "security": [{"bearerAuth": []}],
        "components": {
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "sdk_…"}},
            "schemas": schemas,
        },
        "paths": paths,
    }

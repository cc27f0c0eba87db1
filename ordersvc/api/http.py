"""The API's HTTP plumbing: constants, JSON answers, the error and token middlewares, and
checked reading of query parameters, paths and bodies.

Handlers and the order store refuse with :class:`shopbase.refusal.Refused`; the error
middleware answers ``{"error": code, "message": …}`` with the refusal's 4xx status.
"""

from __future__ import annotations

import json
import logging
import re
import unicodedata
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from enum import Enum
from functools import partial
from typing import Any

from aiohttp import web
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from ordersvc.api.schemas import QueryModel
from ordersvc.api_tokens import authenticate
from shopbase.refusal import Refused

log = logging.getLogger(__name__)

API_PREFIX = "/api/v1"
MAX_BODY_BYTES = 64 * 1024

SESSIONS = web.AppKey("ordersvc_api_sessions", async_sessionmaker)
#: the mounted sub-application (on the parent app), e.g. to list its routes
API_APP = web.AppKey("ordersvc_api_app", web.Application)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


_dumps = partial(json.dumps, ensure_ascii=False, separators=(",", ":"))


def reply(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(data, status=status, headers=headers, dumps=_dumps)


def error_reply(
    status: int, code: str, message: str, headers: dict[str, str] | None = None, fields: dict[str, str] | None = None
) -> web.Response:
    """The error body of every API answer that is not a 2xx: ``{"error": code, "message": …}``
    (and ``fields`` when the problem is in named fields of the body)."""
    body: dict[str, Any] = {"error": code, "message": message}
    if fields:
        body["fields"] = fields
    return reply(body, status=status, headers=headers)


def _invalid(message: str) -> Refused:
    """A query parameter with a bad value (400)."""
    return Refused("invalid_parameter", message, status=400)


def shorten(value: str, limit: int = 60) -> str:
    value = "".join(ch if ch.isprintable() else "?" for ch in value)
    return value if len(value) <= limit else value[: limit - 1] + "…"


# --------------------------------------------------------------------------- middlewares


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except Refused as exc:
        # a refusal is always a 4xx; its headers (Allow, WWW-Authenticate) travel in ``details``
        status = exc.status if 400 <= exc.status < 500 else 409
        return error_reply(status, exc.code, exc.message, exc.details.get("headers"), exc.fields)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        headers = {k: v for k, v in exc.headers.items() if k.lower() in {"allow", "www-authenticate", "retry-after"}}
        reason = (exc.reason or "error").lower()
        return error_reply(exc.status, re.sub(r"[^a-z0-9]+", "_", reason).strip("_") or "error", reason, headers)
    except Exception:
        # the path only: query strings may carry a customer's email
        log.exception("api: unexpected error on %s %s", request.method, request.path)
        return error_reply(500, "internal_error", "internal error")


_BEARER_CHALLENGE = 'Bearer realm="shopdesk"'


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.match_info.route.name == "openapi":
        return await handler(request)
    header = request.headers.get("Authorization", "")
    scheme, _, raw = header.strip().partition(" ")
    raw = raw.strip()
    if scheme.lower() != "bearer" or not raw:
        raise Refused(
            "missing_token",
            "missing bearer token: send 'Authorization: Bearer <token>'",
            status=401,
            headers={"WWW-Authenticate": _BEARER_CHALLENGE},
        )
    async with request.config_dict[SESSIONS]() as session:
        token = await authenticate(session, raw)
        if token is not None:
            await session.commit()
    if token is None:
        raise Refused(
            "invalid_token",
            "invalid or revoked token",
            status=401,
            headers={"WWW-Authenticate": f'{_BEARER_CHALLENGE}, error="invalid_token"'},
        )
    return await handler(request)


class Query:
    """The request's query parameters, checked against the names a route accepts."""

    def __init__(self, request: web.Request, model: type[QueryModel] | None) -> None:
        self._query = request.query
        allowed = set(model.model_fields) if model is not None else set()
        seen: set[str] = set()
        for key, _value in self._query.items():
            if key not in allowed:
                names = ", ".join(sorted(allowed)) or "none"
                message = f"unknown query parameter '{shorten(key, 40)}' (accepted: {names})"
                raise Refused("unknown_parameter", message, status=400)
            if key in seen:
                raise Refused("repeated_parameter", f"query parameter '{key}' given more than once", status=400)
            seen.add(key)

    def text(self, name: str, max_length: int = 320) -> str | None:
        value = self._query.get(name)
        if value is None:
            return None
        value = value.strip()
        if not value:
            raise _invalid(f"'{name}' must not be empty")
        if len(value) > max_length:
            raise _invalid(f"'{name}' is longer than {max_length} characters")
        if any(unicodedata.category(ch) == "Cc" for ch in value):
            raise _invalid(f"'{name}' contains control characters")
        return value

    def integer(self, name: str, default: int, low: int, high: int) -> int:
        value = self.text(name, 20)
        if value is None:
            return default
        if not re.fullmatch(r"[0-9]+", value):
            raise _invalid(f"'{name}' must be a whole number between {low} and {high}")
        number = int(value)
        if not low <= number <= high:
            raise _invalid(f"'{name}' must be between {low} and {high}")
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
        raise _invalid(f"'{name}' must be true or false")

    def choice(self, name: str, *enums: type[Enum], extra: tuple[str, ...] = ()) -> str | None:
        value = self.text(name, 40)
        if value is None:
            return None
        options = [m.value for e in enums for m in e] + list(extra)
        if value not in options:
            raise _invalid(f"'{name}' must be one of: {', '.join(options)}")
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
            raise _invalid(f"'{name}' must be an ISO 8601 date-time, e.g. 2024-05-01T12:00:00Z") from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return parsed.astimezone(UTC)

    def cursor(self) -> int | None:
        value = self.text("cursor", 20)
        if value is None:
            return None
        # ids are INTEGER columns: a larger cursor was never issued (and PostgreSQL refuses to compare it)
        if not re.fullmatch(r"[1-9][0-9]{0,9}", value) or int(value) > 2**31 - 1:
            raise Refused("invalid_cursor", "'cursor' is not valid; use the next_cursor of a previous page", status=400)
        return int(value)


def page(rows: list[Any], limit: int) -> tuple[list[Any], str | None]:
    """Cut the ``limit + 1`` rows fetched to a page and the cursor of the next one."""
    if len(rows) > limit:
        rows = rows[:limit]
        return rows, str(rows[-1].id)
    return rows, None


async def read_json(request: web.Request) -> Any:
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise Refused("body_too_large", f"the body is larger than {MAX_BODY_BYTES // 1024} KiB", status=413)
    body = bytearray()
    async for chunk in request.content.iter_any():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise Refused("body_too_large", f"the body is larger than {MAX_BODY_BYTES // 1024} KiB", status=413)
    if not body.strip():
        raise Refused("body_required", "a JSON body is required", status=400)
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise Refused("invalid_json", "the body is not valid JSON", status=400) from None


def path_text(name: str, value: str, max_length: int = 64) -> str:
    value = value.strip()
    if not value or len(value) > max_length or any(not ch.isprintable() for ch in value):
        raise Refused("invalid_path", f"'{name}' must be 1–{max_length} printable characters", status=400)
    return value


def sessions_of(request: web.Request) -> async_sessionmaker[AsyncSession]:
    return request.config_dict[SESSIONS]

"""Structured logs that never carry secrets or customer emails.

Records are one JSON object per line. A redacting filter masks anything that looks like an
email address, a phone number, a Telegram bot token, a Slack token or a bearer token, whatever
logger it came from (httpx logs full request URLs, and the Telegram token is part of the path).

Phone numbers are recognised by their written shapes (:data:`_PHONE_SHAPES`), never by digits
alone, so that order numbers, platform ids, update ids and timestamps stay readable: an
international number (``+`` or ``%2B`` and 8 to 15 digits, with spaces, dots, dashes or
parentheses between them), a North American one with separators (``(512) 555-0143``,
``512-555-0143``, ``512.555.0143``) and a national one with a trunk ``0`` and spaced or dashed
groups (``07700 900999``, ``030-1234567``; 10 to 12 digits). A bare run of digits is left
alone: it cannot be told apart from an id.

Every line keeps the record's ``extra`` fields (``log.info("…", extra={"conversation_id": 7})``),
sanitised by :func:`safe_extra`: a field whose name says it holds customer text or a secret
(``text``, ``body``, ``email``, ``token``, ``password`` …) is dropped, string values pass
through :func:`redact` and are bounded, nested values are bounded too. Inside an HTTP request
(:func:`request_middleware`) every line also carries ``request_id``, ``method``, ``path``
(never the query string) and, once the inbox knows who is asking, ``agent_id``.

``SHOPDESK_ACCESS_LOG=true`` adds one line per request on the ``shopdesk.access`` logger with
the same fields plus ``route`` (the matched route template), ``status`` and ``duration_ms``;
paths are redacted like messages (an email inside a path becomes ``<email>``).
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import secrets
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

__all__ = [
    "configure_logging",
    "redact",
    "safe_extra",
    "RedactingFilter",
    "RequestContextFilter",
    "JsonFormatter",
    "request_middleware",
    "access_log_middleware",
]


def _phone_shape(min_digits: int, max_digits: int) -> Callable[[re.Match[str]], str]:
    """A replacement that masks the match when it holds ``min_digits``..``max_digits`` digits."""

    def replace(match: re.Match[str]) -> str:
        text = match.group(0)
        digits = sum(ch.isdigit() for ch in text) - (1 if text[:3].upper() == "%2B" else 0)
        return "<phone>" if min_digits <= digits <= max_digits else text

    return replace


#: the written shapes of a phone number (see the module docstring); none matches an id, an order
#: number or a timestamp (those have no leading ``+``, no 3-3-4 grouping, no spaced groups after a 0)
_PHONE_SHAPES: list[tuple[re.Pattern[str], Callable[[re.Match[str]], str]]] = [
    # +1 (512) 555-0143, +44 7700 900999, +4930123456, and URL-encoded %2B15125550143
    (re.compile(r"(?<![\w+])(?:\+|%2[Bb])\(?\d(?:[ .()-]{0,2}\d){7,14}(?![\w])"), _phone_shape(8, 15)),
    # (512) 555-0143, 512-555-0143, 512.555.0143, 512 555 0143
    (re.compile(r"(?<![\w.+%-])(?:\(\d{3}\) ?|\d{3}[ .-])\d{3}[ .-]\d{4}(?![\w.-]|:\d)"), _phone_shape(10, 10)),
    # 07700 900999, 030-1234567, 0612 34 56 78
    (re.compile(r"(?<![\w.+%:-])0\d{1,4}(?:[ -]\d{2,8}){1,4}(?![\w.:-])"), _phone_shape(10, 12)),
]

_PATTERNS: list[tuple[re.Pattern[str], str | Callable[[re.Match[str]], str]]] = [
    (re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"), "<email>"),
    # no \b in front: in a Bot API URL the token follows "bot" ("/bot123456:AA...")
    (re.compile(r"(?<![0-9])\d{6,12}:[A-Za-z0-9_-]{30,}"), "<telegram-token>"),
    (re.compile(r"\bxox[abposr]-[A-Za-z0-9-]+"), "<slack-token>"),
    (re.compile(r"\bxapp-[A-Za-z0-9-]+"), "<slack-app-token>"),
    (re.compile(r"\bsdk_[A-Za-z0-9_-]{20,}"), "<api-token>"),
    (re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+"), r"\1<token>"),
    # after the tokens: a Telegram token's digits are not a phone number
    *_PHONE_SHAPES,
]


def redact(text: str) -> str:
    for pattern, repl in _PATTERNS:
        text = pattern.sub(repl, text)
    return text


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:
            message = str(record.msg)
        record.msg = redact(message)
        record.args = None
        return True


#: attributes every LogRecord has: not "extra" fields
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime", "taskName"}
#: an extra field whose name contains one of these is never written (customer text, secrets)
_PRIVATE_NAMES = ("text", "body", "preview", "summary", "note", "email", "phone", "address", "token", "secret",
                  "password", "cookie", "authorization", "csrf", "query", "payload", "content")
_MAX_STRING = 300
_MAX_ITEMS = 20


def _private(name: str) -> bool:
    lowered = name.lower()
    return any(word in lowered for word in _PRIVATE_NAMES)


def _safe_value(value: Any, depth: int = 0) -> Any:
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, str):
        return redact(value[:_MAX_STRING])
    if isinstance(value, dict) and depth < 2:
        return {str(k)[:64]: _safe_value(v, depth + 1)
                for k, v in list(value.items())[:_MAX_ITEMS] if not _private(str(k))}
    if isinstance(value, (list, tuple, set, frozenset)) and depth < 2:
        return [_safe_value(v, depth + 1) for v in list(value)[:_MAX_ITEMS]]
    return redact(str(value)[:_MAX_STRING])


def safe_extra(record: logging.LogRecord) -> dict[str, Any]:
    """The record's ``extra`` fields as they may be written: private names dropped, values redacted."""
    return {name: _safe_value(value) for name, value in record.__dict__.items()
            if name not in _STANDARD and not name.startswith("_") and not _private(name)}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name, value in safe_extra(record).items():
            data.setdefault(name, value)
        if record.exc_info:
            data["error"] = redact(self.formatException(record.exc_info))
        return json.dumps(data, ensure_ascii=False, default=str)


# --------------------------------------------------------------------------- request context

_REQUEST: contextvars.ContextVar[web.Request | None] = contextvars.ContextVar("shopdesk_log_request", default=None)
_REQUEST_ID = web.RequestKey("shopdesk_request_id", str)


def _agent_id(request: web.Request) -> int | None:
    """The signed-in agent's id, read without touching the database (no lazy load)."""
    from sqlalchemy import inspect

    from inbox.web.state import AGENT

    agent = request.get(AGENT)
    if agent is None:
        return None
    try:
        identity = inspect(agent).identity
    except Exception:
        return None
    return int(identity[0]) if identity else None


def request_fields(request: web.Request) -> dict[str, Any]:
    request_id = request.get(_REQUEST_ID)
    if request_id is None:  # made with the request's first log line (most requests log none)
        request_id = request[_REQUEST_ID] = secrets.token_hex(8)
    fields: dict[str, Any] = {"request_id": request_id, "method": request.method,
                              "path": redact(request.path[:_MAX_STRING])}
    agent_id = _agent_id(request)
    if agent_id is not None:
        fields["agent_id"] = agent_id
    return fields


class RequestContextFilter(logging.Filter):
    """Adds the current HTTP request's fields (request id, method, path, agent id) to records."""

    def filter(self, record: logging.LogRecord) -> bool:
        request = _REQUEST.get()
        if request is not None:
            try:
                for name, value in request_fields(request).items():
                    if not hasattr(record, name):
                        setattr(record, name, value)
            except Exception:  # logging never fails a request
                pass
        return True


@web.middleware
async def request_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    """Binds the request to every record logged while it is handled (see :class:`RequestContextFilter`;
    the request id is drawn when its first line is logged)."""
    token = _REQUEST.set(request)
    try:
        return await handler(request)
    finally:
        _REQUEST.reset(token)


access_log = logging.getLogger("shopdesk.access")


@web.middleware
async def access_log_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    """One ``shopdesk.access`` line per request (installed with ``SHOPDESK_ACCESS_LOG=true``)."""
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        resource = request.match_info.route.resource if request.match_info.route is not None else None
        route = resource.canonical if resource is not None else ""
        access_log.info("%s %s %s", request.method, redact(request.path[:_MAX_STRING]), status, extra={
            "status": status, "route": route,
            "duration_ms": round((time.perf_counter() - started) * 1000, 2),
        })


def configure_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RedactingFilter())
    handler.addFilter(RequestContextFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # request URLs of these clients contain the bot token (PTB's own "telegram" logger prints its
    # API URL at DEBUG); aiosqlite and SQLAlchemy's engine print SQL parameters (customer data)
    # below WARNING. Keep them all at WARNING, whatever the level.
    for noisy in ("httpx", "httpcore", "telegram", "telegram.ext", "aiohttp.access", "aiosqlite", "sqlalchemy.engine"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

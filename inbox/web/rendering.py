"""Jinja2 for the web pages (autoescaped), the URL and time filters, and error responses.

Everything a customer can type reaches the page only as escaped text: the environment
autoescapes every ``.html`` template, and no template marks customer data ``|safe``.
Links are made only from URLs that pass :func:`safe_url`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jinja2
from aiohttp import web

__all__ = [
    "create_environment",
    "safe_url",
    "render",
    "render_fragment",
    "error_response",
    "wants_json",
]

_CONTROL = {chr(i) for i in range(0x20)} | {"\x7f"}


def safe_url(value: Any, schemes: tuple[str, ...] = ("http", "https", "mailto")) -> str | None:
    """The URL when its scheme is allowed (and http(s) has a host), else None.

    Whitespace and control characters anywhere make it unsafe: browsers strip them, which is how
    ``java\\tscript:`` slips past naive checks.
    """
    if not isinstance(value, str):
        return None
    url = value.strip()
    if not url or len(url) > 2048 or any(c in _CONTROL for c in url):
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in schemes:
        return None
    if scheme in ("http", "https") and not parts.hostname:
        return None
    if scheme == "mailto" and not parts.path:
        return None
    return url


def _http_url(value: Any) -> str | None:
    return safe_url(value, ("http", "https"))


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _ago(value: datetime | None) -> str:
    """A compact age: "now", "5m", "3h", "2d", or a date for old items."""
    if value is None:
        return ""
    seconds = (datetime.now(UTC) - _aware(value)).total_seconds()
    if seconds < 60:
        return "now"
    if seconds < 3600:
        return f"{int(seconds // 60)}m"
    if seconds < 86400:
        return f"{int(seconds // 3600)}h"
    if seconds < 7 * 86400:
        return f"{int(seconds // 86400)}d"
    return _aware(value).strftime("%d %b")


def _since(value: datetime | None) -> str:
    """A phrase: "just now", "5 min ago", "3 h ago", "2 days ago", or "on 10 Nov 2025"."""
    if value is None:
        return ""
    seconds = (datetime.now(UTC) - _aware(value)).total_seconds()
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{int(seconds // 60)} min ago"
    if seconds < 86400:
        return f"{int(seconds // 3600)} h ago"
    if seconds < 7 * 86400:
        days = int(seconds // 86400)
        return f"{days} day{'s' if days != 1 else ''} ago"
    return "on " + _aware(value).strftime("%d %b %Y")


def _when(value: datetime | None) -> str:
    if value is None:
        return ""
    return _aware(value).astimezone(UTC).strftime("%d %b %Y, %H:%M UTC")


def _iso(value: datetime | None) -> str:
    return "" if value is None else _aware(value).isoformat()


def _local_input(value: datetime | None) -> str:
    """A value for ``<input type=datetime-local>`` (UTC)."""
    return "" if value is None else _aware(value).astimezone(UTC).strftime("%Y-%m-%dT%H:%M")


def _enum(value: Any) -> str:
    raw = getattr(value, "value", value)
    return "" if raw is None else str(raw)


def _humanize(value: Any) -> str:
    return _enum(value).replace("_", " ").capitalize()


def _money(amount: Any, currency: str = "USD") -> str:
    from decimal import Decimal, InvalidOperation

    try:
        return f"{Decimal(str(amount)):,.2f} {currency}"
    except (InvalidOperation, ValueError):
        return f"{amount} {currency}"


def create_environment(extra_dirs: list[Path] | None = None) -> jinja2.Environment:
    folders = [*(str(p) for p in extra_dirs or []), str(resources.files("templates"))]
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(folders),
        autoescape=jinja2.select_autoescape(["html", "htm", "xml"], default_for_string=True, default=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        safe_url=safe_url,
        http_url=_http_url,
        ago=_ago,
        since=_since,
        when=_when,
        iso=_iso,
        local_input=_local_input,
        enum=_enum,
        humanize=_humanize,
        money=_money,
    )
    return env


def render_fragment(env: jinja2.Environment, name: str, context: dict[str, Any]) -> str:
    return env.get_template(name).render(**context)


def render(request: web.Request, name: str, context: dict[str, Any], *, status: int = 200) -> web.Response:
    from inbox.web.state import STATE

    state = request.app[STATE]
    body = render_fragment(state.jinja, name, {"request": request, "config": state.config, **context})
    response = web.Response(text=body, status=status, content_type="text/html", charset="utf-8")
    response.headers["Cache-Control"] = "no-store"
    return response


def wants_json(request: web.Request) -> bool:
    if request.headers.get("HX-Request") == "true":
        return True
    accept = request.headers.get("Accept", "")
    return "application/json" in accept and "text/html" not in accept


def error_response(request: web.Request, status: int, message: str) -> web.Response:
    """A clear 4xx: JSON ``{"error": ...}`` for scripts and htmx, a small page for a browser form."""
    if wants_json(request):
        return web.json_response({"error": message}, status=status, headers={"Cache-Control": "no-store"})
    from inbox.web.state import AGENT

    return render(
        request,
        "inbox/error.html",
        {"status": status, "message": message, "agent": request.get(AGENT)},
        status=status,
    )

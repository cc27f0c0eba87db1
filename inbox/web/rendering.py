"""Jinja2 for the web pages (autoescaped), the URL and time filters, and error responses.

Everything a customer can type reaches the page only as escaped text: the environment
autoescapes every ``.html`` template, and no template marks customer data ``|safe``.
Links are made only from URLs that pass :func:`safe_url`.

Amounts, dates and times are formatted by :mod:`shopbase.formatting`'s filters for the reader:
:func:`render` puts the agent's ``locale`` (their UI language) and the shop's ``timezone`` into
every page's context (:func:`reader_context`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jinja2
from aiohttp import web

from shopbase.formatting import install_filters

__all__ = [
    "create_environment",
    "agent_locale",
    "reader_context",
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


def _iso(value: datetime | None) -> str:
    return "" if value is None else _aware(value).isoformat()


def _local_input(value: datetime | None) -> str:
    """A value for ``<input type=datetime-local>`` (UTC, to the minute: a machine format)."""
    if value is None:
        return ""
    return _aware(value).astimezone(UTC).replace(tzinfo=None).isoformat(timespec="minutes")


def _enum(value: Any) -> str:
    raw = getattr(value, "value", value)
    return "" if raw is None else str(raw)


def _humanize(value: Any) -> str:
    return _enum(value).replace("_", " ").capitalize()


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
        iso=_iso,
        local_input=_local_input,
        enum=_enum,
        humanize=_humanize,
    )
    install_filters(env)  # money, number, day, when, since, ago ... in the page's `locale` and `timezone`
    return env


def render_fragment(env: jinja2.Environment, name: str, context: dict[str, Any]) -> str:
    return env.get_template(name).render(**context)


def agent_locale(agent: Any) -> str:
    """The language an agent reads the inbox in: their ``language`` preference, else English."""
    return getattr(agent, "language", None) or "en"


def reader_context(request: web.Request) -> dict[str, Any]:
    """``locale`` and ``timezone`` for the formatting filters: the signed-in agent's language and
    the shop's time zone."""
    from inbox.web.state import AGENT, STATE

    return {"locale": agent_locale(request.get(AGENT)), "timezone": request.app[STATE].config.shop_timezone}


def render(request: web.Request, name: str, context: dict[str, Any], *, status: int = 200) -> web.Response:
    from inbox.web.state import STATE

    state = request.app[STATE]
    body = render_fragment(state.jinja, name, {"request": request, "config": state.config, **reader_context(request),
                                               **context})
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

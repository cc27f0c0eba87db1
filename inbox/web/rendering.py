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
    "page_context",
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


@jinja2.pass_context
def _label(context: Any, value: Any) -> str:
    """``humanize`` in the reader's language: a status, priority, channel, intent… as a short label
    (the English labels are listed in :mod:`inbox.web.labels`; an unknown value stays humanized)."""
    from inbox.web.i18n import LABEL_CONTEXT, translations

    text = _humanize(value)
    found = context.get("translations")
    return (found or translations("en")).pgettext(LABEL_CONTEXT, text) if text else text


def _language_name(code: Any) -> str:
    """A language code (en, zh-Hant…) as the language's own name; an unknown code as it is."""
    from inbox.web.i18n import LANGUAGE_NAMES

    return LANGUAGE_NAMES.get(str(code or ""), str(code or ""))


def create_environment(extra_dirs: list[Path] | None = None) -> jinja2.Environment:
    from inbox.web import i18n

    folders = [*(str(p) for p in extra_dirs or []), str(resources.files("templates"))]
    env = jinja2.Environment(
        extensions=["jinja2.ext.i18n"],
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
        humanize=_label,
        language_name=_language_name,
    )
    install_filters(env)  # money, number, day, when, since, ago ... in the page's `locale` and `timezone`
    # JSON in data attributes (the script's catalog, canned shortcuts) keeps its letters readable;
    # tojson still escapes < > & ' so a single-quoted attribute cannot be ended
    env.policies["json.dumps_kwargs"] = {"sort_keys": True, "ensure_ascii": False}
    i18n.install(env)
    return env


def page_context(request: web.Request) -> dict[str, Any]:
    """What every page and fragment gets: the request, the config and the reader's language
    (``translations`` for ``_()``, ``ui_lang`` for ``<html lang>``)."""
    from inbox.web.i18n import js_catalog, request_language, translations_for
    from inbox.web.state import STATE

    language = request_language(request)
    return {
        "request": request,
        "config": request.app[STATE].config,
        **reader_context(request),
        "translations": translations_for(request),
        "ui_lang": language,
        "js_i18n": js_catalog(language),
    }


def render_fragment(env: jinja2.Environment, name: str, context: dict[str, Any]) -> str:
    return env.get_template(name).render(**context)


def agent_locale(agent: Any) -> str:
    """The language an agent chose for the inbox, else English (without a request to ask the
    browser; pages use :func:`reader_context`)."""
    return getattr(agent, "language", None) or "en"


def reader_context(request: web.Request) -> dict[str, Any]:
    """``locale`` and ``timezone`` for the formatting filters: the reader's UI language (the agent's
    choice, else the browser's, see :func:`inbox.web.i18n.request_language`) and the shop's time zone."""
    from inbox.web.i18n import request_language
    from inbox.web.state import STATE

    return {"locale": request_language(request), "timezone": request.app[STATE].config.shop_timezone}


def render(request: web.Request, name: str, context: dict[str, Any], *, status: int = 200) -> web.Response:
    from inbox.web.state import STATE

    state = request.app[STATE]
    body = render_fragment(state.jinja, name, {**page_context(request), **context})
    response = web.Response(text=body, status=status, content_type="text/html", charset="utf-8")
    response.headers["Cache-Control"] = "no-store"
    return response


def wants_json(request: web.Request) -> bool:
    if request.headers.get("HX-Request") == "true":
        return True
    accept = request.headers.get("Accept", "")
    return "application/json" in accept and "text/html" not in accept


def error_response(request: web.Request, status: int, message: str) -> web.Response:
    """A clear 4xx: JSON ``{"error": ...}`` for scripts and htmx, a small page for a browser form.
    ``message`` is shown in the reader's language when the catalogs know it (mark it with ``N_``)."""
    from inbox.web.i18n import translations_for

    message = translations_for(request).gettext(message)
    if wants_json(request):
        return web.json_response({"error": message}, status=status, headers={"Cache-Control": "no-store"})
    from inbox.web.state import AGENT

    return render(
        request,
        "inbox/error.html",
        {"status": status, "message": message, "agent": request.get(AGENT)},
        status=status,
    )
